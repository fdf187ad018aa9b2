//! The one place a Redis client is built, for the gateway, the worker and
//! the tests alike: the URL, TLS (`rediss://`) with the operator's CA and
//! client certificate, the timeouts; and how a failed call is told.
//!
//! TLS is rustls with the ring provider. Redis's certificate is checked
//! against the system's roots (rustls-native-certs: the OS bundle, e.g.
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

use std::sync::Arc;
use std::time::Duration;

use anteroom_config::{ClientIdentity, RedisTls, redact_password};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, RedisError, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::StoreError;

/// How long one store call may take before the gateway treats the store as
/// unreachable. Short: a visitor's request must not hang on a sick Redis.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Covers the TLS handshake too, which on a LAN takes a few milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// A connection to Redis, prepared, not opened: it opens on first use and
/// reopens by itself. Clones share it.
#[derive(Clone)]
pub(crate) struct RedisConnection {
    manager: ConnectionManager,
    /// The URL without its password, for messages.
    url: Arc<str>,
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
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT + wait))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager =
            ConnectionManager::new_lazy_with_config(client, config).map_err(StoreError::Redis)?;
        Ok(RedisConnection {
            manager,
            url: redact_password(url).into(),
        })
    }

    /// A handle for one call (the connection underneath is shared).
    pub(crate) fn handle(&self) -> ConnectionManager {
        self.manager.clone()
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
        if caused_by_tls(&error) {
            StoreError::Tls {
                url: self.url.to_string(),
                source: Box::new(error),
            }
        } else {
            StoreError::Redis(error)
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
    let certificates = TlsCertificates {
        client_tls: tls.client.as_ref().map(|identity| ClientTlsConfig {
            client_cert: identity.cert.pem.clone(),
            client_key: identity.key.pem.clone(),
        }),
        root_cert: tls.ca.as_ref().map(|ca| ca.pem.clone()),
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
