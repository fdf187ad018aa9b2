//! Adaptive admission through real gateways (`docs/adaptive.md` §4): the
//! admin API's `adaptive` changes (each nonsensical value refused, naming
//! its key; a valid one shown after the next report; off pins the pace at
//! the ceiling), the `/metrics` gauges, a site that fails every request
//! (trouble, the floor, the status JSON's `"site"`, and recovery by
//! itself), two gateways on one Redis sharing one controller (and one
//! going silent), and the room's places on the request path.
//!
//! Every room has its own name: the metrics recorder is per process, and
//! this file's tests run in parallel in one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anteroom_bench::origin::{Melt, OriginOptions};
use anteroom_tests::{
    GatewayHandle, RedisServer, TcpProxy, Visitor, free_port, gateway, gateway_to, loose_limits,
    plain_client, reached_origin, room, sample, upstream, upstream_with,
};
use serde_json::{Value, json};

const TOKEN: &str = "admin-token-0123456789abcdef";

/// Long enough for a few controller ticks (one a second) on a busy
/// machine; a bound, not a measurement.
const PATIENCE: Duration = Duration::from_secs(30);

/// A room's live adaptive settings, as every change must leave them
/// unless it is valid.
const SETTINGS: [&str; 4] = [
    "enabled",
    "min_admit_per_minute",
    "latency_p90_ms",
    "max_error_rate",
];

