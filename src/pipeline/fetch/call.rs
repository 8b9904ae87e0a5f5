//! One call, with its retries: a flow-control permit and a budget unit for
//! every request, 205 and transient failures retried with backoff, 120/122/429
//! waited out, account problems and daily quotas stopping the run. What comes
//! back is typed by what the company's loop must do with it. Every request
//! made is recorded; the records of retried requests go to the writer here,
//! through the [`Handoff`].
//!
//! The [`Caller`] is a value the fetch context owns; it knows nothing of
//! companies' cycles or pages.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::handoff::Handoff;
use crate::clock::{self, Clock};
use crate::pipeline::control::budget::Budget;
use crate::pipeline::control::flow::Flow;
use crate::pipeline::control::shutdown::{Stop, StopReason};
use crate::pipeline::report::stats::Stats;
use crate::qcc::client::CallOutcome;
use crate::qcc::{codes, Action, Client, PageRequest, Response};
use crate::store::records::CallRecord;

/// 205 is retried this many times before the company is deferred.
pub const PENDING_RETRIES: u32 = 3;

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

/// How one call ended, from the company's point of view. Every variant that
/// made a call carries its record: the caller hands it to the writer (with
/// what it caused) before making another call.
pub enum Fetched {
    /// 200: the page, and the body as received (for the receipt).
    Page { response: Response, body: Option<bytes::Bytes>, call: CallRecord },
    /// A final answer for this query.
    Final { answer: Final, code: Option<String>, message: Option<String>, call: CallRecord },
    /// Nothing more for this company in this run.
    NotNow(NotNow),
}

/// Final answers other than data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Final {
    /// 201: no (more) rows.
    NoResult,
    /// 207: past the 5,000-entry ceiling.
    Truncated,
    /// 202, 208, …: the query is not acceptable; never asked again.
    Rejected,
}

/// Why a company stops for this run without a final answer.
pub enum NotNow {
    /// Transient failures or 205 past their retries: defer the company.
    Deferred { reason: String, code: Option<String>, call: CallRecord },
    /// 110: park the company.
    Parked { message: Option<String>, call: CallRecord },
    /// The run is stopping; the call (if one was made) still goes in the ledger.
    Stopped { call: Option<CallRecord> },
}

/// Makes the calls: the client and what every request goes through.
pub struct Caller {
    pub client: Client,
    /// Rate, concurrency and throttling: a permit for every call.
    pub flow: Arc<Flow>,
    /// `--max-calls` and `--daily-limit`: a unit for every call.
    pub budget: Budget,
    pub retry: RetryPolicy,
    pub page_size: u32,
    /// Told why the run stops (quota, account, throttling); every wait watches it.
    pub stop: Arc<Stop>,
    pub stats: Arc<Stats>,
    /// Where retried calls' records go.
    pub handoff: Handoff,
    /// The day a daily quota resumes.
    pub clock: Clock,
}

