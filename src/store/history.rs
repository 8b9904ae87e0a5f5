//! The readers' model (migrations 0012 and 0013): one row per distinct
//! customer, and one version per company × period × customer, every change
//! kept; the current versions are the rows `customers` reads.
//!
//! [`replace`]: when a unit of fetching (a year, or a company's listing) is
//! complete, the rows it now has are compared with the unit's current
//! versions. A value that differs closes the old version and opens its
//! successor; a row with no current version opens one (`new_period` when the
//! company had no current version of that period, else `added`); a current
//! version with no row is closed as `removed`. A row that only moved
//! (another page or position, a later `fetched_at`) keeps its version.
//! [`append`] and [`close_after`]: a unit fetched for the first time opens
//! each page's versions as it comes, and its last page closes what lies
//! past it.

pub mod names;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::{params, OptionalExtension, Transaction};

use super::customers::{plain_number, Codebook};
use super::records::{report_year, Query};
use crate::qcc::ClientRow;

/// The ids of the names and customers the file holds, as far as the
/// writer has met them: looked up once, then from memory. Kept by the writer
/// for its life (a failed transaction ends the writer, and the cache with
/// it); emptied when it grows past [`Identities::MAX`] entries.
#[derive(Debug, Default)]
pub struct Identities {
    names: HashMap<String, i64>,
    keys: HashMap<String, i64>,
    norms: HashMap<String, i64>,
}

impl Identities {
    /// Entries kept in each map (about 100 bytes each): a few megabytes.
    /// A company's years repeat its customers, so recent ones are what is
    /// met again; a miss is an index search. 131,072 (up to about 36 MB for
    /// three full maps, estimated) took no less time on 30,000 annual
    /// companies; the run's peak was 88–94 MiB with it, 85–88 MiB without.
    const MAX: usize = 1 << 15;

    fn remember(map: &mut HashMap<String, i64>, text: &str, id: i64) {
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(text.to_string(), id);
    }
}

/// A kind of change, as `disclosure.opened_as` and `closed_as` keep it
/// (the views spell it; migration 0012 says which is which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    NewPeriod = 1,
    Added = 2,
    Changed = 3,
    Removed = 4,
}

/// Changes recorded, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    pub new_period: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
}

impl Changes {
    pub fn total(&self) -> u64 {
        self.new_period + self.added + self.changed + self.removed
    }

    pub fn add(&mut self, other: Changes) {
        self.new_period += other.new_period;
        self.added += other.added;
        self.changed += other.changed;
        self.removed += other.removed;
    }
}

/// When the versions a sync opens and closes were learned.
pub(super) struct When<'a> {
    pub now: &'a str,
    pub run_id: Option<i64>,
    /// Filling a file's history from the rows it holds: each version is
    /// valid from its row's `fetched_at`.
    pub backfill: bool,
}

/// What a version says, compared to tell a change.
#[derive(Debug, Clone, PartialEq)]
struct Values {
    name_id: Option<i64>,
    image_url: Option<String>,
    year: Option<String>,
    sales_amount: Option<f64>,
    sales_amount_text: Option<String>,
    sales_percent: Option<f64>,
    sales_percent_text: Option<String>,
    relationship: Option<String>,
    source: Option<String>,
}

/// Where a row sits, and when a page last brought it: not part of what it says.
#[derive(Debug, Clone, PartialEq)]
struct Place {
    from_listing: i64,
    page_index: i64,
    row_index: i64,
    fetched_at: String,
}

/// A version's identity within its company: the period, the customer (or
/// none, for an anonymised row) and its slot.
type Key = (String, Option<i64>, i64);

/// A unit's rows by report year (`query_year`), in page and row order.
pub(super) type Years = BTreeMap<String, Vec<Row>>;

/// Whether the unit has current versions (a fetch of it replaces them).
pub(super) fn has_versions(tx: &Transaction<'_>, company: i64, query: &Query) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM disclosure
                        WHERE company_id = ?1 AND (?2 IS NULL OR query_year = ?2) AND valid_to IS NULL)",
    )?
    .query_row(params![company, query.year()], |r| r.get(0))
}

