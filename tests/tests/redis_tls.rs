//! `rediss://`: the gateway and the worker over TLS to a private
//! `redis-server` that speaks only TLS (one for this file, shared by its
//! tests, each with keys of its own), trusting its private CA through
//! `store.tls_ca_file`; and each way TLS can be wrong, refused with a
//! message that says so, never answered in plain text.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anteroom_config::Backend;
use anteroom_store::buffer::receipt_id;
use anteroom_store::{
    Arrival, BufferParams, BufferStore, Claim, Clock, Enqueued, Finished, ReceiptState, RedisStore,
    RoomParams, Store, StoreError, Submission, Verdict,
};
use anteroom_tests::{
    Buffer, CapturedLog, RedisTls, TlsRedisServer, eventually, gateway, gateway_to, plain_client,
    reached_origin, room, upstream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The store a gateway on `url` with `tls` builds: the file is written and
/// read back as the gateway's own, and the store built from it as the
/// gateway and the worker build theirs.
fn store(url: &str, tls: RedisTls) -> Result<RedisStore, StoreError> {
    let (url, tls) = as_the_gateway_reads(url, tls);
    RedisStore::with_tls(&url, &tls)
}

/// The URL and TLS files of a gateway's config file on `url` with `tls`,
/// written and read back.
fn as_the_gateway_reads(url: &str, tls: RedisTls) -> (String, anteroom_config::RedisTls) {
    let config = gateway_to("http://127.0.0.1:9")
        .redis_tls(url, tls)
        .config_file()
        .validate()
        .expect("a valid config");
    let Backend::Redis { url, tls } = config.store.backend else {
        panic!("a redis backend");
    };
    (url, tls)
}

/// `tls_ca_file`: the CA that signed the server's certificate.
fn trusting(redis: &TlsRedisServer) -> RedisTls {
    RedisTls {
        tls_ca_file: Some(redis.certificates.ca.clone()),
        ..RedisTls::default()
    }
}

/// The arithmetic and the scripts are the store contract's (`store.rs`,
/// `buffer_store.rs`); here, that a few representative calls of each seam
/// go over TLS and answer as they do in plain text.
#[tokio::test]
async fn the_store_contract_holds_over_tls() {
    let redis = TlsRedisServer::shared().await;
    // The room scripts on a simulated store clock, so that the pace is
    // moved on rather than waited for.
    let clock = Clock::manual();
    clock.set(1_800_000_000_000);
    let (url, tls) = as_the_gateway_reads(&redis.url(), trusting(redis));
    let store =
        RedisStore::with_tls_and_simulated_clock(&url, &tls, clock.clone()).expect("a store");
    store.ping().await.expect("ping over TLS");

    let room = RoomParams {
        name: "tls-contract".into(),
        capacity: 1,
        admit_per_minute: 600,
        inside_ttl: Duration::from_secs(300),
        arrival: Duration::from_secs(60),
        schedule: Default::default(),
    };
    let first = store.arrive(&room, "pass-1").await.expect("arrive");
    assert!(matches!(first, Arrival::Admitted { .. }), "{first:?}");
    let Arrival::Ticketed { ticket, snapshot } =
        store.arrive(&room, "pass-2").await.expect("arrive")
    else {
        panic!("the second visitor waits: the room holds one");
    };
    assert_eq!(snapshot.position(ticket), Some(1));
    store.leave(&room, "pass-1").await.expect("leave");
    clock.advance(Duration::from_secs(60));
    let snapshot = store.advance(&room).await.expect("advance");
    assert_eq!(snapshot.position(ticket), None, "{snapshot:?}");
    let claim = store
        .claim(&room, snapshot.epoch, ticket, "pass-2")
        .await
        .expect("claim");
    assert_eq!(claim, Claim::Admitted);

    let buffer = BufferParams {
        name: "tls-contract".into(),
        drain_per_second: 1000,
        max_in_flight: 10,
        max_depth: 100,
        max_per_pass: 10,
        max_attempts: 3,
        lease: Duration::from_secs(30),
        result_for: Duration::from_secs(60),
    };
    let submission = Submission {
        receipt: receipt_id(&buffer.name),
        idempotency_key: "k1".into(),
        fingerprint: "POST /book k1".into(),
        pass: Some("pass-2".into()),
        request: b"POST /book k1".to_vec(),
    };
    let receipt = match store.enqueue(&buffer, submission).await.expect("enqueue") {
        Enqueued::Accepted { receipt, position } => {
            assert_eq!(position, 1);
            receipt
        }
        other => panic!("a new request is accepted, got {other:?}"),
    };
    let mut taken = store.take(&buffer, "w1", 5).await.expect("take");
    assert_eq!(taken.jobs.len(), 1, "{taken:?}");
    let job = taken.jobs.remove(0);
    assert_eq!(
        (job.receipt.as_str(), job.request.as_slice()),
        (receipt.as_str(), &b"POST /book k1"[..])
    );
    let done = Verdict::Done {
        status: 201,
        body: "booked".into(),
    };
    let finished = store.finish(&buffer, &job, done).await.expect("finish");
    assert_eq!(finished, Finished::Recorded);
    let state = store
        .receipt(&receipt)
        .await
        .expect("receipt")
        .expect("a receipt")
        .state;
    assert_eq!(
        state,
        ReceiptState::Done {
            status: 201,
            body: "booked".into()
        }
    );
}

/// The deployment of the README over TLS: a gateway on `rediss://` lets a
/// visitor in and stores a booking, and a worker (its drain, on a store
/// built from the same file, as `anteroom-worker` builds it) applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_rediss_admits_a_visitor_and_a_worker_drains_the_booking() {
    let redis = TlsRedisServer::shared().await;
    let origin = upstream().await;
    let builder = gateway(&origin)
        .room(room("tls-gateway").paths(&["/api/"]).capacity(10))
        .buffer(Buffer::new(
            "tls-bookings",
            "tls-gateway",
            "/api/bookings",
            1000,
        ))
        .tls_redis(redis);
    let config = builder.config_file().validate().expect("a valid config");
    let gateway = builder.start().await;
    assert_eq!(gateway.readiness().await, 200, "ready over TLS");

    let visitor = gateway.visitor();
    let entry = visitor.get("/api/slots").await;
    assert_eq!(entry.status(), 200, "let straight in to the site's slots");
    let booking = visitor
        .client
        .post(visitor.url("/api/bookings"))
        .header("content-type", "application/json")
        .header("idempotency-key", "tls-1")
        .body(r#"{"name":"Ada","slot":"2021-03-01T09:00"}"#)
        .send()
        .await
        .expect("booking request");
    assert_eq!(booking.status(), 202);
    let answer: serde_json::Value = booking.json().await.expect("JSON");
    let receipt_url = gateway.url(answer["status_url"].as_str().expect("status_url"));
    let state = || async {
        let receipt: serde_json::Value = plain_client()
            .get(&receipt_url)
            .send()
            .await
            .expect("receipt")
            .json()
            .await
            .expect("receipt JSON");
        receipt["state"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(state().await, "queued", "no worker yet");

    let Backend::Redis { url, tls } = &config.store.backend else {
        panic!("a redis backend");
    };
    let worker_store = RedisStore::with_tls(url, tls).expect("the worker's store");
    let drainer = anteroom_worker::Drainer::new(&config, Arc::new(worker_store))
        .await
        .expect("a drainer");
    let stop = anteroom_gateway::Shutdown::new();
    let draining = tokio::spawn(drainer.run(stop.clone(), Duration::from_secs(2)));
    eventually("the worker applies the booking", || async {
        state().await == "done"
    })
    .await;
    assert_eq!(origin.stats().await["bookings"], 1);
    stop.begin();
    draining.await.expect("the drain stops");
}

/// A Redis whose certificate another CA signed is not trusted: the gateway
/// starts (the store may come later), is not ready, says why on `/readyz`
/// and in its log (naming the URL, without its password), and lets nobody
/// through while it waits.
#[tokio::test]
async fn a_redis_certificate_from_another_ca_is_refused_and_readyz_says_why() {
    let redis = TlsRedisServer::shared().await;
    let other = redis.foreign_certificates("wrong-ca");
    let log = CapturedLog::default();
    let _logging = log.install();
    let origin = upstream().await;
    let url = format!("rediss://:hunter2@127.0.0.1:{}/0", redis.port);
    let gateway = gateway(&origin)
        .room(room("tls-wrong-ca"))
        .redis_tls(
            &url,
            RedisTls {
                tls_ca_file: Some(other.ca.clone()),
                ..RedisTls::default()
            },
        )
        .start()
        .await;

    let reason = gateway.not_ready_because().await;
    let shown = format!("rediss://:REDACTED@127.0.0.1:{}/0", redis.port);
    assert!(
        reason.starts_with(&format!("TLS to {shown}: ")) && reason.contains("UnknownIssuer"),
        "{reason}"
    );
    let visitor = gateway.visitor();
    let response = visitor.get("/echo/tls-wrong-ca/").await;
    assert!(!reached_origin(response).await, "nobody passes unchecked");

    let logged = log.text();
    let line = logged
        .lines()
        .find(|line| line.contains("store unreachable"))
        .unwrap_or_else(|| panic!("the failure is logged:\n{logged}"));
    assert!(
        line.contains(&format!("TLS to {shown}")) && line.contains("UnknownIssuer"),
        "{line}"
    );
    assert!(!logged.contains("hunter2"), "{logged}");
    assert!(!reason.contains("hunter2"), "{reason}");
}

/// `rediss://` to a server that speaks plain text (Redis's own error
/// reply to what it cannot parse) fails as TLS, and every connection the
/// client opened began with a TLS handshake: it never falls back to plain
/// text, where its commands would travel in the clear.
#[tokio::test]
async fn a_rediss_url_never_falls_back_to_plain_text() {
    let tls = TlsRedisServer::shared().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("its address").port();
    let openings: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let plain_text_server = tokio::spawn({
        let openings = openings.clone();
        async move {
            while let Ok((mut connection, _)) = listener.accept().await {
                let mut opening = vec![0; 512];
                let read = connection.read(&mut opening).await.unwrap_or(0);
                opening.truncate(read);
                openings.lock().expect("openings").push(opening);
                let _ = connection.write_all(b"-ERR unknown command\r\n").await;
            }
        }
    });
    let store = store(&format!("rediss://127.0.0.1:{port}/0"), trusting(tls)).expect("a store");
    match store.ping().await {
        Err(StoreError::Tls { url, source }) => {
            assert_eq!(url, format!("rediss://127.0.0.1:{port}/0"));
            assert!(source.to_string().contains("corrupt message"), "{source}");
        }
        other => panic!("a TLS failure, got {other:?}"),
    }
    plain_text_server.abort();
    let openings = openings.lock().expect("openings").clone();
    assert!(!openings.is_empty(), "the client connected");
    for opening in &openings {
        // A TLS record of type handshake (22), version 3.x: a ClientHello.
        assert_eq!(opening.get(..2), Some(&[22, 3][..]), "{opening:?}");
    }
}

/// Mutual TLS: the client certificate of `tls_cert_file` and
/// `tls_key_file` is presented, and checked: one from the server's CA is
/// let in, one from another CA is refused by Redis (which takes a client
/// without one: `--tls-auth-clients optional`).
#[tokio::test]
async fn a_client_certificate_is_presented_and_a_foreign_one_refused() {
    let redis = TlsRedisServer::shared().await;
    let own = &redis.certificates;
    let presenting = |cert: &std::path::Path, key: &std::path::Path| RedisTls {
        tls_ca_file: Some(own.ca.clone()),
        tls_cert_file: Some(cert.to_owned()),
        tls_key_file: Some(key.to_owned()),
    };
    let store_of_ours =
        store(&redis.url(), presenting(&own.client_cert, &own.client_key)).expect("a store");
    store_of_ours
        .ping()
        .await
        .expect("our certificate is accepted");

    let foreign = redis.foreign_certificates("foreign-client");
    let store_of_theirs = store(
        &redis.url(),
        presenting(&foreign.client_cert, &foreign.client_key),
    )
    .expect("a store");
    match store_of_theirs.ping().await {
        Err(StoreError::Tls { url, source }) => {
            assert_eq!(url, redis.url());
            assert!(source.to_string().contains("UnknownCA"), "{source}");
        }
        other => panic!("a TLS failure, got {other:?}"),
    }
}

/// A client key that is not the certificate's fails at start (and so at
/// `--check`), naming both files, rather than at each connect.
#[tokio::test]
async fn a_client_key_that_is_not_the_certificates_fails_at_start() {
    let redis = TlsRedisServer::shared().await;
    let other = redis.foreign_certificates("mismatch");
    let mismatched = RedisTls {
        tls_ca_file: Some(redis.certificates.ca.clone()),
        tls_cert_file: Some(other.client_cert.clone()),
        tls_key_file: Some(redis.certificates.client_key.clone()),
    };
    let config = gateway_to("http://127.0.0.1:9")
        .redis_tls(&redis.url(), mismatched.clone())
        .config_file()
        .validate()
        .expect("each file is valid on its own");
    let message = anteroom_gateway::check(&config)
        .expect_err("the pair is refused")
        .to_string();
    let key = redis.certificates.client_key.display().to_string();
    let cert = other.client_cert.display().to_string();
    assert!(
        message.contains(&format!(
            "store.tls_key_file ({key}) does not go with store.tls_cert_file ({cert})"
        )),
        "{message}"
    );
    match store(&redis.url(), mismatched) {
        Err(StoreError::Tls { url, .. }) => assert_eq!(url, redis.url()),
        other => panic!("a TLS error, got {other:?}"),
    }
}
