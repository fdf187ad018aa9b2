//! The gateway under test: a builder for its config file (test defaults:
//! the memory store, one shared cookie key, limits no test hits unless it
//! asks), typed with the bench's [`ConfigFile`] and validated by
//! `anteroom_config` as a real gateway's would be, and a handle to the
//! gateway serving in-process on port 0.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anteroom_gateway::{Clock, Gateway, Running};

pub use anteroom_bench::config_file::{
    Buffer, ConfigFile, CookieSecure, Limits, OnError, RedisTls, Room, Sink,
};
use anteroom_bench::config_file::{Cookies, Pages, Secrets, Store, StoreBackend, Worker};
pub use anteroom_gateway::room::STEP_INTERVAL;

use crate::{
    Backend, RedisCluster, RedisServer, SentinelGroup, TlsRedisServer, Upstream, Visitor,
    plain_client,
};

/// A cookie key shared by every gateway of a test.
pub const COOKIE_KEY: &str = "test-cookie-key-0123456789abcdefghijklmnop";

/// A `[[room]]` for a test: protecting `/echo/NAME`, one visitor inside,
/// 6,000 let in a minute (at once, in effect), a 5-minute session, a
/// minute to arrive, and a waiting page that re-checks every second (the
/// config's default is 5).
pub fn room(name: &str) -> Room {
    Room::new(name, &[&format!("/echo/{name}")], 1, 6000)
        .session_seconds(300)
        .arrival_seconds(60)
        .refresh_seconds(1)
}

/// Limits loose enough that a test's many visitors, all on 127.0.0.1, are
/// never rate limited unless the test asks for limits; the builder's
/// default. A test that sets one limit starts from these:
/// `loose_limits().max_body_bytes(1024)`.
pub fn loose_limits() -> Limits {
    Limits::default()
        .per_ip_per_second(1_000_000)
        .per_ip_burst(1_000_000)
        .tickets_per_ip_per_minute(1_000_000)
        .max_connections_per_client(1_000_000)
        .max_in_flight_upstream_per_client(1_000_000)
}

/// A gateway's config file and clock, before it starts.
pub struct GatewayBuilder {
    file: ConfigFile,
    clock: Clock,
    time: Time,
}

/// Whose time a test gateway's clock is.
#[derive(Debug, Clone, Copy)]
enum Time {
    /// Everyone's: the store keeps time on the gateway's clock too (a
    /// simulated Redis clock; the memory store's is the gateway's anyway).
    Shared,
    /// The gateway's own: Redis keeps its own time (`TIME`), as in
    /// production, and the gateway follows it.
    Own,
}

pub fn gateway(upstream: &Upstream) -> GatewayBuilder {
    gateway_to(&upstream.url())
}

/// A gateway in front of any URL (e.g. one where nothing listens).
pub fn gateway_to(upstream_url: &str) -> GatewayBuilder {
    GatewayBuilder {
        file: ConfigFile {
            upstream_timeout_seconds: Some(30),
            shutdown_grace_seconds: Some(2),
            store: Store {
                backend: StoreBackend::Memory,
                on_error: Some(OnError::Wait),
                ..Store::default()
            },
            secrets: Secrets {
                cookie_keys: vec![COOKIE_KEY.to_owned()],
                admin_token: None,
            },
            limits: loose_limits(),
            ..ConfigFile::new(upstream_url)
        },
        // The system's clock, and Redis's own time: as in production.
        clock: Clock::system(),
        time: Time::Own,
    }
}

