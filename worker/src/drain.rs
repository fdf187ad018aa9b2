//! The drain loop: one per buffer, taking requests within the shared pace
//! and applying them to the sink.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anteroom_config::{Buffer, Config};
use anteroom_process::Shutdown;
use anteroom_store::{
    BufferParams, BufferStats, BufferStore, BufferedRequest, Finished, Job, StoreError, Verdict,
};
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::sink::{self, Applied, Sink};

/// The longest a loop sleeps before looking again.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// How long a loop waits after the store failed before trying again.
const STORE_RETRY: Duration = Duration::from_millis(500);
/// Consecutive transient failures, across a loop's requests, after which the
/// sink itself is taken to be down: the loop then sends one request at a
/// time as a probe, at a growing interval, and the failed tries do not count
/// toward a request's `max_attempts`. Without this, an outage of the booking
/// site would turn every request taken during it into a dead letter.
const BREAKER_THRESHOLD: u32 = 5;

/// Drains every configured buffer.
pub struct Drainer {
    loops: Vec<BufferLoop>,
}

/// Why a [`Drainer`] cannot start: a buffer's sink cannot be set up. The
/// message names the buffer.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    PostgresSink(#[from] sink::postgres::ConnectError),
}

struct BufferLoop {
    params: BufferParams,
    buffer: Buffer,
    sink: Arc<dyn Sink>,
    store: Arc<dyn BufferStore>,
    worker: String,
    /// Consecutive transient failures of this loop's sink (see
    /// [`BREAKER_THRESHOLD`]).
    failures: AtomicU32,
    /// Jobs applying right now, to hand back if shutdown cuts them short.
    running: std::sync::Mutex<HashMap<String, Job>>,
}

impl Drainer {
    /// Connects every buffer's sink (a postgres sink checks its statement
    /// against the database here). An error names the buffer.
    pub async fn new(config: &Config, store: Arc<dyn BufferStore>) -> Result<Drainer, DrainError> {
        let worker = format!("{}-{:08x}", std::process::id(), rand::rng().random::<u32>());
        let mut loops = Vec::with_capacity(config.buffers.len());
        for buffer in &config.buffers {
            let sink: Arc<dyn Sink> = match &buffer.sink {
                anteroom_config::Sink::Http => {
                    Arc::new(sink::http::HttpSink::new(&config.upstream.uri, buffer))
                }
                anteroom_config::Sink::Postgres { .. } => {
                    Arc::new(sink::postgres::PostgresSink::connect(buffer).await?)
                }
            };
            loops.push(BufferLoop {
                params: BufferParams::from(buffer),
                buffer: buffer.clone(),
                sink,
                store: Arc::clone(&store),
                worker: worker.clone(),
                failures: AtomicU32::new(0),
                running: std::sync::Mutex::default(),
            });
        }
        Ok(Drainer { loops })
    }

    /// Runs until `shutdown` begins, then stops taking requests and gives
    /// those in flight up to `grace` to finish. Any still running then are
    /// abandoned; their leases run out and another worker takes them.
    pub async fn run(self, shutdown: Shutdown, grace: Duration) {
        let mut loops = JoinSet::new();
        for buffer_loop in self.loops {
            loops.spawn(buffer_loop.run(shutdown.clone(), grace));
        }
        while loops.join_next().await.is_some() {}
    }
}

