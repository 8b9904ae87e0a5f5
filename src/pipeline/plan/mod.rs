//! Plan: what to fetch for a company, and when. This file decides, from what
//! the database holds of a company, whether it is due and which units its
//! cycle pages (docs/design.md §4); [`listing`] decides between the
//! all-years listing and per-year paging from discovery's answer; and
//! [`schedule`] decides when a company is asked again. Pure functions: no
//! I/O, so every rule is unit-tested.

pub mod listing;
pub mod schedule;

use chrono::{DateTime, Utc};

use crate::clock;
use crate::store::records::{CompanySnapshot, CompanyState, FetchPlan, ListingRow, StoredPages, YearRow, YearState};

/// The API never serves more than 5,000 entries of one query.
pub const MAX_ENTRIES: u64 = 5000;

/// `--years` / `--since`: which years to fetch.
#[derive(Debug, Clone, Default)]
pub struct YearFilter {
    pub only: Option<Vec<String>>,
    pub since: Option<u32>,
}

impl YearFilter {
    pub fn accepts(&self, year: &str) -> bool {
        if let Some(only) = &self.only {
            if !only.iter().any(|y| y == year) {
                return false;
            }
        }
        if let Some(since) = self.since {
            match year.get(..4).and_then(|y| y.parse::<u32>().ok()) {
                Some(y) if y >= since => {}
                _ => return false,
            }
        }
        true
    }
}

/// Policy knobs for planning.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `--refresh-after`: the fixed schedule. `None`: the revisit schedule's
    /// `next_check_at` decides (docs/design.md §4).
    pub refresh_after: Option<chrono::Duration>,
    pub full_refresh: bool,
    pub retry_rejected: bool,
    pub years: YearFilter,
    pub page_size: u32,
}

/// Why a company costs nothing this run.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// Not due yet: fetched within `--refresh-after`, or before its next check.
    Fresh,
    /// Rejected by the API before (`--retry-rejected` to ask again).
    Rejected,
    /// Parked after 110 until this time.
    Parked(String),
}

/// Work for one company.
#[derive(Debug, Clone)]
pub struct Job {
    pub search_key: String,
    /// Ask page 1 without `year` first (a new fetch cycle).
    pub discovery: bool,
    /// The year list of the current cycle, when discovery is already done.
    pub year_list: Vec<String>,
    /// When the current cycle's discovery happened (`None` if it has not).
    pub discovered_at: Option<String>,
    /// Year checkpoints from the database.
    pub known_years: Vec<YearRow>,
    /// How the current cycle goes on after its discovery (`None` in files
    /// from before the listing was known: per year).
    pub fetch_plan: Option<FetchPlan>,
    /// The current cycle's TotalRecords.
    pub total_records: Option<u64>,
    /// The listing checkpoint from the database.
    pub listing: Option<ListingRow>,
    /// The digest of the last completed cycle's discovery, when this job
    /// refreshes a done company (not with `--full-refresh`, nor a deep check).
    pub done_digest: Option<String>,
    /// A deep check: the latest report years are re-paged whatever page 1
    /// says, because a change further down is invisible to it.
    pub deep: bool,
}

/// How many of the latest years a refresh re-pages: the latest one, or the
/// two latest for a deep check (where corrections and restatements land).
pub fn latest_years(deep: bool) -> usize {
    if deep {
        2
    } else {
        1
    }
}

impl Job {
    /// The company has rows stored from an earlier cycle (or an earlier part of this one).
    pub fn has_rows(&self) -> bool {
        !self.known_years.is_empty() || self.listing.is_some()
    }
}

/// One year to page through.
#[derive(Debug, Clone, PartialEq)]
pub struct YearTask {
    pub year: String,
    /// The pages of this cycle already stored (none for a fresh start).
    pub stored: StoredPages,
    /// Known from an earlier page of this cycle.
    pub pages_total: Option<u32>,
    pub total_records: Option<u64>,
}

impl YearTask {
    /// A year begun afresh: nothing of it stored in this cycle.
    pub fn fresh(year: &str) -> Self {
        YearTask { year: year.to_string(), stored: StoredPages::default(), pages_total: None, total_records: None }
    }

    /// The calls this year still needs, when its page count is known.
    pub fn pages_left(&self) -> Option<u32> {
        let pt = self.pages_total?;
        Some(pt.saturating_sub(self.stored.count()))
    }
}

