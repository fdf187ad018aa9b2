//! Passwords to Redis Sentinel and Redis Cluster: servers started with
//! `requirepass` (and `masterauth`), sentinels with `sentinel auth-pass`
//! and a `requirepass` of their own. With the right `store.password` and
//! `store.sentinel_password` a gateway admits a visitor and stores a
//! booking; with a wrong or missing one, `/readyz` and the log say that
//! authentication failed (not that the store is unreachable), name the
//! keys to check, and never show a password.

use anteroom_bench::config_file::Buffer;
use anteroom_config::{Backend, RedisCredentials};
use anteroom_store::{RedisStore, Store, StoreError};
use anteroom_tests::redis_ha::{CLUSTER_PASSWORD, Passwords, cli_as};
use anteroom_tests::{
    CapturedLog, GatewayHandle, RedisCluster, SentinelGroup, Visitor, eventually, gateway,
    plain_client, reached_origin, room, upstream,
};
use tokio::sync::OnceCell;

const SERVER_PASSWORD: &str = "server-secret";
const SENTINEL_PASSWORD: &str = "sentinel-secret";
const WRONG: &str = "wrong-secret";

/// This binary's Sentinel group, shared by its tests (each with rooms of
/// its own): its servers ask for [`SERVER_PASSWORD`], its sentinels for
/// [`SENTINEL_PASSWORD`].
async fn protected_group() -> &'static SentinelGroup {
    static GROUP: OnceCell<SentinelGroup> = OnceCell::const_new();
    GROUP
        .get_or_init(|| {
            SentinelGroup::start_with(Passwords {
                servers: Some(SERVER_PASSWORD.to_owned()),
                sentinels: Some(SENTINEL_PASSWORD.to_owned()),
            })
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_through_password_protected_sentinels_admits_and_stores_a_booking() {
    let group = protected_group().await;
    let name = "sentinel-auth";
    let origin = upstream().await;
    let gateway = gateway(&origin)
        .room(room(name))
        .buffer(Buffer::new(name, name, &format!("/echo/{name}/book"), 1000))
        .sentinels(group)
        .start()
        .await;
    eventually("the gateway is ready on the sentinels' master", || async {
        gateway.readiness().await == 200
    })
    .await;
    let master = group
        .master_port()
        .await
        .expect("the sentinels name a master");
    admit_and_book(&gateway, name, master, SERVER_PASSWORD).await;
}

/// A wrong password to the servers, a wrong one to the sentinels, and none
/// at all: each is told as authentication failed, on `/readyz` and in the
/// log, naming the keys of the side that refused and showing no password.
#[tokio::test]
async fn a_wrong_sentinel_or_server_password_is_told_as_authentication_failed() {
    let group = protected_group().await;
    for (case, servers, sentinels, refused_key, other_key) in [
        (
            "wrong server password",
            Some(WRONG),
            Some(SENTINEL_PASSWORD),
            "store.password",
            "store.sentinel_password",
        ),
        (
            "wrong sentinel password",
            Some(SERVER_PASSWORD),
            Some(WRONG),
            "store.sentinel_password",
            "store.password",
        ),
        (
            "no passwords (the sentinels ask first)",
            None,
            None,
            "store.sentinel_password",
            "store.password",
        ),
    ] {
        let log = CapturedLog::default();
        let _logging = log.install();
        let origin = upstream().await;
        let gateway = gateway(&origin)
            .room(room("sentinel-wrong"))
            .sentinels(group)
            .store_passwords(servers, sentinels)
            .start()
            .await;
        let reason = gateway.not_ready_because().await;
        assert!(reason.contains("authentication failed"), "{case}: {reason}");
        // Whose password was refused, and only that one's keys.
        assert!(
            reason.contains(refused_key) && !reason.contains(other_key),
            "{case}: {reason}"
        );
        assert!(!reason.contains("unreachable"), "{case}: {reason}");
        let line = logged_refusal(&log).await;
        assert!(line.contains("authentication failed"), "{case}: {line}");
        for secret in [SERVER_PASSWORD, SENTINEL_PASSWORD, WRONG] {
            assert!(!reason.contains(secret), "{case}: {reason}");
            assert!(!log.text().contains(secret), "{case}: {}", log.text());
        }
        let visitor = gateway.visitor();
        let response = visitor.get("/echo/sentinel-wrong/").await;
        assert!(!reached_origin(response).await, "{case}: nobody passes");
    }
}

/// One server by URL (`redis_url`): `store.password` goes into it, and a
/// wrong password in the URL is an authentication failure too.
#[tokio::test]
async fn one_server_takes_the_password_and_tells_a_wrong_one() {
    let group = protected_group().await;
    let master = group.master_port().await.expect("a master");
    let right = RedisStore::for_backend(&Backend::Redis {
        url: format!("redis://:{SERVER_PASSWORD}@127.0.0.1:{master}/0"),
        tls: Default::default(),
    })
    .expect("a store");
    right.ping().await.expect("the right password is taken");
    let wrong = RedisStore::for_backend(&Backend::Redis {
        url: format!("redis://:{WRONG}@127.0.0.1:{master}/0"),
        tls: Default::default(),
    })
    .expect("a store");
    match wrong.ping().await {
        Err(error @ StoreError::Authentication { .. }) => {
            let shown = error.to_string();
            assert!(shown.contains("authentication failed"), "{shown}");
            assert!(
                shown.contains("REDACTED") && !shown.contains(WRONG),
                "{shown}"
            );
        }
        other => panic!("an authentication error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_a_password_protected_cluster_admits_and_stores_a_booking() {
    let cluster = RedisCluster::shared_with_password().await;
    let name = "cluster-auth";
    let origin = upstream().await;
    let gateway = gateway(&origin)
        .room(room(name))
        .buffer(Buffer::new(name, name, &format!("/echo/{name}/book"), 1000))
        .cluster(cluster)
        .start()
        .await;
    eventually("the gateway is ready on the cluster", || async {
        gateway.readiness().await == 200
    })
    .await;
    let node = cluster
        .owner_of(&format!("anteroom:buffer:{{{name}}}"))
        .await;
    admit_and_book(&gateway, name, node, CLUSTER_PASSWORD).await;
}

#[tokio::test]
async fn a_wrong_or_missing_cluster_password_is_told_as_authentication_failed() {
    let cluster = RedisCluster::shared_with_password().await;
    for (case, password) in [("wrong password", Some(WRONG)), ("no password", None)] {
        let log = CapturedLog::default();
        let _logging = log.install();
        let origin = upstream().await;
        let gateway = gateway(&origin)
            .room(room("cluster-wrong"))
            .cluster(cluster)
            .store_passwords(password, None)
            .start()
            .await;
        let reason = gateway.not_ready_because().await;
        assert!(reason.contains("authentication failed"), "{case}: {reason}");
        assert!(reason.contains("store.password"), "{case}: {reason}");
        assert!(!reason.contains("unreachable"), "{case}: {reason}");
        let line = logged_refusal(&log).await;
        assert!(line.contains("authentication failed"), "{case}: {line}");
        for secret in [CLUSTER_PASSWORD, WRONG] {
            assert!(!reason.contains(secret), "{case}: {reason}");
            assert!(!log.text().contains(secret), "{case}: {}", log.text());
        }
    }
    // The right one, straight to the store: taken.
    let store = RedisStore::for_backend(&Backend::Cluster {
        nodes: cluster.addresses(),
        credentials: Some(RedisCredentials {
            username: None,
            password: CLUSTER_PASSWORD.to_owned(),
        }),
        tls: None,
    })
    .expect("a cluster store");
    store.ping().await.expect("every node takes the password");
}

/// A visitor goes straight in, books (`202`), and the booking is in the
/// buffer's hash on the server at `port` (read with `password`).
async fn admit_and_book(gateway: &GatewayHandle, name: &str, port: u16, password: &str) {
    let visitor = gateway.visitor();
    let entry = visitor.get(&format!("/echo/{name}")).await;
    assert!(reached_origin(entry).await, "let in to room {name}");
    let receipt_url = book(&visitor, name).await;
    assert_eq!(
        cli_as(
            port,
            Some(password),
            &["EXISTS", &format!("anteroom:buffer:{{{name}}}")]
        )
        .await,
        "1",
        "the buffer's hash is stored"
    );
    let receipt: serde_json::Value = plain_client()
        .get(gateway.url(&receipt_url))
        .send()
        .await
        .expect("receipt")
        .json()
        .await
        .expect("receipt JSON");
    assert_eq!(receipt["state"], "queued", "{receipt}");
}

async fn book(visitor: &Visitor, room: &str) -> String {
    let response = visitor
        .client
        .post(visitor.url(&format!("/echo/{room}/book")))
        .header("content-type", "application/json")
        .header("idempotency-key", format!("auth-{room}"))
        .body(r#"{"name":"Ada","slot":"2021-03-01T09:00"}"#)
        .send()
        .await
        .expect("booking request");
    assert_eq!(response.status(), 202, "stored in room {room}'s buffer");
    let answer: serde_json::Value = response.json().await.expect("JSON");
    answer["status_url"]
        .as_str()
        .expect("a status_url")
        .to_owned()
}

/// The log line of the first failed store call (a room's step, within
/// its first tenths of a second).
async fn logged_refusal(log: &CapturedLog) -> String {
    eventually("the refusal is logged", || async {
        log.text().contains("store refused our credentials")
    })
    .await;
    log.text()
        .lines()
        .find(|line| line.contains("store refused our credentials"))
        .expect("the line")
        .to_owned()
}
