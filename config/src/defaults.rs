//! Every key's default, written once. Validation fills the defaults in from
//! here; the doc comments of [`crate::Config`] point here; the README's
//! configuration table and `anteroom.example.toml` are tested against
//! [`table`] (`config/tests/documented_defaults.rs`).

use std::ops::RangeInclusive;

/// A whole number: its default and the values accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounded {
    pub default: u64,
    pub range: RangeInclusive<u64>,
}

impl Bounded {
    pub const fn new(default: u64, range: RangeInclusive<u64>) -> Bounded {
        Bounded { default, range }
    }
}

/// A key's default, as the documentation states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyDefault {
    /// The file must set it (for `buffer.postgres_url` and
    /// `buffer.statement`: with `sink = "postgres"`).
    Required,
    /// Left out, the setting is off or built in (`secrets.admin_token`,
    /// `pages.dir`, `store.tls_ca_file`).
    Unset,
    /// The value that applies when the key is left out: a string without
    /// quotes (`0.0.0.0:8080`, `memory`), a number in digits (`16384`), or a
    /// list as TOML writes it (`[]`, `["application/json"]`).
    Value(String),
}

pub const LISTEN: &str = "0.0.0.0:8080";
pub const ADMIN_LISTEN: &str = "127.0.0.1:9090";
pub const UPSTREAM_TIMEOUT_SECONDS: Bounded = Bounded::new(30, 1..=600);
pub const SHUTDOWN_GRACE_SECONDS: Bounded = Bounded::new(10, 0..=300);
pub const LOG_FORMAT: &str = "text";
/// The IANA zone times are shown in to visitors: the deployment this was
/// built for books in Italy.
pub const TIME_ZONE: &str = "Europe/Rome";

pub const BACKEND: &str = "memory";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
pub const ON_ERROR: &str = "wait";
/// Replicas that must report a booking (Redis `WAIT`) before it is
/// answered `202`; 0 answers once the primary has it. At most 10: a
/// deployment with more replicas than that waits for a quorum of them, not
/// all, and a figure above the replicas there are refuses every booking.
pub const MIN_REPLICAS_ACKED: Bounded = Bounded::new(0, 0..=10);

pub const PER_IP_PER_SECOND: u32 = 20;
pub const PER_IP_BURST: u32 = 40;
pub const TICKETS_PER_IP_PER_MINUTE: u32 = 10;
pub const MAX_CONNECTIONS: Bounded = Bounded::new(10_000, 1..=1_000_000);
pub const MAX_EVENT_STREAMS: Bounded = Bounded::new(10_000, 0..=1_000_000);
pub const MAX_HEADER_BYTES: Bounded = Bounded::new(16 * 1024, 8 * 1024..=1024 * 1024);
pub const MAX_BODY_BYTES: Bounded = Bounded::new(1024 * 1024, 0..=1024 * 1024 * 1024);
pub const HEADER_READ_TIMEOUT_SECONDS: Bounded = Bounded::new(10, 1..=300);
pub const MAX_IN_FLIGHT_UPSTREAM: Bounded = Bounded::new(1024, 1..=1_000_000);
/// Long enough to absorb the bursts of visitors let in together (waiting
/// pages that ask again in the same seconds: several seconds of the site's
/// work); well inside a browser's patience, so that a site that is really
/// overloaded is answered with `503` while the visitor still waits.
pub const UPSTREAM_QUEUE_MS: Bounded = Bounded::new(10_000, 0..=60_000);
pub const SEND_TIMEOUT_SECONDS: Bounded = Bounded::new(30, 1..=3600);
/// A browser opens at most six connections to a site, plus an event
/// stream; 64 leaves room for a household or a small office behind one
/// address while one client cannot hold more than a sliver of
/// `max_connections`.
pub const MAX_CONNECTIONS_PER_CLIENT: Bounded = Bounded::new(64, 1..=1_000_000);
/// One client's share of `max_in_flight_upstream`: more than a browser
/// loading a page ever has at the site at once, a small part of the default
/// 1024.
pub const MAX_IN_FLIGHT_UPSTREAM_PER_CLIENT: Bounded = Bounded::new(32, 1..=1_000_000);
/// A client that sends nothing of its body for this long is cut off
/// (`408`), as one that stays silent before its headers is.
pub const BODY_READ_TIMEOUT_SECONDS: Bounded = Bounded::new(10, 1..=300);
/// The slowest average upload accepted once `body_read_timeout_seconds`
/// has passed: 4 KiB/s is a poor mobile link; a client trickling a byte at
/// a time falls below it within seconds. 0 keeps only the silence timeout.
pub const MIN_BODY_BYTES_PER_SECOND: Bounded = Bounded::new(4096, 0..=1024 * 1024 * 1024);
/// Memory all request bodies still being received may hold together (booking
/// bodies are read whole before they are stored; proxied bodies up to 64 KiB
/// before they take a place at the site). 64 bounded at once at the default
/// 1 MiB `max_body_bytes`.
pub const MAX_UNFINISHED_BODY_BYTES: Bounded =
    Bounded::new(64 * 1024 * 1024, 1024 * 1024..=64 * 1024 * 1024 * 1024);
