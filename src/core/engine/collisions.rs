//! SPEC 3.4 collisions: how many distinct credential sets holding one access key ID are live at an event's time (`live_count`), counting those batch mode's first pass saw.

use super::Enricher;
use crate::fingerprint::Fingerprint;
use smallvec::SmallVec;

impl Enricher {
    /// Number of distinct live sets that use `key` at `t`.
    pub(super) fn live_count(&self, key: &str, t: i64) -> u32 {
        let tol = self.config.match_tolerance_secs;
        let mut seen: SmallVec<[Fingerprint; 4]> = SmallVec::new();
        for (fp, s) in self.state.sets_of(key) {
            if s.live_at(t, tol) && !seen.contains(&fp) {
                seen.push(fp);
            }
        }
        if let Some(v) = self.lookahead.as_ref().and_then(|l| l.by_key.get(key)) {
            for (fp, start, end) in v {
                if start.saturating_sub(tol) <= t && t <= *end && !seen.contains(fp) {
                    seen.push(*fp);
                }
            }
        }
        u32::try_from(seen.len()).unwrap_or(u32::MAX)
    }
}
