//! Buffered write requests: the durable queue between the gateway's intake
//! and the workers that drain it into the booking store.
//!
//! A buffer is a FIFO of *receipts*. The gateway [`BufferStore::enqueue`]s a
//! request and answers `202` only once this returns; workers
//! [`BufferStore::take`] requests under a pace and an in-flight cap shared by
//! every worker, apply them to the sink and [`BufferStore::finish`] them.
//!
//! Delivery is at least once: a taken request carries a lease, and a lease
//! that runs out (its worker died) puts the request back in front of the
//! queue for the next `take`. Applying twice is made harmless by the
//! idempotency key every request carries to the sink.
//!
//! One visitor's pass may hold at most `max_per_pass` unfinished requests
//! of a buffer at once, counted in the store so that the bound holds across
//! every gateway: a request counts from `enqueue` until it is finished (done,
//! or dead-lettered), a duplicate does not count again, and a request sent
//! without a pass is not counted.
//!
//! Time here is the store's own clock (Redis `TIME`), not the caller's, so
//! that workers on different hosts share one pace exactly.

use std::time::Duration;

use crate::StoreError;

/// What the store needs to know about a buffer on every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferParams {
    pub name: String,
    /// Requests applied per second, by all workers together.
    pub drain_per_second: u32,
    /// Requests taken and not finished at once, by all workers together.
    pub max_in_flight: u32,
    /// Requests stored and unfinished beyond which `enqueue` refuses.
    pub max_depth: u64,
    /// Requests of one pass stored and unfinished beyond which `enqueue`
    /// refuses that pass's next ([`Enqueued::PassQuota`]).
    pub max_per_pass: u64,
    /// Tries before a request that keeps coming back is dead-lettered (also
    /// counts leases that ran out: a request that kills its workers ends up
    /// in the dead letters instead of killing them all).
    pub max_attempts: u32,
    /// How long a taken request stays with its worker.
    pub lease: Duration,
    /// How long a finished receipt and its idempotency key are kept; also
    /// how long a pass's count is kept after its last accepted request (a
    /// backstop: the count is released request by request as each
    /// finishes).
    pub result_for: Duration,
}

/// The store's view of a configured `[[buffer]]`.
impl From<&anteroom_config::Buffer> for BufferParams {
    fn from(buffer: &anteroom_config::Buffer) -> BufferParams {
        BufferParams {
            name: buffer.name.clone(),
            drain_per_second: buffer.drain_per_second.get(),
            max_in_flight: buffer.max_in_flight.get(),
            max_depth: buffer.max_depth,
            max_per_pass: buffer.max_per_pass,
            max_attempts: buffer.max_attempts,
            lease: buffer.reclaim_after,
            result_for: buffer.result_for,
        }
    }
}

/// A request offered to the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// A fresh receipt id (see [`receipt_id`]); used if the request is new.
    pub receipt: String,
    /// The client's `Idempotency-Key`, or a generated one.
    pub idempotency_key: String,
    /// A digest of what makes the request this request (method, target,
    /// body), to tell a retry from a different request reusing a key.
    pub fingerprint: String,
    /// The visitor's pass id, whose unfinished requests `max_per_pass`
    /// bounds. `None` for a request without a pass (the store was down
    /// under `on_error = "admit"`): not counted.
    pub pass: Option<String>,
    /// The request itself, [`crate::BufferedRequest::encode`]d.
    pub request: Vec<u8>,
}

/// The outcome of [`BufferStore::enqueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored; `position` 1 is the next to be taken.
    Accepted { receipt: String, position: u64 },
    /// The idempotency key was seen with the same request: its receipt.
    Duplicate { receipt: String },
    /// The idempotency key was seen with a different request.
    Conflict { receipt: String },
    /// `max_depth` unfinished requests already: nothing was stored.
    Full { depth: u64 },
    /// The submission's pass already has `held` (`max_per_pass` or more)
    /// unfinished requests: nothing was stored. `depth`: the buffer's
    /// unfinished requests, about how far its oldest may be from done.
    PassQuota { held: u64, depth: u64 },
}

