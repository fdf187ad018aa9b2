//! A launch event rehearsed: the room's pre-queue is open from the run's
//! start and the room opens `--opens-in` seconds later. Part of the crowd
//! arrives during the pre-queue (pre-queue tickets `1..=P`), the rest after
//! the opening; at the opening the draw orders the pre-queue, and the
//! pre-queue goes in, in the draw's order, before anyone who came later.
//!
//! The checks use what any visitor or auditor can see: the public draw JSON
//! (`GET /_anteroom/draw?room=NAME`), read before the crowd comes (its
//! commitment) and after it has gone (its seed), recomputed with the same
//! code as `anteroom-bench verify-draw`; each visitor's ticket (from the
//! cookie when the bench holds the gateway's keys, else the status JSON's
//! `ticket`); and when each was told to wait and when let in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Uri;
use rand::Rng;
use rand::rngs::SmallRng;
use serde::Serialize;

use anteroom_store::draw::{DrawState, PublicDraw, VerifiedDraw};

use super::order::{self, InLine};
use super::{Arrivals, VisitorRecord};

/// The room's published opening may differ from `--opens-in` by this much
/// (it is shown in whole seconds, and the bench takes a moment to start).
const OPENING_TOLERANCE: Duration = Duration::from_secs(2);

/// A room that opens during the run, with a pre-queue before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaunchEvent {
    /// The room's `opens_at`, on this machine's clock.
    pub opens_at: SystemTime,
    /// The share of the crowd that arrives during the pre-queue, spread
    /// evenly over it; the rest arrive after the opening, on the crowd's
    /// curve (`--arrivals`) counted from the opening.
    pub pre_queue_share: f64,
}

/// What a launch event came to. Figures that need what the run could not
/// see (every ticket, the draw) are `null`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventFigures {
    /// Seconds from the run's start to the opening.
    pub opens_in_seconds: f64,
    /// The draw's `pre_queue`: the room's pre-queue tickets, `P`.
    pub pre_queue: Option<u64>,
    /// This crowd's visitors holding a pre-queue ticket.
    pub pre_queue_visitors: u64,
    /// This crowd's visitors who came after the opening.
    pub after_opening_visitors: u64,
    /// Visitors who waited but whose ticket the bench could not read.
    pub unknown_visitors: u64,
    /// The commitment the room published before the crowd came.
    pub commitment: Option<String>,
    /// The public draw after the run: drawn, its seed's SHA-256 is the
    /// commitment published before, and its algorithm is this build's.
    pub draw_verified: bool,
    /// Why the draw did not verify.
    pub draw_problem: Option<String>,
    /// Visitors who came after the opening and were let in while a
    /// pre-queue visitor was, later, still told to wait (0 expected).
    pub pre_queue_first: Option<u64>,
    /// Pre-queue visitors let in while one with a better place in the draw
    /// was, later, still told to wait (0 expected).
    pub draw_mismatches: Option<u64>,
    /// Pre-queue visitors whose status JSON showed a `draw_place`, and
    /// those for whom it was not the recomputed place (0 expected).
    pub draw_place_checked: u64,
    pub draw_place_mismatches: Option<u64>,
    /// Kendall's tau-b between arrival (pre-queue ticket) and place in the
    /// draw: near 0, since arriving early gives no advantage.
    pub kendall_tau: Option<f64>,
    /// Kendall's tau-b between place in the draw and reaching the booking
    /// page: near 1 (the waiting pages' polling shuffles neighbours).
    pub kendall_tau_admission: Option<f64>,
}

/// Where a visitor came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Came {
    /// During the pre-queue, with this ticket (`1..=P`).
    PreQueue {
        ticket: u64,
    },
    AfterOpening,
    /// Waited, but the bench never read their ticket.
    Unknown,
}

/// Arrival times, in milliseconds after the start, in order:
/// `pre_queue_share` of `visitors` spread evenly over the pre-queue (the
/// first `opens_in_ms`), the others on `arrivals` from the opening.
pub(super) fn schedule(
    arrivals: &Arrivals,
    visitors: u64,
    pre_queue_share: f64,
    opens_in_ms: u64,
    rng: &mut SmallRng,
) -> Vec<u64> {
    let early = ((visitors as f64 * pre_queue_share).round() as u64).min(visitors);
    let mut times: Vec<u64> = (0..early)
        .map(|_| {
            if opens_in_ms == 0 {
                0
            } else {
                rng.random_range(0..opens_in_ms)
            }
        })
        .collect();
    times.extend(
        arrivals
            .schedule(visitors - early, rng)
            .into_iter()
            .map(|at| at + opens_in_ms),
    );
    times.sort_unstable();
    times
}

