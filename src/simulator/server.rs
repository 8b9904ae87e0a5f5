//! The simulator's HTTP side: an axum router that speaks the wire format of
//! docs/design.md §1, verifies key/Token/Timespan, checks parameters, and records every
//! request so tests can verify what was paid for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::config::{Listing, SimConfig};
use super::data::{self, triggers};
use crate::qcc::{codes, sign};

/// What a request asked for: `(search key, year or "", page index)`.
pub type ServedKey = (String, String, u32);

/// One request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Seconds since the simulator started.
    pub at: f64,
    pub search_key: String,
    pub year: Option<String>,
    pub page_index: u32,
    /// The vendor code or HTTP status it answered.
    pub status: u32,
}

/// Shared state of a running simulator; tests read it through [`SimHandle`].
pub struct SimState {
    config: SimConfig,
    started: Instant,
    served: Mutex<HashMap<ServedKey, u32>>,
    arrivals: Mutex<Vec<Arrival>>,
    requests: AtomicU64,
    trigger_calls: Mutex<HashMap<String, u32>>,
    second_window: Mutex<(u64, u32)>,
    orders: AtomicU64,
    billed: AtomicU64,
    /// The timeline's clock (`None`: the system clock).
    as_of: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

impl SimState {
    /// The moment the timeline answers as of.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        lock(&self.as_of).unwrap_or_else(chrono::Utc::now)
    }
}

/// A cheap handle to the simulator's counters.
#[derive(Clone)]
pub struct SimHandle(Arc<SimState>);

impl SimHandle {
    /// Move the timeline's clock: from now on the simulator answers as of `t`.
    pub fn set_as_of(&self, t: chrono::DateTime<chrono::Utc>) {
        *lock(&self.0.as_of) = Some(t);
    }

    /// How often each (key, year, page) was answered with data or a final code
    /// (the billable answers). A count above 1 is a page paid for twice.
    pub fn served(&self) -> HashMap<ServedKey, u32> {
        lock(&self.0.served).clone()
    }

    /// Every request that reached the simulator, in arrival order (empty
    /// unless [`SimConfig::keep_arrivals`]).
    pub fn arrivals(&self) -> Vec<Arrival> {
        lock(&self.0.arrivals).clone()
    }

    /// Number of requests that reached the simulator.
    pub fn request_count(&self) -> usize {
        self.0.requests.load(Ordering::Relaxed) as usize
    }

    /// Billable answers for a page that had been answered before: the pages
    /// paid for twice (or more; each repeat counts).
    pub fn pages_served_twice(&self) -> u32 {
        lock(&self.0.served).values().map(|n| n.saturating_sub(1)).sum()
    }

    /// Number of billable answers (the sum of [`served`](Self::served)).
    pub fn billed(&self) -> u64 {
        self.0.billed.load(Ordering::Relaxed)
    }

    pub fn seed(&self) -> u64 {
        self.0.config.seed
    }
}

/// A simulator serving on a bound listener until cancelled.
pub struct Simulator {
    pub addr: SocketAddr,
    pub handle: SimHandle,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    /// Bind `127.0.0.1:0` and serve in the background of the current runtime.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(listener, config)
    }

    /// Serve on an already-bound listener (so callers pick the address).
    pub fn serve(listener: TcpListener, config: SimConfig) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let as_of = Mutex::new(config.timeline.as_ref().and_then(|t| t.as_of));
        let state = Arc::new(SimState {
            as_of,
            config,
            started: Instant::now(),
            served: Mutex::default(),
            arrivals: Mutex::default(),
            requests: AtomicU64::new(0),
            trigger_calls: Mutex::default(),
            second_window: Mutex::new((0, 0)),
            orders: AtomicU64::new(0),
            billed: AtomicU64::new(0),
        });
        let cancel = CancellationToken::new();
        let app = router(state.clone());
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
        });
        Ok(Self { addr, handle: SimHandle(state), cancel, task })
    }

    /// The endpoint URL to pass to `--endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/api/yj/Customer/GetList", self.addr)
    }

    /// Stop serving and wait for the server task.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// The router: both the pro.qcc.com path and the open-API path.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/api/yj/Customer/GetList", get(get_list))
        .route("/Customer/GetList", get(get_list))
        .with_state(state)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Answer {
    Code(u32),
    /// A 200 page, serialized.
    Data(String),
    Http(StatusCode),
    Drop,
    Truncated(String),
}

