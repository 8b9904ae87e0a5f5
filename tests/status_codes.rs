//! One test per row of the status-code table (docs/design.md §1.3), each asserting the
//! stored state and the calls the simulator saw.

mod common;

use std::time::Duration;

use common::*;
use qcc_customers::cli::FetchArgs;
use qcc_customers::pipeline::Summary;
use qcc_customers::simulator::{Faults, SimConfig};

async fn run_keys(keys: &[&str], fetch: &FetchArgs) -> (Harness, Summary) {
    run_keys_on(SimConfig::default(), keys, fetch).await
}

async fn run_keys_on(config: SimConfig, keys: &[&str], fetch: &FetchArgs) -> (Harness, Summary) {
    let h = Harness::new(config).await;
    h.write_keys(&keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
    let summary = h.run(fetch).await;
    (h, summary)
}

fn calls_for(h: &Harness, key: &str) -> usize {
    h.sim.handle.arrivals().iter().filter(|a| a.search_key == key).count()
}

fn company(h: &Harness, key: &str) -> (String, Option<String>, Option<String>) {
    h.conn()
        .query_row("SELECT state, status_code, message FROM companies WHERE search_key = ?1", [key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_201_is_final_no_result_after_one_call() {
    let (h, s) = run_keys(&["QCC-SIM-201-a", "普通企业甲有限公司"], &fast_fetch()).await;
    assert_eq!(s.exit_code, 0);
    assert_eq!(company(&h, "QCC-SIM-201-a").0, "no_result");
    assert_eq!(calls_for(&h, "QCC-SIM-201-a"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_codes_are_asked_exactly_once_and_never_again_unless_asked() {
    let keys = [
        "QCC-SIM-202-a",
        "QCC-SIM-CODE-208",
        "QCC-SIM-CODE-209",
        "QCC-SIM-CODE-213",
        "QCC-SIM-CODE-215",
        "QCC-SIM-CODE-218",
        "QCC-SIM-CODE-219",
        "QCC-SIM-CODE-224",
    ];
    let (h, s) = run_keys(&keys, &fast_fetch()).await;
    assert_eq!(s.exit_code, 0, "rejected is a final state: {}", s.render());
    for key in keys {
        let (state, code, message) = company(&h, key);
        assert_eq!(state, "rejected", "{key}");
        assert!(code.as_deref().is_some_and(|c| key.ends_with(c) || key.contains(c)), "{key}: {code:?}");
        assert!(message.is_some_and(|m| m.contains("有效请求")), "{key}: the vendor message is kept");
        assert_eq!(calls_for(&h, key), 1, "{key} was asked exactly once");
    }
    // Even past the refresh window, a rejected company is not asked again…
    let mut fetch = fast_fetch();
    fetch.refresh_after = Some(Duration::ZERO);
    let again = h.run(&fetch).await;
    assert_eq!(again.calls, 0);
    // …unless the user asks for it.
    fetch.retry_rejected = true;
    let retried = h.run(&fetch).await;
    assert_eq!(retried.calls, keys.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_207_truncates_the_year_and_page_101_is_never_asked() {
    let (h, s) = run_keys(&["QCC-SIM-207-t"], &fast_fetch()).await;
    assert_eq!(s.exit_code, 0);
    let served = h.sim.handle.served();
    assert!(served.contains_key(&("QCC-SIM-207-t".into(), "2023".into(), 100)));
    assert!(!served.contains_key(&("QCC-SIM-207-t".into(), "2023".into(), 101)));
    let (state, pages): (String, i64) = h
        .conn()
        .query_row(
            "SELECT state, pages_fetched FROM company_years WHERE search_key = 'QCC-SIM-207-t' AND year = '2023'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), pages), ("truncated", 100));
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM customers WHERE query_year = '2023'"), 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_205_is_retried_three_times_then_the_company_is_deferred() {
    let (h, s) = run_keys(&["QCC-SIM-205-p", "普通企业乙有限公司"], &fast_fetch()).await;
    assert_eq!(s.exit_code, 75, "a deferred company makes the run resumable");
    let (state, code, message) = company(&h, "QCC-SIM-205-p");
    assert_eq!((state.as_str(), code.as_deref()), ("deferred", Some("205")));
    assert!(message.unwrap().contains("205"));
    assert_eq!(calls_for(&h, "QCC-SIM-205-p"), 4, "the first try and three retries");
    assert_eq!(company(&h, "普通企业乙有限公司").0, "done", "others go on");
    // The next run picks the deferred company up again.
    let again = h.run(&fast_fetch()).await;
    assert_eq!(calls_for(&h, "QCC-SIM-205-p"), 8);
    assert_eq!(again.exit_code, 75);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_110_parks_the_company_for_two_hours_and_others_go_on() {
    let (h, s) = run_keys(&["QCC-SIM-110-x", "普通企业丙有限公司"], &fast_fetch()).await;
    assert_eq!(s.exit_code, 75);
    let (state, code, _) = company(&h, "QCC-SIM-110-x");
    assert_eq!((state.as_str(), code.as_deref()), ("parked", Some("110")));
    assert_eq!(calls_for(&h, "QCC-SIM-110-x"), 1, "110 is not retried at once");
    let retry_after: String =
        h.conn().query_row("SELECT retry_after FROM companies WHERE state = 'parked'", [], |r| r.get(0)).unwrap();
    let wait = qcc_customers::clock::parse_iso(&retry_after).unwrap() - chrono::Utc::now();
    assert!(wait > chrono::Duration::minutes(119) && wait <= chrono::Duration::minutes(120), "{wait}");
    assert_eq!(company(&h, "普通企业丙有限公司").0, "done");
    // A run within the two hours does not ask again.
    h.run(&fast_fetch()).await;
    assert_eq!(calls_for(&h, "QCC-SIM-110-x"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_company_is_retried_by_the_same_run_once_its_wait_is_over() {
    let mut keys = vec!["QCC-SIM-110-y".to_string()];
    keys.extend(company_keys(30, "停车"));
    let h = Harness::default().await;
    h.write_keys(&keys);
    let mut fetch = fast_fetch();
    // Keeps the run busy for several seconds after the 1 s park ends, with
    // room for a loaded CI machine (at 40 calls/s it once ended first).
    fetch.qps = 20.0;
    fetch.park_for = Duration::from_secs(1);
    h.run(&fetch).await;
    assert!(calls_for(&h, "QCC-SIM-110-y") >= 2, "the run picked the parked company up again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_up_to_max_retries_then_deferred() {
    let keys = ["QCC-SIM-CODE-199", "QCC-SIM-CODE-203", "QCC-SIM-CODE-299", "QCC-SIM-HTTP-500", "QCC-SIM-HTTP-502"];
    let mut fetch = fast_fetch();
    fetch.max_retries = 2;
    let (h, s) = run_keys(&keys, &fetch).await;
    assert_eq!(s.exit_code, 75);
    for key in keys {
        assert_eq!(company(&h, key).0, "deferred", "{key}");
        assert_eq!(calls_for(&h, key), 3, "{key}: one try and two retries");
    }
    let message = company(&h, "QCC-SIM-HTTP-502").2.unwrap();
    assert!(message.contains("HTTP 502"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_timeouts_and_dropped_connections_are_transient() {
    for (name, faults, timeout) in [
        ("truncated body", Faults { truncate_share: 1.0, ..Faults::default() }, Duration::from_secs(5)),
        ("dropped connection", Faults { drop_share: 1.0, ..Faults::default() }, Duration::from_secs(5)),
        (
            "timeout",
            Faults { latency: Some((Duration::from_millis(400), Duration::from_millis(400))), ..Faults::default() },
            Duration::from_millis(100),
        ),
    ] {
        let mut fetch = fast_fetch();
        fetch.max_retries = 1;
        fetch.timeout = timeout;
        let config = SimConfig { faults, ..SimConfig::default() };
        let (h, s) = run_keys_on(config, &["瞬时故障测试有限公司"], &fetch).await;
        assert_eq!(s.exit_code, 75, "{name}");
        assert_eq!(company(&h, "瞬时故障测试有限公司").0, "deferred", "{name}");
        assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM api_calls"), 2, "{name}: recorded in the ledger");
        assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM api_calls WHERE error IS NULL"), 0, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_transient() {
    let h = Harness::default().await;
    h.write_keys(&["连接拒绝测试有限公司".to_string()]);
    let mut fetch = fast_fetch();
    fetch.max_retries = 1;
    let mut opts = h.options(&fetch);
    // A loopback port nothing listens on.
    opts.client.endpoint = reqwest::Url::parse("http://127.0.0.1:9/api/yj/Customer/GetList").unwrap();
    let s = qcc_customers::pipeline::run(opts, tokio_util::sync::CancellationToken::new()).await.unwrap();
    assert_eq!(s.exit_code, 75);
    assert_eq!(company(&h, "连接拒绝测试有限公司").0, "deferred");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_limit_codes_stop_dispatching_and_exit_75() {
    let config = SimConfig { faults: Faults { daily_quota: Some(10), ..Faults::default() }, ..SimConfig::default() };
    let keys: Vec<String> = company_keys(40, "配额");
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (h, s) = run_keys_on(config, &refs, &fast_fetch()).await;
    assert_eq!(s.exit_code, 75, "{}", s.render());
    assert!(s.stop_reason.unwrap().contains("116"));
    let arrivals = h.sim.handle.arrivals();
    let first_116 = arrivals.iter().position(|a| a.status == 116).unwrap();
    assert!(arrivals.len() - first_116 <= 8, "only calls already in flight follow the first 116");

    let (_, s) = run_keys(&["QCC-SIM-CODE-109"], &fast_fetch()).await;
    assert_eq!(s.exit_code, 75);
    assert!(s.stop_reason.unwrap().contains("109"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_codes_stop_the_run_at_once_with_78_and_a_hint() {
    for (key, hint) in [
        ("QCC-SIM-CODE-102", "balance"),
        ("QCC-SIM-CODE-111", "not purchased"),
        ("QCC-SIM-CODE-214", "not purchased"),
        ("QCC-SIM-CODE-115", "clock"),
        ("QCC-SIM-CODE-119", "support"),
        ("QCC-SIM-HTTP-404", "--endpoint"),
    ] {
        let mut keys = vec![key.to_string()];
        keys.extend(company_keys(20, "账户"));
        let h = Harness::default().await;
        h.write_keys(&keys);
        let mut fetch = fast_fetch();
        fetch.concurrency = "1".into(); // the trigger key is first: nothing else may follow it
        let s = h.run(&fetch).await;
        assert_eq!(s.exit_code, 78, "{key}");
        let reason = s.stop_reason.unwrap();
        assert!(reason.contains(hint), "{key}: {reason}");
        assert_eq!(h.sim.handle.request_count(), 1, "{key}: no call after the refusal");
    }
    // An unknown AppKey: 101.
    let h = Harness::default().await;
    h.write_keys(&company_keys(5, "钥匙"));
    let opts = h.options_with(&fast_fetch(), qcc_customers::qcc::Credentials::new("unknown-key", "x"));
    let s = qcc_customers::pipeline::run(opts, tokio_util::sync::CancellationToken::new()).await.unwrap();
    assert_eq!(s.exit_code, 78);
    assert!(s.stop_reason.unwrap().contains("101"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_120s_gets_only_a_handful_of_calls_then_the_run_finishes() {
    let storm = (Duration::from_millis(500), Duration::from_millis(4500));
    let config = SimConfig { faults: Faults { storm: Some(storm), ..Faults::default() }, ..SimConfig::default() };
    let keys = company_keys(30, "风暴");
    let h = Harness::new(config).await;
    h.write_keys(&keys);
    let mut fetch = fast_fetch();
    fetch.qps = 30.0;
    fetch.concurrency = "auto".into();
    fetch.throttle_base = Duration::from_millis(500);
    let s = h.run(&fetch).await;
    assert_eq!(s.exit_code, 0, "{}", s.render());
    let during = h
        .sim
        .handle
        .arrivals()
        .iter()
        .filter(|a| a.at >= storm.0.as_secs_f64() && a.at < storm.1.as_secs_f64())
        .count();
    eprintln!("calls during the 4 s storm: {during} (at 30/s it would have been 120)");
    assert!(during <= 12, "{during} calls during the storm");
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_throttling_stops_the_run_resumably() {
    let mut fetch = fast_fetch();
    fetch.max_throttle_wait = Duration::from_secs(2);
    fetch.throttle_base = Duration::from_millis(200);
    let (h, s) = run_keys(&["QCC-SIM-CODE-122", "普通企业丁有限公司"], &fetch).await;
    assert_eq!(s.exit_code, 75, "{}", s.render());
    assert!(s.stop_reason.unwrap().contains("throttling"));
    assert!(h.sim.handle.request_count() < 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_retry_after_is_honoured() {
    let mut fetch = fast_fetch();
    fetch.max_throttle_wait = Duration::from_millis(3500);
    fetch.throttle_base = Duration::from_millis(10);
    let (h, s) = run_keys(&["QCC-SIM-HTTP-429"], &fetch).await;
    assert_eq!(s.exit_code, 75);
    let times: Vec<f64> = h.sim.handle.arrivals().iter().map(|a| a.at).collect();
    assert!(times.len() >= 2);
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= 0.95, "Retry-After: 1 was not honoured: {times:?}");
    }
}
