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

/// Which query a page answers: the all-years listing (no `year`) or one year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Listing,
    Year(String),
}

impl Query {
    /// The `year` parameter sent.
    pub fn year(&self) -> Option<&str> {
        match self {
            Query::Listing => None,
            Query::Year(y) => Some(y),
        }
    }

    /// How `raw_pages.query_year` names it: `''` for the listing.
    pub fn archive_name(&self) -> &str {
        self.year().unwrap_or("")
    }
}

/// The report year a row belongs to: the year of its own `Year` (`"2018"`
/// for `"2018-06"`), or `None` when it carries none.
pub fn report_year(row_year: Option<&str>) -> Option<&str> {
    let y = row_year?.trim().get(..4)?;
    y.bytes().all(|b| b.is_ascii_digit()).then_some(y)
}

/// How the rest of a fetch cycle is fetched after its discovery call
/// (`companies.fetch_plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPlan {
    /// Nothing left: the discovery answer was the whole listing, or nothing changed.
    Nothing,
    /// The listing's remaining pages.
    Listing,
    /// Page per year.
    Years,
}

impl FetchPlan {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchPlan::Nothing => "none",
            FetchPlan::Listing => "listing",
            FetchPlan::Years => "years",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => FetchPlan::Nothing,
            "listing" => FetchPlan::Listing,
            "years" => FetchPlan::Years,
            _ => return None,
        })
    }
}

/// What an answer showed about the listing (`listing_evidence.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceKind {
    /// A whole listing carried every year of its `YearList` (two or more).
    EveryYear,
    /// The listing held only some of a company's rows.
    SomeYears,
    /// After the listing was learned, an answer contradicted it for one company.
    Contradiction,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::EveryYear => "every_year",
            EvidenceKind::SomeYears => "some_years",
            EvidenceKind::Contradiction => "contradiction",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "every_year" => EvidenceKind::EveryYear,
            "some_years" => EvidenceKind::SomeYears,
            "contradiction" => EvidenceKind::Contradiction,
            _ => return None,
        })
    }
}

/// One recorded piece of evidence.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Evidence {
    #[serde(serialize_with = "evidence_kind")]
    pub kind: EvidenceKind,
    pub search_key: String,
    pub order_number: Option<String>,
    pub observed_at: String,
    pub detail: String,
}

fn evidence_kind<S: serde::Serializer>(k: &EvidenceKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// A company's listing checkpoint (`company_listings`).
#[derive(Debug, Clone, PartialEq)]
pub struct ListingRow {
    pub complete: bool,
    pub total_records: u64,
    pub pages_total: u32,
    pub stored: StoredPages,
    pub rows_fetched: u64,
    pub page_size: u32,
}

/// Which pages of a unit (a year, or the listing) are stored in this cycle:
/// `1..=prefix`, and the pages in `beyond` (pages may be stored out of
/// order when a company's pages are fetched side by side). Stored as
/// `pages_fetched` (the prefix) and `pages_beyond` (comma-separated, NULL
/// when empty) in `company_years` and `company_listings`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredPages {
    pub prefix: u32,
    pub beyond: std::collections::BTreeSet<u32>,
}

impl StoredPages {
    /// The pages of a checkpoint: its prefix and its `pages_beyond` text
    /// (anything unreadable in it counts as not stored: it is fetched again).
    pub fn from_checkpoint(prefix: u32, beyond: Option<&str>) -> Self {
        let mut s = StoredPages { prefix, beyond: Default::default() };
        for p in beyond.unwrap_or("").split(',').filter_map(|p| p.trim().parse::<u32>().ok()) {
            s.insert(p);
        }
        s
    }

    pub fn insert(&mut self, page: u32) {
        if page > self.prefix {
            self.beyond.insert(page);
        }
        while self.beyond.remove(&(self.prefix + 1)) {
            self.prefix += 1;
        }
    }

    pub fn contains(&self, page: u32) -> bool {
        page <= self.prefix || self.beyond.contains(&page)
    }

    /// Every page of `1..=last` is stored.
    pub fn covers(&self, last: u32) -> bool {
        self.prefix >= last
    }

