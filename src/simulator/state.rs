//! What the simulator keeps between requests, and the handle tests read
//! it through: counters, what was served, arrivals, the clocks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::config::SimConfig;

/// What a request asked for: `(search key, year or "", page index)`.
pub type ServedKey = (String, String, u32);

/// One request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Seconds since the simulator started.
    pub at: f64,
    pub search_key: String,
    pub year: Option<String>,
    pub page_index: u32,
    /// The vendor code or HTTP status it answered.
    pub status: u32,
}

/// Shared state of a running simulator; tests read it through [`SimHandle`].
pub struct SimState {
    pub(crate) config: SimConfig,
    pub(crate) started: Instant,
    pub(crate) served: Mutex<HashMap<ServedKey, u32>>,
    pub(crate) arrivals: Mutex<Vec<Arrival>>,
    pub(crate) requests: AtomicU64,
    pub(crate) trigger_calls: Mutex<HashMap<String, u32>>,
    pub(crate) second_window: Mutex<(u64, u32)>,
    pub(crate) orders: AtomicU64,
    pub(crate) billed: AtomicU64,
    /// The timeline's clock (`None`: the system clock).
    pub(crate) as_of: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// The world's clock, that `Timespan` is checked against: the system's,
    /// or the one a test gives its run ([`SimHandle::set_clock`]).
    pub(crate) wall: Mutex<crate::clock::Clock>,
}

impl SimState {
    pub(crate) fn new(config: SimConfig) -> Arc<SimState> {
        let as_of = Mutex::new(config.timeline.as_ref().and_then(|t| t.as_of));
        Arc::new(SimState {
            as_of,
            wall: Mutex::new(crate::clock::Clock::system()),
            config,
            started: Instant::now(),
            served: Mutex::default(),
            arrivals: Mutex::default(),
            requests: AtomicU64::new(0),
            trigger_calls: Mutex::default(),
            second_window: Mutex::new((0, 0)),
            orders: AtomicU64::new(0),
            billed: AtomicU64::new(0),
        })
    }

    /// The moment the timeline answers as of: its own clock when it has
    /// one, else the world's ([`SimState::wall_now`]).
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        lock(&self.as_of).unwrap_or_else(|| self.wall_now())
    }

    /// The world's time of day, read through the clock it was given: the
    /// simulator reads the time nowhere else.
    pub(crate) fn wall_now(&self) -> chrono::DateTime<chrono::Utc> {
        lock(&self.wall).now()
    }
}

/// A cheap handle to the simulator's counters.
#[derive(Clone)]
pub struct SimHandle(pub(crate) Arc<SimState>);

impl SimHandle {
    /// The clock the client signs with in a test that moves its run's clock:
    /// `Timespan` is checked against it, as the real API checks it against
    /// the real time.
    pub fn set_clock(&self, clock: crate::clock::Clock) {
        *lock(&self.0.wall) = clock;
    }

    /// Move the timeline's clock: from now on the simulator answers as of `t`.
    pub fn set_as_of(&self, t: chrono::DateTime<chrono::Utc>) {
        *lock(&self.0.as_of) = Some(t);
    }

    /// How often each (key, year, page) was answered with data or a final code
    /// (the billable answers). A count above 1 is a page paid for twice.
    pub fn served(&self) -> HashMap<ServedKey, u32> {
        lock(&self.0.served).clone()
    }

    /// Every request that reached the simulator, in arrival order (empty
    /// unless [`SimConfig::keep_arrivals`]).
    pub fn arrivals(&self) -> Vec<Arrival> {
        lock(&self.0.arrivals).clone()
    }

    /// Number of requests that reached the simulator.
    pub fn request_count(&self) -> usize {
        self.0.requests.load(Ordering::Relaxed) as usize
    }

    /// Billable answers for a page that had been answered before: the pages
    /// paid for twice (or more; each repeat counts).
    pub fn pages_served_twice(&self) -> u32 {
        lock(&self.0.served).values().map(|n| n.saturating_sub(1)).sum()
    }

    /// Number of billable answers (the sum of [`served`](Self::served)).
    pub fn billed(&self) -> u64 {
        self.0.billed.load(Ordering::Relaxed)
    }

    pub fn seed(&self) -> u64 {
        self.0.config.seed
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
