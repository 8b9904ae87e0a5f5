//! A full disk: the run stops before it fills the database's filesystem, and
//! when a write fails anyway, it says that nothing committed was lost and the
//! next run resumes without paying twice beyond the documented bound. Runs on
//! a small tmpfs mounted for the test, which needs root: the tests are
//! `#[ignore]`d so that `cargo test` as a user does not report them passed,
//! and `.ci/run` (root) runs them with `cargo test --test disk -- --ignored`.
//! Run as anyone else with `--ignored`, they fail saying why.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use qcc_customers::simulator::{DEMO_KEY, DEMO_SECRET};

/// A tmpfs of `mib` MiB, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(parent: &Path, mib: u32) -> SmallDisk {
        let dir = parent.join("small-disk");
        std::fs::create_dir_all(&dir).expect("a directory to mount on");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot mount a tmpfs of {mib} MiB on {} (needs root): this test checks nothing without it",
            dir.display()
        );
        SmallDisk(dir)
    }

    fn grow(&self, mib: u32) {
        let remounted =
            Command::new("mount").args(["-o", &format!("remount,size={mib}m")]).arg(&self.0).status().unwrap();
        assert!(remounted.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn run_on(h: &Harness, db: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
        .args(["run", "--quiet", "--input"])
        .arg(&h.input)
        .arg("--db")
        .arg(db)
        .args(["--endpoint", &h.sim.endpoint(), "--concurrency", "8"])
        .args(extra)
        .env("QCC_KEY", DEMO_KEY)
        .env("QCC_SECRET_KEY", DEMO_SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn rows_in(db: &Path) -> BTreeMapRows {
    stored_rows(&rusqlite::Connection::open(db).unwrap())
}

type BTreeMapRows = std::collections::BTreeMap<RowId, RowFields>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it"]
async fn a_run_on_a_nearly_full_filesystem_stops_before_its_first_call_and_says_what_to_do() {
    let h = Harness::default().await;
    let disk = SmallDisk::mount(h.dir.path(), 8);
    h.write_keys(&company_keys(20, "小盘"));
    let db = disk.0.join("out.sqlite");
    let (code, text) = run_on(&h, &db, &[]);
    eprintln!("{text}");
    assert_eq!(code, 75, "{text}");
    assert!(text.contains("below --min-free-space 256.0 MiB") && text.contains(disk.0.to_str().unwrap()), "{text}");
    assert!(text.contains("free space (or lower --min-free-space) and run again to resume"), "{text}");
    assert_eq!(h.sim.handle.request_count(), 0, "not one call was paid for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it"]
async fn a_run_filling_its_filesystem_stops_before_a_write_fails_and_resumes_without_paying_twice() {
    let h = Harness::default().await;
    // The WAL grows by whole 16 KiB pages per commit, tens of MB a second
    // at this rate until a checkpoint: the threshold leaves room for that.
    let disk = SmallDisk::mount(h.dir.path(), 64);
    let keys = company_keys(400, "将满");
    h.write_keys(&keys);
    let db = disk.0.join("out.sqlite");
    let (code, text) = run_on(&h, &db, &["--qps", "100", "--min-free-space", "40MiB"]);
    eprintln!("{text}");
    assert_eq!(code, 75, "stopped resumably before the disk filled: {text}");
    assert!(text.contains("below --min-free-space 40.0 MiB"), "{text}");
    let first = h.sim.handle.request_count();
    assert!(first > 50, "the run got going ({first} calls)");

    disk.grow(1024);
    let (code, text) = run_on(&h, &db, &["--qps", "0"]);
    assert_eq!(code, 0, "{text}");
    assert_same_rows(&rows_in(&db), &expected_rows(h.seed(), &keys));
    assert_eq!(h.sim.handle.pages_served_twice(), 0, "a graceful stop commits what it paid for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it"]
async fn when_a_write_fails_for_lack_of_space_nothing_committed_is_lost_and_the_resume_repays_within_the_bound() {
    let h = Harness::default().await;
    let disk = SmallDisk::mount(h.dir.path(), 3);
    let keys = company_keys(300, "写满");
    h.write_keys(&keys);
    let db = disk.0.join("out.sqlite");
    let concurrency = 8;
    let (code, text) = run_on(&h, &db, &["--qps", "0", "--min-free-space", "0"]);
    eprintln!("{text}");
    assert_eq!(code, 73, "{text}");
    assert!(text.contains("the disk is full") && text.contains("nothing committed was lost"), "{text}");
    assert!(text.contains("free space and run again to resume"), "{text}");
    let report: String = text.lines().filter(|l| l.starts_with("error:") || l.starts_with("  caused by:")).collect();
    assert_eq!(report.matches("database or disk is full").count(), 1, "one sentence per cause: {report}");
    let check: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap_or_else(|_| "unreadable".into());
    assert_eq!(check, "ok", "the file is intact");

    disk.grow(1024);
    let (code, text) = run_on(&h, &db, &["--qps", "0"]);
    assert_eq!(code, 0, "{text}");
    assert_same_rows(&rows_in(&db), &expected_rows(h.seed(), &keys));
    let bound = concurrency * qcc_customers::pipeline::UNSTORED_CALLS_PER_WORKER as u32;
    let twice = h.sim.handle.pages_served_twice();
    eprintln!("disk full: {twice} pages paid twice (bound {bound})");
    assert!(twice <= bound, "{twice} pages paid twice, bound {bound}");
}
