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

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte that ends a run of plain string bytes: `"`, `\`, a
/// control character below 0x20 and, when `HIGH`, any byte of 0x80 or more
/// (exact for the lowest such byte). `x ^ 0x02` maps `"` to 0x20 and keeps
/// the control bytes below 0x20 (and every other byte at 0x21 or more), so
/// one "less than 0x21" test covers both.
#[inline(always)]
fn special_bytes<const HIGH: bool>(x: u64) -> u64 {
    let y = x ^ (ONES * 0x02);
    let z = x ^ (ONES * u64::from(b'\\'));
    let m = (y.wrapping_sub(ONES * 0x21) & !y) | (z.wrapping_sub(ONES) & !z);
    if HIGH { (m | x) & HIGHS } else { m & HIGHS }
}

/// The offset of the first `"`, `\` or control byte at or after `j` in `b`
/// (or `b.len()`): the end of a run of bytes that stand for themselves
/// inside a JSON string. Sixteen bytes at a time with SSE2 on x86-64 (through
/// `safe_arch`'s safe wrappers: no `unsafe` here), eight at a time (SWAR)
/// elsewhere and for the last bytes of the text.
#[inline(always)]
pub(crate) fn plain_run(b: &[u8], j: usize) -> usize {
    run::<false>(b, j)
}

/// [`plain_run`] that also stops at any byte of 0x80 or more (the scanner
/// checks each UTF-8 sequence where one starts; ASCII needs no check).
#[inline(always)]
fn string_run(b: &[u8], j: usize) -> usize {
    run::<true>(b, j)
}

#[inline(always)]
fn run<const HIGH: bool>(b: &[u8], j: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let j = match plain_run_sse2::<HIGH>(b, j) {
        Ok(found) => return found,
        Err(left) => left,
    };
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let j = match plain_run_simd128::<HIGH>(b, j) {
        Ok(found) => return found,
        Err(left) => left,
    };
    plain_run_swar::<HIGH>(b, j)
}

/// [`plain_run`] over whole 16-byte blocks with WebAssembly `simd128` (the
/// WIT component is built with it; `.cargo/config.toml`): `Ok` at the first
/// special byte, `Err` where fewer than 16 bytes are left. The intrinsics are
/// safe functions; the block is built from a checked array, not a pointer.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn plain_run_simd128<const HIGH: bool>(
    b: &[u8],
    mut j: usize,
) -> std::result::Result<usize, usize> {
    use core::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, u64x2, v128_or};
    let quote = u8x16_splat(b'"');
    let backslash = u8x16_splat(b'\\');
    let space = u8x16_splat(0x20);
    while let Some(block) = b.get(j..j + 16) {
        let (Some(lo), Some(hi)) = (
            block.get(..8).and_then(|h| <[u8; 8]>::try_from(h).ok()),
            block.get(8..).and_then(|h| <[u8; 8]>::try_from(h).ok()),
        ) else {
            break;
        };
        let x = u64x2(u64::from_le_bytes(lo), u64::from_le_bytes(hi));
        // Special: `"`, `\` or below 0x20 (unsigned).
        let special = v128_or(
            v128_or(u8x16_eq(x, quote), u8x16_eq(x, backslash)),
            u8x16_lt(x, space),
        );
        let mut bits = u8x16_bitmask(special);
        if HIGH {
            bits |= u8x16_bitmask(x);
        }
        if bits != 0 {
            return Ok(j + bits.trailing_zeros() as usize);
        }
        j += 16;
    }
    Err(j)
}

/// [`plain_run`] over whole 16-byte blocks: `Ok` at the first special byte,
/// `Err` where fewer than 16 bytes are left (the caller finishes from there).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn plain_run_sse2<const HIGH: bool>(b: &[u8], mut j: usize) -> std::result::Result<usize, usize> {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let quote = set_splat_i8_m128i(b'"' as i8);
    let backslash = set_splat_i8_m128i(b'\\' as i8);
    let below_space = set_splat_i8_m128i(0x1f);
    while let Some(block) = b.get(j..j + 16) {
        let Ok(block) = <&[u8; 16]>::try_from(block) else {
            break;
        };
        let x = load_unaligned_m128i(block);
        // A byte is special when it equals `"` or `\`, or is at most 0x1f
        // (unsigned: min(x, 0x1f) == x).
        let special = bitor_m128i(
            bitor_m128i(
                cmp_eq_mask_i8_m128i(x, quote),
                cmp_eq_mask_i8_m128i(x, backslash),
            ),
            cmp_eq_mask_i8_m128i(min_u8_m128i(x, below_space), x),
        );
        let mut bits = move_mask_i8_m128i(special) as u32;
        if HIGH {
            bits |= move_mask_i8_m128i(x) as u32;
        }
        if bits != 0 {
            return Ok(j + bits.trailing_zeros() as usize);
        }
        j += 16;
    }
    Err(j)
}

