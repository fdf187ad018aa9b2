//! anteroom's gateway: the front door, the waiting rooms and the proxy.
//!
//! [`run`] serves a validated [`Config`] on listeners the caller bound, until
//! a shutdown future completes; `main` and the tests both use it.

// No `unwrap()` on the request path (ARCHITECTURE.md's invariant); tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod admin;
mod answer;
mod body;
pub mod clock;
mod cookies;
mod door;
mod events;
mod forwarded;
mod health;
mod host;
mod intake;
pub mod limits;
pub mod metrics;
pub mod page;
pub mod paths;
mod proxy;
mod respond;
pub mod room;
mod routes;
mod server;
mod status;
mod tally;
pub mod token;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;

use anteroom_config::{Backend, Config};
use anteroom_store::{BufferStore, MemoryStore, RedisStore, Store};

pub use anteroom_process::Shutdown;
pub use clock::{Clock, StoreClock};

use crate::health::StoreHealth;
use crate::limits::ClientLimits;
use crate::page::Pages;
use crate::proxy::Proxy;
use crate::room::RoomRuntime;
use crate::token::Keyring;

/// Connections the admin listener holds at once: operators, dashboards and
/// scrapers, not visitors.
const ADMIN_MAX_CONNECTIONS: usize = 256;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every response and of upstream requests.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

