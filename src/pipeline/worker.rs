//! Stage 3: a company's fetch cycle. The dispatcher runs one of these per
//! company: discovery, then the plan its answer decides — nothing more, the
//! all-years listing's pages, or each year's pages — taking every call
//! through [`call`](super::call) and handing every answer to the writer as
//! one [`Commit`].
//!
//! A worker never touches SQLite; what it learns travels to the writer over a
//! bounded channel, so a slow disk slows the workers instead of losing rows.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::budget::Budget;
use super::call::{Fetched, Final, NotNow, RetryPolicy};
use super::flow::Flow;
use super::listing::{self, Coverage};
use super::pages::{fetch_listing, fetch_years, Lanes, Occupancy, Pager, UnitEnd};
use super::parking::Parking;
use super::plan::{self, Job, PlanOptions, YearTask};
use super::shutdown::{Stop, StopReason};
use super::stats::Stats;
use super::writer::{CommitWindow, WriteMsg};
use crate::clock::{self, Clock};
use crate::qcc::Client;
use crate::store::receipt;
use crate::store::records::{
    CallRecord, Commit, CompanyState, Event, EvidenceKind, FetchPlan, Query, RawPage, StoredPages, YearState,
};

/// Everything the companies in flight share.
pub struct Ctx {
    pub client: Client,
    /// Rate, concurrency and throttling: a permit for every call.
    pub flow: Arc<Flow>,
    /// Why the run stops, once it does; every wait watches it.
    pub stop: Arc<Stop>,
    /// To the single writer; bounded, so it is the pipeline's backpressure.
    pub writer: mpsc::Sender<WriteMsg>,
    /// Answered pages handed to the writer and not yet durable, bounded.
    pub window: CommitWindow,
    pub plan: PlanOptions,
    pub retry: RetryPolicy,
    /// Keep 200 bodies in `raw_pages`.
    pub archive: bool,
    pub budget: Budget,
    pub stats: Arc<Stats>,
    /// 110: when parked companies are due again.
    pub parking: Parking,
    /// What the all-years listing is known to cover; workers teach it.
    pub listing: listing::Knowledge,
    /// The time of day for checkpoints and cycles.
    pub clock: Clock,
    /// Companies in flight against worker slots: how many pages each may
    /// have in flight (more than one only when slots are free).
    pub occupancy: Occupancy,
}

impl Ctx {
    /// Hand one atomic unit to the writer, waiting for room in the commit
    /// window. A unit's commits reach the writer in the order its loop hands
    /// them over (one channel, one writer), so each checkpoint includes
    /// every page committed before it.
    pub(super) async fn commit(&self, commit: Commit) -> bool {
        let Some(slot) = self.window.enter().await else {
            return false;
        };
        if self.writer.send(WriteMsg::Commit { commit, slot }).await.is_err() {
            // The writer only goes away on a database error, which it reported.
            self.stop.stop(StopReason::StoreFailed("the writer stopped".into()));
            return false;
        }
        true
    }

    /// Commit a call's record with the events it caused.
    pub(super) async fn commit_call(&self, key: &str, call: CallRecord, events: Vec<Event>) -> bool {
        self.commit(Commit { search_key: key.to_string(), call: Some(call), events }).await
    }

    /// The receipt of a 200 page, when receipts are kept.
    pub(super) fn receipt(
        &self,
        body: Option<&[u8]>,
        order_number: &Option<String>,
        query: &Query,
        page: u32,
    ) -> Option<RawPage> {
        if !self.archive {
            return None;
        }
        Some(RawPage {
            query_year: query.archive_name().to_string(),
            page_index: page,
            order_number: order_number.clone(),
            body: receipt::compress(body?)?,
        })
    }

    /// The event that records what an answer showed about the listing, if it
    /// is news: the first evidence either way, and every contradiction.
    fn evidence(&self, key: &str, kind: EvidenceKind, detail: String, order_number: Option<String>) -> Option<Event> {
        match kind {
            EvidenceKind::EveryYear => {
                if !self.listing.learn(Coverage::EveryYear) {
                    return None;
                }
                tracing::info!(search_key = key, detail = %detail, "Learned: the all-years listing covers every year; paging it from now on.");
            }
            EvidenceKind::SomeYears => {
                if !self.listing.learn(Coverage::SomeYears) {
                    return None;
                }
                tracing::warn!(search_key = key, detail = %detail, "The all-years listing holds only some years: paging per year for good.");
            }
            EvidenceKind::Contradiction => {
                self.stats.listing_contradictions.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(search_key = key, detail = %detail, "The listing contradicts what was learned; this company is paged per year.");
            }
        }
        Some(Event::Evidence { kind, order_number, detail })
    }

