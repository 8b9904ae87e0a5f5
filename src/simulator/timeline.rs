//! The simulator's timeline (docs/design.md §6): when each report period of
//! each company comes out, when the vendor shows it, and the rare
//! corrections outside the seasons. Off by default; with it on, the
//! simulator answers as of its clock ([`super::SimHandle::set_as_of`]).
//!
//! Publication dates follow what public samples of listed companies show:
//! annual reports 8 % on 30 April, 40 % in its last 7 days, 55 % in the last
//! 14, 65 % in April, most of the rest in March and a few in January and
//! February; half-year reports 66 % in the last 7 days of August, 85 % in
//! the last 14, 96 % in August. Each company keeps its own date within a few
//! days from year to year. Fewer than half the companies disclose customers
//! in half-year reports.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use super::data::{self, hash, Profile, SimCompany};

/// A correction of one row: from `at` on, the row is served with new contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    pub search_key: String,
    /// The report year whose row changes.
    pub year: String,
    /// The row's index in its year.
    pub index: u32,
    pub at: DateTime<Utc>,
}

/// Timeline knobs.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Where the clock starts (`None`: the system clock); tests and the bench
    /// move it with [`super::SimHandle::set_as_of`].
    pub as_of: Option<DateTime<Utc>>,
    /// About one company in five gets a correction each year, on a date
    /// outside the seasons.
    pub random_corrections: bool,
    /// Corrections a test asks for.
    pub corrections: Vec<Correction>,
    /// How the list departs from the profile's own companies.
    pub shape: Shape,
}

/// How a list departs from the profile's companies: the variety the revisit
/// schedule must hold on (the benchmark's workloads). All shares are in
/// percent of companies, rolled per company (or per company and year) from
/// the seed, so a workload is the same in every process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Companies that never disclose customers (201 at every check), instead
    /// of the profile's own share.
    pub never_disclose: Option<u32>,
    /// Of those, companies that list during the first year: their first
    /// report comes out after the first fetch.
    pub lists_mid_way: u32,
    /// Each year of each disclosing company is left out with this chance:
    /// reports that name customers one year and not the next.
    pub skip_years: u32,
    /// Companies that list 50–400 customers a year.
    pub heavy: u32,
    /// A company's publication date moves up to this many days either way
    /// from one year to the next.
    pub drift_days: i64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape { never_disclose: None, lists_mid_way: 0, skip_years: 0, heavy: 0, drift_days: 3 }
    }
}

impl Shape {
    /// The company behind `key` in this shape, after `extra` more years;
    /// `years`: the timeline's first year and the clock's.
    fn company(&self, profile: Profile, seed: u64, key: &str, extra: u32, years: (i32, i32)) -> SimCompany {
        let (first_year, this_year) = years;
        let roll = |what: &[u8]| hash(seed, &[b"shape", what, key.trim().as_bytes()]) % 100;
        let mut company = data::company_of(profile, seed, key, extra);
        if let Some(never) = self.never_disclose {
            if roll(b"never") < u64::from(never) {
                if roll(b"lists") >= u64::from(self.lists_mid_way) * 100 / u64::from(never.max(1)) {
                    return SimCompany { years: Vec::new() };
                }
                // Lists in its first year: reports from that year on.
                let years = (first_year..=this_year.max(first_year))
                    .rev()
                    .map(|y| data::SimYear { year: y.to_string(), total: 5 })
                    .collect();
                return SimCompany { years };
            } else if company.years.is_empty() {
                // The profile's own never-disclosers disclose here: the share is this shape's.
                company = data::company_of(profile, seed, &format!("{}#", key.trim()), extra);
            }
        }
        if roll(b"heavy") < u64::from(self.heavy) {
            for y in &mut company.years {
                y.total = 50 + (hash(seed, &[b"heavy-year", key.trim().as_bytes(), y.year.as_bytes()]) % 351) as u32;
            }
        }
        if self.skip_years > 0 {
            let skipped = |y: &data::SimYear| {
                hash(seed, &[b"skip-year", key.trim().as_bytes(), y.year.as_bytes()]) % 100 < u64::from(self.skip_years)
            };
            company.years.retain(|y| !skipped(y));
        }
        company
    }
}

/// Whether a company discloses customers in its half-year reports (about 40 %).
pub fn discloses_half_year(seed: u64, key: &str) -> bool {
    hash(seed, &[b"half-discloser", key.trim().as_bytes()]) % 100 < 40
}

