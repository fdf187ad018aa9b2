//! An adaptive room's pace during a run: its admin figures
//! (`GET /admin/rooms/NAME`, the `adaptive` object of `docs/adaptive.md`)
//! read once a second, and what they come to for the report.
//!
//! Sampling never fails a run: a gateway without the controller answers
//! without `adaptive` (or `404` for a room it does not know), and then
//! nothing is recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::fetch::Client;

/// How often the room's figures are read: the controller moves once a
/// second (its tick), so a second is every change and costs the gateway
/// one small answer.
pub(super) const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Where a room's admin figures are read, and with which token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRoom {
    /// `http://host:port/admin/rooms/NAME`.
    pub url: String,
    /// The admin listener's bearer token; `None` when it has none (reads
    /// are then open).
    pub token: Option<String>,
}

impl AdminRoom {
    /// Room `room` on the admin listener at `base` (`http://host:port`).
    pub fn new(base: &str, room: &str, token: Option<String>) -> AdminRoom {
        AdminRoom {
            url: format!("{}/admin/rooms/{room}", base.trim_end_matches('/')),
            token,
        }
    }
}

/// What the controller said at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Effective admissions a minute.
    pub pace: f64,
    /// Why the pace is what it is (`ramp`, `grow`, `latency`, ...), when
    /// said.
    pub reason: Option<String>,
    /// The site is having trouble (the waiting page says so).
    pub trouble: bool,
}

/// A [`Reading`] at `at` seconds after the run's start.
#[derive(Debug, Clone, PartialEq)]
pub struct PaceSample {
    pub at: f64,
    pub reading: Reading,
}

/// The samples of a run, summed up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaceFigures {
    /// `(seconds, admissions a minute)`, one a sample.
    pub timeline: Vec<(f64, f64)>,
    /// Samples (seconds) per reason.
    pub reasons: BTreeMap<String, u64>,
    /// Samples (seconds) with `trouble`; `None` without samples.
    pub trouble_seconds: Option<u64>,
}

impl Reading {
    /// The reading in a room's admin figures; `None` when they have no
    /// `adaptive` object or it has no usable `pace` (a gateway without the
    /// controller). `reason` and `trouble` may be absent.
    pub fn of(figures: &serde_json::Value) -> Option<Reading> {
        let adaptive = figures.get("adaptive")?.as_object()?;
        let pace = adaptive
            .get("pace")?
            .as_f64()
            .filter(|pace| pace.is_finite() && *pace >= 0.0)?;
        Some(Reading {
            pace,
            reason: adaptive
                .get("reason")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            trouble: adaptive
                .get("trouble")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
        })
    }
}

impl PaceFigures {
    pub fn of(samples: &[PaceSample]) -> PaceFigures {
        let mut reasons = BTreeMap::new();
        for sample in samples {
            if let Some(reason) = &sample.reading.reason {
                *reasons.entry(reason.clone()).or_insert(0) += 1;
            }
        }
        PaceFigures {
            timeline: samples
                .iter()
                .map(|sample| (round_ms(sample.at), sample.reading.pace))
                .collect(),
            reasons,
            trouble_seconds: (!samples.is_empty()).then(|| {
                samples
                    .iter()
                    .filter(|sample| sample.reading.trouble)
                    .count() as u64
            }),
        }
    }
}

/// Reads `room`'s figures every `every` ([`SAMPLE_EVERY`] in a run) until
/// `stop` fires (or is dropped). A reading that fails or has no pace is
/// skipped.
pub(super) async fn sample_pace(
    room: AdminRoom,
    every: Duration,
    start: Instant,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<PaceSample> {
    let client = Client::new();
    let authorization = room.token.as_ref().map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("authorization", value.as_str()))
        .collect();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(every);
    // A slow answer costs that second's sample, not a burst of catch-ups.
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => return samples,
        }
        let reply = tokio::select! {
            reply = client.get(&room.url, &headers) => reply,
            _ = &mut stop => return samples,
        };
        let reading = reply
            .ok()
            .filter(|reply| reply.status.is_success())
            .and_then(|reply| reply.json().ok())
            .and_then(|figures| Reading::of(&figures));
        if let Some(reading) = reading {
            samples.push(PaceSample {
                at: start.elapsed().as_secs_f64(),
                reading,
            });
        }
    }
}

