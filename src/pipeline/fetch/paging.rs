//! The paging state of one unit: a year ([`YearPaging`]) or the all-years
//! listing ([`ListingPaging`]). Each knows which pages are stored, which are
//! asked, when the unit is complete, and what checkpoint a page arriving
//! gives. No I/O: `pages.rs` asks the pages and hands what these say to the
//! writer; the rules are unit-tested here without a server.

use std::collections::BTreeSet;

use crate::pipeline::plan::{self, YearTask};
use crate::store::records::{StoredPages, YearState};

/// How paging through a unit (the listing, or one year) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitEnd {
    /// Complete (or truncated): go on.
    Done,
    /// The listing contradicted itself: page this company per year.
    Contradicted,
    /// The company reached a final state (rejected) on this unit.
    CompanyFinal,
    /// Deferred, parked or stopped: the company is not finished in this run.
    Unfinished,
}

impl UnitEnd {
    /// How a unit's loop ended: the company's ending if one came, else done
    /// when the unit is complete, else unfinished.
    pub fn of(outcome: Option<UnitEnd>, complete: bool) -> UnitEnd {
        match outcome {
            Some(end) => end,
            None if complete => UnitEnd::Done,
            None => UnitEnd::Unfinished,
        }
    }

    /// The worse of two units' ends: a company's outcome is the worst of its
    /// units' (final beats unfinished beats done).
    pub fn worst(self, other: UnitEnd) -> UnitEnd {
        match (self, other) {
            (UnitEnd::CompanyFinal, _) | (_, UnitEnd::CompanyFinal) => UnitEnd::CompanyFinal,
            (UnitEnd::Unfinished, _) | (_, UnitEnd::Unfinished) => UnitEnd::Unfinished,
            _ => UnitEnd::Done,
        }
    }
}

/// What a year's checkpoint says after a page arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearCheckpoint {
    pub total_records: u64,
    /// The year's last page as known now (the page after this one when the
    /// API gave no count and the page was full).
    pub pages_total: u32,
    pub state: YearState,
    pub stored: StoredPages,
}

/// What a 201 or 207 answer (no more rows) means for a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMoreRows {
    /// The year was already finished: only the call is recorded.
    Late,
    /// Lower pages are still in flight: only the call is recorded, and the
    /// last of them completes the year.
    Waiting,
    /// The year ends here, with `pages` pages stored.
    Ended { state: YearState, total_records: u64, pages: u32 },
}

/// One year's pages: page 1 first when the count is unknown (its
/// TotalRecords says how many there are), then every missing page at once.
#[derive(Debug, Clone)]
pub struct YearPaging {
    page_size: u32,
    stored: StoredPages,
    pages_total: Option<u32>,
    total: u64,
    truncated: bool,
    asked: BTreeSet<u32>,
    /// A 201/207 past page 1: the year ends at the page before (and how).
    end: Option<(u32, YearState)>,
    finished: bool,
}

impl YearPaging {
    /// A year's paging as its task (fresh, or resumed from a checkpoint) left it.
    pub fn new(task: &YearTask, page_size: u32) -> Self {
        YearPaging {
            page_size,
            stored: task.stored.clone(),
            pages_total: task.pages_total,
            total: task.total_records.unwrap_or(0),
            truncated: task.total_records.is_some_and(|t| plan::pages_for(t, page_size).1),
            asked: BTreeSet::new(),
            end: None,
            finished: false,
        }
    }

