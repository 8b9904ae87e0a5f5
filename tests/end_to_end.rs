//! The whole pipeline against the simulator: every row the simulator holds
//! ends up in the database exactly once, and every page is paid for once.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_the_simulator_holds_is_stored_and_every_page_is_paid_once() {
    // Per-year paging, so the pages to pay for are known in advance.
    let h = Harness::per_year().await;
    let mut keys = company_keys(220, "端到端");
    keys.push("QCC-SIM-207-e2e".into()); // a year past the 5,000-entry ceiling
    h.write_keys(&keys);

    let summary = h.run(&fast_fetch()).await;
    assert_eq!(summary.exit_code, 0, "{}", summary.render());

    // Rows: exactly what the simulator holds, by identity and content.
    let expected = expected_rows(h.seed(), &keys);
    assert!(expected.len() > 10_000, "the data set exercises paging ({} rows)", expected.len());
    assert_same_rows(&stored_rows(&h.conn()), &expected);

    // Pages: exactly 1 + Σ max(1, min(100, ceil(n/50))) per company, none twice,
    // none past the end.
    let served = h.sim.handle.served();
    let want = expected_pages(h.seed(), &keys);
    let got: std::collections::BTreeSet<_> = served.keys().cloned().collect();
    assert_eq!(got, want, "the simulator served exactly the planned pages");
    assert_eq!(h.sim.handle.pages_served_twice(), 0, "no page was paid for twice");
    assert_eq!(summary.calls as usize, want.len());

    // States: every company is final, the huge year is flagged truncated.
    let conn = h.conn();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM companies WHERE state NOT IN ('done','no_result')"), 0);
    let truncated: String = conn
        .query_row("SELECT state FROM company_years WHERE search_key = 'QCC-SIM-207-e2e' AND year = '2023'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(truncated, "truncated");
    // Every 200 page has its receipt, and every call is in the ledger.
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM raw_pages"),
        count(&conn, "SELECT COUNT(*) FROM api_calls WHERE status = '200'")
    );
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM api_calls") as usize, want.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_inside_the_refresh_window_makes_no_calls() {
    let h = Harness::default().await;
    let keys = company_keys(30, "再跑");
    h.write_keys(&keys);
    let first = h.run(&fast_fetch()).await;
    assert_eq!(first.exit_code, 0);
    let calls_after_first = h.sim.handle.request_count();

    let second = h.run(&fast_fetch()).await;
    assert_eq!(second.exit_code, 0, "{}", second.render());
    assert_eq!(second.calls, 0);
    assert_eq!(h.sim.handle.request_count(), calls_after_first, "the simulator saw no new request");
    assert_eq!(second.skipped_fresh, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_with_odd_fields_keep_their_text_and_null_their_numbers() {
    let h = Harness::default().await;
    let keys = company_keys(40, "字段");
    h.write_keys(&keys);
    h.run(&fast_fetch()).await;
    let conn = h.conn();
    // The generator emits "-", "未披露", "1,234.56" and "12.34%".
    assert!(
        count(&conn, "SELECT COUNT(*) FROM customers WHERE sales_amount_text = '未披露' AND sales_amount IS NULL") > 0
    );
    assert!(
        count(&conn, "SELECT COUNT(*) FROM customers WHERE sales_amount_text LIKE '%,%' AND sales_amount > 1000") > 0
    );
    assert!(count(&conn, "SELECT COUNT(*) FROM customers WHERE sales_percent_text LIKE '%\\%%' ESCAPE '\\' AND sales_percent IS NOT NULL") > 0);
    assert!(count(&conn, "SELECT COUNT(*) FROM customers WHERE year LIKE '____-06' AND source = '半年报'") > 0);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM customers WHERE name = '' OR name = '-'"), 0);
    assert!(count(&conn, "SELECT COUNT(*) FROM customers WHERE name IS NULL") > 0);
}
