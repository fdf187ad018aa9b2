//! A launch event's pages: not open yet, the pre-queue, and the place
//! from the draw; their times, countdowns and sentences in both languages.

use super::*;
use crate::page::format::{push_countdown_line, push_marked};

/// Wednesday 3 March, 12:00 (the opening).
pub(super) const WEDNESDAY_NOON: WallClock = WallClock {
    month: 3,
    day: 3,
    weekday: 2,
    hour: 12,
    minute: 0,
};
/// Monday 1 March, 09:05 (a pre-queue that opens two days before).
pub(super) const MONDAY_MORNING: WallClock = WallClock {
    month: 3,
    day: 1,
    weekday: 0,
    hour: 9,
    minute: 5,
};
/// Wednesday 3 March, 11:00 (a pre-queue that opens the same day).
const WEDNESDAY_ELEVEN: WallClock = WallClock {
    hour: 11,
    ..WEDNESDAY_NOON
};

fn event<'a>() -> EventView<'a> {
    EventView {
        opens_at: Some(WEDNESDAY_NOON),
        pre_queue_from: Some(WEDNESDAY_ELEVEN),
        opens_in_seconds: Some(3_900),
        pre_queue: Some(1_234),
        draw_place: None,
        draw_url: Some("/_anteroom/draw?room=vaccini"),
    }
}

fn not_open<'a>() -> WaitingView<'a> {
    WaitingView {
        stage: Stage::NotOpen,
        position: None,
        eta_seconds: None,
        event: EventView {
            pre_queue: None,
            ..event()
        },
        ..view()
    }
}

fn pre_queue<'a>() -> WaitingView<'a> {
    WaitingView {
        stage: Stage::PreQueue { ticket: 4_321 },
        position: Some(4_321),
        eta_seconds: None,
        event: event(),
        ..view()
    }
}

fn drawn<'a>() -> WaitingView<'a> {
    WaitingView {
        stage: Stage::InLine,
        position: Some(17),
        eta_seconds: Some(300),
        event: EventView {
            opens_in_seconds: None,
            draw_place: Some(17),
            ..event()
        },
        ..view()
    }
}

/// The text of the element with `id` (its markup up to the closing tag).
fn element<'a>(page: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\"");
    let start = page
        .find(&open)
        .unwrap_or_else(|| panic!("#{id} in {page}"))
        + open.len();
    let start = start + page[start..].find('>').unwrap() + 1;
    let end = start + page[start..].find("</").unwrap();
    &page[start..end]
}

#[test]
fn before_the_pre_queue_the_page_says_when_and_has_no_place() {
    let pages = Pages::new();
    for (reader, words) in [
        (
            english(&pages),
            [
                "Booking has not opened yet",
                "Opens at 12:00 (Wednesday 3 March).",
                "Opens in: 1 hour 5 minutes",
                "From 11:00 this page gives you a ticket for the draw by itself.",
                "everyone who arrives before 12:00 has the same chance, because at 12:00 a random draw",
                "Keep this page open: it will let you in by itself.",
            ],
        ),
        (
            italian(&pages),
            [
                "Le prenotazioni non sono ancora aperte",
                "Apre alle 12:00 (mercoledì 3 marzo).",
                "Apre tra: 1 ora 5 minuti",
                "Dalle 11:00 questa pagina ti darà da sola un biglietto per il sorteggio.",
                "chi arriva prima delle 12:00 ha le stesse possibilità di tutti, perché alle 12:00",
                "Tieni aperta questa pagina: ti farà entrare da sola.",
            ],
        ),
    ] {
        let page = pages.waiting(reader, &not_open());
        let shown = markup(&page);
        for words in words {
            assert!(shown.contains(words), "{words:?} in {shown}");
        }
        assert!(shown.contains("data-page=\"not_open\""), "{shown}");
        assert!(shown.contains("data-opens-in=\"3900\""), "{shown}");
        assert!(
            shown.contains("<noscript><meta http-equiv=\"refresh\" content=\"7\"></noscript>"),
            "{shown}"
        );
        assert!(!shown.contains("anteroom-position"), "no place: {shown}");
        assert!(page.contains("<script>"), "the script follows the opening");
    }
}

