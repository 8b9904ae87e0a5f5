//! Paging the units of a company's cycle: the all-years listing (checked
//! page by page against what it claims) or its years (each until its
//! TotalRecords, a 201, or the 5,000-entry ceiling).
//!
//! A unit's pages are known once its page 1 has answered (from
//! TotalRecords), and the pages a unit still needs are asked side by side,
//! as many at once as the company's [`Lanes`] allow: one while every worker
//! slot has a company (the steady state), more when fewer companies are left
//! than slots (the end of a run), so the run's last minutes still use the
//! rate. Answers may come back in any order; what each means for its unit is
//! the [`paging`](super::paging) state's to say, and each is handed to the
//! writer with its rows, its call record and the unit's checkpoint as one
//! commit, in the order this unit's loop sees them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::call::{Fetched, Final, NotNow};
use super::context::{CompanyEnd, Ctx};
use super::lanes::{Lane, Lanes};
use super::paging::{ListingPaging, NoMoreRows, UnitEnd, YearPaging};
use crate::pipeline::plan::listing;
use crate::pipeline::plan::YearTask;
use crate::store::records::{CallRecord, CompanyState, Event, PageEvent, Query, YearState};

/// A page's number and its answer with the lane it holds until its commit
/// (`None`: not asked, the unit or company stopped first).
type Asked<'f, 'a> = Pin<Box<dyn Future<Output = (u32, Option<(Fetched, Lane<'f, 'a>)>)> + Send + 'f>>;

/// Paging one company: its key, its lanes, and the shared context.
pub struct Pager<'a> {
    pub ctx: &'a Ctx,
    pub key: &'a str,
    pub lanes: Lanes<'a>,
}

/// An answer that ends the company for this run.
enum Ending {
    Rejected { code: Option<String>, message: Option<String>, call: CallRecord },
    NotNow(NotNow),
}

impl<'a> Pager<'a> {
    /// Ask for one page once a lane is free.
    fn ask<'f>(&'f self, year: Option<&'f str>, page: u32, unit_stop: &'f AtomicBool) -> Asked<'f, 'a> {
        Box::pin(async move {
            let Some(lane) = self.lanes.take(unit_stop).await else { return (page, None) };
            (page, Some((self.ctx.caller.fetch(self.key, year, page).await, lane)))
        })
    }

    /// Commit a call's record with the events it caused.
    async fn commit_call(&self, call: CallRecord, events: Vec<Event>) -> Result<(), UnitEnd> {
        self.ctx.handoff.commit_call(self.key, call, events).await.map_err(|_| UnitEnd::Unfinished)
    }

    /// A 200 page whose unit no longer takes rows: keep its call and receipt.
    async fn keep_receipt(&self, query: &Query, page: u32, fetched: Fetched) -> Result<(), UnitEnd> {
        let ctx = self.ctx;
        match fetched {
            Fetched::Page { response, body, call } => {
                let raw = ctx.receipt(body.as_deref(), &response.order_number, query, page);
                self.commit_call(call, raw.map(Event::Receipt).into_iter().collect()).await
            }
            Fetched::Final { call, .. } => self.commit_call(call, vec![]).await,
            Fetched::NotNow(why) => ctx.record_only(self.key, why).await.map_err(|_| UnitEnd::Unfinished),
        }
    }

    /// An answer that ends the company for this run. The unit's first is
    /// recorded and halts the company; a later one (or a deferral after
    /// another unit halted the company) only records its call. A rejection is
    /// recorded even after another unit halted the company: it is final, and
    /// says more than a deferral.
    async fn ending(&self, outcome: &mut Option<UnitEnd>, end: Ending) {
        let first = outcome.is_none()
            && match &end {
                Ending::Rejected { .. } => true,
                Ending::NotNow(_) => !self.lanes.is_halted(),
            };
        if first {
            self.lanes.halt();
            *outcome = Some(match end {
                Ending::Rejected { code, message, call } => {
                    let end = CompanyEnd { state: CompanyState::Rejected, code, message };
                    let _ = self.ctx.end_company(self.key, Some(call), end, vec![]).await;
                    UnitEnd::CompanyFinal
                }
                Ending::NotNow(why) => {
                    let _ = self.ctx.settle(self.key, why).await;
                    UnitEnd::Unfinished
                }
            });
            return;
        }
        // Only the call: the company already ended for this run. If the
        // writer is gone the company is unfinished anyway.
        let _ = match end {
            Ending::Rejected { call, .. } => self.ctx.handoff.commit_call(self.key, call, vec![]).await,
            Ending::NotNow(why) => self.ctx.record_only(self.key, why).await,
        };
        outcome.get_or_insert(UnitEnd::Unfinished);
    }
}

