//! `run --dry-run`: read and validate the whole input, plan every company
//! against what the database already knows, and count the calls — without a
//! call, a write, or credentials.
//!
//! Memory stays flat: duplicates are found with a set of 64-bit hashes of the
//! normalised keys (8 bytes per distinct key, not the key itself).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::Path;

use super::input::{InputOptions, InputReader, InputSource, Item};
use super::plan::{self, PlanOptions, Skip};
use super::RunError;
use crate::store::records::CompanySnapshot;
use crate::store::{self, read, StoreError};

/// What a run over this input would do.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DryRun {
    pub rows: u64,
    pub blank: u64,
    pub unreadable: u64,
    pub duplicates: u64,
    pub invalid: u64,
    /// Not in the database yet.
    pub new: u64,
    /// Known, and due (refresh, resume, deferred, parked whose wait is over).
    pub due: u64,
    /// Known and fetched within `--refresh-after`.
    pub fresh: u64,
    /// Known and rejected before (not asked again without `--retry-rejected`).
    pub rejected: u64,
    /// Known and parked after 110, still waiting.
    pub parked: u64,
    /// Calls known exactly: every discovery call and every page of a year
    /// whose size the database knows.
    pub exact_calls: u64,
    /// Calls for years whose size is not known yet, estimated from the
    /// companies already in the database (0 when it holds none).
    pub estimated_calls: u64,
    /// Whether there was any basis for the estimate.
    pub estimate_basis: bool,
}

impl DryRun {
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "input      {} rows: {} duplicates, {} blank, {} unreadable, {} invalid (never sent)\n",
            self.rows, self.duplicates, self.blank, self.unreadable, self.invalid
        ));
        out.push_str(&format!(
            "companies  {} new, {} due, {} fresh (skipped at no cost), {} rejected before, {} parked\n",
            self.new, self.due, self.fresh, self.rejected, self.parked
        ));
        out.push_str(&format!("calls      {} known exactly", self.exact_calls));
        if self.estimated_calls > 0 {
            out.push_str(&format!(" + about {} estimated", self.estimated_calls));
        }
        out.push('\n');
        if self.new > 0 {
            if self.estimate_basis {
                out.push_str(&format!(
                    "           (new companies: {} discovery calls are exact; their years are estimated from \
                     the companies already in the database)\n",
                    self.new
                ));
            } else {
                out.push_str(&format!(
                    "           (new companies: {} discovery calls are exact; their years cannot be estimated \
                     yet: each costs 1 + Σ_years max(1, min(100, ceil(rows/50))) calls)\n",
                    self.new
                ));
            }
        }
        out.push_str(&format!(
            "total      {} calls at most as far as is known\n",
            self.exact_calls + self.estimated_calls
        ));
        out
    }
}

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
) -> Result<DryRun, RunError> {
    let mut reader = InputReader::open(input, input_options)?;
    reader.keep_rows(false);
    let conn = if db.exists() { Some(store::open_for_reading(db)?) } else { None };
    let avg_pages = match &conn {
        Some(c) => read::average_pages_per_year(c).map_err(StoreError::from)?,
        None => None,
    };
    let avg_years = match &conn {
        Some(c) => read::average_years_per_company(c).map_err(StoreError::from)?,
        None => None,
    };
    let mut out = DryRun { estimate_basis: avg_pages.is_some() && avg_years.is_some(), ..DryRun::default() };
    let per_unknown_year = avg_pages.unwrap_or(0.0);
    let mut estimated = 0.0f64;
    let mut seen: HashSet<u64> = HashSet::new();
    let now = chrono::Utc::now();
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
        if record.invalid.is_some() {
            out.invalid += 1;
            continue;
        }
        let known = match &conn {
            Some(c) => match read::company_by_norm_key(c, &record.norm_key).map_err(StoreError::from)? {
                Some((snapshot, _)) => {
                    let years = read::company_years(c, &snapshot.search_key).map_err(StoreError::from)?;
                    Some(CompanySnapshot { years, ..snapshot })
                }
                None => None,
            },
            None => None,
        };
        let Some(known) = known else {
            out.new += 1;
            out.exact_calls += 1;
            estimated += avg_years.unwrap_or(0.0) * per_unknown_year;
            continue;
        };
        match plan::plan(known, plan_opts, now) {
            Err(Skip::Fresh) => out.fresh += 1,
            Err(Skip::Rejected) => out.rejected += 1,
            Err(Skip::Parked(_)) => out.parked += 1,
            Ok(job) => {
                out.due += 1;
                let (year_list, cycle) = if job.discovery {
                    out.exact_calls += 1;
                    // The year list the last discovery gave (a new year would add to this).
                    let list = job.known_years.iter().map(|y| y.year.clone()).collect::<Vec<_>>();
                    (list, now_iso.clone())
                } else {
                    (job.year_list.clone(), job.discovered_at.clone().unwrap_or_default())
                };
                for task in plan::years_to_fetch(&year_list, &job.known_years, &cycle, plan_opts) {
                    let total = task
                        .total_records
                        .or_else(|| job.known_years.iter().find(|y| y.year == task.year).and_then(|y| y.total_records));
                    match (task.pages_total, total) {
                        (Some(pt), _) if task.first_page > 1 => {
                            out.exact_calls += u64::from(pt.saturating_sub(task.first_page - 1));
                        }
                        (_, Some(t)) => out.exact_calls += u64::from(plan::pages_for(t, plan_opts.page_size).0.max(1)),
                        _ => estimated += per_unknown_year.max(1.0),
                    }
                }
            }
        }
    }
    out.estimated_calls = estimated.round() as u64;
    Ok(out)
}
