//! When to ask a company again: the revisit schedule (docs/design.md §4).
//!
//! A company's customer data changes when a report comes out: the annual
//! report by 30 April of the next year, the half-year report by 31 August.
//! So a check is worth paying for around the date a company's next period is
//! expected, and rarely otherwise. Pure functions over what the database
//! knows ([`History`], [`Calendar`]); no I/O and no clock of their own.
//!
//! For each company and period, [`model`] estimates how likely the report
//! is to come out at all (the company's own record) and on which day (a
//! booked date from the input; else the company's own date a year before,
//! moved by the drift seen across companies; else the dates seen across
//! companies; else the statutory calendar), and places checks where they cut
//! the expected delay most. Around that: a hard staleness bound, a deep
//! check for companies of more than one page, and for companies without any
//! data one look after each deadline and a bound of their own.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

use self::model::Density;
use crate::clock;
use crate::store::records::{CompanyHistory, CompanyState, PeriodRow};

mod forecast;
pub mod model;
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
/// from each report's deadline (negative: before it), sorted; and how far
/// companies' dates moved from one year to the next.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    annual: Vec<i64>,
    half_year: Vec<i64>,
    /// Days a company's date moved from a year to the next (same season).
    drift: Vec<i64>,
    /// The densities made from the above, once: annual, half-year, drift.
    made: Box<[std::sync::OnceLock<Density>; 3]>,
}

/// How far from its deadline a period's first sighting can be its
/// publication: a report comes out after its period ends (at most about
/// four months before the deadline) and, late or delayed by the vendor,
/// within months after it. A year either way is generous.
const PUBLISHED_WITHIN_DAYS: i64 = 366;

/// How many precise sightings a season needs before the database's own
/// distribution replaces the statutory calendar (and how many year-to-year
/// moves before the database's own drift replaces the default).
const LEARNED_AFTER: usize = 20;

/// A company's move from one year to the next is learnt once this many
/// days have passed since its date of the year before.
const DRIFT_SEEN_AFTER_DAYS: i64 = 14;

/// The share of the learned distributions in what the schedule uses; the
/// rest is the prior (statutory calendar, default drift), so that a day the
/// database has not seen yet is not impossible.
const LEARNED_SHARE: f64 = 0.9;

/// How long after a deadline a company without data is looked at: the night
/// by which this share of the reports the database saw were visible ...
const LATE_LOOK_QUANTILE: f64 = 0.98;
/// ... within these bounds (days after the deadline).
const LATE_LOOK_DAYS: (i64, i64) = (5, 10);

