//! `GET /_anteroom/events?room=NAME`: a waiting visitor's place, pushed as
//! Server-Sent Events.
//!
//! Each stream reads the visitor's signed ticket once and then only the
//! room's cached figures (refreshed by the room's step every 100 ms): a
//! waiting visitor on a stream costs no store round trip. A stream sleeps
//! until the line moves or the room's state changes (the room's
//! [`watch_line`](RoomRuntime::watch_line)), looking at most once a second
//! and at least every 15 s, so an idle stream costs nothing between
//! keepalives. It sends the status JSON of `/_anteroom/status` whenever
//! the place, the estimate or the room's state changes (and a comment
//! every 15 s so that proxies keep it open), and ends:
//! - when the visitor's turn has come, with an event `turn`: the page then
//!   calls `/_anteroom/status`, which admits it (one store call, once);
//! - when the gateway shuts down, or the client goes away.
//!
//! Streams are bounded by `limits.max_event_streams`; beyond it, or for a
//! visitor without a ticket, the answer is not a stream and the page polls.
//! One ticket holds at most [`STREAMS_PER_TICKET`] streams (a visitor's
//! tabs): another one replaces the oldest, which ends with an event
//! `replaced` (its page then polls), so one free ticket cannot fill
//! `max_event_streams`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::Shutdown;
use crate::answer::Answer;
use crate::clock::StoreClock;
use crate::door::{self, ByFigures};
use crate::room::RoomRuntime;
use crate::status::Status;

/// A stream looks at the figures at most this often: a line that moves at
/// every step would otherwise wake every stream ten times a second, and a
/// page needs no more than one update a second.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// A comment this often keeps idle proxies from closing the stream; an
/// unchanged line's estimate is looked at again this often too.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Streams one ticket may hold at once: a visitor with a few tabs open
/// keeps them all following; more than that is not a visitor.
const STREAMS_PER_TICKET: usize = 4;

/// The open streams of each ticket. An entry lives as long as its stream,
/// so the map is bounded by `max_event_streams`.
#[derive(Debug, Default)]
pub struct TicketStreams {
    open: Mutex<HashMap<TicketKey, VecDeque<(u64, CancellationToken)>>>,
    next_id: AtomicU64,
}

/// A ticket, as the streams know it: room, epoch and number.
type TicketKey = (String, u64, u64);

impl TicketStreams {
    /// Registers a new stream for `key`, ending the ticket's oldest one if
    /// it already has [`STREAMS_PER_TICKET`].
    fn register(self: &Arc<Self>, key: TicketKey) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let replaced = CancellationToken::new();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let streams = open.entry(key.clone()).or_default();
        while streams.len() >= STREAMS_PER_TICKET {
            if let Some((_, oldest)) = streams.pop_front() {
                oldest.cancel();
                metrics::counter!("anteroom_event_streams_replaced_total").increment(1);
            }
        }
        streams.push_back((id, replaced.clone()));
        Registration {
            streams: Arc::clone(self),
            key,
            id,
            replaced,
        }
    }

    /// Streams open for a ticket.
    #[cfg(test)]
    fn of(&self, key: &TicketKey) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map_or(0, VecDeque::len)
    }
}

/// One stream's place among its ticket's; taken out when dropped.
struct Registration {
    streams: Arc<TicketStreams>,
    key: TicketKey,
    id: u64,
    /// Cancelled when a newer stream of the same ticket takes this one's
    /// place.
    replaced: CancellationToken,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(streams) = open.get_mut(&self.key) {
            streams.retain(|(id, _)| *id != self.id);
            if streams.is_empty() {
                open.remove(&self.key);
            }
        }
    }
}

/// Answers `GET /_anteroom/events`.
pub fn open<'a>(shared: &Shared, room: &Arc<RoomRuntime>, headers: &HeaderMap) -> Answer<'a> {
    let Some(ticket) = door::valid_ticket(&shared.keys, room, headers) else {
        // Nothing to follow (no place yet, or already inside): the page
        // polls the status, which knows what to do.
        return Answer::NoContent;
    };
    let Ok(permit) = Arc::clone(&shared.event_streams).try_acquire_owned() else {
        return Answer::Unavailable {
            message: "too many event streams; poll /_anteroom/status instead",
            retry_seconds: room.refresh_seconds(None),
        };
    };
    let registration =
        shared
            .ticket_streams
            .register((ticket.room.clone(), ticket.epoch, ticket.number));
    let (sender, receiver) = mpsc::channel::<Bytes>(4);
    tokio::spawn(follow(
        Arc::clone(room),
        ticket,
        (
            Arc::clone(&shared.store_clock),
            shared.config.time_zone.clone(),
        ),
        shared.shutdown.clone(),
        sender,
        (permit, registration),
    ));
    metrics::counter!("anteroom_event_streams_opened_total").increment(1);
    Answer::Events(
        EventBody { receiver }
            .map_err(|never| match never {})
            .boxed_unsync(),
    )
}

