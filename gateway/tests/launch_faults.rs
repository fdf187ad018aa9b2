//! A launch event through the faults issue 12 names, with real processes:
//! `anteroom-gateway` binaries (under libfaketime where a clock is wrong)
//! and a private `redis-server`, on the real clock. The opening is a few
//! seconds ahead on Redis's clock when a test starts, the pre-queue
//! already open; every check reads what visitors and the public read: the
//! status JSON and `GET /_anteroom/draw`, checked with the code of
//! `anteroom-bench verify-draw` (`PublicDraw::verify`).
//!
//! - Gateways five minutes ahead and five minutes behind the store open
//!   the pre-queue at the store's opening, and publish one draw (two
//!   gateways on one Redis give the same draw: here, and in the Redis
//!   restarts below).
//! - A gateway killed and restarted in the pre-queue gives the same draw.
//! - Redis killed and restarted in the pre-queue, with the append-only
//!   file: the same commitment, and the draw covers every ticket.
//! - Redis restarted without persistence: the gateways' marks bring the
//!   line back in the same epoch, and the seed they adopted with it.
//! - An opening that passes while Redis is away and comes back empty, the
//!   gateways' marks differing: the draw waits for all of them.
//!
//! (`tests/tests/launch.rs` and `launch_event.rs` have the event itself on a
//! simulated clock, at the store's seam and over HTTP.)

use std::time::{Duration, Instant};

use anteroom_config::schedule::{format_instant, time_zone};
use anteroom_store::draw::{Draw, DrawState, PublicDraw, Seed};
use anteroom_tests::gateway_process::PATIENCE;
use anteroom_tests::{
    ConfigFile, GatewayProcess, RedisServer, Skew, Upstream, Visitor, gateway, room, upstream,
};

const GATEWAY: &str = env!("CARGO_BIN_EXE_anteroom-gateway");
const ROOM: &str = "vaccini";
const PAGE: &str = "/echo/vaccini";
/// The room's hash in Redis.
const ROOM_KEY: &str = "anteroom:{vaccini}";
const HOUR_MS: u64 = 3_600_000;

/// A launch event whose pre-queue is open and whose opening is near, on the
/// store's clock.
struct Event {
    opens_at: u64,
}

impl Event {
    /// An opening `lead` from now on `redis`'s clock (on a whole second: the
    /// config's times are shown to the second), the pre-queue open for an
    /// hour already. `lead` is time for the gateways to start and the test
    /// to do what it does in the pre-queue, with room to spare on a loaded
    /// machine; the test then waits out what is left of it.
    async fn opening_in(redis: &RedisServer, lead: Duration) -> Event {
        let at = redis.time_ms().await + lead.as_millis() as u64;
        Event {
            opens_at: at.div_ceil(1_000) * 1_000,
        }
    }

    /// The config of a gateway at `redis` in front of `up`, with one room:
    /// one visitor inside at once, so that after the opening every
    /// pre-queue visitor but the one at place 1 waits and shows their
    /// place.
    fn config(&self, up: &Upstream, redis: &RedisServer) -> ConfigFile {
        let zone = time_zone("Europe/Rome").expect("a zone");
        let spec = room(ROOM)
            .capacity(1)
            .admit_per_minute(600)
            .pre_queue_from(&format_instant(self.opens_at - HOUR_MS, &zone))
            .opens_at(&format_instant(self.opens_at, &zone));
        gateway(up).room(spec).redis(redis).config_file().clone()
    }

    /// How long until the opening on `redis`'s clock, in milliseconds
    /// (negative once past): for the messages of the checks that need the
    /// pre-queue still open.
    async fn time_left(&self, redis: &RedisServer) -> i64 {
        self.opens_at as i64 - redis.time_ms().await as i64
    }

    /// Waits until the opening has passed on `redis`'s clock.
    async fn wait_for_opening(&self, redis: &RedisServer) {
        loop {
            let left = self.time_left(redis).await;
            if left < 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(left.unsigned_abs().clamp(1, 100))).await;
        }
    }
}

/// A pre-queue visitor: who, and the ticket their page showed.
struct Holder {
    visitor: Visitor,
    ticket: u64,
}

