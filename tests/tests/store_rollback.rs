//! The Redis store's scripts when its data goes back (a rollback, a loss)
//! and when an arrival's reply was lost, step by step on a simulated store
//! clock. Rollbacks are made by hand here (counters lowered and pending
//! entries deleted with `redis-cli`, as an older snapshot would have them);
//! `rollback.rs` and `faults.rs` restart a real Redis from a real one.

use std::process::Command;
use std::time::Duration;

use anteroom_store::{Arrival, Claim, Clock, RedisStore, RoomParams, Store};
use anteroom_tests::RedisServer;

const T0: u64 = 1_800_000_000_000;

fn params(capacity: u32) -> RoomParams {
    RoomParams {
        name: "vaccini".into(),
        capacity,
        admit_per_minute: 600,
        inside_ttl: Duration::from_secs(300),
        arrival: Duration::from_secs(60),
        schedule: Default::default(),
    }
}

fn redis_cli(server: &RedisServer, args: &[&str]) {
    let status = Command::new("redis-cli")
        .args(["-p", &server.port.to_string()])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli runs");
    assert!(status.success(), "redis-cli {args:?}");
}

fn pass(name: &str) -> String {
    format!("{name:0>32}")
}

struct Fixture {
    server: RedisServer,
    clock: Clock,
    store: RedisStore,
    room: RoomParams,
}

impl Fixture {
    async fn new(capacity: u32) -> Fixture {
        let server = RedisServer::start().await;
        let clock = Clock::manual();
        clock.set(T0);
        let store = RedisStore::with_simulated_clock(&server.url(), clock.clone()).unwrap();
        Fixture {
            server,
            clock,
            store,
            room: params(capacity),
        }
    }

    fn at(&self, millis: u64) -> &RedisStore {
        self.clock.set(T0 + millis);
        &self.store
    }

    async fn ticket(&self, millis: u64, id: &str) -> u64 {
        match self.at(millis).arrive(&self.room, &pass(id)).await.unwrap() {
            Arrival::Ticketed { ticket, .. } => ticket,
            other => panic!("expected a ticket: {other:?}"),
        }
    }

    async fn enters(&self, millis: u64, id: &str) {
        let arrival = self.at(millis).arrive(&self.room, &pass(id)).await.unwrap();
        assert!(matches!(arrival, Arrival::Admitted { .. }), "{arrival:?}");
    }
}

#[tokio::test]
async fn counters_gone_back_are_raised_to_what_the_gateway_saw_and_the_room_settles() {
    let fixture = Fixture::new(2).await;
    let room = &fixture.room;
    fixture.enters(0, "a").await;
    fixture.enters(1, "b").await;
    for expected in 3..=6 {
        assert_eq!(fixture.ticket(2, &format!("t{expected}")).await, expected);
    }
    fixture.at(10).leave(room, &pass("a")).await.unwrap();
    let before = fixture.at(20).advance(room).await.unwrap();
    assert_eq!((before.issued, before.admitted_through), (6, 3));

    // The data goes back to before tickets 3 to 6 and the admission of 3.
    redis_cli(
        &fixture.server,
        &["HSET", "anteroom:{vaccini}", "issued", "2", "admitted", "2"],
    );
    redis_cli(&fixture.server, &["DEL", "anteroom:{vaccini}:pending"]);

    let after = fixture.at(100).advance(room).await.unwrap();
    assert_eq!(
        (
            after.epoch,
            after.issued,
            after.admitted_through,
            after.generation
        ),
        (before.epoch, 6, 3, before.generation + 1),
        "the counters this client saw, a new generation"
    );
    // Settling: no number is handed out for three seconds...
    let held = fixture.at(200).arrive(room, &pass("n")).await.unwrap();
    assert!(matches!(held, Arrival::Held { .. }), "{held:?}");
    // ...and ticket 3, let in before the rollback took its pending entry,
    // may still be claimed.
    let claim = fixture
        .at(300)
        .claim(room, before.epoch, 3, &pass("p3"))
        .await;
    assert_eq!(claim.unwrap(), Claim::Admitted);
    // Nobody else is let in while settling, though budget has accrued.
    let settling = fixture.at(2_000).advance(room).await.unwrap();
    assert_eq!((settling.admitted_through, settling.inside), (3, 2));
    // Settled: the next number is 7, never one of 3 to 6 again.
    fixture.at(3_200).leave(room, &pass("b")).await.unwrap();
    let settled = fixture.at(3_300).advance(room).await.unwrap();
    assert_eq!(
        settled.admitted_through, 4,
        "ticket 4 is next, with b's slot"
    );
    assert_eq!(fixture.ticket(3_400, "late").await, 7);
    // A ticket past the amnesty range and never admitted is not let in by it.
    let claim = fixture
        .at(3_500)
        .claim(room, before.epoch, 5, &pass("p5"))
        .await;
    assert_eq!(claim.unwrap(), Claim::NotYet);
}

