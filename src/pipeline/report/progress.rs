//! Progress: an indicatif bar on a terminal, plain periodic log lines
//! otherwise (cron, CI, log shippers), nothing with `--quiet`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::Write;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::pipeline::control::flow::Flow;
use crate::pipeline::report::stats::Stats;

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
fn activity(stats: &Stats, flow: &Flow, started: Instant) -> String {
    let calls = stats.calls.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let flow = flow.status();
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

/// Where the run stands: input rows settled (skipped, recorded, or their
/// company handled) of the input's total, and what is left to pay for.
struct Standing {
    settled: u64,
    /// The input's rows, once counted; the rows read so far until then.
    total: u64,
    counted: bool,
    eta: Option<(u64, Duration)>,
}

/// The calls still to make and how long they take: the rows not yet settled
/// times the calls a settled row has cost so far, at the recent call rate.
fn eta(total: u64, settled: u64, calls: u64, rate: f64) -> Option<(u64, Duration)> {
    if settled == 0 || rate <= 0.0 {
        return None;
    }
    let calls_left = (total.saturating_sub(settled) as f64 * calls as f64 / settled as f64).round() as u64;
    Some((calls_left, Duration::from_secs_f64(calls_left as f64 / rate)))
}

/// Calls per second over the last `RATE_WINDOW` of samples.
struct RecentRate(std::collections::VecDeque<(Instant, u64)>);

const RATE_WINDOW: Duration = Duration::from_secs(10);

impl RecentRate {
    fn update(&mut self, calls: u64) -> f64 {
        let now = Instant::now();
        self.0.push_back((now, calls));
        while self.0.len() > 2 && now.duration_since(self.0[0].0) > RATE_WINDOW {
            self.0.pop_front();
        }
        let (t0, c0) = self.0[0];
        let secs = now.duration_since(t0).as_secs_f64();
        if secs < 0.5 {
            0.0
        } else {
            calls.saturating_sub(c0) as f64 / secs
        }
    }
}

fn standing(stats: &Stats, rate: f64) -> Standing {
    let read = stats.input_rows.load(Ordering::Relaxed);
    let settled = (stats.rows_skipped.load(Ordering::Relaxed) + stats.jobs_ended.load(Ordering::Relaxed))
        .saturating_sub(stats.requeued.load(Ordering::Relaxed));
    let counted_total = stats.input_total.load(Ordering::Relaxed);
    let (total, counted) = if counted_total > 0 { (counted_total.max(read), true) } else { (read, false) };
    let eta = if counted { eta(total, settled, stats.calls.load(Ordering::Relaxed), rate) } else { None };
    Standing { settled, total, counted, eta }
}

fn show_eta(s: &Standing) -> String {
    match s.eta {
        Some((calls, d)) => {
            let secs = d.as_secs();
            format!("ETA {}:{:02}:{:02} (~{calls} calls left)", secs / 3600, secs / 60 % 60, secs % 60)
        }
        None if !s.counted => "counting the input…".to_string(),
        None => "ETA -".to_string(),
    }
}

/// A plain progress line: companies, the ETA, then the same activity as the bar.
fn line(stats: &Stats, flow: &Flow, started: Instant, rate: f64) -> String {
    let s = standing(stats, rate);
    format!(
        "{} of {}{} input rows settled, {}, {}",
        s.settled,
        s.total,
        if s.counted { "" } else { " so far" },
        show_eta(&s),
        activity(stats, flow, started)
    )
}

pub fn spawn(mode: ProgressMode, stats: Arc<Stats>, flow: Arc<Flow>) -> Progress {
    let started = Instant::now();
    match mode {
        ProgressMode::Quiet => Progress { task: None, bar: None },
        ProgressMode::Lines(every) => {
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(every.min(Duration::from_secs(1)));
                let mut rate = RecentRate(Default::default());
                let mut last = Instant::now();
                loop {
                    tick.tick().await;
                    let r = rate.update(stats.calls.load(Ordering::Relaxed));
                    if last.elapsed() >= every {
                        last = Instant::now();
                        tracing::info!(target: "progress", "{}", line(&stats, &flow, started, r));
                    }
                }
            });
            Progress { task: Some(task), bar: None }
        }
        ProgressMode::Bar => {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} input rows, {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let b = bar.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                let mut rate = RecentRate(Default::default());
                loop {
                    tick.tick().await;
                    let s = standing(&stats, rate.update(stats.calls.load(Ordering::Relaxed)));
                    b.set_length(s.total);
                    b.set_position(s.settled);
                    b.set_message(format!("{} — {}", show_eta(&s), activity(&stats, &flow, started)));
                }
            });
            set_active(Some(bar.clone()));
            Progress { task: Some(task), bar: Some(bar) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_is_the_calls_left_at_the_recent_rate() {
        // 16 of 1,000 rows settled for 112 calls: ~6,888 calls left; at 20/s, ~344 s.
        let (calls, d) = eta(1000, 16, 112, 20.0).unwrap();
        assert_eq!(calls, 6888);
        assert_eq!(d.as_secs(), 344);
        assert!(eta(1000, 0, 0, 20.0).is_none());
        assert_eq!(eta(10, 10, 50, 5.0).unwrap().0, 0);
    }
}
