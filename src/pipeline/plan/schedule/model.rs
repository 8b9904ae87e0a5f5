//! Where the checks for one report go (docs/design.md §4, "the model").
//!
//! Two estimates per company and period, both from what the database knows:
//!
//! * [`likelihood`]: how likely the period is to come out at all, from the
//!   company's own record of the same kind of report in the last four years;
//! * a [`Density`]: on which day it would become visible, from the best
//!   evidence there is — a booked date, the company's own date a year before
//!   (moved by the year-to-year drift seen across companies), else the dates
//!   seen across companies, else the statutory calendar.
//!
//! [`place`] then puts checks on the nights that cut the expected delay
//! most, one at a time, while a check still saves at least
//! [`DAYS_PER_CHECK`] days of expected delay (weighted by the likelihood):
//! dense where the mass is, sparse on the flanks, few for an unlikely report.

use super::{Season, Sighting};

/// A check is worth placing when it saves at least this many days of
/// expected delay, weighted by the likelihood of the report.
pub const DAYS_PER_CHECK: f64 = 0.2;

/// Below this likelihood (a report the company never published) a period
/// gets one look after its deadline, no window.
pub const WINDOW_FROM: f64 = 0.08;

/// The share of a company's own date a year before in where its date is
/// expected; the rest is the cross-company calendar, for a company whose
/// date moved more than the drift seen across companies.
pub const OWN_SHARE: f64 = 0.95;
/// A booked date is held to by the exchange, and a user refreshing the
/// column follows its changes: the window is its own, with no calendar share.
pub const BOOKED_SHARE: f64 = 1.0;

/// How many years of a company's record [`likelihood`] reads.
const RECORD_YEARS: i32 = 4;

/// How often a company that has published a kind of report at least once
/// publishes it in a given year, before its own record says more: annual
/// reports nearly always, half-year reports naming customers about every
/// other year. Weighs as one year of the company's own record.
const BASE_RATE: [(Season, f64); 2] = [(Season::Annual, 0.9), (Season::HalfYear, 0.6)];

/// How likely a company is to start publishing a kind of report it never has.
const NEVER_RATE: f64 = 0.05;

/// How likely the report of `season` for `year` is to come out, from the
/// company's periods: of the last four years its record covers, the share
/// that had the same report, last year counted twice, with the base rate
/// counted as one more year. A company that never published it: 5 %. A
/// company seen disclosing half-year customers is expected to disclose
/// annual ones at least even odds.
pub fn likelihood(sightings: &[Sighting], season: Season, year: i32) -> f64 {
    let periods: Vec<(Season, i32)> = sightings.iter().filter_map(|s| Season::of(&s.period)).collect();
    let half_lately = periods.iter().any(|(s, y)| *s == Season::HalfYear && *y >= year - 1);
    let floor = if season == Season::Annual && half_lately { 0.5 } else { 0.0 };
    let Some(first) = periods.iter().map(|(_, y)| *y).min() else { return NEVER_RATE };
    if !periods.iter().any(|(s, y)| *s == season && *y < year) {
        return NEVER_RATE.max(floor);
    }
    let (mut had, mut of) = (0.0, 0.0);
    for back in 1..=RECORD_YEARS {
        let y = year - back;
        if y < first {
            break;
        }
        let weight = if back == 1 { 2.0 } else { 1.0 };
        of += weight;
        if periods.contains(&(season, y)) {
            had += weight;
        }
    }
    let base = BASE_RATE.iter().find(|(s, _)| *s == season).map_or(0.5, |(_, r)| *r);
    ((had + base) / (of + 1.0)).max(floor)
}

/// Probability mass per day: `mass[i]` is the chance the report becomes
/// visible on day `first + i` (days from the deadline). Sums to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Density {
    pub first: i64,
    pub mass: Vec<f64>,
}

