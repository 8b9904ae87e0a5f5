//! The readers' model (migration 0012): one row per distinct customer, and
//! one version per company × period × customer, every change kept.
//!
//! [`sync`] keeps it in step with the stored rows: when a unit of fetching
//! (a year, or a company's listing) is complete, the rows it now has are
//! compared with the unit's current versions. A value that differs closes
//! the old version and opens its successor; a row with no current version
//! opens one (`new_period` when the company had no version of that period
//! before this fetch cycle, else `added`); a current version with no row is
//! closed as `removed`. A row that only moved (another page or position, a
//! later `fetched_at`) keeps its version.

pub mod names;

use std::collections::{BTreeSet, HashMap};

use rusqlite::{params, OptionalExtension, Transaction};

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
    key_no: Option<String>,
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
    company: i64,
    search_key: &str,
    touched: &Touched,
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
    let cycle_start: Option<String> = tx
        .prepare_cached("SELECT discovered_at FROM companies WHERE company_id = ?1")?
        .query_row([company], |r| r.get(0))
        .optional()?
        .flatten();
    let mut changes = Changes::default();
    for year in &years {
        changes.add(sync_year(tx, company, search_key, year, cycle_start.as_deref(), when)?);
    }
    Ok(changes)
}

fn sync_year(
    tx: &Transaction<'_>,
    company: i64,
    search_key: &str,
    query_year: &str,
    cycle_start: Option<&str>,
    when: &When<'_>,
) -> rusqlite::Result<Changes> {
    let rows = current_rows(tx, search_key, query_year)?;
    let mut open: HashMap<Key, (i64, Values, Place)> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT version_id, period, customer_id, slot, name_id, key_no, image_url, year, sales_amount,
                    sales_amount_text, sales_percent, sales_percent_text, relationship, source,
                    from_listing, page_index, row_index, fetched_at
             FROM disclosure WHERE company_id = ?1 AND query_year = ?2 AND valid_to IS NULL",
        )?;
        let mut q = stmt.query(params![company, query_year])?;
        while let Some(r) = q.next()? {
            let key: Key = (r.get(1)?, r.get(2)?, r.get(3)?);
            let values = Values {
                name_id: r.get(4)?,
                key_no: r.get(5)?,
                image_url: r.get(6)?,
                year: r.get(7)?,
                sales_amount: r.get(8)?,
                sales_amount_text: r.get(9)?,
                sales_percent: r.get(10)?,
                sales_percent_text: r.get(11)?,
                relationship: r.get(12)?,
                source: r.get(13)?,
            };
            let place = Place { from_listing: r.get(14)?, page_index: r.get(15)?, row_index: r.get(16)?, fetched_at: r.get(17)? };
            open.insert(key, (r.get(0)?, values, place));
        }
    }
    let mut changes = Changes::default();
    let mut slots: HashMap<(String, Option<i64>), i64> = HashMap::new();
    let mut new_period: HashMap<String, bool> = HashMap::new();
    for row in rows {
        let at = if when.backfill { row.place.fetched_at.as_str() } else { when.now };
        let (customer, anonymised, name_id) = identify(tx, &row, at)?;
        let period = row.values.year.clone().filter(|y| !y.is_empty()).unwrap_or_else(|| query_year.to_string());
        let slot = slots.entry((period.clone(), customer)).or_insert(0);
        let key: Key = (period.clone(), customer, *slot);
        *slot += 1;
        let values = Values { name_id, ..row.values.clone() };
        match open.remove(&key) {
            Some((id, old, place)) if old == values => {
                if place != row.place {
                    tx.prepare_cached(
                        "UPDATE disclosure SET from_listing = ?2, page_index = ?3, row_index = ?4, fetched_at = ?5
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
                open_version(tx, &v, "changed", Some(id), at, when.run_id)?;
                changes.changed += 1;
            }
            None => {
                let is_new = match new_period.get(&period) {
                    Some(n) => *n,
                    None => {
                        let n = when.backfill || !seen_before(tx, company, &period, cycle_start.unwrap_or(when.now))?;
                        new_period.insert(period.clone(), n);
                        n
                    }
                };
                let kind = if is_new { "new_period" } else { "added" };
                let v = Version { company, query_year, key: &key, anonymised, values: &values, place: &row.place };
                open_version(tx, &v, kind, None, at, when.run_id)?;
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
struct Row {
    name: Option<String>,
    values: Values,
    place: Place,
}

fn current_rows(tx: &Transaction<'_>, search_key: &str, query_year: &str) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = tx.prepare_cached(
        "SELECT year, from_listing, page_index, row_index, name, key_no, image_url,
                sales_amount, sales_amount_text, COALESCE(sales_amount_text = printf('%.2f', sales_amount), 0),
                sales_percent, sales_percent_text, COALESCE(sales_percent_text = printf('%.2f', sales_percent), 0),
                relationship, source, fetched_at
         FROM customers WHERE search_key = ?1 AND query_year = ?2
         ORDER BY from_listing, page_index, row_index",
    )?;
    let rows = stmt.query_map(params![search_key, query_year], |r| {
        // A number's text is kept only when it is not what printf prints.
        let text = |i: usize, plain: usize| -> rusqlite::Result<Option<String>> {
            Ok(if r.get::<_, bool>(plain)? { None } else { r.get(i)? })
        };
        Ok(Row {
            name: r.get(4)?,
            values: Values {
                name_id: None,
                key_no: r.get(5)?,
                image_url: r.get(6)?,
                year: r.get(0)?,
                sales_amount: r.get(7)?,
                sales_amount_text: text(8, 9)?,
                sales_percent: r.get(10)?,
                sales_percent_text: text(11, 12)?,
                relationship: r.get(13)?,
                source: r.get(14)?,
            },
            place: Place { from_listing: r.get(1)?, page_index: r.get(2)?, row_index: r.get(3)?, fetched_at: r.get(15)? },
        })
    })?;
    rows.collect()
}

/// The row's customer (none when anonymised or unnamed), whether it is
/// anonymised, and its name's id.
fn identify(tx: &Transaction<'_>, row: &Row, now: &str) -> rusqlite::Result<(Option<i64>, bool, Option<i64>)> {
    let name_id = match row.name.as_deref() {
        Some(n) => Some(name_id(tx, n)?),
        None => None,
    };
    let key_no = row.values.key_no.as_deref().map(str::trim).filter(|k| !k.is_empty());
    let name = row.name.as_deref().unwrap_or("");
    if let Some(key) = key_no {
        let found: Option<i64> = tx
            .prepare_cached("SELECT customer_id FROM customer WHERE key_no = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                let named = match name_id {
                    Some(id) => id,
                    None => self::name_id(tx, "")?,
                };
                tx.prepare_cached("INSERT INTO customer (key_no, name_id, first_seen_at) VALUES (?1, ?2, ?3)")?
                    .execute(params![key, named, now])?;
                tx.last_insert_rowid()
            }
        };
        return Ok((Some(id), false, name_id));
    }
    let (Some(norm), Some(named)) = (names::normalised(name), name_id) else { return Ok((None, true, name_id)) };
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
                .execute(params![norm, named, now])?;
            tx.last_insert_rowid()
        }
    };
    Ok((Some(id), false, name_id))
}

