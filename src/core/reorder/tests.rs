//! Unit tests of the reorder window: the watermark, ties, late and untimed records, caps, the wall clock, far-future records, and a random property test.

use super::*;

fn lim(window: i64) -> Limits {
    Limits {
        window_secs: window,
        max_records: usize::MAX,
        max_bytes: usize::MAX,
        max_hold_ms: None,
    }
}

/// Push every `(time, rank, name)`, draining what falls due after each;
/// then flush. Returns the names with why each came out.
fn run<'a>(
    w: &mut Reorder<&'a str>,
    recs: &[(Option<i64>, u8, &'a str)],
) -> Vec<(&'a str, String)> {
    let mut out = Vec::new();
    for &(t, r, n) in recs {
        if let Pushed::Now(x, d) = w.push((t, r), n, 10, None) {
            out.push((x, format!("{d:?}")));
        }
        while let Some((x, why)) = w.pop_due(None) {
            out.push((x, format!("{why:?}")));
        }
    }
    while let Some((x, why)) = w.pop_flush() {
        out.push((x, format!("{why:?}")));
    }
    out
}

fn names<'a>(v: &[(&'a str, String)]) -> Vec<&'a str> {
    v.iter().map(|x| x.0).collect()
}

#[test]
fn watermark_releases_in_time_order_once_past_the_window() {
    let mut w = Reorder::new(lim(10));
    let out = run(
        &mut w,
        &[
            (Some(100), 1, "a100"),
            (Some(95), 1, "b95"),
            (Some(105), 1, "c105"),
            (Some(110), 1, "d110"),
            // 110 - 10 = 100: 95 is due; 111 - 10 = 101: 100 is due.
            (Some(111), 1, "e111"),
        ],
    );
    assert_eq!(
        out,
        vec![
            ("b95", "Watermark".to_string()),
            ("a100", "Watermark".to_string()),
            ("c105", "Flush".to_string()),
            ("d110", "Flush".to_string()),
            ("e111", "Flush".to_string()),
        ]
    );
    let s = w.stats();
    assert_eq!((s.held, s.by_watermark, s.by_flush, s.late), (5, 2, 3, 0));
    assert_eq!(s.peak_records, 4);
}

#[test]
fn one_far_future_record_does_not_release_the_window() {
    let day = crate::engine::MAX_CLOCK_JUMP;
    let mut w = Reorder::new(lim(600));
    let out = run(
        &mut w,
        &[
            (Some(1000), 1, "a"),
            (Some(1000 + 10 * day), 1, "forged"),
            (Some(900), 1, "b"),
            (Some(1100), 1, "c"),
        ],
    );
    // The forged record alone moves nothing: b still sorts into place.
    assert_eq!(names(&out), vec!["b", "a", "c", "forged"]);
    assert_eq!(w.stats().late, 0);
    // Two in a row that far ahead: the trail really moved on.
    let mut w = Reorder::new(lim(600));
    let out = run(
        &mut w,
        &[
            (Some(1000), 1, "a"),
            (Some(1000 + 10 * day), 1, "x"),
            (Some(1000 + 10 * day + 1), 1, "y"),
            (Some(900), 1, "late"),
        ],
    );
    assert_eq!(names(&out), vec!["a", "late", "x", "y"]);
    assert_eq!((w.stats().by_watermark, w.stats().late), (1, 1));
}

#[test]
fn exactly_the_window_behind_is_still_in_place() {
    // The strict rule: a record exactly `window` behind the newest is
    // held, so a record arriving that far behind is never late.
    let mut w = Reorder::new(lim(10));
    let out = run(
        &mut w,
        &[
            (Some(100), 1, "x100"),
            (Some(110), 1, "y110"),
            (Some(100), 1, "z100"),
        ],
    );
    assert_eq!(names(&out), vec!["x100", "z100", "y110"]);
    assert_eq!(w.stats().late, 0);
}

#[test]
fn ties_sort_issuances_first_then_arrival() {
    let mut w = Reorder::new(lim(0));
    let out = run(
        &mut w,
        &[
            (Some(50), 1, "call1"),
            (Some(50), 1, "call2"),
            (Some(50), 0, "issue"),
            (Some(50), 1, "call3"),
        ],
    );
    assert_eq!(names(&out), vec!["issue", "call1", "call2", "call3"]);
}

