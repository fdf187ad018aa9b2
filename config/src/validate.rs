//! From the raw file to typed values: defaults, ranges and cross-references.
//!
//! Every error is a sentence that starts with the key it is about, e.g.
//! `room[1] "vaccini": capacity must be at least 1`. Indexes count from 0,
//! in file order. Validation stops at the first problem. Secret values and
//! URLs that may carry a password are never echoed back.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

mod adaptive;
mod pages;
mod rooms;
mod store;

use crate::defaults::{self, Bounded};
use crate::raw::{RawConfig, RawLimits, RawSecrets};
use crate::{
    Backend, Config, CookieConfig, CookieSecure, ENV_ADMIN_TOKEN, ENV_COOKIE_KEYS, Limits,
    LogFormat, Secrets, Upstream, WorkerConfig,
};

pub(super) type Result<T> = std::result::Result<T, String>;

/// Shortest accepted cookie key: 32 characters keeps a random key well above
/// brute-force reach for the HMAC that signs tickets and passes.
const MIN_COOKIE_KEY_CHARS: usize = 32;
const MIN_ADMIN_TOKEN_CHARS: usize = 16;

pub(crate) fn config(
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    base: &std::path::Path,
) -> Result<Config> {
    let listen = socket_addr("listen", raw.listen, defaults::LISTEN)?;
    let admin_listen = socket_addr("admin_listen", raw.admin_listen, defaults::ADMIN_LISTEN)?;
    if admin_listen == listen {
        return Err(format!(
            "admin_listen: {admin_listen} is the same address as listen"
        ));
    }
    let upstream = match raw.upstream {
        Some(value) => upstream(&value).map_err(|problem| format!("upstream: {problem}"))?,
        None => {
            return Err(
                "upstream: is required (the site to protect, e.g. \"http://127.0.0.1:3000\")"
                    .to_owned(),
            );
        }
    };
    let upstream_timeout = defaults::UPSTREAM_TIMEOUT_SECONDS
        .seconds(raw.upstream_timeout_seconds)
        .map_err(|problem| format!("upstream_timeout_seconds: {problem}"))?;
    let shutdown_grace = defaults::SHUTDOWN_GRACE_SECONDS
        .seconds(raw.shutdown_grace_seconds)
        .map_err(|problem| format!("shutdown_grace_seconds: {problem}"))?;
    let log_format = {
        let from_env = env("ANTEROOM_LOG_FORMAT").filter(|value| !value.is_empty());
        let (value, key) = match from_env {
            Some(value) => (Some(value), "ANTEROOM_LOG_FORMAT"),
            None => (raw.log_format, "log_format"),
        };
        match value.as_deref().unwrap_or(defaults::LOG_FORMAT) {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(format!("{key}: {other:?} is not one of \"text\", \"json\""));
            }
        }
    };
    let time_zone =
        crate::schedule::time_zone(raw.time_zone.as_deref().unwrap_or(defaults::TIME_ZONE))
            .map_err(|problem| format!("time_zone: {problem}"))?;
    let store = store::store(raw.store, base, env)?;
    let secrets = secrets(raw.secrets, &store.backend, env)?;
    let limits = limits(raw.limits)?;
    let worker = WorkerConfig {
        admin_listen: socket_addr(
            "worker.admin_listen",
            raw.worker.admin_listen,
            defaults::WORKER_ADMIN_LISTEN,
        )?,
    };
    let cookies = CookieConfig {
        secure: match raw
            .cookies
            .secure
            .as_deref()
            .unwrap_or(defaults::COOKIES_SECURE)
        {
            "auto" => CookieSecure::Auto,
            "always" => CookieSecure::Always,
            other => {
                return Err(format!(
                    "cookies.secure: {other:?} is not one of \"auto\", \"always\""
                ));
            }
        },
    };
    let rooms = rooms::rooms(raw.room, upstream_timeout)?;
    let buffers = rooms::buffers(raw.buffer, &rooms)?;
    if !buffers.is_empty() && limits.max_unfinished_body_bytes < limits.max_body_bytes {
        // A booking body is read whole before it is stored: a budget smaller
        // than one body would refuse every large booking.
        return Err(format!(
            "limits.max_unfinished_body_bytes: {} is less than limits.max_body_bytes ({}); \
             booking bodies are held whole while they arrive, so raise it",
            limits.max_unfinished_body_bytes, limits.max_body_bytes
        ));
    }
    let pages = pages::pages(raw.pages, base)?;
    Ok(Config {
        listen,
        admin_listen,
        upstream,
        upstream_timeout,
        shutdown_grace,
        log_format,
        time_zone,
        store,
        secrets,
        limits,
        worker,
        cookies,
        rooms,
        buffers,
        pages,
    })
}

