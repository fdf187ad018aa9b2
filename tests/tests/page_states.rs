//! The pages for the other states a visitor can meet, in a real headless
//! Chromium against a real gateway: the room paused (the waiting page says
//! so, the place is kept, and it goes on when entry resumes), the room
//! closed, and the booking site down while the visitor is inside (a
//! friendly page, `503`, that keeps their pass and goes back to the site by
//! itself when it returns). Each in Italian and English.
//!
//! Needs `chromium` and `chromedriver`, like `waiting_page.rs`.

use anteroom_tests::browser::{
    Browser, assert_phone_layouts, click, run, screenshot, set_viewport, shown_json, text, until,
};
use anteroom_tests::{
    GatewayHandle, TcpProxy, gateway, gateway_to, plain_client, reached_origin, room, upstream,
};
use fantoccini::Client;
use serde_json::{Value, json};

const ASKED_FOR: &str = "/echo/vaccini/page?x=1";
const ADMIN_TOKEN: &str = "page-states-token-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_room_says_so_keeps_the_place_and_goes_on_when_entry_resumes() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .admin_token(ADMIN_TOKEN)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get("/echo/vaccini").await).await);
    set_room_state(&gw, "paused").await;
    // The slot frees, but nobody is let in while the room is paused.
    inside.leave("vaccini").await;

    // One visitor, who reads the page in Italian, then switches to English.
    let browser = Browser::options().language("it-IT,it").open().await;
    let page = &browser.client;
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    for (lang, paused, eta) in [
        (
            "it",
            "Gli ingressi sono sospesi per qualche momento. Mantieni il tuo posto",
            "Attesa stimata: tornerà visibile quando riprenderanno gli ingressi.",
        ),
        (
            "en",
            "Entry is paused for a moment. You keep your place",
            "Estimated wait: it will be shown again when entry resumes.",
        ),
    ] {
        if lang == "en" {
            click(page, "nav.langs a[hreflang=en]").await;
        }
        until("the page in the language", async || {
            let shown = run(page, "return document.documentElement.lang;").await;
            (shown == lang).then_some(())
        })
        .await;
        let shown = text(page, "#anteroom-paused").await;
        assert!(shown.starts_with(paused), "{lang}: {shown}");
        assert_eq!(text(page, "#anteroom-eta").await, eta, "{lang}");
        assert_eq!(text(page, "#anteroom-closed").await, "", "hidden");
        assert_eq!(text(page, "#anteroom-trouble").await, "", "hidden");
        assert_eq!(
            text(page, "#anteroom-position").await,
            "1",
            "the place is kept"
        );
        // The script keeps it so (it hears the room's state too).
        until("the script follows the place", async || {
            (!text(page, "#anteroom-updated").await.ends_with("UTC")).then_some(())
        })
        .await;
        let shown = text(page, "#anteroom-paused").await;
        assert!(
            shown.starts_with(paused),
            "{lang}, with the script: {shown}"
        );
        assert_eq!(text(page, "#anteroom-eta").await, eta, "{lang}");
    }
    set_viewport(page, 360, 740).await;
    screenshot(page, "paused-phone-en").await;

    // Entry resumes: the page goes on by itself.
    set_room_state(&gw, "open").await;
    let echoed = until("the browser is let in once entry resumes", async || {
        shown_json(page).await
    })
    .await;
    assert_eq!(echoed["query"], "x=1", "{echoed}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_room_says_so_to_newcomers_and_to_those_waiting() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .admin_token(ADMIN_TOKEN)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get("/echo/vaccini").await).await);
    // Someone already waiting when the room closes keeps their place.
    let waiting = Browser::options().language("it").open().await;
    waiting
        .client
        .goto(&gw.url(ASKED_FOR))
        .await
        .expect("the page loads");
    assert_eq!(text(&waiting.client, "#anteroom-position").await, "1");
    set_room_state(&gw, "closed").await;
    until("the waiting page says the room is closed", async || {
        let shown = text(&waiting.client, "#anteroom-closed").await;
        shown
            .starts_with("Gli ingressi sono chiusi per ora. Tieni aperta questa pagina")
            .then_some(())
    })
    .await;
    assert_eq!(text(&waiting.client, "#anteroom-position").await, "1");
    waiting.close().await;

    // A newcomer gets the closed page, in their language, with the switch.
    let browser = Browser::options().language("en").open().await;
    let page = &browser.client;
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    assert_eq!(page.title().await.expect("a title"), "Booking is closed");
    assert_eq!(navigation_status(page).await, 503);
    assert!(
        text(page, ".card")
            .await
            .starts_with("Booking is closed at the moment.")
    );
    click(page, "nav.langs a[hreflang=it]").await;
    until("the Italian closed page", async || {
        (page.title().await.ok()? == "Prenotazioni chiuse").then_some(())
    })
    .await;
    assert!(
        text(page, ".card")
            .await
            .starts_with("Le prenotazioni sono chiuse in questo momento.")
    );
    browser.close().await;
}

