//! A launch event through the front door, on both backends and a manual
//! clock (the gateway's and its store's): the page before the pre-queue
//! with no ticket, pre-queue tickets, the public draw (commitment before,
//! seed after, checked with the same code as `anteroom-bench verify-draw`),
//! admission in the draw's order ahead of later arrivals, and the
//! schedule's live changes over the admin API with their refusals.

use std::collections::BTreeMap;

use anteroom_config::schedule::{format_instant, time_zone};
use anteroom_gateway::Clock;
use anteroom_store::draw::{DrawState, PublicDraw};
use anteroom_tests::{
    Backend, GatewayHandle, Visitor, cookie_value, eventually, gateway, room, upstream,
};

anteroom_tests::through_a_gateway_on_both_backends!(
    the_pre_queue_is_let_in_in_the_published_draws_order,
    the_schedule_changes_live_and_refuses_what_would_break_the_draw,
);

const ROOM: &str = "vaccini";
const PAGE: &str = "/echo/vaccini";
const T0: u64 = 1_800_000_000_000;
const PRE_QUEUE_FROM: u64 = T0 + 60_000;
const OPENS_AT: u64 = T0 + 600_000;
const ADMIN_TOKEN: &str = "launch-admin-token-0123456789";

fn rfc3339(at: u64) -> String {
    format_instant(at, &time_zone("Europe/Rome").expect("a zone"))
}

async fn start(backend: &Backend, clock: &Clock) -> (GatewayHandle, anteroom_tests::Upstream) {
    let up = upstream().await;
    let gateway = gateway(&up)
        .room(
            room(ROOM)
                .capacity(100)
                .admit_per_minute(60)
                .pre_queue_from(&rfc3339(PRE_QUEUE_FROM))
                .opens_at(&rfc3339(OPENS_AT)),
        )
        .backend(backend)
        .admin_token(ADMIN_TOKEN)
        .clock(clock)
        .start()
        .await;
    (gateway, up)
}

async fn public_draw(gateway: &GatewayHandle) -> PublicDraw {
    let response = gateway
        .visitor()
        .get(&format!("/_anteroom/draw?room={ROOM}"))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("the draw's JSON")
}

/// Moves the shared clock and waits for the gateway's steps to see it.
async fn at(gateway: &GatewayHandle, clock: &Clock, now: u64) {
    clock.set(now);
    gateway.settle().await;
}

