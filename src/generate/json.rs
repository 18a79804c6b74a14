//! The generator's minimal JSON writer: compact objects, keys in call order, strings escaped.

use super::*;

/// Minimal JSON object writer: compact, keys in call order, strings escaped.
pub(super) struct J {
    pub(super) s: String,
    pub(super) comma: bool,
}

impl J {
    pub(super) fn new() -> J {
        let mut s = String::with_capacity(1600);
        s.push('{');
        J { s, comma: false }
    }

    pub(super) fn key(&mut self, k: &str) {
        if self.comma {
            self.s.push(',');
        }
        self.s.push('"');
        self.s.push_str(k);
        self.s.push_str("\":");
    }

    pub(super) fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        push_json_str(&mut self.s, v);
        self.comma = true;
    }

    pub(super) fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.s.push_str(v);
        self.comma = true;
    }

    pub(super) fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.s, "{v}");
        self.comma = true;
    }

    pub(super) fn bool(&mut self, k: &str, v: bool) {
        self.raw(k, if v { "true" } else { "false" });
    }

    pub(super) fn obj(&mut self, k: &str) {
        self.key(k);
        self.s.push('{');
        self.comma = false;
    }

    pub(super) fn arr(&mut self, k: &str) {
        self.key(k);
        self.s.push('[');
        self.comma = false;
    }

    pub(super) fn item_obj(&mut self) {
        if self.comma {
            self.s.push(',');
        }
        self.s.push('{');
        self.comma = false;
    }

    pub(super) fn end(&mut self) {
        self.s.push('}');
        self.comma = true;
    }

    pub(super) fn end_arr(&mut self) {
        self.s.push(']');
        self.comma = true;
    }

    pub(super) fn finish(mut self) -> String {
        self.s.push('}');
        self.s
    }
}

pub(super) fn push_json_str(out: &mut String, v: &str) {
    out.push('"');
    if v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(v);
    } else {
        for ch in v.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}
