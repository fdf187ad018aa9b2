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
        crate::metrics::store_call(crate::metrics::StoreCall::Failed);
        if !self.down.swap(true, Ordering::SeqCst) {
            let incident = self.incidents.fetch_add(1, Ordering::SeqCst) + 1;
            let behaviour = match self.on_error {
                OnError::Wait => "visitors wait until it returns",
                OnError::Admit => "visitors are let through until it returns",
            };
            if matches!(error, StoreError::Authentication { .. }) {
                // Reached, but it refused us: the configuration is to fix.
                tracing::warn!(%error, incident, behaviour, "store refused our credentials");
            } else {
                tracing::warn!(%error, incident, behaviour, "store unreachable");
            }
        }
    }

    pub fn succeeded(&self) {
        crate::metrics::store_call(crate::metrics::StoreCall::Answered);
        if self.down.swap(false, Ordering::SeqCst) {
            let incident = self.incidents.load(Ordering::SeqCst);
            tracing::info!(incident, "store reachable again");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects log output in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn logs_once_per_incident_not_per_failure() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let health = StoreHealth::new(OnError::Wait);
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..1000 {
                health.failed(&StoreError::Unavailable("connection refused".into()));
            }
            assert!(health.is_down());
            for _ in 0..10 {
                health.succeeded();
            }
            assert!(!health.is_down());
            health.failed(&StoreError::Unavailable("connection refused".into()));
        });
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            logs.lines().filter(|line| line.contains("WARN")).count(),
            2,
            "{logs}"
        );
        assert_eq!(logs.matches("store reachable again").count(), 1, "{logs}");
        assert!(logs.contains("incident=2"));
    }
}
