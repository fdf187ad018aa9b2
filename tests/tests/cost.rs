//! The cost budget that shapes the design, counted in commands sent to Redis
//! (MONITOR; not timed): a waiting visitor's poll and an admitted visitor's request cost no
//! round trip, a new arrival costs at most one. The gateway's own background
//! step (one script per room every 100 ms, one activity report per second)
//! is allowed for by the elapsed time.

use std::time::Instant;

use anteroom_tests::{
    GatewayHandle, RedisServer, STEP_INTERVAL, Upstream, Visitor, cookie_value, gateway,
    plain_client, reached_origin, room, upstream,
};

const ROOM: &str = "/echo/vaccini";

/// Commands the gateway may send in `elapsed` without any request: a step
/// per 100 ms and an activity report per second, with slack for steps in
/// flight at either end and MONITOR's lag. Far below one per request.
fn background_allowance(elapsed: std::time::Duration) -> u64 {
    let steps = elapsed.as_millis() as u64 / STEP_INTERVAL.as_millis() as u64 + 1;
    let flushes = elapsed.as_secs() + 1;
    steps + flushes + 5
}

/// A gateway on a private Redis with a room of one place, and the visitor
/// in it.
async fn one_inside_on_redis() -> (RedisServer, Upstream, GatewayHandle, Visitor) {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
    (redis, up, gw, inside)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cost_what_the_budget_says() {
    let (redis, _up, gw, inside) = one_inside_on_redis().await;
    let waiting = gw.visitor();
    assert!(!reached_origin(waiting.get(ROOM).await).await);

    let commands = redis.monitor().await;

    // 300 polls and reloads by a waiting visitor.
    let before = commands.seen().await;
    let started = Instant::now();
    for _ in 0..150 {
        assert_eq!(waiting.status("vaccini").await["state"], "waiting");
        assert!(!reached_origin(waiting.get(ROOM).await).await);
    }
    let spent = commands.seen().await - before;
    let allowance = background_allowance(started.elapsed());
    assert!(
        spent <= allowance,
        "300 waiting requests cost {spent} commands (background allows {allowance})"
    );

    // 300 requests by the visitor inside.
    let before = commands.seen().await;
    let started = Instant::now();
    for _ in 0..300 {
        assert!(reached_origin(inside.get(ROOM).await).await);
    }
    let spent = commands.seen().await - before;
    let allowance = background_allowance(started.elapsed());
    assert!(
        spent <= allowance,
        "300 admitted requests cost {spent} commands (background allows {allowance})"
    );

    // 200 new arrivals: one round trip each at most.
    let before = commands.seen().await;
    let started = Instant::now();
    for _ in 0..200 {
        assert!(!reached_origin(gw.visitor().get(ROOM).await).await);
    }
    let spent = commands.seen().await - before;
    let allowance = 200 + background_allowance(started.elapsed());
    assert!(
        spent <= allowance,
        "200 arrivals cost {spent} commands (allowed {allowance})"
    );
}

/// A ticket that was let in and then spent (its holder came in and left),
/// sent again and again with the pass that left: the store is asked once,
/// not once per request (each would be a claim script).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_ticket_replayed_costs_one_round_trip() {
    let (redis, _up, gw, inside) = one_inside_on_redis().await;
    let client = plain_client();
    let arrived = client.get(gw.url(ROOM)).send().await.expect("request");
    let ticket = cookie_value(&arrived, "anteroom_ticket_vaccini").expect("a ticket");
    let ticket = format!("anteroom_ticket_vaccini={ticket}");
    inside.leave("vaccini").await;
    // Its turn comes: the status call swaps the ticket for a pass.
    let mut pass = None;
    for _ in 0..100 {
        let response = client
            .get(gw.url("/_anteroom/status"))
            .header("cookie", &ticket)
            .send()
            .await
            .expect("request");
        if let Some(value) = cookie_value(&response, "anteroom_pass_vaccini") {
            pass = Some(format!("anteroom_pass_vaccini={value}"));
            break;
        }
        tokio::time::sleep(STEP_INTERVAL).await;
    }
    let pass = pass.expect("the turn came");
    let left = client
        .post(gw.url("/_anteroom/leave"))
        .header("cookie", &pass)
        .send()
        .await
        .expect("request");
    assert_eq!(left.status(), 200);

    let commands = redis.monitor().await;
    let before = commands.seen().await;
    let started = Instant::now();
    let both = format!("{ticket}; {pass}");
    for _ in 0..300 {
        let status: serde_json::Value = client
            .get(gw.url("/_anteroom/status"))
            .header("cookie", &both)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("the status JSON");
        assert_eq!(status["state"], "none");
    }
    let spent = commands.seen().await - before;
    let allowance = 1 + background_allowance(started.elapsed());
    assert!(
        spent <= allowance,
        "300 replays of a spent ticket cost {spent} commands (allowed {allowance})"
    );
}
