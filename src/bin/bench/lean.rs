//! Where users live: CPU per call when answers trickle in at API rates, the
//! tail of a short list, the bytes a stored row costs, and the analyst's guide's
//! example queries on a large file.

use std::path::Path;
use std::time::Instant;

use rusqlite::Connection;

use crate::measure::{main_binary, own_cpu, run_sampled, SimProcess, Spread};
use crate::Bench;
use qcc_customers::simulator::{Pictures, Profile, SimConfig, Simulator};

/// The analyst's guide's example queries (the README's three are among
/// them), exactly as users copy them.
const GUIDE: &str = include_str!("../../../docs/analyst-guide.md");

/// The analyst's guide's queries (then the README's) on the million-row file before the storage was
/// reshaped (issue 12), ms, in their order, on the 2-core VM of
/// BENCHMARKS.md: the bound is twice these (below 1 ms counts as 1 ms).
const QUERY_MS_BEFORE: &[f64] = &[0.3, 101.0, 1317.0, 765.0, 0.6];

impl Bench {
    /// Client CPU per call at a real API's pace: answers after 50–300 ms,
    /// `--qps 200`, automatic concurrency, the simulator in its own process.
    pub(crate) async fn api_rate(&mut self) -> anyhow::Result<()> {
        let companies = if self.smoke { 40 } else { 1_400 };
        let sim = SimProcess::spawn(&["--latency-ms", "50-300"])?;
        let input = self.write_input("apirate", companies);
        let db = self.dir.path().join("apirate.sqlite");
        let (user0, sys0) = own_cpu();
        let start = Instant::now();
        let summary = self.run_against(&sim.endpoint, &input, &db, &self.fetch(200.0)).await?;
        let wall = start.elapsed().as_secs_f64();
        let (user, sys) = own_cpu();
        let calls = summary.calls.max(1) as f64;
        let (user_ms, sys_ms) = ((user - user0) / calls * 1e3, (sys - sys0) / calls * 1e3);
        self.push(
            format!("API rate: latency 50–300 ms, --qps 200, auto concurrency, {} calls", summary.calls),
            "client CPU ≤ 0.2 ms/call",
            format!(
                "{:.3} ms/call (user {user_ms:.3} + sys {sys_ms:.3}); {:.0} calls/s",
                user_ms + sys_ms,
                calls / wall
            ),
            (self.smoke || summary.calls >= 5_000) && user_ms + sys_ms <= 0.2,
        );
        Ok(())
    }

    /// A short list at a slow API: does the end of the run use the rate?
    pub(crate) async fn tail(&mut self) -> anyhow::Result<()> {
        let companies = if self.smoke { 10 } else { 80 };
        let qps = 50.0;
        let sim = SimProcess::spawn(&["--latency-ms", "600-600"])?;
        let input = self.write_input("tail", companies);
        let db = self.dir.path().join("tail.sqlite");
        let start = Instant::now();
        let summary = self.run_against(&sim.endpoint, &input, &db, &self.fetch(qps)).await?;
        let wall = start.elapsed().as_secs_f64();
        let rate = summary.calls as f64 / wall;
        self.push(
            format!("the tail: {companies} companies, latency 600 ms, --qps 50, auto concurrency"),
            "whole-run rate ≥ 90 % of --qps",
            format!(
                "{:.0} % ({} calls in {wall:.1} s = {rate:.1} calls/s; ideal {:.1} s)",
                rate / qps * 100.0,
                summary.calls,
                summary.calls as f64 / qps
            ),
            rate >= 0.9 * qps,
        );
        Ok(())
    }

