//! The gateway's config file as typed data, for every gateway the bench and
//! the tests generate: `lazio`'s in-process gateway, the gateway processes
//! of `anteroom-bench http`, and the test harness's builder
//! (`anteroom-tests`, which depends on this crate for the origin already).
//!
//! The structs mirror the file's tables and keys, as `anteroom_config`'s own
//! (private, deserialise-only) raw structs do. A key left `None` (or an empty
//! list) is not written, so the gateway's default applies: defaults stay
//! written once, in `anteroom_config`. [`ConfigFile::toml`] writes the file;
//! [`ConfigFile::validate`] reads it back through `anteroom_config` exactly
//! as a gateway would, so a generated config is checked by the real rules.

use std::net::SocketAddr;
use std::path::PathBuf;

use anteroom_config::{Config, ConfigError};
use serde::Serialize;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigFile {
    /// `None` for a gateway run in-process: the caller binds its listeners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    /// The site's URL, `http://host:port`.
    pub upstream: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// IANA name, e.g. `Europe/Rome`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub store: Store,
    pub secrets: Secrets,
    pub limits: Limits,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<Worker>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookies: Option<Cookies>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<Pages>,
    /// `[[room]]` tables.
    #[serde(rename = "room", skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<Room>,
    /// `[[buffer]]` tables.
    #[serde(rename = "buffer", skip_serializing_if = "Vec::is_empty")]
    pub buffers: Vec<Buffer>,
}

/// `log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[store]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Store {
    #[serde(flatten)]
    pub backend: StoreBackend,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    /// Replicas a booking's `202` waits for (Redis `WAIT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_replicas_acked: Option<u32>,
    /// The Redis servers' ACL user, with `password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The Redis servers' password (`requirepass`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The sentinels' own password, with `sentinels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel_password: Option<String>,
}

/// `backend` and, for Redis, which one: `redis_url` and the TLS files,
/// `sentinels` and `sentinel_master`, or `cluster_nodes` (all three are
/// `backend = "redis"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum StoreBackend {
    #[default]
    Memory,
    Redis {
        redis_url: String,
        #[serde(flatten)]
        tls: RedisTls,
    },
    /// `tls = true` and the TLS files, for sentinels and servers that
    /// speak TLS.
    #[serde(rename = "redis")]
    RedisSentinel {
        sentinels: Vec<String>,
        sentinel_master: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        tls: Option<bool>,
        #[serde(flatten)]
        tls_files: RedisTls,
    },
    /// `tls = true` and the TLS files, for a cluster that speaks TLS.
    #[serde(rename = "redis")]
    RedisCluster {
        cluster_nodes: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tls: Option<bool>,
        #[serde(flatten)]
        tls_files: RedisTls,
    },
}

impl StoreBackend {
    /// Redis at `url`, without TLS files.
    pub fn redis(url: impl Into<String>) -> StoreBackend {
        StoreBackend::Redis {
            redis_url: url.into(),
            tls: RedisTls::default(),
        }
    }
}

/// `tls_ca_file`, `tls_cert_file` and `tls_key_file`, for a `rediss://`
/// `redis_url`. The gateway reads relative paths from the config file's
/// directory, and [`ConfigFile::validate`] from the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedisTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
}

/// `on_error`: what the gateway does while the store is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    Wait,
    Admit,
}

/// `[secrets]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Secrets {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cookie_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
}

/// `[limits]`; every key optional. Build one with the setters:
/// `Limits::default().per_ip_per_second(1).per_ip_burst(3)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_ip_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_ip_burst: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tickets_per_ip_per_minute: Option<u32>,
    /// Networks (`127.0.0.1/32`) or bare addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_streams: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_header_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_read_timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight_upstream: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_queue_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tracked_clients: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_client: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight_upstream_per_client: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_read_timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_body_bytes_per_second: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unfinished_body_bytes: Option<u64>,
}

/// `[worker]`.
#[derive(Debug, Clone, Serialize)]
pub struct Worker {
    pub admin_listen: SocketAddr,
}

/// `[cookies]`.
#[derive(Debug, Clone, Serialize)]
pub struct Cookies {
    pub secure: CookieSecure,
}

/// `[cookies] secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CookieSecure {
    Auto,
    Always,
}

/// `[pages]`.
#[derive(Debug, Clone, Serialize)]
pub struct Pages {
    /// The operator's page files.
    pub dir: PathBuf,
}

