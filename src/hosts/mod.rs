//! Host bindings, each small and behind its own feature: the Fluent Bit `filter_wasm` ABI (the crate's only hand-written `unsafe`), the WIT component, and the wasm-bindgen JavaScript class.

#[cfg(feature = "component")]
mod component;
#[cfg(all(feature = "fluent-bit", target_arch = "wasm32"))]
pub mod fluent_bit;
#[cfg(feature = "js")]
pub mod js;
