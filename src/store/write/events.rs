//! One function per event of a commit, each on the [`Unit`] the commit is
//! about (its company, the run, the time, the page size of its call).

use rusqlite::{params, Transaction};

use crate::store::customers::{company_id, drop_staged, has_staged, stage, take_staged, Codebook};
use crate::store::history::{self, Changes};
use crate::store::records::{
    CheckOutcome, CompanyState, EvidenceKind, FetchPlan, PageEvent, Query, RawPage, StoredPages, YearState,
};

/// What every event of one commit is applied with.
pub(super) struct Unit<'t, 'c> {
    tx: &'t Transaction<'c>,
    run_id: i64,
    key: &'t str,
    now: &'t str,
    /// A page's checkpoint counts in the page size of the call that fetched it.
    page_size: Option<u32>,
    /// The company's id, looked up once if an event touches its rows.
    id: Option<i64>,
    /// The picture-address shapes and identities met so far (the writer keeps them).
    codes: &'t mut Codebook,
    /// What the commit's events changed in the readers' model.
    changes: Changes,
}

impl<'t, 'c> Unit<'t, 'c> {
    pub(super) fn new(
        tx: &'t Transaction<'c>,
        codes: &'t mut Codebook,
        run_id: i64,
        key: &'t str,
        now: &'t str,
        page_size: Option<u32>,
    ) -> Self {
        Unit { tx, run_id, key, now, page_size, id: None, codes, changes: Changes::default() }
    }

    /// What the commit's events changed in the readers' model (see [`history`]).
    pub(super) fn changes(&self) -> Changes {
        self.changes
    }

