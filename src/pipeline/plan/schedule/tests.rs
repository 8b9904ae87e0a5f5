//! The revisit schedule's rules, each on a hand-made history.

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn seen(period: &str, first_seen: &str, gap_days: Option<i64>) -> Sighting {
    let first_seen = at(first_seen);
    Sighting { period: period.into(), first_seen, not_before: gap_days.map(|d| first_seen - Duration::days(d)) }
}

fn history<'a>(sightings: &'a [Sighting], last_check: &str) -> History<'a> {
    History {
        sightings,
        last_check: at(last_check),
        no_result: false,
        booked: None,
        pages: 1,
        last_deep: None,
        first_check: at(last_check),
        spread: 0,
    }
}

/// Every check from `from` to `until`, as a nightly job that takes each
/// due check at 01:15 Beijing time and nothing ever changes would see them.
fn checks(h: &History<'_>, cal: &Calendar, from: &str, until: &str) -> Vec<(NaiveDate, Reason)> {
    let opts = ScheduleOptions::default();
    let mut h = h.clone();
    let mut out = Vec::new();
    let mut now = at(from);
    while now < at(until) {
        let next = next_check(&h, cal, &opts, now);
        // The nightly run at or after it.
        let mut run = day_start(beijing_date(next.at)) + Duration::minutes(75);
        if run < next.at {
            run += Duration::days(1);
        }
        out.push((beijing_date(run), next.reason));
        h.last_check = run;
        now = run;
    }
    out
}