impl Calendar {
    /// Learn from every company's precise sightings, each season as if over.
    pub fn learn<'a>(sightings: impl IntoIterator<Item = &'a Sighting>) -> Self {
        Calendar::learn_companies(sightings.into_iter().enumerate().map(|(i, s)| (i as i64, s)), None)
    }

    /// Learn from precise sightings, each with its company: the dates, and
    /// how far each company's date moved between consecutive years.
    ///
    /// Only what a season that is over says, as of `today`: while a season
    /// runs, the reports seen so far are the early ones, and learnt they
    /// would pull the window before the mass of the season. A move is learnt
    /// once a month has passed since the company's date of the year before,
    /// so that late movers are not missing from it either. `None`: every
    /// season is over.
    pub fn learn_companies<'a>(
        sightings: impl IntoIterator<Item = (i64, &'a Sighting)>,
        today: Option<NaiveDate>,
    ) -> Self {
        let mut cal = Calendar::default();
        let over = |season: Season, year: i32, days: i64| {
            today.is_none_or(|t| season.deadline(year) + Duration::days(days) < t)
        };
        let mut dated: Vec<(i64, Season, i32, i64)> = Vec::new();
        for (company, s) in sightings {
            let (Some((season, year)), Some(at)) = (Season::of(&s.period), s.appeared()) else { continue };
            let days = (beijing_date(at) - season.deadline(year)).num_days();
            if days.abs() > PUBLISHED_WITHIN_DAYS {
                // Not a publication: an old period the vendor added later, or
                // a label that is no year. Learnt, it would pull the window
                // years away from the season.
                continue;
            }
            dated.push((company, season, year, days));
            if !over(season, year, TAIL_DAYS) {
                continue;
            }
            match season {
                Season::Annual => cal.annual.push(days),
                Season::HalfYear => cal.half_year.push(days),
            }
        }
        dated.sort_unstable_by_key(|(c, s, y, _)| (*c, *s == Season::HalfYear, *y));
        for pair in dated.windows(2) {
            let ((c0, s0, y0, d0), (c1, s1, y1, d1)) = (pair[0], pair[1]);
            if c0 == c1 && s0 == s1 && y1 == y0 + 1 && over(s1, y1, d0 + DRIFT_SEEN_AFTER_DAYS) {
                cal.drift.push(d1 - d0);
            }
        }
        cal.annual.sort_unstable();
        cal.half_year.sort_unstable();
        cal.drift.sort_unstable();
        cal
    }

    fn days(&self, season: Season) -> &[i64] {
        match season {
            Season::Annual => &self.annual,
            Season::HalfYear => &self.half_year,
        }
    }

    /// The learned days from the deadline at quantile `q`, when enough are known.
    #[cfg(test)]
    fn quantile(&self, season: Season, q: f64) -> Option<i64> {
        let days = self.days(season);
        (days.len() >= LEARNED_AFTER).then(|| days[((days.len() - 1) as f64 * q).round() as usize])
    }

    /// On which day (from the deadline) a report of `season` becomes visible,
    /// for a company with no date of its own.
    pub fn density(&self, season: Season) -> &Density {
        let slot = match season {
            Season::Annual => &self.made[0],
            Season::HalfYear => &self.made[1],
        };
        slot.get_or_init(|| {
            let prior = model::statutory(season);
            match model::Density::from_days(self.days(season)) {
                Some(learned) if self.days(season).len() >= LEARNED_AFTER => learned.mix(LEARNED_SHARE, &prior),
                _ => prior,
            }
        })
    }

    /// How far a company's date moves from one year to the next.
    pub fn drift(&self) -> &Density {
        self.made[2].get_or_init(|| {
            let prior = model::default_drift();
            match model::Density::from_days(&self.drift) {
                Some(learned) if self.drift.len() >= LEARNED_AFTER => learned.mix(LEARNED_SHARE, &prior),
                _ => prior,
            }
        })
    }

    /// Days after the deadline of `season` by which nearly every report is
    /// visible: when a company without data is looked at.
    pub fn late_look(&self, season: Season) -> i64 {
        let (lo, hi) = LATE_LOOK_DAYS;
        (self.density(season).quantile(LATE_LOOK_QUANTILE) + 1).clamp(lo, hi)
    }
}

#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    /// No company with data goes longer than this without a check.
    pub max_staleness: Duration,
    /// No company without data (201) goes longer than this without a check.
    pub no_result_staleness: Duration,
    /// A company of more than one page is re-paged this often.
    pub deep_every: Duration,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        ScheduleOptions {
            max_staleness: Duration::days(60),
            no_result_staleness: Duration::days(365),
            deep_every: Duration::days(180),
        }
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

