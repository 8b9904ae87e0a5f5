//! Where customer rows go: each unit of fetching (one year, or a company's
//! whole listing) owns a set of rows in `customer_rows` (what the
//! `customers` view reads), and a re-fetch of a unit collects its pages in
//! `customer_rows_staging` and replaces exactly those rows in one
//! transaction. One API row is never stored twice.
//!
//! Rows are stored compactly under the company's integer id, with no
//! `year` when it is the query year; [`values`] and [`codebook`] say how
//! each value is.

mod codebook;
mod values;
pub(super) use values::plain_number;

use rusqlite::{params, Transaction};

use super::records::{report_year, Query};
use crate::qcc::ClientRow;
pub use codebook::Codebook;
use values::{key_bytes, stored_number, stored_time, NONE};

pub(super) const CUSTOMERS: &str = "customer_rows";
pub(super) const STAGING: &str = "customer_rows_staging";

/// A company's integer id, which its stored rows carry.
pub(super) fn company_id(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT company_id FROM companies WHERE search_key = ?1")?.query_row([key], |r| r.get(0))
}

/// The rows a unit of fetching owns, as a condition on `company_id = ?1`.
/// In `customer_rows` a year is every row of that report year and the
/// listing is every row of the company, whichever query brought them:
/// re-fetching either replaces exactly those. In the staging table each unit
/// owns only the rows it staged. `?2` is the year (NULL for the listing), so
/// every statement built on this binds the same two parameters.
fn unit_rows(table: &str, query: &Query) -> &'static str {
    match (table == CUSTOMERS, query) {
        (true, Query::Year(_)) => "query_year = ?2",
        (true, Query::Listing) => "?2 IS NULL",
        (false, Query::Year(_)) => "query_year = ?2 AND from_listing = 0",
        (false, Query::Listing) => "from_listing = 1 AND ?2 IS NULL",
    }
}

/// Store one page's rows under their identity (company, query, page,
/// position) in `customer_rows` or the staging table. A row of a year's
/// query belongs to that year; a listing row to the report year of its own
/// `Year`. `fetched_at` is when the page was stored.
#[allow(clippy::too_many_arguments)]
pub(super) fn insert_rows<'r>(
    tx: &Transaction<'_>,
    codes: &mut Codebook,
    table: &str,
    company: i64,
    query: &Query,
    page_index: u32,
    rows: impl Iterator<Item = (usize, &'r ClientRow)>,
    fetched_at: &str,
) -> rusqlite::Result<()> {
    // Callers clear what a page replaces; OR REPLACE only guards the identity.
    let mut insert = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {table} (company_id, year, query_year, from_listing, page_index, row_index, name,
                              key_no, image_url, sales_amount, sales_amount_text, sales_percent, sales_percent_text,
                              relationship, source, fetched_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?;
    // The page's constant columns are bound once; per row only what changes
    // (bindings survive between executions of a statement).
    insert.raw_bind_parameter(1, company)?;
    insert.raw_bind_parameter(4, i64::from(*query == Query::Listing))?;
    insert.raw_bind_parameter(5, page_index)?;
    insert.raw_bind_parameter(16, stored_time(tx, company, fetched_at)?)?;
    if let Query::Year(y) = query {
        insert.raw_bind_parameter(3, y)?;
    }
    let mut image = String::with_capacity(128);
    for (i, r) in rows {
        // `year` is stored only when it is not the query year.
        match query {
            Query::Year(y) => {
                let year = r.year.as_deref().unwrap_or(y);
                insert.raw_bind_parameter(2, (year != y).then_some(year))?;
            }
            Query::Listing => {
                let query_year = report_year(r.year.as_deref()).unwrap_or("");
                insert.raw_bind_parameter(3, query_year)?;
                match r.year.as_deref() {
                    None => insert.raw_bind_parameter(2, NONE)?,
                    Some(y) => insert.raw_bind_parameter(2, (y != query_year).then_some(y))?,
                }
            }
        }
        insert.raw_bind_parameter(6, i as i64)?;
        insert.raw_bind_parameter(7, codes.name(tx, &r.name)?)?;
        let key = r.key_no.as_deref().and_then(key_bytes);
        match (&key, r.key_no.as_deref()) {
            (Some(bytes), _) => insert.raw_bind_parameter(8, &bytes[..])?,
            (None, text) => insert.raw_bind_parameter(8, text)?,
        }
        insert.raw_bind_parameter(9, codes.image(tx, r, key.is_some(), &mut image, company)?)?;
        let (amount, text) = stored_number(r.sales_amount, &r.sales_amount_text);
        insert.raw_bind_parameter(10, amount)?;
        insert.raw_bind_parameter(11, text)?;
        let (percent, text) = stored_number(r.sales_percent, &r.sales_percent_text);
        insert.raw_bind_parameter(12, percent)?;
        insert.raw_bind_parameter(13, text)?;
        insert.raw_bind_parameter(14, codes.label(tx, &r.relationship)?)?;
        insert.raw_bind_parameter(15, codes.label(tx, &r.source)?)?;
        insert.raw_execute()?;
    }
    Ok(())
}

pub(super) fn delete_unit(tx: &Transaction<'_>, table: &str, company: i64, query: &Query) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!("DELETE FROM {table} WHERE company_id = ?1 AND {}", unit_rows(table, query)))?
        .execute(params![company, query.year()])?;
    Ok(())
}

/// Whether `table` holds rows of this unit.
pub(super) fn has_rows(tx: &Transaction<'_>, table: &str, company: i64, query: &Query) -> rusqlite::Result<bool> {
    tx.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE company_id = ?1 AND {})",
        unit_rows(table, query)
    ))?
    .query_row(params![company, query.year()], |r| r.get(0))
}

/// A unit fetched straight into `customer_rows` is complete at `page` (its
/// last page): drop what an earlier, longer fetch, or a page answered past
/// the unit's end, left past it (and, for the listing, anything not from the
/// listing: it replaces the whole company).
pub(super) fn drop_pages_after(tx: &Transaction<'_>, company: i64, query: &Query, page: u32) -> rusqlite::Result<()> {
    let sql = match query {
        Query::Year(_) => {
            "DELETE FROM customer_rows WHERE company_id = ?1 AND query_year = ?2 AND from_listing = 0 AND page_index > ?3"
        }
        Query::Listing => {
            "DELETE FROM customer_rows WHERE company_id = ?1 AND ?2 IS NULL AND (from_listing = 0 OR page_index > ?3)"
        }
    };
    tx.prepare_cached(sql)?.execute(params![company, query.year(), page])?;
    Ok(())
}

/// A unit's pages `1..=last` are all in: its staged rows of those pages
/// replace its stored rows (anything staged past `last` — a page answered
/// before a lower page said the unit ends — is dropped with the rest).
pub(super) fn promote(tx: &Transaction<'_>, company: i64, query: &Query, last: u32) -> rusqlite::Result<()> {
    delete_unit(tx, CUSTOMERS, company, query)?;
    tx.prepare_cached(&format!(
        "INSERT INTO customer_rows (company_id, year, query_year, from_listing, page_index, row_index, name, key_no,
                                    image_url, sales_amount, sales_amount_text, sales_percent, sales_percent_text,
                                    relationship, source, fetched_at)
         SELECT company_id, year, query_year, from_listing, page_index, row_index, name, key_no, image_url,
                sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
         FROM customer_rows_staging WHERE company_id = ?1 AND {} AND page_index <= ?3",
        unit_rows(STAGING, query)
    ))?
    .execute(params![company, query.year(), last])?;
    delete_unit(tx, STAGING, company, query)
}
