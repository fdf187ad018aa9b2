//! The waiting room end to end, on both backends: direct entry, capacity,
//! strict order, session expiry, no-shows, sleeping tabs, the waiting page.

use std::time::Duration;

use anteroom_gateway::Clock;
use anteroom_tests::{
    Backend, GatewayHandle, RedisServer, Upstream, Visitor, cookie_value, gateway, room,
    set_cookies, upstream,
};
use futures::future::join_all;

/// Runs each scenario against the memory backend and a private Redis.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $scenario() {
                super::$scenario(&anteroom_tests::Backend::Memory).await;
            })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $scenario() {
                let server = anteroom_tests::RedisServer::start().await;
                super::$scenario(&anteroom_tests::Backend::Redis(server.url())).await;
                drop(server);
            })*
        }
    };
}

on_both_backends!(
    capacity_is_never_exceeded_by_500_concurrent_visitors,
    visitors_are_let_in_strictly_in_arrival_order,
    polling_never_changes_a_place,
    an_idle_session_frees_its_slot,
    a_no_show_loses_the_turn_and_the_next_ticket_goes_in,
    a_sleeping_tab_keeps_its_place,
    an_admitted_visitor_is_served_without_a_redirect,
);

const ROOM: &str = "/echo/vaccini";

async fn is_inside(visitor: &Visitor) -> bool {
    anteroom_tests::reached_origin(visitor.get(ROOM).await).await
}

async fn start(
    backend: &Backend,
    up: &Upstream,
    spec: anteroom_tests::Room,
    clock: &Clock,
) -> GatewayHandle {
    gateway(up)
        .room(spec)
        .backend(backend)
        .clock(clock)
        .start()
        .await
}

async fn capacity_is_never_exceeded_by_500_concurrent_visitors(backend: &Backend) {
    let up = upstream().await;
    let gw = start(backend, &up, room("vaccini").capacity(20), &Clock::system()).await;
    let visitors: Vec<Visitor> = (0..500).map(|_| gw.visitor()).collect();
    let outcomes = join_all(visitors.iter().map(is_inside)).await;
    let inside: Vec<usize> = (0..500).filter(|i| outcomes[*i]).collect();
    assert_eq!(inside.len(), 20, "exactly capacity visitors go straight in");

    // Everyone else waits; a few leave and exactly as many come in.
    for index in &inside[..5] {
        visitors[*index].leave("vaccini").await;
    }
    gw.settle().await;
    let statuses = join_all(visitors.iter().map(|v| v.status("vaccini"))).await;
    let admitted = statuses.iter().filter(|s| s["state"] == "admitted").count();
    assert_eq!(admitted, 20, "15 stayed, 5 came in for the 5 who left");
    let waiting = statuses.iter().filter(|s| s["state"] == "waiting").count();
    assert_eq!(waiting, 475);
    let left = statuses.iter().filter(|s| s["state"] == "none").count();
    assert_eq!(left, 5, "those who left hold nothing");
}

async fn visitors_are_let_in_strictly_in_arrival_order(backend: &Backend) {
    let up = upstream().await;
    let gw = start(backend, &up, room("vaccini").capacity(1), &Clock::system()).await;
    let first = gw.visitor();
    assert!(is_inside(&first).await);
    let queue: Vec<Visitor> = (0..8).map(|_| gw.visitor()).collect();
    for (index, visitor) in queue.iter().enumerate() {
        assert!(!is_inside(visitor).await);
        assert_eq!(visitor.position("vaccini").await, Some(index as u64 + 1));
    }
    let mut inside = &first;
    for (turn, next) in queue.iter().enumerate() {
        inside.leave("vaccini").await;
        gw.settle().await;
        // Ask everyone still waiting, last first: only the next in line gets in.
        for (index, visitor) in queue.iter().enumerate().skip(turn).rev() {
            let status = visitor.status("vaccini").await;
            if index == turn {
                assert_eq!(status["state"], "admitted", "visitor {index} is next");
            } else {
                assert_eq!(
                    status["state"], "waiting",
                    "visitor {index} must still wait"
                );
                assert_eq!(status["position"].as_u64(), Some((index - turn) as u64));
            }
        }
        inside = next;
    }
}

