//! The proxy, end to end: what reaches the upstream site (and what never
//! does), streaming both ways, upstream failures, the gateway's own paths,
//! and the guarantee that nobody without a pass gets past a room however the
//! path is spelled.
//!
//! The origin's `/echo` reports what reached it; its `/_stats`, read directly
//! (not through the gateway), counts the requests it served. Where a test
//! must control the exact bytes on the wire (request lines reqwest would
//! normalise, hop-by-hop headers, chunked bodies) it speaks raw HTTP/1.1 over
//! a TCP stream. Where the origin cannot misbehave as needed (hang, send a
//! huge response in parts) a hand-made upstream stands in.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anteroom_gateway::page::{Pages, PassHeld, Reader};
use anteroom_tests::{
    GatewayHandle, Upstream, cookie_value, free_port, gateway, gateway_to, header, loose_limits,
    plain_client, room, upstream,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Only a guard against a test hanging when streaming breaks; never a
/// measure of speed.
const HANG_GUARD: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- helpers

/// Connections the origin has accepted so far, asked over `client`'s own
/// kept-alive connection (so that asking twice counts one connection, not
/// two, as `Upstream::stats` with a fresh client would).
async fn origin_connections(client: &reqwest::Client, up: &Upstream) -> u64 {
    let stats: Value = client
        .get(format!("{}/_stats", up.url()))
        .send()
        .await
        .expect("origin stats")
        .json()
        .await
        .expect("origin stats JSON");
    stats["connections"]
        .as_u64()
        .expect("connections is a number")
}

/// Fills a capacity-1 room: a visitor who is inside and stays.
async fn fill_room(gw: &GatewayHandle, path: &str) -> anteroom_tests::Visitor {
    let inside = gw.visitor();
    let response = inside.get(path).await;
    assert!(
        anteroom_tests::reached_origin(response).await,
        "the first visitor of an empty room goes straight in"
    );
    inside
}

/// A response read off a raw connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    /// Names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }

    /// The origin's `/echo` answer (JSON with a `method`), not a page of the
    /// gateway's.
    fn is_origin_echo(&self) -> bool {
        self.status == 200
            && serde_json::from_slice::<Value>(&self.body)
                .is_ok_and(|body| body.get("method").is_some())
    }

    /// The gateway's waiting page for `room`.
    fn is_waiting_page(&self, room: &str) -> bool {
        self.status == 200
            && self
                .header("content-type")
                .is_some_and(|value| value.starts_with("text/html"))
            && self.header("cache-control") == Some("no-store")
            && self.header("retry-after").is_some()
            && self.text().contains(&format!(
                "data-status-url=\"/_anteroom/status?room={room}\""
            ))
    }
}

/// Reads the head of an HTTP/1.1 message: the start line and the header
/// lines, without the blank line that ends them.
async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let read = reader
            .read_until(b'\n', &mut line)
            .await
            .expect("read head");
        assert!(
            read > 0,
            "connection closed in the middle of a head: {lines:?}"
        );
        if line == b"\r\n" || line == b"\n" {
            return lines;
        }
        lines.push(String::from_utf8_lossy(&line).trim_end().to_owned());
    }
}

/// Reads one response, framed by `Content-Length`, chunked encoding, or the
/// end of the connection.
async fn read_response<R: AsyncBufRead + Unpin>(reader: &mut R) -> RawResponse {
    let head = read_head(reader).await;
    let status = head[0]
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("status line: {}", head[0]));
    let headers: Vec<(String, String)> = head[1..]
        .iter()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut response = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().expect("numeric Content-Length");
        response.body = vec![0; length];
        reader
            .read_exact(&mut response.body)
            .await
            .expect("read body");
    } else if response
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).await.expect("chunk size");
            let size_text = size_line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_text, 16).expect("hex chunk size");
            if size == 0 {
                read_head(reader).await; // trailers
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await.expect("chunk");
            response.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader
            .read_to_end(&mut response.body)
            .await
            .expect("read body to the end");
    }
    response
}

/// Sends `request` (raw bytes, exactly as given) on a new connection and
/// reads one response.
async fn raw(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let stream = TcpStream::connect(addr).await.expect("connect to gateway");
    let mut stream = BufReader::new(stream);
    stream.write_all(request).await.expect("send request");
    read_response(&mut stream).await
}

/// `GET path` with nothing but a Host header, on a new connection.
async fn raw_get(addr: SocketAddr, path: &str) -> RawResponse {
    let request = format!("GET {path} HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n\r\n");
    raw(addr, request.as_bytes()).await
}