impl Density {
    /// Spread evenly over `from..=to`, each day of it weighted by `w`.
    fn from_spans(spans: &[(i64, i64, f64)]) -> Density {
        let first = spans.iter().map(|s| s.0).min().unwrap_or(0);
        let last = spans.iter().map(|s| s.1).max().unwrap_or(0);
        let mut mass = vec![0.0; (last - first + 1) as usize];
        for (from, to, w) in spans {
            let each = w / (to - from + 1) as f64;
            for d in *from..=*to {
                mass[(d - first) as usize] += each;
            }
        }
        Density { first, mass }.normalised()
    }

    /// From days (with repeats) seen: each day one share.
    pub fn from_days(days: &[i64]) -> Option<Density> {
        let (first, last) = (*days.iter().min()?, *days.iter().max()?);
        let mut mass = vec![0.0; (last - first + 1) as usize];
        for d in days {
            mass[(d - first) as usize] += 1.0;
        }
        Some(Density { first, mass }.normalised())
    }

    /// The first and last day with mass.
    pub fn span(&self) -> (i64, i64) {
        (self.first, self.last())
    }

    fn last(&self) -> i64 {
        self.first + self.mass.len() as i64 - 1
    }

    fn at(&self, day: i64) -> f64 {
        if day < self.first {
            return 0.0;
        }
        self.mass.get((day - self.first) as usize).copied().unwrap_or(0.0)
    }

    /// Summing to one, without days of no mass at either end (a check
    /// after the last day with mass would find nothing).
    fn normalised(mut self) -> Density {
        let last = self.mass.iter().rposition(|m| *m > 0.0).unwrap_or(0);
        self.mass.truncate(last + 1);
        let first = self.mass.iter().position(|m| *m > 0.0).unwrap_or(0);
        self.mass.drain(..first);
        self.first += first as i64;
        let total: f64 = self.mass.iter().sum();
        if total > 0.0 {
            self.mass.iter_mut().for_each(|m| *m /= total);
        }
        self
    }

    /// `self` shifted by each offset of `by` (the sum of the two days).
    pub fn convolve(&self, by: &Density) -> Density {
        let first = self.first + by.first;
        let mut mass = vec![0.0; self.mass.len() + by.mass.len() - 1];
        for (i, a) in self.mass.iter().enumerate() {
            for (j, b) in by.mass.iter().enumerate() {
                mass[i + j] += a * b;
            }
        }
        Density { first, mass }.normalised()
    }

    /// `w` of `self` and `1 - w` of `other`.
    pub fn mix(&self, w: f64, other: &Density) -> Density {
        let first = self.first.min(other.first);
        let last = self.last().max(other.last());
        let mass = (first..=last).map(|d| w * self.at(d) + (1.0 - w) * other.at(d)).collect();
        Density { first, mass }.normalised()
    }

    /// Only the days `from..=to`, the rest of the mass dropped.
    pub fn within(&self, from: i64, to: i64) -> Density {
        let (first, last) = (self.first.max(from), self.last().min(to));
        if first > last {
            return Density { first: to, mass: vec![1.0] };
        }
        let mass = (first..=last).map(|d| self.at(d)).collect();
        Density { first, mass }.normalised()
    }

    /// The day by which the share `q` of the mass is visible.
    pub fn quantile(&self, q: f64) -> i64 {
        let mut sum = 0.0;
        for (i, m) in self.mass.iter().enumerate() {
            sum += m;
            if sum >= q - 1e-9 {
                return self.first + i as i64;
            }
        }
        self.last()
    }
}

/// When reports become visible, from public samples of listed companies,
/// as spans of days from the deadline and their shares: annual reports 8 %
/// on the deadline, 40 % in its last week, 55 % in the last two, 65 % in
/// April, most of the rest in March, a few in January and February and 2 %
/// late; half-year reports 66 % in the last week of August, 85 % in the last
/// two, 96 % in August. The vendor shows a report a few days after it comes
/// out: up to five days, most on the first.
pub fn statutory(season: Season) -> Density {
    let published = match season {
        Season::Annual => Density::from_spans(&[
            (-119, -61, 0.06),
            (-60, -30, 0.28),
            (-29, -14, 0.09),
            (-13, -7, 0.15),
            (-6, -1, 0.32),
            (0, 0, 0.08),
            (1, 20, 0.02),
        ]),
        Season::HalfYear => Density::from_spans(&[(-61, -31, 0.04), (-30, -14, 0.11), (-13, -7, 0.19), (-6, 0, 0.66)]),
    };
    published.convolve(&vendor_delay())
}

