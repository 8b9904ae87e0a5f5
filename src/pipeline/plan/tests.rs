//! The plan's rules, each on a hand-made snapshot.

use super::*;

/// The first page of a task not stored.
fn first_missing(task: &YearTask) -> u32 {
    task.stored.missing(u32::MAX).next().unwrap_or(u32::MAX)
}

/// A fixed moment: the rules do not depend on when the tests run.
fn now() -> DateTime<Utc> {
    clock::parse_iso("2026-06-15T04:00:00.000Z").unwrap()
}

fn opts() -> PlanOptions {
    PlanOptions {
        refresh_after: Some(chrono::Duration::days(7)),
        full_refresh: false,
        retry_rejected: false,
        years: YearFilter::default(),
        page_size: 50,
    }
}

fn snapshot(state: CompanyState) -> CompanySnapshot {
    CompanySnapshot { search_key: "甲公司".into(), state, ..CompanySnapshot::default() }
}

fn year(y: &str, state: YearState, fetched: u32, total: u32, at: &str) -> YearRow {
    YearRow {
        year: y.into(),
        state,
        total_records: Some(u64::from(total) * 50),
        pages_total: Some(total),
        stored: StoredPages { prefix: fetched, ..StoredPages::default() },
        fetched_at: Some(at.into()),
        page_size: Some(50),
        from_listing: false,
    }
}

#[test]
fn cost_formula_matches_the_spec() {
    assert_eq!(pages_for(0, 50), (0, false));
    assert_eq!(pages_for(50, 50), (1, false));
    assert_eq!(pages_for(51, 50), (2, false));
    assert_eq!(pages_for(5000, 50), (100, false));
    assert_eq!(pages_for(5001, 50), (100, true));
    assert_eq!(per_year_cost(&[0, 1, 120, 6000], 50), 1 + 1 + 1 + 3 + 100);
    assert_eq!(listing_cost(&[0, 1, 120, 6000], 50), 1 + 1 + 1 + 3 + 100);
    assert_eq!(listing_cost(&[5, 5, 7, 3], 50), 1);
    assert_eq!(listing_cost(&[], 50), 1);
    assert_eq!(listing_cost(&[40, 40, 40], 50), 3);
}

#[test]
fn new_company_starts_with_discovery() {
    let job = plan(snapshot(CompanyState::Pending), &opts(), now()).unwrap();
    assert!(job.discovery);
}

#[test]
fn fresh_company_is_skipped_and_stale_one_rediscovered() {
    let now = now();
    let mut s = snapshot(CompanyState::Done);
    s.fetched_at = Some(clock::iso(now - chrono::Duration::days(1)));
    assert_eq!(plan(s.clone(), &opts(), now).unwrap_err(), Skip::Fresh);
    s.fetched_at = Some(clock::iso(now - chrono::Duration::days(8)));
    assert!(plan(s.clone(), &opts(), now).unwrap().discovery);
    // Fetched seconds into last week's run at this time of day: due now.
    s.fetched_at = Some(clock::iso(now - chrono::Duration::days(7) + chrono::Duration::seconds(30)));
    assert!(plan(s.clone(), &opts(), now).unwrap().discovery);
    // …but not two hours early.
    s.fetched_at = Some(clock::iso(now - chrono::Duration::days(7) + chrono::Duration::hours(2)));
    assert_eq!(plan(s, &opts(), now).unwrap_err(), Skip::Fresh);
}

#[test]
fn interrupted_company_resumes_without_discovery() {
    let mut s = snapshot(CompanyState::Deferred);
    s.year_list = Some(vec!["2023".into(), "2022".into()]);
    s.discovered_at = Some("2026-01-01T00:00:00.000Z".into());
    let job = plan(s, &opts(), now()).unwrap();
    assert!(!job.discovery);
    assert_eq!(job.year_list.len(), 2);
}

#[test]
fn rejected_and_parked_companies_cost_nothing() {
    assert_eq!(plan(snapshot(CompanyState::Rejected), &opts(), now()).unwrap_err(), Skip::Rejected);
    let mut o = opts();
    o.retry_rejected = true;
    assert!(plan(snapshot(CompanyState::Rejected), &o, now()).is_ok());
    let mut s = snapshot(CompanyState::Parked);
    s.retry_after = Some(clock::iso(now() + chrono::Duration::hours(1)));
    assert!(matches!(plan(s, &opts(), now()), Err(Skip::Parked(_))));
}