/// A complete unit's rows replace its current versions: each year in
/// `years` (and with `whole_company`, every other year of the company, as
/// empty) is brought in step with its rows.
pub(super) fn replace(
    tx: &Transaction<'_>,
    codes: &mut Codebook,
    company: i64,
    mut years: Years,
    whole_company: bool,
    when: &When<'_>,
) -> rusqlite::Result<Changes> {
    if whole_company {
        let current: Vec<String> = tx
            .prepare_cached("SELECT DISTINCT query_year FROM disclosure WHERE company_id = ?1 AND valid_to IS NULL")?
            .query_map([company], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for year in current {
            years.entry(year).or_default();
        }
    }
    let mut changes = Changes::default();
    for (year, rows) in years {
        changes.add(sync_year(tx, codes, company, &year, rows, when, Sync::Replace)?);
    }
    Ok(changes)
}

/// A page of a unit fetched for the first time: its rows open versions
/// beside the ones its earlier pages opened (the checkpoint says `partial`
/// until the unit is done; [`close_after`] ends it).
pub(super) fn append(
    tx: &Transaction<'_>,
    codes: &mut Codebook,
    company: i64,
    years: Years,
    when: &When<'_>,
) -> rusqlite::Result<Changes> {
    // A period is new unless a version of it was current before this check.
    let check_start: Option<String> = tx
        .prepare_cached("SELECT discovered_at FROM companies WHERE company_id = ?1")?
        .query_row([company], |r| r.get(0))?;
    let mut changes = Changes::default();
    for (year, rows) in years {
        if !rows.is_empty() {
            let sync = Sync::Append { check_start: check_start.as_deref() };
            changes.add(sync_year(tx, codes, company, &year, rows, when, sync)?);
        }
    }
    Ok(changes)
}

/// A unit fetched for the first time ends at `page`: what an earlier,
/// longer fetch or a page answered past the unit's end left past it is
/// closed (for the listing, anything not from the listing too: it is the
/// whole company), and the slots follow the rows' order again (pages may
/// have come in any order).
pub(super) fn close_after(
    tx: &Transaction<'_>,
    company: i64,
    query: &Query,
    page: u32,
    when: &When<'_>,
) -> rusqlite::Result<Changes> {
    let ids: Vec<i64> = tx
        .prepare_cached(
            "SELECT version_id FROM disclosure
             WHERE company_id = ?1 AND valid_to IS NULL AND CASE WHEN ?2 IS NULL
                   THEN from_listing = 0 OR page_index > ?3
                   ELSE query_year = ?2 AND from_listing = 0 AND page_index > ?3 END",
        )?
        .query_map(params![company, query.year(), page], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut changes = Changes::default();
    for id in ids {
        close(tx, id, Change::Removed, when.now, when.run_id)?;
        changes.removed += 1;
    }
    // Slots in the order of the rows (as a re-fetch of the unit will count them).
    let versions: Vec<(i64, String, Option<i64>, i64)> = tx
        .prepare_cached(
            "SELECT version_id, period, customer_id, slot FROM disclosure
             WHERE company_id = ?1 AND (?2 IS NULL OR query_year = ?2) AND valid_to IS NULL
             ORDER BY query_year, from_listing, page_index, row_index",
        )?
        .query_map(params![company, query.year()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut next: HashMap<(String, Option<i64>), i64> = HashMap::new();
    for (id, period, customer, slot) in versions {
        let n = next.entry((period, customer)).or_insert(0);
        if *n != slot {
            tx.prepare_cached("UPDATE disclosure SET slot = ?2 WHERE version_id = ?1")?.execute(params![id, *n])?;
        }
        *n += 1;
    }
    Ok(changes)
}

/// How a year's rows meet what is stored of it.
#[derive(Clone, Copy)]
enum Sync<'a> {
    /// The rows are the year, complete: every current version is compared
    /// with them, and one they lack is closed.
    Replace,
    /// The rows are a page of a first fetch, after the pages stored before
    /// it in this check (`check_start`: the check's discovery): they open
    /// versions beside those, and nothing is closed.
    Append { check_start: Option<&'a str> },
}

/// What is stored of a year, as a sync needs it.
#[derive(Default)]
struct Stored {
    /// The current versions, by key (replacing only).
    open: HashMap<Key, (i64, Values, Place)>,
    /// Each period's oldest current version: when the file first had it.
    first_opened: HashMap<String, String>,
    /// The next free slot of each (period, customer).
    slots: HashMap<(String, Option<i64>), i64>,
}

impl Stored {
    fn saw(&mut self, period: &str, valid_from: String) {
        let first = self.first_opened.entry(period.to_string()).or_insert_with(|| valid_from.clone());
        if valid_from < *first {
            *first = valid_from;
        }
    }

    /// Appending: only the slots the stored rows take and when each period
    /// was first had (what they say is not compared, so it is not read).
    fn slots_of(tx: &Transaction<'_>, company: i64, query_year: &str) -> rusqlite::Result<Stored> {
        let mut stored = Stored::default();
        let mut stmt = tx.prepare_cached(
            "SELECT period, customer_id, slot, valid_from FROM disclosure
             WHERE company_id = ?1 AND query_year = ?2 AND valid_to IS NULL",
        )?;
        let mut q = stmt.query(params![company, query_year])?;
        while let Some(r) = q.next()? {
            let (period, customer, slot): (String, Option<i64>, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            stored.saw(&period, r.get(3)?);
            let next = stored.slots.entry((period, customer)).or_insert(0);
            *next = (*next).max(slot + 1);
        }
        Ok(stored)
    }

    /// Replacing: every current version, with what it says.
    fn versions_of(tx: &Transaction<'_>, company: i64, query_year: &str) -> rusqlite::Result<Stored> {
        let mut stored = Stored::default();
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT d.version_id, d.period, d.customer_id, d.slot, d.name_id, {IMAGE_URL}, {YEAR}, d.sales_amount,
                        d.sales_amount_text, d.sales_percent, d.sales_percent_text, d.relationship, d.source,
                        d.from_listing, d.page_index, d.row_index, COALESCE(d.fetched_at, d.valid_from), d.valid_from
                 FROM disclosure d LEFT JOIN customer c ON c.customer_id = d.customer_id
                 WHERE d.company_id = ?1 AND d.query_year = ?2 AND d.valid_to IS NULL"
        ))?;
        let mut q = stmt.query(params![company, query_year])?;
        while let Some(r) = q.next()? {
            let key: Key = (r.get(1)?, r.get(2)?, r.get(3)?);
            let values = Values {
                name_id: r.get(4)?,
                image_url: r.get(5)?,
                year: r.get(6)?,
                sales_amount: r.get(7)?,
                sales_amount_text: r.get(8)?,
                sales_percent: r.get(9)?,
                sales_percent_text: r.get(10)?,
                relationship: r.get(11)?,
                source: r.get(12)?,
            };
            let place = Place {
                from_listing: r.get(13)?,
                page_index: r.get(14)?,
                row_index: r.get(15)?,
                fetched_at: r.get(16)?,
            };
            stored.saw(&key.0, r.get(17)?);
            stored.open.insert(key, (r.get(0)?, values, place));
        }
        Ok(stored)
    }

    /// The periods the company had before this sync (appending: before this
    /// check); a version of any other period is a `new_period`.
    fn known_periods(&self, sync: Sync<'_>) -> BTreeSet<String> {
        self.first_opened
            .iter()
            .filter(|(_, first)| match sync {
                Sync::Append { check_start: Some(start) } => first.as_str() < start,
                _ => true,
            })
            .map(|(period, _)| period.clone())
            .collect()
    }
}

/// Bring a year's current versions in step with its rows (see [`Sync`]).
fn sync_year(
    tx: &Transaction<'_>,
    codes: &mut Codebook,
    company: i64,
    query_year: &str,
    rows: Vec<Row>,
    when: &When<'_>,
    sync: Sync<'_>,
) -> rusqlite::Result<Changes> {
    let stored = match sync {
        Sync::Append { .. } => Stored::slots_of(tx, company, query_year)?,
        Sync::Replace => Stored::versions_of(tx, company, query_year)?,
    };
    let known = stored.known_periods(sync);
    let Stored { mut open, mut slots, .. } = stored;
    let mut changes = Changes::default();
    for row in rows {
        let at = if when.backfill { row.place.fetched_at.as_str() } else { when.now };
        let (customer, anonymised, name_id) = identify(tx, codes.identities(), &row, at)?;
        let period = row.values.year.clone().filter(|y| !y.is_empty()).unwrap_or_else(|| query_year.to_string());
        let slot = slots.entry((period.clone(), customer)).or_insert(0);
        let key: Key = (period.clone(), customer, *slot);
        *slot += 1;
        let values = Values { name_id, ..row.values.clone() };
        match open.remove(&key) {
            Some((id, old, place)) if old == values => {
                if place != row.place {
                    moved(tx, id, &row.place)?;
                }
            }
            Some((id, _, _)) => {
                close(tx, id, Change::Changed, at, when.run_id)?;
                let v = Version { company, query_year, key: &key, anonymised, values: &values, place: &row.place };
                open_version(tx, codes, &v, row.key_no.as_deref(), Change::Changed, Some(id), at, when.run_id)?;
                changes.changed += 1;
            }
            None => {
                let is_new = !known.contains(&period);
                let kind = if is_new { Change::NewPeriod } else { Change::Added };
                let v = Version { company, query_year, key: &key, anonymised, values: &values, place: &row.place };
                open_version(tx, codes, &v, row.key_no.as_deref(), kind, None, at, when.run_id)?;
                if is_new {
                    changes.new_period += 1;
                } else {
                    changes.added += 1;
                }
            }
        }
    }
    for (id, _, _) in open.into_values() {
        close(tx, id, Change::Removed, when.now, when.run_id)?;
        changes.removed += 1;
    }
    Ok(changes)
}

/// An unchanged version that a later fetch brought from another place
/// (page, row, query) or time: the version stays, its place follows.
fn moved(tx: &Transaction<'_>, id: i64, place: &Place) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE disclosure SET from_listing = ?2, page_index = ?3, row_index = ?4, fetched_at = NULLIF(?5, valid_from)
         WHERE version_id = ?1",
    )?
    .execute(params![id, place.from_listing, place.page_index, place.row_index, place.fetched_at])?;
    Ok(())
}

/// A stored row as the `customers` view reads it.
#[derive(Debug, PartialEq)]
pub(super) struct Row {
    name: Option<String>,
    /// The KeyNo as given: the customer's identity.
    key_no: Option<String>,
    values: Values,
    place: Place,
}

/// A unit's pages (index, rows, when stored) by report year, as the
/// `customers` view will read them back. A year asked for is in the map
/// even when it answered no row: it replaces what the year had.
pub(super) fn rows_of_pages<'r>(
    query: &Query,
    pages: impl IntoIterator<Item = (u32, &'r [ClientRow], &'r str)>,
) -> Years {
    let mut out = Years::new();
    if let Query::Year(y) = query {
        out.insert(y.clone(), Vec::new());
    }
    for (page, rows, fetched_at) in pages {
        for (i, r) in rows.iter().enumerate() {
            let (query_year, year, from_listing) = match query {
                Query::Year(y) => (y.clone(), Some(r.year.clone().unwrap_or_else(|| y.clone())), 0),
                Query::Listing => (report_year(r.year.as_deref()).unwrap_or("").to_string(), r.year.clone(), 1),
            };
            let text = |value: Option<f64>, text: &Option<String>| {
                if plain_number(value, text.as_deref()) {
                    None
                } else {
                    text.clone()
                }
            };
            out.entry(query_year).or_default().push(Row {
                name: r.name.clone(),
                key_no: r.key_no.clone(),
                values: Values {
                    name_id: None,
                    image_url: r.image_url.clone(),
                    year,
                    sales_amount: r.sales_amount,
                    sales_amount_text: text(r.sales_amount, &r.sales_amount_text),
                    sales_percent: r.sales_percent,
                    sales_percent_text: text(r.sales_percent, &r.sales_percent_text),
                    relationship: r.relationship.clone(),
                    source: r.source.clone(),
                },
                place: Place {
                    from_listing,
                    page_index: i64::from(page),
                    row_index: i as i64,
                    fetched_at: fetched_at.to_string(),
                },
            });
        }
    }
    out
}

/// Undo a unit's history from `from` on: the versions opened since are
/// deleted, and the ones closed since are current again (a replay of the
/// unit's receipts from `from` on makes its history again). Closed versions
/// are in no index by company: a caller undoing many units first makes one
/// (`rebuild` does, for its transaction), or each call scans the table.
pub(super) fn roll_back(tx: &Transaction<'_>, company: i64, query_year: &str, from: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM disclosure WHERE company_id = ?1 AND query_year = ?2 AND valid_from >= ?3")?
        .execute(params![company, query_year, from])?;
    tx.prepare_cached(
        "UPDATE disclosure SET valid_to = NULL, closed_run = NULL, closed_as = NULL
         WHERE company_id = ?1 AND query_year = ?2 AND valid_to >= ?3",
    )?
    .execute(params![company, query_year, from])?;
    Ok(())
}

/// The rows `customers` reads for a company's year (before version 13, from `customer_rows`).
pub(super) fn current_rows(tx: &Transaction<'_>, search_key: &str, query_year: &str) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = tx.prepare_cached(
        "SELECT year, from_listing, page_index, row_index, name, key_no, image_url,
                sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
         FROM customers WHERE search_key = ?1 AND query_year = ?2
         ORDER BY from_listing, page_index, row_index",
    )?;
    let rows = stmt.query_map(params![search_key, query_year], |r| {
        // A number's text is kept only when it is not what printf prints.
        let text = |number: usize, i: usize| -> rusqlite::Result<Option<String>> {
            let text: Option<String> = r.get(i)?;
            Ok(if plain_number(r.get(number)?, text.as_deref()) { None } else { text })
        };
        Ok(Row {
            name: r.get(4)?,
            key_no: r.get(5)?,
            values: Values {
                name_id: None,
                image_url: r.get(6)?,
                year: r.get(0)?,
                sales_amount: r.get(7)?,
                sales_amount_text: text(7, 8)?,
                sales_percent: r.get(9)?,
                sales_percent_text: text(9, 10)?,
                relationship: r.get(11)?,
                source: r.get(12)?,
            },
            place: Place {
                from_listing: r.get(1)?,
                page_index: r.get(2)?,
                row_index: r.get(3)?,
                fetched_at: r.get(13)?,
            },
        })
    })?;
    rows.collect()
}

