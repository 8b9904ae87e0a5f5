//! Picture addresses stored as learned templates: every shape real answers
//! carry reads back byte for byte, and a shape nobody listed is learned.

mod common;

use std::collections::BTreeMap;

use common::*;
use qcc_customers::qcc::wire;
use qcc_customers::simulator::{data, Pictures, Profile, SimConfig};

/// The picture address of every stored row, by (key, year, position in its year).
fn stored_images(conn: &rusqlite::Connection) -> BTreeMap<(String, String, u32), Option<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT search_key, query_year, image_url FROM customers
             ORDER BY search_key, query_year, from_listing, page_index, row_index",
        )
        .unwrap();
    let mut out = BTreeMap::new();
    let mut last: Option<(String, String)> = None;
    let mut i = 0;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))).unwrap() {
        let (key, year, image) = row.unwrap();
        if last.as_ref() != Some(&(key.clone(), year.clone())) {
            (last, i) = (Some((key.clone(), year.clone())), 0);
        }
        out.insert((key, year, i), image);
        i += 1;
    }
    out
}

/// What the simulator serves as each row's picture address, parsed as the client parses it.
fn served_images(seed: u64, keys: &[String], pictures: Pictures) -> BTreeMap<(String, String, u32), Option<String>> {
    let mut out = BTreeMap::new();
    for key in keys {
        for y in data::company_of(Profile::Paging, seed, key, 0).years {
            for i in 0..y.total.min(5000) {
                let json = data::row_pictured(seed, 0, key, &y.year, i, pictures);
                let body = serde_json::json!({"Status": "200", "Result": {"ClientList": [json]}});
                let parsed = wire::parse(body.to_string().as_bytes()).unwrap();
                out.insert((key.clone(), y.year.clone(), i), parsed.clients[0].image_url.clone());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_picture_address_format_reads_back_byte_for_byte() {
    for pictures in Pictures::FORMATS.into_iter().chain([Pictures::Mixed]) {
        let h = Harness::new(SimConfig { pictures, ..SimConfig::default() }).await;
        let keys = company_keys(12, "图址");
        h.write_keys(&keys);
        assert_eq!(h.run(&fast_fetch()).await.exit_code, 0, "{}", pictures.name());
        let stored = stored_images(&h.conn());
        let served = served_images(h.seed(), &keys, pictures);
        assert_eq!(stored.len(), served.len(), "{}", pictures.name());
        assert_eq!(stored, served, "{}: every address as it came", pictures.name());
        let conn = h.conn();
        // An address around its row's KeyNo is never stored whole, nor one
        // in more than one company's rows (a default picture).
        let keyed_as_text = count(
            &conn,
            "SELECT COUNT(*) FROM disclosure d JOIN customer c USING (customer_id)
             WHERE typeof(d.image_url) = 'text' AND instr(d.image_url, c.key_no) > 0",
        );
        assert_eq!(keyed_as_text, 0, "{}", pictures.name());
        let repeated_as_text = count(
            &conn,
            "SELECT COUNT(*) FROM (SELECT image_url FROM disclosure WHERE typeof(image_url) = 'text'
                                   GROUP BY image_url HAVING COUNT(DISTINCT company_id) > 1)",
        );
        assert_eq!(repeated_as_text, 0, "{}", pictures.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_with_an_unknown_shape_around_the_keyno_is_learned_as_a_new_template() {
    let h = Harness::default().await;
    h.write_keys(&company_keys(4, "新图址"));
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);
    let conn = h.conn();
    let templates_before = count(&conn, "SELECT COUNT(*) FROM image_templates");
    // A shape nobody listed: the writer learns it from the first row that has it.
    let key = "0123456789abcdef0123456789abcdef";
    let url = format!("https://cdn.example.invalid/logos/v2/{key}/small.webp?sig=abc");
    drop(conn);
    let (written, learned) = write_rows_with(
        &h,
        &[(key, &url), ("fedcba9876543210fedcba9876543210", &url.replace(key, "fedcba9876543210fedcba9876543210"))],
    );
    assert_eq!(written, 2);
    let conn = h.conn();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM image_templates"), templates_before + 1, "one shape, one template");
    assert_eq!(learned, 2, "both rows store the template's id");
    let back: Vec<String> = conn
        .prepare("SELECT image_url FROM customers WHERE name = '新形状' ORDER BY row_index")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(back, [url.clone(), url.replace(key, "fedcba9876543210fedcba9876543210")]);
}

/// Store one page of rows named 新形状 with these (KeyNo, address) pairs
/// through the writer's own statements; returns the rows written and how
/// many store a template id.
fn write_rows_with(h: &Harness, rows: &[(&str, &str)]) -> (u64, i64) {
    use qcc_customers::store::records::{Commit, Event, InputRecord, PageEvent};
    let mut store = qcc_customers::store::open_for_writing(&h.db).unwrap();
    let now = "2026-06-15T04:00:00.000Z";
    let run_id = qcc_customers::store::write::start_run(&store.conn, "test", now).unwrap();
    let mut codes = qcc_customers::store::Codebook::load(&store.conn).unwrap();
    let tx = store.conn.transaction().unwrap();
    let rec = InputRecord {
        line: 1,
        search_key: "新形状公司".into(),
        norm_key: "新形状公司".into(),
        row_json: "{}".into(),
        invalid: None,
    };
    qcc_customers::store::write::register(&tx, run_id, &rec, now).unwrap();
    let clients = rows
        .iter()
        .map(|(k, u)| wire::ClientRow {
            year: Some("2024".into()),
            name: Some("新形状".into()),
            key_no: Some(k.to_string()),
            image_url: Some(u.to_string()),
            ..Default::default()
        })
        .collect();
    let page = PageEvent::whole_year("2024", clients);
    let commit = Commit { search_key: "新形状公司".into(), call: None, events: vec![Event::Page(page)] };
    let n = qcc_customers::store::write::apply(&tx, &mut codes, run_id, &commit, now).unwrap().rows;
    tx.commit().unwrap();
    let learned = count(
        &store.conn,
        "SELECT COUNT(*) FROM disclosure r JOIN companies c USING (company_id)
         WHERE c.search_key = '新形状公司' AND typeof(r.image_url) = 'integer'",
    );
    (n, learned)
}

/// Spoil every stored row, rebuild from the receipts alone, and compare.
fn rebuilt_from_receipts_alone(h: &Harness, before: &[String], what: &str) {
    h.conn().execute("UPDATE disclosure SET name_id = NULL, sales_amount = -1 WHERE valid_to IS NULL", []).unwrap();
    let said = h.rebuild_with(&[]);
    assert!(!said.contains("no complete receipts"), "{what}: every year has its receipts: {said}");
    assert_eq!(dump_customers(&h.conn()), before, "{what}: the same customers table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_from_zlib_receipts_from_receipts_with_a_dictionary_and_from_a_mix_gives_the_same_customers_table() {
    let h = Harness::default().await;
    let keys = company_keys(240, "字典");
    h.write_keys(&keys[..200]);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);
    let pages = count(&h.conn(), "SELECT COUNT(*) FROM raw_pages");
    assert!(pages > qcc_customers::store::receipt::TRAIN_AFTER_PAGES as i64, "{pages} pages");
    // The run learned a dictionary from its first pages and rewrote them
    // with it (they are as small as later ones), and the next run
    // compresses with it.
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM receipt_dictionaries"), 1);
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM raw_pages WHERE dict_id IS NULL"), 0, "the first pages too");
    // Rewritten at the end of the table, they leave no half-empty pages.
    let free = leaf_free(&h.conn(), "raw_pages");
    assert!(free < 0.15, "{:.0} % of the receipts' pages is free", free * 100.0);
    h.write_keys(&keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);
    let conn = h.conn();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM receipt_dictionaries"), 1);
    let pages = count(&conn, "SELECT COUNT(*) FROM raw_pages");
    let status = h.status_text();
    assert!(
        status.contains(&format!("Receipts: {pages} pages in raw_pages; new ones compressed against dictionary 1")),
        "status says how receipts are kept: {status}"
    );
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM raw_pages WHERE dict_id = 1"), pages);
    let before = dump_customers(&conn);
    drop(conn);
    rebuilt_from_receipts_alone(&h, &before, "dictionary receipts, as the runs left them");
    assert!(receipts_to_plain_zstd(&h.conn(), |raw_id| raw_id % 3 == 0) > 0);
    rebuilt_from_receipts_alone(&h, &before, "plain zstd and dictionary receipts");

    assert_eq!(receipts_to_zlib(&h.conn(), |_| true), pages as usize);
    rebuilt_from_receipts_alone(&h, &before, "zlib receipts only");

    let size = std::fs::metadata(&h.db).unwrap().len();
    let said = h.rebuild_with(&["--recompress", "--vacuum"]);
    assert!(said.contains(&format!("Recompressed {pages} receipts against a new dictionary")), "{said}");
    assert!(said.contains("Repacked (VACUUM)"), "{said}");
    assert!(std::fs::metadata(&h.db).unwrap().len() < size, "a repacked file is smaller");
    assert_eq!(dump_customers(&h.conn()), before, "recompressed and repacked, the same customers");
    let conn = h.conn();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM raw_pages WHERE dict_id = 2"), pages);
    assert_eq!(
        count(&conn, "SELECT SUM(dict_id) * COUNT(*) FROM receipt_dictionaries"),
        2,
        "the unused one is dropped"
    );
    drop(conn);
    rebuilt_from_receipts_alone(&h, &before, "receipts with a dictionary only");

    assert!(receipts_to_zlib(&h.conn(), |raw_id| raw_id % 2 == 0) > 0);
    rebuilt_from_receipts_alone(&h, &before, "a mix of zlib and dictionary receipts");

    // Another file in the same process learns its own dictionary 1 (other
    // data), and every receipt of it reads back with that one.
    let other = Harness::new(SimConfig { profile: Profile::Annual, ..SimConfig::default() }).await;
    other.write_keys(&company_keys(400, "另一个"));
    assert_eq!(other.run(&fast_fetch()).await.exit_code, 0);
    other.write_keys(&company_keys(440, "另一个"));
    assert_eq!(other.run(&fast_fetch()).await.exit_code, 0);
    let conn = other.conn();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM receipt_dictionaries"), 1);
    assert!(count(&conn, "SELECT COUNT(*) FROM raw_pages WHERE dict_id = 1") > 0);
    let pages = count(&conn, "SELECT COUNT(*) FROM raw_pages") as usize;
    assert_eq!(receipts_to_zlib(&conn, |_| true), pages, "every receipt of the second file reads");
}

/// The share of a table's leaf pages that is free.
fn leaf_free(conn: &rusqlite::Connection, table: &str) -> f64 {
    let free = conn
        .query_row(
            "SELECT 1.0 * SUM(unused) / SUM(pgsize) FROM dbstat WHERE name = ?1 AND pagetype = 'leaf'",
            [table],
            |r| r.get(0),
        )
        .unwrap();
    eprintln!("{table}: {:.1} % of the leaf pages free", 100.0 * free);
    free
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_fills_the_pages_of_the_versions_as_if_it_appended() {
    // Listings give the newest year first, so a company's second page holds
    // older years than its first; with the key in ascending year order those
    // rows went in before the first page's and split its pages half empty
    // (18 % free); newest first, they follow them (12 %).
    let h = Harness::new(SimConfig { profile: Profile::Annual, ..SimConfig::default() }).await;
    h.write_keys(&company_keys(500, "填满"));
    // One call at a time: companies in flight side by side split pages too,
    // by chance (12–15 % free at 8 calls), and this measures the key order.
    let mut fetch = fast_fetch();
    fetch.concurrency = "1".into();
    assert_eq!(h.run(&fetch).await.exit_code, 0);
    let conn = h.conn();
    assert!(count(&conn, "SELECT COUNT(*) FROM disclosure WHERE page_index > 1") > 1_000, "companies of many pages");
    let free = leaf_free(&conn, "disclosure");
    assert!(free < 0.145, "{:.0} % of the rows' pages is free", free * 100.0);
}
