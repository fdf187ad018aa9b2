//! A room's places at the site: how many of its requests this gateway lets
//! reach the upstream at once, a limit the adaptive controller moves every
//! second (docs/adaptive.md, "the site's places"). Unlimited until it does:
//! the proxy's `max_in_flight_upstream` stays the hard bound in every case.
//!
//! Waiting is first come, first served. The places are the permits of a
//! tokio [`Semaphore`], whose queue is FIFO: a place given back goes
//! straight to the request at the head of the queue (the semaphore never
//! shows a free permit while anyone waits, so a newcomer's `try_acquire`
//! cannot overtake the line), and so do the places a rising limit adds.
//!
//! The limit moves by adding and removing permits:
//!
//! - **Rise** by `k`: first cancel up to `k` of the debt (below), then add
//!   the rest as permits.
//! - **Fall** by `k`: remove the free permits, up to `k`
//!   ([`Semaphore::forget_permits`] takes only free ones, so no request in
//!   the queue loses its turn and none at the site is revoked); what could
//!   not be removed is *debt*: the next places given back disappear instead
//!   of going to the queue, until the debt is paid. So new requests wait
//!   until fewer than the new limit are in use.
//!
//! Invariant: permits in existence (free or held) minus the debt is the
//! limit. Each step keeps it exactly, in any order; only one race is
//! tolerated: a place given back at the very moment the limit falls may go
//! to the next request before the fall takes effect, as if it had been given
//! back just before. Both sides then [`Places::settle`], so it is never more
//! than the places given back during that instant, and the debt pays it off.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The limit while adaptive admission is off: far beyond any number of
/// requests (it is never reached), and half of tokio's maximum, which leaves
/// the semaphore room for the debt of a fall from it.
const UNLIMITED: usize = Semaphore::MAX_PERMITS / 2;

/// A room's places at the site. Shared as an `Arc` (its guards hold one).
#[derive(Debug)]
pub struct Places {
    semaphore: Semaphore,
    /// The limit in force, [`UNLIMITED`] when none. A std `Mutex`: only the
    /// controlling loop changes it, once a second, and holds it for a few
    /// integer operations and non-blocking semaphore calls, never across an
    /// `.await`; the request path never takes it.
    limit: Mutex<usize>,
    /// Places to remove as they are given back (see the module's comment).
    debt: AtomicUsize,
    /// Whether the fleet's places are pinned low for a probe: places taken
    /// now measure the site's latency at no load.
    probing: AtomicBool,
    in_use: AtomicUsize,
}

/// The wait for a place ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no place at the site for the room's request before its deadline")]
pub struct Busy;

/// How a place was taken: what its request's latency says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// While the places were pinned for a probe: the site's latency at (almost) no load.
    WhileProbing,
    Normally,
}

/// One place in use; given back when dropped.
#[derive(Debug)]
#[must_use = "the place is given back when the guard is dropped"]
pub struct PlaceGuard {
    places: Arc<Places>,
    taken: Taken,
}

impl Default for Places {
    fn default() -> Places {
        Places::new()
    }
}

impl Places {
    /// Unlimited places (adaptive admission off).
    pub fn new() -> Places {
        Places {
            semaphore: Semaphore::new(UNLIMITED),
            limit: Mutex::new(UNLIMITED),
            debt: AtomicUsize::new(0),
            probing: AtomicBool::new(false),
            in_use: AtomicUsize::new(0),
        }
    }

    /// At most `places` of the room's requests at the site at once (at least
    /// one). A fall revokes no place in use: new requests wait until fewer
    /// than `places` are.
    pub fn set_limit(&self, places: u64) {
        let places = usize::try_from(places)
            .unwrap_or(UNLIMITED)
            .clamp(1, UNLIMITED);
        self.change_limit(places);
    }

    /// No limit of the room's own (adaptive admission off); waiting requests
    /// go at once.
    pub fn set_unlimited(&self) {
        self.change_limit(UNLIMITED);
    }

    /// The limit in force; `None` when unlimited.
    pub fn limit(&self) -> Option<u64> {
        let limit = *self
            .limit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (limit < UNLIMITED).then_some(limit as u64)
    }

    /// Whether places taken from now on are taken under a probe.
    pub fn set_probing(&self, probing: bool) {
        self.probing.store(probing, Ordering::Relaxed);
    }

    pub fn probing(&self) -> bool {
        self.probing.load(Ordering::Relaxed)
    }

    /// Places in use right now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// A place at once, if one is free and nobody waits for one.
    pub fn try_acquire(self: &Arc<Self>) -> Option<PlaceGuard> {
        let permit = self.semaphore.try_acquire().ok()?;
        permit.forget();
        Some(self.taken())
    }

    /// A place, waiting in line for one until `deadline` at the latest.
    /// Dropping the future leaves the line.
    pub async fn acquire(self: &Arc<Self>, deadline: Instant) -> Result<PlaceGuard, Busy> {
        if let Some(place) = self.try_acquire() {
            return Ok(place);
        }
        match tokio::time::timeout_at(deadline, self.semaphore.acquire()).await {
            Ok(Ok(permit)) => {
                permit.forget();
                Ok(self.taken())
            }
            // Timed out, or the semaphore was closed (never: nothing closes
            // it).
            _ => Err(Busy),
        }
    }

    /// A permit was just taken (and forgotten: the guard gives it back).
    fn taken(self: &Arc<Self>) -> PlaceGuard {
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let taken = if self.probing() {
            Taken::WhileProbing
        } else {
            Taken::Normally
        };
        PlaceGuard {
            places: Arc::clone(self),
            taken,
        }
    }

    fn change_limit(&self, limit: usize) {
        let mut current = self
            .limit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = std::mem::replace(&mut *current, limit);
        if limit > before {
            let more = limit - before;
            let cancelled = self.pay_debt(more);
            self.semaphore.add_permits(more - cancelled);
        } else if limit < before {
            let fewer = before - limit;
            let removed = self.semaphore.forget_permits(fewer);
            self.debt.fetch_add(fewer - removed, Ordering::AcqRel);
            self.settle();
        }
    }

    fn give_back(&self) {
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        if self.pay_debt(1) == 1 {
            // The limit fell while this place was in use: it disappears.
            return;
        }
        self.semaphore.add_permits(1);
        self.settle();
    }

    /// A fall and a place given back at the same moment: the fall found no
    /// free permit to remove (debt) while the place came back as a free one.
    /// Removes free permits while there is debt.
    fn settle(&self) {
        let owed = self.debt.load(Ordering::Acquire);
        if owed == 0 {
            return;
        }
        let removed = self.semaphore.forget_permits(owed);
        let paid = self.pay_debt(removed);
        // Someone else paid part of it meanwhile: put back what was removed
        // beyond the debt.
        self.semaphore.add_permits(removed - paid);
    }

    /// Takes up to `most` off the debt; returns how much.
    fn pay_debt(&self, most: usize) -> usize {
        let mut owed = self.debt.load(Ordering::Acquire);
        loop {
            let paid = owed.min(most);
            if paid == 0 {
                return 0;
            }
            match self.debt.compare_exchange_weak(
                owed,
                owed - paid,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return paid,
                Err(now) => owed = now,
            }
        }
    }
}

impl PlaceGuard {
    pub fn taken(&self) -> Taken {
        self.taken
    }

    /// Was the place taken while the places were pinned for a probe?
    pub fn probing(&self) -> bool {
        self.taken == Taken::WhileProbing
    }
}

impl Drop for PlaceGuard {
    fn drop(&mut self) {
        self.places.give_back();
    }
}

#[cfg(test)]
mod tests;
