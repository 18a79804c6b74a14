//! Test host for the WIT component: builds it and instantiates it in wasmtime with WASI preview 2. Shared by `tests/component.rs` and `tests/parity.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "wit",
    world: "credlineage",
});

pub use exports::credlineage::enricher::enrich::Stats as WitStats;

// ---------------------------------------------------------------------------
// Building and loading the component
// ---------------------------------------------------------------------------

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Build the component once per test binary; its path.
pub fn component_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dist = tmp.join("dist-component");
        let out = Command::new("bash")
            .arg(root().join("scripts/build-component.sh"))
            .env("CARGO_TARGET_DIR", tmp.join("wasm-component"))
            .env("DIST_DIR", &dist)
            .env("CARGO", env!("CARGO"))
            .output()
            .expect("run scripts/build-component.sh");
        assert!(
            out.status.success(),
            "building the component failed (is the wasm32-wasip2 target installed?):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dist.join("credlineage.component.wasm")
    })
}

pub struct Host {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// One instance of the component in its own store.
pub struct Guest {
    pub store: Store<Host>,
    pub bindings: Credlineage,
}

/// The component compiled for `engine` (benches/wasm.rs passes a Pulley engine too).
pub fn compile(engine: &Engine) -> Component {
    Component::from_file(engine, component_path()).expect("the built .wasm is a component")
}

pub fn engine_and_component() -> &'static (Engine, Component) {
    static C: OnceLock<(Engine, Component)> = OnceLock::new();
    C.get_or_init(|| {
        let engine = Engine::default();
        let component = compile(&engine);
        (engine, component)
    })
}

impl Guest {
    pub fn new() -> Guest {
        let (engine, component) = engine_and_component();
        Guest::new_in(engine, component)
    }

    /// [`new`](Self::new) with a component compiled for `engine`.
    pub fn new_in(engine: &Engine, component: &Component) -> Guest {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        let host = Host {
            ctx: WasiCtx::builder().inherit_stderr().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(engine, host);
        let bindings = Credlineage::instantiate(&mut store, component, &linker).unwrap();
        Guest { store, bindings }
    }

    /// `constructor(config)`.
    pub fn construct(&mut self, config: &str) -> ResourceAny {
        let r = self.bindings.credlineage_enricher_enrich().enricher();
        r.call_constructor(&mut self.store, config)
            .expect("constructor does not trap")
    }

    /// `create(config)`.
    pub fn create(&mut self, config: &str) -> Result<ResourceAny, String> {
        let r = self.bindings.credlineage_enricher_enrich().enricher();
        r.call_create(&mut self.store, config)
            .expect("create does not trap")
    }
}

/// A component enricher: the instance and one resource in it.
pub struct Wasm {
    pub g: Guest,
    pub e: ResourceAny,
}

impl Wasm {
    pub fn new(config: &str) -> Wasm {
        Wasm::with(Guest::new(), config)
    }

    /// [`new`](Self::new) with a component compiled for `engine`.
    pub fn new_in(engine: &Engine, component: &Component, config: &str) -> Wasm {
        Wasm::with(Guest::new_in(engine, component), config)
    }

    fn with(mut g: Guest, config: &str) -> Wasm {
        let e = g.create(config).expect("config accepted");
        Wasm { g, e }
    }

    pub fn process(&mut self, record: &[u8]) -> Vec<u8> {
        let r = self.g.bindings.credlineage_enricher_enrich().enricher();
        r.call_process(&mut self.g.store, self.e, record)
            .expect("process does not trap")
    }

    pub fn process_at(&mut self, record: &[u8], t: i64) -> Vec<u8> {
        let r = self.g.bindings.credlineage_enricher_enrich().enricher();
        r.call_process_at(&mut self.g.store, self.e, record, t)
            .expect("process-at does not trap")
    }

    pub fn snapshot(&mut self) -> Vec<u8> {
        let r = self.g.bindings.credlineage_enricher_enrich().enricher();
        r.call_snapshot(&mut self.g.store, self.e)
            .expect("snapshot does not trap")
    }

    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let r = self.g.bindings.credlineage_enricher_enrich().enricher();
        r.call_restore(&mut self.g.store, self.e, bytes)
            .expect("restore does not trap")
    }

    pub fn stats(&mut self) -> WitStats {
        let r = self.g.bindings.credlineage_enricher_enrich().enricher();
        r.call_stats(&mut self.g.store, self.e)
            .expect("stats does not trap")
    }

    pub fn stats_json(&mut self) -> String {
        let r = self.g.bindings.credlineage_enricher_enrich().enricher();
        r.call_stats_json(&mut self.g.store, self.e)
            .expect("stats-json does not trap")
    }

    pub fn config_error(&mut self) -> Option<String> {
        let r = self.g.bindings.credlineage_enricher_enrich().enricher();
        r.call_config_error(&mut self.g.store, self.e)
            .expect("config-error does not trap")
    }
}

impl Drop for Wasm {
    fn drop(&mut self) {
        let _ = self.e.resource_drop(&mut self.g.store);
    }
}