impl Caller {
    /// One page, with retries. Every request made is recorded.
    pub async fn fetch(&self, key: &str, year: Option<&str>, page_index: u32) -> Fetched {
        let stopped = |call| Fetched::NotNow(NotNow::Stopped { call });
        let mut transient = 0u32;
        let mut pending = 0u32;
        let mut attempt = 0u32;
        loop {
            let Some(mut slot) = self.flow.permit(&self.stop).await else {
                return stopped(None);
            };
            // The budget is taken at the last moment, so that calls waiting
            // for the rate limiter do not hold budget that others could use.
            if let Err(reason) = self.budget.take() {
                self.stop.stop(reason);
                return stopped(None);
            }
            attempt += 1;
            slot.mark_used();
            let req = PageRequest { search_key: key, year, page_index, page_size: self.page_size };
            let outcome = self.client.get_page(req).await;
            self.stats.calls.fetch_add(1, Ordering::Relaxed);
            let call = call_record(key, year, page_index, self.page_size, &outcome, attempt);
            let action = outcome.action();
            if action == Action::Throttle {
                let give_up = self.flow.on_throttle(&slot, outcome.retry_after);
                drop(slot);
                self.retried(key, call, None).await;
                if let Some(reason) = give_up {
                    self.stop.stop(reason);
                    return stopped(None);
                }
                // Waiting out throttling does not use up --max-retries.
                continue;
            }
            if outcome.result.is_ok() {
                self.flow.on_clean();
            }
            drop(slot);
            let (code, message) = code_and_message(&outcome);
            if let Some(answer) = final_answer(action) {
                return Fetched::Final { answer, code, message, call };
            }
            match (action, outcome.result) {
                (Action::Data, Ok(response)) => return Fetched::Page { response, body: outcome.body, call },
                (Action::Park, _) => return Fetched::NotNow(NotNow::Parked { message, call }),
                (Action::Pending, _) => {
                    pending += 1;
                    if pending > PENDING_RETRIES {
                        let reason = format!("205 waiting to be processed after {pending} tries");
                        return Fetched::NotNow(NotNow::Deferred { reason, code: Some("205".into()), call });
                    }
                    if !self.retried(key, call, Some(self.retry.backoff(pending + 1))).await {
                        return stopped(None);
                    }
                }
                (Action::QuotaExhausted, result) => {
                    let code = result.as_ref().map_or(0, |r| r.status);
                    let resumes = clock::next_beijing_day(self.clock.now());
                    let message = message.unwrap_or_default();
                    self.stop.stop(StopReason::QuotaExhausted { code, message, resumes });
                    return stopped(Some(call));
                }
                (Action::Fatal, result) => {
                    self.stop.stop(refused(&result, outcome.http_status));
                    return stopped(Some(call));
                }
                // Transient: 199, 203, 5xx, timeouts, unreadable bodies, unknown codes.
                _ => {
                    transient += 1;
                    let error = call.error.clone().unwrap_or_else(|| "transient failure".into());
                    if transient > self.retry.max_retries {
                        let reason = format!("gave up after {transient} tries: {error}");
                        let code = call.status.clone();
                        return Fetched::NotNow(NotNow::Deferred { reason, code, call });
                    }
                    tracing::debug!(search_key = key, attempt, error = %error, "Retrying.");
                    if !self.retried(key, call, Some(self.retry.backoff(transient))).await {
                        return stopped(None);
                    }
                }
            }
        }
    }

    /// A call that is tried again is recorded as it happens, then waited
    /// out (`wait`); `false` when the run stops meanwhile. The hand-off's
    /// result may be dropped: if the writer is gone, the stop it raised
    /// ends the caller's loop at its next permit.
    async fn retried(&self, key: &str, call: CallRecord, wait: Option<Duration>) -> bool {
        let _ = self.handoff.commit_call(key, call, vec![]).await;
        match wait {
            Some(d) => self.sleep(d).await,
            None => true,
        }
    }

    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.stop.token().cancelled() => false,
        }
    }
}

/// Why the run stops on an answer that refuses the account (or an HTTP
/// client error): the code, the message, and what to check.
fn refused(result: &Result<Response, crate::qcc::client::CallError>, http_status: Option<u16>) -> StopReason {
    let (code, message, hint) = match result {
        Ok(r) => (
            r.status.to_string(),
            r.message.clone().unwrap_or_else(|| codes::wire_message(r.status)),
            codes::hint(r.status).to_string(),
        ),
        Err(e) => (
            http_status.map_or_else(|| "?".into(), |s| format!("HTTP {s}")),
            e.to_string(),
            "the endpoint answered with an HTTP client error: check --endpoint".to_string(),
        ),
    };
    StopReason::Fatal { code, message, hint }
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

/// The final answers other than data, by their action.
fn final_answer(action: Action) -> Option<Final> {
    match action {
        Action::NoResult => Some(Final::NoResult),
        Action::Truncated => Some(Final::Truncated),
        Action::Rejected => Some(Final::Rejected),
        _ => None,
    }
}

fn code_and_message(outcome: &CallOutcome) -> (Option<String>, Option<String>) {
    (outcome.status_text(), outcome.result.as_ref().ok().and_then(|r| r.message.clone()))
}

#[cfg(test)]
mod tests;