/// One `[[room]]`. [`Room::new`] sets the required keys; the setters the
/// rest: `Room::new("vaccini", &["/prenota"], 50, 600).refresh_seconds(2)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Room {
    pub name: String,
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    pub capacity: u32,
    pub admit_per_minute: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_seconds: Option<u64>,
    /// RFC 3339 with an offset, as are `opens_at` and `closes_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_queue_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<String>,
    /// `[room.adaptive]`. Last: TOML writes a room's tables after its keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<Adaptive>,
}

/// `[room.adaptive]`: admission that follows the site's health
/// (`docs/adaptive.md`). `admit_per_minute` stays the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Adaptive {
    pub enabled: bool,
    /// The floor of the pace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_admit_per_minute: Option<u32>,
}

/// One `[[buffer]]`. [`Buffer::new`] sets the required keys (an http sink);
/// the others are set with struct update syntax:
/// `Buffer { max_depth: Some(3), ..Buffer::new("bookings", "vaccini", "/api/bookings", 1000) }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Buffer {
    pub name: String,
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<BufferMethod>,
    pub path: String,
    pub drain_per_second: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    #[serde(flatten)]
    pub sink: Sink,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_pass: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_initial_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_max_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink_timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reclaim_after_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_seconds: Option<u64>,
}

/// `[[buffer]] method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BufferMethod {
    Post,
    Put,
    Patch,
    Delete,
}

/// `sink` and, for PostgreSQL, its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "sink", rename_all = "lowercase")]
pub enum Sink {
    /// Replayed to the upstream.
    #[default]
    Http,
    Postgres {
        postgres_url: String,
        statement: String,
        params: Vec<String>,
    },
}

impl ConfigFile {
    /// A file for a gateway in front of `upstream` whose listeners the
    /// caller binds (so `listen` and `admin_listen` are left out), on the
    /// memory store, with every other key at its default.
    pub fn new(upstream: impl Into<String>) -> ConfigFile {
        ConfigFile {
            upstream: upstream.into(),
            ..ConfigFile::default()
        }
    }

    /// The file's text.
    pub fn toml(&self) -> String {
        toml::to_string(self).expect("every field serialises to TOML")
    }

    /// The file read back and validated by `anteroom_config`, as a gateway
    /// started on it would (with no environment overrides).
    pub fn validate(&self) -> Result<Config, ConfigError> {
        Config::from_toml(&self.toml(), |_| None)
    }
}

impl Limits {
    pub fn per_ip_per_second(mut self, requests: u32) -> Self {
        self.per_ip_per_second = Some(requests);
        self
    }
    pub fn per_ip_burst(mut self, requests: u32) -> Self {
        self.per_ip_burst = Some(requests);
        self
    }
    pub fn tickets_per_ip_per_minute(mut self, tickets: u32) -> Self {
        self.tickets_per_ip_per_minute = Some(tickets);
        self
    }
    pub fn trusted_proxies(mut self, networks: &[&str]) -> Self {
        self.trusted_proxies = networks.iter().map(|network| network.to_string()).collect();
        self
    }
    pub fn max_connections(mut self, connections: u64) -> Self {
        self.max_connections = Some(connections);
        self
    }
    pub fn max_event_streams(mut self, streams: u64) -> Self {
        self.max_event_streams = Some(streams);
        self
    }
    pub fn max_header_bytes(mut self, bytes: u64) -> Self {
        self.max_header_bytes = Some(bytes);
        self
    }
    pub fn max_body_bytes(mut self, bytes: u64) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }
    pub fn header_read_timeout_seconds(mut self, seconds: u64) -> Self {
        self.header_read_timeout_seconds = Some(seconds);
        self
    }
    pub fn max_in_flight_upstream(mut self, requests: u64) -> Self {
        self.max_in_flight_upstream = Some(requests);
        self
    }
    pub fn upstream_queue_ms(mut self, milliseconds: u64) -> Self {
        self.upstream_queue_ms = Some(milliseconds);
        self
    }
    pub fn max_tracked_clients(mut self, clients: u64) -> Self {
        self.max_tracked_clients = Some(clients);
        self
    }
    pub fn send_timeout_seconds(mut self, seconds: u64) -> Self {
        self.send_timeout_seconds = Some(seconds);
        self
    }
    pub fn max_connections_per_client(mut self, value: u64) -> Self {
        self.max_connections_per_client = Some(value);
        self
    }
    pub fn max_in_flight_upstream_per_client(mut self, value: u64) -> Self {
        self.max_in_flight_upstream_per_client = Some(value);
        self
    }
    pub fn body_read_timeout_seconds(mut self, value: u64) -> Self {
        self.body_read_timeout_seconds = Some(value);
        self
    }
    pub fn min_body_bytes_per_second(mut self, value: u64) -> Self {
        self.min_body_bytes_per_second = Some(value);
        self
    }
    pub fn max_unfinished_body_bytes(mut self, value: u64) -> Self {
        self.max_unfinished_body_bytes = Some(value);
        self
    }
}

