//! Rate accuracy at `--qps 20` and `200`, and latency hiding with `--concurrency auto`.

use std::time::Duration;

use qcc_customers::simulator::{Faults, SimConfig, Simulator};

use crate::Bench;

impl Bench {
    pub(crate) async fn rate_accuracy(&mut self, qps: f64) -> anyhow::Result<()> {
        let calls = if self.smoke { 30 } else { (qps * 15.0) as u64 };
        let sim = Simulator::start(SimConfig::default()).await?;
        let input = self.write_input(&format!("rate{qps}"), calls as usize);
        let mut fetch = self.fetch(qps);
        fetch.max_calls = Some(calls);
        let db = self.dir.path().join(format!("rate{qps}.sqlite"));
        self.run_in_process(&sim, &input, &db, &fetch).await?;
        let t: Vec<f64> = sim.handle.arrivals().iter().map(|a| a.at).collect();
        let worst = (0..t.len()).map(|i| t[i..].iter().take_while(|u| **u < t[i] + 1.0).count()).max().unwrap_or(0);
        let mean = (t.len().max(2) - 1) as f64 / (t[t.len() - 1] - t[0]).max(1e-9);
        let pass = worst as f64 <= qps && mean >= 0.98 * qps;
        self.push(
            format!("rate accuracy, --qps {qps}, latency 0, {} calls", t.len()),
            format!("largest 1-s window ≤ {qps}; mean ≥ {:.1}/s", 0.98 * qps),
            format!("largest window {worst}; mean {mean:.2}/s ({:.1} %)", 100.0 * mean / qps),
            pass,
        );
        sim.stop().await;
        Ok(())
    }

    pub(crate) async fn latency_hiding(&mut self) -> anyhow::Result<()> {
        let calls = if self.smoke { 20 } else { 1500 };
        let faults =
            Faults { latency: Some((Duration::from_millis(300), Duration::from_millis(900))), ..Faults::default() };
        let sim = Simulator::start(SimConfig { faults, ..SimConfig::default() }).await?;
        let input = self.write_input("latency", calls as usize);
        let mut fetch = self.fetch(50.0);
        fetch.max_calls = Some(calls);
        let db = self.dir.path().join("latency.sqlite");
        self.run_in_process(&sim, &input, &db, &fetch).await?;
        let t: Vec<f64> = sim.handle.arrivals().iter().map(|a| a.at).collect();
        // Steady state: skip the first 2 s while auto concurrency learns the latency.
        let t0 = t[0] + if self.smoke { 0.0 } else { 2.0 };
        let steady: Vec<f64> = t.iter().copied().filter(|x| *x >= t0).collect();
        let mean = (steady.len().max(2) - 1) as f64 / (steady[steady.len() - 1] - steady[0]).max(1e-9);
        let overall = (t.len() - 1) as f64 / (t[t.len() - 1] - t[0]).max(1e-9);
        self.push(
            format!("latency hiding, --qps 50, latency 300–900 ms, auto concurrency, {} calls", t.len()),
            "mean ≥ 47.5/s (95 %)",
            format!("mean {mean:.2}/s after the first 2 s ({overall:.2}/s including them)"),
            mean >= 47.5,
        );
        sim.stop().await;
        Ok(())
    }
}
