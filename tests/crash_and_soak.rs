//! The two long ones: SIGKILL at random moments, and a run through a 20 %
//! fault rate. Both end with exactly the rows the simulator holds.

mod common;

use std::time::Duration;

use common::*;
use qcc_customers::simulator::{Faults, SimConfig};

fn start(h: &Harness, concurrency: u32) -> std::process::Child {
    spawn_run(h, &["--qps", "400", "--concurrency", &concurrency.to_string()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_five_random_moments_loses_nothing_and_repays_at_most_the_calls_in_flight() {
    let h = Harness::per_year().await;
    let keys = company_keys(200, "随机强杀");
    h.write_keys(&keys);
    let total = expected_pages(h.seed(), &keys).len();
    let concurrency: u32 = 4;
    // Five kill points, spread at random over the run (seeded, printed).
    let points = random_points(total);
    let kills = kill_at(&h, &points, |h| start(h, concurrency)).await;
    // Every point lies before the run's end: each one killed a live process.
    assert_eq!(kills as usize, points.len(), "every kill point killed a running process");
    let mut child = start(&h, concurrency);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));

    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));
    // What one kill can make the next run pay again: the requests in flight
    // plus the answered pages waiting in the commit window.
    let per_kill = concurrency * qcc_customers::pipeline::UNSTORED_CALLS_PER_WORKER as u32;
    let twice = h.sim.handle.pages_served_twice();
    eprintln!("{kills} kills, {twice} pages paid twice (bound {}), {total} pages in all", kills * per_kill);
    assert!(twice <= kills * per_kill, "{twice} pages paid twice after {kills} kills");
    let check: String = h.conn().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM staged_rows"), 0, "nothing left half-promoted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_at_a_twenty_percent_fault_rate_ends_with_every_row() {
    let faults = Faults {
        throttle_share: 0.05,
        http502_share: 0.05,
        drop_share: 0.05,
        truncate_share: 0.05,
        ..Faults::default()
    };
    let h = Harness::new(SimConfig { faults, ..SimConfig::default() }).await;
    let keys = company_keys(300, "浸泡");
    h.write_keys(&keys);
    let mut fetch = fast_fetch();
    fetch.throttle_base = Duration::from_millis(20);
    let first = h.run(&fetch).await;
    let mut runs = 1;
    if first.exit_code == 75 {
        let second = h.run(&fetch).await;
        assert_eq!(second.exit_code, 0, "{}", second.render());
        runs += 1;
    } else {
        assert_eq!(first.exit_code, 0, "{}", first.render());
    }
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));
    let conn = h.conn();
    let calls = count(&conn, "SELECT COUNT(*) FROM api_calls");
    let failed = count(&conn, "SELECT COUNT(*) FROM api_calls WHERE status IS NULL OR status NOT IN ('200', '201')");
    eprintln!("soak: {runs} run(s), {calls} calls, {failed} failed and retried ({} pages)", calls - failed);
    assert!(failed > 0, "faults were injected");
}

/// A thread that reads a run's stderr and sends one message per "Commit
/// window full" line.
fn window_full_watch(stderr: std::process::ChildStderr) -> std::sync::mpsc::Receiver<()> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Commit window full") && tx.send(()).is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_lets_calls_run_ahead_only_as_far_as_the_commit_window() {
    let h = Harness::default().await;
    let keys = company_keys(300, "慢盘窗口");
    h.write_keys(&keys);
    let concurrency: u32 = 4;
    let window = concurrency * qcc_customers::pipeline::UNSTORED_CALLS_PER_WORKER as u32;
    // The writer's debug log says when a worker first waits for room in the
    // commit window.
    let mut child = run_command(&h, &["--qps", "400", "--concurrency", &concurrency.to_string()])
        .env("QCC_LOG", "warn,qcc_customers::pipeline::writer=debug")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts");
    let full = window_full_watch(child.stderr.take().expect("piped"));
    wait_until("30 requests before the stall", Duration::from_secs(60), || {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before the stall");
        h.sim.handle.request_count() >= 30
    })
    .await;
    // Another connection takes the write lock: the run's writer cannot commit
    // (it waits, as it would for a disk that does not answer).
    let blocker = h.conn();
    blocker.busy_timeout(Duration::from_secs(10)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Drain what the window held before the stall, so "full" below is the
    // stall's doing: the first sighting after it.
    while full.try_recv().is_ok() {}
    let at_stall = h.sim.handle.request_count();
    // The workers run ahead until the commit window is full, and the run says
    // so when the first of them waits. Then the stall is held a second more:
    // a run that the window does not hold back keeps calling and fails below.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match full.recv_timeout(Duration::from_millis(100)) {
            Ok(()) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                assert!(std::time::Instant::now() < deadline, "the commit window never filled during the stall");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the run ended during the stall"),
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = (h.sim.handle.request_count() - at_stall) as u32;
    blocker.execute_batch("ROLLBACK").unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));

    eprintln!("{during} calls while the writer was stalled (window {window})");
    // The workers went on while their pages waited (the old one-page-per-worker
    // rule would have stopped them at `concurrency`), but not past the window:
    // what the stall held was paid for and not yet stored.
    assert!(during > concurrency, "{during} calls during the stall");
    assert!(during <= window, "{during} calls during the stall, window {window}");
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));
    assert_eq!(h.sim.handle.pages_served_twice(), 0);
}
