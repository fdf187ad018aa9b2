//! Which store a test runs on: the memory store or a private Redis, and a
//! macro that runs the store seams' contract scenarios on both.

/// Which store a test gateway uses.
#[derive(Debug, Clone)]
pub enum Backend {
    Memory,
    Redis(String),
}

impl Backend {
    /// The backend a suite runs against: `ANTEROOM_TEST_BACKEND=memory|redis`
    /// is not used; suites run both explicitly (see `both_backends!`).
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis(_) => "redis",
        }
    }
}

/// Runs each scenario, an `async fn NAME(store: Arc<dyn Trait>)`, against a
/// `MemoryStore` and against a `RedisStore` on a fresh private Redis: the
/// contract suites of the store seams use it.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $scenario() {
                super::$scenario(std::sync::Arc::new(anteroom_store::MemoryStore::new())).await;
            })*
        }
        mod redis {
            $(#[tokio::test] async fn $scenario() {
                let server = $crate::RedisServer::start().await;
                let store = anteroom_store::RedisStore::new(&server.url()).expect("redis store");
                super::$scenario(std::sync::Arc::new(store)).await;
            })*
        }
    };
}

/// Runs each scenario, an `async fn NAME(store: Arc<dyn Store>, clock:
/// Clock)`, against a `MemoryStore` and a `RedisStore` on a fresh private
/// Redis, both keeping time on `clock`, a manual clock the scenario sets:
/// the store's own clock, simulated (for Redis, the scripts read it instead
/// of `TIME`), so that expiry and pacing are tested without waiting.
#[macro_export]
macro_rules! on_both_backends_on_a_simulated_clock {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $scenario() {
                let clock = anteroom_store::Clock::manual();
                let store = anteroom_store::MemoryStore::with_clock(clock.clone());
                super::$scenario(std::sync::Arc::new(store), clock).await;
            })*
        }
        mod redis {
            $(#[tokio::test] async fn $scenario() {
                let server = $crate::RedisServer::start().await;
                let clock = anteroom_store::Clock::manual();
                let store = anteroom_store::RedisStore::with_simulated_clock(&server.url(), clock.clone())
                    .expect("redis store");
                super::$scenario(std::sync::Arc::new(store), clock).await;
            })*
        }
    };
}
