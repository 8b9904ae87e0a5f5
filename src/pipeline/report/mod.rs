//! Report: what a user is told. [`stats`] are the run's counters (written by
//! every stage, read here); [`progress`] shows them while the run goes;
//! [`summary`] closes the run and prints what happened; [`dry_run`] says what
//! a run would do without a call.

pub mod dry_run;
pub mod metrics;
pub mod progress;
pub mod stats;
pub mod summary;