    fn when(&self) -> history::When<'t> {
        history::When { now: self.now, run_id: Some(self.run_id), backfill: false }
    }

    /// A re-fetched unit's pages `1..=last` are in: its staged rows replace its rows.
    fn promote(&mut self, co: i64, query: &Query, last: u32) -> rusqlite::Result<()> {
        let pages = take_staged(self.tx, co, query, last)?;
        let years =
            history::rows_of_pages(query, pages.iter().map(|(page, at, rows)| (*page, rows.as_slice(), at.as_str())));
        let when = self.when();
        let changes = history::replace(self.tx, self.codes, co, years, *query == Query::Listing, &when)?;
        self.changes.add(changes);
        Ok(())
    }

    /// A unit fetched for the first time ends at `last`.
    fn first_fetch_ends(&mut self, co: i64, query: &Query, last: u32) -> rusqlite::Result<()> {
        let when = self.when();
        let changes = history::close_after(self.tx, co, query, last, &when)?;
        self.changes.add(changes);
        Ok(())
    }

    fn company(&mut self) -> rusqlite::Result<i64> {
        if let Some(id) = self.id {
            return Ok(id);
        }
        let found = company_id(self.tx, self.key)?;
        self.id = Some(found);
        Ok(found)
    }

    /// A new fetch cycle: the company is pending until its rows are in, so
    /// a run stopped half-way resumes without paying for discovery again,
    /// and goes on with the same plan.
    pub(super) fn discovered(
        &mut self,
        year_list: &[String],
        total_records: Option<u64>,
        digest: &str,
        plan: FetchPlan,
        raw: Option<&RawPage>,
    ) -> rusqlite::Result<()> {
        let list = serde_json::to_string(year_list).unwrap_or_else(|_| "[]".into());
        self.tx
            .prepare_cached(
                "UPDATE companies SET year_list = ?2, discovered_at = ?3, state = 'pending', status_code = '200',
                        message = NULL, retry_after = NULL, updated_at = ?3, total_records = ?4,
                        discovery_digest = ?5, fetch_plan = ?6
                 WHERE search_key = ?1",
            )?
            .execute(params![self.key, list, self.now, total_records.map(|t| t as i64), digest, plan.as_str()])?;
        if let Some(raw) = raw {
            self.receipt(raw)?;
        }
        Ok(())
    }

    /// An answer showed what the listing covers.
    pub(super) fn evidence(
        &mut self,
        kind: EvidenceKind,
        order_number: Option<&str>,
        detail: &str,
    ) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO listing_evidence (kind, search_key, order_number, observed_at, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![kind.as_str(), self.key, order_number, self.now, detail])?;
        Ok(())
    }

    /// The listing contradicted itself: per year from now on, and listing
    /// rows not yet in `customers` go.
    pub(super) fn listing_abandoned(&mut self) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("UPDATE companies SET fetch_plan = 'years', updated_at = ?2 WHERE search_key = ?1")?
            .execute(params![self.key, self.now])?;
        let co = self.company()?;
        drop_staged(self.tx, co, &Query::Listing)
    }

    /// A 200 page: its rows, where they go, and its unit's checkpoint.
    /// Returns the rows stored.
    pub(super) fn page(&mut self, p: &PageEvent) -> rusqlite::Result<u64> {
        let (tx, now) = (self.tx, self.now);
        let last = p.year_state != YearState::Partial;
        let (page, query) = (p.page_index, &p.query);
        let co = self.company()?;
        // Page 1 of a unit is always stored before its other pages (they are
        // known from its answer), so it decides where the unit's pages of
        // this cycle go.
        let when = self.when();
        if page == 1 && last {
            // A one-page unit replaces its rows in this transaction.
            drop_staged(tx, co, query)?;
            let years = history::rows_of_pages(query, [(page, p.rows.as_slice(), now)]);
            let changes = history::replace(tx, self.codes, co, years, *query == Query::Listing, &when)?;
            self.changes.add(changes);
        } else if if page == 1 { history::has_versions(tx, co, query)? } else { has_staged(tx, co, query)? } {
            // Page 1 of a unit that has stored rows is a re-fetch; later pages
            // follow wherever page 1 went. The unit has rows to protect:
            // collect the new ones aside.
            if page == 1 {
                drop_staged(tx, co, query)?;
            }
            stage(tx, co, query, page, &p.rows, now)?;
            if last {
                self.promote(co, query, p.pages_total)?;
            }
        } else {
            // A first fetch: nothing to protect, rows go straight in (the
            // checkpoint says `partial` until it is done).
            let years = history::rows_of_pages(query, [(page, p.rows.as_slice(), now)]);
            let changes = history::append(tx, self.codes, co, years, &when)?;
            self.changes.add(changes);
            if last {
                self.first_fetch_ends(co, query, p.pages_total)?;
            }
        }
        if let Some(raw) = &p.raw {
            self.receipt(raw)?;
        }
        let progress = Progress {
            total_records: p.total_records,
            pages_total: p.pages_total,
            stored: &p.stored,
            page_size: self.page_size,
        };
        match query {
            Query::Year(year) => set_year(tx, self.key, year, p.year_state, &progress, now)?,
            Query::Listing => {
                set_listing(tx, self.key, last, &progress, p.unit_rows, now)?;
                if last {
                    listing_covers_company(tx, self.key, self.page_size, now)?;
                }
            }
        }
        Ok(p.rows.len() as u64)
    }

    /// A 200 page whose rows are not stored: only its receipt.
    pub(super) fn receipt(&mut self, raw: &RawPage) -> rusqlite::Result<()> {
        insert_raw(self.tx, self.key, raw, self.now)
    }

    /// A year ended without a 200 page (201, 207): its checkpoint, and its
    /// rows settled at `pages_fetched` pages.
    pub(super) fn year_ended(
        &mut self,
        year: &str,
        state: YearState,
        total_records: u64,
        pages_total: u32,
        pages_fetched: u32,
    ) -> rusqlite::Result<()> {
        let stored = StoredPages { prefix: pages_fetched, ..StoredPages::default() };
        let progress = Progress { total_records, pages_total, stored: &stored, page_size: self.page_size };
        set_year(self.tx, self.key, year, state, &progress, self.now)?;
        let query = Query::Year(year.to_string());
        let co = self.company()?;
        if pages_fetched == 0 {
            // The year is empty now: it replaces whatever was stored.
            drop_staged(self.tx, co, &query)?;
            let when = self.when();
            let years = history::rows_of_pages(&query, []);
            let changes = history::replace(self.tx, self.codes, co, years, false, &when)?;
            self.changes.add(changes);
            Ok(())
        } else if has_staged(self.tx, co, &query)? {
            self.promote(co, &query, pages_fetched)
        } else {
            self.first_fetch_ends(co, &query, pages_fetched)
        }
    }

    /// The company's state changes; a state that ends a check records it.
    pub(super) fn company_state(
        &mut self,
        state: CompanyState,
        status_code: Option<&str>,
        message: Option<&str>,
        retry_after: Option<&str>,
    ) -> rusqlite::Result<()> {
        let fetched = state.ends_check();
        self.tx
            .prepare_cached(
                "UPDATE companies SET state = ?2, status_code = ?3, message = ?4, retry_after = ?5,
                        fetched_at = CASE WHEN ?6 THEN ?7 ELSE fetched_at END, updated_at = ?7
                 WHERE search_key = ?1",
            )?
            .execute(params![self.key, state.as_str(), status_code, message, retry_after, fetched, self.now])?;
        if fetched {
            let co = self.company()?;
            record_check(self.tx, self.run_id, co, state, self.now)?;
        }
        Ok(())
    }
}