pub const MAX_TRACKED_CLIENTS: Bounded = Bounded::new(1_000_000, 1_000..=100_000_000);

pub const COOKIES_SECURE: &str = "auto";
pub const WORKER_ADMIN_LISTEN: &str = "127.0.0.1:9091";

pub const SESSION_SECONDS: Bounded = Bounded::new(300, 10..=86_400);
pub const ARRIVAL_SECONDS: Bounded = Bounded::new(60, 5..=3_600);
pub const REFRESH_SECONDS: Bounded = Bounded::new(5, 1..=60);

/// `[room.adaptive]`: the pace follows the site's health only where an
/// operator turns it on (`docs/adaptive.md`).
pub const ADAPTIVE_ENABLED: bool = false;
/// `store.tls`: TLS to the sentinels and their servers, or to a
/// cluster's nodes (a `redis_url` says it by its scheme).
pub const STORE_TLS: bool = false;
/// The pace's floor: one visitor a second keeps a line visibly moving,
/// and the floor's visitors are the probes that find a failing site back.
/// Set, it must lie in `1..=admit_per_minute` (the ceiling); left out, it
/// is this or `admit_per_minute`, whichever is less.
pub const MIN_ADMIT_PER_MINUTE: u32 = 60;
/// The visitor-seen p90 the pace aims under, the wait for a place at the
/// site included: one second is slow but not broken for a booking page.
/// At least 10 ms (below that the gateway's own work shows); at most a
/// minute. It must also stay below `upstream_timeout_seconds`, or the
/// timeout would end the slow requests before the target could be seen.
pub const LATENCY_P90_MS: Bounded = Bounded::new(1_000, 10..=60_000);
/// The share of the room's requests the site may fail before the pace is
/// cut: 1% reacts to a dependency down for part of the requests, not to a
/// single stray `502`.
pub const MAX_ERROR_RATE: f64 = 0.01;
/// The largest `max_error_rate` accepted (it must also be above 0): a site
/// failing more than half of its requests is down, not slow, and a target
/// that tolerates it would never cut the pace.
pub const MAX_ERROR_RATE_LIMIT: f64 = 0.5;

pub const BUFFER_METHOD: &str = "POST";
pub const MAX_IN_FLIGHT: u32 = 8;
pub const SINK: &str = "http";
pub const MAX_DEPTH: Bounded = Bounded::new(100_000, 1..=100_000_000);
/// Requests one pass may have unfinished in one buffer at once: a person
/// books one thing, or a few for a family, and retries with the same key
/// (a duplicate does not count); a script sending hundreds is cut off here
/// rather than filling `max_depth` for everyone. Set, it must lie in
/// `1..=max_depth`; left out, it is this or `max_depth`, whichever is less.
pub const MAX_PER_PASS: u64 = 10;
/// Media types a buffer accepts when `content_types` is not set.
pub const CONTENT_TYPES: [&str; 2] = ["application/json", "application/x-www-form-urlencoded"];
pub const MAX_ATTEMPTS: Bounded = Bounded::new(8, 1..=100);
pub const RETRY_INITIAL_MS: Bounded = Bounded::new(500, 10..=600_000);
pub const RETRY_MAX_SECONDS: Bounded = Bounded::new(60, 1..=3_600);
pub const SINK_TIMEOUT_SECONDS: Bounded = Bounded::new(10, 1..=300);
pub const RECLAIM_AFTER_SECONDS: Bounded = Bounded::new(30, 2..=3_600);
pub const RESULT_SECONDS: Bounded = Bounded::new(86_400, 60..=2_592_000);

