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
mod tests;
