//! A storm of malformed and hostile requests at a running gateway, on both
//! backends: garbage request lines, absurd URIs, broken framing, junk
//! cookies and headers, forged tokens, junk for the gateway's own endpoints.
//! Afterwards the gateway must still serve, and the visitors who queued
//! before the storm must still go in, in the order they queued.
//!
//! What the gateway may answer: anything but a 5xx of its own making (the
//! one exception is the contract's `503` + `Retry-After` for a write to a
//! protected path by someone waiting), a `429` only with `Retry-After`, and
//! never the origin's answer for a protected path or an `/_anteroom/` path. Requests to paths no room
//! protects go to the origin; there `500` and `503` are failures and any
//! `502`/`504` is counted and shown.
//!
//! Every request goes over a raw TCP stream, written byte for byte, so that
//! no client library tidies it up. The gateway runs with the shipped
//! `[limits]`, trusting the loopback as a proxy so that junk
//! `X-Forwarded-For` headers get parsed. Each connection comes from its own
//! loopback address (127.1.x.y), so that the storm reaches the parsers
//! instead of stopping at the per-client limit; one share of it comes from a
//! single address, so that the limiter meets it too. A `429` is a fine
//! answer to anything.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anteroom_gateway::token::{Keyring, Pass, Ticket, new_pass_id};
use anteroom_tests::{
    Backend, COOKIE_KEY, GatewayHandle, Limits, RedisServer, gateway, reached_origin, room,
    upstream,
};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Requests in the storm. A few thousand, enough that every kind below is
/// sent many times over, few enough for a debug build in seconds.
const STORM_REQUESTS: usize = 3000;
/// Connections open at once during the storm.
const CONCURRENCY: usize = 50;
/// Only a guard against a test hanging on a connection nobody closes; never
/// a measure of speed. Exchanges that hit it are counted, not failed.
const HANG_GUARD: Duration = Duration::from_secs(10);
/// Enough of a response to classify it (waiting pages are ~20 KB).
const READ_CAP: usize = 256 * 1024;

/// The room the storm hits: full (capacity 2, two inside) with two honest
/// visitors waiting.
const ROOM: &str = "/echo/vaccini";
/// A room the storm never touches, to show that the gateway still lets
/// people in afterwards.
const CALM: &str = "/echo/calm";
/// A path no room protects: the origin answers.
const OPEN: &str = "/echo/open";
/// The shipped limits (20 requests a second, bursts of 40, 10 tickets a
/// minute per client), with the loopback as a trusted proxy. The honest
/// visitors, all on 127.0.0.1 without `X-Forwarded-For`, stay well inside.
fn shipped_limits_behind_a_proxy() -> Limits {
    Limits::default().trusted_proxies(&["127.0.0.0/8"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_gateway_survives_a_storm_and_keeps_the_queue() {
    storm_scenario(&Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_gateway_survives_a_storm_and_keeps_the_queue() {
    let redis = RedisServer::start().await;
    storm_scenario(&Backend::Redis(redis.url())).await;
    drop(redis);
}

async fn storm_scenario(backend: &Backend) {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(2))
        .room(room("calm").capacity(1000))
        .backend(backend)
        .limits(shipped_limits_behind_a_proxy())
        .start()
        .await;

    // Before the storm: the room is full, two honest visitors queue.
    let first_inside = gw.visitor();
    let second_inside = gw.visitor();
    for visitor in [&first_inside, &second_inside] {
        assert!(reached_origin(visitor.get(ROOM).await).await);
    }
    let first_in_line = gw.visitor();
    let second_in_line = gw.visitor();
    for visitor in [&first_in_line, &second_in_line] {
        assert!(!reached_origin(visitor.get(ROOM).await).await);
    }
    gw.settle().await;
    assert_eq!(first_in_line.position("vaccini").await, Some(1));
    assert_eq!(second_in_line.position("vaccini").await, Some(2));

    let exchanges = storm(&gw).await;
    report(backend, &exchanges);
    assert_no_failures(&exchanges);

    // The gateway still serves: the origin through a path no room protects,
    // and a new visitor through the room the storm never touched.
    let newcomer = gw.visitor();
    assert!(reached_origin(newcomer.get(OPEN).await).await);
    assert!(reached_origin(newcomer.get(CALM).await).await);

    // The honest visitors kept their places, ahead of every ticket the
    // storm took: as the two inside leave, they go in, in order.
    gw.settle().await;
    assert_eq!(first_in_line.position("vaccini").await, Some(1));
    assert_eq!(second_in_line.position("vaccini").await, Some(2));
    first_inside.leave("vaccini").await;
    first_in_line
        .wait_until_admitted("vaccini", Duration::from_secs(5))
        .await;
    assert!(reached_origin(first_in_line.get(ROOM).await).await);
    gw.settle().await;
    assert_eq!(second_in_line.position("vaccini").await, Some(1));
    second_inside.leave("vaccini").await;
    second_in_line
        .wait_until_admitted("vaccini", Duration::from_secs(5))
        .await;
    assert!(reached_origin(second_in_line.get(ROOM).await).await);
}

/// A request hidden behind conflicting framing (`Content-Length` and
/// `chunked`) is never served: the client gets one answer, and the origin
/// sees one request, framed one way only.
#[tokio::test]
async fn a_request_smuggled_behind_conflicting_framing_is_never_served() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini")).start().await;
    for framing in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    ] {
        let before = up.requests_served().await;
        let smuggled = format!(
            "POST {OPEN} HTTP/1.1\r\nHost: gateway\r\n{framing}\r\n0\r\n\r\n\
             GET {OPEN}/smuggled HTTP/1.1\r\nHost: gateway\r\n\r\n"
        );
        let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
        stream.write_all(smuggled.as_bytes()).await.expect("send");
        let mut received = Vec::new();
        // The server closes after such a request (RFC 9112 §6.3); the guard
        // only stops a broken server from hanging the test.
        let _ = tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut received)).await;
        let received = String::from_utf8_lossy(&received);
        assert_eq!(
            received.matches("HTTP/1.1 ").count(),
            1,
            "{framing:?}: {received}"
        );
        assert!(received.starts_with("HTTP/1.1 200"), "{received}");
        assert!(!received.contains("/smuggled"), "{received}");
        assert!(
            !received.contains("\"content-length\""),
            "the origin saw both framings: {received}"
        );
        assert_eq!(up.requests_served().await, before + 1);
    }
}

