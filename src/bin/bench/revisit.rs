//! When to ask again: two simulated years of nightly runs over an
//! annual-report-shaped list on the simulator's timeline, the revisit
//! schedule beside fixed schedules of 1, 7 and 30 days.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use qcc_customers::clock::{self, Clock};
use qcc_customers::pipeline;
use qcc_customers::pipeline::report::progress::ProgressMode;
use qcc_customers::qcc::Credentials;
use qcc_customers::simulator::{data, timeline, Profile, SimConfig, Simulator, Timeline, DEMO_KEY, DEMO_SECRET};
use tokio_util::sync::CancellationToken;

use crate::Bench;

/// 01:15 in Beijing on `day`, in UTC: when the nightly cron job runs.
fn night(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(1, 15, 0).unwrap_or_default().and_utc() - Duration::hours(8)
}

/// Days, for the table.
fn days(d: Duration) -> f64 {
    d.num_seconds() as f64 / 86_400.0
}

/// Mean, p90 and max of delays in days, and how many.
fn spread(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let p90 = v[((v.len() - 1) as f64 * 0.9).round() as usize];
    format!("{mean:.1} / {p90:.1} / {:.1} d (n={})", v[v.len() - 1], v.len())
}

/// What one schedule did in one simulated year.
#[derive(Default)]
struct Year {
    calls: u64,
    checks: u64,
    annual: Vec<f64>,
    half: Vec<f64>,
    corrections: Vec<f64>,
    missed: u64,
    /// Not stored yet, but too recent to count as missed.
    pending: u64,
    longest_gap: f64,
}

/// One schedule's two simulated years: the database, and what the
/// simulator knew (its seed, timeline and corrections).
struct Simulated {
    db: std::path::PathBuf,
    seed: u64,
    tl: Timeline,
    first_calls: u64,
    corrections: Vec<(timeline::Correction, String, Option<DateTime<Utc>>)>,
}

impl Bench {
    pub(crate) async fn revisit(&mut self) -> anyhow::Result<()> {
        let (n, from, until) = if self.smoke {
            (20, NaiveDate::from_ymd_opt(2025, 3, 1), NaiveDate::from_ymd_opt(2025, 5, 31))
        } else {
            (200, NaiveDate::from_ymd_opt(2025, 1, 1), NaiveDate::from_ymd_opt(2026, 12, 31))
        };
        let (Some(from), Some(until)) = (from, until) else { anyhow::bail!("dates") };
        let input = self.write_input("revisit", n);
        let keys: Vec<String> = std::fs::read_to_string(&input)?.lines().skip(1).map(str::to_string).collect();
        let schedules: [(&str, Option<u64>); 4] =
            [("revisit schedule", None), ("fixed 1d", Some(1)), ("fixed 7d", Some(7)), ("fixed 30d", Some(30))];
        for (name, fixed) in schedules {
            let sim = self.nights(name, fixed, &input, &keys, from, until).await?;
            let conn = rusqlite::Connection::open(&sim.db)?;
            let years = tally(&conn, &sim, &keys, from, until)?;
            let why = why_due(&conn, until, n)?;
            self.report(name, fixed, n, from, until, &years, &why);
        }
        Ok(())
    }

