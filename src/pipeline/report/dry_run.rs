//! `run --dry-run`: read and validate the whole input, plan every company
//! against what the database already knows, and count the calls — without a
//! call, a write, or credentials.
//!
//! Memory stays flat: duplicates are found with a set of 64-bit hashes of the
//! normalised keys (8 bytes per distinct key, not the key itself).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::Path;

use crate::pipeline::error::RunError;
use crate::pipeline::intake::input::{InputOptions, InputReader, InputSource, Item, Layout};
use crate::pipeline::plan::listing::Coverage;
use crate::pipeline::plan::schedule::{self, Forecast, Settings};
use crate::pipeline::plan::{self, Job, PlanOptions, Skip};
use crate::store::records::FetchPlan;
use crate::store::{self, read, StoreError};

/// What a run over this input would do.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DryRun {
    /// What the input was found to be: format, separator, key column.
    pub layout: Option<Layout>,
    /// The first keys exactly as they will be sent.
    pub first_keys: Vec<String>,
    /// The first invalid rows: line, key, why.
    pub first_invalid: Vec<(u64, String, String)>,
    pub rows: u64,
    pub blank: u64,
    pub unreadable: u64,
    pub duplicates: u64,
    pub invalid: u64,
    /// Not in the database yet.
    pub new: u64,
    /// Known, and due (refresh, resume, deferred, parked whose wait is over).
    pub due: u64,
    /// Known and not due yet (before its next check, or within `--refresh-after`).
    pub fresh: u64,
    /// Known and rejected before (not asked again without `--retry-rejected`).
    pub rejected: u64,
    /// Known and parked after 110, still waiting.
    pub parked: u64,
    /// What the database knows the listing covers (`every_year`, `some_years`, `unknown`).
    pub listing: Coverage,
    /// Calls known exactly: every discovery call, and every page a cycle
    /// stopped half-way still needs.
    pub exact_calls: u64,
    /// Calls that depend on what discovery answers: for known companies due
    /// again, what they cost if they changed (an unchanged one costs only its
    /// discovery call).
    pub if_changed_calls: u64,
    /// Calls for new companies beyond discovery, estimated from the companies
    /// already in the database (0 when it holds none).
    pub estimated_calls: u64,
    /// Whether there was any basis for the estimate.
    pub estimate_basis: bool,
    /// Which schedule decides who is due, in words.
    pub schedule: String,
    /// The checks the database's companies are due for in the next weeks.
    pub forecast: Forecast,
}

/// How many weeks the dry run and `status` forecast.
pub const FORECAST_WEEKS: usize = 12;

impl DryRun {
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(layout) = &self.layout {
            out.push_str(&format!("read as    {layout}\n"));
        }
        if !self.first_keys.is_empty() {
            let keys: Vec<String> = self.first_keys.iter().map(|k| format!("{k:?}")).collect();
            out.push_str(&format!("first keys {} (exactly as they will be sent)\n", keys.join(", ")));
        }
        out.push_str(&format!(
            "input      {} rows: {} duplicates, {} blank, {} unreadable, {} invalid (never sent)\n",
            self.rows, self.duplicates, self.blank, self.unreadable, self.invalid
        ));
        for (line, key, why) in &self.first_invalid {
            out.push_str(&format!("invalid    line {line} {key:?}: {why}\n"));
        }
        if self.invalid > self.first_invalid.len() as u64 {
            out.push_str(&format!(
                "           … and {} more invalid rows (run, then: SELECT input_line, search_key, message FROM \
                 companies WHERE state = 'invalid')\n",
                self.invalid - self.first_invalid.len() as u64
            ));
        }
        out.push_str(&format!(
            "companies  {} new, {} due, {} fresh (skipped at no cost), {} rejected before, {} parked\n",
            self.new, self.due, self.fresh, self.rejected, self.parked
        ));
        let mut plan = self.listing.describe(None);
        if self.listing == Coverage::EveryYear {
            plan.push_str(" (max(1, ceil(T/50)) calls for T ≤ 5,000 rows)");
        }
        out.push_str(&format!("plan       {plan}\n"));
        out.push_str(&format!("calls      {} known exactly", self.exact_calls));
        if self.if_changed_calls > 0 {
            out.push_str(&format!(" + up to {} for due companies that changed", self.if_changed_calls));
        }
        if self.estimated_calls > 0 {
            out.push_str(&format!(" + about {} estimated", self.estimated_calls));
        }
        out.push('\n');
        if self.new > 0 {
            if self.estimate_basis {
                out.push_str(&format!(
                    "           (new companies: {} discovery calls are exact; the rest is estimated from \
                     the companies already in the database)\n",
                    self.new
                ));
            } else {
                out.push_str(&format!(
                    "           (new companies: {} discovery calls are exact; the rest cannot be estimated \
                     yet: each costs max(1, ceil(T/50)) once the listing is learned, else \
                     1 + Σ_years max(1, min(100, ceil(rows/50))))\n",
                    self.new
                ));
            }
        }
        out.push_str(&format!(
            "total      {} calls at most as far as is known\n",
            self.exact_calls + self.if_changed_calls + self.estimated_calls
        ));
        out.push_str(&format!("schedule   {}\n", self.schedule));
        out.push_str(&render_forecast(&self.forecast));
        out
    }
}

