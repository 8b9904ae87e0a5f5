//! The readers' model on a large file: a first fetch of the annual profile
//! (the real binary, `--qps 0`), a nightly run that re-fetches everything
//! and finds nothing new, and the analysts' questions timed on the result.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::measure::{main_binary, run_sampled, Spread};
use crate::Bench;
use qcc_customers::simulator::{Profile, SimConfig, Simulator, DEMO_KEY, DEMO_SECRET};

impl Bench {
    pub(crate) async fn readers_model(&mut self) -> anyhow::Result<()> {
        let n: usize = if self.smoke {
            300
        } else {
            std::env::var("READERS_COMPANIES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
        };
        let sim = Arc::new(Simulator::start(SimConfig { profile: Profile::Annual, ..SimConfig::default() }).await?);
        let input = self.write_input("readers", n);
        // READERS_KEEP_DB=DIR keeps the file there (and a later run times
        // the questions on it again without fetching).
        let kept = std::env::var_os("READERS_KEEP_DB").map(std::path::PathBuf::from);
        let db = kept.as_deref().unwrap_or(self.dir.path()).join(format!("readers-{n}.sqlite"));
        let reuse = kept.is_some() && db.exists();
        let endpoint = sim.endpoint();
        let run = |extra: &[&str]| {
            let mut cmd = std::process::Command::new(main_binary());
            cmd.args(["run", "--quiet", "--qps", "0", "--input"])
                .arg(&input)
                .arg("--db")
                .arg(&db)
                .args(["--endpoint", &endpoint])
                .args(extra)
                .env("QCC_KEY", DEMO_KEY)
                .env("QCC_SECRET_KEY", DEMO_SECRET);
            cmd
        };
        if !reuse {
            self.fetch_twice(&sim, &db, n, &run).await?;
        }
        if let Ok(sim) = Arc::try_unwrap(sim) {
            sim.stop().await;
        }

        // The questions, each the median of three timings.
        let conn = Connection::open(&db)?;
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM disclosure WHERE valid_to IS NULL", [], |r| r.get(0))?;
        let hot: String =
            conn.query_row("SELECT name FROM customer_reach ORDER BY companies DESC LIMIT 1", [], |r| r.get(0))?;
        // A customer as most are: disclosed by a few companies.
        let (typical, typical_key): (String, String) = conn.query_row(
            "SELECT name, key_no FROM customer_reach WHERE key_no IS NOT NULL AND name <> ''
             ORDER BY abs(companies - 3), customer_id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let keyed: String = conn.query_row(
            "SELECT key_no FROM customer_reach WHERE key_no IS NOT NULL ORDER BY companies DESC LIMIT 1",
            [],
            |r| r.get(0),
        )?;
        let company: String =
            conn.query_row("SELECT search_key FROM companies ORDER BY company_id LIMIT 1", [], |r| r.get(0))?;
        let quote = |s: &str| s.replace('\'', "''");
        let questions: Vec<(String, String, f64)> = vec![
            (
                "one company's customers".into(),
                format!(
                    "SELECT search_key, year, name, sales_amount, sales_percent FROM latest_customers
                     WHERE search_key = '{}' ORDER BY sales_amount DESC LIMIT 5",
                    quote(&company)
                ),
                20.0,
            ),
            (
                format!("who sells to a name disclosed by about 3 companies ({typical})"),
                format!(
                    "SELECT search_key, period, sales_amount, sales_percent FROM customers_history
                     WHERE valid_to IS NULL AND name = '{}' ORDER BY period DESC LIMIT 5",
                    quote(&typical)
                ),
                20.0,
            ),
            (
                "who sells to a KeyNo disclosed by about 3 companies".into(),
                format!(
                    "SELECT search_key, period, name, sales_amount FROM customers_history
                     WHERE valid_to IS NULL AND key_no = '{}' ORDER BY period DESC LIMIT 5",
                    quote(&typical_key)
                ),
                20.0,
            ),
            (
                format!("who sells to a name (the most disclosed: {})", hot),
                format!(
                    "SELECT search_key, period, sales_amount, sales_percent FROM customers_history
                     WHERE valid_to IS NULL AND name = '{}' ORDER BY period DESC LIMIT 5",
                    quote(&hot)
                ),
                20.0,
            ),
            (
                "who sells to a KeyNo (the most disclosed)".into(),
                format!(
                    "SELECT search_key, period, name, sales_amount FROM customers_history
                     WHERE valid_to IS NULL AND key_no = '{}' ORDER BY period DESC LIMIT 5",
                    quote(&keyed)
                ),
                20.0,
            ),
            (
                // Recorded, not a target: a second sort key makes SQLite sort
                // every current disclosure of the newest period.
                "who sells to a name (the most disclosed), sorted by period and then search_key".into(),
                format!(
                    "SELECT search_key, period, sales_amount, sales_percent FROM customers_history
                     WHERE valid_to IS NULL AND name = '{}' ORDER BY period DESC, search_key LIMIT 5",
                    quote(&hot)
                ),
                f64::INFINITY,
            ),
            (
                "customers shared by several companies (top 5)".into(),
                "SELECT name, key_no, companies, periods FROM customer_reach WHERE companies >= 3
                 ORDER BY companies DESC, name LIMIT 5"
                    .into(),
                3000.0,
            ),
            (
                "rows per report year, through customers (the question is answered by `report_years`)".into(),
                "SELECT query_year, COUNT(*) AS rows FROM customers GROUP BY query_year ORDER BY query_year DESC"
                    .into(),
                f64::INFINITY,
            ),
            (
                "rows per report year (`report_years`)".into(),
                "SELECT query_year, rows, companies FROM report_years ORDER BY query_year DESC".into(),
                1000.0,
            ),
            (
                "rows per report year, the current versions' index".into(),
                "SELECT query_year, COUNT(*) AS rows, COUNT(DISTINCT company_id) AS companies FROM disclosure
                 WHERE valid_to IS NULL GROUP BY query_year ORDER BY query_year DESC"
                    .into(),
                f64::INFINITY,
            ),
            (
                "the changes of the nightly run".into(),
                "SELECT change, COUNT(*) FROM customer_changes WHERE run_id = (SELECT MAX(run_id) FROM runs)
                 GROUP BY change"
                    .into(),
                100.0,
            ),
        ];
        for (what, sql, target) in questions {
            let mut runs = Vec::new();
            let mut found = 0;
            for _ in 0..3 {
                let start = Instant::now();
                let mut stmt = conn.prepare(&sql)?;
                let mut result = stmt.query([])?;
                found = 0;
                while result.next()?.is_some() {
                    found += 1;
                }
                runs.push(start.elapsed().as_secs_f64() * 1e3);
            }
            let ms = Spread::of(runs.into_iter()).median;
            self.push(
                format!("readers' model, {n} companies ({rows} rows): {what}"),
                if target.is_finite() { format!("≤ {target:.0} ms") } else { "recorded".into() },
                format!("{ms:.1} ms ({found} rows)"),
                self.smoke || ms <= target,
            );
        }
        Ok(())
    }

    /// The first fetch of the file, then a nightly run that re-fetches
    /// everything and finds nothing new.
    async fn fetch_twice(
        &mut self,
        sim: &Simulator,
        db: &std::path::Path,
        n: usize,
        run: &dyn Fn(&[&str]) -> std::process::Command,
    ) -> anyhow::Result<()> {
        let every = if self.smoke { Duration::from_millis(200) } else { Duration::from_secs(1) };
        let mut first = run(&[]);
        let (code, wall, peak, _) = tokio::task::spawn_blocking(move || run_sampled(&mut first, every)).await??;
        let calls = sim.handle.request_count();
        let conn = Connection::open(db)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0))?;
        drop(conn);
        let bytes = std::fs::metadata(db)?.len() as f64;
        self.push(
            format!(
                "readers' model: first fetch of {n} companies, annual profile, --qps 0 ({calls} calls, {rows} rows)"
            ),
            "no slower than 128 s, peak RSS ≤ 100 MB",
            format!(
                "{:.0} s, peak RSS {peak:.1} MiB, {:.2} GB file, {:.0} bytes/row (exit {code})",
                wall.as_secs_f64(),
                bytes / 1e9,
                bytes / rows.max(1) as f64
            ),
            code == 0 && wall.as_secs_f64() <= 128.0 && peak <= 100.0,
        );

        // The nightly run: every company re-fetched, nothing new.
        let mut second = run(&["--full-refresh"]);
        let (code2, wall2, peak2, _) = tokio::task::spawn_blocking(move || run_sampled(&mut second, every)).await??;
        let calls2 = sim.handle.request_count() - calls;
        self.push(
            format!("readers' model: a nightly --full-refresh of the same {n} companies ({calls2} calls), nothing new"),
            "recorded",
            format!("{:.0} s, peak RSS {peak2:.1} MiB (exit {code2})", wall2.as_secs_f64()),
            code2 == 0,
        );

        Ok(())
    }
}
