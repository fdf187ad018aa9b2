//! What one client can take from everyone, against a running gateway: places
//! at the site held by dawdling request bodies, the site's places taken by
//! one client's requests, connections, and the memory of unfinished booking
//! bodies. Each test is one class of attack with the bound that stops it;
//! `hostile_load.rs` runs them together against an honest visitor.
//!
//! Clients are told apart by their source address (127.x.y.z), as the
//! gateway tells them apart.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anteroom_bench::origin::OriginOptions;
use anteroom_tests::{
    Buffer, GatewayHandle, client_from, connect_from, cookie_value, eventually, gateway, loopback,
    loose_limits, plain_client, reached_origin, room, upstream, upstream_with,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds each wait for an answer; the tests assert what arrives, not when.
const PATIENCE: Duration = Duration::from_secs(30);

/// Sends a request head that promises `declared` bytes of body, and
/// `sent` of them.
async fn dawdle(
    gateway: SocketAddr,
    source: IpAddr,
    target: &str,
    extra_headers: &str,
    declared: usize,
    sent: usize,
) -> TcpStream {
    let mut stream = connect_from(gateway, source).await.expect("connect");
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: gateway.test\r\nContent-Type: application/json\r\n\
         {extra_headers}Content-Length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&vec![b'x'; sent])
        .await
        .expect("part of the body");
    stream
}

