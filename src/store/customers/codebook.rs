//! How a row's values are stored small (migrations 0006, 0008, 0010 and
//! 0011 say how; the `customers` view decodes each exactly): a KeyNo of 32
//! hex digits as its 16 bytes; a picture address as nothing (the vendor
//! document's one for the KeyNo) or a learned template's id; `source` and
//! `relationship` as a learned label's id; a number written the usual way
//! as an integer count of hundredths, its text left out; `fetched_at` as
//! milliseconds since the company's first stored row.
//!
//! The [`Codebook`] holds what the file has learned (templates, labels),
//! loaded once by the writer and grown as answers show new values; a new
//! entry is inserted in the transaction of the first row that uses it.

use std::collections::HashMap;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{CUSTOMERS, STAGING};
use crate::qcc::ClientRow;

/// What the file has learned to store as small integers.
#[derive(Debug, Default)]
pub struct Codebook {
    pictures: ImageTemplates,
    labels: Labels,
}

impl Codebook {
    pub fn load(conn: &Connection) -> rusqlite::Result<Self> {
        Ok(Codebook { pictures: ImageTemplates::load(conn)?, labels: Labels::load(conn)? })
    }

    /// How a row's picture address is stored: NULL for the vendor document's
    /// address of a 32-hex KeyNo, X'' for none beside a KeyNo, a template's
    /// id, or the text as received.
    pub(super) fn image<'a>(
        &mut self,
        tx: &Transaction<'_>,
        r: &'a ClientRow,
        key_bytes: bool,
        scratch: &mut String,
        company: i64,
    ) -> rusqlite::Result<ToSqlOutput<'a>> {
        image_value(tx, &mut self.pictures, r, key_bytes, scratch, company)
    }

    /// A `source` or `relationship` as stored: a label's id, or the text
    /// ('' and NULL as they are).
    pub(super) fn label<'a>(
        &mut self,
        tx: &Transaction<'_>,
        text: &'a Option<String>,
    ) -> rusqlite::Result<ToSqlOutput<'a>> {
        let Some(text) = text.as_deref() else { return Ok(ToSqlOutput::Owned(Value::Null)) };
        Ok(match self.labels.id(tx, text)? {
            Some(id) => ToSqlOutput::Owned(id.into()),
            None => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
        })
    }
}

/// Most labels a file learns: past this, new texts are stored as they are.
const MAX_LABELS: usize = 10_000;

/// The texts of `source` and `relationship` this file has seen
/// (`row_labels`), numbered from 0 in the order learned.
#[derive(Debug, Default)]
struct Labels {
    ids: HashMap<String, i64>,
}

impl Labels {
    fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let ids = conn
            .prepare("SELECT label, label_id FROM row_labels")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Labels { ids })
    }

    fn id(&mut self, tx: &Transaction<'_>, text: &str) -> rusqlite::Result<Option<i64>> {
        if let Some(id) = self.ids.get(text) {
            return Ok(Some(*id));
        }
        // '' costs no bytes as it is.
        if text.is_empty() || self.ids.len() >= MAX_LABELS {
            return Ok(None);
        }
        let id = tx
            .prepare_cached(
                "INSERT INTO row_labels (label_id, label)
                 VALUES ((SELECT COALESCE(MAX(label_id) + 1, 0) FROM row_labels), ?1)
                 ON CONFLICT (label) DO UPDATE SET label = excluded.label RETURNING label_id",
            )?
            .query_row([text], |r| r.get(0))?;
        self.ids.insert(text.to_string(), id);
        Ok(Some(id))
    }
}

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
struct ImageTemplates {
    keyed: HashMap<(String, String), i64>,
    constant: HashMap<String, i64>,
    /// Constant addresses seen in one company's rows so far in this run,
    /// and that company (bounded).
    seen_once: HashMap<String, i64>,
    /// The last keyed template used: most rows of a page share it.
    last: Option<(String, String, i64)>,
}

