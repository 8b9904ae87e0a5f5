//! 110 parking: the vendor answers 110 when the same query erred repeatedly
//! and asks for a 2-hour wait. The company is parked until `retry_after` (a
//! later run skips it until then), and a run still busy when the wait ends
//! takes it up again itself; a run with nothing else to do ends rather than
//! wait.
//!
//! This file owns the wait: how long (`--park-for`), when the next parked
//! company is due, and taking due ones back. The rest of the path, each in
//! one place: `qcc/codes.rs` says 110 parks; `fetch/call.rs` returns it as
//! `NotNow::Parked`; `fetch/context.rs` records the company parked with its
//! `retry_after` (from [`Parking::park`]); the writer stores it
//! (`store/write.rs`) and hands due ones back (`store/read.rs`);
//! `fetch/dispatch.rs` wakes on [`Parking::due`]; `plan/mod.rs` skips a
//! parked company until its time; the summary, `status` and the dry run
//! report it.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::pipeline::plan::{self, Job, PlanOptions};
use crate::pipeline::writer::WriteMsg;

/// How long 110 parks a company unless `--park-for` says otherwise (the
/// vendor says 2 hours); `cli` takes its default from here.
pub const DEFAULT_WAIT: &str = "2h";

/// Most parked companies taken up again at once.
const TAKE_AT_ONCE: usize = 256;

/// Parked companies of this run: when the first one is due.
pub struct Parking {
    wait: chrono::Duration,
    clock: Clock,
    /// When the earliest company parked in this run and not yet taken up
    /// again is due, on the tokio clock (so tests can drive it); `None` when
    /// there is none.
    next_due: Mutex<Option<Instant>>,
    /// Wakes the dispatcher when a company is parked (the next due time may
    /// be earlier than the one it sleeps towards).
    parked: Notify,
}

impl Parking {
    pub fn new(wait: chrono::Duration, clock: Clock) -> Self {
        Parking { wait, clock, next_due: Mutex::new(None), parked: Notify::new() }
    }

    /// Park a company now: its `retry_after`, remembered for [`Parking::due`].
    pub fn park(&self) -> DateTime<Utc> {
        let due = Instant::now() + self.wait.to_std().unwrap_or_default();
        let mut next = self.next_due.lock().unwrap_or_else(|e| e.into_inner());
        if next.is_none_or(|n| due < n) {
            *next = Some(due);
        }
        drop(next);
        self.parked.notify_one();
        self.clock.now() + self.wait
    }

    /// Resolves when a parked company's wait is over (never, while none is parked).
    pub async fn due(&self) {
        loop {
            let next = *self.next_due.lock().unwrap_or_else(|e| e.into_inner());
            let Some(at) = next else {
                self.parked.notified().await;
                continue;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(at) => return,
                _ = self.parked.notified() => {}
            }
        }
    }

    /// Take up the companies whose wait is over: the writer marks them
    /// pending and says when the next one is due; each is planned again.
    pub async fn take_due(&self, writer: &mpsc::Sender<WriteMsg>, opts: &PlanOptions) -> Vec<Job> {
        let (reply, answer) = oneshot::channel();
        let now = self.clock.now();
        let asked = WriteMsg::TakeDueParked { limit: TAKE_AT_ONCE, reply };
        if writer.send(asked).await.is_err() {
            return Vec::new();
        }
        let Ok((due, next)) = answer.await else { return Vec::new() };
        // The next one stored, as a wait from now.
        let next = next.as_deref().and_then(crate::clock::parse_iso);
        *self.next_due.lock().unwrap_or_else(|e| e.into_inner()) =
            next.map(|at| Instant::now() + (at - now).to_std().unwrap_or_default());
        due.into_iter().filter_map(|snapshot| plan::plan(snapshot, opts, now).ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_parked_company_is_due_when_its_wait_is_over_and_not_before() {
        let parking = Parking::new(chrono::Duration::hours(2), Clock::system());
        // Nothing parked: never due.
        assert!(tokio::time::timeout(Duration::from_secs(3 * 3600), parking.due()).await.is_err());
        let until = parking.park();
        assert!((until - Clock::system().now()).num_minutes() >= 119);
        assert!(tokio::time::timeout(Duration::from_secs(7100), parking.due()).await.is_err(), "due too early");
        assert!(tokio::time::timeout(Duration::from_secs(200), parking.due()).await.is_ok(), "due after 2 h");
    }
}
