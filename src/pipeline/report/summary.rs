//! The end of a run: the summary (companies by state, calls by status, rows,
//! rate, what the listing plan did, what remains), how it is printed, and the
//! run's closing row in the database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::clock;
use crate::exit::Ended;
use crate::pipeline::control::shutdown::Stop;
use crate::pipeline::error::RunError;
use crate::pipeline::plan::listing::Coverage;
use crate::pipeline::report::stats::Stats;
use crate::store::{self, read, write, StoreError};

/// The end-of-run summary, also stored as JSON in `runs.summary`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub run_id: i64,
    /// How the run ended; `exit_code` is its exit status.
    #[serde(skip)]
    pub ended: Ended,
    pub exit_code: i32,
    pub status: String,
    pub stop_reason: Option<String>,
    pub elapsed_secs: f64,
    pub input_rows: u64,
    pub blank_rows: u64,
    pub bad_rows: u64,
    pub duplicates: u64,
    pub skipped_fresh: u64,
    pub companies_by_state: Vec<(String, u64)>,
    pub calls: u64,
    pub calls_by_status: Vec<(String, u64)>,
    pub rows_written: u64,
    /// What the run changed in the disclosures, by kind (`customer_changes`).
    pub changes: crate::store::history::Changes,
    pub customers_in_db: u64,
    pub calls_per_sec: f64,
    pub next_parked_retry: Option<String>,
    pub listing: ListingSummary,
    /// Which schedule decided who was due, in words.
    pub schedule: String,
    /// The same, as `status` and the dry run read it back.
    pub schedule_settings: crate::pipeline::plan::schedule::Settings,
}

/// What the run knew and did about the all-years listing.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ListingSummary {
    /// `every_year`, `some_years` or `unknown` at the end of the run.
    pub coverage: Coverage,
    /// The evidence it rests on.
    pub evidence: Option<crate::store::records::Evidence>,
    /// Discovery answers that were the whole company.
    pub complete_after_discovery: u64,
    /// Refreshes that found nothing changed.
    pub unchanged: u64,
    /// Companies whose listing was paged.
    pub listing_paged: u64,
    /// Companies paged per year.
    pub per_year: u64,
    pub contradictions: u64,
    /// For the companies completed from their listing in this run: calls made,
    /// and what per-year paging would have cost for the same rows.
    pub listing_calls: u64,
    pub per_year_formula_calls: u64,
}

impl Summary {
    /// Companies of this run's input still needing calls.
    pub fn remaining(&self) -> u64 {
        self.companies_by_state
            .iter()
            .filter(|(s, _)| matches!(s.as_str(), "pending" | "deferred" | "parked"))
            .map(|(_, n)| n)
            .sum()
    }

    /// The human-readable summary printed at the end of every run.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let states: Vec<String> = self.companies_by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let calls: Vec<String> = self.calls_by_status.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        out.push_str(&format!("run {} {} (exit {})", self.run_id, self.status, self.exit_code));
        if let Some(r) = &self.stop_reason {
            out.push_str(&format!(": {r}"));
        }
        out.push('\n');
        out.push_str(&format!(
            "  input      {} rows, {} duplicates, {} blank, {} unreadable\n",
            self.input_rows, self.duplicates, self.blank_rows, self.bad_rows
        ));
        out.push_str(&format!("  companies  {}\n", if states.is_empty() { "none".into() } else { states.join(", ") }));
        out.push_str(&format!("  fresh      {} not due, skipped at no cost\n", self.skipped_fresh));
        out.push_str(&format!("  schedule   {}\n", self.schedule));
        out.push_str(&format!(
            "  calls      {} in {:.1}s ({:.1}/s){}\n",
            self.calls,
            self.elapsed_secs,
            self.calls_per_sec,
            if calls.is_empty() { String::new() } else { format!(": {}", calls.join(", ")) }
        ));
        out.push_str(&format!(
            "  rows       {} written, {} customers in the database\n",
            self.rows_written, self.customers_in_db
        ));
        let c = &self.changes;
        out.push_str(&format!(
            "  changes    {} new periods, {} customers added, {} changed, {} removed \
             (export --changes-since {} lists them)\n",
            c.new_period,
            c.added,
            c.changed,
            c.removed,
            self.run_id - 1
        ));
        out.push_str(&self.listing.render());
        let remaining = self.remaining();
        if remaining > 0 {
            out.push_str(&format!("  remaining  {remaining} companies need another run"));
            if let Some(t) = &self.next_parked_retry {
                out.push_str(&format!(" (parked ones from {t})"));
            }
            out.push('\n');
        } else {
            out.push_str("  remaining  nothing: every company reached a final state\n");
        }
        out
    }
}

