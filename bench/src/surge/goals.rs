//! Judgments for the adaptive room's goals (`docs/adaptive.md`, section
//! 5), computed from a run's timelines for the report: a report states
//! them, it does not assert them (benchmarks measure; tests assert).
//!
//! Goal 2: when the site loses capacity, the pace follows it (within 20%
//! of the new capacity); when the site gets it back, so does the pace.
//! Both compare the pace with the site's capacity in visitors a minute.

/// The pace is "within" the site's capacity inside this share of it.
const BAND: f64 = 0.2;

/// ...and must stay there this long to count as having followed it.
const HOLD_SECONDS: f64 = 5.0;

/// The pace is "back" from this share of the recovered capacity.
const BACK_SHARE: f64 = 0.8;

/// The site's capacity timeline (`(seconds, requests at once)`) in
/// visitors a minute: lazio's arithmetic (`site_visitors_per_second`,
/// linear in the capacity) at each point, from the throughput
/// `visitors_per_second` of the full capacity `capacity`. A site that gave
/// no timeline served its full capacity throughout. Empty when the site's
/// capacity or throughput is not known.
pub fn site_visitors_per_minute(
    capacity_timeline: &[(f64, u32)],
    capacity: Option<u32>,
    visitors_per_second: Option<f64>,
) -> Vec<(f64, f64)> {
    let (Some(capacity), Some(rate)) = (capacity.filter(|c| *c > 0), visitors_per_second) else {
        return Vec::new();
    };
    let per_request_at_once = rate * 60.0 / f64::from(capacity);
    if capacity_timeline.is_empty() {
        return vec![(0.0, rate * 60.0)];
    }
    capacity_timeline
        .iter()
        .map(|(at, capacity)| (*at, f64::from(*capacity) * per_request_at_once))
        .collect()
}

/// Seconds from the site's loss of capacity until the pace came within
/// ±20% of what it can now take, and stayed there for 5 s (sample and
/// hold: a sample counts until the next one). `None` without a loss, a
/// pace, or when the pace never did before the site recovered or the run
/// ended.
///
/// `pace` and `site` are `(seconds, visitors a minute)` on one clock; the
/// loss is the site timeline's first fall, the recovery its next rise.
pub fn pace_within_after_degrade(pace: &[(f64, f64)], site: &[(f64, f64)]) -> Option<f64> {
    let (degraded_at, degraded) = degrade(site)?;
    let recovered_at = recovery(site).map(|(at, _)| at);
    let window: Vec<(f64, f64)> = pace
        .iter()
        .copied()
        .filter(|(at, _)| *at >= degraded_at && recovered_at.is_none_or(|end| *at < end))
        .collect();
    let end = recovered_at.or_else(|| window.last().map(|(at, _)| *at))?;
    let within = |value: f64| (value - degraded).abs() <= BAND * degraded;
    let mut since: Option<f64> = None;
    for (at, value) in &window {
        match (within(*value), since) {
            (true, None) => since = Some(*at),
            (false, Some(from)) => {
                if at - from >= HOLD_SECONDS {
                    return Some(from - degraded_at);
                }
                since = None;
            }
            _ => {}
        }
    }
    since
        .filter(|from| end - from >= HOLD_SECONDS)
        .map(|from| from - degraded_at)
}

/// Seconds from the site's recovery until the pace reached 80% of what it
/// can take again. `None` without a loss and a recovery, a pace, or when
/// the pace never did before the run ended.
pub fn pace_back_after_recover(pace: &[(f64, f64)], site: &[(f64, f64)]) -> Option<f64> {
    let (recovered_at, recovered) = recovery(site)?;
    pace.iter()
        .find(|(at, value)| *at >= recovered_at && *value >= BACK_SHARE * recovered)
        .map(|(at, _)| at - recovered_at)
}

/// The site timeline's first fall: (when, the capacity from then).
pub(super) fn degrade(site: &[(f64, f64)]) -> Option<(f64, f64)> {
    site.windows(2)
        .find(|pair| pair[1].1 < pair[0].1)
        .map(|pair| pair[1])
}

