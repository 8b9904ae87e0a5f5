//! `qcc-customers run`: validate flags and credentials, install signal
//! handling, run the pipeline, print the summary.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::{FetchArgs, InputArgs, RunArgs};
use crate::exit::{Ended, Failure};
use crate::pipeline::control::flow::{Concurrency, FlowConfig};
use crate::pipeline::fetch::call::RetryPolicy;
use crate::pipeline::intake::input::{InputOptions, InputSource};
use crate::pipeline::plan::schedule::Settings;
use crate::pipeline::plan::{PlanOptions, YearFilter};
use crate::pipeline::report::metrics;
use crate::pipeline::report::progress::ProgressMode;
use crate::pipeline::{self, RunOptions};
use crate::qcc::{ClientConfig, Credentials};

pub async fn run(args: RunArgs, quiet: bool, abort: &CancellationToken) -> anyhow::Result<Ended> {
    let (input, label) = if args.input == "-" {
        (InputSource::Stdin, "-".to_string())
    } else {
        (InputSource::Path(PathBuf::from(&args.input)), args.input.clone())
    };
    if args.dry_run {
        return dry_run(input, &args);
    }
    let Some(metrics_file) = args.metrics_file.clone() else {
        return fetch(input, label, &args, quiet, abort).await.map(|(ended, _)| ended);
    };
    // Whatever happens, the monitor hears how it ended.
    let started = crate::clock::Clock::system().now();
    let result = fetch(input, label, &args, quiet, abort).await;
    let (exit_code, summary) = match &result {
        Ok((ended, summary)) => (ended.code(), summary.as_ref()),
        Err(e) => (Ended::of_error(e).code(), None),
    };
    write_metrics(&metrics_file, &args.db, started, exit_code, summary, &args.fetch);
    result.map(|(ended, _)| ended)
}

/// The metrics file of a run that started at `started` and ended now (also `demo`'s).
pub(super) fn write_metrics(
    path: &Path,
    db: &Path,
    started: chrono::DateTime<chrono::Utc>,
    exit_code: i32,
    summary: Option<&pipeline::Summary>,
    fetch: &FetchArgs,
) {
    let outcome = metrics::RunOutcome {
        started,
        ended: crate::clock::Clock::system().now(),
        exit_code,
        summary,
        daily_limit: fetch.daily_limit,
        page_size: fetch.page_size,
    };
    metrics::write(path, db, &outcome);
}

/// The run itself: credentials, options, signals, the pipeline, the summary.
async fn fetch(
    input: InputSource,
    label: String,
    args: &RunArgs,
    quiet: bool,
    abort: &CancellationToken,
) -> anyhow::Result<(Ended, Option<pipeline::Summary>)> {
    // Flags that mean nothing are a usage error before anything else is looked at.
    schedule_settings(&args.fetch)?;
    let endpoint = validate_endpoint(&args.endpoint, args.allow_insecure_http)?;
    let credentials = credentials_from_env(args.secret_key_file.as_deref())?;
    let opts = options(
        input,
        label,
        &args.input_args,
        args.db.clone(),
        endpoint,
        credentials,
        &args.fetch,
        ProgressMode::detect(quiet, args.progress_every),
    )?;
    let cancel = CancellationToken::new();
    install_signal_handlers(cancel.clone(), abort.clone());
    let summary = pipeline::run(opts, cancel).await.context("the run could not complete")?;
    print!("{}", summary.render());
    Ok((summary.ended, Some(summary)))
}

/// `--dry-run`: no credentials, no call, no write; exit 0.
fn dry_run(input: InputSource, args: &RunArgs) -> anyhow::Result<Ended> {
    let plan = plan_options(&args.fetch)?;
    let settings = schedule_settings(&args.fetch)?;
    let report = crate::pipeline::report::dry_run::dry_run(
        input,
        &input_options(&args.input_args),
        &args.db,
        &plan,
        &settings,
        crate::clock::Clock::system(),
    )
    .context("the dry run could not complete")?;
    println!("Dry run over {} (no call made, nothing written):", args.input);
    print!("{}", report.render());
    Ok(Ended::Done)
}

