//! Every answer rendered through the one renderer, for every kind of
//! client: the status code, `Retry-After`, `no-store`, the form (JSON or a
//! page with its policy) and the cookies all come from the value.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, Uri};
use http_body_util::BodyExt;

use anteroom_store::{ReceiptState, RoomState};

use super::audience::prefers;
use super::{Answer, Asked, Audience, PassHeld, Prefers};
use crate::intake::IntakeRefusal;
use crate::metrics::RequestOutcome;
use crate::page::Pages;
use crate::status::{SITE_OK, SITE_TROUBLE, Status};
use crate::{Body, full_body};

fn status(state: &'static str, position: Option<u64>) -> Status<'static> {
    Status {
        room: "vaccini",
        state,
        position,
        eta_seconds: position.map(|position| position * 6),
        refresh_seconds: 7,
        room_state: RoomState::Open,
        site: SITE_OK,
        opens_at: None,
        pre_queue_from: None,
        opens_in_seconds: None,
        pre_queue: None,
        ticket: None,
        draw_place: None,
        draw_url: None,
    }
}

/// One of each kind of answer.
fn every_answer() -> Vec<Answer<'static>> {
    let queued = ReceiptState::Queued {
        position: 3,
        attempts: 0,
    };
    vec![
        Answer::Status(status("waiting", Some(42))),
        Answer::Waiting {
            status: status("waiting", Some(42)),
            asked: Asked::Read,
            updated_unix_seconds: 1_700_000_000,
        },
        Answer::Waiting {
            status: status("waiting", Some(42)),
            asked: Asked::Write,
            updated_unix_seconds: 1_700_000_000,
        },
        Answer::PlaceLater {
            status: status("none", None),
            retry_seconds: 6,
            updated_unix_seconds: 1_700_000_000,
        },
        Answer::TooMany {
            retry_seconds: 2,
            message: "too many requests",
        },
        Answer::Closed { room: "vaccini" },
        Answer::SiteDown {
            code: StatusCode::BAD_GATEWAY,
            retry_seconds: 12,
            held: PassHeld::No,
        },
        Answer::Refused {
            code: StatusCode::NOT_FOUND,
            message: "no such room".into(),
        },
        Answer::Unavailable {
            message: "too many event streams",
            retry_seconds: 7,
        },
        Answer::IntakeRefused(IntakeRefusal::Full { retry_seconds: 9 }),
        Answer::IntakeRefused(IntakeRefusal::KeyReused),
        Answer::Accepted {
            receipt: "bookings-r1".into(),
            position: Some(3),
            state: queued.clone(),
            refresh_seconds: Some(2),
        },
        Answer::Receipt {
            id: "bookings-r1".into(),
            state: queued,
            refresh_seconds: Some(2),
        },
        Answer::ConfirmLeave { room: "vaccini" },
        Answer::Goodbye,
        Answer::SeeOther {
            location: HeaderValue::from_static("./prenota"),
        },
        Answer::NoContent,
        Answer::Events(full_body(Bytes::from_static(b": hello\n\n"))),
    ]
}

fn audience(pages: &Pages, accept: Option<&'static str>) -> Audience {
    let mut headers = HeaderMap::new();
    if let Some(accept) = accept {
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
    }
    Audience::of(pages, &headers, &Uri::from_static("/prenota?slot=9"))
}

fn content_type(response: &Response<Body>) -> &str {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

async fn text(response: Response<Body>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("our bodies do not fail")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("our bodies are UTF-8")
}

#[test]
fn accept_decides_the_form() {
    let form = |accept: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
        prefers(&headers)
    };
    assert_eq!(form("application/json"), Prefers::Json);
    assert_eq!(form("text/html,application/json;q=0.9"), Prefers::Html);
    assert_eq!(form("text/html"), Prefers::Html);
    assert_eq!(form("*/*"), Prefers::Either);
    assert_eq!(prefers(&HeaderMap::new()), Prefers::Either);
}