/// How much earlier than `--refresh-after` says a company is already due: a
/// company is stamped a few seconds into the run that fetched it, so without
/// this the run a whole period later (a nightly cron job's, at the same time
/// of day) would find it seconds short of due and leave it for the next
/// night — `7d` would mean every 8 nights. An hour, or 1/24 of a shorter period.
pub fn due_tolerance(refresh_after: chrono::Duration) -> chrono::Duration {
    chrono::Duration::hours(1).min(refresh_after / 24)
}

/// Decide what a company needs this run.
pub fn plan(company: CompanySnapshot, opts: &PlanOptions, now: DateTime<Utc>) -> Result<Job, Skip> {
    // A listing resumed with another --page-size would not line up with
    // its stored pages: that cycle starts over with discovery.
    let listing_resumable = company.fetch_plan != Some(FetchPlan::Listing)
        || company.listing.as_ref().is_some_and(|l| l.complete || l.page_size == opts.page_size);
    let mid_cycle = matches!(company.state, CompanyState::Pending | CompanyState::Deferred | CompanyState::Parked)
        && company.year_list.is_some()
        && company.discovered_at.is_some()
        && listing_resumable;
    let deep = opts.refresh_after.is_none() && company.next_check_deep && company.state == CompanyState::Done;
    let done_digest = (company.state == CompanyState::Done && !opts.full_refresh && !deep)
        .then_some(company.discovery_digest.clone())
        .flatten();
    match company.state {
        CompanyState::Done | CompanyState::NoResult
            if !opts.full_refresh && due_at(&company, opts).is_some_and(|t| now < t) =>
        {
            return Err(Skip::Fresh);
        }
        CompanyState::Rejected if !opts.retry_rejected => return Err(Skip::Rejected),
        CompanyState::Parked => {
            if let Some(until) = company.retry_after.as_deref() {
                if clock::parse_iso(until).is_some_and(|t| now < t) {
                    return Err(Skip::Parked(until.to_string()));
                }
            }
        }
        _ => {}
    }
    Ok(Job {
        search_key: company.search_key,
        discovery: !mid_cycle,
        year_list: if mid_cycle { company.year_list.unwrap_or_default() } else { Vec::new() },
        discovered_at: if mid_cycle { company.discovered_at } else { None },
        known_years: company.years,
        fetch_plan: if mid_cycle { company.fetch_plan } else { None },
        total_records: company.total_records,
        listing: company.listing,
        done_digest,
        deep,
    })
}

/// A file from before the revisit schedule has no next check for its
/// companies: they are due this long after their last fetch, as before.
const UNSCHEDULED: chrono::Duration = chrono::Duration::days(7);

/// When a done or no_result company is due again: `--refresh-after` after
/// its last fetch, or at the next check the revisit schedule set (both an
/// hour early, see [`due_tolerance`]). `None`: due now.
pub fn due_at(company: &CompanySnapshot, opts: &PlanOptions) -> Option<DateTime<Utc>> {
    let fetched = company.fetched_at.as_deref().and_then(clock::parse_iso);
    match opts.refresh_after {
        Some(d) => Some(fetched? + d - due_tolerance(d)),
        None => match company.next_check_at.as_deref().and_then(clock::parse_iso) {
            Some(next) => Some(next - due_tolerance(UNSCHEDULED)),
            None => Some(fetched? + UNSCHEDULED - due_tolerance(UNSCHEDULED)),
        },
    }
}

/// Some year the filter accepts has no complete checkpoint: a refresh whose
/// discovery is unchanged must still fetch it.
pub fn missing_years(year_list: &[String], known: &[YearRow], opts: &PlanOptions) -> bool {
    year_list
        .iter()
        .filter(|y| opts.years.accepts(y))
        .any(|y| known.iter().find(|r| &r.year == y).is_none_or(|r| r.state == YearState::Partial))
}

/// The least that paging `tasks` per year can cost: a call per year, and at
/// least ceil(rows / size) where the rows are what `total` holds beyond the
/// years that stay as stored (assuming those did not change, as per-year
/// refresh does). When a year left out has no known size (`--years` leaves
/// it out, or it was never fetched) the rows the tasks need are unknown, and
/// only the call per year is sure.
pub fn per_year_at_least(
    tasks: &[YearTask],
    year_list: &[String],
    known: &[YearRow],
    total: Option<u64>,
    page_size: u32,
) -> u64 {
    let left_out: Option<u64> = year_list
        .iter()
        .filter(|y| !tasks.iter().any(|t| &t.year == *y))
        .map(|y| known.iter().find(|r| &r.year == y).and_then(|r| r.total_records))
        .sum();
    let rows = match (total, left_out) {
        (Some(t), Some(kept)) => t.saturating_sub(kept),
        _ => 0,
    };
    (tasks.len() as u64).max(rows.div_ceil(u64::from(page_size.max(1))))
}

