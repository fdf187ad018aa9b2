//! Booking intake at the gateway: what is stored and answered `202`, what is
//! refused and why, receipts, and the embedded (memory backend) drain.

use std::time::Duration;

use anteroom_bench::origin::OriginOptions;
use anteroom_tests::{
    Buffer, GatewayBuilder, GatewayHandle, RedisServer, Upstream, Visitor, cookie_value,
    eventually, gateway, loose_limits, plain_client, room, upstream_with,
};

const BOOKING: &str = r#"{"name":"Ada","slot":"2021-03-01T09:00"}"#;

/// The buffer under test: bookings to the room's `/api/bookings`.
fn bookings() -> Buffer {
    Buffer::new("bookings", "vaccini", "/api/bookings", 1000)
}

async fn origin() -> Upstream {
    upstream_with(OriginOptions {
        slot_capacity: 1_000_000,
        ..OriginOptions::default()
    })
    .await
}

fn builder(origin: &Upstream, capacity: u32, buffer: Buffer) -> GatewayBuilder {
    gateway(origin)
        .room(room("vaccini").paths(&["/api/"]).capacity(capacity))
        .buffer(buffer)
}

async fn inside(gateway: &GatewayHandle) -> Visitor {
    let visitor = gateway.visitor();
    assert_eq!(visitor.get("/api/slots").await.status(), 200);
    visitor
}

async fn post(visitor: &Visitor, key: Option<&str>, body: &str) -> reqwest::Response {
    let mut request = visitor
        .client
        .post(visitor.url("/api/bookings"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.expect("booking request")
}

/// A visitor let in, as the `Cookie` header it books with: its pass, and a
/// site session of its own (`session`), as a browser would send them.
async fn admitted_with_site_session(gateway: &GatewayHandle, session: &str) -> String {
    let entry = plain_client()
        .get(gateway.url("/api/slots"))
        .send()
        .await
        .expect("entry");
    assert_eq!(entry.status(), 200);
    let pass = cookie_value(&entry, "anteroom_pass_vaccini").expect("a pass");
    format!("site_session={session}; anteroom_pass_vaccini={pass}")
}

/// A JSON booking to `path` with the given `Cookie` header and key.
async fn post_as(
    gateway: &GatewayHandle,
    cookie: &str,
    path: &str,
    key: &str,
    body: &str,
) -> reqwest::Response {
    plain_client()
        .post(gateway.url(path))
        .header("cookie", cookie)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body.to_owned())
        .send()
        .await
        .expect("booking request")
}

/// Whether `key` is one of the gateway's scoped keys: `key-` and 64 hex
/// digits.
fn is_scoped_key(key: &str) -> bool {
    key.len() == 68
        && key.starts_with("key-")
        && key[4..]
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

async fn receipt_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 202);
    let answer: serde_json::Value = response.json().await.expect("JSON");
    let receipt = answer["receipt"].as_str().expect("receipt").to_owned();
    assert_eq!(
        answer["status_url"],
        format!("/_anteroom/receipts/{receipt}"),
        "{answer}"
    );
    receipt
}

async fn receipt(gateway: &GatewayHandle, id: &str) -> (u16, serde_json::Value) {
    let response = plain_client()
        .get(gateway.url(&format!("/_anteroom/receipts/{id}")))
        .send()
        .await
        .expect("receipt");
    let status = response.status().as_u16();
    (status, response.json().await.expect("receipt JSON"))
}

