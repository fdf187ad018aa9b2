//! `anteroom-bench origin`: a small demo booking site.
//!
//! It stands in for "the existing booking site" behind the gateway, in the
//! README demo and in tests: a home page, the booking page `/prenota`, a slot
//! list and a booking API that never overbooks and honours `Idempotency-Key`,
//! an `/echo` route that reports what reached it, and `/_stats` with the load
//! it has seen (requests, concurrency, bookings).
//!
//! `/_stats` is not counted in the statistics and skips the simulated service
//! time, so watching the origin does not change what it measures.
//!
//! With a `capacity` it melts the way real sites do (see [`Melt`]): up to
//! `capacity` requests at once it answers in `service_time`; beyond that
//! latency climbs with the load while throughput holds; past the `collapse`
//! point its threads are exhausted and throughput falls; a request that
//! would take longer than `timeout` is answered `503` when the timeout
//! strikes, having held its thread all along.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// How the demo site behaves.
#[derive(Debug, Clone)]
pub struct OriginOptions {
    /// Simulated service time, slept once per request.
    pub service_time: Duration,
    /// Bookings each slot takes before answering `409`.
    pub slot_capacity: u32,
    /// How the site degrades under load; `None` never does.
    pub melt: Option<Melt>,
}

impl Default for OriginOptions {
    fn default() -> Self {
        OriginOptions {
            service_time: Duration::ZERO,
            slot_capacity: 100,
            melt: None,
        }
    }
}

/// How a site degrades past what it serves well.
///
/// A request that starts while `n` requests are in flight (itself included)
/// takes `service_time × slowdown(n)`:
/// - up to `capacity`: 1 (the site's threads each serve one request);
/// - up to `collapse`: `n / capacity` (the threads are shared; latency climbs
///   with the load and throughput holds at `capacity / service_time`);
/// - beyond: `n / capacity × (n / collapse)²` (threads exhausted: the site
///   thrashes and its throughput falls as the load grows).
///
/// A request whose time would pass `timeout` is answered `503` when the
/// timeout strikes, like a site's own load balancer giving up on it.
#[derive(Debug, Clone, Copy)]
pub struct Melt {
    pub capacity: u32,
    pub collapse: u32,
    pub timeout: Duration,
}

impl Melt {
    /// A site that serves `capacity` requests at once well, collapses at
    /// twice that, and times requests out after 10 s.
    pub fn with_capacity(capacity: u32) -> Melt {
        Melt {
            capacity,
            collapse: capacity.saturating_mul(2),
            timeout: Duration::from_secs(10),
        }
    }

    /// How long a request takes when it starts with `in_flight` requests at
    /// the site (itself included); `None` when it would pass the timeout.
    pub fn time_taken(&self, service_time: Duration, in_flight: u64) -> Option<Duration> {
        let took = service_time.mul_f64(self.slowdown(in_flight));
        (took <= self.timeout).then_some(took)
    }

    /// How many times `service_time` a request takes when it starts with
    /// `in_flight` requests at the site (itself included).
    pub fn slowdown(&self, in_flight: u64) -> f64 {
        let n = in_flight as f64;
        let capacity = f64::from(self.capacity.max(1));
        let collapse = f64::from(self.collapse.max(self.capacity).max(1));
        if n <= capacity {
            1.0
        } else if n <= collapse {
            n / capacity
        } else {
            n / capacity * (n / collapse).powi(2)
        }
    }
}

/// The site serving in this process, until [`Running::stop`] (or until it
/// is dropped, which stops it too).
pub struct Running {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops taking connections and waits for open requests to finish (for
    /// up to [`SHUTDOWN_GRACE`]).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Serves the site on a free port of 127.0.0.1, in a task of its own.
pub async fn start(options: OriginOptions) -> std::io::Result<Running> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    serve_on(listener, options)
}

/// Serves the site on `listener`, in a task of its own.
pub fn serve_on(listener: TcpListener, options: OriginOptions) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, options, async {
        // A dropped sender stops the site as well.
        let _ = stopped.await;
    }));
    Ok(Running { addr, stop, task })
}

