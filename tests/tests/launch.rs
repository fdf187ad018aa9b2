//! Launch events at the store seam, on both backends and a simulated clock
//! (the store's own): nothing before the pre-queue, pre-queue tickets
//! without admissions, the draw at the opening, admission by place, the
//! close, and the schedule's live changes with their refusals. The last
//! tests run Redis alone: every client of one Redis sees one seed and one
//! draw, and a wiped Redis gets them back from a gateway that saw them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anteroom_store::draw::Draw;
use anteroom_store::{
    Arrival, Changed, Claim, Clock, RedisStore, Refusal, RoomChange, RoomParams, RoomSnapshot,
    Schedule, ScheduleChange, ScheduleError, Store,
};
use anteroom_tests::RedisServer;
use anteroom_tests::backend::{At, arrive, ticket_of};

const T0: u64 = 1_800_000_000_000;
const MINUTE: u64 = 60_000;
const PRE_QUEUE_FROM: u64 = T0 + 10 * MINUTE;
const OPENS_AT: u64 = T0 + 20 * MINUTE;
const CLOSES_AT: u64 = T0 + 60 * MINUTE;

fn event_room() -> RoomParams {
    RoomParams {
        name: "vaccini".into(),
        capacity: 1_000,
        admit_per_minute: 600,
        inside_ttl: Duration::from_secs(300),
        arrival: Duration::from_secs(60),
        schedule: Schedule {
            pre_queue_from: Some(PRE_QUEUE_FROM),
            opens_at: Some(OPENS_AT),
            closes_at: Some(CLOSES_AT),
        },
    }
}

anteroom_tests::on_both_backends_on_a_simulated_clock!(
    before_the_pre_queue_nobody_gets_a_ticket,
    the_pre_queue_is_let_in_by_the_draw_before_later_arrivals,
    past_closing_no_new_places_but_the_line_goes_on,
    schedule_changes_are_checked_by_the_store,
    an_opening_moved_later_holds_admissions_back,
    a_line_given_an_opening_after_its_first_tickets_draws_nothing,
);

async fn before_the_pre_queue_nobody_gets_a_ticket(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = event_room();
    let not_open = arrive(&store, &room, T0).await;
    let Arrival::NotOpen { snapshot } = not_open else {
        panic!("no ticket before the pre-queue: {not_open:?}");
    };
    assert_eq!(snapshot.issued, 0);
    assert_eq!(snapshot.schedule, room.schedule);
    assert!(snapshot.before_draw());
    assert!(snapshot.seed.is_some(), "the seed exists from the start");
    let step = store.advance(&room, PRE_QUEUE_FROM - 1).await.unwrap();
    assert_eq!((step.admitted_through, step.drawn), (0, None));
}

async fn the_pre_queue_is_let_in_by_the_draw_before_later_arrivals(
    store: Arc<dyn Store>,
    clock: Clock,
) {
    let store = At::new(store, clock);
    let room = event_room();
    // Forty pre-queue tickets, in order, into an empty room: nobody goes
    // straight in, and steps let nobody in before the opening.
    let mut tickets = Vec::new();
    for index in 0..40 {
        let at = PRE_QUEUE_FROM + index * 1_000;
        tickets.push(ticket_of(arrive(&store, &room, at).await));
    }
    assert_eq!(tickets, (1..=40).collect::<Vec<u64>>());
    let before = store.advance(&room, OPENS_AT - 1).await.unwrap();
    assert_eq!((before.admitted_through, before.drawn), (0, None));
    let seed_before = before.seed.expect("the seed");

    // The opening: the draw orders all forty; later arrivals go after them.
    let opened = store.advance(&room, OPENS_AT).await.unwrap();
    assert_eq!(opened.drawn, Some(40));
    assert_eq!(opened.seed, Some(seed_before), "the seed committed to");
    let later = ticket_of(arrive(&store, &room, OPENS_AT + 10).await);
    assert_eq!(later, 41, "after the opening, numbers go on");

    // Each ticket is let in when its place comes: places are claimed, in
    // steps of the room's pace, and the later arrival comes last.
    let draw = Draw::new(&seed_before, 40);
    let place_of = |ticket: u64| {
        if ticket <= 40 {
            draw.place(ticket).unwrap()
        } else {
            ticket
        }
    };
    let places: BTreeMap<u64, u64> = tickets
        .iter()
        .chain([&later])
        .map(|ticket| (place_of(*ticket), *ticket))
        .collect();
    assert_eq!(places.len(), 41, "the draw is a permutation");
    assert!(
        tickets.iter().any(|ticket| place_of(*ticket) != *ticket),
        "the draw is not arrival order"
    );
    let mut let_in = Vec::new();
    let mut now = OPENS_AT;
    while let_in.len() < 41 {
        let snapshot = store.advance(&room, now).await.unwrap();
        for (place, ticket) in &places {
            if *place > snapshot.admitted_through || let_in.contains(ticket) {
                continue;
            }
            let pass_id = format!("pass-{ticket:027}");
            let claim = store
                .claim(&room, snapshot.epoch, *place, &pass_id, now)
                .await
                .unwrap();
            assert_eq!(claim, Claim::Admitted, "ticket {ticket} at place {place}");
            let_in.push(*ticket);
        }
        now += 1_000;
    }
    let order: Vec<u64> = let_in.iter().map(|ticket| place_of(*ticket)).collect();
    assert_eq!(order, (1..=41).collect::<Vec<u64>>(), "let in by place");
    assert_eq!(*let_in.last().unwrap(), later);
}