async fn polling_never_changes_a_place(backend: &Backend) {
    let up = upstream().await;
    let gw = start(backend, &up, room("vaccini").capacity(1), &Clock::system()).await;
    assert!(is_inside(&gw.visitor()).await);
    let second = gw.visitor();
    let third = gw.visitor();
    assert!(!is_inside(&second).await);
    assert!(!is_inside(&third).await);
    for _ in 0..10 {
        assert!(!is_inside(&third).await, "reloading the page");
        assert_eq!(third.position("vaccini").await, Some(2));
        assert_eq!(second.position("vaccini").await, Some(1));
    }
}

async fn an_idle_session_frees_its_slot(backend: &Backend) {
    let up = upstream().await;
    let clock = Clock::manual();
    let spec = room("vaccini").capacity(1).session_seconds(30);
    let gw = start(backend, &up, spec, &clock).await;
    let idle = gw.visitor();
    assert!(is_inside(&idle).await);
    let waiting = gw.visitor();
    assert!(!is_inside(&waiting).await);
    // Within the session (plus the store's grace): the slot stays taken.
    clock.advance(Duration::from_secs(29));
    gw.settle().await;
    assert_eq!(waiting.status("vaccini").await["state"], "waiting");
    // Past it: the slot goes to the next in line.
    clock.advance(Duration::from_secs(10));
    gw.settle().await;
    assert!(
        is_inside(&waiting).await,
        "the waiting visitor gets the freed slot"
    );
    // The idle visitor's pass has expired: they are new again, and wait.
    assert!(!is_inside(&idle).await);
    assert_eq!(idle.position("vaccini").await, Some(1));
}

async fn a_no_show_loses_the_turn_and_the_next_ticket_goes_in(backend: &Backend) {
    let up = upstream().await;
    let clock = Clock::manual();
    let spec = room("vaccini").capacity(1).arrival_seconds(20);
    let gw = start(backend, &up, spec, &clock).await;
    let first = gw.visitor();
    assert!(is_inside(&first).await);
    let absent = gw.visitor();
    assert!(!is_inside(&absent).await);
    let next = gw.visitor();
    assert!(!is_inside(&next).await);

    first.leave("vaccini").await;
    clock.advance(Duration::from_secs(1));
    gw.settle().await;
    // The absent visitor's turn has come, and the slot is held for them.
    assert_eq!(next.status("vaccini").await["state"], "waiting");
    // Time passes in steps the gateway follows (a single jump would look
    // like an outage, which does not make no-shows).
    for _ in 0..21 {
        clock.advance(Duration::from_secs(1));
        tokio::time::sleep(anteroom_tests::STEP_INTERVAL * 2).await;
    }
    gw.settle().await;
    assert_eq!(next.status("vaccini").await["state"], "admitted");
    // Coming back too late: the old ticket is spent, the visitor is new again.
    assert_eq!(absent.status("vaccini").await["state"], "none");
    assert!(!is_inside(&absent).await);
    assert_eq!(absent.position("vaccini").await, Some(1));
}

async fn a_sleeping_tab_keeps_its_place(backend: &Backend) {
    let up = upstream().await;
    let clock = Clock::manual();
    let gw = start(backend, &up, room("vaccini").capacity(1), &clock).await;
    let active = gw.visitor();
    assert!(is_inside(&active).await);
    let awake = gw.visitor();
    assert!(!is_inside(&awake).await);
    let asleep = gw.visitor();
    assert!(!is_inside(&asleep).await);
    // Twenty minutes pass; the visitor inside keeps browsing, the second in
    // line keeps polling, the third's tab sleeps.
    for _ in 0..5 {
        clock.advance(Duration::from_secs(240));
        assert!(is_inside(&active).await);
        assert_eq!(awake.position("vaccini").await, Some(1));
        // Let the activity report reach the store.
        tokio::time::sleep(
            anteroom_gateway::room::ACTIVITY_FLUSH_INTERVAL + Duration::from_millis(300),
        )
        .await;
    }
    assert_eq!(
        asleep.position("vaccini").await,
        Some(2),
        "the sleeping tab kept its place"
    );
    active.leave("vaccini").await;
    gw.settle().await;
    assert!(is_inside(&awake).await);
    awake.leave("vaccini").await;
    clock.advance(Duration::from_secs(1));
    gw.settle().await;
    assert!(is_inside(&asleep).await);
}

