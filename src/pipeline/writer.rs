//! Stage 4: the single writer. One OS thread owns the SQLite connection; every
//! other stage talks to it over one bounded channel.
//!
//! Each message is applied whole inside a transaction, so a page's rows, its
//! checkpoint and its call record are stored together or not at all. When
//! messages queue up, the writer applies several in one transaction (group
//! commit): each stays atomic, and the disk syncs once per batch instead of
//! once per page.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use super::shutdown::{Stop, StopReason};
use super::Stats;
use crate::clock;
use crate::store::records::{Commit, CompanySnapshot, InputRecord, Registration};
use crate::store::{write, WriteStore};

/// Most messages applied in one transaction.
const MAX_BATCH: usize = 1024;

/// What the writer is asked to do.
pub enum WriteMsg {
    /// Register input rows; the reply says what is known of each.
    Register { records: Vec<InputRecord>, reply: oneshot::Sender<Vec<Registration>> },
    /// Hand over up to `limit` companies of this run whose 110 parking has
    /// expired, marking them pending so they are handed over once.
    TakeDueParked { limit: usize, reply: oneshot::Sender<Vec<CompanySnapshot>> },
    /// Store one atomic unit; `slot` (a place in the workers' commit window)
    /// is released once it is durable.
    Commit { commit: Commit, slot: Option<OwnedSemaphorePermit> },
}

/// Start the writer thread. It ends when every sender is dropped, and hands
/// the store back for the end-of-run bookkeeping.
pub fn spawn(
    store: WriteStore,
    run_id: i64,
    rx: mpsc::Receiver<WriteMsg>,
    stats: Arc<Stats>,
    stop: Arc<Stop>,
) -> std::io::Result<JoinHandle<Result<WriteStore, rusqlite::Error>>> {
    std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || {
        let mut store = store;
        let mut rx = rx;
        match writer_loop(&mut store, run_id, &mut rx, &stats) {
            Ok(()) => Ok(store),
            Err(e) => {
                tracing::error!(error = %e, "Database write failed; stopping the run.");
                stop.stop(StopReason::StoreFailed(e.to_string()));
                // Close the channel so no worker waits on a writer that is gone.
                rx.close();
                Err(e)
            }
        }
    })
}

fn writer_loop(
    store: &mut WriteStore,
    run_id: i64,
    rx: &mut mpsc::Receiver<WriteMsg>,
    stats: &Stats,
) -> rusqlite::Result<()> {
    let mut replies = Vec::new();
    let mut slots: Vec<OwnedSemaphorePermit> = Vec::new();
    let mut parked = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let now = clock::now_iso();
        let tx = store.conn.transaction()?;
        let mut rows = 0;
        let mut msg = Some(first);
        let mut n = 0;
        while let Some(m) = msg.take() {
            match m {
                WriteMsg::Register { records, reply } => {
                    let regs = records
                        .iter()
                        .map(|r| write::register(&tx, run_id, r, &now))
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    replies.push((reply, regs));
                }
                WriteMsg::TakeDueParked { limit, reply } => {
                    let due = write::take_due_parked(&tx, run_id, &now, limit)?;
                    parked.push((reply, due));
                }
                WriteMsg::Commit { commit, slot } => {
                    rows += write::apply(&tx, run_id, &commit, &now)?;
                    slots.extend(slot);
                }
            }
            n += 1;
            if n < MAX_BATCH {
                msg = rx.try_recv().ok();
            }
        }
        tx.commit()?;
        stats.rows_written.fetch_add(rows, Ordering::Relaxed);
        stats.commits.fetch_add(1, Ordering::Relaxed);
        // Answer only once the batch is durable.
        for (reply, regs) in replies.drain(..) {
            let _ = reply.send(regs);
        }
        for (reply, due) in parked.drain(..) {
            let _ = reply.send(due);
        }
        slots.clear();
    }
    Ok(())
}