/// The row's customer (none when anonymised or unnamed), whether it is
/// anonymised, and its name's id.
fn identify(
    tx: &Transaction<'_>,
    ids: &mut Identities,
    row: &Row,
    at: &str,
) -> rusqlite::Result<(Option<i64>, bool, Option<i64>)> {
    let name_id = match row.name.as_deref() {
        Some(n) => Some(name_id(tx, ids, n)?),
        None => None,
    };
    // An empty KeyNo is none; any other is the identity as given.
    let key_no = row.key_no.as_deref().filter(|k| !k.is_empty());
    let name = row.name.as_deref().unwrap_or("");
    if let Some(key) = key_no {
        if let Some(id) = ids.keys.get(key) {
            return Ok((Some(*id), false, name_id));
        }
        let found: Option<i64> = tx
            .prepare_cached("SELECT customer_id FROM customer WHERE key_no = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                let named = match name_id {
                    Some(id) => id,
                    None => self::name_id(tx, ids, "")?,
                };
                tx.prepare_cached("INSERT INTO customer (key_no, name_id, first_seen_at) VALUES (?1, ?2, ?3)")?
                    .execute(params![key, named, at])?;
                tx.last_insert_rowid()
            }
        };
        Identities::remember(&mut ids.keys, key, id);
        return Ok((Some(id), false, name_id));
    }
    let (Some(norm), Some(named)) = (names::normalised(name), name_id) else { return Ok((None, true, name_id)) };
    if let Some(id) = ids.norms.get(&norm) {
        return Ok((Some(*id), false, name_id));
    }
    if names::is_placeholder(name) {
        return Ok((None, true, name_id));
    }
    let found: Option<i64> = tx
        .prepare_cached("SELECT customer_id FROM customer WHERE norm_name = ?1 AND key_no IS NULL")?
        .query_row([&norm], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            tx.prepare_cached("INSERT INTO customer (norm_name, name_id, first_seen_at) VALUES (?1, ?2, ?3)")?
                .execute(params![norm, named, at])?;
            tx.last_insert_rowid()
        }
    };
    Identities::remember(&mut ids.norms, &norm, id);
    Ok((Some(id), false, name_id))
}

