//! The file as one run's writer changes it.
//!
//! [`Session`] owns the connection (and its lock), what the file has learned
//! to store small ([`Codebook`]: picture shapes and the ids of the customers
//! and names met so far) and the receipt dictionary this run learned. A
//! [`Batch`] is one transaction of it. The pipeline hands a batch what the
//! answers said ([`Commit`]s, input records, a dictionary); how that is
//! kept, and what it changed, is decided here (including when a run's rows
//! are many enough to build the readers' reverse indexes in bulk:
//! [`super::bulk`]). The writer thread keeps only the batching and the replies.

use std::sync::Arc;
use std::time::Instant;

use rusqlite::Transaction;

use super::bulk::{self, Bulk};
use super::customers::Codebook;
use super::read;
use super::receipt::Dictionary;
use super::records::{Commit, CompanyHistory, CompanySnapshot, InputRecord, Registration};
use super::write::{self, Applied};
use super::{dictionaries, WriteStore};

/// One run's writes to the file.
pub struct Session {
    store: WriteStore,
    run_id: i64,
    state: State,
}

/// What a session keeps from one batch to the next. A failed transaction
/// ends the session, so nothing learned in it is used again.
struct State {
    codes: Codebook,
    /// The receipt dictionary this run learned, if it did.
    learned: Option<Arc<Dictionary>>,
    bulk: Bulk,
    /// Rows stored by the run so far.
    stored: u64,
    /// The reverse indexes were dropped, to be built at the end.
    dropped: bool,
}

impl Session {
    pub fn new(store: WriteStore, run_id: i64) -> rusqlite::Result<Session> {
        let versions: i64 =
            store.conn.query_row("SELECT COALESCE(MAX(version_id), 0) FROM disclosure", [], |r| r.get(0))?;
        Self::with_bulk(store, run_id, Bulk::for_file(versions.max(0) as u64))
    }

    /// A session that builds the reverse indexes in bulk past `bulk`'s rows.
    pub fn with_bulk(store: WriteStore, run_id: i64, bulk: Bulk) -> rusqlite::Result<Session> {
        let codes = Codebook::load(&store.conn)?;
        Ok(Session { store, run_id, state: State { codes, learned: None, bulk, stored: 0, dropped: false } })
    }

    /// Open a transaction; what is applied to it is kept once it commits.
    pub fn batch(&mut self, now: String) -> rusqlite::Result<Batch<'_>> {
        Ok(Batch { tx: self.store.conn.transaction()?, state: &mut self.state, run_id: self.run_id, now, rows: 0 })
    }

    /// The run's writes are over: receipts sealed before the workers took
    /// up the learned dictionary may have been stored after it, and are
    /// sealed with it too; reverse indexes dropped for a bulk of rows are
    /// built. The store is handed back for the run's bookkeeping.
    pub fn finish(mut self) -> rusqlite::Result<WriteStore> {
        if let Some(dictionary) = self.state.learned.take() {
            let tx = self.store.conn.transaction()?;
            dictionaries::reseal(&tx, &dictionary)?;
            tx.commit()?;
        }
        if self.state.dropped {
            let started = Instant::now();
            let built = bulk::ensure(&self.store.conn)?;
            tracing::info!(
                built,
                seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
                "Built the readers' reverse indexes (by customer, by name) from this run's rows."
            );
        }
        Ok(self.store)
    }
}

/// One transaction of a [`Session`].
pub struct Batch<'s> {
    tx: Transaction<'s>,
    state: &'s mut State,
    run_id: i64,
    now: String,
    /// Rows stored in this transaction.
    rows: u64,
}

