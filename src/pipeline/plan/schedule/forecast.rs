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
            let snapshot = crate::store::records::CompanySnapshot {
                state: history.state,
                fetched_at: history.fetched_at.clone(),
                next_check_at: history.next_check_at.clone(),
                next_check_reason: history.next_check_reason.clone(),
                ..Default::default()
            };
            let due = crate::pipeline::plan::due_at(&snapshot, plan).unwrap_or(now);
            // The first nightly run at or after it.
            let night = (((due - now).num_seconds().max(0) + 86_399) / 86_400).max(earliest);
            if night >= days {
                return;
            }
            earliest = night + 1;
            if night == 0 {
                self.due_now += 1;
            }
            self.checks_per_week[(night / 7) as usize] += 1;
            let run = clock::iso(now + Duration::days(night));
            if history.next_check_reason.as_deref() == Some(crate::store::write::DEEP_CHECK) {
                history.deep_checked_at = Some(run.clone());
            }
            history.first_check_at.get_or_insert_with(|| run.clone());
            history.last_check_at = Some(run.clone());
            history.fetched_at = Some(run.clone());
            let next = revisit.next(&history, plan.page_size, now + Duration::days(night));
            history.next_check_at = Some(clock::iso(next.at));
            history.next_check_reason = Some(next.reason.to_string());
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
