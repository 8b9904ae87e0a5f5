//! Stage 1: the feed. One OS thread streams the input, registers its rows
//! with the writer in batches, plans each company against what the database
//! knows, and queues a job for every company that needs calls. When the input
//! ends it drops its sender, which is how the dispatcher learns that no more
//! work will come.

use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::pipeline::control::shutdown::Stop;
use crate::pipeline::intake::input::{InputReader, Item};
use crate::pipeline::plan::{self, Job, PlanOptions, Skip};
use crate::pipeline::report::stats::Stats;
use crate::pipeline::writer::WriteMsg;
use crate::store::records::Registration;

/// How many input rows travel to the writer per registration message.
const REGISTER_BATCH: usize = 256;

/// How many invalid keys are named in the log (all are in `companies`).
const INVALID_LOGGED: usize = 20;

/// Read the whole input (or until the run stops), queueing jobs. Returns when
/// the input is exhausted, the run stops, or the dispatcher or the writer is gone.
pub fn feed(
    mut reader: InputReader,
    write_tx: mpsc::Sender<WriteMsg>,
    job_tx: mpsc::Sender<Job>,
    plan: &PlanOptions,
    stats: &Stats,
    stop: &Stop,
    clock: Clock,
) {
    // `false` once the dispatcher no longer takes jobs (the run stopped).
    let queue = |reg: Registration| -> bool {
        let snapshot = match reg {
            Registration::Duplicate => {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
                stats.rows_skipped.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            // Recorded with its reason by the writer; nothing to queue.
            Registration::Invalid => {
                stats.rows_skipped.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            Registration::Company(snapshot) => snapshot,
        };
        match plan::plan(*snapshot, plan, clock.now()) {
            Ok(job) => {
                return job_tx.blocking_send(job).is_ok();
            }
            Err(Skip::Fresh) => {
                stats.skipped_fresh.fetch_add(1, Ordering::Relaxed);
            }
            // The database says why (state, status_code, retry_after).
            Err(Skip::Rejected | Skip::Parked(_)) => {}
        }
        stats.rows_skipped.fetch_add(1, Ordering::Relaxed);
        true
    };

    let mut batch = Vec::with_capacity(REGISTER_BATCH);
    let mut done = false;
    let mut invalid_logged = 0usize;
    while !done && !stop.is_stopped() {
        while batch.len() < REGISTER_BATCH {
            match reader.next_item() {
                None => {
                    done = true;
                    break;
                }
                Some(Item::Blank) => {
                    stats.blank_rows.fetch_add(1, Ordering::Relaxed);
                }
                Some(Item::Problem(p)) => {
                    stats.bad_rows.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(line = p.line, problem = %p.message, "Skipping an unreadable input row; the rest is kept.");
                    if p.fatal {
                        done = true;
                        break;
                    }
                }
                Some(Item::Record(r)) => {
                    stats.input_rows.fetch_add(1, Ordering::Relaxed);
                    if let Some(why) = &r.invalid {
                        invalid_logged += 1;
                        if invalid_logged <= INVALID_LOGGED {
                            tracing::warn!(line = r.line, key = %r.search_key, reason = %why, "Invalid key: recorded, never sent.");
                        }
                    }
                    batch.push(r);
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        let records = std::mem::replace(&mut batch, Vec::with_capacity(REGISTER_BATCH));
        if write_tx.blocking_send(WriteMsg::Register { records, reply: reply_tx }).is_err() {
            return;
        }
        let Ok(registrations) = reply_rx.blocking_recv() else { return };
        for reg in registrations {
            if !queue(reg) {
                return;
            }
        }
    }
}
