//! Every answer of ours on the public listener, as a value, and the one
//! function that turns it into an HTTP response.
//!
//! Handlers decide; they do not build responses. An [`Answer`] knows its
//! status code, its `Retry-After` and its metric outcome; [`Answer::render`]
//! alone chooses JSON or HTML (from the request's [`Audience`]), picks the
//! page in the visitor's language, and sets the headers every answer of
//! ours carries: `Cache-Control: no-store` (an answer about a visitor's
//! place must never be cached by anything in between), `Retry-After` where
//! there is one, the page's `Content-Security-Policy`, and the cookies the
//! door handed out.
//!
//! The one response that is not ours is the site's own ([`Reply::Site`]):
//! it goes back as it came, with our cookies added.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::json;

use anteroom_store::ReceiptState;

use crate::body::BodyError;
use crate::intake::IntakeRefusal;
use crate::metrics::RequestOutcome;
pub use crate::page::PassHeld;
use crate::page::{EventView, Pages, Reader, Stage, WaitingView};

mod audience;
use crate::respond::{add_cookies, json_error, json_response, self_contained_page};
use crate::status::Status;
use crate::{Body, full_body};
pub use audience::{Audience, Prefers};

/// `Retry-After` of the closed page, which also looks again by itself this
/// often: a closed room is a matter of minutes or hours.
pub const CLOSED_RETRY_SECONDS: u64 = 300;

/// What a request is answered with: ours, or the site's.
pub enum Reply<'a> {
    Ours(Answer<'a>),
    /// The upstream's response, streamed back as it came.
    Site(Response<Body>),
}

