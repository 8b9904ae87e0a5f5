//! `--qps` is a hard ceiling where calls leave the client; the simulator's
//! own arrival times may show q+1 in a one-second window when one request is
//! held up on its way (docs/design.md §9), never more, and the mean
//! rate is close to q.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qps_20_shows_the_server_at_most_21_calls_in_any_second_and_a_mean_within_5_percent_of_20() {
    let h = Harness::default().await;
    h.write_keys(&company_keys(80, "限速"));
    let mut fetch = fast_fetch();
    fetch.qps = 20.0;
    fetch.concurrency = "auto".into();
    fetch.max_calls = Some(120);
    let summary = h.run(&fetch).await;
    assert_eq!(summary.calls, 120, "{}", summary.render());

    let times: Vec<f64> = h.sim.handle.arrivals().iter().map(|a| a.at).collect();
    assert_eq!(times.len(), 120);
    // Every window [t, t+1s) starting at an arrival (the densest windows
    // always start at one).
    let mut worst = 0;
    for (i, t) in times.iter().enumerate() {
        let n = times[i..].iter().take_while(|u| **u < t + 1.0).count();
        worst = worst.max(n);
    }
    // q+1: on a busy 2-core CI machine one request can be held up on its way
    // past the limiter's 1 % margin (seen once: 21); the pacing itself is
    // what the limiter guarantees, and the server may see one more.
    assert!(worst <= 21, "a one-second window held {worst} calls");
    let mean = (times.len() - 1) as f64 / (times[times.len() - 1] - times[0]);
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    eprintln!("worst one-second window {worst}, mean rate {mean:.3}/s, largest gap {gap:.3}s");
    assert!((19.0..=20.0).contains(&mean), "mean rate {mean:.2}/s, want within 5% of 20");
}
