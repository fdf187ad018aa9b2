//! Is the store reachable? Logged once per incident, not per request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anteroom_config::OnError;
use anteroom_store::StoreError;

#[derive(Debug)]
pub struct StoreHealth {
    down: AtomicBool,
    incidents: AtomicU64,
    on_error: OnError,
}

impl StoreHealth {
    pub fn new(on_error: OnError) -> StoreHealth {
        StoreHealth {
            down: AtomicBool::new(false),
            incidents: AtomicU64::new(0),
            on_error,
        }
    }

    /// While the store is down, requests do not call it at all (they answer
    /// as `on_error` says); the rooms' background steps keep probing it.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    pub fn failed(&self, error: &StoreError) {
        if !self.down.swap(true, Ordering::SeqCst) {
            let incident = self.incidents.fetch_add(1, Ordering::SeqCst) + 1;
            let behaviour = match self.on_error {
                OnError::Wait => "visitors wait until it returns",
                OnError::Admit => "visitors are let through until it returns",
            };
            tracing::warn!(%error, incident, behaviour, "store unreachable");
        }
    }

    pub fn succeeded(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            let incident = self.incidents.load(Ordering::SeqCst);
            tracing::info!(incident, "store reachable again");
        }
    }
}