/// A company's check has ended (done or no_result): record what it found,
/// and the periods it disclosed for the first time (docs/design.md §4).
fn record_check(tx: &Transaction<'_>, run_id: i64, co: i64, state: CompanyState, now: &str) -> rusqlite::Result<()> {
    let previous: Option<String> = tx
        .prepare_cached("SELECT MAX(checked_at) FROM company_checks WHERE company_id = ?1")?
        .query_row([co], |r| r.get(0))?;
    // A period first stored by a later check appeared since the previous one.
    let new_periods = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO company_periods (company_id, period, first_seen_at, not_before)
             SELECT DISTINCT company_id, period, ?2, ?3
             FROM disclosure WHERE company_id = ?1 AND valid_to IS NULL",
        )?
        .execute(params![co, now, previous])?;
    let deep: bool = tx
        .prepare_cached("SELECT next_check_deep FROM companies WHERE company_id = ?1")?
        .query_row([co], |r| r.get(0))?;
    let outcome = if state == CompanyState::NoResult {
        CheckOutcome::NoResult
    } else if previous.is_none() {
        CheckOutcome::First
    } else if deep && new_periods == 0 {
        // Re-paged whatever page 1 said: stored rows say nothing of a change.
        CheckOutcome::Deep
    } else {
        // Rows stored since this cycle's discovery: the check found a change.
        let changed: bool = tx
            .prepare_cached(
                "SELECT new_periods > 0 OR EXISTS (
                     SELECT 1 FROM disclosure d, companies c
                     WHERE c.company_id = ?1 AND d.company_id = ?1 AND d.valid_to IS NULL
                       AND c.discovered_at IS NOT NULL
                       AND julianday(COALESCE(d.fetched_at, d.valid_from)) >= julianday(c.discovered_at))
                 FROM (SELECT ?2 AS new_periods)",
            )?
            .query_row(params![co, new_periods as i64], |r| r.get(0))?;
        if changed {
            CheckOutcome::Changed
        } else {
            CheckOutcome::Unchanged
        }
    };
    tx.prepare_cached(
        "INSERT INTO company_checks (company_id, checked_at, run_id, outcome, reason, deep)
         SELECT ?1, ?2, ?3, ?4, next_check_reason, next_check_deep FROM companies WHERE company_id = ?1",
    )?
    .execute(params![co, now, run_id, outcome.as_str()])?;
    // The check the schedule asked for as a deep one re-paged the company.
    tx.prepare_cached("UPDATE companies SET deep_checked_at = ?2 WHERE company_id = ?1 AND next_check_deep = 1")?
        .execute(params![co, now])?;
    Ok(())
}

fn insert_raw(tx: &Transaction<'_>, key: &str, raw: &RawPage, now: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO raw_pages (search_key, query_year, page_index, order_number, fetched_at, body, dict_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![key, raw.query_year, raw.page_index, raw.order_number, now, raw.body, raw.dict_id])?;
    Ok(())
}