async fn get_list(
    State(state): State<Arc<SimState>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let search_key = params.get("searchKey").map(|s| s.trim().to_string()).unwrap_or_default();
    let year = params.get("year").filter(|y| !y.is_empty()).cloned();
    let page_index: u32 = params.get("pageIndex").and_then(|p| p.parse().ok()).unwrap_or(1);
    let page_size: u32 = params.get("pageSize").and_then(|p| p.parse().ok()).unwrap_or(10);
    let at = state.started.elapsed();

    if let Some((lo, hi)) = state.config.faults.latency {
        let span = hi.saturating_sub(lo).as_micros() as u64;
        let extra = Duration::from_micros(fastrand::u64(0..=span));
        tokio::time::sleep(lo + extra).await;
    }

    let answer = decide(&state, &params, &headers, &search_key, year.as_deref(), page_index, page_size, at);
    let status = match &answer {
        Answer::Code(c) => *c,
        Answer::Data(_) | Answer::Truncated(_) => 200,
        Answer::Http(s) => s.as_u16() as u32,
        Answer::Drop => 0,
    };
    if state.config.keep_arrivals {
        lock(&state.arrivals).push(Arrival { at: at.as_secs_f64(), search_key, year, page_index, status });
    }
    state.requests.fetch_add(1, Ordering::Relaxed);

    match answer {
        Answer::Code(code) => json_response(&state, code, Value::Null, Value::Null),
        Answer::Data(body) => (StatusCode::OK, [("content-type", "application/json")], body).into_response(),
        Answer::Truncated(text) => {
            let cut = text.char_indices().nth(text.chars().count() / 2).map(|(i, _)| i).unwrap_or(0);
            (StatusCode::OK, [("content-type", "application/json")], text[..cut].to_string()).into_response()
        }
        Answer::Http(status) if status == StatusCode::TOO_MANY_REQUESTS => {
            (status, [("content-type", "text/plain"), ("retry-after", "1")], "Too Many Requests").into_response()
        }
        Answer::Http(status) => (
            status,
            [("content-type", "text/html")],
            format!("<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center><hr><center>nginx</center></body></html>"),
        )
            .into_response(),
        // A dropped connection: the headers promise a body that never comes,
        // so hyper aborts the connection mid-response.
        Answer::Drop => abort_response(),
    }
}

