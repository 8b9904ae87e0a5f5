//! The all-years listing: learned from answers, never assumed; paged once
//! learned; every row stored exactly once whichever query brought it; a
//! refresh of an unchanged company costs one call.

mod common;

use std::collections::BTreeMap;

use common::*;
use qcc_customers::pipeline::plan;
use qcc_customers::simulator::{data, Listing, Profile, SimConfig, Simulator};

fn config(profile: Profile, listing: Listing) -> SimConfig {
    SimConfig { profile, listing, ..SimConfig::default() }
}

fn totals(profile: Profile, seed: u64, key: &str) -> Vec<u64> {
    data::company_of(profile, seed, key, 0).years.iter().map(|y| u64::from(y.total)).collect()
}

/// The fewest calls that fetch every row: Σ max(1, ceil(T/50)) for T ≤ 5,000,
/// per year beyond.
fn optimum(profile: Profile, seed: u64, keys: &[String]) -> u64 {
    keys.iter().map(|k| plan::listing_cost(&totals(profile, seed, k), 50)).sum()
}

/// What per-year paging costs: 1 + Σ max(1, min(100, ceil(n_y/50))).
fn per_year_formula(profile: Profile, seed: u64, keys: &[String]) -> u64 {
    keys.iter().map(|k| plan::per_year_cost(&totals(profile, seed, k), 50)).sum()
}

