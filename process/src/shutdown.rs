//! A process's one stop signal, shared by everything that must end when it
//! stops: in the gateway, both listeners' accept loops, each room's step,
//! the rate limiter's eviction, the embedded drain and every open event
//! stream; in the worker, each buffer's drain loop.
//!
//! One named type instead of a `watch` channel here and a flag there: a
//! clone observes the same signal, [`Shutdown::begin`] is idempotent, and
//! [`Shutdown::begun`] completes at once for anyone who looks late.

use tokio_util::sync::CancellationToken;

/// A stop signal: cheap to clone, every clone sees the same one.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the shutdown for every holder of a clone. Calling it again
    /// does nothing.
    pub fn begin(&self) {
        self.token.cancel();
    }

    /// Has the shutdown begun?
    pub fn is_begun(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once the shutdown has begun (at once if it already has).
    pub async fn begun(&self) {
        self.token.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_one_signal_even_when_it_looks_late() {
        let shutdown = Shutdown::new();
        let watcher = shutdown.clone();
        let waiting = tokio::spawn(async move { watcher.begun().await });
        assert!(!shutdown.is_begun());
        shutdown.begin();
        shutdown.begin();
        waiting.await.expect("the watcher ends");
        let late = shutdown.clone();
        assert!(late.is_begun());
        late.begun().await;
    }
}
