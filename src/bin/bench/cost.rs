//! What a run costs: calls per company for both data profiles and both listing modes.

use qcc_customers::pipeline::plan;
use qcc_customers::simulator::{data, Listing, Profile, SimConfig, Simulator};

use crate::Bench;

impl Bench {
    /// Calls per company for both data profiles and both things the listing
    /// may cover, beside the per-year formula and the optimum; then a refresh
    /// of the same, unchanged companies.
    pub(crate) async fn cost(&mut self) -> anyhow::Result<()> {
        let n = if self.smoke { 20 } else { 1000 };
        let input = self.write_input("cost", n);
        let keys: Vec<String> = std::fs::read_to_string(&input)?.lines().skip(1).map(str::to_string).collect();
        for profile in [Profile::Annual, Profile::Paging] {
            for listing in [Listing::EveryYear, Listing::LatestYear] {
                let sim = Simulator::start(SimConfig { profile, listing, ..SimConfig::default() }).await?;
                let seed = sim.handle.seed();
                let totals = |k: &String| -> Vec<u64> {
                    data::company_of(profile, seed, k, 0).years.iter().map(|y| u64::from(y.total)).collect()
                };
                let formula: u64 = keys.iter().map(|k| plan::per_year_cost(&totals(k), 50)).sum();
                let optimum: u64 = keys.iter().map(|k| plan::listing_cost(&totals(k), 50)).sum();
                let db = self.dir.path().join(format!("cost-{profile:?}-{listing:?}.sqlite"));
                let first = self.run_in_process(&sim, &input, &db, &self.fetch(0.0)).await?;
                let calls = sim.handle.billed();
                let twice = sim.handle.pages_served_twice();
                // The same companies, due again and unchanged.
                let conn = rusqlite::Connection::open(&db)?;
                conn.execute("UPDATE companies SET fetched_at = '2000-01-01T00:00:00.000Z', next_check_at = '2000-01-01T00:00:00.000Z', next_check_reason = NULL, next_check_deep = 0", [])?;
                drop(conn);
                let refresh = self.run_in_process(&sim, &input, &db, &self.fetch(0.0)).await?;
                let refresh_calls = sim.handle.billed() - calls;
                let per = |c: u64| c as f64 / n as f64;
                let (target, met) = match listing {
                    Listing::EveryYear => {
                        ("≤ 1.10 × optimum, refresh 1 call/company", { calls as f64 <= 1.10 * optimum as f64 })
                    }
                    _ => ("≤ per-year formula, refresh 1 call/company", calls <= formula),
                };
                self.push(
                    format!("cost: {n} companies, {profile:?} profile, listing {listing:?}"),
                    target,
                    format!(
                        "{calls} calls ({:.2}/company), optimum {optimum} ({:.2}), per-year formula {formula} ({:.2}); \
                         refresh {refresh_calls} ({:.2}); {twice} served twice; learned: {}",
                        per(calls),
                        per(optimum),
                        per(formula),
                        per(refresh_calls),
                        first.listing.coverage.as_str()
                    ),
                    met && twice == 0 && refresh_calls == n as u64 && first.exit_code == 0 && refresh.exit_code == 0,
                );
                sim.stop().await;
            }
        }
        Ok(())
    }
}
