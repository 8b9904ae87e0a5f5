//! When to ask a company again: the revisit schedule (docs/design.md §4).
//!
//! A company's customer data changes when a report comes out: the annual
//! report by 30 April of the next year, the half-year report by 31 August.
//! So a check is worth paying for around the date a company's next period is
//! expected, and rarely otherwise. Pure functions over what the database
//! knows ([`History`], [`Calendar`]); no I/O and no clock of their own.
//!
//! Where the expected date comes from, best first: a booked date from the
//! input; the company's own date last year (when the database saw it appear
//! within a few days); the dates the database has seen across companies;
//! the statutory calendar. The more precise the source, the narrower and
//! denser the window. Around every window: a thinning tail after the
//! deadline, a hard staleness bound, and a deep check for companies of more
//! than one page.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

use crate::clock;
use crate::store::records::{CompanyHistory, CompanyState, PeriodRow};

mod forecast;
mod revisit;
#[cfg(test)]
mod tests;

pub use self::forecast::{forecast, Forecast};
pub use self::revisit::{Revisit, Settings};

/// The two kinds of report that disclose customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Season {
    /// `2023`: the annual report of 2023, due by 30 April 2024.
    Annual,
    /// `2023-06`: the half-year report of 2023, due by 31 August 2023.
    HalfYear,
}

impl Season {
    /// The season and report year of a period label (`2023`, `2023-06`).
    pub fn of(period: &str) -> Option<(Season, i32)> {
        let year: i32 = period.get(..4)?.parse().ok()?;
        match &period[4..] {
            "" => Some((Season::Annual, year)),
            "-06" => Some((Season::HalfYear, year)),
            _ => None,
        }
    }

    /// The statutory deadline of the report of `year`.
    pub fn deadline(self, year: i32) -> NaiveDate {
        match self {
            Season::Annual => NaiveDate::from_ymd_opt(year + 1, 4, 30),
            Season::HalfYear => NaiveDate::from_ymd_opt(year, 8, 31),
        }
        .unwrap_or(NaiveDate::MIN)
    }

    pub fn label(self, year: i32) -> String {
        match self {
            Season::Annual => year.to_string(),
            Season::HalfYear => format!("{year}-06"),
        }
    }
}

/// A period the database saw: first stored at `first_seen`; it appeared at
/// the vendor after `not_before` (the check before), or at an unknown time
/// when `None` (it was there at the company's first fetch).
#[derive(Debug, Clone)]
pub struct Sighting {
    pub period: String,
    pub first_seen: DateTime<Utc>,
    pub not_before: Option<DateTime<Utc>>,
}

/// A sighting is a publication date only when it was seen appearing
/// between two checks at most this far apart.
const PRECISE_GAP_DAYS: i64 = 10;

impl Sighting {
    /// When the period appeared, if the sighting says so precisely: the
    /// middle of the gap between the two checks.
    pub fn appeared(&self) -> Option<DateTime<Utc>> {
        let before = self.not_before?;
        let gap = self.first_seen - before;
        (gap <= Duration::days(PRECISE_GAP_DAYS)).then(|| before + gap / 2)
    }
}

/// What the database knows of one company.
#[derive(Debug, Clone)]
pub struct History<'a> {
    pub sightings: &'a [Sighting],
    /// The check that just ended (or the last one).
    pub last_check: DateTime<Utc>,
    /// The company has no data at all (201).
    pub no_result: bool,
    /// A publication date booked with the exchange, from the input.
    pub booked: Option<NaiveDate>,
    /// Pages the company's two latest report years take: a change in them
    /// past page 1 is what only a deep check sees.
    pub pages: u32,
    /// The last deep check, if there was one.
    pub last_deep: Option<DateTime<Utc>>,
    /// The company's first check: the first deep check is spread from it.
    pub first_check: DateTime<Utc>,
    /// Spreads the deep checks of companies fetched the same night.
    pub spread: u64,
}

