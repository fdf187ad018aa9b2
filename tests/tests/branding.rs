//! An operator's own pages (`[pages] dir`): their waiting page template,
//! their style and a language of their own, in a real headless Chromium.
//! What they did not replace stays ours; their words are escaped; their
//! style and our script run under the page's Content-Security-Policy.
//!
//! Needs `chromium` and `chromedriver`, like `waiting_page.rs`.

use std::path::{Path, PathBuf};

use anteroom_tests::browser::{Browser, run, shown_json, text, until};
use anteroom_tests::{gateway, header, reached_origin, room, upstream};
use serde_json::json;

const ASKED_FOR: &str = "/echo/vaccini/page?x=1";

/// The operator's directory: a waiting page with their header, their
/// colours, German, and one Italian sentence of their own.
fn operators_pages() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("anteroom-branding-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("lang")).expect("a pages directory");
    std::fs::write(
        dir.join("waiting.html"),
        "<!DOCTYPE html>\n<html lang=\"{{lang}}\" dir=\"{{text_direction}}\">\n\
         <head>{{head}}</head>\n<body>\n\
         <header class=\"brand\">Regione Lazio &middot; {{queue_label}} {{room}}</header>\n\
         {{languages}}\n<main>\n<h1>{{title}}</h1>\n{{status}}\n<p class=\"keep\">{{keep_open}}</p>\n</main>\n\
         {{script}}\n</body>\n</html>\n",
    )
    .expect("waiting.html");
    std::fs::write(
        dir.join("style.css"),
        "body{font-family:sans-serif;margin:0 auto;max-width:40rem;padding:1rem}\n\
         .brand{background:#8b0000;color:#fff;padding:1rem;font-weight:700}\n\
         .card{border:4px solid #8b0000}\n[hidden]{display:none}\n",
    )
    .expect("style.css");
    let english = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/src/page/lang/en.toml"),
    )
    .expect("the built-in English");
    let german = english
        .replace("language_name = \"English\"", "language_name = \"Deutsch\"")
        .replace(
            "title = \"You are in the queue\"",
            "title = \"Sie sind in der Warteschlange\"",
        )
        .replace(
            "title_position = \"Number {position} in the queue\"",
            "title_position = \"Nummer {position} in der Warteschlange\"",
        );
    std::fs::write(dir.join("lang/de.toml"), german).expect("de.toml");
    std::fs::write(
        dir.join("lang/it.toml"),
        "keep_open = \"Tieni aperta questa pagina <davvero> & entrerai da solo.\"\n",
    )
    .expect("it.toml");
    // Not a page file: left alone.
    std::fs::write(dir.join("logo.png"), [0x89, b'P', b'N', b'G']).expect("logo.png");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_pages_replace_ours_and_the_rest_stays() {
    let dir = operators_pages();
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1))
        .pages_dir(&dir)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get("/echo/vaccini").await).await);

    // German, from the operator's file, in their template and colours.
    let browser = Browser::options().language("de-DE,de").open().await;
    let page = &browser.client;
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    assert_eq!(
        text(page, "header.brand").await,
        "Regione Lazio · Queue: vaccini"
    );
    assert_eq!(text(page, "h1").await, "Sie sind in der Warteschlange");
    assert_eq!(
        page.title().await.expect("a title"),
        "Nummer 1 in der Warteschlange"
    );
    assert_eq!(text(page, "#anteroom-position").await, "1");
    // Their style runs under the policy (allowed by its hash), and so does
    // our script (it rewrites the clock in local time).
    assert_eq!(
        run(
            page,
            "return getComputedStyle(document.querySelector('.brand')).backgroundColor;"
        )
        .await,
        json!("rgb(139, 0, 0)")
    );
    until("the script runs", async || {
        (!text(page, "#anteroom-updated").await.ends_with("UTC")).then_some(())
    })
    .await;
    // The switch offers every other language, the operator's included.
    let offered = run(
        page,
        "return [...document.querySelectorAll('nav.langs a')].map(a => a.hreflang);",
    )
    .await;
    assert_eq!(offered, json!(["en", "it"]));

    // Their Italian sentence, escaped; the rest of the Italian is ours.
    let italian = gw
        .visitor()
        .client
        .get(gw.url(ASKED_FOR))
        .header("accept-language", "it")
        .send()
        .await
        .expect("the page");
    let html = italian.text().await.expect("the page");
    assert!(
        html.contains(
            "<p class=\"keep\">Tieni aperta questa pagina &lt;davvero&gt; &amp; entrerai da solo.</p>"
        ),
        "{html}"
    );
    assert!(html.contains("Persone davanti a te: 1"), "{html}");
    // A page the operator did not replace: ours.
    let goodbye = gw.visitor().post("/_anteroom/leave?room=vaccini").await;
    assert!(
        goodbye
            .text()
            .await
            .expect("the page")
            .contains("Your place has gone to the next person in the queue.")
    );
    let sent = gw.visitor().get(ASKED_FOR).await;
    assert!(
        header(&sent, "content-security-policy").is_some_and(|policy| !policy.contains("unsafe")),
    );

    inside.leave("vaccini").await;
    let echoed = until("the operator's page lets the visitor in", async || {
        shown_json(page).await
    })
    .await;
    assert_eq!(echoed["query"], "x=1");
    browser.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
