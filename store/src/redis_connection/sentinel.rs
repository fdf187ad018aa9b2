//! The master of a Sentinel deployment, followed through failovers.
//!
//! redis's `SentinelClient` asks the sentinels where the master is (and
//! checks that the server it names says it is a master), but a
//! `ConnectionManager` built on the address it returns reconnects to that
//! address forever. So the master is held here with the generation it was
//! found in, and any failure that may mean "the master moved" (the server
//! unreachable, the connection lost, a timeout, or `READONLY` from an old
//! master that came back as a replica) forgets it: the next call asks the
//! sentinels again. A call refused with `READONLY` wrote nothing, so it is
//! sent once more, to the master the sentinels name now.
//!
//! A pipeline (the batch of bookings, on the store's waiting connection)
//! follows the master the same way, with one difference: its replies are
//! errors one by one, so a `READONLY` among them forgets the master too, but
//! the pipeline is not sent again. A server demoted between two of its
//! commands has written the first: the batch's callers get the error (a
//! booking's `503`), and their retry, with the same idempotency key, goes
//! to the new master.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anteroom_config::RedisCredentials;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisResult, ServerErrorKind,
    TlsCertificates, TlsMode, Value,
};

/// How long asking the sentinels may take (each sentinel in turn, and the
/// check of the master they name), so that a sentinel whose host is gone
/// does not hold every call.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct SentinelMaster {
    /// Asking the sentinels: one call at a time (the callers waiting meanwhile
    /// take the answer it found instead of asking again).
    sentinels: tokio::sync::Mutex<SentinelClient>,
    /// The master as last found, if it has not failed since. A std `Mutex`:
    /// held for a clone or an assignment, never across an `.await`.
    current: Mutex<Option<Master>>,
    generations: AtomicU64,
    /// Where the sentinels last said the master is, to log a change once.
    last_address: Mutex<Option<String>>,
    config: ConnectionManagerConfig,
    /// `NAME via host:port,...`, for messages.
    pub(crate) description: String,
    /// `store.tls`: the sentinels and the servers are spoken to over TLS.
    pub(crate) tls: bool,
    /// Who refused our credentials when the sentinels were last asked, if
    /// anyone did. A std `Mutex`: held for a copy or an assignment.
    refused: Mutex<Option<Refused>>,
}

/// Who we are to the servers and to the sentinels: two pairs, since
/// Redis keeps them apart (a sentinel's `requirepass` is its own).
#[derive(Clone, Copy, Default)]
pub(crate) struct Credentials<'a> {
    /// `store.username` and `store.password`: the master's and replicas'.
    pub(crate) servers: Option<&'a RedisCredentials>,
    /// `store.sentinel_username` and `store.sentinel_password`.
    pub(crate) sentinels: Option<&'a RedisCredentials>,
}

/// Whose password was refused: redis tells a refusal the same way
/// whether a sentinel or the master they name refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `store.sentinel_password` (and `sentinel_username`).
    Sentinels,
    /// `store.password` (and `username`).
    Servers,
}

/// How the sentinels and the servers they name are spoken to.
pub(crate) enum Transport {
    Plain,
    /// TLS to both (`rediss://`), checked against the system's roots, or
    /// with these certificates (the operator's CA, a client certificate).
    Tls(Option<TlsCertificates>),
}

#[derive(Clone)]
struct Master {
    manager: ConnectionManager,
    address: String,
    generation: u64,
}

impl SentinelMaster {
    pub(crate) fn new(
        sentinels: &[String],
        master: &str,
        credentials: Credentials<'_>,
        transport: Transport,
        config: ConnectionManagerConfig,
    ) -> RedisResult<SentinelMaster> {
        let tls = matches!(transport, Transport::Tls(_));
        let scheme = if tls { "rediss" } else { "redis" };
        let addresses = sentinels
            .iter()
            .map(|node| {
                format!("{scheme}://{node}")
                    .into_connection_info()
                    .map(|info| info.addr().clone())
            })
            .collect::<RedisResult<Vec<_>>>()?;
        let mut builder =
            SentinelClientBuilder::new(addresses, master, SentinelServerType::Master)?;
        if let Some(servers) = credentials.servers {
            builder = builder.set_client_to_redis_password(&servers.password);
            if let Some(username) = &servers.username {
                builder = builder.set_client_to_redis_username(username);
            }
        }
        if let Some(own) = credentials.sentinels {
            builder = builder.set_client_to_sentinel_password(&own.password);
            if let Some(username) = &own.username {
                builder = builder.set_client_to_sentinel_username(username);
            }
        }
        if let Transport::Tls(certificates) = transport {
            builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
            if let Some(certificates) = certificates {
                builder = builder
                    .set_client_to_sentinel_certificates(certificates.clone())
                    .set_client_to_redis_certificates(certificates);
            }
        }
        let client = builder.build()?;
        Ok(SentinelMaster {
            sentinels: tokio::sync::Mutex::new(client),
            current: Mutex::new(None),
            refused: Mutex::new(None),
            generations: AtomicU64::new(0),
            last_address: Mutex::new(None),
            config,
            description: format!("sentinel master {master} via {}", sentinels.join(",")),
            tls,
        })
    }