/// Serves the demo site on `listener` until `shutdown` completes, then lets
/// open requests finish for up to [`SHUTDOWN_GRACE`].
pub async fn run(
    listener: TcpListener,
    options: OriginOptions,
    shutdown: impl Future<Output = ()>,
) {
    let origin = Arc::new(Origin::new(options));
    let mut builder = http1::Builder::new();
    // The timer enables hyper's header read timeout (30 s), so a client that
    // opens a connection and sends nothing does not hold it for ever.
    builder.timer(TokioTimer::new()).keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    origin.stats.connections.fetch_add(1, Ordering::Relaxed);
                    let origin = Arc::clone(&origin);
                    let service = service_fn(move |request| handle(Arc::clone(&origin), request));
                    let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            debug!(%error, %peer, "connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    // Typically out of file descriptors: wait for some to close
                    // rather than spin on the error.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    info!(open_connections = graceful.count(), "origin shutting down");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(grace = ?SHUTDOWN_GRACE, "origin connections still open after the grace period");
    }
}

/// How long open requests may take to finish once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Booking bodies are a name and a slot; anything bigger is not a booking.
const MAX_BOOKING_BODY: usize = 64 * 1024;
const MAX_NAME_CHARS: usize = 200;
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// The demo's fixed appointment slots: id and label.
const SLOTS: [(&str, &str); 4] = [
    ("2021-03-01T09:00", "lunedì 1 marzo / Monday 1 March, 09:00"),
    ("2021-03-01T09:30", "lunedì 1 marzo / Monday 1 March, 09:30"),
    ("2021-03-01T10:00", "lunedì 1 marzo / Monday 1 March, 10:00"),
    ("2021-03-01T10:30", "lunedì 1 marzo / Monday 1 March, 10:30"),
];

type Body = Full<Bytes>;

struct Origin {
    options: OriginOptions,
    stats: Stats,
    /// A std mutex: every critical section is a few map and counter updates
    /// with no `.await` inside.
    bookings: Mutex<Bookings>,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    connections: AtomicU64,
    current_concurrency: AtomicU64,
    max_concurrency: AtomicU64,
    /// `503`s the site gave because a request timed out in the melt.
    timeouts: AtomicU64,
    /// Requests that took longer than `service_time` (the site was slow).
    slowed: AtomicU64,
}

/// Counts a request as in flight for as long as it lives.
struct InFlight<'a> {
    stats: &'a Stats,
    /// Requests in flight when this one started, itself included.
    at_start: u64,
}

struct Bookings {
    /// Bookings taken per slot, in `SLOTS` order.
    booked: [u32; SLOTS.len()],
    total: u64,
    /// Bookings by idempotency key. Only successful bookings are kept, so it
    /// holds at most `SLOTS.len() * slot_capacity` entries: bounded.
    by_key: HashMap<String, Booking>,
}

#[derive(Debug, Clone)]
struct Booking {
    id: u64,
    name: String,
    slot: usize,
}

#[derive(Debug)]
enum BookingError {
    BadRequest(&'static str),
    TooLarge,
    UnknownSlot,
    SlotFull,
}

impl Origin {
    fn new(options: OriginOptions) -> Origin {
        Origin {
            options,
            stats: Stats::default(),
            bookings: Mutex::new(Bookings {
                booked: [0; SLOTS.len()],
                total: 0,
                by_key: HashMap::new(),
            }),
        }
    }

