//! One deployment, one TOML file: parsed once at startup and validated into
//! typed values.
//!
//! The rest of anteroom only ever sees [`Config`]: every number has been
//! range-checked, every address parsed, every cross-reference (a buffer's
//! room, overlapping room paths) resolved. A bad file is rejected as a whole
//! with a message that names the key and the problem; there is no
//! half-valid configuration.
//!
//! Invariant: this crate is the only place that reads configuration files
//! and the environment (`ANTEROOM_COOKIE_KEYS`, `ANTEROOM_ADMIN_TOKEN`,
//! `ANTEROOM_REDIS_PASSWORD`, `ANTEROOM_SENTINEL_PASSWORD`,
//! `ANTEROOM_LOG_FORMAT`).
//!
//! Every key's default is written once, in [`defaults`]; the annotated
//! `config/anteroom.example.toml` and the README's table are tested against it.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod defaults;
mod raw;
pub mod schedule;
mod validate;

pub use validate::redact_password;

/// The demo configuration the README walks through: memory backend, one room
/// "demo" of capacity 1 in front of `http://127.0.0.1:3000`.
pub const DEMO_TOML: &str = include_str!("../demo.toml");

/// Environment variable that replaces `secrets.cookie_keys` (comma separated).
pub const ENV_COOKIE_KEYS: &str = "ANTEROOM_COOKIE_KEYS";
/// Environment variable that replaces `secrets.admin_token`.
pub const ENV_ADMIN_TOKEN: &str = "ANTEROOM_ADMIN_TOKEN";
/// Environment variable that replaces `store.password`: the Redis servers'.
pub const ENV_REDIS_PASSWORD: &str = "ANTEROOM_REDIS_PASSWORD";
/// Environment variable that replaces `store.sentinel_password`: the
/// sentinels' own.
pub const ENV_SENTINEL_PASSWORD: &str = "ANTEROOM_SENTINEL_PASSWORD";

