//! Memory: a dry run over a million rows, and a real run over 100,000 companies.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use qcc_customers::simulator::{SimConfig, Simulator};

use crate::measure::{main_binary, run_sampled};
use crate::Bench;
use qcc_customers::simulator::{DEMO_KEY, DEMO_SECRET};

impl Bench {
    pub(crate) fn dry_run_memory(&mut self) -> anyhow::Result<()> {
        let n = if self.smoke { 1000 } else { 1_000_000 };
        let input = self.dir.path().join("million.csv");
        {
            use std::io::Write;
            let mut w = std::io::BufWriter::new(std::fs::File::create(&input)?);
            writeln!(w, "企业名称,统一社会信用代码,备注")?;
            for i in 0..n {
                writeln!(w, "百万行测试{i:07}科技有限公司,,第{i}行")?;
            }
        }
        let db = self.dir.path().join("none.sqlite");
        let mut cmd = Command::new(main_binary());
        cmd.args(["run", "--dry-run", "--quiet", "--input"]).arg(&input).arg("--db").arg(&db);
        let (code, wall, peak, _) = run_sampled(&mut cmd, Duration::from_secs(1))?;
        self.push(
            format!("memory: run --dry-run over a {n}-row CSV"),
            "peak RSS ≤ 100 MB, ≤ 10 s",
            format!("peak RSS {peak:.1} MiB, {:.2} s (exit {code})", wall.as_secs_f64()),
            code == 0 && peak <= 100.0 && wall.as_secs_f64() <= 10.0,
        );

        // The same list as an Excel workbook, written as Excel writes one
        // (names in the shared-string table, which calamine holds whole).
        let xlsx = self.dir.path().join("million.xlsx");
        {
            let mut book = rust_xlsxwriter::Workbook::new();
            let sheet = book.add_worksheet();
            for (col, header) in ["企业名称", "统一社会信用代码", "备注"].iter().enumerate() {
                sheet.write_string(0, col as u16, *header)?;
            }
            for i in 0..n {
                let row = i as u32 + 1;
                sheet.write_string(row, 0, format!("百万行测试{i:07}科技有限公司"))?;
                sheet.write_string(row, 2, format!("第{i}行"))?;
            }
            book.save(&xlsx)?;
        }
        let size = std::fs::metadata(&xlsx)?.len() as f64 / (1 << 20) as f64;
        let mut cmd = Command::new(main_binary());
        cmd.args(["run", "--dry-run", "--quiet", "--input"]).arg(&xlsx).arg("--db").arg(&db);
        let (code, wall, peak, _) = run_sampled(&mut cmd, Duration::from_secs(1))?;
        self.push(
            format!("memory: run --dry-run over a {n}-row .xlsx ({size:.0} MiB, shared strings)"),
            "recorded: the user guide states it",
            format!("peak RSS {peak:.1} MiB, {:.2} s (exit {code})", wall.as_secs_f64()),
            code == 0,
        );
        Ok(())
    }

    pub(crate) async fn run_memory(&mut self) -> anyhow::Result<()> {
        let n = if self.smoke { 200 } else { 100_000 };
        let sim = Simulator::start(SimConfig::default()).await?;
        let input = self.write_input("hundredk", n);
        let db = self.dir.path().join("hundredk.sqlite");
        let endpoint = sim.endpoint();
        let done = Arc::new(AtomicBool::new(false));
        let mut cmd = Command::new(main_binary());
        cmd.args(["run", "--quiet", "--qps", "0", "--since", "2024", "--no-archive", "--input"])
            .arg(&input)
            .arg("--db")
            .arg(&db)
            .args(["--endpoint", &endpoint])
            .env("QCC_KEY", DEMO_KEY)
            .env("QCC_SECRET_KEY", DEMO_SECRET);
        let every = if self.smoke { Duration::from_millis(200) } else { Duration::from_secs(2) };
        let (code, wall, peak, samples) = tokio::task::spawn_blocking(move || run_sampled(&mut cmd, every)).await??;
        done.store(true, Ordering::Relaxed);
        let calls = sim.handle.request_count();
        let q = |f: f64| samples.get(((samples.len() as f64 - 1.0) * f).round() as usize).copied().unwrap_or(0.0);
        self.push(
            format!("memory: a real run over {n} companies ({calls} calls, --since 2024, simulator in process)"),
            "peak RSS ≤ 64 MB, flat",
            format!(
                "peak RSS {peak:.1} MiB; RSS at 25/50/75/100 % of the run: {:.1} / {:.1} / {:.1} / {:.1} MiB; {:.0} s (exit {code})",
                q(0.25),
                q(0.5),
                q(0.75),
                q(1.0),
                wall.as_secs_f64()
            ),
            code == 0 && peak <= 64.0,
        );
        sim.stop().await;
        Ok(())
    }
}