/// Days before a deadline a company usually publishes (negative: late).
fn usual_days_before(seed: u64, key: &str, half: bool) -> i64 {
    let roll = hash(seed, &[b"usual-date", key.trim().as_bytes(), &[half as u8]]) % 1000;
    let pick = |lo: u64, hi: u64| lo as i64 + (roll % (hi - lo + 1)) as i64;
    if half {
        match roll % 100 {
            0..=65 => pick(0, 6),
            66..=84 => pick(7, 13),
            85..=95 => pick(14, 30),
            _ => pick(31, 61),
        }
    } else {
        match roll % 100 {
            0..=7 => 0,
            8..=39 => pick(1, 6),
            40..=54 => pick(7, 13),
            55..=63 => pick(14, 29),
            64..=91 => pick(30, 60),
            92..=97 => pick(61, 119),
            // Late filers.
            _ => -pick(1, 20),
        }
    }
}

/// The day the report of `year` (annual, or its half-year) comes out.
pub fn published(seed: u64, key: &str, year: i32, half: bool) -> NaiveDate {
    published_in(&Shape::default(), seed, key, year, half)
}

/// [`published`] in a list of `shape`.
pub fn published_in(shape: &Shape, seed: u64, key: &str, year: i32, half: bool) -> NaiveDate {
    let deadline = if half { NaiveDate::from_ymd_opt(year, 8, 31) } else { NaiveDate::from_ymd_opt(year + 1, 4, 30) }
        .unwrap_or(NaiveDate::MIN);
    let y = year.to_le_bytes();
    // The same company moves by a few days from one year to the next.
    let drift = shape.drift_days.max(0);
    let jitter =
        (hash(seed, &[b"jitter", key.trim().as_bytes(), &y, &[half as u8]]) % (2 * drift as u64 + 1)) as i64 - drift;
    let before = usual_days_before(seed, key, half);
    let mut day = deadline - Duration::days(before) + Duration::days(jitter);
    if before >= 0 && day > deadline {
        day = deadline;
    }
    day
}

/// When the vendor shows the report of `year`: its publication plus a
/// delay of 0 to 4 days.
pub fn visible(seed: u64, key: &str, year: i32, half: bool) -> DateTime<Utc> {
    visible_in(&Shape::default(), seed, key, year, half)
}

/// [`visible`] in a list of `shape`.
pub fn visible_in(shape: &Shape, seed: u64, key: &str, year: i32, half: bool) -> DateTime<Utc> {
    let delay = (hash(seed, &[b"vendor-delay", key.trim().as_bytes(), &year.to_le_bytes(), &[half as u8]]) % 5) as i64;
    let day = published_in(shape, seed, key, year, half) + Duration::days(delay);
    // Shown during the Beijing working day: 10:00 Beijing.
    day.and_hms_opt(2, 0, 0).unwrap_or_default().and_utc()
}

/// One row as the timeline serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedRow {
    /// The row's index in its year's data.
    pub index: u32,
    /// A half-year row (`2023-06`, 半年报).
    pub half: bool,
    /// Its contents' revision (corrections raise it).
    pub revision: u64,
}

/// A year as the timeline shows it at one moment.
#[derive(Debug, Clone)]
pub struct TimedYear {
    pub year: String,
    pub rows: Vec<TimedRow>,
}

/// The company's years as the vendor shows them at `now`, most recent first:
/// a year appears with its half-year report or its annual report, whichever
/// comes first, and shows the rows of the reports out by then.
pub fn company_as_of(profile: Profile, seed: u64, key: &str, t: &Timeline, now: DateTime<Utc>) -> Vec<TimedYear> {
    let company = timed_company(profile, seed, key, t, now);
    let half_discloser = discloses_half_year(seed, key);
    let corrections = corrections_for(seed, key, &company, t, now);
    let mut out = Vec::new();
    for sy in &company.years {
        let Ok(y) = sy.year.parse::<i32>() else { continue };
        let annual_out = visible_in(&t.shape, seed, key, y, false) <= now;
        let half_out = half_discloser && visible_in(&t.shape, seed, key, y, true) <= now;
        if !annual_out && !half_out {
            continue;
        }
        let rows = (0..sy.total)
            .filter_map(|index| {
                let half = half_discloser && data::row_is_half_year(seed, key, &sy.year, index);
                let shown = if half { half_out } else { annual_out };
                let revision =
                    corrections.iter().filter(|c| c.year == sy.year && c.index == index && c.at <= now).count() as u64;
                shown.then_some(TimedRow { index, half, revision })
            })
            .collect::<Vec<_>>();
        if rows.is_empty() && !annual_out {
            continue;
        }
        out.push(TimedYear { year: sy.year.clone(), rows });
    }
    out
}

/// The company's years up to `now`: the data's years run to its latest, and
/// years after it come out on the timeline; the list's shape applies.
fn timed_company(profile: Profile, seed: u64, key: &str, t: &Timeline, now: DateTime<Utc>) -> SimCompany {
    let base = data::company_of(profile, seed, key, 0);
    let latest = base.years.first().and_then(|y| y.year.parse::<i32>().ok()).unwrap_or(data::LATEST_YEAR as i32);
    // The data's years run to its latest; years after it come out on the timeline.
    let extra = (now.year() - latest).max(0) as u32;
    let first_year = t.as_of.map_or(now.year(), |a| (a + Duration::hours(8)).year());
    t.shape.company(profile, seed, key, extra, (first_year, now.year()))
}

