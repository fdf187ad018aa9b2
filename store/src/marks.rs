//! What one process has seen of each room's line: the highest counters of
//! the room's epoch, read from every reply of the store and every ticket
//! checked. Sent with every room script, so that the store can tell when
//! its counters went back (a restart from an older snapshot, a lagging
//! replica promoted, a restart without persistence) and carry the line on
//! from the highest any gateway has seen instead of believing them (see
//! ARCHITECTURE.md, "When the store forgets").
//!
//! A few numbers per room, whatever the queue's length.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::{Millis, RoomParams, RoomSnapshot, Schedule, Seed};

/// How often the history behind [`Seen::floor`] takes a sample: once a
/// second is plenty for a bound measured in `arrival_seconds`.
const SAMPLE_EVERY_MS: Millis = 1_000;

#[derive(Debug, Default)]
pub(crate) struct Marks {
    rooms: Mutex<HashMap<String, Seen>>,
    /// Each room's draw seed: the store's once a reply brought it
    /// (`adopted`), else a fresh one this process offers a room that has
    /// none. Kept across epochs: should the store forget the room, the
    /// seed it committed to comes back with the next call.
    seeds: Mutex<HashMap<String, OfferedSeed>>,
}

#[derive(Debug, Clone, Copy)]
struct OfferedSeed {
    seed: Seed,
    adopted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    epoch: u64,
    generation: u64,
    issued: u64,
    admitted: u64,
    /// The draw's pre-queue count, once seen.
    drawn: Option<u64>,
    /// The schedule in force as last seen (a live change included).
    schedule: Option<Schedule>,
    /// (store time, admitted_through) about once a second, over the last
    /// `arrival` and a little more.
    history: VecDeque<(Millis, u64)>,
}

impl Seen {
    fn new(epoch: u64) -> Seen {
        Seen {
            epoch,
            generation: 0,
            issued: 0,
            admitted: 0,
            drawn: None,
            schedule: None,
            history: VecDeque::new(),
        }
    }

    /// Every ticket let in before this one had its arrival time run out
    /// (as this process saw the line): the tickets above it and up to
    /// `admitted` may still be on their way in.
    fn floor(&self, arrival_ms: Millis) -> u64 {
        let Some(&(latest, _)) = self.history.back() else {
            return 0;
        };
        let cutoff = latest.saturating_sub(arrival_ms);
        self.history
            .iter()
            .rev()
            .find(|(at, _)| *at <= cutoff)
            .or(self.history.front())
            .map(|(_, admitted)| *admitted)
            .unwrap_or(0)
    }
}

