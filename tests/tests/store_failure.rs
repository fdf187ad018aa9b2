//! Redis killed and restarted under both `on_error` settings: the gateway
//! keeps answering, never floods the origin under "wait", lets visitors
//! through under "admit", reports itself unready, and recovers by itself.

use std::time::Duration;

use anteroom_tests::{
    OnError, RedisServer, Visitor, cookie_value, eventually, gateway, reached_origin, room,
    upstream,
};

const ROOM: &str = "/echo/vaccini";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_wait_keeps_new_visitors_waiting_and_recovers() {
    let mut redis = RedisServer::start().await;
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(5))
        .redis(&redis)
        .on_error(OnError::Wait)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
    assert_eq!(gw.readiness().await, 200);

    redis.kill();
    gw.settle().await;
    assert_eq!(gw.readiness().await, 503, "unready while the store is gone");

    // New visitors wait, politely, and the origin sees none of them.
    let before = up.requests_served().await;
    let newcomers: Vec<Visitor> = (0..20).map(|_| gw.visitor()).collect();
    for visitor in &newcomers {
        let response = visitor.get(ROOM).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let html = response.text().await.unwrap();
        assert!(html.contains("<html"), "a waiting page, not an error");
        let status = visitor.status("vaccini").await;
        assert_eq!(status["state"], "none");
    }
    let json = newcomers[0].get_json(ROOM).await;
    let status: serde_json::Value = json.json().await.unwrap();
    assert_eq!(status["state"], "waiting");
    assert_eq!(
        status["position"],
        serde_json::Value::Null,
        "position unknown while the store is down"
    );
    // (The origin does not count requests for /_stats itself.)
    assert_eq!(
        up.requests_served().await,
        before,
        "no waiting visitor reached the origin"
    );

    // The visitor already inside keeps browsing: passes need no store.
    assert!(reached_origin(inside.get(ROOM).await).await);

    // Redis comes back (empty): the gateway recovers by itself.
    redis.restart().await;
    eventually("ready again", || async { gw.readiness().await == 200 }).await;
    eventually("a newcomer gets in", || async {
        reached_origin(newcomers[0].get(ROOM).await).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_admit_lets_visitors_through_and_recovers() {
    let mut redis = RedisServer::start().await;
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .on_error(OnError::Admit)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
    let waiting = gw.visitor();
    assert!(
        !reached_origin(waiting.get(ROOM).await).await,
        "room full: waits"
    );

    redis.kill();
    gw.settle().await;
    // Everyone is waved through while the store is unreachable.
    assert!(reached_origin(waiting.get(ROOM).await).await);
    assert!(reached_origin(gw.visitor().get(ROOM).await).await);

    redis.restart().await;
    eventually("ready again", || async { gw.readiness().await == 200 }).await;
    // `/readyz` pings the store itself; the request path believes it is
    // back after the room's next successful step.
    gw.settle().await;
    // Back to normal: the store lost everything, but the gateway carries
    // the line on as it saw it. The room counts again: the visitor inside
    // is reported again, so a newcomer waits (once the store has settled,
    // with a place behind the ticket held from before).
    let newcomer = gw.newcomer_in_line("vaccini", ROOM).await;
    assert_eq!(newcomer.position("vaccini").await, Some(2));
    inside.leave("vaccini").await;
    eventually("the visitor waiting from before goes in first", || async {
        reached_origin(waiting.get(ROOM).await).await
    })
    .await;
    assert_eq!(newcomer.position("vaccini").await, Some(1));
}

/// A gateway whose Redis is down at startup still starts, says it is not
/// ready, and serves once Redis appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_while_redis_is_down() {
    let mut redis = RedisServer::start().await;
    redis.kill();
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .start()
        .await;
    assert_eq!(gw.readiness().await, 503);
    let visitor = gw.visitor();
    assert!(
        !reached_origin(visitor.get(ROOM).await).await,
        "waits while the store is down"
    );
    redis.restart().await;
    eventually("ready", || async { gw.readiness().await == 200 }).await;
    eventually("admitted", || async {
        reached_origin(visitor.get(ROOM).await).await
    })
    .await;
}

/// After Redis loses its data, visitors admitted before the loss are counted
/// again as they come back, so the room does not take `capacity` newcomers on
/// top of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_inside_before_a_redis_wipe_still_count() {
    let mut redis = RedisServer::start().await;
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);

    redis.restart().await; // empty: the gateway carries the line on
    eventually("ready again", || async { gw.readiness().await == 200 }).await;
    gw.settle().await;
    // The visitor inside comes back and is still counted...
    assert!(reached_origin(inside.get(ROOM).await).await);
    // ...so a newcomer waits instead of making two inside a room of one
    // (once the store has settled: no number is handed out before).
    let newcomer = gw.newcomer_in_line("vaccini", ROOM).await;
    assert_eq!(newcomer.status("vaccini").await["position"], 1);
}

