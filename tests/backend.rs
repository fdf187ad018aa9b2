//! Which store a test runs on: the memory store or a private Redis, and a
//! macro that runs the store seams' contract scenarios on both.

use std::sync::Arc;

use anteroom_store::{
    Arrival, Changed, Claim, Clock, Millis, RoomChange, RoomParams, RoomSnapshot, Store, StoreError,
};

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

/// Runs each scenario, an `async fn NAME(backend: &Backend)` that starts
/// its own gateways, on the memory store and on a fresh private Redis, on
/// a multi-threaded runtime as a gateway runs: the end-to-end suites use it.
#[macro_export]
macro_rules! through_a_gateway_on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $scenario() {
                super::$scenario(&anteroom_tests::Backend::Memory).await;
            })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $scenario() {
                let server = anteroom_tests::RedisServer::start().await;
                super::$scenario(&anteroom_tests::Backend::Redis(server.url())).await;
                drop(server);
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

/// The store under test, called at times of the test's choosing: its
/// clock (simulated) is set to `now` before each call.
pub struct At {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
}

impl At {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> At {
        At { store, clock }
    }

    pub async fn arrive(
        &self,
        room: &RoomParams,
        pass_id: &str,
        now: Millis,
    ) -> Result<Arrival, StoreError> {
        self.clock.set(now);
        self.store.arrive(room, pass_id).await
    }

    pub async fn claim(
        &self,
        room: &RoomParams,
        epoch: u64,
        ticket: u64,
        pass_id: &str,
        now: Millis,
    ) -> Result<Claim, StoreError> {
        self.clock.set(now);
        self.store.claim(room, epoch, ticket, pass_id).await
    }

    pub async fn advance(
        &self,
        room: &RoomParams,
        now: Millis,
    ) -> Result<RoomSnapshot, StoreError> {
        self.clock.set(now);
        let snapshot = self.store.advance(room).await?;
        assert_eq!(snapshot.taken_at, now, "taken at the store's time");
        Ok(snapshot)
    }

    pub async fn touch(
        &self,
        room: &RoomParams,
        passes: &[(String, Millis)],
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        self.clock.set(now);
        self.store.touch(room, passes).await
    }

    pub async fn rejoin(
        &self,
        room: &RoomParams,
        pass_id: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.clock.set(now);
        self.store.rejoin(room, pass_id).await
    }

    pub async fn leave(
        &self,
        room: &RoomParams,
        pass_id: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.clock.set(now);
        self.store.leave(room, pass_id).await
    }

    pub async fn change(
        &self,
        room: &RoomParams,
        change: &RoomChange,
        now: Millis,
    ) -> Result<Changed, StoreError> {
        self.clock.set(now);
        self.store.change(room, change).await
    }

    /// A change expected to be applied: the figures with it in force.
    pub async fn applied(
        &self,
        room: &RoomParams,
        change: &RoomChange,
        now: Millis,
    ) -> RoomSnapshot {
        match self
            .change(room, change, now)
            .await
            .expect("the store answers")
        {
            Changed::Applied(snapshot) => snapshot,
            Changed::Refused(refusal) => panic!("change refused: {refusal}"),
        }
    }
}

pub async fn arrive(store: &At, room: &RoomParams, now: u64) -> Arrival {
    let pass_id = format!("{:032x}", rand_id());
    store.arrive(room, &pass_id, now).await.expect("arrive")
}

fn rand_id() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    u128::from(NEXT.fetch_add(1, Ordering::SeqCst))
}

pub fn ticket_of(arrival: Arrival) -> u64 {
    match arrival {
        Arrival::Ticketed { ticket, .. } => ticket,
        Arrival::Admitted { .. } => panic!("expected a ticket, was let straight in"),
        Arrival::Closed { .. } => panic!("expected a ticket, the room is closed"),
        Arrival::Held { .. } => panic!("expected a ticket, the store is settling"),
        Arrival::NotOpen { .. } => panic!("expected a ticket, the room has not opened"),
    }
}
