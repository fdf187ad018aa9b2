//! The one place a Redis client is built, for the gateway, the worker and
//! the tests alike: one server by URL, TLS (`rediss://`) with the
//! operator's CA and client certificate, a Sentinel deployment's master
//! (`sentinel.rs`), a Redis Cluster; the timeouts; and how a failed call is
//! told.
//!
//! Whichever it is, a call takes a [`Handle`], which is a
//! `redis::aio::ConnectionLike`, so every call site reads the same
//! (`script.invoke_async(&mut connection.handle())`):
//! - one server: redis's `ConnectionManager` (reconnects by itself);
//! - Sentinel: the master the sentinels name, asked again after a failure
//!   that may mean it moved (see `sentinel.rs`);
//! - Cluster: redis's `ClusterConnection` (routes each command by its first
//!   key's slot, follows `MOVED`/`ASK`, refreshes the slots after a
//!   failover). Every script and command of the store touches keys of one
//!   hash tag only (`{room}` or `{buffer}`), hence of one slot.
//!
//! Credentials: one server's ride in its URL (`config` puts `store.password`
//! there); Sentinel's are two pairs, the servers' (`store.username` and
//! `store.password`) and the sentinels' own (`store.sentinel_username`,
//! `store.sentinel_password`); a cluster's are every node's. A refused or
//! missing password is told as [`StoreError::Authentication`], not as an
//! unreachable store.
//!
//! TLS is rustls with the ring provider, for `rediss://` and, with
//! `store.tls`, for the sentinels and their servers or a cluster's nodes.
//! Redis's certificate is checked against the system's roots
//! (rustls-native-certs: the OS bundle, e.g.
//! `/etc/ssl/certs`, what `redis-cli --tls` trusts), or against the CA of
//! `store.tls_ca_file` alone when it is set. There is no way to skip the
//! check (`#insecure` is refused by `config`, and redis is built without
//! `tls-rustls-insecure`), and a `rediss://` connection never falls back
//! to plain text: a failed handshake is a failed call.
//!
//! redis reads the system's roots at each connect, even when
//! `tls_ca_file` replaces them: a system bundle that cannot be read (or an
//! `SSL_CERT_FILE` naming a missing file) fails the connection too. None at
//! all is no error (a slim container): then only `tls_ca_file` can help.

mod sentinel;

use std::sync::Arc;
use std::time::Duration;

use anteroom_config::{Backend, ClientIdentity, RedisCredentials, RedisTls, redact_password};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    ClientTlsConfig, Cmd, ConnectionAddr, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    TlsCertificates, Value,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{NamedBy, StoreError};

/// How long one store call may take before the gateway treats the store as
/// unreachable. Short: a visitor's request must not hang on a sick Redis.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Covers the TLS handshake too, which on a LAN takes a few milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// A connection to Redis, prepared, not opened: it opens on first use and
/// reopens by itself. Clones share it.
#[derive(Clone)]
pub(crate) struct RedisConnection {
    handle: Handle,
    /// The URL without its password (or the sentinels, or the cluster's
    /// nodes), for messages.
    url: Arc<str>,
}

/// What one call goes through; cheap to clone (the connections underneath
/// are shared).
#[derive(Clone)]
pub(crate) enum Handle {
    Server(ConnectionManager),
    Sentinel(Arc<sentinel::SentinelMaster>),
    Cluster(Arc<LazyCluster>),
}

/// A cluster connection made at its first use (so that a gateway starts
/// while the cluster is down), and again after a first attempt failed.
pub(crate) struct LazyCluster {
    client: ClusterClient,
    connection: tokio::sync::OnceCell<ClusterConnection>,
    /// `store.tls`: the nodes are spoken to over TLS.
    tls: bool,
}

/// What [`RedisConnection::open`] checks before it prepares the
/// connection: the URL, and the TLS files as the client takes them.
pub(crate) fn client(url: &str, tls: &RedisTls) -> Result<redis::Client, StoreError> {
    build_client(url, tls).map_err(|problem| match problem {
        Problem::Url(source) => StoreError::Url {
            url: redact_password(url),
            source,
        },
        Problem::Tls(source) => StoreError::Tls {
            url: redact_password(url),
            source,
        },
    })
}

