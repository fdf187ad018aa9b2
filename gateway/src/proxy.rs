//! Forwarding admitted requests to the upstream site: streaming bodies both
//! ways over a pooled keep-alive client.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use std::sync::Arc;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use anteroom_config::Config;

use crate::body::{self, BodyError, Budget, Pace, Paced, Prefix};
use crate::cookies;
use crate::room::{Busy, PlaceGuard, Places, Recorder};
use crate::tally::Tally;
use crate::{Body, BoxError};
use bytes::Bytes;

/// Idle upstream connections kept per upstream host. Enough for a busy site
/// at this machine's throughput; idle ones close after [`POOL_IDLE_TIMEOUT`].
const POOL_MAX_IDLE: usize = 512;
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("upstream {upstream}: {detail}")]
    Unreachable { upstream: String, detail: String },
    #[error("upstream {upstream}: no response within {after:?}")]
    TimedOut { upstream: String, after: Duration },
    /// `max_in_flight_upstream` requests are already at the upstream.
    #[error(
        "upstream busy: max_in_flight_upstream requests in flight for longer than upstream_queue_ms"
    )]
    Busy,
    /// The request body grew past `max_body_bytes` while streaming.
    #[error("request body over {limit} bytes")]
    BodyTooLarge { limit: u64 },
    /// The client's own request body broke (bad chunked framing, closed
    /// early): the client's fault, not the upstream's.
    #[error("request body from the client is broken: {0}")]
    ClientBody(String),
    /// The client's body came too slowly, or there is no memory left for
    /// it: the request never took (or gave back) its place.
    #[error(transparent)]
    Body(BodyError),
    /// The client already has `max_in_flight_upstream_per_client`
    /// requests at the upstream.
    #[error("the client has max_in_flight_upstream_per_client requests at the upstream")]
    ClientBusy,
}

pub struct Proxy {
    client: Client<HttpConnector, Body>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    timeout: Duration,
    trusted_proxies: Vec<ipnet::IpNet>,
    /// One permit per request at the upstream, held until its response body
    /// is finished (or dropped): the upstream never sees more than
    /// `max_in_flight_upstream` of ours at once.
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    /// How long a request may wait for a permit (`upstream_queue_ms`).
    /// Tokio's semaphore is fair, so waiting requests go first come first
    /// served; their number is bounded by the listener's `max_connections`.
    queue_wait: Duration,
    max_body_bytes: u64,
    /// Places at the upstream each client holds
    /// (`max_in_flight_upstream_per_client`), so that one client cannot
    /// take them all.
    per_client: Arc<Tally>,
    /// How request bodies must arrive.
    pace: Pace,
    /// The memory for bodies read before they go upstream.
    bodies: Arc<Budget>,
}

