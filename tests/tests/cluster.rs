//! Redis Cluster: a gateway and a worker configured with `cluster_nodes`
//! serve rooms and buffered bookings whose keys live on different nodes
//! (every script touches the keys of one hash tag, `{room}` or `{buffer}`,
//! so of one slot), and the store's contract holds on a cluster
//! connection; a cluster that speaks only TLS (`tls = true`), with a
//! password, is served too, and one whose certificate another CA signed
//! is refused.

use std::sync::Arc;
use std::time::Duration;

use anteroom_bench::config_file::Buffer;
use anteroom_config::Backend;
use anteroom_store::{RedisStore, Store};
use anteroom_tests::redis_ha::{cli, within};
use anteroom_tests::{
    Certificates, RedisCluster, RedisTls, Visitor, eventually, gateway, plain_client,
    reached_origin, room, upstream,
};

/// Room names, tried in turn, for two whose keys the cluster keeps on
/// different nodes (with three nodes, two of these differ for certain).
const CANDIDATES: [&str; 4] = ["north", "south", "east", "west"];

async fn two_rooms_on_different_nodes(cluster: &RedisCluster) -> [(String, u16); 2] {
    let mut owners = Vec::new();
    for name in CANDIDATES {
        owners.push((
            name.to_owned(),
            cluster.owner_of(&format!("anteroom:{{{name}}}")).await,
        ));
    }
    let first = owners[0].clone();
    let second = owners
        .iter()
        .find(|(_, port)| *port != first.1)
        .cloned()
        .expect("four hash tags on three nodes are not all on one");
    [first, second]
}

/// Two rooms on two nodes, each with a buffered route: a visitor of each is
/// let in, a second waits and is let in when the first leaves, the first
/// books (`202`), and a worker applies both bookings (`done`); the
/// room's and the buffer's keys are on the node that owns their slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_and_a_worker_serve_rooms_and_bookings_on_two_nodes() {
    let cluster = RedisCluster::shared().await;
    let [(north, north_node), (south, south_node)] = two_rooms_on_different_nodes(cluster).await;
    assert_ne!(north_node, south_node);
    let origin = upstream().await;
    let builder = gateway(&origin)
        .room(room(&north))
        .room(room(&south))
        .buffer(Buffer::new(
            &north,
            &north,
            &format!("/echo/{north}/book"),
            1000,
        ))
        .buffer(Buffer::new(
            &south,
            &south,
            &format!("/echo/{south}/book"),
            1000,
        ))
        .cluster(cluster);
    let config = builder.config_file().validate().expect("a valid config");
    let gateway = builder.start().await;
    eventually("the gateway is ready on the cluster", || async {
        gateway.readiness().await == 200
    })
    .await;

    let mut receipts = Vec::new();
    for name in [&north, &south] {
        // The first visitor goes straight in; the second waits (capacity 1).
        let first = gateway.visitor();
        let entry = first.get(&format!("/echo/{name}")).await;
        assert!(reached_origin(entry).await, "let in to room {name}");
        let second = gateway.visitor();
        assert_eq!(
            second.position(name).await,
            None,
            "no place before asking for a page"
        );
        second.get(&format!("/echo/{name}")).await;
        assert_eq!(
            second.position(name).await,
            Some(1),
            "the second waits in {name}"
        );
        receipts.push((name.clone(), book(&first, name).await));
        first.leave(name).await;
        second
            .wait_until_admitted(name, Duration::from_secs(10))
            .await;
    }
    for (name, node) in [(&north, north_node), (&south, south_node)] {
        assert_eq!(
            cli(node, &["EXISTS", &format!("anteroom:{{{name}}}")]).await,
            "1",
            "room {name}'s hash is on node {node}"
        );
        assert_eq!(
            cli(node, &["EXISTS", &format!("anteroom:buffer:{{{name}}}")]).await,
            "1",
            "buffer {name}'s hash is on node {node}"
        );
    }

    let worker_store = RedisStore::for_backend(&config.store.backend).expect("the worker's store");
    let drainer = anteroom_worker::Drainer::new(&config, Arc::new(worker_store))
        .await
        .expect("a drainer");
    let stop = anteroom_gateway::Shutdown::new();
    let draining = tokio::spawn(drainer.run(stop.clone(), Duration::from_secs(2)));
    for (name, receipt_url) in &receipts {
        let receipt_url = gateway.url(receipt_url);
        within(
            &format!("room {name}'s booking is applied"),
            Duration::from_secs(30),
            || async {
                let receipt: serde_json::Value = plain_client()
                    .get(&receipt_url)
                    .send()
                    .await
                    .expect("receipt")
                    .json()
                    .await
                    .expect("receipt JSON");
                receipt["state"] == "done"
            },
        )
        .await;
    }
    stop.begin();
    draining.await.expect("the drain stops");
}

