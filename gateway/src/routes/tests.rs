//! The public listener's routing, called as a function: requests with an
//! in-memory body and no socket, against a gateway on the memory backend
//! whose upstream does not answer (nothing listens on 127.0.0.1:9), so any
//! request that reached it would come back `502`.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use anteroom_config::Config;

use super::handle;
use crate::{Body, Clock, Gateway};

const PEER: &str = "192.0.2.10:40000";

/// A gateway with one room (`vaccini`, over `/prenota`) of `capacity`, not
/// serving: its room is stepped by hand.
fn gateway(capacity: u32, limits: &str) -> Gateway {
    let config = Config::from_toml(
        &format!(
            "upstream = \"http://127.0.0.1:9\"\n\
             upstream_timeout_seconds = 2\n\
             [secrets]\ncookie_keys = [\"a-routing-test-cookie-key-of-32-characters\"]\n\
             [limits]\n{limits}\n\
             [[room]]\nname = \"vaccini\"\npaths = [\"/prenota\"]\ncapacity = {capacity}\nadmit_per_minute = 60\n"
        ),
        |_| None,
    )
    .expect("the test's config is valid");
    Gateway::with_clock(config, Clock::manual()).expect("the gateway is built")
}

async fn step(gateway: &Gateway) {
    let shared = &gateway.shared;
    for room in &shared.rooms {
        let snapshot = shared
            .store
            .advance(&room.params)
            .await
            .expect("the memory store answers");
        room.observe(snapshot);
    }
}

/// An HTTP/1.1 request with `headers`, and `Host: booking.example` as every
/// client sends unless `headers` has a Host of its own.
fn request(
    method: Method,
    target: &str,
    headers: &[(header::HeaderName, &str)],
) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.method_mut() = method;
    *request.uri_mut() = target.parse().expect("a valid target");
    if !headers.iter().any(|(name, _)| name == header::HOST) {
        request
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_static("booking.example"));
    }
    for (name, value) in headers {
        request
            .headers_mut()
            .append(name, HeaderValue::from_str(value).expect("a valid header"));
    }
    request
}

async fn ask(gateway: &Gateway, request: Request<Full<Bytes>>) -> Response<Body> {
    let peer: SocketAddr = PEER.parse().expect("an address");
    handle(&gateway.shared, request, peer).await
}

