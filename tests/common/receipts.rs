//! Receipts rewritten as older versions, or a short run, would have stored
//! them: what `rebuild` must read.

use rusqlite::Connection;

/// Rewrite every receipt as the zlib of its body (what files before
/// version 9 hold), those whose raw_id `pick`s.
pub fn receipts_to_zlib(conn: &Connection, pick: impl Fn(i64) -> bool) -> usize {
    receipts_rewritten(conn, pick, |body| {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, body).unwrap();
        e.finish().unwrap()
    })
}

/// Rewrite the receipts whose raw_id `pick`s as plain zstd, with no
/// dictionary (what a run too short to learn one stores).
pub fn receipts_to_plain_zstd(conn: &Connection, pick: impl Fn(i64) -> bool) -> usize {
    receipts_rewritten(conn, pick, |body| qcc_customers::store::receipt::compress(body, None).unwrap())
}

fn receipts_rewritten(conn: &Connection, pick: impl Fn(i64) -> bool, seal: impl Fn(&[u8]) -> Vec<u8>) -> usize {
    let mut reader = qcc_customers::store::dictionaries::reader(conn).unwrap();
    let all: Vec<(i64, Vec<u8>, Option<i64>)> = conn
        .prepare("SELECT raw_id, body, dict_id FROM raw_pages")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut n = 0;
    for (raw_id, stored, dict_id) in all.into_iter().filter(|r| pick(r.0)) {
        let body = reader.read(&stored, dict_id).expect("every receipt reads");
        conn.execute(
            "UPDATE raw_pages SET body = ?2, dict_id = NULL WHERE raw_id = ?1",
            rusqlite::params![raw_id, seal(&body)],
        )
        .unwrap();
        n += 1;
    }
    n
}