/// Seconds kept to the millisecond, as the other timelines are.
fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reading_is_taken_from_the_adaptive_object() {
        let figures = json!({
            "name": "vaccini",
            "capacity": 420,
            "adaptive": {
                "enabled": true, "min_admit_per_minute": 60, "latency_p90_ms": 1000,
                "max_error_rate": 0.01, "pace": 1234.5, "phase": "steady",
                "places": 72, "base_ms": 20.5, "p90_ms": 310.0, "error_rate": 0.0,
                "reason": "grow", "changed_at": 1_700_000_000_000_u64, "trouble": false,
            },
        });
        assert_eq!(
            Reading::of(&figures),
            Some(Reading {
                pace: 1234.5,
                reason: Some("grow".to_owned()),
                trouble: false,
            })
        );
        let troubled = json!({"adaptive": {"pace": 60, "reason": "site_down", "trouble": true,
            "places": null, "base_ms": null, "p90_ms": null, "error_rate": null}});
        assert_eq!(
            Reading::of(&troubled),
            Some(Reading {
                pace: 60.0,
                reason: Some("site_down".to_owned()),
                trouble: true,
            }),
            "nulls elsewhere do not matter"
        );
    }

    #[test]
    fn without_a_pace_nothing_is_read() {
        for figures in [
            json!({"name": "vaccini", "capacity": 420}),
            json!({"adaptive": null}),
            json!({"adaptive": {"enabled": false}}),
            json!({"adaptive": {"pace": null, "reason": "off"}}),
            json!({"adaptive": {"pace": "fast"}}),
            json!({"adaptive": {"pace": -1}}),
            json!({"error": "no such room"}),
            json!([1, 2]),
        ] {
            assert_eq!(Reading::of(&figures), None, "{figures}");
        }
        assert_eq!(
            Reading::of(&json!({"adaptive": {"pace": 600}})),
            Some(Reading {
                pace: 600.0,
                reason: None,
                trouble: false,
            }),
            "a pace alone is a reading"
        );
    }

    fn sample(at: f64, pace: f64, reason: Option<&str>, trouble: bool) -> PaceSample {
        PaceSample {
            at,
            reading: Reading {
                pace,
                reason: reason.map(str::to_owned),
                trouble,
            },
        }
    }

    #[test]
    fn samples_come_to_a_timeline_seconds_per_reason_and_trouble() {
        let samples = [
            sample(1.0004, 100.0, Some("ramp"), false),
            sample(2.0, 200.0, Some("ramp"), false),
            sample(3.0, 60.0, Some("site_down"), true),
            sample(4.0, 60.0, None, true),
            sample(5.0, 75.0, Some("grow"), false),
        ];
        let figures = PaceFigures::of(&samples);
        assert_eq!(
            figures.timeline,
            vec![
                (1.0, 100.0),
                (2.0, 200.0),
                (3.0, 60.0),
                (4.0, 60.0),
                (5.0, 75.0)
            ]
        );
        assert_eq!(
            figures.reasons,
            BTreeMap::from([
                ("grow".to_owned(), 1),
                ("ramp".to_owned(), 2),
                ("site_down".to_owned(), 1),
            ])
        );
        assert_eq!(figures.trouble_seconds, Some(2));
        assert_eq!(
            PaceFigures::of(&[]),
            PaceFigures::default(),
            "no samples: nothing, not zero trouble"
        );
    }

    #[test]
    fn the_rooms_url_is_under_the_admin_listener() {
        assert_eq!(
            AdminRoom::new("http://127.0.0.1:9090/", "vaccini", None).url,
            "http://127.0.0.1:9090/admin/rooms/vaccini"
        );
    }

    /// A gateway answers without a pace, then `404`, then with one, in
    /// turn: only the pace is recorded, and the run goes on.
    #[tokio::test]
    async fn answers_without_a_pace_are_skipped_not_fatal() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seventh, asked_seventh) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let answers = [
                (200, r#"{"name":"lazio"}"#),
                (404, r#"{"error":"no such room"}"#),
                (200, r#"{"adaptive":{"pace":600.0,"reason":"hold"}}"#),
            ];
            let mut seventh = Some(seventh);
            for asked in 1.. {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut request = [0_u8; 1024];
                let _ = socket.read(&mut request).await;
                if asked == 7 {
                    // The sampler asks one at a time: six answers are read.
                    let _ = seventh.take().unwrap().send(());
                }
                let (status, body) = answers[(asked - 1) % answers.len()];
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let room = AdminRoom::new(&format!("http://{addr}"), "lazio", Some("t".to_owned()));
        let sampler = tokio::spawn(sample_pace(
            room,
            Duration::from_millis(5),
            Instant::now(),
            stopped,
        ));
        asked_seventh.await.unwrap();
        stop.send(()).unwrap();
        let samples = sampler.await.unwrap();
        assert!(samples.len() >= 2, "{samples:?}");
        assert!(
            samples.iter().all(|sample| sample.reading.pace == 600.0),
            "{samples:?}"
        );
    }
}