/// Every key of the file with its default, in the file's order. Keys are
/// dotted by table (`limits.max_connections`); the keys of each `[[room]]`
/// and `[[buffer]]` entry are `room.NAME` and `buffer.NAME`, those of a
/// room's `[room.adaptive]` `room.adaptive.NAME`.
pub fn table() -> Vec<(&'static str, KeyDefault)> {
    use KeyDefault::{Required, Unset};
    let text = |value: &str| KeyDefault::Value(value.to_owned());
    let number = |value: u64| KeyDefault::Value(value.to_string());
    let bounded = |bounded: Bounded| number(bounded.default);
    let list = |items: &[&str]| {
        let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
        KeyDefault::Value(format!("[{}]", quoted.join(", ")))
    };
    vec![
        ("listen", text(LISTEN)),
        ("admin_listen", text(ADMIN_LISTEN)),
        ("upstream", Required),
        (
            "upstream_timeout_seconds",
            bounded(UPSTREAM_TIMEOUT_SECONDS),
        ),
        ("shutdown_grace_seconds", bounded(SHUTDOWN_GRACE_SECONDS)),
        ("log_format", text(LOG_FORMAT)),
        ("time_zone", text(TIME_ZONE)),
        ("store.backend", text(BACKEND)),
        ("store.redis_url", text(REDIS_URL)),
        ("store.sentinels", Unset),
        ("store.sentinel_master", Unset),
        ("store.cluster_nodes", Unset),
        ("store.tls_ca_file", Unset),
        ("store.tls_cert_file", Unset),
        ("store.tls_key_file", Unset),
        ("store.tls", text(&STORE_TLS.to_string())),
        ("store.username", Unset),
        ("store.password", Unset),
        ("store.sentinel_username", Unset),
        ("store.sentinel_password", Unset),
        ("store.on_error", text(ON_ERROR)),
        ("store.min_replicas_acked", bounded(MIN_REPLICAS_ACKED)),
        ("secrets.cookie_keys", list(&[])),
        ("secrets.admin_token", Unset),
        ("limits.per_ip_per_second", number(PER_IP_PER_SECOND.into())),
        ("limits.per_ip_burst", number(PER_IP_BURST.into())),
        (
            "limits.tickets_per_ip_per_minute",
            number(TICKETS_PER_IP_PER_MINUTE.into()),
        ),
        ("limits.trusted_proxies", list(&[])),
        ("limits.max_connections", bounded(MAX_CONNECTIONS)),
        ("limits.max_event_streams", bounded(MAX_EVENT_STREAMS)),
        ("limits.max_header_bytes", bounded(MAX_HEADER_BYTES)),
        ("limits.max_body_bytes", bounded(MAX_BODY_BYTES)),
        (
            "limits.header_read_timeout_seconds",
            bounded(HEADER_READ_TIMEOUT_SECONDS),
        ),
        (
            "limits.max_in_flight_upstream",
            bounded(MAX_IN_FLIGHT_UPSTREAM),
        ),
        ("limits.upstream_queue_ms", bounded(UPSTREAM_QUEUE_MS)),
        ("limits.send_timeout_seconds", bounded(SEND_TIMEOUT_SECONDS)),
        ("limits.max_tracked_clients", bounded(MAX_TRACKED_CLIENTS)),
        (
            "limits.max_connections_per_client",
            bounded(MAX_CONNECTIONS_PER_CLIENT),
        ),
        (
            "limits.max_in_flight_upstream_per_client",
            bounded(MAX_IN_FLIGHT_UPSTREAM_PER_CLIENT),
        ),
        (
            "limits.body_read_timeout_seconds",
            bounded(BODY_READ_TIMEOUT_SECONDS),
        ),
        (
            "limits.min_body_bytes_per_second",
            bounded(MIN_BODY_BYTES_PER_SECOND),
        ),
        (
            "limits.max_unfinished_body_bytes",
            bounded(MAX_UNFINISHED_BODY_BYTES),
        ),
        ("cookies.secure", text(COOKIES_SECURE)),
        ("pages.dir", Unset),
        ("worker.admin_listen", text(WORKER_ADMIN_LISTEN)),
        ("room.name", Required),
        ("room.paths", Required),
        ("room.exclude", list(&[])),
        ("room.capacity", Required),
        ("room.admit_per_minute", Required),
        ("room.session_seconds", bounded(SESSION_SECONDS)),
        ("room.arrival_seconds", bounded(ARRIVAL_SECONDS)),
        ("room.refresh_seconds", bounded(REFRESH_SECONDS)),
        ("room.pre_queue_from", Unset),
        ("room.opens_at", Unset),
        ("room.closes_at", Unset),
        ("room.adaptive.enabled", text(&ADAPTIVE_ENABLED.to_string())),
        (
            "room.adaptive.min_admit_per_minute",
            number(MIN_ADMIT_PER_MINUTE.into()),
        ),
        ("room.adaptive.latency_p90_ms", bounded(LATENCY_P90_MS)),
        (
            "room.adaptive.max_error_rate",
            text(&MAX_ERROR_RATE.to_string()),
        ),
        ("buffer.name", Required),
        ("buffer.room", Required),
        ("buffer.method", text(BUFFER_METHOD)),
        ("buffer.path", Required),
        ("buffer.drain_per_second", Required),
        ("buffer.max_in_flight", number(MAX_IN_FLIGHT.into())),
        ("buffer.sink", text(SINK)),
        ("buffer.postgres_url", Required),
        ("buffer.statement", Required),
        ("buffer.params", list(&[])),
        ("buffer.max_depth", bounded(MAX_DEPTH)),
        ("buffer.max_per_pass", number(MAX_PER_PASS)),
        ("buffer.content_types", list(&CONTENT_TYPES)),
        ("buffer.max_attempts", bounded(MAX_ATTEMPTS)),
        ("buffer.retry_initial_ms", bounded(RETRY_INITIAL_MS)),
        ("buffer.retry_max_seconds", bounded(RETRY_MAX_SECONDS)),
        ("buffer.sink_timeout_seconds", bounded(SINK_TIMEOUT_SECONDS)),
        (
            "buffer.reclaim_after_seconds",
            bounded(RECLAIM_AFTER_SECONDS),
        ),
        ("buffer.result_seconds", bounded(RESULT_SECONDS)),
    ]
}
