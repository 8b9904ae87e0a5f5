//! Queries that only read: run summaries and reports.

use rusqlite::{params, Connection};

use rusqlite::OptionalExtension;

use super::records::{
    CompanyHistory, CompanySnapshot, CompanyState, Evidence, EvidenceKind, FetchPlan, ListingRow, PeriodRow,
    StoredPages, YearRow, YearState,
};

/// `(label, count)` pairs, in a stable order.
pub type Counts = Vec<(String, u64)>;

/// A call's outcome in words: the API status, else the HTTP status, else none.
const CALL_OUTCOME: &str =
    "COALESCE(status, CASE WHEN http_status IS NOT NULL THEN 'HTTP ' || http_status ELSE 'no answer' END)";

fn counts(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<Counts> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
    rows.collect()
}

/// Companies of this run's input, by state.
pub fn companies_by_state(conn: &Connection, run_id: i64) -> rusqlite::Result<Counts> {
    counts(
        conn,
        "SELECT state, COUNT(*) FROM companies WHERE last_run_id = ?1 GROUP BY state ORDER BY state",
        params![run_id],
    )
}

/// This run's calls by outcome: the vendor code, `HTTP nnn`, or `no answer`.
pub fn calls_by_status(conn: &Connection, run_id: i64) -> rusqlite::Result<Counts> {
    counts(
        conn,
        &format!("SELECT {CALL_OUTCOME} AS s, COUNT(*) FROM api_calls WHERE run_id = ?1 GROUP BY s ORDER BY s"),
        params![run_id],
    )
}

/// Rows in `customers`, all companies.
pub fn customer_rows_total(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM disclosure WHERE valid_to IS NULL", [], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}

/// Calls recorded since an ISO timestamp by outcome (a run that failed
/// before its summary: what it made).
pub fn calls_by_status_since(conn: &Connection, since_iso: &str) -> rusqlite::Result<Counts> {
    counts(
        conn,
        &format!("SELECT {CALL_OUTCOME} AS s, COUNT(*) FROM api_calls WHERE started_at >= ?1 GROUP BY s ORDER BY s"),
        params![since_iso],
    )
}

/// When a run last ended with exit code 0.
pub fn last_success(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT MAX(finished_at) FROM runs WHERE exit_code = 0", [], |r| r.get(0))
}

/// Calls recorded since an ISO timestamp (for `--daily-limit`).
pub fn calls_since(conn: &Connection, since_iso: &str) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM api_calls WHERE started_at >= ?1", [since_iso], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}

/// The earliest `retry_after` among this run's parked companies.
pub fn earliest_retry_after(conn: &Connection, run_id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT MIN(retry_after) FROM companies WHERE last_run_id = ?1 AND state = 'parked'",
        [run_id],
        |r| r.get(0),
    )
}

/// One run, for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub run_id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub exit_code: Option<i64>,
    pub input_path: Option<String>,
    pub calls: i64,
    pub rows_written: i64,
    pub stop_reason: Option<String>,
    /// The changes to the disclosures the run recorded, by kind.
    pub changes: super::history::Changes,
}

/// The changes to the disclosures `run_id` recorded, by kind. Summed in one
/// pass, not grouped: a GROUP BY over a first fetch's millions of versions
/// sorted them all, and the sort was the run's peak memory.
pub fn changes_of_run(conn: &Connection, run_id: i64) -> rusqlite::Result<super::history::Changes> {
    let n = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
    let (new_period, added, changed, removed) = conn
        .prepare_cached(
            "SELECT SUM(opened_as = 1), SUM(opened_as = 2), SUM(opened_as = 3),
                    (SELECT COUNT(*) FROM disclosure WHERE closed_run = ?1 AND closed_as = 4)
             FROM disclosure WHERE opened_run = ?1",
        )?
        .query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(super::history::Changes { new_period: n(new_period), added: n(added), changed: n(changed), removed: n(removed) })
}

pub fn recent_runs(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<RunRow>> {
    let mut stmt = conn.prepare(
        "SELECT run_id, started_at, finished_at, status, exit_code, input_path, calls, rows_written,
                json_extract(summary, '$.stop_reason')
         FROM runs ORDER BY run_id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(RunRow {
            run_id: r.get(0)?,
            started_at: r.get(1)?,
            finished_at: r.get(2)?,
            status: r.get(3)?,
            exit_code: r.get(4)?,
            input_path: r.get(5)?,
            calls: r.get(6)?,
            rows_written: r.get(7)?,
            stop_reason: r.get(8)?,
            changes: Default::default(),
        })
    })?;
    let mut runs: Vec<RunRow> = rows.collect::<rusqlite::Result<_>>()?;
    for run in &mut runs {
        run.changes = changes_of_run(conn, run.run_id)?;
    }
    Ok(runs)
}