impl Batch<'_> {
    /// Store one atomic unit of what the answers said.
    pub fn apply(&mut self, commit: &Commit) -> rusqlite::Result<Applied> {
        let applied = write::apply(&self.tx, &mut self.state.codes, self.run_id, commit, &self.now)?;
        self.rows += applied.rows;
        let state = &mut *self.state;
        state.stored += applied.rows;
        if !state.dropped && state.stored >= state.bulk.threshold {
            bulk::drop(&self.tx)?;
            state.dropped = true;
            tracing::info!(
                rows = state.stored,
                "Many rows: the readers' reverse indexes are built once this run's writes end (until then, \
                 look-ups by customer or name scan the table)."
            );
        }
        Ok(applied)
    }

    /// Register an input record (see [`write::register`]).
    pub fn register(&self, record: &InputRecord) -> rusqlite::Result<Registration> {
        write::register(&self.tx, self.run_id, record, &self.now)
    }

    /// Companies parked on a throttle whose time has come (see [`write::take_due_parked`]).
    pub fn take_due_parked(&self, limit: usize) -> rusqlite::Result<(Vec<CompanySnapshot>, Option<String>)> {
        write::take_due_parked(&self.tx, self.run_id, &self.now, limit)
    }

    /// Keep a receipt dictionary learned from this run's pages, and reseal
    /// the receipts stored so far with it. Returns how many were resealed.
    pub fn keep_dictionary(&mut self, dictionary: &Arc<Dictionary>) -> rusqlite::Result<u64> {
        dictionaries::store(&self.tx, dictionary, &self.now)?;
        let resealed = dictionaries::reseal(&self.tx, dictionary)?;
        self.state.learned = Some(dictionary.clone());
        Ok(resealed)
    }

    /// A company's history as this transaction has left it (for its next check).
    pub fn company_history(&self, search_key: &str) -> rusqlite::Result<Option<CompanyHistory>> {
        read::company_history(&self.tx, search_key)
    }

    /// The revisit schedule's verdict for a company: its next check and why.
    pub fn set_next_check(&self, search_key: &str, at: &str, reason: &str, deep: bool) -> rusqlite::Result<()> {
        write::set_next_check(&self.tx, search_key, at, reason, deep)
    }

    /// Make the batch durable. Returns the rows it stored.
    pub fn commit(self) -> rusqlite::Result<u64> {
        self.tx.commit()?;
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qcc::wire::ClientRow;
    use crate::store::records::{Event, PageEvent};
    use crate::store::write::start_run;

    const NOW: &str = "2026-06-15T04:00:00.000Z";

    /// Three companies' 2024, one page each, with customers they share.
    fn commits() -> Vec<Commit> {
        (0..3)
            .map(|i| {
                let rows: Vec<ClientRow> = (0..4)
                    .map(|j| ClientRow {
                        year: Some("2024".into()),
                        name: Some(format!("客户公司{}", (i + j) % 5)),
                        key_no: (j % 2 == 0).then(|| format!("{:032x}", (i + j) % 5)),
                        sales_amount: Some(f64::from(i * 10 + j)),
                        ..Default::default()
                    })
                    .collect();
                let page = Event::Page(PageEvent::whole_year("2024", rows));
                Commit { search_key: format!("批量企业{i}有限公司"), call: None, events: vec![page] }
            })
            .collect()
    }

    /// Store the commits, one batch each; what the file holds, and whether
    /// the reverse indexes were there after the first batch.
    fn store_all(bulk: Bulk) -> (Vec<String>, bool) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_writing(&dir.path().join("b.sqlite")).unwrap();
        let run_id = start_run(&store.conn, "test", NOW).unwrap();
        let mut session = Session::with_bulk(store, run_id, bulk).unwrap();
        let mut indexed_midway = true;
        for (i, commit) in commits().iter().enumerate() {
            let key = &commit.search_key;
            let mut tx = session.batch(NOW.into()).unwrap();
            let record = InputRecord {
                line: 2,
                search_key: key.clone(),
                norm_key: key.clone(),
                row_json: "{}".into(),
                invalid: None,
            };
            tx.register(&record).unwrap();
            tx.apply(commit).unwrap();
            tx.commit().unwrap();
            if i == 0 {
                indexed_midway = bulk::missing(&session.store.conn).unwrap() == 0;
            }
        }
        let store = session.finish().unwrap();
        let held: Vec<String> = store
            .conn
            .prepare("SELECT search_key || name || sales_amount || valid_from FROM customers_history ORDER BY 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plans: Vec<String> = store
            .conn
            .prepare("EXPLAIN QUERY PLAN SELECT search_key FROM customers_history WHERE name = '客户公司1'")
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(plans.iter().any(|p| p.contains("disclosure_by_name")), "{plans:?}");
        (held, indexed_midway)
    }

    #[test]
    fn a_run_of_many_rows_builds_the_reverse_indexes_at_its_end_and_stores_the_same() {
        let (one_by_one, indexed) = store_all(Bulk { threshold: u64::MAX });
        assert!(indexed, "kept up as the rows come");
        let (in_bulk, indexed) = store_all(Bulk { threshold: 3 });
        assert!(!indexed, "dropped once the run stored 3 rows");
        assert_eq!(in_bulk, one_by_one);
        assert_eq!(in_bulk.len(), 12);
    }

    #[test]
    fn a_file_left_without_them_gets_them_at_its_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sqlite");
        let store = crate::store::open_for_writing(&path).unwrap();
        bulk::drop(&store.conn).unwrap();
        assert_eq!(bulk::missing(&store.conn).unwrap(), 2);
        drop(store);
        let store = crate::store::open_for_writing(&path).unwrap();
        assert_eq!(bulk::missing(&store.conn).unwrap(), 0);
    }
}
