//! The writer thread on a temporary database: registration, commits, the
//! commit window and the revisit schedule, end to end through its channel.

use super::*;
use crate::qcc::ClientRow;
use crate::store::records::{CompanyState, Event, InputRecord, PageEvent, Query, StoredPages, YearState};

const KEY: &str = "写入测试有限公司";

fn record() -> InputRecord {
    InputRecord { line: 2, search_key: KEY.into(), norm_key: KEY.into(), row_json: "{}".into(), invalid: None }
}

fn page_and_done() -> Commit {
    let page = PageEvent {
        query: Query::Year("2024".into()),
        page_index: 1,
        total_records: 1,
        pages_total: 1,
        year_state: YearState::Complete,
        stored: StoredPages { prefix: 1, ..StoredPages::default() },
        unit_rows: 0,
        rows: vec![ClientRow { year: Some("2024".into()), name: Some("客户甲".into()), ..Default::default() }],
        raw: None,
    };
    let done =
        Event::Company { state: CompanyState::Done, status_code: Some("200".into()), message: None, retry_after: None };
    Commit { search_key: KEY.into(), call: None, events: vec![Event::Page(page), done] }
}

#[tokio::test]
async fn a_registered_company_s_commit_is_stored_its_window_place_given_back_and_its_next_check_booked() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::open_for_writing(&dir.path().join("w.sqlite")).unwrap();
    let clock = Clock::system();
    let run_id = crate::store::write::start_run(&store.conn, "test", &clock.now_iso()).unwrap();
    let (tx, rx) = mpsc::channel(16);
    let window = CommitWindow::new(1);
    let stats = Arc::new(Stats::default());
    let scheduling = Scheduling { revisit: Revisit::Fixed(chrono::Duration::days(7)), page_size: 50 };
    let writer =
        spawn(store, run_id, rx, stats.clone(), Arc::new(Stop::default()), clock, &window, scheduling).unwrap();

    let (reply, answer) = oneshot::channel();
    tx.send(WriteMsg::Register { records: vec![record()], reply }).await.unwrap();
    assert_eq!(answer.await.unwrap().len(), 1, "one registration per record");
    let slot = window.enter().await.unwrap();
    assert_eq!(window.places.available_permits(), window.capacity - 1);
    tx.send(WriteMsg::Commit { commit: page_and_done(), slot }).await.unwrap();
    drop(tx);
    let store = tokio::task::spawn_blocking(move || writer.join().unwrap()).await.unwrap().unwrap();

    assert_eq!(window.places.available_permits(), window.capacity, "the place is free once the page is durable");
    assert_eq!(stats.rows_written.load(Ordering::Relaxed), 1);
    let rows = crate::store::read::customer_rows_total(&store.conn).unwrap();
    let history = crate::store::read::company_history(&store.conn, KEY).unwrap().expect("the company");
    let (next, reason) = (history.next_check_at, history.next_check_reason);
    assert_eq!(rows, 1);
    let next = crate::clock::parse_iso(&next.expect("a next check is booked")).unwrap();
    let in_days = (next - clock.now()).num_hours() as f64 / 24.0;
    assert!((6.9..=7.0).contains(&in_days), "booked {in_days:.2} days out");
    assert_eq!(reason.as_deref(), Some("--refresh-after 7d"));
}