/// Pages to ask for `total` records: `min(MAX_ENTRIES / page_size,
/// ceil(total / page_size))` — 100 at the API's page size of 50
/// (docs/design.md §4) —, and whether the year is cut at the 5,000-entry ceiling.
pub fn pages_for(total: u64, page_size: u32) -> (u32, bool) {
    let size = u64::from(page_size.max(1));
    let needed = total.div_ceil(size);
    let cap = (MAX_ENTRIES / size).max(1);
    (needed.min(cap) as u32, needed > cap)
}

/// What a resumed cycle (its discovery made by an earlier run) still pages:
/// its plan, or nothing once its listing is complete. The worker resumes by
/// it and the dry run prices by it.
pub fn resumed_plan(job: &Job) -> FetchPlan {
    match (job.fetch_plan, &job.listing) {
        (Some(FetchPlan::Listing), Some(l)) if l.complete => FetchPlan::Nothing,
        (Some(plan), _) => plan,
        (None, _) => FetchPlan::Years,
    }
}

/// The years of a cycle still to fetch, and where each one starts.
///
/// A year is fetched when it is new, partial, or — within a refresh — the most
/// recent year (or every year with `--full-refresh`) whose checkpoint predates
/// this cycle's discovery. Completed older years are never paid for again.
pub fn years_to_fetch(
    year_list: &[String],
    known: &[YearRow],
    discovered_at: &str,
    opts: &PlanOptions,
    refetch_latest: usize,
) -> Vec<YearTask> {
    let mut sorted: Vec<&String> = year_list.iter().collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let latest: Vec<&String> = sorted.into_iter().take(refetch_latest).collect();
    year_list
        .iter()
        .filter(|y| opts.years.accepts(y))
        .filter_map(|year| {
            let fresh_start = YearTask::fresh(year);
            let Some(row) = known.iter().find(|r| &r.year == year) else {
                return Some(fresh_start);
            };
            let before_cycle = row.fetched_at.as_deref().is_none_or(|f| f < discovered_at);
            let refetch = before_cycle && (opts.full_refresh || latest.contains(&year));
            match row.state {
                YearState::Complete | YearState::Truncated if refetch => Some(fresh_start),
                YearState::Complete | YearState::Truncated => None,
                YearState::Partial if before_cycle && refetch => Some(fresh_start),
                // Resumed with another --page-size: page numbers would no longer
                // line up with what is stored, so the year starts over.
                YearState::Partial if !same_page_size(row, opts.page_size) => Some(fresh_start),
                YearState::Partial => Some(YearTask {
                    year: year.clone(),
                    stored: row.stored.clone(),
                    pages_total: row.pages_total,
                    total_records: row.total_records,
                }),
            }
        })
        .collect()
}

/// Whether a partial year's checkpoint counts in `page_size`. Files from
/// before the page size was recorded are checked by their page count.
fn same_page_size(row: &YearRow, page_size: u32) -> bool {
    match (row.page_size, row.total_records, row.pages_total) {
        (Some(ps), _, _) => ps == page_size,
        (None, Some(total), Some(pages)) => pages_for(total, page_size).0.max(1) == pages,
        _ => true,
    }
}

/// What a first fetch costs paged per year:
/// `1 + Σ_years max(1, pages_for(n_y))` (`pages_for` is at most 100 at size 50).
pub fn per_year_cost(year_totals: &[u64], page_size: u32) -> u64 {
    1 + year_totals.iter().map(|&n| u64::from(pages_for(n, page_size).0.max(1))).sum::<u64>()
}

/// What a first fetch costs once the listing is learned: `max(1, ceil(T/size))`
/// for T ≤ 5,000 entries, per year beyond.
pub fn listing_cost(year_totals: &[u64], page_size: u32) -> u64 {
    let total: u64 = year_totals.iter().sum();
    if total <= MAX_ENTRIES {
        total.div_ceil(u64::from(page_size.max(1))).max(1)
    } else {
        per_year_cost(year_totals, page_size)
    }
}

#[cfg(test)]
mod tests;
