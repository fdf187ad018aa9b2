//! Time as a parameter, and one clock for shared state.
//!
//! A gateway has its own [`Clock`] (tests move a manual one, or set one
//! off). Shared state is compared on the store's clock (ARCHITECTURE.md,
//! "one clock"): the store's scripts read it themselves, and wherever the
//! gateway compares times that another process may have written (a pass's
//! last activity, signed by whichever gateway renewed it; a ticket's
//! issue time; the activity it reports), it uses [`StoreClock::now`], its
//! own clock plus the offset to the store's that every room step's reply
//! teaches it. So gateways whose clocks differ by minutes agree.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

pub use anteroom_store::Clock;
use anteroom_store::Millis;

/// The store's time as this gateway reckons it.
#[derive(Debug)]
pub struct StoreClock {
    local: Clock,
    /// The store's time minus the local clock's, in milliseconds, as last
    /// learned; 0 until the first step answers (the memory store's clock
    /// is the local one, so it stays about 0 there).
    offset_ms: AtomicI64,
    /// Whether a reply has taught the offset yet.
    learned: AtomicBool,
}

impl StoreClock {
    pub fn new(local: Clock) -> StoreClock {
        StoreClock {
            local,
            offset_ms: AtomicI64::new(0),
            learned: AtomicBool::new(false),
        }
    }

    /// The store's time now, as reckoned here: off by at most half the
    /// round trip of the step it was learned from, plus how far the local
    /// clock drifted since (the step runs every 100 ms).
    pub fn now(&self) -> Millis {
        self.local
            .now()
            .saturating_add_signed(self.offset_ms.load(Ordering::Relaxed))
    }

    /// The gateway's own clock, for what only this gateway compares.
    pub fn local(&self) -> &Clock {
        &self.local
    }

    /// The store's time minus the local clock's, in milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Has a reply taught the offset yet? Until then [`StoreClock::now`]
    /// is the local clock's time.
    pub fn is_learned(&self) -> bool {
        self.learned.load(Ordering::Relaxed)
    }

    /// Learns the offset from a reply the store took at `store_time`, asked
    /// at local time `sent` and answered at `received`: the store read its
    /// clock somewhere between the two, so the midpoint is off by at most
    /// half the round trip. The latest reply wins: a clock stepped (by NTP,
    /// or an operator) is followed at the next step.
    pub fn learn(&self, sent: Millis, received: Millis, store_time: Millis) {
        let midpoint = sent / 2 + received / 2 + (sent % 2 + received % 2) / 2;
        let offset = i128::from(store_time) - i128::from(midpoint);
        let offset = i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX });
        self.offset_ms.store(offset, Ordering::Relaxed);
        self.learned.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reckons_the_store_time_from_the_local_clock_and_the_learned_offset() {
        let local = Clock::manual();
        local.set(1_000_000);
        let store = StoreClock::new(local.clone());
        assert_eq!(store.now(), 1_000_000, "the local clock until learned");
        assert!(!store.is_learned());
        // Asked at 1,000,000, answered 40 ms later, by a store five
        // minutes behind: its reading is taken to be from the midpoint.
        store.learn(1_000_000, 1_000_040, 1_000_020 - 300_000);
        assert_eq!(store.offset_ms(), -300_000);
        assert!(store.is_learned());
        local.advance(Duration::from_secs(1));
        assert_eq!(store.now(), 1_001_000 - 300_000);
        // Five minutes ahead, later on.
        store.learn(1_001_000, 1_001_000, 1_301_000);
        assert_eq!(store.now(), 1_301_000);
        assert_eq!(store.local().now(), 1_001_000);
    }

    #[test]
    fn the_midpoint_never_overflows() {
        let store = StoreClock::new(Clock::manual());
        store.learn(u64::MAX, u64::MAX, 0);
        assert_eq!(store.offset_ms(), i64::MIN);
        store.learn(0, 0, u64::MAX);
        assert_eq!(store.offset_ms(), i64::MAX);
        store.learn(u64::MAX - 1, u64::MAX, u64::MAX);
        assert_eq!(store.offset_ms(), 1);
    }
}
