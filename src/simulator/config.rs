//! What a simulator serves and how it misbehaves: its data, accounts, what
//! the query without `year` lists, and the faults it injects.

use std::time::Duration;

use super::data;

/// What the simulator accepts and how it misbehaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of the data generator: the same seed and key give the same data.
    pub seed: u64,
    /// Accepted `(AppKey, SecretKey)` pairs.
    pub accounts: Vec<(String, String)>,
    /// Largest accepted difference between `Timespan` and the server clock.
    pub max_clock_skew: Duration,
    /// Fault injection (docs/design.md §6).
    pub faults: Faults,
    /// Every company with years reports this many more recent years.
    pub extra_years: u32,
    /// Revision of the row contents (0 = the original data).
    pub revision: u64,
    /// The revision changes only each company's latest year (its older
    /// years keep the original rows), as a new annual report would.
    pub revise_latest_year_only: bool,
    /// What the companies look like.
    pub profile: data::Profile,
    /// What a query without `year` lists.
    pub listing: Listing,
    /// Which picture addresses the rows carry.
    pub pictures: data::Pictures,
    /// When each report comes out (off: every year is there from the start).
    pub timeline: Option<super::Timeline>,
    /// Keep every request's arrival ([`SimHandle::arrivals`]) for tests and
    /// benchmarks. The standalone `mock-server` turns it off so that its
    /// memory does not grow with every request it answers.
    pub keep_arrivals: bool,
    /// Every company's named customers are its own: no name or KeyNo is
    /// shared across companies (a list of small private companies; the
    /// bytes benchmark's hardest case for storing a name once).
    pub own_names: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 2019,
            accounts: vec![(super::DEMO_KEY.into(), super::DEMO_SECRET.into())],
            max_clock_skew: Duration::from_secs(300),
            faults: Faults::default(),
            extra_years: 0,
            revision: 0,
            revise_latest_year_only: false,
            profile: data::Profile::Paging,
            listing: Listing::EveryYear,
            pictures: data::Pictures::default(),
            timeline: None,
            keep_arrivals: true,
            own_names: false,
        }
    }
}

/// What a query without `year` (the all-years listing) answers. The vendor's
/// document does not say; its example lists rows of several years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Listing {
    /// Every year's rows, most recent year first, paged like any query;
    /// `TotalRecords` counts them all (the vendor's example).
    #[default]
    EveryYear,
    /// Only the latest year's rows; `TotalRecords` counts only those.
    LatestYear,
    /// The latest year's rows with `TotalRecords` of every year: pages that
    /// do not add up (how this simulator answered before it knew better).
    LatestRowsAllTotal,
}

/// Fault injection knobs. Shares are probabilities in `0.0..=1.0`, decided
/// per request after authentication.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share of requests answered with vendor code 120.
    pub throttle_share: f64,
    /// Share answered with an HTTP 500 HTML page.
    pub http500_share: f64,
    /// Share answered with an HTTP 502 HTML page (a proxy in the way).
    pub http502_share: f64,
    /// Share whose connection is dropped without an answer.
    pub drop_share: f64,
    /// Share answered 200 with a body cut in half.
    pub truncate_share: f64,
    /// Random extra latency per request, uniformly in `min..=max`.
    pub latency: Option<(Duration, Duration)>,
    /// Everything answers 120 between these offsets from server start.
    pub storm: Option<(Duration, Duration)>,
    /// Answer 120 when more than this many requests arrive in one second.
    pub qps_cap: Option<u32>,
    /// Answer 116 once this many requests have been served.
    pub daily_quota: Option<u64>,
}
