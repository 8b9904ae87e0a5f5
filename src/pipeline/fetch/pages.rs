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
use super::handoff::{Closed, Handed};
use super::lanes::{Lane, Lanes};
use super::paging::{ListingPaging, NoMoreRows, UnitEnd, YearPaging};
use crate::pipeline::plan::listing;
use crate::pipeline::plan::YearTask;
use crate::qcc::wire::Response;
use crate::store::records::{CallRecord, CompanyState, Event, PageEvent, Query, RawPage, YearState};

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

    /// A 200 page whose unit no longer takes rows: keep its call and receipt.
    async fn keep_receipt(&self, query: &Query, page: u32, fetched: Fetched) -> Handed {
        let ctx = self.ctx;
        match fetched {
            Fetched::Page { response, body, call } => {
                let raw = ctx.receipt(body.as_deref(), &response.order_number, query, page);
                ctx.handoff.commit_call(self.key, call, raw.map(Event::Receipt).into_iter().collect()).await
            }
            Fetched::Final { call, .. } => ctx.handoff.commit_call(self.key, call, vec![]).await,
            Fetched::NotNow(why) => ctx.record_only(self.key, why).await,
        }
    }

    /// An answer that ends the company for this run. The unit's first is
    /// recorded and halts the company; a later one (or a deferral after
    /// another unit halted the company) only records its call. A rejection is
    /// recorded even after another unit halted the company: it is final, and
    /// says more than a deferral.
    async fn ending(&self, outcome: &mut Option<UnitEnd>, end: Ending) -> Handed {
        let first = outcome.is_none()
            && match &end {
                Ending::Rejected { .. } => true,
                Ending::NotNow(_) => !self.lanes.is_halted(),
            };
        if !first {
            // Only the call: the company already ended for this run.
            outcome.get_or_insert(UnitEnd::Unfinished);
            return match end {
                Ending::Rejected { call, .. } => self.ctx.handoff.commit_call(self.key, call, vec![]).await,
                Ending::NotNow(why) => self.ctx.record_only(self.key, why).await,
            };
        }
        self.lanes.halt();
        match end {
            Ending::Rejected { code, message, call } => {
                *outcome = Some(UnitEnd::CompanyFinal);
                let end = CompanyEnd { state: CompanyState::Rejected, code, message };
                self.ctx.end_company(self.key, Some(call), end, vec![]).await
            }
            Ending::NotNow(why) => {
                *outcome = Some(UnitEnd::Unfinished);
                self.ctx.settle(self.key, why).await
            }
        }
    }
}

/// What a unit makes of one answer: what to hand the writer with its call.
enum Verdict {
    /// These events; the unit goes on.
    Commit(Vec<Event>),
    /// These events, and the unit is complete: ask no more of its pages.
    Complete(Vec<Event>),
    /// Only the call: the answer says nothing the unit still needs.
    CallOnly,
    /// The listing contradicted itself (with the page that did, if it was
    /// one): record it and go on per year.
    Contradicted { problem: String, page: Option<Box<Event>> },
}

/// What a unit's rules say to the one paging driver ([`drive`]): a year
/// ([`YearUnit`]) or the all-years listing ([`ListingUnit`]).
trait Unit {
    fn query(&self) -> &Query;
    /// The pages to ask now: after the first ones, after every answer.
    fn next_pages(&mut self) -> Vec<u32>;
    /// A 200 for this page brings rows the unit no longer takes: only its
    /// receipt is kept.
    fn receipt_only(&self, page: u32, outcome: Option<UnitEnd>) -> bool;
    /// A 200 page arrived.
    fn page(&mut self, ctx: &Ctx, key: &str, page: u32, response: Response, raw: Option<RawPage>) -> Verdict;
    /// This page answered 201 or 207: no rows from it on.
    fn no_rows(
        &mut self,
        ctx: &Ctx,
        key: &str,
        page: u32,
        answer: Final,
        code: Option<String>,
        call: &CallRecord,
    ) -> Verdict;
    /// Every page is in.
    fn is_finished(&self) -> bool;
}

