//! The file as one run's writer changes it.
//!
//! [`Session`] owns the connection (and its lock), what the file has learned
//! to store small ([`Codebook`]: picture shapes and the ids of the customers
//! and names met so far) and the receipt dictionary this run learned. A
//! [`Batch`] is one transaction of it. The pipeline hands a batch what the
//! answers said ([`Commit`]s, input records, a dictionary); how that is
//! kept, and what it changed, is decided here. The writer thread keeps only
//! the batching and the replies.

use std::sync::Arc;

use rusqlite::Transaction;

use super::customers::Codebook;
use super::read;
use super::receipt::Dictionary;
use super::records::{Commit, CompanyHistory, CompanySnapshot, InputRecord, Registration};
use super::write::{self, Applied, Changes};
use super::{dictionaries, WriteStore};

/// One run's writes to the file.
pub struct Session {
    store: WriteStore,
    run_id: i64,
    /// A failed transaction ends the session, so nothing learned in it is
    /// used again.
    codes: Codebook,
    /// The receipt dictionary this run learned, if it did.
    learned: Option<Arc<Dictionary>>,
}

impl Session {
    pub fn new(store: WriteStore, run_id: i64) -> rusqlite::Result<Session> {
        let codes = Codebook::load(&store.conn)?;
        Ok(Session { store, run_id, codes, learned: None })
    }

    /// Open a transaction; what is applied to it is kept once it commits.
    pub fn batch(&mut self, now: String) -> rusqlite::Result<Batch<'_>> {
        Ok(Batch {
            tx: self.store.conn.transaction()?,
            codes: &mut self.codes,
            learned: &mut self.learned,
            run_id: self.run_id,
            now,
            applied: Applied::default(),
        })
    }

    /// The run's writes are over: receipts sealed before the workers took
    /// up the learned dictionary may have been stored after it, and are
    /// sealed with it too. The store is handed back for the run's bookkeeping.
    pub fn finish(mut self) -> rusqlite::Result<WriteStore> {
        if let Some(dictionary) = self.learned.take() {
            let tx = self.store.conn.transaction()?;
            dictionaries::reseal(&tx, &dictionary)?;
            tx.commit()?;
        }
        Ok(self.store)
    }
}

/// One transaction of a [`Session`].
pub struct Batch<'s> {
    tx: Transaction<'s>,
    codes: &'s mut Codebook,
    learned: &'s mut Option<Arc<Dictionary>>,
    run_id: i64,
    now: String,
    applied: Applied,
}

impl Batch<'_> {
    /// Store one atomic unit of what the answers said.
    pub fn apply(&mut self, commit: &Commit) -> rusqlite::Result<Applied> {
        let applied = write::apply(&self.tx, self.codes, self.run_id, commit, &self.now)?;
        self.applied.rows += applied.rows;
        self.applied.changes.add(applied.changes);
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
        *self.learned = Some(dictionary.clone());
        Ok(resealed)
    }

    /// A company's history as this transaction has left it (for its next check).
    pub fn company_history(&self, search_key: &str) -> rusqlite::Result<Option<CompanyHistory>> {
        read::company_history(&self.tx, search_key)
    }

    /// The revisit schedule's verdict for a company: its next check and why.
    pub fn set_next_check(&self, search_key: &str, at: &str, reason: &str) -> rusqlite::Result<()> {
        write::set_next_check(&self.tx, search_key, at, reason)
    }

    /// Make the batch durable. Returns the rows it stored and the changes it recorded.
    pub fn commit(self) -> rusqlite::Result<(u64, Changes)> {
        self.tx.commit()?;
        Ok((self.applied.rows, self.applied.changes))
    }
}
