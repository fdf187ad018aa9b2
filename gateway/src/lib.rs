//! anteroom's gateway: the front door, the waiting rooms and the proxy.
//!
//! [`run`] serves a validated [`Config`] on listeners the caller bound, until
//! a shutdown future completes; `main` and the tests both use it.

pub mod admin;
pub mod clock;
mod cookies;
mod entry;
mod events;
mod health;
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
pub mod token;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;
use tokio::sync::watch;

use anteroom_config::{Backend, Config};
use anteroom_store::{BufferStore, MemoryStore, RedisStore, Store};

pub use clock::Clock;

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
    #[error("{0}")]
    Pages(String),
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
    /// One permit per open event stream (`limits.max_event_streams`).
    event_streams: Arc<tokio::sync::Semaphore>,
    /// Set when the gateway starts shutting down; event streams end.
    stopping: watch::Sender<bool>,
    keys: Keyring,
    clock: Clock,
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

    /// As [`Gateway::new`], on a given clock (tests move a manual one).
    pub fn with_clock(config: Config, clock: Clock) -> Result<Gateway, GatewayError> {
        // Installed before anything records a metric.
        metrics::handle();
        let (store, buffers): (Arc<dyn Store>, Arc<dyn BufferStore>) = match &config.store.backend {
            Backend::Memory => {
                let memory = Arc::new(MemoryStore::new());
                (memory.clone(), memory)
            }
            Backend::Redis { url } => {
                let redis = Arc::new(RedisStore::new(url)?);
                if !config.buffers.is_empty()
                    && let Ok(runtime) = tokio::runtime::Handle::try_current()
                {
                    runtime.spawn(check_persistence(redis.clone()));
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
            .map(|room| Arc::new(RoomRuntime::new(room)))
            .collect();
        let shared = Shared {
            rooms,
            room_matcher: paths::RoomMatcher::new(&config.rooms),
            store,
            buffers,
            intake: intake::Intake::new(&config.buffers),
            event_streams: Arc::new(tokio::sync::Semaphore::new(config.limits.max_event_streams)),
            stopping: watch::channel(false).0,
            keys,
            clock,
            health: Arc::new(StoreHealth::new(config.store.on_error)),
            pages: Pages::from_config(&config.pages).map_err(GatewayError::Pages)?,
            proxy: Proxy::new(&config),
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
        let shared = self.shared;
        let (stop, stopped) = watch::channel(false);
        let mut background = tokio::task::JoinSet::new();
        if matches!(shared.config.store.backend, Backend::Memory)
            && !shared.config.buffers.is_empty()
        {
            // Embedded: this process is the only worker.
            let drainer = anteroom_worker::Drainer::new(&shared.config, shared.buffers.clone())
                .await
                .map_err(GatewayError::Drain)?;
            let mut stopped = stopped.clone();
            let grace = shared.config.shutdown_grace;
            background.spawn(drainer.run(
                async move { server::stop_requested(&mut stopped).await },
                grace,
            ));
        }
        for room in &shared.rooms {
            background.spawn(room::tend(
                room.clone(),
                shared.store.clone(),
                shared.clock.clone(),
                shared.health.clone(),
                stopped.clone(),
            ));
        }
        background.spawn(forget_idle_clients(shared.clone(), stopped.clone()));
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
        };
        // The admin listener serves a few operators and scrapers.
        let admin_limits = server::ListenerLimits {
            name: "admin",
            max_connections: ADMIN_MAX_CONNECTIONS,
            ..public_limits
        };
        let public = tokio::spawn(server::serve(
            public,
            public_handler,
            stopped.clone(),
            grace,
            public_limits,
        ));
        let admin = tokio::spawn(server::serve(
            admin,
            admin_handler,
            stopped.clone(),
            grace,
            admin_limits,
        ));
        shutdown.await;
        tracing::info!(
            ?grace,
            "shutting down: no new connections, draining the rest"
        );
        let _ = stop.send(true);
        shared.stopping.send_replace(true);
        let _ = public.await;
        let _ = admin.await;
        while background.join_next().await.is_some() {}
        Ok(())
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

/// Keeps the rate limiter's memory bounded (see `limits`).
async fn forget_idle_clients(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(limits::EVICTION_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => shared.limits.evict_idle(),
            _ = server::stop_requested(&mut stopped) => break,
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
