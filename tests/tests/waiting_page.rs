//! The waiting page in a real headless Chromium, driven through
//! chromedriver, against a real gateway and the stub upstream: with and
//! without JavaScript the page moves on by itself to the address the visitor
//! asked for (query string included) once the visitor inside leaves; a tab
//! in the background is titled when the turn comes; it speaks the browser's
//! language, and the visitor's choice from the language switch (without
//! JavaScript, keeping their place); it fits a phone, also at 200% zoom; it
//! makes no request outside the gateway, under its Content-Security-Policy.
//! It also writes the screenshots in `docs/screenshots/` that the README
//! shows. (The other states' pages are in `page_states.rs`.)
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`,
//! `chromium-driver`; `scripts/test` installs them when missing). Without
//! them these tests fail, never skip.

use anteroom_tests::browser::{
    Browser, assert_fits_sideways, assert_phone_layouts, click, run, screenshot, set_viewport,
    shown_json, text, until,
};
use anteroom_tests::{
    GatewayHandle, Upstream, Visitor, gateway, header, loose_limits, plain_client, reached_origin,
    room, upstream,
};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

/// The address the visitor in the browser asks for: in the room, with a
/// query string that must survive the wait.
const ASKED_FOR: &str = "/echo/vaccini/page?x=1&y=two";
const ADMIN_TOKEN: &str = "waiting-page-token-0123456789abcdef";

/// Whether the gateway offers waiting pages an event stream
/// (`/_anteroom/events`); without it they poll `/_anteroom/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Streams {
    On,
    Off,
}

/// Room `vaccini` with room for one, and one visitor (a plain HTTP client)
/// inside: whoever comes next waits, at position 1.
async fn full_room(up: &Upstream) -> (GatewayHandle, Visitor) {
    full_room_with(up, Streams::On).await
}

async fn full_room_with(up: &Upstream, streams: Streams) -> (GatewayHandle, Visitor) {
    let limits = match streams {
        Streams::On => loose_limits(),
        Streams::Off => loose_limits().max_event_streams(0),
    };
    let gw = gateway(up)
        .room(room("vaccini").capacity(1))
        .limits(limits)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get("/echo/vaccini").await).await);
    (gw, inside)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_javascript_the_page_follows_its_place_and_lets_the_visitor_in_where_they_were_going()
{
    // The page follows its place over the event stream, and polls the
    // status when the turn comes.
    with_javascript_the_visitor_is_let_in(Streams::On).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_javascript_and_no_event_stream_the_page_polls_and_lets_the_visitor_in() {
    with_javascript_the_visitor_is_let_in(Streams::Off).await;
}

/// A tab in the background: when the turn comes its title says so, and it
/// goes on to the page the visitor asked for when they look at it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_in_the_background_is_titled_when_the_turn_comes() {
    let up = upstream().await;
    let (gw, inside) = full_room(&up).await;
    let browser = Browser::open().await;
    let page = &browser.client;
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    assert_waiting_at(page, 1, "en").await;
    until("the script runs", async || {
        let updated = text(page, "#anteroom-updated").await;
        (!updated.ends_with("UTC")).then_some(())
    })
    .await;
    // Whatever the title becomes, and whether the page is still the
    // waiting page, is written where another tab of the same site can read
    // it (the page's own storage), since only the tab in front can be
    // asked directly.
    run(
        page,
        "const note = () => localStorage.setItem('seen', JSON.stringify({\
             title: document.title, hidden: document.hidden,\
             waiting: document.getElementById('anteroom') !== null,\
             turn_shown: !document.getElementById('anteroom-turn').hidden}));\
         new MutationObserver(note).observe(document.head, {subtree: true, childList: true, characterData: true});\
         document.addEventListener('visibilitychange', note);\
         addEventListener('pagehide', () => localStorage.setItem('left', 'yes'));\
         note(); return null;",
    )
    .await;
    let waiting_tab = page.window().await.expect("the tab");
    let other_tab = page.new_window(true).await.expect("a new tab").handle;
    page.switch_to_window(other_tab)
        .await
        .expect("the other tab comes to the front");
    page.goto(&gw.url("/_anteroom/leave?room=vaccini"))
        .await
        .expect("a page of the same site");
    let seen = async || -> Value {
        let seen = run(page, "return localStorage.getItem('seen');").await;
        serde_json::from_str(seen.as_str().unwrap_or("null")).unwrap_or_default()
    };
    until("the waiting tab is in the background", async || {
        (seen().await["hidden"] == true).then_some(())
    })
    .await;
    assert_eq!(seen().await["title"], "Number 1 in the queue");

    inside.leave("vaccini").await;
    let turn = until(
        "the background tab's title says it is the turn",
        async || {
            let seen = seen().await;
            (seen["title"] == "It is your turn!").then_some(seen)
        },
    )
    .await;
    assert_eq!(turn["waiting"], true, "it waits to be looked at: {turn}");
    assert_eq!(turn["turn_shown"], true, "{turn}");
    assert_eq!(turn["hidden"], true, "{turn}");
    // And it stays: a page that went on at once would be gone in a blink.
    let served = up.requests_served().await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        run(page, "return localStorage.getItem('left');").await,
        Value::Null,
        "the background tab stays on the waiting page"
    );
    assert_eq!(
        up.requests_served().await,
        served,
        "nothing reached the site"
    );

    // Looked at again: it goes on, to where the visitor was going.
    page.switch_to_window(waiting_tab)
        .await
        .expect("the waiting tab comes to the front");
    let echoed = until("the tab goes on when looked at", async || {
        shown_json(page).await
    })
    .await;
    assert_landed_where_asked(page, &gw, &echoed).await;
    browser.close().await;
}

