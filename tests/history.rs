//! What the database remembers of each company's checks and report periods
//! (docs/design.md §4): the history the revisit schedule learns from.

mod common;

use std::collections::BTreeSet;

use common::*;
use qcc_customers::simulator::{data, SimConfig, Simulator};

/// `(search_key, outcome)` of every check, in order.
fn checks(h: &Harness) -> Vec<(String, String)> {
    let conn = h.conn();
    let mut stmt = conn
        .prepare(
            "SELECT co.search_key, ch.outcome FROM company_checks ch JOIN companies co USING (company_id)
             ORDER BY ch.checked_at, co.search_key",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

/// Every `(search_key, period)` the database has seen, with whether it was
/// seen appearing (`not_before` set).
fn periods(h: &Harness) -> BTreeSet<(String, String, bool)> {
    let conn = h.conn();
    let mut stmt = conn
        .prepare(
            "SELECT co.search_key, p.period, p.not_before IS NOT NULL FROM company_periods p
             JOIN companies co USING (company_id)",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_records_its_outcome_and_a_period_is_remembered_from_the_check_that_first_stored_it() {
    let h = Harness::per_year().await;
    let mut keys = company_keys(12, "历史");
    keys.push("QCC-SIM-201-none".into());
    h.write_keys(&keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);

    let none = |key: &str| data::company(h.seed(), key).years.is_empty();
    let first = checks(&h);
    assert_eq!(first.len(), keys.len(), "one check per company");
    for (key, outcome) in &first {
        let want = if none(key) { "no_result" } else { "first" };
        assert_eq!(outcome, want, "{key}");
    }
    // The periods are the years the rows carry, half-year periods included.
    let stored: BTreeSet<(String, String, bool)> = h
        .conn()
        .prepare("SELECT DISTINCT search_key, year FROM customers WHERE year IS NOT NULL")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, false)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(stored.iter().any(|(_, p, _)| p.ends_with("-06")), "the data has half-year rows");
    assert_eq!(periods(&h), stored, "already there at the first fetch: not seen appearing");

    // Nothing changed: every check is 'unchanged', no period is new.
    h.age();
    let same = Simulator::start(per_year_config()).await.unwrap();
    assert_eq!(h.run_on(&same, &fast_fetch()).await.exit_code, 0);
    let second = &checks(&h)[first.len()..];
    assert_eq!(second.len(), keys.len());
    for (key, outcome) in second {
        let want = if none(key) { "no_result" } else { "unchanged" };
        assert_eq!(outcome, want, "{key}");
    }
    assert_eq!(periods(&h), stored);

    // A new annual report: 'changed', and its period is seen appearing.
    h.age();
    let newer = Simulator::start(SimConfig { extra_years: 1, ..per_year_config() }).await.unwrap();
    assert_eq!(h.run_on(&newer, &fast_fetch()).await.exit_code, 0);
    let third = &checks(&h)[first.len() * 2..];
    let appeared: Vec<_> = periods(&h).into_iter().filter(|p| p.2).collect();
    assert!(!appeared.is_empty());
    for (key, outcome) in third {
        let has_new = appeared.iter().any(|p| &p.0 == key);
        let want = match () {
            _ if none(key) => "no_result",
            _ if has_new => "changed",
            _ => "unchanged",
        };
        assert_eq!(outcome, want, "{key}");
    }
}
