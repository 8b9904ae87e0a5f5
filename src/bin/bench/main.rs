//! The benchmark harness (issue: "prove it is cheap and fast").
//!
//! `bench/run.sh` (or `cargo build --release --bins && target/release/bench`)
//! runs every scenario against the simulator on loopback and prints a
//! markdown table; `--smoke` runs each one tiny, so CI can check the harness
//! still works without timing anything. Linux only: CPU time and peak RSS are
//! read from /proc.

//!
//! * `main.rs` — the harness: which scenarios run, the result table.
//! * `measure.rs` — what is read from /proc, and the median/range of repeats.
//! * one file per group of scenarios: `rate.rs` (rate accuracy, latency
//!   hiding), `overhead.rs`, `writer.rs`, `memory.rs` (dry run and a real
//!   run), `cost.rs` (calls per company), `lean.rs` (API rates, the tail of
//!   a short list, bytes per row, the analyst's guide's queries on a large file),
//!   `revisit.rs` (two simulated years of nightly runs: when to ask again).

mod cost;
mod lean;
mod measure;
mod memory;
mod overhead;
mod rate;
mod readers;
mod receipts;
mod revisit;
mod writer;

use std::path::{Path, PathBuf};

use qcc_customers::cli::FetchArgs;
use qcc_customers::cmd::demo::default_fetch_args;
use qcc_customers::pipeline::intake::input::InputSource;
use qcc_customers::pipeline::report::progress::ProgressMode;
use qcc_customers::pipeline::{self, Summary};
use qcc_customers::qcc::Credentials;
use qcc_customers::simulator::{Simulator, DEMO_KEY, DEMO_SECRET};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of the system allocator: the pipeline allocates and frees
/// many small buffers per call across threads, where glibc's malloc spent a
/// measurable share of the client's CPU (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Row {
    scenario: String,
    target: String,
    measured: String,
    pass: Option<bool>,
}

struct Bench {
    smoke: bool,
    dir: tempfile::TempDir,
    rows: Vec<Row>,
}

fn main() -> anyhow::Result<()> {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // BENCH_KEEP_DIR=DIR: the scenarios' files are made in DIR and kept there.
    let dir = match std::env::var_os("BENCH_KEEP_DIR") {
        Some(keep) => tempfile::Builder::new().prefix("bench-").disable_cleanup(true).tempdir_in(keep)?,
        None => tempfile::tempdir()?,
    };
    let mut b = Bench { smoke, dir, rows: Vec::new() };
    let want = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    runtime.block_on(async {
        if want("rate") {
            b.rate_accuracy(20.0).await?;
            b.rate_accuracy(200.0).await?;
        }
        if want("latency") {
            b.latency_hiding().await?;
        }
        if want("overhead") {
            b.raw_overhead().await?;
        }
        // These two block (a producer thread, a child process): keep them off the async workers.
        if want("writer") {
            tokio::task::block_in_place(|| b.writer())?;
        }
        if want("dry") {
            tokio::task::block_in_place(|| b.dry_run_memory())?;
        }
        if want("memory") {
            b.run_memory().await?;
        }
        if want("cost") {
            b.cost().await?;
        }
        if want("api-rate") {
            b.api_rate().await?;
        }
        if want("tail") {
            b.tail().await?;
        }
        if want("bytes") {
            b.bytes_per_row().await?;
        }
        if want("receipts") {
            b.receipt_codecs().await?;
        }
        if want("queries") {
            b.readme_queries().await?;
        }
        if want("readers") {
            b.readers_model().await?;
        }
        if want("revisit") {
            b.revisit().await?;
        }
        anyhow::Ok(())
    })?;
    println!("\n| scenario | target | measured | met |\n|---|---|---|---|");
    for r in &b.rows {
        let met = match r.pass {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        println!("| {} | {} | {} | {} |", r.scenario, r.target, r.measured, met);
    }
    if smoke {
        println!("\n(smoke mode: tiny sizes, figures are not meaningful)");
    }
    Ok(())
}

/// Runs of the overhead and writer scenarios, whose figures move from run to
/// run on a small VM (the disk's fsync time above all).
const REPEATS: usize = 3;

impl Bench {
    fn repeats(&self) -> usize {
        if self.smoke {
            1
        } else {
            REPEATS
        }
    }

    /// A figure with no target: a trade-off written down.
    fn record(&mut self, scenario: impl Into<String>, target: impl Into<String>, measured: impl Into<String>) {
        let row = Row { scenario: scenario.into(), target: target.into(), measured: measured.into(), pass: None };
        eprintln!("{} — {}", row.scenario, row.measured);
        self.rows.push(row);
    }

    fn push(
        &mut self,
        scenario: impl Into<String>,
        target: impl Into<String>,
        measured: impl Into<String>,
        pass: bool,
    ) {
        let row = Row { scenario: scenario.into(), target: target.into(), measured: measured.into(), pass: Some(pass) };
        eprintln!("{} — {} — {}", row.scenario, row.measured, if pass { "met" } else { "MISSED" });
        self.rows.push(row);
    }

    fn write_input(&self, name: &str, n: usize) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut text = String::with_capacity(n * 40);
        text.push_str("company\n");
        for i in 0..n {
            text.push_str(&format!("基准测试{name}企业{i:07}有限公司\n"));
        }
        std::fs::write(&path, text).expect("write input");
        path
    }

    fn fetch(&self, qps: f64) -> FetchArgs {
        let mut f = default_fetch_args();
        f.qps = qps;
        f
    }

    async fn run_in_process(
        &self,
        sim: &Simulator,
        input: &Path,
        db: &Path,
        fetch: &FetchArgs,
    ) -> anyhow::Result<Summary> {
        self.run_against(&sim.endpoint(), input, db, fetch).await
    }

    /// A run of the pipeline in this process against `endpoint`.
    async fn run_against(&self, endpoint: &str, input: &Path, db: &Path, fetch: &FetchArgs) -> anyhow::Result<Summary> {
        let opts = qcc_customers::cmd::run::options(
            InputSource::Path(input.to_path_buf()),
            input.display().to_string(),
            &Default::default(),
            db.to_path_buf(),
            reqwest::Url::parse(endpoint)?,
            Credentials::new(DEMO_KEY, DEMO_SECRET),
            fetch,
            ProgressMode::Quiet,
        )?;
        Ok(pipeline::run(opts, CancellationToken::new()).await?)
    }
}
