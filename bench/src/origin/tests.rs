//! The site over real connections: what each route answers, bookings,
//! the melt's timeout, a site losing capacity and getting it back, and the
//! load figures.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Degradation, Melt, OriginOptions, run};

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

    let (status, _, full) = send(&mut client, booking("k3", "application/json", json_body)).await;
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

/// On a paused clock, so the request is held for the whole timeout (20 s
/// of the test's time, none of the machine's) and answered when it strikes.
/// The timeout stays below hyper's 30 s header read timeout, which runs on
/// the same clock.
#[tokio::test(start_paused = true)]
async fn a_request_that_times_out_in_the_melt_gets_503() {
    let timeout = Duration::from_secs(20);
    let origin = TestOrigin::start(OriginOptions {
        service_time: Duration::from_secs(3600),
        melt: Some(Melt {
            capacity: 1,
            collapse: 1,
            timeout,
        }),
        ..OriginOptions::default()
    })
    .await;
    let mut client = origin.connect().await;
    let sent = tokio::time::Instant::now();
    let (status, headers, _) = send(&mut client, get("/prenota")).await;
    assert!(
        sent.elapsed() >= timeout,
        "answered after {:?}, before the timeout struck",
        sent.elapsed()
    );
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

/// On a paused clock: the site serves 4 requests at once well, 2 from 1000 s
/// after it starts, 4 again from 2000 s. Each request takes 100 s of the
/// test's time, so four sent together are all in flight at once (the clock
/// only moves when every task waits), and the site counts as `slowed` those
/// it could not serve well: none before the change, two during it, none
/// after the recovery.
#[tokio::test(start_paused = true)]
async fn a_degraded_site_serves_fewer_at_once_until_it_recovers() {
    let origin = TestOrigin::start(OriginOptions {
        service_time: Duration::from_secs(100),
        melt: Some(Melt {
            capacity: 4,
            collapse: 8,
            timeout: Duration::from_secs(100_000),
        }),
        degradation: Some(Degradation {
            at: Duration::from_secs(1000),
            capacity: 2,
            recover_at: Some(Duration::from_secs(2000)),
        }),
        ..OriginOptions::default()
    })
    .await;
    let started = tokio::time::Instant::now();

    let before = four_at_once(&origin).await;
    assert_eq!(before["capacity"], 4);
    assert_eq!(
        before["max_concurrency"], 4,
        "the four were in flight at once"
    );
    assert_eq!(before["slowed"], 0, "4 at once: all served well");

    tokio::time::sleep_until(started + Duration::from_secs(1001)).await;
    let degraded = four_at_once(&origin).await;
    assert_eq!(degraded["capacity"], 2);
    assert_eq!(
        degraded["slowed"], 2,
        "after degrade-at: 2 of the 4 served well, 2 slowed"
    );

    tokio::time::sleep_until(started + Duration::from_secs(2001)).await;
    let recovered = four_at_once(&origin).await;
    assert_eq!(recovered["capacity"], 4);
    assert_eq!(
        recovered["slowed"], 2,
        "after recover-at: all 4 served well"
    );
    assert_eq!(recovered["timeouts"], 0);
    assert_eq!(
        recovered["capacity_timeline"],
        json!([
            {"at_seconds": 0.0, "capacity": 4},
            {"at_seconds": 1000.0, "capacity": 2},
            {"at_seconds": 2000.0, "capacity": 4},
        ])
    );
    assert!(recovered["uptime_seconds"].as_f64() >= Some(2001.0));
    origin.stop().await;
}

/// Four requests at once, each on a connection of its own; the site's
/// `/_stats` once they are all answered.
async fn four_at_once(origin: &TestOrigin) -> Value {
    let mut answered = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let mut client = origin.connect().await;
        answered.spawn(async move { send(&mut client, get("/prenota")).await.0 });
    }
    while let Some(status) = answered.join_next().await {
        assert_eq!(status.expect("request task"), StatusCode::OK);
    }
    let mut client = origin.connect().await;
    send(&mut client, get("/_stats")).await.2
}