/// Every correction of a company's rows up to `now`.
pub fn corrections_of(profile: Profile, seed: u64, key: &str, t: &Timeline, now: DateTime<Utc>) -> Vec<Correction> {
    let company = timed_company(profile, seed, key, t, now);
    corrections_for(seed, key, &company, t, now).into_iter().filter(|c| c.at <= now).collect()
}

/// The corrections of one company: the ones asked for, and with
/// `random_corrections`, about one a year for one company in five, on a row
/// of its latest or second-latest annual report, in June–July or
/// mid-September to December.
fn corrections_for(seed: u64, key: &str, company: &SimCompany, t: &Timeline, now: DateTime<Utc>) -> Vec<Correction> {
    let mut out: Vec<Correction> = t.corrections.iter().filter(|c| c.search_key == key.trim()).cloned().collect();
    if !t.random_corrections {
        return out;
    }
    let first_year = t.as_of.map_or(now.year() - 2, |a| a.year() - 1);
    for cal_year in first_year..=now.year() {
        let h = hash(seed, &[b"correction", key.trim().as_bytes(), &cal_year.to_le_bytes()]);
        if !h.is_multiple_of(5) {
            continue;
        }
        let report_year = cal_year - 1 - ((h >> 8) % 2) as i32;
        let total = company.years.iter().find(|y| y.year == report_year.to_string()).map_or(1, |y| y.total.max(1));
        let day_of_window = ((h >> 16) % 168) as i64;
        // June 1 + 0..60 days, or September 15 + 0..107 days.
        let day = if day_of_window < 61 {
            NaiveDate::from_ymd_opt(cal_year, 6, 1).map(|d| d + Duration::days(day_of_window))
        } else {
            NaiveDate::from_ymd_opt(cal_year, 9, 15).map(|d| d + Duration::days(day_of_window - 61))
        };
        let Some(day) = day else { continue };
        out.push(Correction {
            search_key: key.trim().to_string(),
            year: report_year.to_string(),
            index: ((h >> 32) % u64::from(total)) as u32,
            at: day.and_hms_opt(2, 0, 0).unwrap_or_default().and_utc(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publication_dates_follow_the_calendar() {
        let keys: Vec<String> = (0..2000).map(|i| format!("时间线{i}")).collect();
        let annual: Vec<NaiveDate> = keys.iter().map(|k| published(7, k, 2024, false)).collect();
        let april = annual.iter().filter(|d| d.month() == 4).count() as f64 / 2000.0;
        let last_week = annual.iter().filter(|d| d.month() == 4 && d.day() >= 24).count() as f64 / 2000.0;
        assert!((0.55..0.75).contains(&april), "{april}");
        assert!((0.30..0.50).contains(&last_week), "{last_week}");
        let half: Vec<NaiveDate> = keys.iter().map(|k| published(7, k, 2024, true)).collect();
        let august = half.iter().filter(|d| d.month() == 8).count() as f64 / 2000.0;
        assert!(august > 0.9, "{august}");
        // A company keeps its date within a few days.
        for k in &keys[..50] {
            let a = published(7, k, 2023, false).ordinal() as i64;
            let b = published(7, k, 2024, false).ordinal() as i64;
            assert!((a - b).abs() <= 7, "{k}");
        }
        let disclosers = keys.iter().filter(|k| discloses_half_year(7, k)).count() as f64 / 2000.0;
        assert!((0.3..0.5).contains(&disclosers), "{disclosers}");
    }

    #[test]
    fn a_year_appears_with_its_first_report_and_shows_only_reports_out_by_then() {
        let t = Timeline::default();
        let key = (0..).map(|i| format!("出现{i}有限公司")).find(|k| discloses_half_year(3, k)).unwrap();
        let y = 2025;
        let before = visible(3, &key, y, true) - Duration::hours(1);
        let years = company_as_of(Profile::Annual, 3, &key, &t, before);
        assert!(years.iter().all(|ty| ty.year != "2025"), "nothing of 2025 before its half-year report");
        let after_half = visible(3, &key, y, true) + Duration::hours(1);
        if after_half < visible(3, &key, y, false) {
            let years = company_as_of(Profile::Annual, 3, &key, &t, after_half);
            let y2025 = years.iter().find(|ty| ty.year == "2025");
            assert!(y2025.is_none_or(|ty| ty.rows.iter().all(|r| r.half)));
        }
        let after = visible(3, &key, y, false) + Duration::hours(1);
        let years = company_as_of(Profile::Annual, 3, &key, &t, after);
        assert!(years.iter().any(|ty| ty.year == "2025"));
    }
}