#[allow(clippy::too_many_arguments)]
fn decide(
    state: &SimState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    search_key: &str,
    year: Option<&str>,
    page_index: u32,
    page_size: u32,
    at: Duration,
) -> Answer {
    // Authentication first, as the real API does: nothing past here is free.
    let Some(key) = params.get("key") else {
        return Answer::Code(101);
    };
    let Some((_, secret)) = state.config.accounts.iter().find(|(k, _)| k == key) else {
        return Answer::Code(101);
    };
    let timespan = headers.get("Timespan").and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = headers.get("Token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if token != sign::token(key, timespan, secret) {
        return Answer::Code(107);
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    match timespan.parse::<u64>() {
        Ok(ts) if now.abs_diff(ts) <= state.config.max_clock_skew.as_secs() => {}
        _ => return Answer::Code(115),
    }

    let faults = &state.config.faults;
    if let Some(quota) = faults.daily_quota {
        if state.billed.load(Ordering::Relaxed) >= quota {
            return Answer::Code(116);
        }
    }
    if let Some((from, to)) = faults.storm {
        if at >= from && at < to {
            return Answer::Code(120);
        }
    }
    if let Some(cap) = faults.qps_cap {
        let mut w = lock(&state.second_window);
        let second = at.as_secs();
        if w.0 != second {
            *w = (second, 0);
        }
        w.1 += 1;
        if w.1 > cap {
            return Answer::Code(120);
        }
    }
    let roll = fastrand::f64();
    let mut edge = faults.throttle_share;
    if roll < edge {
        return Answer::Code(120);
    }
    for (share, answer) in [
        (faults.http500_share, Answer::Http(StatusCode::INTERNAL_SERVER_ERROR)),
        (faults.http502_share, Answer::Http(StatusCode::BAD_GATEWAY)),
        (faults.drop_share, Answer::Drop),
    ] {
        edge += share;
        if roll < edge {
            return answer;
        }
    }
    let truncate = roll < edge + faults.truncate_share;

    // Parameter checks.
    if search_key.chars().count() < 2 {
        return bill(state, search_key, year, page_index, Answer::Code(213));
    }
    if page_size == 0 || page_size > 50 || page_index == 0 {
        return bill(state, search_key, year, page_index, Answer::Code(202));
    }
    if u64::from(page_index) * u64::from(page_size) > 5000 {
        return bill(state, search_key, year, page_index, Answer::Code(207));
    }

    // Documented trigger keys.
    if let Some(code) = triggers::number_after(search_key, triggers::HTTP) {
        let status = StatusCode::from_u16(code as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Answer::Http(status);
    }
    if let Some(code) = triggers::number_after(search_key, triggers::CODE) {
        // The vendor bills what it calls valid requests (有效请求).
        return if codes::info(code).is_some_and(|i| i.valid_request) {
            bill(state, search_key, year, page_index, Answer::Code(code))
        } else {
            Answer::Code(code)
        };
    }
    for (prefix, code) in [(triggers::REJECTED, 202), (triggers::PENDING, 205), (triggers::PARKED, 110)] {
        if search_key.starts_with(prefix) {
            return bill(state, search_key, year, page_index, Answer::Code(code));
        }
    }
    if search_key.starts_with(triggers::THROTTLED) {
        let mut calls = lock(&state.trigger_calls);
        let n = calls.entry(search_key.to_string()).or_insert(0);
        *n += 1;
        if *n <= 2 {
            return Answer::Code(120);
        }
    }

    let answer = page_answer(state, search_key, year, page_index, page_size);
    let answer = match answer {
        Answer::Data(body) if truncate => Answer::Truncated(body),
        other => other,
    };
    bill(state, search_key, year, page_index, answer)
}

/// Count a billable answer (data or a final 2xx code) for the served ledger.
fn bill(state: &SimState, search_key: &str, year: Option<&str>, page_index: u32, answer: Answer) -> Answer {
    if matches!(answer, Answer::Truncated(_)) {
        // The client never saw this page whole; the vendor would still bill
        // it, but it is not a page the client could have stored.
        return answer;
    }
    state.billed.fetch_add(1, Ordering::Relaxed);
    let key = (search_key.to_string(), year.unwrap_or("").to_string(), page_index);
    *lock(&state.served).entry(key).or_insert(0) += 1;
    answer
}

fn page_answer(state: &SimState, search_key: &str, year: Option<&str>, page_index: u32, page_size: u32) -> Answer {
    let config = &state.config;
    let seed = config.seed;
    if let Some(timeline) = &config.timeline {
        return timed_page_answer(state, timeline, search_key, year, page_index, page_size);
    }
    let company = data::company_of(config.profile, seed, search_key, config.extra_years);
    if company.years.is_empty() {
        return Answer::Code(201);
    }
    // The years whose rows this query lists, in order, and its TotalRecords.
    let (listed, total): (&[data::SimYear], u64) = match year {
        None => {
            let all = company.years.iter().map(|y| u64::from(y.total)).sum::<u64>();
            match config.listing {
                Listing::EveryYear => (&company.years[..], all),
                Listing::LatestYear => (&company.years[..1], u64::from(company.years[0].total)),
                Listing::LatestRowsAllTotal => (&company.years[..1], all),
            }
        }
        Some(y) => match company.years.iter().position(|sy| sy.year == y) {
            Some(i) if company.years[i].total > 0 => (&company.years[i..=i], u64::from(company.years[i].total)),
            _ => return Answer::Code(201),
        },
    };
    let first = u64::from(page_index - 1) * u64::from(page_size);
    if first >= total && (year.is_some() || page_index > 1) {
        return Answer::Code(201);
    }
    let end = first + u64::from(page_size);
    // Rows `first..end` of the years listed one after another.
    let mut client_list = Vec::with_capacity(page_size as usize);
    let mut offset = 0u64;
    for sy in listed {
        let n = u64::from(sy.total);
        let (lo, hi) = (first.max(offset), end.min(offset + n));
        let revised = !config.revise_latest_year_only || sy.year == company.years[0].year;
        let revision = if revised { config.revision } else { 0 };
        for i in lo..hi {
            client_list.push(data::SimRow::new(seed, revision, search_key, &sy.year, (i - offset) as u32));
        }
        offset += n;
        if offset >= end {
            break;
        }
    }
    let page = DataPage {
        order_number: order_number(state),
        paging: Paging { page_size, page_index, total_records: total },
        result: PageResult { year_list: company.years.iter().map(|y| y.year.as_str()).collect(), client_list },
        status: "200",
        message: codes::wire_message(200),
    };
    // Written straight from the rows: no JSON tree per page.
    match serde_json::to_string(&page) {
        Ok(body) => Answer::Data(body),
        Err(_) => Answer::Http(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// [`page_answer`] with the timeline on: the company as the vendor shows it
/// at the simulator's clock, paged the same way.
fn timed_page_answer(
    state: &SimState,
    timeline: &super::Timeline,
    search_key: &str,
    year: Option<&str>,
    page_index: u32,
    page_size: u32,
) -> Answer {
    let config = &state.config;
    let years = super::timeline::company_as_of(config.profile, config.seed, search_key, timeline, state.now());
    if years.is_empty() || search_key.trim().starts_with(data::triggers::NO_RESULT) {
        return Answer::Code(201);
    }
    let listed: &[super::timeline::TimedYear] = match year {
        None => &years[..],
        Some(y) => match years.iter().position(|ty| ty.year == y) {
            Some(i) if !years[i].rows.is_empty() => &years[i..=i],
            _ => return Answer::Code(201),
        },
    };
    let total: u64 = listed.iter().map(|ty| ty.rows.len() as u64).sum();
    let first = u64::from(page_index - 1) * u64::from(page_size);
    if first >= total && (year.is_some() || page_index > 1) {
        return Answer::Code(201);
    }
    let client_list = listed
        .iter()
        .flat_map(|ty| ty.rows.iter().map(move |r| (ty, r)))
        .skip(first as usize)
        .take(page_size as usize)
        .map(|(ty, r)| {
            data::SimRow::new(config.seed, r.revision, search_key, &ty.year, r.index).in_report(&ty.year, r.half)
        })
        .collect();
    let page = DataPage {
        order_number: order_number(state),
        paging: Paging { page_size, page_index, total_records: total },
        result: PageResult { year_list: years.iter().map(|y| y.year.as_str()).collect(), client_list },
        status: "200",
        message: codes::wire_message(200),
    };
    match serde_json::to_string(&page) {
        Ok(body) => Answer::Data(body),
        Err(_) => Answer::Http(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// A 200 answer's body, in the API's field order.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct DataPage<'a> {
    order_number: String,
    paging: Paging,
    result: PageResult<'a>,
    status: &'static str,
    message: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Paging {
    page_size: u32,
    page_index: u32,
    total_records: u64,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PageResult<'a> {
    year_list: Vec<&'a str>,
    client_list: Vec<data::SimRow>,
}

fn order_number(state: &SimState) -> String {
    let n = state.orders.fetch_add(1, Ordering::Relaxed);
    let now = chrono::Utc::now().format("%Y%m%d%H%M%S");
    format!("CUSTOMER{now}{n:08}")
}

fn json_response(state: &SimState, code: u32, paging: Value, result: Value) -> Response {
    let valid = codes::info(code).is_some_and(|i| i.valid_request);
    let body = json!({
        "OrderNumber": if valid { Value::String(order_number(state)) } else { Value::Null },
        "Paging": paging,
        "Result": result,
        "Status": code.to_string(),
        "Message": codes::wire_message(code),
    });
    (StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response()
}

/// A response whose body stream fails at once: hyper then closes the
/// connection mid-response, which the client sees as a dropped connection.
fn abort_response() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("simulated dropped connection"))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("content-length", "4096")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