fn name_id(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<i64> {
    let found: Option<i64> = tx
        .prepare_cached("SELECT name_id FROM customer_names WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO customer_names (name) VALUES (?1)")?.execute([name])?;
    Ok(tx.last_insert_rowid())
}

/// The company had a version of `period` before this fetch cycle began.
fn seen_before(tx: &Transaction<'_>, company: i64, period: &str, cycle_start: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM disclosure WHERE company_id = ?1 AND period = ?2 AND valid_from < ?3)",
    )?
    .query_row(params![company, period, cycle_start], |r| r.get(0))
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

fn open_version(
    tx: &Transaction<'_>,
    v: &Version<'_>,
    kind: &str,
    previous: Option<i64>,
    at: &str,
    run: Option<i64>,
) -> rusqlite::Result<()> {
    let (period, customer, slot) = v.key;
    let (x, p) = (v.values, v.place);
    tx.prepare_cached(
        "INSERT INTO disclosure (company_id, period, customer_id, slot, anonymised, name_id, key_no, image_url, year,
                                 query_year, from_listing, page_index, row_index, sales_amount, sales_amount_text,
                                 sales_percent, sales_percent_text, relationship, source, fetched_at, valid_from,
                                 opened_run, opened_as, previous_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
                 ?22, ?23, ?24)",
    )?
    .execute(params![
        v.company,
        period,
        customer,
        slot,
        v.anonymised,
        x.name_id,
        x.key_no,
        x.image_url,
        x.year,
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
    for (id, key) in companies {
        changes.add(sync(tx, id, &key, &all, when)?);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests;
