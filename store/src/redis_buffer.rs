//! Buffers in Redis: the durable queue shared by every gateway and worker.
//!
//! Every method is one round trip: a Lua script (sent by hash, `EVALSHA`)
//! that runs the rules of `memory_buffer.rs` atomically on the store's own
//! clock (`TIME`), so that workers on different hosts share one pace.
//!
//! `enqueue` is a group commit: calls wait in a channel while one script
//! call is on its way, and the next call carries all of them (up to
//! [`MAX_BATCH`]), in arrival order. Under load this costs Redis one script
//! per batch instead of one per booking; alone, a call goes at once. With
//! `store.min_replicas_acked`, the batch's scripts are followed, in the same
//! pipeline on the batcher's own connection, by one `WAIT` that covers them
//! all, and a booking is acknowledged only if WAIT reports enough replicas.
//!
//! # Key layout
//!
//! Every key of a buffer shares the hash tag `{NAME}`, so a buffer lives on
//! one shard and its scripts may touch keys they find inside it.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `anteroom:buffer:{NAME}` | hash | `tokens`, `tokens_at` (the pace bucket, absent until first drawn from: full), `seq` (requests accepted, numbering them), `delivered` (taken from the queue), `accepted`, `done`, `resubmitted` (resubmissions answered with their first receipt) |
//! | `anteroom:buffer:{NAME}:queue` | list | receipt ids never taken, oldest first |
//! | `anteroom:buffer:{NAME}:inflight` | zset | receipt id → lease deadline (ms) |
//! | `anteroom:buffer:{NAME}:retry` | zset | receipt id → when it is due again (ms) |
//! | `anteroom:buffer:{NAME}:dead` | list | dead-lettered receipt ids, oldest first |
//! | `anteroom:buffer:{NAME}:receipt:ID` | hash | `seq`, `state` (`queued`, `processing`, `done`, `failed`), `attempts`, `fp`, `key`, `pass`, `request` (bytes), `lease`, `why`, `status`, `body` |
//! | `anteroom:buffer:{NAME}:idem:KEY` | string | the receipt id of idempotency key `KEY` |
//! | `anteroom:buffer:{NAME}:pass:PASS` | set | receipt ids of pass `PASS`'s unfinished requests, at most `max_per_pass` |
//!
//! `ID` is the whole receipt id (`NAME.RANDOM`, see [`crate::buffer::receipt_id`]).
//! Receipt ids and idempotency keys go into key names as they are: keys are
//! binary safe, and the gateway limits both to visible ASCII of at most 255
//! bytes.
//!
//! Nothing unfinished ever expires: a queued, in-flight or retrying
//! request's receipt and idempotency key stay until it is finished. A done
//! receipt and its key expire after `result_for` (and its request is
//! dropped at once); dead letters are kept, request included, for the
//! operator.
//!
//! A pass's set counts its unfinished requests for `max_per_pass`: a receipt
//! joins it when accepted (a duplicate adds nothing) and leaves it when
//! finished, done or dead-lettered, and Redis drops the emptied set. It also
//! expires `result_for` after the pass's last accepted request, so that
//! nothing would be left behind if a receipt were removed by other means.
//! The receipt hash keeps its `pass` (empty without one), to release it.

use std::num::NonZeroU32;

use redis::{Script, Value};
use tokio::sync::{mpsc, oneshot};

use crate::buffer::{IDLE_POLL, pace, receipt_buffer};
use crate::redis_connection::RedisConnection;
use crate::{
    BufferParams, BufferStats, BufferStore, DeadLetter, Enqueued, Finished, Job, Receipt,
    ReceiptState, RedisStore, StoreError, Submission, Taken, Verdict,
};

const PRELUDE: &str = include_str!("lua/buffer_prelude.lua");

/// The most requests one enqueue script call carries.
const MAX_BATCH: usize = 64;
/// Enqueue calls waiting for the batcher at most; beyond, callers wait.
const ENQUEUE_BACKLOG: usize = 4096;

/// One `enqueue` call waiting to be sent.
pub(crate) struct PendingEnqueue {
    buffer: BufferParams,
    submission: Submission,
    reply: oneshot::Sender<Result<Enqueued, StoreError>>,
}

