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
use super::parking::Parking;
use super::plan::{self, Job, PlanOptions, YearTask};
use super::shutdown::{Stop, StopReason};
use super::stats::Stats;
use super::writer::{CommitWindow, WriteMsg};
use crate::clock::{self, Clock};
use crate::qcc::Client;
use crate::store::receipt;
use crate::store::records::{
    CallRecord, Commit, CompanyState, Event, EvidenceKind, FetchPlan, Query, RawPage, YearState,
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
}

impl Ctx {
    /// Hand one atomic unit to the writer, waiting for room in the commit
    /// window. Pages of one company reach the writer in the order they were
    /// fetched (one channel, one writer), so checkpoints never run ahead.
    async fn commit(&self, commit: Commit) -> bool {
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
    fn receipt(&self, body: Option<&[u8]>, order_number: &Option<String>, query: &Query, page: u32) -> Option<RawPage> {
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
    fn compare_with_listing(
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
    async fn listing_contradicted(
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
    async fn end_company(
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
async fn settle(ctx: &Ctx, key: &str, why: NotNow) {
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
struct Cycle {
    year_list: Vec<String>,
    discovered_at: String,
    total: Option<u64>,
    plan: FetchPlan,
    /// The listing's next page, its pages, and the rows its stored pages held.
    listing_next: u32,
    listing_pages: u32,
    listing_rows: u64,
    /// Rows per report year of a whole listing seen in this run: what each
    /// year's own answer is compared with.
    whole_listing: Option<BTreeMap<String, u64>>,
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
            listing_next: listing.map_or(2, |l| l.pages_fetched + 1),
            listing_pages: listing.map_or(1, |l| l.pages_total),
            listing_rows: listing.map_or(0, |l| l.rows_fetched),
            whole_listing: None,
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
    if cycle.plan == FetchPlan::Listing {
        match fetch_listing(ctx, key, &mut cycle).await {
            UnitEnd::Done => {}
            // Contradicted: the rest of the cycle is paged per year.
            UnitEnd::Contradicted => cycle.plan = FetchPlan::Years,
            UnitEnd::CompanyFinal => return true,
            UnitEnd::Unfinished => return false,
        }
    }
    if cycle.plan == FetchPlan::Years {
        for task in plan::years_to_fetch(&cycle.year_list, &job.known_years, &cycle.discovered_at, &ctx.plan) {
            let listed = cycle.whole_listing.as_ref().map(|m| m.get(&task.year).copied().unwrap_or(0));
            match fetch_year(ctx, key, task, listed).await {
                UnitEnd::Done | UnitEnd::Contradicted => {}
                UnitEnd::CompanyFinal => return true,
                UnitEnd::Unfinished => return false,
            }
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
    let tasks = plan::years_to_fetch(&resp.year_list, &job.known_years, &discovered_at, &ctx.plan);
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
        listing_next: 2,
        listing_pages: pages,
        listing_rows: facts.counts.values().sum(),
        whole_listing: whole.then_some(facts.counts),
    })
}

/// Page the listing from `cycle.listing_next` to its end. Every page must be
/// full but the last, every row's year must be in `YearList`, and the pages
/// must add up to `TotalRecords`; anything else is a contradiction, and the
/// company goes back to per-year paging (what was stored stays until its
/// years replace it).
async fn fetch_listing(ctx: &Ctx, key: &str, cycle: &mut Cycle) -> UnitEnd {
    let size = ctx.plan.page_size;
    let pages = cycle.listing_pages;
    let Some(total) = cycle.total else {
        return ctx.listing_contradicted(key, None, "the listing has no TotalRecords".into(), None).await;
    };
    let mut page = cycle.listing_next;
    loop {
        if page > pages {
            let problem =
                format!("the listing's {pages} pages held {} rows, TotalRecords says {total}", cycle.listing_rows);
            return ctx.listing_contradicted(key, None, problem, None).await;
        }
        match ctx.fetch(key, None, page).await {
            Fetched::Page { response: resp, body, call } => {
                let raw = ctx.receipt(body.as_deref(), &resp.order_number, &Query::Listing, page);
                let n = resp.clients.len() as u64;
                let facts = listing::PageFacts::of(&resp.clients, &cycle.year_list);
                let last = page >= pages;
                let stored = cycle.listing_rows + n;
                let problem = if let Some(y) = &facts.stray {
                    Some(format!("listing page {page} holds a row of year {y:?}, which is not in YearList"))
                } else if resp.total_records.is_some_and(|t| t != total) {
                    Some(format!(
                        "TotalRecords went from {total} to {} between listing pages",
                        resp.total_records.unwrap_or(0)
                    ))
                } else if !last && n != u64::from(size) {
                    Some(format!("listing page {page} of {pages} held {n} rows, not {size}"))
                } else if last && stored != total {
                    Some(format!("the listing's {pages} pages held {stored} rows, TotalRecords says {total}"))
                } else {
                    None
                };
                let event = Event::Page {
                    query: Query::Listing,
                    page_index: page,
                    total_records: total,
                    pages_total: pages,
                    year_state: if last && problem.is_none() { YearState::Complete } else { YearState::Partial },
                    rows: resp.clients,
                    raw,
                };
                if let Some(problem) = problem {
                    return ctx.listing_contradicted(key, Some(call), problem, Some(event)).await;
                }
                if !ctx.commit_call(key, call, vec![event]).await {
                    return UnitEnd::Unfinished;
                }
                cycle.listing_rows = stored;
                if last {
                    return UnitEnd::Done;
                }
                page += 1;
            }
            Fetched::Final { answer: Final::NoResult | Final::Truncated, code, call, .. } => {
                let problem = format!("listing page {page} of {pages} answered {}", code.unwrap_or_default());
                return ctx.listing_contradicted(key, Some(call), problem, None).await;
            }
            Fetched::Final { answer: Final::Rejected, code, message, call } => {
                ctx.end_company(key, Some(call), CompanyState::Rejected, code, message).await;
                return UnitEnd::CompanyFinal;
            }
            Fetched::NotNow(why) => {
                settle(ctx, key, why).await;
                return UnitEnd::Unfinished;
            }
        }
    }
}

/// How paging through a unit (the listing, or one year) ended.
enum UnitEnd {
    /// Complete (or truncated): go on.
    Done,
    /// The listing contradicted itself: page this company per year.
    Contradicted,
    /// The company reached a final state (rejected) on this unit.
    CompanyFinal,
    /// Deferred, parked or stopped: the company is not finished in this run.
    Unfinished,
}

impl From<bool> for UnitEnd {
    /// `true` when the unit's last commit reached the writer.
    fn from(handed_over: bool) -> Self {
        if handed_over {
            UnitEnd::Done
        } else {
            UnitEnd::Unfinished
        }
    }
}

/// Page through one year. `listed`: how many of its rows a whole listing
/// held in this cycle, to compare with what the year's own query says.
async fn fetch_year(ctx: &Ctx, key: &str, task: YearTask, listed: Option<u64>) -> UnitEnd {
    let size = ctx.plan.page_size;
    let year = task.year.as_str();
    let mut page = task.first_page;
    let mut pages_total = task.pages_total;
    let mut total = task.total_records.unwrap_or(0);
    let mut truncated = task.total_records.is_some_and(|t| plan::pages_for(t, size).1);
    loop {
        if pages_total.is_some_and(|pt| page > pt) {
            // Every page was stored before (the checkpoint only lagged).
            let state = if truncated { YearState::Truncated } else { YearState::Complete };
            let event = Event::YearEnded {
                query_year: year.to_string(),
                state,
                total_records: total,
                pages_total: pages_total.unwrap_or(0),
                pages_fetched: page - 1,
            };
            return ctx.commit(Commit { search_key: key.to_string(), call: None, events: vec![event] }).await.into();
        }
        match ctx.fetch(key, Some(year), page).await {
            Fetched::Page { response: resp, body, call } => {
                let raw = ctx.receipt(body.as_deref(), &resp.order_number, &Query::Year(year.to_string()), page);
                let rows = resp.clients.len() as u32;
                if page == task.first_page || pages_total.is_none() {
                    match resp.total_records {
                        Some(t) => {
                            total = t;
                            let (pt, cut) = plan::pages_for(t, size);
                            pages_total = Some(pt.max(page));
                            truncated = cut;
                        }
                        // No TotalRecords: a short page is the last one.
                        None if rows < size => {
                            total = u64::from(page - 1) * u64::from(size) + u64::from(rows);
                            pages_total = Some(page);
                        }
                        None => pages_total = None,
                    }
                }
                let last = pages_total.is_some_and(|pt| page >= pt);
                let mut events = Vec::with_capacity(2);
                if page == 1 {
                    events.extend(ctx.compare_with_listing(key, year, total, listed, &resp.order_number));
                }
                let state = match (last, truncated) {
                    (false, _) => YearState::Partial,
                    (true, false) => YearState::Complete,
                    (true, true) => YearState::Truncated,
                };
                events.push(Event::Page {
                    query: Query::Year(year.to_string()),
                    page_index: page,
                    total_records: total,
                    pages_total: pages_total.unwrap_or(page + 1),
                    year_state: state,
                    rows: resp.clients,
                    raw,
                });
                if !ctx.commit_call(key, call, events).await {
                    return UnitEnd::Unfinished;
                }
                if last {
                    return UnitEnd::Done;
                }
                page += 1;
            }
            Fetched::Final { answer: answer @ (Final::NoResult | Final::Truncated), call, .. } => {
                // 201: the year has no (more) rows; 207: past the 5,000 ceiling.
                let state = if answer == Final::Truncated { YearState::Truncated } else { YearState::Complete };
                let mut events = Vec::with_capacity(2);
                if page == 1 && answer == Final::NoResult {
                    events.extend(ctx.compare_with_listing(key, year, 0, listed, &call.order_number));
                }
                events.push(Event::YearEnded {
                    query_year: year.to_string(),
                    state,
                    total_records: if page == 1 { 0 } else { total },
                    pages_total: page - 1,
                    pages_fetched: page - 1,
                });
                return ctx.commit_call(key, call, events).await.into();
            }
            Fetched::Final { answer: Final::Rejected, code, message, call } => {
                ctx.end_company(key, Some(call), CompanyState::Rejected, code, message).await;
                return UnitEnd::CompanyFinal;
            }
            Fetched::NotNow(why) => {
                settle(ctx, key, why).await;
                return UnitEnd::Unfinished;
            }
        }
    }
}
