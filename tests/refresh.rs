//! Nightly refresh (docs/design.md §4) and budgets: what a due company costs,
//! new years, atomic replacement of a re-fetched year, --max-calls and
//! --daily-limit.

mod common;

use std::collections::BTreeMap;

use common::*;
use qcc_customers::simulator::{data, SimConfig, Simulator};

fn latest_year_pages(seed: u64, key: &str, extra: u32) -> usize {
    let c = data::company_at(seed, key, extra);
    c.years.first().map_or(0, |y| (y.total as usize).div_ceil(50).clamp(1, 100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_company_costs_one_call_and_a_new_year_costs_discovery_and_that_year() {
    let h = Harness::per_year().await;
    let keys = company_keys(40, "刷新");
    h.write_keys(&keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);

    // Inside the window: nothing is paid.
    let s = h.run(&fast_fetch()).await;
    assert_eq!(s.calls, 0);

    // Past the window, nothing changed: discovery alone, per company.
    h.age();
    let sim2 = Simulator::start(per_year_config()).await.unwrap();
    let s = h.run_on(&sim2, &fast_fetch()).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    assert_eq!(sim2.handle.request_count(), keys.len(), "one call per unchanged company");
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));

    // The API adds a year: exactly that year is fetched (it is now the latest).
    h.age();
    let sim3 = Simulator::start(SimConfig { extra_years: 1, ..per_year_config() }).await.unwrap();
    let s = h.run_on(&sim3, &fast_fetch()).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    let want: usize = keys.iter().map(|k| 1 + latest_year_pages(h.seed(), k, 1)).sum();
    assert_eq!(sim3.handle.request_count(), want, "discovery + the new year only");
    let years_asked: std::collections::BTreeSet<String> =
        sim3.handle.arrivals().into_iter().filter_map(|a| a.year).collect();
    assert!(years_asked.iter().all(|y| y.as_str() > "2022"), "old years were not paid for: {years_asked:?}");
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows_at(h.seed(), &keys, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_stopped_half_way_through_a_year_keeps_its_old_rows_until_the_rerun_completes() {
    // A company whose latest year has several pages.
    let key = (0..).map(|i| format!("刷新中断{i}有限公司")).find(|k| latest_year_pages(2019, k, 0) >= 3).unwrap();
    let keys = vec![key.clone()];
    let h = Harness::per_year().await;
    h.write_keys(&keys);
    h.run(&fast_fetch()).await;
    let old = stored_rows(&h.conn());
    assert_same_rows(&old, &expected_rows(h.seed(), &keys));
    let latest = data::company(h.seed(), &key).years[0].year.clone();

    // New contents; stop after discovery + 2 pages of the latest year.
    h.age();
    let sim2 = Simulator::start(SimConfig { revision: 7, ..per_year_config() }).await.unwrap();
    let mut fetch = fast_fetch();
    fetch.max_calls = Some(3);
    let s = h.run_on(&sim2, &fetch).await;
    assert_eq!(s.exit_code, 75);
    assert_eq!(sim2.handle.request_count(), 3);
    let mid = stored_rows(&h.conn());
    let old_latest: BTreeMap<_, _> = old.iter().filter(|(k, _)| k.1 == latest).collect();
    let mid_latest: BTreeMap<_, _> = mid.iter().filter(|(k, _)| k.1 == latest).collect();
    assert_eq!(mid_latest, old_latest, "the year's previous rows are intact, not a mix");
    assert!(count(&h.conn(), "SELECT COUNT(*) FROM staged_rows") > 0);

    // The re-run completes the replacement without paying the two pages again.
    let s = h.run_on(&sim2, &fast_fetch()).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    assert_eq!(sim2.handle.request_count(), 3 + latest_year_pages(h.seed(), &key, 0) - 2, "only the missing pages");
    let new = stored_rows(&h.conn());
    let want = expected_rows_at(h.seed(), &keys, 0, 7);
    let new_latest: BTreeMap<_, _> = new.iter().filter(|(k, _)| k.1 == latest).collect();
    let want_latest: BTreeMap<_, _> = want.iter().filter(|(k, _)| k.1 == latest).collect();
    assert_eq!(new_latest, want_latest, "the latest year now holds the new rows");
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM staged_rows"), 0);

    // Every change is kept: the old rows of the latest year are closed
    // versions, by the run that completed the year, and the current
    // versions are exactly the stored rows.
    let conn = h.conn();
    assert_current_versions_are_customers(&conn);
    let closed = count(
        &conn,
        &format!("SELECT COUNT(*) FROM customers_history WHERE query_year = '{latest}' AND valid_to IS NOT NULL"),
    );
    assert!(closed > 0, "the old rows are kept as closed versions");
    let last_run = count(&conn, "SELECT MAX(run_id) FROM runs");
    let changes = count(&conn, &format!("SELECT COUNT(*) FROM customer_changes WHERE run_id = {last_run}"));
    assert!(changes >= closed, "{changes} changes for {closed} closed versions");
    assert_eq!(
        count(
            &conn,
            &format!("SELECT COUNT(*) FROM customers_history WHERE query_year <> '{latest}' AND valid_to IS NOT NULL")
        ),
        0,
        "the other years did not change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_calls_stops_at_exactly_n_calls_and_daily_limit_holds_across_runs() {
    let h = Harness::default().await;
    h.write_keys(&company_keys(60, "预算"));
    // Every run of this test reads noon in Beijing: none crosses the daily
    // limit's midnight, whenever the test runs.
    let noon = noon_in_beijing();
    let mut fetch = fast_fetch();
    fetch.max_calls = Some(37);
    let s = h.run_at(&fetch, noon).await;
    assert_eq!(s.exit_code, 75);
    assert!(s.stop_reason.as_deref().unwrap().contains("--max-calls 37"));
    assert_eq!(h.sim.handle.request_count(), 37);
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM api_calls"), 37);

    // 37 calls were made today; a daily limit of 50 leaves 13 for the next run…
    let mut fetch = fast_fetch();
    fetch.daily_limit = Some(50);
    let s = h.run_at(&fetch, noon).await;
    assert_eq!(s.exit_code, 75);
    assert_eq!(s.calls, 13);
    let reason = s.stop_reason.unwrap();
    assert!(reason.contains("--daily-limit 50") && reason.contains("Beijing"), "{reason}");
    // …and none for the one after.
    let s = h.run_at(&fetch, noon).await;
    assert_eq!(s.calls, 0);
    assert_eq!(h.sim.handle.request_count(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_after_7d_run_every_night_at_the_same_time_rechecks_a_company_every_7_nights() {
    let h = Harness::per_year().await;
    let keys = company_keys(5, "每周");
    h.write_keys(&keys);
    let mut fetch = fast_fetch();
    fetch.refresh_after = Some(std::time::Duration::from_secs(7 * 86_400));
    // Each night's run starts at 01:15 (its clock starts there); the
    // companies are stamped some milliseconds later, as in a real run.
    let first_night = chrono::Utc::now().date_naive().and_hms_opt(1, 15, 0).unwrap().and_utc();
    let mut nights_with_discovery = Vec::new();
    for night in 0..15 {
        let before = h.sim.handle.arrivals().len();
        let start = first_night + chrono::Duration::days(night);
        let clock = qcc_customers::clock::Clock::shifted(start - chrono::Utc::now());
        let s = h.run_at(&fetch, clock).await;
        assert_eq!(s.exit_code, 0, "{}", s.render());
        let discoveries =
            h.sim.handle.arrivals()[before..].iter().filter(|a| a.year.is_none() && a.page_index == 1).count();
        if discoveries > 0 {
            assert_eq!(discoveries, keys.len(), "night {night}: every company or none");
            nights_with_discovery.push(night);
        }
    }
    assert_eq!(nights_with_discovery, vec![0, 7, 14]);
}