/// The one paging driver: ask `first`, then whatever the unit says after
/// each answer, side by side as the company's lanes allow, and hand each
/// answer to the writer as the unit's verdict says. One rule for a failed
/// hand-off: the writer takes no more, so the unit ends unfinished at once
/// (what was not handed over was not stored; a later run resumes).
async fn drive(pager: &Pager<'_>, unit: &mut impl Unit, first: Vec<u32>) -> UnitEnd {
    let (ctx, key) = (pager.ctx, pager.key);
    let year = match unit.query() {
        Query::Year(y) => Some(y.clone()),
        Query::Listing => None,
    };
    let unit_stop = AtomicBool::new(false);
    let ask = |p: u32| pager.ask(year.as_deref(), p, &unit_stop);
    let mut asked: FuturesUnordered<Asked<'_, '_>> = first.into_iter().map(ask).collect();
    let mut outcome: Option<UnitEnd> = None;
    while let Some((page, answer)) = asked.next().await {
        // The lane is held until the answer is handed to the writer.
        let Some((fetched, _lane)) = answer else { continue };
        let handed = match fetched {
            Fetched::Page { .. } if unit.receipt_only(page, outcome) => {
                pager.keep_receipt(unit.query(), page, fetched).await
            }
            Fetched::Page { response, body, call } => {
                let raw = ctx.receipt(body.as_deref(), &response.order_number, unit.query(), page);
                let verdict = unit.page(ctx, key, page, response, raw);
                pager.hand(call, verdict, &unit_stop, &mut outcome).await
            }
            // A unit that has an ending already only records the call.
            Fetched::Final { answer: Final::NoResult | Final::Truncated, call, .. } if outcome.is_some() => {
                pager.hand(call, Verdict::CallOnly, &unit_stop, &mut outcome).await
            }
            Fetched::Final { answer: answer @ (Final::NoResult | Final::Truncated), code, call, .. } => {
                let verdict = unit.no_rows(ctx, key, page, answer, code, &call);
                pager.hand(call, verdict, &unit_stop, &mut outcome).await
            }
            Fetched::Final { answer: Final::Rejected, code, message, call } => {
                pager.ending(&mut outcome, Ending::Rejected { code, message, call }).await
            }
            Fetched::NotNow(why) => pager.ending(&mut outcome, Ending::NotNow(why)).await,
        };
        if handed.is_err() {
            return UnitEnd::Unfinished;
        }
        asked.extend(unit.next_pages().into_iter().map(ask));
    }
    // Unfinished without an outcome: stopped before its pages were asked
    // (the company ended on another unit).
    UnitEnd::of(outcome, unit.is_finished())
}

impl Pager<'_> {
    /// Hand a call over with what its unit made of it.
    async fn hand(
        &self,
        call: CallRecord,
        verdict: Verdict,
        unit_stop: &AtomicBool,
        outcome: &mut Option<UnitEnd>,
    ) -> Handed {
        match verdict {
            Verdict::Commit(events) => self.ctx.handoff.commit_call(self.key, call, events).await,
            Verdict::CallOnly => self.ctx.handoff.commit_call(self.key, call, vec![]).await,
            Verdict::Complete(events) => {
                self.ctx.handoff.commit_call(self.key, call, events).await?;
                unit_stop.store(true, Ordering::SeqCst);
                Ok(())
            }
            Verdict::Contradicted { problem, page } => {
                unit_stop.store(true, Ordering::SeqCst);
                match self.ctx.listing_contradicted(self.key, Some(call), problem, page.map(|p| *p)).await {
                    UnitEnd::Unfinished => Err(Closed),
                    end => {
                        outcome.get_or_insert(end);
                        Ok(())
                    }
                }
            }
        }
    }
}

/// The listing's rules. Its pages are all asked at once (page 1 came with
/// discovery); what makes a page contradict the listing is
/// [`ListingPaging::page_arrived`]'s to say.
struct ListingUnit<'p> {
    paging: &'p mut ListingPaging,
    year_list: &'p [String],
    query: Query,
}

impl Unit for ListingUnit<'_> {
    fn query(&self) -> &Query {
        &self.query
    }

    fn next_pages(&mut self) -> Vec<u32> {
        Vec::new()
    }

    fn receipt_only(&self, _page: u32, outcome: Option<UnitEnd>) -> bool {
        outcome == Some(UnitEnd::Contradicted)
    }

    fn page(&mut self, _ctx: &Ctx, _key: &str, page: u32, response: Response, raw: Option<RawPage>) -> Verdict {
        let facts = listing::PageFacts::of(&response.clients, self.year_list);
        let n = response.clients.len() as u64;
        let checkpoint = self.paging.page_arrived(page, response.total_records, n, facts.stray.as_deref());
        let event = Event::Page(PageEvent {
            query: Query::Listing,
            page_index: page,
            total_records: self.paging.total(),
            pages_total: self.paging.pages(),
            year_state: checkpoint.state,
            stored: checkpoint.stored,
            unit_rows: checkpoint.unit_rows,
            rows: response.clients,
            raw,
        });
        match checkpoint.problem {
            Some(problem) => Verdict::Contradicted { problem, page: Some(Box::new(event)) },
            None => Verdict::Commit(vec![event]),
        }
    }

    fn no_rows(
        &mut self,
        _ctx: &Ctx,
        _key: &str,
        page: u32,
        _: Final,
        code: Option<String>,
        _: &CallRecord,
    ) -> Verdict {
        Verdict::Contradicted { problem: self.paging.no_rows(page, &code.unwrap_or_default()), page: None }
    }

    fn is_finished(&self) -> bool {
        self.paging.is_complete()
    }
}

