//! `qcc-customers status`: what a database holds, for people (a table) and
//! scripts (`--json`). Read-only: safe while a run is writing.

use crate::cli::StatusArgs;
use crate::clock::{self, Clock};
use crate::exit::Ended;
use crate::pipeline::plan::schedule::{self, Forecast, Settings};
use crate::pipeline::report::dry_run::{render_forecast, FORECAST_WEEKS};
use crate::store::{self, read};

#[derive(serde::Serialize)]
struct Status {
    db: String,
    file_bytes: u64,
    schema_version: i64,
    runs: Vec<read::RunRow>,
    companies_by_state: read::Counts,
    waiting: Vec<read::Waiting>,
    calls_total: u64,
    calls_today_beijing: u64,
    calls_by_status: read::Counts,
    customer_rows: u64,
    /// The receipts kept in `raw_pages`, and how they are compressed.
    receipts: store::dictionaries::ReceiptsHeld,
    /// What answers showed about the query without `year`.
    listing: read::ListingKnowledge,
    /// The schedule the last run kept, in words.
    schedule: String,
    /// Checks due now and per week for the next 12 weeks under it.
    forecast: Forecast,
}

pub fn run(args: StatusArgs) -> anyhow::Result<Ended> {
    let conn = store::open_for_reading(&args.db)?;
    let file_bytes = store::file_bytes(&args.db);
    let now = Clock::system().now();
    let today = clock::iso(clock::beijing_day_start(now));
    // The schedule the last run kept; a file from before it, the default's.
    let settings: Settings =
        read::last_schedule_settings(&conn)?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default();
    let status = Status {
        db: args.db.display().to_string(),
        file_bytes,
        schema_version: read::schema_version(&conn)?,
        runs: read::recent_runs(&conn, args.runs)?,
        companies_by_state: read::all_companies_by_state(&conn)?,
        waiting: read::waiting(&conn, args.waiting)?,
        calls_total: read::calls_total(&conn)?,
        calls_today_beijing: read::calls_since(&conn, &today)?,
        calls_by_status: read::all_calls_by_status(&conn)?,
        customer_rows: read::customer_rows_total(&conn)?,
        receipts: store::dictionaries::held(&conn)?,
        listing: read::listing_knowledge(&conn)?,
        schedule: settings.revisit(&conn, now)?.describe(),
        // Page counts in the API's page size (the default --page-size).
        forecast: schedule::forecast(&conn, &settings, 50, now, FORECAST_WEEKS)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(Ended::Done)
}

fn render(s: &Status) -> String {
    let mut out = String::new();
    let mb = s.file_bytes as f64 / (1024.0 * 1024.0);
    out.push_str(&format!("{} — {:.1} MiB, schema version {}\n\n", s.db, mb, s.schema_version));
    out.push_str("Recent runs\n");
    out.push_str("  run  started (UTC)             status      exit   calls     rows  changes  why it stopped\n");
    for r in &s.runs {
        out.push_str(&format!(
            "  {:<4} {:<25} {:<11} {:<5} {:>6} {:>8} {:>8}  {}\n",
            r.run_id,
            r.started_at,
            r.status,
            r.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            r.calls,
            r.rows_written,
            r.changes.total(),
            r.stop_reason.as_deref().unwrap_or("")
        ));
    }
    if s.runs.iter().any(|r| r.changes.total() > 0) {
        out.push_str(
            "  changes: customers new, added, changed or removed in a company's report periods; \
             `export --changes-since RUN` lists those after RUN\n",
        );
    }
    out.push_str("\nCompanies by state\n");
    for (state, n) in &s.companies_by_state {
        out.push_str(&format!("  {state:<10} {n:>9}\n"));
    }
    if !s.waiting.is_empty() {
        out.push_str("\nWaiting for a later run\n");
        for w in &s.waiting {
            out.push_str(&format!(
                "  {:<9} {:<30} {:<4} {}{}\n",
                w.state,
                w.search_key,
                w.status_code.as_deref().unwrap_or(""),
                w.message.as_deref().unwrap_or(""),
                w.retry_after.as_deref().map(|t| format!(" (retry after {t})")).unwrap_or_default()
            ));
        }
    }
    out.push_str(&format!("\nCalls: {} in total, {} today (Beijing time)\n", s.calls_total, s.calls_today_beijing));
    for (status, n) in &s.calls_by_status {
        out.push_str(&format!("  {status:<10} {n:>9}\n"));
    }
    out.push_str(&format!("\nCustomer rows stored: {}\n", s.customer_rows));
    let r = &s.receipts;
    out.push_str(&format!("Receipts: {} pages in raw_pages", r.receipts));
    match &r.newest_dictionary {
        Some((id, at, pages)) => out.push_str(&format!(
            "; new ones compressed against dictionary {id} (trained {at} on {pages} pages; {} in the file)\n",
            r.dictionaries
        )),
        None => out.push_str("; no dictionary yet (one is trained once the file holds 256)\n"),
    }
    out.push_str("\nAll-years listing (the query without year)\n");
    let evidence = |e: &crate::store::records::Evidence| {
        format!(
            "    evidence: {} — {} (order {}, {})\n",
            e.search_key,
            e.detail,
            e.order_number.as_deref().unwrap_or("-"),
            e.observed_at
        )
    };
    match (&s.listing.some_years, &s.listing.every_year) {
        (Some(e), _) => {
            out.push_str("  holds only some years: companies are paged per year for good\n");
            out.push_str(&evidence(e));
        }
        (None, Some(e)) => {
            out.push_str("  covers every year (learned): companies are paged by it, per year only past 5,000 rows\n");
            out.push_str(&evidence(e));
        }
        (None, None) => out.push_str("  not learned yet: companies are paged per year until an answer shows it\n"),
    }
    if s.listing.contradictions > 0 {
        out.push_str(&format!(
            "  {} answers contradicted it; those companies were paged per year (listing_evidence has each)\n",
            s.listing.contradictions
        ));
    }
    out.push_str(&format!("\nWhen companies are asked again (as the last run kept it)\n  {}\n", s.schedule));
    out.push_str(&render_forecast(&s.forecast).replace("forecast   ", "  ").replace("           ", "  "));
    out
}