/// The language switch is a plain link: it works without JavaScript, the
/// choice sticks (a cookie) over the browser's own language, and the
/// visitor keeps their place; the address they land on at their turn is
/// the one they asked for, without the switch's parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_works_without_javascript_sticks_and_keeps_the_place() {
    let up = upstream().await;
    let (gw, inside) = full_room(&up).await;
    let browser = Browser::options()
        .javascript(false)
        .language("en-GB,en")
        .open()
        .await;
    let page = &browser.client;
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    let before = until("the English waiting page", async || {
        no_script_view(page).await
    })
    .await;
    assert_eq!(before["lang"], "en", "{before}");
    assert_eq!(before["position"], "1", "{before}");
    // Someone else joins behind: the visitor's place is 1, theirs 2.
    let behind = gw.visitor();
    assert!(!reached_origin(behind.get("/echo/vaccini").await).await);
    assert_eq!(behind.position("vaccini").await, Some(2));

    click(page, "nav.langs a[hreflang=it]").await;
    let italian = until("the Italian waiting page", async || {
        no_script_view(page)
            .await
            .filter(|view| view["lang"] == "it")
    })
    .await;
    assert_eq!(
        italian["title"], "Numero 1 in coda",
        "the same place: {italian}"
    );
    assert_eq!(italian["position"], "1", "{italian}");
    assert_eq!(
        page.current_url().await.expect("a URL").as_str(),
        gw.url(ASKED_FOR),
        "back at the same address, without the switch's parameter"
    );
    assert_eq!(behind.position("vaccini").await, Some(2), "nobody moved");
    // The next pages (the meta refresh reloads this one) stay Italian,
    // though the browser asks for English.
    let reloaded = until("the page reloads", async || {
        no_script_view(page)
            .await
            .filter(|view| view["updated"] != italian["updated"])
    })
    .await;
    assert_eq!(reloaded["lang"], "it", "{reloaded}");

    inside.leave("vaccini").await;
    let echoed = until("the meta refresh lets the browser in", async || {
        shown_json(page).await
    })
    .await;
    assert_landed_where_asked(page, &gw, &echoed).await;
    assert_eq!(
        echoed["headers"]["cookie"],
        Value::Null,
        "the language cookie is ours: it never reaches the site: {echoed}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_the_meta_refresh_lets_the_visitor_in_where_they_were_going() {
    let up = upstream().await;
    let (gw, inside) = full_room(&up).await;
    let browser = Browser::options().javascript(false).open().await;
    let page = &browser.client;

    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    // The page reloads itself every second: each look at it is one script,
    // so that it sees one document.
    let first = until("the waiting page", async || no_script_view(page).await).await;
    assert_eq!(
        (&first["title"], &first["lang"], &first["position"]),
        (&json!("Number 1 in the queue"), &json!("en"), &json!("1")),
        "{first}"
    );
    // Scripting is really off: the parser treated `<noscript>`'s content as
    // markup (with scripting on it is plain text), so the meta refresh is
    // live.
    assert_eq!(first["live_meta_refresh"], true, "{first}");
    // The page is reloaded by the meta refresh, not updated by a script:
    // the clock keeps the server's UTC form (the script would rewrite it in
    // local time at once) and changes only because the server renders the
    // page anew; and the page never asked the gateway for its status.
    let first_clock = first["updated"].as_str().expect("a clock").to_owned();
    assert!(first_clock.ends_with(" UTC"), "the server's clock: {first}");
    let reloaded = until("the meta refresh reloads the page", async || {
        let now = no_script_view(page).await?;
        (now["updated"] != first_clock.as_str()).then_some(now)
    })
    .await;
    assert!(
        reloaded["updated"]
            .as_str()
            .is_some_and(|clock| clock.ends_with(" UTC")),
        "{reloaded}"
    );
    assert_eq!(reloaded["position"], "1", "{reloaded}");
    for view in [&first, &reloaded] {
        assert_eq!(view["gateway_requests"], json!([]), "no script ran: {view}");
    }

    inside.leave("vaccini").await;
    let echoed = until("the meta refresh lets the browser in", async || {
        shown_json(page).await
    })
    .await;
    assert_landed_where_asked(page, &gw, &echoed).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_speaks_the_browsers_language_and_is_photographed_on_phone_and_desktop() {
    let up = upstream().await;
    for (lang, languages, keep_open) in [
        (
            "it",
            "it-IT,it",
            "Tieni aperta questa pagina. Entrerai automaticamente.",
        ),
        (
            "en",
            "en-GB,en",
            "Keep this page open. You will be let in automatically.",
        ),
    ] {
        // A gateway each, so that both pages show the same place: 42nd,
        // behind 41 others (the estimate, from one visitor inside for at
        // most 30 s at a time: 20 to 25 minutes).
        let gw = gateway(&up)
            .room(room("vaccini").capacity(1).session_seconds(30))
            .start()
            .await;
        let mut queue = vec![gw.visitor()];
        assert!(reached_origin(queue[0].get("/echo/vaccini").await).await);
        for _ in 0..41 {
            let ahead = gw.visitor();
            assert!(!reached_origin(ahead.get("/echo/vaccini").await).await);
            queue.push(ahead);
        }
        let browser = Browser::options().language(languages).open().await;
        let page = &browser.client;
        page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
        assert_waiting_at(page, 42, lang).await;
        let shown = text(page, ".keep").await;
        assert!(shown.starts_with(keep_open), "{lang}: {shown}");
        // Once the script has run (its first act rewrites the clock), the
        // page still speaks the language: the script's words are its too.
        until("the script shows the clock in local time", async || {
            let updated = text(page, "#anteroom-updated").await;
            (!updated.is_empty() && !updated.ends_with("UTC")).then_some(())
        })
        .await;
        assert_waiting_at(page, 42, lang).await;

        for (device, width, height) in [("phone", 360, 740), ("desktop", 1280, 800)] {
            set_viewport(page, width, height).await;
            assert_fits_sideways(page, &format!("{lang} {device}")).await;
            screenshot(page, &format!("waiting-{device}-{lang}")).await;
        }
        browser.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_nothing_scrolls_sideways_even_at_200_percent_zoom() {
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .admin_token(ADMIN_TOKEN)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get("/echo/vaccini").await).await);
    for languages in ["it", "en"] {
        let browser = Browser::options()
            .language(languages)
            .window_size(360, 740)
            .open()
            .await;
        let page = &browser.client;
        page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
        assert_phone_layouts(page, languages).await;
        browser.close().await;
    }

    // The longest page: paused, with its extra paragraph.
    let paused = plain_client()
        .patch(gw.admin_url("/admin/rooms/vaccini"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"state": "paused"}))
        .send()
        .await
        .expect("the admin API answers");
    assert_eq!(paused.status(), 200);
    for languages in ["it", "en"] {
        let browser = Browser::options()
            .language(languages)
            .window_size(360, 740)
            .open()
            .await;
        let page = &browser.client;
        page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
        until("the page says entry is paused", async || {
            let hidden = run(
                page,
                "return document.getElementById('anteroom-paused').hidden;",
            )
            .await;
            (hidden == json!(false)).then_some(())
        })
        .await;
        assert_phone_layouts(page, &format!("{languages}, paused")).await;
        browser.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_makes_no_request_outside_the_gateway() {
    let up = upstream().await;
    // With the event stream declined, the page asks for it (the request is
    // recorded once the stream ends) and then polls: both kinds of request
    // a waiting page makes show in the resource timings.
    let (gw, _inside) = full_room_with(&up, Streams::Off).await;

    // In the browser, everything it fetched came from the gateway.
    let browser = Browser::open().await;
    let page = &browser.client;
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    assert_waiting_at(page, 1, "en").await;
    let origin = format!("http://{}", gw.addr);
    until("the page polled its status twice", async || {
        (status_polls(page).await >= 2).then_some(())
    })
    .await;
    let resources = run(
        page,
        "return performance.getEntriesByType('resource').map(entry => entry.name);",
    )
    .await;
    assert!(
        resources.as_array().expect("a list").iter().any(|name| name
            .as_str()
            .is_some_and(|name| name.ends_with("/_anteroom/events?room=vaccini"))),
        "the page asked for its event stream: {resources}"
    );
    for name in resources.as_array().expect("a list") {
        let name = name.as_str().expect("a URL");
        assert!(
            name.starts_with(&format!("{origin}/")),
            "a request outside the gateway: {name}"
        );
    }
    // The page as the gateway sends it (to a second visitor, at position 2)
    // and as the browser holds it name no host at all; the gateway sends
    // it with a policy that allows nothing else: no script or style but
    // its own (by their hashes), requests to the gateway only.
    let sent = gw.visitor().get(ASKED_FOR).await;
    let policy = header(&sent, "content-security-policy")
        .expect("a Content-Security-Policy")
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'sha256-",
        "style-src 'sha256-",
        "connect-src 'self'",
        "img-src 'self' data:",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let html = sent.text().await.expect("a page");
    assert!(html.contains("id=\"anteroom\""), "the waiting page: {html}");
    assert_eq!(absolute_urls(&html), Vec::<String>::new(), "{html}");

    let shown = run(page, "return document.documentElement.outerHTML;").await;
    let shown = shown.as_str().expect("the page's HTML");
    assert_eq!(absolute_urls(shown), Vec::<String>::new(), "{shown}");
    browser.close().await;
}

// ---------------------------------------------------------------- helpers

/// Scenario (a): a browser with JavaScript waits at position 1, and lands
/// on the address it asked for by itself once the visitor inside leaves.
async fn with_javascript_the_visitor_is_let_in(streams: Streams) {
    let up = upstream().await;
    let (gw, inside) = full_room_with(&up, streams).await;
    let browser = Browser::open().await;
    let page = &browser.client;

    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    assert_waiting_at(page, 1, "en").await;
    // The script runs: its first act rewrites the server's UTC clock in
    // local time. With scripting on, `<noscript>`'s meta refresh is inert
    // text, so only the script can move this page on.
    until("the script shows the clock in local time", async || {
        let updated = text(page, "#anteroom-updated").await;
        (!updated.is_empty() && !updated.ends_with("UTC")).then_some(())
    })
    .await;
    assert_eq!(
        run(
            page,
            "return document.querySelector('meta[http-equiv=refresh]') === null;"
        )
        .await,
        json!(true),
        "no live meta refresh with JavaScript on"
    );
    // The style ran too: the policy allows both by their hashes.
    assert_eq!(
        run(
            page,
            "return getComputedStyle(document.querySelector('.card')).borderTopColor;"
        )
        .await,
        json!("rgb(11, 61, 145)"),
        "the page's own style applies"
    );
    if streams == Streams::Off {
        until("the page polls its status", async || {
            (status_polls(page).await >= 2).then_some(())
        })
        .await;
    }
    // Following its place keeps it, and the tab says it.
    assert_eq!(text(page, "#anteroom-position").await, "1");
    assert_eq!(
        page.title().await.expect("a title"),
        "Number 1 in the queue"
    );

    inside.leave("vaccini").await;
    let echoed = until("the browser is let in on its own", async || {
        shown_json(page).await
    })
    .await;
    assert_landed_where_asked(page, &gw, &echoed).await;
    browser.close().await;
}

/// How many status polls the page has made so far.
async fn status_polls(page: &Client) -> usize {
    let resources = run(
        page,
        "return performance.getEntriesByType('resource').map(entry => entry.name);",
    )
    .await;
    resources.as_array().map_or(0, |names| {
        names
            .iter()
            .filter(|name| {
                name.as_str()
                    .is_some_and(|name| name.ends_with("/_anteroom/status?room=vaccini"))
            })
            .count()
    })
}

/// The browser shows the English or Italian waiting page, at `position`
/// (in the heading, the tab's title and the figures).
async fn assert_waiting_at(page: &Client, position: u64, lang: &str) {
    let (heading, title) = if lang == "it" {
        ("Sei in coda", format!("Numero {position} in coda"))
    } else {
        (
            "You are in the queue",
            format!("Number {position} in the queue"),
        )
    };
    assert_eq!(text(page, "h1").await, heading);
    assert_eq!(page.title().await.expect("a title"), title);
    assert_eq!(
        page.find(Locator::Css("html"))
            .await
            .expect("the root")
            .attr("lang")
            .await
            .expect("an attribute")
            .as_deref(),
        Some(lang)
    );
    assert_eq!(text(page, "#anteroom-position").await, position.to_string());
}

/// What a waiting page without JavaScript shows, read in one go (the page
/// may be reloading); `None` while it is not the waiting page.
async fn no_script_view(page: &Client) -> Option<Value> {
    let view = page
        .execute(
            "const shown = (selector) => {\
                 const element = document.querySelector(selector);\
                 return element ? element.textContent : null;\
             };\
             return {\
                 title: document.title,\
                 lang: document.documentElement.lang,\
                 position: shown('#anteroom-position'),\
                 updated: shown('#anteroom-updated'),\
                 live_meta_refresh:\
                     document.querySelector('noscript > meta[http-equiv=refresh]') !== null,\
                 gateway_requests: performance.getEntriesByType('resource')\
                     .map(entry => entry.name)\
                     .filter(name => name.includes('/_anteroom/')),\
             };",
            vec![],
        )
        .await
        .ok()?;
    view["updated"].is_string().then_some(view)
}

/// The browser reached the origin at the very address it first asked for.
async fn assert_landed_where_asked(page: &Client, gw: &GatewayHandle, echoed: &Value) {
    assert_eq!(echoed["method"], "GET", "{echoed}");
    assert_eq!(echoed["path"], "/echo/vaccini/page", "{echoed}");
    assert_eq!(echoed["query"], "x=1&y=two", "{echoed}");
    assert_eq!(
        page.current_url().await.expect("a URL").as_str(),
        gw.url(ASKED_FOR)
    );
}

/// Every absolute (`http://`, `https://`) or protocol-relative (`"//`)
/// URL in `html`, with what follows it. The pages name no host at all, not
/// even the gateway's: they use relative URLs only.
fn absolute_urls(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    for start_of_url in ["http://", "https://", "\"//", "'//", "(//", "=//"] {
        for (start, _) in lower.match_indices(start_of_url) {
            found.push(html[start..].chars().take(60).collect());
        }
    }
    found
}