/// `url` with its password, if any, replaced: for `Debug` output, logs and
/// messages that name a Redis or PostgreSQL URL.
pub fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have a password, and this one has one.
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.into()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// A bounded number as the file gives it: the default when left out, an
/// error naming the range when outside it.
impl Bounded {
    pub(super) fn value(&self, value: Option<u64>) -> Result<u64> {
        let value = value.unwrap_or(self.default);
        if self.range.contains(&value) {
            Ok(value)
        } else {
            Err(format!(
                "must be between {} and {} (got {value})",
                self.range.start(),
                self.range.end()
            ))
        }
    }

    pub(super) fn seconds(&self, value: Option<u64>) -> Result<Duration> {
        self.value(value).map(Duration::from_secs)
    }
}

fn socket_addr(key: &str, value: Option<String>, default: &str) -> Result<SocketAddr> {
    let value = value.as_deref().unwrap_or(default);
    value
        .parse()
        .map_err(|_| format!("{key}: {value:?} is not an IP address with a port, like {default:?}"))
}

/// Problem text without the key; the caller prefixes `upstream: `.
fn upstream(value: &str) -> Result<Upstream> {
    let not_valid = || format!("{value:?} is not a valid http:// URL");
    let uri: http::Uri = value.parse().map_err(|_| not_valid())?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "{value:?}: https upstreams are not supported yet; terminate TLS in front of \
                 anteroom and point upstream at the site's plain http:// address"
            ));
        }
        _ => return Err(not_valid()),
    }
    let authority = uri.authority().ok_or_else(not_valid)?;
    if authority.as_str().contains('@') {
        // Not echoed: the part before '@' may be a password.
        return Err("must not contain a user name or password".to_owned());
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return Err(not_valid());
    }
    // Not `Authority::port_u16`: it reads an out-of-range port as no port.
    let port = match &authority.as_str()[host.len()..] {
        "" => 80,
        written => match written.strip_prefix(':').map(str::parse::<u16>) {
            Some(Ok(port)) if port != 0 => port,
            _ => return Err(format!("{value:?} has an invalid port")),
        },
    };
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(format!(
            "{value:?} must not have a path: each request keeps its own path on the way upstream"
        ));
    }
    // `http::Uri` drops a fragment silently; refuse it instead.
    if uri.query().is_some() || value.contains('#') {
        return Err(format!("{value:?} must not have a query or fragment"));
    }
    let authority = format!("{host}:{port}");
    let uri = format!("http://{authority}/")
        .parse()
        .map_err(|_| not_valid())?;
    Ok(Upstream { uri, authority })
}

fn secrets(
    raw: RawSecrets,
    backend: &Backend,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secrets> {
    let env_keys: Vec<String> = env(ENV_COOKIE_KEYS)
        .map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let (cookie_keys, keys_source) = if env_keys.is_empty() {
        (raw.cookie_keys.unwrap_or_default(), "secrets.cookie_keys")
    } else {
        (env_keys, ENV_COOKIE_KEYS)
    };
    for (index, key) in cookie_keys.iter().enumerate() {
        let length = key.chars().count();
        if length < MIN_COOKIE_KEY_CHARS {
            return Err(format!(
                "{keys_source}[{index}]: a cookie key must be at least \
                 {MIN_COOKIE_KEY_CHARS} characters (this one has {length})"
            ));
        }
    }
    if cookie_keys.is_empty() && backend.is_redis() {
        return Err(format!(
            "secrets.cookie_keys: the redis backend needs at least one cookie key \
             (or {ENV_COOKIE_KEYS})"
        ));
    }

    let env_token = env(ENV_ADMIN_TOKEN)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty());
    let (admin_token, token_source) = match env_token {
        Some(token) => (Some(token), ENV_ADMIN_TOKEN),
        None => (raw.admin_token, "secrets.admin_token"),
    };
    if let Some(token) = &admin_token {
        let length = token.chars().count();
        if length < MIN_ADMIN_TOKEN_CHARS {
            return Err(format!(
                "{token_source}: the admin token must be at least \
                 {MIN_ADMIN_TOKEN_CHARS} characters (this one has {length})"
            ));
        }
    }
    Ok(Secrets {
        cookie_keys,
        admin_token,
    })
}

