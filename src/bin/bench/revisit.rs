//! When to ask again: two simulated years of nightly runs over lists of
//! several shapes on the simulator's timeline (the workloads below), the
//! revisit schedule on each and, on today's list, fixed schedules of 1, 7
//! and 30 days beside it. A target counts as met only where it is met on
//! every workload it applies to.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use qcc_customers::clock::{self, Clock};
use qcc_customers::pipeline;
use qcc_customers::pipeline::report::progress::ProgressMode;
use qcc_customers::qcc::Credentials;
use qcc_customers::simulator::timeline::Shape;
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

/// The column of the booked-dates workload's input.
const BOOKED_COLUMN: &str = "披露日期";

/// One list the schedule is run on, and what it must meet there.
struct Workload {
    name: &'static str,
    shape: Shape,
    /// Every company's input row carries the booked date of its next
    /// report, right to within ±2 days (rewritten each night, as a user
    /// refreshing the exchange's table would).
    booked: bool,
    /// Calls per company-year in the second year, where the target applies.
    calls: Option<f64>,
    /// Mean delay of a new report in the second year.
    mean_delay: f64,
}

fn workloads() -> Vec<Workload> {
    let w = |name, shape, calls| Workload { name, shape, booked: false, calls, mean_delay: 3.0 };
    vec![
        w("today's list", Shape::default(), Some(12.0)),
        w("a third skip years", Shape { skip_years: 33, ..Shape::default() }, Some(12.0)),
        w("5 % heavy (50–400 rows a year)", Shape { heavy: 5, ..Shape::default() }, Some(12.0)),
        w(
            "90 % never disclose (2 % list in year one)",
            Shape { never_disclose: Some(90), lists_mid_way: 2, ..Shape::default() },
            Some(3.0),
        ),
        w("dates move up to 3 weeks a year", Shape { drift_days: 10, ..Shape::default() }, None),
        w(
            "skip a third, 5 % heavy, 9 % never",
            Shape { skip_years: 33, heavy: 5, never_disclose: Some(9), ..Shape::default() },
            Some(12.0),
        ),
        Workload {
            name: "booked dates (±2 d)",
            shape: Shape::default(),
            booked: true,
            calls: Some(9.0),
            mean_delay: 1.0,
        },
    ]
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
    /// The longest a company with data went unchecked.
    longest_gap: f64,
    /// Companies that listed: days from the deadline of their first report
    /// to when it was stored.
    listed: Vec<f64>,
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
        // REVISIT_ONLY=TEXT runs only the workloads whose name holds TEXT.
        let only = std::env::var("REVISIT_ONLY").ok();
        for (i, w) in workloads().into_iter().enumerate() {
            if only.as_deref().is_some_and(|o| !w.name.contains(o)) {
                continue;
            }
            let name = format!("revisit{i}");
            let input = self.write_input(&name, n);
            let keys: Vec<String> = std::fs::read_to_string(&input)?.lines().skip(1).map(str::to_string).collect();
            // The fixed schedules beside the revisit schedule, on today's list only.
            let fixed: &[Option<u64>] =
                if i == 0 && !self.smoke { &[None, Some(1), Some(7), Some(30)] } else { &[None] };
            for f in fixed {
                let sim = self.nights(&w, *f, &input, &keys, from, until).await?;
                // REVISIT_KEEP_DB=DIR keeps each database, to read `company_checks` afterwards.
                if let Some(dir) = std::env::var_os("REVISIT_KEEP_DB") {
                    std::fs::copy(&sim.db, std::path::Path::new(&dir).join(sim.db.file_name().unwrap_or_default()))?;
                }
                let conn = rusqlite::Connection::open(&sim.db)?;
                let years = tally(&conn, &sim, &keys, from, until)?;
                let why = why_due(&conn, until, n)?;
                self.report(&w, *f, n, from, until, &years, &why);
            }
        }
        Ok(())
    }

    /// Every night from `from` to `until`, a run of the schedule over the list.
    async fn nights(
        &mut self,
        w: &Workload,
        fixed: Option<u64>,
        input: &std::path::Path,
        keys: &[String],
        from: NaiveDate,
        until: NaiveDate,
    ) -> anyhow::Result<Simulated> {
        let tl = Timeline {
            as_of: Some(night(from)),
            random_corrections: true,
            corrections: Vec::new(),
            shape: w.shape.clone(),
        };
        let sim = Simulator::start(SimConfig {
            profile: Profile::Annual,
            timeline: Some(tl.clone()),
            ..SimConfig::default()
        })
        .await?;
        let seed = sim.handle.seed();
        let db = self.dir.path().join(format!(
            "{}-{}.sqlite",
            input.file_name().and_then(|f| f.to_str()).unwrap_or("revisit"),
            fixed.map_or("schedule".to_string(), |d| format!("fixed-{d}d"))
        ));
        let mut fetch = self.fetch(0.0);
        fetch.refresh_after = fixed.map(|d| std::time::Duration::from_secs(d * 86_400));
        if w.booked {
            fetch.expected_date_column = Some(BOOKED_COLUMN.to_string());
        }
        // Corrections whose new contents can be told from the old by the row's name.
        let mut corrections: Vec<(timeline::Correction, String, Option<DateTime<Utc>>)> = keys
            .iter()
            .flat_map(|k| timeline::corrections_of(Profile::Annual, seed, k, &tl, night(until)))
            .filter(|c| c.at > night(from))
            // A correction of a row the company shows (the timeline draws
            // some for years a shape left out).
            .filter(|c| {
                timeline::company_as_of(Profile::Annual, seed, &c.search_key, &tl, c.at)
                    .iter()
                    .any(|ty| ty.year == c.year && ty.rows.iter().any(|r| r.index == c.index))
            })
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
            if w.booked {
                write_booked(input, keys, &w.shape, seed, day)?;
            }
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

    /// One row per simulated year of a schedule on a workload.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        w: &Workload,
        fixed: Option<u64>,
        n: usize,
        from: NaiveDate,
        until: NaiveDate,
        years: &BTreeMap<i32, Year>,
        why: &[String],
    ) {
        let schedule = fixed.map_or("revisit schedule".to_string(), |d| format!("fixed {d}d"));
        for (year, y) in years {
            let per = y.calls as f64 / n as f64;
            let second = *year > from.year();
            let all: Vec<f64> = y.annual.iter().chain(y.half.iter()).copied().collect();
            let mean = if all.is_empty() { 0.0 } else { all.iter().sum::<f64>() / all.len() as f64 };
            let p90 = {
                let mut v = all.clone();
                v.sort_by(f64::total_cmp);
                v.get(((v.len().max(1) - 1) as f64 * 0.9).round() as usize).copied().unwrap_or(0.0)
            };
            let listed = y.listed.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let calls_target = if second { w.calls } else { Some(20.0) };
            let (target, met) = match fixed {
                Some(_) => ("comparison".to_string(), true),
                None => {
                    let mut target = calls_target.map_or(String::new(), |c| format!("≤ {c} calls/company-year; "));
                    let mut met = calls_target.is_none_or(|c| per <= c) && y.missed == 0 && y.longest_gap <= 60.05;
                    if second {
                        target.push_str(&format!("delays ≤ {} / ≤ 7 d mean / p90; ", w.mean_delay));
                        met &= mean <= w.mean_delay && p90 <= 7.0;
                    }
                    if !y.listed.is_empty() {
                        target.push_str("a listed company's first report ≤ 10 d after its deadline; ");
                        met &= listed <= 10.0;
                    }
                    target.push_str("none missed; gap ≤ 60 d for a company with data");
                    (target, met)
                }
            };
            self.push(
                format!("revisit: {}, {schedule}, {year} ({n} companies, nightly at 01:15)", w.name),
                target,
                format!(
                    "{per:.1} calls/company-year after the first fetch ({:.1} checks{}); all reports {mean:.1} / \
                     {p90:.1} d mean / p90; annual reports {}; half-year {}; \
                     corrections {}; missed {} (not yet due {}); longest unchecked with data {:.1} d{}",
                    y.checks as f64 / n as f64 - if second { 0.0 } else { 1.0 },
                    if *year == until.year() { format!(": {}", why.join(", ")) } else { String::new() },
                    spread(y.annual.clone()),
                    spread(y.half.clone()),
                    spread(y.corrections.clone()),
                    y.missed,
                    y.pending,
                    y.longest_gap,
                    if y.listed.is_empty() {
                        String::new()
                    } else {
                        format!("; listed: first report {}", spread(y.listed.clone()))
                    },
                ),
                met,
            );
        }
    }
}

