//! Stage 3: workers. Each takes one company at a time and pages through it —
//! discovery, then each year's pages — taking a [`Flow`] permit for every
//! call and handing every answer to the writer as one [`Commit`].
//!
//! A worker never touches SQLite; what it learns travels to the writer over a
//! bounded channel, so a slow disk slows the workers instead of losing rows.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex, Semaphore};

use std::collections::BTreeMap;

use super::flow::Flow;
use super::listing::{self, Coverage};
use super::plan::{self, Job, PlanOptions, YearTask};
use super::shutdown::{Stop, StopReason};
use super::writer::WriteMsg;
use super::{Budget, Stats};
use crate::clock;
use crate::qcc::client::CallOutcome;
use crate::qcc::{codes, Action, Client, PageRequest};
use crate::store::records::{
    CallRecord, Commit, CompanyState, Event, EvidenceKind, FetchPlan, Query, RawPage, YearState,
};

/// 205 is retried this many times before the company is deferred.
pub const PENDING_RETRIES: u32 = 3;
/// How long a company is parked after 110 (the vendor says: wait 2 hours).
pub const PARK_FOR: chrono::Duration = chrono::Duration::hours(2);

/// Retry settings.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Transient failures retried per call before the company is deferred.
    pub max_retries: u32,
    /// Backoff ceiling for the first retry; doubles per retry (full jitter).
    pub base: Duration,
    pub cap: Duration,
}

impl RetryPolicy {
    /// Full jitter: a uniform wait in `0..min(cap, base·2^(n-1))`.
    fn backoff(&self, n: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << n.saturating_sub(1).min(16)).min(self.cap);
        Duration::from_secs_f64(fastrand::f64() * ceiling.as_secs_f64())
    }
}

/// Everything workers share.
pub struct Ctx {
    pub client: Client,
    pub flow: Flow,
    pub stop: Arc<Stop>,
    /// To the single writer; bounded, so it is the pipeline's backpressure.
    pub writer: mpsc::Sender<WriteMsg>,
    /// The commit window: one permit per answered call handed to the writer
    /// and not yet durable. A worker goes on with its next call while its
    /// last page commits (so the HTTP round trips overlap the writer's batches),
    /// but no more than this many pages ever wait for their commit — which,
    /// with the in-flight requests, bounds what a `kill -9` can make the next
    /// run pay again.
    pub unsynced: Arc<Semaphore>,
    pub plan: PlanOptions,
    pub retry: RetryPolicy,
    /// Keep 200 bodies in `raw_pages`.
    pub archive: bool,
    pub budget: Budget,
    pub stats: Arc<Stats>,
    /// How long 110 parks a company ([`PARK_FOR`] unless testing).
    pub park_for: chrono::Duration,
    /// What the all-years listing is known to cover; workers teach it.
    pub listing: listing::Knowledge,
}

/// Take jobs until the queue closes or the run stops.
pub async fn work(ctx: Arc<Ctx>, jobs: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        if ctx.stop.is_stopped() {
            return;
        }
        let job = {
            let mut rx = jobs.lock().await;
            tokio::select! {
                job = rx.recv() => job,
                _ = ctx.stop.token().cancelled() => None,
            }
        };
        let Some(job) = job else { return };
        let key = job.search_key.clone();
        if run_company(&ctx, job).await {
            ctx.stats.companies_finished.fetch_add(1, Ordering::Relaxed);
        } else {
            tracing::debug!(search_key = %key, "Company not finished in this run.");
        }
        ctx.stats.jobs_ended.fetch_add(1, Ordering::Relaxed);
    }
}

/// How one call ended, from the company's point of view. Every variant that
/// made a call carries its record: the worker hands it to the writer (with
/// what it caused) before making another call, inside the commit window.
enum Fetched {
    /// An answer the page logic decides on: 200, 201, 202…, 207.
    Answer { outcome: CallOutcome, call: CallRecord, action: Action },
    /// Gave up for this run (transient failures, 205): defer the company.
    Deferred { reason: String, code: Option<String>, call: CallRecord },
    /// 110: park the company.
    Parked { message: Option<String>, call: CallRecord },
    /// The run is stopping; the call (if one was made) still goes in the ledger.
    Stopped { call: Option<CallRecord> },
}

impl Ctx {
    /// Hand one atomic unit to the writer, waiting for room in the commit
    /// window. Pages of one company reach the writer in the order they were
    /// fetched (one channel, one writer), so checkpoints never run ahead.
    async fn commit(&self, commit: Commit) -> bool {
        let Ok(slot) = self.unsynced.clone().acquire_owned().await else {
            return false;
        };
        if self.writer.send(WriteMsg::Commit { commit, slot: Some(slot) }).await.is_err() {
            // The writer only goes away on a database error, which it reported.
            self.stop.stop(StopReason::StoreFailed("the writer stopped".into()));
            return false;
        }
        true
    }