    /// Every page was stored before and only the checkpoint lagged: the
    /// year's end (state, TotalRecords, pages), with no page to ask.
    pub fn already_stored(&mut self) -> Option<(YearState, u64, u32)> {
        let pt = self.pages_total.filter(|&pt| self.stored.covers(pt))?;
        self.finished = true;
        let state = if self.truncated { YearState::Truncated } else { YearState::Complete };
        Some((state, self.total, pt))
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// A 200 for this page would bring rows the year no longer takes.
    pub fn is_past_end(&self, page: u32) -> bool {
        self.finished || self.end.is_some_and(|(e, _)| page > e)
    }

    /// The pages to ask now, each once: every missing page up to the known
    /// end, or (count unknown) the first missing one once no page is in flight.
    pub fn next_pages(&mut self) -> Vec<u32> {
        if self.finished {
            return Vec::new();
        }
        let pages: Vec<u32> = match self.end.map(|(e, _)| e).or(self.pages_total) {
            Some(last) => self.stored.missing(last).filter(|p| !self.asked.contains(p)).collect(),
            // One page at a time: the next only once the one asked is in.
            None if self.asked.iter().any(|&p| !self.stored.contains(p)) => Vec::new(),
            None => self.stored.missing(u32::MAX).filter(|p| !self.asked.contains(p)).take(1).collect(),
        };
        self.asked.extend(&pages);
        pages
    }

    /// A 200 page arrived with `rows` rows (and the TotalRecords it gave).
    pub fn page_arrived(&mut self, page: u32, total_records: Option<u64>, rows: u32) -> YearCheckpoint {
        let size = self.page_size;
        if page == 1 || self.pages_total.is_none() {
            match total_records {
                Some(t) => {
                    self.total = t;
                    let (pt, cut) = plan::pages_for(t, size);
                    self.pages_total = Some(pt.max(page));
                    self.truncated = cut;
                }
                // No TotalRecords: a short page is the last one.
                None if rows < size => {
                    self.total = u64::from(page - 1) * u64::from(size) + u64::from(rows);
                    self.pages_total = Some(page);
                }
                None => self.pages_total = None,
            }
        }
        self.stored.insert(page);
        let last = self.end.map(|(e, _)| e).or(self.pages_total);
        let complete = last.is_some_and(|l| self.stored.covers(l));
        let state = match (complete, self.end) {
            (false, _) => YearState::Partial,
            (true, Some((_, how))) => how,
            (true, None) if self.truncated => YearState::Truncated,
            (true, None) => YearState::Complete,
        };
        self.finished = complete;
        YearCheckpoint {
            total_records: self.total,
            pages_total: last.unwrap_or(page + 1),
            state,
            stored: self.stored.clone(),
        }
    }

    /// This page answered 201 (`how` = complete) or 207 (truncated): the
    /// year has no rows from it on. The lowest such page is the year's end.
    pub fn no_more_rows(&mut self, page: u32, how: YearState) -> NoMoreRows {
        if self.finished {
            return NoMoreRows::Late;
        }
        let e = page.saturating_sub(1);
        if self.end.is_none_or(|(old, _)| e < old) {
            self.end = Some((e, how));
        }
        let (e, how) = self.end.unwrap_or((e, how));
        if !self.stored.covers(e) {
            return NoMoreRows::Waiting;
        }
        self.finished = true;
        NoMoreRows::Ended { state: how, total_records: if e == 0 { 0 } else { self.total }, pages: e }
    }
}

/// What the listing's checkpoint says after a page arrived, and whether the
/// page contradicts what the listing claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingCheckpoint {
    pub state: YearState,
    pub stored: StoredPages,
    /// The rows the stored pages hold.
    pub unit_rows: u64,
    /// Why the listing cannot be trusted, if this page shows it.
    pub problem: Option<String>,
}

/// The all-years listing's pages: every page must be full but the last,
/// every row's year must be in `YearList`, and the pages must add up to
/// `TotalRecords`.
#[derive(Debug, Clone)]
pub struct ListingPaging {
    page_size: u32,
    pages: u32,
    total: Option<u64>,
    stored: StoredPages,
    rows: u64,
}

impl ListingPaging {
    /// `stored` pages holding `rows` rows of a listing of `pages` pages and
    /// `total` rows (as discovery, or an earlier run's checkpoint, left it).
    pub fn new(page_size: u32, pages: u32, total: Option<u64>, stored: StoredPages, rows: u64) -> Self {
        ListingPaging { page_size, pages, total, stored, rows }
    }

    /// The pages still to ask, or why the listing cannot be paged at all.
    pub fn start(&self) -> Result<Vec<u32>, String> {
        let Some(total) = self.total else {
            return Err("the listing has no TotalRecords".into());
        };
        if self.stored.covers(self.pages) {
            return Err(format!(
                "the listing's {} pages held {} rows, TotalRecords says {total}",
                self.pages, self.rows
            ));
        }
        Ok(self.stored.missing(self.pages).collect())
    }

    /// The listing's TotalRecords (0 when it gave none; [`start`](Self::start) refuses that).
    pub fn total(&self) -> u64 {
        self.total.unwrap_or(0)
    }

    pub fn pages(&self) -> u32 {
        self.pages
    }

    pub fn is_complete(&self) -> bool {
        self.stored.covers(self.pages)
    }

    /// A 200 page arrived with `rows` rows and the TotalRecords it gave;
    /// `stray`: the year of a row not in `YearList`, if any.
    pub fn page_arrived(
        &mut self,
        page: u32,
        total_records: Option<u64>,
        rows: u64,
        stray: Option<&str>,
    ) -> ListingCheckpoint {
        let (pages, size, total) = (self.pages, self.page_size, self.total());
        self.stored.insert(page);
        self.rows += rows;
        let stored = self.rows;
        let complete = self.is_complete();
        let problem = if let Some(y) = stray {
            Some(format!("listing page {page} holds a row of year {y:?}, which is not in YearList"))
        } else if let Some(t) = total_records.filter(|&t| t != total) {
            Some(format!("TotalRecords went from {total} to {t} between listing pages"))
        } else if page != pages && rows != u64::from(size) {
            Some(format!("listing page {page} of {pages} held {rows} rows, not {size}"))
        } else if complete && stored != total {
            Some(format!("the listing's {pages} pages held {stored} rows, TotalRecords says {total}"))
        } else {
            None
        };
        let state = if complete && problem.is_none() { YearState::Complete } else { YearState::Partial };
        ListingCheckpoint { state, stored: self.stored.clone(), unit_rows: stored, problem }
    }