fn header(response: &Response<Body>, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// `name=value` of each cookie set, as a browser sends them back.
fn cookies_set(response: &Response<Body>) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

async fn json(response: Response<Body>) -> serde_json::Value {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("our bodies do not fail")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("a JSON body")
}

#[tokio::test]
async fn the_gateways_own_paths_are_answered_here_never_upstream() {
    let gateway = gateway(1, "");
    step(&gateway).await;
    for target in [
        "/_anteroom/nothing-here",
        "/_anteroom/../_anteroom/x",
        "/_anteroom",
    ] {
        let response = ask(&gateway, request(Method::GET, target, &[])).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{target}");
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    }
    let response = ask(&gateway, request(Method::DELETE, "/_anteroom/status", &[])).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_newcomer_to_a_full_room_waits_and_follows_the_place_by_status() {
    let gateway = gateway(1, "");
    step(&gateway).await;
    let first = ask(
        &gateway,
        request(Method::GET, "/prenota", &[(header::ACCEPT, "text/html")]),
    )
    .await;
    // Inside, so sent upstream, which does not answer: the site-down page,
    // 503 for a visitor holding a pass, who keeps it.
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(header(&first, header::CONTENT_TYPE).starts_with("text/html"));
    assert!(cookies_set(&first).contains("anteroom_pass_vaccini="));

    let second = ask(
        &gateway,
        request(Method::GET, "/prenota", &[(header::ACCEPT, "text/html")]),
    )
    .await;
    assert_eq!(second.status(), StatusCode::OK);
    assert!(header(&second, header::CONTENT_TYPE).starts_with("text/html"));
    assert!(header(&second, header::RETRY_AFTER).parse::<u64>().is_ok());
    assert_eq!(header(&second, header::CACHE_CONTROL), "no-store");
    let ticket = cookies_set(&second);
    assert!(ticket.contains("anteroom_ticket_vaccini="), "{ticket}");

    step(&gateway).await;
    let status = json(
        ask(
            &gateway,
            request(
                Method::GET,
                "/_anteroom/status",
                &[(header::COOKIE, &ticket)],
            ),
        )
        .await,
    )
    .await;
    assert_eq!(status["state"], "waiting");
    assert_eq!(status["position"], 1);
    // A write while waiting is never taken for success.
    let write = ask(
        &gateway,
        request(
            Method::POST,
            "/prenota",
            &[
                (header::COOKIE, &ticket),
                (header::ACCEPT, "application/json"),
            ],
        ),
    )
    .await;
    assert_eq!(write.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(write).await["state"], "waiting");
    // A status poll without a place takes none.
    let nobody = json(ask(&gateway, request(Method::GET, "/_anteroom/status", &[])).await).await;
    assert_eq!(nobody["state"], "none");
    assert_eq!(
        gateway.shared.rooms[0].snapshot().map(|s| s.issued),
        Some(2)
    );
}

#[tokio::test]
async fn outside_every_room_a_dead_site_is_a_502_with_retry_after() {
    let gateway = gateway(1, "");
    let response = ask(
        &gateway,
        request(
            Method::GET,
            "/elsewhere",
            &[(header::ACCEPT, "application/json")],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(
        header(&response, header::RETRY_AFTER)
            .parse::<u64>()
            .is_ok()
    );
    assert!(json(response).await["error"].is_string());
}

#[tokio::test]
async fn over_the_rate_limit_the_answer_is_429_before_anything_else() {
    let gateway = gateway(1, "per_ip_per_second = 1\nper_ip_burst = 1");
    let first = ask(&gateway, request(Method::GET, "/_anteroom/nothing", &[])).await;
    assert_eq!(first.status(), StatusCode::NOT_FOUND);
    let second = ask(
        &gateway,
        request(
            Method::GET,
            "/_anteroom/nothing",
            &[(header::ACCEPT, "application/json")],
        ),
    )
    .await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        header(&second, header::RETRY_AFTER)
            .parse::<u64>()
            .is_ok_and(|seconds| seconds >= 1)
    );
    assert_eq!(json(second).await["error"], "too many requests");
}

#[tokio::test]
async fn the_language_switch_keeps_the_choice_and_goes_back_without_its_parameter() {
    let gateway = gateway(1, "");
    let response = ask(
        &gateway,
        request(Method::GET, "/prenota/oggi?slot=9&anteroom_lang=it", &[]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&response, header::LOCATION), "./oggi?slot=9");
    assert_eq!(cookies_set(&response), "anteroom_lang=it");
}

/// A pass cookie signed with the gateway's own key, for room `vaccini`.
fn pass_cookie(gateway: &Gateway, id: &str, last_seen: u64) -> String {
    let shared = &gateway.shared;
    let room = &shared.rooms[0];
    let token = shared.keys.sign_pass(&crate::token::Pass {
        room: "vaccini".to_owned(),
        epoch: room.snapshot().expect("stepped").epoch,
        id: id.to_owned(),
        admitted_at: last_seen,
        last_seen,
    });
    format!("{}={token}", room.pass_cookie)
}

#[tokio::test]
async fn only_a_good_pass_exempts_a_status_poll_from_the_rate_limit() {
    let gateway = gateway(1, "per_ip_per_second = 1\nper_ip_burst = 1");
    step(&gateway).await;
    let now = gateway.shared.store_clock.now();
    let polls = |cookie: String| {
        let gateway = &gateway;
        async move {
            let mut codes = Vec::new();
            for _ in 0..3 {
                let response = ask(
                    gateway,
                    request(
                        Method::GET,
                        "/_anteroom/status",
                        &[(header::COOKIE, &cookie)],
                    ),
                )
                .await;
                codes.push(response.status().as_u16());
            }
            codes
        }
    };
    // A live pass: every poll is answered, whatever the rate.
    let live = pass_cookie(&gateway, "0123456789abcdef0123456789abcdef", now);
    assert_eq!(polls(live).await, [200, 200, 200]);
    // Genuine but past its session (300 s): limited like anything else
    // (one a second; the burst of one may be left).
    let limited = |codes: Vec<u16>| codes.iter().filter(|code| **code == 429).count() >= 2;
    let expired = pass_cookie(&gateway, "1123456789abcdef0123456789abcdef", now - 301_000);
    assert!(limited(polls(expired).await));
    // Genuine and current, but its holder left: limited too.
    let left = "2123456789abcdef0123456789abcdef";
    gateway.shared.rooms[0].revoke(left, now);
    assert!(limited(polls(pass_cookie(&gateway, left, now)).await));
}

/// Two `Host` lines, or one that is not `host[:port]`, or none in HTTP/1.1:
/// `400` saying so, before any room looks at the request (no place taken)
/// and without reaching the upstream (which would answer `502`).
#[tokio::test]
async fn a_duplicate_invalid_or_missing_host_is_refused_before_any_room() {
    let gateway = gateway(1, "");
    step(&gateway).await;
    let cases: [(&[&str], &str); 6] = [
        (
            &["booking.example", "booking.example"],
            "more than one Host header",
        ),
        (
            &["booking.example", "evil.example"],
            "more than one Host header",
        ),
        (&["a b"], "the Host header is not a valid host[:port]"),
        (&["x@y"], "the Host header is not a valid host[:port]"),
        (&[""], "the Host header is not a valid host[:port]"),
        (
            &["booking.example:99999"],
            "the Host header is not a valid host[:port]",
        ),
    ];
    for target in ["/prenota", "/elsewhere", "/_anteroom/status"] {
        for (hosts, message) in cases {
            let headers: Vec<(header::HeaderName, &str)> =
                hosts.iter().map(|host| (header::HOST, *host)).collect();
            let response = ask(&gateway, request(Method::GET, target, &headers)).await;
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{target} {hosts:?}"
            );
            assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
            assert_eq!(json(response).await["error"], message, "{target} {hosts:?}");
        }
        let mut missing = request(Method::GET, target, &[]);
        missing.headers_mut().remove(header::HOST);
        let response = ask(&gateway, missing).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{target}");
        assert_eq!(
            json(response).await["error"],
            "an HTTP/1.1 request needs a Host header"
        );
    }
    assert_eq!(
        gateway.shared.rooms[0].snapshot().map(|s| s.issued),
        Some(0),
        "no place was taken"
    );
    // HTTP/1.0 may go without.
    let mut old = request(Method::GET, "/_anteroom/nothing", &[]);
    old.headers_mut().remove(header::HOST);
    *old.version_mut() = http::Version::HTTP_10;
    assert_eq!(ask(&gateway, old).await.status(), StatusCode::NOT_FOUND);
    // A good Host, with a port or an IPv6 literal, is no reason to refuse.
    for host in ["booking.example:8443", "[::1]:3000", "127.0.0.1"] {
        let response = ask(
            &gateway,
            request(Method::GET, "/_anteroom/nothing", &[(header::HOST, host)]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{host}");
    }
}

/// A path whose meaning depends on how the site decodes it (five layers of
/// escapes, overlong UTF-8, a padded segment, fullwidth letters, a control
/// character) is refused with `400` and the reason, before any room and
/// without reaching the upstream, for every path, protected or not. An
/// ordinary UTF-8 path is not.
#[tokio::test]
async fn a_path_that_cannot_be_normalised_is_refused_before_any_room() {
    let gateway = gateway(1, "");
    step(&gateway).await;
    for (target, reason) in [
        (
            "/%2525252570renota",
            "the path is percent-encoded more than 4 times over",
        ),
        (
            "/%c0%afprenota",
            "the path's escapes do not decode to UTF-8",
        ),
        (
            "/%20prenota",
            "a path segment begins or ends with white space",
        ),
        ("/prenota/%00", "the path holds a control character"),
        (
            "/%EF%BD%90%EF%BD%92%EF%BD%85%EF%BD%8E%EF%BD%8F%EF%BD%94%EF%BD%81",
            "the path holds a character that stands for an ASCII one (such as a fullwidth letter)",
        ),
        (
            "/_anteroom/%c0%af",
            "the path's escapes do not decode to UTF-8",
        ),
        (
            "/elsewhere/%ff",
            "the path's escapes do not decode to UTF-8",
        ),
    ] {
        let response = ask(&gateway, request(Method::GET, target, &[])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{target}");
        assert_eq!(json(response).await["error"], reason, "{target}");
    }
    assert_eq!(
        gateway.shared.rooms[0].snapshot().map(|s| s.issued),
        Some(0),
        "no place was taken"
    );
    // Ordinary UTF-8, inside a room and outside: the room's door (a place,
    // and the site, which does not answer: 503 with the pass) and the
    // upstream (502).
    let inside = ask(
        &gateway,
        request(Method::GET, "/prenota/citt%C3%A0/%C3%A8", &[]),
    )
    .await;
    assert_eq!(inside.status(), StatusCode::SERVICE_UNAVAILABLE);
    let outside = ask(&gateway, request(Method::GET, "/città/a%2Fb+c", &[])).await;
    assert_eq!(outside.status(), StatusCode::BAD_GATEWAY);
}