impl ListingSummary {
    /// The summary's `plan` lines: which plan was used and why.
    pub fn render(&self) -> String {
        let why = self.coverage.describe(self.evidence.as_ref());
        let mut out = format!("  plan       {why}\n");
        out.push_str(&format!(
            "             {} complete after discovery, {} unchanged, {} by listing pages, {} per year\n",
            self.complete_after_discovery, self.unchanged, self.listing_paged, self.per_year
        ));
        if self.per_year_formula_calls > 0 {
            out.push_str(&format!(
                "  saved      {} calls: {} from the listing where per-year paging costs {}\n",
                self.per_year_formula_calls.saturating_sub(self.listing_calls),
                self.listing_calls,
                self.per_year_formula_calls
            ));
        }
        if self.contradictions > 0 {
            out.push_str(&format!(
                "  warning    {} listing answers contradicted what was learned; those companies were paged per year\n",
                self.contradictions
            ));
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
pub fn finish(
    store: store::WriteStore,
    run_id: i64,
    run_started_at: &str,
    stats: &Stats,
    stop: &Stop,
    started: Instant,
    clock: clock::Clock,
    (schedule_settings, schedule): (crate::pipeline::plan::schedule::Settings, String),
) -> Result<Summary, RunError> {
    let conn = &store.conn;
    let by_state = read::companies_by_state(conn, run_id).map_err(StoreError::from)?;
    let by_status = read::calls_by_status(conn, run_id).map_err(StoreError::from)?;
    let customers = read::customer_rows_total(conn).map_err(StoreError::from)?;
    let changes = read::changes_of_run(conn, run_id).map_err(StoreError::from)?;
    let next_parked = read::earliest_retry_after(conn, run_id).map_err(StoreError::from)?;
    let knowledge = read::listing_knowledge(conn).map_err(StoreError::from)?;
    let (per_year_formula_calls, listing_calls) =
        read::listing_savings(conn, run_id, run_started_at).map_err(StoreError::from)?;
    let (coverage, evidence) = Coverage::of(&knowledge);
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let listing = ListingSummary {
        coverage,
        evidence: evidence.cloned(),
        complete_after_discovery: load(&stats.plan_complete),
        unchanged: load(&stats.plan_unchanged),
        listing_paged: load(&stats.plan_listing),
        per_year: load(&stats.plan_years),
        contradictions: load(&stats.listing_contradictions),
        listing_calls,
        per_year_formula_calls,
    };
    let reason = stop.reason();
    let elapsed = started.elapsed().max(Duration::from_millis(1));
    let calls = stats.calls.load(Ordering::Relaxed);
    let mut summary = Summary {
        run_id,
        ended: Ended::Done,
        exit_code: 0,
        status: String::new(),
        stop_reason: reason.as_ref().map(|r| r.to_string()),
        elapsed_secs: elapsed.as_secs_f64(),
        input_rows: stats.input_rows.load(Ordering::Relaxed),
        blank_rows: stats.blank_rows.load(Ordering::Relaxed),
        bad_rows: stats.bad_rows.load(Ordering::Relaxed),
        duplicates: stats.duplicates.load(Ordering::Relaxed),
        skipped_fresh: stats.skipped_fresh.load(Ordering::Relaxed),
        companies_by_state: by_state,
        calls,
        calls_by_status: by_status,
        rows_written: stats.rows_written.load(Ordering::Relaxed),
        changes,
        customers_in_db: customers,
        calls_per_sec: calls as f64 / elapsed.as_secs_f64(),
        next_parked_retry: next_parked,
        listing,
        schedule,
        schedule_settings,
    };
    summary.ended = Ended::of_run(reason.as_ref(), summary.remaining());
    summary.exit_code = summary.ended.code();
    summary.status = match (&reason, summary.ended) {
        (_, Ended::Done) => "finished",
        (None, _) => "incomplete",
        (Some(_), Ended::Resumable) => "stopped",
        (Some(_), _) => "failed",
    }
    .into();
    let json = serde_json::to_string(&summary).unwrap_or_default();
    let end = write::RunEnd {
        status: &summary.status,
        exit_code: summary.exit_code,
        calls,
        rows_written: summary.rows_written,
        summary_json: &json,
    };
    write::finish_run(conn, run_id, &end, &clock.now_iso()).map_err(StoreError::from)?;
    Ok(summary)
}