    /// A year's own TotalRecords against the rows a whole listing of this
    /// cycle held of it: fewer in the listing shows it lacks rows.
    pub(super) fn compare_with_listing(
        &self,
        key: &str,
        year: &str,
        year_total: u64,
        listed: Option<u64>,
        order_number: &Option<String>,
    ) -> Option<Event> {
        let listed = listed?;
        if year_total <= listed {
            return None;
        }
        let kind = match self.listing.get() {
            Coverage::Unknown => EvidenceKind::SomeYears,
            Coverage::EveryYear => EvidenceKind::Contradiction,
            Coverage::SomeYears => return None,
        };
        let detail = format!("the whole listing held {listed} rows of {year}; the year's own query has {year_total}");
        self.evidence(key, kind, detail, order_number.clone())
    }

    /// The listing contradicted itself: commit the call (and the page it
    /// brought, whose rows were paid for) with the contradiction, and go on
    /// per year.
    pub(super) async fn listing_contradicted(
        &self,
        key: &str,
        call: Option<CallRecord>,
        problem: String,
        page: Option<Event>,
    ) -> UnitEnd {
        let order = call.as_ref().and_then(|c| c.order_number.clone());
        let mut events: Vec<Event> = page.into_iter().collect();
        events.extend(self.evidence(key, EvidenceKind::Contradiction, problem, order));
        events.push(Event::ListingAbandoned);
        let committed = self.commit(Commit { search_key: key.to_string(), call, events }).await;
        if committed {
            UnitEnd::Contradicted
        } else {
            UnitEnd::Unfinished
        }
    }

    /// Record a final or deferring outcome for the company, with its call.
    pub(super) async fn end_company(
        &self,
        key: &str,
        call: Option<CallRecord>,
        state: CompanyState,
        code: Option<String>,
        message: Option<String>,
    ) -> bool {
        let retry_after = (state == CompanyState::Parked).then(|| clock::iso(self.parking.park()));
        let events = vec![Event::Company { state, status_code: code, message, retry_after }];
        self.commit(Commit { search_key: key.to_string(), call, events }).await
    }
}

/// Record why a company stops for this run (defer, park, stop).
pub(super) async fn settle(ctx: &Ctx, key: &str, why: NotNow) {
    match why {
        NotNow::Deferred { reason, code, call } => {
            ctx.end_company(key, Some(call), CompanyState::Deferred, code, Some(reason)).await;
        }
        NotNow::Parked { message, call } => {
            ctx.end_company(key, Some(call), CompanyState::Parked, Some("110".into()), message).await;
        }
        NotNow::Stopped { call: Some(call) } => {
            ctx.commit_call(key, call, vec![]).await;
        }
        NotNow::Stopped { call: None } => {}
    }
}

/// One company's fetch cycle as the worker goes through it.
pub(super) struct Cycle {
    pub(super) year_list: Vec<String>,
    discovered_at: String,
    pub(super) total: Option<u64>,
    plan: FetchPlan,
    /// The listing's stored pages, its pages, and the rows its stored pages held.
    pub(super) listing_stored: StoredPages,
    pub(super) listing_pages: u32,
    pub(super) listing_rows: u64,
    /// Rows per report year of a whole listing seen in this run: what each
    /// year's own answer is compared with.
    whole_listing: Option<BTreeMap<String, u64>>,
    /// The years to page, when discovery already worked them out.
    years: Option<Vec<YearTask>>,
}

impl Cycle {
    /// A cycle whose discovery an earlier run made, from its checkpoints.
    fn resume(job: &Job) -> Cycle {
        let listing = job.listing.as_ref().filter(|l| !l.complete);
        Cycle {
            year_list: job.year_list.clone(),
            discovered_at: job.discovered_at.clone().unwrap_or_default(),
            total: job.total_records,
            plan: match (job.fetch_plan, &job.listing) {
                // The listing was completed: nothing is left.
                (Some(FetchPlan::Listing), Some(l)) if l.complete => FetchPlan::Nothing,
                (Some(plan), _) => plan,
                (None, _) => FetchPlan::Years,
            },
            listing_stored: listing.map_or(StoredPages { prefix: 1, ..StoredPages::default() }, |l| l.stored.clone()),
            listing_pages: listing.map_or(1, |l| l.pages_total),
            listing_rows: listing.map_or(0, |l| l.rows_fetched),
            whole_listing: None,
            years: None,
        }
    }
}

