//! How fast and how wide calls go out: the rate limit (`--qps`, `--burst`),
//! the in-flight limit (`--concurrency`, fixed or auto), and the global
//! slow-down on throttling codes (120/122/HTTP 429).
//!
//! Every call, retries included, takes a [`Permit`] here first, in this order:
//! an in-flight slot, then the end of any throttle pause, then the governor
//! rate limiter, then (while slowed down) extra spacing. The rate limiter is
//! the last gate before the request leaves, so the spacing it enforces is the
//! spacing the API sees.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::pipeline::control::shutdown::{Stop, StopReason};

/// `--concurrency`: a fixed number of in-flight calls, or automatic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    Fixed(usize),
    /// Enough to sustain `--qps` at the observed latency (Little's law), up to `max`.
    Auto {
        max: usize,
    },
}

/// Settings for [`Flow`].
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Calls per second; `0` means no rate limit (simulator benchmarks only).
    pub qps: f64,
    pub burst: u32,
    pub concurrency: Concurrency,
    /// First throttle pause; it doubles per consecutive throttle, with jitter.
    pub throttle_base: Duration,
    pub throttle_cap: Duration,
    /// Throttling that lasts longer than this stops the run (exit 75).
    pub max_throttle_wait: Duration,
}

/// Safety margin on the rate limiter's spacing: `--qps 20` spaces calls
/// 50.5 ms apart on average, so any q calls span at least 1.01 s and 10 ms of
/// jitter (the tolerance below, scheduling between the limiter and the socket,
/// the network) cannot squeeze a 21st call into a one-second window, as seen
/// by the server. It costs 1 % of the allowed rate.
const RATE_MARGIN: f64 = 1.01;

/// How early a call may leave relative to its exact slot. Timers wake late
/// (tokio's by up to a millisecond or so); with zero tolerance every late
/// wake-up pushes the whole schedule back and at `--qps 200` the rate falls
/// 10–20 % short. With this tolerance a late call does not delay the next
/// one, yet two calls are never closer than `1/qps − 2 ms` — there is still
/// no burst — and the margin above absorbs the jitter for the one-second
/// windows.
const RATE_TOLERANCE: Duration = Duration::from_millis(2);

/// The rate limit: a governor GCRA over "cells", where one call costs `cells`
/// cells. Splitting each call into cells is what lets the tolerance be a
/// fraction of the call interval (governor's burst is counted in whole cells).
struct RateGate {
    limiter: DefaultDirectRateLimiter,
    cells: NonZeroU32,
}

impl RateGate {
    fn new(qps: f64, burst: u32) -> Option<Self> {
        if qps <= 0.0 {
            return None;
        }
        let interval = RATE_MARGIN / qps;
        let cells = (interval / RATE_TOLERANCE.as_secs_f64()).ceil().clamp(1.0, 1000.0) as u32;
        let cell_period = Duration::from_secs_f64(interval / f64::from(cells));
        // `burst` calls back to back, plus one cell of tolerance.
        let capacity = cells.saturating_mul(burst.max(1)).saturating_add(1);
        let quota =
            Quota::with_period(cell_period.max(Duration::from_nanos(1)))?.allow_burst(NonZeroU32::new(capacity)?);
        Some(Self { limiter: RateLimiter::direct(quota), cells: NonZeroU32::new(cells)? })
    }

    /// Wait for this call's slot (tokio's timer, so cancellation is prompt).
    async fn ready(&self) {
        use governor::clock::Clock;
        // The limiter's own clock: building one calibrates a TSC clock, which
        // cost more CPU than the rest of the permit (the API-rate profile).
        let clock = self.limiter.clock();
        loop {
            match self.limiter.check_n(self.cells) {
                Ok(Ok(())) => return,
                Ok(Err(not_until)) => tokio::time::sleep(not_until.wait_time_from(clock.now())).await,
                // Cannot happen: capacity ≥ cells by construction.
                Err(_) => return,
            }
        }
    }
}