impl Marks {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Seen>) -> T) -> T {
        // A poisoned lock means a panic while updating plain numbers: they
        // are still numbers we saw.
        let mut rooms = match self.rooms.lock() {
            Ok(rooms) => rooms,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut rooms)
    }

    /// Takes in figures the store sent. A new epoch replaces what was seen:
    /// the store decides the epoch.
    pub(crate) fn observe(&self, room: &RoomParams, snapshot: &RoomSnapshot) {
        let arrival_ms = room.arrival.as_millis() as Millis;
        self.with(|rooms| {
            let seen = rooms
                .entry(room.name.clone())
                .or_insert_with(|| Seen::new(snapshot.epoch));
            if seen.epoch != snapshot.epoch {
                *seen = Seen::new(snapshot.epoch);
            }
            seen.generation = seen.generation.max(snapshot.generation);
            seen.issued = seen.issued.max(snapshot.issued);
            seen.admitted = seen.admitted.max(snapshot.admitted_through);
            seen.drawn = seen.drawn.or(snapshot.drawn);
            seen.schedule = Some(snapshot.schedule);
            let due = seen
                .history
                .back()
                .is_none_or(|(at, _)| snapshot.taken_at >= at.saturating_add(SAMPLE_EVERY_MS));
            if due {
                seen.history.push_back((snapshot.taken_at, seen.admitted));
                let keep_after = snapshot
                    .taken_at
                    .saturating_sub(arrival_ms.saturating_add(10 * SAMPLE_EVERY_MS));
                while seen.history.front().is_some_and(|(at, _)| *at < keep_after) {
                    seen.history.pop_front();
                }
            }
        });
    }

    /// A genuine ticket `number` of `epoch` exists, so the room has issued
    /// at least that many.
    pub(crate) fn witness_ticket(&self, room: &str, epoch: u64, number: u64) {
        self.with(|rooms| {
            if let Some(seen) = rooms.get_mut(room)
                && seen.epoch == epoch
            {
                seen.issued = seen.issued.max(number);
            }
        });
    }

    /// Ticket `number` of `epoch` was let in.
    pub(crate) fn witness_admitted(&self, room: &str, epoch: u64, number: u64) {
        self.with(|rooms| {
            if let Some(seen) = rooms.get_mut(room)
                && seen.epoch == epoch
            {
                seen.issued = seen.issued.max(number);
                seen.admitted = seen.admitted.max(number);
            }
        });
    }

    /// The schedule to send the room's scripts: the one last seen in force
    /// (should the store lose the room, a live change comes back with it),
    /// else the config's.
    pub(crate) fn schedule(&self, room: &RoomParams) -> Schedule {
        self.with(|rooms| rooms.get(&room.name).and_then(|seen| seen.schedule))
            .unwrap_or(room.schedule)
    }

    /// The room's seed as the store holds it, once a reply brought it.
    pub(crate) fn seed(&self, room: &str) -> Option<Seed> {
        let seeds = match self.seeds.lock() {
            Ok(seeds) => seeds,
            Err(poisoned) => poisoned.into_inner(),
        };
        seeds
            .get(room)
            .filter(|offered| offered.adopted)
            .map(|offered| offered.seed)
    }

    /// The store holds `seed` for the room: every later call says so.
    pub(crate) fn adopt_seed(&self, room: &str, seed: Seed) {
        let mut seeds = match self.seeds.lock() {
            Ok(seeds) => seeds,
            Err(poisoned) => poisoned.into_inner(),
        };
        seeds.insert(
            room.to_owned(),
            OfferedSeed {
                seed,
                adopted: true,
            },
        );
    }

    /// The room scripts' draw arguments: the seed this process holds (the
    /// room's, or a fresh one offered to a room without one), whether it
    /// is the room's ("1"), and the draw's pre-queue count as seen in the
    /// current epoch ("" if none).
    pub(crate) fn draw_arguments(&self, room: &RoomParams) -> [String; 3] {
        let offered = {
            let mut seeds = match self.seeds.lock() {
                Ok(seeds) => seeds,
                Err(poisoned) => poisoned.into_inner(),
            };
            *seeds
                .entry(room.name.clone())
                .or_insert_with(|| OfferedSeed {
                    seed: Seed::generate(),
                    adopted: false,
                })
        };
        let drawn = self.with(|rooms| rooms.get(&room.name).and_then(|seen| seen.drawn));
        [
            offered.seed.to_hex(),
            if offered.adopted { "1" } else { "0" }.to_owned(),
            drawn.map(|count| count.to_string()).unwrap_or_default(),
        ]
    }

    /// The room scripts' marks arguments: epoch, generation, issued,
    /// admitted, floor; an empty epoch (and zeros) when nothing has been
    /// seen of the room. Separate arguments, so that the scripts read them
    /// without parsing.
    pub(crate) fn arguments(&self, room: &RoomParams) -> [String; 5] {
        let arrival_ms = room.arrival.as_millis() as Millis;
        self.with(|rooms| match rooms.get(&room.name) {
            Some(seen) => [
                seen.epoch.to_string(),
                seen.generation.to_string(),
                seen.issued.to_string(),
                seen.admitted.to_string(),
                seen.floor(arrival_ms).min(seen.admitted).to_string(),
            ],
            None => [
                String::new(),
                "0".into(),
                "0".into(),
                "0".into(),
                "0".into(),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn room() -> RoomParams {
        RoomParams {
            name: "main".into(),
            capacity: 10,
            admit_per_minute: 60,
            inside_ttl: Duration::from_secs(60),
            arrival: Duration::from_secs(30),
            schedule: crate::Schedule::default(),
        }
    }

    fn snapshot(epoch: u64, issued: u64, admitted: u64, at: Millis) -> RoomSnapshot {
        RoomSnapshot {
            epoch,
            issued,
            admitted_through: admitted,
            taken_at: at,
            ..RoomSnapshot::default()
        }
    }

    #[test]
    fn nothing_seen_sends_nothing() {
        assert_eq!(Marks::default().arguments(&room())[0], "");
    }

    #[test]
    fn marks_keep_the_highest_of_an_epoch_and_follow_a_new_one() {
        let marks = Marks::default();
        marks.observe(&room(), &snapshot(7, 50, 20, 1_000));
        // An older reply, answered out of order, lowers nothing.
        marks.observe(&room(), &snapshot(7, 40, 10, 1_100));
        marks.witness_ticket("main", 7, 55);
        // A ticket of another epoch says nothing about this one.
        marks.witness_ticket("main", 8, 1_000);
        marks.witness_admitted("main", 7, 25);
        assert_eq!(marks.arguments(&room()).join(" "), "7 0 55 25 20");
        marks.observe(&room(), &snapshot(9, 3, 1, 2_000));
        assert_eq!(marks.arguments(&room()).join(" "), "9 0 3 1 1");
    }

    #[test]
    fn the_floor_is_where_the_line_stood_an_arrival_time_ago() {
        let marks = Marks::default();
        // One admission a second for two minutes; arrival is 30 s.
        for second in 0..120u64 {
            marks.observe(&room(), &snapshot(1, 500, second, second * 1_000));
        }
        assert_eq!(marks.arguments(&room()).join(" "), "1 0 500 119 89");
    }
}
