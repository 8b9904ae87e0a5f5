//! Files of earlier versions upgrade in place on the next open: every
//! stored value reads back as before, encoded as a run of this version
//! encodes it, and a rebuild from old receipts stores no row twice.

mod common;

use common::*;
use qcc_customers::simulator::{data, SimConfig, Simulator};

/// The schema of version 3 (before the listing), as `migrations/` built it.
fn v3_file(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    for sql in [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_staging.sql"),
        include_str!("../migrations/0003_page_size.sql"),
    ] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 3;").unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_3_file_with_archived_discovery_pages_is_upgraded_in_place_and_rebuilds_without_duplicates() {
    // Companies of two years or more: per-year paging, as version 3 did it.
    let keys: Vec<String> =
        company_keys(80, "旧版").into_iter().filter(|k| data::company(2019, k).years.len() >= 2).take(30).collect();
    let h = Harness::per_year().await;
    h.write_keys(&keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);

    // The same data as version 3 stored it (discovery pages archived under
    // query_year '', rows without `from_listing`).
    let old = h.dir.path().join("v3.sqlite");
    // Version 3 kept its receipts as zlib.
    assert!(receipts_to_zlib(&h.conn(), |_| true) > 0);
    let conn = v3_file(&old);
    conn.execute("ATTACH DATABASE ?1 AS v4", [h.db.to_str().unwrap()]).unwrap();
    conn.execute_batch(
        "INSERT INTO runs SELECT run_id, started_at, finished_at, status, exit_code, input_path, calls, rows_written,
                                 summary FROM v4.runs;
         INSERT INTO companies SELECT search_key, norm_key, input_row, input_line, state, status_code, message,
                year_list, discovered_at, fetched_at, retry_after, first_run_id, last_run_id, updated_at FROM v4.companies;
         INSERT INTO company_years SELECT search_key, year, state, total_records, pages_total, pages_fetched,
                fetched_at, page_size FROM v4.company_years;
         INSERT INTO customers SELECT search_key, year, query_year, page_index, row_index, name, key_no, image_url,
                sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
                FROM v4.customers;
         INSERT INTO api_calls SELECT * FROM v4.api_calls;
         INSERT INTO raw_pages SELECT raw_id, search_key, query_year, page_index, order_number, fetched_at, body
                FROM v4.raw_pages;",
    )
    .unwrap();
    drop(conn);
    std::fs::remove_file(&h.db).unwrap();
    std::fs::rename(&old, &h.db).unwrap();
    assert!(count(&h.conn(), "SELECT COUNT(*) FROM raw_pages WHERE query_year = ''") >= keys.len() as i64);

    // `rebuild` upgrades the file and re-derives the rows: the discovery
    // pages' rows are not stored a second time.
    h.rebuild();
    let version: i64 = h.conn().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version as usize, qcc_customers::store::schema_version());
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));

    // A refresh of the upgraded file (with new contents) stores exactly the new data.
    h.age();
    let revised = Simulator::start(SimConfig { revision: 3, ..per_year_config() }).await.unwrap();
    let mut fetch = fast_fetch();
    fetch.full_refresh = true;
    let s = h.run_on(&revised, &fetch).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows_at(h.seed(), &keys, 0, 3));
}

/// The schema of version 5 (the last before compact rows), as `migrations/` built it.
fn v5_file(path: &std::path::Path) -> rusqlite::Connection {
    let conn = v3_file(path);
    for sql in [include_str!("../migrations/0004_listing.sql"), include_str!("../migrations/0005_pages_stored.sql")] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 5;").unwrap();
    conn
}

