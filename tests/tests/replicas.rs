//! No accepted booking lost to a failover (`store.min_replicas_acked`): a
//! booking is answered `202` only once Redis's `WAIT` reports it on a
//! replica; without one it is refused `503` ("not stored safely") with
//! `Retry-After`, never `202`, never `500`; a failover to the replica keeps
//! every booking answered `202`, and each is applied once; a Redis demoted
//! to a replica (READONLY) is a store that refuses writes, answered `503`.
//!
//! Real `redis-server` processes: a primary and its replica, the replica's
//! link through a proxy where a test stalls it.

use std::sync::Arc;
use std::time::Duration;

use anteroom_bench::origin::OriginOptions;
use anteroom_store::{
    BufferParams, BufferStore, Enqueued, RedisStore, StoreError, Submission, buffer::receipt_id,
};
use anteroom_tests::{
    Buffer, GatewayBuilder, GatewayHandle, RedisServer, TcpProxy, Upstream, Visitor, eventually,
    gateway, header, plain_client, room, upstream_with,
};

const BOOKING: &str = r#"{"name":"Ada","slot":"2021-03-01T09:00"}"#;

/// Bookings to the room's `/api/bookings`; one visitor may have many
/// waiting (the tests book from one pass).
fn bookings() -> Buffer {
    Buffer {
        max_per_pass: Some(1000),
        ..Buffer::new("bookings", "vaccini", "/api/bookings", 1000)
    }
}

async fn origin() -> Upstream {
    upstream_with(OriginOptions {
        slot_capacity: 1_000_000,
        ..OriginOptions::default()
    })
    .await
}

/// A gateway in front of `origin` on `redis`, its bookings waiting for one
/// replica.
fn acked_by_one(origin: &Upstream, redis: &RedisServer) -> GatewayBuilder {
    gateway(origin)
        .room(room("vaccini").paths(&["/api/"]).capacity(10))
        .buffer(bookings())
        .redis(redis)
        .min_replicas_acked(1)
}

async fn inside(gateway: &GatewayHandle) -> Visitor {
    let visitor = gateway.visitor();
    assert_eq!(visitor.get("/api/slots").await.status(), 200);
    visitor
}

async fn post(visitor: &Visitor, key: impl std::fmt::Display) -> reqwest::Response {
    visitor
        .client
        .post(visitor.url("/api/bookings"))
        .header("content-type", "application/json")
        .header("idempotency-key", key.to_string())
        .body(BOOKING)
        .send()
        .await
        .expect("booking request")
}

async fn receipt_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 202);
    let answer: serde_json::Value = response.json().await.expect("JSON");
    answer["receipt"].as_str().expect("receipt").to_owned()
}

/// A refusal for want of replicas: `503`, `Retry-After`, "not stored".
async fn assert_not_stored(response: reqwest::Response) {
    assert_eq!(response.status(), 503, "refused, never 202 or 500");
    let retry_after: u64 = header(&response, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1, "{retry_after}");
    let message = response.text().await.expect("text");
    assert!(message.contains("not stored"), "{message}");
}

/// The key of a receipt's hash, to look for it on a Redis.
fn receipt_key(receipt: &str) -> String {
    format!("anteroom:buffer:{{bookings}}:receipt:{receipt}")
}

