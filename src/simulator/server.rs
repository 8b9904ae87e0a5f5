//! The simulator's HTTP side: an axum router that speaks the wire format of
//! docs/design.md §1, verifies key/Token/Timespan, checks parameters, and records every
//! request so tests can verify what was paid for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::answer::{abort_response, decide, json_response, Answer};
use super::config::SimConfig;
use super::state::{lock, Arrival, SimHandle, SimState};

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
        let state = SimState::new(config);
        let cancel = CancellationToken::new();
        let app = router(state.clone());
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
                tracing::warn!(error = %e, "The simulator stopped serving.");
            }
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
        // A panic in the server is the caller's (a test's) to see.
        if let Err(e) = self.task.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

/// The router: both the pro.qcc.com path and the open-API path.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/api/yj/Customer/GetList", get(get_list))
        .route("/Customer/GetList", get(get_list))
        .with_state(state)
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
