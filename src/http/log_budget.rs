//! A budget for refusal log lines: a flood of bad cookies or unknown hosts costs a bounded
//! number of lines a second, not one each.
//!
//! Owns the decision "log this refusal or count it". Lock-free (two atomics) and
//! allocation-free, because it runs on `/oauth2/auth`'s refusal path, which an attacker can
//! drive as fast as NGINX forwards. A crate such as `governor` does token buckets with more
//! precision than a log line needs; a fixed one-second window is enough here.

use std::sync::atomic::{AtomicU64, Ordering};

/// What to do with one refusal's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Log it.
    Log,
    /// Log it, and say that this many lines were left out in the previous window.
    LogAfterSuppressing(u64),
    /// Leave it out (it is counted).
    Suppress,
}

/// At most `per_second` lines in each wall-clock second.
#[derive(Debug)]
pub(super) struct LogBudget {
    per_second: u64,
    /// The current second (high 32 bits: seconds since the epoch, truncated) and the lines
    /// counted in it (low 32 bits), swapped together.
    window: AtomicU64,
    /// Lines left out since the last one logged.
    suppressed: AtomicU64,
}

impl LogBudget {
    /// A budget of `per_second` lines.
    pub(super) const fn new(per_second: u64) -> Self {
        Self {
            per_second,
            window: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Charges one line at `now` (seconds since the epoch).
    pub(super) fn charge(&self, now: u64) -> Verdict {
        let second = now & 0xffff_ffff;
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (win, count) = (current >> 32, current & 0xffff_ffff);
            let next = if win == second {
                (second << 32) | (count + 1).min(0xffff_ffff)
            } else {
                (second << 32) | 1
            };
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) if (next & 0xffff_ffff) <= self.per_second => {
                    return match self.suppressed.swap(0, Ordering::Relaxed) {
                        0 => Verdict::Log,
                        n => Verdict::LogAfterSuppressing(n),
                    };
                }
                Ok(_) => {
                    self.suppressed.fetch_add(1, Ordering::Relaxed);
                    return Verdict::Suppress;
                }
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_the_budget_then_reports_what_it_left_out() {
        let b = LogBudget::new(3);
        let first: Vec<Verdict> = (0..10).map(|_| b.charge(1_000)).collect();
        assert_eq!(&first[..3], &[Verdict::Log; 3]);
        assert!(first[3..].iter().all(|v| *v == Verdict::Suppress));
        // The next second: the first line says how many were left out.
        assert_eq!(b.charge(1_001), Verdict::LogAfterSuppressing(7));
        assert_eq!(b.charge(1_001), Verdict::Log);
    }

    #[test]
    fn threads_together_never_exceed_the_budget() {
        let b = std::sync::Arc::new(LogBudget::new(50));
        let logged: u64 = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    (0..1_000)
                        .filter(|_| b.charge(7) != Verdict::Suppress)
                        .count() as u64
                })
            })
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(logged, 50);
    }
}
