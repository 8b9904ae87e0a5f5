//! What the pipeline hands the store: plain data, no SQL. One [`Commit`] is
//! one transaction's worth of meaning — a page's rows, its checkpoint and its
//! call record travel together so they are stored together or not at all.

use crate::qcc::ClientRow;

/// One HTTP request, for the `api_calls` ledger.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub search_key: String,
    pub year: Option<String>,
    pub page_index: u32,
    pub page_size: u32,
    pub http_status: Option<u16>,
    pub status: Option<String>,
    pub order_number: Option<String>,
    pub started_at: String,
    pub duration_ms: u64,
    pub attempt: u32,
    pub error: Option<String>,
}

/// A 200 page kept as the receipt for what was paid (`raw_pages`).
#[derive(Debug, Clone)]
pub struct RawPage {
    pub query_year: String,
    pub page_index: u32,
    pub order_number: Option<String>,
    /// The body as received, zlib-compressed.
    pub body: Vec<u8>,
}

/// How far a company-year got (`company_years.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearState {
    Partial,
    Complete,
    Truncated,
}

impl YearState {
    pub fn as_str(self) -> &'static str {
        match self {
            YearState::Partial => "partial",
            YearState::Complete => "complete",
            YearState::Truncated => "truncated",
        }
    }
}

/// A company's state (`companies.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanyState {
    Pending,
    Done,
    NoResult,
    Rejected,
    Invalid,
    Deferred,
    Parked,
}

impl CompanyState {
    pub fn as_str(self) -> &'static str {
        match self {
            CompanyState::Pending => "pending",
            CompanyState::Done => "done",
            CompanyState::NoResult => "no_result",
            CompanyState::Rejected => "rejected",
            CompanyState::Invalid => "invalid",
            CompanyState::Deferred => "deferred",
            CompanyState::Parked => "parked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => CompanyState::Pending,
            "done" => CompanyState::Done,
            "no_result" => CompanyState::NoResult,
            "rejected" => CompanyState::Rejected,
            "invalid" => CompanyState::Invalid,
            "deferred" => CompanyState::Deferred,
            "parked" => CompanyState::Parked,
            _ => return None,
        })
    }
}

/// One thing to record about a company, applied in order within a [`Commit`].
#[derive(Debug, Clone)]
pub enum Event {
    /// Discovery answered 200: the year list starts a new fetch cycle.
    Discovered { year_list: Vec<String>, raw: Option<RawPage> },
    /// A year page answered 200: rows + checkpoint (+ receipt).
    Page {
        query_year: String,
        page_index: u32,
        total_records: u64,
        pages_total: u32,
        year_state: YearState,
        rows: Vec<ClientRow>,
        raw: Option<RawPage>,
    },
    /// A year ended without a 200 page (201 → complete with no rows, 207 →
    /// truncated): set its checkpoint.
    YearEnded { query_year: String, state: YearState, total_records: u64, pages_total: u32, pages_fetched: u32 },
    /// The company's state changes.
    Company { state: CompanyState, status_code: Option<String>, message: Option<String>, retry_after: Option<String> },
}

/// One transaction's worth: an optional call record and the events it caused.
#[derive(Debug, Clone)]
pub struct Commit {
    pub search_key: String,
    pub call: Option<CallRecord>,
    pub events: Vec<Event>,
}

/// A row of the input, after validation, ready to register.
#[derive(Debug, Clone)]
pub struct InputRecord {
    /// 1-based line (record) number in the input, for messages.
    pub line: u64,
    /// Trimmed key as spelled in the input.
    pub search_key: String,
    /// What de-duplicates: trimmed and full-width folded.
    pub norm_key: String,
    /// The row's columns as a JSON object.
    pub row_json: String,
    /// Why the key cannot be sent, if it cannot.
    pub invalid: Option<String>,
}

/// What the database knows about a company when a run reaches it.
#[derive(Debug, Clone)]
pub struct CompanySnapshot {
    pub search_key: String,
    pub state: CompanyState,
    pub year_list: Option<Vec<String>>,
    pub discovered_at: Option<String>,
    pub fetched_at: Option<String>,
    pub retry_after: Option<String>,
    pub years: Vec<YearRow>,
}

/// A company-year checkpoint.
#[derive(Debug, Clone)]
pub struct YearRow {
    pub year: String,
    pub state: YearState,
    pub total_records: Option<u64>,
    pub pages_total: Option<u32>,
    pub pages_fetched: u32,
    pub fetched_at: Option<String>,
    /// The page size `pages_fetched` counts in (`None` in files before v3).
    pub page_size: Option<u32>,
}

/// The outcome of registering one input row.
#[derive(Debug)]
pub enum Registration {
    /// Seen before in this run's input: counted, not queried.
    Duplicate,
    /// Recorded as invalid; costs nothing.
    Invalid,
    /// A company to consider (new or known).
    Company(CompanySnapshot),
}
