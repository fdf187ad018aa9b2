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

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Request};

use crate::answer::{Answer, Prefers};
use crate::body::{self, Pace};
use crate::respond::header_str;
use crate::{BoxError, Shared};

mod key;
mod receipt;
mod refusal;

use key::{KeyScope, automatic_key, scoped_key};
use receipt::refresh_seconds;
pub use receipt::{receipt, receipt_json};
pub use refusal::IntakeRefusal;

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

/// A request the store now holds.
#[derive(Debug)]
struct Stored {
    receipt: String,
    /// Its place in the queue; `None` when it was a resubmission of one
    /// stored before (the same idempotency key and request).
    position: Option<u64>,
}

/// Stores an admitted visitor's request and answers `202` with its receipt.
/// Nothing is answered `202` before the store has the request.
pub async fn accept<'a, B>(
    shared: &Shared,
    buffer: &BufferRuntime,
    request: Request<B>,
    (peer, client): (SocketAddr, IpAddr),
    pass: Option<String>,
    prefers: Prefers,
) -> Answer<'a>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let takes_page = prefers == Prefers::Html;
    let stored = match store(shared, buffer, request, (peer, client), pass).await {
        Ok(stored) => stored,
        Err(refusal) => {
            metrics::counter!("anteroom_buffer_refused_total", "buffer" => buffer.config.name.clone(), "reason" => refusal.reason())
                .increment(1);
            return Answer::IntakeRefused(refusal);
        }
    };
    let state = match stored.position {
        Some(position) => Some(ReceiptState::Queued {
            position,
            attempts: 0,
        }),
        // A resubmission: a page shows where the first submission stands.
        None if takes_page => shared
            .buffers
            .receipt(&stored.receipt)
            .await
            .ok()
            .flatten()
            .map(|found| found.state),
        None => None,
    };
    let state = state.unwrap_or(ReceiptState::Queued {
        position: 1,
        attempts: 0,
    });
    let refresh_seconds = refresh_seconds(&state, buffer.params.drain_per_second);
    Answer::Accepted {
        receipt: stored.receipt,
        position: stored.position,
        state,
        refresh_seconds,
    }
}

async fn store<B>(
    shared: &Shared,
    buffer: &BufferRuntime,
    request: Request<B>,
    (peer, client): (SocketAddr, IpAddr),
    pass: Option<String>,
) -> Result<Stored, IntakeRefusal>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let name = &buffer.config.name;
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
        return Err(IntakeRefusal::ContentType {
            allowed: buffer.config.content_types.clone(),
        });
    }
    let receipt = receipt_id(name);
    let client_key = match request.headers().get("idempotency-key") {
        None => None,
        Some(value) => Some(
            key::client_key(value)
                .ok_or(IntakeRefusal::IdempotencyKey)?
                .to_owned(),
        ),
    };
    let (parts, body) = request.into_parts();
    // The body's memory is charged until the store has it (the charge is
    // dropped when this function returns).
    let mut charge = shared.bodies.charge(client);
    let body = body::read_whole(
        body,
        Pace::from_config(&shared.config.limits),
        shared.config.limits.max_body_bytes,
        &mut charge,
    )
    .await
    .map_err(IntakeRefusal::Body)?;
    if let Some(params) = &buffer.postgres_params
        && let Err(problem) = anteroom_store::check_body(params, &body)
    {
        return Err(IntakeRefusal::InvalidBody(problem));
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |target| target.to_string());
    let buffered = BufferedRequest {
        method: parts.method.to_string(),
        target,
        headers: kept_headers(&shared.proxy.upstream_headers(&parts.headers, peer.ip())),
        pass: pass.clone().unwrap_or_default(),
        client: client.to_string(),
        received_at: shared.store_clock.now(),
        client_idempotency_key: client_key.clone(),
        body: body.to_vec(),
    };
    let fingerprint = buffered.fingerprint();
    // A client's key names a booking among this visitor's only (see `key`).
    let key = match &client_key {
        Some(client_key) => scoped_key(name, KeyScope::of(&buffered.pass, client), client_key),
        None => automatic_key(&buffered.pass, &fingerprint, &receipt),
    };
    let submission = Submission {
        receipt,
        idempotency_key: key,
        fingerprint,
        // Without a pass, nothing to count `max_per_pass` against.
        pass,
        request: buffered.encode(),
    };
    let enqueued = shared
        .buffers
        .enqueue(&buffer.params, submission)
        .await
        .map_err(|error| {
            tracing::warn!(buffer = %name, %error, "cannot store a buffered request; answered 503");
            if error.is_for_want_of_replicas() {
                IntakeRefusal::NotReplicated
            } else {
                IntakeRefusal::StoreUnavailable
            }
        })?;
    match enqueued {
        Enqueued::Accepted { receipt, position } => {
            metrics::counter!("anteroom_buffer_accepted_total", "buffer" => name.clone())
                .increment(1);
            Ok(Stored {
                receipt,
                position: Some(position),
            })
        }
        Enqueued::Duplicate { receipt } => {
            metrics::counter!("anteroom_buffer_duplicates_total", "buffer" => name.clone())
                .increment(1);
            Ok(Stored {
                receipt,
                position: None,
            })
        }
        Enqueued::Conflict { .. } => Err(IntakeRefusal::KeyReused),
        Enqueued::Full { depth } => Err(IntakeRefusal::Full {
            retry_seconds: drain_seconds(depth, buffer),
        }),
        Enqueued::PassQuota { held, depth } => Err(IntakeRefusal::PassQuota {
            held,
            most: buffer.params.max_per_pass,
            // The visitor's oldest request is at most the whole queue away.
            retry_seconds: drain_seconds(depth, buffer),
        }),
    }
}

/// About how long the buffer takes to drain `depth` requests, between 1 and
/// 60 seconds: when a refused request is worth sending again.
fn drain_seconds(depth: u64, buffer: &BufferRuntime) -> u64 {
    (depth / u64::from(buffer.params.drain_per_second)).clamp(1, 60)
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
    use http::HeaderValue;

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