async fn past_closing_no_new_places_but_the_line_goes_on(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = RoomParams {
        capacity: 1,
        ..event_room()
    };
    let first = arrive(&store, &room, OPENS_AT + 1).await;
    assert!(matches!(first, Arrival::Admitted { .. }), "{first:?}");
    let waiting = ticket_of(arrive(&store, &room, OPENS_AT + 2).await);
    assert!(matches!(
        arrive(&store, &room, CLOSES_AT).await,
        Arrival::Closed { .. }
    ));
    // The visitor inside leaves by inactivity; the one waiting goes in.
    let later = store.advance(&room, CLOSES_AT + 10 * MINUTE).await.unwrap();
    assert_eq!(later.admitted_through, waiting);
}

async fn schedule_changes_are_checked_by_the_store(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = event_room();
    let change = |schedule: ScheduleChange| RoomChange {
        schedule,
        ..RoomChange::default()
    };
    let refusal = |changed: Changed| match changed {
        Changed::Refused(refusal) => refusal,
        Changed::Applied(snapshot) => panic!("applied: {:?}", snapshot.schedule),
    };
    let at = |time: u64| Some(Some(time));

    // In the past, on the store's clock.
    let past = change(ScheduleChange {
        opens_at: at(T0 - 1),
        ..ScheduleChange::default()
    });
    assert_eq!(
        refusal(store.change(&room, &past, T0).await.unwrap()),
        Refusal::InThePast { key: "opens_at" }
    );
    // Out of order, naming the keys.
    let reversed = change(ScheduleChange {
        closes_at: at(OPENS_AT - 1),
        ..ScheduleChange::default()
    });
    assert_eq!(
        refusal(store.change(&room, &reversed, T0).await.unwrap()),
        Refusal::Order(ScheduleError::OutOfOrder {
            earlier: "opens_at",
            later: "closes_at"
        })
    );
    // Moved before the draw: applied, and in the figures.
    let moved = change(ScheduleChange {
        opens_at: at(OPENS_AT + 5 * MINUTE),
        ..ScheduleChange::default()
    });
    let snapshot = store.applied(&room, &moved, T0).await;
    assert_eq!(snapshot.schedule.opens_at, Some(OPENS_AT + 5 * MINUTE));
    // Pre-queue tickets are promised a draw: the opening cannot be cleared.
    ticket_of(arrive(&store, &room, PRE_QUEUE_FROM).await);
    let cleared = change(ScheduleChange {
        opens_at: Some(None),
        pre_queue_from: Some(None),
        ..ScheduleChange::default()
    });
    assert_eq!(
        refusal(store.change(&room, &cleared, PRE_QUEUE_FROM).await.unwrap()),
        Refusal::DrawPromised { pre_queue: 1 }
    );
    // Drawn: final.
    store.advance(&room, OPENS_AT + 5 * MINUTE).await.unwrap();
    let too_late = change(ScheduleChange {
        opens_at: at(OPENS_AT + 30 * MINUTE),
        ..ScheduleChange::default()
    });
    assert_eq!(
        refusal(
            store
                .change(&room, &too_late, OPENS_AT + 6 * MINUTE)
                .await
                .unwrap()
        ),
        Refusal::Drawn { pre_queue: 1 }
    );
    // closes_at may still move; nothing else changed.
    let later_close = change(ScheduleChange {
        closes_at: at(CLOSES_AT + MINUTE),
        ..ScheduleChange::default()
    });
    let snapshot = store
        .applied(&room, &later_close, OPENS_AT + 6 * MINUTE)
        .await;
    assert_eq!(
        snapshot.schedule,
        Schedule {
            pre_queue_from: Some(PRE_QUEUE_FROM),
            opens_at: Some(OPENS_AT + 5 * MINUTE),
            closes_at: Some(CLOSES_AT + MINUTE),
        }
    );
    // A room without a schedule that has handed out tickets cannot be
    // given an opening: those tickets were never in a pre-queue.
    let plain = RoomParams {
        name: "plain".into(),
        schedule: Schedule::default(),
        ..event_room()
    };
    arrive(&store, &plain, T0).await;
    let scheduled = change(ScheduleChange {
        opens_at: at(OPENS_AT),
        ..ScheduleChange::default()
    });
    assert_eq!(
        refusal(store.change(&plain, &scheduled, T0).await.unwrap()),
        Refusal::TicketsIssued { issued: 1 }
    );
}

