//! The file's receipt dictionaries (`receipt_dictionaries`): loading the
//! newest, training one from the receipts already stored, keeping a new one,
//! and re-compressing every receipt against a fresh one (`rebuild
//! --recompress`). The compression itself is `receipt`'s.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::receipt::{self, Dictionary, Reader};

/// Every dictionary the file holds, for a [`Reader`].
pub fn reader(conn: &Connection) -> rusqlite::Result<Reader> {
    let all: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT dict_id, dictionary FROM receipt_dictionaries")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Reader::new(all))
}

/// What the receipts are (for `status`; no scan of their table).
#[derive(Debug, Default, serde::Serialize)]
pub struct ReceiptsHeld {
    pub receipts: u64,
    pub dictionaries: u64,
    /// The dictionary new receipts are compressed with: its id, when it was
    /// trained and on how many pages.
    pub newest_dictionary: Option<(i64, String, u64)>,
}

pub fn held(conn: &Connection) -> rusqlite::Result<ReceiptsHeld> {
    let receipts: i64 = conn.query_row("SELECT COUNT(*) FROM raw_pages", [], |r| r.get(0))?;
    let dictionaries: i64 = conn.query_row("SELECT COUNT(*) FROM receipt_dictionaries", [], |r| r.get(0))?;
    let newest = conn
        .query_row(
            "SELECT dict_id, created_at, pages FROM receipt_dictionaries ORDER BY dict_id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)),
        )
        .optional()?;
    Ok(ReceiptsHeld { receipts: receipts as u64, dictionaries: dictionaries as u64, newest_dictionary: newest })
}

/// The dictionary new receipts are compressed with: the newest one.
pub fn newest(conn: &Connection) -> rusqlite::Result<Option<Dictionary>> {
    conn.query_row(
        "SELECT dict_id, dictionary, pages, sample_bytes FROM receipt_dictionaries ORDER BY dict_id DESC LIMIT 1",
        [],
        |r| Ok(Dictionary::new(r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as usize, r.get::<_, i64>(3)? as usize)),
    )
    .optional()
}

/// The id the next dictionary takes.
pub fn next_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(dict_id), 0) + 1 FROM receipt_dictionaries", [], |r| r.get(0))
}

/// Keep a dictionary (before any receipt that needs it).
pub fn store(conn: &Connection, dictionary: &Dictionary, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO receipt_dictionaries (dict_id, created_at, pages, sample_bytes, dictionary)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        dictionary.id,
        now,
        dictionary.pages as i64,
        dictionary.sample_bytes as i64,
        dictionary.bytes
    ])?;
    Ok(())
}

/// Most receipts [`reseal`] rewrites: those a run stored before it learned
/// its dictionary are about [`receipt::TRAIN_AFTER_PAGES`], plus what came
/// in while it trained.
const RESEAL_PAGES: i64 = 4 * receipt::TRAIN_AFTER_PAGES as i64;

/// Rewrite receipts kept without a dictionary against `dictionary`, just
/// learned (in the transaction that stores it): the pages it was learned
/// from are then as small as later ones. A receipt is rewritten only when
/// that makes it smaller and it reads back as it was; at most
/// [`RESEAL_PAGES`]. Returns how many were rewritten.
///
/// A rewritten receipt moves to the end of the table (a new `raw_id`), so
/// the space it leaves is whole pages, reused by the next receipts, not a
/// hole in each page rewritten in place. Order is what `rebuild` reads
/// ("the newest receipt of a page"), so a receipt that has a newer one of
/// its page is rewritten where it is.
pub fn reseal(conn: &Connection, dictionary: &Dictionary) -> rusqlite::Result<u64> {
    let plain: Vec<(i64, Vec<u8>, bool)> = conn
        .prepare_cached(
            "SELECT p.raw_id, p.body, EXISTS (SELECT 1 FROM raw_pages n WHERE n.search_key = p.search_key
                                                AND n.query_year = p.query_year AND n.page_index = p.page_index
                                                AND n.raw_id > p.raw_id)
             FROM raw_pages p WHERE p.dict_id IS NULL ORDER BY p.raw_id LIMIT ?1",
        )?
        .query_map([RESEAL_PAGES], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut reader = Reader::new([(dictionary.id, dictionary.bytes.clone())]);
    let mut in_place = conn.prepare_cached("UPDATE raw_pages SET body = ?2, dict_id = ?3 WHERE raw_id = ?1")?;
    let mut moved = conn.prepare_cached(
        "INSERT INTO raw_pages (search_key, query_year, page_index, order_number, fetched_at, body, dict_id)
         SELECT search_key, query_year, page_index, order_number, fetched_at, ?2, ?3 FROM raw_pages WHERE raw_id = ?1",
    )?;
    let mut old = conn.prepare_cached("DELETE FROM raw_pages WHERE raw_id = ?1")?;
    let mut rewritten = 0;
    for (raw_id, stored, has_newer) in plain {
        let Some(body) = reader.read(&stored, None) else { continue };
        let Some(again) = receipt::compress(&body, Some(dictionary)) else { continue };
        if again.len() >= stored.len() || reader.read(&again, Some(dictionary.id)).as_deref() != Some(&body[..]) {
            continue;
        }
        if has_newer {
            in_place.execute(params![raw_id, again, dictionary.id])?;
        } else {
            moved.execute(params![raw_id, again, dictionary.id])?;
            old.execute([raw_id])?;
        }
        rewritten += 1;
    }
    Ok(rewritten)
}