/// A company waiting for a later run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Waiting {
    pub search_key: String,
    pub state: String,
    pub status_code: Option<String>,
    pub message: Option<String>,
    pub retry_after: Option<String>,
}

/// Deferred, parked and pending companies (at most `limit`), parked first by time.
pub fn waiting(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Waiting>> {
    let mut stmt = conn.prepare(
        "SELECT search_key, state, status_code, message, retry_after FROM companies
         WHERE state IN ('deferred', 'parked', 'pending')
         ORDER BY state = 'pending', retry_after, search_key LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(Waiting {
            search_key: r.get(0)?,
            state: r.get(1)?,
            status_code: r.get(2)?,
            message: r.get(3)?,
            retry_after: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Every company in the file, by state.
pub fn all_companies_by_state(conn: &Connection) -> rusqlite::Result<Counts> {
    counts(conn, "SELECT state, COUNT(*) FROM companies GROUP BY state ORDER BY state", [])
}

/// Every call in the ledger by outcome.
pub fn all_calls_by_status(conn: &Connection) -> rusqlite::Result<Counts> {
    counts(conn, &format!("SELECT {CALL_OUTCOME} AS s, COUNT(*) FROM api_calls GROUP BY s ORDER BY s"), [])
}

/// Calls in the ledger.
pub fn calls_total(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM api_calls", [], |r| r.get::<_, i64>(0)).map(|n| n.max(0) as u64)
}

const COMPANY_COLUMNS: &str = "search_key, state, year_list, discovered_at, fetched_at, retry_after, total_records,
     discovery_digest, fetch_plan, last_run_id, next_check_at, next_check_reason, next_check_deep";

/// A company row as stored, with the last run whose input held it.
fn company_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(CompanySnapshot, Option<i64>)> {
    let state: String = r.get(1)?;
    let year_list: Option<String> = r.get(2)?;
    let plan: Option<String> = r.get(8)?;
    Ok((
        CompanySnapshot {
            search_key: r.get(0)?,
            state: CompanyState::parse(&state).unwrap_or(CompanyState::Pending),
            year_list: year_list.and_then(|j| serde_json::from_str(&j).ok()),
            discovered_at: r.get(3)?,
            fetched_at: r.get(4)?,
            retry_after: r.get(5)?,
            total_records: r.get::<_, Option<i64>>(6)?.map(|v| v.max(0) as u64),
            discovery_digest: r.get(7)?,
            fetch_plan: plan.as_deref().and_then(FetchPlan::parse),
            listing: None,
            years: Vec::new(),
            next_check_at: r.get(10)?,
            next_check_reason: r.get(11)?,
            next_check_deep: r.get(12)?,
        },
        r.get::<_, Option<i64>>(9)?,
    ))
}

/// A company as stored (its checkpoints not loaded: see [`with_checkpoints`]),
/// found by its normalised key, with the last run whose input held it. Used
/// by the writer (registration) and by `--dry-run`.
pub fn company_by_norm_key(
    conn: &Connection,
    norm_key: &str,
) -> rusqlite::Result<Option<(CompanySnapshot, Option<i64>)>> {
    conn.prepare_cached(&format!("SELECT {COMPANY_COLUMNS} FROM companies WHERE norm_key = ?1"))?
        .query_row([norm_key], company_row)
        .optional()
}

/// A company as stored, by its search key (checkpoints not loaded).
pub fn company_by_key(conn: &Connection, search_key: &str) -> rusqlite::Result<Option<CompanySnapshot>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COMPANY_COLUMNS} FROM companies WHERE search_key = ?1"))?
        .query_row([search_key], company_row)
        .optional()?
        .map(|(c, _)| c))
}

/// The company with its year and listing checkpoints loaded, for planning.
pub fn with_checkpoints(conn: &Connection, company: CompanySnapshot) -> rusqlite::Result<CompanySnapshot> {
    let years = company_years(conn, &company.search_key)?;
    let listing = company_listing(conn, &company.search_key)?;
    Ok(CompanySnapshot { years, listing, ..company })
}

/// A company's year checkpoints.
pub fn company_years(conn: &Connection, search_key: &str) -> rusqlite::Result<Vec<YearRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT year, state, total_records, pages_total, pages_fetched, fetched_at, page_size, source, pages_beyond
         FROM company_years WHERE search_key = ?1",
    )?;
    let rows = stmt.query_map([search_key], |r| {
        let state: String = r.get(1)?;
        Ok(YearRow {
            year: r.get(0)?,
            state: match state.as_str() {
                "complete" => YearState::Complete,
                "truncated" => YearState::Truncated,
                _ => YearState::Partial,
            },
            total_records: r.get::<_, Option<i64>>(2)?.map(|v| v.max(0) as u64),
            pages_total: r.get::<_, Option<i64>>(3)?.map(|v| v.max(0) as u32),
            stored: StoredPages::from_checkpoint(
                r.get::<_, i64>(4)?.max(0) as u32,
                r.get::<_, Option<String>>(8)?.as_deref(),
            ),
            fetched_at: r.get(5)?,
            page_size: r.get::<_, Option<i64>>(6)?.map(|v| v.max(0) as u32),
            from_listing: r.get::<_, String>(7)? == "listing",
        })
    })?;
    rows.collect()
}

