//! The pipeline: its stages, wired here with bounded channels, and the
//! rooms they decide with.
//!
//! ```text
//!  intake::feed (thread) ─Register─▶ writer (thread) ─reply─▶ intake::feed ─Job─▶ fetch::dispatch ─spawns─▶ fetch::worker ×N
//!                                       ▲                                                                     │ pages ─▶ call
//!                                       └─────────────── fetch::handoff: Commit (rows + checkpoint + call) ◀──┘
//! ```
//!
//! * [`intake`] reads the list and feeds the companies due;
//! * [`fetch`] makes the calls, one company per worker slot;
//! * [`writer`] is the single thread that owns SQLite;
//! * [`plan`] decides what a company's cycle fetches and when it is due again;
//! * [`control`] limits and stops the run (rate, budget, parking, disk, the stop switch);
//! * [`report`] counts, shows progress, closes the run with its summary, and dry-runs.
//!
//! Intake, fetch and the writer never call each other: they exchange
//! messages over the channels made in [`run`]. Every channel is bounded, so a
//! slow stage slows the one before it and nothing grows with the input. The
//! run's work is done when the feed has closed its queue and the dispatcher
//! has nothing running; it stops early when the
//! [`Stop`](control::shutdown::Stop) fires. Then the writer drains and
//! [`report::summary`] closes the run.

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
pub use self::writer::{COMMIT_WINDOW_PER_WORKER, UNSTORED_CALLS_PER_WORKER};

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
use crate::store::receipt::{Dictionary, Sealer};
use crate::store::{self, dictionaries, read, write, StoreError};

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
    pub progress: report::progress::ProgressMode,
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
    let reader = open_input(&opts, &stats)?;
    let now = opts.clock.now();
    let opened = open_store(&opts, now).await?;
    let (store, run_id) = (opened.store, opened.run_id);
    // Before any thread starts: a client that cannot be built ends the run here.
    let client =
        Client::new(&opts.client, opts.credentials.clone(), opts.clock).map_err(|e| RunError::Client(e.to_string()))?;
    let stop = Arc::new(Stop::with_parent(&cancel));
    // One company in flight per worker slot; in auto mode the flow control
    // decides how many of them may be calling at a time.
    let workers = match opts.flow.concurrency {
        control::flow::Concurrency::Fixed(n) => n.max(1),
        control::flow::Concurrency::Auto { max } => max.max(1),
    };

    // The writer: one thread, one bounded channel, the commit window.
    let (write_tx, write_rx) = mpsc::channel::<WriteMsg>(1024);
    let window = CommitWindow::new(workers);
    let scheduling = writer::Scheduling {
        revisit: opts.schedule.revisit(&store.conn, now).map_err(StoreError::from)?,
        page_size: opts.plan.page_size,
    };
    let schedule = (opts.schedule.clone(), scheduling.revisit.describe());
    tracing::info!(schedule = %schedule.1, "Revisits.");
    let writer = writer::spawn(store, run_id, write_rx, stats.clone(), stop.clone(), opts.clock, &window, scheduling)
        .map_err(|e| RunError::Internal(e.to_string()))?;

    // Intake: the feed thread registers each company and queues the due ones.
    let (job_tx, job_rx) = mpsc::channel::<Job>(workers * 2);
    let feed_thread = {
        let (write_tx, stats, stop, plan, clock) =
            (write_tx.clone(), stats.clone(), stop.clone(), opts.plan.clone(), opts.clock);
        std::thread::Builder::new()
            .name("input-feed".into())
            .spawn(move || intake::feed::feed(reader, write_tx, job_tx, &plan, &stats, &stop, clock))
            .map_err(|e| RunError::Internal(e.to_string()))?
    };

    // Fetch: the dispatcher runs the companies until the feed is done or the run stops.
    let handoff = Handoff::new(write_tx, window, stop.clone());
    let ctx = Arc::new(fetch_context(&opts, client, handoff, &stop, &stats, &opened.before, workers));
    let progress = report::progress::spawn(opts.progress, stats.clone(), ctx.caller.flow.clone());
    let disk = control::disk::DiskCheck::new(&opts.db, opts.min_free_space);
    fetch::dispatch::dispatch(ctx.clone(), job_rx, workers, disk).await;
    progress.finish();
    // The last senders go with the context: the writer drains and ends.
    drop(ctx);
    let store = join(feed_thread, writer, &opts.db).await?;
    report::summary::finish(store, run_id, &clock::iso(now), &stats, &stop, started, opts.clock, schedule)
}

