//! Each run is checked as it is measured: a run that measured anything
//! but what its scenario means fails the whole command.

use super::Bench;
use super::gateway::{self, Counters};
use super::measure::Plan;
use super::report::{Case, Server};
use super::wrk::Figures;

/// Requests a server may have answered after wrk stopped counting: one per
/// connection, plus our own sample requests.
const IN_FLIGHT_SLACK: u64 = 16;

/// Counts taken around a measured run, to check it.
#[derive(Debug, Default)]
pub(super) struct Observation {
    pub origin_requests: u64,
    pub counters: Counters,
    /// Arrivals: the room's `tickets_issued` and `waiting`.
    pub issued: u64,
    pub waiting: u64,
}

impl Bench {
    /// Fails unless the run measured what its case means.
    pub(super) fn check(
        &self,
        plan: &Plan<'_>,
        figures: &Figures,
        before: &Observation,
        after: &Observation,
    ) -> Result<(), String> {
        let total = figures.requests;
        if total == 0 {
            return Err("wrk got no response at all".to_owned());
        }
        if figures.socket_errors.total() > 0 {
            return Err(format!(
                "wrk reports socket errors: {:?}",
                figures.socket_errors
            ));
        }
        let slack = u64::from(self.args.connections) + IN_FLIGHT_SLACK;
        // Answered by the server: every response wrk counted, and at most
        // the ones in flight when it stopped.
        let all_of_them = |count: u64| count >= total && count <= total + slack;
        // The limit lets one request a second through (nginx: one a minute).
        let allowance = self.args.duration + self.args.warmup + 3;
        let origin = after.origin_requests.saturating_sub(before.origin_requests);
        match plan.case {
            Case::Proxy => {
                expect(figures.non_2xx == 0, || {
                    format!("{} of {total} responses were not 2xx", figures.non_2xx)
                })?;
                expect(all_of_them(origin), || {
                    format!("the origin served {origin} requests for {total} responses")
                })?;
            }
            Case::Status | Case::ArrivalsEmpty | Case::ArrivalsQueued => {
                expect(figures.non_2xx == 0, || {
                    format!("{} of {total} responses were not 2xx", figures.non_2xx)
                })?;
                expect(origin == 0, || {
                    format!("the origin served {origin} requests; none should reach it")
                })?;
            }
            Case::Limit => {
                expect(figures.non_2xx + allowance >= total, || {
                    format!(
                        "only {} of {total} responses were rejections",
                        figures.non_2xx
                    )
                })?;
                expect(origin <= allowance, || {
                    format!("the origin served {origin} requests past the limit")
                })?;
            }
        }
        if let Some(room) = plan.room {
            let issued = after.issued.saturating_sub(before.issued);
            expect(all_of_them(issued), || {
                format!(
                    "room {} issued {issued} tickets for {total} arrivals",
                    room.name
                )
            })?;
        }
        if plan.server == Server::Nginx {
            return Ok(());
        }
        let changes = gateway::counter_changes(&before.counters, &after.counters);
        let expected = match plan.case {
            Case::Proxy => (self.rooms.inside.name.as_str(), "proxied"),
            Case::Status => ("anteroom", "gateway"),
            Case::ArrivalsEmpty | Case::ArrivalsQueued => {
                (plan.room.map_or("", |room| room.name.as_str()), "waiting")
            }
            Case::Limit => ("none", "rate_limited"),
        };
        let key = (expected.0.to_owned(), expected.1.to_owned());
        let counted = changes.get(&key).copied().unwrap_or(0);
        let others: u64 = changes
            .iter()
            .filter(|(other, _)| **other != key)
            .map(|(_, count)| count)
            .sum();
        let (counted_ok, others_ok) = match plan.case {
            Case::Limit => (counted + allowance >= total, others <= allowance),
            _ => (all_of_them(counted), others == 0),
        };
        expect(counted_ok && others_ok, || {
            format!(
                "the gateway counted {counted} requests {}/{} for {total} responses, and these others: {changes:?}",
                expected.0, expected.1
            )
        })
    }
}

fn expect(holds: bool, problem: impl FnOnce() -> String) -> Result<(), String> {
    if holds { Ok(()) } else { Err(problem()) }
}
