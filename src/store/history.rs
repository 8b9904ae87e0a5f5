//! The readers' model (migration 0012): one row per distinct customer, and
//! one version per company × period × customer, every change kept.
//!
//! [`sync`] keeps it in step with the stored rows: when a unit of fetching
//! (a year, or a company's listing) is complete, the rows it now has are
//! compared with the unit's current versions. A value that differs closes
//! the old version and opens its successor; a row with no current version
//! opens one (`new_period` when the company had no current version of that
//! period, else `added`); a current version with no row is
//! closed as `removed`. A row that only moved (another page or position, a
//! later `fetched_at`) keeps its version.

pub mod names;

use std::collections::{BTreeSet, HashMap};

use rusqlite::{params, OptionalExtension, Transaction};

use super::customers::{plain_number, Codebook};
use super::records::{report_year, Query};
use crate::qcc::ClientRow;

/// The report years of a company whose rows a commit completed.
#[derive(Debug, Default)]
pub(super) struct Touched {
    all: bool,
    years: BTreeSet<String>,
}

impl Touched {
    pub(super) fn year(&mut self, year: &str) {
        self.years.insert(year.to_string());
    }

    /// Every year of the company (its listing completed, or a rebuild).
    pub(super) fn all(&mut self) {
        self.all = true;
    }

    pub(super) fn is_empty(&self) -> bool {
        !self.all && self.years.is_empty()
    }
}

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
    /// Entries kept in each map (about 100 bytes each).
    const MAX: usize = 1 << 17;

    fn remember(map: &mut HashMap<String, i64>, text: &str, id: i64) {
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(text.to_string(), id);
    }
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

/// Bring `company`'s versions of the `touched` years in step with its rows.
pub(super) fn sync(
    tx: &Transaction<'_>,
    codes: &mut Codebook,
    company: i64,
    search_key: &str,
    touched: &Touched,
    given: &mut HashMap<String, Vec<Row>>,
    when: &When<'_>,
) -> rusqlite::Result<Changes> {
    let years: Vec<String> = if touched.all {
        tx.prepare_cached(
            "SELECT DISTINCT query_year FROM customer_rows WHERE company_id = ?1
             UNION SELECT DISTINCT query_year FROM disclosure WHERE company_id = ?1 AND valid_to IS NULL",
        )?
        .query_map([company], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?
    } else {
        touched.years.iter().cloned().collect()
    };
    let mut changes = Changes::default();
    for year in &years {
        let rows = match given.remove(year) {
            Some(rows) => rows,
            None => current_rows(tx, search_key, year)?,
        };
        changes.add(sync_year(tx, codes, company, year, rows, when)?);
    }
    Ok(changes)
}

fn sync_year(
    tx: &Transaction<'_>,
    codes: &mut Codebook,
    company: i64,
    query_year: &str,
    rows: Vec<Row>,
    when: &When<'_>,
) -> rusqlite::Result<Changes> {
    let mut open: HashMap<Key, (i64, Values, Place)> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT d.version_id, d.period, d.customer_id, d.slot, d.name_id, {IMAGE_URL}, {YEAR}, d.sales_amount,
                        d.sales_amount_text, d.sales_percent, d.sales_percent_text, d.relationship, d.source,
                        d.from_listing, d.page_index, d.row_index, COALESCE(d.fetched_at, d.valid_from)
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
            open.insert(key, (r.get(0)?, values, place));
        }
    }
    // A period with no current version before this sync is new to the company.
    let known: BTreeSet<String> = open.keys().map(|(period, _, _)| period.clone()).collect();
    let mut changes = Changes::default();
    let mut slots: HashMap<(String, Option<i64>), i64> = HashMap::new();
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
                    tx.prepare_cached(
                        "UPDATE disclosure SET from_listing = ?2, page_index = ?3, row_index = ?4,
                                               fetched_at = NULLIF(?5, valid_from)
                         WHERE version_id = ?1",
                    )?
                    .execute(params![
                        id,
                        row.place.from_listing,
                        row.place.page_index,
                        row.place.row_index,
                        row.place.fetched_at
                    ])?;
                }
            }
            Some((id, _, _)) => {
                close(tx, id, "changed", at, when.run_id)?;
                let v = Version { company, query_year, key: &key, anonymised, values: &values, place: &row.place };
                open_version(tx, codes, &v, row.key_no.as_deref(), "changed", Some(id), at, when.run_id)?;
                changes.changed += 1;
            }
            None => {
                let is_new = !known.contains(&period);
                let kind = if is_new { "new_period" } else { "added" };
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
        close(tx, id, "removed", when.now, when.run_id)?;
        changes.removed += 1;
    }
    Ok(changes)
}