/// A checkpoint's numbers.
struct Progress<'a> {
    total_records: u64,
    pages_total: u32,
    stored: &'a StoredPages,
    page_size: Option<u32>,
}

fn set_year(
    tx: &Transaction<'_>,
    key: &str,
    year: &str,
    state: YearState,
    p: &Progress<'_>,
    now: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO company_years (search_key, year, state, total_records, pages_total, pages_fetched, fetched_at,
                                    page_size, source, pages_beyond)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'year', ?9)
         ON CONFLICT (search_key, year) DO UPDATE SET state = excluded.state,
            total_records = excluded.total_records, pages_total = excluded.pages_total,
            pages_fetched = excluded.pages_fetched, fetched_at = excluded.fetched_at,
            page_size = COALESCE(excluded.page_size, company_years.page_size), source = 'year',
            pages_beyond = excluded.pages_beyond",
    )?
    .execute(params![
        key,
        year,
        state.as_str(),
        p.total_records as i64,
        p.pages_total,
        p.stored.prefix,
        now,
        p.page_size,
        p.stored.beyond_text()
    ])?;
    Ok(())
}

/// The listing checkpoint after storing a page: its stored pages held `rows` rows.
fn set_listing(
    tx: &Transaction<'_>,
    key: &str,
    complete: bool,
    p: &Progress<'_>,
    rows: u64,
    now: &str,
) -> rusqlite::Result<()> {
    // A cycle's listing starts with page 1 (the discovery page).
    let first = p.stored.count() == 1;
    tx.prepare_cached(
        "INSERT INTO company_listings (search_key, state, total_records, pages_total, pages_fetched, rows_fetched,
                                       page_size, started_at, fetched_at, pages_beyond)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?10)
         ON CONFLICT (search_key) DO UPDATE SET state = excluded.state, total_records = excluded.total_records,
            pages_total = excluded.pages_total, pages_fetched = excluded.pages_fetched,
            rows_fetched = excluded.rows_fetched, page_size = excluded.page_size,
            started_at = CASE WHEN ?9 THEN excluded.started_at ELSE company_listings.started_at END,
            fetched_at = excluded.fetched_at, pages_beyond = excluded.pages_beyond",
    )?
    .execute(params![
        key,
        if complete { "complete" } else { "partial" },
        p.total_records as i64,
        p.pages_total,
        p.stored.prefix,
        rows as i64,
        p.page_size.unwrap_or(0),
        now,
        first,
        p.stored.beyond_text()
    ])?;
    Ok(())
}

/// The company's listing is whole and covers every year of its year list:
/// each of those years is complete, from the listing, with the rows it holds
/// (none for a year the listing does not mention); checkpoints of years no
/// longer listed go, as their rows went.
fn listing_covers_company(tx: &Transaction<'_>, key: &str, page_size: Option<u32>, now: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO company_years (search_key, year, state, total_records, pages_total, pages_fetched, fetched_at,
                                    page_size, source)
         SELECT ?1, j.value, 'complete',
                (SELECT COUNT(*) FROM disclosure d
                 WHERE d.company_id = co.company_id AND d.query_year = j.value AND d.valid_to IS NULL),
                0, 0, ?2, ?3,
                'listing'
         FROM companies co, json_each(co.year_list) j WHERE co.search_key = ?1
         ON CONFLICT (search_key, year) DO UPDATE SET state = 'complete', total_records = excluded.total_records,
            pages_total = 0, pages_fetched = 0, fetched_at = excluded.fetched_at, page_size = excluded.page_size,
            source = 'listing'",
    )?
    .execute(params![key, now, page_size])?;
    tx.prepare_cached(
        "DELETE FROM company_years WHERE search_key = ?1
           AND year NOT IN (SELECT j.value FROM companies co, json_each(co.year_list) j WHERE co.search_key = ?1)",
    )?
    .execute(params![key])?;
    Ok(())
}