impl Room {
    /// A room with its required keys; the rest at the gateway's defaults.
    pub fn new(name: &str, paths: &[&str], capacity: u32, admit_per_minute: u32) -> Room {
        Room {
            name: name.to_owned(),
            paths: paths.iter().map(|path| path.to_string()).collect(),
            exclude: Vec::new(),
            capacity,
            admit_per_minute,
            session_seconds: None,
            arrival_seconds: None,
            refresh_seconds: None,
            pre_queue_from: None,
            opens_at: None,
            closes_at: None,
            adaptive: None,
        }
    }

    pub fn paths(mut self, paths: &[&str]) -> Self {
        self.paths = paths.iter().map(|path| path.to_string()).collect();
        self
    }
    pub fn exclude(mut self, exclude: &[&str]) -> Self {
        self.exclude = exclude.iter().map(|path| path.to_string()).collect();
        self
    }
    pub fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }
    pub fn admit_per_minute(mut self, rate: u32) -> Self {
        self.admit_per_minute = rate;
        self
    }
    pub fn session_seconds(mut self, seconds: u64) -> Self {
        self.session_seconds = Some(seconds);
        self
    }
    pub fn arrival_seconds(mut self, seconds: u64) -> Self {
        self.arrival_seconds = Some(seconds);
        self
    }
    /// How often the waiting page re-checks.
    pub fn refresh_seconds(mut self, seconds: u64) -> Self {
        self.refresh_seconds = Some(seconds);
        self
    }

    /// RFC 3339 with an offset, as are the next two.
    pub fn pre_queue_from(mut self, at: &str) -> Self {
        self.pre_queue_from = Some(at.to_owned());
        self
    }

    pub fn opens_at(mut self, at: &str) -> Self {
        self.opens_at = Some(at.to_owned());
        self
    }

    pub fn closes_at(mut self, at: &str) -> Self {
        self.closes_at = Some(at.to_owned());
        self
    }

    /// Admission that follows the site's health, above `floor` a minute
    /// when given (else the gateway's default floor).
    pub fn adaptive(mut self, floor: Option<u32>) -> Self {
        self.adaptive = Some(Adaptive {
            enabled: true,
            min_admit_per_minute: floor,
        });
        self
    }
}

