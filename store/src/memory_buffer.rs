//! Buffers in memory: the same rules as the Redis scripts, for the embedded
//! gateway. Nothing survives a restart of the process.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::buffer::{IDLE_POLL, pace, receipt_buffer};
use crate::{
    BufferParams, BufferStats, BufferStore, DeadLetter, Enqueued, Finished, Job, MemoryStore,
    Millis, Receipt, ReceiptState, StoreError, Submission, Taken, Verdict,
};

#[derive(Debug)]
pub(crate) struct BufferData {
    tokens: u64,
    tokens_at: Millis,
    seq: u64,
    delivered: u64,
    accepted: u64,
    done: u64,
    queue: VecDeque<String>,
    /// receipt → lease deadline.
    in_flight: HashMap<String, Millis>,
    /// (due, receipt).
    retry: BTreeSet<(Millis, String)>,
    dead: VecDeque<String>,
    receipts: HashMap<String, ReceiptData>,
    /// idempotency key → receipt.
    keys: HashMap<String, String>,
    /// (expiry, receipt) of finished receipts.
    expiring: BTreeSet<(Millis, String)>,
    /// pass id → its unfinished requests, for `max_per_pass`.
    passes: HashMap<String, PassHold>,
}

/// One pass's unfinished requests, as Redis's `…:pass:PASS` set: receipts
/// leave as they finish, and an emptied hold is removed. It is forgotten
/// `result_for` after the pass's last accepted request, as the set expires
/// (an expired hold is read as empty and started afresh).
#[derive(Debug, Default)]
struct PassHold {
    receipts: HashSet<String>,
    expires: Millis,
}

#[derive(Debug)]
struct ReceiptData {
    seq: u64,
    state: Phase,
    attempts: u32,
    fingerprint: String,
    key: String,
    /// The pass that sent it; empty without one (not counted).
    pass: String,
    request: Vec<u8>,
    lease: String,
    why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Queued,
    Processing,
    Done { status: u16, body: String },
    Failed,
}

fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as Millis)
}

impl BufferData {
    fn new(buffer: &BufferParams, now: Millis) -> BufferData {
        BufferData {
            tokens: pace::capacity(buffer.drain_per_second),
            tokens_at: now,
            seq: 0,
            delivered: 0,
            accepted: 0,
            done: 0,
            queue: VecDeque::new(),
            in_flight: HashMap::new(),
            retry: BTreeSet::new(),
            dead: VecDeque::new(),
            receipts: HashMap::new(),
            keys: HashMap::new(),
            expiring: BTreeSet::new(),
            passes: HashMap::new(),
        }
    }

    fn housekeep(&mut self, now: Millis) {
        while let Some((at, receipt)) = self.expiring.first().cloned() {
            if at > now {
                break;
            }
            self.expiring.pop_first();
            if let Some(data) = self.receipts.remove(&receipt) {
                self.keys.remove(&data.key);
            }
        }
    }

    fn depth(&self) -> u64 {
        (self.queue.len() + self.in_flight.len() + self.retry.len()) as u64
    }

    /// The unfinished requests `pass` holds at `now`.
    fn held_by(&self, pass: &str, now: Millis) -> u64 {
        self.passes
            .get(pass)
            .filter(|hold| hold.expires > now)
            .map_or(0, |hold| hold.receipts.len() as u64)
    }

    /// Counts `receipt` against `pass` until it finishes.
    fn hold(&mut self, buffer: &BufferParams, pass: &str, receipt: &str, now: Millis) {
        let hold = self.passes.entry(pass.to_owned()).or_default();
        if hold.expires <= now {
            hold.receipts.clear();
        }
        hold.receipts.insert(receipt.to_owned());
        hold.expires = now + buffer.result_for.as_millis() as Millis;
    }

    /// A finished request no longer counts against its pass.
    fn release_pass(&mut self, receipt: &str) {
        let Some(pass) = self.receipts.get(receipt).map(|data| &data.pass) else {
            return;
        };
        if let Some(hold) = self.passes.get_mut(pass) {
            hold.receipts.remove(receipt);
            if hold.receipts.is_empty() {
                self.passes.remove(pass);
            }
        }
    }

    fn dead_letter(&mut self, receipt: &str, why: String) {
        self.in_flight.remove(receipt);
        self.retry.retain(|(_, queued)| queued != receipt);
        self.release_pass(receipt);
        if let Some(data) = self.receipts.get_mut(receipt) {
            data.state = Phase::Failed;
            data.why = why;
            self.dead.push_back(receipt.to_owned());
        }
    }