#[test]
fn a_pre_queue_on_another_day_says_its_date_and_none_says_nothing_of_it() {
    let pages = Pages::new();
    let earlier = WaitingView {
        event: EventView {
            pre_queue_from: Some(MONDAY_MORNING),
            ..not_open().event
        },
        ..not_open()
    };
    let page = pages.waiting(italian(&pages), &earlier);
    assert_eq!(
        element(&page, "anteroom-pre-queue-from"),
        "Dalle 09:05 (lunedì 1 marzo) questa pagina ti darà da sola un biglietto per il sorteggio."
    );
    // An opening without a pre-queue: the door opens to everyone at once,
    // first come, first served; no draw to speak of.
    let no_pre_queue = WaitingView {
        event: EventView {
            pre_queue_from: None,
            ..not_open().event
        },
        ..not_open()
    };
    let page = pages.waiting(english(&pages), &no_pre_queue);
    assert_eq!(element(&page, "anteroom-pre-queue-from"), "");
    assert_eq!(element(&page, "anteroom-same-chance"), "");
    assert_eq!(
        element(&page, "anteroom-opens"),
        "Opens at 12:00 (Wednesday 3 March)."
    );
}

#[test]
fn the_pre_queue_page_shows_the_ticket_the_crowd_the_countdown_and_the_draw() {
    let pages = Pages::new();
    let page = pages.waiting(english(&pages), &pre_queue());
    assert_eq!(
        element(&page, "anteroom-position-label"),
        "Your ticket for the draw: "
    );
    assert_eq!(element(&page, "anteroom-position"), "4,321");
    assert_eq!(
        element(&page, "anteroom-pre-queue"),
        "People waiting for the draw so far: 1,234"
    );
    assert_eq!(
        element(&page, "anteroom-opens"),
        "Opens at 12:00 (Wednesday 3 March)."
    );
    assert_eq!(
        element(&page, "anteroom-countdown"),
        "Opens in: 1 hour 5 minutes"
    );
    assert!(
        element(&page, "anteroom-same-chance").starts_with("Arriving early gives no advantage")
    );
    assert_eq!(element(&page, "anteroom-ahead"), "", "nobody is ahead yet");
    assert_eq!(
        element(&page, "anteroom-eta"),
        "",
        "no wait to estimate yet"
    );
    assert_eq!(element(&page, "anteroom-draw-place"), "");
    assert!(
        page.contains(
            "<p id=\"anteroom-draw\">Anyone can check the draw: <a href=\"/_anteroom/draw?room=vaccini\">its public record</a></p>"
        ),
        "{page}"
    );
    assert!(page.contains("<title>You are in the queue</title>"));
    assert!(page.contains("data-opens-in=\"3900\""));
    assert!(
        !markup(&page).contains("data-page"),
        "the waiting page: {page}"
    );

    let italian_page = pages.waiting(italian(&pages), &pre_queue());
    assert_eq!(element(&italian_page, "anteroom-position"), "4.321");
    assert_eq!(
        element(&italian_page, "anteroom-pre-queue"),
        "Persone in attesa del sorteggio finora: 1.234"
    );
    assert_eq!(
        element(&italian_page, "anteroom-draw-place"),
        "",
        "not drawn yet"
    );
}

