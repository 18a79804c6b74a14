//! Eviction from the enricher's state: the entry and byte caps enforced at the LRU ends, and expired sets and stale addresses purged (a bounded step) or swept (a full pass).

use super::*;

impl State {
    /// Enforce the caps; returns how many entries were evicted.
    pub fn enforce_caps(&mut self, max_entries: usize, max_bytes: usize) -> u64 {
        let mut n = 0;
        while self.sets.len() > max_entries && self.pop_set() {
            n += 1;
        }
        while self.instances.len() > max_entries {
            if let Some((id, i)) = self.instances.pop_lru() {
                self.bytes[1] = self.bytes[1].saturating_sub(cost_instance(&id, &i));
                n += 1;
            }
        }
        while self.ip_other.len() > max_entries {
            if let Some((_, u)) = self.ip_other.pop_lru() {
                self.bytes[2] = self.bytes[2].saturating_sub(cost_ip(&u));
                n += 1;
            }
        }
        while self.associations.len() > max_entries {
            if let Some((a, i)) = self.associations.pop_lru() {
                self.bytes[4] = self.bytes[4].saturating_sub(cost_assoc(&a, &i));
                n += 1;
            }
        }
        while self.created.len() > max_entries {
            if let Some((k, c)) = self.created.pop_lru() {
                self.bytes[3] = self.bytes[3].saturating_sub(cost_created(&k, &c));
                n += 1;
            }
        }
        while self.total_bytes() > max_bytes {
            // Evict from the table that holds the most bytes.
            let biggest = (0..5).max_by_key(|&i| self.bytes[i]).unwrap_or(0);
            let evicted = match biggest {
                0 => self.pop_set(),
                1 => match self.instances.pop_lru() {
                    Some((id, i)) => {
                        self.bytes[1] = self.bytes[1].saturating_sub(cost_instance(&id, &i));
                        true
                    }
                    None => false,
                },
                2 => match self.ip_other.pop_lru() {
                    Some((_, u)) => {
                        self.bytes[2] = self.bytes[2].saturating_sub(cost_ip(&u));
                        true
                    }
                    None => false,
                },
                4 => match self.associations.pop_lru() {
                    Some((a, i)) => {
                        self.bytes[4] = self.bytes[4].saturating_sub(cost_assoc(&a, &i));
                        true
                    }
                    None => false,
                },
                _ => match self.created.pop_lru() {
                    Some((k, c)) => {
                        self.bytes[3] = self.bytes[3].saturating_sub(cost_created(&k, &c));
                        true
                    }
                    None => false,
                },
            };
            if !evicted {
                // Accounting drift with an empty table: reset it and stop.
                self.bytes[biggest] = 0;
                if self.total_bytes() <= max_bytes {
                    break;
                }
                continue;
            }
            n += 1;
        }
        n
    }

    /// Purge a bounded number of expired sets and stale IPs from the LRU ends.
    pub fn purge(&mut self, grace: i64, ip_retention: i64) -> u64 {
        let now = self.clock;
        let mut purged = 0;
        for _ in 0..8 {
            match self.sets.peek_lru() {
                Some((_, s)) if s.live_until().saturating_add(grace) < now => {
                    self.pop_set();
                    purged += 1;
                }
                _ => break,
            }
        }
        for _ in 0..8 {
            match self.ip_other.peek_lru() {
                Some((_, u)) if u.last.saturating_add(ip_retention) < now => {
                    if let Some((_, u)) = self.ip_other.pop_lru() {
                        self.bytes[2] = self.bytes[2].saturating_sub(cost_ip(&u));
                    }
                }
                _ => break,
            }
        }
        purged
    }

    /// Remove every expired set and stale IP (a full pass; the caller runs it
    /// rarely enough that its cost per record stays constant). Needed because
    /// long-term keys never expire and can sit at the LRU end, where
    /// [`purge`](Self::purge) stops.
    pub fn sweep(&mut self, grace: i64, ip_retention: i64) -> u64 {
        let now = self.clock;
        let expired: Vec<Fingerprint> = self
            .sets
            .iter()
            .filter(|(_, s)| s.live_until().saturating_add(grace) < now)
            .map(|(fp, _)| *fp)
            .collect();
        for fp in &expired {
            if let Some(s) = self.sets.pop(fp) {
                self.bytes[0] = self.bytes[0].saturating_sub(cost_set(&s));
                self.unindex(&s.key, *fp, false);
            }
        }
        let stale: Vec<IpAddr> = self
            .ip_other
            .iter()
            .filter(|(_, u)| u.last.saturating_add(ip_retention) < now)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in stale {
            if let Some(u) = self.ip_other.pop(&ip) {
                self.bytes[2] = self.bytes[2].saturating_sub(cost_ip(&u));
            }
        }
        expired.len() as u64
    }
}