#[test]
fn resume_continues_a_partial_year_and_skips_complete_ones() {
    let list = vec!["2023".to_string(), "2022".to_string(), "2021".to_string()];
    let cycle = "2026-01-01T00:00:00.000Z";
    let after = "2026-01-01T00:00:01.000Z";
    let known = vec![year("2023", YearState::Complete, 2, 2, after), year("2022", YearState::Partial, 3, 5, after)];
    let tasks = years_to_fetch(&list, &known, cycle, &opts(), 1);
    assert_eq!(tasks.len(), 2);
    assert_eq!((tasks[0].year.as_str(), first_missing(&tasks[0]), tasks[0].pages_total), ("2022", 4, Some(5)));
    assert_eq!((tasks[1].year.as_str(), first_missing(&tasks[1])), ("2021", 1));
}

#[test]
fn a_partial_year_resumed_with_another_page_size_starts_over() {
    let list = vec!["2023".to_string()];
    let after = "2026-01-01T00:00:01.000Z";
    let known = vec![year("2023", YearState::Partial, 2, 5, after)];
    let mut o = opts();
    assert_eq!(first_missing(&years_to_fetch(&list, &known, "2026-01-01T00:00:00.000Z", &o, 1)[0]), 3);
    o.page_size = 20;
    assert_eq!(first_missing(&years_to_fetch(&list, &known, "2026-01-01T00:00:00.000Z", &o, 1)[0]), 1);
}

#[test]
fn refresh_refetches_only_the_latest_year_and_new_years() {
    let list = vec!["2024".to_string(), "2023".to_string(), "2022".to_string()];
    let old = "2025-01-01T00:00:00.000Z";
    let cycle = "2026-01-01T00:00:00.000Z";
    let known = vec![year("2023", YearState::Complete, 2, 2, old), year("2022", YearState::Complete, 1, 1, old)];
    // 2024 is new; 2023 was the latest before but is not now: only 2024.
    let tasks = years_to_fetch(&list, &known, cycle, &opts(), 1);
    assert_eq!(tasks.iter().map(|t| t.year.as_str()).collect::<Vec<_>>(), vec!["2024"]);
    let known = vec![year("2024", YearState::Complete, 2, 2, old), year("2023", YearState::Complete, 2, 2, old)];
    let tasks = years_to_fetch(&list, &known, cycle, &opts(), 1);
    assert_eq!(tasks.iter().map(|t| t.year.as_str()).collect::<Vec<_>>(), vec!["2024", "2022"]);
    let mut full = opts();
    full.full_refresh = true;
    assert_eq!(years_to_fetch(&list, &known, cycle, &full, 1).len(), 3);
}

#[test]
fn per_year_can_cost_no_less_than_a_call_a_year_and_the_rows_it_must_bring() {
    let list = vec!["2024".to_string(), "2023".to_string(), "2022".to_string()];
    let task = YearTask::fresh;
    let old = "2025-01-01T00:00:00.000Z";
    let known = vec![
        year("2023", YearState::Complete, 2, 2, old), // 100 rows
        year("2022", YearState::Complete, 1, 1, old), // 50 rows
    ];
    // A refresh of 2024: T = 400 holds 250 rows beyond the years kept.
    assert_eq!(per_year_at_least(&[task("2024")], &list, &known, Some(400), 50), 5);
    // A first fetch narrowed to 2024: the other years' sizes are unknown.
    assert_eq!(per_year_at_least(&[task("2024")], &list, &[], Some(400), 50), 1);
    assert_eq!(per_year_at_least(&[task("2024"), task("2023"), task("2022")], &list, &[], Some(400), 50), 8);
}

#[test]
fn year_filter() {
    let f = YearFilter { only: None, since: Some(2020) };
    assert!(f.accepts("2020") && f.accepts("2021-06") && !f.accepts("2019"));
    let f = YearFilter { only: Some(vec!["2018".into()]), since: None };
    assert!(f.accepts("2018") && !f.accepts("2019"));
}
