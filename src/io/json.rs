//! A validating, non-recursive JSON scanner over UTF-8 text: one pass that checks RFC 8259 grammar and hands the reader only the members it asks for.
//!
//! Why not `serde_json` here: credlineage reads a dozen fields of a ~1 KB
//! record and must still validate all of it (invalid JSON passes through
//! unchanged). Through serde, every nested struct the rules read was
//! skipped once as raw text and parsed again, and the whole pass cost 2.3x
//! a plain `IgnoredAny` validation (BENCHMARKS.md); `sonic-rs`'s lazy
//! reader, the fast alternative on crates.io, recurses once per nesting
//! level when it validates what it skips (`Parser::skip_one` in 0.5.10),
//! and one log line can nest 100,000 levels deep. This scanner validates
//! in one pass, skips strings sixteen bytes at a time (SSE2 on x86-64, two words elsewhere), keeps no recursion
//! (nesting depth is bounded only by memory, so a 100,000-deep record is
//! read, not refused or overflowing the stack) and allocates nothing unless
//! nesting is deeper than 64 levels.
//!
//! Contract: the text is bytes; the scanner checks everything the grammar
//! requires, UTF-8 included: structure, commas and colons, string escapes,
//! raw control characters in strings, UTF-8 sequences in strings (RFC 3629:
//! no overlong forms, surrogates or code points past U+10FFFF), number
//! syntax, literals, and nothing but whitespace after the value. Outside
//! strings the grammar admits ASCII only, so a text the scanner accepts is
//! UTF-8 throughout: without SIMD (the Fluent Bit module) the reader needs no
//! separate pass over the whole record for it (that pass was 8% of the
//! module's interpreted work), and only the fields it hands out as text are
//! converted (checked) to `&str`; with SIMD one `simdutf8` pass first is
//! cheaper ([`Scanner::checked`] picks).
//! A `\uXXXX` escape is checked for four hex
//! digits only: a lone surrogate is valid JSON grammar, so it is accepted
//! (and a string holding one decodes as absent where credlineage reads it).
//! It never panics and never indexes out of bounds, whatever it is given.

use std::borrow::Cow;
use std::fmt;

mod runs;
#[cfg(test)]
mod tests;

pub(crate) use self::runs::plain_run;
use self::runs::*;

/// Where and why the text is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    /// Byte offset of the offending byte (or the end of the text).
    pub at: usize,
    /// What was expected or found.
    pub what: &'static str,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for ScanError {}

/// Scanner result.
pub type Result<T> = std::result::Result<T, ScanError>;

/// A JSON string just read: the byte span of its text including both quotes,
/// and whether it holds any escape.
#[derive(Debug, Clone, Copy)]
pub struct Str {
    /// Offset of the opening quote.
    pub start: usize,
    /// Offset one past the closing quote.
    pub end: usize,
    /// Whether the string holds a backslash escape.
    pub escaped: bool,
}

/// The containers open while skipping, innermost last (`true` = object):
/// one bit per level in a word for the first 64 levels, a vector beyond.
#[derive(Default)]
struct Open {
    low: u64,
    depth: usize,
    deep: Vec<bool>,
}

impl Open {
    #[inline(always)]
    fn push(&mut self, object: bool) {
        if self.depth < 64 {
            self.low = (self.low & !(1 << self.depth)) | (u64::from(object) << self.depth);
        } else {
            self.deep.push(object);
        }
        self.depth += 1;
    }

    #[inline(always)]
    fn last(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d @ 1..=64 => Some(self.low >> (d - 1) & 1 == 1),
            _ => self.deep.last().copied(),
        }
    }

    #[inline(always)]
    fn pop(&mut self) {
        if self.depth > 64 {
            self.deep.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }
}