pub(crate) fn full_body(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("store: {0}")]
    Store(#[from] anteroom_store::StoreError),
    /// A buffer's sink could not be set up (embedded drain).
    #[error(transparent)]
    Drain(anteroom_worker::DrainError),
    /// The operator's pages (`[pages] dir`) do not compile; `--check` says
    /// so before this can happen.
    #[error(transparent)]
    Pages(#[from] page::PagesError),
    /// The gateway's task ended abnormally (a panic).
    #[error("the gateway's task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// What every request handler shares.
pub struct Shared {
    config: Config,
    rooms: Vec<Arc<RoomRuntime>>,
    room_matcher: paths::RoomMatcher,
    store: Arc<dyn Store>,
    /// The same store, as the home of buffered requests.
    buffers: Arc<dyn BufferStore>,
    intake: intake::Intake,
    /// `limits.max_unfinished_body_bytes`: memory for request bodies
    /// still arriving (booking bodies, and proxied bodies' starts).
    bodies: Arc<body::Budget>,
    /// One permit per open event stream (`limits.max_event_streams`).
    event_streams: Arc<tokio::sync::Semaphore>,
    /// Each ticket's open event streams (a few per ticket).
    ticket_streams: Arc<events::TicketStreams>,
    /// Begins when the gateway starts shutting down: listeners stop
    /// accepting, rooms stop stepping, event streams end.
    shutdown: Shutdown,
    keys: Keyring,
    /// The store's time as this gateway reckons it (its own clock plus the
    /// offset its steps learn): what every comparison of shared times uses.
    store_clock: Arc<StoreClock>,
    health: Arc<StoreHealth>,
    pages: Pages,
    proxy: Proxy,
    limits: ClientLimits,
    /// `anteroom_requests_total` for requests outside every room, for the
    /// gateway's own endpoints, and for those refused before routing.
    passthrough_requests: metrics::RequestCounters,
    own_requests: metrics::RequestCounters,
    unrouted_requests: metrics::RequestCounters,
}

impl Shared {
    /// The door to the rooms, with what it needs from the shared state.
    fn door(&self) -> door::Door<'_> {
        door::Door {
            keys: &self.keys,
            store: self.store.as_ref(),
            health: &self.health,
            limits: &self.limits,
            cookie_secure: self.config.cookies.secure,
        }
    }
}

/// What a gateway checks of a valid config beyond `config`'s rules, for
/// `--check` too: the operator's pages compile, and the Redis client builds
/// from the URL and the TLS files (a client key that is not the
/// certificate's). Nothing is contacted.
pub fn check(config: &Config) -> Result<(), GatewayError> {
    Pages::from_config(&config.pages)?;
    if config.store.backend.is_redis() {
        RedisStore::check_backend(&config.store.backend)?;
    }
    Ok(())
}

/// Where a Redis store's time comes from.
#[derive(Debug, Clone, Copy)]
enum RedisTime {
    /// Redis's own clock (`TIME`): always, outside tests.
    Redis,
    /// The gateway's clock, standing in for Redis's (tests).
    Simulated,
}

/// A gateway ready to serve: config applied, store prepared (not yet
/// contacted: the gateway starts even while Redis is down, and says so on
/// `/readyz`).
pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    pub fn new(config: Config) -> Result<Gateway, GatewayError> {
        Gateway::with_clock(config, Clock::system())
    }

    /// As [`Gateway::new`], on a given clock of its own (tests move a
    /// manual one, or set one ahead or behind). The memory store keeps time
    /// on it too (one process, one clock); Redis keeps its own, which the
    /// gateway follows.
    pub fn with_clock(config: Config, clock: Clock) -> Result<Gateway, GatewayError> {
        Gateway::build(config, clock, RedisTime::Redis)
    }

    /// As [`Gateway::with_clock`], and a Redis store keeps time on `clock`
    /// as well, instead of Redis's `TIME`
    /// ([`RedisStore::with_simulated_clock`]): how tests move time for
    /// the gateway and the store at once. The binary never uses it.
    pub fn with_simulated_time(config: Config, clock: Clock) -> Result<Gateway, GatewayError> {
        Gateway::build(config, clock, RedisTime::Simulated)
    }

    fn build(config: Config, clock: Clock, redis_time: RedisTime) -> Result<Gateway, GatewayError> {
        // Installed before anything records a metric.
        metrics::handle();
        let (store, buffers): (Arc<dyn Store>, Arc<dyn BufferStore>) = match &config.store.backend {
            Backend::Memory => {
                let memory = Arc::new(MemoryStore::with_clock(clock.clone()));
                (memory.clone(), memory)
            }
            backend @ (Backend::Redis { .. }
            | Backend::Sentinel { .. }
            | Backend::Cluster { .. }) => {
                let redis = Arc::new(
                    match redis_time {
                        RedisTime::Redis => RedisStore::for_backend(backend)?,
                        RedisTime::Simulated => {
                            RedisStore::for_backend_with_simulated_clock(backend, clock.clone())?
                        }
                    }
                    .with_min_replicas_acked(config.store.min_replicas_acked),
                );
                if !config.buffers.is_empty()
                    && let Ok(runtime) = tokio::runtime::Handle::try_current()
                {
                    runtime.spawn(check_persistence(redis.clone()));
                    if let Some(replicas) = config.store.min_replicas_acked {
                        runtime.spawn(check_replication(redis.clone(), replicas));
                    }
                }
                (redis.clone(), redis)
            }
        };
        let keys = if config.secrets.cookie_keys.is_empty() {
            // Memory backend without configured keys: one gateway, so a
            // random key is enough; passes and tickets end with the process.
            Keyring::new(&[format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            )])
        } else {
            Keyring::new(&config.secrets.cookie_keys)
        };
        let rooms = config
            .rooms
            .iter()
            .cloned()
            .map(|room| Arc::new(RoomRuntime::new(room, config.limits.max_in_flight_upstream)))
            .collect();
        let bodies = Arc::new(body::Budget::new(
            config.limits.max_unfinished_body_bytes,
            config.limits.max_body_bytes,
        ));
        let shared = Shared {
            rooms,
            room_matcher: paths::RoomMatcher::new(&config.rooms),
            store,
            buffers,
            intake: intake::Intake::new(&config.buffers),
            event_streams: Arc::new(tokio::sync::Semaphore::new(config.limits.max_event_streams)),
            ticket_streams: Arc::default(),
            shutdown: Shutdown::new(),
            keys,
            store_clock: Arc::new(StoreClock::new(clock)),
            health: Arc::new(StoreHealth::new(config.store.on_error)),
            pages: Pages::from_config(&config.pages).map_err(GatewayError::Pages)?,
            proxy: Proxy::new(&config, Arc::clone(&bodies)),
            bodies,
            limits: ClientLimits::new(&config.limits),
            passthrough_requests: metrics::RequestCounters::new("passthrough"),
            own_requests: metrics::RequestCounters::new("anteroom"),
            unrouted_requests: metrics::RequestCounters::new("none"),
            config,
        };
        Ok(Gateway {
            shared: Arc::new(shared),
        })
    }

    /// Serves the public and admin listeners until `shutdown` completes, then
    /// drains within the configured grace period.
    pub async fn serve(
        self,
        public: TcpListener,
        admin: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), GatewayError> {
        let stop = self.shared.shutdown.clone();
        let serving = self.serve_until_stopped(public, admin);
        tokio::pin!(serving);
        tokio::select! {
            // Serving ends by itself only when it could not start.
            result = &mut serving => return result,
            () = shutdown => {}
        }
        stop.begin();
        serving.await
    }

    /// Serves on `public` and `admin` in a task of its own, and hands back a
    /// handle that knows the addresses and stops it: how tests, `lazio` and
    /// the surge's tests run a gateway in-process.
    pub fn spawn(self, public: TcpListener, admin: TcpListener) -> std::io::Result<Running> {
        let public_addr = public.local_addr()?;
        let admin_addr = admin.local_addr()?;
        let shutdown = self.shared.shutdown.clone();
        let task = tokio::spawn(self.serve_until_stopped(public, admin));
        Ok(Running {
            public_addr,
            admin_addr,
            shutdown,
            task: Some(task),
        })
    }

    /// [`Gateway::spawn`] on two fresh ports of 127.0.0.1.
    pub async fn spawn_on_loopback(self) -> std::io::Result<Running> {
        let public = TcpListener::bind("127.0.0.1:0").await?;
        let admin = TcpListener::bind("127.0.0.1:0").await?;
        self.spawn(public, admin)
    }

    /// Serves until the shared [`Shutdown`] begins, then drains within the
    /// grace period.
    async fn serve_until_stopped(
        self,
        public: TcpListener,
        admin: TcpListener,
    ) -> Result<(), GatewayError> {
        let shared = self.shared;
        let shutdown = shared.shutdown.clone();
        let mut background = tokio::task::JoinSet::new();
        if matches!(shared.config.store.backend, Backend::Memory)
            && !shared.config.buffers.is_empty()
        {
            // Embedded: this process is the only worker.
            let drainer = anteroom_worker::Drainer::new(&shared.config, shared.buffers.clone())
                .await
                .map_err(GatewayError::Drain)?;
            let grace = shared.config.shutdown_grace;
            let stopped = shutdown.clone();
            background.spawn(drainer.run(stopped, grace));
        }
        let gateway_id = room::new_gateway_id();
        for room in &shared.rooms {
            background.spawn(room::tend(
                room.clone(),
                shared.store.clone(),
                shared.store_clock.clone(),
                shared.health.clone(),
                gateway_id.clone(),
                shutdown.clone(),
            ));
        }
        if !shared.rooms.is_empty() {
            // The gateway's own delay, which the adaptive controller takes
            // out of the site's latencies (room/report.rs).
            let recorders = shared
                .rooms
                .iter()
                .map(|room| room.recorder().clone())
                .collect();
            let stopped = shutdown.clone();
            background.spawn(room::sample_lag(recorders, async move {
                stopped.begun().await;
            }));
        }
        background.spawn(forget_idle_clients(shared.clone()));
        let grace = shared.config.shutdown_grace;
        let public_handler = {
            let shared = shared.clone();
            move |request, peer| {
                let shared = shared.clone();
                async move { routes::handle(&shared, request, peer).await }
            }
        };
        let admin_handler = {
            let shared = shared.clone();
            move |request, _peer| {
                let shared = shared.clone();
                async move { admin::handle(&shared, request).await }
            }
        };
        let limits = &shared.config.limits;
        let public_limits = server::ListenerLimits {
            name: "public",
            max_connections: limits.max_connections,
            header_read_timeout: limits.header_read_timeout,
            max_header_bytes: limits.max_header_bytes,
            send_timeout: limits.send_timeout,
            per_client: Some(server::PerClient {
                max_connections: limits.max_connections_per_client,
                exempt: limits.trusted_proxies.clone(),
            }),
        };
        // The admin listener serves a few operators and scrapers.
        let admin_limits = server::ListenerLimits {
            name: "admin",
            max_connections: ADMIN_MAX_CONNECTIONS,
            per_client: None,
            ..public_limits.clone()
        };
        let public = tokio::spawn(server::serve(
            public,
            public_handler,
            shutdown.clone(),
            grace,
            public_limits,
        ));
        let admin = tokio::spawn(server::serve(
            admin,
            admin_handler,
            shutdown.clone(),
            grace,
            admin_limits,
        ));
        shutdown.begun().await;
        tracing::info!(
            ?grace,
            "shutting down: no new connections, draining the rest"
        );
        let _ = public.await;
        let _ = admin.await;
        while background.join_next().await.is_some() {}
        Ok(())
    }
}

