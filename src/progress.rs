//! Progress: an indicatif bar on a terminal, plain periodic log lines
//! otherwise (cron, CI, log shippers), nothing with `--quiet`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::Write;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::pipeline::worker::Ctx;
use crate::pipeline::Stats;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProgressMode {
    /// A live bar on stderr.
    Bar,
    /// A log line every so often.
    Lines(Duration),
    /// Nothing but warnings and the summary.
    Quiet,
}

impl ProgressMode {
    /// The bar when stderr is a terminal, else a line every `every`.
    pub fn detect(quiet: bool, every: Duration) -> Self {
        use std::io::IsTerminal;
        if quiet {
            ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines(every.max(Duration::from_millis(100)))
        }
    }
}

/// The bar on screen, if any: log lines are written "around" it so the two
/// never garble each other.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn set_active(bar: Option<ProgressBar>) {
    *ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// stderr for `tracing`, suspending the progress bar while a line is written.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `tracing_subscriber` writer factory for [`LogWriter`].
pub fn log_writer() -> LogWriter {
    LogWriter
}

pub struct Progress {
    task: Option<JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn finish(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(b) = self.bar.take() {
            set_active(None);
            b.finish_and_clear();
        }
    }
}

/// Calls, rate, rows, in flight and the throttle state: the bar's message.
fn activity(stats: &Stats, ctx: &Ctx, started: Instant) -> String {
    let calls = stats.calls.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let flow = ctx.flow.status();
    let state = if flow.paused {
        " — THROTTLED (paused)".to_string()
    } else if flow.rate_factor < 1.0 {
        format!(" — throttled, at {:.0}% rate", flow.rate_factor * 100.0)
    } else {
        String::new()
    };
    format!(
        "{} calls ({:.1}/s), {} rows, {} in flight{}",
        calls,
        calls as f64 / secs,
        stats.rows_written.load(Ordering::Relaxed),
        flow.in_flight,
        state
    )
}

/// A plain progress line: companies, then the same activity as the bar.
fn line(stats: &Stats, ctx: &Ctx, started: Instant) -> String {
    format!(
        "{} companies done of {} queued{}, {}",
        stats.companies_finished.load(Ordering::Relaxed),
        stats.queued.load(Ordering::Relaxed),
        if stats.input_done.load(Ordering::Relaxed) { "" } else { " so far" },
        activity(stats, ctx, started)
    )
}

pub fn spawn(mode: ProgressMode, stats: Arc<Stats>, ctx: Arc<Ctx>) -> Progress {
    let started = Instant::now();
    match mode {
        ProgressMode::Quiet => Progress { task: None, bar: None },
        ProgressMode::Lines(every) => {
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    tracing::info!(target: "progress", "{}", line(&stats, &ctx, started));
                }
            });
            Progress { task: Some(task), bar: None }
        }
        ProgressMode::Bar => {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} companies, ETA {eta} — {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let b = bar.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    // Handled = finished or left for a later run (deferred, parked).
                    b.set_length(stats.queued.load(Ordering::Relaxed));
                    b.set_position(stats.jobs_ended.load(Ordering::Relaxed));
                    b.set_message(activity(&stats, &ctx, started));
                }
            });
            set_active(Some(bar.clone()));
            Progress { task: Some(task), bar: Some(bar) }
        }
    }
}