    /// Every night from `from` to `until`, a run of the schedule over the list.
    async fn nights(
        &mut self,
        name: &str,
        fixed: Option<u64>,
        input: &std::path::Path,
        keys: &[String],
        from: NaiveDate,
        until: NaiveDate,
    ) -> anyhow::Result<Simulated> {
        let tl = Timeline { as_of: Some(night(from)), random_corrections: true, corrections: Vec::new() };
        let sim = Simulator::start(SimConfig {
            profile: Profile::Annual,
            timeline: Some(tl.clone()),
            ..SimConfig::default()
        })
        .await?;
        let seed = sim.handle.seed();
        let db = self.dir.path().join(format!("revisit-{}.sqlite", name.replace(' ', "-")));
        let mut fetch = self.fetch(0.0);
        fetch.refresh_after = fixed.map(|d| std::time::Duration::from_secs(d * 86_400));
        // Corrections whose new contents can be told from the old by the row's name.
        let mut corrections: Vec<(timeline::Correction, String, Option<DateTime<Utc>>)> = keys
            .iter()
            .flat_map(|k| timeline::corrections_of(Profile::Annual, seed, k, &tl, night(until)))
            .filter(|c| c.at > night(from))
            .filter_map(|c| {
                let old = data::row_rev(seed, 0, &c.search_key, &c.year, c.index)["Name"].as_str().map(String::from);
                let new = data::row_rev(seed, 1, &c.search_key, &c.year, c.index)["Name"].as_str()?.to_string();
                (new.chars().count() > 4 && Some(&new) != old.as_ref()).then_some((c, new, None))
            })
            .collect();
        let mut first_calls = 0;
        let mut day = from;
        while day <= until {
            let t = night(day);
            sim.handle.set_as_of(t);
            let mut opts = qcc_customers::cmd::run::options(
                pipeline::intake::input::InputSource::Path(input.to_path_buf()),
                input.display().to_string(),
                &Default::default(),
                db.clone(),
                reqwest::Url::parse(&sim.endpoint())?,
                Credentials::new(DEMO_KEY, DEMO_SECRET),
                &fetch,
                ProgressMode::Quiet,
            )?;
            opts.clock = Clock::shifted(t - Utc::now());
            sim.handle.set_clock(opts.clock);
            let s = pipeline::run(opts, CancellationToken::new()).await?;
            if day == from {
                first_calls = s.calls;
            }
            let conn = rusqlite::Connection::open(&db)?;
            for (c, new_name, found) in corrections.iter_mut().filter(|c| c.2.is_none() && c.0.at <= t) {
                let stored: i64 = conn.query_row(
                    "SELECT COUNT(*) FROM customers WHERE search_key = ?1 AND query_year = ?2 AND name = ?3",
                    rusqlite::params![c.search_key, c.year, new_name.as_str()],
                    |r| r.get(0),
                )?;
                if stored > 0 {
                    *found = Some(t);
                }
            }
            day += Duration::days(1);
        }
        sim.stop().await;

        Ok(Simulated { db, seed, tl, first_calls, corrections })
    }

    /// One row per simulated year of a schedule.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        name: &str,
        fixed: Option<u64>,
        n: usize,
        from: NaiveDate,
        until: NaiveDate,
        years: &BTreeMap<i32, Year>,
        why: &[String],
    ) {
        for (year, y) in years {
            let per = y.calls as f64 / n as f64;
            let second = *year > from.year();
            let target = match (fixed, second) {
                (None, true) => "≤ 12 calls/company-year; delays ≤ 3 / ≤ 7 d mean / p90; none missed; gap ≤ 60 d",
                (None, false) => "first year: every report stored",
                _ => "comparison",
            };
            let all: Vec<f64> = y.annual.iter().chain(y.half.iter()).copied().collect();
            let mean = if all.is_empty() { 0.0 } else { all.iter().sum::<f64>() / all.len() as f64 };
            let p90 = {
                let mut v = all.clone();
                v.sort_by(f64::total_cmp);
                v.get(((v.len().max(1) - 1) as f64 * 0.9).round() as usize).copied().unwrap_or(0.0)
            };
            let met = match (fixed, second) {
                (None, true) => per <= 12.0 && mean <= 3.0 && p90 <= 7.0 && y.missed == 0 && y.longest_gap <= 60.05,
                (None, false) => y.missed == 0,
                _ => true,
            };
            self.push(
                format!("revisit: {name}, {year} ({n} companies, annual profile, timeline, nightly at 01:15)"),
                target,
                format!(
                    "{per:.1} calls/company-year after the first fetch ({:.1} checks{}); all reports {mean:.1} / \
                     {p90:.1} d mean / p90; annual reports {}; half-year {}; \
                     corrections {}; missed {} (not yet due {}); longest unchecked {:.1} d",
                    y.checks as f64 / n as f64 - if second { 0.0 } else { 1.0 },
                    if *year == until.year() { format!(": {}", why.join(", ")) } else { String::new() },
                    spread(y.annual.clone()),
                    spread(y.half.clone()),
                    spread(y.corrections.clone()),
                    y.missed,
                    y.pending,
                    y.longest_gap
                ),
                met,
            );
        }
    }
}

