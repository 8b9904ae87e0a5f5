//! # qcc-customers
//!
//! Fetches every company's customers from Qichacha's paid `Customer/GetList`
//! API into one SQLite file, resumably, without paying twice for a page and
//! without misbehaving towards the API. The contract it relies on is docs/design.md; this
//! crate is laid out so the pipeline's shape is visible before opening a file.
//!
//! ## Layout
//!
//! ```text
//!  list ─▶ pipeline::feed ─▶ pipeline::dispatch ─▶ pipeline::worker + pages + call ─▶ pipeline::writer ─▶ SQLite
//!         input thread      one task, JoinSet     one task per company, rate-limited    one thread
//! ```
//!
//! * [`cli`] — clap types only.
//! * [`cmd`] — one module per subcommand: `run`, `demo`, `mock_server`,
//!   `status`, `export` (with `xlsx`, the workbook writer), `rebuild`.
//! * [`qcc`] — the upstream API: signing, wire types, status-code table, client.
//! * [`pipeline`] — the stages (`feed`, `dispatch`, `worker`, `pages`, `call`,
//!   `writer`) and what they decide with (`input` with its `sniff` and `sheet`,
//!   `plan`, `schedule`, `listing`, `flow`, `budget`, `parking`, `shutdown`),
//!   the counters (`stats`), the end (`summary`), and `dry_run`.
//! * [`store`] — open + migrate + every SQL statement; nothing else touches SQL.
//! * [`simulator`] — the built-in QCC stand-in (config, data generator, axum server).
//! * [`progress`] — terminal bar vs. plain log lines.
//! * [`clock`] — the run's clock, ISO-8601 UTC timestamps, the Beijing day.
//! * [`exit`] — the process exit codes.
//!
//! The benchmark harness is the `bench` binary (`src/bin/bench/`). The
//! contract the code relies on is `docs/design.md`.
//!
//! ## Who owns what
//!
//! | behaviour | the one file |
//! |---|---|
//! | rate limit (`--qps`, `--burst`) and concurrency | `src/pipeline/flow.rs` |
//! | throttle slow-down (120/122/429) | `src/pipeline/flow.rs` (the pause and cuts), `src/pipeline/call.rs` (waiting it out) |
//! | one call and its retries (205, transient) | `src/pipeline/call.rs` |
//! | what each status code means | `src/qcc/codes.rs` |
//! | checkpoints: what is stored, where a resume goes on | `src/store/write.rs` (writing them), `src/pipeline/plan.rs` (reading them) |
//! | replacing a year's or a listing's rows | `src/store/customers.rs` (`src/store/write.rs` decides when) |
//! | the all-years listing plan (learning, deciding, contradictions) | `src/pipeline/listing.rs`, paged in `src/pipeline/pages.rs` |
//! | 110 parking | `src/pipeline/parking.rs` |
//! | what an input file is (workbook, separator, encoding, refused) | `src/pipeline/input/sniff.rs`, workbooks read in `src/pipeline/input/sheet.rs` |
//! | when a company is asked again (revisit schedule, forecast) | `src/pipeline/schedule.rs` (computed in `src/pipeline/writer.rs` after each check; `plan.rs` skips until then) |
//! | what a refresh fetches (latest year, deep check, unchanged) | `src/pipeline/plan.rs`, with `listing.rs` for the unchanged and cheaper-refresh rules |
//! | daily limit and `--max-calls` | `src/pipeline/budget.rs` |
//! | commit window and group commit | `src/pipeline/writer.rs` (`CommitWindow`, `GROUP_COMMIT`) |
//! | pages of a company side by side (no slow tail) | `src/pipeline/pages.rs` (`Occupancy`, `Lanes`) |
//! | how a customer row is stored (compact encodings) | `src/store/customers.rs`, decoded by the `customers` view (`migrations/0006_compact_rows.sql`) |
//! | when the run's work is done | `src/pipeline/dispatch.rs` |
//! | stopping (signals, quotas, account errors) | `src/pipeline/shutdown.rs` |

pub mod cli;
pub mod clock;
pub mod cmd;
pub mod exit;
pub mod pipeline;
pub mod progress;
pub mod qcc;
pub mod simulator;
pub mod store;
