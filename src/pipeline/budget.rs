//! The call budget of one run: `--max-calls`, and what `--daily-limit` leaves
//! of the Beijing calendar day (counted from the database's call ledger, so a
//! restarted cron job cannot overspend).

use std::sync::atomic::{AtomicU64, Ordering};

use super::shutdown::StopReason;

/// The call budget of this run: `--max-calls` and what `--daily-limit`
/// leaves of today (Beijing time), whichever is smaller.
pub struct Budget {
    max_calls: Option<u64>,
    daily: Option<(u64, u64)>,
    used: AtomicU64,
}

impl Budget {
    pub fn new(max_calls: Option<u64>, daily_limit: Option<u64>, used_today: u64) -> Self {
        Self { max_calls, daily: daily_limit.map(|l| (l, l.saturating_sub(used_today))), used: AtomicU64::new(0) }
    }

    /// Reserve one call, or say which budget is spent.
    pub fn take(&self) -> Result<(), StopReason> {
        let n = self.used.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(max) = self.max_calls {
            if n > max {
                self.used.fetch_sub(1, Ordering::SeqCst);
                return Err(StopReason::MaxCalls(max));
            }
        }
        if let Some((limit, left)) = self.daily {
            if n > left {
                self.used.fetch_sub(1, Ordering::SeqCst);
                return Err(StopReason::DailyLimit(limit));
            }
        }
        Ok(())
    }
}