/// What [`RedisConnection::for_backend`] checks before it prepares the
/// connection, for `--check`: nothing is contacted.
pub(crate) fn check(backend: &Backend) -> Result<(), StoreError> {
    match backend {
        Backend::Memory => Err(not_redis()),
        Backend::Redis { url, tls } => client(url, tls).map(drop),
        Backend::Sentinel {
            sentinels,
            master,
            credentials,
            sentinel_credentials,
            tls,
        } => sentinel_master(
            sentinels,
            master,
            sentinel::Credentials {
                servers: credentials.as_ref(),
                sentinels: sentinel_credentials.as_ref(),
            },
            tls.as_ref(),
            Duration::ZERO,
        )
        .map(drop),
        Backend::Cluster {
            nodes,
            credentials,
            tls,
        } => cluster_client(nodes, credentials.as_ref(), tls.as_ref(), Duration::ZERO).map(drop),
    }
}

/// The master the sentinels name, prepared (nothing is contacted).
/// `tls`: `Some` for TLS to the sentinels and to the servers they name,
/// with the operator's CA and client certificate if given.
fn sentinel_master(
    sentinels: &[String],
    master: &str,
    credentials: sentinel::Credentials<'_>,
    tls: Option<&RedisTls>,
    wait: Duration,
) -> Result<sentinel::SentinelMaster, StoreError> {
    let described = || format!("sentinels {}", sentinels.join(","));
    let transport = match tls {
        None => sentinel::Transport::Plain,
        Some(tls) => {
            // As for one server: ring is the provider, and a client key
            // that is not its certificate's is a startup error.
            let _ = rustls::crypto::ring::default_provider().install_default();
            if let Some(identity) = &tls.client {
                check_identity(identity).map_err(|source| StoreError::Tls {
                    url: described(),
                    source,
                })?;
            }
            sentinel::Transport::Tls(certificates(tls))
        }
    };
    sentinel::SentinelMaster::new(
        sentinels,
        master,
        credentials,
        transport,
        manager_config(wait),
    )
    .map_err(|source| StoreError::Url {
        url: described(),
        source,
    })
}

fn not_redis() -> StoreError {
    StoreError::Unavailable("store.backend is \"memory\": there is no Redis to connect to".into())
}

/// `wait`: how much longer than [`RESPONSE_TIMEOUT`] Redis may hold a
/// call on this connection (`WAIT`); zero for every other connection.
fn manager_config(wait: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT + wait))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500))
}

/// `tls`: `Some` for TLS to every node (`rediss://`), with the operator's
/// CA and client certificate if given.
fn cluster_client(
    nodes: &[String],
    credentials: Option<&RedisCredentials>,
    tls: Option<&RedisTls>,
    wait: Duration,
) -> Result<ClusterClient, StoreError> {
    let described = || format!("cluster nodes {}", nodes.join(","));
    let scheme = if tls.is_some() { "rediss" } else { "redis" };
    let urls: Vec<String> = nodes
        .iter()
        .map(|node| format!("{scheme}://{node}"))
        .collect();
    let mut builder = ClusterClient::builder(urls)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT + wait);
    if let Some(tls) = tls {
        // As for one server: ring is the provider, and a client key that
        // is not its certificate's is a startup error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if let Some(identity) = &tls.client {
            check_identity(identity).map_err(|source| StoreError::Tls {
                url: described(),
                source,
            })?;
        }
        if let Some(certificates) = certificates(tls) {
            builder = builder.certs(certificates);
        }
    }
    if let Some(credentials) = credentials {
        builder = builder.password(&credentials.password);
        if let Some(username) = &credentials.username {
            builder = builder.username(username);
        }
    }
    builder.build().map_err(|source| StoreError::Url {
        url: described(),
        source,
    })
}

/// The operator's CA and client certificate for redis, if either is given
/// (neither: the system's roots, no client certificate).
fn certificates(tls: &RedisTls) -> Option<TlsCertificates> {
    if tls.ca.is_none() && tls.client.is_none() {
        return None;
    }
    Some(TlsCertificates {
        client_tls: tls.client.as_ref().map(|identity| ClientTlsConfig {
            client_cert: identity.cert.pem.clone(),
            client_key: identity.key.pem.clone(),
        }),
        root_cert: tls.ca.as_ref().map(|ca| ca.pem.clone()),
    })
}

