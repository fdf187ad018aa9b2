//! `[store]`: the backend, which Redis (one server by URL, Sentinel or
//! Cluster), the credentials it takes, the files TLS to Redis uses, and how
//! many replicas a booking waits for.
//!
//! Credentials: `username` and `password` (env `ANTEROOM_REDIS_PASSWORD`
//! wins) are the Redis servers' whichever way they are reached; with
//! `redis_url` they go into the URL, which may carry them itself instead
//! (never both: which one counts would be a guess). `sentinel_username` and
//! `sentinel_password` (env `ANTEROOM_SENTINEL_PASSWORD` wins) are the
//! sentinels' own, so only with `sentinels`.
//!
//! TLS: a `redis_url` says it by its scheme (`rediss://`); `sentinels` and
//! `cluster_nodes` by `tls = true`. The TLS files go with either, and are
//! refused without.
//!
//! The TLS files are read here (this crate is the one that reads files) and
//! each certificate in them parsed, so that `--check` finds a missing file
//! or a broken certificate. Whether a client key matches its certificate,
//! and whether Redis's certificate chains to the CA, are for the TLS
//! library to tell at startup and at connect.

use std::num::NonZeroU32;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::Result;
use crate::defaults;
use crate::raw::RawStore;
use crate::{
    Backend, ClientIdentity, ENV_REDIS_PASSWORD, ENV_SENTINEL_PASSWORD, MAX_PEM_FILE_BYTES,
    OnError, PemFile, RedisCredentials, RedisTls, StoreConfig,
};

