//! Reading request bodies: a deadline that a dawdling client cannot
//! stretch, and a bound on the memory all unfinished bodies hold together.
//!
//! - [`Paced`] ends a body with [`BodyError::TooSlow`] when the client sends
//!   nothing for `body_read_timeout`, or when, after that grace, its bytes
//!   arrive slower on average than `min_body_bytes_per_second`. Sending one
//!   byte now and then does not keep a request alive.
//! - [`Budget`] is `max_unfinished_body_bytes`: every byte of a body held in
//!   memory before it is stored or sent on is charged to it, and one client
//!   may hold only a share of it. A [`Charge`] gives its bytes back when
//!   dropped.
//! - [`read_prefix`] reads the start of a proxied body before the request
//!   takes a place at the upstream, so that a client that dawdles over its
//!   body holds nothing that belongs to everyone.

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::BoxError;
use crate::tally::{Held, Tally};

/// How much of a proxied body is read before the request takes a place at
/// the upstream. Most writes (forms, JSON) fit whole, and are then sent at
/// the site's speed, not the client's; a larger upload streams on under the
/// rate floor while it holds its place.
pub const PREFIX_BYTES: usize = 64 * 1024;

/// `Retry-After` when the memory for bodies is taken.
const BUSY_RETRY_SECONDS: u64 = 1;

/// One client's share of the budget: a sixteenth, so that a few clients
/// cannot take it all, but at least one whole body.
const CLIENT_SHARE_DIVISOR: u64 = 16;

/// How a body must arrive (`limits.body_read_timeout_seconds`,
/// `limits.min_body_bytes_per_second`).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub timeout: Duration,
    pub min_bytes_per_second: u64,
}

impl Pace {
    pub fn from_config(limits: &anteroom_config::Limits) -> Pace {
        Pace {
            timeout: limits.body_read_timeout,
            min_bytes_per_second: limits.min_body_bytes_per_second,
        }
    }

    /// The instant by which more must have arrived: `timeout` after the
    /// last bytes, and no later than the rate floor allows for what has
    /// arrived so far.
    fn deadline(&self, started: Instant, last: Instant, received: u64) -> Instant {
        let silence = last + self.timeout;
        if self.min_bytes_per_second == 0 {
            return silence;
        }
        let earned = Duration::from_secs_f64(received as f64 / self.min_bytes_per_second as f64);
        silence.min(started + self.timeout + earned)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The client sent its body too slowly (`408`).
    #[error("request body too slow: {received} bytes in {elapsed:?}")]
    TooSlow { received: u64, elapsed: Duration },
    /// Every byte the gateway may hold of unfinished bodies is taken
    /// (`503`).
    #[error("max_unfinished_body_bytes reached")]
    OverBudget,
    /// This client holds its whole share of that memory already (`429`).
    #[error("the client holds its share of max_unfinished_body_bytes")]
    OverClientShare,
    /// Larger than `max_body_bytes` (`413`).
    #[error("request body over {limit} bytes")]
    TooLarge { limit: u64 },
    /// The client's framing broke, or it went away.
    #[error("request body broken: {0}")]
    Broken(#[source] BoxError),
}

impl BodyError {
    pub fn code(&self) -> StatusCode {
        match self {
            BodyError::TooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            BodyError::OverBudget => StatusCode::SERVICE_UNAVAILABLE,
            BodyError::OverClientShare => StatusCode::TOO_MANY_REQUESTS,
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// Memory held by other bodies is given back within seconds (the
    /// deadlines above): asking again soon makes sense.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            BodyError::OverBudget | BodyError::OverClientShare => Some(BUSY_RETRY_SECONDS),
            _ => None,
        }
    }

    /// What the client is told.
    pub fn message(&self) -> &'static str {
        match self {
            BodyError::TooSlow { .. } => "the request body arrived too slowly",
            BodyError::OverBudget => "too many request bodies are arriving at once; retry shortly",
            BodyError::OverClientShare => {
                "too many request bodies from this address are arriving at once; retry shortly"
            }
            BodyError::TooLarge { .. } => "request body too large",
            BodyError::Broken(_) => "the request body could not be read",
        }
    }

    /// A label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            BodyError::TooSlow { .. } => "too_slow",
            BodyError::OverBudget => "body_memory",
            BodyError::OverClientShare => "client_body_memory",
            BodyError::TooLarge { .. } => "too_large",
            BodyError::Broken(_) => "broken_body",
        }
    }

    /// The same error, for one found by reference in a chain of causes.
    pub fn copied(&self) -> BodyError {
        match self {
            BodyError::TooSlow { received, elapsed } => BodyError::TooSlow {
                received: *received,
                elapsed: *elapsed,
            },
            BodyError::OverBudget => BodyError::OverBudget,
            BodyError::OverClientShare => BodyError::OverClientShare,
            BodyError::TooLarge { limit } => BodyError::TooLarge { limit: *limit },
            BodyError::Broken(error) => BodyError::Broken(error.to_string().into()),
        }
    }

    /// The body error somewhere in `error`'s chain of causes.
    pub fn in_chain<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e BodyError> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(cause) = source {
            if let Some(found) = cause.downcast_ref::<BodyError>() {
                return Some(found);
            }
            source = cause.source();
        }
        None
    }
}