/// The forecast as the dry run and `status` print it.
pub fn render_forecast(f: &Forecast) -> String {
    let mut out = format!(
        "forecast   {} companies of the database due now; checks per week if nothing changes (one call each; \
         a company found changed adds its pages on top), nightly at this time of day:\n",
        f.due_now
    );
    out.push_str(&f.render("           "));
    out
}

/// How many invalid rows the dry run names.
const FIRST_INVALID_SHOWN: usize = 5;

fn key_hash(norm: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    norm.hash(&mut h);
    h.finish()
}

/// Plan a run without running it.
pub fn dry_run(
    input: InputSource,
    input_options: &InputOptions,
    db: &Path,
    plan_opts: &PlanOptions,
    settings: &Settings,
    clock: crate::clock::Clock,
) -> Result<DryRun, RunError> {
    let mut reader = InputReader::open(input, input_options)?;
    reader.keep_rows(false);
    let layout = reader.layout.clone();
    let first_keys = reader.first_keys(crate::pipeline::intake::input::FIRST_KEYS_SHOWN);
    let conn = if db.exists() { Some(store::open_for_reading(db)?) } else { None };
    let basis = match &conn {
        Some(c) => Basis::read(c, plan_opts.page_size).map_err(StoreError::from)?,
        None => Basis::default(),
    };
    let now = clock.now();
    let (schedule, forecast) = schedule_and_forecast(conn.as_ref(), settings, plan_opts.page_size, now)?;
    let mut out = DryRun {
        schedule,
        forecast,
        layout: Some(layout),
        first_keys,
        estimate_basis: basis.new_company.is_some(),
        listing: basis.coverage,
        ..DryRun::default()
    };
    let mut estimated = 0.0f64;
    let mut seen: HashSet<u64> = HashSet::new();
    let now_iso = crate::clock::iso(now);
    while let Some(item) = reader.next_item() {
        let record = match item {
            Item::Blank => {
                out.blank += 1;
                continue;
            }
            Item::Problem(p) => {
                out.unreadable += 1;
                tracing::warn!(line = p.line, problem = %p.message, "Unreadable input row.");
                if p.fatal {
                    break;
                }
                continue;
            }
            Item::Record(r) => r,
        };
        out.rows += 1;
        if !seen.insert(key_hash(&record.norm_key)) {
            out.duplicates += 1;
            continue;
        }
        if let Some(why) = record.invalid {
            out.invalid += 1;
            if out.first_invalid.len() < FIRST_INVALID_SHOWN {
                out.first_invalid.push((record.line, record.search_key, why));
            }
            continue;
        }
        let known = match &conn {
            Some(c) => match read::company_by_norm_key(c, &record.norm_key).map_err(StoreError::from)? {
                Some((snapshot, _)) => Some(read::with_checkpoints(c, snapshot).map_err(StoreError::from)?),
                None => None,
            },
            None => None,
        };
        let Some(known) = known else {
            out.new += 1;
            out.exact_calls += 1;
            estimated += basis.new_company.unwrap_or(0.0);
            continue;
        };
        out.count_known(plan::plan(known, plan_opts, now), basis.coverage, plan_opts, &now_iso);
    }
    out.estimated_calls = estimated.round() as u64;
    Ok(out)
}

