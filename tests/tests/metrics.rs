//! `/metrics` after a scripted scenario: 10 visitors inside, 5 waiting, a
//! few other requests; the figures say exactly so. One test in this file:
//! the metrics recorder is per process, and this file is its own process.

use anteroom_tests::{gateway, reached_origin, room, sample, upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_tell_the_rooms_story() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(10))
        .start()
        .await;
    let inside: Vec<_> = (0..10).map(|_| gw.visitor()).collect();
    for visitor in &inside {
        assert!(reached_origin(visitor.get("/echo/vaccini").await).await);
    }
    let waiting: Vec<_> = (0..5).map(|_| gw.visitor()).collect();
    for visitor in &waiting {
        assert!(!reached_origin(visitor.get("/echo/vaccini").await).await);
    }
    for _ in 0..3 {
        assert!(reached_origin(gw.visitor().get("/echo/elsewhere").await).await);
    }
    assert_eq!(gw.visitor().get("/_anteroom/nothing").await.status(), 404);
    gw.settle().await;

    let response = reqwest::get(gw.admin_url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let room = [("room", "vaccini")];
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels)
            .unwrap_or_else(|| panic!("{name} {labels:?} missing in:\n{text}"))
    };
    assert_eq!(value("anteroom_room_inside", &room), 10.0);
    assert_eq!(value("anteroom_room_waiting", &room), 5.0);
    assert_eq!(value("anteroom_room_capacity", &room), 10.0);
    assert_eq!(value("anteroom_room_tickets_issued_total", &room), 15.0);
    assert_eq!(value("anteroom_room_admitted_total", &room), 10.0);
    assert_eq!(value("anteroom_room_no_shows_total", &room), 0.0);
    assert_eq!(value("anteroom_room_sessions_expired_total", &room), 0.0);
    assert_eq!(value("anteroom_room_direct_entries_total", &room), 10.0);
    assert_eq!(
        value(
            "anteroom_room_state",
            &[("room", "vaccini"), ("state", "open")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "anteroom_room_state",
            &[("room", "vaccini"), ("state", "paused")]
        ),
        0.0
    );
    assert!(value("anteroom_room_eta_seconds", &room) > 0.0);
    let requests = |route: &str, outcome: &str| {
        value(
            "anteroom_requests_total",
            &[("route", route), ("outcome", outcome)],
        )
    };
    assert_eq!(requests("vaccini", "proxied"), 10.0);
    assert_eq!(requests("vaccini", "waiting"), 5.0);
    assert_eq!(requests("passthrough", "proxied"), 3.0);
    assert_eq!(requests("anteroom", "rejected"), 1.0);
    assert_eq!(value("anteroom_upstream_response_seconds_count", &[]), 13.0);
    assert_eq!(value("anteroom_store_reachable", &[]), 1.0);
    // The memory store keeps time on the gateway's own clock.
    let offset = value("anteroom_store_clock_offset_seconds", &[]);
    assert!(offset.abs() < 0.5, "{offset}");
    assert_eq!(value("anteroom_upstream_in_flight", &[]), 0.0);
    // Labels never carry a path or an address.
    assert!(!text.contains("/echo"), "{text}");
    assert!(!text.contains("127.0.0.1"), "{text}");
}
