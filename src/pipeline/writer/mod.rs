//! Stage 4: the single writer. One OS thread owns the SQLite connection; every
//! other stage talks to it over one bounded channel.
//!
//! Each message is applied whole inside a transaction, so a page's rows, its
//! checkpoint and its call record are stored together or not at all. The
//! writer applies several in one transaction (group commit): what has queued
//! up, and what arrives within [`GROUP_COMMIT`] of the previous commit (it
//! waits before taking the write lock, not inside the transaction). Each
//! stays atomic, and the disk syncs once per batch instead of once per page.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::clock::Clock;
use crate::pipeline::control::shutdown::{Stop, StopReason};
use crate::pipeline::plan::schedule::Revisit;
use crate::pipeline::report::stats::Stats;
use crate::store::receipt::Dictionary;
use crate::store::records::{Commit, CompanySnapshot, Event, InputRecord, Registration};
use crate::store::session::{Batch, Session};
use crate::store::WriteStore;

/// Most messages applied in one transaction.
const MAX_BATCH: usize = 1024;

/// Group commit: the writer commits at most once per this interval. When
/// pages arrive one by one (a real API's pace), each waits up to this long
/// for those behind it, so the disk syncs once for
/// several pages instead of once per page. Waiting pages hold their places in
/// the [`CommitWindow`], so what a `kill -9` can cost stays within its bound;
/// once half the window waits in a batch, it is committed without waiting.
pub const GROUP_COMMIT: Duration = Duration::from_millis(50);

/// Answered pages that may wait for their commit, per worker. With it a
/// worker goes on with its next call while its page commits (BENCHMARKS.md
/// has the measurements). It bounds what a `kill -9` can make the next run pay
/// again: [`UNSTORED_CALLS_PER_WORKER`] a worker.
pub const COMMIT_WINDOW_PER_WORKER: usize = 8;

/// The most calls per worker that are paid for and not yet stored, so the
/// most a `kill -9`, a power loss or a full disk can make the next run pay
/// again: the commit window, a page per worker slot in flight, and one more
/// per slot for a moment, when a company whose share of the slots shrank
/// still holds the pages it asked (`fetch/lanes.rs`).
pub const UNSTORED_CALLS_PER_WORKER: usize = 2 + COMMIT_WINDOW_PER_WORKER;

/// The commit window: answered pages handed to the writer and not yet
/// durable. Workers take a [`WindowSlot`] before handing over a page; the
/// writer drops it once the page's transaction has committed.
#[derive(Clone)]
pub struct CommitWindow {
    places: Arc<Semaphore>,
    capacity: usize,
}

/// A place in the [`CommitWindow`], travelling with one commit to the writer.
pub struct WindowSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl CommitWindow {
    /// A window for `workers` workers.
    pub fn new(workers: usize) -> Self {
        let capacity = workers.max(1) * COMMIT_WINDOW_PER_WORKER;
        CommitWindow { places: Arc::new(Semaphore::new(capacity)), capacity }
    }

    /// Wait for room; `None` once the window is closed. A full window is
    /// logged (debug, "Commit window full") when a worker starts to wait.
    pub async fn enter(&self) -> Option<WindowSlot> {
        let place = match self.places.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(TryAcquireError::Closed) => return None,
            Err(TryAcquireError::NoPermits) => {
                tracing::debug!(capacity = self.capacity, "Commit window full: waiting for the writer.");
                self.places.clone().acquire_owned().await.ok()?
            }
        };
        Some(WindowSlot(place))
    }
}

/// What the writer is asked to do.
// A commit is the common message and is moved once, through a bounded channel.
#[allow(clippy::large_enum_variant)]
pub enum WriteMsg {
    /// Register input rows; the reply says what is known of each.
    Register { records: Vec<InputRecord>, reply: oneshot::Sender<Vec<Registration>> },
    /// Hand over up to `limit` companies of this run whose 110 parking has
    /// expired, marking them pending so they are handed over once; the reply
    /// also says when the next one is due.
    TakeDueParked { limit: usize, reply: oneshot::Sender<(Vec<CompanySnapshot>, Option<String>)> },
    /// Store one atomic unit; its place in the commit window is released once
    /// it is durable.
    Commit { commit: Commit, slot: WindowSlot },
    /// Keep a receipt dictionary learned from this run's pages; sent before
    /// any receipt compressed against it.
    Dictionary(Arc<Dictionary>),
}

/// Start the writer thread. It ends when every sender is dropped, and hands
/// the store back for the end-of-run bookkeeping.
/// When a company's check ends, the writer asks the revisit schedule for its
/// next one, in the same transaction.
#[derive(Debug, Clone)]
pub struct Scheduling {
    pub revisit: Revisit,
    pub page_size: u32,
}

#[allow(clippy::too_many_arguments)]
pub fn spawn(
    store: WriteStore,
    run_id: i64,
    rx: mpsc::Receiver<WriteMsg>,
    stats: Arc<Stats>,
    stop: Arc<Stop>,
    clock: Clock,
    window: &CommitWindow,
    scheduling: Scheduling,
) -> std::io::Result<JoinHandle<Result<WriteStore, rusqlite::Error>>> {
    // Once half the window waits in a batch, pages arrive faster than one by
    // one: the batch is committed without waiting, so workers never wait on
    // the group commit.
    let enough = (window.capacity / 2).max(1);
    // Only for timed waits on the channel; the writer never runs tasks.
    // Built here, so a failure to build it is said as what it is.
    let timer = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || {
        let mut rx = rx;
        // The places in the commit window of the batch being written.
        let mut slots: Vec<WindowSlot> = Vec::new();
        let written = Session::new(store, run_id).and_then(|mut session| {
            let mut writer = Writer { rx: &mut rx, stats: &stats, clock, enough, scheduling: &scheduling, timer };
            writer.run(&mut session, &mut slots)?;
            session.finish()
        });
        match written {
            Ok(store) => Ok(store),
            Err(e) => {
                let reason = if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
                    StopReason::DiskFull
                } else {
                    StopReason::StoreFailed(e.to_string())
                };
                // Stop first: the failed batch's places are given back only
                // then, or a worker waiting for one would hand its page over
                // and pay for another call before it heard of the stop.
                stop.stop(reason);
                // Close the channel so no worker waits on a writer that is gone.
                rx.close();
                drop(slots);
                tracing::error!(error = %e, "Database write failed; stopping the run.");
                Err(e)
            }
        }
    })
}

