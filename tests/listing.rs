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
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM customer_rows_staging"), 0);

    // And `rebuild` re-derives that mix of listing and per-year rows exactly.
    let before = dump_customers(&h.conn());
    h.conn().execute("UPDATE customer_rows SET name = 'corrupted', sales_amount = -1", []).unwrap();
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
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM customer_rows_staging"), 0);
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
    let per_kill = concurrency * (1 + qcc_customers::pipeline::COMMIT_WINDOW_PER_WORKER as u32);
    let twice = h.sim.handle.pages_served_twice();
    eprintln!("{kills} kills, {twice} pages paid twice (bound {}), {listed} listing pages", kills * per_kill);
    assert!(twice <= kills * per_kill, "{twice} pages paid twice after {kills} kills");
    let check: String = h.conn().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM customer_rows_staging"), 0);
}

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
async fn a_version_5_file_upgraded_to_compact_rows_reads_back_every_value_exactly_as_a_run_stores_it() {
    let h = Harness::default().await;
    let keys = company_keys(40, "紧凑");
    h.write_keys(&keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);
    let order = "ORDER BY search_key, query_year, from_listing, page_index, row_index";
    let view = all_values(&h.conn(), &format!("SELECT * FROM customers {order}"));
    let encoded = all_values(
        &h.conn(),
        "SELECT co.search_key, r.query_year, r.from_listing, r.page_index, r.row_index, r.year, r.name, r.key_no,
                CASE WHEN typeof(r.image_url) = 'integer'
                     THEN (SELECT 'template ' || t.keyed || ' ' || t.prefix || ' ' || t.suffix
                           FROM image_templates t WHERE t.template_id = r.image_url)
                     ELSE r.image_url END, r.sales_amount, r.sales_amount_text, r.sales_percent, r.sales_percent_text,
                r.relationship, r.source, r.fetched_at
         FROM customer_rows r JOIN companies co USING (company_id)
         ORDER BY co.search_key, r.query_year, r.from_listing, r.page_index, r.row_index",
    );
    assert!(view.len() > 1000, "{} rows", view.len());

    // The same rows as version 5 stored them, plus the unusual ones: no
    // year, a KeyNo that is not lower-case hex, an absent or another picture
    // address, a fetched_at that is not the tool's own, and a row whose
    // company has no record.
    let old = h.dir.path().join("v5.sqlite");
    let conn = rusqlite::Connection::open(&old).unwrap();
    for sql in [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_staging.sql"),
        include_str!("../migrations/0003_page_size.sql"),
        include_str!("../migrations/0004_listing.sql"),
        include_str!("../migrations/0005_pages_stored.sql"),
    ] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 5;").unwrap();
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
        "SELECT co.search_key, r.year, r.query_year, r.from_listing, r.page_index, r.row_index, r.name,
                lower(hex(r.key_no)), r.image_url, r.sales_amount, r.sales_amount_text, r.sales_percent,
                r.sales_percent_text, r.relationship, r.source, r.fetched_at
         FROM customer_rows_staging r JOIN companies co USING (company_id)",
    );
    assert_eq!(staged_after.len(), staged_before.len(), "a row without a company record is kept");
    // What the migrations encoded is what a run's writer encodes (a
    // picture-address template compared by its shape: ids are numbered in
    // the order each learned them).
    let migrated = all_values(
        &store.conn,
        "SELECT co.search_key, r.query_year, r.from_listing, r.page_index, r.row_index, r.year, r.name, r.key_no,
                CASE WHEN typeof(r.image_url) = 'integer'
                     THEN (SELECT 'template ' || t.keyed || ' ' || t.prefix || ' ' || t.suffix
                           FROM image_templates t WHERE t.template_id = r.image_url)
                     ELSE r.image_url END, r.sales_amount, r.sales_amount_text, r.sales_percent, r.sales_percent_text,
                r.relationship, r.source, r.fetched_at
         FROM customer_rows r JOIN companies co USING (company_id) WHERE co.search_key <> '紧凑特例公司'
         ORDER BY co.search_key, r.query_year, r.from_listing, r.page_index, r.row_index",
    );
    assert_eq!(migrated, encoded);
    assert!(count(&store.conn, "SELECT COUNT(*) FROM customer_rows WHERE typeof(key_no) = 'blob'") > 0);
    // Every picture address of the upgraded file around its KeyNo (upper-case
    // or not) is a learned template, and so is one in more than one
    // company's rows.
    assert_eq!(
        count(
            &store.conn,
            "SELECT COUNT(*) FROM customers WHERE key_no <> '' AND instr(image_url, key_no) > 0 AND image_url IN
               (SELECT image_url FROM customer_rows WHERE typeof(image_url) = 'text')"
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
        "SELECT COUNT(DISTINCT r.company_id) FROM customer_rows r JOIN companies co USING (company_id)
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
