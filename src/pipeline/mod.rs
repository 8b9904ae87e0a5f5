//! The pipeline (SPEC §3–5): four stages joined by bounded channels.
//!
//! ```text
//!  reader thread ──Register──▶ writer thread ──reply──▶ reader thread ──Job──▶ workers (async)
//!   (input.rs)                  (writer.rs)               (plan.rs)            (worker.rs, flow.rs)
//!                                   ▲                                               │
//!                                   └──────────────── Commit (page + call) ─────────┘
//! ```
//!
//! Every channel is bounded, so a slow stage slows the one before it and
//! nothing grows with the input. The run ends when the reader has no more
//! rows and every worker is idle, or when [`shutdown::Stop`] fires.

pub mod dry_run;
pub mod flow;
pub mod input;
pub mod listing;
pub mod plan;
pub mod shutdown;
pub mod worker;
pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_util::sync::CancellationToken;

use self::flow::{Flow, FlowConfig};
use self::input::{InputOptions, InputReader, InputSource, Item};
use self::plan::{Job, PlanOptions, Skip};
use self::shutdown::{Stop, StopReason};
use self::worker::{Ctx, RetryPolicy};
use self::writer::WriteMsg;
use crate::qcc::{Client, ClientConfig, Credentials};
use crate::store::records::{FetchPlan, Registration};
use crate::store::{self, read, write, StoreError};
use crate::{clock, exit};

/// Everything a run needs, already validated (see `cmd::run`).
pub struct RunOptions {
    pub input: InputSource,
    /// How the input is named in `runs.input_path` and messages.
    pub input_label: String,
    pub input_options: InputOptions,
    pub db: PathBuf,
    pub client: ClientConfig,
    pub credentials: Credentials,
    pub flow: FlowConfig,
    pub plan: PlanOptions,
    pub retry: RetryPolicy,
    pub max_calls: Option<u64>,
    pub daily_limit: Option<u64>,
    pub archive: bool,
    pub progress: crate::progress::ProgressMode,
    /// How long 110 parks a company (2 h; shorter only in tests).
    pub park_for: chrono::Duration,
}

/// Counters every stage updates; progress and the summary read them.
#[derive(Default)]
pub struct Stats {
    /// Rows with a key in the whole input, once a quick count has read it
    /// (0 until then, and for stdin).
    pub input_total: AtomicU64,
    pub input_rows: AtomicU64,
    pub blank_rows: AtomicU64,
    pub bad_rows: AtomicU64,
    pub duplicates: AtomicU64,
    pub skipped_fresh: AtomicU64,
    pub queued: AtomicU64,
    pub companies_finished: AtomicU64,
    /// Jobs a worker has finished with, whatever the outcome.
    pub jobs_ended: AtomicU64,
    /// Input rows settled without a job (duplicate, invalid, fresh, rejected
    /// or still parked), and parked companies queued again: with
    /// `jobs_ended`, what the progress bar counts as done.
    pub rows_skipped: AtomicU64,
    pub requeued: AtomicU64,
    pub calls: AtomicU64,
    pub rows_written: AtomicU64,
    pub commits: AtomicU64,
    pub input_done: AtomicBool,
    /// Discovery answers by what they left to fetch.
    pub plan_complete: AtomicU64,
    pub plan_unchanged: AtomicU64,
    pub plan_listing: AtomicU64,
    pub plan_years: AtomicU64,
    pub listing_contradictions: AtomicU64,
}

impl Stats {
    /// Count a discovery answer's plan.
    pub fn count_plan(&self, d: &listing::Decision) {
        let counter = match d.plan {
            FetchPlan::Nothing if d.store_page1 => &self.plan_complete,
            FetchPlan::Nothing => &self.plan_unchanged,
            FetchPlan::Listing => &self.plan_listing,
            FetchPlan::Years => &self.plan_years,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The call budget of this run: `--max-calls` and what `--daily-limit`
/// leaves of today (Beijing time), whichever is smaller.
pub struct Budget {
    max_calls: Option<u64>,
    daily: Option<(u64, u64)>,
    used: AtomicU64,
}

impl Budget {
    pub fn new(max_calls: Option<u64>, daily_limit: Option<u64>, used_today: u64) -> Self {
        Self { max_calls, daily: daily_limit.map(|l| (l, l.saturating_sub(used_today))), used: AtomicU64::new(0) }
    }

    /// Reserve one call, or say which budget is spent.
    pub fn take(&self) -> Result<(), StopReason> {
        let n = self.used.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(max) = self.max_calls {
            if n > max {
                self.used.fetch_sub(1, Ordering::SeqCst);
                return Err(StopReason::MaxCalls(max));
            }
        }
        if let Some((limit, left)) = self.daily {
            if n > left {
                self.used.fetch_sub(1, Ordering::SeqCst);
                return Err(StopReason::DailyLimit(limit));
            }
        }
        Ok(())
    }
}

/// Why a run could not start, or failed outright.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Input(#[from] input::InputError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Input(_) => exit::DATAERR,
            RunError::Store(_) => exit::CANTCREAT,
            RunError::Client(_) => exit::CONFIG,
            RunError::Internal(_) => exit::CANTCREAT,
        }
    }
}