/// Where a receipt's request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptState {
    /// Waiting to be taken; `position` 1 is next. `attempts` is 0 until a
    /// worker has tried it (then it waits for a retry).
    Queued { position: u64, attempts: u32 },
    /// A worker is applying it.
    Processing { attempts: u32 },
    /// Applied, or refused for good by the sink (a 4xx): the sink's answer.
    Done { status: u16, body: String },
    /// Dead-lettered: the sink kept failing; `why` says how.
    Failed { why: String },
}

/// A receipt as the visitor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub buffer: String,
    pub state: ReceiptState,
}

/// A request handed to a worker by [`BufferStore::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub receipt: String,
    pub idempotency_key: String,
    /// [`crate::BufferedRequest::encode`]d.
    pub request: Vec<u8>,
    /// 1 on the first try.
    pub attempt: u32,
    /// Identifies this lease; [`BufferStore::finish`] with an older lease of
    /// the same receipt is ignored unless the receipt is still unfinished.
    pub lease: String,
}

/// The result of [`BufferStore::take`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Taken {
    pub jobs: Vec<Job>,
    /// Requests that came back too often (`max_attempts`) and were
    /// dead-lettered instead of handed out, with their receipts.
    pub dead: Vec<String>,
    /// How long until taking again is worth trying (the next pace token, a
    /// retry falling due, or an idle poll).
    pub wait: Duration,
}

/// The verdict on one try of a job: how a worker finished it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A final answer from the sink (2xx, or a 4xx the sink will give again).
    Done { status: u16, body: String },
    /// A transient failure: try again after `after`. `refund`: the failure
    /// was the sink's, not this request's (the sink is failing everything),
    /// so this try does not count toward `max_attempts`.
    Retry {
        after: Duration,
        why: String,
        refund: bool,
    },
    /// Give up: dead-letter it and mark the receipt failed.
    Dead { why: String },
}

/// What [`BufferStore::finish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The outcome was recorded.
    Recorded,
    /// The receipt had already been finished (by another worker that took it
    /// after this lease ran out): nothing changed.
    AlreadyFinal,
    /// The lease ran out and the request was taken by another worker, which
    /// will finish it: a retry from this worker is dropped.
    LeaseLost,
}

/// A buffer's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BufferStats {
    /// Never taken yet.
    pub queued: u64,
    /// Taken by a worker, lease running.
    pub in_flight: u64,
    /// Waiting for a retry.
    pub retrying: u64,
    /// Dead letters.
    pub dead: u64,
    /// Requests ever accepted (not counting duplicates).
    pub accepted: u64,
    /// Requests finished with a final answer.
    pub done: u64,
}

impl BufferStats {
    /// Unfinished requests: what `max_depth` bounds.
    pub fn depth(&self) -> u64 {
        self.queued + self.in_flight + self.retrying
    }
}

/// A dead-lettered request, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub receipt: String,
    pub idempotency_key: String,
    pub why: String,
    pub attempts: u32,
    /// [`crate::BufferedRequest::encode`]d, so it can be replayed by hand.
    pub request: Vec<u8>,
}

/// The seam between intake, workers and where buffered requests live.
#[async_trait::async_trait]
pub trait BufferStore: Send + Sync + 'static {
    /// Stores a request, unless its idempotency key is known, the buffer is
    /// full or the submission's pass holds `max_per_pass` unfinished
    /// requests (checked in that order). Returns once the store has it
    /// (Redis: acknowledged).
    async fn enqueue(
        &self,
        buffer: &BufferParams,
        submission: Submission,
    ) -> Result<Enqueued, StoreError>;

    /// A receipt by id; `None` if unknown or expired.
    async fn receipt(&self, receipt: &str) -> Result<Option<Receipt>, StoreError>;

    /// Takes up to `max` requests for `worker`, within the shared pace and
    /// in-flight cap: first those whose lease ran out, then retries that
    /// fell due, then new ones in order of arrival.
    async fn take(
        &self,
        buffer: &BufferParams,
        worker: &str,
        max: u32,
    ) -> Result<Taken, StoreError>;

    /// Records how a job ended and frees its in-flight slot.
    async fn finish(
        &self,
        buffer: &BufferParams,
        job: &Job,
        outcome: Verdict,
    ) -> Result<Finished, StoreError>;

    async fn buffer_stats(&self, buffer: &BufferParams) -> Result<BufferStats, StoreError>;

    /// The oldest `limit` dead letters.
    async fn dead_letters(
        &self,
        buffer: &BufferParams,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError>;
}