/// Milliseconds from now until the opening (0 when it has passed).
pub(super) fn opens_in_ms(event: &LaunchEvent) -> u64 {
    event
        .opens_at
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .as_millis() as u64
}

/// The room's public draw JSON at `target`.
pub(super) async fn public_draw(target: &Uri, room: Option<&str>) -> Result<PublicDraw, String> {
    let authority = target
        .authority()
        .ok_or_else(|| format!("{target}: the target needs a host"))?;
    let url = match room {
        Some(room) => format!("http://{authority}/_anteroom/draw?room={room}"),
        None => format!("http://{authority}/_anteroom/draw"),
    };
    crate::verify_draw::read(&url)
        .await
        .map_err(|error| format!("the room's draw: {error}"))
}

/// Before the crowd comes: the room's draw must still be pending, and open
/// when the event says (within [`OPENING_TOLERANCE`]).
pub(super) fn check_before(event: &LaunchEvent, draw: &PublicDraw) -> Result<(), String> {
    if draw.state != DrawState::Pending {
        return Err(format!(
            "room {:?} has drawn already (it opened at {}): a rehearsal needs a room that opens during the run",
            draw.room,
            draw.opens_at.as_deref().unwrap_or("an unknown time")
        ));
    }
    let Some(published) = draw.opens_at.as_deref() else {
        return Err(format!("room {:?} publishes no opens_at", draw.room));
    };
    let published_ms = anteroom_config::schedule::parse_instant(published)
        .map_err(|error| format!("room {:?}: opens_at: {error}", draw.room))?;
    let expected_ms = millis_since_epoch(event.opens_at);
    if published_ms.abs_diff(expected_ms) > OPENING_TOLERANCE.as_millis() as u64 {
        let now_ms = millis_since_epoch(SystemTime::now());
        return Err(format!(
            "room {:?} opens at {published}, {:.0} s from now, not in {:.0} s as --opens-in says",
            draw.room,
            (published_ms as f64 - now_ms as f64) / 1000.0,
            (expected_ms as f64 - now_ms as f64) / 1000.0,
        ));
    }
    Ok(())
}

