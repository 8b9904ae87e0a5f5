//! The hand-off to the writer: every answer a company's loop (or a retried
//! call) produced leaves the fetch stage here, as one [`Commit`], after
//! taking a place in the commit window. A unit's commits reach the writer in
//! the order its loop hands them over (one channel, one writer), so each
//! checkpoint includes every page committed before it.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::pipeline::control::shutdown::{Stop, StopReason};
use crate::pipeline::writer::{CommitWindow, WriteMsg};
use crate::store::records::{CallRecord, Commit, Event};

/// The writer takes no more commits: the run is stopping (the window is
/// closed) or the store failed (the writer is gone, and said why). What was
/// not handed over was not stored; the company resumes from its last
/// checkpoint in a later run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Whether a commit reached the writer.
pub type Handed = Result<(), Closed>;

/// The writer's end of the fetch stage. Cheap to clone: the companies in
/// flight and the caller share one.
#[derive(Clone)]
pub struct Handoff {
    /// To the single writer; bounded, so it is the pipeline's backpressure.
    /// Also used by the dispatcher to take parked companies back.
    pub writer: mpsc::Sender<WriteMsg>,
    /// Answered pages handed to the writer and not yet durable, bounded.
    window: CommitWindow,
    /// Told when the writer is gone.
    stop: Arc<Stop>,
}

impl Handoff {
    pub fn new(writer: mpsc::Sender<WriteMsg>, window: CommitWindow, stop: Arc<Stop>) -> Self {
        Handoff { writer, window, stop }
    }

    /// Hand one atomic unit to the writer, waiting for room in the commit window.
    pub async fn commit(&self, commit: Commit) -> Handed {
        let slot = self.window.enter().await.ok_or(Closed)?;
        if self.writer.send(WriteMsg::Commit { commit, slot }).await.is_err() {
            // The writer only goes away on a database error, which it reported.
            self.stop.stop(StopReason::StoreFailed("the writer stopped".into()));
            return Err(Closed);
        }
        Ok(())
    }

    /// Commit a call's record with the events it caused.
    pub async fn commit_call(&self, key: &str, call: CallRecord, events: Vec<Event>) -> Handed {
        self.commit(Commit { search_key: key.to_string(), call: Some(call), events }).await
    }

    /// Commit events without a call (a checkpoint that only lagged, a company's end).
    pub async fn commit_events(&self, key: &str, events: Vec<Event>) -> Handed {
        self.commit(Commit { search_key: key.to_string(), call: None, events }).await
    }
}
