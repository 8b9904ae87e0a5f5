//! Test helpers: a simulator on 127.0.0.1:0, a temp directory with an input
//! CSV and a database, and what the simulator holds, computed independently
//! of the pipeline, to compare the database against.
#![allow(dead_code)]

mod receipts;
#[allow(unused_imports)]
pub use receipts::*;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use qcc_customers::cli::FetchArgs;
use qcc_customers::cmd::demo::default_fetch_args;
use qcc_customers::pipeline::intake::input::InputSource;
use qcc_customers::pipeline::report::progress::ProgressMode;
use qcc_customers::pipeline::{self, RunOptions, Summary};
use qcc_customers::qcc::{wire, Credentials};
use qcc_customers::simulator::{data, Listing, Profile, SimConfig, Simulator, DEMO_KEY, DEMO_SECRET};
use rusqlite::Connection;
use tokio_util::sync::CancellationToken;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub sim: Simulator,
    pub db: PathBuf,
    pub input: PathBuf,
}

/// Fast, test-friendly `run` flags: no rate limit, short backoffs.
pub fn fast_fetch() -> FetchArgs {
    let mut f = default_fetch_args();
    f.qps = 0.0;
    f.concurrency = "8".into();
    f.retry_base = Duration::from_millis(5);
    f.throttle_base = Duration::from_millis(50);
    f.timeout = Duration::from_secs(5);
    f
}

impl Harness {
    pub async fn new(config: SimConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = Simulator::start(config).await.expect("simulator starts");
        let db = dir.path().join("out.sqlite");
        let input = dir.path().join("companies.csv");
        Self { dir, sim, db, input }
    }

    pub async fn default() -> Self {
        Self::new(SimConfig::default()).await
    }

    /// A simulator whose listing holds only the latest year: every company is
    /// paged per year, so the pages a run pays for are known in advance
    /// ([`expected_pages`]).
    pub async fn per_year() -> Self {
        Self::new(per_year_config()).await
    }

    /// Write a one-column input CSV with a `company` header.
    pub fn write_keys(&self, keys: &[String]) {
        let mut text = String::from("company\n");
        for k in keys {
            text.push_str(&csv_field(k));
            text.push('\n');
        }
        std::fs::write(&self.input, text).expect("write input");
    }

    pub fn options(&self, fetch: &FetchArgs) -> RunOptions {
        self.options_with(fetch, Credentials::new(DEMO_KEY, DEMO_SECRET))
    }

    pub fn options_with(&self, fetch: &FetchArgs, credentials: Credentials) -> RunOptions {
        qcc_customers::cmd::run::options(
            InputSource::Path(self.input.clone()),
            self.input.display().to_string(),
            &Default::default(),
            self.db.clone(),
            reqwest::Url::parse(&self.sim.endpoint()).unwrap(),
            credentials,
            fetch,
            ProgressMode::Quiet,
        )
        .expect("valid options")
    }

    pub async fn run(&self, fetch: &FetchArgs) -> Summary {
        pipeline::run(self.options(fetch), CancellationToken::new()).await.expect("run completes")
    }

    /// Run with the time of day taken from `clock`.
    pub async fn run_at(&self, fetch: &FetchArgs, clock: qcc_customers::clock::Clock) -> Summary {
        let mut opts = self.options(fetch);
        opts.clock = clock;
        // The simulator checks the signature's Timespan against the same clock.
        self.sim.handle.set_clock(clock);
        pipeline::run(opts, CancellationToken::new()).await.expect("run completes")
    }

    /// Run against another simulator (same database), e.g. one whose data changed.
    pub async fn run_on(&self, sim: &Simulator, fetch: &FetchArgs) -> Summary {
        let mut opts = self.options(fetch);
        opts.client.endpoint = reqwest::Url::parse(&sim.endpoint()).unwrap();
        pipeline::run(opts, CancellationToken::new()).await.expect("run completes")
    }

    /// Make every company of the database due for a refresh.
    pub fn age(&self) {
        self.conn().execute("UPDATE companies SET fetched_at = '2000-01-01T00:00:00.000Z', next_check_at = '2000-01-01T00:00:00.000Z', next_check_reason = NULL, next_check_deep = 0", []).unwrap();
    }