/// Every value of a table or view, in key order, with its SQLite type.
fn all_values(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<rusqlite::types::Value>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect())
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_5_file_upgraded_to_the_readers_model_reads_back_every_value_exactly_as_a_run_stores_it() {
    let h = Harness::default().await;
    let keys = company_keys(40, "紧凑");
    h.write_keys(&keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);
    let order = "ORDER BY search_key, query_year, from_listing, page_index, row_index";
    let view = all_values(&h.conn(), &format!("SELECT * FROM customers {order}"));
    assert!(view.len() > 1000, "{} rows", view.len());

    // The same rows as version 5 stored them, plus the unusual ones: no
    // year, a KeyNo that is not lower-case hex, an absent or another picture
    // address, a fetched_at that is not the tool's own, and a row whose
    // company has no record.
    let old = h.dir.path().join("v5.sqlite");
    let conn = v5_file(&old);
    conn.execute("ATTACH DATABASE ?1 AS v6", [h.db.to_str().unwrap()]).unwrap();
    conn.execute_batch(
        "INSERT INTO companies (search_key, norm_key, state, updated_at, fetched_at)
             SELECT search_key, norm_key, state, updated_at, fetched_at FROM v6.companies;
         INSERT INTO customers SELECT * FROM v6.customers;
         INSERT INTO customers VALUES
           ('紧凑特例公司', NULL, '', 1, 1, 0, '无年份', 'ABCDEF0123456789ABCDEF0123456789', NULL, 1.5, '1.5', NULL, '-', '', '年报', '2026-01-01T00:00:00.000Z'),
           ('紧凑特例公司', '2021-06', '2021', 1, 1, 1, '半年', '0123456789abcdef0123456789abcdef', NULL, NULL, '未披露', NULL, NULL, NULL, NULL, '2026-01-01 08:00:00'),
           ('紧凑特例公司', '2021', '2021', 1, 1, 2, '别的图', '0123456789abcdef0123456789abcdef', 'https://example.invalid/x.jpg', NULL, NULL, NULL, NULL, NULL, NULL, '1969-12-31T23:59:59.999Z'),
           ('紧凑特例公司', '2021', '2021', 1, 1, 3, '无编号', NULL, 'https://qccdata.qichacha.com/AutoImage/.jpg?x-oss-process=image/resize,w_120', NULL, NULL, NULL, NULL, NULL, NULL, '2026-02-30T00:00:00.000Z'),
           ('紧凑特例公司', '2021', '2021', 1, 1, 4, '新图址', '00112233445566778899aabbccddeeff', 'https://image.qcc.com/auto/00112233445566778899aabbccddeeff.jpg?x-oss-process=style/logo_120', NULL, NULL, NULL, NULL, NULL, NULL, '2026-01-01T00:00:00.000Z'),
           ('紧凑特例公司', '2021', '2021', 1, 1, 5, '新图址', 'AABBCCDDEEFF00112233445566778899', 'https://co-image.qichacha.com/CompanyImage/AABBCCDDEEFF00112233445566778899.jpg?x-oss-process=image/resize,w_160', NULL, NULL, NULL, NULL, NULL, NULL, '2026-01-01T00:00:00.000Z'),
           ('紧凑特例公司', '2021', '2021', 1, 1, 6, '默认图', 'ffeeddccbbaa99887766554433221100', 'https://co-image.qichacha.com/CompanyImage/default.jpg', NULL, NULL, NULL, NULL, NULL, NULL, '2026-01-01T00:00:00.000Z'),
           ('紧凑特例公司', '2021', '2021', 1, 1, 7, '默认图', NULL, 'https://co-image.qichacha.com/CompanyImage/default.jpg', NULL, NULL, NULL, NULL, NULL, NULL, '2026-01-01T00:00:00.000Z'),
           ('紧凑特例公司', '2021', '2021', 1, 1, 8, '数字', NULL, NULL, -0.0, '-0.00', 12.5, '12.50', NULL, NULL, '2026-01-01T00:00:00.000Z'),
           ('紧凑特例公司', '2021', '2021', 1, 1, 9, '大数', NULL, NULL, 12345678901234.5, '12345678901234.50', 0.0, '0.00', NULL, NULL, '2026-01-01T00:00:00.000Z');
         INSERT INTO companies (search_key, norm_key, state, updated_at) VALUES ('紧凑特例公司', '紧凑特例公司', 'done', 'x');
         INSERT INTO customers_staging VALUES
           ('无记录公司', '2020', '2020', 0, 1, 0, '孤行', 'fedcba9876543210fedcba9876543210', 'https://qccdata.qichacha.com/AutoImage/fedcba9876543210fedcba9876543210.jpg?x-oss-process=image/resize,w_120', 2.0, '2', 3.0, '3%', '', '年报', '2026-03-01T12:00:00.007Z');",
    )
    .unwrap();
    let before = all_values(&conn, &format!("SELECT * FROM customers {order}"));
    let staged_before = all_values(&conn, &format!("SELECT * FROM customers_staging {order}"));
    drop(conn);

    let store = qcc_customers::store::open_for_writing(&old).unwrap();
    let after = all_values(&store.conn, &format!("SELECT * FROM customers {order}"));
    assert_eq!(after, before, "the upgrade keeps every value, with its type");
    assert_eq!(after.len(), view.len() + 10);
    let staged_after = all_values(
        &store.conn,
        "SELECT co.search_key, r.year, r.query_year, r.from_listing, r.page_index, r.row_index, r.name, r.key_no,
                r.image_url, r.sales_amount, r.sales_amount_text, r.sales_percent, r.sales_percent_text,
                r.relationship, r.source, r.fetched_at
         FROM staged_rows r LEFT JOIN companies co USING (company_id)",
    );
    assert_eq!(staged_after.len(), staged_before.len(), "a row without a company record is kept");
    // The rows are the current versions, one kind of value per column.
    common::assert_current_versions_are_customers(&store.conn);
    for (what, sql) in [
        ("numbers", "SELECT COUNT(*) FROM disclosure WHERE typeof(sales_amount) NOT IN ('real', 'null')"),
        ("names", "SELECT COUNT(*) FROM disclosure WHERE typeof(name_id) NOT IN ('integer', 'null')"),
        ("labels", "SELECT COUNT(*) FROM disclosure WHERE typeof(source) NOT IN ('text', 'null')"),
        ("times", "SELECT COUNT(*) FROM disclosure WHERE typeof(valid_from) <> 'text'"),
    ] {
        assert_eq!(count(&store.conn, sql), 0, "{what}");
    }
    // Every picture address of the upgraded file around its KeyNo (upper-case
    // or not) is a learned template, and so is one in more than one
    // company's rows.
    assert_eq!(
        count(
            &store.conn,
            "SELECT COUNT(*) FROM disclosure d JOIN customer c USING (customer_id)
             WHERE typeof(d.image_url) = 'text' AND instr(d.image_url, c.key_no) > 0"
        ),
        0
    );
    assert_eq!(
        count(&store.conn, "SELECT COUNT(*) FROM image_templates WHERE keyed = 0 AND prefix LIKE '%default.jpg'"),
        1
    );
    // The history the revisit schedule learns from starts with what the file
    // knew: each fetched company's stored periods, and its last fetch as a check.
    let fetched_with_rows = count(
        &store.conn,
        "SELECT COUNT(DISTINCT d.company_id) FROM disclosure d JOIN companies co USING (company_id)
         WHERE co.fetched_at IS NOT NULL",
    );
    assert!(fetched_with_rows > 0);
    assert_eq!(count(&store.conn, "SELECT COUNT(DISTINCT company_id) FROM company_periods"), fetched_with_rows);
    assert_eq!(count(&store.conn, "SELECT COUNT(*) FROM company_periods WHERE not_before IS NOT NULL"), 0);
    assert_eq!(
        count(&store.conn, "SELECT COUNT(*) FROM company_checks"),
        count(
            &store.conn,
            "SELECT COUNT(*) FROM companies WHERE state IN ('done', 'no_result') AND fetched_at IS NOT NULL"
        )
    );
}

