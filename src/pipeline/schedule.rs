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

/// Which schedule a run keeps, and what it needs to apply it.
#[derive(Debug, Clone)]
pub enum Revisit {
    /// `--refresh-after D`: every company is due D after its last fetch.
    Fixed(Duration),
    /// The revisit schedule (the default).
    Adaptive { opts: ScheduleOptions, calendar: Calendar, booked_column: Option<String> },
}

impl Revisit {
    /// A company's next check after the one that ended at `now`, and why.
    pub fn next(&self, h: &CompanyHistory, page_size: u32, now: DateTime<Utc>) -> NextCheck {
        match self {
            Revisit::Fixed(d) => NextCheck { at: now + *d, reason: Reason::Fixed(*d) },
            Revisit::Adaptive { opts, calendar, booked_column } => {
                let sightings: Vec<Sighting> = h.periods.iter().filter_map(Sighting::from_row).collect();
                let parse = |t: &Option<String>| t.as_deref().and_then(clock::parse_iso);
                let first = parse(&h.first_check_at).unwrap_or(now);
                let history = History {
                    sightings: &sightings,
                    last_check: parse(&h.last_check_at).unwrap_or(now).max(now),
                    no_result: h.state == CompanyState::NoResult,
                    booked: booked_column.as_deref().and_then(|c| booked_date(h.input_row.as_deref()?, c)),
                    pages: h
                        .latest_two_years_rows
                        .or(h.total_records)
                        .map_or(1, |t| t.div_ceil(u64::from(page_size.max(1))) as u32),
                    last_deep: parse(&h.deep_checked_at),
                    first_check: first,
                    spread: h
                        .search_key
                        .bytes()
                        .fold(0xcbf2_9ce4_8422_2325, |a, b| (a ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)),
                };
                next_check(&history, calendar, opts, now)
            }
        }
    }

    /// The schedule a run keeps: `--refresh-after`'s, or the revisit
    /// schedule with what the database has seen of publication dates in
    /// the last three years.
    pub fn load(
        conn: &rusqlite::Connection,
        refresh_after: Option<Duration>,
        opts: &ScheduleOptions,
        booked_column: Option<String>,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<Revisit> {
        if let Some(d) = refresh_after {
            return Ok(Revisit::Fixed(d));
        }
        let since = clock::iso(now - Duration::days(3 * 366));
        let seen = crate::store::read::observed_periods(conn, &since, PRECISE_GAP_DAYS)?;
        Ok(Revisit::Adaptive { opts: opts.clone(), calendar: Calendar::from_rows(&seen), booked_column })
    }

    /// What the run summary, `status` and the dry run say about it.
    pub fn describe(&self) -> String {
        match self {
            Revisit::Fixed(d) => format!("fixed: every company {} after its last fetch (--refresh-after)", days(*d)),
            Revisit::Adaptive { opts, .. } => format!(
                "revisit schedule: around each company's expected report dates, at most {} unchecked \
                 (--max-staleness), a deep check every {}",
                days(opts.max_staleness),
                days(opts.deep_every)
            ),
        }
    }
}

fn days(d: Duration) -> String {
    if d.num_seconds() % 86_400 == 0 {
        format!("{}d", d.num_days())
    } else {
        format!("{}h", d.num_hours())
    }
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

/// The schedule a run kept, as its summary records it: what `status` and
/// the dry run need to forecast with the same rules.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// `--refresh-after`, in seconds; `None`: the revisit schedule.
    pub refresh_after_seconds: Option<i64>,
    /// `--max-staleness`, in seconds.
    pub max_staleness_seconds: i64,
    /// `--expected-date-column`.
    pub expected_date_column: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            refresh_after_seconds: None,
            max_staleness_seconds: ScheduleOptions::default().max_staleness.num_seconds(),
            expected_date_column: None,
        }
    }
}

impl Settings {
    pub fn refresh_after(&self) -> Option<Duration> {
        self.refresh_after_seconds.map(Duration::seconds)
    }

    pub fn options(&self) -> ScheduleOptions {
        ScheduleOptions { max_staleness: Duration::seconds(self.max_staleness_seconds), ..ScheduleOptions::default() }
    }

    /// The schedule these settings make before anything is known.
    pub fn fresh(&self) -> Revisit {
        match self.refresh_after() {
            Some(d) => Revisit::Fixed(d),
            None => Revisit::Adaptive {
                opts: self.options(),
                calendar: Calendar::default(),
                booked_column: self.expected_date_column.clone(),
            },
        }
    }

