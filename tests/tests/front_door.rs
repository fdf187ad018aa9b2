//! The front door's limits against a running gateway: per-client rate limits
//! with `Retry-After`, the ticket limit, trusted proxies, and the bounds on
//! connections, headers, bodies and requests in flight upstream. The limits'
//! arithmetic is tested on a fake clock in `gateway/src/limits.rs`; here each
//! limit is shown to be wired in, with one real request too many.

use std::time::Duration;

use anteroom_bench::origin::OriginOptions;
use anteroom_tests::{
    Limits, cookie_value, eventually, gateway, loose_limits, plain_client, reached_origin, room,
    upstream, upstream_with,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_client_over_its_limit_gets_429_with_retry_after_and_touches_nothing() {
    let up = upstream().await;
    // One request per minute sustained: the burst of 3 is all there is.
    let gw = gateway(&up)
        .limits(Limits::default().per_ip_per_second(1).per_ip_burst(3))
        .start()
        .await;
    let client = plain_client();
    for _ in 0..3 {
        assert_eq!(
            client.get(gw.url("/echo/a")).send().await.unwrap().status(),
            200
        );
    }
    let seen = up.requests_served().await;
    let limited = client.get(gw.url("/echo/a")).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert!(
        limited.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let json = client
        .get(gw.url("/echo/a"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 429);
    let body: serde_json::Value = json.json().await.unwrap();
    assert!(body["retry_after_seconds"].as_u64().is_some());
    assert_eq!(
        up.requests_served().await,
        seen,
        "rejected requests never reach the origin"
    );
}

#[tokio::test]
async fn one_client_cannot_hoard_places_in_the_queue() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .limits(
            Limits::default()
                .per_ip_per_second(1000)
                .per_ip_burst(1000)
                .tickets_per_ip_per_minute(3),
        )
        .start()
        .await;
    // The first place is straight in; two more are tickets; the fourth is refused.
    let places: Vec<_> = (0..3).map(|_| gw.visitor()).collect();
    assert!(reached_origin(places[0].get("/echo/vaccini").await).await);
    for visitor in &places[1..] {
        assert_eq!(visitor.get("/echo/vaccini").await.status(), 200);
    }
    let hoarder = gw.visitor();
    let refused = hoarder.get("/echo/vaccini").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(
        refused.headers().get("set-cookie").is_none(),
        "no ticket was handed out"
    );
    // A browser still sees the waiting page (place not yet known), which
    // retries by itself: never an error page.
    let page = refused.text().await.unwrap();
    assert!(page.contains("<html"), "{page}");
    let json = hoarder.get_json("/echo/vaccini").await;
    assert_eq!(json.status(), 429);
    assert!(json.json::<serde_json::Value>().await.unwrap()["retry_after_seconds"].is_u64());
    assert_eq!(hoarder.status("vaccini").await["state"], "none");
    // Those who hold places keep them.
    assert_eq!(places[1].status("vaccini").await["position"], 1);
    assert_eq!(places[2].status("vaccini").await["position"], 2);
}

#[tokio::test]
async fn waiting_visitors_polling_are_never_rate_limited() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .limits(Limits::default().per_ip_per_second(1).per_ip_burst(2))
        .start()
        .await;
    assert!(reached_origin(gw.visitor().get("/echo/vaccini").await).await);
    let waiting = gw.visitor();
    assert_eq!(waiting.get("/echo/vaccini").await.status(), 200);
    // Far faster than the refresh interval, from an address already over its
    // limit: a place holder's polls still get answers.
    for _ in 0..30 {
        assert_eq!(waiting.status("vaccini").await["state"], "waiting");
    }
    // Without a place, the same polls are limited.
    let stranger = plain_client();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = stranger
            .get(gw.url("/_anteroom/status?room=vaccini"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn forwarded_for_keys_clients_only_behind_trusted_proxies() {
    let up = upstream().await;
    let limits = Limits::default().per_ip_per_second(1).per_ip_burst(2);
    let behind_proxy = gateway(&up)
        .limits(limits.clone().trusted_proxies(&["127.0.0.1"]))
        .start()
        .await;
    let client = plain_client();
    let get = |gw: &anteroom_tests::GatewayHandle, forwarded: &str| {
        client
            .get(gw.url("/echo/x"))
            .header("x-forwarded-for", forwarded.to_owned())
            .send()
    };
    // Behind a trusted proxy: each forwarded client has its own limit.
    for _ in 0..2 {
        assert_eq!(
            get(&behind_proxy, "203.0.113.1").await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        get(&behind_proxy, "203.0.113.1").await.unwrap().status(),
        429
    );
    assert_eq!(
        get(&behind_proxy, "203.0.113.2").await.unwrap().status(),
        200
    );

    // Without trusted proxies, a client cannot escape its limit by
    // inventing X-Forwarded-For addresses.
    let direct = gateway(&up).limits(limits).start().await;
    let mut statuses = Vec::new();
    for index in 0..4 {
        statuses.push(
            get(&direct, &format!("198.51.100.{index}"))
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_never_reach_the_origin_whole() {
    let up = upstream().await;
    let gw = gateway(&up)
        .limits(loose_limits().max_body_bytes(1024))
        .start()
        .await;
    let client = plain_client();
    let fits = client
        .post(gw.url("/echo/b"))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(fits.status(), 200);
    let seen = up.requests_served().await;
    let declared = client
        .post(gw.url("/echo/b"))
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    assert_eq!(
        up.requests_served().await,
        seen,
        "a declared oversize body is refused up front"
    );
    // Chunked, so the size is only known while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..8).map(|_| Ok(vec![b'y'; 512])).collect();
    let streamed = client
        .post(gw.url("/echo/b"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);
}

#[tokio::test]
async fn headers_over_the_limit_get_431() {
    let up = upstream().await;
    let gw = gateway(&up)
        .limits(loose_limits().max_header_bytes(8192))
        .start()
        .await;
    let client = plain_client();
    let small = client
        .get(gw.url("/echo/h"))
        .header("x-pad", "p".repeat(4000))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    let big = client
        .get(gw.url("/echo/h"))
        .header("x-pad", "p".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 431);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_max_in_flight_upstream_get_503_with_retry_after() {
    let up = upstream_with(OriginOptions {
        service_time: Duration::from_millis(1500),
        ..OriginOptions::default()
    })
    .await;
    let gw = gateway(&up)
        .limits(
            loose_limits()
                .max_in_flight_upstream(1)
                .upstream_queue_ms(0),
        )
        .start()
        .await;
    let slow_url = gw.url("/echo/slow");
    let slow = tokio::spawn(async move { reqwest::get(slow_url).await.unwrap().status() });
    eventually("the slow request is at the origin", || async {
        up.stats().await["current_concurrency"].as_u64() >= Some(1)
    })
    .await;
    let shed = plain_client()
        .get(gw.url("/echo/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_eq!(
        slow.await.unwrap(),
        200,
        "the request in flight is unaffected"
    );
    // With the slot free again, requests pass.
    assert_eq!(
        plain_client()
            .get(gw.url("/echo/other"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Over `max_in_flight_upstream`, requests wait their turn (first come
/// first served) for up to `upstream_queue_ms` instead of being shed: the
/// site never sees more than its limit, and nobody gets an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_max_in_flight_upstream_wait_for_a_free_place() {
    let up = upstream_with(OriginOptions {
        service_time: Duration::from_millis(300),
        ..OriginOptions::default()
    })
    .await;
    let gw = gateway(&up)
        .limits(
            loose_limits()
                .max_in_flight_upstream(2)
                .upstream_queue_ms(60_000),
        )
        .start()
        .await;
    let requests: Vec<_> = (0..6)
        .map(|i| {
            let url = gw.url(&format!("/echo/{i}"));
            tokio::spawn(async move { plain_client().get(url).send().await.unwrap().status() })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    let stats = up.stats().await;
    assert_eq!(stats["max_concurrency"], 2, "{stats}");
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503_and_are_closed() {
    let up = upstream().await;
    let gw = gateway(&up)
        .limits(loose_limits().max_connections(2))
        .start()
        .await;
    let _first = TcpStream::connect(gw.addr).await.unwrap();
    let _second = TcpStream::connect(gw.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(gw.addr).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), third.read_to_string(&mut answer))
        .await
        .expect("the gateway answers and closes")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"));
    drop(_first);
    drop(_second);
    eventually("new connections are served once those close", || async {
        plain_client()
            .get(gw.url("/echo/c"))
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
    })
    .await;
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off() {
    let up = upstream().await;
    let gw = gateway(&up)
        .limits(loose_limits().header_read_timeout_seconds(1))
        .start()
        .await;
    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /echo/s HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // Never finish the headers: the gateway closes the connection.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection is closed, not held open");
    // A connection that never sends a byte, or only the start of an HTTP/2
    // preface, is closed too: it must not hold a connection slot.
    for opening in [&b""[..], &b"PRI * HTTP/2.0\r\n"[..]] {
        let mut silent = TcpStream::connect(gw.addr).await.unwrap();
        silent.write_all(opening).await.unwrap();
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "{opening:?}: closed, not held open");
    }
}

/// Only polls the cached figures can answer are exempt from the limit: a
/// spent ticket (its turn came and went) would cost a store round trip per
/// poll, so its polls are limited like any request.
#[tokio::test]
async fn a_spent_tickets_polls_are_rate_limited() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .limits(Limits::default().per_ip_per_second(1).per_ip_burst(6))
        .start()
        .await;
    let first = gw.visitor();
    assert!(reached_origin(first.get("/echo/vaccini").await).await);
    // A second visitor takes a ticket; we keep a copy of it.
    let response = plain_client()
        .get(gw.url("/echo/vaccini"))
        .send()
        .await
        .unwrap();
    let ticket = format!(
        "anteroom_ticket_vaccini={}",
        cookie_value(&response, "anteroom_ticket_vaccini").expect("a ticket")
    );
    first.leave("vaccini").await;
    gw.settle().await;
    let poll = || {
        plain_client()
            .get(gw.url("/_anteroom/status?room=vaccini"))
            .header("cookie", ticket.clone())
            .send()
    };
    // The turn has come: the first poll swaps the ticket for a pass...
    assert_eq!(
        poll()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()["state"],
        "admitted"
    );
    // ...and replaying the spent ticket soon meets the limit.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(poll().await.unwrap().status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// A client that stops reading a large answer loses the connection after
/// `send_timeout_seconds`, and with it the upstream request it held: slow
/// readers cannot pin `max_in_flight_upstream`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_cannot_hold_an_upstream_slot() {
    use tokio::io::AsyncBufReadExt;
    // An upstream that answers `/big` with 64 MiB and anything else with "ok".
    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site_addr = site.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((connection, _)) = site.accept().await {
            tokio::spawn(async move {
                let mut connection = tokio::io::BufReader::new(connection);
                let mut request_line = String::new();
                if connection.read_line(&mut request_line).await.is_err() {
                    return;
                }
                let mut line = String::new();
                while connection.read_line(&mut line).await.is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let stream = connection.get_mut();
                if request_line.contains("/big") {
                    let size = 64 * 1024 * 1024;
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
                    let _ = stream.write_all(head.as_bytes()).await;
                    let chunk = vec![b'x'; 1024 * 1024];
                    for _ in 0..64 {
                        if stream.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                } else {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await;
                }
            });
        }
    });
    let gw = anteroom_tests::gateway_to(&format!("http://{site_addr}"))
        .limits(
            loose_limits()
                .max_in_flight_upstream(1)
                .upstream_queue_ms(0)
                .send_timeout_seconds(1),
        )
        .start()
        .await;
    // Ask for the big answer and never read it.
    let mut stalled = TcpStream::connect(gw.addr).await.unwrap();
    stalled
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        plain_client()
            .get(gw.url("/small"))
            .send()
            .await
            .unwrap()
            .status(),
        503,
        "the stalled answer holds the only upstream slot"
    );
    eventually(
        "the send timeout releases the stalled client's slot",
        || async {
            plain_client()
                .get(gw.url("/small"))
                .send()
                .await
                .unwrap()
                .status()
                == 200
        },
    )
    .await;
    drop(stalled);
}