/// The end-of-run summary (SPEC §7), also stored as JSON in `runs.summary`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub run_id: i64,
    pub exit_code: i32,
    pub status: String,
    pub stop_reason: Option<String>,
    pub elapsed_secs: f64,
    pub input_rows: u64,
    pub blank_rows: u64,
    pub bad_rows: u64,
    pub duplicates: u64,
    pub skipped_fresh: u64,
    pub companies_by_state: Vec<(String, u64)>,
    pub calls: u64,
    pub calls_by_status: Vec<(String, u64)>,
    pub rows_written: u64,
    pub customers_in_db: u64,
    pub calls_per_sec: f64,
    pub next_parked_retry: Option<String>,
    pub listing: ListingSummary,
}

/// What the run knew and did about the all-years listing.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ListingSummary {
    /// `every_year`, `some_years` or `unknown` at the end of the run.
    pub coverage: String,
    /// The evidence it rests on.
    pub evidence: Option<crate::store::records::Evidence>,
    /// Discovery answers that were the whole company.
    pub complete_after_discovery: u64,
    /// Refreshes that found nothing changed.
    pub unchanged: u64,
    /// Companies whose listing was paged.
    pub listing_paged: u64,
    /// Companies paged per year.
    pub per_year: u64,
    pub contradictions: u64,
    /// For the companies completed from their listing in this run: calls made,
    /// and what per-year paging would have cost for the same rows.
    pub listing_calls: u64,
    pub per_year_formula_calls: u64,
}

impl Summary {
    /// Companies of this run's input still needing calls.
    pub fn remaining(&self) -> u64 {
        self.companies_by_state
            .iter()
            .filter(|(s, _)| matches!(s.as_str(), "pending" | "deferred" | "parked"))
            .map(|(_, n)| n)
            .sum()
    }

    /// The human-readable summary printed at the end of every run.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let states: Vec<String> = self.companies_by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let calls: Vec<String> = self.calls_by_status.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        out.push_str(&format!("run {} {} (exit {})", self.run_id, self.status, self.exit_code));
        if let Some(r) = &self.stop_reason {
            out.push_str(&format!(": {r}"));
        }
        out.push('\n');
        out.push_str(&format!(
            "  input      {} rows, {} duplicates, {} blank, {} unreadable\n",
            self.input_rows, self.duplicates, self.blank_rows, self.bad_rows
        ));
        out.push_str(&format!("  companies  {}\n", if states.is_empty() { "none".into() } else { states.join(", ") }));
        out.push_str(&format!(
            "  fresh      {} skipped at no cost (fetched within --refresh-after)\n",
            self.skipped_fresh
        ));
        out.push_str(&format!(
            "  calls      {} in {:.1}s ({:.1}/s){}\n",
            self.calls,
            self.elapsed_secs,
            self.calls_per_sec,
            if calls.is_empty() { String::new() } else { format!(": {}", calls.join(", ")) }
        ));
        out.push_str(&format!(
            "  rows       {} written, {} customers in the database\n",
            self.rows_written, self.customers_in_db
        ));
        out.push_str(&self.listing.render());
        let remaining = self.remaining();
        if remaining > 0 {
            out.push_str(&format!("  remaining  {remaining} companies need another run"));
            if let Some(t) = &self.next_parked_retry {
                out.push_str(&format!(" (parked ones from {t})"));
            }
            out.push('\n');
        } else {
            out.push_str("  remaining  nothing: every company reached a final state\n");
        }
        out
    }
}