    /// The schedule these settings make, with what `conn` has seen.
    pub fn revisit(&self, conn: &rusqlite::Connection, now: DateTime<Utc>) -> rusqlite::Result<Revisit> {
        Revisit::load(conn, self.refresh_after(), &self.options(), self.expected_date_column.clone(), now)
    }
}

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
            let night = ((due - now).num_seconds().max(0) + 86_399) / 86_400;
            if night >= days {
                return;
            }
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
    // season, is looked for in January).
    let gap = h
        .sightings
        .iter()
        .filter_map(|s| {
            let (s_season, s_year) = Season::of(&s.period)?;
            (s_season == season && s_year < year).then_some((s_year, s.not_before?, s.first_seen))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn seen(period: &str, first_seen: &str, gap_days: Option<i64>) -> Sighting {
        let first_seen = at(first_seen);
        Sighting { period: period.into(), first_seen, not_before: gap_days.map(|d| first_seen - Duration::days(d)) }
    }

    fn history<'a>(sightings: &'a [Sighting], last_check: &str) -> History<'a> {
        History {
            sightings,
            last_check: at(last_check),
            no_result: false,
            booked: None,
            pages: 1,
            last_deep: None,
            first_check: at(last_check),
            spread: 0,
        }
    }

    /// Every check from `from` to `until`, as a nightly job that takes each
    /// due check at 01:15 Beijing time and nothing ever changes would see them.
    fn checks(h: &History<'_>, cal: &Calendar, from: &str, until: &str) -> Vec<(NaiveDate, Reason)> {
        let opts = ScheduleOptions::default();
        let mut h = h.clone();
        let mut out = Vec::new();
        let mut now = at(from);
        while now < at(until) {
            let next = next_check(&h, cal, &opts, now);
            // The nightly run at or after it.
            let mut run = day_start(beijing_date(next.at)) + Duration::minutes(75);
            if run < next.at {
                run += Duration::days(1);
            }
            out.push((beijing_date(run), next.reason));
            h.last_check = run;
            now = run;
        }
        out
    }

    #[test]
    fn booked_dates_in_the_spellings_users_type() {
        let want = NaiveDate::from_ymd_opt(2026, 4, 25);
        for text in ["2026-04-25", "2026/4/25", "20260425", "2026年4月25日", " 2026-04-25 00:00:00"] {
            let row = serde_json::json!({ "预约披露日期": text }).to_string();
            assert_eq!(booked_date(&row, "预约披露日期"), want, "{text}");
        }
        assert_eq!(booked_date(r#"{"预约披露日期": ""}"#, "预约披露日期"), None);
    }

    #[test]
    fn periods_and_deadlines() {
        assert_eq!(Season::of("2023"), Some((Season::Annual, 2023)));
        assert_eq!(Season::of("2023-06"), Some((Season::HalfYear, 2023)));
        assert_eq!(Season::of("2023-12"), None);
        assert_eq!(Season::Annual.deadline(2023), NaiveDate::from_ymd_opt(2024, 4, 30).unwrap());
        assert_eq!(Season::HalfYear.deadline(2023), NaiveDate::from_ymd_opt(2023, 8, 31).unwrap());
    }

    #[test]
    fn a_company_with_its_own_date_is_checked_nightly_around_it_and_rarely_otherwise() {
        // Its 2024 annual report appeared around 20 April 2025.
        let s = [seen("2024", "2025-04-21T01:15:00Z", Some(2)), seen("2023", "2024-04-20T01:15:00Z", None)];
        let h = history(&s, "2025-05-01T01:15:00Z");
        let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-05-01T01:15:00Z");
        let usual: Vec<_> = year.iter().filter(|(_, r)| matches!(r, Reason::Usual(_))).map(|(d, _)| *d).collect();
        assert!(usual.contains(&NaiveDate::from_ymd_opt(2026, 4, 20).unwrap()), "{year:?}");
        assert!(usual.iter().all(|d| d.month() == 4), "{usual:?}");
        // Never more than 60 days apart, and under 20 checks in a year even
        // when the report never comes (the window stops once it does).
        for pair in year.windows(2) {
            assert!((pair[1].0 - pair[0].0).num_days() <= 60, "{year:?}");
        }
        assert!(year.len() < 20, "{} checks: {year:?}", year.len());
    }

    #[test]
    fn a_company_that_never_disclosed_half_year_customers_is_not_checked_densely_in_august() {
        let s = [seen("2024", "2025-04-21T01:15:00Z", Some(1))];
        let h = history(&s, "2025-05-01T01:15:00Z");
        let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-01-01T00:00:00Z");
        let half_year =
            |r: &Reason| matches!(r, Reason::Usual(p) | Reason::Season(p) | Reason::Late(p) if p.ends_with("-06"));
        assert_eq!(year.iter().filter(|(_, r)| half_year(r)).count(), 1, "one look after 31 August: {year:?}");
        assert!(year.iter().all(|(d, r)| !half_year(r) || *d > NaiveDate::from_ymd_opt(2025, 8, 31).unwrap()));
        // One that did is.
        let s = [seen("2024", "2025-04-21T01:15:00Z", Some(1)), seen("2024-06", "2024-08-27T01:15:00Z", Some(1))];
        let h = history(&s, "2025-05-01T01:15:00Z");
        let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-01-01T00:00:00Z");
        let august = year.iter().filter(|(d, _)| d.month() == 8).count();
        assert!(august >= 5, "{year:?}");
    }

    #[test]
    fn no_company_goes_longer_than_the_staleness_bound_unchecked() {
        let h = History { no_result: true, ..history(&[], "2025-01-10T01:15:00Z") };
        let year = checks(&h, &Calendar::default(), "2025-01-10T01:15:00Z", "2027-01-10T00:00:00Z");
        for pair in year.windows(2) {
            assert!((pair[1].0 - pair[0].0).num_days() <= 60, "{year:?}");
        }
        // A company without data: the bound and a look after each deadline.
        assert!(year.iter().any(|(d, r)| matches!(r, Reason::Late(_)) && d.month() == 5), "{year:?}");
        assert!(year.len() <= 16, "{year:?}");
    }

    #[test]
    fn a_booked_date_centres_the_window() {
        let s = [seen("2024", "2025-04-21T01:15:00Z", Some(1))];
        let booked = NaiveDate::from_ymd_opt(2026, 3, 28).unwrap();
        let h = History { booked: Some(booked), ..history(&s, "2025-05-01T01:15:00Z") };
        let year = checks(&h, &Calendar::default(), "2025-05-01T01:15:00Z", "2026-05-01T00:00:00Z");
        assert!(year.iter().any(|(d, r)| *d == booked && matches!(r, Reason::Booked(_))), "{year:?}");
    }

    #[test]
    fn without_any_history_the_statutory_calendar_covers_the_last_days_before_the_deadline_nightly() {
        let h = history(&[], "2025-12-01T01:15:00Z");
        let year = checks(&h, &Calendar::default(), "2025-12-01T01:15:00Z", "2026-05-10T00:00:00Z");
        for day in 20..=30 {
            let d = NaiveDate::from_ymd_opt(2026, 4, day).unwrap();
            assert!(year.iter().any(|(c, _)| *c == d), "{d}: {year:?}");
        }
    }

    #[test]
    fn a_multi_page_company_gets_a_deep_check_within_the_deep_interval() {
        let h = History { pages: 6, spread: 17, ..history(&[], "2025-06-01T01:15:00Z") };
        let year = checks(&h, &Calendar::default(), "2025-06-01T01:15:00Z", "2026-06-01T00:00:00Z");
        let first_deep = year.iter().find(|(_, r)| *r == Reason::Deep).map(|(d, _)| *d).unwrap();
        assert!(first_deep <= NaiveDate::from_ymd_opt(2025, 11, 28).unwrap(), "{year:?}");
    }

    #[test]
    fn the_learned_spread_replaces_the_statutory_calendar_once_enough_is_seen() {
        // Thirty companies seen publishing their 2024 reports 10 to 40 days before the deadline.
        let s: Vec<Sighting> = (0..30)
            .map(|i| {
                let day = at("2025-03-21T01:15:00Z") + Duration::days(i);
                Sighting { period: "2024".into(), first_seen: day, not_before: Some(day - Duration::days(1)) }
            })
            .collect();
        let cal = Calendar::learn(&s);
        assert_eq!(cal.quantile(Season::Annual, 0.5), Some(-26));
        let h = history(&[], "2025-12-01T01:15:00Z");
        let year = checks(&h, &cal, "2025-12-01T01:15:00Z", "2026-05-10T00:00:00Z");
        assert!(year.iter().any(|(d, _)| d.month() == 3 && d.day() >= 23), "{year:?}");
    }
}
