//! The Fluent Bit `filter_wasm` ABI: one exported function that Fluent Bit calls once per record, around one long-lived [`Enricher`].
//!
//! Fluent Bit (≥ 4.1) instantiates the module once per filter and, for every
//! record, serializes it to a NUL-terminated JSON object, copies it into
//! linear memory with `wasm_runtime_module_malloc`, calls
//! [`credlineage_filter`], `strdup`s the NUL-terminated string the call
//! returns, frees its two input buffers and parses the copy back into a
//! record. It never frees the returned pointer, so the result lives in a
//! buffer this module owns until the next call.
//!
//! * **Memory.** `wasm_runtime_module_malloc` uses the module's exported
//!   `malloc`/`free` when there are both, and otherwise a private app heap of
//!   `wasm_heap_size` bytes (8 KiB by default) that no CloudTrail record of
//!   real size fits in. The module exports the `malloc` and `free` of the
//!   WASI libc it links — the allocator Rust's own heap uses on
//!   `wasm32-wasip1` (the link arguments are in `build.rs`: a Rust function
//!   named `malloc` would replace libc's and recurse through Rust's
//!   allocator) — so records of any size get through.
//! * **Reactor.** [`_initialize`] runs the static constructors; WAMR calls it
//!   once after instantiation and loads the module without its "neither a
//!   command nor a reactor" warning.
//! * **Never traps, only ever returns one JSON object.** Fluent Bit drops a
//!   record whose call trapped, and a filter result that is not valid JSON
//!   corrupts its heap (`filter_wasm.c` then frees the previous record's
//!   parse buffer a second time). So a readable JSON object comes back
//!   enriched, or unchanged when it is not a CloudTrail record or the
//!   enricher refuses it (a number beyond `f64` or a lone surrogate escape
//!   in a field it reads). Anything that is not exactly one valid JSON
//!   object — invalid JSON or UTF-8, an array or scalar, a NUL byte, empty
//!   input, a null pointer, a range outside linear memory — comes back as
//!   `{}`. Fluent Bit only ever hands over an object it serialized itself,
//!   so that last case means a broken host; `{}` keeps one record out per
//!   record in, with its timestamp and metadata, and leaks nothing.
//! * **Configuration.** Fluent Bit passes no arguments and no environment
//!   to the module, only the directories listed in `Accessible_Paths`. On the
//!   first call the filter reads [`CONFIG_PATH`] (a JSON [`Config`]); when it
//!   is absent the defaults apply. A config that cannot be read or is
//!   invalid is reported once on stderr and records then pass through
//!   unchanged, so a typo shows as missing annotations, never as output
//!   under settings nobody chose.
//! * **Time.** `time_sec` (Fluent Bit's record time, truncated to 32 bits:
//!   valid until 2106) is the host time used when a record has no
//!   `eventTime` or `@timestamp`; 0 counts as absent. The tag is not used.

use crate::{Config, Enricher, Outcome};
use std::cell::RefCell;
use std::io::Write as _;

/// Where the filter looks for its JSON configuration. List `/etc/credlineage`
/// in `Accessible_Paths` to use it.
pub const CONFIG_PATH: &str = "/etc/credlineage/config.json";

/// What an unreadable record becomes: the smallest valid JSON object.
const EMPTY_OBJECT: &[u8] = b"{}\0";

/// Bytes in a WebAssembly page.
const PAGE: u64 = 65_536;

struct Filter {
    /// `None` when the configuration file was unusable: pass-through.
    enricher: Option<Enricher>,
    /// The last result, NUL-terminated; Fluent Bit reads it after the call.
    out: Vec<u8>,
}

thread_local! {
    static FILTER: RefCell<Option<Filter>> = const { RefCell::new(None) };
}

unsafe extern "C" {
    /// Synthesized by `wasm-ld`: runs the static constructors (WASI libc's
    /// among them). A reactor's `_initialize` must call it.
    fn __wasm_call_ctors();
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    /// WASI `random_get(buf, len) -> errno`.
    #[link_name = "random_get"]
    fn wasi_random_get(buf: *mut u8, len: usize) -> i32;
}

/// WASI reactor entry point: Fluent Bit's runtime (WAMR) calls it once,
/// right after instantiation. Later calls do nothing.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    thread_local! {
        static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if DONE.with(|d| d.replace(true)) {
        return;
    }
    // SAFETY: `__wasm_call_ctors` takes no arguments and is run once, before
    // any other export, as the WASI reactor ABI requires.
    unsafe { __wasm_call_ctors() }
}