/// [`plain_run`] eight bytes at a time in a `u64`, then byte by byte.
#[inline(always)]
fn plain_run_swar<const HIGH: bool>(b: &[u8], mut j: usize) -> usize {
    // Sixteen bytes (two words) per step: half the loop overhead, which an
    // interpreter pays per instruction (Fluent Bit's WAMR runs this path).
    while let Some(block) = b.get(j..j + 16) {
        let Ok(arr) = <[u8; 16]>::try_from(block) else {
            break;
        };
        let x = u128::from_le_bytes(arr);
        let lo = special_bytes::<HIGH>(x as u64);
        let hi = special_bytes::<HIGH>((x >> 64) as u64);
        if lo | hi != 0 {
            return j + if lo != 0 {
                (lo.trailing_zeros() / 8) as usize
            } else {
                8 + (hi.trailing_zeros() / 8) as usize
            };
        }
        j += 16;
    }
    if let Some(chunk) = b.get(j..j + 8) {
        if let Ok(arr) = <[u8; 8]>::try_from(chunk) {
            let m = special_bytes::<HIGH>(u64::from_le_bytes(arr));
            if m != 0 {
                return j + (m.trailing_zeros() / 8) as usize;
            }
            j += 8;
        }
    }
    while let Some(&c) = b.get(j) {
        if c == b'"' || c == b'\\' || c < 0x20 || (HIGH && c >= 0x80) {
            break;
        }
        j += 1;
    }
    j
}