/// The publication dates the database has seen across companies, as days
/// from each report's deadline (negative: before it), sorted.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    annual: Vec<i64>,
    half_year: Vec<i64>,
}

/// How far from its deadline a period's first sighting can be its
/// publication: a report comes out after its period ends (at most about
/// four months before the deadline) and, late or delayed by the vendor,
/// within months after it. A year either way is generous.
const PUBLISHED_WITHIN_DAYS: i64 = 366;

/// How many precise sightings a season needs before the database's own
/// distribution replaces the statutory calendar.
const LEARNED_AFTER: usize = 20;

impl Calendar {
    /// Learn from every company's precise sightings.
    pub fn learn<'a>(sightings: impl IntoIterator<Item = &'a Sighting>) -> Self {
        let mut cal = Calendar::default();
        for s in sightings {
            let (Some((season, year)), Some(at)) = (Season::of(&s.period), s.appeared()) else { continue };
            let days = (beijing_date(at) - season.deadline(year)).num_days();
            if days.abs() > PUBLISHED_WITHIN_DAYS {
                // Not a publication: an old period the vendor added later, or
                // a label that is no year. Learnt, it would pull the window
                // years away from the season.
                continue;
            }
            match season {
                Season::Annual => cal.annual.push(days),
                Season::HalfYear => cal.half_year.push(days),
            }
        }
        cal.annual.sort_unstable();
        cal.half_year.sort_unstable();
        cal
    }

    /// The learned days from the deadline at quantile `q`, when enough are known.
    fn quantile(&self, season: Season, q: f64) -> Option<i64> {
        let days = match season {
            Season::Annual => &self.annual,
            Season::HalfYear => &self.half_year,
        };
        (days.len() >= LEARNED_AFTER).then(|| days[((days.len() - 1) as f64 * q).round() as usize])
    }
}

#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    /// No company goes longer than this without a check.
    pub max_staleness: Duration,
    /// A company of more than one page is re-paged this often.
    pub deep_every: Duration,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        ScheduleOptions { max_staleness: Duration::days(60), deep_every: Duration::days(180) }
    }
}

/// Why a check is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Around the date the period is expected, from the company's own history.
    Usual(String),
    /// Around a booked publication date.
    Booked(String),
    /// Around the dates seen across companies, or the statutory calendar.
    Season(String),
    /// After the period's deadline, for late filers and the vendor's delay.
    Late(String),
    /// The staleness bound.
    Staleness,
    /// Re-page the latest report years: a change past page 1 is invisible
    /// to the check of page 1.
    Deep,
    /// `--refresh-after`.
    Fixed(Duration),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Usual(p) => write!(f, "usual date of {p}"),
            Reason::Booked(p) => write!(f, "booked date of {p}"),
            Reason::Season(p) => write!(f, "season of {p}"),
            Reason::Late(p) => write!(f, "after the deadline of {p}"),
            Reason::Staleness => write!(f, "staleness bound"),
            Reason::Fixed(d) => write!(f, "--refresh-after {}", days(*d)),
            Reason::Deep => write!(f, "{}", crate::store::write::DEEP_CHECK),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextCheck {
    pub at: DateTime<Utc>,
    pub reason: Reason,
}

impl Sighting {
    fn from_row(p: &PeriodRow) -> Option<Sighting> {
        Some(Sighting {
            period: p.period.clone(),
            first_seen: clock::parse_iso(&p.first_seen_at)?,
            not_before: p.not_before.as_deref().and_then(clock::parse_iso),
        })
    }
}

impl Calendar {
    /// Learn from the periods a database saw appearing.
    pub fn from_rows(rows: &[PeriodRow]) -> Calendar {
        let sightings: Vec<Sighting> = rows.iter().filter_map(Sighting::from_row).collect();
        Calendar::learn(&sightings)
    }
}