impl Buffer {
    /// A buffer with its required keys, draining to the upstream (the http
    /// sink); the rest at the gateway's defaults.
    pub fn new(name: &str, room: &str, path: &str, drain_per_second: u32) -> Buffer {
        Buffer {
            name: name.to_owned(),
            room: room.to_owned(),
            method: None,
            path: path.to_owned(),
            drain_per_second,
            max_in_flight: None,
            sink: Sink::Http,
            max_depth: None,
            max_per_pass: None,
            content_types: None,
            max_attempts: None,
            retry_initial_ms: None,
            retry_max_seconds: None,
            sink_timeout_seconds: None,
            reclaim_after_seconds: None,
            result_seconds: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_is_written_as_the_gateway_reads_it() {
        let file = ConfigFile {
            listen: Some("127.0.0.1:8080".parse().unwrap()),
            admin_listen: Some("127.0.0.1:9090".parse().unwrap()),
            upstream_timeout_seconds: Some(5),
            store: Store {
                backend: StoreBackend::redis("redis://127.0.0.1:6379/0"),
                on_error: Some(OnError::Admit),
                ..Store::default()
            },
            secrets: Secrets {
                cookie_keys: vec!["k".repeat(32)],
                admin_token: Some("t".repeat(16)),
            },
            limits: Limits::default()
                .per_ip_per_second(1)
                .per_ip_burst(3)
                .trusted_proxies(&["127.0.0.1/32"]),
            worker: Some(Worker {
                admin_listen: "127.0.0.1:9091".parse().unwrap(),
            }),
            cookies: Some(Cookies {
                secure: CookieSecure::Always,
            }),
            rooms: vec![Room::new("vaccini", &["/prenota"], 2, 60).refresh_seconds(2)],
            buffers: vec![Buffer {
                method: Some(BufferMethod::Put),
                sink: Sink::Postgres {
                    postgres_url: "postgres://127.0.0.1/db".to_owned(),
                    statement: "SELECT $1".to_owned(),
                    params: vec!["slot".to_owned()],
                },
                max_depth: Some(3),
                max_per_pass: Some(2),
                ..Buffer::new("bookings", "vaccini", "/prenota/book", 10)
            }],
            ..ConfigFile::new("http://127.0.0.1:3000")
        };
        let config = file.validate().expect("a valid file");
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.upstream.authority, "127.0.0.1:3000");
        assert!(
            config.store.backend
                == anteroom_config::Backend::Redis {
                    url: "redis://127.0.0.1:6379/0".to_owned(),
                    tls: anteroom_config::RedisTls::default(),
                }
        );
        assert_eq!(config.store.on_error, anteroom_config::OnError::Admit);
        assert_eq!(
            config.secrets.admin_token.as_deref(),
            Some(&*"t".repeat(16))
        );
        assert_eq!(config.limits.per_ip_burst.get(), 3);
        assert_eq!(config.limits.trusted_proxies.len(), 1);
        assert_eq!(config.cookies.secure, anteroom_config::CookieSecure::Always);
        assert_eq!(config.rooms[0].capacity.get(), 2);
        assert_eq!(config.rooms[0].refresh.as_secs(), 2);
        let buffer = &config.buffers[0];
        assert_eq!(buffer.method, http::Method::PUT);
        assert_eq!(buffer.max_depth, 3);
        assert_eq!(buffer.max_per_pass, 2);
        assert!(matches!(
            &buffer.sink,
            anteroom_config::Sink::Postgres { params, .. } if params == &["slot"]
        ));
    }

    #[test]
    fn redis_tls_files_are_written_under_store() {
        let file = ConfigFile {
            store: Store {
                backend: StoreBackend::Redis {
                    redis_url: "rediss://cache:6380/0".to_owned(),
                    tls: RedisTls {
                        tls_ca_file: Some("/etc/anteroom/ca.pem".into()),
                        tls_cert_file: Some("/etc/anteroom/client.pem".into()),
                        tls_key_file: Some("/etc/anteroom/client-key.pem".into()),
                    },
                },
                on_error: None,
                ..Store::default()
            },
            ..ConfigFile::new("http://127.0.0.1:3000")
        };
        let text = file.toml();
        let store = text
            .split("[store]\n")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .expect("a [store] table");
        for line in [
            "backend = \"redis\"",
            "redis_url = \"rediss://cache:6380/0\"",
            "tls_ca_file = \"/etc/anteroom/ca.pem\"",
            "tls_cert_file = \"/etc/anteroom/client.pem\"",
            "tls_key_file = \"/etc/anteroom/client-key.pem\"",
        ] {
            assert!(
                store.lines().any(|written| written == line),
                "{line} in:\n{text}"
            );
        }
        // Read back, each file is named by its key.
        let message = file
            .validate()
            .expect_err("the files do not exist")
            .to_string();
        assert!(
            message.starts_with("store.tls_ca_file: /etc/anteroom/ca.pem: cannot read"),
            "{message}"
        );
    }

    #[test]
    fn an_adaptive_room_has_its_table_after_its_keys() {
        let room = |adaptive| ConfigFile {
            rooms: vec![adaptive],
            ..ConfigFile::new("http://127.0.0.1:3000")
        };
        let text = room(Room::new("vaccini", &["/"], 2, 60).adaptive(Some(30))).toml();
        assert!(
            text.ends_with(
                "[[room]]\nname = \"vaccini\"\npaths = [\"/\"]\ncapacity = 2\nadmit_per_minute = 60\n\n\
                 [room.adaptive]\nenabled = true\nmin_admit_per_minute = 30\n"
            ),
            "{text}"
        );
        let text = room(Room::new("vaccini", &["/"], 2, 60).adaptive(None)).toml();
        assert!(
            text.ends_with("[room.adaptive]\nenabled = true\n"),
            "the gateway's floor: {text}"
        );
        let text = room(Room::new("vaccini", &["/"], 2, 60)).toml();
        assert!(!text.contains("adaptive"), "{text}");
    }

    #[test]
    fn keys_left_out_take_the_gateways_defaults() {
        let file = ConfigFile::new("http://127.0.0.1:3000");
        assert_eq!(
            file.toml(),
            "upstream = \"http://127.0.0.1:3000\"\n\n[store]\nbackend = \"memory\"\n\n[secrets]\n\n[limits]\n"
        );
        let config = file.validate().expect("a valid file");
        assert_eq!(config.limits.per_ip_per_second.get(), 20);
        assert!(config.rooms.is_empty());
    }
}
