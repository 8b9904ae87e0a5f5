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

use super::flow::Flow;
use super::plan::{self, Job, PlanOptions, YearTask};
use super::shutdown::{Stop, StopReason};
use super::writer::WriteMsg;
use super::{Budget, Stats};
use crate::clock;
use crate::qcc::client::CallOutcome;
use crate::qcc::{codes, Action, Client, PageRequest};
use crate::store::records::{CallRecord, Commit, CompanyState, Event, RawPage, YearState};

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

/// Fetch one company. Returns `true` when it reached a final state.
async fn run_company(ctx: &Ctx, job: Job) -> bool {
    let key = job.search_key.as_str();
    let (year_list, discovered_at) = if job.discovery {
        match ctx.fetch(key, None, 1).await {
            Fetched::Answer { outcome, call, action: Action::Data } => {
                let raw = ctx.raw(&outcome, "", 1);
                let discovered_at = clock::now_iso();
                let year_list = outcome.result.map(|r| r.year_list).unwrap_or_default();
                let event = Event::Discovered { year_list: year_list.clone(), raw };
                if !ctx.commit_call(key, call, vec![event]).await {
                    return false;
                }
                (year_list, discovered_at)
            }
            Fetched::Answer { outcome, call, action: Action::NoResult } => {
                let (code, message) = code_and_message(&outcome);
                return ctx.end_company(key, Some(call), CompanyState::NoResult, code, message).await;
            }
            Fetched::Answer { outcome, call, action: Action::Rejected } => {
                let (code, message) = code_and_message(&outcome);
                return ctx.end_company(key, Some(call), CompanyState::Rejected, code, message).await;
            }
            Fetched::Answer { outcome, call, .. } => {
                // 207 on a first page of 50 cannot happen; never loop on it.
                let (code, message) = code_and_message(&outcome);
                ctx.end_company(key, Some(call), CompanyState::Deferred, code, message).await;
                return false;
            }
            other => {
                settle(ctx, key, other).await;
                return false;
            }
        }
    } else {
        (job.year_list.clone(), job.discovered_at.clone().unwrap_or_default())
    };

    for task in plan::years_to_fetch(&year_list, &job.known_years, &discovered_at, &ctx.plan) {
        match fetch_year(ctx, key, task).await {
            YearEnd::Done => {}
            YearEnd::CompanyFinal => return true,
            YearEnd::Unfinished => return false,
        }
    }
    ctx.end_company(key, None, CompanyState::Done, Some("200".into()), None).await
}

/// How paging through a year ended.
enum YearEnd {
    /// The year is complete or truncated: go on with the next.
    Done,
    /// The company reached a final state (rejected) on this year.
    CompanyFinal,
    /// Deferred, parked or stopped: the company is not finished in this run.
    Unfinished,
}

impl From<bool> for YearEnd {
    /// `true` when the year's last commit is durable.
    fn from(committed: bool) -> Self {
        if committed {
            YearEnd::Done
        } else {
            YearEnd::Unfinished
        }
    }
}

/// Page through one year.
async fn fetch_year(ctx: &Ctx, key: &str, task: YearTask) -> YearEnd {
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
                let Ok(resp) = outcome.result else { unreachable!("Data implies a parsed response") };
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
                let state = match (last, truncated) {
                    (false, _) => YearState::Partial,
                    (true, false) => YearState::Complete,
                    (true, true) => YearState::Truncated,
                };
                let event = Event::Page {
                    query_year: year.to_string(),
                    page_index: page,
                    total_records: total,
                    pages_total: pages_total.unwrap_or(page + 1),
                    year_state: state,
                    rows: resp.clients,
                    raw,
                };
                if !ctx.commit_call(key, call, vec![event]).await {
                    return YearEnd::Unfinished;
                }
                if last {
                    return YearEnd::Done;
                }
                page += 1;
            }
            Fetched::Answer { call, action: action @ (Action::NoResult | Action::Truncated), .. } => {
                // 201: the year has no (more) rows; 207: past the 5,000 ceiling.
                let state = if action == Action::Truncated { YearState::Truncated } else { YearState::Complete };
                let event = Event::YearEnded {
                    query_year: year.to_string(),
                    state,
                    total_records: if page == 1 { 0 } else { total },
                    pages_total: page - 1,
                    pages_fetched: page - 1,
                };
                return ctx.commit_call(key, call, vec![event]).await.into();
            }
            Fetched::Answer { outcome, call, .. } => {
                let (code, message) = code_and_message(&outcome);
                ctx.end_company(key, Some(call), CompanyState::Rejected, code, message).await;
                return YearEnd::CompanyFinal;
            }
            other => {
                settle(ctx, key, other).await;
                return YearEnd::Unfinished;
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