    /// How many pages are stored.
    pub fn count(&self) -> u32 {
        self.prefix + self.beyond.len() as u32
    }

    /// The pages of `1..=last` not stored, in order.
    pub fn missing(&self, last: u32) -> impl Iterator<Item = u32> + '_ {
        (self.prefix + 1..=last).filter(|p| !self.beyond.contains(p))
    }

    /// `pages_beyond` as stored: NULL when every stored page is in the prefix.
    pub fn beyond_text(&self) -> Option<String> {
        if self.beyond.is_empty() {
            return None;
        }
        Some(self.beyond.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
    }
}

/// A 200 page kept as the receipt for what was paid (`raw_pages`).
#[derive(Debug, Clone)]
pub struct RawPage {
    /// `''` for the listing.
    pub query_year: String,
    pub page_index: u32,
    pub order_number: Option<String>,
    /// The body as received, compressed (`store::receipt`).
    pub body: Vec<u8>,
    /// The file's dictionary `body` was compressed against, if any.
    pub dict_id: Option<i64>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompanyState {
    #[default]
    Pending,
    Done,
    NoResult,
    Rejected,
    Invalid,
    Deferred,
    Parked,
}

impl CompanyState {
    /// A fetch cycle that ends in this state is a completed check of the
    /// company: it is recorded and the next one scheduled.
    pub fn ends_check(self) -> bool {
        matches!(self, CompanyState::Done | CompanyState::NoResult)
    }

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
    /// Discovery answered 200: a new fetch cycle starts, and how it goes on.
    Discovered {
        year_list: Vec<String>,
        total_records: Option<u64>,
        /// TotalRecords, YearList and page 1, hashed: what "unchanged" compares.
        digest: String,
        plan: FetchPlan,
        raw: Option<RawPage>,
    },
    /// An answer showed what the listing covers.
    Evidence { kind: EvidenceKind, order_number: Option<String>, detail: String },
    /// The listing contradicted itself for this company: the rest of the
    /// cycle is paged per year, and listing rows not yet in `customers` are dropped.
    ListingAbandoned,
    /// A page answered 200: rows + checkpoint (+ receipt).
    Page(PageEvent),
    /// A page answered 200 whose rows are not stored (its unit ended or was
    /// abandoned while it was in flight): only its receipt is kept.
    Receipt(RawPage),
    /// A year ended without a 200 page (201 → complete with no rows, 207 →
    /// truncated): set its checkpoint.
    /// `pages_fetched`: the pages `1..=pages_fetched` stored (the year's end).
    YearEnded { query_year: String, state: YearState, total_records: u64, pages_total: u32, pages_fetched: u32 },
    /// The company's state changes.
    Company { state: CompanyState, status_code: Option<String>, message: Option<String>, retry_after: Option<String> },
}

/// A page answered 200: its rows and its unit's checkpoint (+ receipt). For
/// the listing, `year_state` is `Complete` on the page that completes the
/// company.
#[derive(Debug, Clone)]
pub struct PageEvent {
    pub query: Query,
    pub page_index: u32,
    pub total_records: u64,
    pub pages_total: u32,
    pub year_state: YearState,
    /// The unit's stored pages with this one: its checkpoint.
    pub stored: StoredPages,
    /// The rows those pages held (the listing's checkpoint checks them
    /// against TotalRecords).
    pub unit_rows: u64,
    pub rows: Vec<ClientRow>,
    pub raw: Option<RawPage>,
}

impl PageEvent {
    /// A report year answered whole on one page, without a receipt (what
    /// tests and tools store directly).
    pub fn whole_year(year: &str, rows: Vec<ClientRow>) -> PageEvent {
        PageEvent {
            query: Query::Year(year.into()),
            page_index: 1,
            total_records: rows.len() as u64,
            pages_total: 1,
            year_state: YearState::Complete,
            stored: StoredPages { prefix: 1, ..StoredPages::default() },
            unit_rows: 0,
            rows,
            raw: None,
        }
    }
}

/// One transaction's worth: an optional call record and the events it caused.
#[derive(Debug, Clone)]
pub struct Commit {
    pub search_key: String,
    pub call: Option<CallRecord>,
    pub events: Vec<Event>,
}

/// A report period a company's rows carry, as `company_periods` holds it.
#[derive(Debug, Clone)]
pub struct PeriodRow {
    pub period: String,
    pub first_seen_at: String,
    /// The check before the one that first stored it; `None` when it was
    /// there at the company's first fetch.
    pub not_before: Option<String>,
}

/// What a completed check of a company found (`company_checks.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The company's first check.
    First,
    /// Rows were stored since its discovery, or a period is new.
    Changed,
    /// Nothing new.
    Unchanged,
    /// A deep check that found no new period: it re-paged whatever page 1
    /// said, so its stored rows say nothing of a change.
    Deep,
    /// 201: the company has no data.
    NoResult,
}

