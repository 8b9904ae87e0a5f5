//! The writer's statements. Every function here runs inside a transaction the
//! writer owns; statements are cached (`prepare_cached`) because the same few
//! run millions of times.

use rusqlite::{params, Connection, Transaction};

mod events;

use super::customers::Codebook;
pub use super::history::Changes;
use super::records::{CallRecord, Commit, CompanySnapshot, CompanyState, Event, InputRecord, Registration};

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

/// What one commit did: the customer rows it stored, and the changes to
/// the disclosures it recorded.
#[derive(Debug, Default, Clone, Copy)]
pub struct Applied {
    pub rows: u64,
    pub changes: Changes,
}

/// Apply one commit. The caller's transaction makes it atomic. Each event
/// is applied by its own function in [`events`], versions and all.
pub fn apply(
    tx: &Transaction<'_>,
    codes: &mut Codebook,
    run_id: i64,
    commit: &Commit,
    now: &str,
) -> rusqlite::Result<Applied> {
    if let Some(call) = &commit.call {
        insert_call(tx, run_id, call)?;
    }
    let page_size = commit.call.as_ref().map(|c| c.page_size);
    let mut unit = events::Unit::new(tx, codes, run_id, &commit.search_key, now, page_size);
    let mut rows_stored = 0;
    for event in &commit.events {
        match event {
            Event::Discovered { year_list, total_records, digest, plan, raw } => {
                unit.discovered(year_list, *total_records, digest, *plan, raw.as_ref())?
            }
            Event::Evidence { kind, order_number, detail } => unit.evidence(*kind, order_number.as_deref(), detail)?,
            Event::ListingAbandoned => unit.listing_abandoned()?,
            Event::Page(page) => rows_stored += unit.page(page)?,
            Event::Receipt(raw) => unit.receipt(raw)?,
            Event::YearEnded { query_year, state, total_records, pages_total, pages_fetched } => {
                unit.year_ended(query_year, *state, *total_records, *pages_total, *pages_fetched)?
            }
            Event::Company { state, status_code, message, retry_after } => {
                unit.company_state(*state, status_code.as_deref(), message.as_deref(), retry_after.as_deref())?
            }
        }
    }
    let changes = unit.changes();
    Ok(Applied { rows: rows_stored, changes })
}

/// The revisit schedule's verdict for a company: its next check, why, and
/// whether it is a deep one (it re-pages the company's latest years).
pub fn set_next_check(
    tx: &Transaction<'_>,
    search_key: &str,
    at: &str,
    reason: &str,
    deep: bool,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE companies SET next_check_at = ?2, next_check_reason = ?3, next_check_deep = ?4 WHERE search_key = ?1",
    )?
    .execute(params![search_key, at, reason, deep])?;
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

#[cfg(test)]
mod tests;
