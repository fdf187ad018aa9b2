use anteroom_config::{PageFile, PagesConfig};
use anteroom_store::RoomState;
use http::HeaderMap;
use http::header::{self, HeaderValue};

use super::compile::source_hash;
use super::format::{
    escaped, push_escaped, push_friendly_eta, push_grouped_digits, push_js_string,
};
use super::template::PageKind;
use super::*;

mod event;
use event::{MONDAY_MORNING, WEDNESDAY_NOON};

fn view<'a>() -> WaitingView<'a> {
    WaitingView {
        room: "vaccini",
        stage: Stage::InLine,
        position: Some(42),
        eta_seconds: Some(300),
        refresh_seconds: 7,
        updated_unix_seconds: 1_614_596_096, // 2021-03-01 10:54:56 UTC
        status_url: "/_anteroom/status?room=vaccini",
        room_state: RoomState::Open,
        site_trouble: false,
        event: EventView::default(),
    }
}

fn english(pages: &Pages) -> Reader<'static> {
    Reader {
        lang: pages.lang("en").unwrap(),
        query: "",
    }
}

fn italian(pages: &Pages) -> Reader<'static> {
    Reader {
        lang: pages.lang("it").unwrap(),
        query: "",
    }
}

/// The built-in words of a language, as written in its file.
fn words(code: &str) -> Texts {
    let (_, text) = texts::BUILT_IN
        .iter()
        .find(|(known, _)| *known == code)
        .unwrap();
    Texts::parse(text, None).unwrap()
}

/// The page up to its script (which carries the script's words).
fn markup(page: &str) -> &str {
    page.split("<script>").next().unwrap_or_default()
}

/// Pages with the operator's `files` (name, text) in place of ours.
fn with_files(files: &[(&str, &str)]) -> Result<Pages, String> {
    Pages::from_config(&PagesConfig {
        dir: Some("/etc/anteroom/pages".into()),
        files: files
            .iter()
            .map(|(name, text)| PageFile {
                name: (*name).to_owned(),
                text: (*text).to_owned(),
            })
            .collect(),
    })
    .map_err(|error| error.to_string())
}

// ---------------------------------------------------------------- languages

#[test]
fn every_language_file_has_every_key_and_nothing_else() {
    for (code, text) in texts::BUILT_IN {
        let parsed = Texts::parse(text, None).unwrap_or_else(|error| panic!("{code}: {error}"));
        for key in Texts::KEYS {
            let value = parsed.get(key).unwrap();
            assert!(!value.trim().is_empty(), "{code}.toml: {key} is empty");
        }
        assert!(texts::is_language_code(code));
    }
}

#[test]
fn every_placeholder_the_pages_use_is_a_key_a_part_or_a_slot() {
    // Compiling fails on any unknown placeholder; every built-in page in
    // every built-in language compiles.
    let pages = Pages::new();
    assert_eq!(pages.languages.len(), texts::BUILT_IN.len());
    for kind in PageKind::ALL {
        let source = kind.built_in();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            let end = rest[start..].find("}}").unwrap() + start;
            let key = &rest[start + 2..end];
            let known = Texts::KEYS.contains(&key)
                || kind.required_parts().contains(&key)
                || ["lang", "languages", "unavailable_place", "receipt", "room"].contains(&key);
            assert!(known, "{}: {{{{{key}}}}}", kind.file_name());
            rest = &rest[end + 2..];
        }
    }
}

