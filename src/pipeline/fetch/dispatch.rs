//! Stage 2: the dispatcher. One task owns the queue of jobs from the feed
//! and runs each company in a `JoinSet`, at most one per worker slot. It also
//! takes up companies parked by 110 once their wait is over, and it decides
//! when the run's work is done: the feed has closed its queue and nothing is
//! running. No counter is polled for that.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::context::Ctx;
use super::worker::{self, CompanyOutcome};
use crate::pipeline::control::disk::{DiskCheck, CHECK_EVERY};
use crate::pipeline::plan::Job;

/// Run every job to its end, or until the run stops (then let the companies
/// in flight finish: their calls are paid and their answers are committed).
pub async fn dispatch(ctx: Arc<Ctx>, mut jobs: mpsc::Receiver<Job>, workers: usize, disk: DiskCheck) {
    // One permit per company in flight: the pool's size.
    let slots = Arc::new(Semaphore::new(workers.max(1)));
    let mut running: JoinSet<CompanyOutcome> = JoinSet::new();
    let spawn = |running: &mut JoinSet<CompanyOutcome>, job: Job| {
        // Only this task takes permits, and only when one is free.
        let Ok(slot) = slots.clone().try_acquire_owned() else { return Some(job) };
        let ctx = ctx.clone();
        running.spawn(async move {
            let _slot = slot;
            let _occupied = ctx.occupancy.enter();
            worker::run_company(&ctx, job).await
        });
        None
    };
    // Parked companies whose wait is over, waiting for a slot.
    let mut due: VecDeque<Job> = VecDeque::new();
    let mut feed_open = true;
    let stop = ctx.stop.token();
    // Free space: before the first call (here, before any job runs), then
    // every second.
    if let Some(reason) = disk.check() {
        ctx.stop.stop(reason);
    }
    let mut disk_check = tokio::time::interval_at(tokio::time::Instant::now() + CHECK_EVERY, CHECK_EVERY);
    loop {
        while let Some(job) = due.pop_front() {
            if let Some(job) = spawn(&mut running, job) {
                due.push_front(job);
                break;
            }
        }
        let idle = running.is_empty() && due.is_empty();
        if !feed_open && idle {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = disk_check.tick() => {
                if let Some(reason) = disk.check() {
                    ctx.stop.stop(reason);
                }
            }
            Some(ended) = running.join_next(), if !running.is_empty() => note_end(&ctx, ended),
            job = jobs.recv(), if feed_open && due.is_empty() && slots.available_permits() > 0 => match job {
                Some(job) => due.extend(spawn(&mut running, job)),
                None => feed_open = false,
            },
            // Only while there is other work: a run with nothing else to do
            // ends rather than wait for a parked company.
            _ = ctx.parking.due(), if due.is_empty() => {
                let taken = ctx.parking.take_due(&ctx.handoff.writer, &ctx.plan).await;
                ctx.stats.requeued.fetch_add(taken.len() as u64, Ordering::Relaxed);
                due.extend(taken);
            }
        }
    }
    // Stopped (or done): no new job is taken. Closing the queue tells the
    // feed; the companies in flight see the stop themselves and end.
    jobs.close();
    while let Some(ended) = running.join_next().await {
        note_end(&ctx, ended);
    }
}

fn note_end(ctx: &Ctx, ended: Result<CompanyOutcome, tokio::task::JoinError>) {
    match ended {
        Ok(CompanyOutcome::Final) => {}
        Ok(CompanyOutcome::Unfinished) => tracing::debug!("A company is not finished in this run."),
        Err(e) => tracing::error!(error = %e, "A company's task failed; it stays pending for the next run."),
    }
    ctx.stats.jobs_ended.fetch_add(1, Ordering::Relaxed);
}
