//! The writer's statements. Every function here runs inside a transaction the
//! writer owns; statements are cached (`prepare_cached`) because the same few
//! run millions of times.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::records::{
    report_year, CallRecord, Commit, CompanySnapshot, CompanyState, Event, InputRecord, Query, RawPage, Registration,
    YearState,
};
use crate::qcc::ClientRow;

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
                                    first_run_id, last_run_id, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
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
                delete_unit(tx, STAGING, key, &Query::Listing)?;
            }
            Event::Page { query, page_index, total_records, pages_total, year_state, rows, raw } => {
                let last = *year_state != YearState::Partial;
                let page = *page_index;
                if page == 1 && last {
                    // A one-page unit replaces its rows in this transaction.
                    delete_unit(tx, CUSTOMERS, key, query)?;
                    delete_unit(tx, STAGING, key, query)?;
                    insert_rows(tx, CUSTOMERS, key, query, page, rows.iter().enumerate(), now)?;
                } else if has_rows(tx, if page == 1 { CUSTOMERS } else { STAGING }, key, query)? {
                    // Page 1 of a unit that has stored rows is a re-fetch;
                    // later pages follow wherever page 1 went.
                    // The unit has rows to protect: collect the new ones aside.
                    if page == 1 {
                        delete_unit(tx, STAGING, key, query)?;
                    }
                    insert_rows(tx, STAGING, key, query, page, rows.iter().enumerate(), now)?;
                    if last {
                        promote(tx, key, query)?;
                    }
                } else {
                    // A first fetch: nothing to protect, rows go straight in
                    // (the checkpoint says `partial` until it is done).
                    insert_rows(tx, CUSTOMERS, key, query, page, rows.iter().enumerate(), now)?;
                    if last {
                        drop_pages_after(tx, key, query, page)?;
                    }
                }
                rows_stored += rows.len() as u64;
                if let Some(raw) = raw {
                    insert_raw(tx, key, raw, now)?;
                }
                let progress = Progress {
                    total_records: *total_records,
                    pages_total: *pages_total,
                    pages_fetched: page,
                    page_size,
                };
                match query {
                    Query::Year(year) => set_year(tx, key, year, *year_state, &progress, now)?,
                    Query::Listing => {
                        set_listing(tx, key, last, &progress, rows.len() as u64, now)?;
                        if last {
                            listing_covers_company(tx, key, page_size, now)?;
                        }
                    }
                }
            }
            Event::YearEnded { query_year, state, total_records, pages_total, pages_fetched } => {
                let progress = Progress {
                    total_records: *total_records,
                    pages_total: *pages_total,
                    pages_fetched: *pages_fetched,
                    page_size,
                };
                set_year(tx, key, query_year, *state, &progress, now)?;
                let query = Query::Year(query_year.clone());
                if *pages_fetched == 0 {
                    // The year is empty now: it replaces whatever was stored.
                    delete_unit(tx, STAGING, key, &query)?;
                    delete_unit(tx, CUSTOMERS, key, &query)?;
                } else if has_rows(tx, STAGING, key, &query)? {
                    promote(tx, key, &query)?;
                } else {
                    drop_pages_after(tx, key, &query, *pages_fetched)?;
                }
            }
            Event::Company { state, status_code, message, retry_after } => {
                let fetched = matches!(state, CompanyState::Done | CompanyState::NoResult);
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
            }
        }
    }
    Ok(rows_stored)
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

const CUSTOMERS: &str = "customers";
const STAGING: &str = "customers_staging";

/// The rows a unit of fetching owns, as a condition on `search_key = ?1`.
/// In `customers` a year is every row of that report year and the listing is
/// every row of the company, whichever query brought them: re-fetching
/// either replaces exactly those. In the staging table each unit owns only
/// the rows it staged. `?2` is the year (NULL for the listing), so every
/// statement built on this binds the same two parameters.
fn unit_rows(table: &str, query: &Query) -> &'static str {
    match (table == CUSTOMERS, query) {
        (true, Query::Year(_)) => "query_year = ?2",
        (true, Query::Listing) => "?2 IS NULL",
        (false, Query::Year(_)) => "query_year = ?2 AND from_listing = 0",
        (false, Query::Listing) => "from_listing = 1 AND ?2 IS NULL",
    }
}