#[tokio::test]
async fn a_lost_room_goes_on_where_the_gateway_saw_it() {
    let fixture = Fixture::new(1).await;
    let room = &fixture.room;
    fixture.enters(0, "a").await;
    assert_eq!(fixture.ticket(1, "t2").await, 2);
    assert_eq!(fixture.ticket(2, "t3").await, 3);
    let before = fixture.at(10).advance(room).await.unwrap();

    redis_cli(&fixture.server, &["FLUSHALL"]);

    let after = fixture.at(100).advance(room).await.unwrap();
    assert_eq!(
        (
            after.epoch,
            after.issued,
            after.admitted_through,
            after.generation
        ),
        (before.epoch, 3, 1, 1)
    );
    // The pass inside is reported again (as gateways do on a new
    // generation) before the room settles: the room stays full.
    fixture
        .at(500)
        .touch(room, &[(pass("a"), T0 + 400)])
        .await
        .unwrap();
    let settled = fixture.at(3_200).advance(room).await.unwrap();
    assert_eq!((settled.inside, settled.admitted_through), (1, 1));
    assert_eq!(fixture.ticket(3_300, "t4").await, 4, "behind 2 and 3");
}

#[tokio::test]
async fn an_arrival_voided_after_a_lost_reply_holds_no_slot() {
    let fixture = Fixture::new(1).await;
    let room = &fixture.room;
    fixture.enters(0, "a").await;
    assert_eq!(fixture.ticket(1, "ghost").await, 2);
    assert_eq!(fixture.ticket(2, "real").await, 3);
    assert!(
        fixture
            .at(3)
            .void_arrival(room, &pass("ghost"))
            .await
            .unwrap()
    );
    assert!(
        !fixture
            .at(4)
            .void_arrival(room, &pass("unknown"))
            .await
            .unwrap(),
        "an arrival that never ran is not found"
    );
    fixture.at(10).leave(room, &pass("a")).await.unwrap();
    let step = fixture.at(20).advance(room).await.unwrap();
    assert_eq!(
        (step.admitted_through, step.pending),
        (3, 1),
        "the ghost's number is passed over; the real visitor's slot is held"
    );

    // A visitor let straight in whose reply was lost leaves at once.
    let empty = Fixture::new(1).await;
    empty.enters(0, "lost").await;
    assert!(
        empty
            .at(1)
            .void_arrival(&empty.room, &pass("lost"))
            .await
            .unwrap()
    );
    let step = empty.at(2).advance(&empty.room).await.unwrap();
    assert_eq!(step.inside, 0);

    // One whose turn came already gives its pending slot back.
    let turned = Fixture::new(1).await;
    turned.enters(0, "a").await;
    assert_eq!(turned.ticket(1, "late-ghost").await, 2);
    turned.at(2).leave(&turned.room, &pass("a")).await.unwrap();
    assert_eq!(turned.at(3).advance(&turned.room).await.unwrap().pending, 1);
    assert!(
        turned
            .at(4)
            .void_arrival(&turned.room, &pass("late-ghost"))
            .await
            .unwrap()
    );
    assert_eq!(turned.at(5).advance(&turned.room).await.unwrap().pending, 0);
}
