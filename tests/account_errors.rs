//! The API refusing the account stops the run at once (exit 78).

mod common;

use std::process::Command;

use common::*;
use qcc_customers::qcc::Credentials;
use qcc_customers::simulator::DEMO_KEY;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_stops_the_run_with_78_after_no_more_than_the_calls_in_flight() {
    let h = Harness::default().await;
    h.write_keys(&company_keys(100, "密钥"));
    let fetch = fast_fetch(); // concurrency 8
    let opts = h.options_with(&fetch, Credentials::new(DEMO_KEY, "not-the-secret"));
    let summary = qcc_customers::pipeline::run(opts, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.exit_code, 78, "{}", summary.render());
    let reason = summary.stop_reason.unwrap();
    assert!(reason.contains("107") && reason.contains("QCC_SECRET_KEY"), "{reason}");
    assert!(reason.contains("every committed page is kept"), "what was kept: {reason}");
    let arrivals = h.sim.handle.arrivals();
    assert!(!arrivals.is_empty() && arrivals.len() <= 8, "{} calls after the first 107", arrivals.len());
    assert!(arrivals.iter().all(|a| a.status == 107));
    // The calls are in the ledger; the companies stay pending for a fixed run.
    let conn = h.conn();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM api_calls") as usize, arrivals.len());
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM companies WHERE state != 'pending'"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_78_on_a_wrong_secret_and_on_missing_credentials() {
    let h = Harness::default().await;
    h.write_keys(&company_keys(5, "退出码"));
    let (input, db, endpoint) = (h.input.clone(), h.db.clone(), h.sim.endpoint());
    let run = move |secret: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qcc-customers"));
        cmd.args(["run", "--input"]).arg(&input).arg("--db").arg(&db);
        cmd.args(["--endpoint", &endpoint, "--quiet"]);
        cmd.env("QCC_KEY", DEMO_KEY).env_remove("QCC_SECRET_KEY");
        if let Some(s) = secret {
            cmd.env("QCC_SECRET_KEY", s);
        }
        cmd.output().unwrap()
    };
    let out = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(Some("wrong-secret"))
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("107"), "the summary names the code: {stdout}");
    assert!(!stdout.contains("wrong-secret") && !stderr.contains("wrong-secret"), "the secret is never printed");

    let out = tokio::task::spawn_blocking(move || run(None)).await.unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("QCC_SECRET_KEY") && stderr.contains("no call was made"), "{stderr}");
}