/// Store one page's rows under their identity (key, query, page, position)
/// in `customers` or `customers_staging`. A row of a year's query belongs to
/// that year; a listing row to the report year of its own `Year`.
fn insert_rows<'r>(
    tx: &Transaction<'_>,
    table: &str,
    key: &str,
    query: &Query,
    page_index: u32,
    rows: impl Iterator<Item = (usize, &'r ClientRow)>,
    now: &str,
) -> rusqlite::Result<()> {
    // Callers clear what a page replaces; OR REPLACE only guards the identity.
    let mut insert = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {table} (search_key, year, query_year, from_listing, page_index, row_index, name,
                              key_no, image_url, sales_amount, sales_amount_text, sales_percent, sales_percent_text,
                              relationship, source, fetched_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?;
    // The page's constant columns are bound once; per row only what changes
    // (bindings survive between executions of a statement).
    insert.raw_bind_parameter(1, key)?;
    insert.raw_bind_parameter(4, i64::from(*query == Query::Listing))?;
    insert.raw_bind_parameter(5, page_index)?;
    insert.raw_bind_parameter(16, now)?;
    if let Query::Year(y) = query {
        insert.raw_bind_parameter(3, y)?;
    }
    for (i, r) in rows {
        match query {
            Query::Year(y) => insert.raw_bind_parameter(2, r.year.as_deref().unwrap_or(y))?,
            Query::Listing => {
                insert.raw_bind_parameter(2, &r.year)?;
                insert.raw_bind_parameter(3, report_year(r.year.as_deref()).unwrap_or(""))?;
            }
        }
        insert.raw_bind_parameter(6, i as i64)?;
        insert.raw_bind_parameter(7, &r.name)?;
        insert.raw_bind_parameter(8, &r.key_no)?;
        insert.raw_bind_parameter(9, &r.image_url)?;
        insert.raw_bind_parameter(10, r.sales_amount)?;
        insert.raw_bind_parameter(11, &r.sales_amount_text)?;
        insert.raw_bind_parameter(12, r.sales_percent)?;
        insert.raw_bind_parameter(13, &r.sales_percent_text)?;
        insert.raw_bind_parameter(14, &r.relationship)?;
        insert.raw_bind_parameter(15, &r.source)?;
        insert.raw_execute()?;
    }
    Ok(())
}

fn delete_unit(tx: &Transaction<'_>, table: &str, key: &str, query: &Query) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!("DELETE FROM {table} WHERE search_key = ?1 AND {}", unit_rows(table, query)))?
        .execute(params![key, query.year()])?;
    Ok(())
}

/// Whether `table` holds rows of this unit.
fn has_rows(tx: &Transaction<'_>, table: &str, key: &str, query: &Query) -> rusqlite::Result<bool> {
    tx.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE search_key = ?1 AND {})",
        unit_rows(table, query)
    ))?
    .query_row(params![key, query.year()], |r| r.get(0))
}

/// A unit fetched straight into `customers` is complete at `page`: drop what
/// an earlier, longer fetch left past it (and, for the listing, anything not
/// from the listing: it replaces the whole company).
fn drop_pages_after(tx: &Transaction<'_>, key: &str, query: &Query, page: u32) -> rusqlite::Result<()> {
    let sql = match query {
        Query::Year(_) => {
            "DELETE FROM customers WHERE search_key = ?1 AND query_year = ?2 AND from_listing = 0 AND page_index > ?3"
        }
        Query::Listing => {
            "DELETE FROM customers WHERE search_key = ?1 AND ?2 IS NULL AND (from_listing = 0 OR page_index > ?3)"
        }
    };
    tx.prepare_cached(sql)?.execute(params![key, query.year(), page])?;
    Ok(())
}

/// A unit's pages are all in: its staged rows replace its stored rows.
fn promote(tx: &Transaction<'_>, key: &str, query: &Query) -> rusqlite::Result<()> {
    delete_unit(tx, CUSTOMERS, key, query)?;
    tx.prepare_cached(&format!(
        "INSERT INTO customers (search_key, year, query_year, from_listing, page_index, row_index, name, key_no,
                                image_url, sales_amount, sales_amount_text, sales_percent, sales_percent_text,
                                relationship, source, fetched_at)
         SELECT search_key, year, query_year, from_listing, page_index, row_index, name, key_no, image_url,
                sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
         FROM customers_staging WHERE search_key = ?1 AND {}",
        unit_rows(STAGING, query)
    ))?
    .execute(params![key, query.year()])?;
    delete_unit(tx, STAGING, key, query)
}

/// A checkpoint's numbers.
struct Progress {
    total_records: u64,
    pages_total: u32,
    pages_fetched: u32,
    page_size: Option<u32>,
}

fn set_year(
    tx: &Transaction<'_>,
    key: &str,
    year: &str,
    state: YearState,
    p: &Progress,
    now: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO company_years (search_key, year, state, total_records, pages_total, pages_fetched, fetched_at,
                                    page_size, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'year')
         ON CONFLICT (search_key, year) DO UPDATE SET state = excluded.state,
            total_records = excluded.total_records, pages_total = excluded.pages_total,
            pages_fetched = excluded.pages_fetched, fetched_at = excluded.fetched_at,
            page_size = COALESCE(excluded.page_size, company_years.page_size), source = 'year'",
    )?
    .execute(params![
        key,
        year,
        state.as_str(),
        p.total_records as i64,
        p.pages_total,
        p.pages_fetched,
        now,
        p.page_size
    ])?;
    Ok(())
}