pub(super) fn store(
    raw: RawStore,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StoreConfig> {
    let backend = match raw.backend.as_deref().unwrap_or(defaults::BACKEND) {
        "memory" => Backend::Memory,
        "redis" => redis(&raw, base, env)?,
        other => {
            return Err(format!(
                "store.backend: {other:?} must be \"memory\" or \"redis\""
            ));
        }
    };
    let on_error = match raw.on_error.as_deref().unwrap_or(defaults::ON_ERROR) {
        "wait" => OnError::Wait,
        "admit" => OnError::Admit,
        other => {
            return Err(format!(
                "store.on_error: {other:?} must be \"wait\" or \"admit\""
            ));
        }
    };
    let min_replicas_acked = min_replicas_acked(raw.min_replicas_acked, &backend)?;
    Ok(StoreConfig {
        backend,
        on_error,
        min_replicas_acked,
    })
}

/// `min_replicas_acked`: in range, and only where there are replicas to
/// wait for.
fn min_replicas_acked(value: Option<u64>, backend: &Backend) -> Result<Option<NonZeroU32>> {
    let key = "store.min_replicas_acked";
    let value = defaults::MIN_REPLICAS_ACKED
        .value(value)
        .map_err(|problem| format!("{key}: {problem}"))?;
    let Some(replicas) = u32::try_from(value).ok().and_then(NonZeroU32::new) else {
        return Ok(None);
    };
    if *backend == Backend::Memory {
        return Err(format!(
            "{key}: {replicas} needs backend = \"redis\": the memory store has no replicas to \
             wait for (leave it out, or set it to 0)"
        ));
    }
    if matches!(backend, Backend::Cluster { .. }) {
        // WAIT counts the writes of its own connection on one node; on a
        // cluster it would have to go to each buffer's own shard, which
        // the booking batches do not do yet.
        return Err(format!(
            "{key}: {replicas} is not supported with store.cluster_nodes yet (WAIT would \
             have to reach each buffer's shard); use redis_url or sentinels, or set it to 0"
        ));
    }
    Ok(Some(replicas))
}

/// The most sentinels or cluster nodes listed: a few are enough to find
/// the rest, and each one listed is tried in turn when others fail.
const MAX_NODES: usize = 32;

/// Which Redis: exactly one of `redis_url` (one server; its default when
/// neither of the others is given), `sentinels` with `sentinel_master`, or
/// `cluster_nodes`; and the credentials for it.
fn redis(raw: &RawStore, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Backend> {
    let sentinel = raw.sentinels.is_some() || raw.sentinel_master.is_some();
    let cluster = raw.cluster_nodes.is_some();
    if raw.redis_url.is_some() && (sentinel || cluster) {
        let other = if cluster {
            "store.cluster_nodes"
        } else if raw.sentinels.is_some() {
            "store.sentinels"
        } else {
            "store.sentinel_master"
        };
        return Err(format!(
            "store.redis_url: set together with {other}; give one of redis_url (one server), \
             sentinels + sentinel_master (Sentinel) or cluster_nodes (Cluster)"
        ));
    }
    if sentinel && cluster {
        return Err(
            "store.cluster_nodes: set together with store.sentinels / store.sentinel_master; \
             give one of redis_url (one server), sentinels + sentinel_master (Sentinel) or \
             cluster_nodes (Cluster)"
                .to_owned(),
        );
    }
    let tls_keys = [
        ("store.tls_ca_file", &raw.tls_ca_file),
        ("store.tls_cert_file", &raw.tls_cert_file),
        ("store.tls_key_file", &raw.tls_key_file),
    ];
    let set_tls_key = tls_keys
        .iter()
        .find(|(_, value)| value.is_some())
        .map(|(key, _)| *key);
    let tls_on = raw.tls.unwrap_or(defaults::STORE_TLS);
    if sentinel || cluster {
        let mode = if cluster {
            "store.cluster_nodes"
        } else {
            "store.sentinels"
        };
        if !tls_on && let Some(key) = set_tls_key {
            return Err(format!(
                "{key}: set, but store.tls is not true; TLS to the {mode} needs tls = true \
                 (or leave the TLS keys out)"
            ));
        }
    } else if raw.tls.is_some() {
        return Err(
            "store.tls: only with store.sentinels or store.cluster_nodes; a store.redis_url \
             says TLS by its scheme (rediss://)"
                .to_owned(),
        );
    }
    let tls_of_many = if tls_on && (sentinel || cluster) {
        Some(tls_files(raw, base)?)
    } else {
        None
    };
    let servers = credentials(
        CredentialKeys {
            username: "store.username",
            password: "store.password",
            env: ENV_REDIS_PASSWORD,
        },
        raw.username.as_deref(),
        raw.password.as_deref(),
        env,
    )?;
    let sentinels_own = credentials(
        CredentialKeys {
            username: "store.sentinel_username",
            password: "store.sentinel_password",
            env: ENV_SENTINEL_PASSWORD,
        },
        raw.sentinel_username.as_deref(),
        raw.sentinel_password.as_deref(),
        env,
    )?;
    if !sentinel && let Some(given) = &sentinels_own {
        return Err(format!(
            "{}: set, but store.sentinels is not; the sentinel_* credentials are the \
             sentinels' own (the Redis servers' are store.username and store.password)",
            given.source
        ));
    }
    if sentinel {
        let sentinels = match &raw.sentinels {
            Some(list) => nodes("store.sentinels", list)?,
            None => {
                return Err("store.sentinels: required with store.sentinel_master (the \
                            sentinels to ask, each \"host:port\")"
                    .to_owned());
            }
        };
        let master = match raw.sentinel_master.as_deref().map(str::trim) {
            Some("") => return Err("store.sentinel_master: must not be empty".to_owned()),
            Some(name) if name.chars().any(char::is_whitespace) => {
                return Err(format!(
                    "store.sentinel_master: {name:?} must not contain spaces"
                ));
            }
            Some(name) => name.to_owned(),
            None => {
                return Err("store.sentinel_master: required with store.sentinels (the \
                            name the sentinels monitor the master by)"
                    .to_owned());
            }
        };
        return Ok(Backend::Sentinel {
            sentinels,
            master,
            credentials: servers.map(|given| given.credentials),
            sentinel_credentials: sentinels_own.map(|given| given.credentials),
            tls: tls_of_many,
        });
    }
    if let Some(list) = &raw.cluster_nodes {
        return Ok(Backend::Cluster {
            nodes: nodes("store.cluster_nodes", list)?,
            credentials: servers.map(|given| given.credentials),
            tls: tls_of_many,
        });
    }
    let url = raw.redis_url.as_deref().unwrap_or(defaults::REDIS_URL);
    let scheme = redis_url(url).map_err(|problem| format!("store.redis_url: {problem}"))?;
    let tls = tls(raw, scheme, base)?;
    let url = match servers {
        Some(given) => url_with(url, scheme, &given)?,
        None => url.to_owned(),
    };
    Ok(Backend::Redis { url, tls })
}

/// The keys (and the environment variable) one pair of credentials is
/// read from, for messages.
struct CredentialKeys {
    username: &'static str,
    password: &'static str,
    env: &'static str,
}

/// Credentials as given, with where the password came from (its key or
/// the environment variable), for messages.
struct Given {
    credentials: RedisCredentials,
    source: &'static str,
    username_key: &'static str,
}

/// A user name needs a password (`AUTH` takes both or the password
/// alone); the environment variable wins over the file's password.
fn credentials(
    keys: CredentialKeys,
    username: Option<&str>,
    password: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Given>> {
    let (password, source) = match env(keys.env).filter(|value| !value.is_empty()) {
        Some(value) => (Some(value), keys.env),
        None => (password.map(str::to_owned), keys.password),
    };
    if password.as_deref() == Some("") {
        return Err(format!(
            "{source}: must not be empty (leave it out for a Redis without a password)"
        ));
    }
    if let Some(name) = username
        && (name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(format!(
            "{}: must be a user name, not empty and without spaces",
            keys.username
        ));
    }
    match (username, password) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(format!(
            "{}: set without {} (or {}); AUTH needs a password with the user name",
            keys.username, keys.password, keys.env
        )),
        (username, Some(password)) => Ok(Some(Given {
            credentials: RedisCredentials {
                username: username.map(str::to_owned),
                password,
            },
            source,
            username_key: keys.username,
        })),
    }
}

/// `url` with the credentials of `store.username` / `store.password` in
/// it. A URL that has its own password (or user name) is refused with
/// them: the rule is one place for each.
fn url_with(url: &str, scheme: &str, given: &Given) -> Result<String> {
    let source = given.source;
    if scheme == "unix" {
        return Err(format!(
            "{source}: not supported with a unix:// store.redis_url; use a redis:// URL, or \
             leave the password out"
        ));
    }
    let mut parsed = url::Url::parse(url)
        .map_err(|error| format!("store.redis_url: not a valid URL ({error})"))?;
    if parsed.password().is_some() {
        return Err(format!(
            "{source}: set, but store.redis_url has a password of its own; give the password \
             in one place (the URL's or {source}, not both)"
        ));
    }
    if let Some(username) = &given.credentials.username {
        if !parsed.username().is_empty() {
            return Err(format!(
                "{}: set, but store.redis_url has a user name of its own; give it in one place",
                given.username_key
            ));
        }
        parsed
            .set_username(username)
            .map_err(|()| format!("{}: cannot go in store.redis_url", given.username_key))?;
    }
    parsed
        .set_password(Some(&given.credentials.password))
        .map_err(|()| format!("{source}: cannot go in store.redis_url"))?;
    Ok(parsed.into())
}

/// A list of `host:port`: at least one, at most [`MAX_NODES`], no
/// duplicates.
fn nodes(key: &str, list: &[String]) -> Result<Vec<String>> {
    if list.is_empty() {
        return Err(format!("{key}: must list at least one \"host:port\""));
    }
    if list.len() > MAX_NODES {
        return Err(format!(
            "{key}: lists {} nodes; at most {MAX_NODES} (a few are enough to find the rest)",
            list.len()
        ));
    }
    let mut seen = Vec::with_capacity(list.len());
    for entry in list {
        let entry = entry.trim();
        host_port(entry).map_err(|problem| format!("{key}: {entry:?} {problem}"))?;
        if seen.iter().any(|known: &String| known == entry) {
            return Err(format!("{key}: {entry:?} is listed twice"));
        }
        seen.push(entry.to_owned());
    }
    Ok(seen)
}

/// `host:port`, the host a name, an IPv4 address or a bracketed IPv6 one.
fn host_port(entry: &str) -> std::result::Result<(), String> {
    if entry.contains("://") {
        return Err("must be \"host:port\", not a URL".to_owned());
    }
    let (host, port) = entry
        .rsplit_once(':')
        .ok_or("must be \"host:port\" (no port)")?;
    match port.parse::<u16>() {
        Ok(0) | Err(_) => {
            return Err(format!("must be \"host:port\" ({port:?} is not a port)"));
        }
        Ok(_) => {}
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(drop)
            .map_err(|_| format!("must be \"host:port\" ([{inner}] is not an IPv6 address)"));
    }
    if host.is_empty() {
        return Err("must be \"host:port\" (no host)".to_owned());
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(
            "must be \"host:port\" (the host is a name or an address; IPv6 goes in brackets)"
                .to_owned(),
        );
    }
    Ok(())
}

/// Checks the URL and returns its scheme.
fn redis_url(value: &str) -> Result<&'static str> {
    let url = url::Url::parse(value).map_err(|error| format!("not a valid URL ({error})"))?;
    let scheme = match url.scheme() {
        "redis" => "redis",
        "rediss" => "rediss",
        "unix" => "unix",
        other => {
            return Err(format!(
                "scheme {other:?} is not supported; use redis://, rediss:// or unix://"
            ));
        }
    };
    if scheme == "unix" {
        if url.path().is_empty() || url.path() == "/" {
            return Err(
                "a unix:// URL needs the socket's path, like unix:///run/redis.sock".to_owned(),
            );
        }
    } else if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    // The client's only fragment is `#insecure`: TLS without checking the
    // server's certificate, which anteroom does not offer (nor build).
    if url.fragment().is_some() {
        return Err(
            "must not have a fragment (#insecure is not supported: to trust a private CA, \
             set store.tls_ca_file)"
                .to_owned(),
        );
    }
    Ok(scheme)
}

fn tls(raw: &RawStore, scheme: &str, base: &Path) -> Result<RedisTls> {
    let keys = [
        ("store.tls_ca_file", &raw.tls_ca_file),
        ("store.tls_cert_file", &raw.tls_cert_file),
        ("store.tls_key_file", &raw.tls_key_file),
    ];
    if scheme != "rediss" {
        if let Some((key, _)) = keys.iter().find(|(_, value)| value.is_some()) {
            return Err(format!(
                "{key}: set, but store.redis_url is {scheme}://, which is not TLS; \
                 use rediss:// (or leave the TLS keys out)"
            ));
        }
        return Ok(RedisTls::default());
    }
    tls_files(raw, base)
}

/// The TLS files, read and their certificates parsed.
fn tls_files(raw: &RawStore, base: &Path) -> Result<RedisTls> {
    let ca = match &raw.tls_ca_file {
        Some(path) => Some(certificates(
            "store.tls_ca_file",
            path,
            base,
            Role::Authority,
        )?),
        None => None,
    };
    let client = match (&raw.tls_cert_file, &raw.tls_key_file) {
        (Some(cert), Some(key)) => Some(ClientIdentity {
            cert: certificates("store.tls_cert_file", cert, base, Role::Client)?,
            key: private_key("store.tls_key_file", key, base)?,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(
                "store.tls_cert_file: set without store.tls_key_file; mutual TLS needs both"
                    .to_owned(),
            );
        }
        (None, Some(_)) => {
            return Err(
                "store.tls_key_file: set without store.tls_cert_file; mutual TLS needs both"
                    .to_owned(),
            );
        }
    };
    Ok(RedisTls { ca, client })
}

/// What a file of certificates is for: trusted roots, or the chain we
/// present (its first certificate is ours).
#[derive(Clone, Copy)]
enum Role {
    Authority,
    Client,
}

fn certificates(key: &str, path: &str, base: &Path, role: Role) -> Result<PemFile> {
    let file = read(key, path, base)?;
    let shown = file.path.display();
    let mut count = 0;
    for (index, item) in CertificateDer::pem_slice_iter(&file.pem).enumerate() {
        let number = index + 1;
        let der = item.map_err(|error| {
            format!("{key}: {shown}: certificate {number} is not valid PEM ({error})")
        })?;
        let parsed = match (role, index) {
            (Role::Client, 0) => webpki::EndEntityCert::try_from(&der).map(drop),
            _ => webpki::anchor_from_trusted_cert(&der).map(drop),
        };
        parsed.map_err(|error| {
            format!("{key}: {shown}: certificate {number} is not a valid certificate ({error})")
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(format!(
            "{key}: {shown}: has no certificate (PEM, -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(file)
}

fn private_key(key: &str, path: &str, base: &Path) -> Result<PemFile> {
    let file = read(key, path, base)?;
    PrivateKeyDer::from_pem_slice(&file.pem).map_err(|error| {
        format!(
            "{key}: {}: has no private key (PEM, -----BEGIN PRIVATE KEY----- or the RSA or \
             EC kinds): {error}",
            file.path.display()
        )
    })?;
    Ok(file)
}

fn read(key: &str, path: &str, base: &Path) -> Result<PemFile> {
    if path.trim().is_empty() {
        return Err(format!("{key}: must not be empty (leave it out instead)"));
    }
    let path = base.join(path);
    let shown = path.display();
    let size = std::fs::metadata(&path)
        .map_err(|error| format!("{key}: {shown}: cannot read: {error}"))?
        .len();
    if size > MAX_PEM_FILE_BYTES {
        return Err(format!(
            "{key}: {shown}: is {size} bytes, more than a PEM file of certificates or a key \
             needs (at most {MAX_PEM_FILE_BYTES})"
        ));
    }
    let pem =
        std::fs::read(&path).map_err(|error| format!("{key}: {shown}: cannot read: {error}"))?;
    Ok(PemFile { path, pem })
}
