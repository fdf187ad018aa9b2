//! Redis Sentinel: a gateway and a worker configured with `sentinels` and
//! `sentinel_master` follow a failover by themselves (bookings that wait for
//! a replica, `min_replicas_acked`, too), and `/readyz` says "not ready"
//! while the only server the gateway reaches is a read-only replica. A
//! group that speaks only TLS, with passwords, is served with `tls = true`,
//! and refused when its certificates are another CA's.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anteroom_bench::config_file::Buffer;
use anteroom_gateway::token::Keyring;
use anteroom_store::RedisStore;
use anteroom_tests::gateway::COOKIE_KEY;
use anteroom_tests::redis_ha::{cli, within};
use anteroom_tests::{
    GatewayHandle, RedisServer, SentinelGroup, Visitor, cookie_value, eventually, gateway,
    plain_client, reached_origin, room, upstream,
};

const ROOM: &str = "failover";
const CAPACITY: u64 = 4;
/// Generous: a failover takes a few seconds (1 s to call the primary
/// down, then the sentinels' election and the promotion).
const FAILOVER_LIMIT: Duration = Duration::from_secs(60);
const RECONVERT_LIMIT: Duration = Duration::from_secs(180);

/// What the crowd saw, shared by every visitor's task.
#[derive(Default)]
struct Seen {
    /// Visitors counted inside by their own tasks (incremented when one
    /// sees its pass work, decremented before it leaves).
    inside: AtomicU32,
    most_inside: AtomicU32,
    /// Ticket number → visitor index, for every ticket handed out.
    tickets: Mutex<HashMap<u64, usize>>,
    /// A visitor whose place was lost (status `none` while it held a
    /// ticket not yet admitted).
    lost_places: Mutex<Vec<String>>,
}

