//! A site that changes during a run: `--degrade-at SECONDS --degrade-to C
//! --recover-at SECONDS`. What the site serves well is a function of the
//! time since it started, so a rehearsal can show a site losing capacity in
//! the middle of an event (a database node fails, a dependency slows) and
//! getting it back, and a report can chart the pace against it.

use std::time::Duration;

use clap::Args;
use thiserror::Error;

use super::Melt;

/// The site loses capacity at `at` and, with `recover_at`, gets it back.
/// Times count from the site's start. Built by [`DegradeArgs::check`],
/// which holds the invariants: `1 ≤ capacity <` the site's capacity and
/// `recover_at > at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Degradation {
    /// When the site's capacity drops.
    pub at: Duration,
    /// Requests it serves well at once from then on.
    pub capacity: u32,
    /// When its original capacity is back; `None`: not during the run.
    pub recover_at: Option<Duration>,
}

/// What the site serves well over time: its melt, and how that changes.
#[derive(Debug, Clone, Copy)]
pub struct CapacityPlan {
    pub melt: Melt,
    pub degradation: Option<Degradation>,
}

/// From `at` after the site's start, it serves `capacity` requests at once
/// well.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityChange {
    pub at: Duration,
    pub capacity: u32,
}

/// The three flags, shared by `origin` and `lazio` (which passes them to
/// the site it starts).
#[derive(Debug, Clone, Default, Args)]
pub struct DegradeArgs {
    /// Seconds after the site starts when it loses capacity (needs
    /// --degrade-to).
    #[arg(long, value_name = "SECONDS")]
    pub degrade_at: Option<f64>,
    /// Requests it serves well at once from --degrade-at (at least 1, below
    /// its capacity); its collapse point scales with it.
    #[arg(long, value_name = "C")]
    pub degrade_to: Option<u32>,
    /// Seconds after the site starts when its capacity is back (later than
    /// --degrade-at).
    #[arg(long, value_name = "SECONDS")]
    pub recover_at: Option<f64>,
}

/// Why the three flags do not describe a change the site can make.
#[derive(Debug, Error, PartialEq)]
pub enum DegradeError {
    #[error("--degrade-to needs --degrade-at (when the site loses capacity)")]
    ToWithoutAt,
    #[error("--degrade-at needs --degrade-to (what the site serves well from then)")]
    AtWithoutTo,
    #[error("--recover-at needs --degrade-at and --degrade-to (what the site recovers from)")]
    RecoverWithoutDegrade,
    #[error(
        "--degrade-at needs the site's capacity: a site without one never melts, so it cannot lose any"
    )]
    NoCapacity,
    #[error("--{flag} must be a number of seconds from 0, not {seconds}")]
    BadSeconds { flag: &'static str, seconds: f64 },
    #[error("--degrade-to must be at least 1, not 0")]
    ToZero,
    #[error("--degrade-to {to} must be below the site's capacity ({capacity})")]
    ToNotBelowCapacity { to: u32, capacity: u32 },
    #[error("--recover-at {recover_at} must be later than --degrade-at {at}")]
    RecoverNotLater { at: f64, recover_at: f64 },
}

impl DegradeArgs {
    /// The change the flags describe for a site serving `capacity` requests
    /// at once well (`None` when it never melts); `Ok(None)` without flags.
    pub fn check(&self, capacity: Option<u32>) -> Result<Option<Degradation>, DegradeError> {
        let (at, to) = match (self.degrade_at, self.degrade_to, self.recover_at) {
            (None, None, None) => return Ok(None),
            (None, Some(_), _) => return Err(DegradeError::ToWithoutAt),
            (None, None, Some(_)) => return Err(DegradeError::RecoverWithoutDegrade),
            (Some(_), None, _) => return Err(DegradeError::AtWithoutTo),
            (Some(at), Some(to), _) => (at, to),
        };
        let capacity = capacity.ok_or(DegradeError::NoCapacity)?;
        let at_time = seconds("degrade-at", at)?;
        if to == 0 {
            return Err(DegradeError::ToZero);
        }
        if to >= capacity {
            return Err(DegradeError::ToNotBelowCapacity { to, capacity });
        }
        let recover_at = match self.recover_at {
            Some(recover_at) => {
                let recover_time = seconds("recover-at", recover_at)?;
                if recover_time <= at_time {
                    return Err(DegradeError::RecoverNotLater { at, recover_at });
                }
                Some(recover_time)
            }
            None => None,
        };
        Ok(Some(Degradation {
            at: at_time,
            capacity: to,
            recover_at,
        }))
    }
}