/// The room's part of a request by one of its admitted visitors: the
/// room's places at the site, taken before the gateway's own, and its
/// figures for the adaptive controller. Requests outside every room have
/// none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoomUpstream<'a> {
    pub places: &'a Arc<Places>,
    pub recorder: &'a Arc<Recorder>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    pub fn new(config: &Config, bodies: Arc<Budget>) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        let authority = config
            .upstream
            .uri
            .authority()
            .cloned()
            .expect("config guarantees the upstream has a host");
        Proxy {
            client,
            scheme: http::uri::Scheme::HTTP,
            authority,
            timeout: config.upstream_timeout,
            trusted_proxies: config.limits.trusted_proxies.clone(),
            in_flight: Arc::new(Semaphore::new(config.limits.max_in_flight_upstream)),
            max_in_flight: config.limits.max_in_flight_upstream,
            queue_wait: config.limits.upstream_queue,
            max_body_bytes: config.limits.max_body_bytes,
            per_client: Tally::new(config.limits.max_in_flight_upstream_per_client as u64),
            pace: Pace::from_config(&config.limits),
            bodies,
        }
    }

    /// A place at the upstream: at once, or after a wait until `deadline`
    /// (`upstream_queue_ms` after the request asked, its wait for a place
    /// of its room included). The wait absorbs bursts; it is short so that
    /// a pile-up in front of a site that is really overloaded is shed
    /// rather than left to grow.
    async fn permit(
        &self,
        deadline: Instant,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ProxyError> {
        if let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() {
            return Ok(permit);
        }
        if self.queue_wait.is_zero() {
            return Err(ProxyError::Busy);
        }
        match tokio::time::timeout_at(deadline, Arc::clone(&self.in_flight).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out, or the semaphore was closed (never: it lives as
            // long as the proxy).
            _ => Err(ProxyError::Busy),
        }
    }

    /// Sends `request` upstream for `client` and returns its response with
    /// a streaming body.
    ///
    /// A request takes its place at the upstream only once the start of its
    /// body (all of it, for most writes) has arrived under the body's pace:
    /// a client dawdling over its body holds nothing that belongs to
    /// everyone. A request of a room's visitor (`room`) takes a place of
    /// its room first, then the gateway's; one deadline,
    /// `upstream_queue_ms`, covers both waits. The places it holds are
    /// given back when the response body ends or is dropped.
    ///
    /// A room's request is recorded in its room's figures: asked, queued,
    /// busy, done or failed by the site (a `5xx`, a timeout, unreachable),
    /// with its latencies. What the client's own body does wrong (broken,
    /// too large, too slow) is not the site's doing, and counts in none of
    /// the outcomes.
    pub async fn forward<B>(
        &self,
        request: Request<B>,
        peer: SocketAddr,
        client: IpAddr,
        room: Option<RoomUpstream<'_>>,
    ) -> Result<Response<Body>, ProxyError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let client_place = self
            .per_client
            .take(client, 1)
            .ok_or(ProxyError::ClientBusy)?;
        let (parts, body) = request.into_parts();
        let body = self.read_ahead(body, client).await?;
        let asked = Instant::now();
        let deadline = asked + self.queue_wait;
        let room_place = match room {
            Some(room) => Some(self.room_place(room, asked, deadline).await?),
            None => None,
        };
        let permit = match self.permit(deadline).await {
            Ok(permit) => permit,
            Err(busy) => {
                if let Some(room) = room {
                    let now = Instant::now();
                    room.recorder.busy(now, now - asked);
                }
                return Err(busy);
            }
        };
        let request = Request::from_parts(parts, body);
        let (mut parts, body) = request.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        parts.uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|error| self.unreachable(error))?;
        parts.version = http::Version::HTTP_11;
        let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
            // HTTP/2 carries the host in the URI instead.
            parts
                .uri
                .authority()
                .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
        });
        prepare_request_headers(
            &mut parts.headers,
            peer.ip(),
            self.peer_kind(peer.ip()),
            original_host,
        );
        let limit = self.max_body_bytes;
        let request = Request::from_parts(parts, body);
        let sent = Instant::now();
        let at_site = room.map(|room| room.recorder.at_site(sent));
        let response = match tokio::time::timeout(self.timeout, self.client.request(request)).await
        {
            Ok(Ok(response)) => response,
            Ok(Err(error)) if caused_by_length_limit(&error) => {
                return Err(ProxyError::BodyTooLarge { limit });
            }
            Ok(Err(error)) if BodyError::in_chain(&error).is_some() => {
                let cause = BodyError::in_chain(&error).map(BodyError::copied);
                return Err(
                    cause.map_or(ProxyError::ClientBody(error.to_string()), ProxyError::Body)
                );
            }
            Ok(Err(error)) if caused_by_client_body(&error) => {
                return Err(ProxyError::ClientBody(error.to_string()));
            }
            Ok(Err(error)) => {
                let error = self.unreachable(error);
                record_no_answer(room, asked);
                return Err(error);
            }
            Err(_) => {
                record_no_answer(room, asked);
                return Err(ProxyError::TimedOut {
                    upstream: self.authority.to_string(),
                    after: self.timeout,
                });
            }
        };
        let answered = Instant::now();
        crate::metrics::upstream_response(answered - sent);
        if let (Some(room), Some(place)) = (room, &room_place) {
            room.recorder.answered(
                answered,
                response.status(),
                answered - sent,
                answered - asked,
                place.taken(),
            );
        }
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        // The places live as long as the response body streams, and the
        // request counts among its room's at the site as long.
        let body = body
            .map_frame(move |frame| {
                let _held = (&permit, &client_place, &room_place, &at_site);
                frame
            })
            .map_err(Into::into)
            .boxed_unsync();
        Ok(Response::from_parts(parts, body))
    }

    /// A place of the room's at the site, asked for at `asked`: at once, or
    /// after a wait in the room's line until `deadline`.
    async fn room_place(
        &self,
        room: RoomUpstream<'_>,
        asked: Instant,
        deadline: Instant,
    ) -> Result<PlaceGuard, ProxyError> {
        room.recorder.started(asked);
        if let Some(place) = room.places.try_acquire() {
            return Ok(place);
        }
        let in_line = room.recorder.queued(asked);
        let place = if self.queue_wait.is_zero() {
            Err(Busy)
        } else {
            room.places.acquire(deadline).await
        };
        drop(in_line);
        place.map_err(|Busy| {
            let now = Instant::now();
            room.recorder.busy(now, now - asked);
            ProxyError::Busy
        })
    }

    /// The body to send upstream: nothing to wait for when there is none;
    /// otherwise its start (or all of it) read here first, and the rest
    /// under the pace and `max_body_bytes`.
    async fn read_ahead<B>(&self, body: B, client: IpAddr) -> Result<Body, ProxyError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if body.is_end_stream() {
            return Ok(crate::full_body(Bytes::new()));
        }
        let limit = self.max_body_bytes;
        let prefix = body::read_prefix(
            Paced::new(body, self.pace),
            body::PREFIX_BYTES,
            limit,
            self.bodies.charge(client),
        )
        .await
        .map_err(ProxyError::Body)?;
        let (Prefix::Whole(replay) | Prefix::Longer(replay)) = prefix;
        Ok(Limited::new(replay, usize::try_from(limit).unwrap_or(usize::MAX)).boxed_unsync())
    }

    /// The headers a request would carry upstream (hop-by-hop and our
    /// cookies removed, `X-Forwarded-*` set), for a request that is stored
    /// now and replayed later.
    pub fn upstream_headers(&self, headers: &HeaderMap, peer: IpAddr) -> HeaderMap {
        let mut headers = headers.clone();
        let original_host = headers.get(header::HOST).cloned();
        prepare_request_headers(&mut headers, peer, self.peer_kind(peer), original_host);
        headers
    }

    /// Requests at the upstream right now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight
            .saturating_sub(self.in_flight.available_permits())
    }

    fn peer_kind(&self, ip: IpAddr) -> Peer {
        if self.is_trusted(ip) {
            Peer::Trusted
        } else {
            Peer::Untrusted
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    fn unreachable(&self, error: impl std::error::Error) -> ProxyError {
        // hyper-util's errors hide the cause one level down.
        let mut detail = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        ProxyError::Unreachable {
            upstream: self.authority.to_string(),
            detail,
        }
    }
}

/// The site gave no answer to a room's request that asked at `asked`.
fn record_no_answer(room: Option<RoomUpstream<'_>>, asked: Instant) {
    if let Some(room) = room {
        let now = Instant::now();
        room.recorder.no_answer(now, now - asked);
    }
}

fn caused_by_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Did sending fail because reading the client's body failed? hyper marks
/// errors from a request body it was given as user errors.
fn caused_by_client_body(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>()
            && hyper_error.is_user()
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

/// Whether what a peer says in `X-Forwarded-*` is believed
/// (`limits.trusted_proxies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Trusted,
    Untrusted,
}

fn prepare_request_headers(
    headers: &mut HeaderMap,
    peer: IpAddr,
    peer_kind: Peer,
    original_host: Option<HeaderValue>,
) {
    let peer_is_trusted = peer_kind == Peer::Trusted;
    remove_hop_by_hop(headers);
    cookies::strip_ours(headers);
    crate::forwarded::remove_unbelieved(headers, peer_is_trusted);

    // X-Forwarded-For: append the peer to what a trusted proxy reported (all
    // its lines, in order); from anybody else, start afresh.
    let chain = crate::forwarded::chain_with(headers, peer_is_trusted, &peer.to_string());
    headers.insert(crate::forwarded::X_FORWARDED_FOR, chain);
    if !(peer_is_trusted && headers.contains_key("x-forwarded-proto")) {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if !(peer_is_trusted && headers.contains_key("x-forwarded-host")) {
        match original_host {
            Some(host) => {
                headers.insert("x-forwarded-host", host);
            }
            None => {
                headers.remove("x-forwarded-host");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use http_body_util::Full;
    use tokio::net::TcpListener;
    use tokio::sync::{mpsc, oneshot};

    use crate::room::Taken;

    /// Only a guard against a test hanging when the proxy breaks; never a
    /// measure of speed.
    const HANG_GUARD: Duration = Duration::from_secs(30);

    /// An upstream that holds every request until the test lets it answer:
    /// each arrival comes to the test as the sender that answers it `200`.
    async fn held_upstream() -> (SocketAddr, mpsc::UnboundedReceiver<oneshot::Sender<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (arrivals, arrived) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let arrivals = arrivals.clone();
                let service = hyper::service::service_fn(move |_request| {
                    let (answer, answered) = oneshot::channel::<()>();
                    let _ = arrivals.send(answer);
                    async move {
                        let _ = answered.await;
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        (address, arrived)
    }

    fn proxy_to(upstream: &str, limits: &str) -> Proxy {
        let config = Config::from_toml(
            &format!("upstream = \"{upstream}\"\n[limits]\n{limits}\n"),
            |_| None,
        )
        .expect("the test's config is valid");
        let bodies = Arc::new(Budget::new(
            config.limits.max_unfinished_body_bytes,
            config.limits.max_body_bytes,
        ));
        Proxy::new(&config, bodies)
    }

    /// A room's places and figures, as a room runtime holds them.
    fn room_parts() -> (Arc<Places>, Arc<Recorder>) {
        (
            Arc::new(Places::new()),
            Arc::new(Recorder::new(64, Instant::now())),
        )
    }

    fn get() -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = "/prenota".parse().unwrap();
        request
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_static("booking.example"));
        request
    }

    /// A room visitor's request from `client`, forwarded in a task of its
    /// own; the response's body is read to its end (giving the places
    /// back), and its status returned.
    fn forward_in_room(
        proxy: &Arc<Proxy>,
        (places, recorder): &(Arc<Places>, Arc<Recorder>),
        client: u8,
    ) -> tokio::task::JoinHandle<Result<http::StatusCode, ProxyError>> {
        let (proxy, places, recorder) =
            (Arc::clone(proxy), Arc::clone(places), Arc::clone(recorder));
        tokio::spawn(async move {
            let client = IpAddr::from([192, 0, 2, client]);
            let room = RoomUpstream {
                places: &places,
                recorder: &recorder,
            };
            let response = proxy
                .forward(get(), SocketAddr::new(client, 40_000), client, Some(room))
                .await?;
            let status = response.status();
            response.into_body().collect().await.unwrap();
            Ok(status)
        })
    }

    #[tokio::test]
    async fn with_a_room_limit_of_one_two_requests_go_one_at_a_time_and_the_second_waits() {
        let (upstream, mut arrivals) = held_upstream().await;
        let proxy = Arc::new(proxy_to(&format!("http://{upstream}"), ""));
        let room = room_parts();
        room.0.set_limit(1);
        tokio::time::timeout(HANG_GUARD, async {
            let first = forward_in_room(&proxy, &room, 1);
            let answer_first = arrivals.recv().await.unwrap();
            let second = forward_in_room(&proxy, &room, 2);
            // The second is in the room's line, not at the site.
            while room.1.line() == 0 {
                tokio::task::yield_now().await;
            }
            assert_eq!(room.0.in_use(), 1);
            assert!(arrivals.try_recv().is_err(), "the site has the first only");
            answer_first.send(()).unwrap();
            assert_eq!(first.await.unwrap().unwrap(), http::StatusCode::OK);
            let answer_second = arrivals.recv().await.unwrap();
            assert_eq!(room.1.line(), 0);
            answer_second.send(()).unwrap();
            assert_eq!(second.await.unwrap().unwrap(), http::StatusCode::OK);
        })
        .await
        .expect("the requests went through");
        // A report holds the whole seconds before its own.
        let report = room
            .1
            .report(Instant::now() + std::time::Duration::from_secs(1));
        assert_eq!(
            (
                report.started,
                report.queued,
                report.done,
                report.failed,
                report.busy
            ),
            (2, 1, 2, 0, 0)
        );
        assert_eq!(report.peak_in_flight, 1, "one at a time at the site");
        assert_eq!((report.site.count(), report.seen.count()), (2, 2));
        assert_eq!(room.0.in_use(), 0, "both places given back");
        assert_eq!(room.1.in_flight(), 0);
    }

    /// The wait for the room's place counts in `upstream_queue_ms`: when it
    /// runs out the request is busy, and the site never sees it.
    #[tokio::test(start_paused = true)]
    async fn a_room_request_that_finds_no_place_in_time_is_busy() {
        let proxy = Arc::new(proxy_to("http://127.0.0.1:9", "upstream_queue_ms = 500"));
        let room = room_parts();
        room.0.set_limit(1);
        let taken = room.0.try_acquire().expect("a free place");
        let outcome = forward_in_room(&proxy, &room, 1).await.unwrap();
        assert!(matches!(outcome, Err(ProxyError::Busy)), "{outcome:?}");
        // A report holds the whole seconds before its own.
        let report = room
            .1
            .report(Instant::now() + std::time::Duration::from_secs(1));
        assert_eq!(
            (
                report.started,
                report.queued,
                report.busy,
                report.done,
                report.failed
            ),
            (1, 1, 1, 0, 0)
        );
        assert_eq!(report.seen.count(), 1, "the visitor waited, and saw a 503");
        assert_eq!((report.site.count(), report.line), (0, 0));
        drop(taken);
    }

    /// A site that cannot be reached fails the room's request; the proxy's
    /// own requests outside rooms count nowhere.
    #[tokio::test]
    async fn an_unreachable_site_fails_the_room_request() {
        let proxy = Arc::new(proxy_to("http://127.0.0.1:9", ""));
        let room = room_parts();
        let outcome = forward_in_room(&proxy, &room, 1).await.unwrap();
        assert!(
            matches!(outcome, Err(ProxyError::Unreachable { .. })),
            "{outcome:?}"
        );
        let client = IpAddr::from([192, 0, 2, 2]);
        let outside = proxy
            .forward(get(), SocketAddr::new(client, 40_000), client, None)
            .await;
        assert!(matches!(outside, Err(ProxyError::Unreachable { .. })));
        // A report holds the whole seconds before its own.
        let report = room
            .1
            .report(Instant::now() + std::time::Duration::from_secs(1));
        assert_eq!(
            (report.started, report.queued, report.done, report.failed),
            (1, 0, 0, 1)
        );
        assert_eq!((report.site.count(), report.seen.count()), (0, 1));
        assert_eq!(room.0.in_use(), 0);
    }

    /// A place taken under a probe gives its site latency to the probe's
    /// histogram too.
    #[tokio::test]
    async fn a_request_placed_under_a_probe_counts_in_the_probe() {
        let (upstream, mut arrivals) = held_upstream().await;
        let proxy = Arc::new(proxy_to(&format!("http://{upstream}"), ""));
        let room = room_parts();
        room.0.set_probing(true);
        let request = forward_in_room(&proxy, &room, 1);
        arrivals.recv().await.unwrap().send(()).unwrap();
        assert_eq!(request.await.unwrap().unwrap(), http::StatusCode::OK);
        // A report holds the whole seconds before its own.
        let report = room
            .1
            .report(Instant::now() + std::time::Duration::from_secs(1));
        assert_eq!((report.done, report.probe.count()), (1, 1));
        let place = room.0.try_acquire().unwrap();
        assert_eq!(place.taken(), Taken::WhileProbing);
    }

    #[test]
    fn untrusted_peers_cannot_spoof_forwarding_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert("connection", HeaderValue::from_static("close, x-secret"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        prepare_request_headers(
            &mut headers,
            "10.0.0.9".parse().unwrap(),
            Peer::Untrusted,
            Some(HeaderValue::from_static("site.example")),
        );
        assert_eq!(headers["x-forwarded-for"], "10.0.0.9");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "site.example");
        assert!(headers.get("connection").is_none());
        assert!(headers.get("x-secret").is_none());
    }

    #[test]
    fn trusted_peers_extend_the_chain() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        prepare_request_headers(
            &mut headers,
            "10.0.0.9".parse().unwrap(),
            Peer::Trusted,
            None,
        );
        assert_eq!(headers["x-forwarded-for"], "1.2.3.4, 10.0.0.9");
        assert_eq!(headers["x-forwarded-proto"], "https");
    }

    /// What an untrusted client says about itself in the other forwarding
    /// headers never reaches the site; what a trusted proxy says does.
    /// Path overrides reach it from nobody.
    #[test]
    fn only_trusted_peers_speak_about_the_client() {
        let claims = [
            ("forwarded", "for=6.6.6.6;proto=https;host=evil.example"),
            ("x-real-ip", "6.6.6.6"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-prefix", "/evil"),
            ("true-client-ip", "6.6.6.6"),
            ("x-original-url", "/prenota"),
            ("x-rewrite-url", "/prenota"),
        ];
        let sent = || {
            let mut headers = HeaderMap::new();
            for (name, value) in claims {
                headers.append(name, HeaderValue::from_static(value));
            }
            headers
        };
        let mut untrusted = sent();
        prepare_request_headers(
            &mut untrusted,
            "10.0.0.9".parse().unwrap(),
            Peer::Untrusted,
            None,
        );
        for (name, _) in claims {
            assert!(untrusted.get(name).is_none(), "{name} reached the site");
        }
        let mut trusted = sent();
        prepare_request_headers(
            &mut trusted,
            "10.0.0.9".parse().unwrap(),
            Peer::Trusted,
            None,
        );
        for (name, value) in &claims[..5] {
            assert_eq!(trusted[*name], *value, "{name}");
        }
        assert!(trusted.get("x-original-url").is_none());
        assert!(trusted.get("x-rewrite-url").is_none());
    }

    /// A trusted proxy that adds its own `X-Forwarded-For` line instead of
    /// extending the client's: the site gets every line, in order, as one
    /// list, not only the first (which the client wrote).
    #[test]
    fn every_forwarded_for_line_of_a_trusted_peer_is_kept_in_order() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        headers.append("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        prepare_request_headers(
            &mut headers,
            "10.0.0.9".parse().unwrap(),
            Peer::Trusted,
            None,
        );
        let lines: Vec<&HeaderValue> = headers.get_all("x-forwarded-for").iter().collect();
        assert_eq!(lines, ["6.6.6.6, 203.0.113.9, 10.0.0.9"]);
    }
}