impl BufferLoop {
    async fn run(self, stop: Shutdown, grace: Duration) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.params.max_in_flight as usize));
        let mut jobs = JoinSet::new();
        let mut wait = Duration::ZERO;
        let mut failing = false;
        let mut stats_at: Option<Instant> = None;
        let mut next_probe = Instant::now();
        // Requests finished with a final answer, by any worker, when the
        // stats were last read.
        let mut done_seen: Option<u64> = None;
        loop {
            tokio::select! {
                _ = stop.begun() => break,
                _ = tokio::time::sleep(wait) => {}
                // A finished job frees a slot: take again at once.
                Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
            }
            while jobs.try_join_next().is_some() {}
            if stats_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                stats_at = Some(Instant::now());
                if let Some(stats) = this.export_stats().await {
                    // While this loop probes, another worker may be the one
                    // whose probe found the sink answering again, and then
                    // take the whole pace: this loop's probes find no
                    // request, so none of its own can tell it. Requests
                    // finished since the last look say it instead.
                    if this.failures.load(Ordering::Relaxed) >= BREAKER_THRESHOLD
                        && done_seen.is_some_and(|seen| stats.done > seen)
                    {
                        this.sink_answers("other requests of this buffer are answered again");
                    }
                    done_seen = Some(stats.done);
                }
            }
            let mut free = slots.available_permits();
            let failures = this.failures.load(Ordering::Relaxed);
            if failures >= BREAKER_THRESHOLD {
                // The sink is down: one probe at a time, spaced out.
                if !jobs.is_empty() || Instant::now() < next_probe {
                    wait = next_probe
                        .saturating_duration_since(Instant::now())
                        .clamp(Duration::from_millis(10), IDLE_WAIT);
                    continue;
                }
                free = 1;
                next_probe = Instant::now()
                    + backoff(
                        failures - BREAKER_THRESHOLD + 1,
                        this.buffer.retry_initial,
                        this.buffer.retry_max,
                    );
            }
            if free == 0 {
                // Every local slot is busy: wait for one to finish.
                tokio::select! {
                    _ = stop.begun() => break,
                    _ = jobs.join_next() => {}
                }
                wait = Duration::ZERO;
                continue;
            }
            match this
                .store
                .take(&this.params, &this.worker, free as u32)
                .await
            {
                Ok(taken) => {
                    if failing {
                        failing = false;
                        tracing::info!(buffer = %this.params.name, "store reachable again; draining");
                    }
                    for receipt in taken.dead {
                        metrics::counter!("anteroom_buffer_dead_letters_total", "buffer" => this.params.name.clone()).increment(1);
                        tracing::warn!(buffer = %this.params.name, %receipt, "request dead-lettered: it was taken {} times and never finished", this.params.max_attempts);
                    }
                    for job in taken.jobs {
                        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                            // Cannot happen: the store hands out at most `free`.
                            break;
                        };
                        let this = Arc::clone(&this);
                        // What a hand-back needs: the receipt and the lease, not
                        // the request's bytes.
                        let handle = Job {
                            request: Vec::new(),
                            receipt: job.receipt.clone(),
                            idempotency_key: job.idempotency_key.clone(),
                            lease: job.lease.clone(),
                            attempt: job.attempt,
                        };
                        this.running_jobs().insert(job.receipt.clone(), handle);
                        jobs.spawn(async move {
                            let receipt = job.receipt.clone();
                            this.apply(job).await;
                            this.running_jobs().remove(&receipt);
                            drop(permit);
                        });
                    }
                    wait = taken.wait;
                }
                Err(error) => {
                    if !failing {
                        failing = true;
                        tracing::warn!(buffer = %this.params.name, %error, "cannot take buffered requests; retrying");
                    }
                    wait = STORE_RETRY;
                }
            }
        }
        let in_flight = jobs.len();
        if in_flight > 0 {
            tracing::info!(buffer = %this.params.name, in_flight, "stopping: finishing requests in flight");
            let drained =
                tokio::time::timeout(grace, async { while jobs.join_next().await.is_some() {} })
                    .await;
            if drained.is_err() {
                jobs.abort_all();
                while jobs.join_next().await.is_some() {}
                // Hand the abandoned requests back at once rather than let
                // them wait out their leases. The site may still finish one
                // of them: its idempotency key makes the next try harmless.
                let abandoned: Vec<Job> = this.running_jobs().drain().map(|(_, job)| job).collect();
                tracing::warn!(buffer = %this.params.name, left = abandoned.len(), "grace period over: handing requests in flight back to the queue");
                for job in abandoned {
                    let handed_back = Verdict::Retry {
                        after: Duration::ZERO,
                        why: "the worker stopped before the sink answered".to_owned(),
                        refund: true,
                    };
                    if let Err(error) = this.store.finish(&this.params, &job, handed_back).await {
                        log_unrecorded(&this.params.name, &job.receipt, &error);
                    }
                }
            }
        }
    }

    /// Jobs applying right now, by receipt.
    fn running_jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn apply(&self, job: Job) {
        let taken_at = Instant::now();
        let name = &self.params.name;
        let outcome = match BufferedRequest::decode(&job.request) {
            Err(problem) => Verdict::Dead {
                why: format!("stored request unreadable: {problem}"),
            },
            Ok(request) => {
                let started = Instant::now();
                // The sink enforces its own timeout; this one only guards
                // against a sink that does not.
                let limit = self.buffer.sink_timeout + Duration::from_secs(1);
                let applied = tokio::time::timeout(
                    limit,
                    self.sink
                        .apply(&job.receipt, &job.idempotency_key, &request),
                )
                .await
                .unwrap_or_else(|_| Applied::Transient {
                    why: format!("no answer within {limit:?}"),
                });
                metrics::histogram!("anteroom_buffer_apply_seconds", "buffer" => name.clone())
                    .record(started.elapsed().as_secs_f64());
                self.outcome(&job, applied)
            }
        };
        let result = match &outcome {
            Verdict::Done { .. } => "done",
            Verdict::Retry { .. } => "retry",
            Verdict::Dead { .. } => "dead",
        };
        metrics::counter!("anteroom_buffer_applied_total", "buffer" => name.clone(), "result" => result).increment(1);
        match &outcome {
            Verdict::Retry { after, why, .. } => {
                tracing::debug!(buffer = %name, receipt = %job.receipt, attempt = job.attempt, ?after, %why, "will retry");
            }
            Verdict::Dead { why } => {
                metrics::counter!("anteroom_buffer_dead_letters_total", "buffer" => name.clone())
                    .increment(1);
                tracing::warn!(buffer = %name, receipt = %job.receipt, attempts = job.attempt, %why, "request dead-lettered");
            }
            Verdict::Done { .. } => {}
        }
        self.record(&job, outcome, taken_at).await;
    }

    /// The sink answers: the breaker closes, and the loop drains at the full
    /// pace again.
    fn sink_answers(&self, why: &str) {
        let name = &self.params.name;
        let failures = self.failures.swap(0, Ordering::Relaxed);
        if failures >= BREAKER_THRESHOLD {
            tracing::info!(buffer = %name, failures, "{why}; draining at the full pace");
        }
        metrics::gauge!("anteroom_buffer_sink_down", "buffer" => name.clone()).set(0.0);
    }

    fn outcome(&self, job: &Job, applied: Applied) -> Verdict {
        let name = &self.params.name;
        match applied {
            Applied::Final { status, body } => {
                self.sink_answers("sink answering again");
                Verdict::Done {
                    status,
                    body: sink::truncate_result(body),
                }
            }
            Applied::Transient { why } => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures == BREAKER_THRESHOLD {
                    metrics::gauge!("anteroom_buffer_sink_down", "buffer" => name.clone()).set(1.0);
                    tracing::warn!(buffer = %name, %why, "sink failing: sending one request at a time until it answers; tries meanwhile do not count toward max_attempts");
                }
                let sink_down = failures > BREAKER_THRESHOLD;
                if !sink_down && job.attempt >= self.buffer.max_attempts {
                    return Verdict::Dead {
                        why: format!("gave up after {} attempts: {why}", job.attempt),
                    };
                }
                Verdict::Retry {
                    after: backoff(
                        job.attempt,
                        self.buffer.retry_initial,
                        self.buffer.retry_max,
                    ),
                    why,
                    refund: sink_down,
                }
            }
        }
    }

    /// Records the outcome, retrying a failing store until shortly before the
    /// lease runs out (after that, another worker takes the request anyway).
    async fn record(&self, job: &Job, outcome: Verdict, taken_at: Instant) {
        let give_up_at = taken_at + self.params.lease.saturating_sub(Duration::from_secs(1));
        let mut pause = Duration::from_millis(50);
        loop {
            match self.store.finish(&self.params, job, outcome.clone()).await {
                Ok(Finished::Recorded) => return,
                Ok(Finished::AlreadyFinal | Finished::LeaseLost) => {
                    tracing::debug!(buffer = %self.params.name, receipt = %job.receipt, "finished by another worker");
                    return;
                }
                Err(error) if Instant::now() + pause >= give_up_at => {
                    log_unrecorded(&self.params.name, &job.receipt, &error);
                    return;
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Reads the buffer's figures, exports them as metrics and hands them
    /// back (`None` when the store did not answer).
    async fn export_stats(&self) -> Option<BufferStats> {
        let stats = self.store.buffer_stats(&self.params).await.ok()?;
        let name = self.params.name.clone();
        metrics::gauge!("anteroom_buffer_depth", "buffer" => name.clone())
            .set(stats.depth() as f64);
        metrics::gauge!("anteroom_buffer_queued", "buffer" => name.clone())
            .set(stats.queued as f64);
        metrics::gauge!("anteroom_buffer_in_flight", "buffer" => name.clone())
            .set(stats.in_flight as f64);
        metrics::gauge!("anteroom_buffer_retrying", "buffer" => name.clone())
            .set(stats.retrying as f64);
        metrics::gauge!("anteroom_buffer_dead", "buffer" => name).set(stats.dead as f64);
        Some(stats)
    }
}

fn log_unrecorded(buffer: &str, receipt: &str, error: &StoreError) {
    tracing::warn!(%buffer, %receipt, %error, "could not record the outcome; the request will be taken again when its lease runs out and applied again (harmless: same idempotency key)");
}

/// Exponential backoff with equal jitter: half the step is fixed, half
/// random, so retries of many requests spread out without coming back at once.
pub fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let doubling = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    let step = initial.saturating_mul(doubling).min(max);
    let half = step / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for _ in 0..100 {
            let first = backoff(1, initial, max);
            assert!(first >= Duration::from_millis(50) && first <= initial);
            let third = backoff(3, initial, max);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = backoff(40, initial, max);
            assert!(late >= max / 2 && late <= max);
        }
    }
}