impl Degradation {
    /// Whether the site is degraded `since_start` after it started: from
    /// `at` (included) until `recover_at` (excluded).
    pub fn is_degraded(&self, since_start: Duration) -> bool {
        since_start >= self.at && self.recover_at.is_none_or(|back| since_start < back)
    }
}

impl CapacityPlan {
    /// The melt `since_start` after the site started.
    pub fn melt_at(&self, since_start: Duration) -> Melt {
        match self.degradation {
            Some(degradation) if degradation.is_degraded(since_start) => {
                self.melt.scaled_to(degradation.capacity)
            }
            _ => self.melt,
        }
    }

    /// The points where the capacity changed, up to `since_start` after
    /// the site started: its capacity from 0, then each change that has
    /// happened (a change at 0 replaces the first point).
    pub fn changes_until(&self, since_start: Duration) -> Vec<CapacityChange> {
        let mut planned = vec![CapacityChange {
            at: Duration::ZERO,
            capacity: self.melt.capacity,
        }];
        if let Some(degradation) = self.degradation {
            planned.push(CapacityChange {
                at: degradation.at,
                capacity: degradation.capacity,
            });
            if let Some(back) = degradation.recover_at {
                planned.push(CapacityChange {
                    at: back,
                    capacity: self.melt.capacity,
                });
            }
        }
        let mut changes: Vec<CapacityChange> = Vec::with_capacity(planned.len());
        for change in planned
            .into_iter()
            .filter(|change| change.at <= since_start)
        {
            match changes.last_mut() {
                Some(last) if last.at == change.at => *last = change,
                _ => changes.push(change),
            }
        }
        changes
    }
}