    /// The file's bytes per customer row after a checkpoint, with receipts
    /// kept (the default) and without, for both data profiles and every
    /// picture-address format the simulator serves; where the bytes go
    /// (`dbstat`: customer rows, receipts, the rest).
    pub(crate) async fn bytes_per_row(&mut self) -> anyhow::Result<()> {
        let companies = if self.smoke { 20 } else { 1_000 };
        let input = self.write_input("bytes", companies);
        // Every picture format on both profiles, then each profile with every
        // company's customers its own (no name shared across companies).
        let mut workloads: Vec<(Profile, Pictures, bool)> = Vec::new();
        for profile in [Profile::Paging, Profile::Annual] {
            for pictures in Pictures::FORMATS.into_iter().chain([Pictures::Mixed]) {
                workloads.push((profile, pictures, false));
            }
        }
        workloads.extend([(Profile::Paging, Pictures::default(), true), (Profile::Annual, Pictures::default(), true)]);
        for (profile, pictures, own_names) in workloads {
            let sim = Simulator::start(SimConfig { profile, pictures, own_names, ..SimConfig::default() }).await?;
            let mut measured = Vec::new();
            let own = if own_names { "-own" } else { "" };
            for receipts in [true, false] {
                let name = format!("bytes-{profile:?}-{pictures:?}{own}-{receipts}.sqlite");
                let db = self.dir.path().join(name);
                let mut fetch = self.fetch(0.0);
                fetch.no_archive = !receipts;
                self.run_in_process(&sim, &input, &db, &fetch).await?;
                measured.push((file_bytes_per_row(&db)?, where_bytes_go(&db)?));
            }
            sim.stop().await;
            // The file with receipts after `rebuild --recompress --vacuum`.
            let name = format!("bytes-{profile:?}-{pictures:?}{own}-true.sqlite");
            let compacted = compacted_bytes_per_row(&self.dir.path().join(name))?;
            let ((with, rows), split) = measured[0];
            let ((without, _), _) = measured[1];
            self.push(
                    format!(
                        "bytes per customer row: {companies} companies, {profile:?} profile, pictures {}{}, {rows} rows",
                        pictures.name(),
                        if own_names { ", every company's customers its own" } else { "" }
                    ),
                    "≤ 200 bytes/row with receipts, ≤ 120 without",
                    format!(
                        "{with:.0} bytes/row with receipts ({:.0} rows, {:.0} receipts, {:.0} the rest), {without:.0} without; \
                         after rebuild --recompress --vacuum {:.0} ({:.0} rows, {:.0} receipts, {:.0} the rest)",
                        split.0 / rows as f64,
                        split.1 / rows as f64,
                        split.2 / rows as f64,
                        compacted.0,
                        compacted.1 .0 / rows as f64,
                        compacted.1 .1 / rows as f64,
                        compacted.1 .2 / rows as f64,
                    ),
                    with <= 200.0 && without <= 120.0,
                );
        }
        Ok(())
    }