    /// Commit a call's record with the events it caused.
    async fn commit_call(&self, key: &str, call: CallRecord, events: Vec<Event>) -> bool {
        self.commit(Commit { search_key: key.to_string(), call: Some(call), events }).await
    }

    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.stop.token().cancelled() => false,
        }
    }

    /// One page, with retries (SPEC §1.3). Every request made is recorded.
    async fn fetch(&self, key: &str, year: Option<&str>, page_index: u32) -> Fetched {
        let mut transient = 0u32;
        let mut pending = 0u32;
        let mut attempt = 0u32;
        loop {
            let Some(mut slot) = self.flow.permit(&self.stop).await else {
                return Fetched::Stopped { call: None };
            };
            // The budget is taken at the last moment, so that calls waiting
            // for the rate limiter do not hold budget that others could use.
            if let Err(reason) = self.budget.take() {
                self.stop.stop(reason);
                return Fetched::Stopped { call: None };
            }
            attempt += 1;
            slot.mark_used();
            let req = PageRequest { search_key: key, year, page_index, page_size: self.plan.page_size };
            let outcome = self.client.get_page(req).await;
            self.stats.calls.fetch_add(1, Ordering::Relaxed);
            let call = call_record(key, year, page_index, self.plan.page_size, &outcome, attempt);
            let action = outcome.action();
            if action == Action::Throttle {
                let give_up = self.flow.on_throttle(&slot, outcome.retry_after);
                drop(slot);
                self.commit_call(key, call, vec![]).await;
                if let Some(reason) = give_up {
                    self.stop.stop(reason);
                    return Fetched::Stopped { call: None };
                }
                // Waiting out throttling does not use up --max-retries.
                continue;
            }
            if outcome.result.is_ok() {
                self.flow.on_clean();
            }
            drop(slot);
            match action {
                Action::Data | Action::NoResult | Action::Rejected | Action::Truncated => {
                    return Fetched::Answer { outcome, call, action }
                }
                Action::Park => {
                    let message = outcome.result.ok().and_then(|r| r.message);
                    return Fetched::Parked { message, call };
                }
                Action::Pending => {
                    pending += 1;
                    if pending > PENDING_RETRIES {
                        let reason = format!("205 waiting to be processed after {pending} tries");
                        return Fetched::Deferred { reason, code: Some("205".into()), call };
                    }
                    self.commit_call(key, call, vec![]).await;
                    if !self.sleep(self.retry.backoff(pending + 1)).await {
                        return Fetched::Stopped { call: None };
                    }
                }
                Action::Transient => {
                    transient += 1;
                    let error = call.error.clone().unwrap_or_else(|| "transient failure".into());
                    if transient > self.retry.max_retries {
                        let reason = format!("gave up after {transient} tries: {error}");
                        let code = call.status.clone();
                        return Fetched::Deferred { reason, code, call };
                    }
                    tracing::debug!(search_key = key, attempt, error = %error, "Retrying.");
                    self.commit_call(key, call, vec![]).await;
                    if !self.sleep(self.retry.backoff(transient)).await {
                        return Fetched::Stopped { call: None };
                    }
                }
                Action::QuotaExhausted => {
                    let resp = outcome.result.as_ref().ok();
                    let code = resp.map_or(0, |r| r.status);
                    let message = resp.and_then(|r| r.message.clone()).unwrap_or_default();
                    self.stop.stop(StopReason::QuotaExhausted { code, message });
                    return Fetched::Stopped { call: Some(call) };
                }
                Action::Fatal => {
                    let (code, message) = match &outcome.result {
                        Ok(r) => {
                            (r.status.to_string(), r.message.clone().unwrap_or_else(|| codes::wire_message(r.status)))
                        }
                        Err(e) => {
                            (outcome.http_status.map_or_else(|| "?".into(), |s| format!("HTTP {s}")), e.to_string())
                        }
                    };
                    let hint = match outcome.result.as_ref().ok() {
                        Some(r) => codes::hint(r.status).to_string(),
                        None => "the endpoint answered with an HTTP client error: check --endpoint".to_string(),
                    };
                    self.stop.stop(StopReason::Fatal { code, message, hint });
                    return Fetched::Stopped { call: Some(call) };
                }
                Action::Throttle => unreachable!("handled above"),
            }
        }
    }

    fn raw(&self, outcome: &CallOutcome, query_year: &str, page_index: u32) -> Option<RawPage> {
        if !self.archive {
            return None;
        }
        let body = outcome.body.as_ref()?;
        Some(RawPage {
            query_year: query_year.to_string(),
            page_index,
            order_number: outcome.result.as_ref().ok().and_then(|r| r.order_number.clone()),
            body: compress(body)?,
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
        let retry_after = (state == CompanyState::Parked).then(|| clock::iso(chrono::Utc::now() + self.park_for));
        let events = vec![Event::Company { state, status_code: code, message, retry_after }];
        self.commit(Commit { search_key: key.to_string(), call, events }).await
    }
}

thread_local! {
    /// One zlib compressor per worker thread, reset between pages: building a
    /// fresh one allocates (and the kernel zero-fills) ~300 KiB every call.
    static COMPRESSOR: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::fast(), true));
}

