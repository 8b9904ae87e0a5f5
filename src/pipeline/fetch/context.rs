//! What the companies in flight share, and the one place a company's
//! ending is recorded: [`Ctx::end_company`] (done, rejected, no result,
//! deferred, parked) and [`Ctx::settle`] (the reasons to stop for this run a
//! call can bring). Which answer of a company's units ends it first is
//! decided in `pages.rs` (`Pager::ending`); everything it records comes here.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::call::{Caller, NotNow};
use super::handoff::{Handed, Handoff};
use super::lanes::Occupancy;
use super::paging::UnitEnd;
use crate::clock::{self, Clock};
use crate::pipeline::control::parking::Parking;
use crate::pipeline::control::shutdown::Stop;
use crate::pipeline::plan::listing::{self, Coverage};
use crate::pipeline::plan::PlanOptions;
use crate::pipeline::report::stats::Stats;
use crate::pipeline::writer::WriteMsg;
use crate::store::receipt::{Dictionary, Sample, Sealer};
use crate::store::records::{CallRecord, Commit, CompanyState, Event, EvidenceKind, Query, RawPage};

/// Everything the companies in flight share. Built once by
/// `pipeline::run`, shared behind an `Arc` by the dispatcher's tasks, and
/// dropped when the dispatcher returns (which closes the writer's channel
/// once the caller's hand-off goes too).
pub struct Ctx {
    /// Makes every call (rate, budget, retries); owns its own hand-off for
    /// retried calls' records.
    pub caller: Caller,
    /// To the writer: every answer leaves the fetch stage here.
    pub handoff: Handoff,
    /// Why the run stops, once it does; the dispatcher watches it.
    pub stop: Arc<Stop>,
    pub plan: PlanOptions,
    /// Keep 200 bodies in `raw_pages`.
    pub archive: bool,
    /// Compresses them, against the file's dictionary once there is one.
    pub sealer: Arc<Sealer>,
    pub stats: Arc<Stats>,
    /// 110: when parked companies are due again (set here, taken back by the
    /// dispatcher).
    pub parking: Parking,
    /// What the all-years listing is known to cover; workers teach it.
    pub listing: listing::Knowledge,
    /// The time of day for checkpoints and cycles.
    pub clock: Clock,
    /// Companies in flight against worker slots: how many pages each may
    /// have in flight (more than one only when slots are free).
    pub occupancy: Occupancy,
}

impl Ctx {
    /// The receipt of a 200 page, when receipts are kept.
    pub fn receipt(
        &self,
        body: Option<&[u8]>,
        order_number: &Option<String>,
        query: &Query,
        page: u32,
    ) -> Option<RawPage> {
        if !self.archive {
            return None;
        }
        let sealed = self.sealer.seal(body?)?;
        if let Some(sample) = sealed.sample {
            self.learn_dictionary(sample);
        }
        Some(RawPage {
            query_year: query.archive_name().to_string(),
            page_index: page,
            order_number: order_number.clone(),
            body: sealed.body,
            dict_id: sealed.dict_id,
        })
    }

    /// Train a dictionary on the run's first pages, off the workers'
    /// threads; hand it to the writer, then compress with it. Receipts made
    /// meanwhile are plain zstd.
    fn learn_dictionary(&self, sample: Sample) {
        let (sealer, writer) = (self.sealer.clone(), self.handoff.writer.clone());
        tokio::spawn(async move {
            let Ok(Some(dictionary)) =
                tokio::task::spawn_blocking(move || Dictionary::train(sample.id, &sample.bodies)).await
            else {
                return;
            };
            let dictionary = Arc::new(dictionary);
            // In the channel before any receipt that needs it.
            if writer.send(WriteMsg::Dictionary(dictionary.clone())).await.is_ok() {
                sealer.adopt(dictionary);
            }
        });
    }

    /// The event that records what an answer showed about the listing, if it
    /// is news: the first evidence either way, and every contradiction.
    pub fn evidence(
        &self,
        key: &str,
        kind: EvidenceKind,
        detail: String,
        order_number: Option<String>,
    ) -> Option<Event> {
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
    pub fn compare_with_listing(
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
    pub async fn listing_contradicted(
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
        match self.handoff.commit(Commit { search_key: key.to_string(), call, events }).await {
            Ok(()) => UnitEnd::Contradicted,
            Err(_) => UnitEnd::Unfinished,
        }
    }

    /// Record a final or deferring outcome for the company, with its call
    /// and any events that came with it.
    pub async fn end_company(
        &self,
        key: &str,
        call: Option<CallRecord>,
        end: CompanyEnd,
        mut events: Vec<Event>,
    ) -> Handed {
        events.push(self.company_event(end));
        self.handoff.commit(Commit { search_key: key.to_string(), call, events }).await
    }

    /// The event that sets a company's state; a parked company's wait starts now.
    fn company_event(&self, end: CompanyEnd) -> Event {
        let CompanyEnd { state, code, message } = end;
        let retry_after = (state == CompanyState::Parked).then(|| clock::iso(self.parking.park()));
        Event::Company { state, status_code: code, message, retry_after }
    }

    /// Record why a company stops for this run (defer, park, stop).
    pub async fn settle(&self, key: &str, why: NotNow) -> Handed {
        match why {
            NotNow::Deferred { reason, code, call } => {
                let end = CompanyEnd { state: CompanyState::Deferred, code, message: Some(reason) };
                self.end_company(key, Some(call), end, vec![]).await
            }
            NotNow::Parked { message, call } => {
                let end = CompanyEnd { state: CompanyState::Parked, code: Some("110".into()), message };
                self.end_company(key, Some(call), end, vec![]).await
            }
            NotNow::Stopped { call: Some(call) } => self.handoff.commit_call(key, call, vec![]).await,
            NotNow::Stopped { call: None } => Ok(()),
        }
    }

    /// A second reason to stop, after the company already ended for this
    /// run: only its call is recorded.
    pub async fn record_only(&self, key: &str, why: NotNow) -> Handed {
        match why {
            NotNow::Deferred { call, .. } | NotNow::Parked { call, .. } | NotNow::Stopped { call: Some(call) } => {
                self.handoff.commit_call(key, call, vec![]).await
            }
            NotNow::Stopped { call: None } => Ok(()),
        }
    }
}

/// The state a company ends in, with the code and message that put it there.
pub struct CompanyEnd {
    pub state: CompanyState,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl CompanyEnd {
    /// Every unit of the cycle is stored.
    pub fn done() -> Self {
        CompanyEnd { state: CompanyState::Done, code: Some("200".into()), message: None }
    }
}