pub(crate) type EnqueueSender = mpsc::Sender<PendingEnqueue>;

/// How long a batch of bookings waits for replicas (`WAIT`) when
/// `store.min_replicas_acked` asks for them, before they are refused as not
/// stored. A replica on the primary's LAN reports a write within a
/// millisecond or two; one across a slow link takes the write's way there,
/// then Redis's `REPLCONF GETACK` and its answer: about a second on the
/// 300–500 ms links of the chaos runs. Two seconds covers that with room
/// for a replica catching up after a burst, and bounds what a visitor
/// waits for an honest `503` when the replicas are gone (plus the call's
/// own second: three at most).
pub const REPLICA_ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends waiting enqueue calls, each batch as one script call per buffer
/// (and, when bookings wait for replicas, one `WAIT` after them all),
/// until every sender is gone (the store was dropped).
async fn batch_enqueues(
    connection: RedisConnection,
    script: Script,
    replicas: Option<NonZeroU32>,
    mut waiting: mpsc::Receiver<PendingEnqueue>,
) {
    let mut batch: Vec<PendingEnqueue> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = waiting.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut groups = Vec::new();
        while !batch.is_empty() {
            let name = batch[0].buffer.name.clone();
            let (group, rest): (Vec<_>, Vec<_>) = batch
                .drain(..)
                .partition(|pending| pending.buffer.name == name);
            batch = rest;
            groups.push(group);
        }
        enqueue_groups(&connection, &script, replicas, groups).await;
    }
}

/// One pipeline for a batch: an enqueue script call per buffer, then, if
/// bookings wait for replicas, `WAIT replicas timeout`. WAIT counts the
/// replicas that have every write this connection sent before it, so one
/// covers the whole batch (and the script writes even for a resubmission,
/// so that WAIT covers the first submission too, whichever connection sent
/// it). Every caller gets its answer: the script's outcome, or the call's
/// error, or [`StoreError::NotReplicated`] for a request that would be
/// acknowledged but that too few replicas have.
async fn enqueue_groups(
    connection: &RedisConnection,
    script: &Script,
    replicas: Option<NonZeroU32>,
    groups: Vec<Vec<PendingEnqueue>>,
) {
    let mut unsent = groups;
    // A second round only for groups whose script Redis did not know
    // (NOSCRIPT: a new or restarted Redis, a failover), once it is loaded.
    for round in 0..2 {
        let mut pipeline = redis::pipe();
        pipeline.ignore_errors();
        for group in &unsent {
            pipeline.add_command(enqueue_command(script, group));
        }
        if let Some(replicas) = replicas {
            pipeline
                .cmd("WAIT")
                .arg(replicas.get())
                .arg(REPLICA_ACK_TIMEOUT.as_millis() as u64);
        }
        let replies = pipeline
            .query_async::<Vec<redis::RedisResult<Value>>>(&mut connection.handle())
            .await
            .map_err(|error| connection.failed(error));
        let mut replies = match replies {
            Ok(replies) if replies.len() == unsent.len() + usize::from(replicas.is_some()) => {
                replies
            }
            Ok(replies) => {
                let problem = format!(
                    "buffer enqueue: {} replies to {} commands",
                    replies.len(),
                    unsent.len() + usize::from(replicas.is_some())
                );
                for group in unsent {
                    answer_all(group, || StoreError::Protocol(problem.clone()));
                }
                return;
            }
            Err(error) => {
                let problem = error.to_string();
                for group in unsent {
                    answer_all(group, || StoreError::Unavailable(problem.clone()));
                }
                return;
            }
        };
        let acknowledgement = match replicas {
            None => Acknowledgement::NotAsked,
            Some(wanted) => match replies.pop() {
                Some(Ok(Value::Int(acked))) => Acknowledgement::Replicas {
                    acked: u64::try_from(acked).unwrap_or(0),
                    wanted,
                },
                Some(Ok(other)) => Acknowledgement::Failed(format!(
                    "WAIT answered {other:?}, not a number of replicas"
                )),
                Some(Err(error)) => Acknowledgement::Failed(connection.failed(error).to_string()),
                None => Acknowledgement::Failed("WAIT: no reply".to_owned()),
            },
        };
        let mut again = Vec::new();
        for (group, reply) in unsent.into_iter().zip(replies) {
            match reply {
                Err(error)
                    if round == 0
                        && error.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    again.push(group);
                }
                Err(error) => {
                    let error = connection.failed(error);
                    let problem = error.to_string();
                    let mut first = Some(error);
                    answer_all(group, || {
                        first
                            .take()
                            .unwrap_or_else(|| StoreError::Unavailable(problem.clone()))
                    });
                }
                Ok(reply) => answer_group(group, reply, &acknowledgement),
            }
        }
        if again.is_empty() {
            return;
        }
        if let Err(error) = script.load_async(&mut connection.handle()).await {
            let problem = connection.failed(error).to_string();
            for group in again {
                answer_all(group, || StoreError::Unavailable(problem.clone()));
            }
            return;
        }
        unsent = again;
    }
}

