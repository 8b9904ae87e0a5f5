//! Where a unit's rows wait while it is re-fetched: each unit of fetching
//! (one year, or a company's whole listing) owns a set of current versions
//! (see [`super::history`]); a re-fetch of a unit of more than one page
//! collects its pages in `staged_rows`, as the answer gave them, and its
//! last page replaces the unit's rows in one transaction. One API row is
//! never stored twice.

mod codebook;
mod values;
pub(super) use values::plain_number;

use rusqlite::{params, Transaction};

use super::records::{report_year, Query};
use crate::qcc::ClientRow;
pub use codebook::Codebook;

/// A company's integer id, which its stored rows carry.
pub(super) fn company_id(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT company_id FROM companies WHERE search_key = ?1")?.query_row([key], |r| r.get(0))
}

/// The staged rows a unit owns, as a condition on `company_id = ?1`: `?2`
/// is the year (NULL for the listing), so every statement built on this
/// binds the same two parameters.
fn unit_rows(query: &Query) -> &'static str {
    match query {
        Query::Year(_) => "from_listing = 0 AND query_year = ?2",
        Query::Listing => "from_listing = 1 AND ?2 IS NULL",
    }
}

/// Stage one page's rows of a re-fetched unit. A listing row is kept under
/// the report year of its own `Year`.
pub(super) fn stage(
    tx: &Transaction<'_>,
    company: i64,
    query: &Query,
    page_index: u32,
    rows: &[ClientRow],
    fetched_at: &str,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO staged_rows (company_id, query_year, from_listing, page_index, row_index, year, name,
                                             key_no, image_url, sales_amount, sales_amount_text, sales_percent,
                                             sales_percent_text, relationship, source, fetched_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    for (i, r) in rows.iter().enumerate() {
        let query_year = match query {
            Query::Year(y) => y.as_str(),
            Query::Listing => report_year(r.year.as_deref()).unwrap_or(""),
        };
        insert.execute(params![
            company,
            query_year,
            i64::from(*query == Query::Listing),
            page_index,
            i as i64,
            r.year,
            r.name,
            r.key_no,
            r.image_url,
            r.sales_amount,
            r.sales_amount_text,
            r.sales_percent,
            r.sales_percent_text,
            r.relationship,
            r.source,
            fetched_at
        ])?;
    }
    Ok(())
}

pub(super) fn drop_staged(tx: &Transaction<'_>, company: i64, query: &Query) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!("DELETE FROM staged_rows WHERE company_id = ?1 AND {}", unit_rows(query)))?
        .execute(params![company, query.year()])?;
    Ok(())
}

/// Whether the unit has staged rows.
pub(super) fn has_staged(tx: &Transaction<'_>, company: i64, query: &Query) -> rusqlite::Result<bool> {
    tx.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM staged_rows WHERE company_id = ?1 AND {})",
        unit_rows(query)
    ))?
    .query_row(params![company, query.year()], |r| r.get(0))
}

/// A unit's staged pages: the index, when it was stored, its rows.
pub(super) type StagedPages = Vec<(u32, String, Vec<ClientRow>)>;

/// A unit's pages `1..=last` are all in: its staged pages of those, in
/// order. Whatever it staged goes (a page answered before a lower page said
/// the unit ends with the rest).
pub(super) fn take_staged(
    tx: &Transaction<'_>,
    company: i64,
    query: &Query,
    last: u32,
) -> rusqlite::Result<StagedPages> {
    let mut pages: StagedPages = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT page_index, fetched_at, year, name, key_no, image_url, sales_amount, sales_amount_text,
                    sales_percent, sales_percent_text, relationship, source
             FROM staged_rows WHERE company_id = ?1 AND {} AND page_index <= ?3
             ORDER BY page_index, row_index",
            unit_rows(query)
        ))?;
        let mut q = stmt.query(params![company, query.year(), last])?;
        while let Some(r) = q.next()? {
            // Rows come in page order: a new page starts its own entry.
            let page: u32 = r.get(0)?;
            if pages.last().is_none_or(|(p, _, _)| *p != page) {
                pages.push((page, r.get(1)?, Vec::new()));
            }
            let Some((_, _, rows)) = pages.last_mut() else { continue };
            rows.push(ClientRow {
                year: r.get(2)?,
                name: r.get(3)?,
                key_no: r.get(4)?,
                image_url: r.get(5)?,
                sales_amount: r.get(6)?,
                sales_amount_text: r.get(7)?,
                sales_percent: r.get(8)?,
                sales_percent_text: r.get(9)?,
                relationship: r.get(10)?,
                source: r.get(11)?,
            });
        }
    }
    drop_staged(tx, company, query)?;
    Ok(pages)
}