pin_project_lite::pin_project! {
    /// A request body under a [`Pace`].
    pub struct Paced<B> {
        #[pin]
        inner: B,
        #[pin]
        sleep: Sleep,
        pace: Pace,
        started: Instant,
        received: u64,
    }
}

impl<B> Paced<B> {
    pub fn new(inner: B, pace: Pace) -> Paced<B> {
        let started = Instant::now();
        Paced {
            inner,
            sleep: tokio::time::sleep_until(pace.deadline(started, started, 0)),
            pace,
            started,
            received: 0,
        }
    }
}

impl<B> HttpBody for Paced<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.project();
        match this.inner.poll_frame(context) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.received += data.len() as u64;
                }
                let now = Instant::now();
                let deadline = this.pace.deadline(*this.started, now, *this.received);
                this.sleep.reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                Poll::Ready(Some(Err(BodyError::Broken(error.into()))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.sleep.poll(context) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::TooSlow {
                    received: *this.received,
                    elapsed: this.started.elapsed(),
                }))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `max_unfinished_body_bytes`, shared by every request of a gateway.
#[derive(Debug)]
pub struct Budget {
    /// Every permit is a byte; `permits` of them in all.
    total: Arc<Semaphore>,
    permits: usize,
    per_client: Arc<Tally>,
}

impl Budget {
    pub fn new(bytes: u64, max_body_bytes: u64) -> Budget {
        let permits = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Budget {
            total: Arc::new(Semaphore::new(permits)),
            permits,
            per_client: Tally::new((bytes / CLIENT_SHARE_DIVISOR).max(max_body_bytes)),
        }
    }

    /// An empty charge for `client`'s body, to grow as bytes arrive.
    pub fn charge(&self, client: IpAddr) -> Charge {
        Charge {
            total: Arc::clone(&self.total),
            per_client: Arc::clone(&self.per_client),
            client,
            permit: None,
            share: None,
        }
    }

    /// Bytes held right now, for the metrics.
    pub fn held(&self) -> u64 {
        self.permits.saturating_sub(self.total.available_permits()) as u64
    }
}

/// The bytes of one body charged to the [`Budget`], given back on drop.
#[derive(Debug)]
pub struct Charge {
    total: Arc<Semaphore>,
    per_client: Arc<Tally>,
    client: IpAddr,
    permit: Option<OwnedSemaphorePermit>,
    share: Option<Held>,
}

impl Charge {
    /// Charges `bytes` more, or says which bound stops it (nothing is
    /// charged then).
    pub fn add(&mut self, bytes: usize) -> Result<(), BodyError> {
        if bytes == 0 {
            return Ok(());
        }
        let permits = u32::try_from(bytes).map_err(|_| BodyError::OverBudget)?;
        let permit = Arc::clone(&self.total)
            .try_acquire_many_owned(permits)
            .map_err(|_| BodyError::OverBudget)?;
        // On the early returns below, `permit` is dropped: nothing of this
        // chunk stays charged.
        let amount = bytes as u64;
        match &mut self.share {
            Some(share) => {
                if !share.grow(amount) {
                    return Err(BodyError::OverClientShare);
                }
            }
            None => {
                self.share = Some(
                    self.per_client
                        .take(self.client, amount)
                        .ok_or(BodyError::OverClientShare)?,
                );
            }
        }
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        Ok(())
    }
}

