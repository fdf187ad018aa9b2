//! The booking API: the demo's slots, bookings that never overbook and
//! honour `Idempotency-Key`, and the answers (JSON, or a page for a
//! browser's form post).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::form::form_fields;
use super::pages::{escape, page};
use super::{Body, html, json_response};

/// Booking bodies are a name and a slot; anything bigger is not a booking.
const MAX_BOOKING_BODY: usize = 64 * 1024;
pub(super) const MAX_NAME_CHARS: usize = 200;
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// The demo's fixed appointment slots: id and label.
pub(super) const SLOTS: [(&str, &str); 4] = [
    ("2021-03-01T09:00", "lunedì 1 marzo / Monday 1 March, 09:00"),
    ("2021-03-01T09:30", "lunedì 1 marzo / Monday 1 March, 09:30"),
    ("2021-03-01T10:00", "lunedì 1 marzo / Monday 1 March, 10:00"),
    ("2021-03-01T10:30", "lunedì 1 marzo / Monday 1 March, 10:30"),
];

/// Every booking taken, shared by the site's requests.
pub(super) struct Bookings {
    /// Bookings each slot takes before answering `409`.
    slot_capacity: u32,
    /// A std mutex: every critical section is a few map and counter updates
    /// with no `.await` inside.
    ledger: Mutex<Ledger>,
}

struct Ledger {
    /// Bookings taken per slot, in `SLOTS` order.
    booked: [u32; SLOTS.len()],
    total: u64,
    /// Bookings by idempotency key. Only successful bookings are kept, so it
    /// holds at most `SLOTS.len() * slot_capacity` entries: bounded.
    by_key: HashMap<String, Booking>,
}

#[derive(Debug, Clone)]
struct Booking {
    id: u64,
    name: String,
    slot: usize,
}

#[derive(Debug)]
enum BookingError {
    BadRequest(&'static str),
    TooLarge,
    UnknownSlot,
    SlotFull,
}

impl Bookings {
    pub(super) fn new(slot_capacity: u32) -> Bookings {
        Bookings {
            slot_capacity,
            ledger: Mutex::new(Ledger {
                booked: [0; SLOTS.len()],
                total: 0,
                by_key: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // No critical section can leave the state half-updated, so a
        // poisoned lock still holds consistent data.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place in `slot` unless the key was seen before (same booking
    /// again, `true`) or the slot is full.
    fn book(
        &self,
        key: Option<String>,
        name: String,
        slot: usize,
    ) -> Result<(Booking, bool), BookingError> {
        let mut ledger = self.lock();
        if let Some(existing) = key.as_ref().and_then(|key| ledger.by_key.get(key)) {
            return Ok((existing.clone(), true));
        }
        if ledger.booked[slot] >= self.slot_capacity {
            return Err(BookingError::SlotFull);
        }
        ledger.booked[slot] += 1;
        ledger.total += 1;
        let booking = Booking {
            id: ledger.total,
            name,
            slot,
        };
        if let Some(key) = key {
            ledger.by_key.insert(key, booking.clone());
        }
        Ok((booking, false))
    }

    /// Places left in each slot, in `SLOTS` order.
    pub(super) fn remaining(&self) -> [u32; SLOTS.len()] {
        let ledger = self.lock();
        ledger
            .booked
            .map(|booked| self.slot_capacity.saturating_sub(booked))
    }

    /// Bookings taken so far.
    pub(super) fn total(&self) -> u64 {
        self.lock().total
    }
}

/// `GET /api/slots`: every slot with the places left.
pub(super) fn slots(bookings: &Bookings) -> Response<Body> {
    let remaining = bookings.remaining();
    let slots: Vec<Value> = SLOTS
        .iter()
        .zip(remaining)
        .map(|((id, label), remaining)| {
            json!({"id": id, "label": label, "capacity": bookings.slot_capacity, "remaining": remaining})
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "slots": slots }))
}

/// `POST /api/bookings`.
pub(super) async fn create_booking(
    bookings: &Bookings,
    request: Request<Incoming>,
) -> Response<Body> {
    let wants_html = prefers_html(request.headers());
    let outcome = read_and_book(bookings, request).await;
    let (status, body, title) = match outcome {
        Ok((booking, replayed)) => {
            let (slot_id, slot_label) = SLOTS[booking.slot];
            let mut response = booking_response(
                wants_html,
                StatusCode::CREATED,
                json!({"booking": booking.id, "name": booking.name, "slot": slot_id, "slot_label": slot_label}),
                "Prenotato! / Booked!",
                &format!(
                    "Prenotazione n. {id} / Booking no. {id}: {slot_label}",
                    id = booking.id
                ),
            );
            if replayed {
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            return response;
        }
        Err(BookingError::BadRequest(reason)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": reason}),
            "Dati mancanti / Missing details",
        ),
        Err(BookingError::TooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "body too large"}),
            "Richiesta troppo grande / Too large",
        ),
        Err(BookingError::UnknownSlot) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "unknown slot"}),
            "Orario sconosciuto / Unknown slot",
        ),
        Err(BookingError::SlotFull) => (
            StatusCode::CONFLICT,
            json!({"error": "slot full"}),
            "Orario esaurito / Slot full",
        ),
    };
    booking_response(wants_html, status, body, title, "")
}

async fn read_and_book(
    bookings: &Bookings,
    request: Request<Incoming>,
) -> Result<(Booking, bool), BookingError> {
    let key = match request.headers().get("idempotency-key") {
        None => None,
        Some(value) => match value.to_str() {
            Ok(key) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_BYTES => {
                Some(key.to_owned())
            }
            _ => return Err(BookingError::BadRequest("bad Idempotency-Key")),
        },
    };
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim_start().to_ascii_lowercase());
    let body = match Limited::new(request.into_body(), MAX_BOOKING_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(BookingError::TooLarge);
        }
        Err(_) => return Err(BookingError::BadRequest("request body failed")),
    };
    let is_json = match is_json {
        Some(content_type) if content_type.starts_with("application/json") => true,
        Some(content_type) if content_type.starts_with("application/x-www-form-urlencoded") => {
            false
        }
        _ => body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{'),
    };
    let (name, slot) = if is_json {
        json_fields(&body)?
    } else {
        form_fields(&body)
    };
    let name = name.map(|name| name.trim().to_owned()).unwrap_or_default();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(BookingError::BadRequest(
            "name is required (at most 200 characters)",
        ));
    }
    let slot = slot.ok_or(BookingError::BadRequest("slot is required"))?;
    let slot = SLOTS
        .iter()
        .position(|(id, _)| *id == slot)
        .ok_or(BookingError::UnknownSlot)?;
    bookings.book(key, name, slot)
}

fn json_fields(body: &[u8]) -> Result<(Option<String>, Option<String>), BookingError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| BookingError::BadRequest("body is not JSON"))?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok((field("name"), field("slot")))
}

/// A browser submitting the form gets a page; scripts and `curl` get JSON.
fn prefers_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn booking_response(
    wants_html: bool,
    status: StatusCode,
    body: Value,
    title: &str,
    message: &str,
) -> Response<Body> {
    if !wants_html {
        return json_response(status, &body);
    }
    let message = if message.is_empty() {
        body.get("error")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    } else {
        message.to_owned()
    };
    html(
        status,
        page(
            title,
            &format!(
                "<h1>{}</h1>\n<p>{}</p>\n<p><a href=\"/prenota\">Torna alle prenotazioni / Back to booking</a></p>",
                escape(title),
                escape(&message)
            ),
        ),
    )
}