/// Each nonsensical `adaptive` value is refused with `400` naming its key
/// and changes nothing; a valid change shows in the room's `adaptive`
/// object after the next report and takes effect (the pace reaches the new
/// floor once the site fails); turning it off withdraws the pace (`off`,
/// `pace` null) and the room admits at its full `admit_per_minute` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_checks_each_key_and_off_pins_the_ceiling() {
    const ROOM: &str = "admin";
    // Nothing listens where the site should be: every admitted visitor's
    // request fails, so the controller holds the pace at its floor.
    let gw = gateway_to(&format!("http://127.0.0.1:{}", free_port()))
        .room(
            room(ROOM)
                .capacity(100)
                .admit_per_minute(6000)
                .adaptive(None),
        )
        .admin_token(TOKEN)
        .start()
        .await;
    let before = adaptive(&gw, ROOM).await;
    assert_eq!(before["enabled"], true, "{before}");
    assert_eq!(before["min_admit_per_minute"], 60, "{before}");

    // The harness's upstream timeout is 30 s.
    for (change, key) in [
        (
            json!({"min_admit_per_minute": 0}),
            "adaptive.min_admit_per_minute",
        ),
        (
            json!({"min_admit_per_minute": 6001}),
            "adaptive.min_admit_per_minute",
        ),
        (json!({"latency_p90_ms": 5}), "adaptive.latency_p90_ms"),
        (json!({"latency_p90_ms": 70000}), "adaptive.latency_p90_ms"),
        (json!({"latency_p90_ms": 30000}), "adaptive.latency_p90_ms"),
        (json!({"max_error_rate": 0}), "adaptive.max_error_rate"),
        (json!({"max_error_rate": 0.6}), "adaptive.max_error_rate"),
        (json!({"max_error_rate": "x"}), "adaptive.max_error_rate"),
        (json!({"enabeld": true}), "adaptive.enabeld"),
    ] {
        let body = json!({"capacity": 7, "adaptive": change});
        let response = patch(&gw, ROOM, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let message = response.json::<Value>().await.expect("a JSON error")["error"]
            .as_str()
            .expect("an error message")
            .to_owned();
        assert!(message.contains(key), "{body}: {message:?} names {key}");
        let figures = figures(&gw, ROOM).await;
        assert_eq!(figures["capacity"], 100, "{body} changed nothing");
        for setting in SETTINGS {
            assert_eq!(
                figures["adaptive"][setting], before[setting],
                "{body} changed nothing"
            );
        }
    }

    // A valid change: 200, shown after the next report.
    let response = patch(
        &gw,
        ROOM,
        &json!({"adaptive": {"min_admit_per_minute": 1, "latency_p90_ms": 800, "max_error_rate": 0.05}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let changed = until(&gw, ROOM, "the change is shown", |adaptive| {
        adaptive["min_admit_per_minute"] == 1
            && adaptive["latency_p90_ms"] == 800
            && adaptive["max_error_rate"] == 0.05
    })
    .await;
    assert_eq!(changed["enabled"], true, "{changed}");

    // The site fails every request of the visitor inside: the pace goes
    // to the new floor, one admission a minute.
    let inside = gw.visitor();
    inside.get(&format!("/echo/{ROOM}")).await;
    assert_eq!(inside.status(ROOM).await["state"], "admitted");
    let pinned_low = {
        let knocking = knock(&inside, ROOM);
        let adaptive = until(&gw, ROOM, "the pace at the floor", |adaptive| {
            adaptive["reason"] == "site_down" && adaptive["pace"] == 1.0
        })
        .await;
        knocking.stop();
        adaptive
    };
    // A crowd arrives: at one a minute it would wait for twenty minutes
    // (the bucket lets in one or two at once).
    let crowd: Vec<Visitor> = (0..20).map(|_| gw.visitor()).collect();
    for visitor in &crowd {
        visitor.get(&format!("/echo/{ROOM}")).await;
    }
    let waiting = figures(&gw, ROOM).await["waiting"].as_u64().unwrap();
    assert!(waiting >= 15, "{waiting} wait at the floor: {pinned_low}");

    // Off: the pace is withdrawn and the ceiling (6,000 a minute) lets the
    // crowd in at once.
    let response = patch(&gw, ROOM, &json!({"adaptive": {"enabled": false}})).await;
    assert_eq!(response.status(), 200);
    let off = until(&gw, ROOM, "adaptive admission off", |adaptive| {
        adaptive["enabled"] == false && adaptive["reason"] == "off"
    })
    .await;
    assert_eq!(off["pace"], Value::Null, "{off}");
    assert_eq!(off["places"], Value::Null, "{off}");
    assert_eq!(off["trouble"], false, "{off}");
    poll("the crowd is let in at the ceiling", || async {
        figures(&gw, ROOM).await["waiting"] == 0
    })
    .await;
    for visitor in &crowd {
        assert_eq!(visitor.status(ROOM).await["state"], "admitted");
    }
}

/// With adaptive admission on and traffic through the room, `/metrics`
/// carries the pace, exactly one reason at 1, the fleet's places and this
/// gateway's share, and the target; a live change of the target shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_the_pace_the_reason_and_the_places() {
    const ROOM: &str = "metered";
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room(ROOM).capacity(5).adaptive(None))
        .admin_token(TOKEN)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(&format!("/echo/{ROOM}")).await).await);
    let knocking = knock(&inside, ROOM);
    // The gateway's own lag, sampled 50 times a second, reaches the
    // controller and the admin API beside the site's net median.
    until(&gw, ROOM, "the controller has seen traffic", |adaptive| {
        adaptive["site_p50_ms"].is_number()
            && adaptive["share"].is_number()
            && adaptive["lag_p90_ms"].is_number()
    })
    .await;

    let text = metrics(&gw).await;
    let room = [("room", ROOM)];
    let value = |name: &str| {
        sample(&text, name, &room).unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
    };
    let pace = value("anteroom_room_adaptive_pace_per_minute");
    assert!(
        (60.0..=6000.0).contains(&pace),
        "the pace {pace} lies between the floor and the ceiling"
    );
    assert!(value("anteroom_room_adaptive_places") >= 3.0, "{text}");
    assert!(value("anteroom_room_upstream_places") >= 1.0, "{text}");
    assert_eq!(value("anteroom_room_adaptive_target_p90_seconds"), 1.0);
    assert_eq!(value("anteroom_room_adaptive_enabled"), 1.0);
    let shown = reasons(&text, ROOM);
    assert_eq!(shown.len(), 11, "every reason has its gauge: {shown:?}");
    let current: Vec<_> = shown.iter().filter(|(_, value)| *value == 1.0).collect();
    assert_eq!(current.len(), 1, "exactly one reason at 1: {shown:?}");
    assert_ne!(current[0].0, "off", "{shown:?}");
    assert!(
        shown
            .iter()
            .all(|(_, value)| *value == 0.0 || *value == 1.0),
        "{shown:?}"
    );

    // A live change of the target reaches the gauge at the next report.
    let response = patch(&gw, ROOM, &json!({"adaptive": {"latency_p90_ms": 800}})).await;
    assert_eq!(response.status(), 200);
    poll("the new target in /metrics", || async {
        sample(
            &metrics(&gw).await,
            "anteroom_room_adaptive_target_p90_seconds",
            &room,
        ) == Some(0.8)
    })
    .await;
    // Off: the reason is `off`, and only it.
    let response = patch(&gw, ROOM, &json!({"adaptive": {"enabled": false}})).await;
    assert_eq!(response.status(), 200);
    poll("the reason is off in /metrics", || async {
        let text = metrics(&gw).await;
        reasons(&text, ROOM)
            .iter()
            .all(|(reason, value)| *value == if reason == "off" { 1.0 } else { 0.0 })
    })
    .await;
    knocking.stop();
}