fn input_options(args: &InputArgs) -> InputOptions {
    InputOptions {
        column: args.column.clone(),
        no_header: args.no_header,
        encoding: args.encoding.clone(),
        delimiter: args.delimiter,
        sheet: args.sheet.clone(),
    }
}

/// When to ask again, from the flags (shared by a run and a dry run).
pub fn schedule_settings(fetch: &FetchArgs) -> anyhow::Result<Settings> {
    let seconds = |d: std::time::Duration, flag: &str| {
        i64::try_from(d.as_secs()).map_err(|_| Failure::usage(format!("{flag} is too large")))
    };
    Ok(Settings {
        refresh_after_seconds: fetch.refresh_after.map(|d| seconds(d, "--refresh-after")).transpose()?,
        max_staleness_seconds: at_least_a_day(seconds(fetch.max_staleness, "--max-staleness")?, "--max-staleness")?,
        no_result_staleness_seconds: at_least_a_day(
            seconds(fetch.no_result_staleness, "--no-result-staleness")?,
            "--no-result-staleness",
        )?,
        expected_date_column: fetch.expected_date_column.clone(),
    })
}

/// A staleness bound: at least a day (a nightly run checks a company at most once a night).
fn at_least_a_day(s: i64, flag: &str) -> anyhow::Result<i64> {
    if s < Settings::MIN_STALENESS_SECS {
        return Err(Failure::usage(format!(
            "{flag} {}: at least 1d — a nightly run checks a company at most once a night; \
             --refresh-after 0s asks every company on every run",
            crate::pipeline::plan::schedule::days(chrono::Duration::seconds(s))
        ))
        .into());
    }
    Ok(s)
}

/// What to fetch, from the flags (shared by a run and a dry run).
pub fn plan_options(fetch: &FetchArgs) -> anyhow::Result<PlanOptions> {
    Ok(PlanOptions {
        refresh_after: schedule_settings(fetch)?.refresh_after(),
        full_refresh: fetch.full_refresh,
        retry_rejected: fetch.retry_rejected,
        years: YearFilter { only: fetch.years.clone(), since: fetch.since },
        page_size: fetch.page_size,
    })
}

/// Build validated pipeline options from flags (also used by `demo`).
#[allow(clippy::too_many_arguments)]
pub fn options(
    input: InputSource,
    input_label: String,
    input_args: &InputArgs,
    db: PathBuf,
    endpoint: reqwest::Url,
    credentials: Credentials,
    fetch: &FetchArgs,
    progress: ProgressMode,
) -> anyhow::Result<RunOptions> {
    if !(fetch.qps >= 0.0 && fetch.qps.is_finite()) {
        return Err(Failure::usage(format!("--qps {} must be a number ≥ 0", fetch.qps)).into());
    }
    let concurrency = match fetch.concurrency.as_str() {
        "auto" => Concurrency::Auto { max: fetch.max_concurrency as usize },
        n => match n.parse::<usize>() {
            Ok(n) if n >= 1 => Concurrency::Fixed(n),
            _ => return Err(Failure::usage(format!("--concurrency {n:?}: give a number ≥ 1 or auto")).into()),
        },
    };
    Ok(RunOptions {
        input,
        input_label,
        input_options: input_options(input_args),
        db,
        client: ClientConfig { endpoint, connect_timeout: fetch.connect_timeout, request_timeout: fetch.timeout },
        credentials,
        flow: FlowConfig {
            qps: fetch.qps,
            burst: fetch.burst,
            concurrency,
            throttle_base: fetch.throttle_base,
            throttle_cap: std::time::Duration::from_secs(120),
            max_throttle_wait: fetch.max_throttle_wait,
        },
        plan: plan_options(fetch)?,
        retry: RetryPolicy {
            max_retries: fetch.max_retries,
            base: fetch.retry_base,
            cap: std::time::Duration::from_secs(60),
        },
        max_calls: fetch.max_calls,
        daily_limit: fetch.daily_limit,
        min_free_space: fetch.min_free_space,
        schedule: schedule_settings(fetch)?,
        archive: !fetch.no_archive,
        progress,
        park_for: chrono::Duration::from_std(fetch.park_for).map_err(|_| Failure::usage("--park-for is too large"))?,
        clock: crate::clock::Clock::system(),
    })
}

