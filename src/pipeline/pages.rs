//! Paging the units of a company's cycle: the all-years listing (checked
//! page by page against what it claims) or its years (each until its
//! TotalRecords, a 201, or the 5,000-entry ceiling).
//!
//! A unit's pages are known once its page 1 has answered (from
//! TotalRecords), and the pages a unit still needs are asked side by side,
//! as many at once as the company's [`Lanes`] allow: one while every worker
//! slot has a company (the steady state), more when fewer companies are left
//! than slots (the end of a run), so the run's last minutes still use the
//! rate. Answers may come back in any order; each is handed to the writer
//! with its rows, its call record and the unit's checkpoint (which pages are
//! stored) as one commit, in the order this unit's loop sees them.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;

use super::call::{Fetched, Final, NotNow};
use super::listing;
use super::plan::{self, YearTask};
use super::worker::{settle, Ctx, Cycle};
use crate::store::records::{CallRecord, Commit, CompanyState, Event, Query, YearState};

/// How many companies are in flight against the pool's slots. A company may
/// have `slots / running` pages outstanding (asked, or answered and not yet
/// handed to the writer): one each while every slot has a company, more as
/// companies run out. Together they never pass `slots`, so what a `kill -9`
/// can cost stays `slots` pages plus the commit window, as with one page per
/// company.
pub struct Occupancy {
    slots: usize,
    running: AtomicUsize,
    /// Wakes companies waiting for a lane when one ends (their share grows).
    changed: Notify,
}

/// A company's place in the [`Occupancy`]; leaves it when dropped.
pub struct Occupied<'a>(&'a Occupancy);

impl Occupancy {
    pub fn new(slots: usize) -> Self {
        Occupancy { slots: slots.max(1), running: AtomicUsize::new(0), changed: Notify::new() }
    }

    pub fn enter(&self) -> Occupied<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        Occupied(self)
    }

    /// Pages one company may have in flight now.
    pub fn width(&self) -> usize {
        (self.slots / self.running.load(Ordering::SeqCst).max(1)).max(1)
    }
}

impl Drop for Occupied<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// One company's pages in flight, within its share of the pool.
pub(super) struct Lanes<'a> {
    occupancy: &'a Occupancy,
    used: AtomicUsize,
    freed: Notify,
    /// Set when the company ends in this run (deferred, parked, stopped,
    /// rejected): no further page is asked.
    halted: AtomicBool,
}

/// A page asked and not yet handed to the writer; frees its lane when dropped.
struct Lane<'l, 'a>(&'l Lanes<'a>);

impl Drop for Lane<'_, '_> {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::SeqCst);
        self.0.freed.notify_waiters();
    }
}

impl<'a> Lanes<'a> {
    pub(super) fn new(occupancy: &'a Occupancy) -> Self {
        Lanes { occupancy, used: AtomicUsize::new(0), freed: Notify::new(), halted: AtomicBool::new(false) }
    }

