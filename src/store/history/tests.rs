//! The versions the writer keeps, on a real (temporary) database: each
//! commit in its own transaction at its own time, as the writer applies them.

use rusqlite::Connection;

use super::*;
use crate::qcc::wire::ClientRow;
use crate::store::records::{Commit, Event, InputRecord, PageEvent};
use crate::store::write::{apply, register, start_run};
use crate::store::Codebook;

struct Db {
    _dir: tempfile::TempDir,
    store: crate::store::WriteStore,
    run_id: i64,
    codes: Codebook,
}

const A: &str = "甲企业有限公司";
const B: &str = "乙企业有限公司";
const KEY_X: &str = "0123456789abcdef0123456789abcdef";

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let store = crate::store::open_for_writing(&path).unwrap();
    let run_id = start_run(&store.conn, "test", "2026-01-01T00:00:00.000Z").unwrap();
    let mut db = Db { _dir: dir, store, run_id, codes: Codebook::default() };
    for (line, key) in [A, B].into_iter().enumerate() {
        let rec = InputRecord {
            line: line as u64 + 2,
            search_key: key.into(),
            norm_key: key.into(),
            row_json: "{}".into(),
            invalid: None,
        };
        let tx = db.store.conn.transaction().unwrap();
        register(&tx, run_id, &rec, "2026-01-01T00:00:00.000Z").unwrap();
        tx.commit().unwrap();
    }
    db
}

fn row(name: &str, key_no: Option<&str>, amount: f64) -> ClientRow {
    ClientRow {
        year: Some("2024".into()),
        key_no: key_no.map(str::to_string),
        name: (!name.is_empty()).then(|| name.to_string()),
        sales_amount: Some(amount),
        sales_amount_text: Some(format!("{amount:.2}")),
        ..Default::default()
    }
}

impl Db {
    /// `key`'s report year 2024 fetched whole (one page) at `now`.
    fn year_2024(&mut self, key: &str, now: &str, rows: Vec<ClientRow>) -> Changes {
        let page = Event::Page(PageEvent::whole_year("2024", rows));
        let commit = Commit { search_key: key.into(), call: None, events: vec![page] };
        let tx = self.store.conn.transaction().unwrap();
        let applied = apply(&tx, &mut self.codes, self.run_id, &commit, now).unwrap();
        tx.commit().unwrap();
        applied.changes
    }

    fn strings(&self, sql: &str) -> Vec<String> {
        let mut stmt = self.store.conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }

    fn count(&self, sql: &str) -> i64 {
        self.store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

const T1: &str = "2026-03-01T00:00:00.000Z";
const T2: &str = "2026-04-01T00:00:00.000Z";
const T3: &str = "2026-05-01T00:00:00.000Z";

#[test]
fn a_corrected_amount_closes_the_old_version_and_the_change_says_old_and_new() {
    let mut db = db();
    let first = db.year_2024(A, T1, vec![row("华为技术有限公司", Some(KEY_X), 100.0), row("客户二", None, 50.0)]);
    assert_eq!(first, Changes { new_period: 2, ..Changes::default() });
    let fixed = db.year_2024(A, T2, vec![row("华为技术有限公司", Some(KEY_X), 120.5), row("客户二", None, 50.0)]);
    assert_eq!(fixed, Changes { changed: 1, ..Changes::default() });
    let change: (String, f64, f64, String) = db
        .store
        .conn
        .query_row(
            "SELECT change, old_sales_amount, new_sales_amount, seen_at FROM customer_changes
             WHERE change = 'changed'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(change, ("changed".into(), 100.0, 120.5, T2.into()));
    // The old version is closed when the new one opens; `customers` is the current one.
    assert_eq!(
        db.strings("SELECT sales_amount_text || ' ' || valid_from || ' ' || COALESCE(valid_to, '-') FROM customers_history WHERE key_no IS NOT NULL ORDER BY valid_from"),
        vec![format!("100.00 {T1} {T2}"), format!("120.50 {T2} -")]
    );
    assert_eq!(db.strings("SELECT sales_amount_text FROM customers WHERE key_no IS NOT NULL"), vec!["120.50"]);
    // A re-fetch that finds nothing new records nothing.
    assert_eq!(
        db.year_2024(A, T3, vec![row("华为技术有限公司", Some(KEY_X), 120.5), row("客户二", None, 50.0)]),
        Changes::default()
    );
}

#[test]
fn a_customer_gone_from_a_refetched_year_is_closed_not_deleted() {
    let mut db = db();
    db.year_2024(A, T1, vec![row("华为技术有限公司", Some(KEY_X), 100.0), row("比亚迪股份有限公司", None, 80.0)]);
    let gone = db.year_2024(A, T2, vec![row("华为技术有限公司", Some(KEY_X), 100.0)]);
    assert_eq!(gone, Changes { removed: 1, ..Changes::default() });
    assert_eq!(
        db.strings("SELECT name || ' ' || valid_to FROM customers_history WHERE valid_to IS NOT NULL"),
        vec![format!("比亚迪股份有限公司 {T2}")]
    );
    assert_eq!(
        db.strings("SELECT change || ' ' || name FROM customer_changes WHERE seen_at = '2026-04-01T00:00:00.000Z'"),
        vec!["removed 比亚迪股份有限公司"]
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM customers"), 1);
}

#[test]
fn a_customer_that_left_a_period_and_came_back_identical_opens_a_new_version() {
    let mut db = db();
    let both = || vec![row("华为技术有限公司", Some(KEY_X), 100.0), row("比亚迪股份有限公司", None, 80.0)];
    db.year_2024(A, T1, both());
    db.year_2024(A, T2, vec![row("华为技术有限公司", Some(KEY_X), 100.0)]);
    let back = db.year_2024(A, T3, both());
    assert_eq!(back, Changes { added: 1, ..Changes::default() });
    assert_eq!(
        db.strings("SELECT valid_from || ' ' || COALESCE(valid_to, '-') FROM customers_history WHERE name = '比亚迪股份有限公司' ORDER BY valid_from"),
        vec![format!("{T1} {T2}"), format!("{T3} -")]
    );
}

#[test]
fn the_same_keyno_in_two_companies_is_one_customer() {
    let mut db = db();
    db.year_2024(A, T1, vec![row("华为技术有限公司", Some(KEY_X), 100.0)]);
    // Written another way by the other company: the KeyNo decides.
    db.year_2024(B, T1, vec![row("华为技术有限公司（深圳）", Some(KEY_X), 7.0)]);
    // Without a KeyNo, the normalised name decides.
    db.year_2024(A, T2, vec![row("华为技术有限公司", Some(KEY_X), 100.0), row(" 比亚迪股份有限公司", None, 1.0)]);
    db.year_2024(B, T2, vec![row("华为技术有限公司（深圳）", Some(KEY_X), 7.0), row("比亚迪股份有限公司", None, 2.0)]);
    assert_eq!(db.count("SELECT COUNT(*) FROM customer"), 2);
    assert_eq!(db.count("SELECT COUNT(DISTINCT customer_id) FROM customers_history"), 2);
    let shared = db.strings(
        "SELECT CAST(COUNT(DISTINCT search_key) AS TEXT) FROM customers_history WHERE valid_to IS NULL AND anonymised = 0
         GROUP BY customer_id",
    );
    assert_eq!(shared, vec!["2", "2"]);
}

#[test]
fn a_placeholder_name_like_客户一_in_two_companies_is_two_customers() {
    let mut db = db();
    db.year_2024(A, T1, vec![row("客户一", None, 10.0), row("客户二", None, 5.0)]);
    db.year_2024(B, T1, vec![row("客户一", None, 30.0), row("第二名", None, 9.0)]);
    assert_eq!(db.count("SELECT COUNT(*) FROM customer"), 0, "a placeholder is no customer");
    assert_eq!(db.count("SELECT COUNT(*) FROM customers_history WHERE anonymised = 1 AND customer_id IS NULL"), 4);
    // Nobody shares 客户一.
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM (SELECT customer_id FROM customers_history
             WHERE valid_to IS NULL AND anonymised = 0 GROUP BY customer_id HAVING COUNT(DISTINCT search_key) > 1)"
        ),
        0
    );
    // A placeholder is identified by its position: its amount changing is a change, not a new customer.
    let c = db.year_2024(A, T2, vec![row("客户一", None, 11.0), row("客户二", None, 5.0)]);
    assert_eq!(c, Changes { changed: 1, ..Changes::default() });
}

#[test]
fn who_sells_to_a_name_uses_an_index() {
    let db = db();
    for (sql, index) in [
        (
            "SELECT search_key FROM customers_history WHERE valid_to IS NULL AND name = '华为技术有限公司'",
            "customer_names",
        ),
        ("SELECT search_key FROM customers_history WHERE valid_to IS NULL AND key_no = 'x'", "customer_by_key_no"),
    ] {
        let mut stmt = db.store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let details: Vec<String> = stmt.query_map([], |r| r.get(3)).unwrap().map(Result::unwrap).collect();
        assert!(details.iter().all(|d| !d.starts_with("SCAN")), "{sql}: {details:?}");
        assert!(details.iter().any(|d| d.contains(index)), "{sql}: {details:?}");
    }
    // The latest period first comes from the index: only the rows of a
    // period are sorted (by company), never every row of the customer.
    for by in ["name = '华为技术有限公司'", "key_no = 'x'"] {
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT search_key FROM customers_history WHERE valid_to IS NULL AND {by}
             ORDER BY period DESC, search_key LIMIT 5"
        );
        let mut stmt = db.store.conn.prepare(&sql).unwrap();
        let details: Vec<String> = stmt.query_map([], |r| r.get(3)).unwrap().map(Result::unwrap).collect();
        assert!(details.iter().all(|d| d != "USE TEMP B-TREE FOR ORDER BY"), "{by}: {details:?}");
    }
}

#[test]
fn rows_per_report_year_count_what_customers_holds_and_sort_no_row() {
    let mut db = db();
    db.year_2024(A, T1, vec![row("华为技术有限公司", Some(KEY_X), 100.0), row("客户一", None, 5.0)]);
    db.year_2024(B, T1, vec![row("华为技术有限公司", Some(KEY_X), 7.0)]);
    // A correction closes a version: only the current ones count.
    db.year_2024(B, T2, vec![row("华为技术有限公司", Some(KEY_X), 8.0)]);
    let view = db.strings("SELECT query_year || ' ' || rows || ' ' || companies FROM report_years");
    let direct = db.strings(
        "SELECT query_year || ' ' || COUNT(*) || ' ' || COUNT(DISTINCT search_key) FROM customers GROUP BY query_year",
    );
    assert_eq!(view, direct);
    assert_eq!(view, ["2024 3 2"]);
    let mut stmt = db.store.conn.prepare("EXPLAIN QUERY PLAN SELECT * FROM report_years").unwrap();
    let plan: Vec<String> = stmt.query_map([], |r| r.get(3)).unwrap().map(Result::unwrap).collect();
    // Each company's year is counted in the index's order; only those
    // counts (a row per company-year) are sorted.
    assert!(plan.iter().any(|d| d.contains("disclosure_current")), "{plan:?}");
    assert_eq!(plan.iter().filter(|d| d.contains("TEMP B-TREE")).count(), 1, "{plan:?}");
}

#[test]
fn an_upgraded_file_gets_its_history_from_the_rows_it_holds() {
    // A file as version 11 left it: rows in `customer_rows`, no versions.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v11.sqlite");
    let conn = Connection::open(&path).unwrap();
    for (_, sql) in &crate::store::MIGRATIONS[..11] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "application_id", crate::store::APPLICATION_ID).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA user_version = 11;
         INSERT INTO companies (search_key, norm_key, state, updated_at, fetched_at, company_id)
           VALUES ('{A}', '{A}', 'done', '{T1}', '{T1}', 1);
         INSERT INTO customer_rows (company_id, query_year, from_listing, page_index, row_index, year, name, key_no,
                                    sales_amount, fetched_at)
           SELECT company_id, '2024', 0, 1, 0, NULL, '华为技术有限公司', '{KEY_X}', 10000, '{T1}' FROM companies;
         INSERT INTO customer_rows (company_id, query_year, from_listing, page_index, row_index, year, name, key_no,
                                    sales_amount, fetched_at)
           SELECT company_id, '2024', 0, 1, 1, NULL, '客户一', NULL, 500, '{T1}' FROM companies;"
    ))
    .unwrap();
    let before: Vec<String> = conn
        .prepare("SELECT name || ' ' || sales_amount_text FROM customers ORDER BY row_index")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(before, ["华为技术有限公司 100.00", "客户一 5.00"]);
    drop(conn);
    let store = crate::store::open_for_writing(&path).unwrap();
    let got: Vec<String> = store
        .conn
        .prepare(
            "SELECT name || ' ' || sales_amount_text || ' ' || valid_from || ' ' || anonymised FROM customers_history
             ORDER BY row_index",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, vec![format!("华为技术有限公司 100.00 {T1} 0"), format!("客户一 5.00 {T1} 1")]);
    let current: Vec<String> = store
        .conn
        .prepare("SELECT name || ' ' || sales_amount_text || ' ' || fetched_at FROM customers ORDER BY row_index")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(current, vec![format!("华为技术有限公司 100.00 {T1}"), format!("客户一 5.00 {T1}")]);
}