/// An upstream written by hand for one connection: reads the request head,
/// then lets `serve` answer on the same connection (any body bytes already
/// read stay in the reader).
async fn hand_made_upstream<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(BufReader<TcpStream>, Vec<String>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind hand-made upstream");
    let addr = listener.local_addr().expect("upstream address");
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader).await;
        serve(reader, head).await;
    });
    addr
}

/// The byte at `index` of the test bodies: a pattern that shows any lost,
/// repeated or reordered stretch.
fn pattern(index: usize) -> u8 {
    (index % 251) as u8
}

// ---------------------------------------------------------------- pass-through

#[tokio::test]
async fn paths_outside_every_room_go_straight_upstream() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    let _inside = fill_room(&gw, "/echo/vaccini").await;
    let client = plain_client();

    // The room is full: a visitor without cookies does not get past it...
    let guarded = client
        .get(gw.url("/echo/vaccini"))
        .send()
        .await
        .expect("request");
    assert!(!anteroom_tests::reached_origin(guarded).await);

    // ...but everything the room does not protect passes, no cookie needed,
    // with method, path, query and body intact.
    let response = client
        .put(gw.url("/echo/elsewhere/a?x=1&y=%20&z"))
        .body("hello")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|cookie| !cookie.as_bytes().starts_with(b"anteroom_")),
        "outside every room the gateway hands out nothing"
    );
    let echoed: Value = response.json().await.expect("echo JSON");
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(echoed["path"], "/echo/elsewhere/a");
    assert_eq!(echoed["query"], "x=1&y=%20&z");
    assert_eq!(echoed["body_length"], 5);

    for method in [reqwest::Method::DELETE, reqwest::Method::PATCH] {
        let response = client
            .request(method.clone(), gw.url("/echo"))
            .send()
            .await
            .expect("request");
        let echoed: Value = response.json().await.expect("echo JSON");
        assert_eq!(echoed["method"], method.as_str());
        assert_eq!(echoed["path"], "/echo");
        assert_eq!(echoed["query"], Value::Null);
    }

    // The origin's own pages and statuses pass unchanged too.
    let home = client.get(gw.url("/")).send().await.expect("request");
    assert_eq!(home.status(), 200);
    assert!(
        home.text()
            .await
            .expect("home page")
            .contains("href=\"/prenota\"")
    );
    let missing = client
        .get(gw.url("/nowhere"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404, "the origin's 404 is passed on");
}

// ---------------------------------------------------------------- headers

