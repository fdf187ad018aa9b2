//! `GET /_anteroom/receipts/ID`: where a stored request stands.

use serde_json::json;

use anteroom_store::ReceiptState;
use http::StatusCode;

use super::STORE_DOWN_RETRY_SECONDS;
use crate::Shared;
use crate::answer::Answer;

/// `GET /_anteroom/receipts/ID`: the receipt as JSON, or a page that watches
/// it for browsers.
pub async fn receipt(shared: &Shared, id: &str) -> Answer<'static> {
    let found = match shared.buffers.receipt(id).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Answer::Refused {
                code: StatusCode::NOT_FOUND,
                message: "no such receipt (or its result has expired)".into(),
            };
        }
        Err(error) => {
            tracing::debug!(%error, "receipt lookup failed");
            return Answer::Unavailable {
                message: "receipts cannot be read right now; your booking is safe, please try again shortly",
                retry_seconds: STORE_DOWN_RETRY_SECONDS,
            };
        }
    };
    let drain_per_second = shared
        .intake
        .buffers()
        .iter()
        .find(|buffer| buffer.config.name == found.buffer)
        .map_or(1, |buffer| buffer.params.drain_per_second);
    let refresh_seconds = refresh_seconds(&found.state, drain_per_second);
    Answer::Receipt {
        id: id.to_owned(),
        state: found.state,
        refresh_seconds,
    }
}

/// How soon a receipt is worth asking about again, `None` once finished:
/// about the time its queue takes to reach it, between 2 and 30 seconds, so
/// that a deep queue of watching browsers does not poll the store every 2 s.
pub(super) fn refresh_seconds(state: &ReceiptState, drain_per_second: u32) -> Option<u64> {
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