/// What each simulated year cost and how late each report was stored.
fn tally(
    conn: &rusqlite::Connection,
    sim: &Simulated,
    keys: &[String],
    from: NaiveDate,
    until: NaiveDate,
) -> anyhow::Result<BTreeMap<i32, Year>> {
    let (seed, tl, first_calls, corrections) = (sim.seed, &sim.tl, sim.first_calls, &sim.corrections);
    let mut years: BTreeMap<i32, Year> = BTreeMap::new();
    let year_of = |t: DateTime<Utc>| (t + Duration::hours(8)).year();
    // Calls after the first fetch, per calendar year.
    let mut stmt = conn.prepare("SELECT started_at FROM api_calls")?;
    for at in stmt.query_map([], |r| r.get::<_, String>(0))? {
        if let Some(t) = clock::parse_iso(&at?) {
            years.entry(year_of(t)).or_default().calls += 1;
        }
    }
    years.entry(from.year()).or_default().calls -= first_calls;
    // Reports that came out after the first fetch, and when each was stored.
    let mut seen: BTreeMap<(String, String), DateTime<Utc>> = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT co.search_key, p.period, p.first_seen_at FROM company_periods p JOIN companies co USING (company_id)",
    )?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))? {
        let (k, p, at) = row?;
        if let Some(t) = clock::parse_iso(&at) {
            seen.insert((k, p), t);
        }
    }
    for k in keys {
        for ty in timeline::company_as_of(Profile::Annual, seed, k, tl, night(until)) {
            let Ok(y) = ty.year.parse::<i32>() else { continue };
            for half in [false, true] {
                if !ty.rows.iter().any(|r| r.half == half) {
                    continue;
                }
                let visible = timeline::visible(seed, k, y, half);
                if visible <= night(from) || visible > night(until) {
                    continue;
                }
                let label = if half { format!("{y}-06") } else { y.to_string() };
                let year = years.entry(year_of(visible)).or_default();
                match seen.get(&(k.to_string(), label)) {
                    Some(stored) if half => year.half.push(days(*stored - visible)),
                    Some(stored) => year.annual.push(days(*stored - visible)),
                    None if visible > night(until) - Duration::days(7) => year.pending += 1,
                    None => year.missed += 1,
                }
            }
        }
    }
    for (c, _, found) in corrections {
        let year = years.entry(year_of(c.at)).or_default();
        match found {
            Some(t) => year.corrections.push(days(*t - c.at)),
            // A deep check may take 180 days to come round.
            None if c.at > night(until) - Duration::days(180) => year.pending += 1,
            None => year.missed += 1,
        }
    }
    // The longest time a company went unchecked, per year it ended in.
    let mut stmt = conn.prepare(
        "SELECT co.search_key, ch.checked_at FROM company_checks ch JOIN companies co USING (company_id)
         ORDER BY co.search_key, ch.checked_at",
    )?;
    let mut last: Option<(String, DateTime<Utc>)> = None;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (k, at) = row?;
        let Some(t) = clock::parse_iso(&at) else { continue };
        years.entry(year_of(t)).or_default().checks += 1;
        if let Some((lk, lt)) = &last {
            if *lk == k {
                let y = years.entry(year_of(t)).or_default();
                y.longest_gap = y.longest_gap.max(days(t - *lt));
            }
        }
        last = Some((k, t));
    }
    Ok(years)
}

/// Why the checks of the last year were due, per company.
fn why_due(conn: &rusqlite::Connection, until: NaiveDate, n: usize) -> anyhow::Result<Vec<String>> {
    let mut why: Vec<(String, i64)> = conn
        .prepare(
            "SELECT CASE WHEN reason LIKE 'usual%' THEN 'usual date' WHEN reason LIKE 'season%' THEN 'season'
                         WHEN reason LIKE 'after the deadline%' THEN 'after the deadline'
                         WHEN reason LIKE 'booked%' THEN 'booked' ELSE COALESCE(reason, 'first fetch') END,
                    COUNT(*)
             FROM company_checks WHERE checked_at >= ?1 GROUP BY 1 ORDER BY 2 DESC",
        )?
        .query_map([clock::iso(night(NaiveDate::from_ymd_opt(until.year(), 1, 1).unwrap_or(until)))], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    why.iter_mut().for_each(|(_, c)| *c = (*c as f64 / n as f64 * 10.0).round() as i64);
    let why: Vec<String> = why.iter().map(|(r, c)| format!("{r} {:.1}", *c as f64 / 10.0)).collect();
    Ok(why)
}