    /// No further page for this company in this run.
    pub(super) fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        self.freed.notify_waiters();
    }

    fn is_halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// Wait for a lane; `None` once the company is halted (or `unit_stop` is
    /// set: its unit needs no more pages).
    async fn take(&self, unit_stop: &AtomicBool) -> Option<Lane<'_, 'a>> {
        loop {
            let mut freed = pin!(self.freed.notified());
            let mut changed = pin!(self.occupancy.changed.notified());
            freed.as_mut().enable();
            changed.as_mut().enable();
            if self.is_halted() || unit_stop.load(Ordering::SeqCst) {
                return None;
            }
            let used = self.used.load(Ordering::SeqCst);
            if used < self.occupancy.width() {
                if self.used.compare_exchange(used, used + 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    return Some(Lane(self));
                }
                continue;
            }
            // The fallback only guards against a missed wake-up.
            tokio::select! {
                _ = freed => {}
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// A page's number and its answer with the lane it holds until its commit
/// (`None`: not asked, the unit or company stopped first).
type Asked<'f, 'a> = Pin<Box<dyn Future<Output = (u32, Option<(Fetched, Lane<'f, 'a>)>)> + Send + 'f>>;

/// Paging one company: its key, its lanes, and the shared context.
pub(super) struct Pager<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) key: &'a str,
    pub(super) lanes: Lanes<'a>,
}

impl<'a> Pager<'a> {
    /// Ask for one page once a lane is free.
    fn ask<'f>(&'f self, year: Option<&'f str>, page: u32, unit_stop: &'f AtomicBool) -> Asked<'f, 'a> {
        Box::pin(async move {
            let Some(lane) = self.lanes.take(unit_stop).await else { return (page, None) };
            (page, Some((self.ctx.fetch(self.key, year, page).await, lane)))
        })
    }

    /// A 200 page whose unit no longer takes rows: keep its call and receipt.
    async fn keep_receipt(&self, query: &Query, page: u32, fetched: Fetched) -> bool {
        let ctx = self.ctx;
        match fetched {
            Fetched::Page { response, body, call } => {
                let raw = ctx.receipt(body.as_deref(), &response.order_number, query, page);
                ctx.commit_call(self.key, call, raw.map(Event::Receipt).into_iter().collect()).await
            }
            Fetched::Final { call, .. } => ctx.commit_call(self.key, call, vec![]).await,
            Fetched::NotNow(why) => self.late_not_now(why).await,
        }
    }

    /// A second reason to stop, after the company already ended for this
    /// run: only its call is recorded.
    async fn late_not_now(&self, why: NotNow) -> bool {
        match why {
            NotNow::Deferred { call, .. } | NotNow::Parked { call, .. } | NotNow::Stopped { call: Some(call) } => {
                self.ctx.commit_call(self.key, call, vec![]).await
            }
            NotNow::Stopped { call: None } => true,
        }
    }

    /// An answer that ends the company for this run. The unit's first is
    /// recorded and halts the company; a later one (or a deferral after
    /// another unit halted the company) only records its call. A rejection is
    /// recorded even after another unit halted the company: it is final, and
    /// says more than a deferral.
    async fn ending(&self, outcome: &mut Option<UnitEnd>, end: CompanyEnd) {
        let first = outcome.is_none()
            && match &end {
                CompanyEnd::Rejected { .. } => true,
                CompanyEnd::NotNow(_) => !self.lanes.is_halted(),
            };
        if first {
            *outcome = Some(self.company_ends(end).await);
            return;
        }
        match end {
            CompanyEnd::Rejected { call, .. } => {
                self.ctx.commit_call(self.key, call, vec![]).await;
            }
            CompanyEnd::NotNow(why) => {
                self.late_not_now(why).await;
            }
        }
        outcome.get_or_insert(UnitEnd::Unfinished);
    }

    /// The company ends for this run on this answer: record it, ask nothing more.
    async fn company_ends(&self, answer: CompanyEnd) -> UnitEnd {
        self.lanes.halt();
        match answer {
            CompanyEnd::Rejected { code, message, call } => {
                self.ctx.end_company(self.key, Some(call), CompanyState::Rejected, code, message).await;
                UnitEnd::CompanyFinal
            }
            CompanyEnd::NotNow(why) => {
                settle(self.ctx, self.key, why).await;
                UnitEnd::Unfinished
            }
        }
    }
}

enum CompanyEnd {
    Rejected { code: Option<String>, message: Option<String>, call: CallRecord },
    NotNow(NotNow),
}

