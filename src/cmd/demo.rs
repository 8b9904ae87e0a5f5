//! `qcc-customers demo`: the whole pipeline against the built-in simulator,
//! over the compiled-in `sample_inputs/companies.csv`. Needs no key and no
//! network; everything stays on 127.0.0.1.

use clap::{Args, FromArgMatches};
use tokio_util::sync::CancellationToken;

use crate::cli::{DemoArgs, FetchArgs, InputArgs};
use crate::pipeline::input::InputSource;
use crate::progress::ProgressMode;
use crate::qcc::Credentials;
use crate::simulator::{self, SimConfig, Simulator};
use crate::{exit, pipeline, store};

/// The sample input, compiled in so `demo` works from any directory.
pub const SAMPLE_CSV: &[u8] = include_bytes!("../../sample_inputs/companies.csv");

/// The `run` flags' defaults, exactly as clap would give them.
pub fn default_fetch_args() -> FetchArgs {
    let cmd = FetchArgs::augment_args(clap::Command::new("defaults"));
    let matches = cmd.get_matches_from(["defaults"]);
    FetchArgs::from_arg_matches(&matches).expect("FetchArgs defaults parse")
}

pub async fn run(args: DemoArgs, quiet: bool) -> anyhow::Result<i32> {
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
        InputSource::Bytes(SAMPLE_CSV),
        "sample_inputs/companies.csv (built in)".into(),
        &InputArgs::default(),
        args.db.clone(),
        endpoint,
        Credentials::new(simulator::DEMO_KEY, simulator::DEMO_SECRET),
        &fetch,
        ProgressMode::detect(quiet, std::time::Duration::from_secs(10)),
    )?;
    let cancel = CancellationToken::new();
    super::run::install_signal_handlers(cancel.clone());
    let summary = pipeline::run(opts, cancel).await?;
    let served = sim.handle.billed();
    sim.stop().await;

    println!();
    print!("{}", summary.render());
    println!("  simulator  answered {served} billable requests");
    println!();
    if summary.exit_code == exit::TEMPFAIL && summary.stop_reason.is_none() {
        println!(
            "The run itself would exit 75: the sample deliberately includes the simulator's trigger keys \
             QCC-SIM-205 (deferred) and QCC-SIM-110 (parked for 2 h), which a later run picks up."
        );
    }
    example_query(&args.db)?;
    Ok(match summary.exit_code {
        exit::OK | exit::TEMPFAIL => exit::OK,
        other => other,
    })
}

const EXAMPLE_SQL: &str = "SELECT search_key, last_year, customer_rows, top_customer_latest_year, top_customer_percent
FROM company_summary
WHERE state = 'done'
ORDER BY customer_rows DESC
LIMIT 5;";

fn example_query(db: &std::path::Path) -> anyhow::Result<()> {
    let conn = store::open_for_reading(db)?;
    println!("Example query — the five companies with the most customer rows, and each one's largest customer in its latest year:");
    println!("  sqlite3 -header -column {} \"{}\"", db.display(), EXAMPLE_SQL.replace('\n', " "));
    println!();
    let mut stmt = conn.prepare(EXAMPLE_SQL)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<f64>>(4)?,
        ))
    })?;
    let header = [pad("company", 32), pad("latest", 7), pad("rows", 6), pad("largest customer", 32)];
    println!("  {} share %", header.join(" "));
    for row in rows {
        let (company, year, n, top, percent) = row?;
        println!(
            "  {} {} {} {} {}",
            pad(&company, 32),
            pad(&year.unwrap_or_default(), 7),
            pad(&n.to_string(), 6),
            pad(&top.unwrap_or_else(|| "(no name)".into()), 32),
            percent.map(|p| format!("{p:.2}")).unwrap_or_else(|| "-".into())
        );
    }
    let total: i64 = conn.query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0))?;
    println!();
    println!(
        "{} holds {total} customer rows. Open it with sqlite3, Python, Excel or any BI tool; the README has more queries.",
        db.display()
    );
    Ok(())
}

/// Pad to a display width, counting CJK characters as two columns.
fn pad(s: &str, width: usize) -> String {
    let w: usize = s.chars().map(|c| if c >= '\u{1100}' { 2 } else { 1 }).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}