async fn the_pre_queue_is_let_in_in_the_published_draws_order(backend: &Backend) {
    let clock = Clock::manual();
    at_start(&clock);
    let (gateway, _up) = start(backend, &clock).await;
    gateway.settle().await;

    // Before the pre-queue: a page that says when, and no ticket.
    let early = gateway.visitor();
    let response = early.get_json(PAGE).await;
    assert_eq!(response.status(), 200);
    assert!(cookie_value(&response, &format!("anteroom_ticket_{ROOM}")).is_none());
    let status: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status["state"], "not_open", "{status}");
    assert_eq!(status["opens_at"], rfc3339(OPENS_AT));
    assert_eq!(status["opens_in_seconds"], (OPENS_AT - T0) / 1000);
    let pending = public_draw(&gateway).await;
    assert_eq!(pending.state, DrawState::Pending);
    assert!(pending.seed.is_none(), "the seed is secret until the draw");
    assert_eq!(pending.commitment.len(), 64);

    // The pre-queue: twelve tickets, in order of arrival, nobody let in.
    at(&gateway, &clock, PRE_QUEUE_FROM).await;
    let mut crowd: Vec<Visitor> = Vec::new();
    for number in 1..=12u64 {
        let visitor = gateway.visitor();
        let status: serde_json::Value = visitor.get_json(PAGE).await.json().await.unwrap();
        assert_eq!(status["state"], "pre_queue", "{status}");
        assert_eq!(status["ticket"], number);
        crowd.push(visitor);
    }
    // The visitor who came early is let in line by their page, like anyone.
    assert_eq!(early.status(ROOM).await["state"], "none");
    let during = public_draw(&gateway).await;
    assert_eq!(during.commitment, pending.commitment, "committed before");
    assert_eq!(during.pre_queue, 12);
    let metrics = reqwest::get(gateway.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("anteroom_room_pre_queue{{room=\"{ROOM}\"}} 12")),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "anteroom_room_opens_in_seconds{{room=\"{ROOM}\"}} {}",
        (OPENS_AT - PRE_QUEUE_FROM) / 1000
    )));

    // The opening: the draw is published, and checks out.
    at(&gateway, &clock, OPENS_AT).await;
    let latecomer = gateway.visitor();
    let status: serde_json::Value = latecomer.get_json(PAGE).await.json().await.unwrap();
    assert_eq!(status["state"], "waiting", "after the pre-queue: {status}");
    assert_eq!(
        status["ticket"],
        serde_json::Value::Null,
        "not a pre-queue ticket"
    );
    let drawn = public_draw(&gateway).await;
    assert_eq!(drawn.state, DrawState::Drawn);
    assert_eq!(drawn.commitment, pending.commitment);
    let verified = drawn.verify().expect("the seed matches the commitment");
    let draw = verified.draw;
    assert_eq!(draw.pre_queue(), 12);

    // Each pre-queue visitor's page shows their place; one a second is let
    // in (60 a minute), in the draw's order, then the latecomer.
    let mut by_place = BTreeMap::new();
    for (index, visitor) in crowd.iter().enumerate() {
        let status = visitor.status(ROOM).await;
        let ticket = index as u64 + 1;
        let place = draw.place(ticket).unwrap();
        if status["state"] == "waiting" {
            assert_eq!(status["draw_place"], place, "{status}");
            assert_eq!(status["ticket"], ticket);
        }
        by_place.insert(place, visitor);
    }
    let mut order = Vec::new();
    let mut now = OPENS_AT;
    while order.len() < 13 {
        for (place, visitor) in by_place
            .iter()
            .map(|(p, v)| (*p, *v))
            .chain([(13, &latecomer)])
        {
            if !order.contains(&place) && visitor.status(ROOM).await["state"] == "admitted" {
                order.push(place);
            }
        }
        assert!(now < OPENS_AT + 120_000, "everyone let in: {order:?}");
        now += 1_000;
        at(&gateway, &clock, now).await;
    }
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted, "let in by place in the draw, latecomer last");
}

/// The manual clock starts at T0.
fn at_start(clock: &Clock) {
    clock.set(T0);
}