#[tokio::test]
async fn every_answer_carries_its_code_retry_after_no_store_and_cookies() {
    let pages = Pages::new();
    let cookie = HeaderValue::from_static("anteroom_pass_vaccini=x; Path=/");
    for accept in [None, Some("application/json"), Some("text/html")] {
        let audience = audience(&pages, accept);
        for answer in every_answer() {
            let described = format!("{answer:?} for Accept {accept:?}");
            let code = answer.code();
            let retry_after = answer.retry_after();
            let response = answer.render(&audience, &pages, vec![cookie.clone()]);
            assert_eq!(response.status(), code, "{described}");
            let headers = response.headers();
            assert_eq!(
                headers
                    .get(header::CACHE_CONTROL)
                    .map(HeaderValue::as_bytes),
                Some(&b"no-store"[..]),
                "{described}"
            );
            assert_eq!(
                headers
                    .get(header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<u64>().ok()),
                retry_after,
                "{described}"
            );
            assert_eq!(
                headers
                    .get_all(header::SET_COOKIE)
                    .iter()
                    .collect::<Vec<_>>(),
                [&cookie],
                "{described}"
            );
            if content_type(&response).starts_with("text/html") {
                assert!(
                    headers.contains_key(header::CONTENT_SECURITY_POLICY),
                    "{described}: a page carries its policy"
                );
                assert_eq!(
                    headers
                        .get(header::X_CONTENT_TYPE_OPTIONS)
                        .map(HeaderValue::as_bytes),
                    Some(&b"nosniff"[..]),
                    "{described}"
                );
            }
        }
    }
}

#[tokio::test]
async fn json_clients_get_json_browsers_get_pages_and_bookings_default_to_json() {
    let pages = Pages::new();
    let json = audience(&pages, Some("application/json"));
    let browser = audience(&pages, Some("text/html"));
    let unsaid = audience(&pages, None);
    let form = |answer: Answer<'static>, audience: &Audience| {
        let response = answer.render(audience, &pages, Vec::new());
        content_type(&response).to_owned()
    };
    let waiting = || Answer::Waiting {
        status: status("waiting", Some(42)),
        asked: Asked::Read,
        updated_unix_seconds: 1_700_000_000,
    };
    assert_eq!(form(waiting(), &json), "application/json");
    assert!(form(waiting(), &browser).starts_with("text/html"));
    assert!(form(waiting(), &unsaid).starts_with("text/html"));
    // The status call is JSON whatever is asked.
    assert_eq!(
        form(Answer::Status(status("waiting", Some(1))), &browser),
        "application/json"
    );
    let accepted = || Answer::Accepted {
        receipt: "bookings-r1".into(),
        position: Some(1),
        state: ReceiptState::Queued {
            position: 1,
            attempts: 0,
        },
        refresh_seconds: Some(2),
    };
    assert_eq!(form(accepted(), &unsaid), "application/json");
    assert_eq!(form(accepted(), &json), "application/json");
    assert!(form(accepted(), &browser).starts_with("text/html"));
}

