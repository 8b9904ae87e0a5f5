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
//!  list ─▶ intake::feed ─Job─▶ fetch::dispatch ─▶ fetch::worker ─▶ fetch::pages ─▶ fetch::call ─▶ qcc::Client
//!         input thread        one task, JoinSet   one task per company, rate-limited (control::flow)
//!                                                   │
//!                                                   └─ fetch::handoff ─Commit─▶ writer (one thread) ─▶ store ─▶ SQLite
//! ```
//!
//! * [`cli`] — clap types only; [`cmd`] — one module per subcommand.
//! * [`qcc`] — the upstream API: signing, wire types, status-code table, client.
//! * [`pipeline`] — the run, wired in its `mod.rs`, in rooms whose arrows go one way:
//!   * `intake` — the list (`input`, with `sniff` and `sheet`) and the `feed`;
//!   * `fetch` — `dispatch`, `worker`, `pages` with its `paging` state and
//!     `lanes`, the `call` (a `Caller` the shared `context` owns) and the
//!     `handoff` to the writer;
//!   * `plan` — what to fetch (`plan`), the all-years `listing`, the revisit `schedule`;
//!   * `control` — `flow`, `budget`, `parking`, `disk`, `shutdown`;
//!   * `writer` — the single writer thread: batching, the commit window and the replies
//!     (what is stored, and how, is the `store::session` it drives);
//!   * `report` — `stats`, `progress`, `summary`, `dry_run`.
//! * [`store`] — open + migrate + every SQL statement; nothing else touches SQL.
//! * [`simulator`] — the built-in QCC stand-in (config, data, timeline, axum server).
//! * [`clock`] — the run's clock (the only reader of the time of day), ISO-8601 UTC timestamps, the Beijing day.
//! * [`fuzz`] — what the fuzz targets and the corpus replay drive: input, answer parser, schedule.
//! * [`exit`] — every exit status, from how a command ended; `main` is the only place the process exits.
//!
//! The benchmark harness is the `bench` binary (`src/bin/bench/`). The
//! contract the code relies on is `docs/design.md`.
//!
//! ## Who owns what
//!
//! | behaviour | the one file |
//! |---|---|
//! | rate limit (`--qps`, `--burst`) and concurrency | `src/pipeline/control/flow.rs` |
//! | throttle slow-down (120/122/429) | `src/pipeline/control/flow.rs` (the pause and cuts), `src/pipeline/fetch/call.rs` (waiting it out) |
//! | one call and its retries (205, transient) | `src/pipeline/fetch/call.rs` |
//! | what each status code means | `src/qcc/codes.rs` |
//! | checkpoints: what is stored, where a resume goes on | `src/store/write/mod.rs` (writing them), `src/pipeline/plan/mod.rs` (reading them) |
//! | which pages of a unit to ask, when it is complete | `src/pipeline/fetch/paging.rs` (asked in `src/pipeline/fetch/pages.rs`) |
//! | replacing a year's or a listing's rows, and the versions | `src/store/history.rs` (`src/store/write/events.rs` decides when) |
//! | what the writer holds across batches (connection, codebook, learned dictionary) | `src/store/session.rs` |
//! | the all-years listing plan (learning, deciding, contradictions) | `src/pipeline/plan/listing.rs`, checked page by page in `src/pipeline/fetch/paging.rs` |
//! | a company's ending (done, rejected, deferred, parked) | `src/pipeline/fetch/context.rs` (`Ctx::end_company`, `Ctx::settle`) |
//! | 110 parking | `src/pipeline/control/parking.rs` (its doc lists where else it shows) |
//! | what an input file is (workbook, separator, encoding, refused) | `src/pipeline/intake/input/sniff.rs`, workbooks read in `src/pipeline/intake/input/sheet.rs` |
//! | when a company is asked again (revisit schedule, forecast) | `src/pipeline/plan/schedule/mod.rs` (computed in `src/pipeline/writer/mod.rs` after each check; `plan/mod.rs` skips until then) |
//! | what a refresh fetches (latest year, deep check, unchanged) | `src/pipeline/plan/mod.rs`, with `plan/listing.rs` for the unchanged and cheaper-refresh rules |
//! | daily limit and `--max-calls` | `src/pipeline/control/budget.rs` |
//! | commit window and group commit | `src/pipeline/writer/mod.rs` (`CommitWindow`, `GROUP_COMMIT`) |
//! | pages of a company side by side (no slow tail) | `src/pipeline/fetch/lanes.rs` (`Occupancy`, `Lanes`) |
//! | how a customer row is stored (the readers' model) | `src/store/history.rs`, read back by the `customers_history` view (`migrations/0012_disclosures.sql`, `0013_current_versions.sql`) |
//! | when the run's work is done | `src/pipeline/fetch/dispatch.rs` |
//! | stopping (signals, quotas, account errors) | `src/pipeline/control/shutdown.rs` |
//! | the exit status | `src/exit.rs` |

pub mod cli;
pub mod clock;
pub mod cmd;
pub mod exit;
pub mod fuzz;
pub mod pipeline;
pub mod qcc;
pub mod simulator;
pub mod store;
