//! How the process ends: every exit status is decided here, from how the
//! command [`Ended`] (or the error it failed with), so cron wrappers can act
//! on it. The exit-code tables (README, docs/user-guide.md "Exit codes") say when each is used; `main`
//! is the only place the process exits.

use crate::pipeline::control::shutdown::StopReason;
use crate::pipeline::error::RunError;

/// Every company reached a final state (or the command did its work).
pub const OK: i32 = 0;
/// Usage error.
pub const USAGE: i32 = 64;
/// Input file unreadable, refused, or with no usable column.
pub const DATAERR: i32 = 65;
/// An internal error (a bug): the message says what happened.
pub const SOFTWARE: i32 = 70;
/// The database cannot be created/opened/written, or another run holds it.
pub const CANTCREAT: i32 = 73;
/// Stopped early but resumable.
pub const TEMPFAIL: i32 = 75;
/// Credentials missing, or the API refused the account.
pub const CONFIG: i32 = 78;

/// How a command ended, as far as the exit status goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ended {
    /// Done: every company final, or the command did its work.
    #[default]
    Done,
    /// The flags make no sense.
    Usage,
    /// The input cannot be used (and nothing was called).
    BadInput,
    /// A bug.
    Internal,
    /// The database cannot be created, opened or written, or is locked.
    Store,
    /// Stopped early, or companies are left: a later run resumes.
    Resumable,
    /// Credentials missing, the API refused the account, or the HTTP client
    /// cannot be built.
    Config,
}

impl Ended {
    /// The exit status.
    pub fn code(self) -> i32 {
        match self {
            Ended::Done => OK,
            Ended::Usage => USAGE,
            Ended::BadInput => DATAERR,
            Ended::Internal => SOFTWARE,
            Ended::Store => CANTCREAT,
            Ended::Resumable => TEMPFAIL,
            Ended::Config => CONFIG,
        }
    }

    /// How a run ended: why it stopped (if it did), and whether companies
    /// are left for a later run.
    pub fn of_run(stop: Option<&StopReason>, remaining: u64) -> Ended {
        match stop {
            Some(StopReason::Fatal { .. }) => Ended::Config,
            Some(StopReason::StoreFailed(_) | StopReason::DiskFull) => Ended::Store,
            Some(_) => Ended::Resumable,
            None if remaining > 0 => Ended::Resumable,
            None => Ended::Done,
        }
    }

    /// How a command that failed with `err` ended, found along its chain.
    pub fn of_error(err: &anyhow::Error) -> Ended {
        for cause in err.chain() {
            if let Some(e) = cause.downcast_ref::<Failure>() {
                return e.ended;
            }
            if let Some(e) = cause.downcast_ref::<RunError>() {
                return match e {
                    RunError::Input(_) => Ended::BadInput,
                    RunError::Store(_) => Ended::Store,
                    RunError::Client(_) => Ended::Config,
                    RunError::Internal(_) => Ended::Internal,
                };
            }
            if cause.downcast_ref::<crate::store::StoreError>().is_some() {
                return Ended::Store;
            }
            if cause.downcast_ref::<crate::pipeline::intake::input::InputError>().is_some() {
                return Ended::BadInput;
            }
        }
        Ended::Internal
    }
}

/// The exit status of a command's result: the one function from an outcome
/// to a code.
pub fn status(result: &anyhow::Result<Ended>) -> i32 {
    match result {
        Ok(ended) => ended.code(),
        Err(e) => Ended::of_error(e).code(),
    }
}

/// An error with how it ends the command (a usage error, missing credentials …).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub ended: Ended,
    pub message: String,
}

impl Failure {
    pub fn new(ended: Ended, message: impl Into<String>) -> Self {
        Self { ended, message: message.into() }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Ended::Usage, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(Ended::Config, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_to_end_has_its_own_code() {
        let all = [
            Ended::Done,
            Ended::Usage,
            Ended::BadInput,
            Ended::Internal,
            Ended::Store,
            Ended::Resumable,
            Ended::Config,
        ];
        let codes: std::collections::BTreeSet<i32> = all.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), all.len());
        assert_eq!(codes.into_iter().collect::<Vec<_>>(), vec![0, 64, 65, 70, 73, 75, 78]);
    }

    #[test]
    fn a_run_ends_by_its_stop_reason_then_by_what_is_left() {
        let fatal = StopReason::Fatal { code: "101".into(), message: String::new(), hint: String::new() };
        assert_eq!(Ended::of_run(Some(&fatal), 0), Ended::Config);
        assert_eq!(Ended::of_run(Some(&StopReason::DiskFull), 0), Ended::Store);
        assert_eq!(Ended::of_run(Some(&StopReason::Interrupted), 0), Ended::Resumable);
        assert_eq!(Ended::of_run(None, 3), Ended::Resumable);
        assert_eq!(Ended::of_run(None, 0), Ended::Done);
    }

    #[test]
    fn an_error_ends_by_the_first_cause_that_says_how() {
        let e = anyhow::Error::new(Failure::usage("--qps -1")).context("the run could not start");
        assert_eq!(status(&Err(e)), USAGE);
        let e = anyhow::Error::new(RunError::Internal("the writer panicked".into()));
        assert_eq!(status(&Err(e)), SOFTWARE, "an internal error is 70, as the README says");
        assert_eq!(status(&Err(anyhow::anyhow!("unexpected"))), SOFTWARE);
        assert_eq!(status(&Ok(Ended::Resumable)), TEMPFAIL);
    }
}