/// What `WAIT` said of a batch.
enum Acknowledgement {
    /// Bookings are acknowledged once the primary has them.
    NotAsked,
    /// `acked` replicas have the batch; `wanted` must.
    Replicas { acked: u64, wanted: NonZeroU32 },
    /// WAIT itself failed: nothing of the batch is confirmed.
    Failed(String),
}

impl Acknowledgement {
    /// Why an outcome that would be acknowledged must not be, if it must not.
    fn shortfall(&self) -> Option<StoreError> {
        match self {
            Acknowledgement::NotAsked => None,
            Acknowledgement::Replicas { acked, wanted } if *acked >= u64::from(wanted.get()) => {
                None
            }
            Acknowledgement::Replicas { acked, wanted } => Some(StoreError::NotReplicated {
                acked: *acked,
                wanted: wanted.get(),
                waited: REPLICA_ACK_TIMEOUT,
            }),
            Acknowledgement::Failed(problem) => Some(StoreError::Unavailable(problem.clone())),
        }
    }
}

/// The enqueue script's call (`EVALSHA`) for requests to one buffer.
fn enqueue_command(script: &Script, group: &[PendingEnqueue]) -> redis::Cmd {
    let mut command = redis::cmd("EVALSHA");
    command.arg(script.get_hash());
    let Some(first) = group.first() else {
        return command;
    };
    BufferKeys::new(&first.buffer.name).add_to(&mut command);
    command
        .arg(first.buffer.max_depth)
        .arg(first.buffer.max_per_pass)
        .arg(millis(first.buffer.result_for));
    for pending in group {
        let submission = &pending.submission;
        command
            .arg(submission.receipt.as_bytes())
            .arg(submission.idempotency_key.as_bytes())
            .arg(submission.fingerprint.as_bytes())
            .arg(submission.pass.as_deref().unwrap_or_default().as_bytes())
            .arg(submission.request.as_slice());
    }
    command
}

/// Hands every caller of `group` its outcome from the script's `reply`;
/// an outcome that would be acknowledged (accepted, or a resubmission of
/// an accepted request) only if the replicas have it.
fn answer_group(group: Vec<PendingEnqueue>, reply: Value, acknowledgement: &Acknowledgement) {
    let outcomes = match parse::<Vec<(i64, String, u64, u64)>>("enqueue", reply) {
        Ok(outcomes) if outcomes.len() == group.len() => outcomes,
        Ok(outcomes) => {
            let problem = format!(
                "buffer enqueue script: {} answers for {} requests",
                outcomes.len(),
                group.len()
            );
            answer_all(group, || StoreError::Protocol(problem.clone()));
            return;
        }
        Err(error) => {
            let problem = error.to_string();
            answer_all(group, || StoreError::Protocol(problem.clone()));
            return;
        }
    };
    for (pending, outcome) in group.into_iter().zip(outcomes) {
        let answer = enqueued(outcome).and_then(|outcome| match outcome {
            Enqueued::Accepted { .. } | Enqueued::Duplicate { .. } => {
                match acknowledgement.shortfall() {
                    Some(error) => Err(error),
                    None => Ok(outcome),
                }
            }
            // Refusals stored nothing: nothing to wait for.
            Enqueued::Conflict { .. } | Enqueued::Full { .. } | Enqueued::PassQuota { .. } => {
                Ok(outcome)
            }
        });
        let _ = pending.reply.send(answer);
    }
}