fn seconds(flag: &'static str, seconds: f64) -> Result<Duration, DegradeError> {
    Duration::try_from_secs_f64(seconds).map_err(|_| DegradeError::BadSeconds { flag, seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(at: Option<f64>, to: Option<u32>, recover: Option<f64>) -> DegradeArgs {
        DegradeArgs {
            degrade_at: at,
            degrade_to: to,
            recover_at: recover,
        }
    }

    fn plan(at: u64, to: u32, recover_at: Option<u64>) -> CapacityPlan {
        CapacityPlan {
            melt: Melt::with_capacity(50),
            degradation: Some(Degradation {
                at: Duration::from_secs(at),
                capacity: to,
                recover_at: recover_at.map(Duration::from_secs),
            }),
        }
    }

    fn change(at: u64, capacity: u32) -> CapacityChange {
        CapacityChange {
            at: Duration::from_secs(at),
            capacity,
        }
    }

    #[test]
    fn the_site_serves_less_from_degrade_at_until_recover_at() {
        let plan = plan(30, 20, Some(60));
        let capacity_at = |seconds: f64| {
            let melt = plan.melt_at(Duration::from_secs_f64(seconds));
            (melt.capacity, melt.collapse)
        };
        assert_eq!(capacity_at(0.0), (50, 100));
        assert_eq!(capacity_at(29.999), (50, 100));
        assert_eq!(capacity_at(30.0), (20, 40), "the collapse scales with it");
        assert_eq!(capacity_at(59.999), (20, 40));
        assert_eq!(capacity_at(60.0), (50, 100));
        assert_eq!(capacity_at(3600.0), (50, 100));
    }

    #[test]
    fn without_recovery_the_site_stays_degraded() {
        let plan = plan(30, 20, None);
        assert_eq!(plan.melt_at(Duration::from_secs(29)).capacity, 50);
        assert_eq!(plan.melt_at(Duration::from_secs(86_400)).capacity, 20);
        let steady = CapacityPlan {
            degradation: None,
            ..plan
        };
        assert_eq!(steady.melt_at(Duration::from_secs(86_400)).capacity, 50);
        assert_eq!(
            steady.changes_until(Duration::from_secs(86_400)),
            vec![change(0, 50)]
        );
    }

    #[test]
    fn the_timeline_holds_the_changes_that_have_happened() {
        let plan = plan(30, 20, Some(60));
        let until = |seconds| plan.changes_until(Duration::from_secs(seconds));
        assert_eq!(until(0), vec![change(0, 50)]);
        assert_eq!(until(29), vec![change(0, 50)]);
        assert_eq!(until(30), vec![change(0, 50), change(30, 20)]);
        assert_eq!(
            until(61),
            vec![change(0, 50), change(30, 20), change(60, 50)]
        );
        // Degraded from the start: one point at 0, not two.
        let from_start = self::plan(0, 20, Some(10));
        assert_eq!(
            from_start.changes_until(Duration::from_secs(5)),
            vec![change(0, 20)]
        );
        assert_eq!(
            from_start.changes_until(Duration::from_secs(10)),
            vec![change(0, 20), change(10, 50)]
        );
    }

    #[test]
    fn the_flags_describe_a_change() {
        assert_eq!(DegradeArgs::default().check(Some(50)), Ok(None));
        assert_eq!(DegradeArgs::default().check(None), Ok(None));
        assert_eq!(
            flags(Some(1.5), Some(20), Some(3.0)).check(Some(50)),
            Ok(Some(Degradation {
                at: Duration::from_millis(1500),
                capacity: 20,
                recover_at: Some(Duration::from_secs(3)),
            }))
        );
        assert_eq!(
            flags(Some(0.0), Some(49), None).check(Some(50)),
            Ok(Some(Degradation {
                at: Duration::ZERO,
                capacity: 49,
                recover_at: None,
            }))
        );
    }

    #[test]
    fn nonsensical_flags_are_refused() {
        use DegradeError::*;
        let refused = |at, to, recover, capacity| {
            flags(at, to, recover).check(capacity).expect_err("refused")
        };
        assert_eq!(refused(None, Some(20), None, Some(50)), ToWithoutAt);
        assert_eq!(refused(None, Some(20), Some(9.0), Some(50)), ToWithoutAt);
        assert_eq!(
            refused(None, None, Some(9.0), Some(50)),
            RecoverWithoutDegrade
        );
        assert_eq!(refused(Some(5.0), None, None, Some(50)), AtWithoutTo);
        assert_eq!(refused(Some(5.0), Some(20), None, None), NoCapacity);
        assert_eq!(refused(Some(5.0), Some(0), None, Some(50)), ToZero);
        assert_eq!(
            refused(Some(5.0), Some(50), None, Some(50)),
            ToNotBelowCapacity {
                to: 50,
                capacity: 50
            }
        );
        assert_eq!(
            refused(Some(5.0), Some(20), Some(5.0), Some(50)),
            RecoverNotLater {
                at: 5.0,
                recover_at: 5.0
            }
        );
        assert_eq!(
            refused(Some(5.0), Some(20), Some(4.0), Some(50)),
            RecoverNotLater {
                at: 5.0,
                recover_at: 4.0
            }
        );
        assert!(matches!(
            refused(Some(-1.0), Some(20), None, Some(50)),
            BadSeconds {
                flag: "degrade-at",
                ..
            }
        ));
        assert!(matches!(
            refused(Some(1.0), Some(20), Some(f64::NAN), Some(50)),
            BadSeconds {
                flag: "recover-at",
                ..
            }
        ));
        assert!(
            ToNotBelowCapacity {
                to: 50,
                capacity: 50
            }
            .to_string()
            .contains("--degrade-to 50 must be below the site's capacity (50)")
        );
    }
}
