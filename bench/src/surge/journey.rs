//! One visitor's journey, as a person with a browser makes it: open the
//! booking page, wait in line if there is one (as the waiting page does),
//! browse a little, book, watch the receipt, leave.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};
use rand::Rng;
use rand::rngs::SmallRng;
use serde_json::json;
use tokio::time::Instant;

use super::client::{Answer, Failure, Jar, Outgoing};
use super::{Crowd, JourneyEnd, VisitorRecord};

const HTML: &str = "text/html,application/xhtml+xml";
const JSON: &str = "application/json";
/// A visitor polling a receipt asks this often.
const RECEIPT_POLL: Duration = Duration::from_secs(2);
/// The waiting page's fallback when an answer carries no interval.
const DEFAULT_REFRESH_SECONDS: u64 = 5;

/// What the visitor holds after asking for the booking page.
enum Page {
    /// The site's own page: the visitor is in.
    Site,
    /// The waiting room's page (or JSON): wait this many seconds.
    Waiting { refresh_seconds: u64 },
}

/// Why a journey stopped early.
enum Stop {
    Deadline,
    GaveUp,
    Abandoned,
}

/// One visitor on their way through the site: what they hold (cookies,
/// their address, their patience) and what they have seen so far.
pub(super) struct Journey<'a> {
    crowd: &'a Crowd,
    record: VisitorRecord,
    jar: Jar,
    rng: SmallRng,
    forwarded_for: Option<HeaderValue>,
    /// Set at arrival: this visitor abandons the line if still waiting then.
    abandon_at: Option<Instant>,
    impatient: bool,
}

impl<'a> Journey<'a> {
    pub(super) fn new(crowd: &'a Crowd, index: u64, scheduled_ms: u64, mut rng: SmallRng) -> Self {
        let options = &crowd.options;
        let abandon_at = (rng.random::<f64>() < options.abandon).then(|| {
            // Exponentially distributed patience around the mean.
            let patience = -options.abandon_after.as_secs_f64() * (1.0 - rng.random::<f64>()).ln();
            Instant::now() + Duration::from_secs_f64(patience)
        });
        let impatient = rng.random::<f64>() < options.impatient;
        let forwarded_for = options.forwarded_for.then(|| {
            // 10.0.0.1 onwards: one address per visitor, as behind their own
            // home connection.
            let n = index + 1;
            let address = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
            HeaderValue::from_str(&address).expect("a dotted quad is a valid header value")
        });
        Journey {
            crowd,
            record: VisitorRecord::new(index, scheduled_ms),
            jar: Jar::default(),
            rng,
            forwarded_for,
            abandon_at,
            impatient,
        }
    }

    /// Makes the journey, to its end, and returns what the visitor saw.
    pub(super) async fn make(mut self) -> VisitorRecord {
        let end = match self.run().await {
            Ok(()) => JourneyEnd::Served,
            Err(Stop::Deadline) => JourneyEnd::Unfinished,
            Err(Stop::GaveUp) => JourneyEnd::GaveUp,
            Err(Stop::Abandoned) => JourneyEnd::Abandoned,
        };
        self.record.end = end;
        let counters = &self.crowd.counters;
        match end {
            JourneyEnd::Served => counters.served.fetch_add(1, Ordering::Relaxed),
            JourneyEnd::GaveUp => counters.gave_up.fetch_add(1, Ordering::Relaxed),
            JourneyEnd::Abandoned => counters.abandoned.fetch_add(1, Ordering::Relaxed),
            JourneyEnd::Unfinished => 0,
        };
        if self.record.admitted_ms.is_some() {
            counters.inside.fetch_sub(1, Ordering::Relaxed);
        }
        self.record
    }

    async fn run(&mut self) -> Result<(), Stop> {
        self.enter().await?;
        if self.rng.random::<f64>() < 0.5 {
            self.think().await?;
            self.browse("/").await?;
        }
        self.think().await?;
        let slots = self.slots().await?;
        self.think().await?;
        self.book(&slots).await?;
        self.record.served_ms = Some(self.crowd.ms_since_start());
        self.leave().await;
        Ok(())
    }

    /// From the first request until the site's own booking page arrives.
    async fn enter(&mut self) -> Result<(), Stop> {
        let entry = self.crowd.options.entry_path.clone();
        loop {
            match self.page(&entry).await? {
                Page::Site => {
                    self.admitted();
                    return Ok(());
                }
                Page::Waiting { refresh_seconds } => self.wait_in_line(refresh_seconds).await?,
            }
        }
    }

