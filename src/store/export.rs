//! What `export` and the demo read out: customer rows with their company's
//! input columns, the company sheet (streamed row by row), and the demo's
//! example query.

use rusqlite::Connection;

/// Names of the input columns kept in `companies.input_row`, in the order
/// they first appear.
pub fn input_columns(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT j.key FROM companies c, json_each(c.input_row) j
         WHERE json_valid(c.input_row)
         GROUP BY j.key ORDER BY MIN(c.rowid), MIN(j.id)",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Which customers to export: which years, and as the file knew them now
/// or at an earlier moment.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    pub years: Years,
    /// What the file knew at this time (ISO 8601 UTC, as it stores times):
    /// the versions valid then, from `customers_history`.
    pub as_of: Option<String>,
}

/// Which report years to export.
#[derive(Debug, Clone, Default)]
pub enum Years {
    #[default]
    All,
    Year(String),
    /// Each company's latest year.
    Latest,
}

/// Columns of an export row, before the input's own columns.
pub const EXPORT_COLUMNS: &[&str] = &[
    "search_key",
    "year",
    "query_year",
    "customer_name",
    "customer_key_no",
    "sales_amount_wan_yuan",
    "sales_amount_text",
    "sales_percent",
    "sales_percent_text",
    "relationship",
    "source",
    "page_index",
    "row_index",
    "fetched_at",
];

/// Stream customers joined with their company's input row to `each`: the
/// values of [`EXPORT_COLUMNS`] as SQLite typed them, then the input row JSON.
pub fn export_values(
    conn: &Connection,
    filter: &ExportFilter,
    mut each: impl FnMut(&[rusqlite::types::Value], Option<&str>) -> std::io::Result<()>,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    // The current rows, or the versions valid at the moment asked for.
    let source = match filter.as_of {
        None => "customers",
        Some(_) => "(SELECT * FROM customers_history WHERE valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?2))",
    };
    let condition = match filter.years {
        Years::All => "WHERE ?1 IS NULL",
        Years::Year(_) => "WHERE c.query_year = ?1",
        Years::Latest if filter.as_of.is_some() => {
            "WHERE ?1 IS NULL AND c.query_year = (SELECT MAX(d.query_year) FROM disclosure d
                 WHERE d.company_id = co.company_id AND d.valid_from <= ?2 AND (d.valid_to IS NULL OR d.valid_to > ?2))"
        }
        Years::Latest => {
            "WHERE ?1 IS NULL
               AND c.query_year = (SELECT MAX(m.query_year) FROM disclosure m
                                  WHERE m.company_id = co.company_id AND m.valid_to IS NULL)"
        }
    };
    let sql = format!(
        "SELECT c.search_key, c.year, c.query_year, c.name, c.key_no, c.sales_amount, c.sales_amount_text,
                c.sales_percent, c.sales_percent_text, c.relationship, c.source, c.page_index, c.row_index,
                c.fetched_at, co.input_row
         FROM {source} c JOIN companies co ON co.search_key = c.search_key {condition}
         ORDER BY c.search_key, c.query_year DESC, c.page_index, c.row_index"
    );
    let mut stmt = conn.prepare(&sql)?;
    let year = match &filter.years {
        Years::Year(y) => Some(y.as_str()),
        _ => None,
    };
    let mut rows = match &filter.as_of {
        Some(t) => stmt.query(rusqlite::params![year, t])?,
        None => stmt.query(rusqlite::params![year])?,
    };
    let mut n = 0;
    let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(EXPORT_COLUMNS.len());
    while let Some(r) = rows.next()? {
        values.clear();
        for i in 0..EXPORT_COLUMNS.len() {
            values.push(r.get(i)?);
        }
        let input: Option<String> = r.get(EXPORT_COLUMNS.len())?;
        each(&values, input.as_deref())?;
        n += 1;
    }
    Ok(n)
}

/// Which changes `export --changes-since` writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Since {
    /// The changes of the runs after this one.
    Run(i64),
    /// The changes the file learned at or after this time (ISO 8601 UTC).
    Time(String),
}

/// Columns of a change row, before the input's own columns.
pub const CHANGE_COLUMNS: &[&str] = &[
    "search_key",
    "period",
    "change",
    "customer_name",
    "customer_key_no",
    "anonymised",
    "old_sales_amount_wan_yuan",
    "new_sales_amount_wan_yuan",
    "old_sales_percent",
    "new_sales_percent",
    "seen_at",
    "run_id",
];