/// Hands every caller of `group` an error.
fn answer_all(group: Vec<PendingEnqueue>, mut error: impl FnMut() -> StoreError) {
    for pending in group {
        let _ = pending.reply.send(Err(error()));
    }
}

fn enqueued(
    (code, receipt, figure, depth): (i64, String, u64, u64),
) -> Result<Enqueued, StoreError> {
    Ok(match code {
        0 => Enqueued::Accepted {
            receipt,
            position: figure,
        },
        1 => Enqueued::Duplicate { receipt },
        2 => Enqueued::Conflict { receipt },
        3 => Enqueued::Full { depth: figure },
        4 => Enqueued::PassQuota {
            held: figure,
            depth,
        },
        _ => {
            return Err(StoreError::Protocol(format!(
                "buffer enqueue script: unknown outcome {code}"
            )));
        }
    })
}

/// The buffer scripts, held by [`RedisStore`].
pub(crate) struct BufferScripts {
    enqueue: Script,
    receipt: Script,
    take: Script,
    finish: Script,
    stats: Script,
    dead_letters: Script,
}

impl BufferScripts {
    pub(crate) fn new() -> BufferScripts {
        let script = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        BufferScripts {
            enqueue: script(include_str!("lua/buffer_enqueue.lua")),
            receipt: script(include_str!("lua/buffer_receipt.lua")),
            take: script(include_str!("lua/buffer_take.lua")),
            finish: script(include_str!("lua/buffer_finish.lua")),
            stats: script(include_str!("lua/buffer_stats.lua")),
            dead_letters: script(include_str!("lua/buffer_dead_letters.lua")),
        }
    }
}

/// The keys of one buffer, in the order the prelude expects them, and the
/// prefixes of its per-receipt, per-key and per-pass keys.
struct BufferKeys {
    buffer: String,
    queue: String,
    in_flight: String,
    retry: String,
    dead: String,
    receipt_prefix: String,
    key_prefix: String,
    pass_prefix: String,
}

impl BufferKeys {
    /// The prelude's keys (with their count) and prefixes, as the
    /// arguments of an `EVALSHA` that already names its script.
    fn add_to(&self, command: &mut redis::Cmd) {
        command
            .arg(5)
            .arg(&self.buffer)
            .arg(&self.queue)
            .arg(&self.in_flight)
            .arg(&self.retry)
            .arg(&self.dead)
            .arg(&self.receipt_prefix)
            .arg(&self.key_prefix)
            .arg(&self.pass_prefix);
    }

    /// A call of `script` with the prelude's keys and prefixes; the caller
    /// adds the script's own arguments.
    fn invocation<'a>(&self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&self.buffer)
            .key(&self.queue)
            .key(&self.in_flight)
            .key(&self.retry)
            .key(&self.dead)
            .arg(&self.receipt_prefix)
            .arg(&self.key_prefix)
            .arg(&self.pass_prefix);
        invocation
    }

    fn new(name: &str) -> BufferKeys {
        let buffer = format!("anteroom:buffer:{{{name}}}");
        BufferKeys {
            queue: format!("{buffer}:queue"),
            in_flight: format!("{buffer}:inflight"),
            retry: format!("{buffer}:retry"),
            dead: format!("{buffer}:dead"),
            receipt_prefix: format!("{buffer}:receipt:"),
            key_prefix: format!("{buffer}:idem:"),
            pass_prefix: format!("{buffer}:pass:"),
            buffer,
        }
    }
}

impl RedisStore {
    /// Runs one buffer script: the prelude's keys and prefixes, then `args`.
    async fn run_buffer_script(
        &self,
        script: &Script,
        name: &str,
        args: &[&[u8]],
    ) -> Result<Value, StoreError> {
        let mut invocation = BufferKeys::new(name).invocation(script);
        for arg in args {
            invocation.arg(*arg);
        }
        invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))
    }
}

