//! One clock: two gateways on one Redis whose clocks differ by ten minutes
//! (one five minutes ahead of the store, one five minutes behind) behave
//! as if they shared one. Every time compared about shared state is the
//! store's (Redis `TIME`), and each gateway reckons it from its own clock
//! plus the offset its step learns. The in-process equivalent of running
//! each gateway under libfaketime: a `Clock` skewed from the system's.

use std::time::Duration;

use anteroom_gateway::Clock;
use anteroom_tests::{
    GatewayHandle, RedisServer, Upstream, Visitor, eventually, gateway, plain_client,
    reached_origin, room, upstream,
};

const ROOM: &str = "/echo/vaccini";
/// How far each gateway's clock is from the store's.
const SKEW: Duration = Duration::from_secs(300);

/// A gateway on `clock` (the store keeps its own time).
async fn skewed_gateway(
    redis: &RedisServer,
    up: &Upstream,
    spec: anteroom_tests::Room,
    clock: Clock,
) -> GatewayHandle {
    gateway(up)
        .room(spec)
        .redis(redis)
        .own_clock(&clock)
        .start()
        .await
}

/// Gateway A, five minutes ahead, and gateway B, five minutes behind, on
/// one Redis (whose clock is the machine's).
async fn ahead_and_behind(
    redis: &RedisServer,
    up: &Upstream,
    spec: anteroom_tests::Room,
) -> (GatewayHandle, GatewayHandle) {
    let ahead = skewed_gateway(redis, up, spec.clone(), Clock::system_ahead(SKEW)).await;
    let behind = skewed_gateway(redis, up, spec, Clock::system_behind(SKEW)).await;
    (ahead, behind)
}

/// The room's figures as `gw` last saw them (`GET /admin/rooms/vaccini`).
async fn figures(gw: &GatewayHandle) -> serde_json::Value {
    plain_client()
        .get(gw.admin_url("/admin/rooms/vaccini"))
        .send()
        .await
        .expect("the admin listener answers")
        .json()
        .await
        .expect("the room's figures")
}

async fn figure(gw: &GatewayHandle, name: &str) -> u64 {
    figures(gw).await[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no figure {name}"))
}

/// The offset each gateway adds to its own clock, as `/metrics` shows it
/// (the store's clock minus the gateway's, in seconds).
async fn offset_seconds(gw: &GatewayHandle) -> f64 {
    let text = plain_client()
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .expect("the admin listener answers")
        .text()
        .await
        .expect("the metrics");
    text.lines()
        .find_map(|line| line.strip_prefix("anteroom_store_clock_offset_seconds "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no offset in:\n{text}"))
}

/// Each gateway learns from its steps how far the store's clock is from
/// its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_gateway_learns_the_offset_to_the_stores_clock() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let (ahead, behind) = ahead_and_behind(&redis, &up, room("vaccini")).await;
    let skew = SKEW.as_secs_f64();
    // Off by half a round trip at most: far less than a second here.
    let ahead_offset = offset_seconds(&ahead).await;
    assert!((ahead_offset + skew).abs() < 1.0, "{ahead_offset}");
    let behind_offset = offset_seconds(&behind).await;
    assert!((behind_offset - skew).abs() < 1.0, "{behind_offset}");
}

/// (a) The pace is the store's: when the gateway whose clock runs ahead
/// stops, the other goes on letting visitors in at once. (Before, the
/// bucket's mark stood five minutes in the future, and a gateway behind
/// waited ten minutes for its own clock to pass it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pace_goes_on_when_the_gateway_whose_clock_runs_ahead_stops() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    // 10 a second; room for everyone, so only the pace holds them back.
    let spec = room("vaccini").capacity(10_000).admit_per_minute(600);
    let (ahead, behind) = ahead_and_behind(&redis, &up, spec).await;
    let mut queue = Vec::new();
    for index in 0..80 {
        let gw = if index % 2 == 0 { &ahead } else { &behind };
        let visitor = gw.visitor();
        let _ = visitor.get(ROOM).await;
        queue.push(visitor);
    }
    behind.settle().await;
    assert!(
        figure(&behind, "waiting").await > 30,
        "a line has formed: {}",
        figures(&behind).await
    );
    ahead.stop().await;
    let before = figure(&behind, "admitted_through").await;
    eventually("the gateway behind goes on letting visitors in", || async {
        figure(&behind, "admitted_through").await >= before + 10
    })
    .await;
}

/// (b) A pass renewed by one gateway is good on the other, and the store
/// keeps every visitor inside counted: nobody inside is thrown out, and
/// nobody in line is let in to a slot that is still taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_inside_is_thrown_out_by_a_gateway_whose_clock_differs() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    // A session of two minutes: far less than the ten minutes between the
    // gateways' clocks.
    let spec = room("vaccini").capacity(20).session_seconds(120);
    let (ahead, behind) = ahead_and_behind(&redis, &up, spec).await;
    let gateways = [&ahead, &behind];
    let mut inside = Vec::new();
    for index in 0..20 {
        let visitor = gateways[index % 2].visitor();
        assert!(
            reached_origin(visitor.get(ROOM).await).await,
            "{index} goes in"
        );
        inside.push((index, visitor));
    }
    let mut waiting = Vec::new();
    for index in 0..5 {
        let visitor = gateways[index % 2].visitor();
        assert!(
            !reached_origin(visitor.get(ROOM).await).await,
            "the room is full: no slot of a visitor inside was given away"
        );
        waiting.push(visitor);
    }
    // Everyone inside hops from one gateway to the other and back, each
    // request reported as activity by the gateway that served it.
    for hop in 1..=4 {
        for (index, visitor) in &inside {
            let there = visitor.with_base(&gateways[(index + hop) % 2].url(""));
            assert_eq!(
                there.status("vaccini").await["state"],
                "admitted",
                "visitor {index}, hop {hop}: the pass is good on the other gateway"
            );
            assert!(
                reached_origin(there.get(ROOM).await).await,
                "visitor {index}, hop {hop}: served by the other gateway"
            );
        }
        // Let activity reports and both gateways' steps run in between.
        tokio::time::sleep(anteroom_gateway::room::ACTIVITY_FLUSH_INTERVAL).await;
        ahead.settle().await;
    }
    for gw in gateways {
        let figures = figures(gw).await;
        assert_eq!(figures["sessions_expired"], 0, "{figures}");
        assert_eq!(figures["inside"], 20, "{figures}");
        assert_eq!(figures["admitted_through"], 20, "{figures}");
    }
    for visitor in &waiting {
        assert_eq!(visitor.status("vaccini").await["state"], "waiting");
    }
}

