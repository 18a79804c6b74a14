//! Checkpoints: `--checkpoint-interval` parsing and the thread that saves the state file while `serve` runs.
use super::*;

/// `--checkpoint-interval` when `--state` is given and it is not.
pub(super) const DEFAULT_CHECKPOINT: Duration = Duration::from_secs(5 * 60);

/// `--checkpoint-interval`: seconds, or a number with `s`, `m` or `h`;
/// `off` or zero is `None` (save at exit only). At most a day.
pub(super) fn parse_interval(v: &str) -> Result<Option<Duration>, Error> {
    let t = v.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (num, unit) = match t.strip_suffix(['s', 'm', 'h']) {
        Some(n) => (n, &t[n.len()..]),
        None => (t, "s"),
    };
    let scale = match unit {
        "m" => 60.0,
        "h" => 3600.0,
        _ => 1.0,
    };
    let bad = || {
        arg_err(
            &format!("--checkpoint-interval {v}"),
            "expected a duration: seconds, or a number with s, m or h (e.g. 30s, 5m, 1h), or off",
        )
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let d = Duration::try_from_secs_f64(n * scale).map_err(|_| bad())?;
    Ok((!d.is_zero()).then(|| d.min(Duration::from_secs(86_400))))
}

/// Save the state to `path` every `every` until the stop flag is set: the
/// snapshot is written with the enricher locked (records wait meanwhile),
/// then synced and renamed without it. A failed checkpoint is said and
/// retried at the next one; the save at exit is still made.
pub(super) fn checkpoint_loop(
    e: &Mutex<Enricher>,
    path: &std::path::Path,
    every: Duration,
    sh: &Shared,
) {
    let mut next = Instant::now() + every;
    loop {
        while Instant::now() < next {
            if sh.stopping() {
                return;
            }
            thread::sleep(POLL.min(next.saturating_duration_since(Instant::now())));
        }
        if sh.stopping() {
            return;
        }
        let t0 = Instant::now();
        match save_state_with(path, |w| lock_enricher(e).write_snapshot(w)) {
            Ok(()) => sh.log(format_args!(
                "checkpoint: state saved to {} ({:.2} s)",
                path.display(),
                t0.elapsed().as_secs_f64()
            )),
            // Always said: the next crash would lose more than the user expects.
            Err(err) => eprintln!("credlineage serve: checkpoint failed: {err}"),
        }
        next = Instant::now() + every;
    }
}
