//! How a site melts under load: the slowdown model behind [`Melt`].

use std::time::Duration;

/// How a site degrades past what it serves well.
///
/// A request that starts while `n` requests are in flight (itself included)
/// takes `service_time × slowdown(n)`:
/// - up to `capacity`: 1 (the site's threads each serve one request);
/// - up to `collapse`: `n / capacity` (the threads are shared; latency climbs
///   with the load and throughput holds at `capacity / service_time`);
/// - beyond: `n / capacity × (n / collapse)²` (threads exhausted: the site
///   thrashes and its throughput falls as the load grows).
///
/// A request whose time would pass `timeout` is answered `503` when the
/// timeout strikes, like a site's own load balancer giving up on it.
#[derive(Debug, Clone, Copy)]
pub struct Melt {
    pub capacity: u32,
    pub collapse: u32,
    pub timeout: Duration,
}

impl Melt {
    /// A site that serves `capacity` requests at once well, collapses at
    /// twice that, and times requests out after 10 s.
    pub fn with_capacity(capacity: u32) -> Melt {
        Melt {
            capacity,
            collapse: capacity.saturating_mul(2),
            timeout: Duration::from_secs(10),
        }
    }

    /// The same site serving `capacity` requests at once well: the collapse
    /// point keeps its ratio to the capacity (twice it by default, so
    /// `2 × capacity`; an explicit one scaled by `capacity / self.capacity`,
    /// rounded, and never below the new capacity); the timeout is the site's
    /// load balancer's and does not change.
    pub fn scaled_to(&self, capacity: u32) -> Melt {
        let ratio = f64::from(capacity) / f64::from(self.capacity.max(1));
        let collapse = (f64::from(self.collapse) * ratio).round() as u32;
        Melt {
            capacity,
            collapse: collapse.max(capacity),
            timeout: self.timeout,
        }
    }

    /// How long a request takes when it starts with `in_flight` requests at
    /// the site (itself included); `None` when it would pass the timeout.
    pub fn time_taken(&self, service_time: Duration, in_flight: u64) -> Option<Duration> {
        let took = service_time.mul_f64(self.slowdown(in_flight));
        (took <= self.timeout).then_some(took)
    }

    /// How many times `service_time` a request takes when it starts with
    /// `in_flight` requests at the site (itself included).
    pub fn slowdown(&self, in_flight: u64) -> f64 {
        let n = in_flight as f64;
        let capacity = f64::from(self.capacity.max(1));
        let collapse = f64::from(self.collapse.max(self.capacity).max(1));
        if n <= capacity {
            1.0
        } else if n <= collapse {
            n / capacity
        } else {
            n / capacity * (n / collapse).powi(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_melt_holds_throughput_then_collapses() {
        let melt = Melt {
            capacity: 10,
            collapse: 20,
            timeout: Duration::from_secs(10),
        };
        assert_eq!(melt.slowdown(1), 1.0);
        assert_eq!(melt.slowdown(10), 1.0);
        assert_eq!(melt.slowdown(15), 1.5);
        assert_eq!(melt.slowdown(20), 2.0);
        assert_eq!(melt.slowdown(40), 16.0);
        // Throughput (requests in flight / time each takes) holds up to the
        // collapse point and falls beyond it.
        let throughput = |n: u64| n as f64 / melt.slowdown(n);
        assert_eq!(throughput(10), throughput(20));
        assert!(throughput(40) < throughput(20) / 2.0);
    }

    #[test]
    fn a_scaled_site_keeps_its_collapse_ratio() {
        let default = Melt::with_capacity(50).scaled_to(20);
        assert_eq!((default.capacity, default.collapse), (20, 40));
        assert_eq!(default.timeout, Duration::from_secs(10));
        let explicit = Melt {
            capacity: 10,
            collapse: 15,
            timeout: Duration::from_secs(1),
        };
        assert_eq!(explicit.scaled_to(4).collapse, 6);
        assert_eq!(explicit.scaled_to(3).collapse, 5, "4.5 rounds up");
        let at_capacity = Melt {
            collapse: 10,
            ..explicit
        };
        assert_eq!(at_capacity.scaled_to(1).collapse, 1);
    }

    #[test]
    fn past_the_collapse_requests_time_out() {
        let melt = Melt {
            capacity: 1,
            collapse: 1,
            timeout: Duration::from_millis(100),
        };
        let service = Duration::from_millis(40);
        assert_eq!(melt.time_taken(service, 1), Some(service));
        // Two at once, past the collapse point: 40 ms × 2 × 4 > 100 ms.
        assert_eq!(melt.time_taken(service, 2), None);
    }
}