#[test]
fn late_records_come_back_at_once_and_are_counted() {
    let mut w = Reorder::new(lim(5));
    let out = run(
        &mut w,
        &[
            (Some(10), 1, "a10"),
            (Some(20), 1, "b20"), // releases a10
            (Some(9), 1, "late9"),
            (Some(10), 0, "late_issue10"), // sorts before a10: late too
            (Some(10), 1, "same10"),       // after a10 by arrival: in place
            (Some(16), 1, "c16"),
        ],
    );
    assert_eq!(
        out,
        vec![
            ("a10", "Watermark".to_string()),
            ("late9", "Late".to_string()),
            ("late_issue10", "Late".to_string()),
            ("same10", "Watermark".to_string()),
            ("c16", "Flush".to_string()),
            ("b20", "Flush".to_string()),
        ]
    );
    let s = w.stats();
    assert_eq!((s.late, s.held), (2, 4));
}

#[test]
fn untimed_records_follow_their_predecessor() {
    let mut w = Reorder::new(lim(5));
    let out = run(
        &mut w,
        &[
            (None, 1, "junk0"), // nothing dated yet
            (Some(30), 1, "a30"),
            (None, 1, "junk_after_a30"),
            (Some(20), 1, "b20"),
            (None, 1, "junk_after_b20"),
            (Some(40), 1, "c40"), // releases 20 and 30 and their followers
            (Some(10), 1, "late10"),
            (None, 1, "junk_after_late10"), // its slot (10) is gone
        ],
    );
    assert_eq!(
        names(&out),
        vec![
            "junk0",
            "b20",
            "junk_after_b20",
            "a30",
            "junk_after_a30",
            "late10",
            "junk_after_late10",
            "c40"
        ]
    );
    let s = w.stats();
    assert_eq!((s.untimed, s.late, s.held), (2, 1, 5));
}

#[test]
fn caps_force_the_oldest_out() {
    let mut w = Reorder::new(Limits {
        max_records: 2,
        ..lim(1000)
    });
    let out = run(
        &mut w,
        &[
            (Some(5), 1, "a5"),
            (Some(3), 1, "b3"),
            (Some(4), 1, "c4"),
            (Some(1), 1, "d1"),
        ],
    );
    // c4 makes three: b3 (the smallest) goes; d1 then sorts before it: late.
    assert_eq!(
        out,
        vec![
            ("b3", "Cap".to_string()),
            ("d1", "Late".to_string()),
            ("c4", "Flush".to_string()),
            ("a5", "Flush".to_string()),
        ]
    );
    let mut w = Reorder::new(Limits {
        max_bytes: 3 * (10 + ENTRY_OVERHEAD),
        ..lim(1000)
    });
    let recs: Vec<_> = (0..10).map(|i| (Some(100 - i), 1, "r")).collect();
    run(&mut w, &recs);
    let s = w.stats();
    // The fourth record (97, the smallest) is forced out at once; every
    // later one sorts before it: late.
    assert_eq!((s.by_cap, s.by_flush, s.late, s.peak_records), (1, 3, 6, 4));
    assert!(w.is_empty() && w.bytes() == 0);
}

#[test]
fn extreme_times_and_limits_neither_overflow_nor_lose_records() {
    let mut w = Reorder::new(Limits {
        window_secs: i64::MAX,
        max_records: 0,
        max_bytes: 0,
        max_hold_ms: Some(u64::MAX),
    });
    let out = run(
        &mut w,
        &[
            (Some(i64::MAX), 1, "max"),
            (Some(i64::MIN), 1, "min"),
            (None, 0, "none"),
        ],
    );
    // Caps of 0: every record is released as soon as it is held.
    assert_eq!(names(&out), vec!["max", "min", "none"]);
    assert_eq!(w.stats().late, 1);
    let mut w = Reorder::new(lim(-5));
    assert_eq!(w.limits().window_secs, 0);
    let out = run(
        &mut w,
        &[(Some(i64::MIN), 1, "a"), (Some(i64::MAX), 1, "b")],
    );
    assert_eq!(names(&out), vec!["a", "b"]);
    // Behind the last released (i64::MAX): late, whatever its size.
    assert_eq!(
        w.push((Some(0), 1), "c", usize::MAX, Some(u64::MAX)),
        Pushed::Now("c", Direct::Late)
    );
    assert_eq!(w.next_deadline(), None);
    assert_eq!(w.pop_flush(), None);
}

