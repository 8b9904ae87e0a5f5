//! The writer's statements. Every function here runs inside a transaction the
//! writer owns; statements are cached (`prepare_cached`) because the same few
//! run millions of times.

use rusqlite::{params, Connection, Transaction};

use super::customers::{company_id, delete_unit, drop_pages_after, has_rows, insert_rows, promote, CUSTOMERS, STAGING};

use super::records::{
    CallRecord, Commit, CompanySnapshot, CompanyState, Event, InputRecord, Query, RawPage, Registration, StoredPages,
    YearState,
};

pub fn start_run(conn: &Connection, input_path: &str, now: &str) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO runs (started_at, status, input_path) VALUES (?1, 'running', ?2)",
        params![now, input_path],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Close a run's row: how it ended and its summary (JSON).
pub struct RunEnd<'a> {
    pub status: &'a str,
    pub exit_code: i32,
    pub calls: u64,
    pub rows_written: u64,
    pub summary_json: &'a str,
}

pub fn finish_run(conn: &Connection, run_id: i64, end: &RunEnd<'_>, now: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE runs SET finished_at = ?2, status = ?3, exit_code = ?4, calls = ?5, rows_written = ?6, summary = ?7
         WHERE run_id = ?1",
        params![run_id, now, end.status, end.exit_code, end.calls as i64, end.rows_written as i64, end.summary_json],
    )?;
    Ok(())
}

/// Record that this run's input holds `rec`, and say what is known about it.
pub fn register(tx: &Transaction<'_>, run_id: i64, rec: &InputRecord, now: &str) -> rusqlite::Result<Registration> {
    let found = super::read::company_by_norm_key(tx, &rec.norm_key)?;

    let Some((snapshot, last_run)) = found else {
        let state = if rec.invalid.is_some() { CompanyState::Invalid } else { CompanyState::Pending };
        tx.prepare_cached(
            "INSERT INTO companies (search_key, norm_key, input_row, input_line, state, message,
                                    first_run_id, last_run_id, updated_at, company_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8,
                     (SELECT COALESCE(MAX(company_id), 0) + 1 FROM companies))",
        )?
        .execute(params![
            rec.search_key,
            rec.norm_key,
            rec.row_json,
            rec.line as i64,
            state.as_str(),
            rec.invalid,
            run_id,
            now
        ])?;
        if rec.invalid.is_some() {
            return Ok(Registration::Invalid);
        }
        return Ok(Registration::Company(Box::new(CompanySnapshot {
            search_key: rec.search_key.clone(),
            state,
            ..CompanySnapshot::default()
        })));
    };

    if last_run == Some(run_id) {
        return Ok(Registration::Duplicate);
    }
    tx.prepare_cached(
        "UPDATE companies SET last_run_id = ?2, input_row = ?3, input_line = ?4, updated_at = ?5 WHERE search_key = ?1",
    )?
    .execute(params![snapshot.search_key, run_id, rec.row_json, rec.line as i64, now])?;
    if snapshot.state == CompanyState::Invalid {
        return Ok(Registration::Invalid);
    }
    // Loaded only for a company that will be planned, not for a duplicate.
    Ok(Registration::Company(Box::new(super::read::with_checkpoints(tx, snapshot)?)))
}

