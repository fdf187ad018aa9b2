//! Tickets and passes as the visitor's browser carries them: what the
//! gateway hands out, what it accepts, and that no made-up, altered, stolen,
//! stale or malformed cookie gets anybody past a full room.
//!
//! Tokens are minted here with the gateway's own `Keyring`, so a test can
//! hold a genuine pass, a pass signed with another key, or one that ran out
//! long ago. Hostile cookies go out on a client without a cookie jar, in
//! exactly the `Cookie` headers a test writes.

use anteroom_gateway::token::{Keyring, Pass, Ticket};
use anteroom_tests::{
    Backend, COOKIE_KEY, CookieSecure, GatewayHandle, RedisServer, cookie_value, gateway, header,
    plain_client, room, set_cookies, upstream,
};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

/// A second secret, for key rotation.
const NEW_KEY: &str = "rotated-cookie-key-zyxwvutsrqponmlkjihgfedcba98";

const SESSION_SECONDS: u64 = 300;

// ---------------------------------------------------------------- helpers

fn pass_cookie(room: &str) -> String {
    format!("anteroom_pass_{room}")
}

fn ticket_cookie(room: &str) -> String {
    format!("anteroom_ticket_{room}")
}

/// Takes the room's free place with a new client and returns its pass.
async fn enter(gw: &GatewayHandle, room: &str) -> String {
    let response = plain_client()
        .get(gw.url(&format!("/echo/{room}")))
        .send()
        .await
        .expect("request");
    let pass = cookie_value(&response, &pass_cookie(room)).expect("let straight in, with a pass");
    assert!(
        anteroom_tests::reached_origin(response).await,
        "the first visitor of an empty room goes straight in"
    );
    pass
}

/// `GET path` with exactly these `Cookie` headers.
async fn get_with_cookies(gw: &GatewayHandle, path: &str, cookies: &[&[u8]]) -> reqwest::Response {
    let mut request = plain_client().get(gw.url(path));
    for cookie in cookies {
        request = request.header(
            "cookie",
            HeaderValue::from_bytes(cookie).expect("a header value the client can send"),
        );
    }
    request.send().await.expect("request")
}

/// What a request reached: the origin, or the gateway's waiting page for
/// `room` (with its headers), or something else (the message says what).
#[derive(Debug, PartialEq, Eq)]
enum Reached {
    Origin,
    WaitingPage,
    Other(String),
}

async fn reached(response: reqwest::Response, room: &str) -> Reached {
    let status = response.status();
    let content_type = header(&response, "content-type")
        .unwrap_or_default()
        .to_owned();
    let no_store = header(&response, "cache-control") == Some("no-store");
    let retry_after = header(&response, "retry-after").is_some();
    let body = response.text().await.unwrap_or_default();
    if status == 200
        && serde_json::from_str::<Value>(&body).is_ok_and(|value| value.get("method").is_some())
    {
        return Reached::Origin;
    }
    if status == 200
        && content_type.starts_with("text/html")
        && no_store
        && retry_after
        && body.contains(&format!(
            "data-status-url=\"/_anteroom/status?room={room}\""
        ))
    {
        return Reached::WaitingPage;
    }
    Reached::Other(format!("{status} {content_type}: {body}"))
}

fn now_ms() -> u64 {
    anteroom_gateway::Clock::system().now()
}

fn pass_id(seed: u128) -> String {
    format!("{:032x}", seed ^ 0x5eed_0000_0000_0000_0000_0000_0000_0000)
}

fn pass(room: &str, seed: u128, last_seen: u64) -> Pass {
    Pass {
        room: room.to_owned(),
        epoch: 0,
        id: pass_id(seed),
        admitted_at: last_seen,
        last_seen,
    }
}

