//! The call budget of one run: `--max-calls`, and what `--daily-limit` leaves
//! of the Beijing calendar day (counted from the database's call ledger, so a
//! restarted cron job cannot overspend).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::clock::{beijing_day_start, next_beijing_day, Clock};
use crate::pipeline::control::shutdown::StopReason;

/// The call budget of this run: `--max-calls` and what `--daily-limit`
/// leaves of the current Beijing day, whichever is smaller. The day is read
/// from the run's clock at every call, so a run that crosses midnight (in
/// Beijing) starts the new day with the whole limit.
pub struct Budget {
    max_calls: Option<u64>,
    daily: Option<Daily>,
    used: AtomicU64,
    clock: Clock,
}

/// `--daily-limit`: the limit, and the calls counted against the day that
/// starts at `day` (those in the ledger before the run, then this run's).
struct Daily {
    limit: u64,
    today: Mutex<(DateTime<Utc>, u64)>,
}

impl Budget {
    /// `used_today`: the calls the ledger holds since the start of the
    /// current Beijing day, as the run starts.
    pub fn new(max_calls: Option<u64>, daily_limit: Option<u64>, used_today: u64, clock: Clock) -> Self {
        let day = beijing_day_start(clock.now());
        let daily = daily_limit.map(|limit| Daily { limit, today: Mutex::new((day, used_today)) });
        Self { max_calls, daily, used: AtomicU64::new(0), clock }
    }

    /// Reserve one call, or say which budget is spent.
    pub fn take(&self) -> Result<(), StopReason> {
        self.take_at(self.clock.now())
    }

    fn take_at(&self, now: DateTime<Utc>) -> Result<(), StopReason> {
        let n = self.used.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(max) = self.max_calls {
            if n > max {
                self.used.fetch_sub(1, Ordering::SeqCst);
                return Err(StopReason::MaxCalls(max));
            }
        }
        if let Some(daily) = &self.daily {
            let mut today = daily.today.lock().unwrap_or_else(|e| e.into_inner());
            let day = beijing_day_start(now);
            if day != today.0 {
                // A new day: only this run writes the ledger (it holds the
                // lock), and it has made no call of the new day before this one.
                *today = (day, 0);
            }
            if today.1 >= daily.limit {
                self.used.fetch_sub(1, Ordering::SeqCst);
                return Err(StopReason::DailyLimit { limit: daily.limit, resumes: next_beijing_day(now) });
            }
            today.1 += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        crate::clock::parse_iso(s).unwrap()
    }

    #[test]
    fn the_daily_limit_starts_over_at_midnight_in_beijing() {
        // 15:59 UTC is 23:59 in Beijing: 8 of 10 calls were made today.
        let budget = Budget::new(None, Some(10), 8, Clock::system());
        *budget.daily.as_ref().unwrap().today.lock().unwrap() = (beijing_day_start(at("2026-11-30T15:59:00Z")), 8);
        assert!(budget.take_at(at("2026-11-30T15:59:10Z")).is_ok());
        assert!(budget.take_at(at("2026-11-30T15:59:20Z")).is_ok());
        assert_eq!(
            budget.take_at(at("2026-11-30T15:59:30Z")),
            Err(StopReason::DailyLimit { limit: 10, resumes: at("2026-11-30T16:00:00Z") })
        );
        // 16:00 UTC is midnight in Beijing: the new day's whole limit.
        for i in 0..10 {
            assert!(budget.take_at(at("2026-11-30T16:00:01Z")).is_ok(), "call {i} of the new day");
        }
        assert_eq!(
            budget.take_at(at("2026-11-30T16:30:00Z")),
            Err(StopReason::DailyLimit { limit: 10, resumes: at("2026-12-01T16:00:00Z") })
        );
    }

    #[test]
    fn max_calls_counts_the_run_whatever_the_day() {
        let budget = Budget::new(Some(3), Some(100), 0, Clock::system());
        let now = at("2026-11-30T12:00:00Z");
        assert!((0..3).all(|_| budget.take_at(now).is_ok()));
        assert_eq!(budget.take_at(now), Err(StopReason::MaxCalls(3)));
    }
}
