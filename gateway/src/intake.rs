//! Booking intake: an admitted visitor's write to a `[[buffer]]` route is
//! stored and answered `202` with a receipt, instead of being proxied. The
//! workers (or, embedded, the gateway itself) drain it into the booking store
//! at the buffer's pace. `GET /_anteroom/receipts/ID` tells where it stands.

use std::net::{IpAddr, SocketAddr};

use anteroom_config::Buffer;
use anteroom_store::{
    BufferParams, BufferedRequest, Enqueued, ReceiptState, Submission, buffer::receipt_id,
    header_text,
};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::json;

use crate::metrics::Outcome;
use crate::page::Visitor;
use crate::respond::{
    add_cookies, header_str, html_response, json_error, json_response, no_store, wants_json,
};
use crate::{Body, Shared};

/// Longest accepted `Idempotency-Key`.
const MAX_KEY_BYTES: usize = 255;
/// `Retry-After` when the store cannot take the request.
const STORE_DOWN_RETRY_SECONDS: u64 = 5;
/// Request headers not stored for the replay: the connection's own (the
/// sink's client sets them again), and those the sink sets itself. Hop-by-hop
/// headers and the gateway's cookies are already gone (as when proxying);
/// everything else the site may need (its cookies, CSRF tokens, custom
/// headers) is kept byte for byte.
const DROPPED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "expect",
    "idempotency-key",
    "x-anteroom-receipt",
];

/// The configured buffers, matched by method and path.
pub struct Intake {
    buffers: Vec<BufferRuntime>,
}

pub struct BufferRuntime {
    pub config: Buffer,
    pub params: BufferParams,
    /// The JSON paths a postgres statement needs, checked at intake.
    postgres_params: Option<Vec<String>>,
}

impl Intake {
    pub fn new(buffers: &[Buffer]) -> Intake {
        Intake {
            buffers: buffers
                .iter()
                .map(|buffer| BufferRuntime {
                    params: BufferParams::from(buffer),
                    postgres_params: match &buffer.sink {
                        anteroom_config::Sink::Postgres { params, .. } => Some(params.clone()),
                        anteroom_config::Sink::Http => None,
                    },
                    config: buffer.clone(),
                })
                .collect(),
        }
    }

    pub fn buffers(&self) -> &[BufferRuntime] {
        &self.buffers
    }

    /// The buffer of a request to `room`, by method and normalised path (a
    /// trailing slash is the same path).
    pub fn find(&self, room: &str, method: &Method, normalised: &str) -> Option<&BufferRuntime> {
        let path = normalised.strip_suffix('/').unwrap_or(normalised);
        self.buffers.iter().find(|buffer| {
            buffer.config.room == room
                && buffer.config.method == method
                && buffer
                    .config
                    .path
                    .strip_suffix('/')
                    .unwrap_or(&buffer.config.path)
                    == path
        })
    }
}

/// Stores an admitted visitor's request and answers `202` with its receipt.
/// Nothing is answered `202` before the store has the request.
pub async fn accept(
    shared: &Shared,
    buffer: &BufferRuntime,
    request: Request<Incoming>,
    (peer, client): (SocketAddr, IpAddr),
    pass: Option<String>,
    set_cookies: Vec<HeaderValue>,
) -> Response<Body> {
    let mut response = match store(shared, buffer, request, (peer, client), pass).await {
        Ok(response) => response,
        Err(response) => response,
    };
    add_cookies(response.headers_mut(), set_cookies);
    no_store(response.headers_mut());
    response
}