/// A stored row as the `customers` view reads it.
pub(super) struct Row {
    name: Option<String>,
    /// The KeyNo as given: the customer's identity.
    key_no: Option<String>,
    values: Values,
    place: Place,
}

/// The rows a one-page unit stores, by report year, as the `customers` view
/// will read them back (so its versions need no reading back).
pub(super) fn rows_of_page(query: &Query, rows: &[ClientRow], fetched_at: &str) -> HashMap<String, Vec<Row>> {
    let mut out: HashMap<String, Vec<Row>> = HashMap::new();
    if let Query::Year(y) = query {
        // A year that answered no row still replaces what the year had.
        out.insert(y.clone(), Vec::new());
    }
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
            place: Place { from_listing, page_index: 1, row_index: i as i64, fetched_at: fetched_at.to_string() },
        });
    }
    out
}

fn current_rows(tx: &Transaction<'_>, search_key: &str, query_year: &str) -> rusqlite::Result<Vec<Row>> {
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

fn close(tx: &Transaction<'_>, id: i64, how: &str, at: &str, run: Option<i64>) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE disclosure SET valid_to = ?2, closed_run = ?3, closed_as = ?4 WHERE version_id = ?1")?
        .execute(params![id, at, run, how])?;
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
    kind: &str,
    previous: Option<i64>,
    at: &str,
    run: Option<i64>,
) -> rusqlite::Result<()> {
    let (period, customer, slot) = v.key;
    let (x, p) = (v.values, v.place);
    // The picture address as `customer_rows` keeps it (none for the KeyNo's
    // usual one, a learned template's id, X'' for none beside a KeyNo);
    // `IMAGE_URL` reads it back with the customer's KeyNo.
    let shown =
        ClientRow { key_no: key_no.map(str::to_string), image_url: x.image_url.clone(), ..ClientRow::default() };
    let image = codes.stored_image(tx, &shown, v.company)?;
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
        kind,
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

/// The company's report years whose stored rows and current versions
/// differ in number: rows of a unit that did not complete in its cycle, or
/// versions of a year that has no rows any more.
pub(super) fn unversioned_years(tx: &Transaction<'_>, company: i64) -> rusqlite::Result<Vec<String>> {
    tx.prepare_cached(
        "SELECT r.query_year
         FROM (SELECT query_year, COUNT(*) AS n FROM customer_rows WHERE company_id = ?1 GROUP BY query_year) r
         LEFT JOIN (SELECT query_year, COUNT(*) AS n FROM disclosure
                    WHERE company_id = ?1 AND valid_to IS NULL GROUP BY query_year) d USING (query_year)
         WHERE d.n IS NULL OR d.n <> r.n
         UNION
         SELECT DISTINCT query_year FROM disclosure d
         WHERE d.company_id = ?1 AND d.valid_to IS NULL
           AND NOT EXISTS (SELECT 1 FROM customer_rows r WHERE r.company_id = ?1 AND r.query_year = d.query_year)",
    )?
    .query_map([company], |r| r.get(0))?
    .collect()
}

/// Fill the history of a file that has none from the rows it holds (the
/// upgrade to version 12).
pub(super) fn backfill(tx: &Transaction<'_>, now: &str) -> rusqlite::Result<Changes> {
    resync(tx, &When { now, run_id: None, backfill: true })
}

/// Bring every company's versions in step with its rows (`rebuild`, and
/// the upgrade).
pub(super) fn resync(tx: &Transaction<'_>, when: &When<'_>) -> rusqlite::Result<Changes> {
    let companies: Vec<(i64, String)> = tx
        .prepare(
            "SELECT company_id, search_key FROM companies co
             WHERE EXISTS (SELECT 1 FROM customer_rows r WHERE r.company_id = co.company_id)
                OR EXISTS (SELECT 1 FROM disclosure d WHERE d.company_id = co.company_id AND d.valid_to IS NULL)",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut all = Touched::default();
    all.all();
    let mut changes = Changes::default();
    let mut codes = Codebook::load(tx)?;
    for (id, key) in companies {
        changes.add(sync(tx, &mut codes, id, &key, &all, &mut HashMap::new(), when)?);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests;