/// One outcome of a request on the public listener that the gateway
/// answers itself.
#[derive(Debug)]
pub enum Answer<'a> {
    /// `GET /_anteroom/status`: the status JSON, whatever the client accepts.
    Status(Status<'a>),
    /// `GET /_anteroom/draw`: the room's public draw (JSON).
    Draw(Box<anteroom_store::draw::PublicDraw>),
    /// A visitor in line asking for a protected address: the waiting page,
    /// or the status JSON for clients that ask for JSON. `200` for a read;
    /// a write gets `503`, so that no client mistakes it for success.
    Waiting {
        status: Status<'a>,
        asked: Asked,
        /// When the figures were taken, shown on the page.
        updated_unix_seconds: u64,
    },
    /// A browser over `tickets_per_ip_per_minute` (perhaps one of many
    /// visitors behind one address): the waiting page with no place yet,
    /// `429`, and it tries again by itself once the limit allows.
    PlaceLater {
        status: Status<'a>,
        retry_seconds: u64,
        updated_unix_seconds: u64,
    },
    /// Over a rate limit: `429`.
    TooMany {
        retry_seconds: u64,
        message: &'static str,
    },
    /// The room is closed to newcomers: `503`, looked at again in minutes.
    Closed { room: &'a str },
    /// The site could not answer. `code` says what happened (`502`, `503`,
    /// `504`); `held` says whether the visitor holds a room's pass, which
    /// the page tells them they keep.
    SiteDown {
        code: StatusCode,
        retry_seconds: u64,
        held: PassHeld,
    },
    /// A request we will not serve as sent: a `4xx` with a short reason.
    Refused {
        code: StatusCode,
        message: Cow<'static, str>,
    },
    /// Something of ours cannot serve right now (the store, the bound on
    /// event streams): `503` with a short reason.
    Unavailable {
        message: &'static str,
        retry_seconds: u64,
    },
    /// A request body we would not take: too slow, too large, broken, or
    /// no memory left for it.
    BodyRefused(BodyError),
    /// A write to a buffer that was not stored, and why.
    IntakeRefused(IntakeRefusal),
    /// A write to a buffer, stored: `202` with its receipt.
    Accepted {
        receipt: String,
        /// Its place in the buffer's queue; `None` for a resubmission.
        position: Option<u64>,
        /// Where it stands, for the receipt page.
        state: ReceiptState,
        refresh_seconds: Option<u64>,
    },
    /// `GET /_anteroom/receipts/ID`.
    Receipt {
        id: String,
        state: ReceiptState,
        refresh_seconds: Option<u64>,
    },
    /// `GET /_anteroom/leave`: the form that asks before leaving.
    ConfirmLeave { room: &'a str },
    /// After `POST /_anteroom/leave`.
    Goodbye,
    /// The language switch: back to the same address without its parameter
    /// (`303`).
    SeeOther { location: HeaderValue },
    /// Nothing to say (`204`): an event stream asked for by a visitor with
    /// no place to follow.
    NoContent,
    /// A Server-Sent Events stream.
    Events(Body),
}

/// Was the request a read or a write? A waiting visitor's write must not
/// look like success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Read,
    Write,
}

impl Answer<'_> {
    pub fn code(&self) -> StatusCode {
        match self {
            Answer::Status(_)
            | Answer::Draw(_)
            | Answer::Receipt { .. }
            | Answer::ConfirmLeave { .. }
            | Answer::Goodbye
            | Answer::Events(_) => StatusCode::OK,
            Answer::Waiting {
                asked: Asked::Read, ..
            } => StatusCode::OK,
            Answer::Waiting {
                asked: Asked::Write,
                ..
            }
            | Answer::Closed { .. }
            | Answer::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Answer::PlaceLater { .. } | Answer::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Answer::SiteDown { code, .. } | Answer::Refused { code, .. } => *code,
            Answer::IntakeRefused(refusal) => refusal.code(),
            Answer::BodyRefused(error) => error.code(),
            Answer::Accepted { .. } => StatusCode::ACCEPTED,
            Answer::SeeOther { .. } => StatusCode::SEE_OTHER,
            Answer::NoContent => StatusCode::NO_CONTENT,
        }
    }

    /// Seconds after which asking again makes sense, if it does.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Answer::Waiting { status, .. } => Some(status.refresh_seconds),
            Answer::PlaceLater { retry_seconds, .. }
            | Answer::TooMany { retry_seconds, .. }
            | Answer::SiteDown { retry_seconds, .. }
            | Answer::Unavailable { retry_seconds, .. } => Some(*retry_seconds),
            Answer::Closed { .. } => Some(CLOSED_RETRY_SECONDS),
            Answer::IntakeRefused(refusal) => refusal.retry_after(),
            Answer::BodyRefused(error) => error.retry_after(),
            Answer::Receipt {
                refresh_seconds, ..
            } => *refresh_seconds,
            _ => None,
        }
    }

    /// How the request ended, for `anteroom_requests_total{outcome}`.
    pub fn outcome(&self) -> RequestOutcome {
        match self {
            Answer::Waiting { .. } => RequestOutcome::Waiting,
            Answer::Accepted { .. } => RequestOutcome::Buffered,
            answer => match answer.code().as_u16() {
                429 => RequestOutcome::RateLimited,
                400..=499 => RequestOutcome::Rejected,
                500..=599 => RequestOutcome::Error,
                _ => RequestOutcome::Gateway,
            },
        }
    }

    /// The one place an answer of ours becomes a response.
    pub fn render(
        self,
        audience: &Audience,
        pages: &Pages,
        set_cookies: Vec<HeaderValue>,
    ) -> Response<Body> {
        let code = self.code();
        let retry_after = self.retry_after();
        let page = |html: String| self_contained_page(code, Bytes::from(html), pages.policy());
        // The language is read only for a page.
        let reader = || audience.reader(pages);
        let mut response = match self {
            Answer::Status(status) => json_response(code, &status),
            Answer::Draw(draw) => json_response(code, &draw),
            Answer::Waiting {
                status,
                updated_unix_seconds,
                ..
            } if audience.takes_pages() => page(waiting_page(
                pages,
                reader(),
                &status,
                status.refresh_seconds,
                updated_unix_seconds,
            )),
            Answer::Waiting { status, .. } => json_response(code, &status),
            Answer::PlaceLater {
                status,
                retry_seconds,
                updated_unix_seconds,
            } => page(waiting_page(
                pages,
                reader(),
                &status,
                retry_seconds,
                updated_unix_seconds,
            )),
            Answer::TooMany {
                retry_seconds,
                message,
            } => {
                if audience.takes_pages() {
                    // Rendered once at startup: refusing must stay cheap.
                    self_contained_page(
                        code,
                        pages.too_many_requests(reader().lang),
                        pages.policy(),
                    )
                } else {
                    json_response(
                        code,
                        &json!({ "error": message, "retry_after_seconds": retry_seconds }),
                    )
                }
            }
            Answer::Closed { room } => {
                if audience.takes_pages() {
                    page(pages.closed(reader(), CLOSED_RETRY_SECONDS))
                } else {
                    json_response(
                        code,
                        &json!({"room": room, "state": "none", "room_state": "closed"}),
                    )
                }
            }
            Answer::SiteDown {
                retry_seconds,
                held,
                ..
            } => {
                if audience.takes_pages() {
                    page(pages.upstream_unavailable(reader(), retry_seconds, held))
                } else {
                    json_error(
                        code,
                        "the site cannot answer right now; please try again shortly",
                    )
                }
            }
            Answer::Refused { message, .. } => json_error(code, &message),
            Answer::Unavailable { message, .. } => json_error(code, message),
            Answer::IntakeRefused(refusal) => json_error(code, &refusal.message()),
            Answer::BodyRefused(error) => json_error(code, error.message()),
            Answer::Accepted {
                receipt,
                position,
                state,
                refresh_seconds,
            } => {
                let status_url = format!("/_anteroom/receipts/{receipt}");
                let mut response = if audience.takes_receipt_pages() {
                    page(pages.receipt(reader(), &receipt, &state, refresh_seconds))
                } else {
                    json_response(
                        code,
                        &json!({ "receipt": receipt, "status_url": status_url, "position": position }),
                    )
                };
                if let Ok(location) = HeaderValue::from_str(&status_url) {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                response
            }
            Answer::Receipt {
                id,
                state,
                refresh_seconds,
            } => {
                if audience.takes_receipt_pages() {
                    // The receipt page's links go to the receipt itself.
                    let reader = Reader {
                        query: "",
                        ..reader()
                    };
                    page(pages.receipt(reader, &id, &state, refresh_seconds))
                } else {
                    json_response(code, &crate::intake::receipt_json(&state))
                }
            }
            Answer::ConfirmLeave { room } => page(pages.confirm_leave(reader(), room)),
            Answer::Goodbye => page(pages.goodbye(reader().lang)),
            Answer::SeeOther { location } => {
                let mut response = empty(code);
                response.headers_mut().insert(header::LOCATION, location);
                response
            }
            Answer::NoContent => empty(code),
            Answer::Events(body) => {
                let mut response = Response::new(body);
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream; charset=utf-8"),
                );
                // Tell nginx-like proxies in front not to buffer the stream.
                headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
                response
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        add_cookies(headers, set_cookies);
        response
    }
}

fn empty(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(full_body(Bytes::new()));
    *response.status_mut() = code;
    response
}

fn waiting_page(
    pages: &Pages,
    reader: Reader<'_>,
    status: &Status<'_>,
    refresh_seconds: u64,
    updated_unix_seconds: u64,
) -> String {
    let status_url = format!("/_anteroom/status?room={}", status.room);
    let stage = match (status.state, status.ticket) {
        ("not_open", _) => Stage::NotOpen,
        ("pre_queue", Some(ticket)) => Stage::PreQueue { ticket },
        _ => Stage::InLine,
    };
    let view = WaitingView {
        room: status.room,
        stage,
        position: status.position,
        eta_seconds: status.eta_seconds,
        refresh_seconds,
        updated_unix_seconds,
        status_url: &status_url,
        room_state: status.room_state,
        site_trouble: status.site_trouble(),
        event: EventView {
            opens_at: status.opens_at.and_then(|at| at.wall_clock()),
            pre_queue_from: status.pre_queue_from.and_then(|at| at.wall_clock()),
            opens_in_seconds: status.opens_in_seconds,
            pre_queue: status.pre_queue,
            draw_place: status.draw_place,
            draw_url: status.draw_url,
        },
    };
    pages.waiting(reader, &view)
}

#[cfg(test)]
mod tests;
