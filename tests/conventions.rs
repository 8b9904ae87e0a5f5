//! The operator's conventions: shell completions and man pages generated
//! from the same definitions as `--help`, and a metrics file a monitor
//! scrapes after every run.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::CommandFactory;
use common::*;
use qcc_customers::simulator::{DEMO_KEY, DEMO_SECRET};

fn tool(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_qcc-customers")).args(args).output().expect("binary runs");
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn run_with_metrics(h: &Harness, metrics: &std::path::Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qcc-customers"));
    cmd.args(["run", "--quiet", "--input"]).arg(&h.input).arg("--db").arg(&h.db);
    cmd.args(["--endpoint", &h.sim.endpoint(), "--metrics-file"]).arg(metrics).args(extra);
    cmd.env("QCC_KEY", DEMO_KEY).env("QCC_SECRET_KEY", DEMO_SECRET).stdin(Stdio::null());
    cmd
}

/// A metrics file in Prometheus' text format, parsed strictly: every line a
/// `# HELP`/`# TYPE` comment or `name{labels} value`, every sample's family
/// declared before it, names `qcc_customers_*`. Samples by `name{labels}`.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut typed = std::collections::HashSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_string()), "one TYPE per family: {line}");
            continue;
        }
        if line.starts_with("# HELP qcc_customers_") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample line: {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(name.starts_with("qcc_customers_"), "{line}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        assert!(typed.contains(name), "declared before its samples: {line}");
        if series.contains('{') {
            assert!(series.ends_with("\"}") && series.contains("=\""), "labels: {line}");
        }
        assert!(name.ends_with("_total") == text.contains(&format!("# TYPE {name} counter")), "{line}");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line}"));
        assert!(samples.insert(series.to_string(), value).is_none(), "one sample per series: {line}");
    }
    samples
}

#[test]
fn the_bash_completions_define_a_completion_function_when_sourced() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("qcc-customers.bash");
    std::fs::write(&script, tool(&["completions", "bash"]).stdout).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            // The function `complete` names for the command must be defined.
            "source '{}' && f=$(complete -p qcc-customers | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p') && declare -F \"$f\"",
            script.display()
        ))
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.trim().starts_with("_qcc"), "a completion function: {said}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        assert!(!tool(&["completions", shell]).stdout.is_empty(), "{shell}");
    }
}

#[test]
fn the_man_page_names_every_subcommand() {
    // roff escapes a hyphen as `\-`.
    let page = String::from_utf8(tool(&["man"]).stdout).unwrap().replace("\\-", "-");
    assert!(page.starts_with(".ie") || page.contains(".TH qcc-customers"), "roff: {}", &page[..80.min(page.len())]);
    let cli = qcc_customers::cli::Cli::command();
    let names: Vec<String> = cli.get_subcommands().map(|s| s.get_name().to_string()).collect();
    assert!(names.len() >= 8, "{names:?}");
    for name in &names {
        assert!(page.contains(name.as_str()), "the man page names {name}");
    }
    // One page per subcommand, each with its own flags.
    let dir = tempfile::tempdir().unwrap();
    tool(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    for name in &names {
        let sub =
            std::fs::read_to_string(dir.path().join(format!("qcc-customers-{name}.1"))).unwrap().replace("\\-", "-");
        assert!(sub.contains(&format!("qcc-customers-{name}")), "{name}");
    }
    let run = std::fs::read_to_string(dir.path().join("qcc-customers-run.1")).unwrap();
    assert!(run.replace("\\-", "-").contains("--metrics-file"), "the run page lists its flags");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_run_the_metrics_file_parses_its_calls_equal_the_ledger_and_no_temporary_file_is_left() {
    let h = Harness::default().await;
    h.write_keys(&company_keys(12, "监控"));
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("qcc_customers.prom");
    let out = run_with_metrics(&h, &metrics, &["--qps", "0", "--daily-limit", "100000"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let m = parse_metrics(&std::fs::read_to_string(&metrics).unwrap());
    let conn = h.conn();
    let run_id = count(&conn, "SELECT MAX(run_id) FROM runs");
    let ledger = count(&conn, &format!("SELECT COUNT(*) FROM api_calls WHERE run_id = {run_id}"));
    let reported: f64 = m.iter().filter(|(k, _)| k.starts_with("qcc_customers_last_run_calls{")).map(|(_, v)| v).sum();
    assert!(ledger > 12);
    assert_eq!(reported, ledger as f64, "{m:?}");
    assert_eq!(
        m["qcc_customers_last_run_calls{status=\"200\"}"],
        count(&conn, &format!("SELECT COUNT(*) FROM api_calls WHERE run_id = {run_id} AND status = '200'")) as f64
    );
    assert_eq!(
        m["qcc_customers_calls_total{status=\"200\"}"],
        count(&conn, "SELECT COUNT(*) FROM api_calls WHERE status = '200'") as f64
    );
    assert_eq!(m["qcc_customers_last_run_exit_code"], 0.0);
    assert_eq!(
        m["qcc_customers_companies{state=\"done\"}"]
            + m.get("qcc_customers_companies{state=\"no_result\"}").unwrap_or(&0.0),
        12.0
    );
    assert_eq!(
        m["qcc_customers_last_run_rows_written"],
        count(&conn, &format!("SELECT rows_written FROM runs WHERE run_id = {run_id}")) as f64
    );
    assert_eq!(m["qcc_customers_customer_rows"], count(&conn, "SELECT COUNT(*) FROM customers") as f64);
    assert_eq!(m["qcc_customers_daily_limit"], 100000.0);
    assert_eq!(m["qcc_customers_calls_today"], ledger as f64);
    let (start, end) =
        (m["qcc_customers_last_run_start_timestamp_seconds"], m["qcc_customers_last_run_end_timestamp_seconds"]);
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(start <= end && end <= now + 1.0 && now - start < 600.0, "{start} {end} {now}");
    assert!((m["qcc_customers_last_run_duration_seconds"] - (end - start)).abs() < 0.01);
    assert!(m["qcc_customers_last_success_timestamp_seconds"] >= start);
    assert!(m.contains_key("qcc_customers_forecast_calls_next_7_days"));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("qcc_customers.prom")], "no temporary file is left");

    // A run refused for its credentials reports 78 and keeps the last success.
    let success = m["qcc_customers_last_success_timestamp_seconds"];
    let out = run_with_metrics(&h, &metrics, &["--qps", "0", "--full-refresh"])
        .env("QCC_SECRET_KEY", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let m = parse_metrics(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(m["qcc_customers_last_run_exit_code"], 78.0);
    assert_eq!(m["qcc_customers_last_success_timestamp_seconds"], success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_by_a_signal_still_writes_its_metrics_with_exit_code_75() {
    let h = Harness::default().await;
    h.write_keys(&company_keys(80, "监控信号"));
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("qcc_customers.prom");
    let child = run_with_metrics(&h, &metrics, &["--qps", "50"]).stdout(Stdio::null()).spawn().unwrap();
    wait_until("20 requests", Duration::from_secs(60), || h.sim.handle.request_count() >= 20).await;
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(75));
    let m = parse_metrics(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(m["qcc_customers_last_run_exit_code"], 75.0);
    let ledger = count(&h.conn(), "SELECT COUNT(*) FROM api_calls");
    let reported: f64 = m.iter().filter(|(k, _)| k.starts_with("qcc_customers_last_run_calls{")).map(|(_, v)| v).sum();
    assert_eq!(reported, ledger as f64);
    assert!(!m.contains_key("qcc_customers_last_success_timestamp_seconds"), "no run has succeeded yet");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
}
