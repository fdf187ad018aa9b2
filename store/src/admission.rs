//! The admission arithmetic, shared by both backends (the Redis backend runs
//! the same steps in Lua; `lua/*.lua` mirror these functions line by line).
//!
//! Admission is paced by a token bucket: tokens accrue at `admit_per_minute`
//! and the bucket holds one token plus one second's worth, so admissions are
//! spread evenly over the minute instead of arriving in a burst once a minute.
//!
//! The bucket counts in integer *units*, [`UNITS_PER_TOKEN`] to a token, and
//! a millisecond accrues `admit_per_minute` units, so the arithmetic is exact
//! (floating-point steps of 0.1 token would lose admissions to rounding) and
//! stays exact in Lua, whose numbers are doubles (integers below 2^53).

use crate::{Millis, Refusal, Schedule, ScheduleChange};

/// A room not stepped for longer than this (gateways step every 100 ms) was
/// not served: the store unreachable, or every gateway down. Arrival
/// deadlines then move by the gap instead of expiring (no-shows are only
/// those who could have come in and did not).
pub const OUTAGE_GAP_MS: u64 = 5_000;

/// Units in one token: a minute's milliseconds, so that one millisecond
/// accrues exactly `admit_per_minute` units.
pub const UNITS_PER_TOKEN: u64 = 60_000;

/// The pacing bucket of one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub units: u64,
    pub updated_at: Millis,
}

/// The most units a room's bucket holds: one token plus one second of
/// accrual. The extra token means a step never loses the fraction it carries
/// over; the second bounds how many visitors enter at once after a lull.
pub fn burst_units(admit_per_minute: u32) -> u64 {
    UNITS_PER_TOKEN + u64::from(admit_per_minute) * 1000
}

impl Bucket {
    /// A bucket that starts full: a room that opens with nobody waiting lets
    /// its first visitors straight in.
    pub fn full(admit_per_minute: u32, now: Millis) -> Bucket {
        Bucket {
            units: burst_units(admit_per_minute),
            updated_at: now,
        }
    }

    /// Accrue tokens for the time since the last update. A mark in the
    /// future (the store's clock stepped back, or a mark written on a fast
    /// gateway's clock by a version that took the time from its callers)
    /// accrues nothing and is brought back to `now`, so that accrual goes on
    /// from here instead of waiting for the clock to catch up with it.
    pub fn refill(&mut self, admit_per_minute: u32, now: Millis) {
        if now > self.updated_at {
            let accrued = (now - self.updated_at).saturating_mul(u64::from(admit_per_minute));
            self.units = self
                .units
                .saturating_add(accrued)
                .min(burst_units(admit_per_minute));
        }
        self.updated_at = now;
    }

    /// Whole tokens available.
    pub fn whole(&self) -> u64 {
        self.units / UNITS_PER_TOKEN
    }

    pub fn take(&mut self, count: u64) {
        self.units = self
            .units
            .saturating_sub(count.saturating_mul(UNITS_PER_TOKEN));
    }
}

/// Free slots: capacity minus visitors inside and admitted visitors still on
/// their way. Never negative, even after a capacity cut.
pub fn free_slots(capacity: u32, inside: u64, pending: u64) -> u64 {
    u64::from(capacity).saturating_sub(inside.saturating_add(pending))
}

/// How many tickets one step lets in.
pub fn admit_count(whole_tokens: u64, free_slots: u64, waiting: u64) -> u64 {
    whole_tokens.min(free_slots).min(waiting)
}

/// A ticket's place in line: 1 for the next to be let in, `None` once its
/// turn has come.
pub fn position(ticket: u64, admitted_through: u64) -> Option<u64> {
    ticket
        .checked_sub(admitted_through)
        .filter(|ahead| *ahead > 0)
}

