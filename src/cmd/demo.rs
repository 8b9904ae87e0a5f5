//! `qcc-customers demo`: the whole pipeline against the built-in simulator,
//! over the compiled-in `sample_inputs/companies.csv`. Needs no key and no
//! network; everything stays on 127.0.0.1.

use clap::{Args, FromArgMatches};
use tokio_util::sync::CancellationToken;

use crate::cli::{DemoArgs, FetchArgs, InputArgs};
use crate::exit::Ended;
use crate::pipeline;
use crate::pipeline::intake::input::InputSource;
use crate::pipeline::report::progress::ProgressMode;
use crate::qcc::Credentials;
use crate::simulator::{self, SimConfig, Simulator};
use crate::store::{self, export, read};

/// The sample input, compiled in so `demo` works from any directory.
pub const SAMPLE_CSV: &[u8] = include_bytes!("../../sample_inputs/companies.csv");

/// The `run` flags' defaults, exactly as clap would give them.
pub fn default_fetch_args() -> FetchArgs {
    let cmd = FetchArgs::augment_args(clap::Command::new("defaults"));
    let matches = cmd.get_matches_from(["defaults"]);
    FetchArgs::from_arg_matches(&matches).expect("FetchArgs defaults parse")
}

pub async fn run(args: DemoArgs, quiet: bool, abort: &CancellationToken) -> anyhow::Result<Ended> {
    let sim = Simulator::start(SimConfig::default()).await?;
    println!("Simulator listening on {} (loopback only).", sim.endpoint());
    let resumed = args.db.exists();
    if resumed {
        println!("{} exists: this run resumes it (delete the file to start over).", args.db.display());
    }

    let mut fetch = default_fetch_args();
    fetch.qps = args.qps;
    // The trigger keys retry and back off; keep the demo short.
    fetch.retry_base = std::time::Duration::from_millis(200);
    fetch.throttle_base = std::time::Duration::from_millis(500);
    let endpoint = reqwest::Url::parse(&sim.endpoint())?;
    let opts = super::run::options(
        InputSource::Bytes(bytes::Bytes::from_static(SAMPLE_CSV)),
        "sample_inputs/companies.csv (built in)".into(),
        &InputArgs::default(),
        args.db.clone(),
        endpoint,
        Credentials::new(simulator::DEMO_KEY, simulator::DEMO_SECRET),
        &fetch,
        ProgressMode::detect(quiet, std::time::Duration::from_secs(10)),
    )?;
    let cancel = CancellationToken::new();
    super::run::install_signal_handlers(cancel.clone(), abort.clone());
    let started = crate::clock::Clock::system().now();
    let summary = pipeline::run(opts, cancel).await?;
    if let Some(path) = &args.metrics_file {
        super::run::write_metrics(path, &args.db, started, summary.ended.code(), Some(&summary), &fetch);
    }
    let served = sim.handle.billed();
    sim.stop().await;

    println!();
    print!("{}", summary.render());
    println!("  simulator  answered {served} billable requests");
    println!();
    // The sample is meant to leave two companies for later: that is the
    // demo done, unless the run stopped for a reason of its own.
    let left_on_purpose = summary.ended == Ended::Resumable && summary.stop_reason.is_none();
    if left_on_purpose {
        println!(
            "The run itself would exit 75: the sample deliberately includes the simulator's trigger keys \
             QCC-SIM-205 (deferred) and QCC-SIM-110 (parked for 2 h), which a later run picks up."
        );
    }
    example_query(&args.db)?;
    Ok(if left_on_purpose { Ended::Done } else { summary.ended })
}

fn example_query(db: &std::path::Path) -> anyhow::Result<()> {
    let conn = store::open_for_reading(db)?;
    println!("Example query — the five companies with the most customer rows, and each one's largest customer in its latest year:");
    println!("  sqlite3 -header -column {} \"{}\"", db.display(), export::EXAMPLE_SQL.replace('\n', " "));
    println!();
    let header = [pad("company", 32), pad("latest", 7), pad("rows", 6), pad("largest customer", 32)];
    println!("  {} share %", header.join(" "));
    for row in export::example_companies(&conn)? {
        println!(
            "  {} {} {} {} {}",
            pad(&row.company, 32),
            pad(&row.latest_year.unwrap_or_default(), 7),
            pad(&row.rows.to_string(), 6),
            pad(&row.top_customer.unwrap_or_else(|| "(no name)".into()), 32),
            row.top_percent.map(|p| format!("{p:.2}")).unwrap_or_else(|| "-".into())
        );
    }
    let total = read::customer_rows_total(&conn)?;
    println!();
    println!(
        "{} holds {total} customer rows. Open it with sqlite3, Python, Excel or any BI tool; docs/analyst-guide.md has more queries.",
        db.display()
    );
    println!(
        "Every change is kept: customers_history has every version, customer_changes one row per change \
         (export --changes-since RUN_ID), customer_reach who sells to each customer across your companies."
    );
    Ok(())
}

/// Pad to a display width, counting CJK characters as two columns.
fn pad(s: &str, width: usize) -> String {
    let w: usize = s.chars().map(|c| if c >= '\u{1100}' { 2 } else { 1 }).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}