async fn book(visitor: &Visitor, room: &str) -> String {
    let response = visitor
        .client
        .post(visitor.url(&format!("/echo/{room}/book")))
        .header("content-type", "application/json")
        .header("idempotency-key", format!("cluster-{room}"))
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

/// The store seam on a cluster connection: arrival, the step's admission,
/// a claim, a leave, a change, and `ping` (every node answers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_scripts_run_on_a_cluster_connection() {
    let cluster = RedisCluster::shared().await;
    let store = RedisStore::for_backend(&Backend::Cluster {
        nodes: cluster.addresses(),
        credentials: None,
        tls: None,
    })
    .expect("a cluster store");
    store.ping().await.expect("every node answers");
    let params = anteroom_store::RoomParams {
        name: "cluster-seam".to_owned(),
        capacity: 1,
        admit_per_minute: 6000,
        inside_ttl: Duration::from_secs(300),
        arrival: Duration::from_secs(60),
        schedule: Default::default(),
    };
    let first = store.arrive(&params, "pass-one").await.expect("arrive");
    assert!(
        matches!(first, anteroom_store::Arrival::Admitted { .. }),
        "{first:?}"
    );
    let second = store.arrive(&params, "pass-two").await.expect("arrive");
    let anteroom_store::Arrival::Ticketed { ticket, snapshot } = second else {
        panic!("the second waits: {second:?}");
    };
    store.leave(&params, "pass-one").await.expect("leave");
    let mut claimed = false;
    for _ in 0..100 {
        store.advance(&params).await.expect("advance");
        if store
            .claim(&params, snapshot.epoch, ticket, "pass-two")
            .await
            .expect("claim")
            == anteroom_store::Claim::Admitted
        {
            claimed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(claimed, "the second is let in once the first left");
}

/// The fault suite on a cluster: the node that holds a room is killed and
/// comes back empty (the nodes keep nothing on disk) while a crowd of 40
/// visitors with their own cookies goes through two gateways. The
/// gateways' marks carry the line on (see "When the store forgets"), so
/// the crowd's checks hold: never more inside than the capacity, no ticket
/// held twice, no place lost, nobody passed by a later arrival, everyone in
/// without help. The cluster is this test's own, since it kills a node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_through_the_loss_of_the_node_holding_its_room() {
    use anteroom_tests::{Crowd, CrowdOptions};
    const CAPACITY: u32 = 5;
    let mut cluster = RedisCluster::start().await;
    let origin = upstream().await;
    let spec = || room("vaccini").capacity(CAPACITY).admit_per_minute(1200);
    let a = gateway(&origin)
        .room(spec())
        .cluster(&cluster)
        .start()
        .await;
    let b = gateway(&origin)
        .room(spec())
        .cluster(&cluster)
        .start()
        .await;
    let holder = cluster.index_of(cluster.owner_of("anteroom:{vaccini}").await);
    let crowd = Crowd::start(CrowdOptions {
        gateways: vec![a.url(""), b.url("")],
        room: "vaccini".into(),
        path: "/echo/vaccini".into(),
        visitors: 40,
        arrive_every: Duration::from_millis(50),
        stay: Duration::from_millis(400),
        give_up_after: Duration::from_secs(90),
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    crowd.fault();
    cluster.kill(holder);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(holder).await;
    let report = crowd.finish().await;
    eprintln!(
        "admissions resumed {:?} after the fault",
        report.resumed_after()
    );
    report.assert_fair(CAPACITY as usize);
}

/// A cluster whose nodes speak only TLS (`--port 0 --tls-port`,
/// `tls-cluster yes`, certificates of a private CA) and ask for a
/// password: with `tls = true`, `tls_ca_file` and `password`, a gateway
/// lets a visitor in and stores their booking on the node that owns the
/// buffer's slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_a_tls_cluster_with_a_password_admits_and_stores_a_booking() {
    let cluster = RedisCluster::shared_with_tls().await;
    let name = "tls-cluster";
    let origin = upstream().await;
    let gateway = gateway(&origin)
        .room(room(name))
        .buffer(Buffer::new(name, name, &format!("/echo/{name}/book"), 1000))
        .cluster(cluster)
        .start()
        .await;
    eventually("the gateway is ready on the TLS cluster", || async {
        gateway.readiness().await == 200
    })
    .await;
    let visitor = gateway.visitor();
    let entry = visitor.get(&format!("/echo/{name}")).await;
    assert!(reached_origin(entry).await, "let in to room {name}");
    book(&visitor, name).await;
    let key = format!("anteroom:buffer:{{{name}}}");
    let node = cluster.owner_of(&key).await;
    assert_eq!(
        cluster.cli(node, &["EXISTS", &key]).await,
        "1",
        "the booking's buffer is on node {node}"
    );
}

/// The same cluster, trusted through another CA: the gateway is not ready,
/// and nobody passes unchecked.
#[tokio::test]
async fn a_tls_cluster_whose_certificate_another_ca_signed_is_refused() {
    let cluster = RedisCluster::shared_with_tls().await;
    let dir = std::env::temp_dir().join(format!("anteroom-test-foreign-{}", std::process::id()));
    let foreign = Certificates::issue(&dir, "foreign");
    let origin = upstream().await;
    let gateway = gateway(&origin)
        .room(room("tls-cluster-foreign"))
        .cluster(cluster)
        .tls_files(RedisTls {
            tls_ca_file: Some(foreign.ca.clone()),
            ..RedisTls::default()
        })
        .start()
        .await;
    let reason = gateway.not_ready_because().await;
    assert!(
        reason.starts_with("TLS to cluster nodes ") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
    let visitor = gateway.visitor();
    let response = visitor.get("/echo/tls-cluster-foreign/").await;
    assert!(!reached_origin(response).await, "nobody passes unchecked");
    let _ = std::fs::remove_dir_all(dir);
}