/// `token` with the character at `index` replaced by another valid one.
fn tampered(token: &str, index: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

// ---------------------------------------------------------------- entry

async fn an_empty_room_lets_the_first_visitor_straight_in(backend: Backend) {
    let up = upstream().await;
    let gw = gateway(&up)
        .backend(&backend)
        .room(room("vaccini").capacity(1).session_seconds(SESSION_SECONDS))
        .start()
        .await;
    let visitor = gw.visitor();
    let response = visitor.get("/echo/vaccini/prenota").await;
    let cookies = set_cookies(&response, "anteroom_pass_vaccini");
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = &cookies[0];
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for expected in [
        "Path=/",
        &format!("Max-Age={SESSION_SECONDS}"),
        "HttpOnly",
        "SameSite=Lax",
    ] {
        assert!(
            attributes.contains(&expected),
            "{expected} missing: {cookie}"
        );
    }
    assert!(
        !attributes.contains(&"Secure"),
        "plain HTTP: a Secure cookie would never come back: {cookie}"
    );
    assert!(
        set_cookies(&response, "anteroom_ticket_vaccini").is_empty(),
        "no ticket for a visitor let straight in"
    );
    let token = cookie_value(&response, "anteroom_pass_vaccini").expect("a pass");
    let pass = Keyring::new(&[COOKIE_KEY])
        .verify_pass(&token)
        .expect("a genuine pass, signed with the configured key");
    assert_eq!(pass.room, "vaccini");
    assert_eq!(pass.id.len(), 32);
    let echoed: Value = response.json().await.expect("the origin answered");
    assert_eq!(echoed["path"], "/echo/vaccini/prenota");

    // The pass keeps the visitor inside; the room is full for anybody else.
    assert!(anteroom_tests::reached_origin(visitor.get("/echo/vaccini").await).await);
    assert_eq!(visitor.status("vaccini").await["state"], "admitted");
    let other = gw.visitor().get("/echo/vaccini").await;
    assert_eq!(reached(other, "vaccini").await, Reached::WaitingPage);

    // Behind a TLS terminator the cookies are Secure.
    let up2 = upstream().await;
    let gw2 = gateway(&up2).room(room("vaccini")).start().await;
    let response = plain_client()
        .get(gw2.url("/echo/vaccini"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("request");
    let cookies = set_cookies(&response, "anteroom_pass_vaccini");
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(
        cookies[0]
            .split(';')
            .any(|attribute| attribute.trim() == "Secure"),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn an_empty_room_lets_the_first_visitor_straight_in_memory() {
    an_empty_room_lets_the_first_visitor_straight_in(Backend::Memory).await;
}

#[tokio::test]
async fn an_empty_room_lets_the_first_visitor_straight_in_redis() {
    let redis = RedisServer::start().await;
    an_empty_room_lets_the_first_visitor_straight_in(Backend::Redis(redis.url())).await;
}

// ---------------------------------------------------------------- hostile cookies

async fn hostile_cookies_get_the_waiting_page(backend: Backend) {
    let up = upstream().await;
    let gw = gateway(&up)
        .backend(&backend)
        .room(room("vaccini").capacity(1).session_seconds(SESSION_SECONDS))
        .start()
        .await;
    let _occupant = enter(&gw, "vaccini").await;
    let genuine_keys = Keyring::new(&[COOKIE_KEY]);
    let other_keys = Keyring::new(&[NEW_KEY]);
    let now = now_ms();

    let genuine = genuine_keys.sign_pass(&pass("vaccini", 1, now));
    // The control: a genuine pass gets in even though the room is full
    // (holding a pass is being inside), so every refusal below is the
    // cookie's fault.
    for cookies in [
        vec![format!("anteroom_pass_vaccini={genuine}").into_bytes()],
        vec![format!("session=abc; anteroom_pass_vaccini=\"{genuine}\"; lang=it").into_bytes()],
        vec![
            b"anteroom_pass_vaccini=garbage".to_vec(),
            format!("anteroom_pass_vaccini={genuine}").into_bytes(),
        ],
    ] {
        let cookies: Vec<&[u8]> = cookies.iter().map(Vec::as_slice).collect();
        let response = get_with_cookies(&gw, "/echo/vaccini", &cookies).await;
        assert_eq!(reached(response, "vaccini").await, Reached::Origin);
    }
    let served = up.requests_served().await;

    let forged = other_keys.sign_pass(&pass("vaccini", 2, now));
    let (body, signature) = genuine.rsplit_once('.').expect("KID.PAYLOAD.SIG");
    let signature_start = body.len() + 1;
    let payload_start = genuine.find('.').expect("KID.") + 1;
    let expired = genuine_keys.sign_pass(&pass("vaccini", 3, now - (SESSION_SECONDS + 1) * 1000));
    let ticket_as_pass = genuine_keys.sign_ticket(&Ticket {
        room: "vaccini".into(),
        epoch: 0,
        number: 1,
        issued_at: now,
    });
    let bad_id = genuine_keys.sign_pass(&Pass {
        id: "not-thirty-two-hex-digits".into(),
        ..pass("vaccini", 4, now)
    });
    // A later last_seen under the genuine key id and signature (payloads are
    // encoded the same whatever the key, so another key's token lends one).
    let extended = {
        let later = other_keys.sign_pass(&pass("vaccini", 1, now + 86_400_000));
        let later_payload = later.split('.').nth(1).expect("KID.PAYLOAD.SIG");
        let kid = genuine.split('.').next().expect("KID.");
        format!("{kid}.{later_payload}.{signature}")
    };
    let garbage_10k: String = "Zm9vYmFy.".repeat(10 * 1024 / 9 + 1);

    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("signed with another key", vec![cookie_line(&forged)]),
        (
            "signature altered",
            vec![cookie_line(&tampered(&genuine, signature_start + 5))],
        ),
        (
            "payload altered",
            vec![cookie_line(&tampered(&genuine, payload_start + 7))],
        ),
        (
            "payload re-encoded, old signature",
            vec![cookie_line(&extended)],
        ),
        ("expired", vec![cookie_line(&expired)]),
        (
            "truncated",
            vec![cookie_line(&genuine[..genuine.len() - 10])],
        ),
        ("signature only", vec![cookie_line(signature)]),
        ("empty", vec![b"anteroom_pass_vaccini=".to_vec()]),
        (
            "a ticket under the pass's name",
            vec![cookie_line(&ticket_as_pass)],
        ),
        ("a pass with a malformed id", vec![cookie_line(&bad_id)]),
        ("10 KB of garbage", vec![cookie_line(&garbage_10k)]),
        ("not base64", vec![cookie_line("!!!.@@@.###")]),
        (
            "no dots",
            vec![cookie_line("justonelongtokenwithoutanydots")],
        ),
        (
            "non-UTF-8 bytes",
            vec![
                b"anteroom_pass_vaccini=\xff\xfe\x80.\xc3\x28.\xa0\xa1; s=\xf0\x28\x8c\x28"
                    .to_vec(),
            ],
        ),
        (
            "a genuine pass inside non-UTF-8 bytes",
            vec![
                [
                    format!("anteroom_pass_vaccini={genuine}").as_bytes(),
                    b"\xff",
                ]
                .concat(),
            ],
        ),
        (
            "duplicate headers, all bad",
            vec![cookie_line(&forged), cookie_line(&expired)],
        ),
        (
            "duplicate cookies in one header, all bad",
            vec![
                format!("anteroom_pass_vaccini={forged}; anteroom_pass_vaccini={expired}")
                    .into_bytes(),
            ],
        ),
        (
            "a genuine pass under another cookie's name",
            vec![
                format!("anteroom_pass_vaccinix={genuine}; xanteroom_pass_vaccini={genuine}")
                    .into_bytes(),
            ],
        ),
        (
            "a pass as the ticket",
            vec![format!("anteroom_ticket_vaccini={genuine}").into_bytes()],
        ),
    ];
    for (label, cookies) in &cases {
        let cookies: Vec<&[u8]> = cookies.iter().map(Vec::as_slice).collect();
        let response = get_with_cookies(&gw, "/echo/vaccini", &cookies).await;
        let status = response.status();
        assert!(!status.is_server_error(), "{label}: {status}");
        assert_eq!(
            reached(response, "vaccini").await,
            Reached::WaitingPage,
            "{label}"
        );
        // The same cookie on the status endpoint: never "admitted", never 5xx.
        let response = get_with_cookies(&gw, "/_anteroom/status?room=vaccini", &cookies).await;
        assert_eq!(response.status(), 200, "{label}");
        let status: Value = response.json().await.expect("status JSON");
        assert_ne!(status["state"], "admitted", "{label}: {status}");
    }
    assert_eq!(
        up.requests_served().await,
        served,
        "no hostile cookie reached the origin"
    );
}

fn cookie_line(token: &str) -> Vec<u8> {
    format!("anteroom_pass_vaccini={token}").into_bytes()
}

#[tokio::test]
async fn hostile_cookies_get_the_waiting_page_memory() {
    hostile_cookies_get_the_waiting_page(Backend::Memory).await;
}

#[tokio::test]
async fn hostile_cookies_get_the_waiting_page_redis() {
    let redis = RedisServer::start().await;
    hostile_cookies_get_the_waiting_page(Backend::Redis(redis.url())).await;
}

#[tokio::test]
async fn a_pass_for_one_room_does_not_open_another() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("a").paths(&["/echo/a"]).capacity(1))
        .room(room("b").paths(&["/echo/b"]).capacity(1))
        .start()
        .await;
    let pass_a = enter(&gw, "a").await;
    let pass_b = enter(&gw, "b").await;
    let served = up.requests_served().await;

    // Each pass opens its own room...
    for (path, cookie) in [
        ("/echo/a", format!("anteroom_pass_a={pass_a}")),
        ("/echo/b", format!("anteroom_pass_b={pass_b}")),
    ] {
        let response = get_with_cookies(&gw, path, &[cookie.as_bytes()]).await;
        assert_eq!(
            reached(response, &path[6..]).await,
            Reached::Origin,
            "{path}"
        );
    }
    let served = served + 2;
    // ...and neither the other, whichever cookie name it travels under.
    let minted_a = Keyring::new(&[COOKIE_KEY]).sign_pass(&pass("a", 9, now_ms()));
    for (path, room, cookie) in [
        ("/echo/b", "b", format!("anteroom_pass_b={pass_a}")),
        ("/echo/a", "a", format!("anteroom_pass_a={pass_b}")),
        ("/echo/b", "b", format!("anteroom_pass_a={pass_a}")),
        ("/echo/b", "b", format!("anteroom_pass_b={minted_a}")),
        (
            "/echo/b",
            "b",
            format!("anteroom_pass_a={pass_a}; anteroom_pass_b={minted_a}"),
        ),
    ] {
        let response = get_with_cookies(&gw, path, &[cookie.as_bytes()]).await;
        assert_eq!(
            reached(response, room).await,
            Reached::WaitingPage,
            "{path} with {cookie}"
        );
    }
    assert_eq!(up.requests_served().await, served);
}

/// Browsers send cookie values as the page set them, UTF-8 included
/// (`document.cookie = "citta=Forlì"`). The visitor's pass, in the same
/// header, must still count.
#[tokio::test]

async fn a_utf8_site_cookie_does_not_hide_the_pass() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    let pass = enter(&gw, "vaccini").await;
    let mut cookie = format!("anteroom_pass_vaccini={pass}; citta=").into_bytes();
    cookie.extend_from_slice("Forlì".as_bytes());
    let response = get_with_cookies(&gw, "/echo/vaccini", &[&cookie]).await;
    assert_eq!(reached(response, "vaccini").await, Reached::Origin);
}

// ---------------------------------------------------------------- key rotation

#[tokio::test]
async fn rotated_keys_still_admit_passes_signed_with_the_old_key() {
    let up = upstream().await;
    let old_keys = Keyring::new(&[COOKIE_KEY]);
    let new_keys = Keyring::new(&[NEW_KEY]);
    // Last seen a minute ago: still valid, and due for renewal.
    let old_pass = pass("vaccini", 21, now_ms() - 60_000);
    let old_token = old_keys.sign_pass(&old_pass);

    // Mid-rotation: the new key signs, both verify.
    let rotating = gateway(&up)
        .cookie_keys(&[NEW_KEY, COOKIE_KEY])
        .room(room("vaccini").capacity(1))
        .start()
        .await;
    let occupant = enter(&rotating, "vaccini").await;
    assert!(
        new_keys.verify_pass(&occupant).is_some() && old_keys.verify_pass(&occupant).is_none(),
        "new passes are signed with the first key"
    );
    let response = get_with_cookies(
        &rotating,
        "/echo/vaccini",
        &[format!("anteroom_pass_vaccini={old_token}").as_bytes()],
    )
    .await;
    let renewed = cookie_value(&response, "anteroom_pass_vaccini").expect("the pass is renewed");
    assert_eq!(reached(response, "vaccini").await, Reached::Origin);
    let renewed_pass = new_keys
        .verify_pass(&renewed)
        .expect("renewed with the new key");
    assert_eq!(renewed_pass.id, old_pass.id, "the same place inside");
    assert!(renewed_pass.last_seen > old_pass.last_seen);
    assert!(old_keys.verify_pass(&renewed).is_none());

    // The old key retired: its passes are void, the new ones still good.
    let rotated = gateway(&up)
        .cookie_keys(&[NEW_KEY])
        .room(room("vaccini").capacity(1))
        .start()
        .await;
    let _occupant = enter(&rotated, "vaccini").await;
    let response = get_with_cookies(
        &rotated,
        "/echo/vaccini",
        &[format!("anteroom_pass_vaccini={old_token}").as_bytes()],
    )
    .await;
    assert_eq!(reached(response, "vaccini").await, Reached::WaitingPage);
    let response = get_with_cookies(
        &rotated,
        "/echo/vaccini",
        &[format!("anteroom_pass_vaccini={renewed}").as_bytes()],
    )
    .await;
    assert_eq!(reached(response, "vaccini").await, Reached::Origin);
}

// ---------------------------------------------------------------- tickets

/// A copied ticket buys no second slot. While its holder is inside, the copy
/// is swapped for the very same pass (the pass id is derived from the ticket,
/// so a retried or racing claim is harmless) and shares the one slot, as a
/// copied pass would. Once the holder has left, the copy is spent.
#[tokio::test]
async fn a_copied_ticket_buys_no_second_slot() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let gw = gateway(&up)
        .redis(&redis)
        .room(room("vaccini").capacity(1))
        .start()
        .await;
    let keys = Keyring::new(&[COOKIE_KEY]);
    let a = gw.visitor();
    assert!(anteroom_tests::reached_origin(a.get("/echo/vaccini").await).await);

    let b = gw.visitor();
    let waiting = b.get("/echo/vaccini").await;
    let copy = cookie_value(&waiting, &ticket_cookie("vaccini")).expect("B gets a ticket");
    assert_eq!(reached(waiting, "vaccini").await, Reached::WaitingPage);
    let original = keys.verify_ticket(&copy).expect("a genuine ticket");

    // A leaves, B's turn comes, B swaps the ticket for a pass.
    assert_eq!(a.post("/_anteroom/leave?room=vaccini").await.status(), 200);
    b.wait_until_admitted("vaccini", std::time::Duration::from_secs(10))
        .await;
    assert!(anteroom_tests::reached_origin(b.get("/echo/vaccini").await).await);

    // The copy gets B's own pass: the same id, the same single slot.
    let c = plain_client();
    let response = c
        .get(gw.url("/echo/vaccini"))
        .header("cookie", format!("anteroom_ticket_vaccini={copy}"))
        .send()
        .await
        .expect("request");
    let shared_pass = cookie_value(&response, &pass_cookie("vaccini")).expect("the shared pass");
    let shared_pass = keys.verify_pass(&shared_pass).expect("a genuine pass");
    assert_eq!(shared_pass.id, keys.pass_id_for(&original));
    let late = gw.visitor();
    assert!(
        !anteroom_tests::reached_origin(late.get("/echo/vaccini").await).await,
        "still one slot taken: a newcomer waits"
    );

    // B leaves: the pass is gone for both, and the copy is spent.
    assert_eq!(b.post("/_anteroom/leave?room=vaccini").await.status(), 200);
    let response = c
        .get(gw.url("/echo/vaccini"))
        .header("cookie", format!("anteroom_ticket_vaccini={copy}"))
        .send()
        .await
        .expect("request");
    assert!(cookie_value(&response, &pass_cookie("vaccini")).is_none());
    let fresh = cookie_value(&response, &ticket_cookie("vaccini")).expect("a new ticket");
    assert_eq!(reached(response, "vaccini").await, Reached::WaitingPage);
    let fresh = keys.verify_ticket(&fresh).expect("a genuine ticket");
    assert!(fresh.number > original.number, "{fresh:?} vs {original:?}");
}