/// A gateway serving in a task of its own ([`Gateway::spawn`]). Dropping it
/// begins the shutdown without waiting; [`Running::stop`] waits for the
/// drain.
pub struct Running {
    public_addr: std::net::SocketAddr,
    admin_addr: std::net::SocketAddr,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<Result<(), GatewayError>>>,
}

impl Running {
    /// The public listener's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.public_addr
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.admin_addr
    }

    /// Stops the gateway and waits until it has drained.
    pub async fn stop(mut self) -> Result<(), GatewayError> {
        self.shutdown.begin();
        match self.task.take() {
            Some(task) => task.await.map_err(GatewayError::Task)?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.begin();
    }
}

/// Buffered requests are answered `202` once Redis acknowledges them; that
/// survives a Redis restart only with the append-only file on. Says so at
/// startup when it is off (checked once; the operator's Redis may refuse
/// CONFIG, which is fine).
async fn check_persistence(redis: Arc<RedisStore>) {
    if let Ok(policy) = redis.setting("maxmemory-policy").await
        && policy != "noeviction"
    {
        tracing::warn!(%policy, "Redis may evict keys when full (maxmemory-policy): queued bookings could be lost; set maxmemory-policy noeviction");
    }
    match redis.persistence().await {
        Ok((appendonly, appendfsync)) if appendonly == "yes" => {
            tracing::info!(%appendfsync, "Redis append-only file is on: accepted bookings survive a Redis restart");
        }
        Ok((appendonly, _)) => {
            tracing::warn!(%appendonly, "Redis runs without the append-only file: accepted bookings are lost if Redis restarts; set appendonly yes (and appendfsync always to survive a crash of the host)");
        }
        Err(error) => {
            tracing::info!(%error, "could not read Redis persistence settings (CONFIG GET); make sure appendonly is yes");
        }
    }
}

