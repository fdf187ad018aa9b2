//! A launch event's pages in a real headless Chromium, driven through
//! chromedriver, against a gateway on a manual clock (the gateway's and its
//! store's) in a time zone half an hour off any whole-hour zone
//! (Asia/Kolkata, UTC+05:30), so that a time shown right proves the zone is
//! used: before the pre-queue the page says when the room opens (in the
//! visitor's language) and counts down, with no ticket; it turns into a
//! pre-queue ticket by itself when the pre-queue opens; the pre-queue page
//! shows the ticket, the crowd so far, the countdown, the same-chance
//! sentence and the draw's public record; an opening moved over the admin
//! API shows on the open page without a reload; after the draw the page
//! shows the visitor's place in it. With JavaScript (the script writes the
//! same words as the server) and without (a meta refresh). Also writes the
//! README's screenshots of the two pages.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`,
//! `chromium-driver`; `scripts/test` installs them when missing). Without
//! them these tests fail, never skip.

use anteroom_config::schedule::{format_instant, time_zone};
use anteroom_gateway::Clock;
use anteroom_store::draw::PublicDraw;
use anteroom_tests::browser::{
    Browser, assert_phone_layouts, run, screenshot, set_viewport, until,
};
use anteroom_tests::{GatewayHandle, Upstream, gateway, plain_client, room, upstream};
use fantoccini::Client;
use serde_json::{Value, json};

const ROOM: &str = "vaccini";
const ASKED_FOR: &str = "/echo/vaccini/page?x=1";
const ADMIN_TOKEN: &str = "event-pages-admin-token-0123456789";
const ZONE: &str = "Asia/Kolkata";
/// 2030-03-01T05:00:00Z, a Friday: 10:30 in Kolkata.
const T0: u64 = 1_898_571_600_000;
const HOUR: u64 = 3_600_000;
/// 11:30 in Kolkata.
const PRE_QUEUE_FROM: u64 = T0 + HOUR;
/// 12:30 in Kolkata.
const OPENS_AT: u64 = T0 + 2 * HOUR;
/// 13:30 in Kolkata: where the operator moves the opening.
const MOVED_OPENING: u64 = T0 + 3 * HOUR;

fn rfc3339(at: u64) -> String {
    format_instant(at, &time_zone(ZONE).expect("a zone"))
}

/// A room with a pre-queue from 11:30 and an opening at 12:30 (Kolkata),
/// on `clock`, which starts at 10:30.
async fn event_gateway(up: &Upstream, clock: &Clock) -> GatewayHandle {
    clock.set(T0);
    let gw = gateway(up)
        .room(
            room(ROOM)
                .capacity(1)
                .pre_queue_from(&rfc3339(PRE_QUEUE_FROM))
                .opens_at(&rfc3339(OPENS_AT)),
        )
        .time_zone(ZONE)
        .admin_token(ADMIN_TOKEN)
        .clock(clock)
        .start()
        .await;
    gw.settle().await;
    gw
}

/// Moves the shared clock and waits for the gateway's steps to see it.
async fn at(gw: &GatewayHandle, clock: &Clock, now: u64) {
    clock.set(now);
    gw.settle().await;
}

