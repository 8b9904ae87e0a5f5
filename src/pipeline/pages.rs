//! Paging one unit of a company's cycle: the all-years listing (checked page
//! by page against what it claims) or one year (until its TotalRecords, a
//! 201, or the 5,000-entry ceiling). Each answered page goes to the writer
//! with its rows, checkpoint and call record as one commit.

use super::call::{Fetched, Final, NotNow};
use super::listing;
use super::plan::{self, YearTask};
use super::worker::{settle, Ctx, Cycle};
use crate::store::records::{CallRecord, Commit, CompanyState, Event, Query, YearState};

/// Page the listing from `cycle.listing_next` to its end. Every page must be
/// full but the last, every row's year must be in `YearList`, and the pages
/// must add up to `TotalRecords`; anything else is a contradiction, and the
/// company goes back to per-year paging (what was stored stays until its
/// years replace it).
pub(super) async fn fetch_listing(ctx: &Ctx, key: &str, cycle: &mut Cycle) -> UnitEnd {
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
                return rejected(ctx, key, code, message, call).await;
            }
            Fetched::NotNow(why) => return not_now(ctx, key, why).await,
        }
    }
}

/// How paging through a unit (the listing, or one year) ended.
pub(super) enum UnitEnd {
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
pub(super) async fn fetch_year(ctx: &Ctx, key: &str, task: YearTask, listed: Option<u64>) -> UnitEnd {
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
                return rejected(ctx, key, code, message, call).await;
            }
            Fetched::NotNow(why) => return not_now(ctx, key, why).await,
        }
    }
}

/// The query was rejected (202, …): the company is final, never asked again.
async fn rejected(ctx: &Ctx, key: &str, code: Option<String>, message: Option<String>, call: CallRecord) -> UnitEnd {
    ctx.end_company(key, Some(call), CompanyState::Rejected, code, message).await;
    UnitEnd::CompanyFinal
}

/// Deferred, parked or stopping: the company waits for a later run.
async fn not_now(ctx: &Ctx, key: &str, why: NotNow) -> UnitEnd {
    settle(ctx, key, why).await;
    UnitEnd::Unfinished
}