impl CheckOutcome {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::First => "first",
            CheckOutcome::Changed => "changed",
            CheckOutcome::Unchanged => "unchanged",
            CheckOutcome::Deep => "deep",
            CheckOutcome::NoResult => "no_result",
        }
    }
}

/// What the revisit schedule needs to know of one company.
#[derive(Debug, Clone)]
pub struct CompanyHistory {
    pub search_key: String,
    pub state: CompanyState,
    pub periods: Vec<PeriodRow>,
    /// The latest check (the one that just ended, in the writer).
    pub last_check_at: Option<String>,
    /// The company's first check.
    pub first_check_at: Option<String>,
    pub deep_checked_at: Option<String>,
    /// The last discovery's TotalRecords.
    pub total_records: Option<u64>,
    /// The rows of its two latest report years, when their checkpoints say.
    pub latest_two_years_rows: Option<u64>,
    /// The input row's columns (JSON), for a booked date.
    pub input_row: Option<String>,
    pub fetched_at: Option<String>,
    pub next_check_at: Option<String>,
    pub next_check_reason: Option<String>,
    /// The next check is a deep one: it re-pages the latest report years.
    pub next_check_deep: bool,
}

impl CompanyHistory {
    /// What the plan reads of the company to decide when it is due (its
    /// state, last fetch and next check), as a run would see it.
    pub fn snapshot(&self) -> CompanySnapshot {
        CompanySnapshot {
            search_key: self.search_key.clone(),
            state: self.state,
            fetched_at: self.fetched_at.clone(),
            next_check_at: self.next_check_at.clone(),
            next_check_reason: self.next_check_reason.clone(),
            next_check_deep: self.next_check_deep,
            ..Default::default()
        }
    }
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
#[derive(Debug, Clone, Default)]
pub struct CompanySnapshot {
    pub search_key: String,
    pub state: CompanyState,
    pub year_list: Option<Vec<String>>,
    pub discovered_at: Option<String>,
    pub fetched_at: Option<String>,
    pub retry_after: Option<String>,
    /// The current cycle's discovery: TotalRecords, digest, and plan.
    pub total_records: Option<u64>,
    pub discovery_digest: Option<String>,
    pub fetch_plan: Option<FetchPlan>,
    /// The listing checkpoint, if a listing was ever stored.
    pub listing: Option<ListingRow>,
    pub years: Vec<YearRow>,
    /// The revisit schedule's next check and why (`None` before it ran).
    pub next_check_at: Option<String>,
    pub next_check_reason: Option<String>,
    /// The next check is a deep one (`companies.next_check_deep`).
    pub next_check_deep: bool,
}

/// A company-year checkpoint.
#[derive(Debug, Clone)]
pub struct YearRow {
    pub year: String,
    pub state: YearState,
    pub total_records: Option<u64>,
    pub pages_total: Option<u32>,
    pub stored: StoredPages,
    pub fetched_at: Option<String>,
    /// The page size the stored pages count in (`None` in files before v3).
    pub page_size: Option<u32>,
    /// The rows came from the company's listing, not from paging this year.
    pub from_listing: bool,
}

/// The outcome of registering one input row.
#[derive(Debug)]
pub enum Registration {
    /// Seen before in this run's input: counted, not queried.
    Duplicate,
    /// Recorded as invalid; costs nothing.
    Invalid,
    /// A company to consider (new or known).
    Company(Box<CompanySnapshot>),
}