#[tokio::test]
async fn forwarding_headers_are_the_gateways_not_the_clients() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini")).start().await;
    // 127.0.0.1 is not a trusted proxy (trusted_proxies defaults to none),
    // so whatever it claims about the original client is replaced.
    let response = raw(
        gw.addr,
        b"GET /echo/elsewhere HTTP/1.1\r\n\
          Host: booking.example:8443\r\n\
          X-Forwarded-For: 6.6.6.6, 7.7.7.7\r\n\
          X-Forwarded-Proto: https\r\n\
          X-Forwarded-Host: evil.example\r\n\
          Connection: close\r\n\r\n",
    )
    .await;
    assert!(response.is_origin_echo(), "{response:?}");
    let headers = &response.json()["headers"];
    assert_eq!(headers["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_eq!(headers["x-forwarded-proto"], json!(["http"]));
    assert_eq!(headers["x-forwarded-host"], json!(["booking.example:8443"]));

    // Without anything spoofed: the same three, from the connection.
    let echoed: Value = plain_client()
        .get(gw.url("/echo/elsewhere"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("echo JSON");
    let headers = &echoed["headers"];
    assert_eq!(headers["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_eq!(headers["x-forwarded-proto"], json!(["http"]));
    assert_eq!(
        headers["x-forwarded-host"],
        json!([gw.addr.to_string()]),
        "the Host the client used"
    );
}

/// `Forwarded`, `X-Real-IP` and the other headers in which proxies describe
/// the client are the client's own claims when it is not a trusted proxy:
/// they never reach the site. From a trusted proxy they pass as they came.
/// `X-Original-URL` (a path the site would route on instead of the request
/// line's, walking around the room) reaches the site from nobody.
#[tokio::test]
async fn only_a_trusted_proxy_tells_the_site_about_the_client() {
    const CLAIMS: &[u8] = b"Forwarded: for=6.6.6.6;proto=https;host=evil.example\r\n\
        X-Real-IP: 6.6.6.6\r\n\
        X-Forwarded-Port: 443\r\n\
        X-Forwarded-Prefix: /evil\r\n\
        X-Original-URL: /echo/vaccini\r\n";
    let request = |claims: &[u8]| {
        let mut request = b"GET /echo/elsewhere HTTP/1.1\r\nHost: booking.example\r\n".to_vec();
        request.extend_from_slice(claims);
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        request
    };
    let up = upstream().await;

    let untrusted = gateway(&up).room(room("vaccini")).start().await;
    let response = raw(untrusted.addr, &request(CLAIMS)).await;
    assert!(response.is_origin_echo(), "{response:?}");
    let headers = &response.json()["headers"];
    for name in [
        "forwarded",
        "x-real-ip",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-original-url",
    ] {
        assert_eq!(headers[name], Value::Null, "{name} reached the site");
    }
    assert_eq!(headers["x-forwarded-for"], json!(["127.0.0.1"]));

    let behind_a_proxy = gateway(&up)
        .room(room("vaccini"))
        .limits(loose_limits().trusted_proxies(&["127.0.0.0/8"]))
        .start()
        .await;
    let response = raw(behind_a_proxy.addr, &request(CLAIMS)).await;
    let headers = &response.json()["headers"];
    assert_eq!(
        headers["forwarded"],
        json!(["for=6.6.6.6;proto=https;host=evil.example"])
    );
    assert_eq!(headers["x-real-ip"], json!(["6.6.6.6"]));
    assert_eq!(headers["x-forwarded-port"], json!(["443"]));
    assert_eq!(headers["x-forwarded-prefix"], json!(["/evil"]));
    assert_eq!(headers["x-original-url"], Value::Null);
}

/// Behind a trusted proxy that adds a line of its own rather than extending
/// the client's, the site gets every `X-Forwarded-For` line, in order, as
/// one list with the gateway's peer appended: not only the first line, which
/// the client wrote.
#[tokio::test]
async fn every_forwarded_for_line_from_a_trusted_proxy_reaches_the_site_in_order() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini"))
        .limits(loose_limits().trusted_proxies(&["127.0.0.0/8"]))
        .start()
        .await;
    let response = raw(
        gw.addr,
        b"GET /echo/elsewhere HTTP/1.1\r\n\
          Host: booking.example\r\n\
          X-Forwarded-For: 6.6.6.6\r\n\
          X-Forwarded-For: 203.0.113.9\r\n\
          Connection: close\r\n\r\n",
    )
    .await;
    assert!(response.is_origin_echo(), "{response:?}");
    assert_eq!(
        response.json()["headers"]["x-forwarded-for"],
        json!(["6.6.6.6, 203.0.113.9, 127.0.0.1"])
    );
}

#[tokio::test]
async fn hop_by_hop_request_headers_stay_with_the_client_connection() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini")).start().await;
    let response = raw(
        gw.addr,
        b"GET /echo/elsewhere HTTP/1.1\r\n\
          Host: site.example\r\n\
          Connection: keep-alive, X-Custom\r\n\
          X-Custom: only-for-the-next-hop\r\n\
          Keep-Alive: timeout=5\r\n\
          TE: trailers\r\n\
          Trailer: X-Checksum\r\n\
          Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA==\r\n\
          Proxy-Connection: keep-alive\r\n\
          X-End-To-End: kept\r\n\r\n",
    )
    .await;
    assert!(response.is_origin_echo(), "{response:?}");
    let headers = &response.json()["headers"];
    for name in [
        "x-custom",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
    ] {
        assert!(
            headers.get(name).is_none(),
            "{name} reached the upstream: {headers}"
        );
    }
    // The gateway may open its own connection with its own `Connection`
    // header, but never the client's list.
    for value in headers["connection"].as_array().into_iter().flatten() {
        assert!(
            !value
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase()
                .contains("x-custom"),
            "{headers}"
        );
    }
    assert_eq!(headers["x-end-to-end"], json!(["kept"]));
}

#[tokio::test]
async fn an_upgrade_request_is_not_passed_on_as_an_upgrade() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini")).start().await;
    let response = raw(
        gw.addr,
        b"GET /echo/elsewhere HTTP/1.1\r\n\
          Host: site.example\r\n\
          Upgrade: websocket\r\n\
          X-End-To-End: kept\r\n\
          Connection: close\r\n\r\n",
    )
    .await;
    assert!(response.is_origin_echo(), "{response:?}");
    let headers = &response.json()["headers"];
    assert!(headers.get("upgrade").is_none(), "{headers}");
    assert_eq!(headers["x-end-to-end"], json!(["kept"]));
}

#[tokio::test]
async fn hop_by_hop_response_headers_stay_with_the_upstream_connection() {
    let site = hand_made_upstream(|mut connection, _head| async move {
        let body = b"ok";
        let response = format!(
            "HTTP/1.1 200 OK\r\n\
             Content-Length: {}\r\n\
             Connection: X-Upstream-Secret\r\n\
             X-Upstream-Secret: internal\r\n\
             Keep-Alive: timeout=99\r\n\
             Proxy-Authenticate: Basic realm=\"inside\"\r\n\
             X-Site: kept\r\n\r\n",
            body.len()
        );
        let stream = connection.get_mut();
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.write_all(body).await;
    })
    .await;
    let gw = gateway_to(&format!("http://{site}"))
        .room(room("vaccini"))
        .start()
        .await;
    let response = plain_client()
        .get(gw.url("/anything"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-site"), Some("kept"));
    for name in ["x-upstream-secret", "keep-alive", "proxy-authenticate"] {
        assert!(
            response.headers().get(name).is_none(),
            "{name} reached the client: {:?}",
            response.headers()
        );
    }
    assert!(
        !header(&response, "connection")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .contains("x-upstream-secret")
    );
    assert_eq!(response.text().await.expect("body"), "ok");
}

// ---------------------------------------------------------------- cookies

#[tokio::test]
async fn our_cookies_never_reach_upstream_but_the_sites_own_do() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    let client = plain_client();
    let first = client
        .get(gw.url("/echo/vaccini"))
        .send()
        .await
        .expect("request");
    let pass =
        cookie_value(&first, "anteroom_pass_vaccini").expect("the first visitor gets a pass");
    assert!(anteroom_tests::reached_origin(first).await);

    // Inside the room: the pass gets the visitor in, and is the one thing
    // the origin does not see.
    for path in ["/echo/vaccini/prenota", "/echo/elsewhere"] {
        let response = client
            .get(gw.url(path))
            .header(
                "cookie",
                format!("session=abc; anteroom_pass_vaccini={pass}; lang=it"),
            )
            .header("cookie", "anteroom_ticket_vaccini=whatever; cart=3")
            .send()
            .await
            .expect("request");
        let echoed: Value = response.json().await.expect("reached the origin");
        assert_eq!(echoed["path"], path, "{echoed}");
        let cookies: Vec<&str> = echoed["headers"]["cookie"]
            .as_array()
            .expect("the site's cookies arrive")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let all = cookies.join("; ");
        assert!(!all.contains("anteroom_"), "{path}: {all}");
        assert!(!all.contains(&pass), "{path}: {all}");
        for site_cookie in ["session=abc", "lang=it", "cart=3"] {
            assert!(
                all.contains(site_cookie),
                "{path}: {site_cookie} lost: {all}"
            );
        }
    }

    // Only ours: no Cookie header at all upstream.
    let echoed: Value = client
        .get(gw.url("/echo/vaccini"))
        .header("cookie", format!("anteroom_pass_vaccini={pass}"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("reached the origin");
    assert!(echoed["headers"].get("cookie").is_none(), "{echoed}");
}

/// Browsers send cookie values as the page set them, UTF-8 included
/// (`document.cookie = "citta=Forlì"`). Such a header is not visible ASCII,
/// and the gateway's pass must still be kept from the origin.
#[tokio::test]

async fn our_cookies_are_stripped_even_beside_a_utf8_site_cookie() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    let client = plain_client();
    let first = client
        .get(gw.url("/echo/vaccini"))
        .send()
        .await
        .expect("request");
    let pass =
        cookie_value(&first, "anteroom_pass_vaccini").expect("the first visitor gets a pass");

    let mut cookie = format!("anteroom_pass_vaccini={pass}; citta=").into_bytes();
    cookie.extend_from_slice("Forlì".as_bytes());
    let response = client
        .get(gw.url("/echo/elsewhere"))
        .header(
            "cookie",
            reqwest::header::HeaderValue::from_bytes(&cookie).expect("obs-text is allowed"),
        )
        .send()
        .await
        .expect("request");
    let echoed: Value = response.json().await.expect("reached the origin");
    let forwarded = echoed["headers"]["cookie"].to_string();
    assert!(!forwarded.contains("anteroom_"), "{forwarded}");
    assert!(!forwarded.contains(&pass), "{forwarded}");
}

// ---------------------------------------------------------------- streaming

#[tokio::test]
async fn a_large_request_body_arrives_whole() {
    const SIZE: usize = 8 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .limits(loose_limits().max_body_bytes(16 * 1024 * 1024))
        .start()
        .await;
    let client = plain_client();
    let first = client
        .get(gw.url("/echo/vaccini"))
        .send()
        .await
        .expect("request");
    let pass = cookie_value(&first, "anteroom_pass_vaccini").expect("a pass");

    // Outside every room, and inside one with a pass; chunked, so neither
    // side knows the length up front.
    for (path, cookie) in [
        ("/echo/elsewhere", String::new()),
        (
            "/echo/vaccini",
            format!("Cookie: anteroom_pass_vaccini={pass}\r\n"),
        ),
    ] {
        let stream = TcpStream::connect(gw.addr).await.expect("connect");
        let mut stream = BufReader::new(stream);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: site.example\r\n{cookie}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        let chunk: Vec<u8> = (0..CHUNK).map(pattern).collect();
        for _ in 0..SIZE / CHUNK {
            stream
                .write_all(format!("{CHUNK:x}\r\n").as_bytes())
                .await
                .expect("chunk size");
            stream.write_all(&chunk).await.expect("chunk");
            stream.write_all(b"\r\n").await.expect("chunk end");
        }
        stream.write_all(b"0\r\n\r\n").await.expect("last chunk");
        let response = read_response(&mut stream).await;
        assert!(response.is_origin_echo(), "{path}: {}", response.text());
        let echoed = response.json();
        assert_eq!(echoed["method"], "POST");
        assert_eq!(echoed["body_length"], SIZE, "{path}");
    }
}

/// The gateway passes the request body on as it arrives: the upstream sees
/// the request while the client is still holding back most of its body.
#[tokio::test]
async fn a_request_body_is_streamed_not_buffered() {
    const SIZE: usize = 4 * 1024 * 1024;
    const FIRST_PART: usize = 64 * 1024;
    let (head_seen, upstream_saw_head) = oneshot::channel::<Vec<String>>();
    let site = hand_made_upstream(move |mut connection, head| async move {
        let _ = head_seen.send(head.clone());
        let length: usize = head
            .iter()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        let received = match connection.read_exact(&mut body).await {
            Ok(_) => body
                .iter()
                .enumerate()
                .filter(|(index, byte)| **byte == pattern(*index))
                .count(),
            Err(_) => 0,
        };
        let answer = received.to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        let _ = connection.get_mut().write_all(response.as_bytes()).await;
    })
    .await;
    let gw = gateway_to(&format!("http://{site}"))
        .room(room("vaccini"))
        .limits(loose_limits().max_body_bytes(16 * 1024 * 1024))
        .start()
        .await;

    let body: Vec<u8> = (0..SIZE).map(pattern).collect();
    let stream = TcpStream::connect(gw.addr).await.expect("connect");
    let mut stream = BufReader::new(stream);
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: site.example\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body[..FIRST_PART])
        .await
        .expect("first part");
    let forwarded_head = tokio::time::timeout(HANG_GUARD, upstream_saw_head)
        .await
        .expect("the upstream saw the request before the body was complete")
        .expect("upstream task alive");
    assert!(
        forwarded_head[0].starts_with("POST /upload "),
        "{forwarded_head:?}"
    );
    stream
        .write_all(&body[FIRST_PART..])
        .await
        .expect("the rest");
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.text(),
        SIZE.to_string(),
        "every byte arrived, in order"
    );
}

/// The origin has no route that produces a large response, so a hand-made
/// upstream sends one in two parts, the second only after the client has
/// received the first through the gateway.
#[tokio::test]
async fn a_large_response_is_streamed_not_buffered() {
    const SIZE: usize = 16 * 1024 * 1024;
    const FIRST_PART: usize = 1024 * 1024;
    let (release, released) = oneshot::channel::<()>();
    let site = hand_made_upstream(move |mut connection, _head| async move {
        let body: Vec<u8> = (0..SIZE).map(pattern).collect();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {SIZE}\r\n\r\n"
        );
        let stream = connection.get_mut();
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(&body[..FIRST_PART]).await.is_err()
            || stream.flush().await.is_err()
        {
            return;
        }
        if released.await.is_ok() {
            let _ = stream.write_all(&body[FIRST_PART..]).await;
        }
    })
    .await;
    let gw = gateway_to(&format!("http://{site}"))
        .room(room("vaccini"))
        .start()
        .await;

    let client = plain_client();
    let mut received: Vec<u8> = Vec::with_capacity(SIZE);
    let head_and_first_part = async {
        let mut response = client
            .get(gw.url("/big"))
            .send()
            .await
            .expect("response head");
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-length"), Some("16777216"));
        while received.len() < FIRST_PART {
            let chunk = response
                .chunk()
                .await
                .expect("body")
                .expect("more body before the end");
            received.extend_from_slice(&chunk);
        }
        response
    };
    let mut response = tokio::time::timeout(HANG_GUARD, head_and_first_part)
        .await
        .expect("the head and first part arrived before the upstream sent the rest");
    release.send(()).expect("upstream still waiting");
    while let Some(chunk) = response.chunk().await.expect("body") {
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received.len(), SIZE);
    assert!(
        received
            .iter()
            .enumerate()
            .all(|(index, byte)| *byte == pattern(index)),
        "the body arrived intact, in order"
    );
}

// ---------------------------------------------------------------- upstream failures

/// Internal detail that must never reach a visitor.
fn assert_no_internals(body: &str, upstream: &str) {
    let lowered = body.to_ascii_lowercase();
    for leak in [
        "connection refused",
        "tcp connect",
        "error trying to connect",
        "client error",
        "hyper",
        "os error",
        "timed out",
        "no response within",
        upstream,
    ] {
        assert!(
            !lowered.contains(&leak.to_ascii_lowercase()),
            "the answer leaks {leak:?}: {body}"
        );
    }
}

/// Outside a room: the friendly page with `502`. Inside one: the same page,
/// which also says the visitor keeps their place, with `503`. Both with
/// `Retry-After`; a JSON client gets short JSON.
#[tokio::test]
async fn upstream_down_gives_the_friendly_page() {
    let port = free_port();
    let upstream_address = format!("127.0.0.1:{port}");
    let gw = gateway_to(&format!("http://{upstream_address}"))
        .room(room("vaccini"))
        .start()
        .await;
    let pages = Pages::new();
    let client = plain_client();
    // A JSON client gets a short JSON error instead, with no internals.
    let response = client
        .get(gw.url("/api/slots"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 502);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert!(header(&response, "retry-after").is_some());
    let body = response.text().await.expect("body");
    assert_no_internals(&body, &upstream_address);
    assert!(serde_json::from_str::<Value>(&body).is_ok(), "{body}");
    // Outside a room and inside one (the first visitor is let straight in):
    // always the same friendly page.
    for (path, query, accept, code, inside, status) in [
        ("/anything?q=1", "q=1", "text/html", "en", PassHeld::No, 502),
        ("/echo/vaccini", "", "text/html", "it", PassHeld::Yes, 503),
    ] {
        let response = client
            .get(gw.url(path))
            .header("accept", accept)
            .header("accept-language", code)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
        let retry: u64 = header(&response, "retry-after")
            .and_then(|value| value.parse().ok())
            .expect("a numeric Retry-After");
        assert!(retry > 0);
        let body = response.text().await.expect("body");
        assert_no_internals(&body, &upstream_address);
        let visitor = Reader {
            lang: pages.lang(code).expect("a built-in language"),
            query,
        };
        assert_eq!(
            body,
            pages.upstream_unavailable(visitor, retry, inside),
            "{path}: exactly the friendly page, nothing added"
        );
    }
}

#[tokio::test]
async fn an_upstream_that_never_answers_gives_504_after_the_timeout() {
    // Accepts connections and reads, but never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let site = listener.local_addr().expect("address");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let gw = gateway_to(&format!("http://{site}"))
        .upstream_timeout_seconds(1)
        .room(room("vaccini"))
        .start()
        .await;
    let response = plain_client()
        .get(gw.url("/slow"))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 504);
    assert_eq!(
        header(&response, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let retry: u64 = header(&response, "retry-after")
        .and_then(|value| value.parse().ok())
        .expect("a numeric Retry-After");
    let body = response.text().await.expect("body");
    assert_no_internals(&body, &site.to_string());
    let pages = Pages::new();
    let visitor = Reader {
        lang: pages.lang("en").expect("English"),
        query: "",
    };
    assert_eq!(
        body,
        pages.upstream_unavailable(visitor, retry, PassHeld::No)
    );
    silent.abort();
}

// ---------------------------------------------------------------- /_anteroom/

#[tokio::test]
async fn the_gateways_own_paths_never_reach_upstream() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini")).start().await;
    let before = up.requests_served().await;

    for path in [
        "/_anteroom/anything-unknown",
        "/_anteroom/",
        "/_anteroom",
        "/_anteroom/status/extra",
        "/_ANTEROOM/anything",
        "/%5Fanteroom/anything",
        "//_anteroom/anything",
        "/_anteroom/../_anteroom/anything",
    ] {
        let response = raw_get(gw.addr, path).await;
        assert_eq!(response.status, 404, "{path}: {}", response.text());
        assert_eq!(
            response.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        assert!(response.json()["error"].is_string(), "{path}");
    }
    // Spelled differently, still the gateway's status endpoint.
    for path in [
        "//_anteroom/status?room=vaccini",
        "/_anteroom//status?room=vaccini",
        "/_ANTEROOM/STATUS?room=vaccini",
        "/_anteroom/%73tatus?room=vaccini",
    ] {
        let response = raw_get(gw.addr, path).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        let status = response.json();
        assert_eq!(status["room"], "vaccini", "{path}");
        assert_eq!(status["state"], "none", "{path}");
    }
    // Any method.
    let response = raw(
        gw.addr,
        b"DELETE /_anteroom/anything HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 404);
    let response = raw(
        gw.addr,
        b"POST /_anteroom/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 405);

    assert_eq!(
        up.requests_served().await,
        before,
        "none of these reached the origin"
    );
}

// ---------------------------------------------------------------- the room holds

#[tokio::test]
async fn the_origin_is_unreachable_without_a_pass() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    let a = fill_room(&gw, "/echo/vaccini").await;
    let served = up.requests_served().await;
    assert_eq!(served, 1, "A reached the origin");

    // B asks for the page: the waiting page, and the origin sees nothing.
    let b = gw.visitor();
    let page = b.get("/echo/vaccini").await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
    let retry = header(&page, "retry-after").map(str::to_owned);
    assert!(
        retry
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some(),
        "{retry:?}"
    );
    let html = page.text().await.expect("waiting page");
    assert!(html.contains("data-status-url=\"/_anteroom/status?room=vaccini\""));
    assert!(!html.contains("\"method\""));

    // As an app: the status JSON, still with the caching headers.
    let json = b.get_json("/echo/vaccini/slots").await;
    assert_eq!(json.status(), 200);
    assert_eq!(header(&json, "content-type"), Some("application/json"));
    assert_eq!(header(&json, "cache-control"), Some("no-store"));
    assert!(header(&json, "retry-after").is_some());
    let status: Value = json.json().await.expect("status JSON");
    assert_eq!(status["room"], "vaccini");
    assert_eq!(status["state"], "waiting");
    assert_eq!(status["position"], 1);
    assert!(status["eta_seconds"].is_u64(), "{status}");
    assert!(status["refresh_seconds"].as_u64().is_some_and(|s| s >= 1));

    // Writes are refused outright (not a 2xx anybody could take for success).
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let write = b
            .client
            .request(method.clone(), gw.url("/echo/vaccini/book"))
            .body("name=Maria")
            .send()
            .await
            .expect("request");
        assert_eq!(write.status(), 503, "{method}");
        assert!(header(&write, "retry-after").is_some());
    }
    let write_json = b
        .client
        .post(gw.url("/echo/vaccini/book"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(write_json.status(), 503);
    let status: Value = write_json.json().await.expect("status JSON");
    assert_eq!(status["state"], "waiting");

    // A HEAD as well.
    let head = b
        .client
        .head(gw.url("/echo/vaccini"))
        .send()
        .await
        .expect("request");
    assert_eq!(head.status(), 200);

    assert_eq!(
        up.requests_served().await,
        served,
        "nothing of B's reached the origin"
    );

    // A, inside, still gets through: the count moves for A alone.
    assert!(anteroom_tests::reached_origin(a.get("/echo/vaccini").await).await);
    assert_eq!(up.requests_served().await, served + 1);
}

#[tokio::test]
async fn spelling_a_path_differently_does_not_walk_around_a_room() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("prenota").paths(&["/echo/prenota"]).capacity(1))
        .start()
        .await;
    let _inside = fill_room(&gw, "/echo/prenota").await;
    let served = up.requests_served().await;

    for path in [
        "/echo/prenota",
        "/echo/x/../prenota",
        "/echo/./prenota",
        "//echo/prenota",
        "/echo//prenota",
        "/echo/%70renota",
        "/%65cho/prenota",
        "/ECHO/PRENOTA",
        "/Echo/Prenota/",
        "/echo/prenota%2F..%2Fprenota",
        "/echo/x/..%2Fprenota",
        "/echo/x/%2e%2e/prenota",
        "/echo/%2Fprenota",
        "/echo/prenota?../../x",
        "/echo/prenota/sub/../../prenota",
        "http://elsewhere.example/echo/prenota",
    ] {
        let response = raw_get(gw.addr, path).await;
        assert!(!response.is_origin_echo(), "{path} reached the origin");
        assert!(
            response.is_waiting_page("prenota"),
            "{path}: {} {}",
            response.status,
            response.text()
        );
    }
    // Backslashes are no way around either: the gateway treats them as
    // slashes, or the request is refused outright.
    let response = raw_get(gw.addr, "/echo\\prenota").await;
    assert!(!response.is_origin_echo());
    assert!(
        response.is_waiting_page("prenota") || (400..500).contains(&response.status),
        "{}",
        response.status
    );

    assert_eq!(
        up.requests_served().await,
        served,
        "no spelling reached the origin"
    );

    // A path that only looks similar is not the room's.
    let response = raw_get(gw.addr, "/echo/pren").await;
    assert!(response.is_origin_echo(), "{}", response.text());
}

/// An upstream that percent-decodes paths (most frameworks and nginx do)
/// reads `/echo/%70renota/%ff` as `/echo/prenota/<byte ff>`, under the room.
/// Escapes that do not decode to UTF-8 have no one meaning: the gateway
/// refuses them with `400`, inside a room or not.
#[tokio::test]
async fn an_invalid_utf8_escape_does_not_walk_around_a_room() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("prenota").paths(&["/echo/prenota"]).capacity(1))
        .start()
        .await;
    let _inside = fill_room(&gw, "/echo/prenota").await;
    let served = up.requests_served().await;
    for path in ["/echo/%70renota/%ff", "/%65cho/prenota%c3"] {
        let response = raw_get(gw.addr, path).await;
        assert_eq!(response.status, 400, "{path}: {}", response.text());
    }
    assert_eq!(up.requests_served().await, served);
}

/// Spellings of a room's path that a site decoding more leniently than the
/// gateway could read as the room's (a fifth layer of escapes, overlong
/// UTF-8, a padded segment, fullwidth letters raw or escaped, a control
/// character) are refused with `400` and the reason, and never reach the
/// site; so are such paths outside every room. Ordinary UTF-8 paths pass.
#[tokio::test]
async fn a_path_that_cannot_be_normalised_is_refused_and_never_reaches_the_site() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("prenota").paths(&["/echo/prenota"]).capacity(1))
        .start()
        .await;
    let _inside = fill_room(&gw, "/echo/prenota").await;
    let served = up.requests_served().await;
    for path in [
        "/echo/%2525252570renota",
        "/echo/%c0%afprenota",
        "/echo%c0%afprenota",
        "/echo/%20prenota",
        "/echo/prenota%09",
        "/echo/ｐｒｅｎｏｔａ",
        "/echo/%EF%BD%90%EF%BD%92%EF%BD%85%EF%BD%8E%EF%BD%8F%EF%BD%94%EF%BD%81",
        "/echo/open/%00",
        "/echo/%EF%BC%8Fopen",
    ] {
        let response = raw_get(gw.addr, path).await;
        assert_eq!(response.status, 400, "{path}: {}", response.text());
        assert!(response.json()["error"].is_string(), "{path}");
    }
    assert_eq!(up.requests_served().await, served, "none reached the site");
    for path in [
        "/echo/città/è",
        "/echo/citt%C3%A0/%C3%A8",
        "/echo/a%2Fb+c%20d",
    ] {
        let response = raw_get(gw.addr, path).await;
        assert!(response.is_origin_echo(), "{path}: {response:?}");
    }
}

