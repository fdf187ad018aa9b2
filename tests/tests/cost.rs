//! The cost budget that shapes the design, counted in commands sent to Redis
//! (MONITOR; not timed): a waiting visitor's poll and an admitted visitor's request cost no
//! round trip, a new arrival costs at most one. The gateway's own background
//! step (one script per room every 100 ms, one activity report per second)
//! is allowed for by the elapsed time.

use std::time::Instant;

use anteroom_tests::{RedisServer, STEP_INTERVAL, gateway, reached_origin, room, upstream};

const ROOM: &str = "/echo/vaccini";

/// Commands the gateway may send in `elapsed` without any request: a step
/// per 100 ms and an activity report per second, with slack for steps in
/// flight at either end and MONITOR's lag. Far below one per request.
fn background_allowance(elapsed: std::time::Duration) -> u64 {
    let steps = elapsed.as_millis() as u64 / STEP_INTERVAL.as_millis() as u64 + 1;
    let flushes = elapsed.as_secs() + 1;
    steps + flushes + 5
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cost_what_the_budget_says() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
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
