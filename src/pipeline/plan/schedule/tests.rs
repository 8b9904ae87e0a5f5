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
        if next.reason == Reason::Deep {
            h.last_deep = Some(run);
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
    // Around 20 April: within two days of it, and no more than three nights apart there.
    let near = |d: &NaiveDate| (*d - NaiveDate::from_ymd_opt(2026, 4, 20).unwrap()).num_days().abs();
    assert!(usual.iter().any(|d| near(d) <= 2), "{year:?}");
    assert!(usual.iter().all(|d| d.month() == 4), "{usual:?}");
    assert!(usual.len() >= 3 && usual.windows(2).all(|p| (p[1] - p[0]).num_days() <= 3), "{usual:?}");
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
    assert!(august >= 4, "{year:?}");
}

#[test]
fn no_company_with_data_goes_longer_than_the_staleness_bound_unchecked() {
    for s in [vec![seen("2023", "2024-04-20T01:15:00Z", None)], vec![seen("2024", "2025-04-21T01:15:00Z", Some(1))]] {
        let h = history(&s, "2025-01-10T01:15:00Z");
        let year = checks(&h, &Calendar::default(), "2025-01-10T01:15:00Z", "2027-01-10T00:00:00Z");
        for pair in year.windows(2) {
            assert!((pair[1].0 - pair[0].0).num_days() <= 60, "{year:?}");
        }
    }
}

#[test]
fn a_no_result_company_is_checked_once_after_each_deadline() {
    let h = History { no_result: true, ..history(&[], "2025-01-10T01:15:00Z") };
    let two_years = checks(&h, &Calendar::default(), "2025-01-10T01:15:00Z", "2027-01-10T00:00:00Z");
    // 30 April and 31 August of 2025 and 2026: one look each, a few days after.
    let deadlines = ["2025-04-30", "2025-08-31", "2026-04-30", "2026-08-31"];
    let two_years: Vec<_> =
        two_years.into_iter().filter(|(d, _)| *d < NaiveDate::from_ymd_opt(2027, 1, 10).unwrap()).collect();
    assert_eq!(two_years.len(), deadlines.len(), "{two_years:?}");
    for ((day, reason), deadline) in two_years.iter().zip(deadlines) {
        let after = (*day - deadline.parse::<NaiveDate>().unwrap()).num_days();
        assert!((5..=10).contains(&after), "{day} is {after} days after {deadline}");
        assert!(matches!(reason, Reason::Late(_)), "{reason:?}");
    }
    // Its own bound, when set, adds checks between the deadlines.
    let opts = ScheduleOptions { no_result_staleness: Duration::days(30), ..ScheduleOptions::default() };
    let next = next_check(&h, &Calendar::default(), &opts, at("2025-05-10T01:15:00Z"));
    assert_eq!(next, NextCheck { at: at("2025-02-09T01:15:00Z"), reason: Reason::Staleness });
}

#[test]
fn a_company_that_skipped_last_years_report_is_looked_for_lightly() {
    // Both fetched first in June 2025; one published 2022–2024, the other 2021–2023 and not 2024.
    let first = "2025-06-01T01:15:00Z";
    let regular = [seen("2024", first, None), seen("2023", first, None), seen("2022", first, None)];
    let skipped = [seen("2023", first, None), seen("2022", first, None), seen("2021", first, None)];
    // Every check of the season of 2025 (January to May 2026), the
    // staleness bound's included: they all look for it.
    let season = |s: &[Sighting]| {
        let h = history(s, first);
        let year = checks(&h, &Calendar::default(), first, "2026-05-31T00:00:00Z");
        let from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        year.iter().filter(|(d, _)| *d >= from && d.month() <= 5).count()
    };
    let (regular, skipped) = (season(&regular), season(&skipped));
    assert!(skipped >= 1, "still looked for");
    assert!(skipped < regular, "{skipped} checks for the company that skipped, {regular} for the regular one");
    // One that skipped 2023 and 2024 too: lightly as well (within a check of
    // the one that skipped once: where the staleness checks fall decides).
    let lapsed = [seen("2022", first, None), seen("2021", first, None), seen("2020", first, None)];
    let lapsed = season(&lapsed);
    assert!(lapsed < regular && lapsed <= skipped + 1, "{lapsed} checks for the company that skipped two years");
}

#[test]
fn a_company_first_fetched_in_december_gets_a_window_from_the_dates_seen_across_companies_not_a_nightly_month() {
    // Forty companies seen publishing their 2024 reports over March and April 2025.
    let s: Vec<Sighting> = (0..40)
        .map(|i| {
            let day = at("2025-03-01T01:15:00Z") + Duration::days(i * 3 / 2);
            Sighting { period: "2024".into(), first_seen: day, not_before: Some(day - Duration::days(1)) }
        })
        .collect();
    let cal = Calendar::learn(&s);
    // First fetched on 1 December 2025: it has 2022–2024, so 2025 is likely, its date unknown.
    let first = "2025-12-01T01:15:00Z";
    let had = [seen("2024", first, None), seen("2023", first, None), seen("2022", first, None)];
    let h = history(&had, first);
    let season = checks(&h, &cal, first, "2026-05-31T00:00:00Z");
    let looks: Vec<NaiveDate> =
        season.iter().filter(|(_, r)| !matches!(r, Reason::Staleness)).map(|(d, _)| *d).collect();
    // The looks fall where the companies published (1 March to 30 April) ...
    let march = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let within = looks.iter().filter(|d| **d >= march && d.month() <= 5).count();
    assert!(within * 10 >= looks.len() * 8, "{looks:?}");
    // ... at a bounded number, never a run of more than five nights.
    assert!(looks.len() <= 16, "{} looks: {looks:?}", looks.len());
    let longest_run = looks
        .windows(2)
        .fold((1, 1), |(run, best), p| {
            let run = if (p[1] - p[0]).num_days() == 1 { run + 1 } else { 1 };
            (run, best.max(run))
        })
        .1;
    assert!(longest_run <= 5, "{longest_run} nights in a row: {looks:?}");
}