/// The first rise after the fall: (when, the capacity from then).
pub(super) fn recovery(site: &[(f64, f64)]) -> Option<(f64, f64)> {
    let fall = site.windows(2).position(|pair| pair[1].1 < pair[0].1)? + 1;
    site[fall..]
        .windows(2)
        .find(|pair| pair[1].1 > pair[0].1)
        .map(|pair| pair[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lazio::site_visitors_per_second;
    use std::time::Duration;

    /// The README's goal 2: 3,000 visitors a minute, halved at 60 s and
    /// back at 150 s.
    const SITE: [(f64, f64); 3] = [(0.0, 3000.0), (60.0, 1500.0), (150.0, 3000.0)];

    /// A pace sampled once a second from `from` to `until`, given by `f`.
    fn pace(from: u32, until: u32, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (from..=until)
            .map(|second| (f64::from(second), f(f64::from(second))))
            .collect()
    }

    #[test]
    fn the_sites_capacity_is_put_in_visitors_a_minute() {
        let rate = site_visitors_per_second(50, Duration::from_millis(20));
        let timeline = site_visitors_per_minute(&[(0.0, 50), (60.0, 25)], Some(50), Some(rate));
        assert_eq!(timeline[0], (0.0, rate * 60.0));
        assert_eq!(timeline[1].0, 60.0);
        let lazio = site_visitors_per_second(25, Duration::from_millis(20)) * 60.0;
        assert!((timeline[1].1 - lazio).abs() < 1e-9, "{timeline:?}");
        assert_eq!(
            site_visitors_per_minute(&[], Some(50), Some(10.0)),
            vec![(0.0, 600.0)],
            "no timeline: the full capacity"
        );
        assert!(site_visitors_per_minute(&[(0.0, 50)], None, Some(10.0)).is_empty());
        assert!(site_visitors_per_minute(&[(0.0, 50)], Some(50), None).is_empty());
        assert!(site_visitors_per_minute(&[(0.0, 50)], Some(0), Some(1.0)).is_empty());
    }

    #[test]
    fn the_pace_follows_a_loss_once_it_stays_in_the_band_for_5_s() {
        // At the old pace until 62 s, then inside ±20% of 1,500 for good.
        let following = pace(0, 200, |at| if at < 62.0 { 2700.0 } else { 1400.0 });
        assert_eq!(pace_within_after_degrade(&following, &SITE), Some(2.0));

        // Through the band at 63 s for two seconds (1,790 and 1,210 are
        // inside), below it, and settled from 70 s.
        let overshooting = pace(0, 200, |at| match at as u32 {
            0..=62 => 2700.0,
            63 => 1790.0,
            64 => 1210.0,
            65..=69 => 900.0,
            _ => 1600.0,
        });
        assert_eq!(pace_within_after_degrade(&overshooting, &SITE), Some(10.0));

        // 1,850 is 23% above: outside.
        let above = pace(0, 200, |at| if at < 62.0 { 2700.0 } else { 1850.0 });
        assert_eq!(pace_within_after_degrade(&above, &SITE), None);
    }

    #[test]
    fn five_seconds_in_the_band_must_fit_before_the_recovery_or_the_end() {
        // In the band from 146 s: 4 s before the site recovers at 150 s.
        let late = pace(0, 200, |at| if at < 146.0 { 2700.0 } else { 1500.0 });
        assert_eq!(pace_within_after_degrade(&late, &SITE), None);
        // From 145 s: 5 s, just enough.
        let just = pace(0, 200, |at| if at < 145.0 { 2700.0 } else { 1500.0 });
        assert_eq!(pace_within_after_degrade(&just, &SITE), Some(85.0));
        // No recovery: the run's last sample ends the window.
        let site = [(0.0, 3000.0), (60.0, 1500.0)];
        assert_eq!(
            pace_within_after_degrade(&pace(0, 68, |_| 1500.0), &site),
            Some(0.0),
            "in the band from the loss on, 8 s of it"
        );
        assert_eq!(
            pace_within_after_degrade(&pace(0, 64, |_| 1500.0), &site),
            None,
            "4 s of run left"
        );
        // A sample missed in the middle does not break the run.
        let gap: Vec<_> = pace(60, 70, |_| 1500.0)
            .into_iter()
            .filter(|(at, _)| *at != 63.0)
            .collect();
        assert_eq!(pace_within_after_degrade(&gap, &site), Some(0.0));
    }

    #[test]
    fn without_a_loss_or_a_pace_there_is_no_judgment() {
        let steady = [(0.0, 3000.0)];
        assert_eq!(
            pace_within_after_degrade(&pace(0, 100, |_| 3000.0), &steady),
            None
        );
        assert_eq!(
            pace_back_after_recover(&pace(0, 100, |_| 3000.0), &steady),
            None
        );
        assert_eq!(pace_within_after_degrade(&[], &SITE), None);
        assert_eq!(pace_back_after_recover(&[], &SITE), None);
        // A site that starts low and rises has not lost anything.
        let rising = [(0.0, 1500.0), (60.0, 3000.0)];
        assert_eq!(
            pace_back_after_recover(&pace(0, 100, |_| 3000.0), &rising),
            None
        );
        assert_eq!(
            pace_within_after_degrade(&pace(0, 100, |_| 1500.0), &rising),
            None
        );
    }

    #[test]
    fn the_pace_is_back_at_80_percent_of_the_recovered_capacity() {
        // Climbing 100 a second from 1,500 at 150 s: 2,400 at 159 s.
        let climbing = pace(0, 200, |at| {
            if at < 150.0 {
                1500.0
            } else {
                1500.0 + (at - 150.0) * 100.0
            }
        });
        assert_eq!(pace_back_after_recover(&climbing, &SITE), Some(9.0));
        // Already there before the recovery: the first sample after it.
        let high = pace(0, 200, |_| 2500.0);
        assert_eq!(pace_back_after_recover(&high, &SITE), Some(0.0));
        // Never: the ceiling is below 80%.
        let capped = pace(0, 200, |_| 2300.0);
        assert_eq!(pace_back_after_recover(&capped, &SITE), None);
        // The run ended before the recovery.
        assert_eq!(
            pace_back_after_recover(&pace(0, 140, |_| 2500.0), &SITE),
            None
        );
    }
}