/// Two `Host` lines, a `Host` that is not `host[:port]`, or none in
/// HTTP/1.1 (RFC 9112 §3.2): `400` with the reason, for a room's path and an
/// open one alike, and nothing reaches the site or takes a place.
#[tokio::test]
async fn a_duplicate_invalid_or_missing_host_is_refused_and_never_reaches_the_site() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini")).start().await;
    let before = up.requests_served().await;
    let heads: [(&str, &str); 6] = [
        (
            "Host: gateway\r\nHost: evil.example\r\n",
            "more than one Host header",
        ),
        (
            "Host: gateway\r\nHost: gateway\r\n",
            "more than one Host header",
        ),
        (
            "Host: a b\r\n",
            "the Host header is not a valid host[:port]",
        ),
        (
            "Host: x@y\r\n",
            "the Host header is not a valid host[:port]",
        ),
        ("Host:\r\n", "the Host header is not a valid host[:port]"),
        ("", "an HTTP/1.1 request needs a Host header"),
    ];
    for path in [ROOM, OPEN, "/_anteroom/status"] {
        for (host_lines, reason) in heads {
            let request = format!("GET {path} HTTP/1.1\r\n{host_lines}Connection: close\r\n\r\n");
            let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
            stream.write_all(request.as_bytes()).await.expect("send");
            let response = read_response(&mut stream).await.expect("an answer");
            assert_eq!(response.status, 400, "{path} {host_lines:?}");
            let body: serde_json::Value =
                serde_json::from_slice(&response.body).expect("a JSON reason");
            assert_eq!(body["error"], reason, "{path} {host_lines:?}");
        }
    }
    assert_eq!(
        up.requests_served().await,
        before,
        "nothing reached the site"
    );
    // HTTP/1.0 may go without a Host.
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    stream
        .write_all(format!("GET {OPEN} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let response = read_response(&mut stream).await.expect("an answer");
    assert_eq!(response.status, 200);
    assert_eq!(up.requests_served().await, before + 1);
}

/// A request body that is broken (a malformed chunk) or cut short (the
/// client closes mid-body) is the client's fault: a `4xx`, or no answer to
/// a client that has gone. The gateway answers `502` and logs "upstream
/// request failed", as if the origin had failed.
#[tokio::test]
async fn a_broken_request_body_is_the_clients_fault_not_the_upstreams() {
    let up = upstream().await;
    let gw = gateway(&up).start().await;
    let malformed_chunk = format!(
        "POST {OPEN} HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\nzz\r\n"
    );
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    stream
        .write_all(malformed_chunk.as_bytes())
        .await
        .expect("send");
    let response = read_response(&mut stream).await.expect("an answer");
    assert_eq!(response.status, 400, "malformed chunk");

    let cut_short = format!(
        "POST {OPEN} HTTP/1.1\r\nHost: gateway\r\nContent-Length: 1000\r\n\
         Connection: close\r\n\r\nabc"
    );
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    stream.write_all(cut_short.as_bytes()).await.expect("send");
    stream.shutdown().await.expect("close our side");
    if let Some(response) = read_response(&mut stream).await {
        assert!(
            (400..500).contains(&response.status),
            "body cut short: {}",
            response.status
        );
    }
}

// ---------------------------------------------------------------- the storm

/// Where a hostile request is aimed, which decides who answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    /// A path the room protects (however spelled): the gateway answers.
    Room,
    /// `/_anteroom/...`: the gateway answers.
    Own,
    /// A path no room protects: the origin answers through the proxy.
    Open,
    /// Unparseable: whatever the path, the gateway's HTTP layer answers.
    Garbage,
}