async fn store(
    shared: &Shared,
    buffer: &BufferRuntime,
    request: Request<Incoming>,
    (peer, client): (SocketAddr, IpAddr),
    pass: Option<String>,
) -> Result<Response<Body>, Response<Body>> {
    let name = &buffer.config.name;
    let refuse = |reason: &'static str, code: StatusCode, message: &str| {
        metrics::counter!("anteroom_buffer_refused_total", "buffer" => name.clone(), "reason" => reason)
            .increment(1);
        json_error(code, message)
    };
    let media = header_str(request.headers(), header::CONTENT_TYPE)
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if !buffer.config.content_types.contains(&media) {
        let message = format!(
            "Content-Type must be one of {}",
            buffer.config.content_types.join(", ")
        );
        return Err(refuse(
            "content_type",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &message,
        ));
    }
    let receipt = receipt_id(name);
    let key = match request.headers().get("idempotency-key") {
        None => None,
        Some(value) => match idempotency_key(value) {
            Some(key) => Some(key.to_owned()),
            None => {
                return Err(refuse(
                    "idempotency_key",
                    StatusCode::BAD_REQUEST,
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                ));
            }
        },
    };
    let (parts, body) = request.into_parts();
    let limit = shared.config.limits.max_body_bytes;
    let body = match Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return Err(refuse(
                "too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ));
        }
        Err(_) => {
            return Err(refuse(
                "broken_body",
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            ));
        }
    };
    if let Some(params) = &buffer.postgres_params
        && let Err(problem) = anteroom_store::check_body(params, &body)
    {
        return Err(refuse(
            "invalid_body",
            StatusCode::UNPROCESSABLE_ENTITY,
            &problem.to_string(),
        ));
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |target| target.to_string());
    let buffered = BufferedRequest {
        method: parts.method.to_string(),
        target,
        headers: kept_headers(&shared.proxy.upstream_headers(&parts.headers, peer.ip())),
        pass: pass.unwrap_or_default(),
        client: client.to_string(),
        received_at: shared.clock.now(),
        body: body.to_vec(),
    };
    let fingerprint = buffered.fingerprint();
    let key = key.unwrap_or_else(|| automatic_key(&buffered.pass, &fingerprint, &receipt));
    let submission = Submission {
        receipt,
        idempotency_key: key,
        fingerprint,
        request: buffered.encode(),
    };
    let enqueued = match shared.buffers.enqueue(&buffer.params, submission).await {
        Ok(enqueued) => enqueued,
        Err(error) => {
            tracing::warn!(buffer = %name, %error, "cannot store a buffered request; answered 503");
            let mut response = refuse(
                "store_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "the booking could not be stored or confirmed; please try again shortly (with the \
                 same Idempotency-Key, a retry cannot book twice)",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(STORE_DOWN_RETRY_SECONDS),
            );
            return Err(response);
        }
    };
    let (receipt, position) = match enqueued {
        Enqueued::Accepted { receipt, position } => {
            metrics::counter!("anteroom_buffer_accepted_total", "buffer" => name.clone())
                .increment(1);
            (receipt, Some(position))
        }
        Enqueued::Duplicate { receipt } => {
            metrics::counter!("anteroom_buffer_duplicates_total", "buffer" => name.clone())
                .increment(1);
            (receipt, None)
        }
        Enqueued::Conflict { .. } => {
            return Err(refuse(
                "key_reused",
                StatusCode::UNPROCESSABLE_ENTITY,
                "this Idempotency-Key was already used for a different request",
            ));
        }
        Enqueued::Full { depth } => {
            let retry = (depth / u64::from(buffer.params.drain_per_second)).clamp(1, 60);
            let mut response = refuse(
                "full",
                StatusCode::SERVICE_UNAVAILABLE,
                "too many bookings are waiting to be processed; nothing was stored, please try again shortly",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry));
            return Err(response);
        }
    };
    let status_url = format!("/_anteroom/receipts/{receipt}");
    let mut response = if wants_html(&parts.headers) {
        let visitor = Visitor {
            lang: shared.pages.language_for(&parts.headers),
            query: parts.uri.query().unwrap_or_default(),
        };
        let state = match position {
            Some(position) => Some(ReceiptState::Queued {
                position,
                attempts: 0,
            }),
            // A resubmission: show where the first submission stands.
            None => shared
                .buffers
                .receipt(&receipt)
                .await
                .ok()
                .flatten()
                .map(|found| found.state),
        };
        let state = state.unwrap_or(ReceiptState::Queued {
            position: 1,
            attempts: 0,
        });
        let refresh = refresh_seconds(&state, buffer.params.drain_per_second);
        let html = shared.pages.receipt(visitor, &receipt, &state, refresh);
        html_response(shared, StatusCode::ACCEPTED, html)
    } else {
        json_response(
            StatusCode::ACCEPTED,
            &json!({ "receipt": receipt, "status_url": status_url, "position": position }),
        )
    };
    response.extensions_mut().insert(Outcome::Buffered);
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /_anteroom/receipts/ID`: the receipt as JSON, or a page that watches
/// it for browsers.
pub async fn receipt(shared: &Shared, headers: &HeaderMap, id: &str) -> Response<Body> {
    let found = match shared.buffers.receipt(id).await {
        Ok(found) => found,
        Err(error) => {
            tracing::debug!(%error, "receipt lookup failed");
            let mut response = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "receipts cannot be read right now; your booking is safe, please try again shortly",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(STORE_DOWN_RETRY_SECONDS),
            );
            no_store(response.headers_mut());
            return response;
        }
    };
    let Some(found) = found else {
        let mut response = json_error(
            StatusCode::NOT_FOUND,
            "no such receipt (or its result has expired)",
        );
        no_store(response.headers_mut());
        return response;
    };
    let drain_per_second = shared
        .intake
        .buffers()
        .iter()
        .find(|buffer| buffer.config.name == found.buffer)
        .map_or(1, |buffer| buffer.params.drain_per_second);
    let refresh = refresh_seconds(&found.state, drain_per_second);
    let mut response = if wants_html(headers) {
        let visitor = Visitor {
            lang: shared.pages.language_for(headers),
            query: "",
        };
        let html = shared.pages.receipt(visitor, id, &found.state, refresh);
        html_response(shared, StatusCode::OK, html)
    } else {
        json_response(StatusCode::OK, &receipt_json(&found.state))
    };
    if let Some(refresh) = refresh {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(refresh));
    }
    no_store(response.headers_mut());
    response
}

/// How soon a receipt is worth asking about again, `None` once finished:
/// about the time its queue takes to reach it, between 2 and 30 seconds, so
/// that a deep queue of watching browsers does not poll the store every 2 s.
fn refresh_seconds(state: &ReceiptState, drain_per_second: u32) -> Option<u64> {
    match state {
        ReceiptState::Queued { position, .. } => {
            Some((position / u64::from(drain_per_second.max(1))).clamp(2, 30))
        }
        ReceiptState::Processing { .. } => Some(2),
        ReceiptState::Done { .. } | ReceiptState::Failed { .. } => None,
    }
}

/// The contract's receipt JSON.
pub fn receipt_json(state: &ReceiptState) -> serde_json::Value {
    match state {
        ReceiptState::Queued { position, attempts } => {
            json!({ "state": "queued", "position": position, "attempts": attempts })
        }
        ReceiptState::Processing { attempts } => {
            json!({ "state": "processing", "attempts": attempts })
        }
        ReceiptState::Done { status, body } => {
            json!({ "state": "done", "result": { "status": status, "body": body } })
        }
        ReceiptState::Failed { why } => json!({ "state": "failed", "why": why }),
    }
}

/// A browser's form post (it asks for HTML first) gets a page; scripts get
/// JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    !wants_json(headers)
        && header_str(headers, header::ACCEPT).is_some_and(|accept| accept.contains("text/html"))
}

/// The key of a request sent without `Idempotency-Key` (a browser's form
/// post cannot send one): the same request from the same visitor's pass is
/// the same booking, so a double click or a resubmitted form is not booked
/// twice. Without a pass (the store was down under `on_error = "admit"`),
/// every request is its own.
fn automatic_key(pass: &str, fingerprint: &str, receipt: &str) -> String {
    if pass.is_empty() {
        return receipt.to_owned();
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(pass.as_bytes())
        .chain_update(b"\n")
        .chain_update(fingerprint.as_bytes())
        .finalize();
    format!("auto-{:x}", digest)
}

fn idempotency_key(value: &HeaderValue) -> Option<&str> {
    let key = value.to_str().ok()?.trim();
    let visible = key.bytes().all(|byte| byte.is_ascii_graphic());
    ((1..=MAX_KEY_BYTES).contains(&key.len()) && visible).then_some(key)
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !DROPPED_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str().to_owned(), header_text(value.as_bytes())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_visible_ascii_up_to_255() {
        assert_eq!(
            idempotency_key(&HeaderValue::from_static("abc-123")),
            Some("abc-123")
        );
        assert_eq!(idempotency_key(&HeaderValue::from_static("")), None);
        assert_eq!(idempotency_key(&HeaderValue::from_static("a b")), None);
        let long = "k".repeat(256);
        assert_eq!(
            idempotency_key(&HeaderValue::from_str(&long).unwrap()),
            None
        );
        let longest = "k".repeat(255);
        assert!(idempotency_key(&HeaderValue::from_str(&longest).unwrap()).is_some());
    }

    #[test]
    fn the_connections_own_headers_are_dropped_the_rest_kept_byte_for_byte() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("x-csrf-token", HeaderValue::from_static("t0k3n"));
        headers.insert("host", HeaderValue::from_static("gateway.example"));
        headers.insert("content-length", HeaderValue::from_static("12"));
        headers.insert("idempotency-key", HeaderValue::from_static("k"));
        let cookie = HeaderValue::from_bytes("site=caff\u{e8}".as_bytes()).unwrap();
        headers.insert("cookie", cookie.clone());
        let kept = kept_headers(&headers);
        let names: Vec<&str> = kept.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["content-type", "x-csrf-token", "cookie"]);
        let stored = &kept[2].1;
        assert_eq!(anteroom_store::header_bytes(stored), cookie.as_bytes());
    }
}
