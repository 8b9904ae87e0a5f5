//! Why a run stops early, decided once and seen by every stage.
//!
//! The token is what workers and the reader watch: once it is cancelled no new
//! call starts, calls already in flight finish, and their results are still
//! committed. The first reason recorded wins, except that an account problem
//! (exit 78) or a database failure (exit 73) overrides a softer reason.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// SIGINT/SIGTERM (or the caller's cancellation).
    Interrupted,
    /// 109/116: the vendor's daily limit is reached; `resumes`: the next
    /// Beijing day, by the run's clock.
    QuotaExhausted { code: u32, message: String, resumes: DateTime<Utc> },
    /// `--max-calls` reached.
    MaxCalls(u64),
    /// `--daily-limit` reached (counted in Beijing calendar days).
    DailyLimit { limit: u64, resumes: DateTime<Utc> },
    /// Throttling (120/122/429) lasted longer than `--max-throttle-wait`.
    Throttled,
    /// The API refused the account or the request: no further calls.
    Fatal { code: String, message: String, hint: String },
    /// The database could not be written.
    StoreFailed(String),
    /// SQLite found the disk full (SQLITE_FULL).
    DiskFull,
    /// The database's filesystem has less free space than `--min-free-space`.
    LowDisk { dir: String, free: u64, min_free: u64 },
}

impl StopReason {
    /// Which reason wins when two are recorded: an account problem or a
    /// database failure overrides a softer one.
    fn severity(&self) -> u8 {
        match self {
            StopReason::Fatal { .. } | StopReason::StoreFailed(_) | StopReason::DiskFull => 2,
            _ => 1,
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Interrupted => write!(f, "interrupted by a signal"),
            StopReason::QuotaExhausted { code, message, resumes } => {
                write!(f, "the API's daily limit is reached ({code} {message}); it resumes {}", resume_text(*resumes))
            }
            StopReason::MaxCalls(n) => write!(f, "--max-calls {n} reached; run again to go on"),
            StopReason::DailyLimit { limit, resumes } => {
                write!(
                    f,
                    "--daily-limit {limit} reached for today (Beijing time); it resumes {}",
                    resume_text(*resumes)
                )
            }
            StopReason::Throttled => write!(f, "the API kept throttling (120/122/429) past --max-throttle-wait"),
            StopReason::Fatal { code, message, hint } => {
                write!(
                    f,
                    "the API refused the account: {code} {message} — {hint}; no further call was made and every \
                     committed page is kept: run again once it is fixed"
                )
            }
            StopReason::DiskFull => write!(
                f,
                "the disk is full: the database could not be written; nothing committed was lost — \
                 free space and run again to resume"
            ),
            StopReason::StoreFailed(e) => write!(
                f,
                "the database could not be written: {e}; every committed page is kept — fix the cause and run again \
                 to resume"
            ),
            StopReason::LowDisk { dir, free, min_free } => write!(
                f,
                "only {} free on the filesystem of {dir}, below --min-free-space {}: stopped before the disk \
                 fills; every committed page is kept — free space (or lower --min-free-space) and run again to resume",
                show_bytes(*free),
                show_bytes(*min_free)
            ),
        }
    }
}

/// When the next Beijing calendar day starts (`start`, in UTC), for messages.
fn resume_text(start: DateTime<Utc>) -> String {
    let beijing = start + chrono::Duration::hours(8);
    format!("from {} 00:00 Beijing time ({} UTC)", beijing.format("%Y-%m-%d"), start.format("%Y-%m-%d %H:%M"))
}

/// `3.0 MiB`, `1.2 GiB`.
fn show_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", n / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", n / (1u64 << 20) as f64)
    }
}

/// The run's shared stop switch.
#[derive(Default)]
pub struct Stop {
    token: CancellationToken,
    reason: Mutex<Option<StopReason>>,
}

impl Stop {
    /// A stop switch that also fires when `parent` is cancelled (signals).
    pub fn with_parent(parent: &CancellationToken) -> Self {
        Self { token: parent.child_token(), reason: Mutex::new(None) }
    }

    /// Record a reason and stop dispatching.
    pub fn stop(&self, reason: StopReason) {
        let mut current = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        let replace = match &*current {
            None => true,
            Some(old) => reason.severity() > old.severity(),
        };
        if replace {
            tracing::warn!(reason = %reason, "Stopping: no new calls will start.");
            *current = Some(reason);
        }
        drop(current);
        self.token.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// The reason, if stopped. A cancelled parent without a recorded reason
    /// means a signal.
    pub fn reason(&self) -> Option<StopReason> {
        let current = self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone();
        current.or_else(|| self.token.is_cancelled().then_some(StopReason::Interrupted))
    }
}