/// (c) No false no-shows: a visitor let in by one gateway's step who comes
/// back within `arrival_seconds` through the other gateway gets in. The
/// gateway ahead is restarted meanwhile (a rolling deploy), so that the
/// step that lets the line in is surely the one behind's: before, its
/// deadlines were long past on the clock of the gateway ahead, whose first
/// step expired them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_let_in_comes_in_through_the_other_gateway() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    // Sessions longer than the ten minutes between the gateways' clocks,
    // so that only the arrival deadlines are at stake here; 30 seconds to
    // arrive, far less.
    let spec = room("vaccini")
        .capacity(10)
        .session_seconds(900)
        .arrival_seconds(30);
    let (ahead, behind) = ahead_and_behind(&redis, &up, spec.clone()).await;
    let gateways = [&ahead, &behind];
    let mut first: Vec<Visitor> = Vec::new();
    for index in 0..10 {
        let visitor = gateways[index % 2].visitor();
        assert!(reached_origin(visitor.get(ROOM).await).await);
        first.push(visitor);
    }
    let mut line = Vec::new();
    for index in 0..10 {
        let visitor = gateways[index % 2].visitor();
        assert!(!reached_origin(visitor.get(ROOM).await).await);
        line.push(visitor);
    }
    // Ten more behind them, who stay in line: a visitor who lost their
    // turn would join them at the back.
    let mut behind_them = Vec::new();
    for index in 0..10 {
        let visitor = gateways[index % 2].visitor();
        assert!(!reached_origin(visitor.get(ROOM).await).await);
        behind_them.push(visitor);
    }
    ahead.stop().await;
    let on_behind = behind.url("");
    for visitor in &first {
        visitor.with_base(&on_behind).leave("vaccini").await;
    }
    eventually("the gateway behind lets the line in", || async {
        figure(&behind, "admitted_through").await >= 20
    })
    .await;
    let ahead = skewed_gateway(&redis, &up, spec, Clock::system_ahead(SKEW)).await;
    ahead.settle().await;
    for (index, visitor) in line.iter().enumerate() {
        let there = visitor.with_base(&ahead.url(""));
        assert!(
            reached_origin(there.get(ROOM).await).await,
            "visitor {index} comes in through the gateway ahead"
        );
    }
    ahead.settle().await;
    for gw in [&ahead, &behind] {
        let figures = figures(gw).await;
        assert_eq!(figures["no_shows"], 0, "{figures}");
        assert_eq!(figures["inside"], 10, "{figures}");
    }
    for visitor in &behind_them {
        let there = visitor.with_base(&on_behind);
        assert_eq!(there.status("vaccini").await["state"], "waiting");
    }
}
