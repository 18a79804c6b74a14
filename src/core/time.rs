//! Parsing of the time spellings found in real CloudTrail (event times, session creation dates, credential expirations).

use chrono::{DateTime, NaiveDateTime, Utc};

/// Unix seconds.
pub type Secs = i64;

/// Parse an ISO-8601 instant: extended (`2024-11-30T08:43:17Z`, with optional
/// fraction or offset) or basic (`20131102T010628Z`) form, or CloudTrail
/// Lake's `2024-08-01 12:00:05.000` (a space for the `T`, UTC, fraction
/// optional). Fractions are truncated to the second. Returns `None` for
/// anything else: an unreadable time is never taken as 0.
pub fn parse_iso(s: &str) -> Option<Secs> {
    // The common shapes first, untrimmed: `…Z` and Lake's form have nothing to trim.
    if let Some(t) = fast_iso(s.as_bytes()) {
        return Some(t);
    }
    let s = s.trim();
    if s.len() < 15 || s.len() > 64 {
        return None;
    }
    if let Some(t) = fast_iso(s.as_bytes()) {
        return Some(t);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S",
        "%Y%m%dT%H%M%SZ",
        "%Y%m%dT%H%M%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc().timestamp());
        }
    }
    None
}

/// `YYYY-MM-DD?HH:MM:SS[.f][Z]` with `T` or a space for `?` (UTC; one to
/// nine fraction digits, truncated), parsed without allocation: the
/// CloudTrail shape and CloudTrail Lake's.
fn fast_iso(b: &[u8]) -> Option<Secs> {
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let mut rest = &b[19..];
    if let Some(f) = rest.strip_prefix(b".") {
        let n = f.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        rest = &f[n..];
    }
    if !matches!(rest, b"" | b"Z") {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d, h, mi, s) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if h > 23 || mi > 59 || s > 59 || d == 0 || d > days_in_month(y, mo)? {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

/// Days in month `m` (1-12) of proleptic Gregorian year `y`; `None` for no such month.
fn days_in_month(y: u32, m: u32) -> Option<u32> {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    Some(match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    })
}

/// Days from 1970-01-01 to a valid proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`), for years 0-9999.
fn days_from_civil(y: u32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse a credential expiration or key creation date: the console-style
/// spellings `Sep 14, 2020, 7:01:26 AM` and `Nov 29, 2018 4:31:59 AM`, or ISO-8601.
pub fn parse_expiration(s: &str) -> Option<Secs> {
    let s = s.trim();
    if s.len() > 64 {
        return None;
    }
    if let Some(t) = parse_iso(s) {
        return Some(t);
    }
    for fmt in ["%b %d, %Y, %I:%M:%S %p", "%b %d, %Y %I:%M:%S %p"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc().timestamp());
        }
    }
    None
}

