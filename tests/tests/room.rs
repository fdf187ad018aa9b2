//! The waiting room end to end, on both backends: direct entry, capacity,
//! strict order, session expiry, no-shows, sleeping tabs, the waiting page;
//! and, on Redis, two gateways: one order, and how soon a leave on one
//! reaches the other.

use std::time::Duration;

use anteroom_gateway::Clock;
use anteroom_gateway::room::ACTIVITY_FLUSH_INTERVAL;
use anteroom_tests::{
    Backend, GatewayHandle, RedisServer, STEP_INTERVAL, Upstream, Visitor, cookie_value,
    eventually, gateway, plain_client, room, set_cookies, upstream,
};
use futures::future::join_all;

anteroom_tests::through_a_gateway_on_both_backends!(
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

/// A pass that left on gateway A is honoured by gateway B until B's next
/// activity report that carries it: the store remembers the leave at once,
/// but B hears of it only as the answer to a report (every
/// `ACTIVITY_FLUSH_INTERVAL`, 10 steps), and B only reports a pass it has
/// served. Measured in B's steps, in the order Redis ran the commands
/// (MONITOR), not in time: after B serves the pass that left, B takes at
/// most one report's worth of steps before the report that revokes it, and
/// from then on refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_that_left_on_one_gateway_is_refused_by_another_at_its_next_activity_report() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let a = gateway(&up)
        .room(room("vaccini"))
        .redis(&redis)
        .start()
        .await;
    let b = gateway(&up)
        .room(room("vaccini"))
        .redis(&redis)
        .start()
        .await;
    let client = plain_client();
    let entry = client.get(a.url(ROOM)).send().await.expect("request");
    let pass = cookie_value(&entry, "anteroom_pass_vaccini").expect("straight in");
    let pass = format!("anteroom_pass_vaccini={pass}");
    let state_on_b = || async {
        let status: serde_json::Value = client
            .get(b.url("/_anteroom/status?room=vaccini"))
            .header("cookie", &pass)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("the status JSON");
        status["state"].as_str().unwrap_or_default().to_owned()
    };
    let commands = redis.monitor().await;

    // B serves the pass, and reports it: only B ever reports it (A let it
    // in, which is no activity), so every report of this room is B's.
    assert_eq!(state_on_b().await, "admitted");
    eventually("B reports the pass's activity", || async {
        // Before the leave, every script given `left` is a report.
        commands
            .lines()
            .await
            .iter()
            .any(|line| is_given_left(line))
    })
    .await;
    let lines = commands.lines().await;
    let b_client = lines
        .iter()
        .find(|line| is_given_left(line))
        .and_then(|line| client_of(line))
        .expect("a report names its client")
        .to_owned();

    // The pass leaves through A. B, which holds nothing to report, still
    // honours it: it has not asked the store since.
    let left = client
        .post(a.url("/_anteroom/leave?room=vaccini"))
        .header("cookie", &pass)
        .send()
        .await
        .expect("request");
    assert_eq!(left.status(), 200);
    assert_eq!(state_on_b().await, "admitted", "B has not heard yet");
    let served_after_leaving = commands.mark().await;
    eventually("B refuses the pass that left", || async {
        state_on_b().await != "admitted"
    })
    .await;
    assert_eq!(state_on_b().await, "none", "and keeps refusing it");

    let lines = commands.lines().await;
    // The leave script, A's: it too is given the `left` key.
    let leave = lines
        .iter()
        .position(|line| is_given_left(line) && client_of(line) != Some(b_client.as_str()))
        .expect("the leave reached the store");
    let served = lines
        .iter()
        .position(|line| line.contains(&served_after_leaving))
        .expect("the marker is in the log");
    let revoking = leave
        + lines[leave..]
            .iter()
            .position(|line| is_given_left(line) && client_of(line) == Some(b_client.as_str()))
            .expect("B reported the pass after it left");
    let b_steps = lines[served.min(revoking)..revoking]
        .iter()
        .filter(|line| is_room_script(line) && client_of(line) == Some(b_client.as_str()))
        .count();
    let steps_per_report =
        (ACTIVITY_FLUSH_INTERVAL.as_millis() / STEP_INTERVAL.as_millis()) as usize;
    assert!(
        b_steps <= steps_per_report,
        "B took {b_steps} steps between serving the pass that left and the report that revoked it"
    );
}

/// A MONITOR line of a script given the room's `left` key: an activity
/// report (the touch script) or a leave.
fn is_given_left(line: &str) -> bool {
    line.contains("\"EVAL") && line.contains("\"anteroom:{vaccini}:left\"")
}

/// A MONITOR line of one of the room's scripts that take its three main
/// keys: the step, an arrival, a claim, a change.
fn is_room_script(line: &str) -> bool {
    line.contains("\"EVAL") && line.contains("\"anteroom:{vaccini}:pending\"")
}

/// The client of a MONITOR line: `127.0.0.1:5555` in
/// `+1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" ...`.
fn client_of(line: &str) -> Option<&str> {
    let (_, after) = line.split_once(" [")?;
    let (database_and_client, _) = after.split_once(']')?;
    database_and_client.split_whitespace().nth(1)
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