/// Up to `limit` stored receipts as received, spread evenly over the file.
fn sample(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Vec<u8>>> {
    let (count, first, last): (i64, i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(MIN(raw_id), 0), COALESCE(MAX(raw_id), 0) FROM raw_pages",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut reader = reader(conn)?;
    let step = ((last - first + 1) as f64 / limit.max(1) as f64).max(1.0);
    let mut stmt =
        conn.prepare_cached("SELECT body, dict_id FROM raw_pages WHERE raw_id >= ?1 ORDER BY raw_id LIMIT 1")?;
    let mut out = Vec::new();
    let mut at = first as f64;
    while at <= last as f64 && out.len() < limit {
        let found: Option<(Vec<u8>, Option<i64>)> =
            stmt.query_row([at as i64], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        if let Some(body) = found.and_then(|(stored, dict)| reader.read(&stored, dict)) {
            out.push(body);
        }
        at += step;
    }
    Ok(out)
}

/// The dictionary a run starts with: the file's newest, or one trained now
/// on the receipts the file already holds once it holds enough (an upgraded
/// file, or one whose runs each paid for few pages). `Ok(None)`: the run
/// learns one from its own pages.
pub fn for_run(conn: &Connection, now: &str) -> rusqlite::Result<Option<Arc<Dictionary>>> {
    if let Some(d) = newest(conn)? {
        return Ok(Some(Arc::new(d)));
    }
    let stored: i64 = conn.query_row("SELECT COUNT(*) FROM raw_pages", [], |r| r.get(0))?;
    if (stored as usize) < receipt::TRAIN_AFTER_PAGES {
        return Ok(None);
    }
    let Some(d) = Dictionary::train(next_id(conn)?, &sample(conn, receipt::SAMPLE_PAGES)?) else { return Ok(None) };
    store(conn, &d, now)?;
    tracing::info!(dict_id = d.id, pages = d.pages, "Trained a receipt dictionary on the pages this file holds.");
    Ok(Some(Arc::new(d)))
}

/// What `rebuild --recompress` did.
#[derive(Debug, Default)]
pub struct Recompressed {
    /// The new dictionary (None: too few pages to train one; receipts were
    /// rewritten as plain zstd).
    pub dict_id: Option<i64>,
    pub receipts: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Receipts that could not be read (left as they are).
    pub unreadable: u64,
    /// Dictionaries no receipt needed any more, dropped.
    pub dictionaries_dropped: u64,
}

/// Receipts rewritten per transaction: an interruption loses at most one
/// batch's work, and the write-ahead log stays small on a large file.
const RECOMPRESS_BATCH: i64 = 2_000;

/// Train a dictionary on a sample of the whole file and rewrite every
/// receipt against it, batch by batch (each batch one transaction: a
/// receipt and the dictionary it names always change together). Then drop
/// the dictionaries nothing names. Run again after an interruption, it
/// starts over with a new dictionary: correct, only slower.
pub fn recompress(conn: &mut Connection, now: &str) -> rusqlite::Result<Recompressed> {
    let mut out = Recompressed::default();
    let dictionary = Dictionary::train(next_id(conn)?, &sample(conn, receipt::SAMPLE_PAGES)?);
    if let Some(d) = &dictionary {
        store(conn, d, now)?;
        out.dict_id = Some(d.id);
    }
    let mut reader = reader(conn)?;
    let mut after = 0i64;
    loop {
        let tx = conn.transaction()?;
        let batch: Vec<(i64, Vec<u8>, Option<i64>)> = tx
            .prepare_cached("SELECT raw_id, body, dict_id FROM raw_pages WHERE raw_id > ?1 ORDER BY raw_id LIMIT ?2")?
            .query_map(params![after, RECOMPRESS_BATCH], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = batch.last().map(|b| b.0) else { break };
        for (raw_id, stored, dict_id) in batch {
            let Some(body) = reader.read(&stored, dict_id) else {
                out.unreadable += 1;
                continue;
            };
            let Some(again) = receipt::compress(&body, dictionary.as_ref()) else {
                out.unreadable += 1;
                continue;
            };
            out.receipts += 1;
            out.bytes_before += stored.len() as u64;
            out.bytes_after += again.len() as u64;
            tx.prepare_cached("UPDATE raw_pages SET body = ?2, dict_id = ?3 WHERE raw_id = ?1")?.execute(params![
                raw_id,
                again,
                out.dict_id
            ])?;
        }
        tx.commit()?;
        after = last;
    }
    out.dictionaries_dropped = conn.execute(
        "DELETE FROM receipt_dictionaries WHERE dict_id NOT IN (SELECT dict_id FROM raw_pages WHERE dict_id IS NOT NULL)
           AND dict_id IS NOT ?1",
        [out.dict_id],
    )? as u64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{reader, reseal};
    use crate::store::receipt::{compress, Dictionary};

    /// Resealed receipts move to the end of the table, except one with a
    /// newer receipt of its page: the newest of every page stays the newest.
    #[test]
    fn resealing_keeps_the_newest_receipt_of_every_page_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_writing(&dir.path().join("r.sqlite")).unwrap();
        let body = |i: usize| {
            format!(r#"{{"Status":"200","Message":"【有效请求】","OrderNumber":"N{i}","Result":[{{"Name":"客户{i}","Source":"年报","Year":"{}"}}]}}"#, 2000 + i % 25)
                .into_bytes()
        };
        let mut insert = store
            .conn
            .prepare("INSERT INTO raw_pages (search_key, query_year, page_index, fetched_at, body) VALUES (?1, '2024', ?2, 't', ?3)")
            .unwrap();
        // Page ('甲', 1) twice: the first receipt and the last.
        for i in 0..300 {
            let (key, page) = if i == 0 || i == 299 { ("甲".to_string(), 1) } else { (format!("公司{i}"), i) };
            insert.execute(rusqlite::params![key, page as i64, compress(&body(i), None).unwrap()]).unwrap();
        }
        drop(insert);
        let d = Dictionary::train(1, &(0..300).map(body).collect::<Vec<_>>()).unwrap();
        super::store(&store.conn, &d, "t").unwrap();
        assert_eq!(reseal(&store.conn, &d).unwrap(), 300);
        let conn = &store.conn;
        let plain: i64 =
            conn.query_row("SELECT COUNT(*) FROM raw_pages WHERE dict_id IS NULL", [], |r| r.get(0)).unwrap();
        assert_eq!(plain, 0);
        let mut read = reader(conn).unwrap();
        let newest: (Vec<u8>, Option<i64>) = conn
            .query_row(
                "SELECT body, dict_id FROM raw_pages WHERE search_key = '甲' ORDER BY raw_id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            read.read(&newest.0, newest.1).unwrap(),
            body(299),
            "the newest receipt of a page is still its newest"
        );
        let old_in_place: i64 =
            conn.query_row("SELECT MIN(raw_id) FROM raw_pages WHERE search_key = '甲'", [], |r| r.get(0)).unwrap();
        assert_eq!(old_in_place, 1, "a receipt with a newer one of its page is rewritten where it is");
        let moved: i64 = conn.query_row("SELECT COUNT(*) FROM raw_pages WHERE raw_id > 300", [], |r| r.get(0)).unwrap();
        assert_eq!(moved, 299, "the others move to the end");
        for (stored, dict, i) in conn
            .prepare(
                "SELECT body, dict_id, CAST(substr(search_key, 3) AS INTEGER) FROM raw_pages WHERE search_key <> '甲'",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, i64>(2)?)))
            .unwrap()
            .map(Result::unwrap)
        {
            assert_eq!(read.read(&stored, dict).unwrap(), body(i as usize));
        }
    }
}