/// Open the list (and, for the progress bar's total, count its rows on a
/// thread of their own), and log what it was found to be.
fn open_input(opts: &RunOptions, stats: &Arc<Stats>) -> Result<InputReader, RunError> {
    if opts.progress != report::progress::ProgressMode::Quiet {
        let (source, input_options, stats) = (opts.input.clone(), opts.input_options.clone(), stats.clone());
        // Without the thread the progress bar has no total; the run is the same.
        let _ = std::thread::Builder::new().name("input-count".into()).spawn(move || {
            if let Some(n) = InputReader::count_rows(source, &input_options) {
                stats.input_total.store(n, Ordering::Relaxed);
            }
        });
    }
    let reader = InputReader::open(opts.input.clone(), &opts.input_options)?;
    tracing::info!(
        input = %opts.input_label,
        layout = %reader.layout,
        first_keys = ?reader.first_keys(intake::input::FIRST_KEYS_SHOWN),
        "Reading input; the first keys are shown exactly as they will be sent."
    );
    Ok(reader)
}

/// The database opened for this run, with what earlier runs left that the
/// fetch stage starts from.
struct Opened {
    store: store::WriteStore,
    run_id: i64,
    before: Before,
}

/// What the database knew when the run started.
pub(crate) struct Before {
    /// Calls already made today (Beijing time), for `--daily-limit`.
    pub used_today: u64,
    /// What the all-years listing is known to cover.
    pub knowledge: read::ListingKnowledge,
    /// The receipt dictionary to compress with, and the id the next one
    /// learned takes.
    pub dictionary: Option<Arc<Dictionary>>,
    pub next_dictionary_id: i64,
}

async fn open_store(opts: &RunOptions, now: chrono::DateTime<chrono::Utc>) -> Result<Opened, RunError> {
    let db = opts.db.clone();
    let store = tokio::task::spawn_blocking(move || store::open_for_writing(&db))
        .await
        .map_err(|e| RunError::Internal(e.to_string()))??;
    let used_today =
        read::calls_since(&store.conn, &clock::iso(clock::beijing_day_start(now))).map_err(StoreError::from)?;
    let run_id = write::start_run(&store.conn, &opts.input_label, &clock::iso(now)).map_err(StoreError::from)?;
    let knowledge = read::listing_knowledge(&store.conn).map_err(StoreError::from)?;
    let dictionary = if opts.archive {
        dictionaries::for_run(&store.conn, &clock::iso(now)).map_err(StoreError::from)?
    } else {
        None
    };
    let next_dictionary_id = dictionaries::next_id(&store.conn).map_err(StoreError::from)?;
    tracing::info!(run_id, db = %opts.db.display(), "Run started.");
    Ok(Opened { store, run_id, before: Before { used_today, knowledge, dictionary, next_dictionary_id } })
}

/// The context the companies in flight share: the caller (client, flow,
/// budget, retries) and what the workers decide with.
pub(crate) fn fetch_context(
    opts: &RunOptions,
    client: Client,
    handoff: Handoff,
    stop: &Arc<Stop>,
    stats: &Arc<Stats>,
    before: &Before,
    workers: usize,
) -> Ctx {
    let caller = Caller {
        client,
        flow: Arc::new(Flow::new(opts.flow.clone())),
        budget: Budget::new(opts.max_calls, opts.daily_limit, before.used_today, opts.clock),
        retry: opts.retry.clone(),
        page_size: opts.plan.page_size,
        stop: stop.clone(),
        stats: stats.clone(),
        handoff: handoff.clone(),
        clock: opts.clock,
    };
    Ctx {
        caller,
        handoff,
        stop: stop.clone(),
        plan: opts.plan.clone(),
        archive: opts.archive,
        sealer: Arc::new(Sealer::new(before.dictionary.clone(), before.next_dictionary_id)),
        stats: stats.clone(),
        parking: Parking::new(opts.park_for, opts.clock),
        listing: listing::Knowledge::new(&before.knowledge),
        clock: opts.clock,
        occupancy: Occupancy::new(workers),
    }
}

/// Wait for the feed and the writer to end; the writer hands the store back.
async fn join(
    feed: std::thread::JoinHandle<()>,
    writer: std::thread::JoinHandle<Result<store::WriteStore, rusqlite::Error>>,
    db: &std::path::Path,
) -> Result<store::WriteStore, RunError> {
    let internal = |e: tokio::task::JoinError| RunError::Internal(e.to_string());
    if tokio::task::spawn_blocking(move || feed.join()).await.map_err(internal)?.is_err() {
        return Err(RunError::Internal("the input reader panicked".into()));
    }
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(internal)?
        .map_err(|_| RunError::Internal("the writer panicked".into()))?;
    match written {
        Ok(store) => Ok(store),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
            Err(RunError::Store(StoreError::DiskFull { db: db.to_path_buf() }))
        }
        Err(e) => Err(RunError::Store(StoreError::Sql(e))),
    }
}