async fn change_room(gw: &GatewayHandle, change: Value) {
    let response = plain_client()
        .patch(gw.admin_url(&format!("/admin/rooms/{ROOM}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&change)
        .send()
        .await
        .expect("the admin API answers");
    assert_eq!(response.status(), 200, "{change}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_javascript_the_page_follows_the_event_from_before_the_pre_queue_to_the_draw() {
    let up = upstream().await;
    let clock = Clock::manual();
    let gw = event_gateway(&up, &clock).await;
    let browser = Browser::options().language("it-IT,it").open().await;
    let page = &browser.client;
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");

    // Before the pre-queue: when the room opens, in Italian and in
    // Kolkata's time; no place, no ticket.
    let before = until("the not-open page", async || {
        view(page).await.filter(|view| view["page"] == "not_open")
    })
    .await;
    assert_eq!(before["h1"], "Le prenotazioni non sono ancora aperte");
    assert_eq!(before["title"], "Le prenotazioni non sono ancora aperte");
    assert_eq!(before["lang"], "it");
    assert_eq!(before["position"], Value::Null, "no place: {before}");
    assert_eq!(
        ticket_cookies(page).await,
        0,
        "no ticket before the pre-queue"
    );
    // The script writes the same words as the server: blanked, its next
    // poll writes them back, from the status JSON's RFC 3339 times.
    run(
        page,
        "for (const id of ['anteroom-opens', 'anteroom-pre-queue-from', 'anteroom-same-chance'])\
             document.getElementById(id).textContent = '';\
         return null;",
    )
    .await;
    let polled = until("the script writes the opening again", async || {
        view(page).await.filter(|view| view["opens"] != "")
    })
    .await;
    assert_eq!(polled["opens"], "Apre alle 12:30 (venerdì 1 marzo).");
    assert_eq!(
        polled["pre_queue_from"],
        "Dalle 11:30 questa pagina ti darà da sola un biglietto per il sorteggio."
    );
    assert!(
        polled["same_chance"]
            .as_str()
            .is_some_and(|text| text.contains("chi arriva prima delle 12:30")),
        "{polled}"
    );
    // Two hours on the store's clock (which stands still here); the page
    // counts the seconds since the gateway last said.
    assert!(
        ["Apre tra: 2 ore", "Apre tra: 1 ora 59 minuti"]
            .contains(&polled["countdown"].as_str().unwrap_or_default()),
        "{polled}"
    );
    assert_eq!(
        polled["keep"],
        "Tieni aperta questa pagina: ti farà entrare da sola."
    );
    set_viewport(page, 360, 740).await;
    screenshot(page, "event-not-open-phone-it").await;
    assert_phone_layouts(page, "not open, it").await;

    // The pre-queue opens: the page takes its ticket by itself.
    at(&gw, &clock, PRE_QUEUE_FROM).await;
    let ticketed = until("the page takes a pre-queue ticket by itself", async || {
        view(page)
            .await
            .filter(|view| view["position"] == "1" && view["page"] == "waiting")
    })
    .await;
    assert_eq!(ticket_cookies(page).await, 1, "{ticketed}");
    assert_eq!(ticketed["label"], "Il tuo biglietto per il sorteggio: ");
    assert_eq!(
        ticketed["pre_queue"],
        "Persone in attesa del sorteggio finora: 1"
    );
    assert_eq!(ticketed["opens"], "Apre alle 12:30 (venerdì 1 marzo).");
    assert!(
        ["Apre tra: 1 ora", "Apre tra: 59 minuti 59 secondi"]
            .contains(&ticketed["countdown"].as_str().unwrap_or_default()),
        "{ticketed}"
    );
    assert!(
        ticketed["same_chance"]
            .as_str()
            .is_some_and(|text| text.starts_with("Arrivare presto non dà alcun vantaggio")),
        "{ticketed}"
    );
    assert_eq!(
        ticketed["draw_link"],
        format!("/_anteroom/draw?room={ROOM}")
    );
    assert_eq!(ticketed["title"], "Sei in coda");
    screenshot(page, "event-pre-queue-phone-it").await;
    assert_phone_layouts(page, "pre-queue, it").await;
    set_viewport(page, 1280, 800).await;

    // Two more arrive, and the operator moves the opening an hour later:
    // the open page shows the new time, its countdown and the crowd,
    // without a reload.
    run(page, "document.body.dataset.still = 'here'; return null;").await;
    for _ in 0..2 {
        gw.visitor().get(ASKED_FOR).await;
    }
    change_room(&gw, json!({ "opens_at": rfc3339(MOVED_OPENING) })).await;
    let moved = until("the page shows the moved opening", async || {
        view(page)
            .await
            .filter(|view| view["opens"] == "Apre alle 13:30 (venerdì 1 marzo).")
    })
    .await;
    assert!(
        ["Apre tra: 2 ore", "Apre tra: 1 ora 59 minuti"]
            .contains(&moved["countdown"].as_str().unwrap_or_default()),
        "{moved}"
    );
    assert!(
        moved["same_chance"]
            .as_str()
            .is_some_and(|text| text.contains("chi arriva prima delle 13:30")),
        "{moved}"
    );
    assert_eq!(
        moved["pre_queue"],
        "Persone in attesa del sorteggio finora: 3"
    );
    assert_eq!(moved["still"], "here", "no reload: {moved}");

    // The opening, with entry paused so that nobody is let in: the draw
    // is made, and the page shows the visitor's place in it, in place.
    change_room(&gw, json!({ "state": "paused" })).await;
    at(&gw, &clock, MOVED_OPENING).await;
    let draw: PublicDraw = gw
        .visitor()
        .get(&format!("/_anteroom/draw?room={ROOM}"))
        .await
        .json()
        .await
        .expect("the draw's JSON");
    let place = draw
        .verify()
        .expect("the seed matches the commitment")
        .draw
        .place(1)
        .expect("ticket 1 is in the draw");
    let drawn = until("the page shows the place in the draw", async || {
        view(page).await.filter(|view| view["draw_place"] != "")
    })
    .await;
    assert_eq!(
        drawn["draw_place"],
        format!("Il tuo posto nel sorteggio: {place} su 3.")
    );
    assert_eq!(drawn["position"], place.to_string(), "{drawn}");
    assert_eq!(drawn["label"], "La tua posizione: ");
    assert_eq!(drawn["title"], format!("Numero {place} in coda"));
    for gone in ["opens", "countdown", "pre_queue", "same_chance"] {
        assert_eq!(drawn[gone], "", "{gone}: {drawn}");
    }
    assert_eq!(drawn["draw_link"], format!("/_anteroom/draw?room={ROOM}"));
    assert_eq!(drawn["still"], "here", "no reload: {drawn}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_the_pages_refresh_themselves_through_the_event() {
    let up = upstream().await;
    let clock = Clock::manual();
    let gw = event_gateway(&up, &clock).await;
    let browser = Browser::options()
        .javascript(false)
        .language("en-GB,en")
        .open()
        .await;
    let page = &browser.client;
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");

    let before = until("the not-open page", async || {
        view(page).await.filter(|view| view["page"] == "not_open")
    })
    .await;
    assert_eq!(before["lang"], "en");
    assert_eq!(before["h1"], "Booking has not opened yet");
    assert_eq!(before["opens"], "Opens at 12:30 (Friday 1 March).");
    assert_eq!(before["countdown"], "Opens in: 2 hours");
    assert_eq!(
        before["pre_queue_from"],
        "From 11:30 this page gives you a ticket for the draw by itself."
    );
    assert_eq!(
        before["same_chance"],
        "Arriving early gives no advantage: everyone who arrives before 12:30 has the same chance, \
         because at 12:30 a random draw decides the order."
    );
    assert_eq!(
        before["keep"],
        "Keep this page open: it will let you in by itself."
    );
    // Scripting is off: the meta refresh is live, and nothing polled.
    assert_eq!(before["meta_refresh"], "1", "{before}");
    assert_eq!(before["gateway_requests"], json!([]), "{before}");
    assert_phone_layouts(page, "not open, en, no script").await;

    at(&gw, &clock, PRE_QUEUE_FROM).await;
    let ticketed = until("the meta refresh takes a pre-queue ticket", async || {
        view(page).await.filter(|view| view["position"] == "1")
    })
    .await;
    assert_eq!(ticketed["label"], "Your ticket for the draw: ");
    assert_eq!(
        ticketed["pre_queue"],
        "People waiting for the draw so far: 1"
    );
    assert_eq!(ticketed["countdown"], "Opens in: 1 hour");
    assert_eq!(ticketed["opens"], "Opens at 12:30 (Friday 1 March).");
    assert!(
        ticketed["same_chance"]
            .as_str()
            .is_some_and(|text| text.starts_with("Arriving early gives no advantage")),
        "{ticketed}"
    );
    assert_eq!(
        ticketed["draw_link"],
        format!("/_anteroom/draw?room={ROOM}")
    );
    assert_eq!(ticketed["meta_refresh"], "1", "{ticketed}");
    assert_eq!(ticketed["gateway_requests"], json!([]), "{ticketed}");
    assert_phone_layouts(page, "pre-queue, en, no script").await;

    change_room(&gw, json!({ "state": "paused" })).await;
    at(&gw, &clock, OPENS_AT).await;
    let drawn = until("the meta refresh shows the place in the draw", async || {
        view(page).await.filter(|view| view["draw_place"] != "")
    })
    .await;
    assert_eq!(drawn["draw_place"], "Your place in the draw: 1 of 1.");
    assert_eq!(drawn["position"], "1");
    assert_eq!(drawn["countdown"], "", "{drawn}");
    assert_eq!(drawn["draw_link"], format!("/_anteroom/draw?room={ROOM}"));
    browser.close().await;
}

// ---------------------------------------------------------------- helpers

/// What the page shows, read in one go (it may be reloading); `None` while
/// it is neither the waiting nor the not-open page.
async fn view(page: &Client) -> Option<Value> {
    let view = page
        .execute(
            "const root = document.getElementById('anteroom');\
             if (!root) return null;\
             const shown = (id) => {\
                 const element = document.getElementById(id);\
                 return element ? element.textContent : null;\
             };\
             const draw = document.getElementById('anteroom-draw');\
             const refresh = document.querySelector('noscript > meta[http-equiv=refresh]');\
             return {\
                 page: root.dataset.page || 'waiting',\
                 lang: document.documentElement.lang,\
                 title: document.title,\
                 h1: document.querySelector('h1').textContent,\
                 keep: document.querySelector('.keep').textContent,\
                 opens: shown('anteroom-opens'),\
                 countdown: shown('anteroom-countdown'),\
                 pre_queue_from: shown('anteroom-pre-queue-from'),\
                 same_chance: shown('anteroom-same-chance'),\
                 label: shown('anteroom-position-label'),\
                 position: shown('anteroom-position'),\
                 pre_queue: shown('anteroom-pre-queue'),\
                 draw_place: shown('anteroom-draw-place'),\
                 draw_link: draw && !draw.hidden ? draw.querySelector('a').getAttribute('href') : null,\
                 still: document.body.dataset.still || null,\
                 meta_refresh: refresh ? refresh.getAttribute('content') : null,\
                 gateway_requests: performance.getEntriesByType('resource')\
                     .map(entry => entry.name)\
                     .filter(name => name.includes('/_anteroom/')),\
             };",
            vec![],
        )
        .await
        .ok()?;
    view.is_object().then_some(view)
}

/// How many ticket cookies of the room the browser holds.
async fn ticket_cookies(page: &Client) -> usize {
    page.get_all_cookies()
        .await
        .expect("the cookies")
        .iter()
        .filter(|cookie| cookie.name() == format!("anteroom_ticket_{ROOM}"))
        .count()
}