    fn lock_bookings(&self) -> std::sync::MutexGuard<'_, Bookings> {
        // No critical section can leave the state half-updated, so a
        // poisoned lock still holds consistent data.
        self.bookings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place in `slot` unless the key was seen before (same booking
    /// again, `true`) or the slot is full.
    fn book(
        &self,
        key: Option<String>,
        name: String,
        slot: usize,
    ) -> Result<(Booking, bool), BookingError> {
        let mut bookings = self.lock_bookings();
        if let Some(existing) = key.as_ref().and_then(|key| bookings.by_key.get(key)) {
            return Ok((existing.clone(), true));
        }
        if bookings.booked[slot] >= self.options.slot_capacity {
            return Err(BookingError::SlotFull);
        }
        bookings.booked[slot] += 1;
        bookings.total += 1;
        let booking = Booking {
            id: bookings.total,
            name,
            slot,
        };
        if let Some(key) = key {
            bookings.by_key.insert(key, booking.clone());
        }
        Ok((booking, false))
    }

    /// Places left in each slot, in `SLOTS` order.
    fn remaining(&self) -> [u32; SLOTS.len()] {
        let bookings = self.lock_bookings();
        bookings
            .booked
            .map(|booked| self.options.slot_capacity.saturating_sub(booked))
    }
}

impl<'a> InFlight<'a> {
    fn enter(stats: &'a Stats) -> InFlight<'a> {
        let now = stats.current_concurrency.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_concurrency.fetch_max(now, Ordering::SeqCst);
        InFlight {
            stats,
            at_start: now,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.stats
            .current_concurrency
            .fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    origin: Arc<Origin>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if request.uri().path() == "/_stats" {
        return Ok(stats(&origin, request.method()));
    }
    origin.stats.requests.fetch_add(1, Ordering::Relaxed);
    let in_flight = InFlight::enter(&origin.stats);
    let service_time = origin.options.service_time;
    if let Some(melt) = origin.options.melt {
        let Some(took) = melt.time_taken(service_time, in_flight.at_start) else {
            // The request holds its thread until the timeout strikes.
            tokio::time::sleep(melt.timeout).await;
            origin.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            return Ok(overloaded());
        };
        if took > service_time {
            origin.stats.slowed.fetch_add(1, Ordering::Relaxed);
        }
        if !took.is_zero() {
            tokio::time::sleep(took).await;
        }
    } else if !service_time.is_zero() {
        tokio::time::sleep(service_time).await;
    }
    Ok(route(&origin, request).await)
}

async fn route(origin: &Origin, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    if path == "/echo" || path.starts_with("/echo/") {
        return echo(request).await;
    }
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    match path {
        "/" if is_read => html(StatusCode::OK, home_page()),
        "/prenota" if is_read => html(StatusCode::OK, booking_page(&origin.remaining())),
        "/api/slots" if is_read => slots(origin),
        "/api/bookings" if request.method() == Method::POST => {
            create_booking(origin, request).await
        }
        "/" | "/prenota" | "/api/slots" => method_not_allowed("GET, HEAD"),
        "/api/bookings" => method_not_allowed("POST"),
        _ => html(StatusCode::NOT_FOUND, not_found_page()),
    }
}

fn stats(origin: &Origin, method: &Method) -> Response<Body> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return method_not_allowed("GET, HEAD");
    }
    let stats = &origin.stats;
    let bookings = origin.lock_bookings().total;
    json_response(
        StatusCode::OK,
        &json!({
            "requests": stats.requests.load(Ordering::Relaxed),
            "connections": stats.connections.load(Ordering::Relaxed),
            "max_concurrency": stats.max_concurrency.load(Ordering::SeqCst),
            "current_concurrency": stats.current_concurrency.load(Ordering::SeqCst),
            "timeouts": stats.timeouts.load(Ordering::Relaxed),
            "slowed": stats.slowed.load(Ordering::Relaxed),
            "bookings": bookings,
        }),
    )
}

/// Describes the request as it arrived, for proxy tests.
async fn echo(request: Request<Incoming>) -> Response<Body> {
    let (parts, mut body) = request.into_parts();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values = parts
            .headers
            .get_all(name)
            .iter()
            .map(|value| Value::from(String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        headers.insert(name.as_str().to_owned(), Value::Array(values));
    }
    // Counted, not stored: a test may send a large body.
    let mut body_length: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    body_length += data.len() as u64;
                }
            }
            Err(error) => {
                debug!(%error, "echo: request body failed");
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "request body failed"}),
                );
            }
        }
    }
    json_response(
        StatusCode::OK,
        &json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": parts.uri.query(),
            "version": format!("{:?}", parts.version),
            "headers": headers,
            "body_length": body_length,
        }),
    )
}

fn slots(origin: &Origin) -> Response<Body> {
    let remaining = origin.remaining();
    let slots: Vec<Value> = SLOTS
        .iter()
        .zip(remaining)
        .map(|((id, label), remaining)| {
            json!({"id": id, "label": label, "capacity": origin.options.slot_capacity, "remaining": remaining})
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "slots": slots }))
}