#[tokio::test]
async fn the_status_json_is_the_contracts() {
    let pages = Pages::new();
    let response = Answer::Status(status("waiting", Some(42))).render(
        &audience(&pages, None),
        &pages,
        Vec::new(),
    );
    let value: serde_json::Value =
        serde_json::from_str(&text(response).await).expect("the status is JSON");
    assert_eq!(
        value,
        serde_json::json!({
            "room": "vaccini",
            "state": "waiting",
            "position": 42,
            "eta_seconds": 252,
            "refresh_seconds": 7,
            "room_state": "open",
            "site": "ok",
        })
    );
    // While the site is in trouble it says so (and gives no estimate).
    let trouble = Status {
        site: SITE_TROUBLE,
        eta_seconds: None,
        ..status("waiting", Some(42))
    };
    let response = Answer::Status(trouble).render(&audience(&pages, None), &pages, Vec::new());
    let value: serde_json::Value =
        serde_json::from_str(&text(response).await).expect("the status is JSON");
    assert_eq!(value["site"], "trouble", "{value}");
    assert_eq!(value["eta_seconds"], serde_json::Value::Null, "{value}");
    // And the page built from it says so from its first paint.
    let answer = Answer::Waiting {
        status: trouble,
        asked: Asked::Read,
        updated_unix_seconds: 1_700_000_000,
    };
    let page = text(answer.render(&audience(&pages, Some("text/html")), &pages, Vec::new())).await;
    assert!(
        page.contains(
            "<p id=\"anteroom-trouble\" class=\"notice\">The booking site is having trouble"
        ),
        "{page}"
    );
    // A pre-queue visitor of a room with an opening, shown in Rome's zone.
    let rome = jiff::tz::TimeZone::get("Europe/Rome").unwrap();
    let pre_queue = Status {
        opens_at: Some(crate::status::Instant {
            at: 1_612_177_200_000,
            zone: &rome,
        }),
        opens_in_seconds: Some(90),
        pre_queue: Some(12),
        ticket: Some(7),
        draw_url: Some("/_anteroom/draw?room=vaccini"),
        ..status("pre_queue", None)
    };
    let response = Answer::Status(pre_queue).render(&audience(&pages, None), &pages, Vec::new());
    let value: serde_json::Value =
        serde_json::from_str(&text(response).await).expect("the status is JSON");
    assert_eq!(value["opens_at"], "2021-02-01T12:00:00+01:00");
    assert_eq!(
        (&value["ticket"], &value["pre_queue"], &value["draw_url"]),
        (
            &serde_json::json!(7),
            &serde_json::json!(12),
            &serde_json::json!("/_anteroom/draw?room=vaccini")
        )
    );
    assert!(value.get("draw_place").is_none(), "not drawn yet: {value}");
}

#[tokio::test]
async fn an_accepted_booking_points_at_its_receipt() {
    let pages = Pages::new();
    let response = Answer::Accepted {
        receipt: "bookings-r1".into(),
        position: Some(3),
        state: ReceiptState::Queued {
            position: 3,
            attempts: 0,
        },
        refresh_seconds: Some(2),
    }
    .render(&audience(&pages, None), &pages, Vec::new());
    assert_eq!(
        response
            .headers()
            .get(header::LOCATION)
            .map(HeaderValue::as_bytes),
        Some(&b"/_anteroom/receipts/bookings-r1"[..])
    );
    let value: serde_json::Value =
        serde_json::from_str(&text(response).await).expect("the receipt is JSON");
    assert_eq!(
        value,
        serde_json::json!({
            "receipt": "bookings-r1",
            "status_url": "/_anteroom/receipts/bookings-r1",
            "position": 3,
        })
    );
}

#[test]
fn outcomes_follow_the_answer() {
    let outcome = |answer: Answer<'static>| answer.outcome();
    assert_eq!(
        outcome(Answer::Waiting {
            status: status("waiting", Some(1)),
            asked: Asked::Write,
            updated_unix_seconds: 0,
        }),
        RequestOutcome::Waiting
    );
    assert_eq!(
        outcome(Answer::TooMany {
            retry_seconds: 1,
            message: "too many requests"
        }),
        RequestOutcome::RateLimited
    );
    assert_eq!(
        outcome(Answer::IntakeRefused(IntakeRefusal::Body(
            crate::body::BodyError::TooLarge { limit: 1 }
        ))),
        RequestOutcome::Rejected
    );
    assert_eq!(
        outcome(Answer::BodyRefused(crate::body::BodyError::TooSlow {
            received: 1,
            elapsed: std::time::Duration::from_secs(10)
        })),
        RequestOutcome::Rejected
    );
    assert_eq!(
        outcome(Answer::BodyRefused(crate::body::BodyError::OverClientShare)),
        RequestOutcome::RateLimited
    );
    assert_eq!(
        outcome(Answer::IntakeRefused(IntakeRefusal::StoreUnavailable)),
        RequestOutcome::Error
    );
    assert_eq!(outcome(Answer::Goodbye), RequestOutcome::Gateway);
    assert_eq!(
        outcome(Answer::Accepted {
            receipt: "r".into(),
            position: None,
            state: ReceiptState::Processing { attempts: 1 },
            refresh_seconds: Some(2),
        }),
        RequestOutcome::Buffered
    );
}