#[test]
fn the_script_asks_only_for_words_it_is_given() {
    let mut asked: Vec<&str> = WAITING_JS
        .match_indices("T.")
        .map(|(start, _)| {
            let rest = &WAITING_JS[start + 2..];
            let end = rest
                .find(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    asked.sort_unstable();
    asked.dedup();
    for key in asked {
        assert!(
            key == "code" || SCRIPT_KEYS.contains(&key),
            "waiting.js uses T.{key}, which SCRIPT_KEYS does not give it"
        );
    }
    for key in SCRIPT_KEYS {
        assert!(Texts::KEYS.contains(key), "{key}");
    }
}

#[test]
fn lang_follows_the_choice_then_accept_language() {
    let pages = Pages::new();
    let (it, en) = (pages.lang("it").unwrap(), pages.lang("en").unwrap());
    let cases = [
        (Some("it-IT,it;q=0.9,en;q=0.8"), it),
        (Some("en-US,it;q=0.5"), en),
        (Some("fr, it;q=0.1"), it),
        (Some("IT"), it),
        (Some("fr-FR,fr;q=0.9"), en),
        (Some("en;q=0.2, it;q=0.8"), it),
        (Some("it;q=0, en;q=0.1"), en),
        (Some("it;q=nope, en;q=0.1"), en),
        (Some("it;q=2"), en),
        (Some(""), en),
        (Some("💥;q=x"), en),
        (Some(";;,,=,q=,-"), en),
        (None, en),
    ];
    for (header, expected) in cases {
        assert_eq!(pages.from_accept_language(header), expected, "{header:?}");
    }
    assert_eq!(pages.code(it), "it");
    assert_eq!(pages.code(en), "en");
    assert_eq!(pages.lang("de"), None);

    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
    headers.insert(header::COOKIE, HeaderValue::from_static("anteroom_lang=it"));
    assert_eq!(pages.language_for(&headers), it, "the switch wins");
    headers.insert(header::COOKIE, HeaderValue::from_static("anteroom_lang=xx"));
    assert_eq!(
        pages.language_for(&headers),
        en,
        "an unknown choice is ignored"
    );
}

#[test]
fn the_language_switch_links_to_the_same_address_in_the_other_languages() {
    let pages = Pages::new();
    let visitor = Reader {
        query: "x=1&y=\"two\"&anteroom_lang=en",
        ..english(&pages)
    };
    let page = pages.waiting(visitor, &view());
    assert!(
        page.contains(
            r#"<nav class="langs" aria-label="Language"><a href="?x=1&amp;y=&quot;two&quot;&amp;anteroom_lang=it" hreflang="it" lang="it">Italiano</a></nav>"#
        ),
        "{page}"
    );
    let page = pages.waiting(italian(&pages), &view());
    assert!(page.contains(
        r#"<nav class="langs" aria-label="Lingua"><a href="?anteroom_lang=en" hreflang="en" lang="en">English</a></nav>"#
    ));
    // The receipt page is also the answer to the booking form's POST: its
    // links go to the receipt's own address.
    let receipt = pages.receipt(
        english(&pages),
        "R1<",
        &ReceiptState::Processing { attempts: 1 },
        Some(2),
    );
    assert!(
        receipt.contains(r#"<a href="/_anteroom/receipts/R1&lt;?anteroom_lang=it""#),
        "{receipt}"
    );
    for page in [
        pages.upstream_unavailable(english(&pages), 5, PassHeld::Yes),
        pages.closed(english(&pages), 300),
        pages.confirm_leave(english(&pages), "vaccini"),
    ] {
        assert!(page.contains("anteroom_lang=it"), "{page}");
    }
}

// ---------------------------------------------------------------- the waiting page

#[test]
fn waiting_page_shows_the_figures() {
    let pages = Pages::new();
    let english = pages.waiting(english(&pages), &view());
    assert!(english.contains("<html lang=\"en\" dir=\"ltr\">"));
    assert!(english.contains("<title>Number 42 in the queue</title>"));
    assert!(english.contains("<h1>You are in the queue</h1>"));
    assert!(english.contains("Your number in the queue: <"));
    assert!(english.contains("<strong id=\"anteroom-position\">42</strong>"));
    assert!(english.contains("People ahead of you: 41"));
    assert!(english.contains("Estimated wait: about 5 minutes"));
    assert!(english.contains("Updated at <span id=\"anteroom-updated\">10:54:56 UTC</span>"));
    assert!(english.contains(&words("en").keep_open));
    assert!(english.contains(&words("en").no_refresh));
    assert!(english.contains("aria-live=\"polite\""));
    assert!(english.contains("<meta name=\"robots\" content=\"noindex\">"));
    assert!(
        english
            .contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
    );

    let italian = pages.waiting(italian(&pages), &view());
    assert!(italian.contains("<html lang=\"it\" dir=\"ltr\">"));
    assert!(italian.contains("<title>Numero 42 in coda</title>"));
    assert!(italian.contains("<h1>Sei in coda</h1>"));
    assert!(italian.contains("La tua posizione: <"));
    assert!(italian.contains("Persone davanti a te: 41"));
    assert!(italian.contains("Attesa stimata: circa 5 minuti"));
    assert!(italian.contains("Aggiornato alle <span id=\"anteroom-updated\">10:54:56 UTC</span>"));
    assert!(italian.contains("Tieni aperta questa pagina. Entrerai automaticamente."));
}

#[test]
fn a_paused_or_closed_room_says_so_and_keeps_the_place() {
    let pages = Pages::new();
    let open = pages.waiting(english(&pages), &view());
    assert!(
        open.contains("id=\"anteroom-paused\" class=\"notice\" hidden>"),
        "{open}"
    );
    assert!(open.contains("id=\"anteroom-closed\" class=\"notice\" hidden>"));
    let paused = pages.waiting(
        italian(&pages),
        &WaitingView {
            room_state: RoomState::Paused,
            ..view()
        },
    );
    assert!(
        paused.contains("id=\"anteroom-paused\" class=\"notice\">Gli ingressi sono sospesi"),
        "{paused}"
    );
    assert!(paused.contains("<strong id=\"anteroom-position\">42</strong>"));
    assert!(
        markup(&paused).contains(&words("it").eta_paused),
        "no estimate while nobody is let in"
    );
    assert!(!markup(&paused).contains("circa 5 minuti"));
    let closed = pages.waiting(
        english(&pages),
        &WaitingView {
            room_state: RoomState::Closed,
            ..view()
        },
    );
    assert!(closed.contains(
        "id=\"anteroom-closed\" class=\"notice\">Entry is closed for now. Keep this page open"
    ));
    assert!(closed.contains("id=\"anteroom-paused\" class=\"notice\" hidden>"));
}

#[test]
fn a_site_in_trouble_is_said_in_the_visitors_language_with_no_estimate() {
    let pages = Pages::new();
    // While the site answers, the notice is there for the script, hidden.
    let ok = pages.waiting(english(&pages), &view());
    assert!(
        ok.contains(
            "<p id=\"anteroom-trouble\" class=\"notice\" hidden>The booking site is having trouble"
        ),
        "{ok}"
    );
    assert!(markup(&ok).contains("Estimated wait: about 5 minutes"));
    let trouble = WaitingView {
        site_trouble: true,
        eta_seconds: None,
        ..view()
    };
    for (reader, code, notice) in [
        (
            english(&pages),
            "en",
            "The booking site is having trouble right now. You keep your place: this page will go on by itself.",
        ),
        (
            italian(&pages),
            "it",
            "Il sito delle prenotazioni ha dei problemi in questo momento. Mantieni il tuo posto: questa pagina andrà avanti da sola.",
        ),
    ] {
        let page = pages.waiting(reader, &trouble);
        let shown = markup(&page);
        assert!(
            shown.contains(&format!(
                "<p id=\"anteroom-trouble\" class=\"notice\">{}</p>",
                escaped(notice)
            )),
            "{code}: {shown}"
        );
        // Inside the live region, like the other notices.
        let live = shown.find("<div aria-live=\"polite\">").unwrap();
        assert!(live < shown.find("id=\"anteroom-trouble\"").unwrap());
        // The estimate's line is empty (not shown); the place stays.
        assert!(
            shown.contains("<p id=\"anteroom-eta\"></p>"),
            "{code}: {shown}"
        );
        let words = words(code);
        for estimate in [&words.eta_before, &words.eta_unknown] {
            assert!(!shown.contains(estimate.as_str()), "{code}: {estimate}");
        }
        assert!(shown.contains("<strong id=\"anteroom-position\">42</strong>"));
    }
}

#[test]
fn waiting_page_has_the_no_script_refresh_and_the_script() {
    let pages = Pages::new();
    let page = pages.waiting(english(&pages), &view());
    assert!(page.contains("<noscript><meta http-equiv=\"refresh\" content=\"7\"></noscript>"));
    assert!(page.contains("data-refresh=\"7\""));
    assert!(page.contains("data-status-url=\"/_anteroom/status?room=vaccini\""));
    assert!(page.contains("credentials: 'same-origin'"));
    assert!(page.contains("location.reload()"));
    assert!(
        page.contains("\"eta_about\":\"about \""),
        "the script gets its words"
    );
    assert!(page.contains("\"turn_title\":\"It is your turn!\""));
    assert!(
        !page.contains("receipt_failed"),
        "only the words the script needs"
    );
    assert!(page.contains("id=\"anteroom-turn\" class=\"turn\" hidden>"));
}

#[test]
fn large_positions_are_grouped() {
    let pages = Pages::new();
    let view = WaitingView {
        position: Some(1_234_567),
        ..view()
    };
    let english = pages.waiting(english(&pages), &view);
    assert!(english.contains(">1,234,567</strong>"));
    assert!(english.contains("People ahead of you: 1,234,566"));
    assert!(english.contains("<title>Number 1,234,567 in the queue</title>"));
    assert!(
        pages
            .waiting(italian(&pages), &view)
            .contains(">1.234.567</strong>")
    );
    let mut out = String::new();
    for value in [0, 999, 1000, u64::MAX] {
        push_grouped_digits(&mut out, value, &words("en"));
        out.push(' ');
    }
    assert_eq!(out, "0 999 1,000 18,446,744,073,709,551,615 ");
}

#[test]
fn next_in_line_has_nobody_ahead() {
    let pages = Pages::new();
    let page = pages.waiting(
        english(&pages),
        &WaitingView {
            position: Some(1),
            ..view()
        },
    );
    assert!(page.contains(&words("en").ahead_none));
    assert!(!markup(&page).contains(&words("en").ahead_before));
}

#[test]
fn unknown_position_says_the_place_is_being_saved() {
    let pages = Pages::new();
    let unknown = WaitingView {
        position: None,
        eta_seconds: None,
        ..view()
    };
    let english = pages.waiting(english(&pages), &unknown);
    assert!(english.contains("We are saving your place, please keep this page open."));
    assert!(english.contains("<strong id=\"anteroom-position\"></strong>"));
    assert!(english.contains("<p id=\"anteroom-ahead\"></p>"));
    assert!(english.contains(&words("en").eta_unknown));
    assert!(english.contains("<title>You are in the queue</title>"));
    assert!(!markup(&english).contains("Your number in the queue"));
    let italian = pages.waiting(italian(&pages), &unknown);
    assert!(italian.contains("Stiamo salvando il tuo posto, tieni aperta questa pagina."));
}

#[test]
fn hostile_values_are_escaped() {
    let hostile = WaitingView {
        room: "<script>alert(1)</script>",
        status_url: "/_anteroom/status?room=\"><script>alert('x')</script>&",
        ..view()
    };
    let pages = Pages::new();
    let visitor = Reader {
        query: "a=<script>&b=\"'",
        ..english(&pages)
    };
    let page = pages.waiting(visitor, &hostile);
    assert!(!page.contains("<script>alert"), "{page}");
    assert_eq!(
        page.matches("<script>").count(),
        1,
        "only the page's own script"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains(
        "data-status-url=\"/_anteroom/status?room=&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;\""
    ));
    assert!(page.contains("href=\"?a=&lt;script&gt;&amp;b=&quot;&#39;&amp;anteroom_lang=it\""));
}

#[test]
fn pages_are_small_and_complete() {
    let pages = Pages::new();
    let long_room = "r".repeat(200);
    for lang in [pages.lang("it").unwrap(), pages.lang("en").unwrap()] {
        let visitor = Reader { lang, query: "x=1" };
        let draw_url = format!("/_anteroom/draw?room={long_room}");
        let worst = WaitingView {
            room: &long_room,
            stage: Stage::InLine,
            position: Some(u64::MAX),
            eta_seconds: Some(u64::MAX),
            refresh_seconds: u64::MAX,
            updated_unix_seconds: u64::MAX,
            status_url: "/_anteroom/status?room=vaccini",
            room_state: RoomState::Paused,
            site_trouble: true,
            event: EventView {
                opens_at: Some(WEDNESDAY_NOON),
                pre_queue_from: Some(MONDAY_MORNING),
                opens_in_seconds: Some(u64::MAX),
                pre_queue: Some(u64::MAX),
                draw_place: Some(u64::MAX),
                draw_url: Some(&draw_url),
            },
        };
        for page in [
            pages.waiting(visitor, &worst),
            pages.waiting(
                visitor,
                &WaitingView {
                    stage: Stage::PreQueue { ticket: u64::MAX },
                    ..worst
                },
            ),
            pages.waiting(
                visitor,
                &WaitingView {
                    stage: Stage::NotOpen,
                    ..worst
                },
            ),
            pages.upstream_unavailable(visitor, 5, PassHeld::Yes),
            pages.goodbye(lang),
            pages.closed(visitor, 300),
            pages.confirm_leave(visitor, "vaccini"),
        ] {
            assert!(page.len() < 30 * 1024, "{} bytes", page.len());
            assert!(!page.contains("{{"), "unfilled placeholder");
            assert!(
                !page.contains("http://") && !page.contains("https://"),
                "no external requests"
            );
            assert!(page.starts_with("<!DOCTYPE html>"));
        }
    }
}

#[test]
fn the_policy_allows_exactly_the_inline_script_and_style() {
    let pages = Pages::new();
    let policy = pages.policy().to_str().unwrap();
    for visitor in [english(&pages), italian(&pages)] {
        let page = pages.waiting(visitor, &view());
        let inline = |open: &str, close: &str| {
            let start = page.find(open).unwrap() + open.len();
            let end = start + page[start..].find(close).unwrap();
            page[start..end].to_owned()
        };
        let script = inline("<script>", "</script>");
        let style = inline("<style>", "</style>");
        assert!(
            policy.contains(&format!("'{}'", source_hash(&script))),
            "{policy}"
        );
        assert!(
            policy.contains(&format!("style-src '{}';", source_hash(&style))),
            "{policy}"
        );
    }
    for directive in [
        "default-src 'none'",
        "connect-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
}

// ---------------------------------------------------------------- the other pages

#[test]
fn upstream_unavailable_is_friendly_retries_and_keeps_the_place() {
    let pages = Pages::new();
    let english = pages.upstream_unavailable(english(&pages), 9, PassHeld::Yes);
    assert!(english.contains("<meta http-equiv=\"refresh\" content=\"9\">"));
    assert!(english.contains("<html lang=\"en\" dir=\"ltr\">"));
    assert!(english.contains(&words("en").unavailable_retry));
    assert!(english.contains(&words("en").unavailable_place));
    assert!(!english.to_lowercase().contains("error"));
    assert!(!english.contains("502") && !english.contains("504"));
    let italian = pages.upstream_unavailable(italian(&pages), 9, PassHeld::No);
    assert!(italian.contains("<html lang=\"it\" dir=\"ltr\">"));
    assert!(italian.contains(&words("it").unavailable_lead));
    assert!(
        !italian.contains(&words("it").unavailable_place),
        "no place to keep outside a room"
    );
}

#[test]
fn the_small_pages_speak_both_languages() {
    let pages = Pages::new();
    for visitor in [english(&pages), italian(&pages)] {
        let texts = words(pages.code(visitor.lang));
        let closed = pages.closed(visitor, 300);
        assert!(closed.contains(&texts.closed_lead));
        assert!(closed.contains("<meta http-equiv=\"refresh\" content=\"300\">"));
        let leave = pages.confirm_leave(visitor, "vaccini");
        assert!(leave.contains(&texts.leave_button));
        assert!(leave.contains(r#"<form method="post" action="/_anteroom/leave?room=vaccini">"#));
        let too_many = pages.too_many_requests(visitor.lang);
        let too_many = std::str::from_utf8(&too_many).unwrap();
        assert!(too_many.contains(&texts.too_many_lead));
        // Sent to every rejected request: kept tiny, no stylesheet.
        assert!(too_many.len() < 512, "{}", too_many.len());
    }
    assert!(!pages.confirm_leave(english(&pages), "<x>").contains("<x>"));
}

#[test]
fn goodbye_says_the_place_went_to_the_next_person() {
    let pages = Pages::new();
    let english = pages.goodbye(pages.lang("en").unwrap());
    assert!(english.contains("<html lang=\"en\" dir=\"ltr\">"));
    assert!(english.contains(&words("en").goodbye_lead));
    assert!(
        !english.contains("http-equiv=\"refresh\""),
        "no reload back into the queue"
    );
    let italian = pages.goodbye(pages.lang("it").unwrap());
    assert!(italian.contains(&words("it").goodbye_lead));
}

#[test]
fn friendly_eta_ranges() {
    let cases = [
        (0, "less than a minute", "meno di un minuto"),
        (30, "less than a minute", "meno di un minuto"),
        (59, "less than a minute", "meno di un minuto"),
        (60, "about 1 minute", "circa 1 minuto"),
        (300, "about 5 minutes", "circa 5 minuti"),
        (599, "about 10 minutes", "circa 10 minuti"),
        (600, "about 10–15 minutes", "circa 10–15 minuti"),
        (700, "about 10–15 minutes", "circa 10–15 minuti"),
        (1799, "about 25–30 minutes", "circa 25–30 minuti"),
        (2400, "about 40–50 minutes", "circa 40–50 minuti"),
        (3599, "about 50–60 minutes", "circa 50–60 minuti"),
        (3600, "about 1–2 hours", "circa 1–2 ore"),
        (3600 * 3, "about 3 hours", "circa 3 ore"),
        (
            u64::MAX,
            "about 5124095576030431 hours",
            "circa 5124095576030431 ore",
        ),
    ];
    let (en, it) = (words("en"), words("it"));
    for (seconds, english, italian) in cases {
        let eta = |texts: &Texts| {
            let mut out = String::new();
            push_friendly_eta(&mut out, seconds, texts);
            out
        };
        assert_eq!(eta(&en), english, "{seconds} s");
        assert_eq!(eta(&it), italian, "{seconds} s");
    }
}

#[test]
fn the_script_table_cannot_close_the_script() {
    let mut out = String::new();
    push_js_string(&mut out, "</script>\"\\\u{2028}\n");
    assert_eq!(out, "\"\\u003c/script\\u003e\\\"\\\\\\u2028\\u000a\"");
}

#[test]
fn escaping_keeps_unicode() {
    let mut out = String::new();
    push_escaped(&mut out, "Sanità & “vaccini” <ok>");
    assert_eq!(out, "Sanità &amp; “vaccini” &lt;ok&gt;");
}

// ---------------------------------------------------------------- the operator's files

#[test]
fn an_operators_template_replaces_ours_and_the_rest_stay() {
    let pages = with_files(&[(
        "waiting.html",
        "<!DOCTYPE html><html lang=\"{{lang}}\"><head>{{head}}</head><body>\
         <header>ASL Roma 1</header><h1>{{title}}</h1>{{status}}{{script}}</body></html>",
    )])
    .unwrap();
    let page = pages.waiting(english(&pages), &view());
    assert!(page.contains("<header>ASL Roma 1</header><h1>You are in the queue</h1>"));
    assert!(page.contains("<strong id=\"anteroom-position\">42</strong>"));
    assert!(page.contains("<noscript><meta http-equiv=\"refresh\" content=\"7\">"));
    assert_eq!(page.matches("<script>").count(), 1);
    // Not replaced: ours.
    assert_eq!(
        pages.closed(english(&pages), 300),
        Pages::new().closed(english(&pages), 300)
    );
}

#[test]
fn an_operators_words_and_style_are_used_and_escaped() {
    let pages = with_files(&[
        (
            "lang/it.toml",
            "title = \"Sei in coda <per il vaccino> & basta\"\n",
        ),
        (
            "lang/de.toml",
            &texts::BUILT_IN[0]
                .1
                .replace("language_name = \"English\"", "language_name = \"Deutsch\"")
                .replace(
                    "title = \"You are in the queue\"",
                    "title = \"Sie sind in der Warteschlange\"",
                ),
        ),
        ("style.css", "body{background:#fed}"),
    ])
    .unwrap();
    let it = Reader {
        lang: pages.lang("it").unwrap(),
        query: "",
    };
    let page = pages.waiting(it, &view());
    assert!(
        page.contains("<h1>Sei in coda &lt;per il vaccino&gt; &amp; basta</h1>"),
        "{page}"
    );
    assert!(
        page.contains("Persone davanti a te: 41"),
        "the other Italian words stay ours"
    );
    assert!(page.contains("<style>body{background:#fed}</style>"));
    assert!(
        pages
            .policy()
            .to_str()
            .unwrap()
            .contains(&source_hash("body{background:#fed}"))
    );
    let de = pages.from_accept_language(Some("de-DE,de;q=0.9"));
    assert_eq!(pages.code(de), "de");
    let german = pages.waiting(
        Reader {
            lang: de,
            query: "",
        },
        &view(),
    );
    assert!(german.contains("<h1>Sie sind in der Warteschlange</h1>"));
    assert!(
        german.contains("hreflang=\"it\""),
        "the switch offers the others"
    );
    assert!(page.contains(">Deutsch</a>"));
}

#[test]
fn broken_operator_files_are_refused_naming_the_file_and_the_problem() {
    let cases: [(&str, &str, &str); 9] = [
        (
            "waiting.html",
            "<html><head>{{head}}</head>{{script}}</html>",
            "waiting.html (en): {{status}} must appear exactly once",
        ),
        (
            "waiting.html",
            "{{head}}{{status}}{{script}}{{positon}}",
            "unknown placeholder {{positon}}",
        ),
        (
            "closed.html",
            "{{head}}{{position}}",
            "{{position}} is not shown on closed.html",
        ),
        ("closed.html", "{{head}} {{title", "unclosed placeholder"),
        (
            "lang/it.toml",
            "titel = \"x\"",
            "lang/it.toml: titel: not a key",
        ),
        (
            "lang/de.toml",
            "title = \"x\"",
            "lang/de.toml: language_name: missing",
        ),
        (
            "lang/it.toml",
            "title_position = \"Numero in coda\"",
            "title_position: must contain {position}",
        ),
        ("lang/DE.toml", "", "the file name must be a language code"),
        (
            "wating.html",
            "",
            "wating.html: not a file the gateway uses",
        ),
    ];
    for (name, text, expected) in cases {
        let error = with_files(&[(name, text)]).unwrap_err();
        assert!(
            error.starts_with("pages.dir: /etc/anteroom/pages/"),
            "{error}"
        );
        assert!(error.contains(expected), "{name}: {error}");
    }
}
