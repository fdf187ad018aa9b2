//! `[room.adaptive]`: the file's table, and the rules any later change to
//! it (the admin API) is held to as well.

use std::num::NonZeroU32;
use std::time::Duration;

use super::Result;
use crate::defaults;
use crate::raw::RawAdaptive;
use crate::{Adaptive, AdaptiveError};

impl Adaptive {
    /// The rules of `[room.adaptive]` for a room admitting at most
    /// `admit_per_minute` behind `upstream_timeout`: the floor not above
    /// the ceiling, `latency_p90_ms` within its range, `max_error_rate`
    /// a number in (0, [`defaults::MAX_ERROR_RATE_LIMIT`]]. While
    /// `enabled`, `latency_p90_ms` must also be below the upstream
    /// timeout. (The file holds a `latency_p90_ms` it states to that even
    /// while off; a value left out is only checked once it is turned on,
    /// so that a short timeout does not make every room's default wrong.)
    pub fn check(
        &self,
        admit_per_minute: NonZeroU32,
        upstream_timeout: Duration,
    ) -> std::result::Result<(), AdaptiveError> {
        self.check_against(admit_per_minute, self.enabled.then_some(upstream_timeout))
    }

    /// [`Adaptive::check`], with the timeout rule applied only when
    /// `upstream_timeout` is given.
    fn check_against(
        &self,
        admit_per_minute: NonZeroU32,
        upstream_timeout: Option<Duration>,
    ) -> std::result::Result<(), AdaptiveError> {
        if self.min_admit_per_minute > admit_per_minute {
            return Err(AdaptiveError::FloorAboveCeiling {
                floor: self.min_admit_per_minute.get(),
                ceiling: admit_per_minute.get(),
            });
        }
        let latency_ms = self.latency_p90_ms;
        if !defaults::LATENCY_P90_MS
            .range
            .contains(&u64::from(latency_ms))
        {
            return Err(AdaptiveError::LatencyOutOfRange { latency_ms });
        }
        if let Some(upstream_timeout) = upstream_timeout
            && Duration::from_millis(latency_ms.into()) >= upstream_timeout
        {
            return Err(AdaptiveError::LatencyNotBelowTimeout {
                latency_ms,
                upstream_timeout,
            });
        }
        // Written so that NaN fails too: every comparison with it is false.
        let rate = self.max_error_rate;
        if !(rate > 0.0 && rate <= defaults::MAX_ERROR_RATE_LIMIT) {
            return Err(AdaptiveError::ErrorRateOutOfRange { rate });
        }
        Ok(())
    }
}

impl AdaptiveError {
    /// The key in `[room.adaptive]` the problem is about.
    pub fn key(&self) -> &'static str {
        match self {
            AdaptiveError::FloorAboveCeiling { .. } => "min_admit_per_minute",
            AdaptiveError::LatencyOutOfRange { .. }
            | AdaptiveError::LatencyNotBelowTimeout { .. } => "latency_p90_ms",
            AdaptiveError::ErrorRateOutOfRange { .. } => "max_error_rate",
        }
    }
}

/// A room's `[room.adaptive]`, with the defaults filled in. The problem
/// starts with `adaptive.KEY`; the caller puts the room before it.
pub(super) fn adaptive(
    raw: Option<RawAdaptive>,
    admit_per_minute: NonZeroU32,
    upstream_timeout: Duration,
) -> Result<Adaptive> {
    let raw = raw.unwrap_or_default();
    let off = Adaptive::off(admit_per_minute);
    let min_admit_per_minute = match raw.min_admit_per_minute {
        None => off.min_admit_per_minute,
        Some(floor) => NonZeroU32::new(floor)
            .ok_or("adaptive.min_admit_per_minute: must be at least 1 (got 0)")?,
    };
    // The range first, on the number as written: it may not fit a u32.
    let latency_p90_ms = defaults::LATENCY_P90_MS
        .value(raw.latency_p90_ms)
        .map_err(|problem| format!("adaptive.latency_p90_ms: {problem}"))?
        as u32;
    let adaptive = Adaptive {
        enabled: raw.enabled.unwrap_or(off.enabled),
        min_admit_per_minute,
        latency_p90_ms,
        max_error_rate: raw.max_error_rate.unwrap_or(off.max_error_rate),
    };
    let timeout_applies = adaptive.enabled || raw.latency_p90_ms.is_some();
    adaptive
        .check_against(
            admit_per_minute,
            timeout_applies.then_some(upstream_timeout),
        )
        .map_err(|problem| format!("adaptive.{problem}"))?;
    Ok(adaptive)
}