fn name_id(tx: &Transaction<'_>, ids: &mut Identities, name: &str) -> rusqlite::Result<i64> {
    if let Some(id) = ids.names.get(name) {
        return Ok(*id);
    }
    let found: Option<i64> = tx
        .prepare_cached("SELECT name_id FROM customer_names WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            tx.prepare_cached("INSERT INTO customer_names (name) VALUES (?1)")?.execute([name])?;
            tx.last_insert_rowid()
        }
    };
    Identities::remember(&mut ids.names, name, id);
    Ok(id)
}

fn close(tx: &Transaction<'_>, id: i64, how: Change, at: &str, run: Option<i64>) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE disclosure SET valid_to = ?2, closed_run = ?3, closed_as = ?4 WHERE version_id = ?1")?
        .execute(params![id, at, run, how as i64])?;
    Ok(())
}

/// A version to open.
struct Version<'a> {
    company: i64,
    query_year: &'a str,
    key: &'a Key,
    anonymised: bool,
    values: &'a Values,
    place: &'a Place,
}

#[allow(clippy::too_many_arguments)]
fn open_version(
    tx: &Transaction<'_>,
    codes: &mut Codebook,
    v: &Version<'_>,
    key_no: Option<&str>,
    kind: Change,
    previous: Option<i64>,
    at: &str,
    run: Option<i64>,
) -> rusqlite::Result<()> {
    let (period, customer, slot) = v.key;
    let (x, p) = (v.values, v.place);
    // The picture address as a reference (none for the KeyNo's usual one, a
    // learned template's id, X'' for none beside a KeyNo, else the text);
    // `IMAGE_URL` reads it back with the customer's KeyNo.
    let image = codes.stored_image(tx, key_no, x.image_url.as_deref(), v.company)?;
    // The year only when it is not the period (X'': none).
    let year: rusqlite::types::Value = match &x.year {
        Some(y) if y == period => rusqlite::types::Value::Null,
        Some(y) => rusqlite::types::Value::Text(y.clone()),
        None => rusqlite::types::Value::Blob(Vec::new()),
    };
    tx.prepare_cached(
        "INSERT INTO disclosure (company_id, period, customer_id, slot, anonymised, name_id, image_url, year,
                                 query_year, from_listing, page_index, row_index, sales_amount, sales_amount_text,
                                 sales_percent, sales_percent_text, relationship, source, fetched_at, valid_from,
                                 opened_run, opened_as, previous_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, NULLIF(?19, ?20),
                 ?20, ?21, ?22, ?23)",
    )?
    .execute(params![
        v.company,
        period,
        customer,
        slot,
        v.anonymised,
        x.name_id,
        image,
        year,
        v.query_year,
        p.from_listing,
        p.page_index,
        p.row_index,
        x.sales_amount,
        x.sales_amount_text,
        x.sales_percent,
        x.sales_percent_text,
        x.relationship,
        x.source,
        p.fetched_at,
        at,
        run,
        kind as i64,
        previous
    ])?;
    Ok(())
}

