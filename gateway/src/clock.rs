//! Wall-clock time as a parameter, so that tests can move it.
//!
//! Gateways sharing one Redis compare each other's timestamps (pass activity,
//! arrival deadlines), so their clocks must be synchronised (NTP); a skew of a
//! second or two only shifts expiry by as much.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anteroom_store::Millis;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands still until [`Clock::advance`] moves it; starts at
    /// the current wall-clock time.
    pub fn manual() -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicU64::new(system_now()))),
        }
    }

    pub fn now(&self) -> Millis {
        match &self.manual {
            Some(at) => at.load(Ordering::SeqCst),
            None => system_now(),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(at) = &self.manual {
            at.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        }
    }
}

fn system_now() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