/// One hostile request: the exact bytes, and how to end the connection.
struct Hostile {
    kind: &'static str,
    target: Target,
    /// Is this a write (anything but GET/HEAD) that a waiting visitor's
    /// door answers with the contract's `503` + `Retry-After`?
    write: bool,
    bytes: Vec<u8>,
    /// Close our side right after writing (a body cut short).
    half_close: bool,
}

/// One hostile request (its kind, target and whether it writes) and what
/// came back.
#[derive(Debug)]
struct Exchange {
    kind: &'static str,
    target: Target,
    write: bool,
    /// `None`: the connection ended without an HTTP/1 status line.
    status: Option<u16>,
    retry_after: bool,
    /// The answer is the origin's `/echo` report (JSON with a `method`).
    origin_echo: bool,
    timed_out: bool,
}

async fn storm(gw: &GatewayHandle) -> Vec<Exchange> {
    let tokens = Tokens::new();
    let addr = gw.addr;
    futures::stream::iter(0..STORM_REQUESTS)
        .map(|index| {
            let hostile = hostile_request(index, &tokens);
            async move { exchange(addr, source_address(index), hostile).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// A loopback address of its own for most connections; one in seven comes
/// from one address, which a per-client limit is entitled to slow down.
/// (Seven, being prime to the number of request kinds, spreads that share
/// over every kind.)
fn source_address(index: usize) -> IpAddr {
    if index % 7 == 3 {
        return IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    }
    let host = index % 250 + 1;
    let net = index / 250 % 250;
    IpAddr::V4(Ipv4Addr::new(127, 1, net as u8, host as u8))
}

async fn connect(gateway: SocketAddr, source: IpAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    // Linux routes all of 127/8 to the loopback; elsewhere fall back to the
    // default source address.
    if socket.bind(SocketAddr::new(source, 0)).is_err() {
        return TcpStream::connect(gateway).await;
    }
    socket.connect(gateway).await
}

async fn exchange(gateway: SocketAddr, source: IpAddr, hostile: Hostile) -> Exchange {
    let mut seen = Exchange {
        kind: hostile.kind,
        target: hostile.target,
        write: hostile.write,
        status: None,
        retry_after: false,
        origin_echo: false,
        timed_out: false,
    };
    let exchanged = tokio::time::timeout(HANG_GUARD, async {
        let mut stream = connect(gateway, source).await.expect("connect to gateway");
        // The gateway may answer and close before reading everything (a
        // 100 KB URI); what it answered is still there to read.
        let _ = stream.write_all(&hostile.bytes).await;
        if hostile.half_close {
            let _ = stream.shutdown().await;
        }
        read_response(&mut stream).await
    })
    .await;
    match exchanged {
        Err(_) => seen.timed_out = true,
        Ok(response) => {
            if let Some(response) = response {
                seen.status = Some(response.status);
                seen.retry_after = response.header("retry-after").is_some();
                seen.origin_echo = response.status == 200
                    && serde_json::from_slice::<serde_json::Value>(&response.body)
                        .is_ok_and(|body| body.get("method").is_some());
            }
        }
    }
    seen
}

/// A final (non-1xx) response off a raw connection.
struct RawResponse {
    status: u16,
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
}

/// Reads until one final response is complete (by `Content-Length`, the
/// last chunk, or the connection closing). `None` if the connection ended
/// (or broke) before a status line, or the answer is not HTTP/1.
async fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut start = 0;
    loop {
        if let Some(head_len) = find(&buffer[start..], b"\r\n\r\n").map(|at| at + 4) {
            let head = String::from_utf8_lossy(&buffer[start..start + head_len]).into_owned();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            if !status_line.starts_with("HTTP/1.") {
                return None;
            }
            let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
            if (100..200).contains(&status) {
                start += head_len;
                continue;
            }
            let headers: Vec<(String, String)> = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
                .collect();
            let content_length = headers
                .iter()
                .find(|(name, _)| name == "content-length")
                .and_then(|(_, value)| value.parse::<usize>().ok());
            let chunked = headers
                .iter()
                .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
            let body = &buffer[start + head_len..];
            let complete = match content_length {
                Some(length) => body.len() >= length,
                None if chunked => body.ends_with(b"0\r\n\r\n"),
                None => false,
            };
            if complete || buffer.len() >= READ_CAP {
                return Some(RawResponse {
                    status,
                    headers,
                    body: body.to_vec(),
                });
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    let body = buffer[start + head_len..].to_vec();
                    return Some(RawResponse {
                        status,
                        headers,
                        body,
                    });
                }
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
            continue;
        }
        if buffer.len() >= READ_CAP {
            return None;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

// ---------------------------------------------------------------- verdicts

fn assert_no_failures(exchanges: &[Exchange]) {
    let failures: Vec<&Exchange> = exchanges.iter().filter(|o| is_failure(o)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} hostile requests got an answer the gateway must never give, e.g. {:#?}",
        failures.len(),
        exchanges.len(),
        &failures[..failures.len().min(10)]
    );
    // The storm reached the gateway: waiting pages and refusals both came.
    let statuses: Vec<u16> = exchanges.iter().filter_map(|o| o.status).collect();
    assert!(statuses.contains(&200), "no request was answered 200");
    assert!(statuses.contains(&400), "no request was refused with 400");
}

fn is_failure(exchange: &Exchange) -> bool {
    let Some(status) = exchange.status else {
        return false;
    };
    match exchange.target {
        // The contract's answer to a client over its limit.
        _ if status == 429 => !exchange.retry_after,
        // Nobody without a pass reaches the origin through a room, and
        // `/_anteroom/` never reaches it at all.
        Target::Room | Target::Own | Target::Garbage if exchange.origin_echo => true,
        // The contract's answer to a write by a waiting visitor.
        Target::Room if status == 503 => !(exchange.write && exchange.retry_after),
        Target::Room | Target::Own | Target::Garbage => status >= 500,
        // Through the proxy: the origin's own 4xx/2xx are fine; a 502/504 is
        // shown in the report (the origin may refuse what we forwarded).
        Target::Open => status == 500 || status == 503 || status > 504,
    }
}

/// What each kind of request got, for whoever reads the test's output.
fn report(backend: &Backend, exchanges: &[Exchange]) {
    let mut table: BTreeMap<(&str, Target), BTreeMap<String, usize>> = BTreeMap::new();
    for exchange in exchanges {
        let answer = match (exchange.status, exchange.timed_out) {
            (_, true) => "hang-guard".to_owned(),
            (Some(status), _) => status.to_string(),
            (None, _) => "closed".to_owned(),
        };
        *table
            .entry((exchange.kind, exchange.target))
            .or_default()
            .entry(answer)
            .or_default() += 1;
    }
    eprintln!("storm on the {} backend:", backend.name());
    for ((kind, target), answers) in table {
        let answers: Vec<String> = answers
            .iter()
            .map(|(answer, count)| format!("{answer}×{count}"))
            .collect();
        eprintln!("  {kind:<28} {target:<8?} {}", answers.join(" "));
    }
    let proxied_errors = exchanges
        .iter()
        .filter(|o| o.target == Target::Open && matches!(o.status, Some(502 | 504)))
        .count();
    if proxied_errors > 0 {
        eprintln!("  note: {proxied_errors} requests to an open path got 502/504 from the proxy");
    }
}

// ---------------------------------------------------------------- requests

/// Tokens a forger might hold: signed with a key the gateway does not have,
/// genuine but altered, genuine but for another room, or of the wrong kind.
struct Tokens {
    forged_pass: String,
    forged_ticket: String,
    altered_pass: String,
    other_room_pass: String,
    ticket_as_pass: String,
}

impl Tokens {
    fn new() -> Tokens {
        let forger = Keyring::new(&["not-the-gateway-key-0123456789abcdefghij"]);
        let genuine = Keyring::new(&[COOKIE_KEY]);
        let pass = |room: &str| Pass {
            room: room.to_owned(),
            epoch: 0,
            id: new_pass_id(),
            admitted_at: 0,
            last_seen: u64::MAX / 2,
        };
        let ticket = Ticket {
            room: "vaccini".to_owned(),
            epoch: 0,
            number: 0,
            issued_at: 0,
        };
        let mut altered_pass = genuine.sign_pass(&pass("vaccini")).into_bytes();
        let middle = altered_pass.len() / 2;
        altered_pass[middle] = if altered_pass[middle] == b'A' {
            b'B'
        } else {
            b'A'
        };
        Tokens {
            forged_pass: forger.sign_pass(&pass("vaccini")),
            forged_ticket: forger.sign_ticket(&ticket),
            altered_pass: String::from_utf8(altered_pass).expect("base64 is ASCII"),
            // Genuine, for a room that does not exist at this gateway.
            other_room_pass: genuine.sign_pass(&pass("elsewhere")),
            ticket_as_pass: genuine.sign_ticket(&ticket),
        }
    }

    fn any(&self, random: &mut Random) -> &str {
        match random.below(5) {
            0 => &self.forged_pass,
            1 => &self.forged_ticket,
            2 => &self.altered_pass,
            3 => &self.other_room_pass,
            _ => &self.ticket_as_pass,
        }
    }
}

/// A small deterministic generator (xorshift64*): the same storm every run,
/// with no dependency.
struct Random(u64);

impl Random {
    fn new(seed: usize) -> Random {
        Random((seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn pick<'a, T: ?Sized>(&mut self, choices: &[&'a T]) -> &'a T {
        choices[self.below(choices.len() as u64) as usize]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A protected path, spelled so that only normalisation recognises it.
fn room_path(random: &mut Random) -> &'static str {
    random.pick(&[
        ROOM,
        "/echo/vaccini/",
        "/echo/vaccini/deeper?x=1",
        "/ECHO/Vaccini",
        "/echo/%76accini",
        "/echo%2Fvaccini",
        "/echo%2fvaccini/x",
        "//echo//vaccini",
        "/./echo/./vaccini",
        "/open/../echo/vaccini",
        "/echo/open/%2e%2e/vaccini",
        "/echo/vaccini/%ff%fe",
        "/echo/vaccini%",
        "/echo/vaccini/%zz%0",
        "/echo/vaccini/%00",
        "/echo/vaccini;jsessionid=1",
        "/echo/vacciniXYZ",
        "/_anteroom/../echo/vaccini",
        "/_anteroom/%2e%2e/echo/vaccini",
    ])
}

/// Junk for `?room=`.
fn room_junk(random: &mut Random) -> String {
    match random.below(10) {
        0 => "x".repeat(5000),
        1 => "vaccini%00".to_owned(),
        2 => "../vaccini".to_owned(),
        3 => "vaccini&room=calm&room=".to_owned(),
        4 => "%ff%fe%".to_owned(),
        5 => "=&&==&room".to_owned(),
        6 => "VACCINI".to_owned(),
        7 => "<script>alert(1)</script>".replace(['<', '>'], "%3C"),
        8 => "vaccini%26room%3Dcalm".to_owned(),
        _ => String::new(),
    }
}

/// A well-framed request with the given method, target and extra header
/// lines (each ending in CRLF), closing after the answer.
fn request(method: &str, target: &str, headers: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{method} {target} HTTP/1.1\r\nHost: gateway\r\n").into_bytes();
    bytes.extend_from_slice(headers);
    bytes.extend_from_slice(b"Connection: close\r\n\r\n");
    bytes
}

/// A request with a body, framing and all given by the caller.
fn with_body(method: &str, target: &str, framing: &[u8], body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{method} {target} HTTP/1.1\r\nHost: gateway\r\n").into_bytes();
    bytes.extend_from_slice(framing);
    bytes.extend_from_slice(b"Connection: close\r\n\r\n");
    bytes.extend_from_slice(body);
    bytes
}

fn hostile_request(index: usize, tokens: &Tokens) -> Hostile {
    let mut random = Random::new(index);
    let hostile = |kind, target, bytes| Hostile {
        kind,
        target,
        write: false,
        bytes,
        half_close: false,
    };
    // Most kinds aim at a room path, the gateway's own paths or an open one.
    let (target, path): (Target, String) = match random.below(6) {
        0..=2 => (Target::Room, room_path(&mut random).to_owned()),
        3 | 4 => (
            Target::Own,
            format!(
                "{}?room={}",
                random.pick(&["/_anteroom/status", "/_anteroom/leave", "/_anteroom/nope"]),
                room_junk(&mut random)
            ),
        ),
        _ => (Target::Open, format!("{OPEN}/x?y=1")),
    };
    match index % 24 {
        0 => {
            let len = 1 + random.below(300) as usize;
            let mut bytes = random.bytes(len);
            bytes.extend_from_slice(b"\r\n\r\n");
            hostile("garbage request line", Target::Garbage, bytes)
        }
        1 => {
            let method = random.pick(&[
                "G@T", "GET\x01", "{}", "get", "FOO", "BREW", "PATCH", "DELETE", "PUT", "CONNECT",
                "TRACE", "OPTIONS", "PRI",
            ]);
            let mut invalid = hostile("invalid method", target, request(method, &path, b""));
            invalid.write = true;
            invalid
        }
        2 => {
            let method = "A".repeat(1 + random.below(2000) as usize);
            let mut long = hostile("very long method", target, request(&method, &path, b""));
            long.write = true;
            long
        }
        3 => {
            let (long, target) = match random.below(4) {
                0 => (format!("{ROOM}/{}", "a".repeat(100_000)), Target::Room),
                1 => (
                    format!("/_anteroom/status?room={}", "v".repeat(100_000)),
                    Target::Own,
                ),
                2 => (
                    format!("/echo/{}vaccini", "%2F".repeat(33_000)),
                    Target::Room,
                ),
                _ => (format!("{OPEN}/{}", "%41".repeat(33_000)), Target::Open),
            };
            hostile("100 KB URI", target, request("GET", &long, b""))
        }
        4 => {
            // Raw bytes a URI may not hold.
            let mut bytes = b"GET /echo/vaccini/".to_vec();
            let len = 1 + random.below(40) as usize;
            bytes.extend(random.bytes(len));
            bytes.extend_from_slice(b" HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n");
            hostile("invalid bytes in path", Target::Room, bytes)
        }
        5 => {
            let (target_form, target) = *random.pick(&[
                &("*", Target::Open),
                &("http://evil.example/echo/vaccini", Target::Room),
                &("HTTP://EVIL.EXAMPLE:80/ECHO/%76accini", Target::Room),
                &("http://evil.example:99999/", Target::Open),
                &("evil.example:443", Target::Open),
                &("?only=query", Target::Garbage),
                &("/echo/ vaccini", Target::Room),
                &("/echo/vaccini#fragment", Target::Room),
                &("/echo/vaccini/città", Target::Room),
                &("/echo/città", Target::Open),
                &("\\echo\\vaccini", Target::Room),
                &("", Target::Garbage),
            ]);
            let method = random.pick(&["GET", "OPTIONS", "CONNECT"]);
            let mut odd = hostile(
                "odd request target",
                target,
                request(method, target_form, b""),
            );
            odd.write = method != "GET";
            odd
        }
        6 => {
            let mut cookie = b"Cookie: anteroom_ticket_vaccini=".to_vec();
            cookie.extend("A".repeat(10 * 1024).into_bytes());
            cookie.extend_from_slice(b"\r\n");
            hostile("10 KB cookie", target, request("GET", &path, &cookie))
        }
        7 => {
            // About 10 KB: every tenth a token, the rest short junk, some
            // under our names.
            let mut cookie = b"Cookie: ".to_vec();
            for number in 0..300u32 {
                let pair = if number.is_multiple_of(10) {
                    let name = random.pick(&["anteroom_pass_vaccini", "anteroom_ticket_vaccini"]);
                    format!("{name}={}; ", tokens.any(&mut random))
                } else {
                    let name = random.pick(&["anteroom_pass_vaccini", "s", "", "anteroom_"]);
                    format!("{name}=j{number}; ")
                };
                cookie.extend(pair.into_bytes());
            }
            cookie.extend_from_slice(b"\r\n");
            hostile("300 cookies", target, request("GET", &path, &cookie))
        }
        8 => {
            let mut cookies =
                b"Cookie: anteroom_pass_vaccini=\xff\xfe\x80; a=\xc3\x28\r\n".to_vec();
            cookies.extend_from_slice(b"Cookie: anteroom_ticket_vaccini=\"");
            cookies.extend(random.bytes(20).into_iter().map(|byte| byte | 0x80));
            cookies.extend_from_slice(b"\"\r\nCookie: ;;;===;\r\n");
            hostile("non-UTF-8 cookies", target, request("GET", &path, &cookies))
        }
        9 => {
            let mut cookies = Vec::new();
            for _ in 0..1 + random.below(5) {
                let name = random.pick(&["anteroom_pass_vaccini", "anteroom_ticket_vaccini"]);
                let token = tokens.any(&mut random);
                cookies.extend(format!("Cookie: {name}={token}\r\n").into_bytes());
            }
            hostile("forged tokens", target, request("GET", &path, &cookies))
        }
        10 => {
            // Request smuggling: both framings, with a second request behind.
            let framing = random.pick(&[
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "Transfer-Encoding: chunked\r\nContent-Length: 50\r\n",
                "Content-Length: 5\r\nTransfer-Encoding: chunked, identity\r\n",
                "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n",
                "Transfer-Encoding: gzip\r\n",
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "Transfer-Encoding : chunked\r\n",
            ]);
            let body = format!("0\r\n\r\nGET {ROOM} HTTP/1.1\r\nHost: gateway\r\n\r\n");
            let bytes = with_body("POST", &path, framing.as_bytes(), body.as_bytes());
            let mut smuggling = hostile("Content-Length + chunked", target, bytes);
            smuggling.write = true;
            smuggling
        }
        11 => {
            let framing = random.pick(&[
                "Content-Length: 3\r\nContent-Length: 4\r\n",
                "Content-Length: 3, 4\r\n",
                "Content-Length: 3\r\nContent-Length: 3\r\n",
            ]);
            let bytes = with_body("POST", &path, framing.as_bytes(), b"abcd");
            let mut two = hostile("two Content-Lengths", target, bytes);
            two.write = true;
            two
        }
        12 => {
            let length = random.pick(&[
                "-1",
                "-0",
                "99999999999999999999999",
                "18446744073709551615",
                "1e3",
                "0x10",
                "+5",
                " 5 ",
                "5 5",
                "",
                "NaN",
            ]);
            let framing = format!("Content-Length: {length}\r\n");
            let bytes = with_body("POST", &path, framing.as_bytes(), b"hello");
            let mut odd = hostile("odd Content-Length", target, bytes);
            odd.write = true;
            odd
        }
        13 => {
            // Promises a body, sends part of it, closes its side.
            let framing =
                random.pick(&["Content-Length: 1000\r\n", "Transfer-Encoding: chunked\r\n"]);
            let body = random.pick(&["abc", "10\r\nabc", "zz\r\n"]);
            let method = random.pick(&["POST", "GET", "PUT"]);
            let bytes = with_body(method, &path, framing.as_bytes(), body.as_bytes());
            let mut short = hostile("body cut short", target, bytes);
            short.write = method != "GET";
            short.half_close = true;
            short
        }
        14 => {
            let value = match random.below(5) {
                0 => "it;q=0.5,".repeat(1200),
                1 => "it;q=1e99, en;q=NaN, *;q=-1, it;q=0x1, en;q=inf".to_owned(),
                2 => ";;;,,,===".repeat(1200),
                3 => format!("{}it", "-".repeat(10 * 1024)),
                _ => "en;q=0.".to_owned() + &"9".repeat(10 * 1024),
            };
            let mut header = format!("Accept-Language: {value}\r\n").into_bytes();
            header.extend_from_slice(b"Accept-Language: \xff\xfe\r\n");
            hostile(
                "junk Accept-Language",
                target,
                request("GET", &path, &header),
            )
        }
        15 => {
            let value = random.pick(&[
                "application/json",
                "application/json, text/html",
                "text/html;q=0, application/json;q=1",
                "application/jsonx",
                "*/*;q=",
                "\u{1F4A5}",
                ",,,,",
            ]);
            let mut header = format!("Accept: {value}\r\n").into_bytes();
            header.extend(format!("Accept: {}\r\n", "application/json;".repeat(500)).into_bytes());
            hostile("junk Accept", target, request("GET", &path, &header))
        }
        16 => {
            // The gateway trusts the loopback as a proxy, so it reads these.
            let forged = format!("203.0.{}.{}", random.below(256), random.below(256));
            let chain = match random.below(6) {
                0 => "::::, 999.1.1.1, <script>, 10.0.0.1/8, ,,".to_owned(),
                1 => format!("{forged}, ").repeat(1000),
                2 => format!("{}{forged}", "junk, ".repeat(500)),
                3 => format!("[::1]:80, ::ffff:{forged}, fe80::1%eth0, {forged}"),
                4 => format!("{forged},{forged} ,\t{forged}"),
                _ => String::new(),
            };
            let mut header = format!("X-Forwarded-For: {chain}\r\n").into_bytes();
            header.extend_from_slice(b"X-Forwarded-For: \xff\xfe, 1.1.1.1\r\n");
            header
                .extend_from_slice(b"X-Forwarded-Proto: https, http\r\nForwarded: for=\"[::1\r\n");
            hostile(
                "junk X-Forwarded-For",
                target,
                request("GET", &path, &header),
            )
        }
        17 => {
            let line = random.pick(&[
                "GET /echo/vaccini HTTP/1.0\r\n\r\n",
                "GET /echo/vaccini HTTP/0.9\r\n\r\n",
                "GET /echo/vaccini\r\n\r\n",
                "GET /\r\n\r\n",
                "GET /echo/vaccini HTTP/2.0\r\n\r\n",
                "GET /echo/vaccini HTTP/1.2\r\nConnection: close\r\n\r\n",
                "GET /echo/vaccini HTTP/9.9\r\n\r\n",
                "GET /echo/vaccini http/1.1\r\n\r\n",
                "GET  /echo/vaccini  HTTP/1.1\r\nConnection: close\r\n\r\n",
                "GET /echo/vaccini HTTP/1.1\nConnection: close\n\n",
                "GET /echo/vaccini HTTP/1.1\r\nConnection: close\r\n\r\n",
                "HEAD /echo/vaccini HTTP/1.0\r\nAccept: application/json\r\n\r\n",
            ]);
            hostile(
                "HTTP/1.0 and 0.9 lines",
                Target::Room,
                line.as_bytes().to_vec(),
            )
        }
        18 => {
            let lines = random.pick(&[
                "Host gateway\r\n",
                "Cookie anteroom_pass_vaccini\r\n",
                ": empty name\r\n",
                "Bad Name: x\r\n",
                "X-Folded: a\r\n b\r\n",
                "\tX-Tab: y\r\n",
                "X-Colon:: y\r\n",
            ]);
            hostile(
                "header line without colon",
                target,
                request("GET", &path, lines.as_bytes()),
            )
        }
        19 => {
            let (bytes, target) = match random.below(4) {
                0 => (
                    b"GET /echo/vac\0cini HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
                    Target::Garbage,
                ),
                1 => (request("GET", &path, b"X-Nul: a\0b\r\n"), target),
                2 => (request("GET", &path, b"X-\0Nul: ab\r\n"), target),
                _ => (b"\0\0\0\0GET / HTTP/1.1\r\n\r\n".to_vec(), Target::Garbage),
            };
            hostile("NUL bytes", target, bytes)
        }
        20 => {
            let method = random.pick(&["GET", "HEAD", "POST", "DELETE"]);
            let target_path = format!("/_anteroom/status?room={}", room_junk(&mut random));
            let cookie = format!(
                "Cookie: anteroom_ticket_vaccini={}\r\n",
                tokens.any(&mut random)
            );
            let bytes = request(method, &target_path, cookie.as_bytes());
            hostile("status with junk", Target::Own, bytes)
        }
        21 => {
            let method = random.pick(&["GET", "POST", "PUT"]);
            let target_path = format!("/_anteroom/leave?room={}", room_junk(&mut random));
            let cookie = format!(
                "Cookie: anteroom_pass_vaccini={}\r\n",
                tokens.any(&mut random)
            );
            let mut framing = cookie.into_bytes();
            framing.extend_from_slice(b"Content-Length: 7\r\n");
            let bytes = with_body(method, &target_path, &framing, b"\xff\x00junk");
            hostile("leave with junk", Target::Own, bytes)
        }
        22 => {
            let (bytes, target) = match random.below(4) {
                // HTTP/2 prior knowledge, then garbage frames.
                0 => {
                    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
                    bytes.extend(random.bytes(64));
                    (bytes, Target::Garbage)
                }
                1 => (
                    request(
                        "GET",
                        &path,
                        b"Upgrade: h2c\r\nHTTP2-Settings: !!!\r\nConnection: Upgrade, HTTP2-Settings\r\n",
                    ),
                    target,
                ),
                2 => (
                    request("GET", &path, b"Expect: 100-continue\r\nExpect: junk\r\n"),
                    target,
                ),
                _ => {
                    let mut headers = Vec::new();
                    for number in 0..200 {
                        headers.extend(format!("X-Many-{number}: {number}\r\n").into_bytes());
                    }
                    (request("GET", &path, &headers), target)
                }
            };
            hostile("protocol oddities", target, bytes)
        }
        _ => {
            // Two requests in one write, the first promising no body.
            let mut bytes = format!("GET {path} HTTP/1.1\r\nHost: gateway\r\n\r\n").into_bytes();
            bytes.extend(request("GET", ROOM, b"Host: other\r\n"));
            hostile("pipelined pair", target, bytes)
        }
    }
}