/// A new visitor asks `gw` for the room's page (as JSON) during the
/// pre-queue: they get a pre-queue ticket, and the origin sees nothing.
async fn joins_the_pre_queue(gw: &GatewayProcess, event: &Event, redis: &RedisServer) -> Holder {
    let visitor = gw.visitor();
    let status = page(&visitor).await;
    let left = event.time_left(redis).await;
    assert_eq!(
        status["state"], "pre_queue",
        "{left} ms before the store's opening, on {}: {status}",
        gw.addr
    );
    let ticket = status["ticket"]
        .as_u64()
        .unwrap_or_else(|| panic!("a pre-queue ticket: {status}"));
    Holder { visitor, ticket }
}

/// As [`joins_the_pre_queue`], on a store settling after a loss: while it
/// settles an arrival gets no number (the page, `waiting` without a
/// position, asks again by itself), as a visitor would, asks again.
async fn joins_the_pre_queue_once_settled(
    gw: &GatewayProcess,
    event: &Event,
    redis: &RedisServer,
) -> Holder {
    let visitor = gw.visitor();
    let started = Instant::now();
    loop {
        let status = page(&visitor).await;
        if status["state"] == "waiting" && status["position"].is_null() {
            assert!(started.elapsed() < PATIENCE, "held for ever: {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let left = event.time_left(redis).await;
        assert_eq!(
            status["state"], "pre_queue",
            "{left} ms before the store's opening: {status}"
        );
        let ticket = status["ticket"].as_u64().expect("a pre-queue ticket");
        return Holder { visitor, ticket };
    }
}

/// The room's page as JSON: the status JSON, never the origin's answer.
async fn page(visitor: &Visitor) -> serde_json::Value {
    let response = visitor.get_json(PAGE).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert!(
        body.get("method").is_none(),
        "nobody is let in before the opening, and nobody goes straight in after it: the \
         pre-queue is ahead ({body})"
    );
    body
}

/// `GET /_anteroom/draw` on `gw`.
async fn public_draw(gw: &GatewayProcess) -> PublicDraw {
    let response = gw
        .visitor()
        .get(&format!("/_anteroom/draw?room={ROOM}"))
        .await;
    assert_eq!(response.status(), 200, "the draw is published");
    response.json().await.expect("the draw's JSON")
}

/// The draw `gw` publishes once it shows `state` and `pre_queue` (its
/// figures are a step, 100 ms, behind the store).
async fn draw_once(gw: &GatewayProcess, state: DrawState, pre_queue: u64) -> PublicDraw {
    let started = Instant::now();
    loop {
        let draw = public_draw(gw).await;
        if draw.state == state && draw.pre_queue == pre_queue {
            return draw;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{} never showed a {state:?} draw of {pre_queue}: {draw:?}",
            gw.addr
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `gw`'s figure `name` of the room is `value`: its figures
/// are a step (100 ms) behind the store, or behind another gateway.
async fn figure_reaches(gw: &GatewayProcess, name: &str, value: u64) {
    let started = Instant::now();
    loop {
        let figures = gw.figures(ROOM).await;
        if figures[name] == value {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{}: {name} never reached {value}: {figures}",
            gw.addr
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The seed the store holds for the room.
async fn stored_seed(redis: &RedisServer) -> Seed {
    Seed::from_hex(&redis.text(&["HGET", ROOM_KEY, "seed"]).await).expect("the stored seed")
}

/// The room's epoch in the store.
async fn stored_epoch(redis: &RedisServer) -> String {
    redis.text(&["HGET", ROOM_KEY, "epoch"]).await
}

/// After the opening: `gateways` publish one draw of `pre_queue` tickets
/// whose seed is the store's and matches the commitment published before
/// (`committed`); returns it, checked.
async fn drawn_on_all(
    gateways: &[&GatewayProcess],
    pre_queue: u64,
    committed: &str,
    redis: &RedisServer,
) -> Draw {
    let first = draw_once(gateways[0], DrawState::Drawn, pre_queue).await;
    for gw in &gateways[1..] {
        assert_eq!(
            draw_once(gw, DrawState::Drawn, pre_queue).await,
            first,
            "one draw on every gateway"
        );
    }
    assert_eq!(
        first.commitment, committed,
        "the commitment published before"
    );
    let verified = first.verify().expect("the seed matches the commitment");
    assert_eq!(
        first.seed,
        Some(stored_seed(redis).await.to_hex()),
        "the store's seed"
    );
    verified.draw
}

/// Every pre-queue holder, asking each gateway, stands at their ticket's
/// place in `draw`: waiting with `draw_place` the draw's, or, the one at
/// place 1, let in (one visitor inside at once: nobody else is).
async fn everyone_at_their_place(gateways: &[&GatewayProcess], crowd: &[Holder], draw: &Draw) {
    // Place 1 is let in (to arrive) by the first step after the draw.
    for gw in gateways {
        figure_reaches(gw, "admitted_through", 1).await;
    }
    let mut let_in = Vec::new();
    for holder in crowd {
        let place = draw.place(holder.ticket).expect("a pre-queue ticket");
        for gw in gateways {
            let status = holder.visitor.with_base(&gw.url()).status(ROOM).await;
            if status["state"] == "admitted" {
                assert_eq!(place, 1, "only place 1 is let in: {status}");
                let_in.push(holder.ticket);
                continue;
            }
            assert_eq!(status["state"], "waiting", "{status}");
            assert_eq!(status["ticket"], holder.ticket, "{status}");
            assert_eq!(
                status["draw_place"], place,
                "ticket {} on {}: {status}",
                holder.ticket, gw.addr
            );
            assert_eq!(status["position"], place - 1, "behind place 1: {status}");
        }
    }
    assert!(
        let_in.iter().all(|ticket| *ticket == let_in[0]),
        "one visitor let in: {let_in:?}"
    );
}

/// (1) One clock for the opening. Two gateways, one five minutes ahead of
/// the store and one five minutes behind: the one ahead (on whose clock
/// the opening passed five minutes ago) hands out pre-queue tickets and
/// lets nobody in until the store's opening; the one behind (on whose
/// clock it is five minutes away) hands out no pre-queue ticket after it;
/// both publish one draw, and every visitor's place on either is the
/// draw's. Also (4): two gateways on one Redis give the same draw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_ten_minutes_apart_open_the_pre_queue_at_the_stores_opening() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let event = Event::opening_in(&redis, Duration::from_secs(4)).await;
    let file = event.config(&up, &redis);
    let ahead = GatewayProcess::start(GATEWAY, &file, Some(Skew::AheadMinutes(5))).await;
    let behind = GatewayProcess::start(GATEWAY, &file, Some(Skew::BehindMinutes(5))).await;
    let gateways = [&ahead, &behind];

    // The pre-queue: ten visitors, five through each gateway, the first
    // into an empty room through the one ahead; tickets in order of
    // arrival, and nobody let in.
    let mut crowd = Vec::new();
    for index in 0..10 {
        let holder = joins_the_pre_queue(gateways[index % 2], &event, &redis).await;
        assert_eq!(holder.ticket, index as u64 + 1);
        crowd.push(holder);
    }
    // The countdown on both is the store's: the one ahead would say 0 on
    // its own clock, the one behind five minutes more.
    for (holder, gw) in crowd.iter().zip(gateways) {
        let status = holder.visitor.with_base(&gw.url()).status(ROOM).await;
        let truth = event.time_left(&redis).await as f64 / 1000.0;
        let shown = status["opens_in_seconds"]
            .as_f64()
            .unwrap_or_else(|| panic!("a countdown: {status}"));
        assert!(
            (shown - truth).abs() <= 2.0,
            "{}: opens in {shown} s, the store says {truth:.1} s: {status}",
            gw.addr
        );
        assert_eq!(status["state"], "pre_queue", "{status}");
    }
    let pending = draw_once(&ahead, DrawState::Pending, 10).await;
    assert_eq!(draw_once(&behind, DrawState::Pending, 10).await, pending);
    assert!(pending.seed.is_none(), "the seed is secret until the draw");
    assert_eq!(
        pending.commitment,
        stored_seed(&redis).await.commitment().to_hex()
    );
    // Nobody let in, in the store and as either gateway sees it.
    assert_eq!(redis.text(&["HGET", ROOM_KEY, "admitted"]).await, "0");
    assert_eq!(
        redis.integer(&["ZCARD", "anteroom:{vaccini}:inside"]).await,
        0
    );
    assert_eq!(
        redis
            .integer(&["ZCARD", "anteroom:{vaccini}:pending"])
            .await,
        0
    );
    for gw in gateways {
        assert_eq!(gw.figure(ROOM, "admitted_through").await, 0);
        assert_eq!(gw.figure(ROOM, "inside").await, 0);
    }

    // The store's opening: the first arrivals after it, through the one
    // behind first, are not in the pre-queue but behind all of it.
    event.wait_for_opening(&redis).await;
    let mut late = Vec::new();
    for index in 0..4 {
        let visitor = gateways[(index + 1) % 2].visitor();
        let status = page(&visitor).await;
        assert_eq!(status["state"], "waiting", "after the opening: {status}");
        assert!(
            status["ticket"].is_null(),
            "not a pre-queue ticket: {status}"
        );
        late.push(visitor);
    }
    let draw = drawn_on_all(&gateways, 10, &pending.commitment, &redis).await;
    everyone_at_their_place(&gateways, &crowd, &draw).await;
    for visitor in &late {
        for gw in gateways {
            let status = visitor.with_base(&gw.url()).status(ROOM).await;
            assert!(status["draw_place"].is_null(), "{status}");
            assert!(
                status["position"]
                    .as_u64()
                    .is_some_and(|position| position >= 10),
                "behind the whole pre-queue: {status}"
            );
        }
    }
    // Ten pre-queue tickets and four after, on the store and (a step
    // later) on both gateways.
    assert_eq!(redis.text(&["HGET", ROOM_KEY, "issued"]).await, "14");
    for gw in gateways {
        figure_reaches(gw, "tickets_issued", 14).await;
    }
}

/// (2) A gateway killed and restarted during the pre-queue: the same
/// commitment before and after, tickets go on from where they were, and
/// the tickets handed out before the restart get their places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_in_the_pre_queue_gives_the_same_draw() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let event = Event::opening_in(&redis, Duration::from_secs(4)).await;
    let mut gw = GatewayProcess::start(GATEWAY, &event.config(&up, &redis), None).await;

    let mut crowd = Vec::new();
    for _ in 0..5 {
        crowd.push(joins_the_pre_queue(&gw, &event, &redis).await);
    }
    let before = draw_once(&gw, DrawState::Pending, 5).await;
    // The new process offers a seed of its own; the store keeps the one it
    // committed to.
    gw.restart().await;
    assert_eq!(draw_once(&gw, DrawState::Pending, 5).await, before);
    for holder in &crowd {
        let status = holder.visitor.status(ROOM).await;
        assert_eq!(status["state"], "pre_queue", "{status}");
        assert_eq!(status["ticket"], holder.ticket, "the same ticket: {status}");
    }
    for number in 6..=10 {
        let holder = joins_the_pre_queue(&gw, &event, &redis).await;
        assert_eq!(holder.ticket, number, "numbers go on");
        crowd.push(holder);
    }

    event.wait_for_opening(&redis).await;
    let draw = drawn_on_all(&[&gw], 10, &before.commitment, &redis).await;
    everyone_at_their_place(&[&gw], &crowd, &draw).await;
}

/// (3) Redis killed and restarted from its append-only file (fsynced on
/// every write) during the pre-queue, under two gateways: the same epoch
/// and commitment after, numbers go on at once, and the draw covers every
/// ticket handed out before and after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_with_aof_in_the_pre_queue_keeps_the_draw() {
    a_redis_restart_in_the_pre_queue(Persistence::AppendOnly).await;
}

/// (5) Redis restarted without persistence during the pre-queue, under two
/// gateways that saw the room: their marks bring the line back in the same
/// epoch (the store settles for 3 s, handing out no number), they offer the
/// seed they adopted, and so the commitment is unchanged and the draw
/// covers every ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_wiped_in_the_pre_queue_gets_the_line_and_the_seed_back() {
    a_redis_restart_in_the_pre_queue(Persistence::None).await;
}

/// What a Redis keeps across a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persistence {
    /// `appendonly yes`, `appendfsync always`: everything it acknowledged.
    AppendOnly,
    /// Nothing: it comes back empty.
    None,
}

async fn a_redis_restart_in_the_pre_queue(persistence: Persistence) {
    let (mut redis, lead) = match persistence {
        Persistence::AppendOnly => (RedisServer::start_durable().await, Duration::from_secs(4)),
        // The settling's 3 s come on top.
        Persistence::None => (RedisServer::start().await, Duration::from_secs(7)),
    };
    let up = upstream().await;
    let event = Event::opening_in(&redis, lead).await;
    let file = event.config(&up, &redis);
    let first = GatewayProcess::start(GATEWAY, &file, None).await;
    let second = GatewayProcess::start(GATEWAY, &file, None).await;
    let gateways = [&first, &second];

    let mut crowd = Vec::new();
    for index in 0..6 {
        crowd.push(joins_the_pre_queue(gateways[index % 2], &event, &redis).await);
    }
    let before = draw_once(&first, DrawState::Pending, 6).await;
    assert_eq!(draw_once(&second, DrawState::Pending, 6).await, before);
    let epoch = stored_epoch(&redis).await;

    redis.restart().await;
    let restarted_at = redis.time_ms().await;
    for gw in gateways {
        let started = Instant::now();
        while !(gw.is_ready().await && gw.figure(ROOM, "updated_unix_ms").await > restarted_at) {
            assert!(
                started.elapsed() < PATIENCE,
                "{} never stepped again",
                gw.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(stored_epoch(&redis).await, epoch, "the same line");
    for gw in gateways {
        assert_eq!(
            draw_once(gw, DrawState::Pending, 6).await,
            before,
            "the same commitment and pre-queue"
        );
    }
    for holder in &crowd {
        let status = holder.visitor.status(ROOM).await;
        assert_eq!(status["state"], "pre_queue", "{status}");
    }
    for number in 7..=12 {
        let gw = gateways[number as usize % 2];
        let holder = match persistence {
            Persistence::AppendOnly => joins_the_pre_queue(gw, &event, &redis).await,
            Persistence::None => joins_the_pre_queue_once_settled(gw, &event, &redis).await,
        };
        assert_eq!(holder.ticket, number, "numbers go on");
        crowd.push(holder);
    }

    event.wait_for_opening(&redis).await;
    let draw = drawn_on_all(&gateways, 12, &before.commitment, &redis).await;
    everyone_at_their_place(&gateways, &crowd, &draw).await;
}

/// An opening that passes while Redis is away and comes back empty, when
/// the gateways' marks differ: the last pre-queue ticket was handed out by
/// one gateway in the instant before the loss, and the other never saw it
/// (here: it was frozen). The first gateway back carries the line on from
/// its own marks and the store settles, so that every gateway's marks
/// arrive before a number is trusted; the draw must wait for them too, and
/// cover every pre-queue ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_passed_while_redis_was_wiped_draws_every_gateways_tickets() {
    let mut redis = RedisServer::start().await;
    let up = upstream().await;
    let event = Event::opening_in(&redis, Duration::from_secs(4)).await;
    let file = event.config(&up, &redis);
    let first = GatewayProcess::start(GATEWAY, &file, None).await;
    let second = GatewayProcess::start(GATEWAY, &file, None).await;
    let gateways = [&first, &second];
    let mut crowd = Vec::new();
    for index in 0..6 {
        crowd.push(joins_the_pre_queue(gateways[index % 2], &event, &redis).await);
    }
    let before = draw_once(&first, DrawState::Pending, 6).await;
    figure_reaches(&second, "tickets_issued", 6).await;

    // Ticket 7 through the second gateway while the first is frozen; then
    // the second freezes too, and Redis comes back empty after the opening.
    first.pause();
    let last = joins_the_pre_queue(&second, &event, &redis).await;
    assert_eq!(last.ticket, 7);
    crowd.push(last);
    second.pause();
    redis.restart().await;
    event.wait_for_opening(&redis).await;

    // The first gateway, which saw six tickets, is back first; the second
    // (which handed out the seventh) a moment later.
    let restarted_at = redis.time_ms().await;
    first.resume();
    let started = Instant::now();
    while first.figure(ROOM, "updated_unix_ms").await <= restarted_at {
        assert!(
            started.elapsed() < PATIENCE,
            "the first gateway never stepped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.resume();

    let draw = drawn_on_all(&gateways, 7, &before.commitment, &redis).await;
    everyone_at_their_place(&gateways, &crowd, &draw).await;
}