async fn an_opening_moved_later_holds_admissions_back(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = event_room();
    ticket_of(arrive(&store, &room, PRE_QUEUE_FROM).await);
    let moved = RoomChange {
        schedule: ScheduleChange {
            opens_at: Some(Some(OPENS_AT + 4 * 60 * MINUTE)),
            closes_at: Some(None),
            ..ScheduleChange::default()
        },
        ..RoomChange::default()
    };
    store.applied(&room, &moved, PRE_QUEUE_FROM + 1).await;
    // The config's opening passes: nothing happens.
    let at_old_opening = store.advance(&room, OPENS_AT + 1).await.unwrap();
    assert_eq!(
        (at_old_opening.drawn, at_old_opening.admitted_through),
        (None, 0)
    );
    let at_new_opening = store
        .advance(&room, OPENS_AT + 4 * 60 * MINUTE)
        .await
        .unwrap();
    assert_eq!(at_new_opening.drawn, Some(1));
    assert_eq!(at_new_opening.admitted_through, 1);
}

/// A room that handed out tickets before its file was given an opening
/// (the admin API refuses that; a config edit cannot be refused): those
/// tickets were never a pre-queue, so the opening draws nothing and they go
/// in by their numbers, none losing its place.
async fn a_line_given_an_opening_after_its_first_tickets_draws_nothing(
    store: Arc<dyn Store>,
    clock: Clock,
) {
    let store = At::new(store, clock);
    let plain = RoomParams {
        capacity: 1,
        schedule: Schedule::default(),
        ..event_room()
    };
    let first = arrive(&store, &plain, T0).await;
    assert!(matches!(first, Arrival::Admitted { .. }), "{first:?}");
    let waiting: Vec<u64> = [
        ticket_of(arrive(&store, &plain, T0).await),
        ticket_of(arrive(&store, &plain, T0).await),
    ]
    .into();
    // The file now says the room opens later (and no pre-queue).
    let edited = RoomParams {
        schedule: Schedule {
            opens_at: Some(OPENS_AT),
            ..Schedule::default()
        },
        ..plain
    };
    let opened = store
        .advance(&edited, OPENS_AT + 10 * MINUTE)
        .await
        .unwrap();
    assert_eq!(opened.drawn, Some(0), "nothing to draw");
    assert_eq!(opened.admitted_through, waiting[0], "by number");
}

/// Every client of one Redis (every gateway) holds the seed the room got
/// first, and sees the same draw; a client that comes later too.
#[tokio::test]
async fn gateways_on_one_redis_share_one_seed_and_one_draw() {
    let server = RedisServer::start().await;
    let clock = Clock::manual();
    let client = || RedisStore::with_simulated_clock(&server.url(), clock.clone()).unwrap();
    let (first, second) = (client(), client());
    let room = event_room();
    clock.set(PRE_QUEUE_FROM);
    let seen_first = first.advance(&room).await.unwrap();
    let seen_second = second.advance(&room).await.unwrap();
    assert!(seen_first.seed.is_some());
    assert_eq!(seen_first.seed, seen_second.seed, "one seed for the room");
    for pass in 0..7 {
        let gateway = if pass % 2 == 0 { &first } else { &second };
        gateway.arrive(&room, &format!("{pass:032}")).await.unwrap();
    }
    clock.set(OPENS_AT);
    let drawn = second.advance(&room).await.unwrap();
    let latecomer = client().advance(&room).await.unwrap();
    assert_eq!(
        (drawn.drawn, drawn.seed),
        (latecomer.drawn, latecomer.seed),
        "the same draw for all"
    );
    assert_eq!(drawn.drawn, Some(7));
}

/// A Redis restarted without persistence after the draw: a gateway that
/// saw the room brings back its seed and the draw's count, so every
/// pre-queue ticket keeps its place.
#[tokio::test]
async fn a_wiped_redis_gets_the_draw_back_from_a_gateway() {
    let (mut server, clock, store) = pre_queue_on_redis(5).await;
    let room = event_room();
    clock.set(OPENS_AT);
    let before = store.advance(&room).await.unwrap();
    store.arrive(&room, &"f".repeat(32)).await.unwrap();
    assert_eq!((before.drawn, before.issued), (Some(5), 5));
    server.restart().await;
    let after = advance_again(&store, &room).await;
    assert_eq!(after.epoch, before.epoch);
    assert_eq!(after.seed, before.seed, "the seed committed to");
    assert_eq!(after.drawn, Some(5), "not the six tickets issued by now");
}