impl Reason {
    /// A deep check re-pages the company's latest report years.
    pub fn is_deep(&self) -> bool {
        matches!(self, Reason::Deep)
    }
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
            Reason::Deep => write!(f, "deep check"),
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
    /// Learn from the periods a database saw appearing, each with its
    /// company, as of the latest of them: what is over is judged by the
    /// data, not the clock, so nights that find nothing new keep the same
    /// calendar (and the forecast of such nights stays exact).
    pub fn from_rows(rows: &[(i64, PeriodRow)]) -> Calendar {
        let sightings: Vec<(i64, Sighting)> =
            rows.iter().filter_map(|(c, p)| Some((*c, Sighting::from_row(p)?))).collect();
        let latest = sightings.iter().map(|(_, s)| beijing_date(s.first_seen)).max();
        Calendar::learn_companies(sightings.iter().map(|(c, s)| (*c, s)), Some(latest.unwrap_or(NaiveDate::MIN)))
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

/// How long after a deadline a period is still looked for: the windows end
/// by then, and the next year's report is expected instead.
const TAIL_DAYS: i64 = 30;

/// The next check of a company after `now` (the end of its last check).
pub fn next_check(h: &History<'_>, cal: &Calendar, opts: &ScheduleOptions, now: DateTime<Utc>) -> NextCheck {
    let bound = if h.no_result { opts.no_result_staleness } else { opts.max_staleness };
    let stale_at = h.last_check + bound;
    let mut best = NextCheck { at: stale_at, reason: Reason::Staleness };
    let mut consider = |at: DateTime<Utc>, reason: Reason| {
        if at > now && at < best.at {
            best = NextCheck { at, reason };
        }
    };
    let deep_due = (h.pages > 1).then(|| {
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
        due.max(now + Duration::minutes(1))
    });
    if let Some(due) = deep_due {
        consider(due, Reason::Deep);
    }
    // A look after a deadline that the staleness check serves: the label it goes by.
    let mut served = None;
    for season in [Season::Annual, Season::HalfYear] {
        let year = expected_year(h.sightings, season, now);
        match planned(h, cal, season, year) {
            Planned::Look(day, label) => {
                let at = day_start(day);
                // The staleness check comes within the month after the look
                // anyway: it is the look, and nothing is added.
                if at < stale_at && stale_at <= at + Duration::days(LOOK_SERVED_WITHIN_DAYS) {
                    served = Some(label);
                } else {
                    consider(at, Reason::Late(label));
                }
            }
            Planned::Window(days) => {
                for (day, reason) in days {
                    consider(day_start(day), reason);
                }
            }
        }
    }
    if let (Reason::Staleness, Some(label)) = (&best.reason, served) {
        best.reason = Reason::Late(label);
    }
    // A check due anyway within the weeks before the deep check is made the
    // deep one: it re-pages what a check would page and more, and the
    // separate call for page 1 is saved.
    if deep_due.is_some_and(|due| best.at + Duration::days(DEEP_EARLY_DAYS) >= due) {
        best.reason = Reason::Deep;
    }
    best
}

/// How much earlier than due a deep check may come, made of a check that is
/// due anyway.
const DEEP_EARLY_DAYS: i64 = 30;

/// A look after a deadline is served by a staleness check this many days
/// after it: the report was never published before, and a month late is
/// the price of not paying a check for it.
const LOOK_SERVED_WITHIN_DAYS: i64 = 30;

/// What a period gets.
enum Planned {
    /// One look after the deadline (on this day), for a report that is
    /// unlikely, or for a company without data.
    Look(NaiveDate, String),
    /// Checks where the report's date is likely.
    Window(Vec<(NaiveDate, Reason)>),
}

/// The checks for `season`'s report of `year`: a company without data is
/// looked at once after the deadline; one with data as likely as the
/// report is, where its date is likely to fall.
fn planned(h: &History<'_>, cal: &Calendar, season: Season, year: i32) -> Planned {
    let label = season.label(year);
    let deadline = season.deadline(year);
    let likelihood = model::likelihood(h.sightings, season, year);
    if h.no_result || likelihood < model::WINDOW_FROM {
        // One look after the deadline is enough for what the company does not do.
        return Planned::Look(deadline + Duration::days(cal.late_look(season)), label);
    }
    let calendar = cal.density(season);
    // The company's own evidence, and the nights it covers: a check there
    // is for it, a check elsewhere for the calendar's share.
    let (density, own, reason): (Density, Option<(i64, i64)>, ReasonOf) = match own_date(h, cal, season, year) {
        Some(Own::Booked(at)) => (at.mix(model::BOOKED_SHARE, calendar), Some(at.span()), Reason::Booked),
        Some(Own::Seen(at)) => (at.mix(model::OWN_SHARE, calendar), Some(at.span()), Reason::Usual),
        None => (calendar.clone(), None, Reason::Season),
    };
    // Nothing is looked for before the period ends, nor after the tail.
    let ends = match season {
        Season::Annual => NaiveDate::from_ymd_opt(year + 1, 1, 1),
        Season::HalfYear => NaiveDate::from_ymd_opt(year, 7, 1),
    }
    .map_or(-180, |d| (d - deadline).num_days());
    let density = density.within(ends, TAIL_DAYS - 1);
    let days = model::place(&density, likelihood)
        .into_iter()
        .map(|night| {
            let day = deadline + Duration::days(night);
            let r = match own {
                Some((from, to)) if (from..=to + 1).contains(&night) => reason(label.clone()),
                _ if night > 0 => Reason::Late(label.clone()),
                _ => Reason::Season(label.clone()),
            };
            (day, r)
        })
        .collect();
    Planned::Window(days)
}

/// The company's own evidence of when `season`'s report of `year` becomes
/// visible: a booked date, or the days it was seen appearing in an earlier
/// year (moved by the drift across companies).
fn own_date(h: &History<'_>, cal: &Calendar, season: Season, year: i32) -> Option<Own> {
    let deadline = season.deadline(year);
    if let Some(booked) = h.booked.filter(|b| (*b - deadline).num_days().abs() <= 120) {
        let at = Density { first: (booked - deadline).num_days(), mass: vec![1.0] };
        return Some(Own::Booked(at.convolve(&model::booking_error())));
    }
    // The latest earlier year it was seen appearing between two checks at
    // most a few months apart (a gap of years says nothing of the date).
    let (seen_year, before, seen) = h
        .sightings
        .iter()
        .filter_map(|s| {
            let (s_season, s_year) = Season::of(&s.period)?;
            let before = s.not_before?;
            let dated = s.first_seen - before <= Duration::days(DATED_GAP_DAYS);
            (s_season == season && s_year < year && dated).then_some((s_year, before, s.first_seen))
        })
        .max_by_key(|(y, _, _)| *y)?;
    // Days from that year's deadline: it became visible after the check
    // before (on that night's day or later) and by the day before the check
    // that found it.
    let then = season.deadline(seen_year);
    let from = (beijing_date(before) - then).num_days();
    let to = ((beijing_date(seen) - then).num_days() - 1).max(from);
    if from.abs() > PUBLISHED_WITHIN_DAYS || to.abs() > PUBLISHED_WITHIN_DAYS {
        // Seen years from its deadline: the vendor added an old period, or
        // the label is no year; it says nothing of the company's date.
        return None;
    }
    // Moved by the drift once per year between, widened for each further year.
    let mut own = Density { first: from, mass: vec![1.0; (to - from + 1) as usize] }.within(from, to);
    for _ in 0..(year - seen_year).clamp(1, 3) {
        own = own.convolve(cal.drift());
    }
    Some(Own::Seen(own))
}

/// Which reason a check of a window gives, from the period's label.
type ReasonOf = fn(String) -> Reason;

/// A company's own evidence of a report's date, as days from its deadline.
enum Own {
    /// Around a booked date.
    Booked(Density),
    /// Around the days it was seen appearing in an earlier year.
    Seen(Density),
}

/// The report year of the next period of `season` not yet seen, whose
/// deadline (with its tail) is not yet past: a period a company skipped is
/// not waited for.
fn expected_year(sightings: &[Sighting], season: Season, now: DateTime<Utc>) -> i32 {
    let today = beijing_date(now);
    let tail = Duration::days(TAIL_DAYS);
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

/// The start of a Beijing calendar day, in UTC: a nightly run on that day
/// (at any hour) finds the check due.
fn day_start(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    Utc.from_utc_datetime(&midnight) - Duration::hours(8)
}

fn beijing_date(t: DateTime<Utc>) -> NaiveDate {
    (t + Duration::hours(8)).date_naive()
}