/// Decodes a script's reply, or says which script answered what.
fn parse<T: redis::FromRedisValue>(script: &str, reply: Value) -> Result<T, StoreError> {
    redis::from_redis_value(reply)
        .map_err(|error| StoreError::Protocol(format!("buffer {script} script: {error}")))
}

fn text(script: &str, bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes)
        .map_err(|_| StoreError::Protocol(format!("buffer {script} script: text is not UTF-8")))
}

fn number<T: std::str::FromStr>(script: &str, bytes: &[u8]) -> Result<T, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| StoreError::Protocol(format!("buffer {script} script: not a number")))
}

/// A flat reply of records of five fields each, as records.
fn in_fives(script: &str, fields: Vec<Vec<u8>>) -> Result<Vec<[Vec<u8>; 5]>, StoreError> {
    if !fields.len().is_multiple_of(5) {
        return Err(StoreError::Protocol(format!(
            "buffer {script} script: {} fields, not records of five",
            fields.len()
        )));
    }
    let mut fields = fields.into_iter();
    let mut records = Vec::with_capacity(fields.len() / 5);
    while let (Some(first), Some(second), Some(third), Some(fourth), Some(fifth)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) {
        records.push([first, second, third, fourth, fifth]);
    }
    Ok(records)
}

/// Milliseconds as the scripts take them.
fn millis(duration: std::time::Duration) -> String {
    duration.as_millis().to_string()
}