/// Companies of this run parked by 110 whose `retry_after` has passed:
/// marked pending (so they are taken once) and returned for planning, with
/// the earliest `retry_after` of this run's companies still parked.
pub fn take_due_parked(
    tx: &Transaction<'_>,
    run_id: i64,
    now: &str,
    limit: usize,
) -> rusqlite::Result<(Vec<CompanySnapshot>, Option<String>)> {
    let due: Vec<String> = tx
        .prepare_cached(
            "SELECT search_key FROM companies
             WHERE last_run_id = ?1 AND state = 'parked' AND retry_after <= ?2 LIMIT ?3",
        )?
        .query_map(params![run_id, now, limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(due.len());
    for search_key in due {
        tx.prepare_cached(
            "UPDATE companies SET state = 'pending', retry_after = NULL, updated_at = ?2 WHERE search_key = ?1",
        )?
        .execute(params![search_key, now])?;
        if let Some(snapshot) = super::read::company_by_key(tx, &search_key)? {
            out.push(super::read::with_checkpoints(tx, snapshot)?);
        }
    }
    let next = super::read::earliest_retry_after(tx, run_id)?;
    Ok((out, next))
}

/// Apply one commit; returns the customer rows it stored. The caller's
/// transaction makes it atomic.
pub fn apply(tx: &Transaction<'_>, run_id: i64, commit: &Commit, now: &str) -> rusqlite::Result<u64> {
    let mut rows_stored = 0;
    if let Some(call) = &commit.call {
        insert_call(tx, run_id, call)?;
    }
    let key = commit.search_key.as_str();
    // A page's checkpoint counts in the page size of the call that fetched it.
    let page_size = commit.call.as_ref().map(|c| c.page_size);
    // The company's id, looked up once if an event touches its rows.
    let mut id = None;
    let mut company = || -> rusqlite::Result<i64> {
        if let Some(id) = id {
            return Ok(id);
        }
        let found = company_id(tx, key)?;
        id = Some(found);
        Ok(found)
    };
    for event in &commit.events {
        match event {
            Event::Discovered { year_list, total_records, digest, plan, raw } => {
                let list = serde_json::to_string(year_list).unwrap_or_else(|_| "[]".into());
                tx.prepare_cached(
                    // A new fetch cycle: the company is pending until its rows
                    // are in, so a run stopped half-way resumes without paying
                    // for discovery again, and goes on with the same plan.
                    "UPDATE companies SET year_list = ?2, discovered_at = ?3, state = 'pending', status_code = '200',
                            message = NULL, retry_after = NULL, updated_at = ?3, total_records = ?4,
                            discovery_digest = ?5, fetch_plan = ?6
                     WHERE search_key = ?1",
                )?
                .execute(params![
                    key,
                    list,
                    now,
                    total_records.map(|t| t as i64),
                    digest,
                    plan.as_str()
                ])?;
                if let Some(raw) = raw {
                    insert_raw(tx, key, raw, now)?;
                }
            }
            Event::Evidence { kind, order_number, detail } => {
                tx.prepare_cached(
                    "INSERT INTO listing_evidence (kind, search_key, order_number, observed_at, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![kind.as_str(), key, order_number, now, detail])?;
            }
            Event::ListingAbandoned => {
                tx.prepare_cached("UPDATE companies SET fetch_plan = 'years', updated_at = ?2 WHERE search_key = ?1")?
                    .execute(params![key, now])?;
                delete_unit(tx, STAGING, company()?, &Query::Listing)?;
            }
            Event::Page { query, page_index, total_records, pages_total, year_state, stored, unit_rows, rows, raw } => {
                let last = *year_state != YearState::Partial;
                let page = *page_index;
                let co = company()?;
                // Page 1 of a unit is always stored before its other pages
                // (they are known from its answer), so it decides where the
                // unit's pages of this cycle go.
                if page == 1 && last {
                    // A one-page unit replaces its rows in this transaction.
                    delete_unit(tx, CUSTOMERS, co, query)?;
                    delete_unit(tx, STAGING, co, query)?;
                    insert_rows(tx, CUSTOMERS, co, query, page, rows.iter().enumerate(), now)?;
                } else if has_rows(tx, if page == 1 { CUSTOMERS } else { STAGING }, co, query)? {
                    // Page 1 of a unit that has stored rows is a re-fetch;
                    // later pages follow wherever page 1 went.
                    // The unit has rows to protect: collect the new ones aside.
                    if page == 1 {
                        delete_unit(tx, STAGING, co, query)?;
                    }
                    insert_rows(tx, STAGING, co, query, page, rows.iter().enumerate(), now)?;
                    if last {
                        promote(tx, co, query, *pages_total)?;
                    }
                } else {
                    // A first fetch: nothing to protect, rows go straight in
                    // (the checkpoint says `partial` until it is done).
                    insert_rows(tx, CUSTOMERS, co, query, page, rows.iter().enumerate(), now)?;
                    if last {
                        drop_pages_after(tx, co, query, *pages_total)?;
                    }
                }
                rows_stored += rows.len() as u64;
                if let Some(raw) = raw {
                    insert_raw(tx, key, raw, now)?;
                }
                let progress = Progress { total_records: *total_records, pages_total: *pages_total, stored, page_size };
                match query {
                    Query::Year(year) => set_year(tx, key, year, *year_state, &progress, now)?,
                    Query::Listing => {
                        set_listing(tx, key, last, &progress, *unit_rows, now)?;
                        if last {
                            listing_covers_company(tx, key, page_size, now)?;
                        }
                    }
                }
            }
            Event::Receipt(raw) => insert_raw(tx, key, raw, now)?,
            Event::YearEnded { query_year, state, total_records, pages_total, pages_fetched } => {
                let stored = StoredPages { prefix: *pages_fetched, ..StoredPages::default() };
                let progress =
                    Progress { total_records: *total_records, pages_total: *pages_total, stored: &stored, page_size };
                set_year(tx, key, query_year, *state, &progress, now)?;
                let query = Query::Year(query_year.clone());
                let co = company()?;
                if *pages_fetched == 0 {
                    // The year is empty now: it replaces whatever was stored.
                    delete_unit(tx, STAGING, co, &query)?;
                    delete_unit(tx, CUSTOMERS, co, &query)?;
                } else if has_rows(tx, STAGING, co, &query)? {
                    promote(tx, co, &query, *pages_fetched)?;
                } else {
                    drop_pages_after(tx, co, &query, *pages_fetched)?;
                }
            }
            Event::Company { state, status_code, message, retry_after } => {
                let fetched = state.ends_check();
                tx.prepare_cached(
                    "UPDATE companies SET state = ?2, status_code = ?3, message = ?4, retry_after = ?5,
                            fetched_at = CASE WHEN ?6 THEN ?7 ELSE fetched_at END, updated_at = ?7
                     WHERE search_key = ?1",
                )?
                .execute(params![
                    key,
                    state.as_str(),
                    status_code,
                    message,
                    retry_after,
                    fetched,
                    now
                ])?;
                if fetched {
                    record_check(tx, run_id, company()?, *state, now)?;
                }
            }
        }
    }
    Ok(rows_stored)
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
             SELECT DISTINCT company_id, CASE WHEN typeof(year) = 'text' THEN year ELSE query_year END, ?2, ?3
             FROM customer_rows WHERE company_id = ?1",
        )?
        .execute(params![co, now, previous])?;
    let deep: bool = tx
        .prepare_cached("SELECT COALESCE(next_check_reason = ?2, 0) FROM companies WHERE company_id = ?1")?
        .query_row(params![co, DEEP_CHECK], |r| r.get(0))?;
    let outcome = if state == CompanyState::NoResult {
        "no_result"
    } else if previous.is_none() {
        "first"
    } else if deep && new_periods == 0 {
        // Re-paged whatever page 1 said: stored rows say nothing of a change.
        "deep"
    } else {
        // Rows stored since this cycle's discovery: the check found a change.
        let changed: bool = tx
            .prepare_cached(
                "SELECT new_periods > 0 OR EXISTS (
                     SELECT 1 FROM customer_rows r, companies c
                     WHERE c.company_id = ?1 AND r.company_id = ?1 AND c.discovered_at IS NOT NULL
                       AND r.fetched_at >= CAST(round((julianday(c.discovered_at) - 2440587.5) * 86400000) AS INTEGER))
                 FROM (SELECT ?2 AS new_periods)",
            )?
            .query_row(params![co, new_periods as i64], |r| r.get(0))?;
        if changed {
            "changed"
        } else {
            "unchanged"
        }
    };
    tx.prepare_cached(
        "INSERT INTO company_checks (company_id, checked_at, run_id, outcome, reason)
         SELECT ?1, ?2, ?3, ?4, next_check_reason FROM companies WHERE company_id = ?1",
    )?
    .execute(params![co, now, run_id, outcome])?;
    // The check the schedule asked for as a deep one re-paged the company.
    tx.prepare_cached("UPDATE companies SET deep_checked_at = ?2 WHERE company_id = ?1 AND next_check_reason = ?3")?
        .execute(params![co, now, DEEP_CHECK])?;
    Ok(())
}

/// `next_check_reason` of a check that re-pages the company's latest years.
pub const DEEP_CHECK: &str = "deep check";

/// The revisit schedule's verdict for a company: its next check and why.
pub fn set_next_check(tx: &Transaction<'_>, search_key: &str, at: &str, reason: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE companies SET next_check_at = ?2, next_check_reason = ?3 WHERE search_key = ?1")?
        .execute(params![search_key, at, reason])?;
    Ok(())
}

fn insert_call(tx: &Transaction<'_>, run_id: i64, c: &CallRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO api_calls (run_id, search_key, year, page_index, page_size, http_status, status,
                                order_number, started_at, duration_ms, attempt, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        run_id,
        c.search_key,
        c.year,
        c.page_index,
        c.page_size,
        c.http_status,
        c.status,
        c.order_number,
        c.started_at,
        c.duration_ms as i64,
        c.attempt,
        c.error
    ])?;
    Ok(())
}

fn insert_raw(tx: &Transaction<'_>, key: &str, raw: &RawPage, now: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO raw_pages (search_key, query_year, page_index, order_number, fetched_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![key, raw.query_year, raw.page_index, raw.order_number, now, raw.body])?;
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
                (SELECT COUNT(*) FROM customer_rows c WHERE c.company_id = co.company_id AND c.query_year = j.value),
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