struct State {
    in_flight: usize,
    /// Current in-flight limit (≤ max), cut on throttling, recovered on success.
    limit: usize,
    /// Multiplier on `qps` while recovering from throttling (1.0 = full rate).
    rate_factor: f64,
    /// Moving average of call latency, seconds (auto concurrency).
    latency: Option<f64>,
    /// No call may start before this instant (global throttle pause).
    pause_until: Option<Instant>,
    /// Bumped on every reaction to throttling: answers to calls sent before
    /// the reaction do not escalate it again.
    epoch: u64,
    level: u32,
    throttled_since: Option<Instant>,
    /// An answer came back clean (the account works): auto concurrency may
    /// jump to its target once, instead of growing to it one call at a time.
    clean_seen: bool,
    jumped: bool,
    /// Extra spacing while `rate_factor < 1`.
    next_slot: Instant,
}

/// Shared by all workers.
pub struct Flow {
    config: FlowConfig,
    limiter: Option<RateGate>,
    state: Mutex<State>,
    /// Wakes workers waiting for an in-flight slot.
    slot_freed: Notify,
}

/// Held while a request is in flight; dropping it frees the slot and, if a
/// request was sent, feeds its latency to the auto-concurrency estimate.
pub struct Permit<'a> {
    flow: &'a Flow,
    epoch: u64,
    granted: Instant,
    used: bool,
}

impl Permit<'_> {
    /// Mark that a request was actually sent under this permit.
    pub fn mark_used(&mut self) {
        self.used = true;
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let held = self.used.then(|| self.granted.elapsed());
        self.flow.release(held);
    }
}

/// A snapshot for progress reporting.
#[derive(Debug, Clone, Copy)]
pub struct FlowStatus {
    pub in_flight: usize,
    pub limit: usize,
    pub rate_factor: f64,
    pub paused: bool,
}

