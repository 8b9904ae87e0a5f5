//! `rebuild`: re-derive the customer rows, and their history, from the
//! receipts in `raw_pages`, without any call.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::{params, Transaction};

use super::customers::{company_id, Codebook};
use super::history::{self, rows_of_pages, When};
use super::receipt::Reader;
use super::records::{Query, YearState};
use crate::qcc::ClientRow;

/// What `rebuild` did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Rebuilt {
    pub years: u64,
    pub rows: u64,
    /// Years mid-fetch (partial): their stored rows were left as they are.
    pub partial_years_kept: u64,
    /// Years with a missing or unreadable receipt (e.g. `--no-archive`): kept.
    pub years_without_receipts: u64,
    /// Years whose rows the receipts read differently from what the file
    /// held (a parser fix, or a damaged file): they now read as the receipts say.
    pub years_corrected: u64,
    /// Fetches of a unit replayed from its receipts, oldest first: each one
    /// the state of its unit at the time of its last receipt.
    pub fetches_replayed: u64,
    /// The history the replay made, by kind (each fetch's changes against
    /// the one before it).
    pub changes: super::history::Changes,
}

/// Re-derive `customers` and its history from `raw_pages` in one
/// transaction, parsed exactly as a run parses them.
///
/// A unit is a year paged per year (complete or truncated), or a company's
/// complete listing (for the years that came from it, with receipts stored
/// no later than it was completed, so a later discovery call does not mix
/// into it). Its receipts are grouped into fetches: a receipt of page 1
/// starts one, and the unit's other pages stored after it belong to it. A
/// fetch that holds page 1 alone, of a unit that had more pages, was a
/// check that found nothing new (a run stores only its receipt), and is
/// passed over. The unit's history from its first receipt on is undone and
/// its fetches are replayed in order, as a run stores them: the first one's
/// rows each at the time its page was stored, a later one's at the time of
/// its last receipt. Several receipts of a page over time are its versions. History older
/// than the unit's receipts is kept.
///
/// The last fetch must hold the pages the unit's checkpoint counts; else
/// the newest receipt of each of them is the unit's state now. A unit with
/// a missing or unreadable receipt of those pages is left as it is.
/// `parse` reads a receipt's body as received; receipts of every kind
/// (zlib, zstd, against any of the file's dictionaries) are read here.
pub fn rebuild(
    tx: &Transaction<'_>,
    now: &str,
    parse: impl Fn(&[u8]) -> Option<Vec<ClientRow>>,
) -> rusqlite::Result<Rebuilt> {
    let mut replay = Replay {
        tx,
        reader: super::dictionaries::reader(tx)?,
        codes: Codebook::load(tx)?,
        parse: &parse,
        runs: tx
            .prepare("SELECT started_at, run_id FROM runs ORDER BY started_at, run_id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?,
        now,
        out: Rebuilt::default(),
    };
    // Every version is made again: the reverse indexes are built once, at the end.
    let versions: i64 = tx.query_row("SELECT COALESCE(MAX(version_id), 0) FROM disclosure", [], |r| r.get(0))?;
    let in_bulk = versions as u64 >= super::bulk::Bulk::MIN_ROWS;
    if in_bulk {
        super::bulk::drop(tx)?;
    }
    // Undoing a unit's history finds its closed versions too, which no
    // index of the file holds by company: one for the rebuild's own use
    // (without it, each unit scanned the table).
    tx.execute_batch("CREATE INDEX IF NOT EXISTS rebuild_by_company ON disclosure(company_id, query_year)")?;
    let years: Vec<(String, String, String, i64)> = tx
        .prepare(
            "SELECT search_key, year, state, pages_fetched FROM company_years WHERE source = 'year'
             ORDER BY search_key, year",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (key, year, state, pages) in years {
        if state == YearState::Partial.as_str() {
            replay.out.partial_years_kept += 1;
            continue;
        }
        let years = BTreeSet::from([year.clone()]);
        replay.unit(&key, &Query::Year(year), &years, pages.max(0) as u32, None)?;
    }

    let listings: Vec<(String, i64, String, String)> = tx
        .prepare(
            "SELECT l.search_key, l.pages_fetched, l.fetched_at,
                    (SELECT json_group_array(y.year) FROM company_years y
                     WHERE y.search_key = l.search_key AND y.source = 'listing')
             FROM company_listings l WHERE l.state = 'complete' ORDER BY l.search_key",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (key, pages, completed_at, years_json) in listings {
        let years: BTreeSet<String> = serde_json::from_str(&years_json).unwrap_or_default();
        if !years.is_empty() {
            replay.unit(&key, &Query::Listing, &years, pages.max(0) as u32, Some(&completed_at))?;
        }
    }
    tx.execute_batch("DROP INDEX rebuild_by_company")?;
    if in_bulk {
        super::bulk::ensure(tx)?;
    }
    Ok(replay.out)
}

/// A receipt of a unit's page, as stored.
#[derive(Debug, Clone, PartialEq)]
struct Receipt {
    raw_id: i64,
    page: u32,
    at: String,
}

/// One fetch of a unit: when its last receipt was stored, and the receipt
/// of each of its pages, in page order.
#[derive(Debug, PartialEq)]
struct Fetch {
    at: String,
    receipts: Vec<i64>,
}

/// A unit's receipts (in the order stored) as its fetches, oldest first,
/// the last one holding pages `1..=pages_now`; None when no fetch or set of
/// newest receipts holds them all.
fn fetches(receipts: &[Receipt], pages_now: u32) -> Option<Vec<Fetch>> {
    // Group: a receipt of page 1 starts a fetch; pages stored before any
    // page 1 (a first fetch's pages can be stored in any order) join the first.
    let mut groups: Vec<BTreeMap<u32, &Receipt>> = Vec::new();
    for r in receipts {
        let starts = r.page == 1 && groups.last().is_none_or(|g| g.contains_key(&1));
        if starts || groups.is_empty() {
            groups.push(BTreeMap::new());
        }
        groups.last_mut().expect("a group").insert(r.page, r);
    }
    let mut out: Vec<Fetch> = Vec::new();
    let mut pages_before = 0;
    for group in groups {
        let pages = group.len() as u32;
        let whole = group.keys().copied().eq(1..=pages);
        if !whole || (pages == 1 && pages_before > 1) {
            continue;
        }
        pages_before = pages;
        let at = group.values().map(|r| r.at.as_str()).max().unwrap_or_default().to_string();
        out.push(Fetch { at, receipts: group.values().map(|r| r.raw_id).collect() });
    }
    if pages_before == pages_now && !out.is_empty() {
        return Some(out);
    }
    // The unit's checkpoint counts other pages than its last whole fetch:
    // its state now is the newest receipt of each page it counts.
    let mut newest: HashMap<u32, &Receipt> = HashMap::new();
    for r in receipts {
        newest.insert(r.page, r);
    }
    let last: Vec<&Receipt> = (1..=pages_now).map(|p| newest.get(&p).copied()).collect::<Option<_>>()?;
    let at = last.iter().map(|r| r.at.as_str()).max().unwrap_or_default().to_string();
    out.push(Fetch { at, receipts: last.iter().map(|r| r.raw_id).collect() });
    Some(out)
}

struct Replay<'t, 'p> {
    tx: &'t Transaction<'t>,
    reader: Reader,
    codes: Codebook,
    parse: &'p dyn Fn(&[u8]) -> Option<Vec<ClientRow>>,
    /// Every run's start, in order: a replayed version's run is the last
    /// one started at or before it.
    runs: Vec<(String, i64)>,
    now: &'t str,
    out: Rebuilt,
}

impl Replay<'_, '_> {
    fn run_at(&self, at: &str) -> Option<i64> {
        let i = self.runs.partition_point(|(started, _)| started.as_str() <= at);
        i.checked_sub(1).map(|i| self.runs[i].1)
    }

    /// A receipt's rows and when it was stored; None when it is unreadable.
    fn read(&mut self, raw_id: i64) -> rusqlite::Result<Option<(Vec<ClientRow>, String)>> {
        let (stored, dict_id, at): (Vec<u8>, Option<i64>, String) = self
            .tx
            .prepare_cached("SELECT body, dict_id, fetched_at FROM raw_pages WHERE raw_id = ?1")?
            .query_row([raw_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(self.reader.read(&stored, dict_id).and_then(|body: Vec<u8>| (self.parse)(&body)).map(|rows| (rows, at)))
    }

    /// Replay one unit: `years` are the report years it is the source of.
    fn unit(
        &mut self,
        key: &str,
        query: &Query,
        years: &BTreeSet<String>,
        pages_now: u32,
        until: Option<&str>,
    ) -> rusqlite::Result<()> {
        let tx = self.tx;
        let company = company_id(tx, key)?;
        let query_year = query.year().unwrap_or_default().to_string();
        if pages_now == 0 {
            // A year that answered no row: it has none now.
            let rows = years.iter().map(|y| (y.clone(), Vec::new())).collect();
            let when = When { now: self.now, run_id: None, backfill: false };
            self.out.changes.add(history::replace(tx, &mut self.codes, company, rows, false, &when)?);
            self.out.years += years.len() as u64;
            return Ok(());
        }
        let receipts: Vec<Receipt> = tx
            .prepare_cached(
                "SELECT raw_id, page_index, fetched_at FROM raw_pages
                 WHERE search_key = ?1 AND query_year = ?2 AND page_index >= 1 AND fetched_at <= ?3
                 ORDER BY fetched_at, raw_id",
            )?
            .query_map(params![key, query_year, until.unwrap_or("9999")], |r| {
                Ok(Receipt { raw_id: r.get(0)?, page: r.get(1)?, at: r.get(2)? })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(fetches) = fetches(&receipts, pages_now) else {
            self.out.years_without_receipts += years.len() as u64;
            return Ok(());
        };
        // Every receipt read once, before anything is changed: a unit whose
        // state now cannot be read is left as it is.
        let mut rows: HashMap<i64, (Vec<ClientRow>, String)> = HashMap::new();
        for id in fetches.iter().flat_map(|f| &f.receipts) {
            if !rows.contains_key(id) {
                if let Some(read) = self.read(*id)? {
                    rows.insert(*id, read);
                }
            }
        }
        let readable = |f: &Fetch| f.receipts.iter().all(|id| rows.contains_key(id));
        if !fetches.last().is_some_and(readable) {
            self.out.years_without_receipts += years.len() as u64;
            return Ok(());
        }
        let before: Vec<_> =
            years.iter().map(|y| history::current_rows(tx, key, y)).collect::<rusqlite::Result<_>>()?;
        let first = receipts.iter().map(|r| r.at.as_str()).min().unwrap_or(self.now);
        for year in years {
            history::roll_back(tx, company, year, first)?;
        }
        let mut last_rows = 0;
        for fetch in fetches.iter().filter(|f| readable(f)) {
            let pages = fetch.receipts.iter().enumerate().map(|(i, id)| {
                let (page_rows, at) = &rows[id];
                (i as u32 + 1, page_rows.as_slice(), at.as_str())
            });
            let mut by_year = rows_of_pages(query, pages);
            // A listing is the source of only some of its years: a year
            // re-fetched per year since keeps those rows.
            by_year.retain(|year, _| years.contains(year));
            for year in years {
                by_year.entry(year.clone()).or_default();
            }
            last_rows = by_year.values().map(|r| r.len() as u64).sum::<u64>();
            // As a run stores them: a unit's first fetch opens each page's
            // rows when that page was stored; a later one, when it was whole.
            let first = !history::has_versions(tx, company, query)?;
            let when = When { now: &fetch.at, run_id: self.run_at(&fetch.at), backfill: first };
            self.out.changes.add(history::replace(tx, &mut self.codes, company, by_year, false, &when)?);
            self.out.fetches_replayed += 1;
        }
        for (year, before) in years.iter().zip(before) {
            if history::current_rows(tx, key, year)? != before {
                self.out.years_corrected += 1;
            }
        }
        self.out.rows += last_rows;
        self.out.years += years.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(raw_id: i64, page: u32, at: &str) -> Receipt {
        Receipt { raw_id, page, at: at.into() }
    }

    fn ids(f: &[Fetch]) -> Vec<Vec<i64>> {
        f.iter().map(|f| f.receipts.clone()).collect()
    }

    #[test]
    fn each_page_1_starts_a_fetch_and_a_check_of_page_1_alone_is_passed_over() {
        // A first fetch of two pages, a check that asked page 1 only, then a re-fetch.
        let got = fetches(&[r(1, 1, "a"), r(2, 2, "b"), r(3, 1, "c"), r(4, 1, "d"), r(5, 2, "e")], 2).unwrap();
        assert_eq!(ids(&got), [vec![1, 2], vec![4, 5]]);
        assert_eq!(got[0].at, "b", "a fetch is known once its last page is stored");
    }

    #[test]
    fn pages_stored_before_page_1_belong_to_the_first_fetch() {
        assert_eq!(ids(&fetches(&[r(7, 2, "a"), r(8, 1, "b")], 2).unwrap()), [vec![8, 7]]);
    }

    #[test]
    fn a_one_page_unit_is_a_fetch_at_every_call() {
        assert_eq!(ids(&fetches(&[r(1, 1, "a"), r(2, 1, "b")], 1).unwrap()), [vec![1], vec![2]]);
    }

    #[test]
    fn a_unit_that_grew_or_shrank_replays_each_fetch_with_its_own_pages() {
        let got = fetches(&[r(1, 1, "a"), r(2, 1, "b"), r(3, 2, "b"), r(4, 1, "c")], 2).unwrap();
        assert_eq!(ids(&got), [vec![1], vec![2, 3]], "page 1 alone after two pages was a check");
        let got = fetches(&[r(1, 1, "a"), r(2, 2, "a"), r(3, 1, "b")], 1).unwrap();
        assert_eq!(ids(&got), [vec![1, 2], vec![3]], "the checkpoint counts one page now");
    }

    #[test]
    fn without_every_page_of_the_unit_now_there_is_nothing_to_replay() {
        assert_eq!(fetches(&[r(1, 1, "a")], 2), None);
        assert_eq!(fetches(&[], 1), None);
        // A fetch missing a page is passed over; the newest of each page is the state now.
        assert_eq!(
            ids(&fetches(&[r(1, 1, "a"), r(2, 2, "a"), r(3, 1, "b"), r(4, 3, "b")], 3).unwrap()),
            [vec![1, 2], vec![3, 2, 4]]
        );
    }
}