    /// The analyst's guide's example queries on a file of about a million customer
    /// rows: the median of three timings each.
    pub(crate) async fn readme_queries(&mut self) -> anyhow::Result<()> {
        let companies = if self.smoke { 30 } else { 5_500 };
        let sim = Simulator::start(SimConfig::default()).await?;
        let input = self.write_input("queries", companies);
        let db = self.dir.path().join("queries.sqlite");
        let mut fetch = self.fetch(0.0);
        fetch.concurrency = "32".into();
        let summary = self.run_in_process(&sim, &input, &db, &fetch).await?;
        sim.stop().await;
        let conn = Connection::open(&db)?;
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0))?;
        let mut times = Vec::new();
        for sql in readme_sql() {
            let mut runs = Vec::new();
            for _ in 0..3 {
                let start = Instant::now();
                let mut stmt = conn.prepare(&sql)?;
                let mut result = stmt.query([])?;
                while result.next()?.is_some() {}
                runs.push(start.elapsed().as_secs_f64() * 1e3);
            }
            times.push(Spread::of(runs.into_iter()).median);
        }
        let shown: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
        let slower = times
            .iter()
            .zip(QUERY_MS_BEFORE)
            .map(|(now, before)| now.max(1.0) / before.max(1.0))
            .fold(None, |worst: Option<f64>, r| Some(worst.map_or(r, |w| w.max(r))));
        let before: Vec<String> = QUERY_MS_BEFORE.iter().map(|t| format!("{t:.1}")).collect();
        self.push(
            format!("the analyst's guide's queries: {rows} customer rows ({} calls)", summary.calls),
            "each ≤ 2× its time before the storage was reshaped",
            format!(
                "ms, in the guide's order: {} (before: {}){}",
                shown.join(" / "),
                if before.is_empty() { "not recorded".into() } else { before.join(" / ") },
                slower.map(|s| format!("; worst {s:.2}×")).unwrap_or_default()
            ),
            self.smoke || slower.is_some_and(|s| s <= 2.0),
        );
        drop(conn);

        // The same file exported to Excel: time and peak memory.
        let out = self.dir.path().join("queries.xlsx");
        let mut cmd = std::process::Command::new(main_binary());
        cmd.args(["export", "--db"]).arg(&db).arg("--out").arg(&out);
        let (code, wall, peak, _) = run_sampled(&mut cmd, std::time::Duration::from_millis(200))?;
        let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) as f64 / (1 << 20) as f64;
        self.push(
            format!("export --out F.xlsx of {rows} customer rows (constant-memory workbook)"),
            "memory flat: peak RSS ≤ 64 MB",
            format!("{:.1} s, peak RSS {peak:.1} MiB, {size:.0} MiB file (exit {code})", wall.as_secs_f64()),
            code == 0 && peak <= 64.0,
        );
        Ok(())
    }
}

/// The analyst's guide's ```sql blocks.
fn readme_sql() -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = GUIDE;
    while let Some(at) = rest.find("```sql\n") {
        let body = &rest[at + 7..];
        let end = body.find("```").unwrap_or(body.len());
        out.push(body[..end].trim().to_string());
        rest = &body[end..];
    }
    out
}

/// `rebuild --recompress --vacuum` on a file (the real command), then its
/// bytes per customer row and where they go.
fn compacted_bytes_per_row(db: &Path) -> anyhow::Result<(f64, (f64, f64, f64))> {
    let out = std::process::Command::new(main_binary())
        .args(["rebuild", "--quiet", "--recompress", "--vacuum", "--db"])
        .arg(db)
        .output()?;
    anyhow::ensure!(out.status.success(), "rebuild failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok((file_bytes_per_row(db)?.0, where_bytes_go(db)?))
}

/// Checkpoint the WAL into the file, then its size per customer row.
fn file_bytes_per_row(db: &Path) -> anyhow::Result<(f64, i64)> {
    let conn = Connection::open(db)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let rows: i64 = conn.query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0))?;
    drop(conn);
    let bytes = std::fs::metadata(db)?.len() as f64;
    Ok((bytes / rows.max(1) as f64, rows))
}

/// Bytes of the file's pages by what they hold (`dbstat`): customer rows
/// (the readers' model: versions, customers, names, staged rows, with their
/// indexes), receipts (`raw_pages`), and everything else.
fn where_bytes_go(db: &Path) -> anyhow::Result<(f64, f64, f64)> {
    let conn = Connection::open(db)?;
    let mut stmt = conn.prepare(
        "SELECT CASE WHEN m.tbl_name IN ('disclosure', 'customer', 'customer_names', 'staged_rows') THEN 0
                     WHEN s.name LIKE '%raw_pages%' OR m.tbl_name = 'raw_pages' THEN 1 ELSE 2 END,
                SUM(s.pgsize)
         FROM dbstat s LEFT JOIN sqlite_schema m ON m.name = s.name GROUP BY 1",
    )?;
    let mut out = (0.0, 0.0, 0.0);
    for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
        let (part, bytes) = row?;
        match part {
            0 => out.0 = bytes as f64,
            1 => out.1 = bytes as f64,
            _ => out.2 = bytes as f64,
        }
    }
    Ok(out)
}