/// The length of the UTF-8 sequence that starts at `b[j]` (a byte of 0x80
/// or more), or `None` when it is not a well-formed one (RFC 3629, the
/// table `core::str::from_utf8` follows: no overlong forms, no surrogates,
/// nothing past U+10FFFF, no sequence cut short).
#[inline]
fn utf8_len(b: &[u8], j: usize) -> Option<usize> {
    let cont = |k: usize, lo: u8, hi: u8| b.get(j + k).is_some_and(|&c| lo <= c && c <= hi);
    let (n, lo, hi) = match *b.get(j)? {
        0xc2..=0xdf => (2, 0x80, 0xbf),
        0xe0 => (3, 0xa0, 0xbf),
        0xe1..=0xec | 0xee..=0xef => (3, 0x80, 0xbf),
        0xed => (3, 0x80, 0x9f),
        0xf0 => (4, 0x90, 0xbf),
        0xf1..=0xf3 => (4, 0x80, 0xbf),
        0xf4 => (4, 0x80, 0x8f),
        _ => return None,
    };
    (cont(1, lo, hi) && (2..n).all(|k| cont(k, 0x80, 0xbf))).then_some(n)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The block paths (SSE2 on x86-64, SWAR) find the same byte as a plain
    /// byte-by-byte search, from every start offset, on texts where every
    /// byte value (special, plain ASCII, non-ASCII) turns up at every
    /// position of a block.
    #[test]
    fn plain_run_matches_bytewise() {
        let reference = |b: &[u8], j: usize| {
            (j..b.len())
                .find(|&i| b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20)
                .unwrap_or(b.len())
        };
        let reference_high = |b: &[u8], j: usize| {
            (j..b.len())
                .find(|&i| b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20 || b[i] >= 0x80)
                .unwrap_or(b.len())
        };
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..3000 {
            let len = rng.usize(0..80);
            let b: Vec<u8> = (0..len)
                .map(|_| match rng.u8(0..10) {
                    0 => *rng.choice(&[b'"', b'\\', 0, 0x1f, b'\n']).unwrap(),
                    1 => rng.u8(0x80..=0xff),
                    2 => rng.u8(..),
                    _ => rng.u8(0x20..0x7f),
                })
                .collect();
            for j in 0..=len {
                assert_eq!(
                    plain_run(&b, j),
                    reference(&b, j),
                    "round {round} at {j}: {b:?}"
                );
                assert_eq!(
                    plain_run_swar::<false>(&b, j),
                    reference(&b, j),
                    "round {round} at {j}"
                );
                assert_eq!(
                    string_run(&b, j),
                    reference_high(&b, j),
                    "round {round} at {j}: {b:?}"
                );
                assert_eq!(
                    plain_run_swar::<true>(&b, j),
                    reference_high(&b, j),
                    "round {round} at {j}"
                );
            }
        }
        // Every byte value at every position of a 16-byte block, alone in plain text.
        for pos in 0..40 {
            for v in 0..=255u8 {
                let mut b = vec![b'a'; 40];
                b[pos] = v;
                assert_eq!(plain_run(&b, 0), reference(&b, 0), "byte {v:#x} at {pos}");
                assert_eq!(
                    string_run(&b, 0),
                    reference_high(&b, 0),
                    "byte {v:#x} at {pos}"
                );
            }
        }
    }

    fn ok(t: &str) -> bool {
        validate(t).is_ok()
    }

    #[test]
    fn agrees_with_serde_json_on_small_cases() {
        let cases = [
            "0",
            "-0",
            "01",
            "1.",
            "1.5e",
            "1.5e+3",
            "-",
            "1e400",
            "[1,]",
            "[,1]",
            "[]",
            "{}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:1}",
            "{\"a\":1}x",
            " {\"a\" : [ true , false , null ] } ",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "\"\\ud800\"",
            "\"\\x\"",
            "\"a\tb\"",
            "\"a\\tb\"",
            "tru",
            "nul",
            "nulll",
            "[1 2]",
            "\"abcdefghijklmnopq\\\"rstuvwxyz\"",
            "\"abcdefghijklmnopqrstuvwxyz",
            "",
            "   ",
            "[[[[]]]]",
            "[[[[]]]",
            "{\"a\":{\"b\":{}}}",
            "{\"a\":{\"b\":{}}",
            "\u{7f}",
            "\"\u{1f}\"",
            "\"é日本\"",
        ];
        for c in cases {
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(c).is_ok();
            assert_eq!(ok(c), serde, "{c:?}");
        }
    }

    /// Bytes: the scanner's own UTF-8 check agrees with `core::str::from_utf8`
    /// plus a JSON validation, on strings of random bytes (every lead byte,
    /// cut-short, overlong and surrogate sequences turn up) and around them.
    #[test]
    fn bytes_agree_with_from_utf8_then_json() {
        let mut rng = fastrand::Rng::with_seed(11);
        let pieces: [&[u8]; 12] = [
            b"a",
            b"\\n",
            "é".as_bytes(),
            "日本".as_bytes(),
            "😀".as_bytes(),
            b"\xc0\x80",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xe0\x80\xaf",
            b"\xf0\x8f\xbf\xbf",
            b" ",
            b"\"",
        ];
        for round in 0..20_000 {
            let mut b = b"{\"k\":[\"".to_vec();
            for _ in 0..rng.usize(0..12) {
                match rng.u8(0..4) {
                    0 => b.push(rng.u8(..)),
                    1 => b.push(rng.u8(0x80..)),
                    _ => b.extend_from_slice(pieces[rng.usize(0..pieces.len())]),
                }
            }
            b.extend_from_slice(if round % 7 == 0 { b"\"]}\xc3" } else { b"\"]}" });
            let reference = std::str::from_utf8(&b)
                .is_ok_and(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok());
            assert_eq!(validate_bytes(&b).is_ok(), reference, "{b:?}");
            if let Ok(t) = std::str::from_utf8(&b) {
                assert_eq!(validate(t).is_ok(), reference, "{b:?}");
            }
        }
        // Every 1-4 byte sequence the checker can be given as a string, against core.
        for c0 in 0x80..=0xffu8 {
            for c1 in 0x70..=0xc8u8 {
                for tail in [
                    &b""[..],
                    b"\x80",
                    b"\xbf\x80",
                    b"\xbf",
                    b"a",
                    b"\x80\x80\x80",
                ] {
                    let mut s = vec![c0, c1];
                    s.extend_from_slice(tail);
                    let mut b = b"\"".to_vec();
                    b.extend_from_slice(&s);
                    b.push(b'"');
                    let ok = std::str::from_utf8(&s).is_ok() && !s.contains(&b'"');
                    assert_eq!(validate_bytes(&b).is_ok(), ok, "{s:x?}");
                }
            }
        }
    }

    #[test]
    fn deep_nesting_is_read_without_recursion() {
        let d = 200_000;
        let t = format!("{}null{}", "[{\"a\":".repeat(d), "}]".repeat(d));
        assert!(ok(&t));
        assert!(!ok(&t[..t.len() - 1]));
    }

    #[test]
    fn strings_decode_borrowed_or_owned() {
        let mut s = Scanner::new(r#""plain" "a\u0041" "\ud800""#);
        let a = s.string().unwrap();
        assert!(matches!(s.decode(a), Some(Cow::Borrowed("plain"))));
        s.ws();
        let b = s.string().unwrap();
        assert_eq!(s.decode(b).as_deref(), Some("aA"));
        s.ws();
        let c = s.string().unwrap();
        assert_eq!(s.decode(c), None);
    }

    #[test]
    fn error_positions() {
        let e = validate("{\"a\":tru}").unwrap_err();
        assert_eq!(e.to_string(), "invalid literal at byte 5");
    }
}
