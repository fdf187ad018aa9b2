//! The file exactly as written: serde structs that mirror the TOML keys.
//!
//! Every struct denies unknown fields, so a misspelt key is an error rather
//! than a silently ignored setting. Keys with a default are `Option`s here;
//! `validate` fills the defaults in from `defaults`, where they are written
//! once. Required keys
//! are `Option`s too, so their absence gets a message naming the table it is
//! missing from rather than serde's generic one.

use serde::Deserialize;

// No `Debug` on these structs: they hold secrets and URLs with passwords,
// and nothing needs to print them.

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub upstream: Option<String>,
    pub upstream_timeout_seconds: Option<u64>,
    pub shutdown_grace_seconds: Option<u64>,
    pub log_format: Option<String>,
    pub time_zone: Option<String>,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub secrets: RawSecrets,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub worker: RawWorker,
    #[serde(default)]
    pub cookies: RawCookies,
    #[serde(default)]
    pub room: Vec<RawRoom>,
    #[serde(default)]
    pub buffer: Vec<RawBuffer>,
    #[serde(default)]
    pub pages: RawPages,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPages {
    pub dir: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    pub backend: Option<String>,
    pub redis_url: Option<String>,
    pub sentinels: Option<Vec<String>>,
    pub sentinel_master: Option<String>,
    pub cluster_nodes: Option<Vec<String>>,
    pub tls_ca_file: Option<String>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub tls: Option<bool>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    pub on_error: Option<String>,
    pub min_replicas_acked: Option<u64>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCookies {
    pub secure: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecrets {
    pub cookie_keys: Option<Vec<String>>,
    pub admin_token: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub per_ip_per_second: Option<u32>,
    pub per_ip_burst: Option<u32>,
    pub tickets_per_ip_per_minute: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
    pub max_connections: Option<u64>,
    pub max_event_streams: Option<u64>,
    pub max_header_bytes: Option<u64>,
    pub max_body_bytes: Option<u64>,
    pub header_read_timeout_seconds: Option<u64>,
    pub max_in_flight_upstream: Option<u64>,
    pub upstream_queue_ms: Option<u64>,
    pub max_tracked_clients: Option<u64>,
    pub send_timeout_seconds: Option<u64>,
    pub max_connections_per_client: Option<u64>,
    pub max_in_flight_upstream_per_client: Option<u64>,
    pub body_read_timeout_seconds: Option<u64>,
    pub min_body_bytes_per_second: Option<u64>,
    pub max_unfinished_body_bytes: Option<u64>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorker {
    pub admin_listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoom {
    pub name: Option<String>,
    pub paths: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    pub capacity: Option<u32>,
    pub admit_per_minute: Option<u32>,
    pub session_seconds: Option<u64>,
    pub arrival_seconds: Option<u64>,
    pub refresh_seconds: Option<u64>,
    // Values rather than strings: a TOML offset date-time written without
    // quotes is read as the same instant, not refused as the wrong type.
    pub pre_queue_from: Option<toml::Value>,
    pub opens_at: Option<toml::Value>,
    pub closes_at: Option<toml::Value>,
    pub adaptive: Option<RawAdaptive>,
}

/// `[room.adaptive]` under a `[[room]]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdaptive {
    pub enabled: Option<bool>,
    pub min_admit_per_minute: Option<u32>,
    pub latency_p90_ms: Option<u64>,
    // An integer (`max_error_rate = 0`) is read as the same number, and
    // refused or accepted by its value like any other.
    pub max_error_rate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBuffer {
    pub name: Option<String>,
    pub room: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub drain_per_second: Option<u32>,
    pub max_in_flight: Option<u32>,
    pub sink: Option<String>,
    pub postgres_url: Option<String>,
    pub statement: Option<String>,
    pub params: Option<Vec<String>>,
    pub max_depth: Option<u64>,
    pub max_per_pass: Option<u64>,
    pub content_types: Option<Vec<String>>,
    pub max_attempts: Option<u64>,
    pub retry_initial_ms: Option<u64>,
    pub retry_max_seconds: Option<u64>,
    pub sink_timeout_seconds: Option<u64>,
    pub reclaim_after_seconds: Option<u64>,
    pub result_seconds: Option<u64>,
}
