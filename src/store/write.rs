//! The writer's statements. Every function here runs inside a transaction the
//! writer owns; statements are cached (`prepare_cached`) because the same few
//! run millions of times.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::records::{
    CallRecord, Commit, CompanySnapshot, CompanyState, Event, InputRecord, RawPage, Registration, YearState,
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
        return Ok(Registration::Company(CompanySnapshot {
            search_key: rec.search_key.clone(),
            state,
            year_list: None,
            discovered_at: None,
            fetched_at: None,
            retry_after: None,
            years: Vec::new(),
        }));
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
    let years = super::read::company_years(tx, &snapshot.search_key)?;
    Ok(Registration::Company(CompanySnapshot { years, ..snapshot }))
}

/// Companies of this run parked by 110 whose `retry_after` has passed:
/// marked pending (so they are taken once) and returned for planning.
pub fn take_due_parked(
    tx: &Transaction<'_>,
    run_id: i64,
    now: &str,
    limit: usize,
) -> rusqlite::Result<Vec<CompanySnapshot>> {
    type Due = (String, Option<String>, Option<String>, Option<String>);
    let due: Vec<Due> = tx
        .prepare_cached(
            "SELECT search_key, year_list, discovered_at, fetched_at FROM companies
             WHERE last_run_id = ?1 AND state = 'parked' AND retry_after <= ?2 LIMIT ?3",
        )?
        .query_map(params![run_id, now, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(due.len());
    for (search_key, year_list, discovered_at, fetched_at) in due {
        tx.prepare_cached(
            "UPDATE companies SET state = 'pending', retry_after = NULL, updated_at = ?2 WHERE search_key = ?1",
        )?
        .execute(params![search_key, now])?;
        let years = super::read::company_years(tx, &search_key)?;
        out.push(CompanySnapshot {
            year_list: year_list.and_then(|j| serde_json::from_str(&j).ok()),
            search_key,
            state: CompanyState::Pending,
            discovered_at,
            fetched_at,
            retry_after: None,
            years,
        });
    }
    Ok(out)
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
            Event::Discovered { year_list, raw } => {
                let list = serde_json::to_string(year_list).unwrap_or_else(|_| "[]".into());
                tx.prepare_cached(
                    // A new fetch cycle: the company is pending until its years
                    // are in, so a run stopped half-way resumes without paying
                    // for discovery again.
                    "UPDATE companies SET year_list = ?2, discovered_at = ?3, state = 'pending', status_code = '200',
                            message = NULL, retry_after = NULL, updated_at = ?3
                     WHERE search_key = ?1",
                )?
                .execute(params![key, list, now])?;
                if let Some(raw) = raw {
                    insert_raw(tx, key, raw, now)?;
                }
            }
            Event::Page { query_year, page_index, total_records, pages_total, year_state, rows, raw } => {
                let last = *year_state != YearState::Partial;
                let (page, year) = (*page_index, query_year.as_str());
                if page == 1 && last {
                    // A one-page year replaces its rows in this transaction.
                    delete_year(tx, CUSTOMERS, key, year)?;
                    delete_year(tx, STAGING, key, year)?;
                    insert_rows(tx, CUSTOMERS, key, year, page, rows, now)?;
                } else if has_rows(tx, if page == 1 { CUSTOMERS } else { STAGING }, key, year)? {
                    // Page 1 of a year that has stored rows is a re-fetch;
                    // later pages follow wherever page 1 went.
                    // The year has rows to protect: collect the new ones aside.
                    if page == 1 {
                        delete_year(tx, STAGING, key, year)?;
                    }
                    insert_rows(tx, STAGING, key, year, page, rows, now)?;
                    if last {
                        promote(tx, key, year)?;
                    }
                } else {
                    // A first fetch: nothing to protect, rows go straight in
                    // (the year's checkpoint says `partial` until it is done).
                    insert_rows(tx, CUSTOMERS, key, year, page, rows, now)?;
                    if last {
                        drop_pages_after(tx, key, year, page)?;
                    }
                }
                rows_stored += rows.len() as u64;
                if let Some(raw) = raw {
                    insert_raw(tx, key, raw, now)?;
                }
                let progress = YearProgress {
                    total_records: *total_records,
                    pages_total: *pages_total,
                    pages_fetched: *page_index,
                    page_size,
                };
                set_year(tx, key, query_year, *year_state, &progress, now)?;
            }
            Event::YearEnded { query_year, state, total_records, pages_total, pages_fetched } => {
                let progress = YearProgress {
                    total_records: *total_records,
                    pages_total: *pages_total,
                    pages_fetched: *pages_fetched,
                    page_size,
                };
                set_year(tx, key, query_year, *state, &progress, now)?;
                if *pages_fetched == 0 {
                    // The year is empty now: it replaces whatever was stored.
                    delete_year(tx, STAGING, key, query_year)?;
                    delete_year(tx, CUSTOMERS, key, query_year)?;
                } else if has_rows(tx, STAGING, key, query_year)? {
                    promote(tx, key, query_year)?;
                } else {
                    drop_pages_after(tx, key, query_year, *pages_fetched)?;
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

/// Store one page's rows under their identity (key, query year, page, row)
/// in `customers` or `customers_staging`.
fn insert_rows(
    tx: &Transaction<'_>,
    table: &str,
    key: &str,
    query_year: &str,
    page_index: u32,
    rows: &[ClientRow],
    now: &str,
) -> rusqlite::Result<()> {
    // Callers clear what a page replaces; OR REPLACE only guards the identity.
    let mut insert = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {table} (search_key, year, query_year, page_index, row_index, name, key_no, image_url,
                              sales_amount, sales_amount_text, sales_percent, sales_percent_text,
                              relationship, source, fetched_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))?;
    // The page's constant columns are bound once; per row only what changes
    // (bindings survive between executions of a statement).
    insert.raw_bind_parameter(1, key)?;
    insert.raw_bind_parameter(3, query_year)?;
    insert.raw_bind_parameter(4, page_index)?;
    insert.raw_bind_parameter(15, now)?;
    for (i, r) in rows.iter().enumerate() {
        insert.raw_bind_parameter(2, r.year.as_deref().unwrap_or(query_year))?;
        insert.raw_bind_parameter(5, i as i64)?;
        insert.raw_bind_parameter(6, &r.name)?;
        insert.raw_bind_parameter(7, &r.key_no)?;
        insert.raw_bind_parameter(8, &r.image_url)?;
        insert.raw_bind_parameter(9, r.sales_amount)?;
        insert.raw_bind_parameter(10, &r.sales_amount_text)?;
        insert.raw_bind_parameter(11, r.sales_percent)?;
        insert.raw_bind_parameter(12, &r.sales_percent_text)?;
        insert.raw_bind_parameter(13, &r.relationship)?;
        insert.raw_bind_parameter(14, &r.source)?;
        insert.raw_execute()?;
    }
    Ok(())
}

fn delete_year(tx: &Transaction<'_>, table: &str, key: &str, query_year: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!("DELETE FROM {table} WHERE search_key = ?1 AND query_year = ?2"))?
        .execute(params![key, query_year])?;
    Ok(())
}

/// Whether `table` holds rows of this company-year.
fn has_rows(tx: &Transaction<'_>, table: &str, key: &str, query_year: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached(&format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE search_key = ?1 AND query_year = ?2)"))?
        .query_row(params![key, query_year], |r| r.get(0))
}

fn drop_pages_after(tx: &Transaction<'_>, key: &str, query_year: &str, page: u32) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM customers WHERE search_key = ?1 AND query_year = ?2 AND page_index > ?3")?
        .execute(params![key, query_year, page])?;
    Ok(())
}

/// A year's pages are all in: its staged rows replace its stored rows.
fn promote(tx: &Transaction<'_>, key: &str, query_year: &str) -> rusqlite::Result<()> {
    delete_year(tx, CUSTOMERS, key, query_year)?;
    tx.prepare_cached(
        "INSERT INTO customers (search_key, year, query_year, page_index, row_index, name, key_no, image_url,
                                sales_amount, sales_amount_text, sales_percent, sales_percent_text,
                                relationship, source, fetched_at)
         SELECT search_key, year, query_year, page_index, row_index, name, key_no, image_url,
                sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
         FROM customers_staging WHERE search_key = ?1 AND query_year = ?2",
    )?
    .execute(params![key, query_year])?;
    delete_year(tx, STAGING, key, query_year)
}

/// A year checkpoint's numbers.
struct YearProgress {
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
    p: &YearProgress,
    now: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO company_years (search_key, year, state, total_records, pages_total, pages_fetched, fetched_at,
                                    page_size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (search_key, year) DO UPDATE SET state = excluded.state,
            total_records = excluded.total_records, pages_total = excluded.pages_total,
            pages_fetched = excluded.pages_fetched, fetched_at = excluded.fetched_at,
            page_size = COALESCE(excluded.page_size, company_years.page_size)",
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

/// Re-derive `customers` from `raw_pages` in one transaction: every complete
/// or truncated year gets the rows of its newest receipts for pages
/// `1..=pages_fetched`, parsed exactly as a run parses them.
pub fn rebuild(tx: &Transaction<'_>, parse: impl Fn(&[u8]) -> Option<Vec<ClientRow>>) -> rusqlite::Result<Rebuilt> {
    let mut out = Rebuilt::default();
    let years: Vec<(String, String, String, i64)> = tx
        .prepare("SELECT search_key, year, state, pages_fetched FROM company_years ORDER BY search_key, year")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut page_stmt = tx.prepare(
        "SELECT body, fetched_at FROM raw_pages WHERE search_key = ?1 AND query_year = ?2 AND page_index = ?3
         ORDER BY raw_id DESC LIMIT 1",
    )?;
    'years: for (key, year, state, pages) in years {
        if state == YearState::Partial.as_str() {
            out.partial_years_kept += 1;
            continue;
        }
        let mut pages_rows = Vec::with_capacity(pages.max(0) as usize);
        for page in 1..=pages.max(0) {
            let found: Option<(Vec<u8>, String)> =
                page_stmt.query_row(params![key, year, page], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
            match found.and_then(|(body, at)| parse(&body).map(|rows| (rows, at))) {
                Some(rows) => pages_rows.push(rows),
                None => {
                    out.years_without_receipts += 1;
                    continue 'years;
                }
            }
        }
        delete_year(tx, CUSTOMERS, &key, &year)?;
        for (i, (rows, fetched_at)) in pages_rows.iter().enumerate() {
            insert_rows(tx, CUSTOMERS, &key, &year, i as u32 + 1, rows, fetched_at)?;
            out.rows += rows.len() as u64;
        }
        out.years += 1;
    }
    Ok(out)
}