impl RedisConnection {
    pub(crate) fn open(url: &str, tls: &RedisTls) -> Result<RedisConnection, StoreError> {
        RedisConnection::open_waiting(url, tls, Duration::ZERO)
    }

    /// As [`RedisConnection::open`], for calls that Redis may hold for up
    /// to `wait` (`WAIT`): their replies are awaited that much longer. Give
    /// such calls a connection of their own: Redis answers a connection's
    /// commands in order, so a call it holds holds up every other.
    pub(crate) fn open_waiting(
        url: &str,
        tls: &RedisTls,
        wait: Duration,
    ) -> Result<RedisConnection, StoreError> {
        let client = client(url, tls)?;
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config(wait))
            .map_err(StoreError::Redis)?;
        Ok(RedisConnection {
            handle: Handle::Server(manager),
            url: redact_password(url).into(),
        })
    }

    /// The connection `[store]` describes: one server, Sentinel or Cluster.
    pub(crate) fn for_backend(backend: &Backend) -> Result<RedisConnection, StoreError> {
        RedisConnection::for_backend_waiting(backend, Duration::ZERO)
    }

    /// As [`RedisConnection::for_backend`], for calls Redis may hold for up
    /// to `wait` (see [`RedisConnection::open_waiting`]).
    pub(crate) fn for_backend_waiting(
        backend: &Backend,
        wait: Duration,
    ) -> Result<RedisConnection, StoreError> {
        match backend {
            Backend::Memory => Err(not_redis()),
            Backend::Redis { url, tls } => RedisConnection::open_waiting(url, tls, wait),
            Backend::Sentinel {
                sentinels,
                master,
                credentials,
                sentinel_credentials,
                tls,
            } => {
                let master = sentinel_master(
                    sentinels,
                    master,
                    sentinel::Credentials {
                        servers: credentials.as_ref(),
                        sentinels: sentinel_credentials.as_ref(),
                    },
                    tls.as_ref(),
                    wait,
                )?;
                Ok(RedisConnection {
                    url: master.description.clone().into(),
                    handle: Handle::Sentinel(Arc::new(master)),
                })
            }
            Backend::Cluster {
                nodes,
                credentials,
                tls,
            } => Ok(RedisConnection {
                handle: Handle::Cluster(Arc::new(LazyCluster {
                    client: cluster_client(nodes, credentials.as_ref(), tls.as_ref(), wait)?,
                    connection: tokio::sync::OnceCell::new(),
                    tls: tls.is_some(),
                })),
                url: format!("cluster nodes {}", nodes.join(",")).into(),
            }),
        }
    }

    /// How `[store]` names the server(s), for messages that tell the
    /// operator what to look at.
    pub(crate) fn named_by(&self) -> NamedBy {
        match self.handle {
            Handle::Server(_) => NamedBy::RedisUrl,
            Handle::Sentinel(_) => NamedBy::Sentinels,
            Handle::Cluster(_) => NamedBy::ClusterNodes,
        }
    }

    /// A handle for one call (the connection underneath is shared).
    pub(crate) fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Can the store take writes? One server (or the sentinels' master):
    /// `ROLE` says `master`; a replica (an old master that came back as
    /// one, or a server made `REPLICAOF` another) refuses every write with
    /// `READONLY`, so it is [`StoreError::NotPrimary`] (and, with Sentinel,
    /// the next call asks the sentinels again). A cluster: every node
    /// answers `PING` (the client sends writes to each slot's primary and
    /// follows a failover by itself).
    pub(crate) async fn check_writable(&self) -> Result<(), StoreError> {
        if let Handle::Cluster(_) = self.handle {
            return redis::cmd("PING")
                .query_async::<()>(&mut self.handle())
                .await
                .map_err(|error| self.failed(error));
        }
        let role: Value = match redis::cmd("ROLE").query_async(&mut self.handle()).await {
            Ok(role) => role,
            // A user whose ACL denies ROLE (some managed services): taken
            // to be reachable, as PING would.
            Err(error)
                if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) =>
            {
                return Ok(());
            }
            Err(error) => return Err(self.failed(error)),
        };
        let first = match &role {
            Value::Array(items) => items.first(),
            _ => None,
        };
        let role = match first {
            Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            Some(Value::SimpleString(text)) => text.clone(),
            _ => return Err(StoreError::Protocol(format!("ROLE answered {role:?}"))),
        };
        if role == "master" {
            return Ok(());
        }
        if let Handle::Sentinel(master) = &self.handle {
            master.forget_current();
        }
        Err(StoreError::NotPrimary {
            server: self.url.to_string(),
            role,
        })
    }

    /// A call failed: a TLS failure (a certificate refused, either way) is
    /// told as such, with the URL, and so are a replica's `READONLY` and
    /// `NOREPLICAS`; anything else is Redis being unreachable.
    pub(crate) fn failed(&self, error: RedisError) -> StoreError {
        // A replica (a demoted primary) refuses writes; a primary cut off
        // from its replicas may too (`min-replicas-to-write`). Neither is
        // an unreachable store, and the log should say which it is.
        if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) {
            return StoreError::ReadOnly {
                url: self.url.to_string(),
                source: error,
            };
        }
        if error.code() == Some("NOREPLICAS") {
            return StoreError::NoReplicas(error);
        }
        if is_authentication(&error) {
            return StoreError::Authentication {
                server: self.url.to_string(),
                keys: match &self.handle {
                    Handle::Server(_) => {
                        "the password in store.redis_url (or store.password, \
                         ANTEROOM_REDIS_PASSWORD)"
                    }
                    Handle::Sentinel(master) => match master.refused() {
                        Some(sentinel::Refused::Sentinels) => {
                            "store.sentinel_username and store.sentinel_password (or \
                             ANTEROOM_SENTINEL_PASSWORD): the sentinels refused them"
                        }
                        Some(sentinel::Refused::Servers) => {
                            "store.username and store.password (or ANTEROOM_REDIS_PASSWORD): \
                             the master the sentinels name refused them"
                        }
                        None => {
                            "store.username and store.password (or ANTEROOM_REDIS_PASSWORD) \
                             for the servers, store.sentinel_username and \
                             store.sentinel_password (or ANTEROOM_SENTINEL_PASSWORD) for the \
                             sentinels"
                        }
                    },
                    Handle::Cluster(_) => {
                        "store.username and store.password (or ANTEROOM_REDIS_PASSWORD)"
                    }
                },
                source: error,
            };
        }
        let over_tls = match &self.handle {
            Handle::Server(_) => false,
            Handle::Sentinel(master) => master.tls,
            Handle::Cluster(cluster) => cluster.tls,
        };
        if caused_by_tls(&error) || (over_tls && tells_of_tls(&error)) {
            StoreError::Tls {
                url: self.url.to_string(),
                source: Box::new(error),
            }
        } else {
            StoreError::Redis(error)
        }
    }
}