    /// Sends `cmd` to the master, asking the sentinels where it is first if
    /// it is not known (or failed since).
    pub(crate) async fn call(&self, cmd: &Cmd) -> RedisResult<Value> {
        let master = self.master().await?;
        match self.send(&master, cmd).await {
            Err(error) if is_read_only(&error) => {
                // Refused, so nothing was written: once more, where the
                // sentinels say the master is now.
                let master = self.master().await?;
                self.send(&master, cmd).await
            }
            other => other,
        }
    }

    /// Sends `pipeline` to the master (asking the sentinels first if need
    /// be), once: a failure that may mean the master moved, or a reply that
    /// says so (`READONLY`, `MASTERDOWN`), forgets it for the next call.
    pub(crate) async fn call_pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let master = self.master().await?;
        let mut manager = master.manager.clone();
        let result = manager.req_packed_commands(pipeline, offset, count).await;
        let moved = match &result {
            Err(error) => may_have_moved(error),
            Ok(replies) => replies.iter().any(reply_says_moved),
        };
        if moved {
            self.forget(master.generation);
        }
        result
    }

    /// The server the last call went to is not the master (a `ROLE` that
    /// said so): the next call asks the sentinels again.
    pub(crate) fn forget_current(&self) {
        *self.lock() = None;
    }

    async fn send(&self, master: &Master, cmd: &Cmd) -> RedisResult<Value> {
        let mut manager = master.manager.clone();
        let result = manager.req_packed_command(cmd).await;
        if let Err(error) = &result
            && may_have_moved(error)
        {
            self.forget(master.generation);
        }
        result
    }

    fn forget(&self, generation: u64) {
        let mut current = self.lock();
        if current
            .as_ref()
            .is_some_and(|master| master.generation == generation)
        {
            *current = None;
        }
    }

    async fn master(&self) -> RedisResult<Master> {
        if let Some(master) = self.lock().clone() {
            return Ok(master);
        }
        let mut sentinels = self.sentinels.lock().await;
        // Found by the call this one waited behind?
        if let Some(master) = self.lock().clone() {
            return Ok(master);
        }
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, sentinels.async_get_client())
            .await
            .map_err(|_| {
                RedisError::from((
                    ErrorKind::Io,
                    "no sentinel answered in time",
                    self.description.clone(),
                ))
            })?;
        let client = match found {
            Ok(client) => client,
            Err(error) if super::is_authentication(&error) => {
                // Whose password? If the sentinels take ours (a `ROLE` to
                // each in turn), it was the master that refused.
                let sentinels_take_it =
                    tokio::time::timeout(RESOLVE_TIMEOUT, sentinels.async_get_sentinel_client())
                        .await
                        .is_ok_and(|answer| answer.is_ok());
                *self.refusal() = Some(if sentinels_take_it {
                    Refused::Servers
                } else {
                    Refused::Sentinels
                });
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        drop(sentinels);
        *self.refusal() = None;
        let address = client.get_connection_info().addr().to_string();
        let manager = ConnectionManager::new_lazy_with_config(client, self.config.clone())?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let master = Master {
            manager,
            address,
            generation,
        };
        *self.lock() = Some(master.clone());
        let previous = self
            .last_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(master.address.clone());
        if previous.as_deref() != Some(master.address.as_str()) {
            tracing::info!(
                master = %master.address,
                sentinels = %self.description,
                "store: the sentinels name the master"
            );
        }
        Ok(master)
    }

    /// Who refused our credentials when the sentinels were last asked.
    pub(crate) fn refused(&self) -> Option<Refused> {
        *self.refusal()
    }

    fn refusal(&self) -> std::sync::MutexGuard<'_, Option<Refused>> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Master>> {
        // A panic while holding it (none can happen: clone or assign) would
        // leave a valid Option behind.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `READONLY`: the server is a replica now (an old master that came back).
pub(crate) fn is_read_only(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

/// One reply of a pipeline (whose errors come back one by one, as values)
/// that says the server is not the master any more: `READONLY` (a replica
/// now) or `MASTERDOWN` (a replica that lost its master).
fn reply_says_moved(reply: &Value) -> bool {
    matches!(
        reply,
        Value::ServerError(error)
            if matches!(
                error.kind(),
                Some(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
            )
    )
}

/// A failure after which the master may be elsewhere.
fn may_have_moved(error: &RedisError) -> bool {
    is_read_only(error)
        || error.kind() == ErrorKind::Server(ServerErrorKind::MasterDown)
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(resp: &[u8]) -> Value {
        redis::parse_redis_value(resp).expect("a RESP reply")
    }

    #[test]
    fn a_read_only_or_master_down_reply_in_a_pipeline_says_the_master_moved() {
        assert!(reply_says_moved(&reply(
            b"-READONLY You can't write against a read only replica.\r\n"
        )));
        assert!(reply_says_moved(&reply(
            b"-MASTERDOWN Link with MASTER is down\r\n"
        )));
    }

    #[test]
    fn other_replies_in_a_pipeline_do_not() {
        for resp in [
            &b"-NOSCRIPT No matching script.\r\n"[..],
            b"-ERR WAIT cannot be used with replica instances.\r\n",
            b"-NOREPLICAS Not enough good replicas to write.\r\n",
            b":1\r\n",
            b"+OK\r\n",
        ] {
            assert!(
                !reply_says_moved(&reply(resp)),
                "{}",
                String::from_utf8_lossy(resp)
            );
        }
    }
}
