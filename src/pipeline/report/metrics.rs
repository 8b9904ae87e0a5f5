//! `run --metrics-file`: after every run (finished, stopped, or failed) the
//! figures a monitor scrapes, in Prometheus' text exposition format, for
//! node_exporter's textfile collector. Written atomically: a temporary file
//! in the same directory, then a rename over the old one, so the collector
//! never reads half a file and no temporary file is left behind.
//!
//! Names follow Prometheus' conventions: the `qcc_customers_` prefix, base
//! units (`_seconds`, `_timestamp_seconds` for times of day), `_total` for
//! counters (the ledger's calls: the file's `api_calls` only grows).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::summary::Summary;
use crate::clock;
use crate::pipeline::plan::schedule::{self, Settings};
use crate::store::{self, read};

/// How one run went, as the caller knows it; the rest is read from the file.
pub struct RunOutcome<'a> {
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub exit_code: i32,
    /// Present when the run got as far as its summary.
    pub summary: Option<&'a Summary>,
    /// `--daily-limit`, when set.
    pub daily_limit: Option<u64>,
    /// The page size the forecast counts in.
    pub page_size: u32,
}

/// One metric family: its help, type, and samples (labels, value).
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, f64)>,
}

/// The metrics of a run on `db` (read-only; what cannot be read is left out,
/// never invented), rendered.
pub fn render(db: &Path, run: &RunOutcome<'_>, previous: Option<&str>) -> String {
    let conn = store::open_for_reading(db).ok();
    let mut families = vec![
        gauge(
            "last_run_exit_code",
            "Exit code of the last run (0 all final, 75 resumable, 78 credentials or account refused, …).",
            run.exit_code as f64,
        ),
        gauge(
            "last_run_start_timestamp_seconds",
            "When the last run started, seconds since 1970.",
            seconds(run.started),
        ),
        gauge("last_run_end_timestamp_seconds", "When the last run ended, seconds since 1970.", seconds(run.ended)),
        gauge(
            "last_run_duration_seconds",
            "How long the last run took.",
            (run.ended - run.started).num_milliseconds() as f64 / 1e3,
        ),
    ];
    let last_success = conn
        .as_ref()
        .and_then(|c| read::last_success(c).ok().flatten())
        .and_then(|t| clock::parse_iso(&t))
        .map(seconds)
        .or_else(|| (run.exit_code == 0).then(|| seconds(run.ended)))
        .or_else(|| previous.and_then(|p| sample_of(p, "qcc_customers_last_success_timestamp_seconds")));
    if let Some(t) = last_success {
        families.push(gauge(
            "last_success_timestamp_seconds",
            "When a run last ended with exit code 0, seconds since 1970.",
            t,
        ));
    }
    if let Some(conn) = &conn {
        families.extend(from_file(conn, run));
    }
    let mut out = String::new();
    // Writing into a String cannot fail: the results are dropped.
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(out, "# HELP qcc_customers_{} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE qcc_customers_{} {}", f.name, f.kind);
        for (labels, value) in &f.samples {
            let _ = writeln!(out, "qcc_customers_{}{labels} {value}", f.name);
        }
    }
    out
}

