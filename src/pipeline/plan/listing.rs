//! The all-years listing (the query without `year`): what it is known to
//! cover, and how a company's discovery answer decides the rest of its fetch
//! cycle. Pure functions and one shared atomic: every rule is unit-tested.
//!
//! The vendor does not say what the listing covers, so the tool learns it:
//! a whole listing (page 1 holds all of `TotalRecords`) whose rows carry every
//! year of its `YearList`, two years or more, shows that it covers every year.
//! A listing whose pages do not add up, or that lacks rows a year's own query
//! has, shows that it holds only some — and then the tool pages per year for
//! good. See docs/user-guide.md, "What a run costs".

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};

use md5::{Digest, Md5};

use crate::pipeline::plan::{pages_for, MAX_ENTRIES};
use crate::qcc::ClientRow;
use crate::store::read::ListingKnowledge;
use crate::store::records::{report_year, Evidence, EvidenceKind, FetchPlan};

/// What the listing is known to cover. Serialized (and shown in JSON) as
/// `unknown`, `every_year` or `some_years`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// No evidence yet: page per year, except companies whose own whole
    /// listing carries every year.
    #[default]
    Unknown,
    /// Learned: the listing covers every year.
    EveryYear,
    /// The listing holds only some years: page per year for good.
    SomeYears,
}

impl Coverage {
    /// What the database's evidence says, and the evidence it rests on: the
    /// first `some_years` wins over any `every_year`.
    pub fn of(known: &ListingKnowledge) -> (Coverage, Option<&Evidence>) {
        match (&known.some_years, &known.every_year) {
            (Some(e), _) => (Coverage::SomeYears, Some(e)),
            (None, Some(e)) => (Coverage::EveryYear, Some(e)),
            (None, None) => (Coverage::Unknown, None),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Unknown => "unknown",
            Coverage::EveryYear => "every_year",
            Coverage::SomeYears => "some_years",
        }
    }

    /// The plan this coverage gives, in words, with the evidence behind it
    /// when there is some: the one text the summary and the dry run show.
    pub fn describe(self, evidence: Option<&Evidence>) -> String {
        match (self, evidence) {
            (Coverage::EveryYear, Some(e)) => format!(
                "the all-years listing covers every year (learned from {}, order {}, {}): companies are paged by it",
                e.search_key,
                e.order_number.as_deref().unwrap_or("-"),
                e.observed_at
            ),
            (Coverage::EveryYear, None) => "the all-years listing covers every year: companies are paged by it".into(),
            (Coverage::SomeYears, Some(e)) => format!(
                "the all-years listing holds only some years ({}; {}, {}): companies are paged per year",
                e.detail, e.search_key, e.observed_at
            ),
            (Coverage::SomeYears, None) => {
                "the all-years listing holds only some years: companies are paged per year".into()
            }
            (Coverage::Unknown, _) => {
                "not yet learned what the all-years listing covers: companies are paged per year until a run learns it"
                    .into()
            }
        }
    }
}

/// Lets `summary.listing.coverage == "every_year"` read as the JSON does.
impl PartialEq<&str> for Coverage {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What the workers know, shared: learned once, by the first answer that shows it.
pub struct Knowledge(AtomicU8);

impl Knowledge {
    pub fn new(known: &ListingKnowledge) -> Self {
        Knowledge(AtomicU8::new(Coverage::of(known).0 as u8))
    }

    pub fn get(&self) -> Coverage {
        match self.0.load(Ordering::Acquire) {
            1 => Coverage::EveryYear,
            2 => Coverage::SomeYears,
            _ => Coverage::Unknown,
        }
    }

    /// Learn `c` if nothing is known yet. `true` for the one caller that
    /// taught it, which records the evidence; a later contradiction does not
    /// unlearn (it sends its own company back to per-year paging).
    pub fn learn(&self, c: Coverage) -> bool {
        self.0.compare_exchange(Coverage::Unknown as u8, c as u8, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

/// What one listing page says about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageFacts {
    /// Rows per report year.
    pub counts: BTreeMap<String, u64>,
    /// A row whose year is missing or not in `YearList` (its year, or `""`).
    pub stray: Option<String>,
}

impl PageFacts {
    pub fn of(rows: &[ClientRow], year_list: &[String]) -> Self {
        let mut facts = PageFacts::default();
        for r in rows {
            match report_year(r.year.as_deref()) {
                Some(y) if year_list.iter().any(|l| l == y) => *facts.counts.entry(y.to_string()).or_default() += 1,
                _ => {
                    facts.stray.get_or_insert_with(|| r.year.clone().unwrap_or_default());
                }
            }
        }
        facts
    }
}

/// A discovery answer (page 1 without `year`), as the plan sees it.
pub struct Discovery<'a> {
    pub total: Option<u64>,
    pub year_list: &'a [String],
    pub rows: &'a [ClientRow],
    pub page_size: u32,
}

impl Discovery<'_> {
    /// Page 1 holds the whole listing. Without `TotalRecords`, a short page is the last.
    pub fn whole(&self) -> bool {
        match self.total {
            Some(t) => self.rows.len() as u64 >= t,
            None => (self.rows.len() as u32) < self.page_size,
        }
    }

