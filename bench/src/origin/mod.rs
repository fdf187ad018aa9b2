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
//!
//! With a [`Degradation`] its capacity changes during the run (see
//! [`CapacityPlan`]): from `at` after it starts it serves fewer requests well
//! (its collapse point scaled with them), and from `recover_at` as many as
//! before. `/_stats` shows the capacity now and each change so far.
//!
//! The module by concern: this file is the site's front (options, the
//! accept loop, routing, `/echo`, the answer helpers); `melt` the slowdown
//! model; `degrade` the capacity over time; `stats` the load figures of
//! `/_stats`; `bookings` the slots and the booking API; `form` form
//! decoding; `pages` the HTML.

mod bookings;
mod degrade;
mod form;
mod melt;
mod pages;
mod stats;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

pub use degrade::{CapacityChange, CapacityPlan, Degradation, DegradeArgs, DegradeError};
pub use melt::Melt;

use bookings::Bookings;
use stats::{InFlight, Stats};

/// How the demo site behaves.
#[derive(Debug, Clone)]
pub struct OriginOptions {
    /// Simulated service time, slept once per request.
    pub service_time: Duration,
    /// Bookings each slot takes before answering `409`.
    pub slot_capacity: u32,
    /// How the site degrades under load; `None` never does.
    pub melt: Option<Melt>,
    /// How its capacity changes during the run; only with a `melt`.
    pub degradation: Option<Degradation>,
}

impl Default for OriginOptions {
    fn default() -> Self {
        OriginOptions {
            service_time: Duration::ZERO,
            slot_capacity: 100,
            melt: None,
            degradation: None,
        }
    }
}

/// The site serving in this process, until [`Running::stop`] (or until it
/// is dropped, which stops it too).
pub struct Running {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: Task,
}

/// Where the site runs: a task of the caller's runtime, or a thread of its
/// own that says when it has stopped.
enum Task {
    Shared(JoinHandle<()>),
    Own(oneshot::Receiver<()>),
}

impl Running {
    /// Stops taking connections and waits for open requests to finish (for
    /// up to [`SHUTDOWN_GRACE`]).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.task {
            Task::Shared(task) => {
                let _ = task.await;
            }
            Task::Own(stopped) => {
                let _ = stopped.await;
            }
        }
    }
}

/// Serves the site on a free port of 127.0.0.1 on a thread of its own, with
/// a runtime of its own: a site is another machine, and one sharing the
/// caller's runtime waits in the same task queues as the caller, so that a
/// busy caller (a gateway with a crowd polling it) makes the site look
/// slower to it than the site is. On a machine short of cores the site's
/// thread still shares the CPU; it no longer queues behind the caller's
/// tasks, and with [`SiteThread::Ahead`] it no longer waits for the CPU
/// behind them either.
pub fn start_on_own_thread(options: OriginOptions, thread: SiteThread) -> std::io::Result<Running> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (done, finished) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("anteroom-bench-site".to_owned())
        .spawn(move || {
            if thread == SiteThread::Ahead {
                put_this_thread_ahead();
            }
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => {
                        run(listener, options, async {
                            let _ = stopped.await;
                        })
                        .await;
                    }
                    Err(error) => warn!(%error, "the site cannot listen"),
                }
            });
            let _ = done.send(());
        })?;
    Ok(Running {
        addr,
        stop,
        task: Task::Own(finished),
    })
}

/// How the site's own thread is scheduled against the rest of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteThread {
    /// At the process's priority: on a machine with fewer cores than busy
    /// threads, the crowd's and the gateway's work delays the site's answers.
    Shared,
    /// Ahead of the others ([`SITE_NICE`]), as a site on machines of its own
    /// would be: the site's answers are timed by the site, not by how busy
    /// the rehearsal keeps the CPU.
    Ahead,
}

/// The site thread's nice value with [`SiteThread::Ahead`]: under Linux's
/// scheduler a thread at −10 weighs about nine times one at 0, so it gets
/// the CPU whenever it wakes, while a site that mostly waits (its service
/// time is a sleep) leaves the rest to the others.
pub const SITE_NICE: i32 = -10;

/// Gives the calling thread [`SITE_NICE`] (Linux's nice value is per
/// thread). Needs root or `CAP_SYS_NICE`; without it, says so and runs on
/// at the process's priority.
fn put_this_thread_ahead() {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), SITE_NICE) {
        warn!(
            %error,
            "the site's thread cannot run ahead of the crowd (nice {SITE_NICE} needs root or \
             CAP_SYS_NICE): its latencies will include waits for the CPU"
        );
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
    Ok(Running {
        addr,
        stop,
        task: Task::Shared(task),
    })
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

type Body = Full<Bytes>;

/// What every request shares.
struct Origin {
    options: OriginOptions,
    /// What the site serves well over time; `None`: it never melts.
    capacity: Option<CapacityPlan>,
    /// When the site started: its capacity changes count from here. The
    /// runtime's clock, so tests on a paused clock drive it.
    started: Instant,
    stats: Stats,
    bookings: Bookings,
}

impl Origin {
    fn new(options: OriginOptions) -> Origin {
        Origin {
            bookings: Bookings::new(options.slot_capacity),
            capacity: options.melt.map(|melt| CapacityPlan {
                melt,
                degradation: options.degradation,
            }),
            started: Instant::now(),
            options,
            stats: Stats::default(),
        }
    }

    /// How the site melts now.
    fn melt_now(&self) -> Option<Melt> {
        let since_start = self.started.elapsed();
        self.capacity.map(|plan| plan.melt_at(since_start))
    }
}

async fn handle(
    origin: Arc<Origin>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if request.uri().path() == "/_stats" {
        return Ok(stats::answer(
            &origin.stats,
            origin.bookings.total(),
            origin.started.elapsed(),
            origin.capacity.as_ref(),
            request.method(),
        ));
    }
    origin.stats.requests.fetch_add(1, Ordering::Relaxed);
    let in_flight = InFlight::enter(&origin.stats);
    let service_time = origin.options.service_time;
    if let Some(melt) = origin.melt_now() {
        let Some(took) = melt.time_taken(service_time, in_flight.at_start) else {
            // The request holds its thread until the timeout strikes.
            tokio::time::sleep(melt.timeout).await;
            origin.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            return Ok(pages::overloaded());
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
        "/" if is_read => html(StatusCode::OK, pages::home_page()),
        "/prenota" if is_read => html(
            StatusCode::OK,
            pages::booking_page(&origin.bookings.remaining()),
        ),
        "/api/slots" if is_read => bookings::slots(&origin.bookings),
        "/api/bookings" if request.method() == Method::POST => {
            bookings::create_booking(&origin.bookings, request).await
        }
        "/" | "/prenota" | "/api/slots" => method_not_allowed("GET, HEAD"),
        "/api/bookings" => method_not_allowed("POST"),
        _ => html(StatusCode::NOT_FOUND, pages::not_found_page()),
    }
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

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = html(
        StatusCode::METHOD_NOT_ALLOWED,
        pages::page("405", "<h1>Metodo non ammesso / Method not allowed</h1>"),
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
