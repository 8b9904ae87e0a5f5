//! # qcc-customers
//!
//! Fetches every company's customers from Qichacha's paid `Customer/GetList`
//! API into one SQLite file, resumably, without paying twice for a page and
//! without misbehaving towards the API. The contract is SPEC.md; this crate
//! is laid out so the pipeline's shape is visible before opening a file.
//!
//! ## Layout
//!
//! ```text
//!   CSV ──▶ pipeline::input ──▶ store (register + plan) ──▶ pipeline::worker ×N ──▶ store (commit)
//!           reader thread        writer thread                async, rate-limited      writer thread
//! ```
//!
//! * [`cli`] — clap types only.
//! * [`cmd`] — one module per subcommand (`run`, `demo`, `mock_server`).
//! * [`qcc`] — the upstream API: signing, wire types, status-code table, client.
//! * [`pipeline`] — input, plan, what the all-years listing covers
//!   (`pipeline::listing`), flow control (rate/concurrency/throttling),
//!   workers, the single writer, shutdown.
//! * [`store`] — open + migrate + every SQL statement; nothing else touches SQL.
//! * [`simulator`] — the built-in QCC stand-in (axum router, data generator, faults).
//! * [`progress`] — terminal bar vs. plain log lines.
//! * [`clock`] — ISO-8601 UTC timestamps and the Beijing calendar day.
//! * [`exit`] — the process exit codes.
//!
//! The benchmark harness is the `bench` binary (`src/bin/bench.rs`).

pub mod cli;
pub mod clock;
pub mod cmd;
pub mod exit;
pub mod pipeline;
pub mod progress;
pub mod qcc;
pub mod simulator;
pub mod store;