impl GatewayBuilder {
    pub fn room(mut self, room: Room) -> Self {
        self.file.rooms.push(room);
        self
    }
    pub fn buffer(mut self, buffer: Buffer) -> Self {
        self.file.buffers.push(buffer);
        self
    }
    pub fn redis(self, redis: &RedisServer) -> Self {
        self.backend(&Backend::Redis(redis.url()))
    }
    /// A Redis that speaks only TLS, trusted through its CA
    /// (`tls_ca_file`).
    pub fn tls_redis(self, redis: &TlsRedisServer) -> Self {
        self.redis_tls(
            &redis.url(),
            RedisTls {
                tls_ca_file: Some(redis.certificates.ca.clone()),
                ..RedisTls::default()
            },
        )
    }
    /// Redis at `url` with these TLS files (a wrong CA, a client
    /// certificate).
    pub fn redis_tls(mut self, url: &str, tls: RedisTls) -> Self {
        self.file.store.backend = StoreBackend::Redis {
            redis_url: url.to_owned(),
            tls,
        };
        self
    }
    /// The master the sentinels of `group` name (`store.sentinels`,
    /// `store.sentinel_master`).
    /// With the group's passwords (`store.password`,
    /// `store.sentinel_password`), if it has any, and TLS trusting its CA
    /// (`store.tls`, `store.tls_ca_file`) if it speaks TLS.
    pub fn sentinels(mut self, group: &SentinelGroup) -> Self {
        self.file.store.backend = StoreBackend::RedisSentinel {
            sentinels: group.sentinel_addresses(),
            sentinel_master: crate::redis_ha::SENTINEL_MASTER.to_owned(),
            tls: group.tls.as_ref().map(|_| true),
            tls_files: trusting(group.tls.as_ref()),
        };
        self.store_passwords(
            group.passwords.servers.as_deref(),
            group.passwords.sentinels.as_deref(),
        )
    }
    /// A Redis Cluster (`store.cluster_nodes`), with its nodes' password
    /// (`store.password`) if they have one, and TLS trusting its CA
    /// (`store.tls`, `store.tls_ca_file`) if it speaks TLS.
    pub fn cluster(mut self, cluster: &RedisCluster) -> Self {
        self.file.store.backend = StoreBackend::RedisCluster {
            cluster_nodes: cluster.addresses(),
            tls: cluster.tls.as_ref().map(|_| true),
            tls_files: trusting(cluster.tls.as_ref()),
        };
        self.store_passwords(cluster.password.as_deref(), None)
    }
    /// The TLS files of a cluster or Sentinel group that speaks TLS
    /// (after [`GatewayBuilder::cluster`] or [`GatewayBuilder::sentinels`]),
    /// e.g. another CA's.
    pub fn tls_files(mut self, files: RedisTls) -> Self {
        match &mut self.file.store.backend {
            StoreBackend::RedisCluster { tls_files, .. }
            | StoreBackend::RedisSentinel { tls_files, .. } => *tls_files = files,
            StoreBackend::Memory | StoreBackend::Redis { .. } => {}
        }
        self
    }
    /// `[store] password` and `sentinel_password`, e.g. wrong ones.
    pub fn store_passwords(mut self, servers: Option<&str>, sentinels: Option<&str>) -> Self {
        self.file.store.password = servers.map(str::to_owned);
        self.file.store.sentinel_password = sentinels.map(str::to_owned);
        self
    }
    pub fn backend(mut self, backend: &Backend) -> Self {
        self.file.store.backend = match backend {
            Backend::Memory => StoreBackend::Memory,
            Backend::Redis(url) => StoreBackend::redis(url.clone()),
        };
        self
    }
    /// `[store] min_replicas_acked`: a booking's `202` waits for Redis's
    /// `WAIT` to report it on this many replicas.
    pub fn min_replicas_acked(mut self, replicas: u32) -> Self {
        self.file.store.min_replicas_acked = Some(replicas);
        self
    }
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.file.store.on_error = Some(on_error);
        self
    }
    pub fn cookie_keys(mut self, keys: &[&str]) -> Self {
        self.file.secrets.cookie_keys = keys.iter().map(|key| key.to_string()).collect();
        self
    }
    pub fn admin_token(mut self, token: &str) -> Self {
        self.file.secrets.admin_token = Some(token.to_owned());
        self
    }
    /// The `[limits]` table, replacing [`loose_limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.file.limits = limits;
        self
    }
    pub fn upstream_timeout_seconds(mut self, seconds: u64) -> Self {
        self.file.upstream_timeout_seconds = Some(seconds);
        self
    }
    /// `[cookies] secure`.
    pub fn secure_cookies(mut self, secure: CookieSecure) -> Self {
        self.file.cookies = Some(Cookies { secure });
        self
    }
    /// `[pages] dir`: the operator's page files.
    pub fn pages_dir(mut self, dir: &Path) -> Self {
        self.file.pages = Some(Pages {
            dir: dir.to_owned(),
        });
        self
    }
    /// `time_zone`: the IANA zone pages show times in.
    pub fn time_zone(mut self, zone: &str) -> Self {
        self.file.time_zone = Some(zone.to_owned());
        self
    }
    /// `[worker] admin_listen`, for worker processes started on this file.
    pub fn worker_admin_listen(mut self, addr: SocketAddr) -> Self {
        self.file.worker = Some(Worker { admin_listen: addr });
        self
    }
    /// The clock of the gateway and of its store: time that a test moves
    /// (a manual clock) passes for both, on either backend. With Redis the
    /// scripts then read this clock instead of Redis's `TIME`
    /// ([`Gateway::with_simulated_time`]).
    pub fn clock(mut self, clock: &Clock) -> Self {
        self.clock = clock.clone();
        self.time = Time::Shared;
        self
    }
    /// The gateway's own clock only (one set ahead or behind, say): Redis
    /// keeps its own time, as in production ([`Gateway::with_clock`]).
    pub fn own_clock(mut self, clock: &Clock) -> Self {
        self.clock = clock.clone();
        self.time = Time::Own;
        self
    }

    /// The config file as built so far, e.g. to start worker processes on
    /// (with [`ConfigFile::toml`]).
    pub fn config_file(&self) -> &ConfigFile {
        &self.file
    }

    /// Validates the file, starts the gateway in-process on two ports of
    /// 127.0.0.1 ([`Gateway::spawn_on_loopback`]) and waits for its rooms'
    /// first steps.
    pub async fn start(self) -> GatewayHandle {
        let config = self.file.validate().expect("test config is valid");
        let gateway = match self.time {
            Time::Shared => Gateway::with_simulated_time(config, self.clock.clone()),
            Time::Own => Gateway::with_clock(config, self.clock.clone()),
        };
        let running = gateway
            .expect("gateway starts")
            .spawn_on_loopback()
            .await
            .expect("the gateway listens on 127.0.0.1");
        let handle = GatewayHandle {
            addr: running.addr(),
            admin_addr: running.admin_addr(),
            clock: self.clock,
            running,
        };
        // Let every room take its first step so the cache is warm.
        tokio::time::sleep(STEP_INTERVAL * 3).await;
        handle
    }
}

