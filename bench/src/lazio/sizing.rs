//! How big the replay's gateway is: sized from the site's limits as
//! `bench/README.md` tells an operator to, then multiplied by
//! `--size-factor` (a room sized ten times too large is what an adaptive
//! room must cope with).

/// The generated config's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// The room's `capacity`: places inside.
    pub capacity: u64,
    /// The room's `admit_per_minute` (the ceiling of an adaptive pace).
    pub admit_per_minute: u64,
    /// `limits.max_in_flight_upstream`: the room's requests at the site.
    pub max_in_flight_upstream: u64,
    /// With `--buffer`: the buffer's own requests at the site, and its
    /// pace. Not scaled: the buffer drains at what the site takes.
    pub buffer_in_flight: u32,
    pub drain_per_second: u64,
}

/// What the hand-tuned configuration is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteLimits {
    /// Requests the site serves well at once.
    pub capacity: u32,
    /// What that comes to in visitors a second.
    pub visitors_per_second: f64,
    /// `--headroom`: the share of that throughput let in.
    pub headroom: f64,
    /// `--refresh-seconds`: how late a waiting page may notice its turn.
    pub refresh_seconds: u64,
    /// `--buffer`: bookings go through a buffer.
    pub buffer: bool,
}

impl Sizing {
    /// The configuration an operator would write for `site`.
    pub fn hand_tuned(site: SiteLimits) -> Sizing {
        let rate = site.visitors_per_second;
        // Places inside for everyone let in during the last refresh
        // interval plus a quarter of a minute. A visitor's place is held
        // from the moment their turn comes, and a waiting page may take up
        // to a refresh interval to notice; then the journey takes a few
        // think times. Too few places and the line stops while turns go
        // unclaimed; the site is protected by `max_in_flight_upstream`,
        // not by this number.
        let capacity = ((rate * (site.refresh_seconds as f64 + 15.0)).ceil() as u64).max(10);
        let buffer_in_flight = if site.buffer {
            (site.capacity / 5).max(1)
        } else {
            0
        };
        Sizing {
            capacity,
            admit_per_minute: ((rate * site.headroom * 60.0).floor() as u64).max(1),
            max_in_flight_upstream: u64::from(
                site.capacity.saturating_sub(buffer_in_flight).max(1),
            ),
            buffer_in_flight,
            drain_per_second: ((rate * site.headroom).ceil() as u64).max(1),
        }
    }

    /// The room's `capacity` and `admit_per_minute` and the gateway's
    /// `max_in_flight_upstream` `factor` times these, each rounded down
    /// and at least 1 (a bound of 0 would admit nobody). `factor` is above
    /// 0 and finite (`--size-factor` is checked so); a product too large
    /// for the file is refused when the file is written.
    pub fn scaled(self, factor: f64) -> Sizing {
        let times = |value: u64| ((value as f64 * factor).floor() as u64).max(1);
        Sizing {
            capacity: times(self.capacity),
            admit_per_minute: times(self.admit_per_minute),
            max_in_flight_upstream: times(self.max_in_flight_upstream),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lazio::site_visitors_per_second;
    use std::time::Duration;

    /// The README's site: 50 requests at once, 20 ms each.
    fn site(buffer: bool) -> SiteLimits {
        SiteLimits {
            capacity: 50,
            visitors_per_second: site_visitors_per_second(50, Duration::from_millis(20)),
            headroom: 0.9,
            refresh_seconds: 5,
            buffer,
        }
    }

    #[test]
    fn the_hand_tuned_room_follows_the_site() {
        // 50 / 0.02 s / 3.5 = 714.3 visitors a second.
        assert_eq!(
            Sizing::hand_tuned(site(false)),
            Sizing {
                capacity: 14_286,
                admit_per_minute: 38_571,
                max_in_flight_upstream: 50,
                buffer_in_flight: 0,
                drain_per_second: 643,
            }
        );
        let buffered = Sizing::hand_tuned(site(true));
        assert_eq!(buffered.buffer_in_flight, 10);
        assert_eq!(buffered.max_in_flight_upstream, 40, "the buffer's share");
    }

    #[test]
    fn a_size_factor_multiplies_the_rooms_bounds_not_the_buffers() {
        let tuned = Sizing::hand_tuned(site(true));
        assert_eq!(tuned.scaled(1.0), tuned, "1 is the hand-tuned room");
        assert_eq!(
            tuned.scaled(10.0),
            Sizing {
                capacity: 142_860,
                admit_per_minute: 385_710,
                max_in_flight_upstream: 400,
                ..tuned
            }
        );
        let halved = tuned.scaled(0.5);
        assert_eq!(
            (
                halved.capacity,
                halved.admit_per_minute,
                halved.max_in_flight_upstream
            ),
            (7_143, 19_285, 20),
            "rounded down"
        );
        let tiny = tuned.scaled(1e-9);
        assert_eq!(
            (
                tiny.capacity,
                tiny.admit_per_minute,
                tiny.max_in_flight_upstream
            ),
            (1, 1, 1),
            "never 0"
        );
        assert_eq!(
            tuned.scaled(1e300).admit_per_minute,
            u64::MAX,
            "too large saturates, for the file's check to refuse"
        );
    }
}
