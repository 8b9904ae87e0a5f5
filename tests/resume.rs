//! Interrupted runs resume: same rows in the end, no duplicates, and no page
//! paid for twice beyond the calls that were in flight at the stop.

mod common;

use std::time::Duration;

use common::*;
use qcc_customers::pipeline;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_resumes_and_pays_for_no_page_twice() {
    let h = Harness::per_year().await;
    let keys = company_keys(120, "取消");
    h.write_keys(&keys);
    let mut fetch = fast_fetch();
    fetch.qps = 150.0;

    let cancel = CancellationToken::new();
    let run = tokio::spawn(pipeline::run(h.options(&fetch), cancel.clone()));
    wait_until("120 requests", Duration::from_secs(60), || h.sim.handle.request_count() >= 120).await;
    cancel.cancel();
    let first = run.await.unwrap().unwrap();
    assert_eq!(first.exit_code, 75, "a stopped run is resumable: {}", first.render());
    assert!(first.remaining() > 0, "the stop happened part-way");

    let second = h.run(&fast_fetch()).await;
    assert_eq!(second.exit_code, 0, "{}", second.render());
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));
    // A graceful stop lets in-flight calls finish and commits them: nothing
    // is paid for twice at all.
    assert_eq!(h.sim.handle.pages_served_twice(), 0);
    let served: std::collections::BTreeSet<_> = h.sim.handle.served().keys().cloned().collect();
    assert_eq!(served, expected_pages(h.seed(), &keys));
}

fn run_binary(h: &Harness, concurrency: u32) -> std::process::Child {
    spawn_run(h, &["--qps", "300", "--concurrency", &concurrency.to_string()])
}

async fn wait_exit(child: &mut std::process::Child) -> i32 {
    let mut code = None;
    wait_until("the run's end", Duration::from_secs(300), || {
        code = child.try_wait().unwrap().map(|status| status.code().unwrap_or(-1));
        code.is_some()
    })
    .await;
    code.unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_resumes_and_repays_at_most_the_calls_in_flight() {
    let h = Harness::per_year().await;
    let keys = company_keys(150, "强杀");
    h.write_keys(&keys);
    let concurrency = 4;
    let kills = kill_at(&h, &[60, 200, 380], |h| run_binary(h, concurrency)).await;
    assert!(kills >= 2, "the run was killed part-way at least twice");
    let mut child = run_binary(&h, concurrency);
    assert_eq!(wait_exit(&mut child).await, 0, "the final run completes");

    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));
    // What one kill can make the next run pay again: the requests in flight
    // plus the answered pages waiting in the commit window (docs/design.md §9).
    let per_kill = concurrency * qcc_customers::pipeline::UNSTORED_CALLS_PER_WORKER as u32;
    let twice = h.sim.handle.pages_served_twice();
    assert!(twice <= kills * per_kill, "{twice} pages paid twice after {kills} kills, bound {}", kills * per_kill);
    let served: std::collections::BTreeSet<_> = h.sim.handle.served().keys().cloned().collect();
    assert_eq!(served, expected_pages(h.seed(), &keys), "no page past the end, none missing");
}
