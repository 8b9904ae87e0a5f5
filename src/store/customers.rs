//! Where customer rows go: each unit of fetching (one year, or a company's
//! whole listing) owns a set of rows in `customers`, and a re-fetch of a unit
//! collects its pages in `customers_staging` and replaces exactly those rows
//! in one transaction. One API row is never stored twice.

use rusqlite::{params, Transaction};

use super::records::{report_year, Query};
use crate::qcc::ClientRow;

pub(super) const CUSTOMERS: &str = "customers";
pub(super) const STAGING: &str = "customers_staging";

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
pub(super) fn insert_rows<'r>(
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

pub(super) fn delete_unit(tx: &Transaction<'_>, table: &str, key: &str, query: &Query) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!("DELETE FROM {table} WHERE search_key = ?1 AND {}", unit_rows(table, query)))?
        .execute(params![key, query.year()])?;
    Ok(())
}

/// Whether `table` holds rows of this unit.
pub(super) fn has_rows(tx: &Transaction<'_>, table: &str, key: &str, query: &Query) -> rusqlite::Result<bool> {
    tx.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE search_key = ?1 AND {})",
        unit_rows(table, query)
    ))?
    .query_row(params![key, query.year()], |r| r.get(0))
}

/// A unit fetched straight into `customers` is complete at `page` (its last
/// page): drop what an earlier, longer fetch, or a page answered past the
/// unit's end, left past it (and, for the listing, anything not
/// from the listing: it replaces the whole company).
pub(super) fn drop_pages_after(tx: &Transaction<'_>, key: &str, query: &Query, page: u32) -> rusqlite::Result<()> {
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

/// A unit's pages `1..=last` are all in: its staged rows of those pages
/// replace its stored rows (anything staged past `last` — a page answered
/// before a lower page said the unit ends — is dropped with the rest).
pub(super) fn promote(tx: &Transaction<'_>, key: &str, query: &Query, last: u32) -> rusqlite::Result<()> {
    delete_unit(tx, CUSTOMERS, key, query)?;
    tx.prepare_cached(&format!(
        "INSERT INTO customers (search_key, year, query_year, from_listing, page_index, row_index, name, key_no,
                                image_url, sales_amount, sales_amount_text, sales_percent, sales_percent_text,
                                relationship, source, fetched_at)
         SELECT search_key, year, query_year, from_listing, page_index, row_index, name, key_no, image_url,
                sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
         FROM customers_staging WHERE search_key = ?1 AND {} AND page_index <= ?3",
        unit_rows(STAGING, query)
    ))?
    .execute(params![key, query.year(), last])?;
    delete_unit(tx, STAGING, key, query)
}