/// A booked publication date from the input row's `column`: `2026-04-25`,
/// `2026/4/25`, `20260425` or `2026年4月25日`.
pub fn booked_date(input_row: &str, column: &str) -> Option<NaiveDate> {
    let row: serde_json::Value = serde_json::from_str(input_row).ok()?;
    let text = row.get(column)?.as_str()?.trim();
    let digits: Vec<u32> =
        text.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty()).filter_map(|p| p.parse().ok()).collect();
    match digits.as_slice() {
        [y, m, d, ..] => NaiveDate::from_ymd_opt(*y as i32, *m, *d),
        [ymd] if text.len() == 8 => NaiveDate::from_ymd_opt((ymd / 10_000) as i32, ymd / 100 % 100, ymd % 100),
        _ => None,
    }
}

/// A duration as the flags give it: `7d`, or `36h`.
pub(crate) fn days(d: Duration) -> String {
    if d.num_seconds() % 86_400 == 0 {
        format!("{}d", d.num_days())
    } else {
        format!("{}h", d.num_hours())
    }
}

/// The longest gap between two checks that still dates a report: beyond
/// it, a year on, the statutory or learned calendar is looked at instead.
const DATED_GAP_DAYS: i64 = 120;

/// How long after a deadline a period is still looked for.
const TAIL: [i64; 3] = [3, 10, 30];

/// The next check of a company after `now` (the end of its last check).
pub fn next_check(h: &History<'_>, cal: &Calendar, opts: &ScheduleOptions, now: DateTime<Utc>) -> NextCheck {
    let mut best = NextCheck { at: h.last_check + opts.max_staleness, reason: Reason::Staleness };
    let mut consider = |at: DateTime<Utc>, reason: Reason| {
        if at > now && at < best.at {
            best = NextCheck { at, reason };
        }
    };
    if h.pages > 1 {
        // The first deep check of the companies fetched one night is spread
        // over the last five sixths of the interval (a first fetch has just
        // paged everything), so that no later night spikes.
        let due = match h.last_deep {
            Some(last) => last + opts.deep_every,
            None => {
                let interval = opts.deep_every.num_days().max(6);
                let earliest = interval / 6;
                h.first_check + Duration::days(earliest + (h.spread % (interval - earliest) as u64) as i64)
            }
        };
        consider(due.max(now + Duration::minutes(1)), Reason::Deep);
    }
    for season in [Season::Annual, Season::HalfYear] {
        let year = expected_year(h.sightings, season, now);
        let label = season.label(year);
        let deadline = season.deadline(year);
        // A company is watched densely for the half-year report when it
        // disclosed customers in the one before, lightly when it did in an
        // earlier year only (many do so in some years), not at all otherwise.
        let half = |y: Option<i32>| {
            h.sightings.iter().any(|s| {
                Season::of(&s.period).is_some_and(|(k, sy)| k == Season::HalfYear && y.is_none_or(|y| y == sy))
            })
        };
        let watched = !h.no_result && (season == Season::Annual || half(None));
        let light = season == Season::HalfYear && !half(Some(year - 1));
        for days in TAIL {
            consider(day_start(deadline + Duration::days(days)), Reason::Late(label.clone()));
            if !watched {
                // One look after the deadline is enough for what the company does not do.
                break;
            }
        }
        if !watched {
            continue;
        }
        for (day, reason) in window(h, cal, season, year, light) {
            consider(day_start(day), reason);
        }
    }
    best
}

/// The report year of the next period of `season` not yet seen, whose
/// deadline (with its tail) is not yet past: a period a company skipped is
/// not waited for.
fn expected_year(sightings: &[Sighting], season: Season, now: DateTime<Utc>) -> i32 {
    let today = beijing_date(now);
    let tail = Duration::days(TAIL[TAIL.len() - 1]);
    let latest =
        sightings.iter().filter_map(|s| Season::of(&s.period)).filter(|(s, _)| *s == season).map(|(_, y)| y).max();
    let mut year = match latest {
        Some(y) => y + 1,
        None => today.year() - 2,
    };
    while season.deadline(year) + tail < today {
        year += 1;
    }
    year
}

