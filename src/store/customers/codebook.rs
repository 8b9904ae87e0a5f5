//! A version's picture address as the id of something the file learned
//! (migration 0008 says how; the views decode it exactly): nothing for the
//! vendor document's address of its KeyNo, or a learned template's id.
//!
//! The [`Codebook`] holds what the file has learned (templates), and the
//! names and customers the writer has met; loaded once by the writer and
//! grown as answers show new values; a new entry is inserted in the
//! transaction of the first row that uses it.

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{params, Connection, Transaction};

/// What the file has learned to store as small integers.
#[derive(Debug, Default)]
pub struct Codebook {
    pictures: ImageTemplates,
    /// The readers' model's names and customers met so far.
    identities: crate::store::history::Identities,
}

impl Codebook {
    pub fn load(conn: &Connection) -> rusqlite::Result<Self> {
        Ok(Codebook { pictures: ImageTemplates::load(conn)?, identities: Default::default() })
    }

    /// A picture address as stored beside the row's KeyNo: NULL for the
    /// vendor document's address of a 32-hex KeyNo, X'' for none beside a
    /// KeyNo, a template's id, or the text as received.
    pub(in crate::store) fn stored_image(
        &mut self,
        tx: &Transaction<'_>,
        key_no: Option<&str>,
        image_url: Option<&str>,
        company: i64,
    ) -> rusqlite::Result<Value> {
        let Some(url) = image_url else {
            // Without a KeyNo, NULL already means none.
            return Ok(if key_no.is_some() { Value::Blob(Vec::new()) } else { Value::Null });
        };
        if let Some(k) = key_no.filter(|k| super::values::key_bytes(k).is_some()) {
            if url.strip_prefix(IMAGE_PREFIX).and_then(|u| u.strip_prefix(k)) == Some(IMAGE_SUFFIX) {
                return Ok(Value::Null);
            }
        }
        let keyed = match key_no {
            Some(k) => self.pictures.keyed_id(tx, url, k)?,
            None => None,
        };
        let id = match keyed {
            Some(id) => Some(id),
            None => self.pictures.constant_id(tx, url, company)?,
        };
        Ok(match id {
            Some(id) => Value::Integer(id),
            None => Value::Text(url.to_string()),
        })
    }

    pub(in crate::store) fn identities(&mut self) -> &mut crate::store::history::Identities {
        &mut self.identities
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
        // One company's current versions (through their index).
        tx.prepare_cached(
            "UPDATE disclosure SET image_url = ?2 WHERE company_id = ?1 AND valid_to IS NULL AND image_url = ?3",
        )?
        .execute(params![first, id, url])?;
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