/// A company's listing checkpoint, if it ever had one.
pub fn company_listing(conn: &Connection, search_key: &str) -> rusqlite::Result<Option<ListingRow>> {
    conn.prepare_cached(
        "SELECT state, total_records, pages_total, pages_fetched, rows_fetched, page_size, pages_beyond
         FROM company_listings WHERE search_key = ?1",
    )?
    .query_row([search_key], |r| {
        Ok(ListingRow {
            complete: r.get::<_, String>(0)? == "complete",
            total_records: r.get::<_, i64>(1)?.max(0) as u64,
            pages_total: r.get::<_, i64>(2)?.max(0) as u32,
            stored: StoredPages::from_checkpoint(
                r.get::<_, i64>(3)?.max(0) as u32,
                r.get::<_, Option<String>>(6)?.as_deref(),
            ),
            rows_fetched: r.get::<_, i64>(4)?.max(0) as u64,
            page_size: r.get::<_, i64>(5)?.max(0) as u32,
        })
    })
    .optional()
}

/// What answers have shown about the listing: the first `every_year`, the
/// first `some_years`, and how many contradictions were seen.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ListingKnowledge {
    pub every_year: Option<Evidence>,
    pub some_years: Option<Evidence>,
    pub contradictions: u64,
}

pub fn listing_knowledge(conn: &Connection) -> rusqlite::Result<ListingKnowledge> {
    let first = |kind: EvidenceKind| -> rusqlite::Result<Option<Evidence>> {
        conn.prepare_cached(
            "SELECT search_key, order_number, observed_at, detail FROM listing_evidence
             WHERE kind = ?1 ORDER BY evidence_id LIMIT 1",
        )?
        .query_row([kind.as_str()], |r| {
            Ok(Evidence {
                kind,
                search_key: r.get(0)?,
                order_number: r.get(1)?,
                observed_at: r.get(2)?,
                detail: r.get(3)?,
            })
        })
        .optional()
    };
    Ok(ListingKnowledge {
        every_year: first(EvidenceKind::EveryYear)?,
        some_years: first(EvidenceKind::SomeYears)?,
        contradictions: conn.query_row(
            "SELECT COUNT(*) FROM listing_evidence WHERE kind = 'contradiction'",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64,
    })
}

/// For the companies whose listing this run completed: the calls their
/// listing took, and what per-year paging would cost for the same rows
/// (`1 + Σ max(1, min(100, ceil(n_y/size)))` over the years it held).
pub fn listing_savings(conn: &Connection, run_id: i64, run_started_at: &str) -> rusqlite::Result<(u64, u64)> {
    conn.query_row(
        "SELECT COALESCE(SUM(1 + (SELECT COALESCE(SUM(MAX(1, MIN(100, (y.total_records + l.page_size - 1) / l.page_size))), 0)
                                  FROM company_years y WHERE y.search_key = l.search_key AND y.source = 'listing')), 0),
                COALESCE(SUM(l.pages_total), 0)
         FROM company_listings l JOIN companies c USING (search_key)
         WHERE l.state = 'complete' AND l.fetched_at >= ?2 AND c.last_run_id = ?1",
        params![run_id, run_started_at],
        |r| Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, i64>(1)?.max(0) as u64)),
    )
}

/// Average pages per fetched year, over the whole file (for estimates).
pub fn average_pages_per_year(conn: &Connection) -> rusqlite::Result<Option<f64>> {
    conn.query_row("SELECT AVG(MAX(pages_total, 1)) FROM company_years WHERE source = 'year'", [], |r| r.get(0))
}

