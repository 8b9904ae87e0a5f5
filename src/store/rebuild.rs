//! `rebuild`: re-derive the customer rows from the receipts in `raw_pages`,
//! without any call.

use rusqlite::{params, OptionalExtension, Transaction};

use super::customers::{company_id, Codebook};
use super::history::{self, rows_of_pages, When};
use super::records::{Query, YearState};
use crate::qcc::ClientRow;

/// What `rebuild` did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Rebuilt {
    pub years: u64,
    pub rows: u64,
    /// Years mid-fetch (partial): their stored rows were left as they are.
    pub partial_years_kept: u64,
    /// Years with a missing or unreadable receipt (e.g. `--no-archive`): kept.
    pub years_without_receipts: u64,
    /// What the rebuilt rows changed in the readers' model (nothing, when
    /// they are the rows the file held).
    pub changes: super::history::Changes,
}

/// Re-derive `customers` from `raw_pages` in one transaction, parsed exactly
/// as a run parses them: every complete or truncated year paged per year gets
/// the rows of its newest receipts for pages `1..=pages_fetched`; every
/// company whose listing is complete gets, for the years that came from it,
/// the rows of that listing's receipts (the newest of each page stored no
/// later than the listing was completed, so a later discovery call does not
/// mix into it).
/// The readers' model is brought in step with the rows at `now`.
/// `parse` reads a receipt's body as received; receipts of every kind
/// (zlib, zstd, against any of the file's dictionaries) are read here.
pub fn rebuild(
    tx: &Transaction<'_>,
    now: &str,
    parse: impl Fn(&[u8]) -> Option<Vec<ClientRow>>,
) -> rusqlite::Result<Rebuilt> {
    let mut reader = super::dictionaries::reader(tx)?;
    let mut codes = Codebook::load(tx)?;
    let mut out = Rebuilt::default();
    // The versions follow the rows: a row the receipts read differently is a change, made now.
    let when = When { now, run_id: None, backfill: false };
    let years: Vec<(String, String, String, i64)> = tx
        .prepare(
            "SELECT search_key, year, state, pages_fetched FROM company_years WHERE source = 'year'
             ORDER BY search_key, year",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut page_stmt = tx.prepare(
        "SELECT body, dict_id, fetched_at FROM raw_pages
         WHERE search_key = ?1 AND query_year = ?2 AND page_index = ?3 AND fetched_at <= ?4
         ORDER BY raw_id DESC LIMIT 1",
    )?;
    // The receipts of pages 1..=pages, or None when one is missing or unreadable.
    let mut receipts = |key: &str, query_year: &str, pages: i64, until: &str| -> rusqlite::Result<_> {
        let mut out = Vec::with_capacity(pages.max(0) as usize);
        for page in 1..=pages.max(0) {
            let found: Option<(Vec<u8>, Option<i64>, String)> = page_stmt
                .query_row(params![key, query_year, page, until], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let body = found.and_then(|(stored, dict_id, at)| reader.read(&stored, dict_id).map(|body| (body, at)));
            match body.and_then(|(body, at)| parse(&body).map(|rows| (rows, at))) {
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
        let company = company_id(tx, &key)?;
        let pages = pages_rows.iter().enumerate().map(|(i, (rows, at))| (i as u32 + 1, rows.as_slice(), at.as_str()));
        let rows = rows_of_pages(&query, pages);
        out.rows += rows.values().map(|r| r.len() as u64).sum::<u64>();
        out.changes.add(history::replace(tx, &mut codes, company, rows, false, &when)?);
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
        let company = company_id(tx, &key)?;
        let pages = pages_rows.iter().enumerate().map(|(i, (rows, at))| (i as u32 + 1, rows.as_slice(), at.as_str()));
        let mut rows = rows_of_pages(&Query::Listing, pages);
        rows.retain(|year, _| years.contains(year));
        for year in &years {
            rows.entry(year.clone()).or_default();
        }
        out.rows += rows.values().map(|r| r.len() as u64).sum::<u64>();
        out.changes.add(history::replace(tx, &mut codes, company, rows, false, &when)?);
        out.years += years.len() as u64;
    }
    Ok(out)
}