    /// Asks for a page; errors are retried as people do (soon, or a little
    /// later if patient) until they give up.
    async fn page(&mut self, path: &str) -> Result<Page, Stop> {
        loop {
            let sent_ms = self.crowd.ms_since_start();
            let answer = self.send(Outgoing::get(path, HTML)).await?;
            match answer {
                Ok(answer) if answer.status == StatusCode::OK && answer.retry_after().is_none() => {
                    return Ok(Page::Site);
                }
                // The waiting room's page (200, or 429 when this address took
                // too many places lately): it says when to ask again.
                Ok(answer)
                    if matches!(
                        answer.status,
                        StatusCode::OK | StatusCode::TOO_MANY_REQUESTS
                    ) =>
                {
                    if answer.status == StatusCode::TOO_MANY_REQUESTS {
                        self.crowd
                            .counters
                            .rate_limited
                            .fetch_add(1, Ordering::Relaxed);
                        self.record.rate_limited += 1;
                    } else {
                        self.told_waiting(sent_ms);
                    }
                    return Ok(Page::Waiting {
                        refresh_seconds: answer.retry_after().unwrap_or(DEFAULT_REFRESH_SECONDS),
                    });
                }
                Ok(answer) => self.failed(Some(answer.status)).await?,
                Err(_) => self.failed(None).await?,
            }
        }
    }

    /// Waits as the waiting page does: polls the status at the interval it
    /// is told, and goes back to the page when let in. Impatient visitors
    /// reload the page instead, every few seconds.
    async fn wait_in_line(&mut self, mut refresh_seconds: u64) -> Result<(), Stop> {
        self.record.waited = true;
        let status_path = match &self.crowd.options.room {
            Some(room) => format!("/_anteroom/status?room={room}"),
            None => "/_anteroom/status".to_owned(),
        };
        loop {
            let pause = if self.impatient {
                Duration::from_millis(self.rng.random_range(1000..3000))
            } else {
                Duration::from_secs(refresh_seconds.max(1))
                    + Duration::from_millis(self.rng.random_range(0..250))
            };
            self.sleep(pause, true).await?;
            if self.impatient {
                return Ok(());
            }
            let sent_ms = self.crowd.ms_since_start();
            match self.send(Outgoing::get(&status_path, JSON)).await? {
                Ok(answer) if answer.status == StatusCode::OK => {
                    let status = answer.json().unwrap_or_default();
                    match status["state"].as_str() {
                        // In line, in the pre-queue before the draw, or
                        // before the pre-queue opens: all mean "not yet".
                        Some("waiting" | "pre_queue" | "not_open") => {
                            self.told_waiting(sent_ms);
                            self.shown(&status);
                            refresh_seconds = status["refresh_seconds"]
                                .as_u64()
                                .unwrap_or(DEFAULT_REFRESH_SECONDS);
                        }
                        // Let in (or no place: the page takes one again).
                        _ => return Ok(()),
                    }
                }
                Ok(answer) => {
                    refresh_seconds = answer.retry_after().unwrap_or(DEFAULT_REFRESH_SECONDS);
                    self.failed(Some(answer.status)).await?;
                }
                Err(_) => self.failed(None).await?,
            }
        }
    }

    async fn browse(&mut self, path: &str) -> Result<(), Stop> {
        loop {
            match self.page(path).await? {
                Page::Site => return Ok(()),
                // The session ended: back in line, then on.
                Page::Waiting { refresh_seconds } => {
                    self.wait_in_line(refresh_seconds).await?;
                    self.enter().await?;
                }
            }
        }
    }