impl LazyCluster {
    async fn connection(&self) -> redis::RedisResult<ClusterConnection> {
        self.connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Handle::Server(manager) => manager.req_packed_command(cmd),
            Handle::Sentinel(master) => Box::pin(async move { master.call(cmd).await }),
            Handle::Cluster(cluster) => Box::pin(async move {
                let mut connection = cluster.connection().await?;
                connection.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Handle::Server(manager) => manager.req_packed_commands(pipeline, offset, count),
            // The batches of bookings (`redis_buffer`): sent once, and a
            // failure or a `READONLY` reply forgets the master.
            Handle::Sentinel(master) => {
                Box::pin(async move { master.call_pipeline(pipeline, offset, count).await })
            }
            Handle::Cluster(cluster) => Box::pin(async move {
                let mut connection = cluster.connection().await?;
                connection
                    .req_packed_commands(pipeline, offset, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Handle::Server(manager) => manager.get_db(),
            // The sentinels' master is used with database 0, and a cluster
            // has only that one.
            Handle::Sentinel(_) | Handle::Cluster(_) => 0,
        }
    }
}

enum Problem {
    Url(RedisError),
    Tls(Box<dyn std::error::Error + Send + Sync>),
}

fn build_client(url: &str, tls: &RedisTls) -> Result<redis::Client, Problem> {
    let info = url.into_connection_info().map_err(Problem::Url)?;
    if !matches!(info.addr(), ConnectionAddr::TcpTls { .. }) {
        // `config` allows the TLS files with `rediss://` only.
        return redis::Client::open(info).map_err(Problem::Url);
    }
    // redis builds its rustls configs with the process's default provider;
    // ours is ring. Installing it again (a second store) changes nothing.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if tls.ca.is_none() && tls.client.is_none() {
        return redis::Client::open(info).map_err(Problem::Url);
    }
    if let Some(identity) = &tls.client {
        // redis pairs the key with the certificate only when it connects;
        // a mismatch is a startup error here instead.
        check_identity(identity).map_err(Problem::Tls)?;
    }
    let Some(certificates) = certificates(tls) else {
        return redis::Client::open(info).map_err(Problem::Url);
    };
    redis::Client::build_with_tls(info, certificates).map_err(|error| Problem::Tls(error.into()))
}

/// The client key belongs to the first certificate of the chain.
fn check_identity(
    identity: &ClientIdentity,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let context = |error: &dyn std::fmt::Display| {
        format!(
            "store.tls_key_file ({}) does not go with store.tls_cert_file ({}): {error}",
            identity.key.path.display(),
            identity.cert.path.display()
        )
    };
    let chain = CertificateDer::pem_slice_iter(&identity.cert.pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| context(&error))?;
    let key = PrivateKeyDer::from_pem_slice(&identity.key.pem).map_err(|error| context(&error))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| context(&error))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(chain, key)
        .map_err(|error| context(&error))?;
    Ok(())
}

/// Whether Redis refused our credentials or wants some. redis tells a
/// failed `AUTH` as `AuthenticationFailed`; a command without one gets
/// `NOAUTH` (and a wrong one on `HELLO`, `WRONGPASS`); the cluster client
/// wraps the first failure of its initial connections in an I/O error whose
/// detail is that error's text.
pub(crate) fn is_authentication(error: &RedisError) -> bool {
    const SIGNS: [&str; 3] = ["AuthenticationFailed", "NOAUTH", "WRONGPASS"];
    error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
        || error
            .detail()
            .is_some_and(|detail| SIGNS.iter().any(|sign| detail.contains(sign)))
}

/// Whether the text of a failure redis wrapped (the cluster client's
/// initial connections, all failed: only the first failure's text is
/// kept; likewise a sentinel's) is rustls's for a refused certificate or
/// handshake.
fn tells_of_tls(error: &RedisError) -> bool {
    const SIGNS: [&str; 4] = [
        "invalid peer certificate",
        "received fatal alert",
        "peer is incompatible",
        "peer misbehaved",
    ];
    error
        .detail()
        .is_some_and(|detail| SIGNS.iter().any(|sign| detail.contains(sign)))
}

/// Whether rustls is behind `error`. Its errors arrive wrapped: in an
/// `io::Error` (tokio-rustls), itself shared in an `Arc` (redis), and
/// neither wrapper's `source` is the error it wraps, so both are opened
/// here.
fn caused_by_tls(error: &RedisError) -> bool {
    is_or_wraps_tls(error)
}

fn is_or_wraps_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<rustls::Error>() || error.is::<rustls::pki_types::InvalidDnsNameError>() {
        return true;
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
        && is_or_wraps_tls(inner)
    {
        return true;
    }
    if let Some(shared) = error.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>()
        && is_or_wraps_tls(shared.as_ref())
    {
        return true;
    }
    error.source().is_some_and(is_or_wraps_tls)
}

#[cfg(test)]
mod tests {
    use redis::{ErrorKind, RedisError};

    use super::is_authentication;

    fn server_error(resp: &[u8]) -> RedisError {
        redis::parse_redis_value(resp)
            .expect("a RESP reply")
            .extract_error()
            .expect_err("an error reply")
    }

    #[test]
    fn a_refused_or_missing_password_is_an_authentication_failure() {
        assert!(is_authentication(&RedisError::from((
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        ))));
        assert!(is_authentication(&server_error(
            b"-NOAUTH Authentication required.\r\n"
        )));
        assert!(is_authentication(&server_error(
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        )));
        // The cluster client's first connections, all refused.
        assert!(is_authentication(&RedisError::from((
            ErrorKind::Io,
            "Failed to create initial connections",
            "Password authentication failed - AuthenticationFailed".to_owned(),
        ))));
    }

    #[test]
    fn an_unreachable_server_or_another_refusal_is_not() {
        assert!(!is_authentication(&RedisError::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_authentication(&server_error(
            b"-NOPERM this user has no permissions to run the 'role' command\r\n"
        )));
        assert!(!is_authentication(&server_error(
            b"-READONLY You can't write against a read only replica.\r\n"
        )));
    }
}
