//! Where drained requests go: the booking store.

use anteroom_store::BufferedRequest;

pub mod http;
pub mod postgres;

/// What applying a request to a sink gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A final answer: the request was applied (2xx), or the sink refused it
    /// for good (4xx, a constraint violation). Recorded in the receipt.
    Final { status: u16, body: String },
    /// A failure that may pass (5xx, timeout, connection refused, a
    /// serialization failure): retried with backoff.
    Transient { why: String },
}

/// The longest sink answer body kept in a receipt; longer ones are cut at a
/// character boundary.
pub const MAX_RESULT_BYTES: usize = 16 * 1024;

/// One buffer's sink.
#[async_trait::async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Applies `request` once. Must give up (as `Transient`) within the
    /// buffer's `sink_timeout`. `idempotency_key` makes a second application
    /// of the same request harmless.
    async fn apply(
        &self,
        receipt: &str,
        idempotency_key: &str,
        request: &BufferedRequest,
    ) -> Applied;
}

/// `text` cut to at most `MAX_RESULT_BYTES`, on a character boundary.
pub fn truncate_result(mut text: String) -> String {
    if text.len() > MAX_RESULT_BYTES {
        let mut end = MAX_RESULT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
