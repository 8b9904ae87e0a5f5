//! The three functions the fuzz targets drive (`fuzz/fuzz_targets/`), and
//! that `cargo test` replays every committed corpus file through
//! (`tests/fuzz_corpus.rs`), so CI checks them without a nightly toolchain:
//!
//! * [`input`]: any bytes as an input list;
//! * [`wire`]: any bytes as an answer's body;
//! * [`schedule`]: any bytes as the schedule's settings and a company's history.
//!
//! Each panics when an invariant breaks (that is what a fuzzer reports);
//! none may panic otherwise, whatever the bytes.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::clock;
use crate::pipeline::intake::input::{InputOptions, InputReader, InputSource, Item};
use crate::pipeline::plan::schedule::{Calendar, Forecast, Revisit, Settings, Sighting};
use crate::pipeline::plan::{self, PlanOptions};
use crate::qcc::wire;
use crate::store::records::{CompanyHistory, CompanyState, PeriodRow};

/// The most records [`input`] reads: enough for any corpus file.
const MAX_RECORDS: usize = 100_000;

/// Read `data` as an input list: the first byte picks the options (a header
/// or not, a forced separator or not), the rest is the file. Returns the
/// keys the reader would send. Never panics; a key it sends holds nothing
/// the documented rules call invalid.
pub fn input(data: &[u8]) -> Vec<String> {
    let (options, file) = match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    };
    let opts = InputOptions {
        no_header: options & 1 == 1,
        delimiter: match (options >> 1) & 7 {
            1 => Some(b','),
            2 => Some(b'\t'),
            3 => Some(b';'),
            4 => Some(b'|'),
            _ => None,
        },
        ..InputOptions::default()
    };
    let Ok(mut reader) = InputReader::open(InputSource::Bytes(bytes::Bytes::copy_from_slice(file)), &opts) else {
        return Vec::new();
    };
    let mut sent = Vec::new();
    for _ in 0..MAX_RECORDS {
        match reader.next_item() {
            None => break,
            Some(Item::Record(r)) => {
                assert_eq!(r.search_key, r.search_key.trim(), "a key is trimmed");
                assert!(!r.search_key.is_empty(), "an empty key is a blank row");
                if r.invalid.is_none() {
                    assert!(
                        !r.search_key.contains(['\t', ';', '|', '\u{FFFD}'])
                            && !r.search_key.chars().any(|c| c.is_control()),
                        "a key holding a character no name holds is sent: {:?}",
                        r.search_key
                    );
                    assert!(r.norm_key.chars().count() >= 2, "a short key is sent: {:?}", r.search_key);
                    sent.push(r.search_key);
                }
            }
            Some(Item::Problem(p)) if p.fatal => break,
            Some(_) => {}
        }
    }
    sent
}

/// Parse `data` as an answer's body. Never panics; what it returns is a
/// value or an error.
pub fn wire(data: &[u8]) -> Result<wire::Response, wire::WireError> {
    let parsed = wire::parse(data);
    if let Ok(r) = &parsed {
        // A row takes at least `{}` and a separator in the body.
        assert!(r.clients.len() <= data.len() / 2 + 1, "more rows than the body can hold");
    }
    parsed
}

/// The schedule's settings and one company's history, as drawn by a
/// property test or decoded from a fuzzer's bytes ([`ScheduleCase::from_bytes`]).
/// Times are seconds from `now`, negative in the past: any order, any value.
#[derive(Debug, Clone)]
pub struct ScheduleCase {
    /// Days from 2020-01-01 to the run.
    pub now_days: i64,
    pub refresh_after_secs: Option<i64>,
    /// As a file's run summary may hold it: anything.
    pub max_staleness_secs: i64,
    /// A booked date, in days from the run.
    pub booked_days: Option<i64>,
    pub no_result: bool,
    pub fetched: Option<i64>,
    pub next_check: Option<i64>,
    pub last_check: Option<i64>,
    pub first_check: Option<i64>,
    pub deep_checked: Option<i64>,
    pub deep_reason: bool,
    /// Period label, first seen, the check before.
    pub periods: Vec<(String, i64, Option<i64>)>,
    /// Precise sightings across companies, in seconds from the run.
    pub calendar: Vec<(String, i64)>,
    pub total_records: Option<u64>,
    pub latest_two_years_rows: Option<u64>,
    pub page_size: u32,
}

/// Reads numbers from a fuzzer's bytes; zero once they run out.
struct Draw<'a>(&'a [u8]);

impl Draw<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// A time within about ±136 years of the run, in seconds.
    fn secs(&mut self) -> i64 {
        i64::from(self.u32() as i32)
    }
    fn maybe_secs(&mut self) -> Option<i64> {
        (self.u8() & 1 == 1).then(|| self.secs())
    }
    fn period(&mut self) -> String {
        let year = 1990 + i32::from(self.u8() % 64);
        match self.u8() % 8 {
            0..=4 => year.to_string(),
            5 | 6 => format!("{year}-06"),
            _ => ["", "abcd", "2023-13", "20２3", "9999", "0000-06"][usize::from(self.u8() % 6)].to_string(),
        }
    }
}