/// A site that fails every request while a visitor inside keeps asking:
/// the controller says `trouble` and `site_down`, drops the pace to the
/// floor, and the status JSON of a visitor waiting says `"site":"trouble"`
/// with no estimate; once the site answers again, the trouble clears by
/// itself and the estimate comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_down_is_trouble_at_the_floor_and_clears_by_itself() {
    const ROOM: &str = "down";
    let up = upstream().await;
    let mut site = TcpProxy::start(up.addr).await;
    let gw = gateway_to(&format!("http://127.0.0.1:{}", site.port))
        .room(room(ROOM).capacity(1).adaptive(None))
        .admin_token(TOKEN)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(&format!("/echo/{ROOM}")).await).await);
    let waiting = gw.visitor();
    assert!(!reached_origin(waiting.get(&format!("/echo/{ROOM}")).await).await);
    let status = waiting.status(ROOM).await;
    assert_eq!(status["state"], "waiting", "{status}");
    assert_eq!(status["site"], "ok", "{status}");
    assert!(status["eta_seconds"].is_u64(), "{status}");

    let knocking = knock(&inside, ROOM);
    site.close();
    let down = until(&gw, ROOM, "the site is in trouble", |adaptive| {
        adaptive["trouble"] == true
    })
    .await;
    assert_eq!(down["reason"], "site_down", "{down}");
    assert_eq!(
        down["pace"].as_f64(),
        down["min_admit_per_minute"].as_f64(),
        "{down}"
    );
    assert_eq!(down["pace"], 60.0, "{down}");
    poll("the waiting visitor is told", || async {
        waiting.status(ROOM).await["site"] == "trouble"
    })
    .await;
    let status = waiting.status(ROOM).await;
    assert_eq!(status["state"], "waiting", "the place is kept: {status}");
    assert_eq!(status["eta_seconds"], Value::Null, "no estimate: {status}");

    site.reopen().await;
    let back = until(&gw, ROOM, "the trouble clears by itself", |adaptive| {
        adaptive["trouble"] == false
    })
    .await;
    assert_ne!(back["reason"], "site_down", "{back}");
    poll("the waiting visitor is told", || async {
        waiting.status(ROOM).await["site"] == "ok"
    })
    .await;
    let status = waiting.status(ROOM).await;
    assert_eq!(status["state"], "waiting", "{status}");
    assert!(
        status["eta_seconds"].is_u64(),
        "an estimate again: {status}"
    );
    knocking.stop();
}