/// What the writer thread holds while it runs: where batches come from,
/// when to commit them, and what to do after a company's check.
struct Writer<'a> {
    rx: &'a mut mpsc::Receiver<WriteMsg>,
    stats: &'a Stats,
    clock: Clock,
    /// Pages that make a batch worth committing without waiting.
    enough: usize,
    scheduling: &'a Scheduling,
    /// Only for timed waits on the channel; the writer never runs tasks.
    timer: tokio::runtime::Runtime,
}

impl Writer<'_> {
    /// Commit batches until every sender is gone. `slots` holds the commit
    /// window's places of the batch being written, given back once it is
    /// durable (or, on a failure, by the caller after it stopped the run).
    fn run(&mut self, session: &mut Session, slots: &mut Vec<WindowSlot>) -> rusqlite::Result<()> {
        let mut batch: Vec<WriteMsg> = Vec::new();
        let mut last_commit: Option<Instant> = None;
        while let Some(first) = self.rx.blocking_recv() {
            let deadline = last_commit.map_or_else(Instant::now, |t| t + GROUP_COMMIT);
            self.collect(first, deadline, &mut batch);
            self.write(session, &mut batch, slots)?;
            last_commit = Some(Instant::now());
        }
        Ok(())
    }

    /// Collect the batch before taking the write lock, so nothing else (a
    /// reader's checkpoint, an index an analyst adds) waits on a transaction
    /// that only waits for pages: until the group commit's deadline, unless
    /// someone waits for an answer or enough pages came.
    fn collect(&mut self, first: WriteMsg, deadline: Instant, batch: &mut Vec<WriteMsg>) {
        let mut pages = 0;
        let mut now_please = false;
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match &m {
                // Someone waits for the answer: do not hold it.
                WriteMsg::Register { .. } | WriteMsg::TakeDueParked { .. } => now_please = true,
                WriteMsg::Dictionary(_) => {}
                WriteMsg::Commit { .. } => {
                    pages += 1;
                    now_please |= pages >= self.enough;
                }
            }
            batch.push(m);
            if batch.len() >= MAX_BATCH {
                break;
            }
            next = match self.rx.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    if wait.is_zero() || now_please {
                        None
                    } else {
                        let rx = &mut *self.rx;
                        self.timer.block_on(async { tokio::time::timeout(wait, rx.recv()).await }).ok().flatten()
                    }
                }
            };
        }
    }

    /// One transaction for the batch; the answers go out once it is durable.
    fn write(
        &self,
        session: &mut Session,
        batch: &mut Vec<WriteMsg>,
        slots: &mut Vec<WindowSlot>,
    ) -> rusqlite::Result<()> {
        let mut replies = Vec::new();
        let mut parked = Vec::new();
        let mut tx = session.batch(self.clock.now_iso())?;
        for m in batch.drain(..) {
            match m {
                WriteMsg::Register { records, reply } => {
                    let regs = records.iter().map(|r| tx.register(r)).collect::<rusqlite::Result<Vec<_>>>()?;
                    replies.push((reply, regs));
                }
                WriteMsg::TakeDueParked { limit, reply } => parked.push((reply, tx.take_due_parked(limit)?)),
                WriteMsg::Dictionary(dictionary) => {
                    let resealed = tx.keep_dictionary(&dictionary)?;
                    tracing::info!(
                        dict_id = dictionary.id,
                        pages = dictionary.pages,
                        resealed,
                        "Learned a receipt dictionary from this run's pages; later receipts use it, and so do the \
                         earlier ones rewritten with it."
                    );
                }
                WriteMsg::Commit { commit, slot } => {
                    tx.apply(&commit)?;
                    if ends_check(&commit) {
                        schedule(&tx, &commit.search_key, self.scheduling, self.clock)?;
                    }
                    slots.push(slot);
                }
            }
        }
        let rows = tx.commit()?;
        self.stats.rows_written.fetch_add(rows, Ordering::Relaxed);
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        // Answer only once the batch is durable. A requester that is gone
        // (its run stopping) needs no answer: the batch is durable either way.
        for (reply, regs) in replies {
            let _ = reply.send(regs);
        }
        for (reply, due) in parked {
            let _ = reply.send(due);
        }
        slots.clear();
        Ok(())
    }
}

/// The commit ends a check of its company (done or no_result).
fn ends_check(commit: &Commit) -> bool {
    commit.events.iter().any(|e| matches!(e, Event::Company { state, .. } if state.ends_check()))
}

/// Store the company's next check, from its history as this transaction left it.
fn schedule(tx: &Batch<'_>, key: &str, s: &Scheduling, clock: Clock) -> rusqlite::Result<()> {
    let Some(history) = tx.company_history(key)? else { return Ok(()) };
    let now = clock.now();
    let next = s.revisit.next(&history, s.page_size, now);
    tx.set_next_check(key, &crate::clock::iso(next.at), &next.reason.to_string(), next.reason.is_deep())
}

#[cfg(test)]
mod tests;
