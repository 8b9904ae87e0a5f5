//! The pipeline: four stages joined by bounded channels.
//!
//! ```text
//!  feed (thread) ──Register──▶ writer (thread) ──reply──▶ feed ──Job──▶ dispatch ──spawns──▶ worker::run_company ×N
//!   feed.rs                     writer.rs                                dispatch.rs           worker.rs + call.rs
//!                                   ▲                                                                  │
//!                                   └──────────────────────── Commit (page + call) ────────────────────┘
//! ```
//!
//! Every channel is bounded, so a slow stage slows the one before it and
//! nothing grows with the input. The run's work is done when the feed has
//! closed its queue and the dispatcher has nothing running; it stops early
//! when [`shutdown::Stop`] fires. Then the writer drains and [`summary`]
//! closes the run.

pub mod control;
pub mod error;
pub mod fetch;
pub mod intake;
pub mod plan;
pub mod report;
pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::error::RunError;
pub use self::report::stats::Stats;
pub use self::report::summary::{ListingSummary, Summary};
pub use self::writer::COMMIT_WINDOW_PER_WORKER;

use self::control::budget::Budget;
use self::control::flow::{Flow, FlowConfig};
use self::control::parking::Parking;
use self::control::shutdown::Stop;
use self::fetch::call::{Caller, RetryPolicy};
use self::fetch::context::Ctx;
use self::fetch::handoff::Handoff;
use self::fetch::lanes::Occupancy;
use self::intake::input::{InputOptions, InputReader, InputSource};
use self::plan::listing;
use self::plan::{Job, PlanOptions};
use self::writer::{CommitWindow, WriteMsg};
use crate::clock::{self, Clock};
use crate::qcc::{Client, ClientConfig, Credentials};
use crate::store::{self, read, write, StoreError};

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
    /// `--min-free-space`, in bytes.
    pub min_free_space: u64,
    /// When to ask again (`plan.refresh_after` is its `refresh_after`).
    pub schedule: plan::schedule::Settings,
    pub archive: bool,
    pub progress: crate::pipeline::report::progress::ProgressMode,
    /// How long 110 parks a company (2 h; shorter only in tests).
    pub park_for: chrono::Duration,
    /// Where the run reads the time of day (the system clock but in tests).
    pub clock: Clock,
}

/// Run the pipeline to the end or until stopped. `cancel` is the caller's
/// stop switch (signals, tests).
pub async fn run(opts: RunOptions, cancel: CancellationToken) -> Result<Summary, RunError> {
    let started = Instant::now();
    let stats = Arc::new(Stats::default());
    if opts.progress != crate::pipeline::report::progress::ProgressMode::Quiet {
        // The progress bar's total: a second, quick pass over the input.
        let (source, input_options, stats) = (opts.input.clone(), opts.input_options.clone(), stats.clone());
        let _ = std::thread::Builder::new().name("input-count".into()).spawn(move || {
            if let Some(n) = InputReader::count_rows(source, &input_options) {
                stats.input_total.store(n, Ordering::Relaxed);
            }
        });
    }
    let reader = InputReader::open(opts.input, &opts.input_options)?;
    tracing::info!(
        input = %opts.input_label,
        layout = %reader.layout,
        first_keys = ?reader.first_keys(intake::input::FIRST_KEYS_SHOWN),
        "Reading input; the first keys are shown exactly as they will be sent."
    );

    let db = opts.db.clone();
    let store = tokio::task::spawn_blocking(move || store::open_for_writing(&db))
        .await
        .map_err(|e| RunError::Internal(e.to_string()))??;
    let now = opts.clock.now();
    let used_today =
        read::calls_since(&store.conn, &clock::iso(clock::beijing_day_start(now))).map_err(StoreError::from)?;
    let run_id = write::start_run(&store.conn, &opts.input_label, &clock::iso(now)).map_err(StoreError::from)?;
    let knowledge = read::listing_knowledge(&store.conn).map_err(StoreError::from)?;
    tracing::info!(run_id, db = %opts.db.display(), "Run started.");

    let client =
        Client::new(&opts.client, opts.credentials, opts.clock).map_err(|e| RunError::Client(e.to_string()))?;
    let stop = Arc::new(Stop::with_parent(&cancel));
    // One company in flight per worker slot; in auto mode the flow control
    // decides how many of them may be calling at a time.
    let workers_n = match opts.flow.concurrency {
        control::flow::Concurrency::Fixed(n) => n.max(1),
        control::flow::Concurrency::Auto { max } => max.max(1),
    };

    let (write_tx, write_rx) = mpsc::channel::<WriteMsg>(1024);
    let window = CommitWindow::new(workers_n);
    let scheduling = writer::Scheduling {
        revisit: opts.schedule.revisit(&store.conn, now).map_err(StoreError::from)?,
        page_size: opts.plan.page_size,
    };
    let schedule = (opts.schedule.clone(), scheduling.revisit.describe());
    tracing::info!(schedule = %schedule.1, "Revisits.");
    let writer = writer::spawn(store, run_id, write_rx, stats.clone(), stop.clone(), opts.clock, &window, scheduling)
        .map_err(|e| RunError::Internal(e.to_string()))?;

    let (job_tx, job_rx) = mpsc::channel::<Job>(workers_n * 2);
    let feed_thread = {
        let write_tx = write_tx.clone();
        let stats = stats.clone();
        let stop = stop.clone();
        let plan = opts.plan.clone();
        let clock = opts.clock;
        std::thread::Builder::new()
            .name("input-feed".into())
            .spawn(move || intake::feed::feed(reader, write_tx, job_tx, &plan, &stats, &stop, clock))
            .map_err(|e| RunError::Internal(e.to_string()))?
    };

    let flow = Arc::new(Flow::new(opts.flow.clone()));
    let handoff = Handoff::new(write_tx, window, stop.clone());
    let caller = Caller {
        client,
        flow: flow.clone(),
        budget: Budget::new(opts.max_calls, opts.daily_limit, used_today, opts.clock),
        retry: opts.retry.clone(),
        page_size: opts.plan.page_size,
        stop: stop.clone(),
        stats: stats.clone(),
        handoff: handoff.clone(),
        clock: opts.clock,
    };
    let ctx = Arc::new(Ctx {
        caller,
        handoff,
        stop: stop.clone(),
        plan: opts.plan.clone(),
        archive: opts.archive,
        stats: stats.clone(),
        parking: Parking::new(opts.park_for, opts.clock),
        listing: listing::Knowledge::new(&knowledge),
        clock: opts.clock,
        occupancy: Occupancy::new(workers_n),
    });
    let progress = report::progress::spawn(opts.progress, stats.clone(), flow);
    let disk = control::disk::DiskCheck::new(&opts.db, opts.min_free_space);
    fetch::dispatch::dispatch(ctx.clone(), job_rx, workers_n, disk).await;
    progress.finish();
    drop(ctx);
    let feed_result =
        tokio::task::spawn_blocking(move || feed_thread.join()).await.map_err(|e| RunError::Internal(e.to_string()))?;
    if feed_result.is_err() {
        return Err(RunError::Internal("the input reader panicked".into()));
    }
    let store_result = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| RunError::Internal(e.to_string()))?
        .map_err(|_| RunError::Internal("the writer panicked".into()))?;
    let store = match store_result {
        Ok(store) => store,
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
            return Err(RunError::Store(StoreError::DiskFull { db: opts.db.clone() }))
        }
        Err(e) => return Err(RunError::Store(StoreError::Sql(e))),
    };
    report::summary::finish(store, run_id, &clock::iso(now), &stats, &stop, started, opts.clock, schedule)
}
