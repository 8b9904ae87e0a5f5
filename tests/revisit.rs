//! The revisit schedule (docs/design.md §4) over simulated nights: the
//! simulator's timeline publishes reports on a realistic calendar, and a
//! nightly run at 01:15 Beijing time, its clock injected, asks again only
//! when something is likely new.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::*;
use qcc_customers::simulator::{data, timeline, Correction, Profile, SimConfig, Timeline};
use tokio::sync::OnceCell;

/// 01:15 in Beijing on `day`, in UTC.
fn night(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(1, 15, 0).unwrap().and_utc() - Duration::hours(8)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Run every night from `from` to `until` (inclusive), the simulator's
/// clock and the run's at 01:15 Beijing time; `each` sees every night after its run.
async fn nights(
    h: &Harness,
    fetch: &qcc_customers::cli::FetchArgs,
    from: NaiveDate,
    until: NaiveDate,
    mut each: impl FnMut(NaiveDate),
) {
    let mut day = from;
    while day <= until {
        let t = night(day);
        h.sim.handle.set_as_of(t);
        let clock = qcc_customers::clock::Clock::shifted(t - Utc::now());
        let s = h.run_at(fetch, clock).await;
        assert!(matches!(s.exit_code, 0), "{day}: {}", s.render());
        each(day);
        day += Duration::days(1);
    }
}

/// Each company's check times.
fn checks_by_company(h: &Harness) -> BTreeMap<String, Vec<DateTime<Utc>>> {
    let conn = h.conn();
    let mut stmt = conn
        .prepare(
            "SELECT co.search_key, ch.checked_at FROM company_checks ch JOIN companies co USING (company_id)
             ORDER BY ch.checked_at",
        )
        .unwrap();
    let mut out: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap() {
        let (key, at) = row.unwrap();
        out.entry(key).or_default().push(qcc_customers::clock::parse_iso(&at).unwrap());
    }
    out
}

/// When each `(company, period)` was first stored, and whether it was seen appearing.
fn first_seen(h: &Harness) -> BTreeMap<(String, String), (DateTime<Utc>, bool)> {
    let conn = h.conn();
    let mut stmt = conn
        .prepare(
            "SELECT co.search_key, p.period, p.first_seen_at, p.not_before IS NOT NULL
             FROM company_periods p JOIN companies co USING (company_id)",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok(((r.get(0)?, r.get(1)?), (qcc_customers::clock::parse_iso(&r.get::<_, String>(2)?).unwrap(), r.get(3)?)))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The revised contents of a row: its name when it is a real name that
/// differs from the original's.
fn revised_name(seed: u64, key: &str, year: &str, index: u32) -> Option<String> {
    let old = data::row_rev(seed, 0, key, year, index)["Name"].as_str().map(str::to_string);
    let new = data::row_rev(seed, 1, key, year, index)["Name"].as_str().map(str::to_string)?;
    (new.chars().count() > 4 && Some(&new) != old.as_ref()).then_some(new)
}

fn stored_name(h: &Harness, key: &str, name: &str) -> bool {
    count(&h.conn(), &format!("SELECT COUNT(*) FROM customers WHERE search_key = '{key}' AND name = '{name}'")) > 0
}

/// What a year and a half of nights over an annual-report-shaped list left.
struct Outcome {
    seed: u64,
    keys: Vec<String>,
    checks: BTreeMap<String, Vec<DateTime<Utc>>>,
    first_seen: BTreeMap<(String, String), (DateTime<Utc>, bool)>,
    /// The night each correction was first found stored.
    corrections_stored: Vec<(Correction, Option<NaiveDate>)>,
}

const SEED: u64 = 2019;

/// A heavy company of the annual profile: its 2024 report has over 300 rows.
fn heavy_key() -> String {
    (0..)
        .map(|i| format!("深查{i}股份有限公司"))
        .find(|k| {
            let c = data::company_of(Profile::Annual, SEED, k, 0);
            c.years.first().is_some_and(|y| y.year == "2024" && y.total >= 300)
        })
        .unwrap()
}

static OUTCOME: OnceCell<Outcome> = OnceCell::const_new();

/// A simulator of annual-report-shaped companies on `timeline`.
async fn timeline_harness(timeline: Timeline) -> Harness {
    Harness::new(SimConfig { seed: SEED, profile: Profile::Annual, timeline: Some(timeline), ..SimConfig::default() })
        .await
}

/// One simulation shared by the tests below: 20 companies first fetched on
/// 1 March 2025, then every night to 31 May 2026; an October correction on
/// page 1 of one company and a June correction on page 6 of a heavy one.
async fn outcome() -> &'static Outcome {
    OUTCOME
        .get_or_init(|| async {
            let mut keys = company_keys(19, "季节");
            let heavy = heavy_key();
            keys.push(heavy.clone());
            let small = keys[0].clone();
            let small_index = (0..5).find(|i| revised_name(SEED, &small, "2024", *i).is_some()).unwrap();
            let deep_index = (250..300).find(|i| revised_name(SEED, &heavy, "2024", *i).is_some()).unwrap();
            let corrections = vec![
                Correction {
                    search_key: small,
                    year: "2024".into(),
                    index: small_index,
                    at: night(date("2025-10-10")),
                },
                Correction { search_key: heavy, year: "2024".into(), index: deep_index, at: night(date("2025-06-20")) },
            ];
            let timeline = Timeline {
                as_of: None,
                random_corrections: false,
                corrections: corrections.clone(),
                ..Default::default()
            };
            let h = timeline_harness(timeline).await;
            h.write_keys(&keys);
            let mut stored: Vec<(Correction, Option<NaiveDate>)> = corrections.into_iter().map(|c| (c, None)).collect();
            nights(&h, &fast_fetch(), date("2025-03-01"), date("2026-05-31"), |day| {
                for (c, found) in stored.iter_mut() {
                    let name = revised_name(SEED, &c.search_key, &c.year, c.index).unwrap();
                    if found.is_none() && stored_name(&h, &c.search_key, &name) {
                        *found = Some(day);
                    }
                }
            })
            .await;
            Outcome {
                seed: SEED,
                keys,
                checks: checks_by_company(&h),
                first_seen: first_seen(&h),
                corrections_stored: stored,
            }
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_whose_annual_report_appears_on_its_usual_date_is_stored_within_three_nights_of_it() {
    let o = outcome().await;
    let mut judged = 0;
    for key in &o.keys {
        // Its own date: the 2024 report was seen appearing in 2025.
        let Some((_, true)) = o.first_seen.get(&(key.clone(), "2024".into())) else { continue };
        let visible = timeline::visible(o.seed, key, 2025, false);
        // On its usual date: within a few days of last year's, a year on.
        let last_year = timeline::visible(o.seed, key, 2024, false) + Duration::days(365);
        if (visible - last_year).num_days().abs() > 3 {
            continue;
        }
        let (stored, _) = o.first_seen[&(key.clone(), "2025".into())];
        let delay = stored - visible;
        assert!(delay <= Duration::days(3), "{key}: visible {visible}, stored {stored}");
        judged += 1;
    }
    assert!(judged >= 6, "only {judged} companies had their own date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_that_never_disclosed_half_year_customers_is_not_checked_densely_in_august() {
    let o = outcome().await;
    for key in o.keys.iter().filter(|k| !timeline::discloses_half_year(o.seed, k)) {
        let august = o.checks[key]
            .iter()
            .filter(|t| **t >= night(date("2025-08-01")) && **t <= night(date("2025-09-10")))
            .count();
        // The staleness bound, one look after 31 August, perhaps a deep check.
        assert!(august <= 3, "{key}: {august} checks from 1 August to 10 September");
    }
    // Those that do are checked around their date, and their half-year report is stored.
    for key in o.keys.iter().filter(|k| timeline::discloses_half_year(o.seed, k)) {
        if let Some((stored, _)) = o.first_seen.get(&(key.clone(), "2025-06".into())) {
            let visible = timeline::visible(o.seed, key, 2025, true);
            assert!(*stored - visible <= Duration::days(7), "{key}: visible {visible}, stored {stored}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_company_goes_longer_than_max_staleness_unchecked() {
    let o = outcome().await;
    let mut per_year = Vec::new();
    for (key, checks) in &o.checks {
        for pair in checks.windows(2) {
            assert!(pair[1] - pair[0] <= Duration::days(60) + Duration::hours(1), "{key}: {} → {}", pair[0], pair[1]);
        }
        let year: Vec<_> =
            checks.iter().filter(|t| **t >= night(date("2025-06-01")) && **t < night(date("2026-06-01"))).collect();
        per_year.push(year.len());
    }
    let mean = per_year.iter().sum::<usize>() as f64 / per_year.len() as f64;
    // The first year teaches the dates; the checks of a year stay far below a weekly refresh's 52.
    assert!(mean <= 20.0, "{mean} checks per company-year: {per_year:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_in_october_is_stored_by_the_next_staleness_check() {
    let o = outcome().await;
    let (c, found) = &o.corrections_stored[0];
    let found = found.expect("the October correction was stored");
    assert!(found - c.at.date_naive() <= Duration::days(61), "{c:?} found {found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_on_page_6_of_a_large_company_is_stored_by_its_deep_check() {
    let o = outcome().await;
    let (c, found) = &o.corrections_stored[1];
    assert!(c.index >= 250, "page 6 at 50 a page");
    let found = found.expect("the page-6 correction was stored");
    assert!(found - c.at.date_naive() <= Duration::days(181), "{c:?} found {found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booked_dates_from_the_input_column_centre_the_window() {
    let keys = company_keys(6, "预约");
    let h = timeline_harness(Timeline::default()).await;
    // Booked with the exchange: the day each 2025 annual report comes out.
    let mut text = String::from("企业名称,预约披露日期\n");
    for k in &keys {
        text.push_str(&format!("{k},{}\n", timeline::published(SEED, k, 2025, false)));
    }
    std::fs::write(&h.input, text).unwrap();
    let mut fetch = fast_fetch();
    fetch.expected_date_column = Some("预约披露日期".into());
    nights(&h, &fetch, date("2026-01-05"), date("2026-05-20"), |_| {}).await;
    let seen = first_seen(&h);
    for k in &keys {
        let visible = timeline::visible(SEED, k, 2025, false);
        let (stored, _) = seen.get(&(k.clone(), "2025".into())).copied().unwrap_or_else(|| panic!("{k}: 2025 stored"));
        assert!(stored - visible <= Duration::days(3), "{k}: visible {visible}, stored {stored}");
    }
    // The checks around those days were due for the booked date, and none
    // of the statutory calendar's March ones was needed.
    let booked = count(&h.conn(), "SELECT COUNT(*) FROM company_checks WHERE reason = 'booked date of 2025'");
    assert!(booked >= keys.len() as i64, "{booked} checks for booked dates");
    let season = count(&h.conn(), "SELECT COUNT(*) FROM company_checks WHERE reason LIKE 'season of%'");
    assert_eq!(season, 0, "no calendar window for companies with a booked date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_after_7d_keeps_todays_behaviour_otherwise() {
    let keys = company_keys(4, "固定");
    let h = timeline_harness(Timeline::default()).await;
    h.write_keys(&keys);
    let mut fetch = fast_fetch();
    fetch.refresh_after = Some(std::time::Duration::from_secs(7 * 86_400));
    // Across the busiest weeks of the season: still exactly every 7 nights.
    nights(&h, &fetch, date("2026-04-01"), date("2026-05-10"), |_| {}).await;
    for (key, checks) in checks_by_company(&h) {
        for pair in checks.windows(2) {
            let gap = (pair[1] - pair[0]).num_hours();
            assert!((7 * 24 - 1..=7 * 24 + 1).contains(&gap), "{key}: {gap} h");
        }
    }
    let reason = count(&h.conn(), "SELECT COUNT(*) FROM companies WHERE next_check_reason = '--refresh-after 7d'");
    assert_eq!(reason, keys.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_runs_forecast_for_the_next_week_equals_the_checks_the_next_seven_nights_make() {
    let keys = company_keys(16, "预测");
    let h = timeline_harness(Timeline::default()).await;
    h.write_keys(&keys);
    let fetch = fast_fetch();
    nights(&h, &fetch, date("2026-01-05"), date("2026-03-31"), |_| {}).await;
    // Before tonight's run, the dry run forecasts the season's first weeks.
    let tonight = night(date("2026-04-01"));
    let settings = qcc_customers::cmd::run::schedule_settings(&fetch).unwrap();
    let plan = qcc_customers::cmd::run::plan_options(&fetch).unwrap();
    let report = qcc_customers::pipeline::report::dry_run::dry_run(
        qcc_customers::pipeline::intake::input::InputSource::Path(h.input.clone()),
        &Default::default(),
        &h.db,
        &plan,
        &settings,
        qcc_customers::clock::Clock::shifted(tonight - Utc::now()),
    )
    .unwrap();
    let week = report.forecast.checks_per_week[0];
    assert_eq!(report.forecast.due_now, report.due, "due now is the dry run's own count");
    assert!(report.render().contains("a company found changed adds its pages on top"), "{}", report.render());
    let before = checks_by_company(&h).values().map(Vec::len).sum::<usize>();
    let calls_before = h.sim.handle.request_count();
    nights(&h, &fetch, date("2026-04-01"), date("2026-04-07"), |_| {}).await;
    let made = checks_by_company(&h).values().map(Vec::len).sum::<usize>() - before;
    assert!(week > 0, "a week of the season has checks");
    assert_eq!(made as u64, week, "{}", report.render());
    // Checks that found a change paid their pages on top.
    assert!(h.sim.handle.request_count() - calls_before >= made);
}

/// The checks per week a forecast prints (`week  1      35  ███`).
fn weekly_checks(text: &str) -> Vec<u64> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("week "))
        .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
        .collect()
}

async fn a_run_with_refresh_after_zero() -> (Harness, usize) {
    let keys = company_keys(5, "每晚");
    let h = Harness::default().await;
    h.write_keys(&keys);
    let mut fetch = fast_fetch();
    fetch.refresh_after = Some(std::time::Duration::ZERO);
    let s = h.run(&fetch).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    let known = count(&h.conn(), "SELECT COUNT(*) FROM companies WHERE state IN ('done', 'no_result')");
    assert_eq!(known, keys.len() as i64);
    (h, keys.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_after_zero_forecasts_every_company_every_night_and_returns() {
    let (h, n) = a_run_with_refresh_after_zero().await;
    let out = tool_within(&[
        "run".as_ref(),
        "--dry-run".as_ref(),
        "--refresh-after".as_ref(),
        "0s".as_ref(),
        "--input".as_ref(),
        h.input.as_os_str(),
        "--db".as_ref(),
        h.db.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains(&format!("{n} due")), "every company is due on every run: {report}");
    assert!(report.contains(&format!("{n} companies of the database due now")), "{report}");
    assert_eq!(weekly_checks(&report), vec![7 * n as u64; 12], "every company, every night: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_after_a_run_with_refresh_after_zero() {
    let (h, n) = a_run_with_refresh_after_zero().await;
    let out = tool_within(&["status".as_ref(), "--db".as_ref(), h.db.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(weekly_checks(&text), vec![7 * n as u64; 12], "{text}");

    let out = tool_within(&["status".as_ref(), "--json".as_ref(), "--db".as_ref(), h.db.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    let weeks = json["forecast"]["checks_per_week"].as_array().expect("a forecast per week");
    assert!(weeks.iter().all(|w| w.as_u64() == Some(7 * n as u64)), "{json}");
}

#[test]
fn nonsense_durations_are_usage_errors_before_anything_is_read() {
    for arg in [
        "--max-staleness=0s",
        "--max-staleness=12h",
        "--max-staleness=-1d",
        "--refresh-after=1e30s",
        "--refresh-after=36501d",
    ] {
        let out = tool_within(&[
            "run".as_ref(),
            "--dry-run".as_ref(),
            "--input".as_ref(),
            "missing.csv".as_ref(),
            "--db".as_ref(),
            "missing.sqlite".as_ref(),
            arg.as_ref(),
        ]);
        assert_eq!(out.status.code(), Some(64), "{arg}: {}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let flag = arg.split('=').next().unwrap();
        assert!(stderr.contains(flag), "{arg} names the flag: {stderr}");
    }
}
