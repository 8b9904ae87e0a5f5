//! Queries that only read: run summaries and reports.

use rusqlite::{params, Connection};

/// `(label, count)` pairs, in a stable order.
pub type Counts = Vec<(String, u64)>;

fn counts(conn: &Connection, sql: &str, run_id: i64) -> rusqlite::Result<Counts> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params![run_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
    rows.collect()
}

/// Companies of this run's input, by state.
pub fn companies_by_state(conn: &Connection, run_id: i64) -> rusqlite::Result<Counts> {
    counts(conn, "SELECT state, COUNT(*) FROM companies WHERE last_run_id = ?1 GROUP BY state ORDER BY state", run_id)
}

/// This run's calls by outcome: the vendor code, `HTTP nnn`, or `no answer`.
pub fn calls_by_status(conn: &Connection, run_id: i64) -> rusqlite::Result<Counts> {
    counts(
        conn,
        "SELECT COALESCE(status, CASE WHEN http_status IS NOT NULL THEN 'HTTP ' || http_status ELSE 'no answer' END) AS s,
                COUNT(*)
         FROM api_calls WHERE run_id = ?1 GROUP BY s ORDER BY s",
        run_id,
    )
}

/// Rows in `customers` for companies of this run's input.
pub fn customer_rows_total(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM customers", [], |r| r.get::<_, i64>(0)).map(|n| n.max(0) as u64)
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