async fn the_schedule_changes_live_and_refuses_what_would_break_the_draw(backend: &Backend) {
    let clock = Clock::manual();
    at_start(&clock);
    let (gateway, _up) = start(backend, &clock).await;
    gateway.settle().await;
    let patch = |body: serde_json::Value| {
        let gateway = &gateway;
        async move {
            let response = reqwest::Client::new()
                .patch(gateway.admin_url(&format!("/admin/rooms/{ROOM}")))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("the admin API answers");
            let code = response.status().as_u16();
            let body: serde_json::Value = response.json().await.expect("JSON");
            (code, body)
        }
    };

    // Moved later: every page shows the new time within a step.
    let later = OPENS_AT + 3_600_000;
    let (code, body) = patch(serde_json::json!({ "opens_at": rfc3339(later) })).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["event"]["opens_at"], rfc3339(later));
    let visitor = gateway.visitor();
    eventually("the new opening shows", || async {
        visitor.status(ROOM).await["opens_at"] == rfc3339(later)
    })
    .await;

    // Refusals name what is wrong and change nothing.
    let (code, body) = patch(serde_json::json!({ "opens_at": "noon tomorrow" })).await;
    assert_eq!(code, 400);
    assert!(
        body["error"].as_str().unwrap().contains("opens_at"),
        "{body}"
    );
    let (code, body) = patch(serde_json::json!({ "opens_at": rfc3339(T0 - 1) })).await;
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("past"), "{body}");
    let (code, body) = patch(serde_json::json!({ "closes_at": rfc3339(PRE_QUEUE_FROM) })).await;
    assert_eq!(code, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("closes_at must come after opens_at"),
        "{body}"
    );

    // After the draw the opening is final: 409.
    at(&gateway, &clock, PRE_QUEUE_FROM).await;
    gateway.visitor().get(PAGE).await;
    at(&gateway, &clock, later).await;
    assert_eq!(public_draw(&gateway).await.state, DrawState::Drawn);
    let (code, body) = patch(serde_json::json!({ "opens_at": rfc3339(later + 60_000) })).await;
    assert_eq!(code, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("final"), "{body}");
    let (code, _) = patch(serde_json::json!({ "opens_at": null })).await;
    assert_eq!(code, 409, "clearing is moving too");
    let figures: serde_json::Value = reqwest::Client::new()
        .get(gateway.admin_url(&format!("/admin/rooms/{ROOM}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(figures["event"]["opens_at"], rfc3339(later), "unchanged");
    assert_eq!(figures["event"]["drawn"], true);
}

/// Polls answered from the cached figures are never rate limited, so that a
/// crowd behind one address (a carrier's NAT) keeps its pages moving: before
/// the opening by anyone, and after the draw by a pre-queue ticket waiting
/// for its *place* (not its number, which the counter may have passed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_before_the_opening_and_after_the_draw_are_not_rate_limited() {
    let clock = Clock::manual();
    at_start(&clock);
    let up = upstream().await;
    let gateway = gateway(&up)
        .room(
            room(ROOM)
                .capacity(5)
                .pre_queue_from(&rfc3339(PRE_QUEUE_FROM))
                .opens_at(&rfc3339(OPENS_AT)),
        )
        .limits(
            anteroom_tests::Limits::default()
                .per_ip_per_second(1)
                .per_ip_burst(2)
                .trusted_proxies(&["127.0.0.1"]),
        )
        .clock(&clock)
        .start()
        .await;
    gateway.settle().await;
    // Each visitor comes from an address of its own, behind the test's
    // trusted proxy.
    let status_from = |visitor: &Visitor, address: String| {
        let request = visitor
            .client
            .get(visitor.url(&format!("/_anteroom/status?room={ROOM}")))
            .header("x-forwarded-for", address);
        async move {
            let response = request.send().await.expect("an answer");
            let code = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (code, body["state"].as_str().unwrap_or_default().to_owned())
        }
    };
    let stranger = gateway.visitor();
    for _ in 0..20 {
        let answer = status_from(&stranger, "10.0.0.1".into()).await;
        assert_eq!(answer, (200, "not_open".to_owned()));
    }
    // A stale ticket (another epoch) may cost the door a store call: its
    // polls are limited like anything else.
    let stale = anteroom_gateway::token::Keyring::new(&[anteroom_tests::COOKIE_KEY]).sign_ticket(
        &anteroom_gateway::token::Ticket {
            room: ROOM.into(),
            epoch: 12_345,
            number: 1,
            issued_at: T0,
        },
    );
    let mut codes = Vec::new();
    for _ in 0..5 {
        let response = stranger
            .client
            .get(stranger.url(&format!("/_anteroom/status?room={ROOM}")))
            .header("x-forwarded-for", "10.0.0.2")
            .header("cookie", format!("anteroom_ticket_{ROOM}={stale}"))
            .send()
            .await
            .expect("an answer");
        codes.push(response.status().as_u16());
    }
    assert!(codes.contains(&429), "{codes:?}");

    at(&gateway, &clock, PRE_QUEUE_FROM).await;
    let crowd: Vec<Visitor> = (0..20).map(|_| gateway.visitor()).collect();
    for (index, visitor) in crowd.iter().enumerate() {
        let response = visitor
            .client
            .get(visitor.url(PAGE))
            .header("x-forwarded-for", format!("10.0.1.{index}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    at(&gateway, &clock, OPENS_AT).await;
    let draw = public_draw(&gateway).await.verify().expect("drawn").draw;
    // Five places are let in at the opening (capacity 5); the others wait.
    for (index, visitor) in crowd.iter().enumerate() {
        let ticket = index as u64 + 1;
        if draw.place(ticket).unwrap() <= 5 {
            continue;
        }
        for _ in 0..10 {
            let answer = status_from(visitor, format!("10.0.1.{index}")).await;
            assert_eq!(answer, (200, "waiting".to_owned()), "ticket {ticket}");
        }
    }
}