/// Writes one stream's events until the turn comes, the gateway stops,
/// the client leaves or a newer stream of the same ticket replaces it.
/// Holds its `max_event_streams` permit and its place among the ticket's
/// streams throughout.
async fn follow(
    room: Arc<RoomRuntime>,
    ticket: crate::token::Ticket,
    time: (Arc<StoreClock>, jiff::tz::TimeZone),
    shutdown: Shutdown,
    sender: mpsc::Sender<Bytes>,
    (_permit, registration): (OwnedSemaphorePermit, Registration),
) {
    let replaced = registration.replaced.clone();
    tokio::select! {
        () = following(room, ticket, time, shutdown, &sender) => {}
        () = replaced.cancelled() => {
            // The page stops following and polls instead, rather than
            // reconnecting and replacing another tab's stream in turn.
            let _ = sender
                .send(Bytes::from_static(b"event: replaced\ndata: {}\n\n"))
                .await;
        }
    }
}

async fn following(
    room: Arc<RoomRuntime>,
    ticket: crate::token::Ticket,
    (clock, zone): (Arc<StoreClock>, jiff::tz::TimeZone),
    shutdown: Shutdown,
    sender: &mpsc::Sender<Bytes>,
) {
    let retry_ms = room.refresh_seconds(None) * 1000;
    if sender
        .send(Bytes::from(format!("retry: {retry_ms}\n\n")))
        .await
        .is_err()
    {
        return;
    }
    let mut line = room.watch_line();
    // The first look is at once.
    line.mark_changed();
    // Only a change is sent: the line wakes every stream when anything of
    // the room's figures moves.
    let mut last_sent: Option<String> = None;
    let mut quiet_since = Instant::now();
    loop {
        tokio::select! {
            changed = line.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(quiet_since + KEEPALIVE) => {}
            _ = shutdown.begun() => return,
            _ = sender.closed() => return,
        }
        if shutdown.is_begun() {
            return;
        }
        line.borrow_and_update();
        let now = clock.now();
        let snapshot = room
            .snapshot()
            .filter(|snapshot| snapshot.epoch == ticket.epoch);
        let event =
            match snapshot.map(|snapshot| door::by_figures(&room, &snapshot, ticket.number, now)) {
                // The turn has come, or the room's epoch changed under the
                // ticket: the status call sorts it out.
                Some(ByFigures::TurnCome { .. }) => {
                    let _ = sender
                        .send(Bytes::from_static(b"event: turn\ndata: {}\n\n"))
                        .await;
                    return;
                }
                None if room.snapshot().is_some() => {
                    let _ = sender
                        .send(Bytes::from_static(b"event: turn\ndata: {}\n\n"))
                        .await;
                    return;
                }
                Some(ByFigures::Stands(standing)) => {
                    let body = Status::of(&room, standing, now, &zone).to_json();
                    if last_sent.as_deref() == Some(body.as_str()) {
                        None
                    } else {
                        let event = Bytes::from(format!("data: {body}\n\n"));
                        last_sent = Some(body);
                        Some(event)
                    }
                }
                // No figures yet (the room has not stepped): wait for them.
                None => None,
            };
        let event = match event {
            Some(event) => Some(event),
            None if quiet_since.elapsed() >= KEEPALIVE => {
                Some(Bytes::from_static(b": keepalive\n\n"))
            }
            None => None,
        };
        if let Some(event) = event {
            quiet_since = Instant::now();
            if sender.send(event).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(MIN_INTERVAL) => {}
            _ = shutdown.begun() => return,
            _ = sender.closed() => return,
        }
    }
}

/// A response body fed by a channel; it ends when the sender is dropped.
struct EventBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl HttpBody for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.receiver
            .poll_recv(context)
            .map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_keeps_its_newest_streams_and_forgets_them_when_they_end() {
        let streams = Arc::new(TicketStreams::default());
        let key: TicketKey = ("vaccini".to_owned(), 1, 42);
        let mut open: Vec<Registration> = (0..STREAMS_PER_TICKET)
            .map(|_| streams.register(key.clone()))
            .collect();
        assert!(open.iter().all(|stream| !stream.replaced.is_cancelled()));
        open.push(streams.register(key.clone()));
        assert!(open[0].replaced.is_cancelled(), "the oldest is replaced");
        assert!(
            open[1..]
                .iter()
                .all(|stream| !stream.replaced.is_cancelled())
        );
        assert_eq!(streams.of(&key), STREAMS_PER_TICKET);
        let other: TicketKey = ("vaccini".to_owned(), 1, 43);
        let _another_ticket = streams.register(other.clone());
        assert_eq!(streams.of(&other), 1, "each ticket has its own");
        drop(open);
        assert_eq!(streams.of(&key), 0);
        assert_eq!(
            streams.open.lock().unwrap().len(),
            1,
            "an ended ticket's entry is gone"
        );
    }
}