/// HTTPS anywhere; plain HTTP only to loopback unless explicitly allowed (docs/design.md §8).
pub fn validate_endpoint(endpoint: &str, allow_insecure_http: bool) -> anyhow::Result<reqwest::Url> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| Failure::usage(format!("--endpoint {endpoint:?} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure_http || is_loopback(&url) => Ok(url),
        "http" => Err(Failure::usage(format!(
            "--endpoint {endpoint} is plain http to a non-loopback host: the key and token would travel \
                 unencrypted. Use https, or pass --allow-insecure-http if you really mean it"
        ))
        .into()),
        other => Err(Failure::usage(format!("--endpoint scheme {other:?} is not http(s)")).into()),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `QCC_KEY` and `QCC_SECRET_KEY` (or `--secret-key-file`); exit 78 when missing.
pub fn credentials_from_env(secret_file: Option<&Path>) -> anyhow::Result<Credentials> {
    let key = std::env::var("QCC_KEY").ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(Failure::config("QCC_KEY is not set: export your AppKey as QCC_KEY; no call was made").into());
    };
    let secret = match secret_file {
        Some(path) => read_secret_file(path)?,
        None => {
            std::env::var("QCC_SECRET_KEY").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).ok_or_else(
                || {
                    Failure::config(
                        "QCC_SECRET_KEY is not set: export your SecretKey, or use --secret-key-file; no call was made",
                    )
                },
            )?
        }
    };
    Ok(Credentials::new(key, secret))
}

fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::config(format!("cannot read --secret-key-file {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(Failure::config(format!(
                "--secret-key-file {} can be read by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            ))
            .into());
        }
    }
    #[cfg(not(unix))]
    let _ = meta; // No permission bits to check off Unix.
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::config(format!("cannot read --secret-key-file {}: {e}", path.display())))?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        return Err(Failure::config(format!("--secret-key-file {} is empty", path.display())).into());
    }
    Ok(secret)
}

/// First SIGINT/SIGTERM: stop dispatching and drain (exit 75). Second:
/// `abort`, on which `main` exits at once (75) — everything committed so far
/// is safe. The listeners are made once, before the first signal: one made
/// after it would miss a second signal sent while it was not yet listening.
pub fn install_signal_handlers(cancel: CancellationToken, abort: CancellationToken) {
    tokio::spawn(async move {
        let mut signals = Signals::new();
        signals.next().await;
        tracing::warn!("Signal received: finishing calls in flight, then stopping (send again to exit at once).");
        cancel.cancel();
        signals.next().await;
        eprintln!("Second signal: exiting now. Committed pages are safe; the next run resumes.");
        abort.cancel();
    });
}

/// SIGINT and SIGTERM, listened to for the life of the run.
#[cfg(unix)]
struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Signals { interrupt: signal(SignalKind::interrupt()).ok(), terminate: signal(SignalKind::terminate()).ok() }
    }

    /// The next signal. Without any listener (none could be made) it
    /// returns at once: a run is never left unstoppable.
    async fn next(&mut self) {
        if self.interrupt.is_none() && self.terminate.is_none() {
            return;
        }
        let interrupt = async {
            match &mut self.interrupt {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let terminate = async {
            match &mut self.terminate {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate => {}
        }
    }
}

/// Ctrl-C, off Unix.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> Self {
        Signals
    }

    /// An error (no handler) is taken as the signal: never unstoppable.
    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(validate_endpoint("http://127.0.0.1:8080/api/yj/Customer/GetList", false).is_ok());
        assert!(validate_endpoint("http://localhost/x", false).is_ok());
        assert!(validate_endpoint("http://[::1]:9/x", false).is_ok());
        assert!(validate_endpoint("https://pro.qcc.com/api/yj/Customer/GetList", false).is_ok());
        let err = validate_endpoint("http://pro.qcc.com/api", false).unwrap_err();
        assert_eq!(Ended::of_error(&err), Ended::Usage);
        assert!(validate_endpoint("http://pro.qcc.com/api", true).is_ok());
    }
}