/// `customer_changes` as a list, with when each change was seen or without it.
fn changes(conn: &rusqlite::Connection, with_seen_at: bool) -> Vec<Vec<rusqlite::types::Value>> {
    let seen = if with_seen_at { "seen_at" } else { "NULL" };
    let mut all = all_values(
        conn,
        &format!(
            "SELECT search_key, period, name, key_no, change, old_sales_amount, new_sales_amount,
                    old_sales_percent, new_sales_percent, run_id, {seen} FROM customer_changes"
        ),
    );
    all.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_file_reads_back_value_for_value_and_rebuild_recovers_its_history_from_receipts() {
    // Two runs: a first fetch, then the API corrects its rows and a second run stores them.
    let h = Harness::per_year().await;
    let keys = company_keys(16, "回放");
    h.write_keys(&keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);
    h.age();
    let corrected = Simulator::start(SimConfig { revision: 7, ..per_year_config() }).await.unwrap();
    assert_eq!(h.run_on(&corrected, &fast_fetch()).await.exit_code, 0);
    let order = "ORDER BY search_key, query_year, from_listing, page_index, row_index";
    let rows = all_values(&h.conn(), &format!("SELECT * FROM customers {order}"));
    let history = changes(&h.conn(), true);
    assert!(
        history.iter().any(|c| c[4] == rusqlite::types::Value::Text("changed".into())),
        "the correction is in the history"
    );
    let second_started: String =
        h.conn().query_row("SELECT started_at FROM runs ORDER BY run_id DESC LIMIT 1", [], |r| r.get(0)).unwrap();
    let as_of = |conn: &rusqlite::Connection| {
        all_values(
            conn,
            &format!(
                "SELECT search_key, period, name, sales_amount, sales_percent FROM customers_history
                 WHERE valid_from <= '{second_started}' AND (valid_to IS NULL OR valid_to > '{second_started}')
                 ORDER BY search_key, query_year, from_listing, page_index, row_index"
            ),
        )
    };
    let known_before_the_correction = as_of(&h.conn());
    assert!(!known_before_the_correction.is_empty());

    // The same file as version 5 kept it: its rows and receipts, no history.
    assert!(receipts_to_zlib(&h.conn(), |_| true) > 0);
    let old = h.dir.path().join("v5.sqlite");
    let conn = v5_file(&old);
    conn.execute("ATTACH DATABASE ?1 AS now", [h.db.to_str().unwrap()]).unwrap();
    conn.execute_batch(
        "INSERT INTO runs SELECT run_id, started_at, finished_at, status, exit_code, input_path, calls, rows_written,
                                 summary FROM now.runs;
         INSERT INTO companies SELECT search_key, norm_key, input_row, input_line, state, status_code, message,
                year_list, discovered_at, fetched_at, retry_after, first_run_id, last_run_id, updated_at,
                total_records, discovery_digest, fetch_plan FROM now.companies;
         INSERT INTO company_years SELECT search_key, year, state, total_records, pages_total, pages_fetched,
                fetched_at, page_size, source, pages_beyond FROM now.company_years;
         INSERT INTO company_listings SELECT search_key, state, total_records, pages_total, pages_fetched,
                rows_fetched, page_size, started_at, fetched_at, pages_beyond FROM now.company_listings;
         INSERT INTO customers SELECT * FROM now.customers;
         INSERT INTO raw_pages SELECT raw_id, search_key, query_year, page_index, order_number, fetched_at, body
                FROM now.raw_pages;",
    )
    .unwrap();
    drop(conn);
    std::fs::remove_file(&h.db).unwrap();
    std::fs::rename(&old, &h.db).unwrap();

    // The upgrade reads back value for value; its history starts at the rows' fetch.
    drop(qcc_customers::store::open_for_writing(&h.db).unwrap());
    assert_eq!(all_values(&h.conn(), &format!("SELECT * FROM customers {order}")), rows);
    assert!(
        !changes(&h.conn(), false).iter().any(|c| c[4] == rusqlite::types::Value::Text("changed".into())),
        "no history yet"
    );

    // `rebuild` replays the receipts: the history is back, change for change.
    let out = h.rebuild_with(&[]);
    assert!(out.contains("the same rows as before"), "{out}");
    assert_eq!(all_values(&h.conn(), &format!("SELECT * FROM customers {order}")), rows);
    common::assert_current_versions_are_customers(&h.conn());
    assert_eq!(as_of(&h.conn()), known_before_the_correction, "what the file knew before the correction");
    // A first fetch's rows are each a new version, as the run made them; a
    // period whose first page the discovery call brought counts its other
    // pages as `added` in the run and as `new_period` in the replay, which
    // reads only the year's own receipts.
    let first_fetch = |all: Vec<Vec<rusqlite::types::Value>>| -> Vec<Vec<rusqlite::types::Value>> {
        let mut all: Vec<_> = all
            .into_iter()
            .map(|mut c| {
                if c[4] == rusqlite::types::Value::Text("added".into()) && c[9] == 1i64.into() {
                    c[4] = rusqlite::types::Value::Text("new_period".into());
                }
                c
            })
            .collect();
        all.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        all
    };
    assert_same_changes(&first_fetch(changes(&h.conn(), false)), &first_fetch(changes_without_seen_at(&history)));
    // A re-fetch's changes are seen when its last page was stored, as the run saw them.
    let second_run = count(&h.conn(), "SELECT MAX(run_id) FROM runs");
    let of_run = |all: &[Vec<rusqlite::types::Value>]| -> Vec<Vec<rusqlite::types::Value>> {
        all.iter().filter(|c| c[9] == second_run.into()).cloned().collect()
    };
    assert_eq!(of_run(&changes(&h.conn(), true)), of_run(&history));
    // A second rebuild makes the same history again.
    let replayed = changes(&h.conn(), true);
    let again = h.rebuild_with(&[]);
    assert!(again.contains("the same rows as before"), "{again}");
    assert_eq!(changes(&h.conn(), true), replayed);
}

/// The two lists of changes are the same; else which are in one only.
fn assert_same_changes(got: &[Vec<rusqlite::types::Value>], want: &[Vec<rusqlite::types::Value>]) {
    let only = |a: &[Vec<rusqlite::types::Value>], b: &[Vec<rusqlite::types::Value>]| -> Vec<String> {
        a.iter().filter(|c| !b.contains(c)).map(|c| format!("{c:?}")).collect()
    };
    assert!(
        got == want,
        "{} changes, {} wanted; only got:\n{}\nonly wanted:\n{}",
        got.len(),
        want.len(),
        only(got, want).join("\n"),
        only(want, got).join("\n")
    );
}

fn changes_without_seen_at(all: &[Vec<rusqlite::types::Value>]) -> Vec<Vec<rusqlite::types::Value>> {
    let mut out: Vec<_> = all
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c[10] = rusqlite::types::Value::Null;
            c
        })
        .collect();
    out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    out
}
