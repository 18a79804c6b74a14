//! The scanner's inner loop over string bytes: the run of plain bytes up to a quote, backslash, control or (optionally) non-ASCII byte, found sixteen bytes at a time (SSE2, WASM SIMD128) or a word at a time (SWAR), and the UTF-8 sequence check.

pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
pub(super) const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte that ends a run of plain string bytes: `"`, `\`, a
/// control character below 0x20 and, when `HIGH`, any byte of 0x80 or more
/// (exact for the lowest such byte). `x ^ 0x02` maps `"` to 0x20 and keeps
/// the control bytes below 0x20 (and every other byte at 0x21 or more), so
/// one "less than 0x21" test covers both.
#[inline(always)]
pub(super) fn special_bytes<const HIGH: bool>(x: u64) -> u64 {
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
pub(super) fn string_run(b: &[u8], j: usize) -> usize {
    run::<true>(b, j)
}

#[inline(always)]
pub(super) fn run<const HIGH: bool>(b: &[u8], j: usize) -> usize {
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
pub(super) fn plain_run_simd128<const HIGH: bool>(
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
pub(super) fn plain_run_sse2<const HIGH: bool>(
    b: &[u8],
    mut j: usize,
) -> std::result::Result<usize, usize> {
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
pub(super) fn plain_run_swar<const HIGH: bool>(b: &[u8], mut j: usize) -> usize {
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
pub(super) fn utf8_len(b: &[u8], j: usize) -> Option<usize> {
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