#[test]
fn after_the_draw_the_waiting_page_adds_the_place_in_it() {
    let pages = Pages::new();
    let page = pages.waiting(english(&pages), &drawn());
    assert_eq!(element(&page, "anteroom-position"), "17");
    assert_eq!(
        element(&page, "anteroom-draw-place"),
        "Your place in the draw: 17 of 1,234."
    );
    assert!(element(&page, "anteroom-eta").starts_with("Estimated wait: "));
    for gone in [
        "anteroom-opens",
        "anteroom-countdown",
        "anteroom-pre-queue",
        "anteroom-same-chance",
    ] {
        assert_eq!(element(&page, gone), "", "#{gone}");
    }
    assert!(
        page.contains("<p id=\"anteroom-draw\">"),
        "the link: {page}"
    );
    assert!(page.contains("<title>Number 17 in the queue</title>"));
    let italian_page = pages.waiting(italian(&pages), &drawn());
    assert_eq!(
        element(&italian_page, "anteroom-draw-place"),
        "Il tuo posto nel sorteggio: 17 su 1.234."
    );

    // Arrived after the opening (no place in the draw), or in a room
    // without an event: the plain waiting page.
    for view in [
        WaitingView {
            event: EventView {
                draw_place: None,
                ..drawn().event
            },
            ..drawn()
        },
        view(),
    ] {
        let page = pages.waiting(english(&pages), &view);
        assert!(page.contains("<p id=\"anteroom-draw\" hidden>"), "{page}");
        assert_eq!(element(&page, "anteroom-draw-place"), "");
        assert!(page.contains("data-opens-in=\"\""));
    }
}

#[test]
fn countdowns_say_the_two_largest_units() {
    let texts = (words("en"), words("it"));
    for (seconds, english, italian) in [
        (0, "Opening now…", "Apertura in corso…"),
        (1, "Opens in: 1 second", "Apre tra: 1 secondo"),
        (59, "Opens in: 59 seconds", "Apre tra: 59 secondi"),
        (60, "Opens in: 1 minute", "Apre tra: 1 minuto"),
        (
            61,
            "Opens in: 1 minute 1 second",
            "Apre tra: 1 minuto 1 secondo",
        ),
        (
            3_599,
            "Opens in: 59 minutes 59 seconds",
            "Apre tra: 59 minuti 59 secondi",
        ),
        (3_600, "Opens in: 1 hour", "Apre tra: 1 ora"),
        (
            7_320,
            "Opens in: 2 hours 2 minutes",
            "Apre tra: 2 ore 2 minuti",
        ),
        (86_400, "Opens in: 1 day", "Apre tra: 1 giorno"),
        (
            3 * 86_400 + 3_600 + 59,
            "Opens in: 3 days 1 hour",
            "Apre tra: 3 giorni 1 ora",
        ),
    ] {
        for (texts, expected) in [(&texts.0, english), (&texts.1, italian)] {
            let mut out = String::new();
            push_countdown_line(&mut out, seconds, texts);
            assert_eq!(out, expected, "{seconds} s");
        }
    }
    let mut out = String::new();
    push_countdown_line(&mut out, u64::MAX, &texts.0);
    assert!(out.starts_with("Opens in: 213503982334601 days"), "{out}");
}

#[test]
fn marks_are_filled_and_other_braces_kept() {
    let mut out = String::new();
    push_marked(&mut out, "{a} {b} {c d} {} { {a", |mark, out| {
        if mark == "a" {
            out.push('A');
            true
        } else {
            false
        }
    });
    assert_eq!(out, "A {b} {c d} {} { {a");
}

#[test]
fn a_language_file_needs_complete_name_lists_and_the_marks() {
    let english = words("en");
    for (file, problem) in [
        (
            "weekday_names = \"Mon, Tue, Wed, Thu, Fri, Sat\"",
            "weekday_names: must hold 7 names",
        ),
        (
            "month_names = \"Jan, Feb\"",
            "month_names: must hold 12 names",
        ),
        (
            "opens_line = \"Opens soon\"",
            "opens_line: must contain {time}",
        ),
        (
            "draw_place_line = \"Place {place}\"",
            "draw_place_line: must contain {size}",
        ),
        (
            "date_format = \"{weekday}\"",
            "date_format: must contain {day}",
        ),
    ] {
        let error = Texts::parse(file, Some(&english)).unwrap_err();
        assert!(error.starts_with(problem), "{file}: {error}");
    }
}