/// A Redis restarted empty, with no live change made: the gateway that saw
/// the room restores the line but keeps no schedule of its own in the
/// store, so a gateway restarted with an edited file is obeyed.
#[tokio::test]
async fn a_wiped_redis_keeps_no_schedule_but_a_live_change() {
    let (mut server, clock, store) = pre_queue_on_redis(1).await;
    let room = event_room();
    server.restart().await;
    advance_again(&store, &room).await;
    let edited = RoomParams {
        schedule: Schedule {
            opens_at: Some(OPENS_AT + 30 * MINUTE),
            ..room.schedule
        },
        ..event_room()
    };
    let restarted = RedisStore::with_simulated_clock(&server.url(), clock.clone()).unwrap();
    let seen = restarted.advance(&edited).await.unwrap();
    assert_eq!(seen.schedule.opens_at, Some(OPENS_AT + 30 * MINUTE));
}

/// A private Redis, one client on a manual clock at the pre-queue's start,
/// and `tickets` pre-queue tickets it handed out in [`event_room`].
async fn pre_queue_on_redis(tickets: u64) -> (RedisServer, Clock, RedisStore) {
    let server = RedisServer::start().await;
    let clock = Clock::manual();
    let store = RedisStore::with_simulated_clock(&server.url(), clock.clone()).unwrap();
    clock.set(PRE_QUEUE_FROM);
    for pass in 0..tickets {
        store
            .arrive(&event_room(), &format!("{pass:032}"))
            .await
            .unwrap();
    }
    (server, clock, store)
}

async fn advance_again(store: &RedisStore, room: &RoomParams) -> RoomSnapshot {
    for _ in 0..50 {
        if let Ok(snapshot) = store.advance(room).await {
            return snapshot;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the store recovers after a restart");
}

/// An opening that passes while a wiped Redis settles: the first gateway
/// back carries the line on from its marks, which miss the last pre-queue
/// ticket another gateway handed out just before the loss. The draw waits
/// for the settle, which brings the other's marks, and orders all seven.
#[tokio::test]
async fn a_draw_after_a_loss_waits_for_every_gateways_marks() {
    let mut server = RedisServer::start().await;
    let clock = Clock::manual();
    let client = || RedisStore::with_simulated_clock(&server.url(), clock.clone()).unwrap();
    let (first, second) = (client(), client());
    let room = event_room();
    clock.set(PRE_QUEUE_FROM);
    for pass in 0..6 {
        first.arrive(&room, &format!("{pass:032}")).await.unwrap();
    }
    second.advance(&room).await.unwrap();
    let seventh = second.arrive(&room, &"7".repeat(32)).await.unwrap();
    assert_eq!(ticket_of(seventh), 7, "the first gateway has not seen it");
    server.restart().await;
    clock.set(OPENS_AT);
    let restored = advance_again(&first, &room).await;
    assert_eq!(restored.issued, 6, "the first gateway's marks");
    let merged = advance_again(&second, &room).await;
    assert_eq!(merged.issued, 7, "the second gateway's marks");
    clock.set(OPENS_AT + 5_000);
    let drawn = first.advance(&room).await.unwrap();
    assert_eq!(drawn.drawn, Some(7), "every pre-queue ticket");
    assert_eq!(drawn.seed, restored.seed);
}

/// An opening moved later through the admin API, then a Redis restarted
/// without persistence during the pre-queue: the gateways bring back the
/// line, the seed, and the schedule they saw in force, so the room opens
/// (and draws, and reveals its seed) at the moved time, not at the config's
/// one the operator moved away from: an opening cannot be taken back.
#[tokio::test]
async fn a_moved_opening_survives_a_wiped_redis() {
    let (mut server, clock, store) = pre_queue_on_redis(1).await;
    let room = event_room();
    let later = OPENS_AT + 60 * MINUTE;
    let moved = RoomChange {
        schedule: ScheduleChange {
            opens_at: Some(Some(later)),
            closes_at: Some(None),
            ..ScheduleChange::default()
        },
        ..RoomChange::default()
    };
    match store.change(&room, &moved).await.unwrap() {
        Changed::Applied(snapshot) => assert_eq!(snapshot.schedule.opens_at, Some(later)),
        Changed::Refused(refusal) => panic!("refused: {refusal}"),
    }
    server.restart().await;
    clock.set(OPENS_AT + 10_000);
    let after = advance_again(&store, &room).await;
    assert_eq!(after.schedule.opens_at, Some(later), "the opening as moved");
    clock.set(OPENS_AT + 20_000);
    let settled = store.advance(&room).await.unwrap();
    assert_eq!(settled.drawn, None, "not drawn before the moved opening");
}