    /// Page 1 is as full as `TotalRecords` says it must be.
    pub fn adds_up(&self) -> bool {
        self.whole() || self.rows.len() as u32 == self.page_size
    }

    /// Pages of the listing at this page size.
    pub fn pages(&self) -> u32 {
        self.total.map_or(1, |t| pages_for(t, self.page_size).0.max(1))
    }

    /// TotalRecords, YearList and page 1, hashed: equal digests mean the
    /// company did not change (a refresh then costs this one call). Each
    /// field is fed to the hash as its bytes between separators; files written
    /// before this form stored [`Discovery::legacy_digest`], which
    /// [`Discovery::unchanged_since`] still understands.
    pub fn digest(&self) -> String {
        const SEP: &[u8] = &[0x1f];
        let mut h = Md5::new();
        fn text(h: &mut Md5, v: Option<&str>) {
            match v {
                Some(v) => {
                    h.update(b"s");
                    h.update(v.as_bytes());
                }
                None => h.update(b"n"),
            }
            h.update(SEP);
        }
        text(&mut h, self.total.map(|t| t.to_string()).as_deref());
        for y in self.year_list {
            text(&mut h, Some(y));
        }
        text(&mut h, Some("rows"));
        let mut number = [0u8; 9];
        for r in self.rows {
            for v in [&r.year, &r.key_no, &r.name, &r.image_url] {
                text(&mut h, v.as_deref());
            }
            for (amount, v) in [(r.sales_amount, &r.sales_amount_text), (r.sales_percent, &r.sales_percent_text)] {
                number[0] = u8::from(amount.is_some());
                number[1..].copy_from_slice(&amount.unwrap_or(0.0).to_bits().to_le_bytes());
                h.update(number);
                text(&mut h, v.as_deref());
            }
            for v in [&r.relationship, &r.source] {
                text(&mut h, v.as_deref());
            }
        }
        format!("{DIGEST_V2}{}", hex(&h.finalize()))
    }

    /// The digest as files written before the current form stored it (the
    /// rows' debug text, hashed; ~20× the CPU of [`Discovery::digest`]).
    fn legacy_digest(&self) -> String {
        let mut h = Md5::new();
        h.update(format!("{:?}\u{1}{:?}\u{1}", self.total, self.year_list).as_bytes());
        for r in self.rows {
            h.update(format!("{r:?}\u{1}").as_bytes());
        }
        hex(&h.finalize())
    }

    /// Whether this answer hashes to `done`, the digest stored when the
    /// company's last cycle completed (in either form).
    pub fn unchanged_since(&self, done: &str) -> bool {
        if done.starts_with(DIGEST_V2) {
            done == self.digest()
        } else {
            done == self.legacy_digest()
        }
    }
}

/// Marks the current digest form.
const DIGEST_V2: &str = "v2-";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the company's own history adds to the decision.
#[derive(Debug, Clone, Default)]
pub struct History<'a> {
    /// The company has stored rows (a refresh, or a retry after an earlier cycle).
    pub has_rows: bool,
    /// The digest of the last completed cycle's discovery, when the company is
    /// done and is being refreshed (`None` with `--full-refresh`).
    pub done_digest: Option<&'a str>,
    /// Some accepted year has no complete checkpoint (never fetched, or cut off).
    pub missing_years: bool,
    /// `--years`/`--since` narrow the years.
    pub filtered: bool,
    /// The least per-year paging can cost for what this cycle must fetch:
    /// one call per year to fetch, and at least ceil(rows in them / size).
    pub per_year_at_least: u64,
}

/// How a company goes on after its discovery answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub plan: FetchPlan,
    /// Store page 1's rows in `customers` (else only its receipt): a first
    /// fetch keeps them until per-year pages replace them; a refresh paged
    /// per year does not, its years are replaced one by one.
    pub store_page1: bool,
    /// The listing's pages (`Listing` plan).
    pub pages: u32,
    /// What this answer shows, to record once.
    pub evidence: Option<(EvidenceKind, String)>,
    /// Why, for the log.
    pub why: &'static str,
}