/// A Redis that lost everything (restarted without persistence) while the
/// gateway kept running: the gateway's marks carry the line on, so every
/// waiting visitor keeps their place and order, and nobody who arrives
/// afterwards goes ahead of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_persistence_keeps_the_line() {
    let mut redis = RedisServer::start().await;
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
    let mut waiting = Vec::new();
    for expected in 1..=5 {
        let visitor = gw.visitor();
        assert!(!reached_origin(visitor.get(ROOM).await).await);
        assert_eq!(visitor.position("vaccini").await, Some(expected));
        waiting.push(visitor);
    }
    gw.settle().await;

    redis.restart().await; // empty
    eventually("ready again", || async { gw.readiness().await == 200 }).await;
    let newcomer = gw.newcomer_in_line("vaccini", ROOM).await;
    assert_eq!(
        newcomer.position("vaccini").await,
        Some(6),
        "behind all five"
    );
    for (ahead, visitor) in waiting.iter().enumerate() {
        assert_eq!(visitor.position("vaccini").await, Some(ahead as u64 + 1));
    }
    // One at a time, in the order they came: each goes in as the one
    // before leaves, and the room never holds two.
    inside.leave("vaccini").await;
    for visitor in &waiting {
        eventually("the next in line goes in", || async {
            reached_origin(visitor.get(ROOM).await).await
        })
        .await;
        for later in waiting
            .iter()
            .skip_while(|other| !std::ptr::eq(*other, visitor))
            .skip(1)
        {
            assert!(
                !reached_origin(later.get(ROOM).await).await,
                "one at a time"
            );
        }
        assert!(!reached_origin(newcomer.get(ROOM).await).await);
        visitor.leave("vaccini").await;
    }
    eventually("the newcomer goes in last", || async {
        reached_origin(newcomer.get(ROOM).await).await
    })
    .await;
}

/// Activity seen while the store was unreachable is reported before the next
/// step: a visitor who kept browsing through an outage longer than the
/// session is still counted when the store answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_active_during_an_outage_stay_counted() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let clock = anteroom_gateway::Clock::manual();
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1).session_seconds(30))
        .redis(&redis)
        .clock(&clock)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
    let waiting = gw.visitor();
    assert!(!reached_origin(waiting.get(ROOM).await).await);
    redis.pause();
    eventually("unready", || async { gw.readiness().await == 503 }).await;
    // Forty seconds pass; the visitor keeps browsing (passes need no store).
    for _ in 0..8 {
        clock.advance(Duration::from_secs(5));
        assert!(reached_origin(inside.get(ROOM).await).await);
    }
    // Let the outage last (in real time) past the store's response timeout,
    // as a real one would: the gateway's own calls fail meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.resume();
    eventually("ready again", || async { gw.readiness().await == 200 }).await;
    gw.settle().await;
    assert_eq!(
        waiting.status("vaccini").await["state"],
        "waiting",
        "the room is still full: its slot was not given away"
    );
    let newcomer = gw.visitor();
    assert!(
        !reached_origin(newcomer.get(ROOM).await).await,
        "the room is still full"
    );
}

/// A pass that left is not honoured again: on the gateway that saw it leave
/// at once, and on another gateway after its next activity report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_that_left_is_not_honoured_again() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let one = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .start()
        .await;
    let two = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .start()
        .await;
    // A client that keeps its pass whatever Set-Cookie says afterwards.
    let client = reqwest::Client::new();
    let first = client.get(one.url(ROOM)).send().await.unwrap();
    let pass = format!(
        "anteroom_pass_vaccini={}",
        cookie_value(&first, "anteroom_pass_vaccini").expect("let straight in with a pass")
    );
    let with_pass = |url: String| client.get(url).header("cookie", pass.clone()).send();
    assert!(reached_origin(with_pass(two.url(ROOM)).await.unwrap()).await);
    let next = one.visitor();
    assert!(
        !reached_origin(next.get(ROOM).await).await,
        "room full: waits"
    );
    let left = client
        .post(one.url("/_anteroom/leave?room=vaccini"))
        .header("cookie", pass.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 200);
    one.settle().await;
    assert_eq!(
        next.status("vaccini").await["state"],
        "admitted",
        "the slot went on"
    );
    // The gateway that saw it leave refuses it at once (the room is full).
    assert!(!reached_origin(with_pass(one.url(ROOM)).await.unwrap()).await);
    // The other learns from the store when it reports the pass's activity.
    eventually("the other gateway stops honouring the pass", || async {
        !reached_origin(with_pass(two.url(ROOM)).await.unwrap()).await
    })
    .await;
}

/// A visitor who leaves while the store is unreachable frees the slot once
/// it answers again, not a whole session later: the leave is kept and
/// delivered after the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_during_an_outage_frees_the_slot_after_it() {
    let mut redis = RedisServer::start_durable().await;
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1).session_seconds(300))
        .redis(&redis)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
    let waiting = gw.visitor();
    assert!(!reached_origin(waiting.get(ROOM).await).await);
    redis.kill();
    eventually("unready", || async { gw.readiness().await == 503 }).await;
    inside.leave("vaccini").await;
    redis.restart().await;
    eventually("ready again", || async { gw.readiness().await == 200 }).await;
    eventually("the slot goes to the one waiting", || async {
        waiting.status("vaccini").await["state"] == "admitted"
    })
    .await;
}