#[test]
fn a_booked_date_centres_the_window() {
    let s = [seen("2024", "2025-04-21T01:15:00Z", Some(1))];
    let booked = NaiveDate::from_ymd_opt(2026, 3, 28).unwrap();
    let h = History { booked: Some(booked), ..history(&s, "2025-05-01T01:15:00Z") };
    let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-05-01T00:00:00Z");
    let booked_checks: Vec<i64> =
        year.iter().filter(|(_, r)| matches!(r, Reason::Booked(_))).map(|(d, _)| (*d - booked).num_days()).collect();
    // Around it: a check within two days of it, every one within the booking's
    // two days and the vendor's delay of up to five (the last the night after).
    assert!(booked_checks.iter().any(|d| d.abs() <= 2), "{year:?}");
    assert!(!booked_checks.is_empty() && booked_checks.iter().all(|d| (-2..=8).contains(d)), "{booked_checks:?}");
}

#[test]
fn without_any_history_the_statutory_calendar_puts_most_looks_in_the_last_fortnight() {
    let had = [seen("2024", "2025-12-01T01:15:00Z", None)];
    let h = history(&had, "2025-12-01T01:15:00Z");
    let year = checks(&h, &Calendar::default(), "2025-12-01T01:15:00Z", "2026-05-10T00:00:00Z");
    let looks: Vec<NaiveDate> = year.iter().filter(|(_, r)| matches!(r, Reason::Season(_))).map(|(d, _)| *d).collect();
    let fortnight = looks.iter().filter(|d| d.month() == 4 && d.day() >= 16).count();
    let before_march = looks.iter().filter(|d| d.month() < 3).count();
    assert!(fortnight >= 3 && before_march <= 2, "{looks:?}");
}

#[test]
fn a_multi_page_company_gets_a_deep_check_within_the_deep_interval() {
    let h = History { pages: 6, spread: 17, ..history(&[], "2025-06-01T01:15:00Z") };
    let year = checks(&h, &Calendar::default(), "2025-06-01T01:15:00Z", "2026-06-01T00:00:00Z");
    let first_deep = year.iter().find(|(_, r)| *r == Reason::Deep).map(|(d, _)| *d).unwrap();
    assert!(first_deep <= NaiveDate::from_ymd_opt(2025, 11, 28).unwrap(), "{year:?}");
}

#[test]
fn a_deep_check_is_made_of_a_check_due_anyway_in_the_weeks_before_it_and_never_comes_late() {
    let from = "2025-06-01T01:15:00Z";
    let one_page = checks(&history(&[], from), &Calendar::default(), from, "2027-06-01T00:00:00Z");
    let h = History { pages: 6, spread: 17, ..history(&[], from) };
    let many = checks(&h, &Calendar::default(), from, "2027-06-01T00:00:00Z");
    let deep: Vec<NaiveDate> = many.iter().filter(|(_, r)| *r == Reason::Deep).map(|(d, _)| *d).collect();
    assert!(deep.len() >= 3, "{many:?}");
    // Every 180 days at most, and none of them a check of its own: the
    // company of six pages is checked as often as the one of one page.
    let start = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
    for pair in std::iter::once(&start).chain(&deep).collect::<Vec<_>>().windows(2) {
        assert!((*pair[1] - *pair[0]).num_days() <= 180, "{deep:?}");
    }
    assert!(many.len() <= one_page.len(), "{} checks against {}: {many:?}", many.len(), one_page.len());
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
    let had = [seen("2024", "2025-12-01T01:15:00Z", None)];
    let h = history(&had, "2025-12-01T01:15:00Z");
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

#[test]
fn a_period_seen_years_from_its_deadline_is_not_a_companys_own_date() {
    // The vendor added the company's 2015 report in March 2025: no date of its own for 2016's.
    let s = [seen("2015", "2025-03-20T01:15:00Z", Some(1))];
    let h = history(&s, "2025-03-20T01:15:00Z");
    assert!(own_date(&h, &Calendar::default(), Season::Annual, 2016).is_none());
    // The same report seen a few days before its deadline is one.
    let s = [seen("2024", "2025-04-22T01:15:00Z", Some(1))];
    let h = history(&s, "2025-04-22T01:15:00Z");
    assert!(own_date(&h, &Calendar::default(), Season::Annual, 2025).is_some());
}
