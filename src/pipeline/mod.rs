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

pub mod budget;
pub mod call;
pub mod disk;
pub mod dispatch;
pub mod dry_run;
pub mod feed;
pub mod flow;
pub mod input;
pub mod listing;
pub mod pages;
pub mod parking;
pub mod plan;
pub mod schedule;
pub mod shutdown;
pub mod stats;
pub mod summary;
pub mod worker;
pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::budget::Budget;
pub use self::stats::Stats;
pub use self::summary::{ListingSummary, Summary};
pub use self::writer::COMMIT_WINDOW_PER_WORKER;

use self::call::RetryPolicy;
use self::flow::{Flow, FlowConfig};
use self::input::{InputOptions, InputReader, InputSource};
use self::plan::{Job, PlanOptions};
use self::shutdown::Stop;
use self::worker::Ctx;
use self::writer::{CommitWindow, WriteMsg};
use crate::clock::{self, Clock};
use crate::exit;
use crate::qcc::{Client, ClientConfig, Credentials};
use crate::store::{self, read, write, StoreError};

/// How many of the input's first keys the log and the dry run show.
pub const FIRST_KEYS_SHOWN: usize = 5;

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
    pub schedule: schedule::Settings,
    pub archive: bool,
    pub progress: crate::progress::ProgressMode,
    /// How long 110 parks a company (2 h; shorter only in tests).
    pub park_for: chrono::Duration,
    /// Where the run reads the time of day (the system clock but in tests).
    pub clock: Clock,
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
    tracing::info!(
        input = %opts.input_label,
        layout = %reader.layout,
        first_keys = ?reader.first_keys(FIRST_KEYS_SHOWN),
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
        flow::Concurrency::Fixed(n) => n.max(1),
        flow::Concurrency::Auto { max } => max.max(1),
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
            .spawn(move || feed::feed(reader, write_tx, job_tx, &plan, &stats, &stop, clock))
            .map_err(|e| RunError::Internal(e.to_string()))?
    };

    let flow = Arc::new(Flow::new(opts.flow.clone()));
    let ctx = Arc::new(Ctx {
        client,
        flow: flow.clone(),
        stop: stop.clone(),
        writer: write_tx,
        window,
        plan: opts.plan.clone(),
        retry: opts.retry.clone(),
        archive: opts.archive,
        budget: Budget::new(opts.max_calls, opts.daily_limit, used_today, opts.clock),
        stats: stats.clone(),
        parking: parking::Parking::new(opts.park_for, opts.clock),
        listing: listing::Knowledge::new(&knowledge),
        clock: opts.clock,
        occupancy: pages::Occupancy::new(workers_n),
    });
    let progress = crate::progress::spawn(opts.progress, stats.clone(), flow);
    let disk = disk::DiskCheck::new(&opts.db, opts.min_free_space);
    dispatch::dispatch(ctx.clone(), job_rx, workers_n, disk).await;
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
    summary::finish(store, run_id, &clock::iso(now), &stats, &stop, started, opts.clock, schedule)
}
