//! Where customer rows go: each unit of fetching (one year, or a company's
//! whole listing) owns a set of rows in `customer_rows` (what the
//! `customers` view reads), and a re-fetch of a unit collects its pages in
//! `customer_rows_staging` and replaces exactly those rows in one
//! transaction. One API row is never stored twice.
//!
//! Rows are stored compactly (migrations 0006, 0008 and 0010 say how, and
//! the view decodes it): the company's integer id, `fetched_at` in
//! milliseconds, a KeyNo of 32 hex digits as its 16 bytes, no picture
//! address when it is the vendor document's one for the KeyNo, a template's
//! id when it fits a learned [`ImageTemplates`] shape, no `year` when it is
//! the query year, no number text when the view prints it from the number.

use std::collections::HashMap;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, Transaction};

use super::records::{report_year, Query};
use crate::qcc::ClientRow;

pub(super) const CUSTOMERS: &str = "customer_rows";
pub(super) const STAGING: &str = "customer_rows_staging";

/// The vendor's picture address of a company is this, its KeyNo, and [`IMAGE_SUFFIX`].
const IMAGE_PREFIX: &str = "https://qccdata.qichacha.com/AutoImage/";
const IMAGE_SUFFIX: &str = ".jpg?x-oss-process=image/resize,w_120";

/// Most templates a file learns: past this, new shapes are stored as text
/// (a shape per row would be no saving).
const MAX_TEMPLATES: usize = 10_000;

/// The picture-address shapes this file has learned (`image_templates`):
/// `prefix + KeyNo + suffix`, or a constant address seen in the rows of more
/// than one company (a default picture; the first company's rows are
/// rewritten when the second company's come).
/// Loaded once by the writer, and grown as answers show new shapes; a
/// template is inserted in the transaction of the first row that uses it.
#[derive(Debug, Default)]
pub struct ImageTemplates {
    keyed: HashMap<(String, String), i64>,
    constant: HashMap<String, i64>,
    /// Constant addresses seen in one company's rows so far in this run,
    /// and that company (bounded).
    seen_once: HashMap<String, i64>,
    /// The last keyed template used: most rows of a page share it.
    last: Option<(String, String, i64)>,
}

impl ImageTemplates {
    pub fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let mut t = ImageTemplates::default();
        let mut stmt = conn.prepare("SELECT template_id, prefix, suffix, keyed FROM image_templates")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get::<_, bool>(3)?)))?;
        for row in rows {
            let (id, prefix, suffix, keyed): (i64, String, String, bool) = row?;
            if keyed {
                t.keyed.insert((prefix, suffix), id);
            } else {
                t.constant.insert(prefix, id);
            }
        }
        Ok(t)
    }

    fn full(&self) -> bool {
        self.keyed.len() + self.constant.len() >= MAX_TEMPLATES
    }

    /// The template of `url` around its row's KeyNo text `key`, learned if new.
    fn keyed_id(&mut self, tx: &Transaction<'_>, url: &str, key: &str) -> rusqlite::Result<Option<i64>> {
        let Some(at) = url.find(key).filter(|_| !key.is_empty()) else { return Ok(None) };
        let (prefix, suffix) = (&url[..at], &url[at + key.len()..]);
        if let Some((p, s, id)) = &self.last {
            if p == prefix && s == suffix {
                return Ok(Some(*id));
            }
        }
        let id = match self.keyed.get(&(prefix.to_string(), suffix.to_string())) {
            Some(id) => *id,
            None if self.full() => return Ok(None),
            None => {
                let id = insert_template(tx, prefix, suffix, true)?;
                self.keyed.insert((prefix.to_string(), suffix.to_string()), id);
                id
            }
        };
        self.last = Some((prefix.to_string(), suffix.to_string(), id));
        Ok(Some(id))
    }

    /// The template of an address that does not hold its row's KeyNo, once
    /// the rows of a second company carry it. Then the template is made and
    /// the first company's rows are rewritten to use it.
    fn constant_id(&mut self, tx: &Transaction<'_>, url: &str, company: i64) -> rusqlite::Result<Option<i64>> {
        if let Some(id) = self.constant.get(url) {
            return Ok(Some(*id));
        }
        if self.full() {
            return Ok(None);
        }
        // A default picture is shared across companies: the same row fetched
        // again (a refresh, a resumed unit) says nothing about its shape.
        let first = match self.seen_once.get(url) {
            Some(&first) if first != company => first,
            Some(_) => return Ok(None),
            None => {
                if self.seen_once.len() < MAX_TEMPLATES {
                    self.seen_once.insert(url.to_string(), company);
                }
                return Ok(None);
            }
        };
        self.seen_once.remove(url);
        let id = insert_template(tx, url, "", false)?;
        self.constant.insert(url.to_string(), id);
        // One company's rows: a range of the primary key, in both tables.
        for table in [CUSTOMERS, STAGING] {
            tx.prepare_cached(&format!("UPDATE {table} SET image_url = ?2 WHERE company_id = ?1 AND image_url = ?3"))?
                .execute(params![first, id, url])?;
        }
        Ok(Some(id))
    }
}

