//! The store seam's contract, run against both backends (a private
//! `redis-server` for Redis) on a simulated clock: the store's own clock,
//! set by the test before each call (for Redis, the scripts read it instead
//! of `TIME`). The admission arithmetic is deterministic given time, so no
//! test here sleeps. The last tests run Redis on its own clock.

use std::sync::Arc;
use std::time::Duration;

use anteroom_store::{
    Arrival, Claim, Clock, MemoryStore, RedisStore, RoomChange, RoomParams, RoomSnapshot,
    RoomState, Store,
};
use anteroom_tests::RedisServer;
use anteroom_tests::backend::{At, arrive, ticket_of};

const T0: u64 = 1_800_000_000_000;

fn params(capacity: u32, admit_per_minute: u32) -> RoomParams {
    RoomParams {
        name: "vaccini".into(),
        capacity,
        admit_per_minute,
        inside_ttl: Duration::from_secs(300),
        arrival: Duration::from_secs(60),
        schedule: Default::default(),
    }
}

anteroom_tests::on_both_backends_on_a_simulated_clock!(
    empty_room_lets_the_first_visitors_straight_in,
    full_room_hands_out_tickets_in_order,
    admission_rate_matches_admit_per_minute_over_a_minute,
    capacity_bounds_admissions,
    a_ticket_is_swapped_for_a_pass_once,
    no_show_frees_the_slot_after_arrival_time,
    idle_pass_frees_the_slot_after_its_session,
    activity_keeps_a_pass_inside_and_revives_it_unless_it_left,
    leaving_frees_the_slot,
    positions_do_not_move_when_others_arrive,
    tickets_of_another_epoch_are_spent,
    an_outage_does_not_make_no_shows,
    a_rejoining_pass_counts_once,
    live_changes_steer_the_room,
    activity_reported_ahead_of_the_store_counts_as_now,
    a_pace_mark_in_the_future_does_not_stop_admissions,
);

async fn empty_room_lets_the_first_visitors_straight_in(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(2, 600);
    assert!(matches!(
        arrive(&store, &room, T0).await,
        Arrival::Admitted { .. }
    ));
    assert!(matches!(
        arrive(&store, &room, T0).await,
        Arrival::Admitted { .. }
    ));
    // Full now: the third waits, first in line.
    let Arrival::Ticketed { ticket, snapshot } = arrive(&store, &room, T0).await else {
        panic!("third visitor should wait");
    };
    assert_eq!(snapshot.position(ticket), Some(1));
    assert_eq!(snapshot.inside, 2);
}

async fn full_room_hands_out_tickets_in_order(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    arrive(&store, &room, T0).await;
    let mut tickets = Vec::new();
    for _ in 0..5 {
        tickets.push(ticket_of(arrive(&store, &room, T0).await));
    }
    assert!(
        tickets.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "{tickets:?}"
    );
}

/// The bar: the admission rate is within 5% of `admit_per_minute`
/// over a minute, with a long queue and ample capacity, stepped every 100 ms
/// as the gateways do.
async fn admission_rate_matches_admit_per_minute_over_a_minute(
    store: Arc<dyn Store>,
    clock: Clock,
) {
    let store = At::new(store, clock);
    for admit_per_minute in [60, 600, 6000] {
        let room = RoomParams {
            name: format!("rate{admit_per_minute}"),
            ..params(1_000_000, admit_per_minute)
        };
        // Fill the queue before the clock starts: everyone after the first
        // second's burst waits.
        for _ in 0..(admit_per_minute * 2) {
            arrive(&store, &room, T0).await;
        }
        let start = store
            .advance(&room, T0)
            .await
            .expect("advance")
            .admitted_through;
        let mut now = T0;
        while now < T0 + 60_000 {
            now += 100;
            store.advance(&room, now).await.expect("advance");
        }
        let end = store
            .advance(&room, now)
            .await
            .expect("advance")
            .admitted_through;
        let admitted = (end - start) as f64;
        let expected = f64::from(admit_per_minute);
        assert!(
            (admitted - expected).abs() <= expected * 0.05,
            "admitted {admitted} in a minute at admit_per_minute = {admit_per_minute}"
        );
    }
}