impl ListingSummary {
    /// The summary's `plan` lines: which plan was used and why.
    pub fn render(&self) -> String {
        let why = match (&self.evidence, self.coverage.as_str()) {
            (Some(e), "every_year") => format!(
                "the all-years listing covers every year (learned from {}, order {}, {}): companies are paged by it",
                e.search_key,
                e.order_number.as_deref().unwrap_or("-"),
                e.observed_at
            ),
            (Some(e), "some_years") => format!(
                "the all-years listing holds only some years ({}; {}, {}): companies are paged per year",
                e.detail, e.search_key, e.observed_at
            ),
            _ => "not yet learned what the all-years listing covers: companies are paged per year".to_string(),
        };
        let mut out = format!("  plan       {why}\n");
        out.push_str(&format!(
            "             {} complete after discovery, {} unchanged, {} by listing pages, {} per year\n",
            self.complete_after_discovery, self.unchanged, self.listing_paged, self.per_year
        ));
        if self.per_year_formula_calls > 0 {
            out.push_str(&format!(
                "  saved      {} calls: {} from the listing where per-year paging costs {}\n",
                self.per_year_formula_calls.saturating_sub(self.listing_calls),
                self.listing_calls,
                self.per_year_formula_calls
            ));
        }
        if self.contradictions > 0 {
            out.push_str(&format!(
                "  warning    {} listing answers contradicted what was learned; those companies were paged per year\n",
                self.contradictions
            ));
        }
        out
    }
}

/// How many input rows travel to the writer per registration message.
const REGISTER_BATCH: usize = 256;

/// Answered pages waiting for their commit, at most, per worker. Measured
/// (BENCHMARKS.md, 32 workers, no rate limit): with one page per worker each
/// worker waited for a whole batch before its next call — ~21 pages, 2.6 ms
/// applying them and 4 ms committing — and the run made ~2,500 calls/s; with
/// 8 the calls go on while the writer works, batches grow to ~140 pages
/// (23 ms + 12 ms), commits per run fall from ~1,200 to ~180, and the run
/// makes ~3,200 calls/s. At API rates (tens of calls a second) the window is
/// nearly empty. It is the bound that matters for a `kill -9`: at most
/// `concurrency × (1 + 8)` calls are paid and not yet stored.
pub const COMMIT_WINDOW_PER_WORKER: usize = 8;