/// A gateway serving in-process; dropping it begins its shutdown.
pub struct GatewayHandle {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub clock: Clock,
    running: Running,
}

impl GatewayHandle {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin_addr, path)
    }

    /// The status code of `/readyz`.
    pub async fn readiness(&self) -> u16 {
        plain_client()
            .get(self.admin_url("/readyz"))
            .send()
            .await
            .expect("the admin listener answers")
            .status()
            .as_u16()
    }

    /// `/readyz`'s reason, asserting it is `503`.
    pub async fn not_ready_because(&self) -> String {
        let readyz = plain_client()
            .get(self.admin_url("/readyz"))
            .send()
            .await
            .expect("the admin listener answers");
        assert_eq!(readyz.status(), 503);
        let readyz: serde_json::Value = readyz.json().await.expect("JSON");
        readyz["reason"].as_str().expect("a reason").to_owned()
    }

    /// A new visitor: a browser-like client with its own cookie jar.
    /// A new visitor who asks for `path` until they hold a place in
    /// `room`'s line (a store settling after a loss or a rollback hands out
    /// no number for a few seconds), asserting each time that they are not
    /// let in: the room is full.
    pub async fn newcomer_in_line(&self, room: &str, path: &str) -> Visitor {
        let newcomer = self.visitor();
        eventually("a newcomer gets a place", || async {
            assert!(
                !crate::reached_origin(newcomer.get(path).await).await,
                "the room is full: a newcomer waits"
            );
            newcomer.position(room).await.is_some()
        })
        .await;
        newcomer
    }

    pub fn visitor(&self) -> Visitor {
        Visitor::new(&format!("http://{}", self.addr))
    }

    /// Stops the gateway and waits for it to drain.
    pub async fn stop(self) {
        self.running
            .stop()
            .await
            .expect("the gateway served and stopped cleanly");
    }

    /// Waits for the gateway's background step to run a few times, so that
    /// its cached figures reflect the store.
    pub async fn settle(&self) {
        tokio::time::sleep(STEP_INTERVAL * 4).await;
    }
}

/// Polls until `check` holds, for at most ten seconds, then panics naming
/// `what`. For effects that arrive with the gateway's next step or report.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

/// `tls_ca_file` naming the CA of `certificates`, if any.
fn trusting(certificates: Option<&crate::Certificates>) -> RedisTls {
    certificates
        .map(|certificates| RedisTls {
            tls_ca_file: Some(certificates.ca.clone()),
            ..RedisTls::default()
        })
        .unwrap_or_default()
}