/// Two gateways on one Redis run one controller: both report (`gateways`
/// 2) and show the same pace. One stops: its report leaves the sum
/// (`gateways` 1) and the other's figures alone go on driving the pace (a
/// site failing behind it is found down), so the silent gateway neither
/// freezes nor skews it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_shares_one_pace_and_a_silent_gateway_leaves_it() {
    const ROOM: &str = "fleet";
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let mut site = TcpProxy::start(up.addr).await;
    let fleet_room = || room(ROOM).capacity(10).adaptive(None);
    let first = gateway_to(&format!("http://127.0.0.1:{}", site.port))
        .room(fleet_room())
        .redis(&redis)
        .admin_token(TOKEN)
        .start()
        .await;
    let second = gateway(&up)
        .room(fleet_room())
        .redis(&redis)
        .admin_token(TOKEN)
        .start()
        .await;
    let inside_first = first.visitor();
    assert!(reached_origin(inside_first.get(&format!("/echo/{ROOM}")).await).await);
    let inside_second = second.visitor();
    assert!(reached_origin(inside_second.get(&format!("/echo/{ROOM}")).await).await);
    let knocking_first = knock(&inside_first, ROOM);
    let knocking_second = knock(&inside_second, ROOM);

    for gw in [&first, &second] {
        until(gw, ROOM, "both gateways report", |adaptive| {
            adaptive["gateways"] == 2
        })
        .await;
    }
    // One controller: both read the same pace (each at its own report, so
    // a tick may fall between two reads; poll for a moment both agree).
    poll("both gateways show the same pace", || async {
        let (one, two) = (adaptive(&first, ROOM).await, adaptive(&second, ROOM).await);
        one["pace"].is_number() && one["pace"] == two["pace"]
    })
    .await;

    knocking_second.stop();
    second.stop().await;
    until(
        &first,
        ROOM,
        "the silent gateway leaves the sum",
        |adaptive| adaptive["gateways"] == 1,
    )
    .await;
    // The controller goes on ticking on the first gateway's figures alone:
    // its site failing is found down.
    site.close();
    let down = until(
        &first,
        ROOM,
        "the first gateway's site is down",
        |adaptive| adaptive["reason"] == "site_down",
    )
    .await;
    assert_eq!(down["gateways"], 1, "{down}");
    assert_eq!(down["trouble"], true, "{down}");
    assert_eq!(down["pace"], 60.0, "{down}");
    knocking_first.stop();
}