/// Run the pipeline to the end or until stopped. `cancel` is the caller's
/// stop switch (signals, tests).
pub async fn run(opts: RunOptions, cancel: CancellationToken) -> Result<Summary, RunError> {
    let started = Instant::now();
    let stats = Arc::new(Stats::default());
    if opts.progress != crate::progress::ProgressMode::Quiet {
        // The progress bar's total: a second, quick pass over the input.
        let (source, input_options, stats) = (opts.input.clone(), opts.input_options.clone(), stats.clone());
        let _ = std::thread::Builder::new().name("input-count".into()).spawn(move || {
            if let Some(n) = InputReader::count_rows(source, &input_options) {
                stats.input_total.store(n, Ordering::Relaxed);
            }
        });
    }
    let reader = InputReader::open(opts.input, &opts.input_options)?;
    tracing::info!(input = %opts.input_label, encoding = reader.encoding, "Reading input.");

    let db = opts.db.clone();
    let store = tokio::task::spawn_blocking(move || store::open_for_writing(&db))
        .await
        .map_err(|e| RunError::Internal(e.to_string()))??;
    let now = chrono::Utc::now();
    let used_today =
        read::calls_since(&store.conn, &clock::iso(clock::beijing_day_start(now))).map_err(StoreError::from)?;
    let run_id = write::start_run(&store.conn, &opts.input_label, &clock::iso(now)).map_err(StoreError::from)?;
    let knowledge = read::listing_knowledge(&store.conn).map_err(StoreError::from)?;
    tracing::info!(run_id, db = %opts.db.display(), "Run started.");

    let client = Client::new(&opts.client, opts.credentials).map_err(|e| RunError::Client(e.to_string()))?;
    let stop = Arc::new(Stop::with_parent(&cancel));
    // One worker per in-flight slot; in auto mode the flow control decides
    // how many of them may be calling at a time.
    let workers_n = match opts.flow.concurrency {
        flow::Concurrency::Fixed(n) => n.max(1),
        flow::Concurrency::Auto { max } => max.max(1),
    };

    let (write_tx, write_rx) = mpsc::channel::<WriteMsg>(1024);
    let writer = writer::spawn(store, run_id, write_rx, stats.clone(), stop.clone())
        .map_err(|e| RunError::Internal(e.to_string()))?;

    let (job_tx, job_rx) = mpsc::channel::<Job>(workers_n * 2);
    let reader_thread = {
        let write_tx = write_tx.clone();
        let stats = stats.clone();
        let stop = stop.clone();
        let plan = opts.plan.clone();
        std::thread::Builder::new()
            .name("input-reader".into())
            .spawn(move || read_and_plan(reader, write_tx, job_tx, &plan, &stats, &stop))
            .map_err(|e| RunError::Internal(e.to_string()))?
    };

    let ctx = Arc::new(Ctx {
        client,
        flow: Flow::new(opts.flow.clone()),
        stop: stop.clone(),
        writer: write_tx,
        unsynced: Arc::new(tokio::sync::Semaphore::new(workers_n * COMMIT_WINDOW_PER_WORKER)),
        plan: opts.plan.clone(),
        retry: opts.retry.clone(),
        archive: opts.archive,
        budget: Budget::new(opts.max_calls, opts.daily_limit, used_today),
        stats: stats.clone(),
        park_for: opts.park_for,
        listing: listing::Knowledge::new(&knowledge),
    });
    let progress = crate::progress::spawn(opts.progress, stats.clone(), ctx.clone());
    let jobs = Arc::new(Mutex::new(job_rx));
    let mut pool = tokio::task::JoinSet::new();
    for _ in 0..workers_n {
        pool.spawn(worker::work(ctx.clone(), jobs.clone()));
    }
    drop(jobs);
    while let Some(res) = pool.join_next().await {
        if let Err(e) = res {
            tracing::error!(error = %e, "A worker failed; its company stays pending for the next run.");
        }
    }
    progress.finish();
    drop(ctx);
    let reader_result = tokio::task::spawn_blocking(move || reader_thread.join())
        .await
        .map_err(|e| RunError::Internal(e.to_string()))?;
    if reader_result.is_err() {
        return Err(RunError::Internal("the input reader panicked".into()));
    }
    let store_result = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| RunError::Internal(e.to_string()))?
        .map_err(|_| RunError::Internal("the writer panicked".into()))?;
    let store = match store_result {
        Ok(store) => store,
        Err(e) => return Err(RunError::Store(StoreError::Sql(e))),
    };
    let summary = finish(store, run_id, &clock::iso(now), &stats, &stop, started)?;
    Ok(summary)
}