impl ImageTemplates {
    fn load(conn: &Connection) -> rusqlite::Result<Self> {
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

/// A KeyNo of 32 lower-case hex digits, as its 16 bytes.
pub(super) fn key_bytes(key_no: &str) -> Option<[u8; 16]> {
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

/// `now` as milliseconds since 1970 when the view spells them back exactly
/// (`2026-11-30T20:40:52.938Z`).
fn millis(now: &str) -> Option<i64> {
    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";
    chrono::NaiveDateTime::parse_from_str(now, FORMAT)
        .ok()
        .map(|t| t.and_utc())
        .filter(|t| (1970..=9999).contains(&chrono::Datelike::year(t)) && t.format(FORMAT).to_string() == now)
        .map(|t| t.timestamp_millis())
}

/// `fetched_at` as a company's rows store it: milliseconds since the
/// company's `fetched_base` (set to this time when its first row is
/// stored), else the text.
pub(super) fn stored_time<'a>(tx: &Transaction<'_>, company: i64, now: &'a str) -> rusqlite::Result<ToSqlOutput<'a>> {
    let Some(ms) = millis(now) else { return Ok(ToSqlOutput::Borrowed(ValueRef::Text(now.as_bytes()))) };
    let base: Option<i64> = tx
        .prepare_cached("SELECT fetched_base FROM companies WHERE company_id = ?1")?
        .query_row([company], |r| r.get(0))
        .optional()?
        .flatten();
    let base = match base {
        Some(base) => base,
        None => {
            tx.prepare_cached("UPDATE companies SET fetched_base = ?2 WHERE company_id = ?1")?
                .execute(params![company, ms])?;
            ms
        }
    };
    Ok(ToSqlOutput::Owned((ms - base).into()))
}

/// A number and its text as stored. A text written the usual way (what
/// the view prints with `printf('%.2f', n)`: `41377.22`, `57.10`) is left
/// out and the number kept as its integer count of hundredths (4137722),
/// which the view divides by 100.0: exactly the number read from the text,
/// both being the double nearest to the same decimal. Anything else keeps
/// its text, and the number as a REAL.
///
/// "The usual way" is decided from the text alone, without printing: an
/// optional `-`, at most 13 digits without a leading zero (or a single `0`),
/// a point, two digits; never `-0.00` (a sign on zero is the text's alone).
/// The number read from such a text is within 10^-3 of it, far inside the
/// 0.005 that would change its second decimal, so any correct printer gives
/// it back.
pub(super) fn stored_number(value: Option<f64>, text: &Option<String>) -> (ToSqlOutput<'static>, Option<&str>) {
    match (hundredths(value, text.as_deref()), value) {
        (Some(h), _) => (ToSqlOutput::Owned(h.into()), None),
        (None, Some(v)) => (ToSqlOutput::Owned(v.into()), text.as_deref()),
        (None, None) => (ToSqlOutput::Owned(Value::Null), text.as_deref()),
    }
}

/// The text's number in hundredths, when the text is written the usual way
/// and `value` is its number.
fn hundredths(value: Option<f64>, text: Option<&str>) -> Option<i64> {
    let text = text?;
    let negative = text.starts_with('-');
    let digits = text.as_bytes().strip_prefix(b"-").unwrap_or(text.as_bytes());
    let n = digits.len();
    let canonical = (4..=16).contains(&n)
        && digits[n - 3] == b'.'
        && digits[..n - 3].iter().chain(&digits[n - 2..]).all(u8::is_ascii_digit)
        && (digits[0] != b'0' || n == 4)
        && text != "-0.00"
        && value.is_some()
        && value == text.parse::<f64>().ok();
    if !canonical {
        return None;
    }
    let h = digits.iter().filter(|c| c.is_ascii_digit()).fold(0i64, |h, c| h * 10 + i64::from(c - b'0'));
    Some(if negative { -h } else { h })
}

/// An empty blob: "none" where NULL means "derived".
pub(super) const NONE: ToSqlOutput<'static> = ToSqlOutput::Borrowed(ValueRef::Blob(&[]));

#[cfg(test)]
mod tests {
    use super::{hundredths, stored_number};
    use crate::qcc::wire::parse_number;

    /// Every text the writer leaves out, SQLite's view prints back exactly,
    /// from the hundredths it keeps, and divides back to the same number.
    #[test]
    fn a_number_text_left_out_is_exactly_what_the_view_prints_from_its_hundredths() {
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
            "-9999999999999.99",
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
            let Some(h) = hundredths(value, Some(&text)) else { continue };
            left_out += 1;
            let (number, printed): (f64, String) = conn
                .query_row("SELECT ?1 / 100.0, printf('%.2f', ?1 / 100.0)", [h], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            assert_eq!(number.to_bits(), value.unwrap().to_bits(), "{text}: the view's number is the text's");
            assert_eq!(printed, text, "the view prints back what was left out");
        }
        assert!(left_out > 19_000, "{left_out}");
        assert_eq!(stored_number(Some(1.0), &None).1, None, "no text stays no text");
        for kept in ["-0.00", "12.5", "10000000000000.00", "未披露", "1,234.50", "007.50", "+1.00", "1.5e2"] {
            let t = Some(kept.to_string());
            assert_eq!(stored_number(parse_number(kept), &t).1, Some(kept), "{kept} is stored");
        }
        // A number that is not the text's (never from an answer) keeps the text.
        assert_eq!(stored_number(Some(2.0), &Some("1.00".into())).1, Some("1.00"));
    }
}