#[test]
fn booked_dates_in_the_spellings_users_type() {
    let want = NaiveDate::from_ymd_opt(2026, 4, 25);
    for text in ["2026-04-25", "2026/4/25", "20260425", "2026年4月25日", " 2026-04-25 00:00:00"] {
        let row = serde_json::json!({ "预约披露日期": text }).to_string();
        assert_eq!(booked_date(&row, "预约披露日期"), want, "{text}");
    }
    assert_eq!(booked_date(r#"{"预约披露日期": ""}"#, "预约披露日期"), None);
}

#[test]
fn periods_and_deadlines() {
    assert_eq!(Season::of("2023"), Some((Season::Annual, 2023)));
    assert_eq!(Season::of("2023-06"), Some((Season::HalfYear, 2023)));
    assert_eq!(Season::of("2023-12"), None);
    assert_eq!(Season::Annual.deadline(2023), NaiveDate::from_ymd_opt(2024, 4, 30).unwrap());
    assert_eq!(Season::HalfYear.deadline(2023), NaiveDate::from_ymd_opt(2023, 8, 31).unwrap());
}

#[test]
fn a_company_with_its_own_date_is_checked_nightly_around_it_and_rarely_otherwise() {
    // Its 2024 annual report appeared around 20 April 2025.
    let s = [seen("2024", "2025-04-21T01:15:00Z", Some(2)), seen("2023", "2024-04-20T01:15:00Z", None)];
    let h = history(&s, "2025-05-01T01:15:00Z");
    let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-05-01T01:15:00Z");
    let usual: Vec<_> = year.iter().filter(|(_, r)| matches!(r, Reason::Usual(_))).map(|(d, _)| *d).collect();
    assert!(usual.contains(&NaiveDate::from_ymd_opt(2026, 4, 20).unwrap()), "{year:?}");
    assert!(usual.iter().all(|d| d.month() == 4), "{usual:?}");
    // Never more than 60 days apart, and under 20 checks in a year even
    // when the report never comes (the window stops once it does).
    for pair in year.windows(2) {
        assert!((pair[1].0 - pair[0].0).num_days() <= 60, "{year:?}");
    }
    assert!(year.len() < 20, "{} checks: {year:?}", year.len());
}

#[test]
fn a_company_that_never_disclosed_half_year_customers_is_not_checked_densely_in_august() {
    let s = [seen("2024", "2025-04-21T01:15:00Z", Some(1))];
    let h = history(&s, "2025-05-01T01:15:00Z");
    let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-01-01T00:00:00Z");
    let half_year =
        |r: &Reason| matches!(r, Reason::Usual(p) | Reason::Season(p) | Reason::Late(p) if p.ends_with("-06"));
    assert_eq!(year.iter().filter(|(_, r)| half_year(r)).count(), 1, "one look after 31 August: {year:?}");
    assert!(year.iter().all(|(d, r)| !half_year(r) || *d > NaiveDate::from_ymd_opt(2025, 8, 31).unwrap()));
    // One that did is.
    let s = [seen("2024", "2025-04-21T01:15:00Z", Some(1)), seen("2024-06", "2024-08-27T01:15:00Z", Some(1))];
    let h = history(&s, "2025-05-01T01:15:00Z");
    let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-01-01T00:00:00Z");
    let august = year.iter().filter(|(d, _)| d.month() == 8).count();
    assert!(august >= 5, "{year:?}");
}

#[test]
fn no_company_goes_longer_than_the_staleness_bound_unchecked() {
    let h = History { no_result: true, ..history(&[], "2025-01-10T01:15:00Z") };
    let year = checks(&h, &Calendar::default(), "2025-01-10T01:15:00Z", "2027-01-10T00:00:00Z");
    for pair in year.windows(2) {
        assert!((pair[1].0 - pair[0].0).num_days() <= 60, "{year:?}");
    }
    // A company without data: the bound and a look after each deadline.
    assert!(year.iter().any(|(d, r)| matches!(r, Reason::Late(_)) && d.month() == 5), "{year:?}");
    assert!(year.len() <= 16, "{year:?}");
}

#[test]
fn a_booked_date_centres_the_window() {
    let s = [seen("2024", "2025-04-21T01:15:00Z", Some(1))];
    let booked = NaiveDate::from_ymd_opt(2026, 3, 28).unwrap();
    let h = History { booked: Some(booked), ..history(&s, "2025-05-01T01:15:00Z") };
    let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-05-01T00:00:00Z");
    assert!(year.iter().any(|(d, r)| *d == booked && matches!(r, Reason::Booked(_))), "{year:?}");
}

#[test]
fn without_any_history_the_statutory_calendar_covers_the_last_days_before_the_deadline_nightly() {
    let h = history(&[], "2025-12-01T01:15:00Z");
    let year = checks(&h, &Calendar::default(), "2025-12-01T01:15:00Z", "2026-05-10T00:00:00Z");
    for day in 20..=30 {
        let d = NaiveDate::from_ymd_opt(2026, 4, day).unwrap();
        assert!(year.iter().any(|(c, _)| *c == d), "{d}: {year:?}");
    }
}

#[test]
fn a_multi_page_company_gets_a_deep_check_within_the_deep_interval() {
    let h = History { pages: 6, spread: 17, ..history(&[], "2025-06-01T01:15:00Z") };
    let year = checks(&h, &Calendar::default(), "2025-06-01T01:15:00Z", "2026-06-01T00:00:00Z");
    let first_deep = year.iter().find(|(_, r)| *r == Reason::Deep).map(|(d, _)| *d).unwrap();
    assert!(first_deep <= NaiveDate::from_ymd_opt(2025, 11, 28).unwrap(), "{year:?}");
}

#[test]
fn the_learned_spread_replaces_the_statutory_calendar_once_enough_is_seen() {
    // Thirty companies seen publishing their 2024 reports 10 to 40 days before the deadline.
    let s: Vec<Sighting> = (0..30)
        .map(|i| {
            let day = at("2025-03-21T01:15:00Z") + Duration::days(i);
            Sighting { period: "2024".into(), first_seen: day, not_before: Some(day - Duration::days(1)) }
        })
        .collect();
    let cal = Calendar::learn(&s);
    assert_eq!(cal.quantile(Season::Annual, 0.5), Some(-26));
    let h = history(&[], "2025-12-01T01:15:00Z");
    let year = checks(&h, &cal, "2025-12-01T01:15:00Z", "2026-05-10T00:00:00Z");
    assert!(year.iter().any(|(d, _)| d.month() == 3 && d.day() >= 23), "{year:?}");
}

#[test]
fn a_gap_of_months_dates_a_report_but_a_gap_of_years_leaves_it_to_the_calendar() {
    // Seen between two checks 30 days apart: looked for over that stretch a year on.
    let s = [seen("2024", "2025-04-21T01:15:00Z", Some(30))];
    let h = history(&s, "2025-05-01T01:15:00Z");
    let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-05-10T00:00:00Z");
    assert!(year.iter().any(|(_, r)| matches!(r, Reason::Usual(_))), "{year:?}");
    // Between two checks two years apart: the date is unknown, so the
    // statutory window decides, at a bounded number of looks.
    let s = [seen("2024", "2025-04-21T01:15:00Z", Some(730))];
    let h = history(&s, "2025-05-01T01:15:00Z");
    let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-05-10T00:00:00Z");
    assert!(!year.iter().any(|(_, r)| matches!(r, Reason::Usual(_))), "{year:?}");
    assert!(year.iter().any(|(_, r)| matches!(r, Reason::Season(_))), "{year:?}");
}

#[test]
fn a_period_first_seen_years_from_its_deadline_is_a_backfill_not_a_publication_date() {
    // Thirty companies publishing 2024 in late March, and thirty old 2005
    // reports the vendor added in 2025: only the first are dates.
    let mut s: Vec<Sighting> = (0..30)
        .map(|i| {
            let day = at("2025-03-21T01:15:00Z") + Duration::days(i % 10);
            Sighting { period: "2024".into(), first_seen: day, not_before: Some(day - Duration::days(1)) }
        })
        .collect();
    s.extend((0..30).map(|i| {
        let day = at("2025-06-01T01:15:00Z") + Duration::days(i);
        Sighting { period: "2005".into(), first_seen: day, not_before: Some(day - Duration::days(1)) }
    }));
    s.push(Sighting {
        period: "9999".into(),
        first_seen: at("2025-06-01T01:15:00Z"),
        not_before: Some(at("2025-05-31T01:15:00Z")),
    });
    let cal = Calendar::learn(&s);
    assert_eq!(cal.quantile(Season::Annual, 0.1), Some(-40));
    assert_eq!(cal.quantile(Season::Annual, 0.9), Some(-33), "the 2005 reports would put it years after");
}