/// The input of the booked-dates workload on `day`: each company's next
/// report's date as booked with the exchange, within ±2 days of the day it
/// comes out. A booking stays until a week after its date.
fn write_booked(
    input: &std::path::Path,
    keys: &[String],
    shape: &Shape,
    seed: u64,
    day: NaiveDate,
) -> anyhow::Result<()> {
    let mut text = format!("company,{BOOKED_COLUMN}\n");
    for k in keys {
        let mut reports: Vec<(i32, bool)> = Vec::new();
        for y in day.year() - 1..=day.year() {
            reports.push((y, false));
            reports.push((y, true));
        }
        let next = reports
            .iter()
            .map(|(y, half)| (timeline::published_in(shape, seed, k, *y, *half), *y, *half))
            .filter(|(p, _, _)| *p + Duration::days(7) > day)
            .min();
        let booked = next.map(|(p, y, half)| {
            let error = (data::hash(seed, &[b"booking", k.as_bytes(), &y.to_le_bytes(), &[half as u8]]) % 5) as i64 - 2;
            (p + Duration::days(error)).to_string()
        });
        text.push_str(&format!("{k},{}\n", booked.unwrap_or_default()));
    }
    std::fs::write(input, text)?;
    Ok(())
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
    let mut first_data: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT co.search_key, p.period, p.first_seen_at FROM company_periods p JOIN companies co USING (company_id)",
    )?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))? {
        let (k, p, at) = row?;
        if let Some(t) = clock::parse_iso(&at) {
            let first = first_data.entry(k.clone()).or_insert(t);
            *first = (*first).min(t);
            seen.insert((k, p), t);
        }
    }
    for k in keys {
        let listed = timeline::company_as_of(Profile::Annual, seed, k, tl, night(from)).is_empty();
        // Every report that came out after the first fetch: when, its deadline, its label.
        let mut reports: Vec<(DateTime<Utc>, NaiveDate, String, bool)> = Vec::new();
        for ty in timeline::company_as_of(Profile::Annual, seed, k, tl, night(until)) {
            let Ok(y) = ty.year.parse::<i32>() else { continue };
            for half in [false, true] {
                let visible = timeline::visible_in(&tl.shape, seed, k, y, half);
                let deadline =
                    if half { NaiveDate::from_ymd_opt(y, 8, 31) } else { NaiveDate::from_ymd_opt(y + 1, 4, 30) };
                let shown = ty.rows.iter().any(|r| r.half == half);
                if let (true, true, Some(deadline)) =
                    (shown, visible > night(from) && visible <= night(until), deadline)
                {
                    reports.push((visible, deadline, if half { format!("{y}-06") } else { y.to_string() }, half));
                }
            }
        }
        reports.sort();
        for (i, (visible, deadline, label, half)) in reports.into_iter().enumerate() {
            let stored = seen.get(&(k.to_string(), label));
            if listed && i == 0 {
                // A company that listed: its first report has a target of its own.
                if let Some(stored) = stored {
                    years.entry(year_of(visible)).or_default().listed.push(days(*stored - night(deadline)));
                }
                continue;
            }
            let year = years.entry(year_of(visible)).or_default();
            match stored {
                Some(stored) if half => year.half.push(days(*stored - visible)),
                Some(stored) => year.annual.push(days(*stored - visible)),
                None if visible > night(until) - Duration::days(7) => year.pending += 1,
                None => year.missed += 1,
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
    // The longest time a company with data went unchecked, per year it ended in.
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
            let had_data = first_data.get(&k).is_some_and(|f| f <= lt);
            if *lk == k && had_data {
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