/// What [`read_prefix`] found.
pub enum Prefix<B> {
    /// The whole body, read before taking a place.
    Whole(Replay<B>),
    /// The body goes on past [`PREFIX_BYTES`]: what was read, then the rest
    /// as it comes.
    Longer(Replay<B>),
}

/// Reads a body until it ends or holds `up_to` bytes or more, charging
/// what it holds to `charge`, and hands it back ready to be sent on:
/// frames read first, then the rest. More than `limit` bytes is
/// [`BodyError::TooLarge`].
pub async fn read_prefix<B>(
    body: Paced<B>,
    up_to: usize,
    limit: u64,
    mut charge: Charge,
) -> Result<Prefix<Pin<Box<Paced<B>>>>, BodyError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = Box::pin(body);
    let mut frames = VecDeque::new();
    let mut read = 0usize;
    loop {
        if body.is_end_stream() {
            return Ok(Prefix::Whole(Replay::new(frames, None, charge)));
        }
        match body.frame().await {
            None => return Ok(Prefix::Whole(Replay::new(frames, None, charge))),
            Some(Err(error)) => return Err(error),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read += data.len();
                    if read as u64 > limit {
                        return Err(BodyError::TooLarge { limit });
                    }
                    charge.add(data.len())?;
                }
                frames.push_back(frame);
                if read >= up_to {
                    return Ok(Prefix::Longer(Replay::new(frames, Some(body), charge)));
                }
            }
        }
    }
}

/// Frames read ahead, then the rest of the body. Holds the charge for
/// them until it is dropped (sent, or abandoned).
pub struct Replay<B> {
    frames: VecDeque<Frame<Bytes>>,
    rest: Option<B>,
    _charge: Charge,
}

impl<B> Replay<B> {
    fn new(frames: VecDeque<Frame<Bytes>>, rest: Option<B>, charge: Charge) -> Replay<B> {
        Replay {
            frames,
            rest,
            _charge: charge,
        }
    }
}

impl<B> HttpBody for Replay<B>
where
    B: HttpBody<Data = Bytes, Error = BodyError> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(context),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self
            .frames
            .iter()
            .filter_map(|frame| frame.data_ref())
            .map(|data| data.len() as u64)
            .sum();
        let rest = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint);
        let mut hint = SizeHint::new();
        // Upper first: a lower bound above the upper one panics.
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(buffered));
        }
        hint.set_lower(rest.lower().saturating_add(buffered));
        hint
    }
}

/// Reads a whole body of at most `limit` bytes under `pace`, charging the
/// memory that holds it to `charge` (which the caller keeps until it has
/// stored the body).
///
/// What is charged is what is allocated: a body of a declared length is
/// charged (and allocated) whole when it starts, whether or not its bytes
/// come; one of unknown length grows by doubling, each growth charged
/// before it is used.
pub async fn read_whole<B>(
    body: B,
    pace: Pace,
    limit: u64,
    charge: &mut Charge,
) -> Result<Bytes, BodyError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let body = std::pin::pin!(Paced::new(body, pace));
    let mut collected = match body.size_hint().exact() {
        Some(declared) if declared > limit => return Err(BodyError::TooLarge { limit }),
        Some(declared) => {
            let declared = usize::try_from(declared).map_err(|_| BodyError::TooLarge { limit })?;
            charge.add(declared)?;
            bytes::BytesMut::with_capacity(declared)
        }
        None => bytes::BytesMut::new(),
    };
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            let needed = collected.len() + data.len();
            if needed as u64 > limit {
                return Err(BodyError::TooLarge { limit });
            }
            if needed > collected.capacity() {
                let before = collected.capacity();
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                let grown = needed.max(before * 2).min(limit);
                collected.reserve(grown - collected.len());
                charge.add(collected.capacity() - before)?;
            }
            collected.extend_from_slice(data);
        }
    }
    Ok(collected.freeze())
}

#[cfg(test)]
mod tests;
