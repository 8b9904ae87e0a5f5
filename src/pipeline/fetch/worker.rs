//! Stage 3: a company's fetch cycle. The dispatcher runs one of these per
//! company: discovery, then the plan its answer decides — nothing more, the
//! all-years listing's pages, or each year's pages — taking every call
//! through the context's [`Caller`](super::call::Caller) and handing every
//! answer to the writer as one commit.
//!
//! A worker never touches SQLite; what it learns travels to the writer over a
//! bounded channel, so a slow disk slows the workers instead of losing rows.

use std::collections::BTreeMap;

use super::call::{Fetched, Final};
use super::context::{CompanyEnd, Ctx};
use super::lanes::Lanes;
use super::pages::{fetch_listing, fetch_years, Pager};
use super::paging::{ListingPaging, UnitEnd};
use crate::pipeline::plan::listing;
use crate::pipeline::plan::{self, Job, YearTask};
use crate::qcc::wire::Response;
use crate::store::records::{CallRecord, CompanyState, Event, FetchPlan, PageEvent, Query, StoredPages, YearState};
use bytes::Bytes;

/// How a company's task ended in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanyOutcome {
    /// It reached a final state (done, rejected, no result).
    Final,
    /// Deferred, parked or stopped: a later run (or the parking) takes it up.
    Unfinished,
}

/// One company's fetch cycle as the worker goes through it.
struct Cycle {
    year_list: Vec<String>,
    discovered_at: String,
    plan: FetchPlan,
    /// The listing's paging (used when the plan pages the listing).
    listing: ListingPaging,
    /// Rows per report year of a whole listing seen in this run: what each
    /// year's own answer is compared with.
    whole_listing: Option<BTreeMap<String, u64>>,
    /// The years to page, when discovery already worked them out.
    years: Option<Vec<YearTask>>,
}

impl Cycle {
    /// A cycle whose discovery an earlier run made, from its checkpoints.
    fn resume(job: &Job, page_size: u32) -> Cycle {
        let listing = job.listing.as_ref().filter(|l| !l.complete);
        let stored = listing.map_or(StoredPages { prefix: 1, ..StoredPages::default() }, |l| l.stored.clone());
        Cycle {
            year_list: job.year_list.clone(),
            discovered_at: job.discovered_at.clone().unwrap_or_default(),
            plan: plan::resumed_plan(job),
            listing: ListingPaging::new(
                page_size,
                listing.map_or(1, |l| l.pages_total),
                job.total_records,
                stored,
                listing.map_or(0, |l| l.rows_fetched),
            ),
            whole_listing: None,
            years: None,
        }
    }
}

/// Fetch one company.
pub async fn run_company(ctx: &Ctx, job: Job) -> CompanyOutcome {
    let key = job.search_key.as_str();
    let mut cycle = if job.discovery {
        match discover(ctx, &job).await {
            Ok(cycle) => cycle,
            Err(ended) => return ended,
        }
    } else {
        Cycle::resume(&job, ctx.plan.page_size)
    };
    let pager = Pager { ctx, key, lanes: Lanes::new(&ctx.occupancy) };
    if cycle.plan == FetchPlan::Listing {
        match fetch_listing(&pager, &mut cycle.listing, &cycle.year_list).await {
            UnitEnd::Done => {}
            // Contradicted: the rest of the cycle is paged per year.
            UnitEnd::Contradicted => cycle.plan = FetchPlan::Years,
            UnitEnd::CompanyFinal => return CompanyOutcome::Final,
            UnitEnd::Unfinished => return CompanyOutcome::Unfinished,
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
            UnitEnd::CompanyFinal => return CompanyOutcome::Final,
            UnitEnd::Unfinished => return CompanyOutcome::Unfinished,
        }
    }
    match ctx.end_company(key, None, CompanyEnd::done(), vec![]).await {
        Ok(()) => CompanyOutcome::Final,
        Err(_) => CompanyOutcome::Unfinished,
    }
}

/// Discovery's call: page 1 without `year`, or how the company ends there.
async fn discovery_page(ctx: &Ctx, key: &str) -> Result<(Response, Option<Bytes>, CallRecord), CompanyOutcome> {
    match ctx.caller.fetch(key, None, 1).await {
        Fetched::Page { response, body, call } => Ok((response, body, call)),
        Fetched::Final { answer, code, message, call } => {
            let state = match answer {
                Final::NoResult => CompanyState::NoResult,
                Final::Rejected => CompanyState::Rejected,
                // 207 on a first page cannot happen; never loop on it.
                Final::Truncated => CompanyState::Deferred,
            };
            let handed = ctx.end_company(key, Some(call), CompanyEnd { state, code, message }, vec![]).await;
            Err(match handed {
                Ok(()) if state != CompanyState::Deferred => CompanyOutcome::Final,
                _ => CompanyOutcome::Unfinished,
            })
        }
        Fetched::NotNow(why) => {
            // Unfinished whether or not the writer took it: the company
            // resumes in a later run from its last checkpoint.
            let _ = ctx.settle(key, why).await;
            Err(CompanyOutcome::Unfinished)
        }
    }
}

/// Discovery: page 1 without `year`. Its answer decides the rest of the
/// cycle (see [`listing::decide`]); its rows are stored when they are the
/// company's only copy. `Err` when the company ends here.
async fn discover(ctx: &Ctx, job: &Job) -> Result<Cycle, CompanyOutcome> {
    let key = job.search_key.as_str();
    let (resp, body, call) = discovery_page(ctx, key).await?;
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
        events.push(Event::Page(PageEvent {
            query: Query::Listing,
            page_index: 1,
            total_records: resp.total_records.unwrap_or(resp.clients.len() as u64),
            pages_total: pages,
            year_state: if complete { YearState::Complete } else { YearState::Partial },
            stored: StoredPages { prefix: 1, ..StoredPages::default() },
            unit_rows: resp.clients.len() as u64,
            rows: resp.clients,
            raw: None,
        }));
    }
    if decision.plan == FetchPlan::Nothing {
        // The discovery answer was the whole company.
        return Err(match ctx.end_company(key, Some(call), CompanyEnd::done(), events).await {
            Ok(()) => CompanyOutcome::Final,
            Err(_) => CompanyOutcome::Unfinished,
        });
    }
    if ctx.handoff.commit_call(key, call, events).await.is_err() {
        return Err(CompanyOutcome::Unfinished);
    }
    let listing_rows = facts.counts.values().sum();
    Ok(Cycle {
        listing: ListingPaging::new(
            size,
            pages,
            resp.total_records,
            StoredPages { prefix: 1, ..StoredPages::default() },
            listing_rows,
        ),
        year_list: resp.year_list,
        discovered_at,
        plan: decision.plan,
        whole_listing: whole.then_some(facts.counts),
        years: Some(tasks),
    })
}

#[cfg(test)]
mod tests;