    fn finish_done(&mut self, buffer: &BufferParams, receipt: &str, status: u16, body: String) {
        let now = now_ms();
        self.in_flight.remove(receipt);
        self.retry.retain(|(_, queued)| queued != receipt);
        self.release_pass(receipt);
        if let Some(data) = self.receipts.get_mut(receipt) {
            data.state = Phase::Done { status, body };
            data.request = Vec::new();
            self.done += 1;
            let expiry = now + buffer.result_for.as_millis() as Millis;
            self.expiring.insert((expiry, receipt.to_owned()));
        }
    }
}

impl MemoryStore {
    fn locked_buffers(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<String, BufferData>>, StoreError> {
        self.buffers
            .lock()
            .map_err(|_| StoreError::Protocol("memory store lock poisoned".into()))
    }

    /// Runs `f` on the buffer's state (created on first use), after expiring
    /// finished receipts that are due.
    fn with_buffer<T>(
        &self,
        buffer: &BufferParams,
        f: impl FnOnce(&mut BufferData, Millis) -> T,
    ) -> Result<T, StoreError> {
        let now = now_ms();
        let mut buffers = self.locked_buffers()?;
        let data = buffers
            .entry(buffer.name.clone())
            .or_insert_with(|| BufferData::new(buffer, now));
        data.housekeep(now);
        Ok(f(data, now))
    }
}

#[async_trait::async_trait]
impl BufferStore for MemoryStore {
    async fn enqueue(
        &self,
        buffer: &BufferParams,
        submission: Submission,
    ) -> Result<Enqueued, StoreError> {
        self.with_buffer(buffer, |data, now| {
            // A duplicate is answered before the bounds: it is not a new
            // request.
            if let Some(receipt) = data.keys.get(&submission.idempotency_key) {
                let same = data
                    .receipts
                    .get(receipt)
                    .is_some_and(|known| known.fingerprint == submission.fingerprint);
                let receipt = receipt.clone();
                return if same {
                    Enqueued::Duplicate { receipt }
                } else {
                    Enqueued::Conflict { receipt }
                };
            }
            let depth = data.depth();
            if depth >= buffer.max_depth {
                return Enqueued::Full { depth };
            }
            let pass = submission.pass.unwrap_or_default();
            if !pass.is_empty() {
                let held = data.held_by(&pass, now);
                if held >= buffer.max_per_pass {
                    return Enqueued::PassQuota { held, depth };
                }
            }
            data.seq += 1;
            data.accepted += 1;
            let receipt = submission.receipt;
            data.receipts.insert(
                receipt.clone(),
                ReceiptData {
                    seq: data.seq,
                    state: Phase::Queued,
                    attempts: 0,
                    fingerprint: submission.fingerprint,
                    key: submission.idempotency_key.clone(),
                    pass: pass.clone(),
                    request: submission.request,
                    lease: String::new(),
                    why: String::new(),
                },
            );
            data.keys
                .insert(submission.idempotency_key, receipt.clone());
            data.queue.push_back(receipt.clone());
            if !pass.is_empty() {
                data.hold(buffer, &pass, &receipt, now);
            }
            Enqueued::Accepted {
                receipt,
                position: data.seq - data.delivered,
            }
        })
    }

    async fn receipt(&self, receipt: &str) -> Result<Option<Receipt>, StoreError> {
        let Some(name) = receipt_buffer(receipt) else {
            return Ok(None);
        };
        let mut buffers = self.locked_buffers()?;
        // A lookup does not create the buffer.
        let Some(data) = buffers.get_mut(name) else {
            return Ok(None);
        };
        data.housekeep(now_ms());
        let Some(known) = data.receipts.get(receipt) else {
            return Ok(None);
        };
        let state = match &known.state {
            Phase::Queued if known.attempts == 0 => ReceiptState::Queued {
                position: known.seq.saturating_sub(data.delivered).max(1),
                attempts: 0,
            },
            Phase::Queued => ReceiptState::Queued {
                position: 1,
                attempts: known.attempts,
            },
            Phase::Processing => ReceiptState::Processing {
                attempts: known.attempts,
            },
            Phase::Done { status, body } => ReceiptState::Done {
                status: *status,
                body: body.clone(),
            },
            Phase::Failed => ReceiptState::Failed {
                why: known.why.clone(),
            },
        };
        Ok(Some(Receipt {
            buffer: name.to_owned(),
            state,
        }))
    }

