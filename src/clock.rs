//! Timestamps. Every timestamp the tool stores is ISO-8601 UTC text with
//! milliseconds (`2026-11-28T21:03:52.123Z`), so text order is time order.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};

const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

pub fn now_iso() -> String {
    iso(Utc::now())
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
