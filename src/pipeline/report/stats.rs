//! Counters the stages update as they go. They feed the progress display and
//! the end-of-run summary, nothing else: no decision reads them.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::pipeline::plan::listing;
use crate::store::records::FetchPlan;

/// Counters every stage updates; progress and the summary read them.
#[derive(Default)]
pub struct Stats {
    /// Rows with a key in the whole input, once a quick count has read it
    /// (0 until then, and for stdin).
    pub input_total: AtomicU64,
    pub input_rows: AtomicU64,
    pub blank_rows: AtomicU64,
    pub bad_rows: AtomicU64,
    pub duplicates: AtomicU64,
    pub skipped_fresh: AtomicU64,
    /// Jobs a worker has finished with, whatever the outcome.
    pub jobs_ended: AtomicU64,
    /// Input rows settled without a job (duplicate, invalid, fresh, rejected
    /// or still parked), and parked companies queued again: with
    /// `jobs_ended`, what the progress bar counts as done.
    pub rows_skipped: AtomicU64,
    pub requeued: AtomicU64,
    pub calls: AtomicU64,
    pub rows_written: AtomicU64,
    pub commits: AtomicU64,
    /// Discovery answers by what they left to fetch.
    pub plan_complete: AtomicU64,
    pub plan_unchanged: AtomicU64,
    pub plan_listing: AtomicU64,
    pub plan_years: AtomicU64,
    pub listing_contradictions: AtomicU64,
}

impl Stats {
    /// Count a discovery answer's plan.
    pub fn count_plan(&self, d: &listing::Decision) {
        let counter = match d.plan {
            FetchPlan::Nothing if d.store_page1 => &self.plan_complete,
            FetchPlan::Nothing => &self.plan_unchanged,
            FetchPlan::Listing => &self.plan_listing,
            FetchPlan::Years => &self.plan_years,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