    async fn take(
        &self,
        buffer: &BufferParams,
        worker: &str,
        max: u32,
    ) -> Result<Taken, StoreError> {
        self.with_buffer(buffer, |data, now| {
            data.tokens = pace::refill(data.tokens, data.tokens_at, now, buffer.drain_per_second);
            data.tokens_at = data.tokens_at.max(now);
            let mut expired: Vec<(Millis, String)> = data
                .in_flight
                .iter()
                .filter(|(_, deadline)| **deadline <= now)
                .map(|(receipt, deadline)| (*deadline, receipt.clone()))
                .collect();
            expired.sort();
            let busy = data.in_flight.len() - expired.len();
            let free = (buffer.max_in_flight as usize).saturating_sub(busy);
            let mut taken = Taken::default();
            let mut candidates = expired.into_iter().map(|(_, receipt)| (receipt, true));
            let lease_for = buffer.lease.as_millis() as Millis;
            loop {
                if taken.jobs.len() >= free.min(max as usize) || data.tokens < pace::UNITS {
                    break;
                }
                let (receipt, came_back) = if let Some(next) = candidates.next() {
                    next
                } else if let Some((due, receipt)) = data.retry.first().cloned()
                    && due <= now
                {
                    data.retry.pop_first();
                    (receipt, true)
                } else if let Some(receipt) = data.queue.pop_front() {
                    data.delivered += 1;
                    (receipt, false)
                } else {
                    break;
                };
                let Some(known) = data.receipts.get_mut(&receipt) else {
                    data.in_flight.remove(&receipt);
                    continue;
                };
                if came_back && known.attempts >= buffer.max_attempts {
                    let why = if known.state == Phase::Processing {
                        format!(
                            "taken {} times and never finished (the worker died or hung)",
                            known.attempts
                        )
                    } else {
                        format!("gave up after {} attempts: {}", known.attempts, known.why)
                    };
                    data.dead_letter(&receipt, why);
                    taken.dead.push(receipt);
                    continue;
                }
                known.attempts += 1;
                known.state = Phase::Processing;
                known.lease = format!("{worker}/{}", known.attempts);
                data.in_flight.insert(receipt.clone(), now + lease_for);
                data.tokens -= pace::UNITS;
                taken.jobs.push(Job {
                    receipt,
                    idempotency_key: known.key.clone(),
                    request: known.request.clone(),
                    attempt: known.attempts,
                    lease: known.lease.clone(),
                });
            }
            let wait = if data.tokens < pace::UNITS {
                Duration::from_millis(pace::wait_ms(data.tokens, buffer.drain_per_second))
            } else if data.in_flight.len() >= buffer.max_in_flight as usize {
                let soonest = data.in_flight.values().min().copied().unwrap_or(now);
                Duration::from_millis(soonest.saturating_sub(now))
            } else if !data.queue.is_empty() {
                Duration::ZERO
            } else {
                let due = data.retry.first().map_or(u64::MAX, |(due, _)| *due);
                Duration::from_millis(due.saturating_sub(now))
            };
            taken.wait = wait.min(IDLE_POLL);
            taken
        })
    }

    async fn finish(
        &self,
        buffer: &BufferParams,
        job: &Job,
        outcome: Verdict,
    ) -> Result<Finished, StoreError> {
        self.with_buffer(buffer, |data, now| {
            let Some(known) = data.receipts.get_mut(&job.receipt) else {
                return Finished::AlreadyFinal;
            };
            if matches!(known.state, Phase::Done { .. } | Phase::Failed) {
                return Finished::AlreadyFinal;
            }
            let holds_lease = known.lease == job.lease && data.in_flight.contains_key(&job.receipt);
            match outcome {
                Verdict::Done { status, body } => {
                    data.finish_done(buffer, &job.receipt, status, body);
                }
                Verdict::Retry { .. } if !holds_lease => return Finished::LeaseLost,
                Verdict::Retry { after, why, refund } => {
                    if refund {
                        known.attempts = known.attempts.saturating_sub(1);
                    }
                    known.state = Phase::Queued;
                    known.why = why;
                    data.in_flight.remove(&job.receipt);
                    let due = now + after.as_millis() as Millis;
                    data.retry.insert((due, job.receipt.clone()));
                }
                Verdict::Dead { why } => {
                    data.dead_letter(&job.receipt, why);
                }
            }
            Finished::Recorded
        })
    }

    async fn buffer_stats(&self, buffer: &BufferParams) -> Result<BufferStats, StoreError> {
        self.with_buffer(buffer, |data, _now| BufferStats {
            queued: data.queue.len() as u64,
            in_flight: data.in_flight.len() as u64,
            retrying: data.retry.len() as u64,
            dead: data.dead.len() as u64,
            accepted: data.accepted,
            done: data.done,
        })
    }

    async fn dead_letters(
        &self,
        buffer: &BufferParams,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.with_buffer(buffer, |data, _now| {
            data.dead
                .iter()
                .take(limit)
                .filter_map(|receipt| {
                    let known = data.receipts.get(receipt)?;
                    Some(DeadLetter {
                        receipt: receipt.clone(),
                        idempotency_key: known.key.clone(),
                        why: known.why.clone(),
                        attempts: known.attempts,
                        request: known.request.clone(),
                    })
                })
                .collect()
        })
    }
}