/// The days between a report coming out and the vendor showing it, before
/// the database has learned the season: up to five days, most on the first.
fn vendor_delay() -> Density {
    Density { first: 0, mass: vec![0.35, 0.25, 0.15, 0.1, 0.1, 0.05] }
}

/// How a company's date moves from one year to the next before the database
/// has seen enough companies move: its publication by a few days and the
/// vendor's delay by a few more, so the difference of two draws of up to
/// four days either way (at most eight, most near none).
pub fn default_drift() -> Density {
    let few = Density::from_spans(&[(-4, 4, 1.0)]);
    few.convolve(&few)
}

/// How far a booked date is from the day the vendor shows the report: the
/// company keeps its booking within a couple of days, and the vendor adds its
/// delay.
pub fn booking_error() -> Density {
    Density::from_spans(&[(-2, 2, 1.0)]).convolve(&vendor_delay())
}

/// The nights (days from the deadline) to check for a report of `density`
/// and `likelihood`: a check on night `c` finds what became visible on a day
/// before `c`. The last night, the day after the density's last day, finds
/// everything. Before it, checks are added one at a time while one more
/// check (placed where it cuts the expected delay most, then every check
/// moved to its best night between its neighbours) cuts the expected delay,
/// times the likelihood, by at least [`DAYS_PER_CHECK`].
pub fn place(density: &Density, likelihood: f64) -> Vec<i64> {
    // A pure function of its inputs, asked again for every company of the
    // same shape (and for every night of a forecast): remembered.
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    static PLACED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<u64, Vec<i64>>>> =
        std::sync::OnceLock::new();
    let mut key = DefaultHasher::new();
    (density.first, likelihood.to_bits()).hash(&mut key);
    density.mass.iter().for_each(|m| m.to_bits().hash(&mut key));
    let key = key.finish();
    let cache = PLACED.get_or_init(Default::default);
    if let Some(nights) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return nights;
    }
    let nights = place_uncached(density, likelihood);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= PLACED_KEPT {
            c.clear();
        }
        c.insert(key, nights.clone());
    }
    nights
}

/// How many placements [`place`] remembers before it starts again.
const PLACED_KEPT: usize = 100_000;

fn place_uncached(density: &Density, likelihood: f64) -> Vec<i64> {
    let delays = Delays::of(density);
    // Checks as indices into the days: a check at c finds days before c.
    let mut checks: Vec<usize> = vec![delays.n];
    let mut cost = delays.total(&checks);
    while checks.len() < MAX_CHECKS {
        let Some(c) = delays.best_addition(&checks) else { break };
        let mut more = checks.clone();
        more.insert(more.partition_point(|x| *x < c), c);
        delays.refine(&mut more);
        let more_cost = delays.total(&more);
        if (cost - more_cost) * likelihood < DAYS_PER_CHECK {
            break;
        }
        (checks, cost) = (more, more_cost);
    }
    checks.into_iter().map(|c| density.first + c as i64).collect()
}

/// The most checks one report gets (a nightly month).
const MAX_CHECKS: usize = 31;

/// Prefix sums of a density for the expected delay of check placements.
struct Delays {
    n: usize,
    /// mass[..x]
    p: Vec<f64>,
    /// Σ day·mass over [..x] (day as an index)
    q: Vec<f64>,
}

impl Delays {
    fn of(density: &Density) -> Delays {
        let n = density.mass.len();
        let (mut p, mut q) = (vec![0.0; n + 1], vec![0.0; n + 1]);
        for (i, m) in density.mass.iter().enumerate() {
            p[i + 1] = p[i] + m;
            q[i + 1] = q[i] + i as f64 * m;
        }
        Delays { n, p, q }
    }

    /// The expected delay of days `from..to` found by a check at `to`.
    fn segment(&self, from: usize, to: usize) -> f64 {
        to as f64 * (self.p[to] - self.p[from]) - (self.q[to] - self.q[from])
    }