/// Decide the rest of a cycle from its discovery answer. Made when the
/// answer arrives, so a company in flight when the listing is learned uses it.
pub fn decide(d: &Discovery<'_>, facts: &PageFacts, coverage: Coverage, h: &History<'_>) -> Decision {
    let year_list = d.year_list;
    let missing: Vec<&String> = year_list.iter().filter(|y| !facts.counts.contains_key(*y)).collect();
    let consistent = facts.stray.is_none() && d.adds_up();
    let rows = d.rows.len();

    let evidence = match coverage {
        Coverage::Unknown if d.whole() && consistent && missing.is_empty() && year_list.len() >= 2 => Some((
            EvidenceKind::EveryYear,
            format!("a whole listing of {rows} rows carried every year of its YearList ({})", year_list.join(", ")),
        )),
        Coverage::Unknown if !d.adds_up() => {
            Some((EvidenceKind::SomeYears, format!("page 1 held {rows} rows of TotalRecords {}", d.total.unwrap_or(0))))
        }
        Coverage::EveryYear if !consistent => Some((
            EvidenceKind::Contradiction,
            match &facts.stray {
                Some(y) => format!("a row of year {y:?}, which is not in YearList"),
                None => format!("page 1 held {rows} rows of TotalRecords {}", d.total.unwrap_or(0)),
            },
        )),
        _ => None,
    };
    let learned = coverage == Coverage::EveryYear || matches!(evidence, Some((EvidenceKind::EveryYear, _)));
    let first_fetch = !h.has_rows;
    let decision =
        |plan, store_page1, why| Decision { plan, store_page1, pages: d.pages(), evidence: evidence.clone(), why };

    if h.done_digest.is_some_and(|old| d.unchanged_since(old)) && !h.missing_years {
        return decision(FetchPlan::Nothing, false, "unchanged since the last fetch");
    }
    if d.whole() && consistent && (missing.is_empty() || learned) {
        return decision(FetchPlan::Nothing, true, "page 1 is the whole listing");
    }
    let listing_reaches = d.total.is_some_and(|t| t <= MAX_ENTRIES);
    if learned && consistent && listing_reaches {
        // Σ_y ceil(n_y/50) ≥ ceil(T/50): for a first fetch of every year the
        // listing is never dearer. Otherwise compare with the least per-year can cost.
        let listing_cost = u64::from(d.pages() - 1);
        if (first_fetch && !h.filtered) || listing_cost <= h.per_year_at_least {
            return decision(FetchPlan::Listing, true, "the listing covers every year");
        }
        return decision(FetchPlan::Years, first_fetch, "per year is cheaper for what changed");
    }
    let why = match coverage {
        _ if !consistent => "the listing contradicts itself",
        _ if !listing_reaches && learned => "over 5,000 entries: the listing cannot reach them all",
        Coverage::SomeYears => "the listing holds only some years",
        _ => "not yet learned what the listing covers",
    };
    decision(FetchPlan::Years, first_fetch, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(year: &str) -> ClientRow {
        ClientRow { year: Some(year.into()), ..ClientRow::default() }
    }

    fn list(years: &[&str]) -> Vec<String> {
        years.iter().map(|y| y.to_string()).collect()
    }

    fn decide_on(total: u64, rows: &[ClientRow], years: &[String], c: Coverage, h: &History<'_>) -> Decision {
        let d = Discovery { total: Some(total), year_list: years, rows, page_size: 50 };
        decide(&d, &PageFacts::of(rows, years), c, h)
    }

    #[test]
    fn a_digest_stored_in_either_form_recognises_an_unchanged_answer_and_only_that() {
        let years = list(&["2018", "2017"]);
        let mut rows = vec![row("2018"), row("2017")];
        rows[0].sales_amount = Some(12.5);
        let d = Discovery { total: Some(2), year_list: &years, rows: &rows, page_size: 50 };
        assert!(d.unchanged_since(&d.digest()));
        assert!(d.unchanged_since(&d.legacy_digest()), "files written before the current form");
        let mut changed = rows.clone();
        changed[0].sales_amount = Some(12.6);
        let c = Discovery { rows: &changed, ..d };
        assert!(!c.unchanged_since(&d.digest()));
        assert!(!c.unchanged_since(&d.legacy_digest()));
        // A field's text cannot move into its neighbour unnoticed.
        let mut a = rows.clone();
        a[0].name = Some("ab".into());
        a[0].key_no = Some("c".into());
        let mut b = rows.clone();
        b[0].name = Some("b".into());
        b[0].key_no = Some("ca".into());
        let (a, b) = (Discovery { rows: &a, ..d }, Discovery { rows: &b, ..d });
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn a_whole_listing_of_every_year_completes_the_company_and_teaches_the_listing() {
        let years = list(&["2018", "2017"]);
        let rows = vec![row("2018"), row("2018-06"), row("2017")];
        let d = decide_on(3, &rows, &years, Coverage::Unknown, &History::default());
        assert_eq!((d.plan, d.store_page1), (FetchPlan::Nothing, true));
        assert_eq!(d.evidence.unwrap().0, EvidenceKind::EveryYear);
        // One year is no evidence, but that company is still complete.
        let one = list(&["2018"]);
        let d = decide_on(1, &rows[..1], &one, Coverage::Unknown, &History::default());
        assert_eq!((d.plan, d.evidence), (FetchPlan::Nothing, None));
    }

    #[test]
    fn until_learned_a_company_is_paged_per_year_keeping_its_first_page() {
        let years = list(&["2018", "2017"]);
        let rows: Vec<_> = (0..50).map(|_| row("2018")).collect();
        let d = decide_on(120, &rows, &years, Coverage::Unknown, &History::default());
        assert_eq!((d.plan, d.store_page1, d.evidence), (FetchPlan::Years, true, None));
        // A whole listing lacking a year is no evidence either way.
        let d = decide_on(50, &rows, &years, Coverage::Unknown, &History::default());
        assert_eq!((d.plan, d.evidence), (FetchPlan::Years, None));
    }

    #[test]
    fn once_learned_the_listing_is_paged_unless_it_passes_five_thousand_entries() {
        let years = list(&["2018", "2017"]);
        let rows: Vec<_> = (0..50).map(|_| row("2018")).collect();
        let d = decide_on(120, &rows, &years, Coverage::EveryYear, &History::default());
        assert_eq!((d.plan, d.pages), (FetchPlan::Listing, 3));
        let d = decide_on(5001, &rows, &years, Coverage::EveryYear, &History::default());
        assert_eq!(d.plan, FetchPlan::Years);
        // Learned, a whole listing lacking a year means that year has no rows.
        let d = decide_on(50, &rows, &years, Coverage::EveryYear, &History::default());
        assert_eq!(d.plan, FetchPlan::Nothing);
        // Known to hold only some years: per year for good.
        let d =
            decide_on(3, &[row("2018"), row("2017"), row("2017")], &years, Coverage::SomeYears, &History::default());
        assert_eq!(d.plan, FetchPlan::Nothing, "a company's own whole listing of every year is still complete");
        let d = decide_on(120, &rows, &years, Coverage::SomeYears, &History::default());
        assert_eq!(d.plan, FetchPlan::Years);
    }

    #[test]
    fn pages_that_do_not_add_up_or_stray_years_are_evidence_against_the_listing() {
        let years = list(&["2018", "2017"]);
        let short: Vec<_> = (0..7).map(|_| row("2018")).collect();
        let d = decide_on(120, &short, &years, Coverage::Unknown, &History::default());
        assert_eq!((d.plan, d.evidence.unwrap().0), (FetchPlan::Years, EvidenceKind::SomeYears));
        let d = decide_on(120, &short, &years, Coverage::EveryYear, &History::default());
        assert_eq!((d.plan, d.evidence.unwrap().0), (FetchPlan::Years, EvidenceKind::Contradiction));
        let stray = vec![row("2018"), row("2016")];
        let d = decide_on(2, &stray, &years, Coverage::EveryYear, &History::default());
        assert_eq!((d.plan, d.evidence.unwrap().0), (FetchPlan::Years, EvidenceKind::Contradiction));
    }

    #[test]
    fn an_unchanged_company_is_refreshed_by_its_discovery_call_alone() {
        let years = list(&["2018", "2017"]);
        let rows: Vec<_> = (0..50).map(|_| row("2018")).collect();
        let d = Discovery { total: Some(120), year_list: &years, rows: &rows, page_size: 50 };
        let digest = d.digest();
        let h = History { has_rows: true, done_digest: Some(&digest), ..History::default() };
        let got = decide(&d, &PageFacts::of(&rows, &years), Coverage::Unknown, &h);
        assert_eq!((got.plan, got.store_page1), (FetchPlan::Nothing, false));
        // A year never fetched (e.g. --years was narrower before) still is.
        let h = History { missing_years: true, ..h };
        assert_eq!(decide(&d, &PageFacts::of(&rows, &years), Coverage::Unknown, &h).plan, FetchPlan::Years);
    }

    #[test]
    fn a_changed_refresh_takes_the_cheaper_of_the_listing_and_per_year() {
        let years = list(&["2018", "2017"]);
        let rows: Vec<_> = (0..50).map(|_| row("2018")).collect();
        let h = History { has_rows: true, per_year_at_least: 1, ..History::default() };
        let d = decide_on(400, &rows, &years, Coverage::EveryYear, &h);
        assert_eq!((d.plan, d.store_page1), (FetchPlan::Years, false), "7 listing pages against 1 per-year call");
        let h = History { has_rows: true, per_year_at_least: 7, ..History::default() };
        let d = decide_on(400, &rows, &years, Coverage::EveryYear, &h);
        assert_eq!((d.plan, d.store_page1), (FetchPlan::Listing, true));
    }
}