async fn capacity_bounds_admissions(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(3, 6000);
    for _ in 0..20 {
        arrive(&store, &room, T0).await;
    }
    let mut now = T0;
    for _ in 0..50 {
        now += 100;
        let snapshot = store.advance(&room, now).await.expect("advance");
        assert!(snapshot.inside + snapshot.pending <= 3, "{snapshot:?}");
    }
    let snapshot = store.advance(&room, now).await.expect("advance");
    assert_eq!(snapshot.inside + snapshot.pending, 3);
}

async fn a_ticket_is_swapped_for_a_pass_once(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    let Arrival::Admitted { snapshot } = arrive(&store, &room, T0).await else {
        panic!("first visitor enters");
    };
    let ticket = ticket_of(arrive(&store, &room, T0).await);
    let epoch = snapshot.epoch;
    assert_eq!(
        store
            .claim(&room, epoch, ticket, &"a".repeat(32), T0)
            .await
            .unwrap(),
        Claim::NotYet
    );
    // The first visitor's session ends; the step lets the ticket in.
    let later = T0 + 301_000;
    store.advance(&room, later).await.unwrap();
    assert_eq!(
        store
            .claim(&room, epoch, ticket, &"b".repeat(32), later)
            .await
            .unwrap(),
        Claim::Admitted
    );
    // Claiming again with the same pass (a lost reply, a racing poll) gives
    // the same answer and takes no second slot...
    assert_eq!(
        store
            .claim(&room, epoch, ticket, &"b".repeat(32), later)
            .await
            .unwrap(),
        Claim::Admitted
    );
    // ...while any other pass gets nothing.
    assert_eq!(
        store
            .claim(&room, epoch, ticket, &"c".repeat(32), later)
            .await
            .unwrap(),
        Claim::Spent
    );
    assert_eq!(store.advance(&room, later).await.unwrap().inside, 1);
}

async fn no_show_frees_the_slot_after_arrival_time(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    let Arrival::Admitted { snapshot } = arrive(&store, &room, T0).await else {
        panic!("first visitor enters");
    };
    let absent = ticket_of(arrive(&store, &room, T0).await);
    let next = ticket_of(arrive(&store, &room, T0).await);
    let first_gone = T0 + 301_000;
    let turn = store.advance(&room, first_gone).await.unwrap();
    assert_eq!(
        turn.admitted_through, absent,
        "the absent visitor's turn came"
    );
    assert_eq!(turn.pending, 1);
    // Still within the arrival time (the room stepped every second, as
    // gateways do, so this is no outage): the slot is held for them.
    let mut now = first_gone;
    while now < first_gone + 59_000 {
        now += 1_000;
        store.advance(&room, now).await.unwrap();
    }
    let snapshot_before = store.advance(&room, now).await.unwrap();
    assert_eq!(snapshot_before.admitted_through, absent);
    assert_eq!(snapshot_before.no_shows, 0);
    // Arrival time over: their slot goes to the next ticket.
    let after = store.advance(&room, first_gone + 60_100).await.unwrap();
    assert_eq!(after.admitted_through, next);
    assert_eq!(after.no_shows, 1, "counted as a no-show");
    // The no-show's ticket is spent if they come back later.
    let claim = store
        .claim(
            &room,
            snapshot.epoch,
            absent,
            &"d".repeat(32),
            first_gone + 61_000,
        )
        .await
        .unwrap();
    assert_eq!(claim, Claim::Spent);
}