/// The schedule in force and its forecast: the file's, or a new file's.
fn schedule_and_forecast(
    conn: Option<&rusqlite::Connection>,
    settings: &Settings,
    page_size: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(String, Forecast), RunError> {
    Ok(match conn {
        Some(c) => (
            settings.revisit(c, now).map_err(StoreError::from)?.describe(),
            schedule::forecast(c, settings, page_size, now, FORECAST_WEEKS).map_err(StoreError::from)?,
        ),
        None => (settings.fresh().describe(), Forecast { due_now: 0, checks_per_week: vec![0; FORECAST_WEEKS] }),
    })
}

impl DryRun {
    /// A company the database knows, as tonight's plan takes it.
    fn count_known(&mut self, plan: Result<Job, Skip>, coverage: Coverage, plan_opts: &PlanOptions, now_iso: &str) {
        match plan {
            Err(Skip::Fresh) => self.fresh += 1,
            Err(Skip::Rejected) => self.rejected += 1,
            Err(Skip::Parked(_)) => self.parked += 1,
            Ok(job) if job.discovery => {
                // A new cycle: its discovery call is sure; what follows depends
                // on its answer (nothing, when the company did not change).
                self.due += 1;
                self.exact_calls += 1;
                self.if_changed_calls += if_changed(&job, coverage, plan_opts, now_iso);
            }
            Ok(job) => {
                self.due += 1;
                self.exact_calls += resume_cost(&job, plan_opts);
            }
        }
    }
}

/// What the database says about companies it does not know yet.
#[derive(Default)]
struct Basis {
    coverage: Coverage,
    /// Calls a new company costs beyond discovery, on average.
    new_company: Option<f64>,
}

impl Basis {
    fn read(conn: &rusqlite::Connection, page_size: u32) -> rusqlite::Result<Self> {
        let coverage = Coverage::of(&read::listing_knowledge(conn)?).0;
        let new_company = match coverage {
            Coverage::EveryYear => read::average_listing_pages(conn, page_size)?.map(|p| (p - 1.0).max(0.0)),
            _ => match (read::average_years_per_company(conn)?, read::average_pages_per_year(conn)?) {
                (Some(years), Some(pages)) => Some(years * pages),
                _ => None,
            },
        };
        Ok(Basis { coverage, new_company })
    }
}

/// The calls a known company's new cycle makes after discovery if it
/// changed: the cheaper of its listing (once learned) and per-year paging of
/// the years a refresh takes (the latest, new and incomplete ones).
fn if_changed(job: &Job, coverage: Coverage, opts: &PlanOptions, now_iso: &str) -> u64 {
    let year_list: Vec<String> = job.known_years.iter().map(|y| y.year.clone()).collect();
    let per_year: u64 = plan::years_to_fetch(&year_list, &job.known_years, now_iso, opts, plan::latest_years(job.deep))
        .iter()
        .map(|t| match t.total_records.or_else(|| job.known_years.iter().find(|y| y.year == t.year)?.total_records) {
            Some(n) => u64::from(plan::pages_for(n, opts.page_size).0.max(1)),
            None => 1,
        })
        .sum();
    match (coverage, job.total_records) {
        (Coverage::EveryYear, Some(t)) if t <= plan::MAX_ENTRIES => {
            per_year.min(u64::from(plan::pages_for(t, opts.page_size).0.max(1)) - 1)
        }
        _ => per_year,
    }
}

/// The calls a cycle stopped half-way still needs: exact, from its checkpoints.
fn resume_cost(job: &Job, opts: &PlanOptions) -> u64 {
    match plan::resumed_plan(job) {
        FetchPlan::Nothing => 0,
        FetchPlan::Listing => {
            job.listing.as_ref().map_or(0, |l| u64::from(l.pages_total.saturating_sub(l.stored.count())))
        }
        FetchPlan::Years => {
            let cycle = job.discovered_at.clone().unwrap_or_default();
            plan::years_to_fetch(&job.year_list, &job.known_years, &cycle, opts, plan::latest_years(job.deep))
                .iter()
                .map(|task| {
                    let total = task
                        .total_records
                        .or_else(|| job.known_years.iter().find(|y| y.year == task.year).and_then(|y| y.total_records));
                    match (task.pages_total, total) {
                        (Some(_), _) if task.stored.count() > 0 => u64::from(task.pages_left().unwrap_or(0)),
                        (_, Some(t)) => u64::from(plan::pages_for(t, opts.page_size).0.max(1)),
                        // A year not begun: at least its first page.
                        _ => 1,
                    }
                })
                .sum()
        }
    }
}