async fn create_booking(origin: &Origin, request: Request<Incoming>) -> Response<Body> {
    let wants_html = prefers_html(request.headers());
    let outcome = read_and_book(origin, request).await;
    let (status, body, title) = match outcome {
        Ok((booking, replayed)) => {
            let (slot_id, slot_label) = SLOTS[booking.slot];
            let mut response = booking_response(
                wants_html,
                StatusCode::CREATED,
                json!({"booking": booking.id, "name": booking.name, "slot": slot_id, "slot_label": slot_label}),
                "Prenotato! / Booked!",
                &format!(
                    "Prenotazione n. {id} / Booking no. {id}: {slot_label}",
                    id = booking.id
                ),
            );
            if replayed {
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            return response;
        }
        Err(BookingError::BadRequest(reason)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": reason}),
            "Dati mancanti / Missing details",
        ),
        Err(BookingError::TooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "body too large"}),
            "Richiesta troppo grande / Too large",
        ),
        Err(BookingError::UnknownSlot) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "unknown slot"}),
            "Orario sconosciuto / Unknown slot",
        ),
        Err(BookingError::SlotFull) => (
            StatusCode::CONFLICT,
            json!({"error": "slot full"}),
            "Orario esaurito / Slot full",
        ),
    };
    booking_response(wants_html, status, body, title, "")
}

async fn read_and_book(
    origin: &Origin,
    request: Request<Incoming>,
) -> Result<(Booking, bool), BookingError> {
    let key = match request.headers().get("idempotency-key") {
        None => None,
        Some(value) => match value.to_str() {
            Ok(key) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_BYTES => {
                Some(key.to_owned())
            }
            _ => return Err(BookingError::BadRequest("bad Idempotency-Key")),
        },
    };
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim_start().to_ascii_lowercase());
    let body = match Limited::new(request.into_body(), MAX_BOOKING_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(BookingError::TooLarge);
        }
        Err(_) => return Err(BookingError::BadRequest("request body failed")),
    };
    let is_json = match is_json {
        Some(content_type) if content_type.starts_with("application/json") => true,
        Some(content_type) if content_type.starts_with("application/x-www-form-urlencoded") => {
            false
        }
        _ => body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{'),
    };
    let (name, slot) = if is_json {
        json_fields(&body)?
    } else {
        form_fields(&body)
    };
    let name = name.map(|name| name.trim().to_owned()).unwrap_or_default();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(BookingError::BadRequest(
            "name is required (at most 200 characters)",
        ));
    }
    let slot = slot.ok_or(BookingError::BadRequest("slot is required"))?;
    let slot = SLOTS
        .iter()
        .position(|(id, _)| *id == slot)
        .ok_or(BookingError::UnknownSlot)?;
    origin.book(key, name, slot)
}

fn json_fields(body: &[u8]) -> Result<(Option<String>, Option<String>), BookingError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| BookingError::BadRequest("body is not JSON"))?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok((field("name"), field("slot")))
}