fn insert_template(tx: &Transaction<'_>, prefix: &str, suffix: &str, keyed: bool) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO image_templates (prefix, suffix, keyed) VALUES (?1, ?2, ?3)
         ON CONFLICT (keyed, prefix, suffix) DO UPDATE SET keyed = excluded.keyed RETURNING template_id",
    )?
    .query_row(params![prefix, suffix, keyed], |r| r.get(0))
}

/// How a row's picture address is stored: NULL for the vendor document's
/// address of a 32-hex KeyNo, X'' for none beside a KeyNo, a template's id,
/// or the text as received.
fn image_value<'a>(
    tx: &Transaction<'_>,
    templates: &mut ImageTemplates,
    r: &'a ClientRow,
    key_bytes: bool,
    scratch: &mut String,
    company: i64,
) -> rusqlite::Result<ToSqlOutput<'a>> {
    let Some(url) = r.image_url.as_deref() else {
        // Without a KeyNo, NULL already means none.
        return Ok(if r.key_no.is_some() { NONE } else { ToSqlOutput::Owned(rusqlite::types::Value::Null) });
    };
    if let (true, Some(k)) = (key_bytes, r.key_no.as_deref()) {
        scratch.clear();
        scratch.push_str(IMAGE_PREFIX);
        scratch.push_str(k);
        scratch.push_str(IMAGE_SUFFIX);
        if url == scratch.as_str() {
            return Ok(ToSqlOutput::Owned(rusqlite::types::Value::Null));
        }
    }
    let keyed = match r.key_no.as_deref() {
        Some(k) => templates.keyed_id(tx, url, k)?,
        None => None,
    };
    let id = match keyed {
        Some(id) => Some(id),
        None => templates.constant_id(tx, url, company)?,
    };
    Ok(match id {
        Some(id) => ToSqlOutput::Owned(id.into()),
        None => ToSqlOutput::Borrowed(ValueRef::Text(url.as_bytes())),
    })
}

/// A company's integer id, which its stored rows carry.
pub(super) fn company_id(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT company_id FROM companies WHERE search_key = ?1")?.query_row([key], |r| r.get(0))
}

/// A KeyNo of 32 lower-case hex digits, as its 16 bytes.
fn key_bytes(key_no: &str) -> Option<[u8; 16]> {
    let b = key_no.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// `fetched_at` as stored: milliseconds since 1970 when the view spells them
/// back exactly as `now` (`2026-11-30T20:40:52.938Z`), else the text.
pub(super) fn stored_time(now: &str) -> ToSqlOutput<'_> {
    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";
    let ms = chrono::NaiveDateTime::parse_from_str(now, FORMAT)
        .ok()
        .map(|t| t.and_utc())
        .filter(|t| (1970..=9999).contains(&chrono::Datelike::year(t)) && t.format(FORMAT).to_string() == now)
        .map(|t| t.timestamp_millis());
    match ms {
        Some(ms) => ToSqlOutput::Owned(ms.into()),
        None => ToSqlOutput::Borrowed(ValueRef::Text(now.as_bytes())),
    }
}

