//! The dashboard in a real headless Chromium, driven through chromedriver:
//! the page loads, asks for the token, shows the figures the admin API
//! gives, changes a room with its controls, refuses a wrong token, and
//! makes no request outside the gateway.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`,
//! `chromium-driver`; `scripts/test` installs them when missing). Without
//! them these tests fail, never skip.

use anteroom_config::schedule::{format_instant, time_zone};
use anteroom_tests::browser::{Browser, attribute, click, exists, text, type_into, until};
use anteroom_tests::{
    GatewayHandle, TcpProxy, gateway, gateway_to, plain_client, reached_origin, room, upstream,
};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

const TOKEN: &str = "dashboard-token-0123456789abcdef";

/// The dashboard test's scenario: a room with 3 visitors inside (all its
/// capacity) and 2 waiting.
async fn busy_room(gw: &GatewayHandle) {
    for _ in 0..3 {
        assert!(reached_origin(gw.visitor().get("/echo/vaccini").await).await);
    }
    for _ in 0..2 {
        assert!(!reached_origin(gw.visitor().get("/echo/vaccini").await).await);
    }
    gw.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_figures_and_steers_the_room() {
    let up = upstream().await;
    // Beside it, room `evento` in its pre-queue: opening in a day.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let rome = time_zone("Europe/Rome").expect("a zone");
    let gw = gateway(&up)
        .room(room("vaccini").capacity(3))
        .room(
            room("evento")
                .pre_queue_from(&format_instant(now - 3_600_000, &rome))
                .opens_at(&format_instant(now + 86_400_000, &rome)),
        )
        .admin_token(TOKEN)
        .start()
        .await;
    busy_room(&gw).await;
    gw.visitor().get("/echo/evento").await;
    let api = figures(&gw).await;
    assert_eq!(
        (api["inside"].as_u64(), api["waiting"].as_u64()),
        (Some(3), Some(2))
    );

    let browser = Browser::open().await;
    let page = &browser.client;
    page.goto(&gw.admin_url("/admin/"))
        .await
        .expect("the page loads");
    assert_eq!(page.title().await.expect("a title"), "anteroom dashboard");
    // Without a token the page says it needs one, and shows nothing.
    until("the page asks for the token", async || {
        (attribute(page, "#auth-status", "data-state")
            .await
            .as_deref()
            == Some("needed"))
        .then_some(())
    })
    .await;
    assert!(!exists(page, "section[data-room]").await);

    // A wrong token: an error, and still no figures.
    type_into(page, "#token", "not-the-token").await;
    click(page, "#token-use").await;
    until("a wrong token is refused", async || {
        (attribute(page, "#auth-status", "data-state")
            .await
            .as_deref()
            == Some("refused"))
        .then_some(())
    })
    .await;
    let refusal = text(page, "#auth-status").await;
    assert!(refusal.contains("refused"), "{refusal}");
    assert!(!exists(page, "section[data-room]").await);

    // The right token: the figures shown are the admin API's.
    type_into(page, "#token", TOKEN).await;
    click(page, "#token-use").await;
    until("the page shows the API's figures", async || {
        let api = figures(&gw).await;
        let shown = shown_figures(page).await;
        (shown == expected_figures(&api)).then_some(())
    })
    .await;
    assert_eq!(
        shown_figures(page).await,
        json!({"waiting": "2", "inside": "3", "capacity": "3", "state": "open"})
    );
    // A room without a launch event shows none; the room in its pre-queue
    // shows its phase, countdown, crowd, draw and commitment.
    assert_eq!(
        attribute(page, "dl.event[data-room='vaccini']", "hidden")
            .await
            .as_deref(),
        Some("true")
    );
    let event = event_figures(&gw).await;
    assert_eq!(event["phase"], "pre_queue", "{event}");
    let commitment = event["commitment"].as_str().expect("a commitment");
    let shown = until("the page shows the launch event", async || {
        let shown = shown_event(page).await;
        (shown["pre_queue"] == "1 so far").then_some(shown)
    })
    .await;
    assert_eq!(shown["hidden"], false, "{shown}");
    assert_eq!(shown["phase"], "Pre-queue", "{shown}");
    assert_eq!(shown["drawn"], "not yet", "{shown}");
    assert_eq!(
        shown["commitment"],
        format!("{}…", &commitment[..12]),
        "{shown}"
    );
    assert_eq!(shown["commitment_title"], commitment, "{shown}");
    let opens_in = shown["opens_in"].as_str().unwrap_or_default();
    assert!(
        ["23 h 59 min", "24 h 0 min"].contains(&opens_in),
        "a day to the opening: {shown}"
    );
    assert!(
        shown["opens_at"]
            .as_str()
            .is_some_and(|text| text.ends_with(" Europe/Rome")),
        "{shown}"
    );

    // The token stays in the tab, not in the address.
    let stored = page
        .execute(
            "return sessionStorage.getItem('anteroom-admin-token');",
            vec![],
        )
        .await
        .expect("script runs");
    assert_eq!(stored, json!(TOKEN));
    assert!(
        !page
            .current_url()
            .await
            .expect("url")
            .as_str()
            .contains(TOKEN)
    );
    // The charts draw what the polls brought.
    until("the waiting chart has two samples", async || {
        let samples = attribute(
            page,
            "canvas[data-room='vaccini'][data-chart='waiting']",
            "data-samples",
        )
        .await;
        (samples.and_then(|count| count.parse::<u32>().ok()) >= Some(2)).then_some(())
    })
    .await;
    // Adaptive admission is off for this room: one line says so, no
    // adaptive chart, no trouble badge.
    assert_eq!(figures(&gw).await["adaptive"]["enabled"], false);
    assert_eq!(
        text(page, "[data-room='vaccini'][data-adaptive='off']").await,
        "adaptive admission: off"
    );
    for hidden in [
        "[data-room='vaccini'][data-adaptive='on']",
        "[data-room='vaccini'][data-figure='trouble']",
        // Hidden elements stay hidden whatever display the style gives.
        "dl.event[data-room='vaccini']",
    ] {
        assert!(!visible(page, hidden).await, "{hidden}");
    }
    // The inline style applied (its hash is in the policy).
    let display = page
        .execute(
            "return getComputedStyle(document.querySelector('.figures')).display;",
            vec![],
        )
        .await
        .expect("script runs");
    assert_eq!(display, json!("grid"));

    // Pause: the room is paused, as the API says, and the page shows it.
    click(
        page,
        "button[data-room='vaccini'][data-state-button='paused']",
    )
    .await;
    until("the room is paused", async || {
        (figures(&gw).await["state"] == "paused").then_some(())
    })
    .await;
    until("the page shows it paused", async || {
        let pressed = attribute(
            page,
            "button[data-room='vaccini'][data-state-button='paused']",
            "aria-pressed",
        )
        .await;
        (shown_figures(page).await["state"] == "paused" && pressed.as_deref() == Some("true"))
            .then_some(())
    })
    .await;
    assert_eq!(
        attribute(
            page,
            "[data-room='vaccini'][data-figure='change_result']",
            "data-state"
        )
        .await
        .as_deref(),
        Some("ok")
    );

    // A new capacity, applied from the form.
    let capacity = page
        .find(Locator::Css(
            "input[data-room='vaccini'][data-control='capacity']",
        ))
        .await
        .expect("the capacity input");
    capacity.clear().await.expect("clear");
    capacity.send_keys("7").await.expect("type");
    click(page, "button[data-room='vaccini'][data-action='apply']").await;
    until("the capacity is 7", async || {
        (figures(&gw).await["capacity"] == 7).then_some(())
    })
    .await;
    until("the page shows capacity 7", async || {
        (shown_figures(page).await["capacity"] == "7").then_some(())
    })
    .await;

    // Every request the page made went to the gateway's admin listener.
    let requests = page
        .execute(
            "return {origin: location.origin, \
                     resources: performance.getEntriesByType('resource').map(entry => entry.name)};",
            vec![],
        )
        .await
        .expect("script runs");
    let origin = requests["origin"].as_str().expect("an origin");
    assert_eq!(origin, format!("http://{}", gw.admin_addr));
    let resources = requests["resources"].as_array().expect("a list");
    assert!(
        resources.iter().any(|name| name
            .as_str()
            .is_some_and(|name| name.ends_with("/admin/overview"))),
        "the page polled the overview: {resources:?}"
    );
    for name in resources {
        let name = name.as_str().expect("a URL");
        assert!(
            name.starts_with(&format!("{origin}/")),
            "a request outside the gateway: {name}"
        );
    }

    // On a narrow screen nothing sticks out sideways.
    page.set_window_size(390, 844).await.expect("resize");
    until("the page fits a narrow screen", async || {
        let fits = page
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .expect("script runs");
        (fits == json!(true)).then_some(())
    })
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_gateway_token_the_page_reads_and_says_changes_need_one() {
    let up = upstream().await;
    let gw = gateway(&up).room(room("vaccini").capacity(3)).start().await;
    busy_room(&gw).await;

    let browser = Browser::open().await;
    let page = &browser.client;
    page.goto(&gw.admin_url("/admin/dashboard"))
        .await
        .expect("the page loads");
    until(
        "the page shows the API's figures without a token",
        async || {
            let api = figures(&gw).await;
            (shown_figures(page).await == expected_figures(&api)).then_some(())
        },
    )
    .await;
    let note = text(page, "#changes-note").await;
    assert!(note.contains("Changes need an admin token"), "{note}");
    for control in [
        "button[data-room='vaccini'][data-action='apply']",
        "button[data-room='vaccini'][data-state-button='paused']",
        "input[data-room='vaccini'][data-control='capacity']",
    ] {
        let disabled = page
            .find(Locator::Css(control))
            .await
            .expect("the control")
            .prop("disabled")
            .await
            .expect("a property");
        assert_eq!(disabled.as_deref(), Some("true"), "{control}");
    }
    browser.close().await;
}

/// A room with adaptive admission whose site fails every request: the
/// room's header says the site is having trouble, the adaptive figures
/// give the reason, and the pace is charted against its ceiling, the p90
/// against its target and the errors against their limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_charts_adaptive_admission_and_says_when_the_site_has_trouble() {
    let up = upstream().await;
    let mut site = TcpProxy::start(up.addr).await;
    let gw = gateway_to(&format!("http://127.0.0.1:{}", site.port))
        .room(room("vaccini").capacity(1).adaptive(None))
        .admin_token(TOKEN)
        .start()
        .await;
    // One visitor inside, whose requests the site will fail; two waiting.
    let inside = gw.visitor();
    assert!(reached_origin(inside.get("/echo/vaccini").await).await);
    for _ in 0..2 {
        assert!(!reached_origin(gw.visitor().get("/echo/vaccini").await).await);
    }
    gw.settle().await;
    let browser = Browser::open().await;
    let page = &browser.client;
    page.goto(&gw.admin_url("/admin/"))
        .await
        .expect("the page loads");
    type_into(page, "#token", TOKEN).await;
    click(page, "#token-use").await;
    until("the page shows adaptive admission on", async || {
        visible(page, "[data-room='vaccini'][data-adaptive='on']")
            .await
            .then_some(())
    })
    .await;
    assert!(!visible(page, "[data-room='vaccini'][data-adaptive='off']").await);
    assert!(!visible(page, "[data-room='vaccini'][data-figure='trouble']").await);

    // The site fails every request the visitors inside make.
    site.close();
    until(
        "the room's header says the site is having trouble",
        async || {
            inside.get("/echo/vaccini").await;
            let api = figures(&gw).await;
            (api["adaptive"]["trouble"] == true
                && visible(page, "[data-room='vaccini'][data-figure='trouble']").await)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        text(page, "[data-room='vaccini'][data-figure='trouble']").await,
        "site having trouble"
    );
    until("the reason is the site's", async || {
        let reason = attribute(
            page,
            "[data-room='vaccini'][data-adaptive-figure='reason']",
            "data-reason",
        )
        .await;
        (reason.as_deref() == Some("site_down")).then_some(())
    })
    .await;
    assert!(
        text(
            page,
            "[data-room='vaccini'][data-adaptive-figure='changed']"
        )
        .await
        .ends_with(" ago")
    );
    for chart in ["pace", "p90", "error_rate"] {
        until("the adaptive chart has samples", async || {
            let samples = attribute(
                page,
                &format!("canvas[data-room='vaccini'][data-chart='{chart}']"),
                "data-samples",
            )
            .await;
            (samples.and_then(|count| count.parse::<u32>().ok()) >= Some(2)).then_some(())
        })
        .await;
    }

    // The site comes back: the badge goes.
    site.reopen().await;
    until("the badge goes once the site is back", async || {
        inside.get("/echo/vaccini").await;
        (!visible(page, "[data-room='vaccini'][data-figure='trouble']").await).then_some(())
    })
    .await;
    browser.close().await;
}

// ---------------------------------------------------------------- figures

/// Whether the element is there and shown (neither it nor a parent hidden).
async fn visible(page: &Client, selector: &str) -> bool {
    let shown = page
        .execute(
            "const element = document.querySelector(arguments[0]);\
             return !!element && element.getClientRects().length > 0;",
            vec![json!(selector)],
        )
        .await
        .expect("script runs");
    shown == json!(true)
}

async fn figures(gw: &GatewayHandle) -> Value {
    plain_client()
        .get(gw.admin_url("/admin/rooms/vaccini"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin answers")
        .json()
        .await
        .expect("JSON figures")
}

async fn event_figures(gw: &GatewayHandle) -> Value {
    let figures: Value = plain_client()
        .get(gw.admin_url("/admin/rooms/evento"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin answers")
        .json()
        .await
        .expect("JSON figures");
    figures["event"].clone()
}

/// The launch event's figures the page shows for room evento.
async fn shown_event(page: &Client) -> Value {
    page.execute(
        "const list = document.querySelector(\"dl.event[data-room='evento']\");\
         const read = (figure) => {\
             const element = list && list.querySelector(`[data-event-figure='${figure}']`);\
             return element ? element.textContent : null;\
         };\
         const commitment = list && list.querySelector(\"[data-event-figure='commitment']\");\
         return {hidden: list ? list.hidden : null, phase: read('phase'), opens_at: read('opens_at'),\
                 opens_in: read('opens_in'), pre_queue: read('pre_queue'), drawn: read('drawn'),\
                 commitment: read('commitment'), commitment_title: commitment ? commitment.title : null};",
        vec![],
    )
    .await
    .expect("script runs")
}

/// The figures as the page should show them.
fn expected_figures(api: &Value) -> Value {
    let number = |name: &str| api[name].as_u64().map(|value| value.to_string());
    json!({
        "waiting": number("waiting"),
        "inside": number("inside"),
        "capacity": number("capacity"),
        "state": api["state"],
    })
}

/// The figures the page shows for room vaccini, as text (thousands
/// separators removed).
async fn shown_figures(page: &Client) -> Value {
    page.execute(
        "const read = (figure) => {\
             const element = document.querySelector(`[data-room='vaccini'][data-figure='${figure}']`);\
             return element ? element.textContent.replace(/,/g, '') : null;\
         };\
         return {waiting: read('waiting'), inside: read('inside'), capacity: read('capacity'), state: read('state')};",
        vec![],
    )
    .await
    .expect("script runs")
}
