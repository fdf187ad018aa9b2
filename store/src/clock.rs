//! Wall-clock time as a value, so that tests can move it or set it off.
//!
//! The store keeps the time that shared state is compared on (ARCHITECTURE.md,
//! "one clock"): Redis's own (`TIME`) for [`crate::RedisStore`], and, for
//! [`crate::MemoryStore`], which lives in the gateway's process, the
//! gateway's own [`Clock`]. A gateway reckons the store's time from its
//! `Clock` and the offset it learns from its room steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Millis;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// The system's wall clock, set off by `skew_ms` (0 but in tests of
    /// hosts whose clocks are wrong).
    System { skew_ms: i64 },
    /// Stands still until moved; clones share it.
    Manual(Arc<AtomicU64>),
}

impl Default for Source {
    fn default() -> Source {
        Source::System { skew_ms: 0 }
    }
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// The system's wall clock, `by` ahead: a host whose clock runs fast
    /// (tests of gateways whose clocks differ; the honest equivalent of
    /// libfaketime for a gateway in the test's own process).
    pub fn system_ahead(by: Duration) -> Clock {
        Clock {
            source: Source::System {
                skew_ms: i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
            },
        }
    }

    /// The system's wall clock, `by` behind.
    pub fn system_behind(by: Duration) -> Clock {
        Clock {
            source: Source::System {
                skew_ms: i64::try_from(by.as_millis()).map_or(i64::MIN, |ms| -ms),
            },
        }
    }

    /// A clock that stands still until [`Clock::advance`] or [`Clock::set`]
    /// moves it; starts at the current wall-clock time. Clones share it.
    pub fn manual() -> Clock {
        Clock {
            source: Source::Manual(Arc::new(AtomicU64::new(system_now()))),
        }
    }

    pub fn now(&self) -> Millis {
        match &self.source {
            Source::System { skew_ms } => system_now().saturating_add_signed(*skew_ms),
            Source::Manual(at) => at.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Source::Manual(at) = &self.source {
            at.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        }
    }

    /// Sets a manual clock to `at` (forward or back); does nothing to the
    /// system clock.
    pub fn set(&self, at: Millis) {
        if let Source::Manual(now) = &self.source {
            now.store(at, Ordering::SeqCst);
        }
    }
}

fn system_now() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skewed_clock_is_off_by_its_skew() {
        let ahead = Clock::system_ahead(Duration::from_secs(300)).now();
        let behind = Clock::system_behind(Duration::from_secs(300)).now();
        let apart = ahead - behind;
        // Read a moment apart: a few milliseconds at most on top of 600 s.
        assert!((600_000..601_000).contains(&apart), "{apart}");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = Clock::manual();
        let copy = clock.clone();
        let start = clock.now();
        clock.advance(Duration::from_secs(2));
        assert_eq!(copy.now(), start + 2_000);
        copy.set(5);
        assert_eq!(clock.now(), 5);
        Clock::system().set(5);
        assert_ne!(Clock::system().now(), 5);
    }
}