async fn an_admitted_visitor_is_served_without_a_redirect(backend: &Backend) {
    let up = upstream().await;
    let gw = start(backend, &up, room("vaccini").capacity(1), &Clock::system()).await;
    let first = gw.visitor();
    assert!(is_inside(&first).await);
    let second = gw.visitor();
    assert!(!is_inside(&second).await);
    first.leave("vaccini").await;
    gw.settle().await;
    // The page request itself swaps the ticket for a pass and is proxied.
    let response = second.get("/echo/vaccini/page?x=1").await;
    assert_eq!(response.status(), 200);
    assert!(cookie_value(&response, "anteroom_pass_vaccini").is_some());
    let tickets = set_cookies(&response, "anteroom_ticket_vaccini");
    assert!(
        tickets
            .iter()
            .any(|c| c.starts_with("anteroom_ticket_vaccini=;")),
        "the spent ticket is cleared: {tickets:?}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["path"], "/echo/vaccini/page");
}

/// The waiting page: HTML by default, Italian by `Accept-Language`, with the
/// position, no caching, and `Retry-After`.
#[tokio::test]
async fn the_waiting_page_speaks_the_visitors_language() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    assert!(is_inside(&gw.visitor()).await);
    let visitor = gw.visitor();
    let response = visitor
        .client
        .get(gw.url(ROOM))
        .header("accept-language", "it-IT,it;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("lang=\"it\""), "{html}");
    assert!(html.contains("Sei in coda"));
    let english = visitor.get(ROOM).await.text().await.unwrap();
    assert!(english.contains("lang=\"en\""));
    assert!(english.contains("You are in the queue"));
}

/// JSON clients asking for a protected page get the status JSON.
#[tokio::test]
async fn json_clients_get_the_status_instead_of_the_page() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    assert!(is_inside(&gw.visitor()).await);
    let response = gw.visitor().get_json(ROOM).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers().contains_key("retry-after"));
    let status: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status["room"], "vaccini");
    assert_eq!(status["state"], "waiting");
    assert_eq!(status["position"], 1);
    assert!(status["eta_seconds"].as_u64().is_some());
    assert!(status["refresh_seconds"].as_u64().is_some_and(|s| s >= 1));
}

/// Two gateways on one Redis hand out tickets from one sequence and let them
/// in strictly in that order, whichever gateway a visitor talks to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_is_global_across_two_gateways() {
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
    let first = one.visitor();
    assert!(is_inside(&first).await);
    // Arrivals alternate between the gateways.
    let mut queue = Vec::new();
    for index in 0..8 {
        let gw = if index % 2 == 0 { &two } else { &one };
        let visitor = gw.visitor();
        assert!(!is_inside(&visitor).await);
        assert_eq!(
            visitor.position("vaccini").await,
            Some(index + 1),
            "one sequence across gateways"
        );
        queue.push(visitor);
    }
    // Each visitor now polls through the *other* gateway: cookies are
    // signed with the shared key and the order lives in Redis.
    let other: Vec<Visitor> = queue
        .iter()
        .enumerate()
        .map(|(index, visitor)| {
            let gw = if index % 2 == 0 { &one } else { &two };
            visitor.with_base(&gw.url(""))
        })
        .collect();
    let mut inside = first;
    for (turn, _) in queue.iter().enumerate() {
        inside.leave("vaccini").await;
        one.settle().await;
        for (index, visitor) in other.iter().enumerate().skip(turn).rev() {
            let status = visitor.status("vaccini").await;
            let expected = if index == turn { "admitted" } else { "waiting" };
            assert_eq!(
                status["state"], expected,
                "turn {turn}, visitor {index}: {status}"
            );
        }
        inside = other[turn].clone();
    }
}

/// A link cannot make a visitor leave: `GET /_anteroom/leave` only shows a
/// form, and the slot is freed by its POST.
#[tokio::test]
async fn leaving_takes_a_post_not_a_link() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(1)).start().await;
    let inside = gw.visitor();
    assert!(is_inside(&inside).await);
    let waiting = gw.visitor();
    assert!(!is_inside(&waiting).await);

    let asked = inside.get("/_anteroom/leave?room=vaccini").await;
    assert_eq!(asked.status(), 200);
    let form = asked.text().await.unwrap();
    assert!(form.contains("method=\"post\""), "{form}");
    gw.settle().await;
    assert_eq!(
        inside.status("vaccini").await["state"],
        "admitted",
        "a GET changes nothing"
    );
    assert_eq!(waiting.status("vaccini").await["state"], "waiting");

    inside.leave("vaccini").await;
    gw.settle().await;
    assert_eq!(inside.status("vaccini").await["state"], "none");
    assert_eq!(waiting.status("vaccini").await["state"], "admitted");
}