/// zlib-compress a response body for the `raw_pages` archive.
fn compress(body: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = Vec::with_capacity(body.len() / 3 + 64);
        loop {
            let consumed = c.total_in() as usize;
            let status = c.compress_vec(&body[consumed..], &mut out, flate2::FlushCompress::Finish).ok()?;
            match status {
                flate2::Status::StreamEnd => return Some(out),
                _ => out.reserve(out.capacity().max(1024)),
            }
        }
    })
}

fn call_record(
    key: &str,
    year: Option<&str>,
    page_index: u32,
    page_size: u32,
    o: &CallOutcome,
    attempt: u32,
) -> CallRecord {
    CallRecord {
        search_key: key.to_string(),
        year: year.map(str::to_string),
        page_index,
        page_size,
        http_status: o.http_status,
        status: o.status_text(),
        order_number: o.result.as_ref().ok().and_then(|r| r.order_number.clone()),
        started_at: o.started_at.clone(),
        duration_ms: o.duration.as_millis() as u64,
        attempt,
        error: o.error_text(),
    }
}

fn code_and_message(outcome: &CallOutcome) -> (Option<String>, Option<String>) {
    (outcome.status_text(), outcome.result.as_ref().ok().and_then(|r| r.message.clone()))
}

/// Handle a non-answer (defer, park, stop). The company is not finished.
async fn settle(ctx: &Ctx, key: &str, fetched: Fetched) {
    match fetched {
        Fetched::Deferred { reason, code, call } => {
            ctx.end_company(key, Some(call), CompanyState::Deferred, code, Some(reason)).await;
        }
        Fetched::Parked { message, call } => {
            ctx.end_company(key, Some(call), CompanyState::Parked, Some("110".into()), message).await;
        }
        Fetched::Stopped { call: Some(call) } => {
            ctx.commit_call(key, call, vec![]).await;
        }
        Fetched::Stopped { call: None } => {}
        Fetched::Answer { .. } => unreachable!("answers are handled by the caller"),
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
async fn run_company(ctx: &Ctx, job: Job) -> bool {
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
    let (outcome, call) = match ctx.fetch(key, None, 1).await {
        Fetched::Answer { outcome, call, action: Action::Data } => (outcome, call),
        Fetched::Answer { outcome, call, action } => {
            let (code, message) = code_and_message(&outcome);
            let state = match action {
                Action::NoResult => CompanyState::NoResult,
                Action::Rejected => CompanyState::Rejected,
                // 207 on a first page cannot happen; never loop on it.
                _ => CompanyState::Deferred,
            };
            let committed = ctx.end_company(key, Some(call), state, code, message).await;
            return Err(committed && state != CompanyState::Deferred);
        }
        other => {
            settle(ctx, key, other).await;
            return Err(false);
        }
    };
    let raw = ctx.raw(&outcome, "", 1);
    let Ok(resp) = outcome.result else { return Err(false) };
    let size = ctx.plan.page_size;
    let discovered_at = clock::now_iso();
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
            Fetched::Answer { outcome, call, action: Action::Data } => {
                let raw = ctx.raw(&outcome, "", page);
                let Ok(resp) = outcome.result else { return UnitEnd::Unfinished };
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
            Fetched::Answer { outcome, call, action: Action::NoResult | Action::Truncated } => {
                let code = outcome.status_text().unwrap_or_default();
                let problem = format!("listing page {page} of {pages} answered {code}");
                return ctx.listing_contradicted(key, Some(call), problem, None).await;
            }
            Fetched::Answer { outcome, call, .. } => {
                let (code, message) = code_and_message(&outcome);
                ctx.end_company(key, Some(call), CompanyState::Rejected, code, message).await;
                return UnitEnd::CompanyFinal;
            }
            other => {
                settle(ctx, key, other).await;
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
            Fetched::Answer { outcome, call, action: Action::Data } => {
                let raw = ctx.raw(&outcome, year, page);
                let Ok(resp) = outcome.result else { return UnitEnd::Unfinished };
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
            Fetched::Answer { outcome, call, action: action @ (Action::NoResult | Action::Truncated) } => {
                // 201: the year has no (more) rows; 207: past the 5,000 ceiling.
                let state = if action == Action::Truncated { YearState::Truncated } else { YearState::Complete };
                let mut events = Vec::with_capacity(2);
                if page == 1 && action == Action::NoResult {
                    let order = outcome.result.ok().and_then(|r| r.order_number);
                    events.extend(ctx.compare_with_listing(key, year, 0, listed, &order));
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
            Fetched::Answer { outcome, call, .. } => {
                let (code, message) = code_and_message(&outcome);
                ctx.end_company(key, Some(call), CompanyState::Rejected, code, message).await;
                return UnitEnd::CompanyFinal;
            }
            other => {
                settle(ctx, key, other).await;
                return UnitEnd::Unfinished;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    #[test]
    fn compressed_bodies_round_trip_and_the_compressor_is_reused() {
        for body in [&b""[..], b"{\"Status\":\"200\"}", "中文".repeat(5000).as_bytes()] {
            let z = super::compress(body).unwrap();
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&z[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, body);
        }
    }
}
