//! Accepting connections and serving them with hyper, with a graceful,
//! bounded shutdown. Used for both the public and the admin listener.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;

use tokio_io_timeout::TimeoutStream;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::Body;
use crate::Shutdown;
use crate::tally::Tally;

/// The bounds of one listener.
#[derive(Debug, Clone)]
pub struct ListenerLimits {
    /// The listener's name in metrics (`public`, `admin`).
    pub name: &'static str,
    /// Open connections; beyond it a new one gets a short `503` and is closed.
    pub max_connections: usize,
    /// Time to send the request headers (a slowloris client is cut off), and
    /// the longest an idle keep-alive connection stays open: hyper starts this
    /// timer whenever it waits for a request's first byte.
    pub header_read_timeout: Duration,
    /// Request line plus headers; beyond it hyper answers `431`.
    pub max_header_bytes: usize,
    /// A write to the client that makes no progress for this long ends the
    /// connection: a slow reader cannot hold an upstream request for ever.
    pub send_timeout: Duration,
    /// Open connections from one client address (IPv6 by /64), so that one
    /// client cannot fill `max_connections`; beyond it a new connection
    /// gets a short `429` and is closed. `None`: not counted per client.
    pub per_client: Option<PerClient>,
}

/// `max_connections_per_client`, and the peers it does not apply to.
#[derive(Debug, Clone)]
pub struct PerClient {
    pub max_connections: usize,
    /// `trusted_proxies`: their connections carry many clients, and are
    /// bounded only by `max_connections`.
    pub exempt: Vec<ipnet::IpNet>,
}

/// Sent to a connection beyond `max_connections`, then closed: a clear answer
/// that costs nothing (no parsing, no task beyond the write).
const OVER_CAPACITY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 30\r\nConnection: close\r\n\r\nToo many connections; retry.\r\n";

/// Sent to a connection beyond `max_connections_per_client`, then closed.
const OVER_CLIENT_RESPONSE: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 48\r\nConnection: close\r\n\r\nToo many connections from your address; retry.\r\n";

/// How long we spend writing a refusal before giving up on the connection.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves `listener` until `shutdown` begins, then stops accepting, lets
/// requests in flight finish for at most `grace`, and returns.
pub async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: Shutdown,
    grace: Duration,
    limits: ListenerLimits,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    // HTTP/1.1 only. hyper's header read timeout then runs from the first
    // byte a connection may send, so a silent or slow client is cut off; an
    // h2c connection (which hyper-util's auto builder would accept) could sit
    // idle with no such bound and hold a connection slot for ever.
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = limits.per_client.as_ref().map(|per_client| {
        (
            Tally::new(per_client.max_connections as u64),
            &per_client.exempt,
        )
    });
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly
                    // rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.begun() => break,
        };
        let client_share = match &per_client {
            Some((tally, exempt)) if !exempt.iter().any(|net| net.contains(&peer.ip())) => {
                match tally.take(crate::limits::client_key(peer.ip()), 1) {
                    Some(share) => Some(share),
                    None => {
                        crate::metrics::connection_refused(limits.name, "per_client");
                        tokio::spawn(turn_away(stream, OVER_CLIENT_RESPONSE));
                        continue;
                    }
                }
            }
            _ => None,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            crate::metrics::connection_refused(limits.name, "max_connections");
            tokio::spawn(turn_away(stream, OVER_CAPACITY_RESPONSE));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |request| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler(request, peer).await) }
        });
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.send_timeout));
        let connection = builder.serve_connection(TokioIo::new(Box::pin(stream)), service);
        let connection = graceful.watch(connection);
        let name = limits.name;
        crate::metrics::connection_opened(name);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            crate::metrics::connection_closed(name);
            drop(permit);
            drop(client_share);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "connections still open after the grace period; closing them"
        );
    }
}

/// Answers a connection over a bound with `response` and closes it.
async fn turn_away(mut stream: TcpStream, response: &'static [u8]) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        let _ = stream.write_all(response).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