/// Stream the changes since `since` (from `customer_changes`, oldest first)
/// with their company's input row to `each`: the values of [`CHANGE_COLUMNS`].
pub fn change_values(
    conn: &Connection,
    since: &Since,
    mut each: impl FnMut(&[rusqlite::types::Value], Option<&str>) -> std::io::Result<()>,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let condition = match since {
        Since::Run(_) => "ch.run_id > ?1",
        Since::Time(_) => "ch.seen_at >= ?1",
    };
    let sql = format!(
        "SELECT ch.search_key, ch.period, ch.change, ch.name, ch.key_no, ch.anonymised, ch.old_sales_amount,
                ch.new_sales_amount, ch.old_sales_percent, ch.new_sales_percent, ch.seen_at, ch.run_id, co.input_row
         FROM customer_changes ch JOIN companies co ON co.search_key = ch.search_key
         WHERE {condition}
         ORDER BY ch.seen_at, ch.search_key, ch.period, ch.change"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = match since {
        Since::Run(id) => stmt.query([id])?,
        Since::Time(t) => stmt.query([t])?,
    };
    let mut n = 0;
    let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(CHANGE_COLUMNS.len());
    while let Some(r) = rows.next()? {
        values.clear();
        for i in 0..CHANGE_COLUMNS.len() {
            values.push(r.get(i)?);
        }
        let input: Option<String> = r.get(CHANGE_COLUMNS.len())?;
        each(&values, input.as_deref())?;
        n += 1;
    }
    Ok(n)
}

/// A value as export text (NULL and blobs: empty).
pub fn value_text(v: &rusqlite::types::Value) -> String {
    match v {
        rusqlite::types::Value::Null | rusqlite::types::Value::Blob(_) => String::new(),
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Real(f) => f.to_string(),
        rusqlite::types::Value::Text(t) => t.clone(),
    }
}

/// The export's header: [`EXPORT_COLUMNS`], then the input's own columns
/// (one whose name collides with ours gets " (input)").
pub fn export_header(input_columns: &[String]) -> Vec<String> {
    header_of(EXPORT_COLUMNS, input_columns)
}

/// `ours`, then the input's own columns (one whose name collides with ours gets " (input)").
pub fn header_of(ours: &[&str], input_columns: &[String]) -> Vec<String> {
    ours.iter()
        .map(|c| c.to_string())
        .chain(input_columns.iter().map(
            |c| {
                if ours.contains(&c.as_str()) {
                    format!("{c} (input)")
                } else {
                    c.clone()
                }
            },
        ))
        .collect()
}

/// The input row's values for `columns` (its JSON as stored; missing: None).
pub fn input_values(input: Option<&str>, columns: &[String]) -> Vec<Option<String>> {
    let row: serde_json::Map<String, serde_json::Value> =
        input.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
    columns
        .iter()
        .map(|col| match row.get(col) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        })
        .collect()
}

/// Columns of the export's companies sheet.
pub const COMPANY_SHEET_COLUMNS: &[&str] = &[
    "search_key",
    "state",
    "status_code",
    "years_covered",
    "first_year",
    "last_year",
    "customer_rows",
    "top_customer_latest_year",
    "top_customer_percent",
    "fetched_at",
    "retry_after",
    "message",
];

/// Every company in input order, as [`COMPANY_SHEET_COLUMNS`]: what
/// `company_summary` knows, with `retry_after` and, for a company that is
/// not `done`, its message.
pub fn company_rows(
    conn: &Connection,
    mut each: impl FnMut(&[rusqlite::types::Value]) -> std::io::Result<()>,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut stmt = conn.prepare(
        "SELECT s.search_key, s.state, s.status_code, s.years_covered, s.first_year, s.last_year, s.customer_rows,
                s.top_customer_latest_year, s.top_customer_percent, s.fetched_at, co.retry_after,
                CASE WHEN co.state <> 'done' THEN co.message END
         FROM company_summary s JOIN companies co ON co.search_key = s.search_key
         ORDER BY co.company_id",
    )?;
    let mut rows = stmt.query([])?;
    let mut values = Vec::with_capacity(COMPANY_SHEET_COLUMNS.len());
    let mut n = 0;
    while let Some(r) = rows.next()? {
        values.clear();
        for i in 0..COMPANY_SHEET_COLUMNS.len() {
            values.push(r.get(i)?);
        }
        each(&values)?;
        n += 1;
    }
    Ok(n)
}

/// The demo's example query, printed so it can be copied: the five
/// companies with the most customer rows, and each one's largest customer in
/// its latest year.
pub const EXAMPLE_SQL: &str =
    "SELECT search_key, last_year, customer_rows, top_customer_latest_year, top_customer_percent
FROM company_summary
WHERE state = 'done'
ORDER BY customer_rows DESC
LIMIT 5;";

/// One row of [`EXAMPLE_SQL`].
pub struct ExampleRow {
    pub company: String,
    pub latest_year: Option<String>,
    pub rows: i64,
    pub top_customer: Option<String>,
    pub top_percent: Option<f64>,
}

/// The rows of [`EXAMPLE_SQL`].
pub fn example_companies(conn: &Connection) -> rusqlite::Result<Vec<ExampleRow>> {
    let mut stmt = conn.prepare(EXAMPLE_SQL)?;
    let rows = stmt.query_map([], |r| {
        Ok(ExampleRow {
            company: r.get(0)?,
            latest_year: r.get(1)?,
            rows: r.get(2)?,
            top_customer: r.get(3)?,
            top_percent: r.get(4)?,
        })
    })?;
    rows.collect()
}
