//! The HTTP client for `Customer/GetList`: builds and signs one request,
//! sends it, and reports what came back without deciding what to do about it
//! (that is [`super::codes`] and the pipeline's job).

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use super::codes::{self, Action};
use super::sign;
use super::wire::{self, Response, WireError};

/// The account's AppKey and SecretKey. The secret never leaves this struct
/// except as an MD5 token, and `Debug` does not print it.
#[derive(Clone)]
pub struct Credentials {
    key: String,
    secret: String,
}

impl Credentials {
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self { key: key.into(), secret: secret.into() }
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("key", &self.key).field("secret", &"<redacted>").finish()
    }
}

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoint: reqwest::Url,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

/// One page to ask for. `year: None` is the discovery call (docs/design.md §4).
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    pub search_key: &'a str,
    pub year: Option<&'a str>,
    pub page_index: u32,
    pub page_size: u32,
}

/// The most of an answer's body that is read. A full page of 50 rows is
/// about 13 KB; captive portals and broken gateways send far bigger bodies,
/// and reading one whole would cost its size in memory.
pub const MAX_BODY: usize = 4 << 20;

/// Read a body, stopping at `cap` bytes: a declared `Content-Length` over it
/// is refused before reading, a chunked body as soon as it passes it.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<bytes::Bytes, Option<reqwest::Error>> {
    let declared = response.content_length();
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(None);
    }
    // Most bodies arrive as one chunk: return it as it is, without a copy.
    let Some(first) = response.chunk().await.map_err(Some)? else { return Ok(bytes::Bytes::new()) };
    if first.len() > cap {
        return Err(None);
    }
    let Some(second) = response.chunk().await.map_err(Some)? else { return Ok(first) };
    let mut body = bytes::BytesMut::with_capacity(declared.map_or(16 << 10, |n| n as usize));
    let mut chunk = Some(first);
    let mut next = Some(second);
    while let Some(c) = chunk {
        if body.len() + c.len() > cap {
            return Err(None);
        }
        body.extend_from_slice(&c);
        chunk = match next.take() {
            Some(n) => Some(n),
            None => response.chunk().await.map_err(Some)?,
        };
    }
    Ok(body.freeze())
}

/// Why a call produced no usable response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("connection error: {0}")]
    Transport(String),
    #[error("HTTP {0}")]
    Http(u16),
    /// The body ran past [`MAX_BODY`]: not a page (a proxy's or portal's
    /// answer); reading stopped there, nothing of it is kept.
    #[error("body too large (over {} MiB; a page of 50 rows is ~13 KB)", MAX_BODY >> 20)]
    BodyTooLarge,
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Everything one HTTP request produced, for the call ledger and the decision.
#[derive(Debug)]
pub struct CallOutcome {
    /// When the request left, ISO-8601 UTC.
    pub started_at: String,
    pub duration: Duration,
    pub http_status: Option<u16>,
    /// The body as received (kept for the `raw_pages` archive on 200).
    pub body: Option<bytes::Bytes>,
    pub result: Result<Response, CallError>,
    /// A `Retry-After` header, honoured as a minimum wait when throttled.
    pub retry_after: Option<Duration>,
}

impl CallOutcome {
    /// What the pipeline should do about this answer (docs/design.md §1.3).
    pub fn action(&self) -> Action {
        match &self.result {
            Ok(resp) => codes::classify(resp.status),
            Err(CallError::Http(status)) => codes::classify_http(*status),
            Err(_) => Action::Transient,
        }
    }

    /// The vendor status code as text (`"202"`), or `None` without a response.
    pub fn status_text(&self) -> Option<String> {
        self.result.as_ref().ok().map(|r| r.status.to_string())
    }

    /// A short error description for the ledger (never contains secrets).
    pub fn error_text(&self) -> Option<String> {
        match &self.result {
            Ok(r) if r.status == 200 => None,
            Ok(r) => r.message.clone(),
            Err(e) => Some(e.to_string()),
        }
    }
}

/// A shared, cheap-to-clone client (reqwest pools connections inside).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    credentials: Credentials,
    /// Stamps each call's `started_at` (the daily limit counts those). The
    /// signature's `Timespan` is always the system's: the server checks it.
    clock: crate::clock::Clock,
}

impl Client {
    pub fn new(
        config: &ClientConfig,
        credentials: Credentials,
        clock: crate::clock::Clock,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("qcc-customers/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self { http, endpoint: config.endpoint.clone(), credentials, clock })
    }

    /// Send one signed request. Never fails: every failure is in the outcome.
    pub async fn get_page(&self, req: PageRequest<'_>) -> CallOutcome {
        let mut url = self.endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("key", self.credentials.key());
            q.append_pair("searchKey", req.search_key);
            if let Some(year) = req.year {
                q.append_pair("year", year);
            }
            q.append_pair("pageIndex", &req.page_index.to_string());
            q.append_pair("pageSize", &req.page_size.to_string());
        }
        // One Timespan per request, used for both the header and the hash.
        let timespan = sign::timespan(self.clock.now());
        let token = sign::token(self.credentials.key(), &timespan, &self.credentials.secret);
        let mut headers = HeaderMap::new();
        headers.insert("Timespan", header_value(&timespan));
        let mut token_header = header_value(&token);
        token_header.set_sensitive(true);
        headers.insert("Token", token_header);

        let started_at = self.clock.now_iso();
        let start = Instant::now();
        let sent = self.http.get(url).headers(headers).send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return transport_failure(started_at, start, e),
        };
        let http_status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match read_capped(response, MAX_BODY).await {
            Ok(b) => b,
            Err(Some(e)) => {
                let mut out = transport_failure(started_at, start, e);
                out.http_status = Some(http_status);
                return out;
            }
            Err(None) => {
                return CallOutcome {
                    started_at,
                    duration: start.elapsed(),
                    http_status: Some(http_status),
                    body: None,
                    result: Err(CallError::BodyTooLarge),
                    retry_after,
                }
            }
        };
        let result = if http_status == 200 {
            wire::parse(&body).map_err(CallError::from)
        } else {
            Err(CallError::Http(http_status))
        };
        CallOutcome {
            started_at,
            duration: start.elapsed(),
            http_status: Some(http_status),
            body: Some(body),
            result,
            retry_after,
        }
    }
}

fn header_value(s: &str) -> HeaderValue {
    // Both values are ASCII digits/hex by construction.
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn transport_failure(started_at: String, start: Instant, e: reqwest::Error) -> CallOutcome {
    // `without_url` keeps the query string (and so the AppKey) out of the ledger.
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    CallOutcome {
        started_at,
        duration: start.elapsed(),
        http_status: None,
        body: None,
        result: Err(CallError::Transport(text)),
        retry_after: None,
    }
}
