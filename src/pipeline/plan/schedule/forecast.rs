//! What the schedule will ask in the coming weeks, if nothing changes: for
//! `status` and the dry run.

use super::*;

/// What the schedule will ask: checks due now, and per week from now.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Forecast {
    pub due_now: u64,
    /// Checks (one discovery call each) made by the nightly runs of each of
    /// the next weeks if nothing changes: week 1 is tonight's run and the six
    /// after it, each at this time of day. A company found changed adds the
    /// pages of what changed on top.
    pub checks_per_week: Vec<u64>,
}

impl Forecast {
    /// Add a company: due when `plan` says (its stored next check, or
    /// `--refresh-after` after its last fetch), then as the schedule says
    /// after each check, if nothing changes.
    pub fn add(
        &mut self,
        revisit: &Revisit,
        plan: &crate::pipeline::plan::PlanOptions,
        history: CompanyHistory,
        now: DateTime<Utc>,
    ) {
        match revisit {
            Revisit::Fixed(d) => self.add_fixed(*d, plan, &history, now),
            Revisit::Adaptive { .. } => self.simulate(revisit, plan, history, now),
        }
    }

    /// The fixed schedule ignores a company's history, so its checks fall
    /// every `step` nights from the first: what [`Forecast::simulate`] finds
    /// night by night, without a step per night (a million companies under
    /// `--refresh-after 0s` is 84 million steps).
    fn add_fixed(
        &mut self,
        d: Duration,
        plan: &crate::pipeline::plan::PlanOptions,
        history: &CompanyHistory,
        now: DateTime<Utc>,
    ) {
        let days = self.checks_per_week.len() as i64 * 7;
        let due = crate::pipeline::plan::due_at(&history.snapshot(), plan).unwrap_or(now);
        // A check at a night's run is due again `d` less the tolerance
        // after it: whole nights later, at least one.
        let step = nights(d - crate::pipeline::plan::due_tolerance(d)).max(1);
        let mut night = nights(due - now);
        while night < days {
            self.count(night);
            night += step;
        }
    }

    fn count(&mut self, night: i64) {
        if night == 0 {
            self.due_now += 1;
        }
        self.checks_per_week[(night / 7) as usize] += 1;
    }

    /// Night by night: each check as a run would make it, the next one as
    /// the schedule sets it from the history so far.
    fn simulate(
        &mut self,
        revisit: &Revisit,
        plan: &crate::pipeline::plan::PlanOptions,
        mut history: CompanyHistory,
        now: DateTime<Utc>,
    ) {
        let days = self.checks_per_week.len() as i64 * 7;
        // A run checks a company at most once, so each check of the forecast
        // falls on a later night than the one before, whatever the settings
        // and the stored times say: the loop ends within `days` steps, and a
        // zero `--refresh-after` comes out as every company every night.
        let mut earliest = 0i64;
        loop {
            // Due by the same rule a run applies, an hour early included.
            let due = crate::pipeline::plan::due_at(&history.snapshot(), plan).unwrap_or(now);
            // The first nightly run at or after it.
            let night = nights(due - now).max(earliest);
            if night >= days {
                return;
            }
            earliest = night + 1;
            self.count(night);
            let run = clock::iso(now + Duration::days(night));
            if history.next_check_deep {
                history.deep_checked_at = Some(run.clone());
            }
            history.first_check_at.get_or_insert_with(|| run.clone());
            history.last_check_at = Some(run.clone());
            history.fetched_at = Some(run.clone());
            let next = revisit.next(&history, plan.page_size, now + Duration::days(night));
            history.next_check_at = Some(clock::iso(next.at));
            history.next_check_reason = Some(next.reason.to_string());
            history.next_check_deep = next.reason.is_deep();
        }
    }

    /// A compact text chart, one line a week.
    pub fn render(&self, indent: &str) -> String {
        let max = self.checks_per_week.iter().copied().max().unwrap_or(0).max(1);
        let mut out = String::new();
        for (i, n) in self.checks_per_week.iter().enumerate() {
            let bar = "█".repeat(((*n as f64 / max as f64) * 40.0).round() as usize);
            out.push_str(&format!("{indent}week {:>2} {:>7}  {bar}\n", i + 1, n));
        }
        out
    }
}

/// The first nightly run at or after `after` from now: whole nights, rounded up.
fn nights(after: Duration) -> i64 {
    (after.num_seconds().max(0) + 86_399) / 86_400
}

/// The forecast over `weeks` weeks of every done or no_result company of the database.
pub fn forecast(
    conn: &rusqlite::Connection,
    settings: &Settings,
    page_size: u32,
    now: DateTime<Utc>,
    weeks: usize,
) -> rusqlite::Result<Forecast> {
    let revisit = settings.revisit(conn, now)?;
    let plan = crate::pipeline::plan::PlanOptions {
        refresh_after: settings.refresh_after(),
        full_refresh: false,
        retry_rejected: false,
        years: Default::default(),
        page_size,
    };
    let mut f = Forecast { due_now: 0, checks_per_week: vec![0; weeks] };
    crate::store::read::each_history(conn, |h| {
        f.add(&revisit, &plan, h, now);
        Ok(())
    })?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_schedules_forecast_in_steps_equals_the_night_by_night_one() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 17, 15, 0).unwrap();
        let hours = [0, 1, 5, 23, 24, 25, 36, 47, 48, 7 * 24, 7 * 24 + 1, 30 * 24, 100 * 24];
        let fetched = [None, Some(-90 * 24), Some(-7 * 24), Some(-1), Some(0), Some(3), Some(20 * 24), Some(200 * 24)];
        for h in hours {
            for f in fetched {
                let d = Duration::hours(h);
                let history = CompanyHistory {
                    search_key: "甲公司".into(),
                    state: CompanyState::Done,
                    periods: vec![],
                    last_check_at: None,
                    first_check_at: None,
                    deep_checked_at: None,
                    total_records: None,
                    latest_two_years_rows: None,
                    input_row: None,
                    fetched_at: f.map(|f| clock::iso(now + Duration::hours(f))),
                    next_check_at: None,
                    next_check_reason: None,
                    next_check_deep: false,
                };
                let plan = crate::pipeline::plan::PlanOptions {
                    refresh_after: Some(d),
                    full_refresh: false,
                    retry_rejected: false,
                    years: Default::default(),
                    page_size: 50,
                };
                let mut stepped = Forecast { due_now: 0, checks_per_week: vec![0; 12] };
                stepped.add(&Revisit::Fixed(d), &plan, history.clone(), now);
                let mut nightly = Forecast { due_now: 0, checks_per_week: vec![0; 12] };
                nightly.simulate(&Revisit::Fixed(d), &plan, history, now);
                assert_eq!(stepped, nightly, "--refresh-after {h}h, fetched {f:?} h from now");
            }
        }
    }
}
