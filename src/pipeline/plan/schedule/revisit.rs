//! Which schedule a run keeps ([`Revisit`]: fixed, or adaptive with what the
//! database has seen) and the settings it is made from ([`Settings`], kept in
//! the run's summary so `status` and the dry run read the same).

use super::*;

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
                "revisit schedule: as often as each company's next report is likely, where its date is likely; \
                 at most {} unchecked (--max-staleness); a company without data once after each deadline and at \
                 most {} unchecked (--no-result-staleness); a deep check every {}",
                days(opts.max_staleness),
                days(opts.no_result_staleness),
                days(opts.deep_every)
            ),
        }
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
    /// `--no-result-staleness`, in seconds (summaries written before it
    /// existed read as the default).
    #[serde(default = "default_no_result_staleness")]
    pub no_result_staleness_seconds: i64,
    /// `--expected-date-column`.
    pub expected_date_column: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            refresh_after_seconds: None,
            max_staleness_seconds: ScheduleOptions::default().max_staleness.num_seconds(),
            no_result_staleness_seconds: default_no_result_staleness(),
            expected_date_column: None,
        }
    }
}

fn default_no_result_staleness() -> i64 {
    ScheduleOptions::default().no_result_staleness.num_seconds()
}

impl Settings {
    /// The shortest staleness bound: a day. A nightly run checks a company
    /// at most once a night; shorter would mean nothing more.
    pub const MIN_STALENESS_SECS: i64 = 86_400;
    /// The longest setting that means something: a century. Settings come
    /// back from a file's run summaries too, which a run of another version
    /// (or a hand) may have written, so they are held in range here and
    /// never make a date leave the calendar.
    const MAX_SECS: i64 = 36_500 * 86_400;

    pub fn refresh_after(&self) -> Option<Duration> {
        self.refresh_after_seconds.map(|s| Duration::seconds(s.clamp(0, Self::MAX_SECS)))
    }

    pub fn options(&self) -> ScheduleOptions {
        let bound = |secs: i64| Duration::seconds(secs.clamp(Self::MIN_STALENESS_SECS, Self::MAX_SECS));
        ScheduleOptions {
            max_staleness: bound(self.max_staleness_seconds),
            no_result_staleness: bound(self.no_result_staleness_seconds),
            ..ScheduleOptions::default()
        }
    }

    /// The schedule these settings make before anything is known.
    pub fn fresh(&self) -> Revisit {
        self.revisit_with(Calendar::default())
    }

    /// The schedule these settings make with the publication dates `calendar` holds.
    pub fn revisit_with(&self, calendar: Calendar) -> Revisit {
        match self.refresh_after() {
            Some(d) => Revisit::Fixed(d),
            None => {
                Revisit::Adaptive { opts: self.options(), calendar, booked_column: self.expected_date_column.clone() }
            }
        }
    }

    /// The schedule these settings make, with what `conn` has seen.
    pub fn revisit(&self, conn: &rusqlite::Connection, now: DateTime<Utc>) -> rusqlite::Result<Revisit> {
        Revisit::load(conn, self.refresh_after(), &self.options(), self.expected_date_column.clone(), now)
    }
}