// ---------------------------------------------------------------- status

#[tokio::test]
async fn status_without_a_place_is_none_and_takes_none() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    for path in ["/_anteroom/status?room=vaccini", "/_anteroom/status"] {
        let response = plain_client()
            .get(gw.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
        assert!(
            response.headers().get("set-cookie").is_none(),
            "asking is not queueing"
        );
        let status: Value = response.json().await.expect("status JSON");
        assert_eq!(
            status,
            json!({"room": "vaccini", "state": "none", "position": null, "eta_seconds": null, "refresh_seconds": 1, "room_state": "open", "site": "ok"}),
            "{path}"
        );
    }
    // Asking took no place: the room is still empty for the first visitor.
    let _inside = enter(&gw, "vaccini").await;
}

#[tokio::test]
async fn status_shows_a_waiting_visitors_place() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    let a = gw.visitor();
    assert!(anteroom_tests::reached_origin(a.get("/echo/vaccini").await).await);
    let b = gw.visitor();
    let c = gw.visitor();
    assert_eq!(
        reached(b.get("/echo/vaccini").await, "vaccini").await,
        Reached::WaitingPage
    );
    assert_eq!(
        reached(c.get("/echo/vaccini").await, "vaccini").await,
        Reached::WaitingPage
    );

    let response = b.get("/_anteroom/status?room=vaccini").await;
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let status: Value = response.json().await.expect("status JSON");
    assert_eq!(status["room"], "vaccini");
    assert_eq!(status["state"], "waiting");
    assert_eq!(status["position"], 1);
    assert!(status["eta_seconds"].is_u64(), "{status}");
    assert!(
        status["refresh_seconds"].as_u64().is_some_and(|s| s >= 1),
        "{status}"
    );

    let status = c.status("vaccini").await;
    assert_eq!(status["state"], "waiting");
    assert_eq!(status["position"], 2);
    assert_eq!(
        b.status("vaccini").await["position"],
        1,
        "others arriving do not move B"
    );

    let status = a.status("vaccini").await;
    assert_eq!(status["state"], "admitted");
    assert_eq!(status["position"], Value::Null);
}

#[tokio::test]
async fn status_names_its_room_or_refuses() {
    let up = upstream().await;
    let single = gateway(&up).room(room("vaccini")).start().await;
    let response = plain_client()
        .get(single.url("/_anteroom/status?room=nowhere"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert!(response.json::<Value>().await.expect("JSON")["error"].is_string());

    let several = gateway(&up).room(room("a")).room(room("b")).start().await;
    let response = plain_client()
        .get(several.url("/_anteroom/status"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert!(response.json::<Value>().await.expect("JSON")["error"].is_string());
    for name in ["a", "b"] {
        let response = plain_client()
            .get(several.url(&format!("/_anteroom/status?room={name}")))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.expect("JSON")["room"], name);
    }
}

/// `[cookies] secure = "always"` marks every cookie `Secure`, even on a plain
/// HTTP request with no `X-Forwarded-Proto`.
#[tokio::test]
async fn secure_cookies_can_be_required() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .secure_cookies(CookieSecure::Always)
        .start()
        .await;
    let response = reqwest::Client::new()
        .get(gw.url("/echo/vaccini"))
        .send()
        .await
        .expect("request");
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set_cookie.starts_with("anteroom_pass_vaccini="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
}