/// A version's picture address, decoded (`d`: the version, `c`: its customer).
const IMAGE_URL: &str = "CASE WHEN d.image_url IS NULL AND length(c.key_no) = 32 AND NOT c.key_no GLOB '*[^0-9a-f]*'
            THEN 'https://qccdata.qichacha.com/AutoImage/' || c.key_no || '.jpg?x-oss-process=image/resize,w_120'
            WHEN typeof(d.image_url) = 'integer'
            THEN (SELECT t.prefix || CASE WHEN t.keyed = 0 THEN '' ELSE c.key_no END || t.suffix
                  FROM image_templates t WHERE t.template_id = d.image_url)
            WHEN typeof(d.image_url) = 'blob' THEN NULL
            ELSE d.image_url END";

/// A version's year, decoded.
const YEAR: &str = "CASE WHEN d.year IS NULL THEN d.period WHEN typeof(d.year) = 'blob' THEN NULL ELSE d.year END";

/// Fill the history of a file that has none from the rows it holds (the
/// upgrade to version 12, while `customers` still reads `customer_rows`):
/// each version is valid from its row's `fetched_at`.
pub(super) fn backfill(tx: &Transaction<'_>, now: &str) -> rusqlite::Result<Changes> {
    let when = When { now, run_id: None, backfill: true };
    let years: Vec<(i64, String, String)> = tx
        .prepare(
            "SELECT DISTINCT r.company_id, co.search_key, r.query_year
             FROM customer_rows r JOIN companies co ON co.company_id = r.company_id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut changes = Changes::default();
    let mut codes = Codebook::load(tx)?;
    for (company, key, year) in years {
        let rows = current_rows(tx, &key, &year)?;
        changes.add(sync_year(tx, &mut codes, company, &year, rows, &when, Sync::Replace)?);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests;