/// The reader thread: stream the input, register rows with the writer in
/// batches, and queue a job for every company that needs calls. Once the input
/// is exhausted it stays while workers are busy, re-queueing companies of this
/// run whose 110 parking has expired, so a long run retries them itself.
fn read_and_plan(
    mut reader: InputReader,
    write_tx: mpsc::Sender<WriteMsg>,
    job_tx: mpsc::Sender<Job>,
    plan: &PlanOptions,
    stats: &Stats,
    stop: &Stop,
) {
    let queue = |reg: Registration| -> bool {
        if !matches!(reg, Registration::Company(_)) {
            stats.rows_skipped.fetch_add(1, Ordering::Relaxed);
        }
        match reg {
            Registration::Duplicate => {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            // Recorded with its reason by the writer; nothing to queue.
            Registration::Invalid => {}
            Registration::Company(snapshot) => match plan::plan(*snapshot, plan, chrono::Utc::now()) {
                Ok(job) => {
                    stats.queued.fetch_add(1, Ordering::Relaxed);
                    return job_tx.blocking_send(job).is_ok();
                }
                Err(Skip::Fresh) => {
                    stats.skipped_fresh.fetch_add(1, Ordering::Relaxed);
                    stats.rows_skipped.fetch_add(1, Ordering::Relaxed);
                }
                // The database says why (state, status_code, retry_after).
                Err(Skip::Rejected | Skip::Parked(_)) => {
                    stats.rows_skipped.fetch_add(1, Ordering::Relaxed);
                }
            },
        }
        true
    };
    // Ask the writer for parked companies whose wait is over.
    let requeue_parked = || -> Option<usize> {
        let (reply_tx, reply_rx) = oneshot::channel();
        write_tx.blocking_send(WriteMsg::TakeDueParked { limit: REGISTER_BATCH, reply: reply_tx }).ok()?;
        let due = reply_rx.blocking_recv().ok()?;
        let n = due.len();
        stats.requeued.fetch_add(n as u64, Ordering::Relaxed);
        for snapshot in due {
            if !queue(Registration::Company(Box::new(snapshot))) {
                return None;
            }
        }
        Some(n)
    };

    let mut batch = Vec::with_capacity(REGISTER_BATCH);
    let mut last_parked_check = Instant::now();
    let mut done = false;
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
                    batch.push(r);
                }
            }
        }
        if !batch.is_empty() {
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
        if last_parked_check.elapsed() > PARKED_CHECK_EVERY {
            last_parked_check = Instant::now();
            if requeue_parked().is_none() {
                return;
            }
        }
    }
    stats.input_done.store(true, Ordering::Relaxed);
    while !stop.is_stopped() {
        let busy = stats.queued.load(Ordering::Relaxed) > stats.jobs_ended.load(Ordering::Relaxed);
        if !busy {
            return;
        }
        if last_parked_check.elapsed() > PARKED_CHECK_EVERY {
            last_parked_check = Instant::now();
            if requeue_parked().is_none() {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How often a run looks for parked companies whose wait is over.
const PARKED_CHECK_EVERY: Duration = Duration::from_secs(1);

fn finish(
    store: store::WriteStore,
    run_id: i64,
    run_started_at: &str,
    stats: &Stats,
    stop: &Stop,
    started: Instant,
) -> Result<Summary, RunError> {
    let conn = &store.conn;
    let by_state = read::companies_by_state(conn, run_id).map_err(StoreError::from)?;
    let by_status = read::calls_by_status(conn, run_id).map_err(StoreError::from)?;
    let customers = read::customer_rows_total(conn).map_err(StoreError::from)?;
    let next_parked = read::earliest_retry_after(conn, run_id).map_err(StoreError::from)?;
    let knowledge = read::listing_knowledge(conn).map_err(StoreError::from)?;
    let (per_year_formula_calls, listing_calls) =
        read::listing_savings(conn, run_id, run_started_at).map_err(StoreError::from)?;
    let (coverage, evidence) = match (knowledge.some_years, knowledge.every_year) {
        (Some(e), _) => ("some_years", Some(e)),
        (None, Some(e)) => ("every_year", Some(e)),
        (None, None) => ("unknown", None),
    };
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let listing = ListingSummary {
        coverage: coverage.into(),
        evidence,
        complete_after_discovery: load(&stats.plan_complete),
        unchanged: load(&stats.plan_unchanged),
        listing_paged: load(&stats.plan_listing),
        per_year: load(&stats.plan_years),
        contradictions: load(&stats.listing_contradictions),
        listing_calls,
        per_year_formula_calls,
    };
    let reason = stop.reason();
    let elapsed = started.elapsed().max(Duration::from_millis(1));
    let calls = stats.calls.load(Ordering::Relaxed);
    let mut summary = Summary {
        run_id,
        exit_code: exit::OK,
        status: "finished".into(),
        stop_reason: reason.as_ref().map(|r| r.to_string()),
        elapsed_secs: elapsed.as_secs_f64(),
        input_rows: stats.input_rows.load(Ordering::Relaxed),
        blank_rows: stats.blank_rows.load(Ordering::Relaxed),
        bad_rows: stats.bad_rows.load(Ordering::Relaxed),
        duplicates: stats.duplicates.load(Ordering::Relaxed),
        skipped_fresh: stats.skipped_fresh.load(Ordering::Relaxed),
        companies_by_state: by_state,
        calls,
        calls_by_status: by_status,
        rows_written: stats.rows_written.load(Ordering::Relaxed),
        customers_in_db: customers,
        calls_per_sec: calls as f64 / elapsed.as_secs_f64(),
        next_parked_retry: next_parked,
        listing,
    };
    match &reason {
        Some(r) => {
            summary.exit_code = r.exit_code();
            summary.status = if summary.exit_code == exit::TEMPFAIL { "stopped".into() } else { "failed".into() };
        }
        None if summary.remaining() > 0 => {
            summary.exit_code = exit::TEMPFAIL;
            summary.status = "incomplete".into();
        }
        None => {}
    }
    let json = serde_json::to_string(&summary).unwrap_or_default();
    let end = write::RunEnd {
        status: &summary.status,
        exit_code: summary.exit_code,
        calls,
        rows_written: summary.rows_written,
        summary_json: &json,
    };
    write::finish_run(conn, run_id, &end, &clock::now_iso()).map_err(StoreError::from)?;
    Ok(summary)
}
