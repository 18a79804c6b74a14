//! Build script: the link arguments of the Fluent Bit WASM module (feature `fluent-bit` on `wasm32-wasip1`).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let fluent_bit = std::env::var_os("CARGO_FEATURE_FLUENT_BIT").is_some();
    if fluent_bit
        && var("CARGO_CFG_TARGET_ARCH") == "wasm32"
        && var("CARGO_CFG_TARGET_OS") == "wasi"
        && var("CARGO_CFG_TARGET_ENV") == "p1"
    {
        // Export WASI libc's allocator, the one Rust's heap already uses, so
        // that Fluent Bit's runtime (WAMR) copies records in with it instead
        // of its 8 KiB app heap. A Rust `#[no_mangle] fn malloc` cannot do
        // this: it would replace libc's `malloc`, which Rust's allocator calls.
        println!("cargo::rustc-link-arg-cdylib=--export=malloc");
        println!("cargo::rustc-link-arg-cdylib=--export=free");
    }
}