/// The filter function: set `Function_Name credlineage_filter`.
///
/// Fluent Bit's signature, all `i32` on the wire: the tag (`tag`,
/// `tag_len`; unused), the record time (`time_sec`, `time_nsec`), and the
/// record as JSON text at `record` (`record_len` bytes, NUL-terminated by
/// Fluent Bit though the NUL is not needed). Returns the address of a
/// NUL-terminated JSON object that stays valid until the next call: the
/// enriched record, the record unchanged, or `{}` (see the module docs).
/// Never traps.
#[unsafe(no_mangle)]
pub extern "C" fn credlineage_filter(
    tag: u32,
    tag_len: u32,
    time_sec: u32,
    time_nsec: u32,
    record: u32,
    record_len: u32,
) -> u32 {
    let _ = (tag, tag_len, time_nsec);
    let host_time = (time_sec != 0).then(|| i64::from(time_sec));
    let input = guest_bytes(record, record_len);
    let done = FILTER.try_with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        let filter = slot.get_or_insert_with(Filter::new);
        Some(filter.run(input, host_time))
    });
    match done {
        Ok(Some(addr)) => addr,
        _ => EMPTY_OBJECT.as_ptr() as u32,
    }
}

/// The bytes `[addr, addr + len)` of linear memory, or `None` for a null
/// pointer or a range that does not lie inside the memory.
fn guest_bytes<'a>(addr: u32, len: u32) -> Option<&'a [u8]> {
    if addr == 0 {
        return None;
    }
    let end = u64::from(addr) + u64::from(len);
    if end > memory_bytes() {
        return None;
    }
    // SAFETY: the range is inside linear memory (checked above), every byte
    // of which is initialized, and the host hands it over for this call.
    Some(unsafe { std::slice::from_raw_parts(addr as usize as *const u8, len as usize) })
}

fn memory_bytes() -> u64 {
    core::arch::wasm32::memory_size::<0>() as u64 * PAGE
}

impl Filter {
    fn new() -> Filter {
        Filter {
            enricher: load_enricher(),
            out: Vec::new(),
        }
    }

    /// Process one record into `self.out` and return the address of the
    /// NUL-terminated result.
    fn run(&mut self, input: Option<&[u8]>, host_time: Option<i64>) -> u32 {
        let empty = EMPTY_OBJECT.as_ptr() as u32;
        let Some(record) = input else {
            return empty;
        };
        // A host that passes our own previous result back in must not have
        // it overwritten while it is read.
        let start = self.out.as_ptr() as usize;
        let rec_start = record.as_ptr() as usize;
        let owned;
        let record = if rec_start < start.saturating_add(self.out.capacity())
            && start < rec_start.saturating_add(record.len())
        {
            owned = record.to_vec();
            owned.as_slice()
        } else {
            record
        };
        self.out.clear();
        if self
            .out
            .try_reserve(record.len().saturating_add(4096))
            .is_err()
        {
            return empty;
        }
        // Annotated or passed through: the core has read the record as one
        // JSON object and written a valid one. Anything else goes back as `{}`.
        let valid = match &mut self.enricher {
            Some(e) => matches!(
                e.process_into(record, host_time, &mut self.out),
                Outcome::Annotated | Outcome::PassedThrough(_)
            ),
            None => {
                self.out.extend_from_slice(record);
                is_json_object(record)
            }
        };
        if !valid {
            self.out.clear();
            return empty;
        }
        self.out.push(0);
        self.out.as_ptr() as u32
    }
}

/// The enricher for the configuration at [`CONFIG_PATH`] (defaults when it
/// does not exist), or `None` after reporting why it cannot be used.
fn load_enricher() -> Option<Enricher> {
    let config = match std::fs::read(CONFIG_PATH) {
        Ok(bytes) => Config::from_json(&bytes).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(e.to_string()),
    };
    let made = config.and_then(|c| Enricher::new(c).map_err(|e| e.to_string()));
    match made {
        Ok(mut e) => {
            e.set_hash_seed(random_seed());
            Some(e)
        }
        Err(why) => {
            let _ = writeln!(
                std::io::stderr(),
                "[credlineage] {CONFIG_PATH}: {why}; records pass through unannotated"
            );
            None
        }
    }
}

/// A seed for the state's hash tables (HashDoS resistance; output never
/// depends on it). A fixed one when the host has no randomness.
fn random_seed() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is valid for writes of its length.
    let errno = unsafe { wasi_random_get(buf.as_mut_ptr(), buf.len()) };
    if errno == 0 {
        u64::from_le_bytes(buf)
    } else {
        0x5eed
    }
}

/// Whether `b` is exactly one JSON object (RFC 8259: UTF-8, whitespace around
/// it allowed), by the core's scanner. Valid JSON never holds a NUL byte, so a
/// `true` here is safe to NUL-terminate.
fn is_json_object(b: &[u8]) -> bool {
    b.trim_ascii_start().starts_with(b"{") && crate::json::validate_bytes(b).is_ok()
}