/// The listing checkpoint after storing page `p.pages_fetched` of `rows` rows.
fn set_listing(
    tx: &Transaction<'_>,
    key: &str,
    complete: bool,
    p: &Progress,
    rows: u64,
    now: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO company_listings (search_key, state, total_records, pages_total, pages_fetched, rows_fetched,
                                       page_size, started_at, fetched_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (search_key) DO UPDATE SET state = excluded.state, total_records = excluded.total_records,
            pages_total = excluded.pages_total, pages_fetched = excluded.pages_fetched,
            rows_fetched = CASE WHEN excluded.pages_fetched = 1 THEN excluded.rows_fetched
                                ELSE company_listings.rows_fetched + excluded.rows_fetched END,
            page_size = excluded.page_size,
            started_at = CASE WHEN excluded.pages_fetched = 1 THEN excluded.started_at
                              ELSE company_listings.started_at END,
            fetched_at = excluded.fetched_at",
    )?
    .execute(params![
        key,
        if complete { "complete" } else { "partial" },
        p.total_records as i64,
        p.pages_total,
        p.pages_fetched,
        rows as i64,
        p.page_size.unwrap_or(0),
        now
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
                (SELECT COUNT(*) FROM customers c WHERE c.search_key = ?1 AND c.query_year = j.value), 0, 0, ?2, ?3,
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

/// What `rebuild` did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Rebuilt {
    pub years: u64,
    pub rows: u64,
    /// Years mid-fetch (partial): their stored rows were left as they are.
    pub partial_years_kept: u64,
    /// Years with a missing or unreadable receipt (e.g. `--no-archive`): kept.
    pub years_without_receipts: u64,
}

/// Re-derive `customers` from `raw_pages` in one transaction, parsed exactly
/// as a run parses them: every complete or truncated year paged per year gets
/// the rows of its newest receipts for pages `1..=pages_fetched`; every
/// company whose listing is complete gets, for the years that came from it,
/// the rows of that listing's receipts (the newest of each page stored no
/// later than the listing was completed, so a later discovery call does not
/// mix into it).
pub fn rebuild(tx: &Transaction<'_>, parse: impl Fn(&[u8]) -> Option<Vec<ClientRow>>) -> rusqlite::Result<Rebuilt> {
    let mut out = Rebuilt::default();
    let years: Vec<(String, String, String, i64)> = tx
        .prepare(
            "SELECT search_key, year, state, pages_fetched FROM company_years WHERE source = 'year'
             ORDER BY search_key, year",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut page_stmt = tx.prepare(
        "SELECT body, fetched_at FROM raw_pages
         WHERE search_key = ?1 AND query_year = ?2 AND page_index = ?3 AND fetched_at <= ?4
         ORDER BY raw_id DESC LIMIT 1",
    )?;
    // The receipts of pages 1..=pages, or None when one is missing or unreadable.
    let mut receipts = |key: &str, query_year: &str, pages: i64, until: &str| -> rusqlite::Result<_> {
        let mut out = Vec::with_capacity(pages.max(0) as usize);
        for page in 1..=pages.max(0) {
            let found: Option<(Vec<u8>, String)> = page_stmt
                .query_row(params![key, query_year, page, until], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match found.and_then(|(body, at)| parse(&body).map(|rows| (rows, at))) {
                Some(rows) => out.push(rows),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    };
    const ANY_TIME: &str = "9999";
    for (key, year, state, pages) in years {
        if state == YearState::Partial.as_str() {
            out.partial_years_kept += 1;
            continue;
        }
        let Some(pages_rows) = receipts(&key, &year, pages, ANY_TIME)? else {
            out.years_without_receipts += 1;
            continue;
        };
        let query = Query::Year(year);
        delete_unit(tx, CUSTOMERS, &key, &query)?;
        for (i, (rows, fetched_at)) in pages_rows.iter().enumerate() {
            insert_rows(tx, CUSTOMERS, &key, &query, i as u32 + 1, rows.iter().enumerate(), fetched_at)?;
            out.rows += rows.len() as u64;
        }
        out.years += 1;
    }

    let listings: Vec<(String, i64, String, String)> = tx
        .prepare(
            "SELECT l.search_key, l.pages_fetched, l.fetched_at,
                    (SELECT json_group_array(y.year) FROM company_years y
                     WHERE y.search_key = l.search_key AND y.source = 'listing')
             FROM company_listings l WHERE l.state = 'complete' ORDER BY l.search_key",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (key, pages, completed_at, years_json) in listings {
        let years: std::collections::HashSet<String> = serde_json::from_str(&years_json).unwrap_or_default();
        if years.is_empty() {
            continue;
        }
        let Some(pages_rows) = receipts(&key, "", pages, &completed_at)? else {
            out.years_without_receipts += years.len() as u64;
            continue;
        };
        // Only the listing's rows of the years it is the source of: a year
        // re-fetched per year since then keeps those rows.
        let ours = |r: &ClientRow| years.contains(report_year(r.year.as_deref()).unwrap_or(""));
        tx.prepare_cached("DELETE FROM customers WHERE search_key = ?1 AND from_listing = 1")?.execute([&key])?;
        for (i, (rows, fetched_at)) in pages_rows.iter().enumerate() {
            let kept = rows.iter().enumerate().filter(|(_, r)| ours(r));
            insert_rows(tx, CUSTOMERS, &key, &Query::Listing, i as u32 + 1, kept, fetched_at)?;
            out.rows += rows.iter().filter(|r| ours(r)).count() as u64;
        }
        out.years += years.len() as u64;
    }
    Ok(out)
}