/// The room's places on the request path, two gateways on one Redis, each
/// in front of its own small melting site and pressed by more visitors
/// than the site can take: the shares add up to the controller's places
/// (within rounding, one per gateway), and neither gateway ever has more
/// of the room's requests at its site than the largest share it was given.
///
/// Ignored (run it with `--ignored`): not yet stable. The split follows
/// each gateway's asked requests, which in a closed loop follow its share
/// (more places, more answers, more asks), so one gateway's share can swing
/// to nearly all the places and no longer hold its visitors back; and a
/// gateway was seen, now and then, with one request more at its site than
/// any share it was told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the shares' split swings between gateways; see the comment"]
async fn each_gateway_keeps_to_its_share_of_the_places() {
    const ROOM: &str = "places";
    const PRESSING: usize = 12;
    let redis = RedisServer::start().await;
    let melting = || OriginOptions {
        service_time: Duration::from_millis(50),
        melt: Some(Melt::with_capacity(2)),
        ..OriginOptions::default()
    };
    let sites = [
        upstream_with(melting()).await,
        upstream_with(melting()).await,
    ];
    let mut gateways = Vec::new();
    for site in &sites {
        gateways.push(
            gateway(site)
                .room(room(ROOM).capacity(100).adaptive(None))
                .limits(loose_limits().max_in_flight_upstream(256))
                .redis(&redis)
                .admin_token(TOKEN)
                .start()
                .await,
        );
    }
    // Each gateway has its share before any of the room's requests goes.
    for gw in &gateways {
        until(gw, ROOM, "a share of the places", |adaptive| {
            adaptive["share"].is_u64()
        })
        .await;
    }
    let mut pressing = Vec::new();
    for gw in &gateways {
        for _ in 0..PRESSING {
            let visitor = gw.visitor();
            visitor.get(&format!("/echo/{ROOM}")).await;
            assert_eq!(visitor.status(ROOM).await["state"], "admitted");
            pressing.push(knock(&visitor, ROOM));
        }
    }

    let mut largest_share = [0u64; 2];
    let mut one_tick = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while tokio::time::Instant::now() < deadline {
        if largest_shares(&gateways, ROOM, &mut largest_share).await {
            one_tick += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The sites' figures while the visitors still press (a visitor who
    // goes away gives back a place its site may still be working on), and
    // the shares once more after them: a share given in between counts.
    let mut most = [0u64; 2];
    for (most, site) in most.iter_mut().zip(&sites) {
        *most = site.stats().await["max_concurrency"].as_u64().unwrap();
    }
    largest_shares(&gateways, ROOM, &mut largest_share).await;
    for knocking in pressing {
        knocking.stop();
    }
    for index in 0..2 {
        assert!(
            most[index] <= largest_share[index],
            "gateway {index} had {} requests at its site, its share at most {}",
            most[index],
            largest_share[index]
        );
        assert!(
            most[index] >= 2,
            "the visitors pressed on the site ({} at once at most)",
            most[index]
        );
        assert!(
            (largest_share[index] as usize) < PRESSING,
            "the share {} held the visitors back",
            largest_share[index]
        );
    }
    assert!(one_tick > 0, "the shares of one tick were compared");
}

/// Reads both gateways' shares and keeps the largest of each; when both
/// come from one tick, checks that they add up to its places within
/// rounding (one per gateway), and says so.
async fn largest_shares(
    gateways: &[GatewayHandle],
    room: &str,
    largest_share: &mut [u64; 2],
) -> bool {
    let seen = [
        adaptive(&gateways[0], room).await,
        adaptive(&gateways[1], room).await,
    ];
    let shares = seen
        .each_ref()
        .map(|adaptive| adaptive["share"].as_u64().unwrap());
    for (largest, share) in largest_share.iter_mut().zip(shares) {
        *largest = (*largest).max(share);
    }
    // Each gateway is told its share at its own report, so the two may
    // come from two ticks (whose splits differ); shares from one tick (the
    // same figures) add up to its places within rounding.
    let tick = |adaptive: &Value| {
        ["places", "p90_ms", "site_p50_ms", "error_rate", "gateways"]
            .map(|key| adaptive[key].clone())
    };
    if tick(&seen[0]) != tick(&seen[1]) {
        return false;
    }
    let places = seen[0]["places"].as_f64().unwrap();
    assert!(
        shares.iter().sum::<u64>() <= places.ceil() as u64 + 2,
        "shares {shares:?} over the places {places}: {seen:?}"
    );
    true
}

// ---------------------------------------------------------------- helpers

/// A visitor asking for the room's page again and again, until stopped.
struct Knocking {
    stop: Arc<AtomicBool>,
}

impl Knocking {
    /// Asks no more once the request under way is answered (not cut: a
    /// request cut at the gateway gives its place back while its site may
    /// still be working on it).
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn knock(visitor: &Visitor, room: &str) -> Knocking {
    let stop = Arc::new(AtomicBool::new(false));
    let visitor = visitor.clone();
    let path = format!("/echo/{room}/page");
    tokio::spawn({
        let stop = stop.clone();
        async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(response) = visitor.client.get(visitor.url(&path)).send().await {
                    let _ = response.bytes().await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    Knocking { stop }
}

async fn patch(gw: &GatewayHandle, room: &str, change: &Value) -> reqwest::Response {
    plain_client()
        .patch(gw.admin_url(&format!("/admin/rooms/{room}")))
        .bearer_auth(TOKEN)
        .json(change)
        .send()
        .await
        .expect("the admin API answers")
}

/// `GET /admin/rooms/NAME`.
async fn figures(gw: &GatewayHandle, room: &str) -> Value {
    plain_client()
        .get(gw.admin_url(&format!("/admin/rooms/{room}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("the admin API answers")
        .json()
        .await
        .expect("the room's figures")
}

/// The room's `adaptive` object.
async fn adaptive(gw: &GatewayHandle, room: &str) -> Value {
    figures(gw, room).await["adaptive"].clone()
}

/// Polls the room's `adaptive` object until `check` holds; returns it.
async fn until(
    gw: &GatewayHandle,
    room: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let adaptive = adaptive(gw, room).await;
        if check(&adaptive) {
            return adaptive;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}: {adaptive}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until `check` holds, for at most [`PATIENCE`].
async fn poll<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metrics(gw: &GatewayHandle) -> String {
    let response = plain_client()
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .expect("the admin listener answers");
    assert_eq!(response.status(), 200);
    response.text().await.expect("the metrics text")
}

/// Every `anteroom_room_adaptive_reason` sample of `room`: (reason, value).
fn reasons(text: &str, room: &str) -> Vec<(String, f64)> {
    let room_label = format!("room=\"{room}\"");
    text.lines()
        .filter(|line| line.starts_with("anteroom_room_adaptive_reason{"))
        .filter(|line| line.contains(&room_label))
        .filter_map(|line| {
            let reason = line.split("reason=\"").nth(1)?.split('"').next()?;
            let value = line.rsplit(' ').next()?.parse().ok()?;
            Some((reason.to_owned(), value))
        })
        .collect()
}