/// A validated deployment description.
#[derive(Debug, Clone)]
pub struct Config {
    /// `listen`: the public front door. Default [`defaults::LISTEN`].
    pub listen: SocketAddr,
    /// `admin_listen`: metrics, health and admin API. Default
    /// [`defaults::ADMIN_LISTEN`].
    pub admin_listen: SocketAddr,
    /// `upstream`: the protected site. Required.
    pub upstream: Upstream,
    /// `upstream_timeout_seconds`: how long one upstream request may take.
    /// [`defaults::UPSTREAM_TIMEOUT_SECONDS`].
    pub upstream_timeout: Duration,
    /// `shutdown_grace_seconds`: how long in-flight requests may finish after
    /// a shutdown signal. [`defaults::SHUTDOWN_GRACE_SECONDS`].
    pub shutdown_grace: Duration,
    /// `log_format`: `"text"` or `"json"` (one JSON object per line, for log
    /// shippers); default [`defaults::LOG_FORMAT`]. Env `ANTEROOM_LOG_FORMAT`
    /// wins.
    pub log_format: LogFormat,
    /// `time_zone`: the IANA zone in which times are shown to visitors (a
    /// room's opening on its pages). Only display: the file's times carry
    /// their own offsets, and the store compares instants. Default
    /// [`defaults::TIME_ZONE`].
    pub time_zone: jiff::tz::TimeZone,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[secrets]`, after the environment overrides.
    pub secrets: Secrets,
    /// `[limits]`.
    pub limits: Limits,
    /// `[worker]`.
    pub worker: WorkerConfig,
    /// `[cookies]`.
    pub cookies: CookieConfig,
    /// `[[room]]`, in file order; names are unique and paths of different
    /// rooms never overlap. May be empty.
    pub rooms: Vec<Room>,
    /// `[[buffer]]`, in file order; each names an existing room. May be empty.
    pub buffers: Vec<Buffer>,
    /// `[pages]`: the operator's own page files, read at startup.
    pub pages: PagesConfig,
}

/// `[pages]`: the operator's templates, style and language files, which
/// replace the gateway's own of the same name. This crate reads them (it is
/// the one that reads files); the gateway checks what they say and
/// compiles them, also for `--check` (`anteroom_process::load_config_with`).
#[derive(Debug, Clone, Default)]
pub struct PagesConfig {
    /// `dir`: the directory, relative to the config file's (or, for
    /// [`Config::from_toml`], the current) directory. `None`: the built-in
    /// pages only.
    pub dir: Option<PathBuf>,
    /// Every page file found in `dir`: `*.html` and `*.css` directly in it,
    /// `lang/*.toml` below it. Other files (images, notes) are left alone.
    /// Sorted by name.
    pub files: Vec<PageFile>,
}

/// One file of `[pages] dir`, read whole.
#[derive(Debug, Clone)]
pub struct PageFile {
    /// Relative to the directory, with `/`: `waiting.html`, `lang/de.toml`.
    pub name: String,
    /// Its text (UTF-8, at most [`MAX_PAGE_FILE_BYTES`]).
    pub text: String,
}

/// The largest page file accepted: a page is to stay well under 30 KB, and
/// a language file is a few KB.
pub const MAX_PAGE_FILE_BYTES: u64 = 64 * 1024;

/// The protected site. Only plain `http://` is supported.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Normalised to `http://host:port/`: the port is always explicit
    /// (default 80), the path is `/` and there is no query.
    pub uri: http::Uri,
    /// `host:port`, port always present (IPv6 hosts keep their brackets), so
    /// it can be handed to a TCP connect as is.
    pub authority: String,
}

/// `[store]`.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `backend` (+ `redis_url`). Default [`defaults::BACKEND`] (and
    /// [`defaults::REDIS_URL`]).
    pub backend: Backend,
    /// `on_error`: what the gateway does while the store is unreachable.
    /// Default [`defaults::ON_ERROR`].
    pub on_error: OnError,
    /// `min_replicas_acked`: how many Redis replicas must report a booking
    /// (`WAIT`) before the gateway answers `202`. `None` (0, the default
    /// [`defaults::MIN_REPLICAS_ACKED`]): answered once the primary has it.
    /// Set only with `backend = "redis"`.
    pub min_replicas_acked: Option<std::num::NonZeroU32>,
}

/// Where shared state lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// `backend = "memory"`: one process holds everything.
    Memory,
    /// `backend = "redis"`; `url` is `redis_url`, scheme `redis://`,
    /// `rediss://` or `unix://`; `tls` is what `tls_ca_file`,
    /// `tls_cert_file` and `tls_key_file` name (set only with `rediss://`).
    Redis { url: String, tls: RedisTls },
    /// `backend = "redis"` with `sentinels` and `sentinel_master`: the
    /// master of that name, as the sentinels (each `host:port`) tell it,
    /// asked again after every failure so that a failover is followed.
    /// `credentials` (`username`, `password`) are the servers' (master and
    /// replicas), `sentinel_credentials` (`sentinel_username`,
    /// `sentinel_password`) the sentinels' own: Redis keeps them apart.
    /// `tls` is set with `tls = true`: TLS to the sentinels and to the
    /// servers, with the TLS files, if any.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        credentials: Option<RedisCredentials>,
        sentinel_credentials: Option<RedisCredentials>,
        tls: Option<RedisTls>,
    },
    /// `backend = "redis"` with `cluster_nodes`: a Redis Cluster, found
    /// from any of these nodes (each `host:port`); `credentials`
    /// (`username`, `password`) are every node's; `tls` is set with
    /// `tls = true` (TLS to every node, with the TLS files, if any).
    Cluster {
        nodes: Vec<String>,
        credentials: Option<RedisCredentials>,
        tls: Option<RedisTls>,
    },
}

/// What `AUTH` sends: a password (`requirepass`), with a user name for an
/// ACL user (`AUTH username password`). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisCredentials {
    pub username: Option<String>,
    pub password: String,
}

impl Backend {
    /// Whether the state is shared in Redis (one server, Sentinel or
    /// Cluster), so that several gateways and workers can share it.
    pub fn is_redis(&self) -> bool {
        !matches!(self, Backend::Memory)
    }
}

/// TLS to Redis beyond the defaults of `rediss://` (the system's roots, no
/// client certificate). The files are read and their certificates parsed
/// at startup, and by `--check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// `tls_ca_file`: the CA certificates trusted for Redis's certificate,
    /// instead of the system's roots (a private CA). `None`: the system's.
    pub ca: Option<PemFile>,
    /// `tls_cert_file` and `tls_key_file`: the certificate and key this
    /// process presents to a Redis that asks for one (mutual TLS).
    pub client: Option<ClientIdentity>,
}

/// A client certificate (chain) and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert: PemFile,
    pub key: PemFile,
}

/// A PEM file as read at startup: its path (relative ones start from the
/// config file's directory) and its bytes, which hold at least one item of
/// the kind the key asks for. `Debug` shows the path only: it may hold a
/// private key.
#[derive(Clone, PartialEq, Eq)]
pub struct PemFile {
    pub path: PathBuf,
    pub pem: Vec<u8>,
}

/// The largest PEM file accepted: a bundle of every public root CA is about
/// 200 KB.
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// `on_error`: the store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// `"wait"`: visitors keep waiting; nobody gets in unchecked.
    Wait,
    /// `"admit"`: visitors pass straight through to the upstream.
    Admit,
}

/// `[secrets]`, after `ANTEROOM_COOKIE_KEYS` / `ANTEROOM_ADMIN_TOKEN` have
/// been applied. `Debug` redacts the values.
#[derive(Clone)]
pub struct Secrets {
    /// Each at least 32 characters. The first signs, all verify (rotation).
    /// Empty only with the memory backend (the gateway then makes a random key).
    pub cookie_keys: Vec<String>,
    /// Bearer token for the admin API, at least 16 characters. `None`
    /// disables the mutating admin endpoints.
    pub admin_token: Option<String>,
}

/// `[limits]`: per-client limits at the front door.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `per_ip_per_second`: sustained requests per client. Default
    /// [`defaults::PER_IP_PER_SECOND`].
    pub per_ip_per_second: NonZeroU32,
    /// `per_ip_burst`: at least `per_ip_per_second`. Default
    /// [`defaults::PER_IP_BURST`].
    pub per_ip_burst: NonZeroU32,
    /// `tickets_per_ip_per_minute`: new queue places per client. Default
    /// [`defaults::TICKETS_PER_IP_PER_MINUTE`].
    pub tickets_per_ip_per_minute: NonZeroU32,
    /// `trusted_proxies`: networks whose `X-Forwarded-For` is believed.
    /// A bare address in the file becomes a /32 or /128. Default empty.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `max_connections`: open client connections per gateway; beyond it a
    /// new connection gets a short `503` and is closed.
    /// [`defaults::MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// `max_event_streams`: waiting pages following their place over
    /// Server-Sent Events at once; beyond it a page polls instead. 0 turns
    /// the event stream off. [`defaults::MAX_EVENT_STREAMS`].
    pub max_event_streams: usize,
    /// `max_header_bytes`: request line plus headers; beyond it `431`.
    /// [`defaults::MAX_HEADER_BYTES`].
    pub max_header_bytes: usize,
    /// `max_body_bytes`: request body; beyond it `413`.
    /// [`defaults::MAX_BODY_BYTES`].
    pub max_body_bytes: u64,
    /// `header_read_timeout_seconds`: time a client has to send its request
    /// headers, and the longest an idle keep-alive connection stays open.
    /// [`defaults::HEADER_READ_TIMEOUT_SECONDS`].
    pub header_read_timeout: Duration,
    /// `max_in_flight_upstream`: requests at the upstream at once; beyond it
    /// a request waits up to `upstream_queue` for a free place, then gets
    /// `503` with `Retry-After`. [`defaults::MAX_IN_FLIGHT_UPSTREAM`].
    pub max_in_flight_upstream: usize,
    /// `upstream_queue_ms`: how long a request may wait, first come first
    /// served, for a free place at the upstream; 0 sheds at once.
    /// [`defaults::UPSTREAM_QUEUE_MS`].
    pub upstream_queue: Duration,
    /// `send_timeout_seconds`: the longest a client may leave an answer
    /// unread; a slow reader then loses the connection (and the upstream
    /// request it held). [`defaults::SEND_TIMEOUT_SECONDS`].
    pub send_timeout: Duration,
    /// `max_tracked_clients`: clients the rate limiter remembers at once;
    /// beyond it the idle ones are forgotten early.
    /// [`defaults::MAX_TRACKED_CLIENTS`].
    pub max_tracked_clients: usize,
    /// `max_connections_per_client`: open connections from one client
    /// address (a trusted proxy's connections are not counted per client);
    /// beyond it a new connection gets a short `429` and is closed.
    /// [`defaults::MAX_CONNECTIONS_PER_CLIENT`].
    pub max_connections_per_client: usize,
    /// `max_in_flight_upstream_per_client`: one client's requests at the
    /// upstream at once; beyond it `429` with `Retry-After`.
    /// [`defaults::MAX_IN_FLIGHT_UPSTREAM_PER_CLIENT`].
    pub max_in_flight_upstream_per_client: usize,
    /// `body_read_timeout_seconds`: the longest a client may send nothing
    /// of its request body, and the grace before
    /// `min_body_bytes_per_second` applies; then `408`.
    /// [`defaults::BODY_READ_TIMEOUT_SECONDS`].
    pub body_read_timeout: Duration,
    /// `min_body_bytes_per_second`: the slowest average upload accepted
    /// after `body_read_timeout`; 0 keeps only the silence timeout.
    /// [`defaults::MIN_BODY_BYTES_PER_SECOND`].
    pub min_body_bytes_per_second: u64,
    /// `max_unfinished_body_bytes`: memory all request bodies still being
    /// received may hold together; one client may hold a sixteenth of it
    /// (at least `max_body_bytes`). Beyond it `503` (`429` for the client
    /// over its share). [`defaults::MAX_UNFINISHED_BODY_BYTES`].
    pub max_unfinished_body_bytes: u64,
}

/// `[cookies]`: how the gateway's cookies are sent.
#[derive(Debug, Clone)]
pub struct CookieConfig {
    /// `secure`: when cookies carry the `Secure` flag. Default
    /// [`defaults::COOKIES_SECURE`].
    pub secure: CookieSecure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    /// `"auto"`: when the visitor reached us over TLS, as a TLS terminator in
    /// front says with `X-Forwarded-Proto: https`.
    Auto,
    /// `"always"`: every cookie, whatever the request says.
    Always,
}

/// `[worker]`.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `admin_listen`: the worker's metrics and health. Default
    /// [`defaults::WORKER_ADMIN_LISTEN`].
    pub admin_listen: SocketAddr,
}

/// One `[[room]]`: a set of path prefixes behind one queue.
#[derive(Debug, Clone)]
pub struct Room {
    /// 1 to 32 characters of `a-z`, `0-9`, `_` and `-`; unique.
    pub name: String,
    /// Path prefixes this room protects: non-empty, each starts with `/`,
    /// none under `/_anteroom`. ASCII-lowercased: match case-insensitively.
    pub paths: Vec<String>,
    /// Prefixes under `paths` that pass freely. Lowercased like `paths`.
    pub exclude: Vec<String>,
    /// Visitors inside at once.
    pub capacity: NonZeroU32,
    /// New visitors let in per minute.
    pub admit_per_minute: NonZeroU32,
    /// `session_seconds`: inactivity that ends a session.
    /// [`defaults::SESSION_SECONDS`].
    pub session: Duration,
    /// `arrival_seconds`: time an admitted visitor has to show up.
    /// [`defaults::ARRIVAL_SECONDS`].
    pub arrival: Duration,
    /// `refresh_seconds`: how often a waiting page re-checks, always
    /// shorter than `arrival`. [`defaults::REFRESH_SECONDS`].
    pub refresh: Duration,
    /// `pre_queue_from`, `opens_at` and `closes_at`, each optional: the
    /// room's launch event, in order ([`schedule::Schedule::check`]).
    /// Times already past are kept: a gateway restarted after the opening
    /// reads the same file. Empty ([`schedule::Schedule::default`]) when
    /// none is set.
    pub schedule: schedule::Schedule,
    /// `[room.adaptive]`: off unless the file turns it on
    /// ([`Adaptive::off`] when the table is left out).
    pub adaptive: Adaptive,
}

/// `[room.adaptive]`: admission that follows the site's health.
///
/// The room's `admit_per_minute` stays the ceiling; while `enabled`, the
/// pace moves between `min_admit_per_minute` and it, cut when the site
/// misses `latency_p90_ms` or fails more than `max_error_rate` of the
/// room's requests (`docs/adaptive.md`). Valid as [`Adaptive::check`]
/// says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    /// `enabled`. Default [`defaults::ADAPTIVE_ENABLED`].
    pub enabled: bool,
    /// `min_admit_per_minute`: the floor, at most the room's
    /// `admit_per_minute`. Default [`defaults::MIN_ADMIT_PER_MINUTE`] or
    /// `admit_per_minute`, whichever is less.
    pub min_admit_per_minute: NonZeroU32,
    /// `latency_p90_ms`: the p90 visitors may see, the wait for a place at
    /// the site included. [`defaults::LATENCY_P90_MS`].
    pub latency_p90_ms: u32,
    /// `max_error_rate`: the share of the room's requests the site may
    /// fail, in (0, [`defaults::MAX_ERROR_RATE_LIMIT`]]. Default
    /// [`defaults::MAX_ERROR_RATE`].
    pub max_error_rate: f64,
}

impl Adaptive {
    /// Every key's default: off, the floor at
    /// [`defaults::MIN_ADMIT_PER_MINUTE`] or `admit_per_minute`, whichever
    /// is less. What a room without `[room.adaptive]` gets.
    pub fn off(admit_per_minute: NonZeroU32) -> Adaptive {
        let floor = NonZeroU32::new(defaults::MIN_ADMIT_PER_MINUTE)
            .expect("the default floor is at least 1");
        Adaptive {
            enabled: defaults::ADAPTIVE_ENABLED,
            min_admit_per_minute: floor.min(admit_per_minute),
            latency_p90_ms: defaults::LATENCY_P90_MS.default as u32,
            max_error_rate: defaults::MAX_ERROR_RATE,
        }
    }
}

/// Why an [`Adaptive`] cannot stand. The message starts with the key in
/// `[room.adaptive]` ([`AdaptiveError::key`]); the file's errors put the
/// room and `adaptive.` before it.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum AdaptiveError {
    #[error(
        "min_admit_per_minute: {floor} is above the room's admit_per_minute ({ceiling}); \
         the floor must not be above the ceiling"
    )]
    FloorAboveCeiling { floor: u32, ceiling: u32 },
    #[error(
        "latency_p90_ms: must be between {} and {} (got {latency_ms})",
        defaults::LATENCY_P90_MS.range.start(),
        defaults::LATENCY_P90_MS.range.end()
    )]
    LatencyOutOfRange { latency_ms: u32 },
    #[error(
        "latency_p90_ms: {latency_ms} must be below the upstream timeout ({} ms, \
         upstream_timeout_seconds), or the site's timeout would end the slow requests before \
         the target could be seen",
        upstream_timeout.as_millis()
    )]
    LatencyNotBelowTimeout {
        latency_ms: u32,
        upstream_timeout: Duration,
    },
    #[error(
        "max_error_rate: must be a number above 0 and at most {} (got {rate})",
        defaults::MAX_ERROR_RATE_LIMIT
    )]
    ErrorRateOutOfRange { rate: f64 },
}

/// One `[[buffer]]`: a write endpoint whose requests are stored and drained.
#[derive(Debug, Clone)]
pub struct Buffer {
    /// Same charset as room names; unique among buffers.
    pub name: String,
    /// Name of an existing room; only its admitted visitors may submit.
    pub room: String,
    /// POST, PUT, PATCH or DELETE; default [`defaults::BUFFER_METHOD`].
    pub method: http::Method,
    /// Lies under one of the room's `paths` and under none of its
    /// `exclude`s. ASCII-lowercased; `(method, path)` is unique.
    pub path: String,
    /// Requests per second drained by all workers together.
    pub drain_per_second: NonZeroU32,
    /// Requests of this buffer in flight to the sink at once. Default
    /// [`defaults::MAX_IN_FLIGHT`].
    pub max_in_flight: NonZeroU32,
    /// Where drained requests go. Default [`defaults::SINK`].
    pub sink: Sink,
    /// `max_depth`: requests stored and not yet applied (queued, in flight
    /// or waiting to be retried) beyond which the intake answers 503.
    /// [`defaults::MAX_DEPTH`].
    pub max_depth: u64,
    /// `max_per_pass`: requests one pass may have stored and not yet
    /// applied in this buffer at once; beyond, the intake answers 429.
    /// Requests without a pass (`on_error = "admit"` while the store is
    /// down) are not counted. Within `1..=max_depth`.
    /// [`defaults::MAX_PER_PASS`].
    pub max_per_pass: u64,
    /// `content_types`: media types (without parameters, lowercased) the
    /// intake accepts; anything else is 415. Default
    /// [`defaults::CONTENT_TYPES`].
    /// With the postgres sink only `application/json` makes sense.
    pub content_types: Vec<String>,
    /// `max_attempts`: tries of a request whose sink fails transiently
    /// before it is dead-lettered. [`defaults::MAX_ATTEMPTS`].
    pub max_attempts: u32,
    /// `retry_initial_ms`: the first retry's backoff; it doubles on each
    /// attempt, with full jitter, up to `retry_max`.
    /// [`defaults::RETRY_INITIAL_MS`].
    pub retry_initial: Duration,
    /// `retry_max_seconds`: the longest backoff.
    /// [`defaults::RETRY_MAX_SECONDS`].
    pub retry_max: Duration,
    /// `sink_timeout_seconds`: one application of a request to the sink.
    /// [`defaults::SINK_TIMEOUT_SECONDS`].
    pub sink_timeout: Duration,
    /// `reclaim_after_seconds`: a request taken by a worker that has neither
    /// finished nor failed it after this long (the worker died) is taken
    /// again by another. Longer than `sink_timeout`.
    /// [`defaults::RECLAIM_AFTER_SECONDS`].
    pub reclaim_after: Duration,
    /// `result_seconds`: how long a finished receipt (and its idempotency
    /// key) is kept. [`defaults::RESULT_SECONDS`].
    pub result_for: Duration,
}

/// How the binaries write their logs. Default [`defaults::LOG_FORMAT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `sink`: where a buffer's requests are replayed.
#[derive(Clone, PartialEq, Eq)]
pub enum Sink {
    /// `"http"`: replayed to the upstream.
    Http,
    /// `"postgres"`: `statement` run against `postgres_url`.
    Postgres {
        url: String,
        statement: String,
        /// `params`: one per `$n` of the statement, in order. Each is a
        /// dotted path into the JSON body (`"slot_id"`, `"patient.name"`,
        /// `"items.0"`), or `"$idempotency_key"`, `"$receipt"` or `"$body"`
        /// (the whole body as JSON). Default [].
        params: Vec<String>,
    },
}

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax, a wrong type or an unknown key; toml's own message, which
    /// names the key and the line.
    #[error("{0}")]
    Parse(String),
    /// The file parsed but a value breaks a rule; the message names the key.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads the file and the process environment (`ANTEROOM_COOKIE_KEYS`,
    /// `ANTEROOM_ADMIN_TOKEN`).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &|name| std::env::var(name).ok(), base)
    }

    /// Parses `text`, looking environment variables up with `env` instead of
    /// the process environment (tests pass a closure).
    pub fn from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::parse(text, &env, Path::new("."))
    }

    /// `base`: the directory relative paths in the file start from.
    fn parse(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        base: &Path,
    ) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = toml::from_str(text)
            .map_err(|error| ConfigError::Parse(error.to_string().trim_end().to_owned()))?;
        validate::config(raw, env, base).map_err(ConfigError::Invalid)
    }

    /// The room called `name`, if any.
    pub fn room(&self, name: &str) -> Option<&Room> {
        self.rooms.iter().find(|room| room.name == name)
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted_keys = vec!["<redacted>"; self.cookie_keys.len()];
        formatter
            .debug_struct("Secrets")
            .field("cookie_keys", &redacted_keys)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

// Backend and Sink hold URLs that may carry a password; their Debug hides it
// so `?config` in a log line is safe.
impl std::fmt::Debug for Backend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Memory => formatter.write_str("Memory"),
            Backend::Redis { url, tls } => formatter
                .debug_struct("Redis")
                .field("url", &redact_password(url))
                .field("tls", tls)
                .finish(),
            Backend::Sentinel {
                sentinels,
                master,
                credentials,
                sentinel_credentials,
                tls,
            } => formatter
                .debug_struct("Sentinel")
                .field("sentinels", sentinels)
                .field("master", master)
                .field("credentials", credentials)
                .field("sentinel_credentials", sentinel_credentials)
                .field("tls", tls)
                .finish(),
            Backend::Cluster {
                nodes,
                credentials,
                tls,
            } => formatter
                .debug_struct("Cluster")
                .field("nodes", nodes)
                .field("credentials", credentials)
                .field("tls", tls)
                .finish(),
        }
    }
}

impl std::fmt::Debug for RedisCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RedisCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for PemFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_tuple("PemFile")
            .field(&self.path.display())
            .finish()
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Http => formatter.write_str("Http"),
            Sink::Postgres {
                url,
                statement,
                params,
            } => formatter
                .debug_struct("Postgres")
                .field("url", &redact_password(url))
                .field("statement", statement)
                .field("params", params)
                .finish(),
        }
    }
}