/// The figures only the file knows.
fn from_file(conn: &Connection, run: &RunOutcome<'_>) -> Vec<Family> {
    let mut out = Vec::new();
    // This run's calls: from its summary, else from the ledger since it started.
    let since = clock::iso(run.started);
    let run_calls = match run.summary {
        Some(s) => Some(s.calls_by_status.clone()),
        None => read::calls_by_status_since(conn, &since).ok(),
    };
    if let Some(calls) = run_calls {
        out.push(labelled(
            "last_run_calls",
            "API calls the last run made, by the answer's status code.",
            "gauge",
            "status",
            calls,
        ));
    }
    if let Some(s) = run.summary {
        out.push(gauge("last_run_rows_written", "Customer rows the last run stored.", s.rows_written as f64));
        let c = s.changes;
        out.push(labelled(
            "last_run_changes",
            "Changes to the disclosures the last run recorded, by kind (customer_changes).",
            "gauge",
            "kind",
            vec![
                ("new_period".to_string(), c.new_period),
                ("added".to_string(), c.added),
                ("changed".to_string(), c.changed),
                ("removed".to_string(), c.removed),
            ],
        ));
    }
    if let Ok(calls) = read::all_calls_by_status(conn) {
        out.push(labelled(
            "calls_total",
            "API calls in the file's ledger, by the answer's status code.",
            "counter",
            "status",
            calls,
        ));
    }
    if let Ok(rows) = read::customer_rows_total(conn) {
        out.push(gauge("customer_rows", "Customer rows the file holds.", rows as f64));
    }
    if let Ok(states) = read::all_companies_by_state(conn) {
        out.push(labelled("companies", "Companies in the file, by state.", "gauge", "state", states));
    }
    let now = run.ended;
    if let Ok(today) = read::calls_since(conn, &clock::iso(clock::beijing_day_start(now))) {
        out.push(gauge(
            "calls_today",
            "API calls made today (Beijing day), the day --daily-limit counts.",
            today as f64,
        ));
    }
    if let Some(limit) = run.daily_limit {
        out.push(gauge("daily_limit", "--daily-limit: most calls a Beijing day may hold.", limit as f64));
    }
    let settings: Settings = read::last_schedule_settings(conn)
        .ok()
        .flatten()
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default();
    if let Ok(f) = schedule::forecast(conn, &settings, run.page_size, now, 1) {
        let week = f.checks_per_week.first().copied().unwrap_or(0);
        out.push(gauge(
            "forecast_calls_next_7_days",
            "Calls the nightly runs of the next 7 days make if nothing changes (one per check; a changed company adds its pages).",
            week as f64,
        ));
        out.push(gauge("due_now", "Companies due for a check now.", f.due_now as f64));
    }
    out
}

fn gauge(name: &'static str, help: &'static str, value: f64) -> Family {
    Family { name, help, kind: "gauge", samples: vec![(String::new(), value)] }
}

fn labelled(name: &'static str, help: &'static str, kind: &'static str, label: &str, counts: read::Counts) -> Family {
    let samples = counts.into_iter().map(|(v, n)| (format!("{{{label}=\"{}\"}}", escape(&v)), n as f64)).collect();
    Family { name, help, kind, samples }
}

/// A label value as the text format spells it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1e3
}

/// A sample's value in an earlier metrics file (to carry the last success
/// over a run that could not read the database).
fn sample_of(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Write `text` to `path` atomically: a temporary file beside it, synced,
/// then renamed over it. On failure the temporary file is removed.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".qcc-customers-metrics.").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    // The collector (another user) must be able to read it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Render and write; a failure is logged, never fails the run (its exit
/// code is what the monitor will miss, and the log says why).
pub fn write(path: &Path, db: &Path, run: &RunOutcome<'_>) {
    let previous = std::fs::read_to_string(path).ok();
    let text = render(db, run, previous.as_deref());
    match write_atomically(path, &text) {
        Ok(()) => tracing::info!(metrics_file = %path.display(), "Metrics written."),
        Err(e) => tracing::error!(metrics_file = %path.display(), error = %e, "Could not write the metrics file."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_an_earlier_success_is_read_back() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let earlier = "# HELP x y\nqcc_customers_last_success_timestamp_seconds 1764633600.5\n";
        assert_eq!(sample_of(earlier, "qcc_customers_last_success_timestamp_seconds"), Some(1764633600.5));
        assert_eq!(sample_of(earlier, "qcc_customers_last_success"), None);
    }

    #[test]
    fn a_run_that_could_not_open_its_database_still_reports_its_exit_code_and_times() {
        let dir = tempfile::tempdir().unwrap();
        let at = clock::parse_iso("2026-12-01T17:15:00.000Z").unwrap();
        let run = RunOutcome {
            started: at,
            ended: at + chrono::Duration::seconds(3),
            exit_code: 78,
            summary: None,
            daily_limit: None,
            page_size: 50,
        };
        let text = render(
            &dir.path().join("missing.sqlite"),
            &run,
            Some("qcc_customers_last_success_timestamp_seconds 100\n"),
        );
        assert!(text.contains("qcc_customers_last_run_exit_code 78\n"), "{text}");
        assert!(text.contains("qcc_customers_last_run_duration_seconds 3\n"), "{text}");
        assert!(text.contains("qcc_customers_last_success_timestamp_seconds 100\n"), "carried over: {text}");
        let path = dir.path().join("qcc.prom");
        write_atomically(&path, &text).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("qcc.prom")], "no temporary file is left");
    }
}
