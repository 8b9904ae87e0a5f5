//! The writer's statements on a real (temporary) database: one commit at a
//! time, each in its own transaction, as the writer applies them.

use super::*;
use crate::qcc::wire::ClientRow;
use crate::store::records::{PageEvent, Query, StoredPages, YearState};

struct Db {
    _dir: tempfile::TempDir,
    store: crate::store::WriteStore,
    run_id: i64,
    codes: Codebook,
}

const KEY: &str = "测试企业有限公司";
const NOW: &str = "2026-06-15T04:00:00.000Z";

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::open_for_writing(&dir.path().join("t.sqlite")).unwrap();
    let run_id = start_run(&store.conn, "test", NOW).unwrap();
    let mut db = Db { _dir: dir, store, run_id, codes: Codebook::default() };
    let rec =
        InputRecord { line: 2, search_key: KEY.into(), norm_key: KEY.into(), row_json: "{}".into(), invalid: None };
    db.tx(|tx, run| register(tx, run, &rec, NOW).map(|_| ()));
    db
}

impl Db {
    fn tx<T>(&mut self, f: impl FnOnce(&Transaction<'_>, i64) -> rusqlite::Result<T>) -> T {
        let tx = self.store.conn.transaction().unwrap();
        let out = f(&tx, self.run_id).unwrap();
        tx.commit().unwrap();
        out
    }

    fn apply(&mut self, call: Option<CallRecord>, events: Vec<Event>) -> u64 {
        let commit = Commit { search_key: KEY.into(), call, events };
        let tx = self.store.conn.transaction().unwrap();
        let n = apply(&tx, &mut self.codes, self.run_id, &commit, NOW).unwrap().rows;
        tx.commit().unwrap();
        n
    }

    fn count(&self, sql: &str) -> i64 {
        self.store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn names(&self) -> Vec<String> {
        let mut stmt = self.store.conn.prepare("SELECT name FROM customers ORDER BY page_index, row_index").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }
}

fn call(page: u32) -> CallRecord {
    CallRecord {
        search_key: KEY.into(),
        year: Some("2024".into()),
        page_index: page,
        page_size: 2,
        http_status: Some(200),
        status: Some("200".into()),
        order_number: None,
        started_at: NOW.into(),
        duration_ms: 5,
        attempt: 1,
        error: None,
    }
}

fn rows(names: &[&str]) -> Vec<ClientRow> {
    names
        .iter()
        .map(|n| ClientRow { year: Some("2024".into()), name: Some(n.to_string()), ..Default::default() })
        .collect()
}

fn page(page: u32, of: u32, state: YearState, stored: StoredPages, names: &[&str]) -> Event {
    Event::Page(PageEvent {
        query: Query::Year("2024".into()),
        page_index: page,
        total_records: 3,
        pages_total: of,
        year_state: state,
        stored,
        unit_rows: 0,
        rows: rows(names),
        raw: None,
    })
}

fn upto(prefix: u32) -> StoredPages {
    StoredPages { prefix, ..StoredPages::default() }
}

#[test]
fn a_page_commit_stores_its_rows_its_checkpoint_and_its_call_together() {
    let mut db = db();
    let stored = db.apply(Some(call(1)), vec![page(1, 2, YearState::Partial, upto(1), &["甲", "乙"])]);
    assert_eq!(stored, 2);
    assert_eq!(db.count("SELECT COUNT(*) FROM customers"), 2);
    assert_eq!(db.count("SELECT COUNT(*) FROM api_calls"), 1);
    assert_eq!(db.count("SELECT pages_fetched FROM company_years WHERE year = '2024' AND state = 'partial'"), 1);
}

#[test]
fn a_refetched_year_keeps_its_old_rows_until_its_last_page_replaces_them() {
    let mut db = db();
    db.apply(Some(call(1)), vec![page(1, 2, YearState::Partial, upto(1), &["甲", "乙"])]);
    db.apply(Some(call(2)), vec![page(2, 2, YearState::Complete, upto(2), &["丙"])]);
    assert_eq!(db.names(), ["甲", "乙", "丙"]);
    // A new cycle: page 1 goes aside while the old rows stay visible.
    db.apply(Some(call(1)), vec![page(1, 2, YearState::Partial, upto(1), &["丁", "戊"])]);
    assert_eq!(db.names(), ["甲", "乙", "丙"], "analysts see the old year until the new one is whole");
    db.apply(Some(call(2)), vec![page(2, 2, YearState::Complete, upto(2), &["己"])]);
    assert_eq!(db.names(), ["丁", "戊", "己"]);
    assert_eq!(db.count("SELECT COUNT(*) FROM staged_rows"), 0);
}

#[test]
fn a_201_on_page_1_empties_the_year_and_marks_it_complete() {
    let mut db = db();
    db.apply(Some(call(1)), vec![page(1, 1, YearState::Complete, upto(1), &["甲"])]);
    let ended = Event::YearEnded {
        query_year: "2024".into(),
        state: YearState::Complete,
        total_records: 0,
        pages_total: 0,
        pages_fetched: 0,
    };
    db.apply(Some(call(1)), vec![ended]);
    assert_eq!(db.count("SELECT COUNT(*) FROM customers"), 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM company_years WHERE state = 'complete' AND total_records = 0"), 1);
}

#[test]
fn a_company_that_ends_its_check_records_the_check_and_a_parked_one_does_not() {
    let mut db = db();
    let company = |state, retry_after: Option<&str>| Event::Company {
        state,
        status_code: Some("200".into()),
        message: None,
        retry_after: retry_after.map(str::to_string),
    };
    db.apply(None, vec![company(CompanyState::Parked, Some("2026-06-15T06:00:00.000Z"))]);
    assert_eq!(db.count("SELECT COUNT(*) FROM company_checks"), 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM companies WHERE retry_after IS NOT NULL"), 1);
    db.apply(Some(call(1)), vec![page(1, 1, YearState::Complete, upto(1), &["甲"]), company(CompanyState::Done, None)]);
    assert_eq!(db.count("SELECT COUNT(*) FROM company_checks WHERE outcome = 'first'"), 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM company_periods WHERE period = '2024'"), 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM companies WHERE state = 'done' AND fetched_at IS NOT NULL"), 1);
}

#[test]
fn the_listing_abandoned_drops_its_rows_set_aside_and_pages_per_year_from_then_on() {
    let mut db = db();
    db.apply(None, vec![Event::ListingAbandoned]);
    assert_eq!(db.count("SELECT COUNT(*) FROM companies WHERE fetch_plan = 'years'"), 1);
}

/// Pages of a first fetch may be stored out of order: the versions' slots
/// still follow the rows' order, so the same year fetched again in order
/// changes nothing.
#[test]
fn a_first_fetch_stored_out_of_order_then_fetched_again_in_order_changes_nothing() {
    let mut db = db();
    let beyond = |pages: &[u32]| StoredPages { prefix: 1, beyond: pages.iter().copied().collect() };
    let first = [
        page(1, 3, YearState::Partial, upto(1), &["客户一", "客户二"]),
        page(3, 3, YearState::Partial, beyond(&[3]), &["客户五"]),
        page(2, 3, YearState::Complete, upto(3), &["客户三", "客户四"]),
    ];
    for event in first {
        db.apply(Some(call(1)), vec![event]);
    }
    assert_eq!(db.names(), ["客户一", "客户二", "客户三", "客户四", "客户五"]);
    let again = [
        page(1, 3, YearState::Partial, upto(1), &["客户一", "客户二"]),
        page(2, 3, YearState::Partial, upto(2), &["客户三", "客户四"]),
        page(3, 3, YearState::Complete, upto(3), &["客户五"]),
    ];
    let mut changes = Changes::default();
    for event in again {
        let commit = Commit { search_key: KEY.into(), call: Some(call(1)), events: vec![event] };
        let tx = db.store.conn.transaction().unwrap();
        changes.add(apply(&tx, &mut db.codes, db.run_id, &commit, NOW).unwrap().changes);
        tx.commit().unwrap();
    }
    assert_eq!(changes, Changes::default(), "the same rows are the same versions");
    assert_eq!(db.count("SELECT COUNT(*) FROM disclosure WHERE valid_to IS NOT NULL"), 0);
    assert_eq!(db.names(), ["客户一", "客户二", "客户三", "客户四", "客户五"]);
}
