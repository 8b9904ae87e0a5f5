//! Progress: an indicatif bar on a terminal, plain periodic log lines
//! otherwise (cron, CI, log shippers), nothing with `--quiet`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The bar when stderr is a terminal, else a line every 10 s.
    pub fn detect(quiet: bool) -> Self {
        use std::io::IsTerminal;
        if quiet {
            ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines(Duration::from_secs(10))
        }
    }
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
            b.finish_and_clear();
        }
    }
}

fn line(stats: &Stats, ctx: &Ctx, started: Instant) -> String {
    let calls = stats.calls.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let flow = ctx.flow.status();
    let state = if flow.paused {
        " THROTTLED (paused)".to_string()
    } else if flow.rate_factor < 1.0 {
        format!(" throttled, at {:.0}% rate", flow.rate_factor * 100.0)
    } else {
        String::new()
    };
    format!(
        "{} companies done of {} queued{}, {} calls ({:.1}/s), {} rows, {} in flight{}",
        stats.companies_finished.load(Ordering::Relaxed),
        stats.queued.load(Ordering::Relaxed),
        if stats.input_done.load(Ordering::Relaxed) { "" } else { " so far" },
        calls,
        calls as f64 / secs,
        stats.rows_written.load(Ordering::Relaxed),
        flow.in_flight,
        state
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
                    b.set_length(stats.queued.load(Ordering::Relaxed));
                    b.set_position(stats.companies_finished.load(Ordering::Relaxed));
                    b.set_message(line(&stats, &ctx, started));
                }
            });
            Progress { task: Some(task), bar: Some(bar) }
        }
    }
}
