//! A room's launch event: when its pre-queue opens, when it opens (the
//! draw orders the pre-queue and admission starts), and when it stops
//! handing out places. Times are milliseconds since the Unix epoch, so that
//! the store compares them with its own clock as plain numbers; they are
//! written and shown as RFC 3339.
//!
//! Shared by the config file's `[[room]]` keys, the admin API's `PATCH`
//! and both store backends: one definition of the order and the phases.

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// `pre_queue_from`, `opens_at` and `closes_at`; each optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    /// From here until `opens_at`, an arrival gets a pre-queue ticket.
    pub pre_queue_from: Option<Millis>,
    /// The draw orders the pre-queue and admission starts.
    pub opens_at: Option<Millis>,
    /// No new places from here; visitors already in line go on.
    pub closes_at: Option<Millis>,
}

/// Where a room's schedule stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the pre-queue (or before the opening, without one): no
    /// ticket is handed out, nobody is let in.
    NotOpen,
    /// Between `pre_queue_from` and `opens_at`: arrivals get pre-queue
    /// tickets, nobody is let in.
    PreQueue,
    /// Open (or no schedule at all): first come, first served.
    Open,
    /// Past `closes_at`: no new places.
    Closed,
}

/// Why a schedule cannot stand; the message names the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("pre_queue_from needs opens_at: the pre-queue ends with the draw at the opening")]
    PreQueueWithoutOpening,
    #[error("{later} must come after {earlier}")]
    OutOfOrder {
        earlier: &'static str,
        later: &'static str,
    },
}

impl Schedule {
    /// Whether anything is scheduled.
    pub fn is_empty(&self) -> bool {
        *self == Schedule::default()
    }

    /// `pre_queue_from` < `opens_at` < `closes_at`, where present, and no
    /// pre-queue without an opening.
    pub fn check(&self) -> Result<(), ScheduleError> {
        if self.pre_queue_from.is_some() && self.opens_at.is_none() {
            return Err(ScheduleError::PreQueueWithoutOpening);
        }
        let named = [
            ("pre_queue_from", self.pre_queue_from),
            ("opens_at", self.opens_at),
            ("closes_at", self.closes_at),
        ];
        let present: Vec<(&'static str, Millis)> = named
            .into_iter()
            .filter_map(|(key, at)| at.map(|at| (key, at)))
            .collect();
        for pair in present.windows(2) {
            let [(earlier, earlier_at), (later, later_at)] = pair else {
                continue;
            };
            if later_at <= earlier_at {
                return Err(ScheduleError::OutOfOrder { earlier, later });
            }
        }
        Ok(())
    }

    /// The phase at `now` (the store's clock).
    pub fn phase(&self, now: Millis) -> Phase {
        if self.closes_at.is_some_and(|closes| now >= closes) {
            return Phase::Closed;
        }
        match self.opens_at {
            Some(opens) if now < opens => match self.pre_queue_from {
                Some(from) if now >= from => Phase::PreQueue,
                _ => Phase::NotOpen,
            },
            _ => Phase::Open,
        }
    }
}

/// Why a time does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstantError {
    #[error(
        "{text:?} is not an RFC 3339 time with an offset (for example \
         \"2021-02-01T12:00:00+01:00\"): {reason}"
    )]
    Malformed { text: String, reason: String },
    #[error("{text:?} is before 1970")]
    BeforeUnixEpoch { text: String },
}

/// An RFC 3339 time with its offset (`2021-02-01T12:00:00+01:00`, or `Z`),
/// as milliseconds since the Unix epoch. A time without an offset is
/// refused: it would mean a different instant in every time zone.
pub fn parse_instant(text: &str) -> Result<Millis, InstantError> {
    let timestamp: jiff::Timestamp =
        text.trim()
            .parse()
            .map_err(|error: jiff::Error| InstantError::Malformed {
                text: text.to_owned(),
                reason: error.to_string(),
            })?;
    Millis::try_from(timestamp.as_millisecond()).map_err(|_| InstantError::BeforeUnixEpoch {
        text: text.to_owned(),
    })
}

/// `at` as RFC 3339 with the offset of `zone` at that instant
/// (`2021-02-01T12:00:00+01:00` in `Europe/Rome`).
pub fn format_instant(at: Millis, zone: &jiff::tz::TimeZone) -> String {
    let millis = i64::try_from(at).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_millisecond(millis) {
        Ok(timestamp) => timestamp
            .to_zoned_datetime(zone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => String::new(),
    }
}

/// An IANA time zone by name (`Europe/Rome`), from the tz database compiled
/// into the binary.
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(name).map_err(|error| format!("unknown time zone {name:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Millis = 3_600_000;

    fn schedule(pre: Option<Millis>, opens: Option<Millis>, closes: Option<Millis>) -> Schedule {
        Schedule {
            pre_queue_from: pre,
            opens_at: opens,
            closes_at: closes,
        }
    }

    #[test]
    fn the_order_is_checked_and_named() {
        assert_eq!(schedule(Some(1), Some(2), Some(3)).check(), Ok(()));
        assert_eq!(schedule(None, Some(2), None).check(), Ok(()));
        assert_eq!(schedule(None, None, Some(3)).check(), Ok(()));
        assert_eq!(
            schedule(Some(1), None, None).check(),
            Err(ScheduleError::PreQueueWithoutOpening)
        );
        assert_eq!(
            schedule(Some(2), Some(2), None).check(),
            Err(ScheduleError::OutOfOrder {
                earlier: "pre_queue_from",
                later: "opens_at"
            })
        );
        let error = schedule(None, Some(5), Some(4)).check().unwrap_err();
        assert_eq!(error.to_string(), "closes_at must come after opens_at");
    }

    #[test]
    fn phases_follow_the_clock() {
        let event = schedule(Some(10 * HOUR), Some(12 * HOUR), Some(20 * HOUR));
        assert_eq!(event.phase(9 * HOUR), Phase::NotOpen);
        assert_eq!(event.phase(10 * HOUR), Phase::PreQueue);
        assert_eq!(event.phase(12 * HOUR - 1), Phase::PreQueue);
        assert_eq!(event.phase(12 * HOUR), Phase::Open);
        assert_eq!(event.phase(20 * HOUR), Phase::Closed);
        // An opening without a pre-queue: nobody gets a ticket before it.
        assert_eq!(
            schedule(None, Some(12 * HOUR), None).phase(11 * HOUR),
            Phase::NotOpen
        );
        assert_eq!(Schedule::default().phase(0), Phase::Open);
    }

    #[test]
    fn times_need_an_offset_and_keep_it_when_shown() {
        let opens = parse_instant("2021-02-01T12:00:00+01:00").unwrap();
        assert_eq!(opens, parse_instant("2021-02-01T11:00:00Z").unwrap());
        assert!(matches!(
            parse_instant("2021-02-01T12:00:00"),
            Err(InstantError::Malformed { .. })
        ));
        assert!(parse_instant("tomorrow at noon").is_err());
        assert!(matches!(
            parse_instant("1969-12-31T23:00:00Z"),
            Err(InstantError::BeforeUnixEpoch { .. })
        ));
        let rome = time_zone("Europe/Rome").unwrap();
        assert_eq!(format_instant(opens, &rome), "2021-02-01T12:00:00+01:00");
        // Summer time in the same zone.
        let july = parse_instant("2021-07-01T10:00:00Z").unwrap();
        assert_eq!(format_instant(july, &rome), "2021-07-01T12:00:00+02:00");
        assert!(time_zone("Europe/Atlantis").is_err());
    }
}
