//! Lanes: how many pages a company may have in flight. A company alone gets
//! every worker slot; as companies arrive, each one's share shrinks to
//! `slots / running` (at least one). A company whose share shrinks keeps the
//! pages it already asked (they are paid for) and asks no new one until it
//! is back under its share, so for a moment the companies together may hold
//! more than `slots` pages — at most one share per company more. Discovery
//! asks its one page outside the lanes. What a `kill -9` can cost stays about
//! a page per slot plus the commit window.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// How many companies are in flight against the pool's slots. A company may
/// have `slots / running` pages outstanding (asked, or answered and not yet
/// handed to the writer): one each while every slot has a company, more as
/// companies run out.
pub struct Occupancy {
    slots: usize,
    running: AtomicUsize,
    /// Wakes companies waiting for a lane when one ends (their share grows).
    changed: Notify,
}

/// A company's place in the [`Occupancy`]; leaves it when dropped.
pub struct Occupied<'a>(&'a Occupancy);

impl Occupancy {
    pub fn new(slots: usize) -> Self {
        Occupancy { slots: slots.max(1), running: AtomicUsize::new(0), changed: Notify::new() }
    }

    pub fn enter(&self) -> Occupied<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        Occupied(self)
    }

    /// Pages one company may have in flight now.
    pub fn width(&self) -> usize {
        (self.slots / self.running.load(Ordering::SeqCst).max(1)).max(1)
    }
}

impl Drop for Occupied<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// One company's pages in flight, within its share of the pool.
pub struct Lanes<'a> {
    occupancy: &'a Occupancy,
    used: AtomicUsize,
    freed: Notify,
    /// Set when the company ends in this run (deferred, parked, stopped,
    /// rejected): no further page is asked.
    halted: AtomicBool,
}

/// A page asked and not yet handed to the writer; frees its lane when dropped.
pub struct Lane<'l, 'a>(&'l Lanes<'a>);

impl Drop for Lane<'_, '_> {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::SeqCst);
        self.0.freed.notify_waiters();
    }
}

impl<'a> Lanes<'a> {
    pub fn new(occupancy: &'a Occupancy) -> Self {
        Lanes { occupancy, used: AtomicUsize::new(0), freed: Notify::new(), halted: AtomicBool::new(false) }
    }

    /// No further page for this company in this run.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        self.freed.notify_waiters();
    }

    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// Wait for a lane; `None` once the company is halted (or `unit_stop` is
    /// set: its unit needs no more pages).
    pub async fn take(&self, unit_stop: &AtomicBool) -> Option<Lane<'_, 'a>> {
        loop {
            let mut freed = pin!(self.freed.notified());
            let mut changed = pin!(self.occupancy.changed.notified());
            freed.as_mut().enable();
            changed.as_mut().enable();
            if self.is_halted() || unit_stop.load(Ordering::SeqCst) {
                return None;
            }
            let used = self.used.load(Ordering::SeqCst);
            if used < self.occupancy.width() {
                if self.used.compare_exchange(used, used + 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    return Some(Lane(self));
                }
                continue;
            }
            // The fallback only guards against a missed wake-up.
            tokio::select! {
                _ = freed => {}
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_company_alone_gets_the_slots_and_shares_them_as_others_arrive() {
        let occ = Occupancy::new(8);
        let a = occ.enter();
        assert_eq!(occ.width(), 8);
        let lanes = Lanes::new(&occ);
        let never = AtomicBool::new(false);
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(lanes.take(&never).await.expect("a lane"));
        }
        let b = occ.enter();
        assert_eq!(occ.width(), 4);
        let c = occ.enter();
        assert_eq!(occ.width(), 2, "8 / 3: together never more than the slots");
        drop(c);
        held.truncate(3);
        // Three in flight, four allowed: one more.
        assert!(lanes.take(&never).await.is_some());
        drop(b);
        drop(a);
        lanes.halt();
        assert!(lanes.take(&never).await.is_none(), "a halted company asks nothing more");
    }
}