    /// `qcc-customers rebuild` on the database; panics unless it exits 0.
    pub fn rebuild(&self) {
        self.rebuild_with(&[]);
    }

    /// `qcc-customers rebuild` with `extra` flags; its output, once it exits 0.
    pub fn rebuild_with(&self, extra: &[&str]) -> String {
        let mut args: Vec<&OsStr> = vec!["rebuild".as_ref(), "--db".as_ref(), self.db.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        let out = tool_within(&args);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What `qcc-customers status` prints for the database.
    pub fn status_text(&self) -> String {
        let out = tool_within(&["status".as_ref(), "--db".as_ref(), self.db.as_os_str()]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn conn(&self) -> Connection {
        Connection::open(&self.db).expect("open db")
    }

    pub fn seed(&self) -> u64 {
        self.sim.handle.seed()
    }
}

/// The release build of the binary (what users run), built once per test
/// process: the crash tests kill this one, not the debug build `cargo test`
/// made.
pub fn release_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let manifest = env!("CARGO_MANIFEST_DIR");
            let target = PathBuf::from(manifest).join("target");
            let status = std::process::Command::new(env!("CARGO"))
                .args(["build", "--release", "--quiet", "--bin", "qcc-customers", "--manifest-path"])
                .arg(PathBuf::from(manifest).join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target)
                .status()
                .expect("cargo runs");
            assert!(status.success(), "the release build failed");
            target.join("release").join("qcc-customers")
        })
        .clone()
}

/// The release binary's `run` on the harness's input and database, quietly,
/// with extra flags; stdin, stdout and stderr discarded unless changed.
pub fn run_command(h: &Harness, extra: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(release_binary());
    cmd.args(["run", "--quiet", "--input"])
        .arg(&h.input)
        .arg("--db")
        .arg(&h.db)
        .args(["--endpoint", &h.sim.endpoint()])
        .args(extra)
        .env("QCC_KEY", DEMO_KEY)
        .env("QCC_SECRET_KEY", DEMO_SECRET)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// Start [`run_command`].
pub fn spawn_run(h: &Harness, extra: &[&str]) -> std::process::Child {
    run_command(h, extra).spawn().expect("binary starts")
}

/// A clock that reads noon in Beijing today, whatever the hour: a test that
/// counts calls per Beijing day never runs across its midnight.
pub fn noon_in_beijing() -> qcc_customers::clock::Clock {
    let now = chrono::Utc::now();
    let noon = qcc_customers::clock::beijing_day_start(now) + chrono::Duration::hours(12);
    qcc_customers::clock::Clock::shifted(noon - now)
}

/// SIGKILL a run started by `start` once the simulator has seen each of
/// Poll `done` until it holds; fail loudly after `within` (a wait that can
/// never end is a failing test, not a hung one).
pub async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "gave up after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `points` requests (sorted); returns how many runs were killed (a run that
/// ended first is not).
pub async fn kill_at(h: &Harness, points: &[usize], start: impl Fn(&Harness) -> std::process::Child) -> u32 {
    let mut kills = 0;
    for &point in points {
        let mut child = start(h);
        let mut ended = false;
        wait_until(&format!("request {point} or the run's end"), Duration::from_secs(120), || {
            ended = child.try_wait().unwrap().is_some();
            ended || h.sim.handle.request_count() >= point
        })
        .await;
        if !ended {
            child.kill().unwrap(); // SIGKILL: no chance to clean up
            kills += 1;
        }
        child.wait().unwrap();
    }
    kills
}

/// Five request counts at random in `20..total × 0.9`, sorted, from a seed
/// that is printed: `QCC_TEST_SEED` replays a failure, otherwise a new seed
/// each run.
pub fn random_points(total: usize) -> Vec<usize> {
    let seed = std::env::var("QCC_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut points: Vec<usize> = (0..5).map(|_| rng.usize(20..total * 9 / 10)).collect();
    points.sort_unstable();
    eprintln!("kill points {points:?} of {total} pages (QCC_TEST_SEED={seed} replays them)");
    points
}

/// Every column of every stored customer row, in identity order.
pub fn dump_customers(conn: &Connection) -> Vec<String> {
    conn.prepare("SELECT * FROM customers ORDER BY search_key, query_year, from_listing, page_index, row_index")
        .unwrap()
        .query_map([], |r| {
            let n = r.as_ref().column_count();
            Ok((0..n)
                .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Company names that the simulator treats as ordinary companies.
pub fn company_keys(n: usize, tag: &str) -> Vec<String> {
    (0..n).map(|i| format!("{tag}测试企业{i:04}有限公司")).collect()
}

/// A simulator config whose listing holds only the latest year.
pub fn per_year_config() -> SimConfig {
    SimConfig { listing: Listing::LatestYear, ..SimConfig::default() }
}

/// The (key, year, page) requests a clean first fetch makes when the listing
/// holds only the latest year: discovery, then `max(1, min(100, ceil(n/50)))`
/// pages per year — except for a company whose discovery page already is its
/// whole listing and carries every year of its year list (one year, 1–50 rows).
pub fn expected_pages(seed: u64, keys: &[String]) -> BTreeSet<(String, String, u32)> {
    let mut out = BTreeSet::new();
    for key in keys {
        out.insert((key.clone(), String::new(), 1));
        let years = data::company(seed, key).years;
        if years.len() == 1 && (1..=50).contains(&years[0].total) {
            continue;
        }
        for y in years {
            let pages = u64::from(y.total).div_ceil(50).clamp(1, 100) as u32;
            for p in 1..=pages {
                out.insert((key.clone(), y.year.clone(), p));
            }
        }
    }
    out
}

/// One stored customer row, by what it is in the API's data: (search key,
/// report year, position among that year's rows). The same whichever query
/// brought it.
pub type RowId = (String, String, u32);

/// The fields compared for each row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFields {
    pub year: Option<String>,
    pub name: Option<String>,
    pub key_no: Option<String>,
    pub sales_amount: Option<f64>,
    pub sales_amount_text: Option<String>,
    pub sales_percent_text: Option<String>,
    pub source: Option<String>,
}

/// What the simulator holds for these keys (paging profile).
pub fn expected_rows(seed: u64, keys: &[String]) -> BTreeMap<RowId, RowFields> {
    expected_rows_of(Profile::Paging, seed, keys, 0, 0)
}

/// [`expected_rows`] for a simulator with `extra_years` and `revision` set.
pub fn expected_rows_at(seed: u64, keys: &[String], extra_years: u32, revision: u64) -> BTreeMap<RowId, RowFields> {
    expected_rows_of(Profile::Paging, seed, keys, extra_years, revision)
}

/// What the simulator holds for these keys in `profile` (at most 5,000 rows
/// of a year: what paging can reach).
pub fn expected_rows_of(
    profile: Profile,
    seed: u64,
    keys: &[String],
    extra_years: u32,
    revision: u64,
) -> BTreeMap<RowId, RowFields> {
    let mut out = BTreeMap::new();
    for key in keys {
        for y in data::company_of(profile, seed, key, extra_years).years {
            let n = y.total.min(5000);
            for i in 0..n {
                let json = data::row_rev(seed, revision, key, &y.year, i);
                let body = serde_json::json!({"Status": "200", "Result": {"ClientList": [json]}});
                let parsed = wire::parse(body.to_string().as_bytes()).unwrap();
                let r = &parsed.clients[0];
                out.insert(
                    (key.clone(), y.year.clone(), i),
                    RowFields {
                        year: Some(r.year.clone().unwrap_or_else(|| y.year.clone())),
                        name: r.name.clone(),
                        key_no: r.key_no.clone(),
                        sales_amount: r.sales_amount,
                        sales_amount_text: r.sales_amount_text.clone(),
                        sales_percent_text: r.sales_percent_text.clone(),
                        source: r.source.clone(),
                    },
                );
            }
        }
    }
    out
}

/// Every stored customer row, by what it is (see [`RowId`]): a year's rows
/// in the order their query listed them. Panics if one year of a company
/// holds rows of both the listing and the year's own query — that would be
/// two stored rows for one API row.
///
/// Every test that reads them this way also checks the readers' model: its
/// current versions are exactly these rows.
pub fn stored_rows(conn: &Connection) -> BTreeMap<RowId, RowFields> {
    assert_current_versions_are_customers(conn);
    let mut stmt = conn
        .prepare(
            "SELECT search_key, query_year, from_listing, year, name, key_no, sales_amount,
                    sales_amount_text, sales_percent_text, source FROM customers
             ORDER BY search_key, query_year, from_listing, page_index, row_index",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?),
                RowFields {
                    year: r.get(3)?,
                    name: r.get(4)?,
                    key_no: r.get(5)?,
                    sales_amount: r.get(6)?,
                    sales_amount_text: r.get(7)?,
                    sales_percent_text: r.get(8)?,
                    source: r.get(9)?,
                },
            ))
        })
        .unwrap();
    let mut out = BTreeMap::new();
    let mut group: Option<(String, String, bool)> = None;
    let mut i = 0;
    for row in rows {
        let ((key, year, listing), fields) = row.unwrap();
        match &group {
            Some((k, y, l)) if *k == key && *y == year => {
                assert_eq!(*l, listing, "{key} {year} holds rows of both the listing and the year's query");
                i += 1;
            }
            _ => i = 0,
        }
        group = Some((key.clone(), year.clone(), listing));
        out.insert((key, year, i), fields);
    }
    out
}

/// Assert two row maps are equal, reporting the first differences readably.
pub fn assert_same_rows(stored: &BTreeMap<RowId, RowFields>, expected: &BTreeMap<RowId, RowFields>) {
    let missing: Vec<_> = expected.keys().filter(|k| !stored.contains_key(*k)).take(5).collect();
    let extra: Vec<_> = stored.keys().filter(|k| !expected.contains_key(*k)).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing rows {missing:?}, unexpected rows {extra:?}");
    for (k, v) in expected {
        assert_eq!(&stored[k], v, "row {k:?} differs");
    }
}

pub fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// `run --dry-run` on `input` and `db` without credentials; panics unless it
/// exits 0; its report.
pub fn dry_run_report(input: &std::path::Path, db: &std::path::Path, extra: &[&str]) -> String {
    let mut args: Vec<&OsStr> = vec![
        "run".as_ref(),
        "--dry-run".as_ref(),
        "--input".as_ref(),
        input.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let out = tool_within(&args);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 report")
}

/// How long a command of the binary may take on a test's small files
/// before the test fails instead of hanging (the forecast once looped for
/// good under `--refresh-after 0s`, and `status` with it).
pub const TOOL_LIMIT: Duration = Duration::from_secs(120);

/// The binary with `args`, without credentials in its environment; its
/// output once it exits, or a failed test when it has not exited within
/// [`TOOL_LIMIT`] (it is killed). Its output is read as it comes, so a
/// long one cannot block it.
pub fn tool_within(args: &[&OsStr]) -> std::process::Output {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
        .args(args)
        .env_remove("QCC_KEY")
        .env_remove("QCC_SECRET_KEY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            out
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = std::time::Instant::now() + TOOL_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the binary") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} did not return within {TOOL_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output { status, stdout: stdout.join().expect("stdout"), stderr: stderr.join().expect("stderr") }
}

/// The current versions of the readers' model are exactly the stored rows
/// (every unit complete): the same rows, value for value, in both views.
pub fn assert_current_versions_are_customers(conn: &Connection) {
    let cols = "search_key, year, query_year, from_listing, page_index, row_index, name, key_no, image_url, \
                sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at";
    let rows = format!("SELECT {cols} FROM customers");
    let current = format!("SELECT {cols} FROM customers_history WHERE valid_to IS NULL");
    for (a, b) in [(&rows, &current), (&current, &rows)] {
        let missing = count(conn, &format!("SELECT COUNT(*) FROM ({a} EXCEPT {b})"));
        assert_eq!(missing, 0, "rows of `{a}` missing from `{b}`");
    }
    assert_eq!(
        count(conn, &format!("SELECT COUNT(*) FROM ({rows})")),
        count(conn, &format!("SELECT COUNT(*) FROM ({current})"))
    );
}