/// The README's promise for Sentinel: kill the primary (`kill -9`), let the
/// sentinels promote its replica, and nobody touches the gateway or the
/// worker: admissions resume, bookings are stored and applied again, and
/// the line keeps its order and its numbers. With a crowd of 48 visitors
/// (cookie jars of their own) in a room of 4 places:
/// - no ticket number is held by two visitors, and those who arrived after
///   the fault hold higher numbers than everyone who waited before it;
/// - the store's counters (`tickets_issued`, `admitted_through`) never go
///   backwards across the failover, so admission (a visitor is let in when
///   `admitted_through` reaches their ticket) keeps first-come order;
/// - nobody's place is lost, everybody gets in, and never more than 4 are
///   inside, by the store's count or by the visitors' own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_and_a_worker_follow_a_failover_by_themselves() {
    let mut group = SentinelGroup::start().await;
    let origin = upstream().await;
    let builder = gateway(&origin)
        .room(
            room(ROOM)
                .paths(&["/api/", &format!("/echo/{ROOM}")])
                .capacity(CAPACITY as u32),
        )
        .buffer(Buffer::new(
            "failover-bookings",
            ROOM,
            "/api/bookings",
            1000,
        ))
        .sentinels(&group);
    let config = builder.config_file().validate().expect("a valid config");
    let gateway = Arc::new(builder.start().await);
    eventually("the gateway is ready on the sentinels' master", || async {
        gateway.readiness().await == 200
    })
    .await;

    let worker_store = RedisStore::for_backend(&config.store.backend).expect("the worker's store");
    let drainer = anteroom_worker::Drainer::new(&config, Arc::new(worker_store))
        .await
        .expect("a drainer");
    let stop = anteroom_gateway::Shutdown::new();
    let draining = tokio::spawn(drainer.run(stop.clone(), Duration::from_secs(2)));

    // The store's figures, sampled all along: inside never over capacity,
    // the counters never backwards.
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = tokio::spawn(watch_figures(gateway.clone(), watching.clone()));

    let seen = Arc::new(Seen::default());
    let keyring = Keyring::new(&[COOKIE_KEY]);

    // The first wave arrives before the fault: 4 go in, 36 wait.
    let mut first_wave = Vec::new();
    for index in 0..40 {
        let visitor = gateway.visitor();
        let ticket = arrive(&visitor, &keyring).await;
        if let Some(number) = ticket {
            record_ticket(&seen, number, index);
        }
        first_wave.push((index, visitor, ticket));
    }
    let first_wave_tickets: BTreeSet<u64> = first_wave.iter().filter_map(|(_, _, t)| *t).collect();
    assert!(
        first_wave_tickets.len() >= 30,
        "most of the first wave waits: {first_wave_tickets:?}"
    );
    // The crowd: everyone who has a ticket waits for their turn, goes in,
    // books, and leaves, freeing the place for the next. The first four
    // are inside (the room is full) when the primary is killed, and book
    // once the sentinels have promoted the replica: so every booking
    // acknowledged was acknowledged by a master that stays (what a booking
    // acknowledged just before the kill may lose without `WAIT` is the
    // README's durability table, not this test's subject).
    let (failed_over, failover_seen) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (index, visitor, ticket) in first_wave {
        tasks.push(tokio::spawn(go_through(
            visitor,
            index,
            ticket,
            seen.clone(),
            failover_seen.clone(),
        )));
    }
    within(
        "the first four are inside",
        Duration::from_secs(30),
        || async { seen.inside.load(Ordering::SeqCst) as u64 == CAPACITY },
    )
    .await;
    group.wait_replicated().await;
    let old_master = group.master_port().await.expect("a master");
    assert_eq!(old_master, group.server_ports[0]);
    group.kill(0);
    let killed_at = tokio::time::Instant::now();
    within(
        "the sentinels promote the replica",
        FAILOVER_LIMIT,
        || async { group.master_port().await == Some(group.server_ports[1]) },
    )
    .await;
    failed_over.send_replace(true);

    // The second wave arrives after the failover, on the new master.
    within(
        "the gateway is ready again, on the new master",
        FAILOVER_LIMIT,
        || async { gateway.readiness().await == 200 },
    )
    .await;
    // A figure for the README's fault table, never asserted.
    eprintln!("ready again {:?} after the kill", killed_at.elapsed());
    let mut second_wave_tickets = BTreeSet::new();
    for index in 40..48 {
        let visitor = gateway.visitor();
        let ticket = arrive(&visitor, &keyring).await;
        if let Some(number) = ticket {
            record_ticket(&seen, number, index);
            second_wave_tickets.insert(number);
        }
        tasks.push(tokio::spawn(go_through(
            visitor,
            index,
            ticket,
            seen.clone(),
            failover_seen.clone(),
        )));
    }
    assert_eq!(
        second_wave_tickets.len(),
        8,
        "the room is full: all of the second wave waits"
    );

    // The old primary comes back, empty, and the sentinels make it a
    // replica of the new master: nothing changes for the gateway.
    group.restart(0).await;

    for task in tasks {
        tokio::time::timeout(Duration::from_secs(180), task)
            .await
            .expect("every visitor gets through in time")
            .expect("the visitor's task");
    }
    watching.store(false, Ordering::SeqCst);
    watcher.await.expect("the watcher");

    assert!(
        seen.lost_places.lock().expect("lost places").is_empty(),
        "places lost: {:?}",
        seen.lost_places.lock().expect("lost places")
    );
    assert!(
        seen.most_inside.load(Ordering::SeqCst) as u64 <= CAPACITY,
        "at most {CAPACITY} inside by the visitors' count"
    );
    let last_before = *first_wave_tickets.last().expect("tickets");
    let first_after = *second_wave_tickets.first().expect("tickets");
    assert!(
        first_after > last_before,
        "later arrivals hold later numbers: {first_after} after {last_before}"
    );

    // The worker applied every booking (one per visitor; 48 in all).
    within(
        "the worker applies every booking",
        Duration::from_secs(120),
        || async { origin.stats().await["bookings"].as_u64() == Some(48) },
    )
    .await;
    // The old primary, back on its port, is made a replica of the new
    // master by the sentinels; the gateway stays where it is, and ready.
    let old_port = group.server_ports[0];
    // Sentinels convert a returning master only after watching it for 8 s,
    // and not at all while in TILT mode (30 s, entered when their timer
    // stalls for 2 s, as on a loaded two-core CI machine): a longer bound.
    within(
        "the sentinels make the old primary a replica",
        RECONVERT_LIMIT,
        || async { cli(old_port, &["ROLE"]).await.starts_with("slave") },
    )
    .await;
    assert_eq!(
        gateway.readiness().await,
        200,
        "still ready on the new master"
    );
    stop.begin();
    draining.await.expect("the drain stops");
}