async fn idle_pass_frees_the_slot_after_its_session(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    arrive(&store, &room, T0).await;
    let waiting = ticket_of(arrive(&store, &room, T0).await);
    assert_eq!(
        store
            .advance(&room, T0 + 299_000)
            .await
            .unwrap()
            .admitted_through,
        waiting - 1
    );
    let after = store.advance(&room, T0 + 300_100).await.unwrap();
    assert_eq!(after.admitted_through, waiting);
    assert_eq!(after.sessions_expired, 1, "counted as an expired session");
    assert_eq!(after.no_shows, 0);
}

async fn activity_keeps_a_pass_inside_and_revives_it_unless_it_left(
    store: Arc<dyn Store>,
    clock: Clock,
) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    let pass_id = "e".repeat(32);
    assert!(matches!(
        store.arrive(&room, &pass_id, T0).await.unwrap(),
        Arrival::Admitted { .. }
    ));
    let waiting = ticket_of(arrive(&store, &room, T0).await);
    store
        .touch(&room, &[(pass_id.clone(), T0 + 200_000)], T0 + 200_000)
        .await
        .unwrap();
    // 300 s after arrival but only 100 s after the last activity: still inside.
    assert_eq!(
        store
            .advance(&room, T0 + 300_100)
            .await
            .unwrap()
            .admitted_through,
        waiting - 1
    );
    // 300 s after the last activity: gone...
    assert_eq!(
        store
            .advance(&room, T0 + 500_100)
            .await
            .unwrap()
            .admitted_through,
        waiting
    );
    // ...but a report of activity the gateway saw (delayed, say, by an
    // outage) counts the pass again: the visitor is inside.
    let revoked = store
        .touch(&room, &[(pass_id.clone(), T0 + 500_200)], T0 + 500_200)
        .await
        .unwrap();
    assert!(revoked.is_empty());
    let snapshot = store.advance(&room, T0 + 500_300).await.unwrap();
    assert_eq!(snapshot.inside, 1, "{snapshot:?}");
    // A pass that left is never revived, and the report says so.
    store.leave(&room, &pass_id, T0 + 500_400).await.unwrap();
    let revoked = store
        .touch(&room, &[(pass_id.clone(), T0 + 500_500)], T0 + 500_500)
        .await
        .unwrap();
    assert_eq!(revoked, [pass_id]);
    assert_eq!(store.advance(&room, T0 + 500_600).await.unwrap().inside, 0);
}

async fn leaving_frees_the_slot(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    let pass_id = "f".repeat(32);
    store.arrive(&room, &pass_id, T0).await.unwrap();
    let waiting = ticket_of(arrive(&store, &room, T0).await);
    store.leave(&room, &pass_id, T0 + 50).await.unwrap();
    assert_eq!(
        store
            .advance(&room, T0 + 100)
            .await
            .unwrap()
            .admitted_through,
        waiting
    );
}

async fn positions_do_not_move_when_others_arrive(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    arrive(&store, &room, T0).await;
    let mine = ticket_of(arrive(&store, &room, T0).await);
    let before = store.advance(&room, T0).await.unwrap().position(mine);
    for _ in 0..50 {
        arrive(&store, &room, T0).await;
    }
    let after = store.advance(&room, T0).await.unwrap().position(mine);
    assert_eq!(before, Some(1));
    assert_eq!(after, before);
}

/// Nobody could come in while the room was not served (no step for longer
/// than an outage gap): arrival deadlines move by the gap.
async fn an_outage_does_not_make_no_shows(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    let first = "i".repeat(32);
    store.arrive(&room, &first, T0).await.unwrap();
    let Arrival::Ticketed { ticket, snapshot } = arrive(&store, &room, T0).await else {
        panic!("waits");
    };
    store.leave(&room, &first, T0 + 100).await.unwrap();
    let turn = store.advance(&room, T0 + 200).await.unwrap();
    assert_eq!(turn.admitted_through, ticket);
    // Ninety seconds without a step (arrival time is sixty).
    let after = store.advance(&room, T0 + 90_200).await.unwrap();
    assert_eq!(after.pending, 1, "the deadline moved with the outage");
    assert_eq!(after.no_shows, 0);
    assert_eq!(after.sessions_expired, 0, "leaving is not expiring");
    let claim = store
        .claim(&room, snapshot.epoch, ticket, &"j".repeat(32), T0 + 90_300)
        .await
        .unwrap();
    assert_eq!(claim, Claim::Admitted);
}

