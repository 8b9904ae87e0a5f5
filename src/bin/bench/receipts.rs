//! How receipts are compressed: zlib page by page (before version 9), plain
//! zstd, and zstd against a dictionary of the file's own pages, for the
//! dictionary sizes and levels worth choosing between.

use std::time::Instant;

use rusqlite::Connection;

use crate::Bench;
use qcc_customers::simulator::{Pictures, Profile, SimConfig, Simulator};
use qcc_customers::store::{dictionaries, receipt};

const SIZES_KIB: [usize; 4] = [16, 32, 64, 112];
const LEVELS: [i32; 5] = [1, 3, 6, 9, 19];

impl Bench {
    /// Bytes a row and CPU a page of each way to compress the receipts: a
    /// dictionary trained on a file's first pages (as a run trains it),
    /// measured on its later pages.
    pub(crate) async fn receipt_codecs(&mut self) -> anyhow::Result<()> {
        let companies = if self.smoke { 60 } else { 1_000 };
        let input = self.write_input("receipts", companies);
        for profile in [Profile::Paging, Profile::Annual] {
            let sim =
                Simulator::start(SimConfig { profile, pictures: Pictures::Mixed, ..SimConfig::default() }).await?;
            let db = self.dir.path().join(format!("receipts-{profile:?}.sqlite"));
            self.run_in_process(&sim, &input, &db, &self.fetch(0.0)).await?;
            sim.stop().await;
            let (bodies, rows) = bodies_of(&db)?;
            let train = receipt::TRAIN_AFTER_PAGES.min(bodies.len() / 2);
            let (sample, later) = bodies.split_at(train);
            let later_bytes: usize = later.iter().map(Vec::len).sum();
            let all_bytes: usize = bodies.iter().map(Vec::len).sum();
            // The rows the later pages hold, in proportion to their bytes.
            let later_rows = rows as f64 * later_bytes as f64 / all_bytes.max(1) as f64;
            let per_row = |bytes: usize| bytes as f64 / later_rows.max(1.0);
            let label = format!(
                "receipts: {profile:?} profile, {} pages of {rows} rows; trained on the first {train}",
                bodies.len()
            );

            let (zlib, zlib_us) = timed(later, zlib1);
            let (plain, plain_us) = timed(later, |b| receipt::compress(b, None).map_or(0, |z| z.len()));
            self.record(
                format!("{label}, measured on the other {}", later.len()),
                "recorded: the baselines",
                format!(
                    "as received {:.0} B/row; zlib level 1 {:.1} B/row ({zlib_us:.0} µs/page); zstd level {} without a dictionary {:.1} B/row ({plain_us:.0} µs/page)",
                    per_row(later_bytes),
                    per_row(zlib),
                    receipt::LEVEL,
                    per_row(plain)
                ),
            );
            for kib in SIZES_KIB {
                let start = Instant::now();
                let Ok(dict) = zstd::dict::from_samples(sample, kib << 10) else { continue };
                let trained_ms = start.elapsed().as_secs_f64() * 1e3;
                let mut cells = Vec::new();
                for level in LEVELS {
                    let mut c = zstd::bulk::Compressor::with_dictionary(level, &dict)?;
                    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
                    let (bytes, us) = timed(later, |b| c.compress(b).map_or(0, |z| z.len()));
                    cells.push(format!("level {level} {:.1} B/row, {us:.0} µs/page", per_row(bytes)));
                }
                let chosen = kib << 10 == receipt::DICTIONARY_BYTES;
                self.record(
                    format!(
                        "{label}: dictionary {kib} KiB (trained in {trained_ms:.0} ms){}",
                        if chosen { " — the one used" } else { "" }
                    ),
                    "recorded: the trade-off",
                    cells.join("; "),
                );
            }
        }
        Ok(())
    }
}

/// Every receipt of a file as received, in the order stored; and its customer rows.
fn bodies_of(db: &std::path::Path) -> anyhow::Result<(Vec<Vec<u8>>, i64)> {
    let conn = Connection::open(db)?;
    let mut reader = dictionaries::reader(&conn)?;
    let rows: i64 = conn.query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0))?;
    let mut stmt = conn.prepare("SELECT body, dict_id FROM raw_pages ORDER BY raw_id")?;
    let stored: Vec<(Vec<u8>, Option<i64>)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    let bodies = stored.into_iter().filter_map(|(s, d)| reader.read(&s, d)).collect();
    Ok((bodies, rows))
}

/// Total compressed bytes over the pages, and the mean µs a page took.
fn timed(pages: &[Vec<u8>], mut f: impl FnMut(&[u8]) -> usize) -> (usize, f64) {
    let start = Instant::now();
    let bytes = pages.iter().map(|b| f(b)).sum();
    (bytes, start.elapsed().as_secs_f64() * 1e6 / pages.len().max(1) as f64)
}

fn zlib1(body: &[u8]) -> usize {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(body);
    e.finish().map_or(0, |z| z.len())
}