/// `min_replicas_acked = 1` through Sentinel: bookings are sent, with the
/// `WAIT` behind them, on a connection of their own, and that connection
/// follows a failover too. Two gateways, nobody restarting either: one
/// books all through the failover (its bookings meet the dead master, then
/// the new one without a replica: `503`s), the other not at all until the
/// old primary is back, as a replica of the new master, on its old port
/// (its bookings' connection still names that port). Both answer `202`
/// before the `kill -9` and again after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_acknowledged_by_a_replica_follow_a_failover() {
    let mut group = SentinelGroup::start().await;
    let origin = upstream().await;
    let start = || {
        gateway(&origin)
            .room(room("acked").paths(&["/api/"]).capacity(10))
            .buffer(Buffer {
                max_per_pass: Some(1000),
                ..Buffer::new("acked-bookings", "acked", "/api/bookings", 1000)
            })
            .sentinels(&group)
            .min_replicas_acked(1)
            .start()
    };
    let booking_through = start().await;
    let quiet = start().await;
    let mut visitors = Vec::new();
    for gateway in [&booking_through, &quiet] {
        eventually("the gateway is ready on the sentinels' master", || async {
            gateway.readiness().await == 200
        })
        .await;
        let visitor = gateway.visitor();
        assert_eq!(visitor.get("/api/slots").await.status(), 200);
        visitors.push(visitor);
    }
    for (index, visitor) in visitors.iter().enumerate() {
        assert_eq!(
            book(visitor, &format!("before-{index}")).await,
            Some(202),
            "gateway {index} stores a booking on a replica before the failover"
        );
    }

    group.wait_replicated().await;
    group.kill(0);
    let killed_at = tokio::time::Instant::now();
    // The first gateway books while the sentinels promote the replica.
    let deadline = killed_at + FAILOVER_LIMIT;
    let mut answers_meanwhile = Vec::new();
    while group.master_port().await != Some(group.server_ports[1]) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sentinels promote the replica within {FAILOVER_LIMIT:?}"
        );
        let key = format!("meanwhile-{}", answers_meanwhile.len());
        answers_meanwhile.push(book(&visitors[0], &key).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The new master has no replica yet: `WAIT` cannot be satisfied.
    assert!(
        !answers_meanwhile.contains(&Some(202)),
        "no booking is acknowledged without a replica: {answers_meanwhile:?}"
    );
    group.restart_as_replica_of(0, 1).await;

    for (index, visitor) in visitors.iter().enumerate() {
        // Retried with the same key: a 503 may have stored it, and the
        // retry is then the same booking.
        let key = format!("after-{index}");
        within(
            "a booking is acknowledged again after the failover",
            FAILOVER_LIMIT,
            || async { book(visitor, &key).await == Some(202) },
        )
        .await;
        // A figure, never asserted.
        eprintln!(
            "gateway {index}: bookings acknowledged again {:?} after the kill",
            killed_at.elapsed()
        );
    }
}