/// With `store.min_replicas_acked`, a booking is answered `202` only once
/// that many replicas have it: says so at startup when the primary has
/// fewer connected, is not the primary, or would keep taking writes cut
/// off from its replicas (`min-replicas-to-write` 0). Checked once; the
/// bookings themselves are refused (`503`) for as long as replicas lack.
async fn check_replication(redis: Arc<RedisStore>, replicas: std::num::NonZeroU32) {
    match redis.replication().await {
        Ok(replication) => {
            let warnings = replication.warnings(replicas);
            for warning in &warnings {
                tracing::warn!(
                    %warning,
                    role = %replication.role,
                    connected_replicas = replication.connected_replicas,
                    min_replicas_acked = replicas.get(),
                    "Redis's replication falls short of what bookings wait for"
                );
            }
            if warnings.is_empty() {
                tracing::info!(
                    connected_replicas = replication.connected_replicas,
                    min_replicas_acked = replicas.get(),
                    "bookings are answered 202 once Redis's WAIT reports them on enough replicas"
                );
            }
        }
        Err(error) => {
            tracing::warn!(%error, min_replicas_acked = replicas.get(), "could not read Redis's replication (INFO replication); bookings are answered 503 until enough replicas report them");
        }
    }
}

/// Keeps the rate limiter's memory bounded (see `limits`).
async fn forget_idle_clients(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(limits::EVICTION_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => shared.limits.evict_idle(),
            _ = shared.shutdown.begun() => break,
        }
    }
}

/// Serves `config` on the given listeners until `shutdown` completes.
pub async fn run(
    public: TcpListener,
    admin: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    Gateway::new(config)?.serve(public, admin, shutdown).await
}