async fn tickets_of_another_epoch_are_spent(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    let Arrival::Admitted { snapshot } = arrive(&store, &room, T0).await else {
        panic!("first visitor enters");
    };
    let claim = store
        .claim(&room, snapshot.epoch + 1, 1, &"g".repeat(32), T0)
        .await
        .unwrap();
    assert_eq!(claim, Claim::Spent);
}

async fn a_rejoining_pass_counts_once(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(2, 600);
    let pass_id = "h".repeat(32);
    store.advance(&room, T0).await.unwrap();
    store.rejoin(&room, &pass_id, T0).await.unwrap();
    store.rejoin(&room, &pass_id, T0 + 10).await.unwrap();
    let snapshot = store.advance(&room, T0 + 20).await.unwrap();
    assert_eq!(snapshot.inside, 1);
    // And it holds a slot: one more fits, the next waits.
    assert!(matches!(
        arrive(&store, &room, T0 + 30).await,
        Arrival::Admitted { .. }
    ));
    assert!(matches!(
        arrive(&store, &room, T0 + 30).await,
        Arrival::Ticketed { .. }
    ));
}

async fn live_changes_steer_the_room(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    let change = |state: Option<RoomState>, capacity: Option<u32>| RoomChange {
        capacity,
        state,
        ..RoomChange::default()
    };
    // Paused: nobody goes straight in, tickets are still handed out.
    let paused = store
        .applied(&room, &change(Some(RoomState::Paused), None), T0)
        .await;
    assert_eq!(paused.state, RoomState::Paused);
    let first = ticket_of(arrive(&store, &room, T0).await);
    let second = ticket_of(arrive(&store, &room, T0).await);
    assert_eq!(
        store
            .advance(&room, T0 + 5_000)
            .await
            .unwrap()
            .admitted_through,
        0
    );
    // Closed: no new places at all.
    store
        .applied(&room, &change(Some(RoomState::Closed), None), T0)
        .await;
    assert!(matches!(
        arrive(&store, &room, T0).await,
        Arrival::Closed { .. }
    ));
    // Open again with a larger capacity: both tickets go in, in order.
    let open = store
        .applied(&room, &change(Some(RoomState::Open), Some(2)), T0 + 5_000)
        .await;
    assert_eq!((open.state, open.capacity), (RoomState::Open, 2));
    let after = store.advance(&room, T0 + 6_000).await.unwrap();
    assert_eq!(after.admitted_through, second);
    assert!(first < second);
    assert_eq!(after.capacity, 2, "the change is stored, not one-off");
    // Rate changes take effect too.
    let slower = store
        .applied(
            &room,
            &RoomChange {
                admit_per_minute: Some(1),
                ..RoomChange::default()
            },
            T0 + 6_000,
        )
        .await;
    assert_eq!(slower.admit_per_minute, 1);
}

/// A gateway reports activity at its reckoning of the store's time. A
/// time ahead of the store's own (a reckoning that is off, as before a
/// gateway's first step) counts as now, so it keeps a pass inside no longer
/// than a session from now.
async fn activity_reported_ahead_of_the_store_counts_as_now(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1, 600);
    let pass_id = "k".repeat(32);
    assert!(matches!(
        store.arrive(&room, &pass_id, T0).await.unwrap(),
        Arrival::Admitted { .. }
    ));
    let waiting = ticket_of(arrive(&store, &room, T0).await);
    // Reported ten minutes ahead of the store's clock.
    let revoked = store
        .touch(&room, &[(pass_id.clone(), T0 + 600_000)], T0)
        .await
        .unwrap();
    assert!(revoked.is_empty());
    // A session (300 s) after the store's now, the slot is free.
    let after = store.advance(&room, T0 + 300_100).await.unwrap();
    assert_eq!(after.sessions_expired, 1, "{after:?}");
    assert_eq!(after.admitted_through, waiting);
}