    fn total(&self, checks: &[usize]) -> f64 {
        let mut from = 0;
        checks
            .iter()
            .map(|&to| {
                let cost = self.segment(from, to);
                from = to;
                cost
            })
            .sum()
    }

    /// The night that cuts the expected delay most when added to `checks`.
    fn best_addition(&self, checks: &[usize]) -> Option<usize> {
        let mut best: Option<(f64, usize)> = None;
        let mut from = 0;
        for &to in checks {
            for c in from + 1..to {
                let cut = self.segment(from, to) - self.segment(from, c) - self.segment(c, to);
                if best.is_none_or(|(b, _)| cut > b) {
                    best = Some((cut, c));
                }
            }
            from = to;
        }
        best.map(|(_, c)| c)
    }

    /// Move each check but the last to its best night between its
    /// neighbours, until none moves (each move lowers the total, so this ends).
    fn refine(&self, checks: &mut [usize]) {
        for _ in 0..MAX_CHECKS {
            let mut moved = false;
            for i in 0..checks.len().saturating_sub(1) {
                let from = if i == 0 { 0 } else { checks[i - 1] };
                let to = checks[i + 1];
                let cost = |c: usize| self.segment(from, c) + self.segment(c, to);
                let mut best = checks[i];
                for c in from + 1..to {
                    if cost(c) < cost(best) - 1e-12 {
                        best = c;
                    }
                }
                moved |= best != checks[i];
                checks[i] = best;
            }
            if !moved {
                break;
            }
        }
    }
}

/// The expected delay, in days, of a report of `density` under checks on
/// `nights` (sorted): for the model's documentation and tests.
pub fn expected_delay(density: &Density, nights: &[i64]) -> f64 {
    density
        .mass
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let day = density.first + i as i64;
            nights.iter().find(|c| **c > day).map_or(0.0, |c| (c - day) as f64 - 0.5) * m
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_go_where_the_mass_is() {
        let annual = statutory(Season::Annual);
        let nights = place(&annual, 0.95);
        let in_last_week = nights.iter().filter(|c| (-7..=3).contains(*c)).count();
        let in_february = nights.iter().filter(|c| (-89..=-61).contains(*c)).count();
        assert!(in_last_week >= 3, "{nights:?}");
        assert!(in_february <= 2, "{nights:?}");
        let delay = expected_delay(&annual, &nights);
        assert!(delay < 4.0, "{delay} with {} checks: {nights:?}", nights.len());
    }

    #[test]
    fn an_unlikely_report_gets_fewer_checks_and_a_certain_one_more() {
        let annual = statutory(Season::Annual);
        let (few, many) = (place(&annual, 0.3), place(&annual, 0.95));
        assert!(few.len() < many.len(), "{few:?} vs {many:?}");
    }

    #[test]
    fn an_own_date_needs_a_handful_of_checks() {
        let own = Density::from_spans(&[(-10, -10, 1.0)]).convolve(&default_drift()).convolve(&vendor_delay());
        let nights = place(&own, 0.95);
        assert!((2..=8).contains(&nights.len()), "{nights:?}");
        assert!(expected_delay(&own, &nights) < 2.0);
    }

    #[test]
    fn likelihood_follows_the_companys_record() {
        let s = |p: &str| Sighting { period: p.into(), first_seen: chrono::Utc::now(), not_before: None };
        let every = [s("2022"), s("2023"), s("2024")];
        let skipped_last = [s("2021"), s("2022"), s("2023")];
        let alternate = [s("2020"), s("2022"), s("2024")];
        let lapsed = [s("2020"), s("2021"), s("2022")];
        let p = |had: &[Sighting]| likelihood(had, Season::Annual, 2025);
        assert!(p(&every) > 0.9);
        assert!(p(&skipped_last) < 0.75);
        assert!(p(&lapsed) < p(&skipped_last));
        assert!((0.4..0.8).contains(&p(&alternate)), "{}", p(&alternate));
        assert!(likelihood(&every, Season::HalfYear, 2025) < WINDOW_FROM);
        assert!(likelihood(&[], Season::Annual, 2025) < WINDOW_FROM);
    }
}