    /// The slots with places left, as the site lists them.
    async fn slots(&mut self) -> Result<Vec<String>, Stop> {
        loop {
            match self.send(Outgoing::get("/api/slots", JSON)).await? {
                Ok(answer) if answer.status == StatusCode::OK && answer.retry_after().is_none() => {
                    let listed = answer.json().unwrap_or_default();
                    let slots = listed["slots"]
                        .as_array()
                        .map(|slots| {
                            slots
                                .iter()
                                .filter(|slot| slot["remaining"].as_u64() != Some(0))
                                .filter_map(|slot| slot["id"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    return Ok(slots);
                }
                Ok(answer) if answer.status == StatusCode::OK => {
                    self.back_in_line(&answer).await?;
                }
                Ok(answer) => self.failed(Some(answer.status)).await?,
                Err(_) => self.failed(None).await?,
            }
        }
    }

    /// Books one of `slots` (a random one first, then the others when full),
    /// with one idempotency key for every try, so a retry never books twice.
    async fn book(&mut self, slots: &[String]) -> Result<(), Stop> {
        let key = format!("{}-{}", self.crowd.run_id, self.record.index);
        let first = if slots.is_empty() {
            0
        } else {
            self.rng.random_range(0..slots.len())
        };
        let choices: Vec<&str> = slots
            .iter()
            .cycle()
            .skip(first)
            .take(slots.len())
            .map(String::as_str)
            .collect();
        for slot in choices {
            let body = json!({"name": format!("Visitatore {}", self.record.index), "slot": slot});
            let status = loop {
                let outgoing = Outgoing::post(
                    "/api/bookings",
                    "application/json",
                    Bytes::from(body.to_string()),
                )
                .header(
                    HeaderName::from_static("idempotency-key"),
                    HeaderValue::from_str(&format!("{key}-{slot}")).expect("keys are ASCII"),
                );
                match self.send(outgoing).await? {
                    Ok(answer) if answer.status == StatusCode::ACCEPTED => {
                        break self.watch_receipt(&answer).await?;
                    }
                    Ok(answer)
                        if answer.status.is_success() || answer.status == StatusCode::CONFLICT =>
                    {
                        break answer.status;
                    }
                    Ok(answer)
                        if answer.status == StatusCode::SERVICE_UNAVAILABLE
                            && self.is_waiting_answer(&answer) =>
                    {
                        self.back_in_line(&answer).await?;
                    }
                    Ok(answer) => self.failed(Some(answer.status)).await?,
                    Err(_) => self.failed(None).await?,
                }
            };
            if status.is_success() {
                self.record.booked = true;
                return Ok(());
            }
            // 409: that slot filled up; try the next one.
        }
        Ok(())
    }

    /// Polls a `202`'s receipt until the booking is done or failed, and
    /// returns the site's answer to it.
    async fn watch_receipt(&mut self, accepted: &Answer) -> Result<StatusCode, Stop> {
        self.record.buffered = true;
        let status_url = accepted
            .json()
            .and_then(|receipt| receipt["status_url"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if !status_url.starts_with('/') {
            self.failed(Some(accepted.status)).await?;
            return Ok(StatusCode::BAD_GATEWAY);
        }
        loop {
            self.sleep(RECEIPT_POLL, false).await?;
            match self.send(Outgoing::get(&status_url, JSON)).await? {
                Ok(answer) if answer.status == StatusCode::OK => {
                    let receipt = answer.json().unwrap_or_default();
                    match receipt["state"].as_str() {
                        Some("done") => {
                            let status = receipt["result"]["status"].as_u64().unwrap_or(0);
                            return Ok(StatusCode::from_u16(status as u16)
                                .unwrap_or(StatusCode::BAD_GATEWAY));
                        }
                        Some("failed") => {
                            self.failed(None).await?;
                            return Ok(StatusCode::BAD_GATEWAY);
                        }
                        _ => {}
                    }
                }
                Ok(answer) => self.failed(Some(answer.status)).await?,
                Err(_) => self.failed(None).await?,
            }
        }
    }

    /// Done: frees the place inside for the next visitor at once, as the
    /// "leave" button does. Only where there was a waiting room.
    async fn leave(&mut self) {
        if !self.jar.has_prefix("anteroom_pass_") {
            return;
        }
        let path = match &self.crowd.options.room {
            Some(room) => format!("/_anteroom/leave?room={room}"),
            None => "/_anteroom/leave".to_owned(),
        };
        let outgoing = Outgoing::post(&path, "application/x-www-form-urlencoded", Bytes::new());
        // Best effort: the session times out by itself otherwise.
        let _ = self.send(outgoing).await;
    }

    /// Whether `answer` is the waiting room's (the visitor's session ended).
    fn is_waiting_answer(&self, answer: &Answer) -> bool {
        answer.retry_after().is_some()
            && answer.json().is_some_and(|status| {
                matches!(
                    status["state"].as_str(),
                    Some("waiting" | "pre_queue" | "not_open" | "none")
                )
            })
    }

    async fn back_in_line(&mut self, answer: &Answer) -> Result<(), Stop> {
        self.crowd
            .counters
            .sent_back
            .fetch_add(1, Ordering::Relaxed);
        let refresh = answer.retry_after().unwrap_or(DEFAULT_REFRESH_SECONDS);
        self.wait_in_line(refresh).await?;
        self.enter().await
    }

    fn admitted(&mut self) {
        if self.record.admitted_ms.is_none() {
            self.record.admitted_ms = Some(self.crowd.ms_since_start());
            self.crowd.counters.inside.fetch_add(1, Ordering::Relaxed);
            if self.record.last_waiting_ms.is_some() {
                self.crowd.counters.waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if self.record.ticket.is_none()
            && let Some(reader) = &self.crowd.options.ticket_reader
        {
            self.record.ticket = reader(&self.jar);
        }
    }

    fn told_waiting(&mut self, sent_ms: u64) {
        if self.record.last_waiting_ms.is_none() {
            self.crowd.counters.waiting.fetch_add(1, Ordering::Relaxed);
        }
        self.record.last_waiting_ms = Some(sent_ms);
        if self.record.ticket.is_none()
            && let Some(reader) = &self.crowd.options.ticket_reader
        {
            self.record.ticket = reader(&self.jar);
        }
    }

    /// Keeps what a status JSON showed of a pre-queue ticket: its number,
    /// and its place once drawn.
    fn shown(&mut self, status: &serde_json::Value) {
        if let Some(ticket) = status["ticket"].as_u64() {
            self.record.shown_ticket = Some(ticket);
        }
        if let Some(place) = status["draw_place"].as_u64() {
            self.record.shown_draw_place = Some(place);
        }
    }

    /// One request, or the end of the run.
    async fn send(&mut self, mut outgoing: Outgoing<'_>) -> Result<Result<Answer, Failure>, Stop> {
        if Instant::now() >= self.crowd.deadline {
            return Err(Stop::Deadline);
        }
        if let Some(address) = &self.forwarded_for {
            outgoing = outgoing.header(HeaderName::from_static("x-forwarded-for"), address.clone());
        }
        self.record.requests += 1;
        let answer = self
            .crowd
            .client
            .send(&mut self.jar, outgoing, self.crowd.deadline)
            .await;
        if Instant::now() >= self.crowd.deadline {
            return Err(Stop::Deadline);
        }
        Ok(answer)
    }

    /// An error seen: counted, then a pause before trying again (short for
    /// the impatient), or giving up after too many.
    async fn failed(&mut self, status: Option<StatusCode>) -> Result<(), Stop> {
        let counters = &self.crowd.counters;
        counters.errors.fetch_add(1, Ordering::Relaxed);
        match status {
            Some(status) if status.is_server_error() => {
                counters.errors_5xx.fetch_add(1, Ordering::Relaxed)
            }
            Some(_) => counters.errors_other.fetch_add(1, Ordering::Relaxed),
            None => counters.errors_no_answer.fetch_add(1, Ordering::Relaxed),
        };
        self.record.errors += 1;
        if self.record.errors >= self.crowd.options.give_up_after_errors {
            return Err(Stop::GaveUp);
        }
        let pause = if self.impatient {
            Duration::from_millis(self.rng.random_range(500..2000))
        } else {
            Duration::from_millis(self.rng.random_range(3000..10_000))
        };
        self.sleep(pause, self.record.admitted_ms.is_none()).await
    }

    /// Time between steps inside the site.
    async fn think(&mut self) -> Result<(), Stop> {
        let mean = self.crowd.options.think.as_millis() as u64;
        if mean == 0 {
            return Ok(());
        }
        let pause = Duration::from_millis(self.rng.random_range(mean / 2..=mean + mean / 2));
        self.sleep(pause, false).await
    }

    /// Sleeps, unless the run ends first or (while `in_line`) the visitor
    /// abandons first.
    async fn sleep(&mut self, pause: Duration, in_line: bool) -> Result<(), Stop> {
        let wake = Instant::now() + pause;
        let abandon = if in_line { self.abandon_at } else { None };
        let until = [Some(wake), Some(self.crowd.deadline), abandon]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(wake);
        tokio::time::sleep_until(until).await;
        if until >= self.crowd.deadline && until < wake {
            return Err(Stop::Deadline);
        }
        if abandon == Some(until) && until < wake {
            if self.record.last_waiting_ms.is_some() && self.record.admitted_ms.is_none() {
                self.crowd.counters.waiting.fetch_sub(1, Ordering::Relaxed);
            }
            return Err(Stop::Abandoned);
        }
        Ok(())
    }
}

/// Shared with the run: turns a visitor's cookies into their ticket number
/// (known only when the bench holds the gateway's cookie keys).
pub type TicketReader = Arc<dyn Fn(&Jar) -> Option<u64> + Send + Sync>;

/// Reads the ticket of `room` from a visitor's cookies, verifying it with
/// the gateway's keys (a cookie that does not verify is no ticket).
pub fn ticket_reader(keys: anteroom_gateway::token::Keyring, room: &str) -> TicketReader {
    let cookie = format!("anteroom_ticket_{room}");
    Arc::new(move |jar: &Jar| {
        let ticket = keys.verify_ticket(jar.get(&cookie)?)?;
        Some(ticket.number)
    })
}
