//! The nightly-operations and analyst side: dry run, status, export, rebuild,
//! progress lines (docs/design.md §2, §7).

mod common;

use std::process::{Command, Stdio};

use common::*;
use qcc_customers::simulator::{DEMO_KEY, DEMO_SECRET};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
}

fn dry_run(h: &Harness) -> String {
    dry_run_report(&h.input, &h.db, &[])
}

fn number_after(text: &str, before: &str) -> u64 {
    let i = text.find(before).unwrap_or_else(|| panic!("{before:?} in {text}"));
    text[..i].split_whitespace().last().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_makes_no_call_writes_nothing_and_is_exact_for_known_companies() {
    let h = Harness::default().await;
    let keys = company_keys(50, "预演");
    let mut input = keys.clone();
    input.push(keys[0].clone()); // a duplicate
    input.push("X".into()); // invalid
    h.write_keys(&input);

    // Fresh database: only the discovery calls are known.
    let report = dry_run(&h);
    assert!(!h.db.exists(), "a dry run creates no database");
    assert_eq!(h.sim.handle.request_count(), 0);
    assert!(report.contains("50 new") && report.contains("1 duplicates") && report.contains("1 invalid"), "{report}");
    assert_eq!(number_after(&report, "known exactly"), 50);
    let first = h.run(&fast_fetch()).await;
    assert!(first.calls >= 50, "the bound for new companies is their discovery calls plus an estimate");

    // Everything known and due: the dry run's count is exact.
    h.conn().execute("UPDATE companies SET fetched_at = '2000-01-01T00:00:00.000Z', next_check_at = '2000-01-01T00:00:00.000Z', next_check_reason = NULL, next_check_deep = 0", []).unwrap();
    let report = dry_run(&h);
    let predicted = number_after(&report, "known exactly");
    assert!(report.contains("50 due"), "{report}");
    let before = h.sim.handle.request_count();
    let second = h.run(&fast_fetch()).await;
    assert_eq!(second.calls, predicted, "{report}");
    assert_eq!(h.sim.handle.request_count() - before, predicted as usize);

    // Inside the refresh window: nothing to do, and it says so.
    let report = dry_run(&h);
    assert!(report.contains("50 fresh") && number_after(&report, "known exactly") == 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_reproduces_the_customers_table_exactly_without_a_call() {
    let h = Harness::default().await;
    let mut keys = company_keys(40, "重建");
    keys.push("QCC-SIM-207-r".into());
    h.write_keys(&keys);
    h.run(&fast_fetch()).await;
    let before = dump_customers(&h.conn());
    h.conn().execute("UPDATE disclosure SET name_id = NULL, sales_amount = -1 WHERE valid_to IS NULL", []).unwrap();
    let calls = h.sim.handle.request_count();
    let out = bin().args(["rebuild", "--db"]).arg(&h.db).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(dump_customers(&h.conn()), before);
    assert_eq!(h.sim.handle.request_count(), calls, "no call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_excel_friendly_csv_that_parses_back_with_chinese_intact() {
    let h = Harness::default().await;
    let keys = company_keys(10, "导出");
    let mut text = String::from("企业名称,内部编号,year\n");
    for (i, k) in keys.iter().enumerate() {
        text.push_str(&format!("{k},编号{i},x{i}\n"));
    }
    std::fs::write(&h.input, text).unwrap();
    h.run(&fast_fetch()).await;
    let out_path = h.dir.path().join("export.csv");
    let out = bin().args(["export", "--db"]).arg(&h.db).arg("--out").arg(&out_path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&out_path).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM for Excel");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} in {headers:?}"));
    let (key, customer, code, clash) = (col("search_key"), col("customer_name"), col("内部编号"), col("year (input)"));
    let mut n = 0;
    let conn = h.conn();
    for record in reader.records() {
        let record = record.unwrap();
        let i: usize = record[code].trim_start_matches("编号").parse().unwrap();
        assert_eq!(&record[key], keys[i].as_str(), "the input columns join back to their company");
        assert_eq!(&record[clash], format!("x{i}"));
        n += 1;
        if n == 1 {
            let stored: Option<String> = conn
                .query_row(
                    "SELECT name FROM customers WHERE search_key = ?1 ORDER BY query_year DESC, page_index, row_index LIMIT 1",
                    [&record[key]],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(record[customer].to_string(), stored.unwrap_or_default(), "Chinese text round-trips");
        }
    }
    assert_eq!(n, count(&conn, "SELECT COUNT(*) FROM customers"));

    let latest = bin().args(["export", "--latest", "--out", "-", "--db"]).arg(&h.db).output().unwrap();
    let latest_rows = csv::Reader::from_reader(&latest.stdout[3..]).records().count() as i64;
    assert_eq!(latest_rows, count(&conn, "SELECT COUNT(*) FROM latest_customers"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_progress_is_periodic_lines_and_every_run_ends_with_a_summary() {
    let h = Harness::default().await;
    h.write_keys(&company_keys(40, "进度"));
    let out = bin()
        .args(["run", "--input"])
        .arg(&h.input)
        .arg("--db")
        .arg(&h.db)
        .args(["--endpoint", &h.sim.endpoint(), "--qps", "40", "--progress-every", "500ms"])
        .env("QCC_KEY", DEMO_KEY)
        .env("QCC_SECRET_KEY", DEMO_SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The total is the whole input (a quick count), not what was read so far,
    // and the ETA comes with the calls still to make.
    let lines = stderr.lines().filter(|l| l.contains("of 40 input rows settled") && l.contains("ETA")).count();
    assert!(lines >= 2, "periodic progress lines: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no terminal escapes in a log file");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for part in ["run 1 finished (exit 0)", "companies", "calls", "rows", "remaining  nothing"] {
        assert!(stdout.contains(part), "summary has {part:?}: {stdout}");
    }
    // The summary is recorded with the run.
    let summary: String = h.conn().query_row("SELECT summary FROM runs", [], |r| r.get(0)).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["exit_code"], 0);

    // status, for people and for scripts.
    let status = bin().args(["status", "--json", "--db"]).arg(&h.db).output().unwrap();
    assert_eq!(status.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["runs"][0]["exit_code"], 0);
    assert!(json["customer_rows"].as_u64().unwrap() > 0);
    assert!(json["calls_today_beijing"].as_u64().unwrap() > 0);
    let table = bin().args(["status", "--db"]).arg(&h.db).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("Companies by state") && table.contains("done"), "{table}");
    // Reading leaves the one file behind, no -wal/-shm beside it.
    for suffix in ["-wal", "-shm"] {
        let mut side = h.db.clone().into_os_string();
        side.push(suffix);
        assert!(!std::path::Path::new(&side).exists(), "status left {side:?} behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let h = Harness::default().await;
    h.write_keys(&company_keys(5, "日志"));
    let out = bin()
        .args(["--log-format", "json", "run", "--input"])
        .arg(&h.input)
        .arg("--db")
        .arg(&h.db)
        .args(["--endpoint", &h.sim.endpoint(), "--qps", "0"])
        .env("QCC_KEY", DEMO_KEY)
        .env("QCC_SECRET_KEY", DEMO_SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().count() >= 2);
    for line in stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}