/// The status line of the answer on `stream`, read within [`PATIENCE`].
async fn status_line(stream: &mut TcpStream) -> String {
    let mut read = Vec::new();
    let mut buffer = [0u8; 4096];
    let outcome = tokio::time::timeout(PATIENCE, async {
        while !read.windows(2).any(|pair| pair == b"\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "no answer within {PATIENCE:?}");
    let text = String::from_utf8_lossy(&read);
    text.lines().next().unwrap_or_default().to_owned()
}

async fn metric(gateway: &GatewayHandle, name: &str) -> f64 {
    let text = plain_client()
        .get(gateway.admin_url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Eight requests that send one byte of a 100 kB body each, against two
/// places at the site: they hold none of them, an honest request and an
/// admitted visitor go straight through, and the dawdlers get `408`
/// without the site ever seeing them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dawdling_body_holds_no_place_at_the_site() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(10))
        .limits(
            loose_limits()
                .max_in_flight_upstream(2)
                .upstream_queue_ms(300)
                .body_read_timeout_seconds(1),
        )
        .start()
        .await;
    let admitted = gw.visitor();
    assert!(reached_origin(admitted.get("/echo/vaccini").await).await);
    let served_before = up.requests_served().await;

    let mut dawdlers = Vec::new();
    for index in 0..8 {
        dawdlers.push(dawdle(gw.addr, loopback(3, 0, index), "/echo/slow", "", 100_000, 1).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        plain_client()
            .get(gw.url("/echo/honest"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "a place at the site is free for an honest request"
    );
    assert!(
        reached_origin(admitted.get("/echo/vaccini/page").await).await,
        "and for an admitted visitor"
    );
    for stream in &mut dawdlers {
        let line = status_line(stream).await;
        assert!(line.starts_with("HTTP/1.1 408"), "{line}");
    }
    assert_eq!(
        up.requests_served().await,
        served_before + 2,
        "the dawdlers never reached the site"
    );
}

/// A body larger than what is read ahead streams on to the site whole when
/// it comes at a fair pace; one that stops half-way is cut off, and the
/// place it held at the site is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_streams_on_and_one_that_stops_gives_its_place_back() {
    let up = upstream().await;
    let gw = gateway(&up)
        .limits(
            loose_limits()
                .max_in_flight_upstream(1)
                .upstream_queue_ms(300)
                .body_read_timeout_seconds(1),
        )
        .start()
        .await;
    let body = vec![b'y'; 300_000];
    let response = plain_client()
        .post(gw.url("/echo/upload"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed: serde_json::Value = response.json().await.unwrap();
    assert_eq!(echoed["body_length"], 300_000, "{echoed}");

    // 200 kB of a promised 300 kB, then silence: past the read-ahead, so it
    // holds the only place at the site until it is cut off.
    let mut stalled = dawdle(
        gw.addr,
        loopback(3, 1, 1),
        "/echo/stalled",
        "",
        300_000,
        200_000,
    )
    .await;
    let line = status_line(&mut stalled).await;
    assert!(
        line.starts_with("HTTP/1.1 408") || line.is_empty(),
        "cut off: {line:?}"
    );
    assert_eq!(
        plain_client()
            .get(gw.url("/echo/after"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the place is free again"
    );
}

/// One client (one address) holds at most its share of the site's places;
/// another client is not kept waiting by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holds_at_most_its_share_of_the_sites_places() {
    let up = upstream_with(OriginOptions {
        service_time: Duration::from_millis(1500),
        ..OriginOptions::default()
    })
    .await;
    let gw = gateway(&up)
        .limits(
            loose_limits()
                .max_in_flight_upstream(8)
                .max_in_flight_upstream_per_client(2),
        )
        .start()
        .await;
    let greedy = client_from(loopback(4, 0, 1));
    let requests: Vec<_> = (0..3)
        .map(|index| {
            let request = greedy.get(gw.url(&format!("/echo/{index}"))).send();
            tokio::spawn(async move {
                let response = request.await.unwrap();
                (
                    response.status().as_u16(),
                    response.headers().contains_key("retry-after"),
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = client_from(loopback(4, 0, 2));
    assert_eq!(
        other
            .get(gw.url("/echo/other"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    answers.sort_unstable();
    assert_eq!(answers, [(200, false), (200, false), (429, true)]);
}

/// One address cannot fill `max_connections` with silent connections: past
/// its share a new connection gets `429` and is closed, while other
/// clients, and a trusted proxy carrying many clients, are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_fill_the_connections() {
    let up = upstream().await;
    let proxy = loopback(5, 9, 9);
    let gw = gateway(&up)
        .limits(
            loose_limits()
                .max_connections(50)
                .max_connections_per_client(3)
                .trusted_proxies(&[format!("{proxy}/32").as_str()]),
        )
        .start()
        .await;
    let greedy = loopback(5, 0, 1);
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(connect_from(gw.addr, greedy).await.expect("connect"));
    }
    let mut fourth = connect_from(gw.addr, greedy).await.expect("connect");
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, fourth.read_to_string(&mut answer))
        .await
        .expect("the gateway answers and closes")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");

    let other = client_from(loopback(5, 0, 2));
    assert_eq!(
        other.get(gw.url("/echo/o")).send().await.unwrap().status(),
        200
    );
    // A trusted proxy's connections are many clients': not counted per
    // client.
    let mut through_proxy = Vec::new();
    for _ in 0..5 {
        through_proxy.push(connect_from(gw.addr, proxy).await.expect("connect"));
    }
    let via_proxy = client_from(proxy);
    assert_eq!(
        via_proxy
            .get(gw.url("/echo/p"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    drop(silent);
    eventually(
        "the address is served again once its connections close",
        || {
            let client = client_from(greedy);
            let url = gw.url("/echo/again");
            async move {
                client
                    .get(url)
                    .send()
                    .await
                    .is_ok_and(|response| response.status() == 200)
            }
        },
    )
    .await;
    drop(through_proxy);
}

/// Booking bodies are read whole before they are stored. One that stops
/// half-way is cut off with `408` and its memory given back; while such
/// bodies arrive, one address holds at most its share of the memory
/// (`429`), and all of them together at most `max_unfinished_body_bytes`
/// (`503`): an honest booking goes through once they are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_booking_bodies_are_cut_off_and_bounded_in_memory() {
    let up = upstream_with(OriginOptions {
        slot_capacity: 1_000_000,
        ..OriginOptions::default()
    })
    .await;
    let gw = gateway(&up)
        .room(room("vaccini").paths(&["/api/"]).capacity(10))
        .buffer(Buffer::new("bookings", "vaccini", "/api/bookings", 1000))
        .limits(
            loose_limits()
                .max_body_bytes(256 * 1024)
                // A client's share: a sixteenth, but at least one body.
                .max_unfinished_body_bytes(1024 * 1024)
                .body_read_timeout_seconds(2),
        )
        .start()
        .await;
    let visitor = gw.visitor();
    let response = visitor.get("/api/slots").await;
    let pass = cookie_value(&response, "anteroom_pass_vaccini").expect("admitted, with a pass");
    let cookie = format!("Cookie: anteroom_pass_vaccini={pass}\r\n");

    // Three addresses each send 200 kB of a 256 kB body, and stop. A
    // declared length is held whole: 768 KiB of 1 MiB.
    let mut held = Vec::new();
    for index in 0..3 {
        held.push(
            dawdle(
                gw.addr,
                loopback(6, 0, index),
                "/api/bookings",
                &cookie,
                262_144,
                200_000,
            )
            .await,
        );
    }
    eventually("the gateway holds what arrived", || async {
        metric(&gw, "anteroom_unfinished_body_bytes").await >= 786_432.0
    })
    .await;
    // The same address again: over its share.
    let mut second = dawdle(
        gw.addr,
        loopback(6, 0, 0),
        "/api/bookings",
        &cookie,
        262_144,
        200_000,
    )
    .await;
    let line = status_line(&mut second).await;
    assert!(
        line.starts_with("HTTP/1.1 429"),
        "over the client's share: {line}"
    );
    // A fourth address takes the last 256 KiB, and a fifth finds none.
    held.push(
        dawdle(
            gw.addr,
            loopback(6, 0, 3),
            "/api/bookings",
            &cookie,
            262_144,
            200_000,
        )
        .await,
    );
    eventually("the gateway holds all it may", || async {
        metric(&gw, "anteroom_unfinished_body_bytes").await >= 1_048_576.0
    })
    .await;
    let mut fifth = dawdle(
        gw.addr,
        loopback(6, 0, 9),
        "/api/bookings",
        &cookie,
        262_144,
        250_000,
    )
    .await;
    let line = status_line(&mut fifth).await;
    assert!(line.starts_with("HTTP/1.1 503"), "over the budget: {line}");

    for stream in &mut held {
        let line = status_line(stream).await;
        assert!(line.starts_with("HTTP/1.1 408"), "cut off: {line}");
    }
    eventually("the memory is given back", || async {
        metric(&gw, "anteroom_unfinished_body_bytes").await == 0.0
    })
    .await;
    let booked = visitor
        .client
        .post(visitor.url("/api/bookings"))
        .header("content-type", "application/json")
        .body(r#"{"name":"Ada","slot":"2021-03-01T09:00"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(booked.status(), 202, "an honest booking goes through");
}