impl ScheduleCase {
    pub fn from_bytes(data: &[u8]) -> ScheduleCase {
        let mut d = Draw(data);
        let flags = d.u8();
        let mut case = ScheduleCase {
            now_days: i64::from(d.u32() % 20_000),
            refresh_after_secs: (flags & 1 == 1).then(|| i64::from(d.u32())),
            max_staleness_secs: d.secs(),
            booked_days: (flags & 2 == 2).then(|| i64::from(d.u8() as i8) * 4),
            no_result: flags & 4 == 4,
            fetched: d.maybe_secs(),
            next_check: d.maybe_secs(),
            last_check: d.maybe_secs(),
            first_check: d.maybe_secs(),
            deep_checked: d.maybe_secs(),
            deep_reason: flags & 8 == 8,
            periods: Vec::new(),
            calendar: Vec::new(),
            total_records: (flags & 16 == 16).then(|| u64::from(d.u32())),
            latest_two_years_rows: (flags & 32 == 32).then(|| u64::from(d.u32() % 100_000)),
            page_size: u32::from(d.u8() % 50) + 1,
        };
        for _ in 0..d.u8() % 12 {
            let period = d.period();
            let seen = d.secs();
            let before = d.maybe_secs();
            case.periods.push((period, seen, before));
        }
        for _ in 0..d.u8() % 64 {
            let period = d.period();
            let seen = d.secs();
            case.calendar.push((period, seen));
        }
        case
    }
}

/// The weeks [`schedule`] forecasts, as `status` does.
const WEEKS: usize = 12;

/// Run the schedule over a case: the next check, a forecast, the plan, and
/// a company's checks one after the other for a while. Panics when a check
/// does not move time forward (unless every company is due every run),
/// when the staleness bound is broken, or when a forecast counts more
/// checks than there are nights.
pub fn schedule(case: &ScheduleCase) {
    let base = Utc.with_ymd_and_hms(2020, 1, 1, 17, 15, 0).single().expect("a valid date");
    let now = base + Duration::days(case.now_days);
    let settings = Settings {
        refresh_after_seconds: case.refresh_after_secs,
        max_staleness_seconds: case.max_staleness_secs,
        // One bound for both kinds of company: the invariant checks it.
        no_result_staleness_seconds: case.max_staleness_secs,
        expected_date_column: case.booked_days.map(|_| "booked".to_string()),
    };
    let calendar: Vec<Sighting> = case
        .calendar
        .iter()
        .map(|(period, secs)| {
            let seen = now + Duration::seconds(*secs);
            Sighting { period: period.clone(), first_seen: seen, not_before: Some(seen - Duration::days(1)) }
        })
        .collect();
    let revisit = settings.revisit_with(Calendar::learn(&calendar));
    let history = case_history(case, now);
    let plan_opts = PlanOptions {
        refresh_after: settings.refresh_after(),
        full_refresh: false,
        retry_rejected: false,
        years: Default::default(),
        page_size: case.page_size,
    };
    let every_run = settings.refresh_after() == Some(Duration::zero());

    // The forecast ends, and counts at most a check a night.
    let mut forecast = Forecast { due_now: 0, checks_per_week: vec![0; WEEKS] };
    forecast.add(&revisit, &plan_opts, history.clone(), now);
    let checks: u64 = forecast.checks_per_week.iter().sum();
    assert!(checks <= WEEKS as u64 * 7, "{checks} checks in {WEEKS} weeks");
    assert!(forecast.due_now <= 1);
    if every_run && case.fetched.is_none_or(|f| f <= 0) {
        assert_eq!(checks, WEEKS as u64 * 7, "--refresh-after 0s: every company, every night");
    }

    // The plan of tonight's run decides without looping.
    // Its verdict is the plan's tests' to check; here only that it returns.
    let _ = plan::plan(history.snapshot(), &plan_opts, now);

    // One check after the other: each strictly later than the one it
    // follows, never later than the staleness bound allows.
    let staleness = settings.options().max_staleness;
    let mut h = history;
    let mut when = now;
    for _ in 0..64 {
        let next = revisit.next(&h, case.page_size, when);
        if every_run {
            assert_eq!(next.at, when, "--refresh-after 0s: due again at once");
            break;
        }
        assert!(next.at > when, "the next check {} is not after {}", next.at, when);
        if let Revisit::Adaptive { .. } = revisit {
            let last = h.last_check_at.as_deref().and_then(clock::parse_iso).map_or(when, |l| l.max(when));
            assert!(next.at <= last + staleness, "{} is past the staleness bound from {last}", next.at);
        }
        let iso = clock::iso(next.at);
        if next.reason.is_deep() {
            h.deep_checked_at = Some(iso.clone());
        }
        h.next_check_deep = next.reason.is_deep();
        h.first_check_at.get_or_insert_with(|| iso.clone());
        h.last_check_at = Some(iso.clone());
        h.fetched_at = Some(iso);
        when = next.at;
    }
}

/// The company a schedule case describes, as of `now`.
fn case_history(case: &ScheduleCase, now: DateTime<Utc>) -> CompanyHistory {
    let at = |secs: i64| clock::iso(now + Duration::seconds(secs));
    let booked = case.booked_days.map(|d| (now + Duration::days(d)).format("%Y-%m-%d").to_string());
    CompanyHistory {
        search_key: "甲公司".to_string(),
        state: if case.no_result { CompanyState::NoResult } else { CompanyState::Done },
        periods: case
            .periods
            .iter()
            .map(|(period, seen, before)| PeriodRow {
                period: period.clone(),
                first_seen_at: at(*seen),
                not_before: before.map(at),
            })
            .collect(),
        last_check_at: case.last_check.map(at),
        first_check_at: case.first_check.map(at),
        deep_checked_at: case.deep_checked.map(at),
        total_records: case.total_records,
        latest_two_years_rows: case.latest_two_years_rows,
        input_row: booked.map(|b| serde_json::json!({ "booked": b }).to_string()),
        fetched_at: case.fetched.map(at),
        next_check_at: case.next_check.map(at),
        next_check_reason: case.deep_reason.then(|| "deep check".to_string()),
        next_check_deep: case.deep_reason,
    }
}