/// How paging through a unit (the listing, or one year) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Page the listing's missing pages (page 1 came with discovery). Every
/// page must be full but the last, every row's year must be in `YearList`,
/// and the pages must add up to `TotalRecords`; anything else is a
/// contradiction, and the company goes back to per-year paging (what was
/// stored stays until its years replace it; pages still in flight then keep
/// only their receipts).
pub(super) async fn fetch_listing(pager: &Pager<'_>, cycle: &mut Cycle) -> UnitEnd {
    let (ctx, key) = (pager.ctx, pager.key);
    let size = ctx.plan.page_size;
    let pages = cycle.listing_pages;
    let Some(total) = cycle.total else {
        return ctx.listing_contradicted(key, None, "the listing has no TotalRecords".into(), None).await;
    };
    if cycle.listing_stored.covers(pages) {
        let problem =
            format!("the listing's {pages} pages held {} rows, TotalRecords says {total}", cycle.listing_rows);
        return ctx.listing_contradicted(key, None, problem, None).await;
    }
    let unit_stop = AtomicBool::new(false);
    let mut asked: FuturesUnordered<Asked<'_, '_>> =
        cycle.listing_stored.missing(pages).map(|p| pager.ask(None, p, &unit_stop)).collect();
    let mut outcome: Option<UnitEnd> = None;
    while let Some((page, answer)) = asked.next().await {
        // The lane is held until the answer is handed to the writer.
        let Some((fetched, _lane)) = answer else { continue };
        if outcome == Some(UnitEnd::Contradicted) {
            if !pager.keep_receipt(&Query::Listing, page, fetched).await {
                return UnitEnd::Unfinished;
            }
            continue;
        }
        match fetched {
            Fetched::Page { response: resp, body, call } => {
                let raw = ctx.receipt(body.as_deref(), &resp.order_number, &Query::Listing, page);
                let n = resp.clients.len() as u64;
                let facts = listing::PageFacts::of(&resp.clients, &cycle.year_list);
                cycle.listing_stored.insert(page);
                cycle.listing_rows += n;
                let stored = cycle.listing_rows;
                let complete = cycle.listing_stored.covers(pages);
                let problem = if let Some(y) = &facts.stray {
                    Some(format!("listing page {page} holds a row of year {y:?}, which is not in YearList"))
                } else if resp.total_records.is_some_and(|t| t != total) {
                    Some(format!(
                        "TotalRecords went from {total} to {} between listing pages",
                        resp.total_records.unwrap_or(0)
                    ))
                } else if page != pages && n != u64::from(size) {
                    Some(format!("listing page {page} of {pages} held {n} rows, not {size}"))
                } else if complete && stored != total {
                    Some(format!("the listing's {pages} pages held {stored} rows, TotalRecords says {total}"))
                } else {
                    None
                };
                let event = Event::Page {
                    query: Query::Listing,
                    page_index: page,
                    total_records: total,
                    pages_total: pages,
                    year_state: if complete && problem.is_none() { YearState::Complete } else { YearState::Partial },
                    stored: cycle.listing_stored.clone(),
                    unit_rows: stored,
                    rows: resp.clients,
                    raw,
                };
                if let Some(problem) = problem {
                    unit_stop.store(true, Ordering::SeqCst);
                    let end = ctx.listing_contradicted(key, Some(call), problem, Some(event)).await;
                    if end == UnitEnd::Unfinished {
                        return end;
                    }
                    outcome.get_or_insert(end);
                    continue;
                }
                if !ctx.commit_call(key, call, vec![event]).await {
                    return UnitEnd::Unfinished;
                }
            }
            Fetched::Final { answer: Final::NoResult | Final::Truncated, code, call, .. } => {
                if outcome.is_some() {
                    ctx.commit_call(key, call, vec![]).await;
                    continue;
                }
                unit_stop.store(true, Ordering::SeqCst);
                let problem = format!("listing page {page} of {pages} answered {}", code.unwrap_or_default());
                let end = ctx.listing_contradicted(key, Some(call), problem, None).await;
                if end == UnitEnd::Unfinished {
                    return end;
                }
                outcome = Some(end);
            }
            Fetched::Final { answer: Final::Rejected, code, message, call } => {
                pager.ending(&mut outcome, CompanyEnd::Rejected { code, message, call }).await;
            }
            Fetched::NotNow(why) => pager.ending(&mut outcome, CompanyEnd::NotNow(why)).await,
        }
    }
    match outcome {
        Some(end) => end,
        None if cycle.listing_stored.covers(pages) => UnitEnd::Done,
        None => UnitEnd::Unfinished,
    }
}