#[async_trait::async_trait]
impl BufferStore for RedisStore {
    async fn enqueue(
        &self,
        buffer: &BufferParams,
        submission: Submission,
    ) -> Result<Enqueued, StoreError> {
        let sender = self.enqueues.get_or_init(|| {
            let (sender, waiting) = mpsc::channel(ENQUEUE_BACKLOG);
            // WAIT holds its connection: then the batcher has its own.
            let connection = match self.replicas_acked {
                Some(_) => self.waiting_connection.clone(),
                None => self.connection.clone(),
            };
            tokio::spawn(batch_enqueues(
                connection,
                self.buffer_scripts.enqueue.clone(),
                self.replicas_acked,
                waiting,
            ));
            sender
        });
        let (reply, answer) = oneshot::channel();
        let pending = PendingEnqueue {
            buffer: buffer.clone(),
            submission,
            reply,
        };
        let stopped = || StoreError::Unavailable("the enqueue batcher stopped".to_owned());
        sender.send(pending).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn receipt(&self, receipt: &str) -> Result<Option<Receipt>, StoreError> {
        let Some(name) = receipt_buffer(receipt) else {
            return Ok(None);
        };
        let reply = self
            .run_buffer_script(&self.buffer_scripts.receipt, name, &[receipt.as_bytes()])
            .await?;
        let fields: Vec<Vec<u8>> = parse("receipt", reply)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let Ok([state, attempts, seq, delivered, why, status, body]) =
            <[Vec<u8>; 7]>::try_from(fields)
        else {
            return Err(StoreError::Protocol(
                "buffer receipt script: expected 7 fields".into(),
            ));
        };
        let attempts: u32 = number("receipt", &attempts)?;
        let state = match state.as_slice() {
            b"queued" if attempts == 0 => {
                let seq: u64 = number("receipt", &seq)?;
                let delivered: u64 = number("receipt", &delivered)?;
                ReceiptState::Queued {
                    position: seq.saturating_sub(delivered).max(1),
                    attempts,
                }
            }
            b"queued" => ReceiptState::Queued {
                position: 1,
                attempts,
            },
            b"processing" => ReceiptState::Processing { attempts },
            b"done" => ReceiptState::Done {
                status: number("receipt", &status)?,
                body: text("receipt", body)?,
            },
            b"failed" => ReceiptState::Failed {
                why: text("receipt", why)?,
            },
            _ => {
                return Err(StoreError::Protocol(format!(
                    "buffer receipt script: unknown state {}",
                    String::from_utf8_lossy(&state)
                )));
            }
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
        let figures = [
            max.to_string(),
            buffer.max_in_flight.to_string(),
            buffer.max_attempts.to_string(),
            millis(buffer.lease),
            buffer.drain_per_second.to_string(),
            pace::capacity(buffer.drain_per_second).to_string(),
            pace::UNITS.to_string(),
            millis(IDLE_POLL),
        ];
        let mut args: Vec<&[u8]> = vec![worker.as_bytes()];
        args.extend(figures.iter().map(|figure| figure.as_bytes()));
        let reply = self
            .run_buffer_script(&self.buffer_scripts.take, &buffer.name, &args)
            .await?;
        let (wait, jobs, dead): (u64, Vec<Vec<u8>>, Vec<String>) = parse("take", reply)?;
        let jobs = in_fives("take", jobs)?
            .into_iter()
            .map(|[receipt, key, request, attempt, lease]| {
                Ok(Job {
                    receipt: text("take", receipt)?,
                    idempotency_key: text("take", key)?,
                    request,
                    attempt: number("take", &attempt)?,
                    lease: text("take", lease)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Taken {
            jobs,
            dead,
            wait: std::time::Duration::from_millis(wait),
        })
    }

    async fn finish(
        &self,
        buffer: &BufferParams,
        job: &Job,
        outcome: Verdict,
    ) -> Result<Finished, StoreError> {
        let (kind, status, text_arg, after, refund) = match &outcome {
            Verdict::Done { status, body } => ("done", status.to_string(), body.as_str(), 0, false),
            Verdict::Retry { after, why, refund } => (
                "retry",
                String::new(),
                why.as_str(),
                after.as_millis(),
                *refund,
            ),
            Verdict::Dead { why } => ("dead", String::new(), why.as_str(), 0, false),
        };
        let refund: &[u8] = if refund { b"1" } else { b"0" };
        let after = after.to_string();
        let result_for = millis(buffer.result_for);
        let reply = self
            .run_buffer_script(
                &self.buffer_scripts.finish,
                &buffer.name,
                &[
                    job.receipt.as_bytes(),
                    job.lease.as_bytes(),
                    kind.as_bytes(),
                    status.as_bytes(),
                    text_arg.as_bytes(),
                    after.as_bytes(),
                    result_for.as_bytes(),
                    refund,
                ],
            )
            .await?;
        match parse::<i64>("finish", reply)? {
            0 => Ok(Finished::Recorded),
            1 => Ok(Finished::AlreadyFinal),
            2 => Ok(Finished::LeaseLost),
            code => Err(StoreError::Protocol(format!(
                "buffer finish script: unknown outcome {code}"
            ))),
        }
    }

    async fn buffer_stats(&self, buffer: &BufferParams) -> Result<BufferStats, StoreError> {
        let reply = self
            .run_buffer_script(&self.buffer_scripts.stats, &buffer.name, &[])
            .await?;
        let [queued, in_flight, retrying, dead, accepted, done]: [u64; 6] = parse("stats", reply)?;
        Ok(BufferStats {
            queued,
            in_flight,
            retrying,
            dead,
            accepted,
            done,
        })
    }

    async fn dead_letters(
        &self,
        buffer: &BufferParams,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        // LRANGE's stop is inclusive, and -1 would mean "all".
        let Some(last) = limit.min(i64::MAX as usize).checked_sub(1) else {
            return Ok(Vec::new());
        };
        let last = last.to_string();
        let reply = self
            .run_buffer_script(
                &self.buffer_scripts.dead_letters,
                &buffer.name,
                &[last.as_bytes()],
            )
            .await?;
        let fields: Vec<Vec<u8>> = parse("dead letters", reply)?;
        in_fives("dead letters", fields)?
            .into_iter()
            .map(|[receipt, key, why, attempts, request]| {
                Ok(DeadLetter {
                    receipt: text("dead letters", receipt)?,
                    idempotency_key: text("dead letters", key)?,
                    why: text("dead letters", why)?,
                    attempts: number("dead letters", &attempts)?,
                    request,
                })
            })
            .collect()
    }
}