/// The pace's mark in the future (the store's clock stepped back, or a mark
/// written on a fast gateway's clock by a version that took the time from
/// its callers) does not stop admissions until the clock catches up with
/// it: accrual goes on from now.
async fn a_pace_mark_in_the_future_does_not_stop_admissions(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = params(1_000, 600);
    let ahead = T0 + 300_000;
    // The first second's worth (11) go straight in; the rest wait.
    for _ in 0..100 {
        arrive(&store, &room, ahead).await;
    }
    let marked = store.advance(&room, ahead).await.unwrap().admitted_through;
    assert_eq!(marked, 11);
    // Five minutes earlier by the store's clock from now on.
    store.advance(&room, T0).await.unwrap();
    let later = store.advance(&room, T0 + 1_000).await.unwrap();
    assert_eq!(
        later.admitted_through,
        marked + 10,
        "a second's admissions at 600 a minute"
    );
}

/// A wiped Redis (a restart without persistence) is carried on by a store
/// client that has seen the room: same epoch, the counters it saw, a new
/// generation. Only a client that never saw the room (every gateway
/// restarted too) starts a new epoch, so that old tickets cannot be
/// replayed into it.
#[tokio::test]
async fn a_wiped_redis_keeps_the_line_a_gateway_saw() {
    let mut server = RedisServer::start().await;
    let store = RedisStore::new(&server.url()).unwrap();
    let room = params(1, 600);
    let Arrival::Admitted { snapshot: before } =
        store.arrive(&room, &"l".repeat(32)).await.unwrap()
    else {
        panic!("first visitor enters");
    };
    let second = ticket_of(store.arrive(&room, &"m".repeat(32)).await.unwrap());
    assert_eq!(second, 2);
    server.restart().await;
    let after = advance_after_restart(&store, &room).await;
    assert_eq!(
        (after.epoch, after.issued, after.admitted_through),
        (before.epoch, 2, 1),
        "the line goes on where this client saw it"
    );
    assert_eq!(after.generation, before.generation + 1);
    // Settling: no number is handed out until every gateway had its say.
    assert!(matches!(
        store.arrive(&room, &"n".repeat(32)).await.unwrap(),
        Arrival::Held { .. }
    ));

    server.restart().await;
    let stranger = RedisStore::new(&server.url()).unwrap();
    let fresh = advance_after_restart(&stranger, &room).await;
    assert_ne!(fresh.epoch, before.epoch, "nobody remembered: a new epoch");
    assert_eq!(fresh.issued, 0);
}

async fn advance_after_restart(store: &RedisStore, room: &RoomParams) -> RoomSnapshot {
    // The connection manager reconnects by itself; give it a few tries.
    for _ in 0..50 {
        if let Ok(snapshot) = store.advance(room).await {
            return snapshot;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("store recovers after a restart");
}

/// Without a simulated clock, Redis keeps time on its own (`TIME`): the
/// figures are taken at Redis's time, here the machine's (the test's Redis
/// runs on it), which no caller supplies.
#[tokio::test]
async fn redis_keeps_time_on_its_own_clock() {
    let server = RedisServer::start().await;
    let store = RedisStore::new(&server.url()).unwrap();
    let room = params(1, 600);
    let system = Clock::system();
    let before = system.now();
    let snapshot = store.advance(&room).await.unwrap();
    let after = system.now();
    assert!(
        (before..=after).contains(&snapshot.taken_at),
        "taken at {}, asked between {before} and {after}",
        snapshot.taken_at
    );
}

/// The memory store is usable without any setup (the embedded default).
#[tokio::test]
async fn memory_store_needs_no_setup() {
    let store = MemoryStore::new();
    store.ping().await.unwrap();
}