/// Page the listing's missing pages. On a contradiction the company goes
/// back to per-year paging (what was stored stays until its years replace
/// it; pages still in flight then keep only their receipts).
pub async fn fetch_listing(pager: &Pager<'_>, paging: &mut ListingPaging, year_list: &[String]) -> UnitEnd {
    let missing = match paging.start() {
        Ok(missing) => missing,
        Err(problem) => return pager.ctx.listing_contradicted(pager.key, None, problem, None).await,
    };
    drive(pager, &mut ListingUnit { paging, year_list, query: Query::Listing }, missing).await
}

/// One year's rules: which pages and when it ends is [`YearPaging`]'s to
/// say. `listed`: how many of its rows a whole listing held in this cycle,
/// to compare with what the year's own query says.
struct YearUnit {
    year: String,
    query: Query,
    paging: YearPaging,
    listed: Option<u64>,
}

impl Unit for YearUnit {
    fn query(&self) -> &Query {
        &self.query
    }

    fn next_pages(&mut self) -> Vec<u32> {
        self.paging.next_pages()
    }

    fn receipt_only(&self, page: u32, _outcome: Option<UnitEnd>) -> bool {
        self.paging.is_past_end(page)
    }

    fn page(&mut self, ctx: &Ctx, key: &str, page: u32, response: Response, raw: Option<RawPage>) -> Verdict {
        let checkpoint = self.paging.page_arrived(page, response.total_records, response.clients.len() as u32);
        let mut events = Vec::with_capacity(2);
        if page == 1 {
            let total = checkpoint.total_records;
            events.extend(ctx.compare_with_listing(key, &self.year, total, self.listed, &response.order_number));
        }
        events.push(Event::Page(PageEvent {
            query: self.query.clone(),
            page_index: page,
            total_records: checkpoint.total_records,
            pages_total: checkpoint.pages_total,
            year_state: checkpoint.state,
            stored: checkpoint.stored,
            unit_rows: 0,
            rows: response.clients,
            raw,
        }));
        Verdict::Commit(events)
    }

    /// 201: the year has no (more) rows; 207: past the 5,000 ceiling. Late,
    /// or with lower pages still in flight (the last of them completes the
    /// year), only the call is recorded.
    fn no_rows(
        &mut self,
        ctx: &Ctx,
        key: &str,
        page: u32,
        answer: Final,
        _: Option<String>,
        call: &CallRecord,
    ) -> Verdict {
        let how = if answer == Final::Truncated { YearState::Truncated } else { YearState::Complete };
        let NoMoreRows::Ended { state, total_records, pages } = self.paging.no_more_rows(page, how) else {
            return Verdict::CallOnly;
        };
        let mut events = Vec::with_capacity(2);
        if page == 1 && answer == Final::NoResult {
            events.extend(ctx.compare_with_listing(key, &self.year, 0, self.listed, &call.order_number));
        }
        events.push(year_ended(&self.year, state, total_records, pages));
        Verdict::Complete(events)
    }

    fn is_finished(&self) -> bool {
        self.paging.is_finished()
    }
}

/// A year's end: `pages` pages, all stored.
fn year_ended(year: &str, state: YearState, total_records: u64, pages: u32) -> Event {
    Event::YearEnded { query_year: year.to_string(), state, total_records, pages_total: pages, pages_fetched: pages }
}

/// Page through one year: page 1 first (its TotalRecords says how many
/// pages there are), then the pages still missing side by side.
pub async fn fetch_year(pager: &Pager<'_>, task: YearTask, listed: Option<u64>) -> UnitEnd {
    let mut paging = YearPaging::new(&task, pager.ctx.plan.page_size);
    if let Some((state, total_records, pages)) = paging.already_stored() {
        // Every page was stored before (the checkpoint only lagged).
        let event = year_ended(&task.year, state, total_records, pages);
        return match pager.ctx.handoff.commit_events(pager.key, vec![event]).await {
            Ok(()) => UnitEnd::Done,
            Err(Closed) => UnitEnd::Unfinished,
        };
    }
    let first = paging.next_pages();
    let mut unit = YearUnit { query: Query::Year(task.year.clone()), year: task.year, paging, listed };
    drive(pager, &mut unit, first).await
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