    /// A page of the listing answered 201 or 207: a listing that claimed it
    /// contradicts itself.
    pub fn no_rows(&self, page: u32, code: &str) -> String {
        format!("listing page {page} of {} answered {code}", self.pages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn year(total: Option<u64>, pages_total: Option<u32>, stored: StoredPages) -> YearPaging {
        let task = YearTask { year: "2024".into(), stored, pages_total, total_records: total };
        YearPaging::new(&task, 50)
    }

    fn pages(prefix: u32, beyond: &[u32]) -> StoredPages {
        StoredPages { prefix, beyond: beyond.iter().copied().collect() }
    }

    #[test]
    fn a_fresh_year_asks_page_1_alone_then_every_other_page_at_once() {
        let mut y = year(None, None, StoredPages::default());
        assert_eq!(y.next_pages(), vec![1]);
        assert_eq!(y.next_pages(), Vec::<u32>::new(), "page 1 is asked once");
        let c = y.page_arrived(1, Some(180), 50);
        assert_eq!((c.total_records, c.pages_total, c.state), (180, 4, YearState::Partial));
        assert_eq!(y.next_pages(), vec![2, 3, 4]);
    }

    #[test]
    fn pages_arriving_out_of_order_complete_the_year_with_the_last_missing_one() {
        let mut y = year(None, None, StoredPages::default());
        y.next_pages();
        y.page_arrived(1, Some(180), 50);
        y.next_pages();
        let c = y.page_arrived(4, Some(180), 30);
        assert_eq!(c.state, YearState::Partial);
        assert_eq!(c.stored, pages(1, &[4]), "page 4 is stored beyond the prefix");
        assert_eq!(y.page_arrived(3, Some(180), 50).state, YearState::Partial);
        let c = y.page_arrived(2, Some(180), 50);
        assert_eq!(c.state, YearState::Complete);
        assert_eq!(c.stored, pages(4, &[]));
        assert!(y.is_finished());
        assert!(y.is_past_end(2), "nothing more is stored once the year is finished");
    }

    #[test]
    fn a_201_past_page_1_ends_the_year_at_the_page_before_once_the_lower_pages_are_in() {
        let mut y = year(None, None, StoredPages::default());
        y.next_pages();
        y.page_arrived(1, Some(200), 50);
        assert_eq!(y.next_pages(), vec![2, 3, 4]);
        // Page 3 says there are no more rows while page 2 is still in flight.
        assert_eq!(y.no_more_rows(3, YearState::Complete), NoMoreRows::Waiting);
        assert!(y.is_past_end(4), "a 200 for page 4 brings rows past the end");
        assert!(!y.is_past_end(2));
        let c = y.page_arrived(2, Some(200), 50);
        assert_eq!((c.state, c.pages_total), (YearState::Complete, 2));
        assert_eq!(y.no_more_rows(4, YearState::Complete), NoMoreRows::Late, "page 4's 201 comes after the end");
    }

    #[test]
    fn a_201_on_page_1_ends_the_year_with_no_rows() {
        let mut y = year(None, None, StoredPages::default());
        y.next_pages();
        let end = y.no_more_rows(1, YearState::Complete);
        assert_eq!(end, NoMoreRows::Ended { state: YearState::Complete, total_records: 0, pages: 0 });
        assert!(y.is_finished());
    }

    #[test]
    fn a_207_past_the_ceiling_ends_the_year_truncated_at_the_lowest_such_page() {
        let mut y = year(None, None, StoredPages::default());
        y.next_pages();
        y.page_arrived(1, Some(120), 50);
        assert_eq!(y.next_pages(), vec![2, 3]);
        y.page_arrived(2, Some(120), 50);
        let end = y.no_more_rows(3, YearState::Truncated);
        assert_eq!(end, NoMoreRows::Ended { state: YearState::Truncated, total_records: 120, pages: 2 });
    }

    #[test]
    fn a_year_past_5000_entries_is_truncated_when_its_last_allowed_page_arrives() {
        let mut y = year(None, None, StoredPages::default());
        y.next_pages();
        let c = y.page_arrived(1, Some(6000), 50);
        assert_eq!(c.pages_total, 100, "the API serves 5,000 entries: 100 pages of 50");
        let rest = y.next_pages();
        assert_eq!(rest.len(), 99);
        let mut last = None;
        for p in rest {
            last = Some(y.page_arrived(p, Some(6000), 50));
        }
        assert_eq!(last.map(|c| c.state), Some(YearState::Truncated));
    }

    #[test]
    fn a_resume_with_stored_pages_beyond_the_prefix_asks_only_the_missing_ones() {
        let mut y = year(Some(250), Some(5), pages(1, &[3, 5]));
        assert_eq!(y.already_stored(), None);
        assert_eq!(y.next_pages(), vec![2, 4], "pages 3 and 5 are paid for already");
        y.page_arrived(4, None, 50);
        let c = y.page_arrived(2, None, 50);
        assert_eq!((c.state, c.total_records, c.pages_total), (YearState::Complete, 250, 5));
    }

    #[test]
    fn a_resume_whose_every_page_is_stored_ends_the_year_without_a_call() {
        let mut y = year(Some(120), Some(3), pages(3, &[]));
        assert_eq!(y.already_stored(), Some((YearState::Complete, 120, 3)));
        assert!(y.next_pages().is_empty());
    }

    #[test]
    fn without_total_records_a_short_page_is_the_last_and_a_full_one_asks_the_next() {
        let mut y = year(None, None, StoredPages::default());
        y.next_pages();
        let c = y.page_arrived(1, None, 50);
        assert_eq!((c.state, c.pages_total), (YearState::Partial, 2));
        assert_eq!(y.next_pages(), vec![2]);
        let c = y.page_arrived(2, None, 7);
        assert_eq!((c.state, c.total_records, c.pages_total), (YearState::Complete, 57, 2));
    }

    #[test]
    fn the_worst_unit_end_decides_the_company() {
        use UnitEnd::*;
        assert_eq!(Done.worst(Unfinished), Unfinished);
        assert_eq!(Unfinished.worst(CompanyFinal), CompanyFinal);
        assert_eq!(Done.worst(Contradicted), Done);
    }

    fn listing(pages: u32, total: u64) -> ListingPaging {
        ListingPaging::new(50, pages, Some(total), StoredPages { prefix: 1, ..Default::default() }, 50)
    }

    #[test]
    fn a_listing_whose_pages_add_up_is_complete_when_its_last_page_arrives_in_any_order() {
        let mut l = listing(3, 120);
        assert_eq!(l.start(), Ok(vec![2, 3]));
        let c = l.page_arrived(3, Some(120), 20, None);
        assert_eq!((c.state, c.problem.as_deref()), (YearState::Partial, None));
        let c = l.page_arrived(2, Some(120), 50, None);
        assert_eq!((c.state, c.unit_rows, c.problem), (YearState::Complete, 120, None));
    }

    #[test]
    fn a_short_page_before_the_last_is_a_contradiction() {
        let mut l = listing(3, 120);
        let c = l.page_arrived(2, Some(120), 49, None);
        assert_eq!(c.problem.as_deref(), Some("listing page 2 of 3 held 49 rows, not 50"));
        assert_eq!(c.state, YearState::Partial);
    }

    #[test]
    fn a_row_of_a_year_not_in_year_list_and_a_changed_total_are_contradictions() {
        let mut l = listing(3, 120);
        let c = l.page_arrived(2, Some(120), 50, Some("2019"));
        assert!(c.problem.unwrap().contains("year \"2019\", which is not in YearList"));
        let mut l = listing(3, 120);
        let c = l.page_arrived(2, Some(130), 50, None);
        assert_eq!(c.problem.as_deref(), Some("TotalRecords went from 120 to 130 between listing pages"));
    }

    #[test]
    fn pages_that_do_not_add_up_to_total_records_are_a_contradiction_on_the_last_one() {
        let mut l = listing(2, 100);
        let c = l.page_arrived(2, None, 40, None);
        assert_eq!(c.problem.as_deref(), Some("the listing's 2 pages held 90 rows, TotalRecords says 100"));
    }

    #[test]
    fn a_listing_without_total_records_or_already_covered_is_refused_before_a_call() {
        let l = ListingPaging::new(50, 2, None, StoredPages::default(), 0);
        assert_eq!(l.start(), Err("the listing has no TotalRecords".into()));
        let l = ListingPaging::new(50, 2, Some(100), pages(2, &[]), 90);
        assert_eq!(l.start(), Err("the listing's 2 pages held 90 rows, TotalRecords says 100".into()));
        assert_eq!(listing(3, 120).no_rows(2, "201"), "listing page 2 of 3 answered 201");
    }
}