fn form_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let (mut name, mut slot) = (None, None);
    for pair in body.split(|byte| *byte == b'&') {
        let mut halves = pair.splitn(2, |byte| *byte == b'=');
        let key = percent_decode(halves.next().unwrap_or_default());
        let value = percent_decode(halves.next().unwrap_or_default());
        match key.as_str() {
            "name" => name = Some(value),
            "slot" => slot = Some(value),
            _ => {}
        }
    }
    (name, slot)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn percent_decode(input: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        match input[index] {
            b'+' => bytes.push(b' '),
            b'%' if index + 2 < input.len() => {
                match (hex_value(input[index + 1]), hex_value(input[index + 2])) {
                    (Some(high), Some(low)) => {
                        bytes.push(high << 4 | low);
                        index += 2;
                    }
                    _ => bytes.push(b'%'),
                }
            }
            byte => bytes.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// A browser submitting the form gets a page; scripts and `curl` get JSON.
fn prefers_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn booking_response(
    wants_html: bool,
    status: StatusCode,
    body: Value,
    title: &str,
    message: &str,
) -> Response<Body> {
    if !wants_html {
        return json_response(status, &body);
    }
    let message = if message.is_empty() {
        body.get("error")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    } else {
        message.to_owned()
    };
    html(
        status,
        page(
            title,
            &format!(
                "<h1>{}</h1>\n<p>{}</p>\n<p><a href=\"/prenota\">Torna alle prenotazioni / Back to booking</a></p>",
                escape(title),
                escape(&message)
            ),
        ),
    )
}

/// What a melting site answers when a request timed out inside it.
fn overloaded() -> Response<Body> {
    let mut response = html(
        StatusCode::SERVICE_UNAVAILABLE,
        page(
            "Servizio non disponibile / Service unavailable",
            "<h1>Servizio non disponibile / Service unavailable</h1><p>Riprova più tardi. / Please try again later.</p>",
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    response
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = html(
        StatusCode::METHOD_NOT_ALLOWED,
        page("405", "<h1>Metodo non ammesso / Method not allowed</h1>"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn home_page() -> String {
    page(
        "Prenotazioni vaccini / Vaccine bookings",
        "<h1>Prenotazioni vaccini<br><span lang=\"en\">Vaccine bookings</span></h1>\n\
         <p>Questo è il sito di prenotazione dimostrativo che anteroom protegge.<br>\
         <span lang=\"en\">This is the demo booking site that anteroom protects.</span></p>\n\
         <p><a class=\"button\" href=\"/prenota\">Prenota / <span lang=\"en\">Book a vaccination</span></a></p>",
    )
}

fn booking_page(remaining: &[u32; SLOTS.len()]) -> String {
    let mut choices = String::new();
    for ((id, label), remaining) in SLOTS.iter().zip(remaining) {
        let disabled = if *remaining == 0 { " disabled" } else { "" };
        choices.push_str(&format!(
            "<label><input type=\"radio\" name=\"slot\" value=\"{}\" required{disabled}> {} ({remaining} liberi / left)</label>\n",
            escape(id),
            escape(label),
        ));
    }
    page(
        "Sei dentro! / You're in!",
        &format!(
            "<h1>Sei dentro!<br><span lang=\"en\">You’re in!</span></h1>\n\
             <p>Scegli un orario e prenota.<br><span lang=\"en\">Choose a time and book.</span></p>\n\
             <form method=\"post\" action=\"/api/bookings\">\n\
             <p><label for=\"name\">Nome / <span lang=\"en\">Name</span></label><br>\
             <input id=\"name\" name=\"name\" required maxlength=\"{MAX_NAME_CHARS}\" autocomplete=\"name\"></p>\n\
             <fieldset><legend>Orario / <span lang=\"en\">Time</span></legend>\n{choices}</fieldset>\n\
             <p><button type=\"submit\">Prenota / <span lang=\"en\">Book</span></button></p>\n\
             </form>\n\
             <form method=\"post\" action=\"/_anteroom/leave?room=demo\"><button>Esci / <span lang=\"en\">Leave (frees your place for the next visitor)</span></button></form>"
        ),
    )
}

fn not_found_page() -> String {
    page(
        "Pagina non trovata / Page not found",
        "<h1>Pagina non trovata<br><span lang=\"en\">Page not found</span></h1>\n<p><a href=\"/\">Home</a></p>",
    )
}

/// The shared page frame: large text, strong contrast, no external requests.
fn page(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"it\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{main}\n</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

const STYLE: &str = "html{font-size:137.5%}body{margin:0;padding:1rem;background:#fff;color:#111;\
font-family:system-ui,sans-serif;line-height:1.5;overflow-wrap:break-word}main{max-width:34rem;margin:0 auto}\
h1{font-size:1.6rem;line-height:1.2}span[lang=en]{color:#444}a{color:#0b3d91;font-weight:700}\
input,button{font:inherit}input[type=radio]{width:1.2em;height:1.2em}label{display:block;margin:.25rem 0}\
fieldset{border:2px solid #0b3d91;border-radius:.5rem}button,.button{display:inline-block;padding:.5rem 1rem;\
background:#0b3d91;color:#fff;border:0;border-radius:.5rem;text-decoration:none}";

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            character => out.push(character),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    struct TestOrigin {
        addr: SocketAddr,
        stop: Option<oneshot::Sender<()>>,
        server: JoinHandle<()>,
    }

    impl TestOrigin {
        async fn start(options: OriginOptions) -> TestOrigin {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
            let addr = listener
                .local_addr()
                .expect("a bound listener has an address");
            let (stop, stopped) = oneshot::channel::<()>();
            let server = tokio::spawn(run(listener, options, async move {
                let _ = stopped.await;
            }));
            TestOrigin {
                addr,
                stop: Some(stop),
                server,
            }
        }

        /// One keep-alive HTTP/1.1 connection.
        async fn connect(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
            let stream = TcpStream::connect(self.addr)
                .await
                .expect("connect to origin");
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(connection);
            sender
        }

        async fn stop(mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            self.server.await.expect("origin task ends cleanly");
        }
    }

    async fn send(
        sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        request: Request<Full<Bytes>>,
    ) -> (StatusCode, HeaderMap, Value) {
        sender.ready().await.expect("connection ready");
        let response = sender.send_request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("response body").to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, value)
    }

    fn get(path: &str) -> Request<Full<Bytes>> {
        Request::get(path)
            .header(header::HOST, "origin")
            .body(Full::default())
            .expect("valid request")
    }

    fn booking(key: &str, content_type: &str, body: &str) -> Request<Full<Bytes>> {
        Request::post("/api/bookings")
            .header(header::HOST, "origin")
            .header("idempotency-key", key)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("valid request")
    }

    #[tokio::test]
    async fn echo_describes_the_request() {
        let origin = TestOrigin::start(OriginOptions::default()).await;
        let mut client = origin.connect().await;
        let request = Request::put("/echo/a/b?x=1&y=%20")
            .header(header::HOST, "origin")
            .header("x-test", "one")
            .header("x-test", "two")
            .body(Full::new(Bytes::from_static(b"hello")))
            .expect("valid request");
        let (status, _, echoed) = send(&mut client, request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(echoed["method"], "PUT");
        assert_eq!(echoed["path"], "/echo/a/b");
        assert_eq!(echoed["query"], "x=1&y=%20");
        assert_eq!(echoed["headers"]["x-test"], json!(["one", "two"]));
        assert_eq!(echoed["headers"]["host"], json!(["origin"]));
        assert_eq!(echoed["body_length"], 5);

        let (status, _, echoed) = send(&mut client, get("/echo")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(echoed["query"], Value::Null);
        assert_eq!(echoed["body_length"], 0);

        let (status, _, stats) = send(&mut client, get("/_stats")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(stats["requests"], 2, "/_stats does not count itself");
        assert_eq!(
            stats["connections"], 1,
            "keep-alive: one connection for all requests"
        );
        origin.stop().await;
    }

    #[tokio::test]
    async fn bookings_are_idempotent_and_never_overbook() {
        let origin = TestOrigin::start(OriginOptions {
            slot_capacity: 2,
            ..OriginOptions::default()
        })
        .await;
        let mut client = origin.connect().await;
        let json_body = r#"{"name":"Maria Rossi","slot":"2021-03-01T09:00"}"#;

        let (status, headers, first) =
            send(&mut client, booking("k1", "application/json", json_body)).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(first["booking"], 1);
        assert_eq!(first["name"], "Maria Rossi");
        assert!(headers.get("idempotent-replayed").is_none());

        let (status, headers, again) =
            send(&mut client, booking("k1", "application/json", json_body)).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(again, first, "same key, same booking");
        assert_eq!(
            headers
                .get("idempotent-replayed")
                .map(HeaderValue::as_bytes),
            Some(&b"true"[..])
        );

        let form = "name=Giuseppe+Verdi%21&slot=2021-03-01T09%3A00";
        let (status, _, second) = send(
            &mut client,
            booking("k2", "application/x-www-form-urlencoded", form),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(second["booking"], 2);
        assert_eq!(second["name"], "Giuseppe Verdi!");

        let (status, _, full) =
            send(&mut client, booking("k3", "application/json", json_body)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{full}");

        let (status, _, missing) = send(
            &mut client,
            booking("k4", "application/json", r#"{"slot":"2021-03-01T09:30"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{missing}");

        let (_, _, slots) = send(&mut client, get("/api/slots")).await;
        assert_eq!(slots["slots"][0]["remaining"], 0);
        assert_eq!(slots["slots"][1]["remaining"], 2);

        let (_, _, stats) = send(&mut client, get("/_stats")).await;
        assert_eq!(stats["bookings"], 2);
        origin.stop().await;
    }

    #[tokio::test]
    async fn pages_and_not_found() {
        let origin = TestOrigin::start(OriginOptions::default()).await;
        let mut client = origin.connect().await;
        for (path, expected) in [
            ("/", StatusCode::OK),
            ("/prenota", StatusCode::OK),
            ("/nowhere", StatusCode::NOT_FOUND),
        ] {
            check_page(&mut client, path, expected).await;
        }
        let request = Request::delete("/prenota")
            .header(header::HOST, "origin")
            .body(Full::default());
        let (status, headers, _) = send(&mut client, request.expect("valid request")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            headers.get(header::ALLOW).map(HeaderValue::as_bytes),
            Some(&b"GET, HEAD"[..])
        );
        origin.stop().await;
    }

    async fn check_page(
        client: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        path: &str,
        expected: StatusCode,
    ) {
        client.ready().await.expect("connection ready");
        let response = client.send_request(get(path)).await.expect("response");
        assert_eq!(response.status(), expected, "{path}");
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(
            content_type,
            Some(HeaderValue::from_static("text/html; charset=utf-8"))
        );
        if path == "/prenota" {
            assert!(body.contains("Sei dentro!"));
            assert!(body.contains("action=\"/api/bookings\""));
            assert!(body.contains("action=\"/_anteroom/leave?room=demo\""));
        }
        if path == "/" {
            assert!(body.contains("href=\"/prenota\""));
        }
    }

    #[test]
    fn the_melt_holds_throughput_then_collapses() {
        let melt = Melt {
            capacity: 10,
            collapse: 20,
            timeout: Duration::from_secs(10),
        };
        assert_eq!(melt.slowdown(1), 1.0);
        assert_eq!(melt.slowdown(10), 1.0);
        assert_eq!(melt.slowdown(15), 1.5);
        assert_eq!(melt.slowdown(20), 2.0);
        assert_eq!(melt.slowdown(40), 16.0);
        // Throughput (requests in flight / time each takes) holds up to the
        // collapse point and falls beyond it.
        let throughput = |n: u64| n as f64 / melt.slowdown(n);
        assert_eq!(throughput(10), throughput(20));
        assert!(throughput(40) < throughput(20) / 2.0);
    }

    #[test]
    fn past_the_collapse_requests_time_out() {
        let melt = Melt {
            capacity: 1,
            collapse: 1,
            timeout: Duration::from_millis(100),
        };
        let service = Duration::from_millis(40);
        assert_eq!(melt.time_taken(service, 1), Some(service));
        // Two at once, past the collapse point: 40 ms × 2 × 4 > 100 ms.
        assert_eq!(melt.time_taken(service, 2), None);
    }

    #[tokio::test]
    async fn a_request_that_times_out_in_the_melt_gets_503() {
        let origin = TestOrigin::start(OriginOptions {
            service_time: Duration::from_secs(3600),
            melt: Some(Melt {
                capacity: 1,
                collapse: 1,
                timeout: Duration::from_millis(20),
            }),
            ..OriginOptions::default()
        })
        .await;
        let mut client = origin.connect().await;
        let (status, headers, _) = send(&mut client, get("/prenota")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(headers.contains_key(header::RETRY_AFTER));
        let (_, _, stats) = send(&mut client, get("/_stats")).await;
        assert_eq!(stats["timeouts"], 1);
        assert_eq!(stats["bookings"], 0);
        origin.server.abort();
    }

    #[tokio::test]
    async fn stats_count_concurrent_requests() {
        // Requests sleep far longer than the test runs, so which of them are in
        // flight does not depend on timing; the test waits on /_stats, which
        // skips the service time.
        let origin = TestOrigin::start(OriginOptions {
            service_time: Duration::from_secs(3600),
            ..OriginOptions::default()
        })
        .await;
        let mut waiting = Vec::new();
        for _ in 0..3 {
            let mut client = origin.connect().await;
            waiting.push(tokio::spawn(async move {
                let _ = client.send_request(get("/echo")).await;
            }));
        }
        let mut stats_client = origin.connect().await;
        let all_in_flight = async {
            loop {
                let (_, _, stats) = send(&mut stats_client, get("/_stats")).await;
                if stats["current_concurrency"] == 3 {
                    break stats;
                }
                tokio::task::yield_now().await;
            }
        };
        // Only a guard against hanging if counting breaks; not a timing assertion.
        let stats = tokio::time::timeout(Duration::from_secs(30), all_in_flight)
            .await
            .expect("three requests in flight");
        assert_eq!(stats["max_concurrency"], 3);
        assert_eq!(stats["requests"], 3);
        assert_eq!(stats["connections"], 4);
        for request in waiting {
            request.abort();
        }
        origin.server.abort();
    }

    #[test]
    fn form_decoding() {
        assert_eq!(percent_decode(b"a+b%20c%2"), "a b c%2");
        assert_eq!(percent_decode(b"%C3%A0%zz%"), "à%zz%");
        assert_eq!(
            form_fields(b"slot=x&name=&other=1"),
            (Some(String::new()), Some("x".to_owned()))
        );
    }
}