impl Flow {
    pub fn new(config: FlowConfig) -> Self {
        let limiter = RateGate::new(config.qps, config.burst);
        let start = match config.concurrency {
            Concurrency::Fixed(n) => n.max(1),
            // Start modestly (a refused key costs a few calls, not a
            // pool's worth) and jump to what the measured latency needs once
            // an answer has come back clean; grow by one per call after.
            Concurrency::Auto { max } => max.clamp(1, 4),
        };
        Self {
            limiter,
            state: Mutex::new(State {
                in_flight: 0,
                limit: start,
                rate_factor: 1.0,
                latency: None,
                pause_until: None,
                epoch: 0,
                level: 0,
                throttled_since: None,
                clean_seen: false,
                jumped: false,
                next_slot: Instant::now(),
            }),
            slot_freed: Notify::new(),
            config,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self) -> FlowStatus {
        let s = self.lock();
        FlowStatus {
            in_flight: s.in_flight,
            limit: s.limit,
            rate_factor: s.rate_factor,
            paused: s.pause_until.is_some_and(|p| p > Instant::now()),
        }
    }

    /// Wait until a call may start. `None` when the run is stopping.
    pub async fn permit(&self, stop: &Stop) -> Option<Permit<'_>> {
        // 1. An in-flight slot.
        loop {
            let notified = self.slot_freed.notified();
            {
                let mut s = self.lock();
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    break;
                }
            }
            tokio::select! {
                _ = stop.token().cancelled() => return None,
                _ = notified => {}
            }
        }
        let mut permit = Permit { flow: self, epoch: 0, granted: Instant::now(), used: false };
        // 2. The end of any throttle pause (it may be extended while we wait).
        loop {
            let until = self.lock().pause_until;
            match until {
                Some(t) if t > Instant::now() => {
                    tokio::select! {
                        _ = stop.token().cancelled() => return None,
                        _ = tokio::time::sleep_until(t) => {}
                    }
                }
                _ => break,
            }
        }
        // 3. The rate limiter.
        if let Some(limiter) = &self.limiter {
            tokio::select! {
                _ = stop.token().cancelled() => return None,
                _ = limiter.ready() => {}
            }
        }
        // 4. Extra spacing while recovering from throttling.
        let slot = {
            let mut s = self.lock();
            permit.epoch = s.epoch;
            if s.rate_factor < 1.0 && self.config.qps > 0.0 {
                let now = Instant::now();
                let slot = s.next_slot.max(now);
                s.next_slot = slot + Duration::from_secs_f64(RATE_MARGIN / (self.config.qps * s.rate_factor));
                Some(slot)
            } else {
                None
            }
        };
        if let Some(slot) = slot {
            tokio::select! {
                _ = stop.token().cancelled() => return None,
                _ = tokio::time::sleep_until(slot) => {}
            }
        }
        if stop.is_stopped() {
            return None;
        }
        permit.granted = Instant::now();
        Some(permit)
    }

    /// A call answered without throttling: recover gradually.
    pub fn on_clean(&self) {
        let mut s = self.lock();
        s.clean_seen = true;
        s.throttled_since = None;
        s.level = s.level.saturating_sub(1);
        // Additive recovery: about 20 clean answers from half rate to full.
        s.rate_factor = (s.rate_factor + 0.025).min(1.0);
    }

    /// A slot is given back; `held` is how long a used one was held: the
    /// request's latency, which Little's law needs.
    fn release(&self, held: Option<Duration>) {
        let mut s = self.lock();
        let before = s.limit;
        s.in_flight -= 1;
        if let Some(held) = held {
            let secs = held.as_secs_f64();
            let avg = match s.latency {
                Some(avg) => 0.9 * avg + 0.1 * secs,
                None => secs,
            };
            s.latency = Some(avg);
            let target = self.target_concurrency(avg, s.rate_factor);
            // Grow by at most one per call (additive increase), shrink at
            // once; the first clean answer lets it reach the target at once.
            s.limit = if target > s.limit && s.clean_seen && !s.jumped {
                target
            } else if target > s.limit {
                s.limit + 1
            } else {
                target
            };
            s.jumped |= s.clean_seen;
        }
        let grew = s.limit > before;
        drop(s);
        if grew {
            // More than this one slot opened: every waiter checks again.
            self.slot_freed.notify_waiters();
        } else {
            self.slot_freed.notify_one();
        }
    }

    fn target_concurrency(&self, latency: f64, rate_factor: f64) -> usize {
        match self.config.concurrency {
            Concurrency::Fixed(n) => n.max(1),
            Concurrency::Auto { max } => {
                if self.config.qps <= 0.0 {
                    return max.max(1);
                }
                // Little's law: in flight = rate × latency; +50 % and +2 for
                // variance (a slow fsync, a slow answer), so that the rate
                // limiter, not concurrency, sets the pace.
                let need = (self.config.qps * rate_factor * latency * 1.5).ceil() as usize + 2;
                need.clamp(1, max.max(1))
            }
        }
    }

    /// A call answered 120/122/429: pause everyone, cut rate and concurrency.
    /// Returns a stop reason when throttling has lasted too long.
    pub fn on_throttle(&self, permit: &Permit<'_>, retry_after: Option<Duration>) -> Option<StopReason> {
        let mut s = self.lock();
        let now = Instant::now();
        let since = *s.throttled_since.get_or_insert(now);
        if now.duration_since(since) > self.config.max_throttle_wait {
            return Some(StopReason::Throttled);
        }
        if permit.epoch < s.epoch {
            // Sent before we last reacted: that reaction already covers it.
            return None;
        }
        s.epoch += 1;
        s.level = (s.level + 1).min(16);
        let ceiling =
            self.config.throttle_base.saturating_mul(1u32 << (s.level - 1).min(15)).min(self.config.throttle_cap);
        // Equal jitter: at least half the ceiling, so the pause is real, and
        // spread so that many clients do not return in lockstep.
        let half = ceiling / 2;
        let pause = half + Duration::from_secs_f64(fastrand::f64() * half.as_secs_f64());
        let pause = pause.max(retry_after.unwrap_or_default());
        let until = now + pause;
        s.pause_until = Some(s.pause_until.map_or(until, |p| p.max(until)));
        s.rate_factor = (s.rate_factor * 0.5).max(0.05);
        s.limit = (s.limit / 2).max(1);
        s.next_slot = until;
        tracing::warn!(
            pause_ms = pause.as_millis() as u64,
            level = s.level,
            limit = s.limit,
            rate = format!("{:.2}", self.config.qps * s.rate_factor),
            "Throttled by the API: everyone pauses."
        );
        None
    }
}

#[cfg(test)]
mod tests;