/// Format unix seconds as `YYYY-MM-DDTHH:MM:SSZ`. Instants outside years
/// 0-9999 are clamped to the nearest end of that range (never shown as 1970).
pub fn format_iso(t: Secs) -> String {
    use chrono::{Datelike, Timelike};
    // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    const MIN: Secs = -62_167_219_200;
    const MAX: Secs = 253_402_300_799;
    match DateTime::<Utc>::from_timestamp(t.clamp(MIN, MAX), 0) {
        Some(dt) if (0..=9999).contains(&dt.year()) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        ),
        _ => "9999-12-31T23:59:59Z".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_forms() {
        assert_eq!(parse_iso("2024-11-30T08:43:17Z"), Some(1732956197));
        assert_eq!(parse_iso(" 2024-11-30T08:43:17Z\n"), Some(1732956197));
        assert_eq!(parse_iso("2024-11-30T08:43:17.123Z"), Some(1732956197));
        assert_eq!(parse_iso("2024-11-30T08:43:17+00:00"), Some(1732956197));
        assert_eq!(parse_iso("20131102T010628Z"), Some(1383354388));
        assert_eq!(parse_iso("2024-02-30T08:43:17Z"), None);
        assert_eq!(parse_iso("2024-11-30T08:43:17"), Some(1732956197));
        assert_eq!(parse_iso("2024-11-30 08:43:17Z"), Some(1732956197));
        assert_eq!(
            parse_iso("2024-11-30T08:43:17.1234567891Z"),
            Some(1732956197)
        );
        assert_eq!(parse_iso("2024-11-30T08:43:17.Z"), None);
        assert_eq!(parse_iso("2024-11-30T08:43:17Zjunk"), None);
        assert_eq!(parse_iso("not a time"), None);
        assert_eq!(parse_iso(""), None);
    }

    /// CloudTrail Lake writes `2024-08-01 12:00:05.000` (UTC); it was read as nothing (and then as 1970).
    #[test]
    fn lake_forms() {
        let want = parse_iso("2024-08-01T12:00:05Z");
        assert_eq!(want, Some(1722513605));
        for s in [
            "2024-08-01 12:00:05.000",
            "2024-08-01 12:00:05",
            "2024-08-01 12:00:05.5",
            "2024-08-01 12:00:05.123456789",
            " 2024-08-01 12:00:05.000 ",
            "2024-08-01 12:00:05.000Z",
        ] {
            assert_eq!(parse_iso(s), want, "{s:?}");
            assert_eq!(parse_expiration(s), want, "{s:?}");
        }
        for s in [
            "2024-08-01 12:00:05.",
            "2024-08-01 24:00:05.000",
            "2024-02-30 12:00:05.000",
            "2024-08-01 12:00:05.000 UTC",
        ] {
            assert_eq!(parse_iso(s), None, "{s:?}");
        }
    }

    #[test]
    fn expiration_forms() {
        assert_eq!(
            parse_expiration("Nov 30, 2024, 8:43:17 PM"),
            parse_iso("2024-11-30T20:43:17Z")
        );
        assert_eq!(
            parse_expiration("Sep 14, 2020, 7:01:26 AM"),
            parse_iso("2020-09-14T07:01:26Z")
        );
        assert_eq!(
            parse_expiration("Nov 29, 2018 4:31:59 AM"),
            parse_iso("2018-11-29T04:31:59Z")
        );
        assert_eq!(
            parse_expiration("Jul 30, 2024 12:53:13 PM"),
            parse_iso("2024-07-30T12:53:13Z")
        );
        assert_eq!(
            parse_expiration("Jul 30, 2024 12:53:13 AM"),
            parse_iso("2024-07-30T00:53:13Z")
        );
        assert_eq!(parse_expiration("2024-11-30T20:43:17Z"), Some(1732999397));
        assert_eq!(parse_expiration("Foo 99, 2024"), None);
    }

    /// The allocation-free fast path agrees with chrono on every day of
    /// the leap-year edge cases and on out-of-range fields.
    #[test]
    fn fast_path_matches_chrono() {
        for y in [
            0, 1, 4, 100, 400, 1900, 1969, 1970, 2000, 2023, 2024, 2100, 9999,
        ] {
            for mo in 0..=13 {
                for d in 0..=32 {
                    for (h, mi, sec) in
                        [(0, 0, 0), (23, 59, 59), (24, 0, 0), (0, 60, 0), (0, 0, 60)]
                    {
                        let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}Z");
                        let want = NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%SZ")
                            .ok()
                            .filter(|_| sec < 60)
                            .map(|n| n.and_utc().timestamp());
                        assert_eq!(fast_iso(text.as_bytes()), want, "{text}");
                        // Lake's form: a space, an optional fraction, no zone.
                        for frac in ["", ".0", ".000", ".999999999"] {
                            let lake =
                                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{sec:02}{frac}");
                            let want = NaiveDateTime::parse_from_str(&lake, "%Y-%m-%d %H:%M:%S%.f")
                                .ok()
                                .filter(|_| sec < 60)
                                .map(|n| n.and_utc().timestamp());
                            assert_eq!(fast_iso(lake.as_bytes()), want, "{lake}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_iso(1732999397), "2024-11-30T20:43:17Z");
        assert_eq!(format_iso(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(format_iso(i64::MIN), "0000-01-01T00:00:00Z");
        assert_eq!(format_iso(253_402_300_799), "9999-12-31T23:59:59Z");
    }
}