/// Page through one year: page 1 first (its TotalRecords says how many
/// pages there are), then the pages still missing side by side. `listed`:
/// how many of its rows a whole listing held in this cycle, to compare with
/// what the year's own query says.
pub(super) async fn fetch_year(pager: &Pager<'_>, task: YearTask, listed: Option<u64>) -> UnitEnd {
    let (ctx, key) = (pager.ctx, pager.key);
    let size = ctx.plan.page_size;
    let year = task.year.as_str();
    let query = Query::Year(year.to_string());
    let mut stored = task.stored;
    let mut pages_total = task.pages_total;
    let mut total = task.total_records.unwrap_or(0);
    let mut truncated = task.total_records.is_some_and(|t| plan::pages_for(t, size).1);
    if let Some(pt) = pages_total.filter(|&pt| stored.covers(pt)) {
        // Every page was stored before (the checkpoint only lagged).
        let state = if truncated { YearState::Truncated } else { YearState::Complete };
        let event = Event::YearEnded {
            query_year: year.to_string(),
            state,
            total_records: total,
            pages_total: pt,
            pages_fetched: pt,
        };
        return ctx.commit(Commit { search_key: key.to_string(), call: None, events: vec![event] }).await.into();
    }
    let unit_stop = AtomicBool::new(false);
    let mut asked: BTreeSet<u32> = BTreeSet::new();
    let mut in_flight: FuturesUnordered<Asked<'_, '_>> = FuturesUnordered::new();
    // Without a known page count, one page at a time: the next missing one.
    let first: Vec<u32> = match pages_total {
        Some(pt) => stored.missing(pt).collect(),
        None => stored.missing(u32::MAX).take(1).collect(),
    };
    for p in first {
        asked.insert(p);
        in_flight.push(pager.ask(Some(year), p, &unit_stop));
    }
    // A 201/207 past page 1: the year ends at the page before (and how).
    let mut end: Option<(u32, YearState)> = None;
    let mut finished = false;
    let mut outcome: Option<UnitEnd> = None;
    while let Some((page, answer)) = in_flight.next().await {
        // The lane is held until the answer is handed to the writer.
        let Some((fetched, _lane)) = answer else { continue };
        let past_end = finished || end.is_some_and(|(e, _)| page > e);
        if past_end && matches!(fetched, Fetched::Page { .. }) {
            if !pager.keep_receipt(&query, page, fetched).await {
                return UnitEnd::Unfinished;
            }
            continue;
        }
        match fetched {
            Fetched::Page { response: resp, body, call } => {
                let raw = ctx.receipt(body.as_deref(), &resp.order_number, &query, page);
                let rows = resp.clients.len() as u32;
                if page == 1 || pages_total.is_none() {
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
                stored.insert(page);
                let last = end.map(|(e, _)| e).or(pages_total);
                let complete = last.is_some_and(|l| stored.covers(l));
                let state = match (complete, end) {
                    (false, _) => YearState::Partial,
                    (true, Some((_, how))) => how,
                    (true, None) if truncated => YearState::Truncated,
                    (true, None) => YearState::Complete,
                };
                let mut events = Vec::with_capacity(2);
                if page == 1 {
                    events.extend(ctx.compare_with_listing(key, year, total, listed, &resp.order_number));
                }
                events.push(Event::Page {
                    query: query.clone(),
                    page_index: page,
                    total_records: total,
                    pages_total: last.unwrap_or(page + 1),
                    year_state: state,
                    stored: stored.clone(),
                    unit_rows: 0,
                    rows: resp.clients,
                    raw,
                });
                if !ctx.commit_call(key, call, events).await {
                    return UnitEnd::Unfinished;
                }
                finished = complete;
                if !complete {
                    let next: Vec<u32> = match pages_total {
                        Some(pt) => stored.missing(end.map_or(pt, |(e, _)| e)).filter(|p| !asked.contains(p)).collect(),
                        None => vec![page + 1],
                    };
                    for p in next {
                        asked.insert(p);
                        in_flight.push(pager.ask(Some(year), p, &unit_stop));
                    }
                }
            }
            Fetched::Final { answer: answer @ (Final::NoResult | Final::Truncated), call, .. } => {
                // 201: the year has no (more) rows; 207: past the 5,000 ceiling.
                let how = if answer == Final::Truncated { YearState::Truncated } else { YearState::Complete };
                if finished || outcome.is_some() {
                    ctx.commit_call(key, call, vec![]).await;
                    continue;
                }
                let e = page - 1;
                if end.is_none_or(|(old, _)| e < old) {
                    end = Some((e, how));
                }
                let (e, how) = end.unwrap_or((e, how));
                if !stored.covers(e) {
                    // Lower pages are still in flight: the last of them completes the year.
                    if !ctx.commit_call(key, call, vec![]).await {
                        return UnitEnd::Unfinished;
                    }
                    continue;
                }
                let mut events = Vec::with_capacity(2);
                if page == 1 && answer == Final::NoResult {
                    events.extend(ctx.compare_with_listing(key, year, 0, listed, &call.order_number));
                }
                events.push(Event::YearEnded {
                    query_year: year.to_string(),
                    state: how,
                    total_records: if e == 0 { 0 } else { total },
                    pages_total: e,
                    pages_fetched: e,
                });
                if !ctx.commit_call(key, call, events).await {
                    return UnitEnd::Unfinished;
                }
                finished = true;
                unit_stop.store(true, Ordering::SeqCst);
            }
            Fetched::Final { answer: Final::Rejected, code, message, call } => {
                pager.ending(&mut outcome, CompanyEnd::Rejected { code, message, call }).await;
            }
            Fetched::NotNow(why) => pager.ending(&mut outcome, CompanyEnd::NotNow(why)).await,
        }
    }
    match outcome {
        Some(end) => end,
        None if finished => UnitEnd::Done,
        // Stopped before its pages were asked (the company ended on another unit).
        None => UnitEnd::Unfinished,
    }
}

/// Page the years of a cycle side by side; the company's outcome is the
/// worst of theirs (final beats unfinished beats done).
pub(super) async fn fetch_years(pager: &Pager<'_>, tasks: Vec<(YearTask, Option<u64>)>) -> UnitEnd {
    let mut units: FuturesUnordered<_> =
        tasks.into_iter().map(|(task, listed)| fetch_year(pager, task, listed)).collect();
    let mut result = UnitEnd::Done;
    while let Some(end) = units.next().await {
        result = match (result, end) {
            (UnitEnd::CompanyFinal, _) | (_, UnitEnd::CompanyFinal) => UnitEnd::CompanyFinal,
            (UnitEnd::Unfinished, _) | (_, UnitEnd::Unfinished) => UnitEnd::Unfinished,
            _ => UnitEnd::Done,
        };
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_company_alone_gets_the_slots_and_shares_them_as_others_arrive() {
        let occ = Occupancy::new(8);
        let a = occ.enter();
        assert_eq!(occ.width(), 8);
        let lanes = Lanes::new(&occ);
        let never = AtomicBool::new(false);
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(lanes.take(&never).await.expect("a lane"));
        }
        let b = occ.enter();
        assert_eq!(occ.width(), 4);
        let c = occ.enter();
        assert_eq!(occ.width(), 2, "8 / 3: together never more than the slots");
        drop(c);
        held.truncate(3);
        // Three in flight, four allowed: one more.
        assert!(lanes.take(&never).await.is_some());
        drop(b);
        drop(a);
        lanes.halt();
        assert!(lanes.take(&never).await.is_none(), "a halted company asks nothing more");
    }
}