/// A fresh, unguessable receipt id: the buffer's name, a dot, and 128 random
/// bits in base64url. The name lets the store find the receipt's buffer.
pub fn receipt_id(buffer: &str) -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    let mut id = String::with_capacity(buffer.len() + 23);
    id.push_str(buffer);
    id.push('.');
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for index in 0..22 {
        let six = (bits >> (index * 6)) & 0x3f;
        id.push(ALPHABET[six as usize] as char);
    }
    id
}

/// The buffer named in a receipt id, if the id is well formed (which says
/// nothing about whether it exists).
pub fn receipt_buffer(receipt: &str) -> Option<&str> {
    let (buffer, random) = receipt.split_once('.')?;
    let name_ok = (1..=32).contains(&buffer.len())
        && buffer
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    let random_ok = random.len() == 22
        && random
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    (name_ok && random_ok).then_some(buffer)
}

/// The pace: a token bucket in thousandths of a request, refilled at
/// `drain_per_second` thousandths per millisecond, holding at most 100 ms of
/// pace (and at least one request), so that a pause is not followed by a
/// burst. The Redis script runs the same arithmetic.
pub mod pace {
    pub const UNITS: u64 = 1000;

    pub fn capacity(drain_per_second: u32) -> u64 {
        (u64::from(drain_per_second) * 100).max(UNITS)
    }

    /// Tokens after refilling from `at` to `now`.
    pub fn refill(tokens: u64, at: u64, now: u64, drain_per_second: u32) -> u64 {
        let elapsed = now.saturating_sub(at);
        tokens
            .saturating_add(elapsed.saturating_mul(u64::from(drain_per_second)))
            .min(capacity(drain_per_second))
    }

    /// Milliseconds until one whole request's worth is there.
    pub fn wait_ms(tokens: u64, drain_per_second: u32) -> u64 {
        if tokens >= UNITS {
            0
        } else {
            (UNITS - tokens).div_ceil(u64::from(drain_per_second))
        }
    }
}

/// How long a worker idles between takes when there is nothing to do.
pub const IDLE_POLL: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_ids_name_their_buffer_and_differ() {
        let first = receipt_id("bookings");
        let second = receipt_id("bookings");
        assert_ne!(first, second);
        assert_eq!(receipt_buffer(&first), Some("bookings"));
        assert_eq!(first.len(), "bookings.".len() + 22);
        assert_eq!(receipt_buffer("bookings"), None);
        assert_eq!(receipt_buffer("Bookings.AAAAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(receipt_buffer("b.AAAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(receipt_buffer("b.AAAAAAAAAAAAAAAAAAAAA*"), None);
        assert_eq!(receipt_buffer("b.AAAAAAAAAAAAAAAAAAAAAA"), Some("b"));
    }

    #[test]
    fn pace_refills_at_the_rate_and_caps_at_100_ms() {
        assert_eq!(pace::refill(0, 0, 1, 50), 50);
        assert_eq!(pace::refill(0, 0, 20, 50), 1000);
        assert_eq!(pace::refill(0, 0, 10_000, 50), 5000);
        assert_eq!(pace::refill(0, 0, 10_000, 1), 1000);
        assert_eq!(pace::refill(500, 10, 5, 50), 500);
        assert_eq!(pace::wait_ms(0, 50), 20);
        assert_eq!(pace::wait_ms(999, 50), 1);
        assert_eq!(pace::wait_ms(1000, 50), 0);
        assert_eq!(pace::wait_ms(0, 3), 334);
    }
}