fn millis_since_epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl EventFigures {
    /// The figures of a run whose room published `before` at the start and
    /// `after` (or could not be read) at the end.
    pub(super) fn new(
        opens_in_ms: u64,
        before: &PublicDraw,
        after: Result<PublicDraw, String>,
        records: &[VisitorRecord],
    ) -> EventFigures {
        let mut figures = EventFigures {
            opens_in_seconds: opens_in_ms as f64 / 1000.0,
            commitment: Some(before.commitment.clone()),
            ..EventFigures::default()
        };
        let verified = after.and_then(|after| {
            let verified = after.verify().map_err(|error| error.to_string())?;
            if after.commitment != before.commitment {
                figures.draw_problem = Some(format!(
                    "the commitment changed during the run: {} before, {} after",
                    before.commitment, after.commitment
                ));
            }
            Ok(verified)
        });
        let verified = match verified {
            Ok(verified) => verified,
            Err(problem) => {
                figures.draw_problem = Some(problem);
                return figures;
            }
        };
        figures.draw_verified = figures.draw_problem.is_none();
        figures.measure(&verified, records);
        figures
    }

    fn measure(&mut self, verified: &VerifiedDraw, records: &[VisitorRecord]) {
        let draw = &verified.draw;
        let pre_queue = draw.pre_queue();
        self.pre_queue = Some(pre_queue);
        let came: Vec<(&VisitorRecord, Came)> = records
            .iter()
            .filter(|record| record.requests > 0)
            .map(|record| (record, came(record, pre_queue)))
            .collect();
        let count = |which: fn(&Came) -> bool| came.iter().filter(|(_, c)| which(c)).count() as u64;
        self.pre_queue_visitors = count(|c| matches!(c, Came::PreQueue { .. }));
        self.after_opening_visitors = count(|c| *c == Came::AfterOpening);
        self.unknown_visitors = count(|c| *c == Came::Unknown);

        // (record, ticket, place) of every pre-queue visitor. A ticket is
        // at most P here, so it has a place.
        let pre: Vec<(&VisitorRecord, u64, u64)> = came
            .iter()
            .filter_map(|(record, came)| match came {
                Came::PreQueue { ticket } => Some((*record, *ticket, draw.place(*ticket).ok()?)),
                _ => None,
            })
            .collect();

        if self.unknown_visitors == 0 {
            let mut line: Vec<InLine<u8>> = came
                .iter()
                .map(|(record, came)| InLine {
                    key: u8::from(*came == Came::AfterOpening),
                    admitted_ms: record.admitted_ms,
                    last_waiting_ms: record.last_waiting_ms,
                })
                .collect();
            self.pre_queue_first = Some(order::let_in_ahead(&mut line));
        }
        let mut by_place: Vec<InLine<u64>> = pre
            .iter()
            .map(|(record, _, place)| InLine {
                key: *place,
                admitted_ms: record.admitted_ms,
                last_waiting_ms: record.last_waiting_ms,
            })
            .collect();
        self.draw_mismatches = Some(order::let_in_ahead(&mut by_place));

        let shown: Vec<(u64, u64)> = pre
            .iter()
            .filter_map(|(record, _, place)| Some((record.shown_draw_place?, *place)))
            .collect();
        self.draw_place_checked = shown.len() as u64;
        self.draw_place_mismatches =
            Some(shown.iter().filter(|(shown, place)| shown != place).count() as u64);

        let (tickets, places): (Vec<u64>, Vec<u64>) = pre
            .iter()
            .map(|(_, ticket, place)| (*ticket, *place))
            .unzip();
        self.kendall_tau = order::tau_b(&tickets, &places);
        let (places, admitted): (Vec<u64>, Vec<u64>) = pre
            .iter()
            .filter_map(|(record, _, place)| Some((*place, record.admitted_ms?)))
            .unzip();
        self.kendall_tau_admission = order::tau_b(&places, &admitted);
    }

    /// `overtaken` of an event run: among visitors who came after the
    /// opening, by ticket (the pre-queue goes by the draw instead). Needs
    /// the draw's `P` and every waiting visitor's ticket.
    pub(super) fn overtaken_after_opening(&self, records: &[VisitorRecord]) -> Option<u64> {
        let pre_queue = self.pre_queue?;
        let mut line: Vec<InLine<u64>> = records
            .iter()
            .filter(|record| record.requests > 0)
            .filter(|record| came(record, pre_queue) == Came::AfterOpening)
            .filter(|record| record.waited || record.ticket.is_some())
            .map(|record| {
                Some(InLine {
                    key: record.ticket?,
                    admitted_ms: record.admitted_ms,
                    last_waiting_ms: record.last_waiting_ms,
                })
            })
            .collect::<Option<_>>()?;
        Some(order::let_in_ahead(&mut line))
    }

    /// The figures a person reads, as (name, value) rows.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let optional = |value: Option<u64>| value.map_or_else(|| "–".to_owned(), |v| v.to_string());
        let tau = |value: Option<f64>| value.map_or_else(|| "–".to_owned(), |v| format!("{v:.4}"));
        vec![
            (
                "opening / pre-queue tickets (this crowd's) / came after",
                format!(
                    "{:.1} s / {} ({}) / {}",
                    self.opens_in_seconds,
                    optional(self.pre_queue),
                    self.pre_queue_visitors,
                    self.after_opening_visitors
                ),
            ),
            (
                "draw verified (seed vs commitment published before)",
                match (&self.draw_problem, self.draw_verified) {
                    (None, true) => "yes".to_owned(),
                    (Some(problem), _) => format!("**no**: {problem}"),
                    (None, false) => "**no**".to_owned(),
                },
            ),
            (
                "came later, let in ahead of the pre-queue",
                optional(self.pre_queue_first),
            ),
            (
                "let in ahead of a better place in the draw",
                optional(self.draw_mismatches),
            ),
            (
                "draw_place shown ≠ recomputed",
                format!(
                    "{} of {} checked",
                    optional(self.draw_place_mismatches),
                    self.draw_place_checked
                ),
            ),
            (
                "pre-queue: Kendall tau arrival vs draw / draw vs let in",
                format!(
                    "{} / {}",
                    tau(self.kendall_tau),
                    tau(self.kendall_tau_admission)
                ),
            ),
        ]
    }
}