// ---------------------------------------------------------------- connections

#[tokio::test]
async fn several_requests_share_one_connection_each_way() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    let _inside = fill_room(&gw, "/echo/vaccini").await;
    let stats_client = plain_client();
    let connections_before = origin_connections(&stats_client, &up).await;

    let stream = TcpStream::connect(gw.addr).await.expect("connect");
    let mut stream = BufReader::new(stream);
    // Upstream, the gateway's own endpoint, a waiting page, upstream again:
    // all on one client connection, answered in order.
    let requests: [(&str, &str); 5] = [
        ("GET", "/echo/one?n=1"),
        ("GET", "/_anteroom/status?room=vaccini"),
        ("GET", "/echo/vaccini"),
        ("POST", "/echo/two?n=2"),
        ("GET", "/echo/three?n=3"),
    ];
    for (method, path) in requests {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: site.example\r\nContent-Length: 3\r\n\r\nabc"
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let response = read_response(&mut stream).await;
        match path {
            "/_anteroom/status?room=vaccini" => {
                assert_eq!(response.json()["room"], "vaccini")
            }
            "/echo/vaccini" => assert!(response.is_waiting_page("vaccini"), "{response:?}"),
            _ => {
                assert!(response.is_origin_echo(), "{path}: {response:?}");
                let echoed = response.json();
                assert_eq!(echoed["method"], method);
                assert_eq!(echoed["body_length"], 3);
                assert_eq!(
                    format!(
                        "{}?{}",
                        echoed["path"].as_str().unwrap_or_default(),
                        echoed["query"].as_str().unwrap_or_default()
                    ),
                    path
                );
            }
        }
        assert_ne!(response.header("connection"), Some("close"), "{path}");
    }

    // Upstream, the gateway reused its pooled connection for the three
    // requests that went there, one after the other.
    assert_eq!(
        origin_connections(&stats_client, &up).await,
        connections_before,
        "no new upstream connection for sequential requests"
    );
}