/// A cursor over one JSON text.
pub struct Scanner<'a> {
    /// The text when the caller had it as `&str` already (no conversion
    /// needed to hand out slices of it).
    text: Option<&'a str>,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    pub fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text: Some(text),
            b: text.as_bytes(),
            i: 0,
        }
    }

    /// A scanner at the start of `b`, bytes not yet known to be UTF-8: the
    /// scan checks it (see the module docs).
    pub fn from_bytes(b: &'a [u8]) -> Scanner<'a> {
        Scanner {
            text: None,
            b,
            i: 0,
        }
    }

    /// A scanner at the start of `b`, bytes not yet known to be UTF-8,
    /// checked the cheapest way for the target. With SIMD (x86-64, aarch64,
    /// WebAssembly `simd128`): one `simdutf8` pass over the whole text first,
    /// after which the text it hands out needs no conversion (converting
    /// each field read instead cost native 6%). Without (the Fluent Bit
    /// module: WAMR has no SIMD): [`from_bytes`](Self::from_bytes), the scan
    /// checks UTF-8 inside strings and each field read is converted alone,
    /// which skips a whole pass over the record. Same results either way.
    pub fn checked(b: &'a [u8]) -> Result<Scanner<'a>> {
        #[cfg(any(not(target_arch = "wasm32"), target_feature = "simd128"))]
        {
            simdutf8::basic::from_utf8(b)
                .map(Scanner::new)
                .map_err(|_| ScanError {
                    at: std::str::from_utf8(b).err().map_or(0, |e| e.valid_up_to()),
                    what: "invalid UTF-8",
                })
        }
        #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
        {
            Ok(Scanner::from_bytes(b))
        }
    }

    /// The current byte offset.
    #[inline]
    pub fn pos(&self) -> usize {
        self.i
    }

    /// Move the cursor to byte offset `at` (at most the end): where reading
    /// goes on after a damaged value that was passed over.
    #[inline]
    pub fn seek(&mut self, at: usize) {
        self.i = at.min(self.b.len());
    }

    /// The text between two offsets (empty when out of range or not
    /// UTF-8; a string the scanner has read is UTF-8).
    #[inline]
    pub fn slice(&self, from: usize, to: usize) -> &'a str {
        match self.text {
            Some(t) => t.get(from..to).unwrap_or(""),
            None => self
                .b
                .get(from..to)
                .and_then(|s| std::str::from_utf8(s).ok())
                .unwrap_or(""),
        }
    }

    /// The bytes between two offsets (empty when out of range).
    #[inline]
    pub fn bytes(&self, from: usize, to: usize) -> &'a [u8] {
        self.b.get(from..to).unwrap_or_default()
    }

    fn err<T>(&self, what: &'static str) -> Result<T> {
        Err(ScanError { at: self.i, what })
    }

    /// Skip insignificant whitespace; returns the next byte, if any.
    #[inline(always)]
    pub fn ws(&mut self) -> Option<u8> {
        loop {
            let c = *self.b.get(self.i)?;
            if c > b' ' || !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(c);
            }
            self.i += 1;
        }
    }

    /// The next byte after whitespace must be `c`; consume it.
    #[inline(always)]
    fn expect(&mut self, c: u8, what: &'static str) -> Result<()> {
        if self.ws() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(what)
        }
    }

    /// After the top-level value: only whitespace may follow.
    pub fn end(&mut self) -> Result<()> {
        match self.ws() {
            None => Ok(()),
            Some(_) => self.err("trailing characters"),
        }
    }

    /// Read the string whose opening quote is at the cursor.
    #[inline(always)]
    pub fn string(&mut self) -> Result<Str> {
        let start = self.i;
        if self.b.get(start) != Some(&b'"') {
            return self.err("expected a string");
        }
        // The common case: ASCII, no escape, no control byte, before the closing quote.
        let j = string_run(self.b, start + 1);
        if self.b.get(j) == Some(&b'"') {
            self.i = j + 1;
            return Ok(Str {
                start,
                end: j + 1,
                escaped: false,
            });
        }
        self.string_rest(start, j)
    }

    /// The rest of a string from `j`, a byte that is not plain: escapes,
    /// control characters, UTF-8 sequences and the end of the input.
    #[cold]
    #[inline(never)]
    fn string_rest(&mut self, start: usize, mut j: usize) -> Result<Str> {
        let mut escaped = false;
        loop {
            let Some(&c) = self.b.get(j) else {
                self.i = j;
                return self.err("unterminated string");
            };
            match c {
                b'"' => {
                    self.i = j + 1;
                    return Ok(Str {
                        start,
                        end: j + 1,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    match self.b.get(j + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                        Some(b'u') => {
                            let hex = self.b.get(j + 2..j + 6);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                self.i = j;
                                return self.err("invalid \\u escape");
                            }
                            j += 6;
                        }
                        _ => {
                            self.i = j;
                            return self.err("invalid escape");
                        }
                    }
                }
                0..=0x1f => {
                    self.i = j;
                    return self.err("control character in string");
                }
                0x80.. => match utf8_len(self.b, j) {
                    Some(n) => j += n,
                    None => {
                        self.i = j;
                        return self.err("invalid UTF-8 in string");
                    }
                },
                _ => j += 1,
            }
            j = string_run(self.b, j);
        }
    }

    /// The decoded text of a string just read: borrowed when it has no
    /// escape, `None` when an escape does not decode (a lone surrogate).
    #[inline]
    pub fn decode(&self, s: Str) -> Option<Cow<'a, str>> {
        if !s.escaped {
            return Some(Cow::Borrowed(self.slice(s.start + 1, s.end - 1)));
        }
        self.decode_escaped(s)
    }

    /// The bytes of a key just read, to dispatch on: borrowed when it has no
    /// escape, decoded when it has one, `None` when an escape does not decode.
    #[inline]
    pub fn key_bytes(&self, s: Str) -> Option<Cow<'a, [u8]>> {
        if !s.escaped {
            return Some(Cow::Borrowed(
                self.b
                    .get(s.start + 1..s.end.saturating_sub(1))
                    .unwrap_or_default(),
            ));
        }
        self.decode_escaped(s).map(|d| match d {
            Cow::Borrowed(t) => Cow::Borrowed(t.as_bytes()),
            Cow::Owned(t) => Cow::Owned(t.into_bytes()),
        })
    }

    #[cold]
    fn decode_escaped(&self, s: Str) -> Option<Cow<'a, str>> {
        serde_json::from_str::<String>(self.slice(s.start, s.end))
            .ok()
            .map(Cow::Owned)
    }

    fn digits(&mut self) -> usize {
        let from = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - from
    }

    /// Read a number (RFC 8259 syntax) at the cursor.
    fn number(&mut self) -> Result<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("invalid number"),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return self.err("invalid number");
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return self.err("invalid number");
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.err("invalid literal")
        }
    }

    /// Read one object key and its colon; leaves the cursor on the value.
    #[inline(always)]
    fn key_colon(&mut self) -> Result<Str> {
        if self.ws() != Some(b'"') {
            return self.err("expected a key");
        }
        let k = self.string()?;
        self.expect(b':', "expected ':'")?;
        self.ws();
        Ok(k)
    }

    /// Validate and step over the value at the cursor (after whitespace), of
    /// any depth, without recursion.
    #[inline]
    pub fn skip_value(&mut self) -> Result<()> {
        // Most skipped values are strings: no container bookkeeping for them.
        if self.ws() == Some(b'"') {
            return self.string().map(|_| ());
        }
        self.skip_any()
    }

    fn skip_any(&mut self) -> Result<()> {
        let mut open = Open::default();
        loop {
            // A value starts here.
            match self.ws() {
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'{') => {
                    self.i += 1;
                    if self.ws() == Some(b'}') {
                        self.i += 1;
                    } else {
                        open.push(true);
                        self.key_colon()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    if self.ws() == Some(b']') {
                        self.i += 1;
                    } else {
                        open.push(false);
                        continue;
                    }
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(_) => return self.err("expected a value"),
                None => return self.err("unexpected end of input"),
            }
            // After a value: close what ends here, or go on to the next item.
            loop {
                let Some(in_object) = open.last() else {
                    return Ok(());
                };
                match self.ws() {
                    Some(b',') => {
                        self.i += 1;
                        if in_object {
                            self.key_colon()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {
                        self.i += 1;
                        open.pop();
                    }
                    Some(b']') if !in_object => {
                        self.i += 1;
                        open.pop();
                    }
                    Some(_) if in_object => return self.err("expected ',' or '}'"),
                    Some(_) => return self.err("expected ',' or ']'"),
                    None => return self.err("unexpected end of input"),
                }
            }
        }
    }

    /// The next byte after whitespace, without consuming it.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.ws()
    }

    /// Read the object at the cursor (which must be at `{`), calling
    /// `member(scanner, key)` with the cursor on each member's value.
    /// `member` either reads the value and returns `true`, or returns `false`
    /// and the value is skipped.
    pub fn object(
        &mut self,
        mut member: impl FnMut(&mut Scanner<'a>, Str) -> Result<bool>,
    ) -> Result<()> {
        self.expect(b'{', "expected '{'")?;
        if self.ws() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let k = self.key_colon()?;
            if !member(self, k)? {
                // Most skipped members are strings: scanned here, no call.
                if self.b.get(self.i) == Some(&b'"') {
                    self.string()?;
                } else {
                    self.skip_value()?;
                }
            }
            match self.ws() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(_) => return self.err("expected ',' or '}'"),
                None => return self.err("unexpected end of input"),
            }
        }
    }

    /// Read the array at the cursor (which must be at `[`), calling
    /// `item(scanner)` with the cursor on each item; as for [`object`](Self::object).
    pub fn array(&mut self, mut item: impl FnMut(&mut Scanner<'a>) -> Result<bool>) -> Result<()> {
        self.expect(b'[', "expected '['")?;
        if self.ws() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if !item(self)? {
                self.skip_value()?;
            }
            match self.ws() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(_) => return self.err("expected ',' or ']'"),
                None => return self.err("unexpected end of input"),
            }
        }
    }

    /// Whether the key `k` just read is exactly `name` (escaped keys are decoded first).
    #[inline]
    pub fn key_is(&self, k: Str, name: &str) -> bool {
        if k.escaped {
            self.decode(k).is_some_and(|d| d == name)
        } else {
            self.bytes(k.start + 1, k.end - 1) == name.as_bytes()
        }
    }
}

/// Whether `c` is JSON whitespace (RFC 8259: space, tab, line feed,
/// carriage return).
#[inline(always)]
pub(crate) fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// The first offset from `i` in `b` that is not JSON whitespace (`b.len()`
/// at the end).
#[inline]
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| is_ws(c)) {
        i += 1;
    }
    i
}

/// Whether `text` is one complete JSON value (RFC 8259; `text` is UTF-8 by type).
pub fn validate(text: &str) -> Result<()> {
    let mut s = Scanner::new(text);
    s.skip_value()?;
    s.end()
}

/// Whether `b` is one complete JSON value (RFC 8259), UTF-8 included.
pub fn validate_bytes(b: &[u8]) -> Result<()> {
    let mut s = Scanner::from_bytes(b);
    s.skip_value()?;
    s.end()
}
