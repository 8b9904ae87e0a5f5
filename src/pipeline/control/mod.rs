//! Control: what limits and stops a run. [`flow`] hands out a permit per
//! call (rate, concurrency, throttling); [`budget`] counts calls against
//! `--max-calls` and `--daily-limit`; [`parking`] keeps companies answered
//! 110 until their wait is over; [`disk`] watches free space; [`shutdown`]
//! holds why the run stops, decided once and seen by every stage.
//!
//! Nothing here knows about pages, companies' cycles or SQLite.

pub mod budget;
pub mod disk;
pub mod flow;
pub mod parking;
pub mod shutdown;
