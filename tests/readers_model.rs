//! The readers' model through the binary, against the simulator: every
//! change kept, what the file knew at a moment, and the feed of changes.

mod common;

use std::ffi::OsStr;

use common::*;
use qcc_customers::simulator::{SimConfig, Simulator};

/// `export` with `args`, to stdout, as text (the BOM dropped).
fn export(h: &Harness, args: &[&str]) -> String {
    let mut all: Vec<&OsStr> = vec![OsStr::new("export"), OsStr::new("--out"), OsStr::new("-"), OsStr::new("--db")];
    all.push(h.db.as_os_str());
    all.extend(args.iter().map(OsStr::new));
    let out = tool_within(&all);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim_start_matches('\u{feff}').to_string()
}

/// The rows of an export without `fetched_at` (a version keeps the time a
/// fetch last confirmed it).
fn without_fetched_at(csv: &str) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let header = r.headers().unwrap().clone();
    let at = header.iter().position(|h| h == "fetched_at").unwrap();
    r.records()
        .map(|rec| {
            rec.unwrap().iter().enumerate().filter(|(i, _)| *i != at).map(|(_, v)| v).collect::<Vec<_>>().join("|")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_as_of_a_time_before_the_correction_gives_the_old_amount() {
    let h = Harness::per_year().await;
    let keys = company_keys(12, "时点");
    h.write_keys(&keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);
    let before = export(&h, &[]);

    // The API corrects every company's rows (new contents), and the next run stores them.
    h.age();
    let sim2 = Simulator::start(SimConfig { revision: 7, ..per_year_config() }).await.unwrap();
    let s = h.run_on(&sim2, &fast_fetch()).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    let after = export(&h, &[]);
    assert_ne!(without_fetched_at(&before), without_fetched_at(&after), "the correction changed the rows");

    // As of the moment the second run began, the file knew the old rows.
    let second_started: String =
        h.conn().query_row("SELECT started_at FROM runs ORDER BY run_id DESC LIMIT 1", [], |r| r.get(0)).unwrap();
    assert_eq!(without_fetched_at(&export(&h, &["--as-of", &second_started])), without_fetched_at(&before));
    // And as of now, what `customers` holds.
    assert_eq!(without_fetched_at(&export(&h, &["--as-of", "2999-01-01"])), without_fetched_at(&after));
    // Before the first run, nothing.
    assert_eq!(export(&h, &["--as-of", "2000-01-01"]).lines().count(), 1, "only the header");

    // The feed: the second run's changes, and none since it.
    let first_run = count(&h.conn(), "SELECT MIN(run_id) FROM runs").to_string();
    let last_run = count(&h.conn(), "SELECT MAX(run_id) FROM runs").to_string();
    let feed = export(&h, &["--changes-since", &first_run]);
    let mut r = csv::ReaderBuilder::new().from_reader(feed.as_bytes());
    let kinds: Vec<String> = r.records().map(|rec| rec.unwrap()[2].to_string()).collect();
    assert!(!kinds.is_empty());
    assert!(kinds.iter().all(|k| ["changed", "added", "removed", "new_period"].contains(&k.as_str())), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "changed"), "{kinds:?}");
    assert_eq!(export(&h, &["--changes-since", &last_run]).lines().count(), 1, "only the header");
    let by_time = export(&h, &["--changes-since", &second_started]);
    assert_eq!(by_time, feed, "since the run's start is since the run before");
    // Every change of the run is counted by kind in its summary.
    assert_eq!(s.changes.total(), kinds.len() as u64, "{:?}", s.changes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_that_is_none_is_refused_with_what_to_give() {
    let h = Harness::per_year().await;
    h.write_keys(&company_keys(2, "时点错"));
    h.run(&fast_fetch()).await;
    let out = tool_within(&[
        OsStr::new("export"),
        OsStr::new("--as-of"),
        OsStr::new("last tuesday"),
        OsStr::new("--out"),
        OsStr::new("-"),
        OsStr::new("--db"),
        h.db.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--as-of") && err.contains("2026-05-01"), "{err}");
}