/// The days to check around the expected date of `season`'s report of `year`.
/// `light`: a third of the looks, for a report the company published in
/// some years only.
fn window(h: &History<'_>, cal: &Calendar, season: Season, year: i32, light: bool) -> Vec<(NaiveDate, Reason)> {
    let days = window_days(h, cal, season, year);
    if !light {
        return days;
    }
    days.into_iter().skip(1).step_by(3).collect()
}

fn window_days(h: &History<'_>, cal: &Calendar, season: Season, year: i32) -> Vec<(NaiveDate, Reason)> {
    let label = season.label(year);
    let deadline = season.deadline(year);
    let around = |centre: NaiveDate, reason: fn(String) -> Reason| -> Vec<(NaiveDate, Reason)> {
        // Nightly from the night before to two after, every other night on
        // the flanks (a company's date moves by a few days from one year to
        // the next), then thinning.
        [-3, -1, 0, 1, 2, 4, 7].iter().map(|d| (centre + Duration::days(*d), reason(label.clone()))).collect()
    };
    if let Some(booked) = h.booked.filter(|b| (*b - deadline).num_days().abs() <= 120) {
        return around(booked, Reason::Booked);
    }
    // The company's own date for the same report a year (or more) before.
    let own = h
        .sightings
        .iter()
        .filter_map(|s| {
            let (s_season, s_year) = Season::of(&s.period)?;
            // A precise sighting: the night a year on is the one that finds it.
            (s_season == season && s_year < year).then_some((s_year, s.appeared().map(|_| s.first_seen)?))
        })
        .max_by_key(|(y, _)| *y);
    let a_year_on = |at: DateTime<Utc>, seen_year: i32| {
        let date = beijing_date(at);
        date.with_year(date.year() + (year - seen_year)).unwrap_or(date)
    };
    if let Some((seen_year, at)) = own {
        return around(a_year_on(at, seen_year), Reason::Usual);
    }
    // Seen appearing, but between two checks far apart: every third day over
    // that gap a year on (a report that came out in January, before the
    // season, is looked for in January). A gap of more than a few months
    // (a long --refresh-after, an upgraded file) says nothing of the date:
    // the calendar below does better, at a bounded number of looks.
    let gap = h
        .sightings
        .iter()
        .filter_map(|s| {
            let (s_season, s_year) = Season::of(&s.period)?;
            let before = s.not_before?;
            let dated = s.first_seen - before <= Duration::days(DATED_GAP_DAYS);
            (s_season == season && s_year < year && dated).then_some((s_year, before, s.first_seen))
        })
        .max_by_key(|(y, _, _)| *y);
    if let Some((seen_year, before, seen)) = gap {
        let (from, to) = (a_year_on(before, seen_year), a_year_on(seen, seen_year));
        let mut days = Vec::new();
        let mut day = from + Duration::days(1);
        while day <= to + Duration::days(1) {
            days.push((day, Reason::Usual(label.clone())));
            day += Duration::days(3);
        }
        return days;
    }
    // Across companies, from the learned spread; else the statutory calendar.
    let (from, dense) = match (cal.quantile(season, 0.1), cal.quantile(season, 0.5)) {
        (Some(q10), Some(q50)) => (deadline + Duration::days(q10), deadline + Duration::days(q50.min(-1))),
        _ => match season {
            Season::Annual => (deadline - Duration::days(60), deadline - Duration::days(10)),
            Season::HalfYear => (deadline - Duration::days(45), deadline - Duration::days(10)),
        },
    };
    let mut days = Vec::new();
    let mut day = from;
    while day <= deadline + Duration::days(1) {
        days.push((day, Reason::Season(label.clone())));
        day = if day < dense { (day + Duration::days(4)).min(dense) } else { day + Duration::days(1) };
    }
    days
}

/// The start of a Beijing calendar day, in UTC: a nightly run on that day
/// (at any hour) finds the check due.
fn day_start(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    Utc.from_utc_datetime(&midnight) - Duration::hours(8)
}

fn beijing_date(t: DateTime<Utc>) -> NaiveDate {
    (t + Duration::hours(8)).date_naive()
}
