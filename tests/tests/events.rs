//! `/_anteroom/events`: a waiting visitor's place as Server-Sent Events,
//! from the gateway's cached figures; the stream ends at the visitor's turn
//! and on shutdown, and the number of streams is bounded.

use std::time::Duration;

use anteroom_tests::{gateway, loose_limits, reached_origin, room, upstream};
use futures::StreamExt;

const ROOM: &str = "/echo/vaccini";
const EVENTS: &str = "/_anteroom/events?room=vaccini";
/// Bounds each wait for an event; the tests assert what arrives, not when.
const PATIENCE: Duration = Duration::from_secs(30);

/// Reads a stream's text until `pattern` has arrived (or the stream ends);
/// returns everything read.
async fn read_until(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    seen: &mut String,
    pattern: &str,
) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !seen.contains(pattern) {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(_) => return seen.contains(pattern),
            Err(_) => panic!("no {pattern:?} within {PATIENCE:?}; got {seen:?}"),
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_visitor_follows_its_place_and_hears_its_turn() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
    let waiting = gw.visitor();
    assert!(!reached_origin(waiting.get(ROOM).await).await);
    gw.settle().await;

    let response = waiting.get(EVENTS).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\n\n").await;
    assert!(seen.starts_with("retry: "), "{seen}");
    read_until(&mut stream, &mut seen, "data: {").await;
    read_until(&mut stream, &mut seen, "}\n\n").await;
    let data = seen
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("a data line");
    let status: serde_json::Value = serde_json::from_str(data).expect("status JSON");
    assert_eq!(status["state"], "waiting", "{status}");
    assert_eq!(status["position"], 1, "{status}");
    assert_eq!(status["room"], "vaccini");

    // The visitor inside leaves: the stream says the turn has come, and ends.
    inside.leave("vaccini").await;
    assert!(read_until(&mut stream, &mut seen, "event: turn\n").await);
    let rest = tokio::time::timeout(PATIENCE, async {
        while let Some(chunk) = stream.next().await {
            chunk.expect("the stream ends cleanly");
        }
    })
    .await;
    assert!(rest.is_ok(), "the stream ends after the turn");
    // The page then asks for its status, which lets it in.
    assert_eq!(waiting.status("vaccini").await["state"], "admitted");
    assert!(reached_origin(waiting.get(ROOM).await).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ticket_there_is_nothing_to_follow() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini")).start().await;
    let stranger = gw.visitor();
    let response = stranger.get(EVENTS).await;
    assert_eq!(response.status(), 204);
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
    assert_eq!(
        inside.get(EVENTS).await.status(),
        204,
        "a pass is not a place"
    );
    assert_eq!(
        stranger.post(EVENTS).await.status(),
        405,
        "only GET opens a stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_bounded_and_end_when_the_gateway_stops() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .limits(loose_limits().max_event_streams(1))
        .start()
        .await;
    assert!(reached_origin(gw.visitor().get(ROOM).await).await);
    let first = gw.visitor();
    let second = gw.visitor();
    assert!(!reached_origin(first.get(ROOM).await).await);
    assert!(!reached_origin(second.get(ROOM).await).await);
    gw.settle().await;

    let open = first.get(EVENTS).await;
    assert_eq!(open.status(), 200);
    let refused = second.get(EVENTS).await;
    assert_eq!(refused.status(), 503, "one stream at most");
    assert!(refused.headers().contains_key("retry-after"));

    let mut stream = open.bytes_stream();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "data: {").await;
    let stopping = tokio::spawn(gw.stop());
    let ended = tokio::time::timeout(PATIENCE, async {
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ends on shutdown");
    stopping.await.expect("the gateway stops");
}

/// A stream sleeps until the line moves or the room's state changes: a
/// pause reaches it at once (the page says so), with the place kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_the_rooms_state_reaches_the_stream() {
    const TOKEN: &str = "events-admin-token-0123456789";
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .admin_token(TOKEN)
        .start()
        .await;
    assert!(reached_origin(gw.visitor().get(ROOM).await).await);
    let waiting = gw.visitor();
    assert!(!reached_origin(waiting.get(ROOM).await).await);
    gw.settle().await;

    let mut stream = waiting.get(EVENTS).await.bytes_stream();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\"room_state\":\"open\"").await;
    let paused = anteroom_tests::plain_client()
        .patch(gw.admin_url("/admin/rooms/vaccini"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"state": "paused"}))
        .send()
        .await
        .expect("the admin API answers");
    assert_eq!(paused.status(), 200);
    read_until(&mut stream, &mut seen, "\"room_state\":\"paused\"").await;
    let data = seen
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("a data line");
    let status: serde_json::Value = serde_json::from_str(data).expect("status JSON");
    assert_eq!(status["position"], 1, "the place is kept: {status}");
}

/// One ticket holds a few streams (a visitor's tabs), not
/// `max_event_streams`: one more replaces the oldest, which hears that it
/// was replaced (its page then polls) and ends; the others keep following.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_holds_a_few_streams_and_a_new_one_replaces_the_oldest() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .limits(loose_limits().max_event_streams(6))
        .start()
        .await;
    assert!(reached_origin(gw.visitor().get(ROOM).await).await);
    let waiting = gw.visitor();
    assert!(!reached_origin(waiting.get(ROOM).await).await);
    gw.settle().await;

    let mut streams = Vec::new();
    for _ in 0..4 {
        let response = waiting.get(EVENTS).await;
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        let mut seen = String::new();
        read_until(&mut stream, &mut seen, "data: {").await;
        streams.push((stream, seen));
    }
    // A fifth, and a sixth: each takes the place of the oldest.
    for _ in 0..2 {
        let response = waiting.get(EVENTS).await;
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        let mut seen = String::new();
        read_until(&mut stream, &mut seen, "data: {").await;
        streams.push((stream, seen));
    }
    for (index, (stream, seen)) in streams.iter_mut().enumerate().take(2) {
        assert!(
            read_until(stream, seen, "event: replaced\n").await,
            "stream {index} is replaced"
        );
        let ended = tokio::time::timeout(PATIENCE, async {
            while let Some(chunk) = stream.next().await {
                chunk.expect("the stream ends cleanly");
            }
        })
        .await;
        assert!(ended.is_ok(), "a replaced stream ends");
    }
    // Six streams were opened against a bound of six, yet two were given
    // back: another visitor still gets one.
    let other = gw.visitor();
    assert!(!reached_origin(other.get(ROOM).await).await);
    gw.settle().await;
    assert_eq!(other.get(EVENTS).await.status(), 200);
}