async fn holds(redis: &RedisServer, receipt: &str) -> bool {
    redis.integer(&["EXISTS", &receipt_key(receipt)]).await == 1
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

/// `anteroom_buffer_refused_total{buffer="bookings",reason="not_replicated"}`.
async fn refused_for_want_of_replicas(gateway: &GatewayHandle) -> u64 {
    let metrics = plain_client()
        .get(gateway.admin_url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("anteroom_buffer_refused_total{")
                && line.contains("buffer=\"bookings\"")
                && line.contains("reason=\"not_replicated\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_booking_is_answered_202_once_its_replica_has_it() {
    let primary = RedisServer::start_durable().await;
    let replica = RedisServer::start_replica_of(&primary).await;
    let origin = origin().await;
    let gateway = acked_by_one(&origin, &primary).start().await;
    let visitor = inside(&gateway).await;

    // Twenty at once: they go to Redis in batches, each with one WAIT.
    let answers = futures::future::join_all((0..20).map(|n| post(&visitor, format!("k{n}")))).await;
    for answer in answers {
        let receipt = receipt_of(answer).await;
        // On the replica already, not eventually: WAIT said so before the 202.
        assert!(holds(&replica, &receipt).await, "{receipt} on the replica");
    }
    // A resubmission is answered with the first receipt, also once the
    // replica is known to have it.
    let first = receipt_of(post(&visitor, "k0").await).await;
    assert!(holds(&replica, &first).await);
    assert_eq!(buffer_figures(&gateway).await["accepted"], 20);
    assert_eq!(refused_for_want_of_replicas(&gateway).await, 0);
}

#[tokio::test]
async fn without_its_replica_a_booking_is_refused_503_not_stored_until_it_is_back() {
    let primary = RedisServer::start_durable().await;
    let mut replica = RedisServer::start_replica_of(&primary).await;
    let origin = origin().await;
    let gateway = acked_by_one(&origin, &primary).start().await;
    let visitor = inside(&gateway).await;
    receipt_of(post(&visitor, "before").await).await;

    // Frozen: connected, but it acknowledges nothing.
    replica.pause();
    assert_not_stored(post(&visitor, "frozen").await).await;
    assert!(refused_for_want_of_replicas(&gateway).await >= 1);
    replica.resume();
    // Sent again with its key once the replica is back: accepted, once. (The
    // refused try had reached the primary: the retry is its duplicate.)
    let receipt = receipt_of(post(&visitor, "frozen").await).await;
    assert!(holds(&replica, &receipt).await);
    assert_eq!(buffer_figures(&gateway).await["accepted"], 2);

    // Killed: the primary has no replica at all.
    replica.kill();
    assert_not_stored(post(&visitor, "killed").await).await;
    replica.restart().await;
    replica.wait_until_in_sync().await;
    let receipt = receipt_of(post(&visitor, "killed").await).await;
    assert!(holds(&replica, &receipt).await);
    assert_eq!(buffer_figures(&gateway).await["accepted"], 3);
}

/// The chaos run's failover, with `min_replicas_acked = 1`: bookings
/// answered `202` over a healthy link, then bookings sent while the
/// replica's link is stalled (the 300–500 ms link at its worst), then the
/// primary killed and the replica promoted, the gateway and a worker
/// restarted on it. Every `202` is on the new primary and applied exactly
/// once; the others were refused, and their retries (with their keys, once
/// the new primary has a replica) are applied once too. Without
/// `min_replicas_acked` the stalled bookings are answered `202` and lost.
#[tokio::test]
async fn a_failover_keeps_every_booking_answered_202_and_each_is_applied_once() {
    let mut primary = RedisServer::start_durable().await;
    let link = TcpProxy::start(([127, 0, 0, 1], primary.port).into()).await;
    let mut replica = RedisServer::start_replica_of_port(link.port).await;
    let origin = origin().await;
    let before = acked_by_one(&origin, &primary).start().await;
    let visitor = inside(&before).await;

    let accepted: Vec<String> = {
        let answers =
            futures::future::join_all((0..10).map(|n| post(&visitor, format!("ok{n}")))).await;
        let mut receipts = Vec::new();
        for answer in answers {
            receipts.push(receipt_of(answer).await);
        }
        receipts
    };
    link.stall();
    let unconfirmed: Vec<String> = (0..3).map(|n| format!("stalled{n}")).collect();
    let answers =
        futures::future::join_all(unconfirmed.iter().map(|key| post(&visitor, key))).await;
    for answer in answers {
        assert_not_stored(answer).await;
    }

    // kill -9, and the replica takes over with what it has.
    primary.kill();
    replica.promote().await;
    before.stop().await;
    let new_replica = RedisServer::start_replica_of(&replica).await;
    let after_builder = acked_by_one(&origin, &replica);
    let config = after_builder
        .config_file()
        .validate()
        .expect("a valid config");
    let after = after_builder.start().await;
    for receipt in &accepted {
        assert!(holds(&replica, receipt).await, "{receipt} survived");
    }

    let worker_store = RedisStore::new(&replica.url()).expect("the worker's store");
    let drainer = anteroom_worker::Drainer::new(&config, Arc::new(worker_store))
        .await
        .expect("a drainer");
    let stop = anteroom_gateway::Shutdown::new();
    let draining = tokio::spawn(drainer.run(stop.clone(), Duration::from_secs(2)));
    eventually("the worker applies every booking answered 202", || async {
        buffer_figures(&after).await["done"] == 10
    })
    .await;
    assert_eq!(origin.stats().await["bookings"], 10, "each applied once");

    // The refused ones, sent again by the same visitor (its pass is good on
    // the restarted gateway: same keys), are accepted and applied once.
    let visitor = visitor.with_base(&after.url(""));
    for key in &unconfirmed {
        let receipt = receipt_of(post(&visitor, key).await).await;
        assert!(holds(&new_replica, &receipt).await);
    }
    eventually("the worker applies the retried bookings", || async {
        buffer_figures(&after).await["done"] == 13
    })
    .await;
    assert_eq!(origin.stats().await["bookings"], 13);
    stop.begin();
    draining.await.expect("the drain stops");
}

#[tokio::test]
async fn a_gateway_whose_redis_became_a_replica_answers_503_not_500() {
    let mut demoted = RedisServer::start_durable().await;
    let new_primary = RedisServer::start_durable().await;
    let origin = origin().await;
    // Without min_replicas_acked: READONLY is refused as such, whatever
    // bookings wait for.
    let gateway = gateway(&origin)
        .room(room("vaccini").paths(&["/api/"]).capacity(10))
        .buffer(bookings())
        .redis(&demoted)
        .start()
        .await;
    let visitor = inside(&gateway).await;
    receipt_of(post(&visitor, "before").await).await;

    demoted.demote_to(&new_primary).await;
    let refused = post(&visitor, "after").await;
    assert_eq!(refused.status(), 503, "never 500");
    assert!(header(&refused, "retry-after").is_some());
    let message = refused.text().await.expect("text");
    assert!(message.contains("could not be stored"), "{message}");
    // The rooms' steps are refused too: the store is down for this gateway.
    // A replica answers PING: /readyz asks for its role, and says why.
    let readyz = plain_client()
        .get(gateway.admin_url("/readyz"))
        .send()
        .await
        .expect("the admin listener answers");
    assert_eq!(readyz.status(), 503);
    let reason = readyz.text().await.expect("text");
    assert!(reason.contains("read-only replica"), "{reason}");
}

/// The store's own answers, as the gateway gets them: a shortfall of
/// replicas and a replica's READONLY are typed errors that say so.
#[tokio::test]
async fn the_store_tells_a_shortfall_of_replicas_and_a_read_only_replica() {
    let mut primary = RedisServer::start_durable().await;
    let other = RedisServer::start_durable().await;
    let buffer = BufferParams {
        name: "bookings".to_owned(),
        drain_per_second: 1000,
        max_in_flight: 100,
        max_depth: 1000,
        max_per_pass: 1000,
        max_attempts: 3,
        lease: Duration::from_secs(30),
        result_for: Duration::from_secs(60),
    };
    let store = RedisStore::new(&primary.url())
        .expect("a store")
        .with_min_replicas_acked(std::num::NonZeroU32::new(1));
    let error = store
        .enqueue(&buffer, submission("no-replica"))
        .await
        .expect_err("no replica has it");
    assert!(
        matches!(
            error,
            StoreError::NotReplicated {
                acked: 0,
                wanted: 1,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.is_for_want_of_replicas());

    let replica = RedisServer::start_replica_of(&primary).await;
    let accepted = store
        .enqueue(&buffer, submission("with-replica"))
        .await
        .expect("the replica has it");
    let Enqueued::Accepted { receipt, .. } = accepted else {
        panic!("accepted, not {accepted:?}");
    };
    assert!(holds(&replica, &receipt).await);
    // The one that fell short is on the primary: sent again, it is its
    // duplicate, acknowledged now.
    let again = store
        .enqueue(&buffer, submission("no-replica"))
        .await
        .expect("the replica has it now");
    assert!(matches!(again, Enqueued::Duplicate { .. }), "{again:?}");

    primary.demote_to(&other).await;
    let error = store
        .enqueue(&buffer, submission("read-only"))
        .await
        .expect_err("a replica takes no writes");
    assert!(matches!(error, StoreError::ReadOnly { .. }), "{error}");
    assert!(error.to_string().contains("READONLY"), "{error}");
}

fn submission(key: &str) -> Submission {
    Submission {
        receipt: receipt_id("bookings"),
        idempotency_key: key.to_owned(),
        fingerprint: format!("fingerprint of {key}"),
        pass: None,
        request: BOOKING.as_bytes().to_vec(),
    }
}

/// A split brain: the replica is promoted while the old primary, cut off
/// from it, keeps running with a gateway and a worker of its own. The old
/// primary has no replica left, so nothing is acknowledged there (`503`,
/// "not stored"), though its worker may still deliver what reached it; the
/// new side acknowledges as usual. After the old primary rejoins as a
/// replica, every booking answered `202` on either side, and every refused
/// one sent again, is applied exactly once in effect (the site honours the
/// scoped `Idempotency-Key`).
#[tokio::test]
async fn a_split_brain_acknowledges_nothing_on_the_cut_off_primary() {
    let mut old = RedisServer::start_durable().await;
    let mut link = TcpProxy::start(([127, 0, 0, 1], old.port).into()).await;
    let mut new = RedisServer::start_replica_of_port(link.port).await;
    let origin = origin().await;
    let old_side = acked_by_one(&origin, &old).start().await;
    let visitor = inside(&old_side).await;
    for n in 0..5 {
        receipt_of(post(&visitor, format!("before{n}")).await).await;
    }

    // The split: the link goes, the replica is promoted and gets a replica
    // of its own; the old side keeps its gateway and starts a worker.
    link.close();
    new.promote().await;
    let _new_replica = RedisServer::start_replica_of(&new).await;
    let new_side_builder = acked_by_one(&origin, &new);
    let config = new_side_builder
        .config_file()
        .validate()
        .expect("a valid config");
    let new_side = new_side_builder.start().await;
    let stop = anteroom_gateway::Shutdown::new();
    let old_worker = anteroom_worker::Drainer::new(
        &config,
        Arc::new(RedisStore::new(&old.url()).expect("store")),
    )
    .await
    .expect("a drainer");
    let old_draining = tokio::spawn(old_worker.run(stop.clone(), Duration::from_secs(2)));

    let refused: Vec<String> = (0..5).map(|n| format!("old-side{n}")).collect();
    for key in &refused {
        assert_not_stored(post(&visitor, key).await).await;
    }
    let elsewhere = inside(&new_side).await;
    for n in 0..5 {
        receipt_of(post(&elsewhere, format!("new-side{n}")).await).await;
    }

    // Healed: the old primary rejoins as a replica of the new one (what it
    // alone held is gone), and the refused bookings are sent again, to
    // the new side.
    stop.begin();
    old_draining.await.expect("the old worker stops");
    old.demote_to(&new).await;
    let visitor = visitor.with_base(&new_side.url(""));
    for key in &refused {
        receipt_of(post(&visitor, key).await).await;
    }
    let new_worker = anteroom_worker::Drainer::new(
        &config,
        Arc::new(RedisStore::new(&new.url()).expect("store")),
    )
    .await
    .expect("a drainer");
    let stop = anteroom_gateway::Shutdown::new();
    let draining = tokio::spawn(new_worker.run(stop.clone(), Duration::from_secs(2)));
    eventually("the new side applies every booking it accepted", || async {
        buffer_figures(&new_side).await["done"] == 15
    })
    .await;
    assert_eq!(
        origin.stats().await["bookings"],
        15,
        "5 before the split, 5 on the new side, the 5 refused and sent again: each once"
    );
    stop.begin();
    draining.await.expect("the drain stops");
}