/// The schedule a live change would leave, or why it cannot (nothing is
/// changed then). `change.lua` mirrors it. `now` is the store's clock;
/// `drawn` and `issued` the room's figures.
///
/// - After the draw, `opens_at` and `pre_queue_from` are final.
/// - `opens_at` and `closes_at` cannot be set in the past; `pre_queue_from`
///   can (a pre-queue that opens now).
/// - An opening can be scheduled only before the room's first ticket, and
///   cleared only while the pre-queue is empty.
/// - The result is in order ([`Schedule::check`]).
pub fn change_schedule(
    current: Schedule,
    change: &ScheduleChange,
    drawn: Option<u64>,
    issued: u64,
    now: Millis,
) -> Result<Schedule, Refusal> {
    let next = change.applied_to(current);
    let moves_draw =
        next.opens_at != current.opens_at || next.pre_queue_from != current.pre_queue_from;
    if let Some(pre_queue) = drawn
        && moves_draw
    {
        return Err(Refusal::Drawn { pre_queue });
    }
    if next.opens_at != current.opens_at && next.opens_at.is_some_and(|at| at <= now) {
        return Err(Refusal::InThePast { key: "opens_at" });
    }
    if next.closes_at != current.closes_at && next.closes_at.is_some_and(|at| at <= now) {
        return Err(Refusal::InThePast { key: "closes_at" });
    }
    if drawn.is_none() && issued > 0 {
        match (current.opens_at, next.opens_at) {
            (None, Some(_)) => return Err(Refusal::TicketsIssued { issued }),
            (Some(_), None) => return Err(Refusal::DrawPromised { pre_queue: issued }),
            _ => {}
        }
    }
    next.check()?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn schedule_changes_are_refused_for_what_they_would_break() {
        let hour = 3_600_000;
        let now = 10 * hour;
        let event = Schedule {
            pre_queue_from: Some(9 * hour),
            opens_at: Some(12 * hour),
            closes_at: None,
        };
        let later = ScheduleChange {
            opens_at: Some(Some(13 * hour)),
            ..ScheduleChange::default()
        };
        let moved = change_schedule(event, &later, None, 40, now).unwrap();
        assert_eq!(moved.opens_at, Some(13 * hour));
        assert_eq!(
            change_schedule(event, &later, Some(40), 45, now),
            Err(Refusal::Drawn { pre_queue: 40 })
        );
        // Setting what is already set is no move, even after the draw.
        let same = ScheduleChange {
            opens_at: Some(Some(12 * hour)),
            closes_at: Some(Some(20 * hour)),
            ..ScheduleChange::default()
        };
        assert!(change_schedule(event, &same, Some(40), 45, now).is_ok());
        let past = ScheduleChange {
            opens_at: Some(Some(now)),
            ..ScheduleChange::default()
        };
        assert_eq!(
            change_schedule(event, &past, None, 0, now),
            Err(Refusal::InThePast { key: "opens_at" })
        );
        let cleared = ScheduleChange {
            opens_at: Some(None),
            ..ScheduleChange::default()
        };
        assert_eq!(
            change_schedule(event, &cleared, None, 40, now),
            Err(Refusal::DrawPromised { pre_queue: 40 })
        );
        let scheduled = ScheduleChange {
            opens_at: Some(Some(12 * hour)),
            ..ScheduleChange::default()
        };
        assert_eq!(
            change_schedule(Schedule::default(), &scheduled, None, 3, now),
            Err(Refusal::TicketsIssued { issued: 3 })
        );
        let reversed = ScheduleChange {
            closes_at: Some(Some(11 * hour)),
            ..ScheduleChange::default()
        };
        assert_eq!(
            change_schedule(event, &reversed, None, 0, now),
            Err(Refusal::Order(crate::ScheduleError::OutOfOrder {
                earlier: "opens_at",
                later: "closes_at"
            }))
        );
    }

    #[test]
    fn full_bucket_holds_one_second() {
        assert_eq!(Bucket::full(600, 0).whole(), 11);
        assert_eq!(Bucket::full(30, 0).whole(), 1);
    }

    #[test]
    fn a_mark_in_the_future_does_not_freeze_the_bucket() {
        let mut bucket = Bucket {
            units: 0,
            updated_at: 300_000,
        };
        bucket.refill(600, 1_000);
        assert_eq!((bucket.units, bucket.updated_at), (0, 1_000));
        // A second later, a second's worth: 10 tokens.
        bucket.refill(600, 2_000);
        assert_eq!(bucket.whole(), 10);
    }

    #[test]
    fn position_counts_from_one() {
        assert_eq!(position(11, 10), Some(1));
        assert_eq!(position(10, 10), None);
        assert_eq!(position(3, 10), None);
    }

    proptest! {
        /// Driving an empty bucket in steps of up to a second over a minute
        /// admits exactly `admit_per_minute` visitors: nothing is lost to
        /// rounding or to the cap.
        #[test]
        fn pacing_over_a_minute_matches_the_rate(
            admit_per_minute in 1u32..100_000,
            step_ms in 1u64..=1_000,
        ) {
            let mut bucket = Bucket { units: 0, updated_at: 0 };
            let mut admitted = 0u64;
            let mut now = 0;
            while now < 60_000 {
                now = (now + step_ms).min(60_000);
                bucket.refill(admit_per_minute, now);
                let n = admit_count(bucket.whole(), u64::MAX, u64::MAX);
                bucket.take(n);
                admitted += n;
            }
            prop_assert_eq!(admitted, u64::from(admit_per_minute));
        }

        /// A step never lets in more than there is room, budget or queue for.
        #[test]
        fn admit_count_respects_every_bound(
            tokens in 0u64..1_000, capacity in 1u32..1_000,
            inside in 0u64..2_000, pending in 0u64..2_000, waiting in 0u64..1_000,
        ) {
            let free = free_slots(capacity, inside, pending);
            let n = admit_count(tokens, free, waiting);
            prop_assert!(n <= tokens && n <= waiting);
            prop_assert!(inside + pending + n <= u64::from(capacity).max(inside + pending));
        }

        #[test]
        fn positions_are_contiguous(admitted_through in 0u64..1_000_000, ahead in 1u64..1_000_000) {
            prop_assert_eq!(position(admitted_through + ahead, admitted_through), Some(ahead));
        }
    }
}
