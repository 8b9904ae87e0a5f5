//! Property: whatever the settings (`--refresh-after` from 0 s to years,
//! `--max-staleness` from a day to years, booked dates in the past or the
//! future) and whatever a company's history (times out of order,
//! duplicates, in the future), the next check, the forecast and the plan
//! finish, and each next check is strictly after the one it follows unless
//! every company is due every run. The checks themselves are
//! `qcc_customers::fuzz::schedule`, which the fuzz target drives too.

use proptest::prelude::*;
use qcc_customers::fuzz::{schedule, ScheduleCase};

const YEAR: i64 = 366 * 86_400;

/// Run the checks on a thread of their own: a loop that never ends fails
/// the test after a deadline instead of hanging it.
fn within_deadline(case: ScheduleCase) -> Result<(), String> {
    let (done, finished) = std::sync::mpsc::channel();
    let shown = format!("{case:?}");
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(|| schedule(&case));
        let _ = done.send(outcome.map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        }));
    });
    match finished.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("the schedule did not return within 30 s for {shown}")),
    }
}

fn config() -> ProptestConfig {
    // At least 256 cases; PROPTEST_CASES (read by the default) asks for more.
    let default = ProptestConfig::default();
    ProptestConfig { cases: default.cases.max(256), failure_persistence: None, ..default }
}

fn period() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (2000..2040i32).prop_map(|y| y.to_string()),
        2 => (2000..2040i32).prop_map(|y| format!("{y}-06")),
        1 => prop::sample::select(vec!["", "abcd", "2023-13", "0000", "9999-06"]).prop_map(String::from),
    ]
}

/// A time relative to the run: in the past or the future, up to three years.
fn when() -> impl Strategy<Value = i64> {
    prop_oneof![-3 * YEAR..3 * YEAR, Just(0i64), -86_400..86_400i64]
}

fn case() -> impl Strategy<Value = ScheduleCase> {
    let settings = (
        0..20_000i64,
        prop_oneof![Just(None), Just(Some(0)), (0..86_400i64).prop_map(Some), (0..100 * YEAR).prop_map(Some),],
        prop_oneof![86_400..100 * YEAR, 86_400..90 * 86_400i64],
        prop::option::of(-730..730i64),
        1..=50u32,
    );
    let times = (
        any::<bool>(),
        prop::option::of(when()),
        prop::option::of(when()),
        prop::option::of(when()),
        prop::option::of(when()),
        prop::option::of(when()),
        any::<bool>(),
    );
    let data = (
        prop::collection::vec((period(), when(), prop::option::of(when())), 0..10),
        prop::collection::vec((period(), when()), 0..60),
        prop::option::of(0..1_000_000u64),
        prop::option::of(0..100_000u64),
    );
    (settings, times, data).prop_map(
        |(
            (now_days, refresh_after_secs, max_staleness_secs, booked_days, page_size),
            (no_result, fetched, next_check, last_check, first_check, deep_checked, deep_reason),
            (periods, calendar, total_records, latest_two_years_rows),
        )| ScheduleCase {
            now_days,
            refresh_after_secs,
            max_staleness_secs,
            booked_days,
            no_result,
            fetched,
            next_check,
            last_check,
            first_check,
            deep_checked,
            deep_reason,
            periods,
            calendar,
            total_records,
            latest_two_years_rows,
            page_size,
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_check_moves_time_forward_and_the_forecast_ends(case in case()) {
        prop_assert_eq!(within_deadline(case), Ok(()));
    }
}

/// The regression: `--refresh-after 0s` once made the forecast loop for good.
#[test]
fn refresh_after_zero_is_every_company_every_night_in_the_forecast() {
    let case = ScheduleCase {
        now_days: 2_500,
        refresh_after_secs: Some(0),
        max_staleness_secs: 60 * 86_400,
        booked_days: None,
        no_result: false,
        fetched: Some(-3_600),
        next_check: None,
        last_check: Some(-3_600),
        first_check: Some(-YEAR),
        deep_checked: None,
        deep_reason: false,
        periods: vec![("2024".into(), -YEAR / 2, None)],
        calendar: vec![],
        total_records: Some(12),
        latest_two_years_rows: None,
        page_size: 50,
    };
    // `schedule` asserts 84 checks in 12 weeks: one a night.
    assert_eq!(within_deadline(case), Ok(()));
}