/// Page the listing's missing pages (page 1 came with discovery). What makes
/// a page contradict the listing is [`ListingPaging::page_arrived`]'s to
/// say; on a contradiction the company goes back to per-year paging (what
/// was stored stays until its years replace it; pages still in flight then
/// keep only their receipts).
pub async fn fetch_listing(pager: &Pager<'_>, paging: &mut ListingPaging, year_list: &[String]) -> UnitEnd {
    let (ctx, key) = (pager.ctx, pager.key);
    let missing = match paging.start() {
        Ok(missing) => missing,
        Err(problem) => return ctx.listing_contradicted(key, None, problem, None).await,
    };
    let (total, pages) = (paging.total(), paging.pages());
    let unit_stop = AtomicBool::new(false);
    let mut asked: FuturesUnordered<Asked<'_, '_>> =
        missing.into_iter().map(|p| pager.ask(None, p, &unit_stop)).collect();
    let mut outcome: Option<UnitEnd> = None;
    while let Some((page, answer)) = asked.next().await {
        // The lane is held until the answer is handed to the writer.
        let Some((fetched, _lane)) = answer else { continue };
        if outcome == Some(UnitEnd::Contradicted) {
            if let Err(end) = pager.keep_receipt(&Query::Listing, page, fetched).await {
                return end;
            }
            continue;
        }
        match fetched {
            Fetched::Page { response: resp, body, call } => {
                let raw = ctx.receipt(body.as_deref(), &resp.order_number, &Query::Listing, page);
                let facts = listing::PageFacts::of(&resp.clients, year_list);
                let n = resp.clients.len() as u64;
                let checkpoint = paging.page_arrived(page, resp.total_records, n, facts.stray.as_deref());
                let event = Event::Page(PageEvent {
                    query: Query::Listing,
                    page_index: page,
                    total_records: total,
                    pages_total: pages,
                    year_state: checkpoint.state,
                    stored: checkpoint.stored,
                    unit_rows: checkpoint.unit_rows,
                    rows: resp.clients,
                    raw,
                });
                if let Some(problem) = checkpoint.problem {
                    unit_stop.store(true, Ordering::SeqCst);
                    let end = ctx.listing_contradicted(key, Some(call), problem, Some(event)).await;
                    if end == UnitEnd::Unfinished {
                        return end;
                    }
                    outcome.get_or_insert(end);
                    continue;
                }
                if let Err(end) = pager.commit_call(call, vec![event]).await {
                    return end;
                }
            }
            Fetched::Final { answer: Final::NoResult | Final::Truncated, code, call, .. } => {
                if outcome.is_some() {
                    let _ = ctx.handoff.commit_call(key, call, vec![]).await;
                    continue;
                }
                unit_stop.store(true, Ordering::SeqCst);
                let problem = paging.no_rows(page, &code.unwrap_or_default());
                let end = ctx.listing_contradicted(key, Some(call), problem, None).await;
                if end == UnitEnd::Unfinished {
                    return end;
                }
                outcome = Some(end);
            }
            Fetched::Final { answer: Final::Rejected, code, message, call } => {
                pager.ending(&mut outcome, Ending::Rejected { code, message, call }).await;
            }
            Fetched::NotNow(why) => pager.ending(&mut outcome, Ending::NotNow(why)).await,
        }
    }
    UnitEnd::of(outcome, paging.is_complete())
}

