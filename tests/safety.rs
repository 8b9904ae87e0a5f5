//! Signals, exit codes, security and database robustness (docs/design.md §2, §5, §8).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use qcc_customers::simulator::{DEMO_KEY, DEMO_SECRET};

fn binary(h: &Harness, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qcc-customers"));
    cmd.args(["run", "--input"]).arg(&h.input).arg("--db").arg(&h.db);
    cmd.args(["--endpoint", &h.sim.endpoint()]).args(extra);
    cmd.env("QCC_KEY", DEMO_KEY).env("QCC_SECRET_KEY", DEMO_SECRET);
    cmd.stdin(Stdio::null());
    cmd
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
}

async fn wait_for_requests(h: &Harness, n: usize) {
    wait_until(&format!("{n} requests"), Duration::from_secs(60), || h.sim.handle.request_count() >= n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_signal_drains_and_exits_75_and_the_next_run_completes() {
    let h = Harness::default().await;
    let keys = company_keys(80, "信号");
    h.write_keys(&keys);
    for sig in ["-INT", "-TERM"] {
        let child = binary(&h, &["--qps", "50", "--quiet"]).stdout(Stdio::piped()).spawn().unwrap();
        let before = h.sim.handle.request_count();
        wait_for_requests(&h, before + 20).await;
        signal(child.id(), sig);
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        assert_eq!(out.status.code(), Some(75), "{sig}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("interrupted"), "the summary says why: {stdout}");
    }
    let out = binary(&h, &["--qps", "0", "--quiet"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &keys));
    assert_eq!(h.sim.handle.pages_served_twice(), 0, "a drained stop pays for nothing twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_and_committed_work_is_safe() {
    // Calls that take 3 s each: the first signal waits for them, the second does not.
    let config = qcc_customers::simulator::SimConfig {
        faults: qcc_customers::simulator::Faults {
            latency: Some((Duration::from_secs(3), Duration::from_secs(3))),
            ..Default::default()
        },
        ..Default::default()
    };
    let h = Harness::new(config).await;
    h.write_keys(&company_keys(10, "二次信号"));
    let mut child =
        binary(&h, &["--qps", "0", "--concurrency", "4", "--quiet"]).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_requests(&h, 4).await;
    signal(child.id(), "-INT");
    // The second signal only once the run has taken the first (it says so).
    let stderr = child.stderr.take().unwrap();
    let acknowledged = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let seen = lines.by_ref().map_while(Result::ok).any(|l| l.contains("Signal received"));
        // Keep reading so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        seen
    });
    assert!(acknowledged.await.unwrap(), "the run acknowledged the first signal");
    signal(child.id(), "-INT");
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(75));
    assert!(started.elapsed() < Duration::from_secs(2), "did not wait for the 3 s calls");
    // The file is consistent and the next run resumes.
    let conn = h.conn();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_database_exits_73_at_once() {
    let config = qcc_customers::simulator::SimConfig {
        faults: qcc_customers::simulator::Faults {
            latency: Some((Duration::from_millis(200), Duration::from_millis(200))),
            ..Default::default()
        },
        ..Default::default()
    };
    let h = Harness::new(config).await;
    h.write_keys(&company_keys(40, "锁"));
    let mut first = binary(&h, &["--qps", "0", "--quiet"]).spawn().unwrap();
    wait_for_requests(&h, 1).await;
    let started = std::time::Instant::now();
    let second = binary(&h, &["--qps", "0", "--quiet"]).output().unwrap();
    assert_eq!(second.status.code(), Some(73));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another run"));
    first.kill().unwrap();
    first.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_is_private_and_the_secret_never_appears_anywhere() {
    let h = Harness::default().await;
    let mut keys = company_keys(20, "保密");
    keys.push("QCC-SIM-HTTP-500".into()); // errors are logged too
    h.write_keys(&keys);
    let out = binary(&h, &["--qps", "0", "--max-retries", "1", "--log-format", "json"])
        .env("QCC_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&h.db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "database mode {mode:o}");
    }
    let mut haystacks = vec![out.stdout.clone(), out.stderr.clone()];
    for suffix in ["", "-wal", "-shm"] {
        let mut p = h.db.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(bytes) = std::fs::read(std::path::PathBuf::from(p)) {
            haystacks.push(bytes);
        }
    }
    for hay in &haystacks {
        assert!(!contains(hay, DEMO_SECRET.as_bytes()), "the secret leaked");
        assert!(!contains(hay, b"Token"), "a Token header leaked");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_key_file_readable_by_others_is_refused() {
    let h = Harness::default().await;
    h.write_keys(&company_keys(2, "文件"));
    let secret = h.dir.path().join("secret");
    std::fs::write(&secret, format!("{DEMO_SECRET}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out =
            binary(&h, &["--quiet", "--secret-key-file"]).arg(&secret).env_remove("QCC_SECRET_KEY").output().unwrap();
        assert_eq!(out.status.code(), Some(78));
        assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = binary(&h, &["--quiet", "--qps", "0", "--secret-key-file"])
        .arg(&secret)
        .env_remove("QCC_SECRET_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn plain_http_to_another_host_is_refused_with_64() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "company\n甲公司有限公司\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
        .args(["run", "--input"])
        .arg(&input)
        .arg("--db")
        .arg(dir.path().join("x.sqlite"))
        // Never contacted: refused before any connection is made.
        .args(["--endpoint", "http://qcc.example.invalid/api/yj/Customer/GetList"])
        .env("QCC_KEY", "k")
        .env("QCC_SECRET_KEY", "s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-insecure-http"));
    let out = Command::new(env!("CARGO_BIN_EXE_qcc-customers")).args(["run", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "usage errors exit 64");
}

#[test]
fn every_migration_file_is_compiled_in() {
    let mut on_disk: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    on_disk.sort();
    let compiled: Vec<&str> = qcc_customers::store::migration_files().collect();
    assert_eq!(on_disk, compiled);
}

#[test]
fn a_database_from_a_newer_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.sqlite");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        // A newer qcc-customers stamps its files as ours, as this one does.
        let id = qcc_customers::store::APPLICATION_ID;
        conn.execute_batch(&format!(
            "CREATE TABLE future (x); PRAGMA user_version = 99; PRAGMA application_id = {id};"
        ))
        .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let err = qcc_customers::store::open_for_writing(&db).err().expect("refused");
    assert!(err.to_string().contains("newer"), "{err}");
    assert!(std::fs::read(&db).unwrap() == before, "the file was changed");
}

#[test]
fn another_applications_sqlite_file_is_refused_with_exit_73_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "company\n甲公司有限公司\n").unwrap();
    for (name, setup, says) in [
        ("tables.sqlite", "CREATE TABLE foo (x); INSERT INTO foo VALUES (1);", "it holds other tables (foo)"),
        ("stamped.sqlite", "PRAGMA application_id = 42;", "its application_id is 0x0000002a"),
        // Another tool's own versioning must not read as a newer qcc-customers.
        ("versioned.sqlite", "CREATE TABLE notes (x); PRAGMA user_version = 7;", "it holds other tables (notes)"),
    ] {
        let db = dir.path().join(name);
        rusqlite::Connection::open(&db).unwrap().execute_batch(setup).unwrap();
        let before = std::fs::read(&db).unwrap();
        for args in [vec!["run", "--input", input.to_str().unwrap()], vec!["status"]] {
            let out = Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
                .args(&args)
                .arg("--db")
                .arg(&db)
                .env("QCC_KEY", DEMO_KEY)
                .env("QCC_SECRET_KEY", DEMO_SECRET)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(73), "{name} {args:?}: {stderr}");
            assert!(stderr.contains("is not a qcc-customers database") && stderr.contains(says), "{stderr}");
            assert!(stderr.contains("left untouched"), "{stderr}");
        }
        assert!(std::fs::read(&db).unwrap() == before, "{name} was changed");
    }
}

#[test]
fn a_database_from_an_older_version_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.sqlite");
    {
        // A file as version 1 of the tool left it, with a stored row.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(include_str!("../migrations/0001_init.sql")).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO customers (search_key, query_year, page_index, row_index, name, fetched_at)
             VALUES ('甲公司有限公司', '2023', 1, 0, '乙', '2026-01-01T00:00:00.000Z');",
        )
        .unwrap();
    }
    let store = qcc_customers::store::open_for_writing(&db).unwrap();
    let version: i64 = store.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version as usize, qcc_customers::store::schema_version());
    let id: i32 = store.conn.pragma_query_value(None, "application_id", |r| r.get(0)).unwrap();
    assert_eq!(id, qcc_customers::store::APPLICATION_ID, "our file from before the stamp is stamped");
    let rows: i64 = store.conn.query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 1, "the stored rows survive the upgrade");
    store.conn.query_row("SELECT COUNT(*) FROM staged_rows", [], |r| r.get::<_, i64>(0)).unwrap();
}

#[test]
fn a_missing_directory_or_a_directory_given_as_the_database_is_named_once_with_exit_73() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "company\n甲公司有限公司\n").unwrap();
    std::fs::create_dir(dir.path().join("a-dir.sqlite")).unwrap();
    for (db, says) in [("nodir/x.sqlite", "the directory nodir does not exist"), ("a-dir.sqlite", "it is a directory")]
    {
        let out = Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
            .current_dir(dir.path())
            .args(["run", "--quiet", "--input"])
            .arg(&input)
            .args(["--db", db, "--endpoint", "http://127.0.0.1:9/x"])
            .env("QCC_KEY", DEMO_KEY)
            .env("QCC_SECRET_KEY", DEMO_SECRET)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(73), "{stderr}");
        assert_eq!(stderr.matches(says).count(), 1, "{stderr}");
        assert!(!stderr.contains(".lock"), "the lock file is not what the user got wrong: {stderr}");
        assert!(stderr.contains("nothing was written"), "{stderr}");
    }
    assert!(!dir.path().join("nodir").exists());
}