/// A number's text as stored: NULL when it is what the view prints for the
/// number (`printf('%.2f', n)`: `41377.22`, `57.10`, the way answers write
/// amounts and shares), else the text as received.
///
/// That is decided from the text alone, without printing: an optional `-`,
/// at most 13 digits without a leading zero (or a single `0`), a point, two
/// digits; never `-0.00` (a sign on zero is the text's alone). The number
/// read from such a text is within 10^-3 of it, far inside the 0.005 that
/// would change its second decimal, so any correct printer gives it back.
pub(super) fn stored_number_text(value: Option<f64>, text: &Option<String>) -> Option<&str> {
    let text = text.as_deref()?;
    let digits = text.as_bytes().strip_prefix(b"-").unwrap_or(text.as_bytes());
    let n = digits.len();
    let canonical = (4..=16).contains(&n)
        && digits[n - 3] == b'.'
        && digits[..n - 3].iter().chain(&digits[n - 2..]).all(u8::is_ascii_digit)
        && (digits[0] != b'0' || n == 4)
        && text != "-0.00"
        && value.is_some()
        && value == text.parse::<f64>().ok();
    (!canonical).then_some(text)
}

/// An empty blob: "none" where NULL means "derived".
const NONE: ToSqlOutput<'static> = ToSqlOutput::Borrowed(ValueRef::Blob(&[]));

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
    templates: &mut ImageTemplates,
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
    insert.raw_bind_parameter(16, stored_time(fetched_at))?;
    if let Query::Year(y) = query {
        insert.raw_bind_parameter(3, y)?;
    }
    let mut image = String::with_capacity(IMAGE_PREFIX.len() + 32 + IMAGE_SUFFIX.len());
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
        insert.raw_bind_parameter(7, &r.name)?;
        let key = r.key_no.as_deref().and_then(key_bytes);
        match (&key, r.key_no.as_deref()) {
            (Some(bytes), _) => insert.raw_bind_parameter(8, &bytes[..])?,
            (None, text) => insert.raw_bind_parameter(8, text)?,
        }
        insert.raw_bind_parameter(9, image_value(tx, templates, r, key.is_some(), &mut image, company)?)?;
        insert.raw_bind_parameter(10, r.sales_amount)?;
        insert.raw_bind_parameter(11, stored_number_text(r.sales_amount, &r.sales_amount_text))?;
        insert.raw_bind_parameter(12, r.sales_percent)?;
        insert.raw_bind_parameter(13, stored_number_text(r.sales_percent, &r.sales_percent_text))?;
        insert.raw_bind_parameter(14, &r.relationship)?;
        insert.raw_bind_parameter(15, &r.source)?;
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

#[cfg(test)]
mod tests {
    use super::stored_number_text;
    use crate::qcc::wire::parse_number;

    /// Every text the writer leaves out, SQLite's view prints back exactly.
    #[test]
    fn a_number_text_left_out_is_exactly_what_the_view_prints() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut texts: Vec<String> = [
            "0.00",
            "-0.00",
            "0.01",
            "-0.01",
            "41377.22",
            "45349.90",
            "57.10",
            "100.00",
            "9999999999999.99",
            "10000000000000.00",
            "0.005",
            "12.5",
            "12.50%",
            "1,234.50",
            " 12.50",
            "+12.50",
            "007.50",
            "未披露",
            "-",
            "1e3",
            "0.125",
            "99.995",
            "2.675",
            "1.005",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut rng = fastrand::Rng::with_seed(20261202);
        for _ in 0..20_000 {
            let digits = rng.usize(1..=13);
            let int: String =
                (0..digits).map(|i| char::from(b'0' + rng.u8(if i == 0 { 1..10 } else { 0..10 }))).collect();
            let sign = if rng.bool() { "-" } else { "" };
            texts.push(format!("{sign}{int}.{:02}", rng.u8(0..100)));
        }
        let mut left_out = 0;
        for text in texts {
            let value = parse_number(&text);
            let kept = Some(text.clone());
            if stored_number_text(value, &kept).is_some() {
                continue;
            }
            left_out += 1;
            let printed: String = conn.query_row("SELECT printf('%.2f', ?1)", [value.unwrap()], |r| r.get(0)).unwrap();
            assert_eq!(printed, text, "the view prints back what was left out");
        }
        assert!(left_out > 19_000, "{left_out}");
        assert_eq!(stored_number_text(Some(1.0), &None), None, "no text stays no text");
        for kept in ["-0.00", "12.5", "10000000000000.00", "未披露", "1,234.50", "007.50", "+1.00", "1.5e2"] {
            let t = Some(kept.to_string());
            assert_eq!(stored_number_text(parse_number(kept), &t), Some(kept), "{kept} is stored");
        }
        // A number that is not the text's (never from an answer) keeps the text.
        assert_eq!(stored_number_text(Some(2.0), &Some("1.00".into())), Some("1.00"));
    }
}
