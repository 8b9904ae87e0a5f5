//! Time. Every timestamp the tool stores is ISO-8601 UTC text with
//! milliseconds (`2026-11-28T21:03:52.123Z`), so text order is time order.
//! A run takes the time of day from one [`Clock`]: the call ledger, the
//! daily limit's Beijing day, 110 parking, refresh windows and checkpoints
//! all read it, so a test can place a run at any hour. Intervals (the rate
//! limit, backoff, throttle pauses, park wake-ups) run on the tokio clock,
//! which a test can pause.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};

const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// The wall clock a run reads: the system's, or (in tests) the system's
/// shifted by a fixed offset.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    offset: Duration,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    pub fn system() -> Self {
        Clock { offset: Duration::zero() }
    }

    /// The system clock moved by `offset`: e.g. to noon in Beijing, so that a
    /// test never runs across the daily limit's midnight.
    pub fn shifted(offset: Duration) -> Self {
        Clock { offset }
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    pub fn now_iso(&self) -> String {
        iso(self.now())
    }
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.format(FORMAT).to_string()
}

/// Parse a stored timestamp (also accepts any RFC 3339 text).
pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The start of the current calendar day in Beijing time (UTC+8), in UTC.
/// `--daily-limit` counts calls from here, as the vendor's quota does.
pub fn beijing_day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    let local = now.with_timezone(&beijing).date_naive().and_time(NaiveTime::MIN);
    beijing.from_local_datetime(&local).single().map(|t| t.with_timezone(&Utc)).unwrap_or(now - Duration::hours(24))
}

/// The start of the next calendar day in Beijing, in UTC: when the vendor's
/// daily quota and `--daily-limit` start again.
pub fn next_beijing_day(now: DateTime<Utc>) -> DateTime<Utc> {
    beijing_day_start(now) + Duration::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips_and_sorts() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(iso(t), "2026-01-02T03:04:05.000Z");
        assert_eq!(parse_iso(&iso(t)), Some(t));
    }

    #[test]
    fn beijing_day_starts_at_16_utc() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 17, 0, 0).unwrap();
        assert_eq!(beijing_day_start(t), Utc.with_ymd_and_hms(2026, 1, 2, 16, 0, 0).unwrap());
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap();
        assert_eq!(beijing_day_start(t), Utc.with_ymd_and_hms(2026, 1, 1, 16, 0, 0).unwrap());
    }
}
