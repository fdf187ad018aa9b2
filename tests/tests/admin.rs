//! The admin API: authentication, each change, and a change made on one
//! gateway reaching another and surviving a restart (shared Redis).

use std::time::Duration;

use anteroom_tests::{GatewayHandle, RedisServer, gateway, reached_origin, room, upstream};
use serde_json::{Value, json};

const TOKEN: &str = "admin-token-0123456789abcdef";
const ROOM: &str = "/echo/vaccini";

async fn patch(gw: &GatewayHandle, change: Value, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .patch(gw.admin_url("/admin/rooms/vaccini"))
        .json(&change);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("admin answers")
}

async fn figures(gw: &GatewayHandle) -> Value {
    reqwest::Client::new()
        .get(gw.admin_url("/admin/rooms/vaccini"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin answers")
        .json()
        .await
        .expect("JSON figures")
}

/// Polls `check` on a gateway's figures until it holds (changes reach every
/// gateway at its next step, every 100 ms).
async fn eventually(gw: &GatewayHandle, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..50 {
        let figures = figures(gw).await;
        if check(&figures) {
            return figures;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never held: {}", figures(gw).await);
}

#[tokio::test]
async fn the_admin_api_needs_the_token() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini"))
        .admin_token(TOKEN)
        .start()
        .await;
    let client = reqwest::Client::new();
    let anonymous = client
        .get(gw.admin_url("/admin/rooms"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let wrong = client
        .get(gw.admin_url("/admin/rooms"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(patch(&gw, json!({"capacity": 5}), None).await.status(), 401);
    assert_eq!(
        patch(&gw, json!({"capacity": 5}), Some("almost-the-token"))
            .await
            .status(),
        401
    );
    let listed: Value = client
        .get(gw.admin_url("/admin/rooms"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["rooms"][0]["name"], "vaccini");
    assert_eq!(listed["rooms"][0]["state"], "open");
    // Health needs no token.
    assert_eq!(
        client
            .get(gw.admin_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn without_a_token_the_api_only_reads() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini")).start().await;
    let read = reqwest::get(gw.admin_url("/admin/rooms/vaccini"))
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(
        patch(&gw, json!({"capacity": 5}), Some(TOKEN))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn bad_changes_get_400_and_change_nothing() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(3))
        .admin_token(TOKEN)
        .start()
        .await;
    for bad in [
        json!({}),
        json!({"capacity": 0}),
        json!({"state": "ajar"}),
        json!({"capacty": 2}),
    ] {
        assert_eq!(
            patch(&gw, bad.clone(), Some(TOKEN)).await.status(),
            400,
            "{bad}"
        );
    }
    assert_eq!(figures(&gw).await["capacity"], 3);
    let unknown = reqwest::Client::new()
        .get(gw.admin_url("/admin/rooms/nope"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// Pausing stops admissions (waiting visitors keep their places), closing
/// stops new places too, reopening lets the line move in order, and a larger
/// capacity lets more in. Changed on one gateway, seen by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_steer_the_room_on_every_gateway() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let one = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .admin_token(TOKEN)
        .start()
        .await;
    let two = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .admin_token(TOKEN)
        .start()
        .await;
    let inside = one.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
    let waiting = two.visitor();
    assert!(!reached_origin(waiting.get(ROOM).await).await);

    // Pause on one; the other sees it.
    let paused = patch(&one, json!({"state": "paused"}), Some(TOKEN)).await;
    assert_eq!(paused.status(), 200);
    eventually(&two, |f| f["state"] == "paused").await;
    inside.leave("vaccini").await;
    one.settle().await;
    let status = waiting.status("vaccini").await;
    assert_eq!(status["state"], "waiting", "paused: nobody is let in");
    assert_eq!(status["position"], 1, "and nobody loses their place");
    assert_eq!(status["room_state"], "paused");
    let page = waiting.get(ROOM).await.text().await.expect("waiting page");
    assert!(
        page.contains("id=\"anteroom-paused\" class=\"notice\">Entry is paused"),
        "the waiting page says the room is paused: {page}"
    );

    // Closed: a newcomer gets no place; the one waiting keeps theirs.
    patch(&two, json!({"state": "closed"}), Some(TOKEN)).await;
    eventually(&one, |f| f["state"] == "closed").await;
    let newcomer = one.visitor();
    let refused = newcomer.get(ROOM).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().get("set-cookie").is_none());
    assert_eq!(waiting.status("vaccini").await["position"], 1);

    // Open with room for two: the waiting visitor goes in.
    let opened: Value = patch(&one, json!({"state": "open", "capacity": 2}), Some(TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(opened["capacity"], 2);
    eventually(&two, |f| f["state"] == "open" && f["capacity"] == 2).await;
    two.settle().await;
    assert_eq!(waiting.status("vaccini").await["state"], "admitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_survive_a_gateway_restart() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let first = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .admin_token(TOKEN)
        .start()
        .await;
    assert_eq!(
        patch(
            &first,
            json!({"capacity": 7, "admit_per_minute": 90}),
            Some(TOKEN)
        )
        .await
        .status(),
        200
    );
    first.stop().await;
    let second = gateway(&up)
        .room(room("vaccini").capacity(1))
        .redis(&redis)
        .admin_token(TOKEN)
        .start()
        .await;
    let figures = eventually(&second, |f| f["capacity"] == 7).await;
    assert_eq!(figures["admit_per_minute"], 90);
    assert_eq!(figures["configured"]["capacity"], 1);
}

// ---------------------------------------------------------------- dashboard

#[tokio::test]
async fn the_overview_needs_the_token_as_the_rooms_do() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini"))
        .admin_token(TOKEN)
        .start()
        .await;
    let client = reqwest::Client::new();
    let overview = gw.admin_url("/admin/overview");
    let anonymous = client.get(&overview).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let wrong = client
        .get(&overview)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let changed = client
        .post(&overview)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 405);
    let answer = client
        .get(&overview)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let overview: Value = answer.json().await.unwrap();
    assert_eq!(overview["admin_token_configured"], true);
    assert_eq!(overview["store_reachable"], true);
    assert_eq!(overview["rooms"][0]["name"], "vaccini");
    assert_eq!(overview["buffers"], json!([]));
    assert_eq!(overview["buffers_error"], Value::Null);
    let upstream = &overview["upstream"];
    for figure in ["in_flight", "max_in_flight", "responses"] {
        assert!(upstream[figure].is_u64(), "{figure}: {upstream}");
    }
    assert!(upstream["response_seconds_sum"].is_f64(), "{upstream}");
    let kinds: Vec<&String> = upstream["errors"].as_object().unwrap().keys().collect();
    assert_eq!(
        kinds.len(),
        5,
        "every kind of upstream error is listed: {kinds:?}"
    );
}

#[tokio::test]
async fn without_a_token_the_overview_reads() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini")).start().await;
    let answer = reqwest::get(gw.admin_url("/admin/overview")).await.unwrap();
    assert_eq!(answer.status(), 200);
    let overview: Value = answer.json().await.unwrap();
    assert_eq!(overview["admin_token_configured"], false);
    assert_eq!(overview["rooms"][0]["state"], "open");
}

/// The page itself carries no data and needs no token; its policy allows
/// its own inline script and style by hash and requests to this listener
/// only.
#[tokio::test]
async fn the_dashboard_page_is_self_contained_and_strict() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini"))
        .admin_token(TOKEN)
        .start()
        .await;
    let client = reqwest::Client::new();
    for path in ["/admin/", "/admin/dashboard"] {
        let page = client.get(gw.admin_url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(
            page.headers()["content-type"],
            "text/html; charset=utf-8",
            "{path}"
        );
        let policy = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        for directive in [
            "default-src 'none'",
            "script-src 'sha256-",
            "style-src 'sha256-",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'none'",
        ] {
            assert!(policy.contains(directive), "{directive} in {policy}");
        }
        assert!(!policy.contains("unsafe"), "{policy}");
        assert_eq!(page.headers()["x-content-type-options"], "nosniff");
        let html = page.text().await.unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{path}");
        assert!(
            html.contains("/admin/overview"),
            "the page polls the overview"
        );
        assert!(
            !html.contains("vaccini"),
            "the page shell carries no figures"
        );
        assert!(!html.contains(TOKEN));
    }
    let posted = client.post(gw.admin_url("/admin/")).send().await.unwrap();
    assert_eq!(posted.status(), 405);
}