#[test]
fn the_wall_clock_bounds_how_long_a_record_is_held() {
    let mut w = Reorder::new(Limits {
        max_hold_ms: Some(1000),
        ..lim(600)
    });
    assert_eq!(w.push((Some(100), 1), "a", 1, Some(0)), Pushed::Held);
    assert_eq!(w.push((Some(90), 1), "b", 1, Some(500)), Pushed::Held);
    assert_eq!(w.push((Some(95), 1), "c", 1, Some(700)), Pushed::Held);
    assert_eq!(w.next_deadline(), Some(1000));
    assert_eq!(w.pop_due(Some(999)), None);
    // "a" has waited 1 s: it goes, and b and c, which sort before it.
    assert_eq!(w.pop_due(Some(1000)), Some(("b", Release::Age)));
    assert_eq!(w.pop_due(Some(1000)), Some(("c", Release::Age)));
    assert_eq!(w.pop_due(Some(1000)), Some(("a", Release::Age)));
    assert_eq!(w.pop_due(Some(1000)), None);
    assert_eq!(w.next_deadline(), None);
    // Something that sorts after an aged record stays until its own time.
    assert_eq!(w.push((Some(200), 1), "d", 1, Some(1100)), Pushed::Held);
    assert_eq!(w.push((Some(150), 1), "e", 1, Some(1900)), Pushed::Held);
    assert_eq!(w.pop_due(Some(2100)), Some(("e", Release::Age)));
    assert_eq!(w.pop_due(Some(2100)), Some(("d", Release::Age)));
    assert_eq!(w.push((Some(300), 1), "f", 1, Some(2200)), Pushed::Held);
    assert_eq!(w.push((Some(310), 1), "g", 1, Some(2900)), Pushed::Held);
    assert_eq!(w.pop_due(Some(3200)), Some(("f", Release::Age)));
    assert_eq!(w.pop_due(Some(3200)), None);
    assert_eq!(w.next_deadline(), Some(3900));
    assert_eq!(w.stats().by_age, 6);
}

#[test]
fn nothing_is_lost_and_output_is_sorted_apart_from_late_records() {
    // A pseudo-random trail: every record comes back exactly once, the
    // released ones in key order, and with a window as wide as the
    // disorder none is late and the output is the sorted input.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for (window, cap) in [(30, usize::MAX), (30, 50), (5, usize::MAX)] {
        let mut w = Reorder::new(Limits {
            max_records: cap,
            ..lim(window)
        });
        let mut keyed: Vec<(i64, i64, u8, u64)> = (0..2000u64)
            .map(|i| {
                let t = i as i64 / 4 + rnd(31) as i64;
                // Delivered by time + [0, 30]: at most 30 s behind a
                // record delivered before it.
                (t + rnd(31) as i64, t, rnd(2) as u8, i)
            })
            .collect();
        keyed.sort_unstable();
        let keyed: Vec<(i64, u8, u64)> = keyed.iter().map(|x| (x.1, x.2, x.3)).collect();
        let mut out: Vec<((i64, u8, u64), bool)> = Vec::new();
        for (arrival, &(t, r, _)) in keyed.iter().enumerate() {
            let k = (t, r, arrival as u64);
            if let Pushed::Now(k, _) = w.push((Some(t), r), k, 100, None) {
                out.push((k, true));
            }
            while let Some((k, _)) = w.pop_due(None) {
                out.push((k, false));
            }
        }
        while let Some((k, _)) = w.pop_flush() {
            out.push((k, false));
        }
        assert_eq!(out.len(), 2000);
        let mut all: Vec<_> = out.iter().map(|x| x.0.2).collect();
        all.sort_unstable();
        assert!(all.iter().copied().eq(0..2000));
        let released: Vec<_> = out.iter().filter(|x| !x.1).map(|x| x.0).collect();
        assert!(released.windows(2).all(|p| p[0] < p[1]));
        let s = w.stats();
        assert_eq!(s.late, out.iter().filter(|x| x.1).count() as u64);
        assert_eq!(s.held, s.by_watermark + s.by_cap + s.by_flush);
        if window == 30 && cap == usize::MAX {
            assert_eq!(s.late, 0);
            let mut sorted: Vec<_> = out.iter().map(|x| x.0).collect();
            sorted.sort_unstable();
            assert_eq!(out.iter().map(|x| x.0).collect::<Vec<_>>(), sorted);
        } else {
            assert!(
                s.late > 0,
                "window {window} cap {cap}: the test must reach late records"
            );
        }
        assert!(s.peak_records <= (cap as u64).saturating_add(1));
    }
}