/// Page through one year: page 1 first (its TotalRecords says how many
/// pages there are), then the pages still missing side by side; which pages
/// and when the year ends is [`YearPaging`]'s to say. `listed`: how many of
/// its rows a whole listing held in this cycle, to compare with what the
/// year's own query says.
pub async fn fetch_year(pager: &Pager<'_>, task: YearTask, listed: Option<u64>) -> UnitEnd {
    let (ctx, key) = (pager.ctx, pager.key);
    let year = task.year.as_str();
    let query = Query::Year(year.to_string());
    let mut paging = YearPaging::new(&task, ctx.plan.page_size);
    if let Some((state, total_records, pages)) = paging.already_stored() {
        // Every page was stored before (the checkpoint only lagged).
        let event = Event::YearEnded {
            query_year: year.to_string(),
            state,
            total_records,
            pages_total: pages,
            pages_fetched: pages,
        };
        return match ctx.handoff.commit_events(key, vec![event]).await {
            Ok(()) => UnitEnd::Done,
            Err(_) => UnitEnd::Unfinished,
        };
    }
    let unit_stop = AtomicBool::new(false);
    let mut in_flight: FuturesUnordered<Asked<'_, '_>> =
        paging.next_pages().into_iter().map(|p| pager.ask(Some(year), p, &unit_stop)).collect();
    let mut outcome: Option<UnitEnd> = None;
    while let Some((page, answer)) = in_flight.next().await {
        // The lane is held until the answer is handed to the writer.
        let Some((fetched, _lane)) = answer else { continue };
        if paging.is_past_end(page) && matches!(fetched, Fetched::Page { .. }) {
            if let Err(end) = pager.keep_receipt(&query, page, fetched).await {
                return end;
            }
            continue;
        }
        match fetched {
            Fetched::Page { response: resp, body, call } => {
                let raw = ctx.receipt(body.as_deref(), &resp.order_number, &query, page);
                let checkpoint = paging.page_arrived(page, resp.total_records, resp.clients.len() as u32);
                let mut events = Vec::with_capacity(2);
                if page == 1 {
                    let total = checkpoint.total_records;
                    events.extend(ctx.compare_with_listing(key, year, total, listed, &resp.order_number));
                }
                events.push(Event::Page(PageEvent {
                    query: query.clone(),
                    page_index: page,
                    total_records: checkpoint.total_records,
                    pages_total: checkpoint.pages_total,
                    year_state: checkpoint.state,
                    stored: checkpoint.stored,
                    unit_rows: 0,
                    rows: resp.clients,
                    raw,
                }));
                if let Err(end) = pager.commit_call(call, events).await {
                    return end;
                }
                in_flight.extend(paging.next_pages().into_iter().map(|p| pager.ask(Some(year), p, &unit_stop)));
            }
            Fetched::Final { answer: answer @ (Final::NoResult | Final::Truncated), call, .. } => {
                // 201: the year has no (more) rows; 207: past the 5,000 ceiling.
                let how = if answer == Final::Truncated { YearState::Truncated } else { YearState::Complete };
                if outcome.is_some() {
                    let _ = ctx.handoff.commit_call(key, call, vec![]).await;
                    continue;
                }
                let (state, total_records, pages) = match paging.no_more_rows(page, how) {
                    NoMoreRows::Ended { state, total_records, pages } => (state, total_records, pages),
                    NoMoreRows::Late => {
                        let _ = ctx.handoff.commit_call(key, call, vec![]).await;
                        continue;
                    }
                    // Lower pages are still in flight: the last of them completes the year.
                    NoMoreRows::Waiting => {
                        if let Err(end) = pager.commit_call(call, vec![]).await {
                            return end;
                        }
                        continue;
                    }
                };
                let mut events = Vec::with_capacity(2);
                if page == 1 && answer == Final::NoResult {
                    events.extend(ctx.compare_with_listing(key, year, 0, listed, &call.order_number));
                }
                events.push(Event::YearEnded {
                    query_year: year.to_string(),
                    state,
                    total_records,
                    pages_total: pages,
                    pages_fetched: pages,
                });
                if let Err(end) = pager.commit_call(call, events).await {
                    return end;
                }
                unit_stop.store(true, Ordering::SeqCst);
            }
            Fetched::Final { answer: Final::Rejected, code, message, call } => {
                pager.ending(&mut outcome, Ending::Rejected { code, message, call }).await;
            }
            Fetched::NotNow(why) => pager.ending(&mut outcome, Ending::NotNow(why)).await,
        }
    }
    // Unfinished without an outcome: stopped before its pages were asked
    // (the company ended on another unit).
    UnitEnd::of(outcome, paging.is_finished())
}

/// Page the years of a cycle side by side; the company's outcome is the
/// worst of theirs.
pub async fn fetch_years(pager: &Pager<'_>, tasks: Vec<(YearTask, Option<u64>)>) -> UnitEnd {
    let mut units: FuturesUnordered<_> =
        tasks.into_iter().map(|(task, listed)| fetch_year(pager, task, listed)).collect();
    let mut result = UnitEnd::Done;
    while let Some(end) = units.next().await {
        result = result.worst(end);
    }
    result
}