/// The booking site goes down while the visitor is inside: a friendly
/// page (`503`) that says their place is safe, in their language; it keeps
/// their pass (the next in line stays waiting) and goes back to the site by
/// itself when the site returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_down_page_keeps_the_pass_and_goes_back_by_itself() {
    let up = upstream().await;
    let mut site = TcpProxy::start(up.addr).await;
    let gw = gateway_to(&format!("http://127.0.0.1:{}", site.port))
        .room(room("vaccini").capacity(1))
        .start()
        .await;
    let browser = Browser::options().language("it-IT,it").open().await;
    let page = &browser.client;
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    let echoed = until("the visitor is let straight in", async || {
        shown_json(page).await
    })
    .await;
    assert_eq!(echoed["path"], "/echo/vaccini/page");
    // The room is full: whoever comes next waits behind the browser.
    let next = gw.visitor();
    assert!(!reached_origin(next.get("/echo/vaccini").await).await);

    site.close();
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    assert_eq!(navigation_status(page).await, 503);
    assert_eq!(
        page.title().await.expect("a title"),
        "Un momento, per favore"
    );
    let shown = text(page, "main").await;
    for line in [
        "Il sito delle prenotazioni non risponde in questo momento.",
        "Questa pagina riproverà da sola tra pochi secondi.",
        "Non hai perso il tuo posto: non devi rimetterti in coda.",
    ] {
        assert!(shown.contains(line), "{shown}");
    }
    assert_phone_layouts(page, "the site down, it").await;
    screenshot(page, "unavailable-phone-it").await;
    // The switch works here too (the site is still down: the same page,
    // in English).
    click(page, "nav.langs a[hreflang=en]").await;
    until("the English page", async || {
        (page.title().await.ok()? == "Just a moment, please").then_some(())
    })
    .await;
    let shown = text(page, "main").await;
    for line in [
        "The booking site is not answering right now.",
        "This page will try again by itself in a few seconds.",
        "You have not lost your place: you do not need to queue again.",
    ] {
        assert!(shown.contains(line), "{shown}");
    }
    assert_eq!(
        next.position("vaccini").await,
        Some(1),
        "the visitor's pass still holds the slot"
    );

    site.reopen().await;
    let echoed = until("the page goes back to the site by itself", async || {
        shown_json(page).await
    })
    .await;
    assert_eq!(echoed["path"], "/echo/vaccini/page", "{echoed}");
    assert_eq!(echoed["query"], "x=1", "{echoed}");
    assert_eq!(
        next.position("vaccini").await,
        Some(1),
        "the same pass, not a new place"
    );
    browser.close().await;
}

/// Adaptive admission finds the site failing every request while a
/// visitor waits: the waiting page says so in their language (the place is
/// kept, the page goes on by itself) and shows no estimate, from its first
/// paint and from the script; when the site recovers the notice goes, and
/// the visitor is let in by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_in_trouble_is_said_on_the_waiting_page_and_the_notice_goes_when_it_recovers() {
    let up = upstream().await;
    let mut site = TcpProxy::start(up.addr).await;
    let gw = gateway_to(&format!("http://127.0.0.1:{}", site.port))
        .room(room("vaccini").capacity(1).adaptive(None))
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get("/echo/vaccini").await).await);
    // The browser waits behind the visitor inside.
    let browser = Browser::options().language("it-IT,it").open().await;
    let page = &browser.client;
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    assert_eq!(text(page, "#anteroom-position").await, "1");
    assert_eq!(text(page, "#anteroom-trouble").await, "", "hidden");

    // The site fails every request of the visitor inside.
    site.close();
    let italian = "Il sito delle prenotazioni ha dei problemi in questo momento. \
                   Mantieni il tuo posto: questa pagina andrà avanti da sola.";
    until("the script shows the notice", async || {
        inside.get("/echo/vaccini").await;
        (text(page, "#anteroom-trouble").await == italian).then_some(())
    })
    .await;
    assert_eq!(text(page, "#anteroom-eta").await, "", "no estimate");
    assert_eq!(
        text(page, "#anteroom-position").await,
        "1",
        "the place is kept"
    );
    let status: Value = page
        .execute(
            "return fetch('/_anteroom/status?room=vaccini', {headers: {Accept: 'application/json'}})\
             .then(response => response.json());",
            vec![],
        )
        .await
        .expect("script runs");
    assert_eq!(status["site"], "trouble", "{status}");
    assert_eq!(status["eta_seconds"], Value::Null, "{status}");
    // The server's first paint says so too, in English after the switch.
    click(page, "nav.langs a[hreflang=en]").await;
    until(
        "the English page says the site is having trouble",
        async || {
            let shown = text(page, "#anteroom-trouble").await;
            (shown
                == "The booking site is having trouble right now. \
                You keep your place: this page will go on by itself.")
                .then_some(())
        },
    )
    .await;
    assert_eq!(text(page, "#anteroom-eta").await, "", "no estimate");
    set_viewport(page, 360, 740).await;
    assert_phone_layouts(page, "the site in trouble, en").await;

    // The site recovers: the notice goes, and the browser is let in once
    // the visitor inside leaves.
    site.reopen().await;
    until("the notice goes once the site recovers", async || {
        inside.get("/echo/vaccini").await;
        text(page, "#anteroom-trouble")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    inside.leave("vaccini").await;
    let echoed = until("the browser is let in", async || shown_json(page).await).await;
    assert_eq!(echoed["query"], "x=1", "{echoed}");
    browser.close().await;
}

// ---------------------------------------------------------------- helpers

/// Opens, pauses or closes the room through the admin API.
async fn set_room_state(gw: &GatewayHandle, state: &str) {
    let response = plain_client()
        .patch(gw.admin_url("/admin/rooms/vaccini"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "state": state }))
        .send()
        .await
        .expect("the admin API answers");
    assert_eq!(response.status(), 200, "setting the room {state}");
    // Every gateway step picks the change up.
    gw.settle().await;
}

/// The HTTP status of the page the browser shows.
async fn navigation_status(page: &Client) -> u64 {
    let status: Value = run(
        page,
        "return performance.getEntriesByType('navigation')[0].responseStatus;",
    )
    .await;
    status.as_u64().expect("the navigation's status")
}