#[tokio::test]
async fn a_page_speaks_the_chosen_language_then_the_browsers() {
    let pages = Pages::new();
    let page_lang = |headers: &[(header::HeaderName, &'static str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(name, HeaderValue::from_static(value));
        }
        let audience = Audience::of(&pages, &map, &Uri::from_static("/prenota"));
        let response = Answer::Closed { room: "vaccini" }.render(&audience, &pages, Vec::new());
        async move {
            let html = text(response).await;
            html.split("<html lang=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_owned)
        }
    };
    assert_eq!(page_lang(&[]).await.as_deref(), Some("en"));
    assert_eq!(
        page_lang(&[(header::ACCEPT_LANGUAGE, "it-IT,it;q=0.9")])
            .await
            .as_deref(),
        Some("it")
    );
    // The switch's cookie beats the browser's wish, in one Cookie header or
    // among several.
    assert_eq!(
        page_lang(&[
            (header::ACCEPT_LANGUAGE, "it"),
            (header::COOKIE, "site=1; anteroom_lang=en")
        ])
        .await
        .as_deref(),
        Some("en")
    );
    assert_eq!(
        page_lang(&[
            (header::COOKIE, "site=1"),
            (header::COOKIE, "anteroom_lang=it")
        ])
        .await
        .as_deref(),
        Some("it")
    );
}

#[tokio::test]
async fn a_launch_events_page_shows_its_times_in_the_deployments_zone() {
    let pages = Pages::new();
    let kolkata = jiff::tz::TimeZone::get("Asia/Kolkata").unwrap();
    // 2021-03-01T12:00:00Z: 17:30 in Kolkata (UTC+05:30), a Monday; its
    // pre-queue from 11:00 UTC, 16:30 there.
    let opens_at = 1_614_600_000_000;
    let at = |at| crate::status::Instant { at, zone: &kolkata };
    let status = |state: &'static str, ticket: Option<u64>| Status {
        opens_at: Some(at(opens_at)),
        pre_queue_from: Some(at(opens_at - 3_600_000)),
        opens_in_seconds: Some(90),
        pre_queue: Some(3),
        ticket,
        draw_url: Some("/_anteroom/draw?room=vaccini"),
        ..status(state, None)
    };
    let browser = audience(&pages, Some("text/html"));
    let render = async |status| {
        let answer = Answer::Waiting {
            status,
            asked: Asked::Read,
            updated_unix_seconds: 1_614_599_000,
        };
        text(answer.render(&browser, &pages, Vec::new())).await
    };
    let not_open = render(status("not_open", None)).await;
    assert!(not_open.contains("data-page=\"not_open\""), "{not_open}");
    for words in [
        "Opens at 17:30 (Monday 1 March).",
        "Opens in: 1 minute 30 seconds",
        "From 16:30 this page gives you a ticket",
    ] {
        assert!(not_open.contains(words), "{words}: {not_open}");
    }
    let pre_queue = render(status("pre_queue", Some(2))).await;
    assert!(!pre_queue.contains("data-page=\"not_open\""), "{pre_queue}");
    for words in [
        "Your ticket for the draw: </span><strong id=\"anteroom-position\">2</strong>",
        "Opens at 17:30 (Monday 1 March).",
        "People waiting for the draw so far: 3",
    ] {
        assert!(pre_queue.contains(words), "{words}: {pre_queue}");
    }
}