/// Average listing pages of the companies whose discovery said how many
/// rows they hold, counting those over 5,000 entries as paged per year would
/// not make them cheaper: only those within reach (for estimates).
pub fn average_listing_pages(conn: &Connection, page_size: u32) -> rusqlite::Result<Option<f64>> {
    conn.query_row(
        "SELECT AVG(MAX(1, (total_records + ?1 - 1) / ?1)) FROM companies
         WHERE total_records IS NOT NULL AND total_records <= 5000",
        [i64::from(page_size.max(1))],
        |r| r.get(0),
    )
}

/// Average years per company that has a year list (for estimates).
pub fn average_years_per_company(conn: &Connection) -> rusqlite::Result<Option<f64>> {
    conn.query_row("SELECT AVG(json_array_length(year_list)) FROM companies WHERE year_list IS NOT NULL", [], |r| {
        r.get(0)
    })
}

/// What the revisit schedule needs of one company (docs/design.md §4).
pub fn company_history(conn: &Connection, search_key: &str) -> rusqlite::Result<Option<CompanyHistory>> {
    let found = conn
        .prepare_cached(
            "SELECT company_id, state, deep_checked_at, total_records, input_row,
                    (SELECT MAX(checked_at) FROM company_checks ch WHERE ch.company_id = co.company_id),
                    (SELECT MIN(checked_at) FROM company_checks ch WHERE ch.company_id = co.company_id),
                    fetched_at, next_check_at, next_check_reason,
                    (SELECT SUM(total_records) FROM (SELECT total_records FROM company_years y
                         WHERE y.search_key = co.search_key ORDER BY y.year DESC LIMIT 2)),
                    next_check_deep
             FROM companies co WHERE search_key = ?1",
        )?
        .query_row([search_key], |r| {
            let state: String = r.get(1)?;
            Ok((
                r.get::<_, Option<i64>>(0)?,
                CompanyHistory {
                    search_key: search_key.to_string(),
                    state: CompanyState::parse(&state).unwrap_or(CompanyState::Pending),
                    periods: Vec::new(),
                    deep_checked_at: r.get(2)?,
                    total_records: r.get::<_, Option<i64>>(3)?.map(|v| v.max(0) as u64),
                    input_row: r.get(4)?,
                    last_check_at: r.get(5)?,
                    first_check_at: r.get(6)?,
                    fetched_at: r.get(7)?,
                    next_check_at: r.get(8)?,
                    next_check_reason: r.get(9)?,
                    latest_two_years_rows: r.get::<_, Option<i64>>(10)?.map(|v| v.max(0) as u64),
                    next_check_deep: r.get(11)?,
                },
            ))
        })
        .optional()?;
    let Some((id, mut history)) = found else { return Ok(None) };
    if let Some(id) = id {
        history.periods = conn
            .prepare_cached("SELECT period, first_seen_at, not_before FROM company_periods WHERE company_id = ?1")?
            .query_map([id], period_row)?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(Some(history))
}

fn period_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PeriodRow> {
    Ok(PeriodRow { period: r.get(0)?, first_seen_at: r.get(1)?, not_before: r.get(2)? })
}

/// Every period seen appearing between two checks at most `max_gap_days`
/// apart, first seen since `since`: the publication dates the database
/// has observed across companies.
pub fn observed_periods(conn: &Connection, since: &str, max_gap_days: i64) -> rusqlite::Result<Vec<(i64, PeriodRow)>> {
    conn.prepare(
        "SELECT company_id, period, first_seen_at, not_before FROM company_periods
         WHERE not_before IS NOT NULL AND first_seen_at >= ?1
           AND julianday(first_seen_at) - julianday(not_before) <= ?2",
    )?
    .query_map(params![since, max_gap_days], |r| {
        Ok((r.get(0)?, PeriodRow { period: r.get(1)?, first_seen_at: r.get(2)?, not_before: r.get(3)? }))
    })?
    .collect()
}

/// Every done or no_result company's history, one at a time (the forecast).
pub fn each_history(
    conn: &Connection,
    mut each: impl FnMut(CompanyHistory) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare("SELECT search_key FROM companies WHERE state IN ('done', 'no_result') ORDER BY company_id")?;
    let keys = stmt.query_map([], |r| r.get::<_, String>(0))?;
    for key in keys {
        if let Some(h) = company_history(conn, &key?)? {
            each(h)?;
        }
    }
    Ok(())
}

/// The schedule settings the last run that recorded them kept (JSON).
pub fn last_schedule_settings(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT json_extract(summary, '$.schedule_settings') FROM runs
         WHERE json_extract(summary, '$.schedule_settings') IS NOT NULL ORDER BY run_id DESC LIMIT 1",
        [],
        |r| r.get::<_, Option<String>>(0),
    )
    .optional()
    .map(Option::flatten)
}

/// The schema version (`PRAGMA user_version`: the migrations applied).
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}
