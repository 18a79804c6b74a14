//! Test host for the Fluent Bit module: builds it, loads it in wasmtime with WASI preview 1 and calls it exactly as Fluent Bit's `flb_wasm.c` does. Shared by `tests/fluent_bit.rs` and `tests/parity.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use wasmtime::{Engine, Memory, Module, Store, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// The export Fluent Bit's `Function_Name` names.
pub const FUNCTION: &str = "credlineage_filter";
/// What `scripts/build-fluent-bit.sh` ships.
pub const DIST_NAME: &str = "credlineage-fluent-bit.wasm";
/// The directory the module reads `config.json` from.
pub const CONFIG_DIR: &str = "/etc/credlineage";
/// A Fluent Bit tag.
pub const TAG: &str = "cloudtrail";

// ---------------------------------------------------------------------------
// Building and loading the module
// ---------------------------------------------------------------------------

/// Build the module with the same command and profile as
/// `scripts/build-fluent-bit.sh`, in a target directory of its own. Fails
/// (never skips) when it cannot be built.
pub fn wasm_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fluent-bit-wasm");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--profile",
                "release-wasm",
                "--lib",
                "--target",
                "wasm32-wasip1",
                "--no-default-features",
                "--features",
                "fluent-bit",
            ])
            .env("CARGO_TARGET_DIR", &target)
            // Flags meant for the host (coverage, target-cpu) break a wasm build.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("could not run cargo");
        assert!(
            status.success(),
            "building the Fluent Bit module failed (needs `rustup target add wasm32-wasip1`)"
        );
        target.join("wasm32-wasip1/release-wasm/credlineage.wasm")
    })
}

pub fn wasm_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        std::fs::read(wasm_path()).unwrap_or_else(|e| panic!("{}: {e}", wasm_path().display()))
    })
}

/// The module compiled for `engine` (benches/wasm.rs passes a Pulley engine too).
pub fn compile(engine: &Engine) -> Module {
    Module::new(engine, wasm_bytes()).expect("the module compiles")
}

pub fn compiled() -> &'static (Engine, Module) {
    static COMPILED: OnceLock<(Engine, Module)> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let engine = Engine::default();
        let module = compile(&engine);
        (engine, module)
    })
}

/// One Fluent Bit filter instance: the module instantiated once, called per record.
pub struct FluentBit {
    pub store: Store<WasiP1Ctx>,
    pub memory: Memory,
    pub malloc: TypedFunc<u32, u32>,
    pub free: TypedFunc<u32, ()>,
    pub filter: TypedFunc<(u32, u32, u32, u32, u32, u32), u32>,
    pub stderr: MemoryOutputPipe,
}

impl FluentBit {
    /// Fluent Bit's default `Accessible_Paths` is `.`; pass it or others as
    /// `(host dir, guest name)`. WAMR preopens each under its own name.
    pub fn start(dirs: &[(&Path, &str)]) -> FluentBit {
        let (engine, module) = compiled();
        FluentBit::start_in(engine, module, dirs)
    }

    /// [`start`](Self::start) with a module compiled for `engine`.
    pub fn start_in(engine: &Engine, module: &Module, dirs: &[(&Path, &str)]) -> FluentBit {
        let stderr = MemoryOutputPipe::new(1 << 16);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr.clone());
        for (host, guest) in dirs {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .expect("preopen");
        }
        let mut store = Store::new(engine, wasi.build_p1());
        // An engine that meters fuel (the interpreted-work test) starts the
        // store with all it may need; other engines refuse this, harmlessly.
        let _ = store.set_fuel(u64::MAX);
        let mut linker = wasmtime::Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |t| t).expect("WASI linker");
        let instance = linker
            .instantiate(&mut store, module)
            .expect("the module instantiates with WASI preview 1 only");
        instance
            .get_typed_func::<(), ()>(&mut store, "_initialize")
            .expect("_initialize export")
            .call(&mut store, ())
            .expect("_initialize trapped");
        let memory = instance
            .get_memory(&mut store, "memory")
            .expect("memory export");
        let malloc = instance
            .get_typed_func(&mut store, "malloc")
            .expect("malloc: (i32) -> i32");
        let free = instance
            .get_typed_func(&mut store, "free")
            .expect("free: (i32) -> ()");
        let filter = instance
            .get_typed_func(&mut store, FUNCTION)
            .expect("filter: (i32 x 6) -> i32");
        FluentBit {
            store,
            memory,
            malloc,
            free,
            filter,
            stderr,
        }
    }

    /// `wasm_runtime_module_dup_data`: the module's `malloc`, then a copy.
    /// 0 when `malloc` fails, as WAMR returns.
    pub fn dup(&mut self, bytes: &[u8]) -> u32 {
        self.dup_parts(bytes, &[])
    }

    /// `dup` of `bytes` followed by `tail` (Fluent Bit copies a string with
    /// its NUL), without first joining them on the host.
    fn dup_parts(&mut self, bytes: &[u8], tail: &[u8]) -> u32 {
        let len = u32::try_from(bytes.len() + tail.len()).expect("fits in 32 bits");
        let p = self
            .malloc
            .call(&mut self.store, len)
            .expect("malloc trapped");
        if p != 0 {
            let at = p as usize;
            let block = self
                .memory
                .data_mut(&mut self.store)
                .get_mut(at..at + len as usize)
                .expect("malloc returned a block outside memory");
            block[..bytes.len()].copy_from_slice(bytes);
            block[bytes.len()..].copy_from_slice(tail);
        }
        p
    }

    /// `flb_wasm_call_function_format_json` for one record; returns Fluent
    /// Bit's copy of the result.
    pub fn call(&mut self, time_sec: u32, record: &[u8]) -> Vec<u8> {
        // `dup_data(tag, tag_len + 1)`, `dup_data(record, record_len + 1)`.
        let tag_ptr = self.dup_parts(TAG.as_bytes(), &[0]);
        let rec_ptr = self.dup_parts(record, &[0]);
        let args = (
            tag_ptr,
            TAG.len() as u32,
            time_sec,
            123_456_789,
            rec_ptr,
            u32::try_from(record.len()).expect("fits in 32 bits"),
        );
        let out = self.call_raw(args);
        for p in [tag_ptr, rec_ptr] {
            if p != 0 {
                self.free.call(&mut self.store, p).expect("free trapped");
            }
        }
        out
    }

    /// Call the filter with arguments as given; the NUL-terminated result,
    /// which must lie inside linear memory.
    pub fn call_raw(&mut self, args: (u32, u32, u32, u32, u32, u32)) -> Vec<u8> {
        let ret = self
            .filter
            .call(&mut self.store, args)
            .unwrap_or_else(|e| panic!("the filter trapped on {args:?}: {e:?}"));
        let data = self.memory.data(&self.store);
        let tail = data
            .get(ret as usize..)
            .expect("[wasm] returned value is invalid: outside memory");
        let n = memchr::memchr(0, tail)
            .expect("[wasm] returned value is invalid: no NUL before the end of memory");
        tail[..n].to_vec()
    }

    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------