/// Books once with `key`: the status, or `None` if no answer came.
async fn book(visitor: &Visitor, key: &str) -> Option<u16> {
    visitor
        .client
        .post(visitor.url("/api/bookings"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(r#"{"name":"Ada","slot":"2021-03-01T09:00"}"#)
        .send()
        .await
        .ok()
        .map(|response| response.status().as_u16())
}

/// The visitor's first request: let in at once (`None`), or a ticket, whose
/// number the test reads from the signed cookie (it has the key).
async fn arrive(visitor: &Visitor, keyring: &Keyring) -> Option<u64> {
    let response = visitor.get(&format!("/echo/{ROOM}")).await;
    assert!(
        response.status() == 200,
        "an arrival gets the site or the waiting page: {}",
        response.status()
    );
    cookie_value(&response, &format!("anteroom_ticket_{ROOM}"))
        .and_then(|token| keyring.verify_ticket(&token))
        .map(|ticket| ticket.number)
}

fn record_ticket(seen: &Seen, number: u64, index: usize) {
    let previous = seen.tickets.lock().expect("tickets").insert(number, index);
    assert!(
        previous.is_none(),
        "ticket {number} held by visitors {previous:?} and {index}"
    );
}

/// One visitor: waits for their turn (if they have a ticket), goes in (the
/// site answers), books once the failover is over (retrying a `503`, which
/// stores nothing), and leaves.
async fn go_through(
    visitor: Visitor,
    index: usize,
    ticket: Option<u64>,
    seen: Arc<Seen>,
    mut failed_over: tokio::sync::watch::Receiver<bool>,
) {
    if ticket.is_some() {
        loop {
            let response = visitor.get(&format!("/_anteroom/status?room={ROOM}")).await;
            if response.status() == 200 {
                let status: serde_json::Value = response.json().await.expect("status JSON");
                match status["state"].as_str() {
                    Some("admitted") => break,
                    Some("none") => {
                        seen.lost_places
                            .lock()
                            .expect("lost places")
                            .push(format!("visitor {index} (ticket {ticket:?}): {status}"));
                        return;
                    }
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let inside = seen.inside.fetch_add(1, Ordering::SeqCst) + 1;
    seen.most_inside.fetch_max(inside, Ordering::SeqCst);
    let site = visitor.get(&format!("/echo/{ROOM}")).await;
    assert_eq!(site.status(), 200, "visitor {index} reaches the site");
    failed_over
        .wait_for(|done| *done)
        .await
        .expect("the test tells the failover");
    // Booking: retried with the same key until stored (a 503 stores
    // nothing; a retry after a lost answer is the same booking).
    let key = format!("failover-visitor-{index}");
    let mut receipt = None;
    for _ in 0..600 {
        let response = visitor
            .client
            .post(visitor.url("/api/bookings"))
            .header("content-type", "application/json")
            .header("idempotency-key", &key)
            .body(format!(
                r#"{{"name":"visitor {index}","slot":"2021-03-01T09:00"}}"#
            ))
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == 202
        {
            let answer: serde_json::Value = response.json().await.expect("receipt JSON");
            receipt = answer["receipt"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(receipt.is_some(), "visitor {index}'s booking is stored");
    // Out before leaving, so that the visitors' count never runs behind.
    seen.inside.fetch_sub(1, Ordering::SeqCst);
    for _ in 0..600 {
        let response = visitor
            .client
            .post(visitor.url(&format!("/_anteroom/leave?room={ROOM}")))
            .send()
            .await;
        if response.is_ok_and(|response| {
            response.status().is_success() || response.status().is_redirection()
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("visitor {index} could not leave");
}

/// Samples the room's figures (the store's, as the gateway's last step saw
/// them) until told to stop.
async fn watch_figures(gateway: Arc<GatewayHandle>, watching: Arc<AtomicBool>) {
    let url = gateway.admin_url(&format!("/admin/rooms/{ROOM}"));
    let mut highest_issued = 0;
    let mut highest_admitted = 0;
    while watching.load(Ordering::SeqCst) {
        if let Ok(response) = plain_client().get(&url).send().await
            && let Ok(figures) = response.json::<serde_json::Value>().await
        {
            let number = |name: &str| figures[name].as_u64().unwrap_or(0);
            assert!(
                number("inside") <= CAPACITY,
                "at most {CAPACITY} inside by the store's count: {figures}"
            );
            assert!(
                number("tickets_issued") >= highest_issued,
                "tickets issued went back: {figures}"
            );
            assert!(
                number("admitted_through") >= highest_admitted,
                "admitted_through went back: {figures}"
            );
            highest_issued = number("tickets_issued");
            highest_admitted = number("admitted_through");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Redis that answers `PING` but is a replica (of a server that is not
/// there) refuses every write: the gateway is not ready, and says why.
/// Made a master again, it is ready again, with nobody restarting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_the_only_server_is_read_only() {
    let redis = RedisServer::start().await;
    let origin = upstream().await;
    let gateway = gateway(&origin)
        .room(room("read-only"))
        .redis(&redis)
        .start()
        .await;
    eventually("ready on a master", || async {
        gateway.readiness().await == 200
    })
    .await;

    let nowhere = anteroom_tests::free_port().to_string();
    let made_replica = cli(redis.port, &["REPLICAOF", "127.0.0.1", &nowhere]).await;
    assert_eq!(made_replica, "OK");
    eventually("not ready while read-only", || async {
        gateway.readiness().await == 503
    })
    .await;
    let answer: serde_json::Value = plain_client()
        .get(gateway.admin_url("/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("JSON");
    let reason = answer["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("read-only") || reason.contains("READONLY"),
        "says why: {answer}"
    );

    assert_eq!(cli(redis.port, &["REPLICAOF", "NO", "ONE"]).await, "OK");
    eventually("ready again as a master", || async {
        gateway.readiness().await == 200
    })
    .await;
}

/// This binary's Sentinel group that speaks only TLS (servers, replication,
/// sentinels; a private CA) and asks for passwords, shared by the TLS
/// tests (each with a room of its own).
async fn tls_group() -> &'static SentinelGroup {
    static GROUP: tokio::sync::OnceCell<SentinelGroup> = tokio::sync::OnceCell::const_new();
    GROUP
        .get_or_init(|| {
            SentinelGroup::start_with_tls(
                anteroom_tests::redis_ha::Passwords {
                    servers: Some("server-secret".to_owned()),
                    sentinels: Some("sentinel-secret".to_owned()),
                },
                true,
            )
        })
        .await
}

/// `tls = true`, `tls_ca_file` and the passwords: a gateway asks the
/// sentinels over TLS, reaches the master they name over TLS, lets a
/// visitor in and stores their booking there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_through_tls_sentinels_admits_and_stores_a_booking() {
    let group = tls_group().await;
    let name = "tls-sentinel";
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
    let visitor = gateway.visitor();
    let entry = visitor.get(&format!("/echo/{name}")).await;
    assert!(reached_origin(entry).await, "let in to room {name}");
    let response = visitor
        .client
        .post(visitor.url(&format!("/echo/{name}/book")))
        .header("content-type", "application/json")
        .header("idempotency-key", "tls-sentinel-1")
        .body(r#"{"name":"Ada","slot":"2021-03-01T09:00"}"#)
        .send()
        .await
        .expect("booking request");
    assert_eq!(response.status(), 202, "stored");
    let master = group.master_port().await.expect("a master");
    assert_eq!(
        group
            .server_cli(master, &["EXISTS", &format!("anteroom:buffer:{{{name}}}")])
            .await,
        "1",
        "the booking's buffer is on the master"
    );
}

/// The same group trusted through another CA: the gateway is not ready,
/// says it is TLS, and lets nobody through.
#[tokio::test]
async fn tls_sentinels_whose_certificate_another_ca_signed_are_refused() {
    let group = tls_group().await;
    let dir = std::env::temp_dir().join(format!(
        "anteroom-test-sentinel-foreign-{}",
        std::process::id()
    ));
    let foreign = anteroom_tests::Certificates::issue(&dir, "foreign");
    let origin = upstream().await;
    let gateway = gateway(&origin)
        .room(room("tls-sentinel-foreign"))
        .sentinels(group)
        .tls_files(anteroom_tests::RedisTls {
            tls_ca_file: Some(foreign.ca.clone()),
            ..anteroom_tests::RedisTls::default()
        })
        .start()
        .await;
    let reason = gateway.not_ready_because().await;
    assert!(
        reason.starts_with("TLS to sentinel master ") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
    let visitor = gateway.visitor();
    let response = visitor.get("/echo/tls-sentinel-foreign/").await;
    assert!(!reached_origin(response).await, "nobody passes unchecked");
    let _ = std::fs::remove_dir_all(dir);
}