/// Where `record` came in, in a room whose pre-queue gave `pre_queue`
/// tickets. The cookie's ticket decides when the bench reads it; else the
/// status JSON's `ticket` (shown to pre-queue holders only); a visitor let
/// in without waiting came after the opening (nobody goes in before).
fn came(record: &VisitorRecord, pre_queue: u64) -> Came {
    match (record.ticket, record.shown_ticket) {
        (Some(ticket), _) | (None, Some(ticket)) if ticket <= pre_queue => {
            Came::PreQueue { ticket }
        }
        (Some(_), _) => Came::AfterOpening,
        // A pre-queue ticket beyond P: not this draw's. Counted as unknown
        // rather than guessed.
        (None, Some(_)) => Came::Unknown,
        (None, None) if !record.waited => Came::AfterOpening,
        (None, None) => Came::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anteroom_store::draw::{Draw, Seed};
    use rand::SeedableRng;

    fn seed() -> Seed {
        Seed::from_bytes([7; 32])
    }

    /// A visitor with `ticket` who was last told to wait at `last_wait`
    /// and let in at `admitted`.
    fn visitor(index: u64, ticket: u64, last_wait: u64, admitted: u64) -> VisitorRecord {
        let mut record = VisitorRecord::new(index, 0);
        record.requests = 5;
        record.waited = true;
        record.ticket = Some(ticket);
        record.last_waiting_ms = Some(last_wait);
        record.admitted_ms = Some(admitted);
        record
    }

    /// `pre_queue` visitors let in one every 100 ms in the draw's order
    /// from 1,000 ms, each told to wait 50 ms before; then `after` more,
    /// first come first served.
    fn a_fair_event(pre_queue: u64, after: u64) -> Vec<VisitorRecord> {
        let draw = Draw::new(&seed(), pre_queue);
        let mut records = Vec::new();
        for ticket in 1..=pre_queue {
            let place = draw.place(ticket).unwrap();
            let mut record = visitor(ticket - 1, ticket, 950 + place * 100, 1000 + place * 100);
            record.shown_ticket = Some(ticket);
            record.shown_draw_place = Some(place);
            records.push(record);
        }
        for ticket in pre_queue + 1..=pre_queue + after {
            let at = 1000 + ticket * 100;
            records.push(visitor(ticket - 1, ticket, at - 50, at));
        }
        records
    }

    fn drawn(pre_queue: u64) -> PublicDraw {
        PublicDraw::drawn("vaccini", &seed(), pre_queue, None)
    }

    fn pending() -> PublicDraw {
        PublicDraw::pending("vaccini", &seed(), 0, None)
    }

    #[test]
    fn a_fair_event_has_no_violations() {
        let records = a_fair_event(200, 50);
        let figures = EventFigures::new(20_000, &pending(), Ok(drawn(200)), &records);
        assert!(figures.draw_verified, "{figures:?}");
        assert_eq!(figures.draw_problem, None);
        assert_eq!(figures.opens_in_seconds, 20.0);
        assert_eq!(figures.pre_queue, Some(200));
        assert_eq!(figures.pre_queue_visitors, 200);
        assert_eq!(figures.after_opening_visitors, 50);
        assert_eq!(figures.unknown_visitors, 0);
        assert_eq!(figures.pre_queue_first, Some(0));
        assert_eq!(figures.draw_mismatches, Some(0));
        assert_eq!(figures.draw_place_checked, 200);
        assert_eq!(figures.draw_place_mismatches, Some(0));
        assert!(figures.kendall_tau.unwrap().abs() < 0.2, "{figures:?}");
        assert_eq!(figures.kendall_tau_admission, Some(1.0));
        assert_eq!(figures.overtaken_after_opening(&records), Some(0));
    }

    #[test]
    fn each_violation_is_counted_where_it_belongs() {
        let draw = Draw::new(&seed(), 200);
        let mut records = a_fair_event(200, 50);
        let at_place = |place: u64| usize::try_from(draw.ticket_at(place).unwrap() - 1).unwrap();
        // The draw's last place let in at 1,000 ms, ahead of places 1 to
        // 199, still told to wait until 20,850 ms.
        records[at_place(200)].last_waiting_ms = Some(950);
        records[at_place(200)].admitted_ms = Some(1_000);
        // Ticket 211, who came after the opening, let in at 1,050 ms: ahead
        // of the whole pre-queue and of tickets 201 to 210.
        records[210].last_waiting_ms = Some(1_000);
        records[210].admitted_ms = Some(1_050);
        // Ticket 221 told to wait until 29,950 ms: tickets 222 to 250, let
        // in from 23,200 to 26,000 ms, went ahead of it.
        records[220].last_waiting_ms = Some(29_950);
        records[220].admitted_ms = Some(30_000);
        // Place 7's status said place 8.
        records[at_place(7)].shown_draw_place = Some(8);
        let figures = EventFigures::new(20_000, &pending(), Ok(drawn(200)), &records);
        assert_eq!(figures.draw_mismatches, Some(1));
        assert_eq!(figures.pre_queue_first, Some(1));
        assert_eq!(figures.draw_place_mismatches, Some(1));
        assert_eq!(figures.draw_place_checked, 200);
        assert_eq!(figures.overtaken_after_opening(&records), Some(1 + 29));
    }

    #[test]
    fn a_draw_that_does_not_check_out_is_reported_and_measures_nothing() {
        let records = a_fair_event(20, 5);
        let other = PublicDraw::pending("vaccini", &Seed::from_bytes([8; 32]), 0, None);
        let figures = EventFigures::new(1_000, &other, Ok(drawn(20)), &records);
        assert!(!figures.draw_verified);
        assert!(
            figures
                .draw_problem
                .as_deref()
                .unwrap()
                .contains("the commitment changed"),
            "{figures:?}"
        );
        // The seed matches its own commitment: the order is still measured.
        assert_eq!(figures.draw_mismatches, Some(0));

        let mut forged = drawn(20);
        forged.seed = Some(Seed::from_bytes([9; 32]).to_hex());
        let figures = EventFigures::new(1_000, &pending(), Ok(forged), &records);
        assert!(!figures.draw_verified);
        assert!(
            figures
                .draw_problem
                .as_deref()
                .unwrap()
                .contains("DOES NOT MATCH")
        );
        assert_eq!(figures.draw_mismatches, None);

        let figures = EventFigures::new(1_000, &pending(), Err("no answer".to_owned()), &records);
        assert_eq!(figures.draw_problem.as_deref(), Some("no answer"));
        assert_eq!(figures.pre_queue_first, None);
    }

    #[test]
    fn tickets_come_from_the_cookie_or_else_the_status() {
        let mut record = visitor(0, 5, 0, 0);
        assert_eq!(came(&record, 10), Came::PreQueue { ticket: 5 });
        assert_eq!(came(&record, 4), Came::AfterOpening);
        record.ticket = None;
        assert_eq!(came(&record, 10), Came::Unknown);
        record.shown_ticket = Some(3);
        assert_eq!(came(&record, 10), Came::PreQueue { ticket: 3 });
        record.shown_ticket = None;
        record.waited = false;
        assert_eq!(came(&record, 10), Came::AfterOpening);
    }

    #[test]
    fn the_schedule_puts_the_share_before_the_opening() {
        let mut rng = SmallRng::seed_from_u64(3);
        let arrivals = Arrivals::Opening {
            jitter: Duration::from_secs(10),
        };
        let times = schedule(&arrivals, 10_000, 0.3, 20_000, &mut rng);
        assert_eq!(times.len(), 10_000);
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(times.iter().filter(|&&at| at < 20_000).count(), 3_000);
        assert!(times.iter().all(|&at| at < 30_000));
        // Spread over the whole pre-queue.
        assert!(times.iter().any(|&at| at < 1_000));
        assert!(times.iter().any(|&at| (19_000..20_000).contains(&at)));
    }

    #[test]
    fn the_room_must_open_when_the_event_says() {
        // On a whole second, as the gateway shows it.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let event = LaunchEvent {
            opens_at: UNIX_EPOCH + Duration::from_secs(now.as_secs() + 30),
            pre_queue_share: 0.5,
        };
        let utc = anteroom_config::schedule::time_zone("UTC").unwrap();
        let at = |offset: i64| {
            let ms = millis_since_epoch(event.opens_at) as i64 + offset;
            anteroom_config::schedule::format_instant(ms as u64, &utc)
        };
        let mut draw = pending();
        draw.opens_at = Some(at(-1_000));
        assert_eq!(check_before(&event, &draw), Ok(()));
        draw.opens_at = Some(at(2_000));
        assert_eq!(check_before(&event, &draw), Ok(()));
        draw.opens_at = Some(at(10_000));
        let message = check_before(&event, &draw).unwrap_err();
        assert!(message.contains("s from now, not in"), "{message}");
        draw.opens_at = None;
        assert!(check_before(&event, &draw).is_err());
        let mut drawn = drawn(3);
        drawn.opens_at = Some(at(0));
        assert!(
            check_before(&event, &drawn)
                .unwrap_err()
                .contains("drawn already")
        );
    }
}
