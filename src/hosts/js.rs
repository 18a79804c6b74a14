//! The wasm-bindgen JavaScript class `Enricher` for Node and the browser; it only moves bytes between JS and [`crate::Enricher`].
//!
//! Build for `wasm32-unknown-unknown` with `--features js`, then run
//! `wasm-bindgen` (`scripts/build-js.sh` does both and writes an npm package
//! to `dist/js`). The API, in JavaScript terms:
//!
//! ```text
//! new Enricher(configJson?: string)                  // throws on a bad config
//! process(record: Uint8Array): Uint8Array            // never throws
//! processAt(record: Uint8Array, hostTimeSecs: number): Uint8Array
//! processString(record: string): string              // never throws
//! processStringAt(record: string, hostTimeSecs: number): string
//! snapshot(): Uint8Array
//! restore(bytes: Uint8Array): void                   // throws if refused
//! stats(): string                                    // JSON object
//! free(): void                                       // from wasm-bindgen
//! ```

use crate::Config;
use wasm_bindgen::prelude::*;

/// One stream's CloudTrail enrichment state: records in, the same records
/// with a `credlineage` annotation out, in arrival order.
#[wasm_bindgen]
pub struct Enricher(crate::Enricher);

/// A JS number of seconds as the core's host time: truncated toward zero
/// (saturating); NaN and infinities mean "no host time".
fn host_time(secs: f64) -> Option<i64> {
    secs.is_finite().then_some(secs as i64)
}

/// Output bytes as a JS string. The output of a UTF-8 record is UTF-8; the
/// lossy path only guards against ever panicking.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[wasm_bindgen]
impl Enricher {
    /// A new enricher with empty state. `configJson` is the JSON
    /// configuration; omitted, `undefined`, `null`, `""` or `"{}"` mean the
    /// defaults. Throws an `Error` naming the bad field otherwise.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = configJson)] config_json: Option<String>,
    ) -> Result<Enricher, JsError> {
        let cfg = match config_json.as_deref().map(str::trim) {
            None | Some("") => Config::default(),
            Some(json) => Config::from_json(json.as_bytes())?,
        };
        Ok(Enricher(crate::Enricher::new(cfg)?))
    }

    /// Enrich one record (UTF-8 JSON bytes): always exactly one record back.
    /// Unreadable and non-CloudTrail records come back unchanged.
    pub fn process(&mut self, record: &[u8]) -> Vec<u8> {
        self.0.process(record, None)
    }

    /// Like `process`, with the host's time for the record (unix seconds;
    /// fractions are dropped, NaN means none), used when the record has no
    /// `eventTime` or `@timestamp`.
    #[wasm_bindgen(js_name = processAt)]
    pub fn process_at(
        &mut self,
        record: &[u8],
        #[wasm_bindgen(js_name = hostTimeSecs)] host_time_secs: f64,
    ) -> Vec<u8> {
        self.0.process(record, host_time(host_time_secs))
    }

    /// `process` for a record held as a string.
    #[wasm_bindgen(js_name = processString)]
    pub fn process_string(&mut self, record: &str) -> String {
        text(self.0.process(record.as_bytes(), None))
    }

    /// `processAt` for a record held as a string.
    #[wasm_bindgen(js_name = processStringAt)]
    pub fn process_string_at(
        &mut self,
        record: &str,
        #[wasm_bindgen(js_name = hostTimeSecs)] host_time_secs: f64,
    ) -> String {
        text(self.0.process(record.as_bytes(), host_time(host_time_secs)))
    }

    /// The whole state (versioned, checksummed, no secrets); the same format
    /// as every other surface's snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        self.0.snapshot()
    }

    /// Replace the state with a snapshot. Throws if it is corrupt, foreign
    /// or from a differently-configured enricher; the state is then unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        Ok(self.0.restore(bytes)?)
    }

    /// Counters so far, as a JSON object with snake_case keys.
    pub fn stats(&self) -> String {
        serde_json::to_string(&self.0.stats()).unwrap_or_default()
    }
}
