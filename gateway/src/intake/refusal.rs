//! Why a write to a buffer was not stored, as a value: each refusal knows
//! its status code, its words, its `Retry-After` and its metric label.

use std::borrow::Cow;

use http::StatusCode;

use anteroom_store::BodyProblem;

use crate::body::BodyError;

use super::STORE_DOWN_RETRY_SECONDS;

/// Why a write to a buffer was not stored. Every refusal stores nothing,
/// except [`IntakeRefusal::NotReplicated`]: the primary may have it.
#[derive(Debug)]
pub enum IntakeRefusal {
    /// `Content-Type` is not one the buffer takes.
    ContentType { allowed: Vec<String> },
    /// `Idempotency-Key` is empty, too long or not visible ASCII.
    IdempotencyKey,
    /// The body was not taken: past `max_body_bytes`, broken off, too
    /// slow, or no memory left for it (`limits.max_unfinished_body_bytes`).
    Body(BodyError),
    /// The body lacks what the postgres statement needs.
    InvalidBody(BodyProblem),
    /// The store could not take it (or did not confirm it).
    StoreUnavailable,
    /// Too few replicas have it (`store.min_replicas_acked`: `WAIT` fell
    /// short), or Redis refused the write for want of replicas
    /// (`NOREPLICAS`). Not acknowledged: a failover now could lose it.
    NotReplicated,
    /// The key was used before for a different request.
    KeyReused,
    /// The buffer holds its most; `retry_seconds` is about how long its
    /// queue takes to make room.
    Full { retry_seconds: u64 },
    /// The visitor's pass already has `held` unfinished requests in the
    /// buffer, `most` (`max_per_pass`) or more; `retry_seconds` is about how
    /// long the queue takes to reach the oldest of them.
    PassQuota {
        held: u64,
        most: u64,
        retry_seconds: u64,
    },
}

impl IntakeRefusal {
    /// The `reason` label of `anteroom_buffer_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            IntakeRefusal::ContentType { .. } => "content_type",
            IntakeRefusal::IdempotencyKey => "idempotency_key",
            IntakeRefusal::Body(error) => error.reason(),
            IntakeRefusal::InvalidBody(_) => "invalid_body",
            IntakeRefusal::StoreUnavailable => "store_unavailable",
            IntakeRefusal::NotReplicated => "not_replicated",
            IntakeRefusal::KeyReused => "key_reused",
            IntakeRefusal::Full { .. } => "full",
            IntakeRefusal::PassQuota { .. } => "pass_quota",
        }
    }

    pub fn code(&self) -> StatusCode {
        match self {
            IntakeRefusal::ContentType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IntakeRefusal::IdempotencyKey => StatusCode::BAD_REQUEST,
            IntakeRefusal::Body(error) => error.code(),
            IntakeRefusal::InvalidBody(_) | IntakeRefusal::KeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            IntakeRefusal::StoreUnavailable
            | IntakeRefusal::NotReplicated
            | IntakeRefusal::Full { .. } => StatusCode::SERVICE_UNAVAILABLE,
            // The visitor's own bound, as a rate limit is: not the site's
            // trouble, and over once their bookings go through.
            IntakeRefusal::PassQuota { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            IntakeRefusal::StoreUnavailable | IntakeRefusal::NotReplicated => {
                Some(STORE_DOWN_RETRY_SECONDS)
            }
            IntakeRefusal::Full { retry_seconds }
            | IntakeRefusal::PassQuota { retry_seconds, .. } => Some(*retry_seconds),
            IntakeRefusal::Body(error) => error.retry_after(),
            _ => None,
        }
    }

    /// What the client is told.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            IntakeRefusal::ContentType { allowed } => Cow::Owned(format!(
                "Content-Type must be one of {}",
                allowed.join(", ")
            )),
            IntakeRefusal::IdempotencyKey => {
                "Idempotency-Key must be 1 to 255 visible ASCII characters".into()
            }
            IntakeRefusal::Body(error) => error.message().into(),
            IntakeRefusal::InvalidBody(problem) => Cow::Owned(problem.to_string()),
            IntakeRefusal::StoreUnavailable => {
                "the booking could not be stored or confirmed; please try again shortly (with \
                 the same Idempotency-Key, a retry cannot book twice)"
                    .into()
            }
            // Honest: the primary may have it, and may still apply it; the
            // retry's answer is the one that counts (see README, "Replicas
            // and failover").
            IntakeRefusal::NotReplicated => {
                "the booking was not stored safely: the store could not copy it to its replicas \
                 in time, so it is not accepted; please send it again shortly with the same \
                 Idempotency-Key (a retry cannot book twice, and its answer is the one that \
                 counts)"
                    .into()
            }
            IntakeRefusal::KeyReused => {
                "this Idempotency-Key was already used for a different request".into()
            }
            IntakeRefusal::Full { .. } => "too many bookings are waiting to be processed; \
                                           nothing was stored, please try again shortly"
                .into(),
            IntakeRefusal::PassQuota { held, most, .. } => Cow::Owned(format!(
                "you already have {held} bookings waiting to be processed, and {most} at once \
                 is the most; nothing was stored, please try again once one of them is done"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_over_its_quota_is_told_429_how_many_and_when() {
        let refusal = IntakeRefusal::PassQuota {
            held: 10,
            most: 10,
            retry_seconds: 7,
        };
        assert_eq!(refusal.code(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refusal.retry_after(), Some(7));
        assert_eq!(refusal.reason(), "pass_quota");
        let message = refusal.message();
        assert!(message.contains("10 bookings waiting"), "{message}");
        assert!(message.contains("nothing was stored"), "{message}");
    }

    #[test]
    fn a_booking_short_of_replicas_is_503_not_stored_with_retry_after() {
        let refusal = IntakeRefusal::NotReplicated;
        assert_eq!(refusal.code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refusal.retry_after(), Some(STORE_DOWN_RETRY_SECONDS));
        assert_eq!(refusal.reason(), "not_replicated");
        assert!(refusal.message().contains("not stored"));
    }
}