async fn buffer_figures(gateway: &GatewayHandle) -> serde_json::Value {
    plain_client()
        .get(gateway.admin_url("/admin/buffers/bookings"))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("figures")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_gateway_drains_its_own_buffer() {
    let origin = origin().await;
    let gateway = builder(&origin, 10, bookings()).start().await;
    let visitor = inside(&gateway).await;
    let id = receipt_of(post(&visitor, Some("k1"), BOOKING).await).await;
    assert!(id.starts_with("bookings."), "{id}");
    eventually("the booking is applied", || async {
        receipt(&gateway, &id).await.1["state"] == "done"
    })
    .await;
    let (_, done) = receipt(&gateway, &id).await;
    assert_eq!(done["result"]["status"], 201, "{done}");
    assert_eq!(origin.stats().await["bookings"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_gets_the_same_receipt_and_one_booking() {
    let origin = origin().await;
    let gateway = builder(&origin, 10, bookings()).start().await;
    let visitor = inside(&gateway).await;
    let first = receipt_of(post(&visitor, Some("same"), BOOKING).await).await;
    let second = receipt_of(post(&visitor, Some("same"), BOOKING).await).await;
    assert_eq!(first, second);
    let different = post(
        &visitor,
        Some("same"),
        r#"{"name":"Bob","slot":"2021-03-01T09:00"}"#,
    )
    .await;
    assert_eq!(different.status(), 422, "a key reused for another request");
    let message = different.text().await.expect("text");
    assert!(message.contains("Idempotency-Key"), "{message}");
    assert!(
        !message.contains(&first),
        "another request's receipt is not shown"
    );
    eventually("the booking is applied", || async {
        receipt(&gateway, &first).await.1["state"] == "done"
    })
    .await;
    let again = receipt_of(post(&visitor, Some("same"), BOOKING).await).await;
    assert_eq!(again, first, "still the same receipt once done");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(origin.stats().await["bookings"], 1);
    let figures = buffer_figures(&gateway).await;
    assert_eq!(figures["accepted"], 1, "{figures}");
}

/// Two visitors (two passes, two site sessions) send the same booking with
/// the same `Idempotency-Key`: two bookings, each visitor with a receipt of
/// its own, and a visitor who sends it again gets its own receipt back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_from_two_visitors_is_two_bookings_each_with_its_own_receipt() {
    let origin = origin().await;
    let gateway = builder(&origin, 10, bookings()).start().await;
    let ada = admitted_with_site_session(&gateway, "ada").await;
    let bob = admitted_with_site_session(&gateway, "bob").await;
    let book = |cookie: &str| {
        let cookie = cookie.to_owned();
        let gateway = &gateway;
        async move { post_as(gateway, &cookie, "/api/bookings", "same", BOOKING).await }
    };
    let adas = receipt_of(book(&ada).await).await;
    let bobs = receipt_of(book(&bob).await).await;
    assert_ne!(adas, bobs, "Bob is not answered with Ada's receipt");
    assert_eq!(receipt_of(book(&ada).await).await, adas, "Ada's retry");
    assert_eq!(receipt_of(book(&bob).await).await, bobs, "Bob's retry");
    eventually("both bookings reach the site", || async {
        origin.stats().await["bookings"] == 2
    })
    .await;
    for id in [&adas, &bobs] {
        eventually("the receipt is done", || async {
            receipt(&gateway, id).await.1["state"] == "done"
        })
        .await;
    }
    let (_, adas_result) = receipt(&gateway, &adas).await;
    let (_, bobs_result) = receipt(&gateway, &bobs).await;
    assert_eq!(adas_result["result"]["status"], 201, "{adas_result}");
    assert_eq!(bobs_result["result"]["status"], 201, "{bobs_result}");
    assert_ne!(
        adas_result["result"]["body"], bobs_result["result"]["body"],
        "each reads the result of their own booking"
    );
    // Once done, a resubmission is still its sender's own booking.
    assert_eq!(receipt_of(book(&bob).await).await, bobs);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(origin.stats().await["bookings"], 2);
    assert_eq!(buffer_figures(&gateway).await["accepted"], 2);
}

/// The same on Redis, where the keys are stored (no worker: nothing
/// drains): a key is one visitor's, for duplicates and for reuse alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_key_is_one_visitors_for_duplicates_and_reuse() {
    let redis = RedisServer::start_durable().await;
    let origin = origin().await;
    let gateway = builder(&origin, 10, bookings()).redis(&redis).start().await;
    let ada = admitted_with_site_session(&gateway, "ada").await;
    let bob = admitted_with_site_session(&gateway, "bob").await;
    let other_body = r#"{"name":"Bob","slot":"2021-03-01T09:30"}"#;
    let adas = receipt_of(post_as(&gateway, &ada, "/api/bookings", "k", BOOKING).await).await;
    // Bob's key is his own: the same key with another body is not a reuse
    // of Ada's key, and the same body is not her duplicate.
    let bobs = receipt_of(post_as(&gateway, &bob, "/api/bookings", "k", other_body).await).await;
    let bobs_second =
        receipt_of(post_as(&gateway, &bob, "/api/bookings", "k2", BOOKING).await).await;
    assert_ne!(adas, bobs);
    assert_ne!(adas, bobs_second);
    let again = post_as(&gateway, &ada, "/api/bookings", "k", BOOKING).await;
    assert_eq!(receipt_of(again).await, adas);
    let reused = post_as(&gateway, &ada, "/api/bookings", "k", other_body).await;
    assert_eq!(reused.status(), 422, "Ada reusing her own key");
    let figures = buffer_figures(&gateway).await;
    assert_eq!(figures["accepted"], 3, "{figures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_the_same_request_from_the_same_visitor_is_one_booking() {
    let origin = origin().await;
    let gateway = builder(&origin, 10, bookings()).start().await;
    let visitor = inside(&gateway).await;
    // A double click, or a form sent again.
    let first = receipt_of(post(&visitor, None, BOOKING).await).await;
    let again = receipt_of(post(&visitor, None, BOOKING).await).await;
    assert_eq!(first, again);
    // Another booking by the same visitor, and the same one by another.
    let other_body = r#"{"name":"Bob","slot":"2021-03-01T09:00"}"#;
    let second = receipt_of(post(&visitor, None, other_body).await).await;
    let someone_else = inside(&gateway).await;
    let third = receipt_of(post(&someone_else, None, BOOKING).await).await;
    assert_ne!(first, second);
    assert_ne!(first, third);
    eventually("three bookings are applied", || async {
        origin.stats().await["bookings"] == 3
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_nothing_is_stored() {
    let origin = origin().await;
    let gateway = builder(&origin, 10, bookings())
        .limits(loose_limits().max_body_bytes(1024))
        .start()
        .await;
    let visitor = inside(&gateway).await;

    let xml = visitor
        .client
        .post(visitor.url("/api/bookings"))
        .header("content-type", "text/xml")
        .body("<booking/>")
        .send()
        .await
        .expect("request");
    assert_eq!(xml.status(), 415);
    assert!(xml.text().await.expect("text").contains("application/json"));

    let too_large = post(&visitor, None, &"x".repeat(2048)).await;
    assert_eq!(too_large.status(), 413);

    let long_key = "k".repeat(256);
    let bad_key = post(&visitor, Some(&long_key), BOOKING).await;
    assert_eq!(bad_key.status(), 400);

    let figures = buffer_figures(&gateway).await;
    assert_eq!(figures["accepted"], 0, "{figures}");
    assert_eq!(origin.stats().await["bookings"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_visitor_gets_the_waiting_room_not_a_receipt() {
    let origin = origin().await;
    let gateway = builder(&origin, 1, bookings()).start().await;
    let _inside = inside(&gateway).await;
    let outsider = gateway.visitor();
    let response = outsider
        .client
        .post(outsider.url("/api/bookings"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(BOOKING)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let status: serde_json::Value = response.json().await.expect("status JSON");
    assert_eq!(status["state"], "waiting", "{status}");
    let figures = buffer_figures(&gateway).await;
    assert_eq!(figures["accepted"], 0, "{figures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_on_the_buffered_path_are_proxied() {
    let origin = origin().await;
    let gateway = builder(&origin, 10, bookings()).start().await;
    let visitor = inside(&gateway).await;
    // The origin answers GET /api/bookings itself (405: it only takes POST).
    let response = visitor.get("/api/bookings").await;
    assert_eq!(response.status(), 405);
    let figures = buffer_figures(&gateway).await;
    assert_eq!(figures["accepted"], 0, "{figures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_answers_503_and_keeps_what_it_accepted() {
    // Redis, and no worker: nothing drains.
    let redis = RedisServer::start_durable().await;
    let origin = origin().await;
    let gateway = builder(
        &origin,
        10,
        Buffer {
            max_depth: Some(3),
            ..bookings()
        },
    )
    .redis(&redis)
    .start()
    .await;
    let visitor = inside(&gateway).await;
    for index in 0..3 {
        receipt_of(post(&visitor, Some(&format!("k{index}")), BOOKING).await).await;
    }
    let full = post(&visitor, Some("k3"), BOOKING).await;
    assert_eq!(full.status(), 503);
    assert!(full.headers().contains_key("retry-after"));
    let message = full.text().await.expect("text");
    assert!(message.contains("nothing was stored"), "{message}");
    let figures = buffer_figures(&gateway).await;
    assert_eq!(figures["queued"], 3, "{figures}");
    assert_eq!(figures["accepted"], 3, "{figures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_nothing_is_answered_202() {
    let mut redis = RedisServer::start_durable().await;
    let origin = origin().await;
    let gateway = builder(&origin, 10, bookings()).redis(&redis).start().await;
    let visitor = inside(&gateway).await;
    redis.kill();
    let response = post(&visitor, Some("k"), BOOKING).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_answer_json_html_and_404() {
    let redis = RedisServer::start_durable().await;
    let origin = origin().await;
    let gateway = builder(&origin, 10, bookings()).redis(&redis).start().await;
    let visitor = inside(&gateway).await;
    let first = receipt_of(post(&visitor, Some("a"), BOOKING).await).await;
    let second = receipt_of(post(&visitor, Some("b"), BOOKING).await).await;

    let (code, queued) = receipt(&gateway, &second).await;
    assert_eq!(code, 200);
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["position"], 2, "{queued}");
    assert_eq!(receipt(&gateway, &first).await.1["position"], 1);

    let page = plain_client()
        .get(gateway.url(&format!("/_anteroom/receipts/{first}")))
        .header("accept", "text/html")
        .header("accept-language", "it")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.expect("html");
    assert!(
        html.contains("http-equiv=\"refresh\""),
        "watches itself while queued"
    );
    assert!(html.contains("in coda"), "Italian: {html}");
    assert!(html.contains(&first));

    let unknown = "bookings.AAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(receipt(&gateway, unknown).await.0, 404);
    assert_eq!(receipt(&gateway, "not-a-receipt").await.0, 404);
    assert_eq!(receipt(&gateway, "bookings.%2e%2e%2fx").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_form_post_gets_a_receipt_page() {
    let origin = origin().await;
    let gateway = builder(&origin, 10, bookings()).start().await;
    let visitor = inside(&gateway).await;
    let response = visitor
        .client
        .post(visitor.url("/api/bookings"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html,application/xhtml+xml")
        .header("accept-language", "en")
        .body("name=Ada&slot=2021-03-01T09%3A00")
        .send()
        .await
        .expect("form post");
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(location.starts_with("/_anteroom/receipts/bookings."));
    let html = response.text().await.expect("html");
    assert!(html.contains("Booking received"), "{html}");
    eventually("the form booking is applied", || async {
        origin.stats().await["bookings"] == 1
    })
    .await;
    let page = visitor
        .client
        .get(visitor.url(&location))
        .header("accept", "text/html")
        .header("accept-language", "en")
        .send()
        .await
        .expect("receipt page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("confirmed"), "{page}");
    assert!(
        !page.contains("http-equiv=\"refresh\""),
        "done: no more refresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_carries_the_sites_headers_byte_for_byte_and_none_of_ours() {
    let origin = origin().await;
    // A buffer on the origin's /echo, which answers with what reached it.
    let gateway = gateway(&origin)
        .room(room("vaccini").paths(&["/api/", "/echo/"]).capacity(10))
        .buffer(Buffer::new("bookings", "vaccini", "/echo/book", 1000))
        .start()
        .await;
    let client = plain_client();
    let entry = client
        .get(gateway.url("/api/slots"))
        .send()
        .await
        .expect("entry");
    let pass = anteroom_tests::cookie_value(&entry, "anteroom_pass_vaccini").expect("a pass");
    let cookie = format!("site=caff\u{e8}; anteroom_pass_vaccini={pass}; lang=it");
    let response = client
        .post(gateway.url("/echo/book?lang=it"))
        .header(
            "cookie",
            reqwest::header::HeaderValue::from_bytes(cookie.as_bytes()).expect("cookie"),
        )
        .header("content-type", "application/json")
        .header("x-csrf-token", "t0k3n")
        .header("authorization", "Bearer site-session")
        .header("idempotency-key", "echo-1")
        .body(BOOKING)
        .send()
        .await
        .expect("post");
    let id = receipt_of(response).await;
    eventually("the replay is done", || async {
        receipt(&gateway, &id).await.1["state"] == "done"
    })
    .await;
    let (_, done) = receipt(&gateway, &id).await;
    let echoed: serde_json::Value =
        serde_json::from_str(done["result"]["body"].as_str().expect("body")).expect("echo JSON");
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/echo/book");
    assert_eq!(echoed["query"], "lang=it");
    assert_eq!(echoed["body_length"], BOOKING.len());
    let headers = &echoed["headers"];
    assert_eq!(
        headers["cookie"][0], "site=caff\u{e8}; lang=it",
        "{headers}"
    );
    assert_eq!(headers["x-csrf-token"][0], "t0k3n");
    assert_eq!(headers["authorization"][0], "Bearer site-session");
    assert_eq!(headers["content-type"][0], "application/json");
    // The site gets the key scoped to this visitor, not the client's own.
    let sent_key = headers["idempotency-key"][0].as_str().expect("a key");
    assert!(is_scoped_key(sent_key), "{sent_key}");
    assert_eq!(headers["x-anteroom-receipt"][0], id.as_str());
    assert_eq!(headers["x-forwarded-for"][0], "127.0.0.1");
    assert_eq!(headers["x-forwarded-host"][0], gateway.addr.to_string());
    assert!(
        !headers.to_string().contains("anteroom_pass"),
        "our cookies never reach the site: {headers}"
    );
}

/// What the site is sent: each visitor's key scoped to them, so a site that
/// deduplicates on `Idempotency-Key` alone keeps two visitors' bookings
/// apart, and never the key the client chose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_is_sent_a_key_scoped_to_each_visitor() {
    let origin = origin().await;
    let gateway = gateway(&origin)
        .room(room("vaccini").paths(&["/api/", "/echo/"]).capacity(10))
        .buffer(Buffer::new("bookings", "vaccini", "/echo/book", 1000))
        .start()
        .await;
    let mut sent = Vec::new();
    for session in ["ada", "bob"] {
        let cookie = admitted_with_site_session(&gateway, session).await;
        let id = receipt_of(post_as(&gateway, &cookie, "/echo/book", "same", BOOKING).await).await;
        eventually("the replay is done", || async {
            receipt(&gateway, &id).await.1["state"] == "done"
        })
        .await;
        let (_, done) = receipt(&gateway, &id).await;
        let echoed: serde_json::Value =
            serde_json::from_str(done["result"]["body"].as_str().expect("body"))
                .expect("echo JSON");
        let key = echoed["headers"]["idempotency-key"][0]
            .as_str()
            .expect("a key")
            .to_owned();
        assert!(is_scoped_key(&key), "{key}");
        sent.push(key);
    }
    assert_ne!(sent[0], sent[1], "one key per visitor");
}

/// One pass may have `max_per_pass` bookings waiting, counted in Redis so
/// that the bound holds across gateways: the next gets `429` with
/// `Retry-After` and nothing is stored, while another visitor books as
/// usual; once a worker has applied them, the pass books again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_may_have_max_per_pass_bookings_waiting_across_gateways() {
    let redis = RedisServer::start_durable().await;
    let origin = origin().await;
    let quota = Buffer {
        max_per_pass: Some(3),
        ..bookings()
    };
    let first_builder = builder(&origin, 10, quota.clone()).redis(&redis);
    let config = first_builder
        .config_file()
        .validate()
        .expect("a valid config");
    let first = first_builder.start().await;
    let second = builder(&origin, 10, quota).redis(&redis).start().await;
    let visitor = inside(&first).await;
    let on_second = visitor.with_base(&second.url(""));
    receipt_of(post(&visitor, Some("k0"), BOOKING).await).await;
    receipt_of(post(&on_second, Some("k1"), BOOKING).await).await;
    receipt_of(post(&visitor, Some("k2"), BOOKING).await).await;
    // Sent again, a booking it holds is its duplicate, not a fourth.
    receipt_of(post(&on_second, Some("k2"), BOOKING).await).await;
    for gateway in [&visitor, &on_second] {
        let refused = post(gateway, Some("k3"), BOOKING).await;
        assert_eq!(refused.status(), 429);
        let retry_after: u64 = refused.headers()["retry-after"]
            .to_str()
            .expect("text")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let message = refused.text().await.expect("text");
        assert!(message.contains("3 bookings waiting"), "{message}");
        assert!(message.contains("nothing was stored"), "{message}");
    }
    let someone_else = inside(&second).await;
    receipt_of(post(&someone_else, Some("k3"), BOOKING).await).await;
    let figures = buffer_figures(&first).await;
    assert_eq!(
        (figures["accepted"].as_u64(), figures["queued"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(origin.stats().await["bookings"], 0, "nothing drains yet");

    // A worker applies them: the pass may book again.
    let store = anteroom_store::RedisStore::new(&redis.url()).expect("redis store");
    let drainer = anteroom_worker::Drainer::new(&config, std::sync::Arc::new(store))
        .await
        .expect("a drainer");
    let stop = anteroom_gateway::Shutdown::new();
    let draining = tokio::spawn(drainer.run(stop.clone(), Duration::from_secs(2)));
    eventually("the worker applies the four bookings", || async {
        buffer_figures(&first).await["done"] == 4
    })
    .await;
    receipt_of(post(&on_second, Some("k3"), BOOKING).await).await;
    stop.begin();
    draining.await.expect("the drain stops");
}