fn limits(raw: RawLimits) -> Result<Limits> {
    let per_ip_per_second = at_least_one(raw.per_ip_per_second, defaults::PER_IP_PER_SECOND)
        .map_err(|problem| format!("limits.per_ip_per_second: {problem}"))?;
    let per_ip_burst = at_least_one(raw.per_ip_burst, defaults::PER_IP_BURST)
        .map_err(|problem| format!("limits.per_ip_burst: {problem}"))?;
    if per_ip_burst < per_ip_per_second {
        return Err(format!(
            "limits.per_ip_burst: must be at least per_ip_per_second ({per_ip_per_second}), \
             got {per_ip_burst}"
        ));
    }
    let tickets_per_ip_per_minute = at_least_one(
        raw.tickets_per_ip_per_minute,
        defaults::TICKETS_PER_IP_PER_MINUTE,
    )
    .map_err(|problem| format!("limits.tickets_per_ip_per_minute: {problem}"))?;
    let trusted_proxies = raw
        .trusted_proxies
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, value)| {
            network(value).ok_or_else(|| {
                format!(
                    "limits.trusted_proxies[{index}]: {value:?} is not an IP address or a \
                     network like \"10.0.0.0/8\""
                )
            })
        })
        .collect::<Result<_>>()?;
    let bounded = |key: &str, bound: &Bounded, value: Option<u64>| {
        bound
            .value(value)
            .map_err(|problem| format!("limits.{key}: {problem}"))
    };
    Ok(Limits {
        per_ip_per_second,
        per_ip_burst,
        tickets_per_ip_per_minute,
        trusted_proxies,
        max_connections: bounded(
            "max_connections",
            &defaults::MAX_CONNECTIONS,
            raw.max_connections,
        )? as usize,
        max_header_bytes: bounded(
            "max_header_bytes",
            &defaults::MAX_HEADER_BYTES,
            raw.max_header_bytes,
        )? as usize,
        max_event_streams: bounded(
            "max_event_streams",
            &defaults::MAX_EVENT_STREAMS,
            raw.max_event_streams,
        )? as usize,
        max_body_bytes: bounded(
            "max_body_bytes",
            &defaults::MAX_BODY_BYTES,
            raw.max_body_bytes,
        )?,
        header_read_timeout: Duration::from_secs(bounded(
            "header_read_timeout_seconds",
            &defaults::HEADER_READ_TIMEOUT_SECONDS,
            raw.header_read_timeout_seconds,
        )?),
        max_in_flight_upstream: bounded(
            "max_in_flight_upstream",
            &defaults::MAX_IN_FLIGHT_UPSTREAM,
            raw.max_in_flight_upstream,
        )? as usize,
        upstream_queue: Duration::from_millis(bounded(
            "upstream_queue_ms",
            &defaults::UPSTREAM_QUEUE_MS,
            raw.upstream_queue_ms,
        )?),
        send_timeout: Duration::from_secs(bounded(
            "send_timeout_seconds",
            &defaults::SEND_TIMEOUT_SECONDS,
            raw.send_timeout_seconds,
        )?),
        max_tracked_clients: bounded(
            "max_tracked_clients",
            &defaults::MAX_TRACKED_CLIENTS,
            raw.max_tracked_clients,
        )? as usize,
        max_connections_per_client: bounded(
            "max_connections_per_client",
            &defaults::MAX_CONNECTIONS_PER_CLIENT,
            raw.max_connections_per_client,
        )? as usize,
        max_in_flight_upstream_per_client: bounded(
            "max_in_flight_upstream_per_client",
            &defaults::MAX_IN_FLIGHT_UPSTREAM_PER_CLIENT,
            raw.max_in_flight_upstream_per_client,
        )? as usize,
        body_read_timeout: Duration::from_secs(bounded(
            "body_read_timeout_seconds",
            &defaults::BODY_READ_TIMEOUT_SECONDS,
            raw.body_read_timeout_seconds,
        )?),
        min_body_bytes_per_second: bounded(
            "min_body_bytes_per_second",
            &defaults::MIN_BODY_BYTES_PER_SECOND,
            raw.min_body_bytes_per_second,
        )?,
        max_unfinished_body_bytes: bounded(
            "max_unfinished_body_bytes",
            &defaults::MAX_UNFINISHED_BODY_BYTES,
            raw.max_unfinished_body_bytes,
        )?,
    })
}

/// A CIDR network, or a bare address as a single-address network.
fn network(value: &str) -> Option<ipnet::IpNet> {
    match value.parse::<ipnet::IpNet>() {
        Ok(network) => Some(network.trunc()),
        Err(_) => value.parse::<IpAddr>().ok().map(ipnet::IpNet::from),
    }
}

pub(super) fn at_least_one(value: Option<u32>, default: u32) -> Result<NonZeroU32> {
    NonZeroU32::new(value.unwrap_or(default)).ok_or_else(|| "must be at least 1".to_owned())
}

pub(super) fn required_at_least_one(value: Option<u32>, key: &str) -> Result<NonZeroU32> {
    match value {
        Some(value) => NonZeroU32::new(value).ok_or_else(|| format!("{key} must be at least 1")),
        None => Err(format!("{key} is required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_the_password_only() {
        let redacted = redact_password("redis://user:hunter2@cache:6379/0");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        assert!(redacted.contains("user") && redacted.contains("cache:6379"));
        assert_eq!(
            redact_password("redis://cache:6379/0"),
            "redis://cache:6379/0"
        );
    }

    #[test]
    fn bare_addresses_become_single_address_networks() {
        assert_eq!(
            network("10.1.2.3").map(|n| n.to_string()),
            Some("10.1.2.3/32".into())
        );
        assert_eq!(
            network("::1").map(|n| n.to_string()),
            Some("::1/128".into())
        );
        assert_eq!(
            network("10.1.2.3/8").map(|n| n.to_string()),
            Some("10.0.0.0/8".into())
        );
        assert_eq!(network("10.0.0.0/33"), None);
        assert_eq!(network("proxy.local"), None);
    }
}