/// Fetch one company. Returns `true` when it reached a final state.
pub async fn run_company(ctx: &Ctx, job: Job) -> bool {
    let key = job.search_key.as_str();
    let mut cycle = if job.discovery {
        match discover(ctx, &job).await {
            Ok(cycle) => cycle,
            Err(finished) => return finished,
        }
    } else {
        Cycle::resume(&job)
    };
    let pager = Pager { ctx, key, lanes: Lanes::new(&ctx.occupancy) };
    if cycle.plan == FetchPlan::Listing {
        match fetch_listing(&pager, &mut cycle).await {
            UnitEnd::Done => {}
            // Contradicted: the rest of the cycle is paged per year.
            UnitEnd::Contradicted => cycle.plan = FetchPlan::Years,
            UnitEnd::CompanyFinal => return true,
            UnitEnd::Unfinished => return false,
        }
    }
    if cycle.plan == FetchPlan::Years {
        let years = cycle.years.take().unwrap_or_else(|| {
            plan::years_to_fetch(
                &cycle.year_list,
                &job.known_years,
                &cycle.discovered_at,
                &ctx.plan,
                plan::latest_years(job.deep),
            )
        });
        let tasks = years
            .into_iter()
            .map(|task| {
                let listed = cycle.whole_listing.as_ref().map(|m| m.get(&task.year).copied().unwrap_or(0));
                (task, listed)
            })
            .collect();
        match fetch_years(&pager, tasks).await {
            UnitEnd::Done | UnitEnd::Contradicted => {}
            UnitEnd::CompanyFinal => return true,
            UnitEnd::Unfinished => return false,
        }
    }
    ctx.end_company(key, None, CompanyState::Done, Some("200".into()), None).await
}

/// Discovery: page 1 without `year`. Its answer decides the rest of the
/// cycle (see [`listing::decide`]); its rows are stored when they are the
/// company's only copy. `Err(finished)` when the company ends here.
async fn discover(ctx: &Ctx, job: &Job) -> Result<Cycle, bool> {
    let key = job.search_key.as_str();
    let (resp, body, call) = match ctx.fetch(key, None, 1).await {
        Fetched::Page { response, body, call } => (response, body, call),
        Fetched::Final { answer, code, message, call } => {
            let state = match answer {
                Final::NoResult => CompanyState::NoResult,
                Final::Rejected => CompanyState::Rejected,
                // 207 on a first page cannot happen; never loop on it.
                Final::Truncated => CompanyState::Deferred,
            };
            let committed = ctx.end_company(key, Some(call), state, code, message).await;
            return Err(committed && state != CompanyState::Deferred);
        }
        Fetched::NotNow(why) => {
            settle(ctx, key, why).await;
            return Err(false);
        }
    };
    let raw = ctx.receipt(body.as_deref(), &resp.order_number, &Query::Listing, 1);
    let size = ctx.plan.page_size;
    let discovered_at = ctx.clock.now_iso();
    let d = listing::Discovery {
        total: resp.total_records,
        year_list: &resp.year_list,
        rows: &resp.clients,
        page_size: size,
    };
    let facts = listing::PageFacts::of(&resp.clients, &resp.year_list);
    let tasks = plan::years_to_fetch(
        &resp.year_list,
        &job.known_years,
        &discovered_at,
        &ctx.plan,
        plan::latest_years(job.deep),
    );
    let history = listing::History {
        has_rows: job.has_rows(),
        done_digest: job.done_digest.as_deref(),
        missing_years: plan::missing_years(&resp.year_list, &job.known_years, &ctx.plan),
        filtered: ctx.plan.years.only.is_some() || ctx.plan.years.since.is_some(),
        per_year_at_least: plan::per_year_at_least(&tasks, &resp.year_list, &job.known_years, resp.total_records, size),
    };
    let decision = listing::decide(&d, &facts, ctx.listing.get(), &history);
    tracing::debug!(search_key = key, plan = decision.plan.as_str(), why = decision.why, "Discovered.");
    ctx.stats.count_plan(&decision);

    let pages = decision.pages;
    let mut events = vec![Event::Discovered {
        year_list: resp.year_list.clone(),
        total_records: resp.total_records,
        digest: d.digest(),
        plan: decision.plan,
        raw,
    }];
    if let Some((kind, detail)) = decision.evidence {
        events.extend(ctx.evidence(key, kind, detail, resp.order_number.clone()));
    }
    let whole = d.whole();
    if decision.store_page1 {
        let complete = decision.plan == FetchPlan::Nothing;
        events.push(Event::Page {
            query: Query::Listing,
            page_index: 1,
            total_records: resp.total_records.unwrap_or(resp.clients.len() as u64),
            pages_total: pages,
            year_state: if complete { YearState::Complete } else { YearState::Partial },
            stored: StoredPages { prefix: 1, ..StoredPages::default() },
            unit_rows: resp.clients.len() as u64,
            rows: resp.clients,
            raw: None,
        });
    }
    if decision.plan == FetchPlan::Nothing {
        events.push(Event::Company {
            state: CompanyState::Done,
            status_code: Some("200".into()),
            message: None,
            retry_after: None,
        });
        return Err(ctx.commit_call(key, call, events).await);
    }
    if !ctx.commit_call(key, call, events).await {
        return Err(false);
    }
    Ok(Cycle {
        year_list: resp.year_list,
        discovered_at,
        total: resp.total_records,
        plan: decision.plan,
        listing_stored: StoredPages { prefix: 1, ..StoredPages::default() },
        listing_pages: pages,
        listing_rows: facts.counts.values().sum(),
        whole_listing: whole.then_some(facts.counts),
        years: Some(tasks),
    })
}
