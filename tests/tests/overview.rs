//! `GET /admin/overview` after a scripted scenario: the rooms' and buffers'
//! figures are those of `/admin/rooms` and `/admin/buffers`, and the
//! upstream's counters count exactly the responses and errors there were.
//! One test in this file: the upstream counters are per process (like the
//! metrics recorder), and this file is its own process.

use anteroom_bench::origin::OriginOptions;
use anteroom_tests::{
    Buffer, eventually, free_port, gateway, gateway_to, plain_client, reached_origin, room,
    upstream_with,
};
use serde_json::Value;

const TOKEN: &str = "overview-token-0123456789abcdef";

async fn admin_get(gw: &anteroom_tests::GatewayHandle, path: &str) -> Value {
    let response = plain_client()
        .get(gw.admin_url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin answers");
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_tells_the_story() {
    let up = upstream_with(OriginOptions {
        slot_capacity: 1_000,
        ..OriginOptions::default()
    })
    .await;
    let gw = gateway(&up)
        .room(
            room("vaccini")
                .paths(&["/echo/vaccini", "/api/"])
                .capacity(3),
        )
        .buffer(Buffer::new("bookings", "vaccini", "/api/bookings", 1000))
        .admin_token(TOKEN)
        .start()
        .await;
    // Three visitors inside (three upstream responses), two waiting.
    let inside: Vec<_> = (0..3).map(|_| gw.visitor()).collect();
    for visitor in &inside {
        assert!(reached_origin(visitor.get("/echo/vaccini").await).await);
    }
    for _ in 0..2 {
        assert!(!reached_origin(gw.visitor().get("/echo/vaccini").await).await);
    }
    // Four bookings, stored and applied by the embedded drain (which does
    // not go through the proxy, so they are not upstream responses here).
    for name in ["Ada", "Bea", "Cloe", "Dino"] {
        let response = inside[0]
            .client
            .post(inside[0].url("/api/bookings"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"name":"{name}","slot":"2021-03-01T09:00"}}"#))
            .send()
            .await
            .expect("booking");
        assert_eq!(response.status(), 202);
    }
    eventually("the four bookings are applied", || async {
        admin_get(&gw, "/admin/buffers/bookings").await["done"] == 4
    })
    .await;
    // Two requests to a site that is down: two `unreachable` errors.
    let down = gateway_to(&format!("http://127.0.0.1:{}", free_port()))
        .admin_token(TOKEN)
        .start()
        .await;
    for _ in 0..2 {
        assert_eq!(down.visitor().get("/anywhere").await.status(), 502);
    }
    gw.settle().await;

    let overview = admin_get(&gw, "/admin/overview").await;
    let room = &overview["rooms"][0];
    let listed = admin_get(&gw, "/admin/rooms/vaccini").await;
    for figure in [
        "name",
        "state",
        "capacity",
        "admit_per_minute",
        "configured",
        "waiting",
        "inside",
        "arriving",
        "tickets_issued",
        "admitted_through",
    ] {
        assert_eq!(room[figure], listed[figure], "{figure}");
    }
    assert_eq!(
        (room["inside"].as_u64(), room["waiting"].as_u64()),
        (Some(3), Some(2))
    );
    // Adaptive admission, off for this room: its settings, no figures.
    assert_eq!(room["adaptive"]["enabled"], listed["adaptive"]["enabled"]);
    assert_eq!(room["adaptive"]["enabled"], false, "{room}");
    assert_eq!(room["adaptive"]["reason"], "off", "{room}");
    assert_eq!(room["adaptive"]["trouble"], false, "{room}");
    assert_eq!(
        room["adaptive"]["ceiling"], room["admit_per_minute"],
        "{room}"
    );
    assert_eq!(room["adaptive"]["latency_p90_ms"], 1000, "{room}");

    let buffer = &overview["buffers"][0];
    let buffers = admin_get(&gw, "/admin/buffers").await;
    assert_eq!(*buffer, buffers["buffers"][0]);
    assert_eq!(buffer["done"], 4);
    assert_eq!(buffer["accepted"], 4);
    assert_eq!(buffer["depth"], 0);
    assert!(buffer.get("dead_letters").is_none(), "{buffer}");

    // The upstream counters are the process's: both gateways' requests.
    let upstream = &overview["upstream"];
    assert_eq!(upstream["responses"], 3, "{upstream}");
    assert!(
        upstream["response_seconds_sum"].as_f64().expect("a sum") > 0.0,
        "{upstream}"
    );
    assert_eq!(upstream["errors"]["unreachable"], 2, "{upstream}");
    for kind in ["timeout", "busy", "body_too_large", "client_body"] {
        assert_eq!(upstream["errors"][kind], 0, "{kind}: {upstream}");
    }
    assert_eq!(upstream["in_flight"], 0);
    assert_eq!(upstream["max_in_flight"], 1024);
    assert_eq!(
        admin_get(&down, "/admin/overview").await["upstream"]["errors"]["unreachable"],
        2
    );
}