fn evidence(h: &Harness, kind: &str) -> i64 {
    h.conn().query_row("SELECT COUNT(*) FROM listing_evidence WHERE kind = ?1", [kind], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_listing_covering_every_year_a_clean_run_stores_every_row_within_ten_percent_of_the_optimum() {
    let h = Harness::new(config(Profile::Annual, Listing::EveryYear)).await;
    let keys = company_keys(150, "年报全");
    h.write_keys(&keys);
    let s = h.run(&fast_fetch()).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());

    assert_same_rows(&stored_rows(&h.conn()), &expected_rows_of(Profile::Annual, h.seed(), &keys, 0, 0));
    assert_eq!(h.sim.handle.pages_served_twice(), 0, "no page was paid for twice");
    let optimum = optimum(Profile::Annual, h.seed(), &keys);
    let formula = per_year_formula(Profile::Annual, h.seed(), &keys);
    eprintln!("{} calls, optimum {optimum}, per-year formula {formula}", s.calls);
    assert!(s.calls as f64 <= 1.10 * optimum as f64, "{} calls, optimum {optimum}", s.calls);
    assert!(formula > 3 * optimum, "annual-shaped data: per-year paging would cost {formula}");

    // The fact was learned once, recorded with its evidence, and reported.
    assert_eq!(evidence(&h, "every_year"), 1);
    let (key, order): (String, Option<String>) = h
        .conn()
        .query_row("SELECT search_key, order_number FROM listing_evidence", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert!(keys.contains(&key) && order.is_some_and(|o| o.starts_with("CUSTOMER")));
    assert_eq!(s.listing.coverage, "every_year");
    assert!(s.render().contains("covers every year"), "{}", s.render());
    assert!(s.listing.per_year_formula_calls > s.listing.listing_calls);
    let status = h.status_text();
    assert!(status.contains("covers every year (learned)") && status.contains(&key), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_listing_covering_only_the_latest_year_a_run_stores_every_row_at_the_per_year_cost_and_learns_nothing_false(
) {
    for listing in [Listing::LatestYear, Listing::LatestRowsAllTotal] {
        let h = Harness::new(config(Profile::Annual, listing)).await;
        let keys = company_keys(120, "年报最新");
        h.write_keys(&keys);
        let s = h.run(&fast_fetch()).await;
        assert_eq!(s.exit_code, 0, "{listing:?}: {}", s.render());
        assert_same_rows(&stored_rows(&h.conn()), &expected_rows_of(Profile::Annual, h.seed(), &keys, 0, 0));
        assert_eq!(h.sim.handle.pages_served_twice(), 0);
        let formula = per_year_formula(Profile::Annual, h.seed(), &keys);
        assert!(s.calls <= formula, "{listing:?}: {} calls, per-year formula {formula}", s.calls);
        assert_eq!(evidence(&h, "every_year"), 0, "{listing:?}: never learned that the listing covers every year");
        assert_eq!(evidence(&h, "some_years"), 1, "{listing:?}: learned that it holds only some years");
        assert_eq!(s.listing.coverage, "some_years");
    }
}

/// What the simulator holds after `extra` more years and, with `revision`,
/// new contents of each company's latest year only.
fn expected_after(seed: u64, keys: &[String], extra: u32, revision: u64) -> BTreeMap<RowId, RowFields> {
    let mut want = expected_rows_of(Profile::Annual, seed, keys, extra, 0);
    if revision > 0 {
        let revised = expected_rows_of(Profile::Annual, seed, keys, extra, revision);
        for key in keys {
            let Some(latest) =
                data::company_of(Profile::Annual, seed, key, extra).years.first().map(|y| y.year.clone())
            else {
                continue;
            };
            for (id, fields) in revised.iter().filter(|(id, _)| &id.0 == key && id.1 == latest) {
                want.insert(id.clone(), fields.clone());
            }
        }
    }
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_of_unchanged_companies_costs_one_call_each_and_a_changed_one_stores_exactly_the_new_data() {
    let annual = config(Profile::Annual, Listing::EveryYear);
    let h = Harness::new(annual.clone()).await;
    let mut keys = company_keys(60, "年报刷新");
    // Some companies whose listing takes several pages.
    keys.extend(
        (0..)
            .map(|i| format!("年报多页{i}有限公司"))
            .filter(|k| {
                let t: u64 = totals(Profile::Annual, 2019, k).iter().sum();
                t > 100 && t <= 5000
            })
            .take(3),
    );
    h.write_keys(&keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);

    // Nothing changed: one call per company, and the rows are as they were.
    h.age();
    let before = dump_customers(&h.conn());
    let same = Simulator::start(annual.clone()).await.unwrap();
    let s = h.run_on(&same, &fast_fetch()).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    assert_eq!(same.handle.request_count(), keys.len(), "one call per unchanged company");
    assert_eq!(
        s.listing.unchanged as usize,
        keys.len() - keys.iter().filter(|k| totals(Profile::Annual, 2019, k).is_empty()).count()
    );
    assert_eq!(dump_customers(&h.conn()), before);

    // A new year: exactly the new data.
    h.age();
    let newer = Simulator::start(SimConfig { extra_years: 1, ..annual.clone() }).await.unwrap();
    let s = h.run_on(&newer, &fast_fetch()).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    assert_same_rows(&stored_rows(&h.conn()), &expected_after(h.seed(), &keys, 1, 0));
    let changed = keys.len() as u64;
    assert!(newer.handle.billed() <= per_year_formula(Profile::Annual, 2019, &keys) + changed);

    // The latest year's contents change: exactly the new data again.
    h.age();
    let revised = Simulator::start(SimConfig { extra_years: 1, revision: 5, revise_latest_year_only: true, ..annual })
        .await
        .unwrap();
    let s = h.run_on(&revised, &fast_fetch()).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    assert_same_rows(&stored_rows(&h.conn()), &expected_after(h.seed(), &keys, 1, 5));
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM staged_rows"), 0);

    // And `rebuild` re-derives that mix of listing and per-year rows exactly.
    let before = dump_customers(&h.conn());
    h.conn().execute("UPDATE disclosure SET name_id = NULL, sales_amount = -1 WHERE valid_to IS NULL", []).unwrap();
    h.rebuild();
    assert_eq!(dump_customers(&h.conn()), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_contradicts_what_was_learned_sends_its_company_back_to_per_year_paging() {
    let h = Harness::default().await;
    let keys = company_keys(60, "矛盾");
    h.write_keys(&keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);
    assert_eq!(evidence(&h, "every_year"), 1);

    // The API now lists only the latest year's rows under all years' TotalRecords.
    let odd = Simulator::start(config(Profile::Paging, Listing::LatestRowsAllTotal)).await.unwrap();
    let mut fetch = fast_fetch();
    fetch.full_refresh = true;
    let s = h.run_on(&odd, &fetch).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    assert!(s.listing.contradictions > 0, "{}", s.render());
    assert!(s.render().contains("contradicted"), "{}", s.render());
    assert_eq!(evidence(&h, "contradiction") as u64, s.listing.contradictions);
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM staged_rows"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_while_listing_pages_are_fetched_then_a_resume_stores_the_rows_of_an_uninterrupted_run(
) {
    let h = Harness::default().await;
    let keys = company_keys(200, "列表强杀");
    h.write_keys(&keys);
    let total = optimum(Profile::Paging, h.seed(), &keys) as usize;
    let concurrency: u32 = 4;
    let start = |h: &Harness| spawn_run(h, &["--qps", "400", "--concurrency", &concurrency.to_string()]);
    let points = random_points(total);
    let kills = kill_at(&h, &points, start).await;
    assert_eq!(kills as usize, points.len(), "every kill point killed a running process");
    let mut child = start(&h);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));

    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));
    let listed = count(&h.conn(), "SELECT COUNT(*) FROM api_calls WHERE year IS NULL AND page_index > 1");
    assert!(listed > 50, "listing pages were fetched ({listed})");
    let per_kill = concurrency * qcc_customers::pipeline::UNSTORED_CALLS_PER_WORKER as u32;
    let twice = h.sim.handle.pages_served_twice();
    eprintln!("{kills} kills, {twice} pages paid twice (bound {}), {listed} listing pages", kills * per_kill);
    assert!(twice <= kills * per_kill, "{twice} pages paid twice after {kills} kills");
    let check: String = h.conn().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM staged_rows"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_narrowed_by_since_costs_no_more_than_paging_those_years_and_stores_all_their_rows() {
    let h = Harness::default().await;
    let keys = company_keys(150, "限年");
    h.write_keys(&keys);
    let mut fetch = fast_fetch();
    fetch.since = Some(2024);
    let s = h.run(&fetch).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    let formula: u64 = keys
        .iter()
        .map(|k| {
            let years = data::company(h.seed(), k).years;
            let recent: Vec<u64> =
                years.iter().filter(|y| y.year.as_str() >= "2024").map(|y| u64::from(y.total)).collect();
            plan::per_year_cost(&recent, 50)
        })
        .sum();
    assert!(s.calls <= formula, "{} calls, per-year paging of 2024 on costs {formula}", s.calls);
    let stored = stored_rows(&h.conn());
    let want = expected_rows(h.seed(), &keys);
    let recent: BTreeMap<_, _> = want.iter().filter(|(id, _)| id.1.as_str() >= "2024").collect();
    let got: BTreeMap<_, _> = stored.iter().filter(|(id, _)| id.1.as_str() >= "2024").collect();
    assert_eq!(got, recent);
}
