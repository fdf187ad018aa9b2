//! The buffer seam's contract, run against both backends (a private
//! `redis-server` for Redis). Time here is the store's own clock, so the
//! tests about leases, retries and results sleep past a deadline and then
//! assert what must have happened; none asserts how long anything took.

use std::sync::Arc;
use std::time::Duration;

use anteroom_store::buffer::{IDLE_POLL, pace, receipt_id};
use anteroom_store::{
    BufferParams, BufferStore, Enqueued, Finished, Job, ReceiptState, RedisStore, Submission,
    Taken, Verdict,
};
use anteroom_tests::RedisServer;

anteroom_tests::on_both_backends!(
    a_request_goes_from_enqueue_to_done,
    requests_are_taken_in_order_of_arrival,
    positions_count_from_one_and_move_as_requests_are_taken,
    a_known_idempotency_key_is_a_duplicate_or_a_conflict,
    a_full_buffer_refuses_and_stores_nothing,
    the_in_flight_cap_is_shared_by_all_workers,
    the_pace_starts_with_a_full_bucket_and_then_waits,
    an_empty_buffer_asks_for_an_idle_poll,
    an_expired_lease_is_taken_again_and_the_first_final_answer_wins,
    a_retry_waits_until_it_is_due,
    a_request_that_keeps_failing_is_dead_lettered,
    a_request_whose_workers_keep_dying_is_dead_lettered,
    a_worker_can_give_up_on_a_request,
    dead_letters_are_listed_oldest_first_up_to_the_limit,
    a_binary_request_and_an_odd_key_round_trip,
    unknown_and_malformed_receipts_are_none,
    a_done_receipt_and_its_key_expire_after_result_for,
    concurrent_enqueues_are_each_answered_once,
    a_pass_holds_at_most_max_per_pass_unfinished_requests,
    a_request_counts_against_its_pass_until_done_or_dead,
    concurrent_enqueues_of_one_pass_stop_at_its_quota,
    a_pass_count_is_forgotten_result_for_after_its_last_request,
);

/// Settings loose enough that only what a test tightens gets in the way.
fn params(name: &str) -> BufferParams {
    BufferParams {
        name: name.to_owned(),
        drain_per_second: 1000,
        max_in_flight: 100,
        max_depth: 1000,
        max_per_pass: 1000,
        max_attempts: 3,
        lease: Duration::from_secs(30),
        result_for: Duration::from_secs(60),
    }
}

fn submission(buffer: &BufferParams, key: &str) -> Submission {
    Submission {
        receipt: receipt_id(&buffer.name),
        idempotency_key: key.to_owned(),
        fingerprint: format!("fingerprint of {key}"),
        pass: None,
        request: format!("POST /book {key}").into_bytes(),
    }
}

/// A submission from the visitor holding pass `pass`.
fn from_pass(buffer: &BufferParams, pass: &str, key: &str) -> Submission {
    Submission {
        pass: Some(pass.to_owned()),
        ..submission(buffer, key)
    }
}

/// Enqueues a request from `pass` that must be accepted; its receipt.
async fn accept_from(
    store: &dyn BufferStore,
    buffer: &BufferParams,
    pass: &str,
    key: &str,
) -> String {
    match store
        .enqueue(buffer, from_pass(buffer, pass, key))
        .await
        .expect("enqueue")
    {
        Enqueued::Accepted { receipt, .. } => receipt,
        other => panic!("{key} from {pass} should be accepted, got {other:?}"),
    }
}

/// What enqueueing a new request from `pass` answers.
async fn offer_from(
    store: &dyn BufferStore,
    buffer: &BufferParams,
    pass: &str,
    key: &str,
) -> Enqueued {
    store
        .enqueue(buffer, from_pass(buffer, pass, key))
        .await
        .expect("enqueue")
}

/// Enqueues a request that must be accepted; its receipt and position.
async fn accept(store: &dyn BufferStore, buffer: &BufferParams, key: &str) -> (String, u64) {
    match store
        .enqueue(buffer, submission(buffer, key))
        .await
        .expect("enqueue")
    {
        Enqueued::Accepted { receipt, position } => (receipt, position),
        other => panic!("{key} should be accepted, got {other:?}"),
    }
}

async fn take(store: &dyn BufferStore, buffer: &BufferParams, worker: &str, max: u32) -> Taken {
    store.take(buffer, worker, max).await.expect("take")
}

/// Takes exactly one job.
async fn take_one(store: &dyn BufferStore, buffer: &BufferParams, worker: &str) -> Job {
    let mut taken = take(store, buffer, worker, 1).await;
    assert_eq!(taken.jobs.len(), 1, "one job expected: {taken:?}");
    taken.jobs.remove(0)
}

async fn state(store: &dyn BufferStore, receipt: &str) -> ReceiptState {
    store
        .receipt(receipt)
        .await
        .expect("receipt")
        .unwrap_or_else(|| panic!("receipt {receipt} should exist"))
        .state
}

async fn finish(
    store: &dyn BufferStore,
    buffer: &BufferParams,
    job: &Job,
    outcome: Verdict,
) -> Finished {
    store.finish(buffer, job, outcome).await.expect("finish")
}

fn done(status: u16, body: &str) -> Verdict {
    Verdict::Done {
        status,
        body: body.to_owned(),
    }
}

fn retry(after: Duration, why: &str) -> Verdict {
    Verdict::Retry {
        after,
        why: why.to_owned(),
        refund: false,
    }
}

async fn a_request_goes_from_enqueue_to_done(store: Arc<dyn BufferStore>) {
    let buffer = params("flow");
    let (receipt, position) = accept(&*store, &buffer, "k1").await;
    assert_eq!(position, 1);
    assert!(receipt.starts_with("flow."), "{receipt}");
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.queued, stats.accepted, stats.depth()), (1, 1, 1));

    let job = take_one(&*store, &buffer, "w1").await;
    assert_eq!(job.receipt, receipt);
    assert_eq!(job.idempotency_key, "k1");
    assert_eq!(job.request, b"POST /book k1");
    assert_eq!(job.attempt, 1);
    assert_eq!(job.lease, "w1/1");
    assert_eq!(
        state(&*store, &receipt).await,
        ReceiptState::Processing { attempts: 1 }
    );
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.queued, stats.in_flight), (0, 1));

    let outcome = finish(&*store, &buffer, &job, done(201, r#"{"booked":true}"#)).await;
    assert_eq!(outcome, Finished::Recorded);
    assert_eq!(
        state(&*store, &receipt).await,
        ReceiptState::Done {
            status: 201,
            body: r#"{"booked":true}"#.to_owned()
        }
    );
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!(
        (stats.queued, stats.in_flight, stats.retrying, stats.dead),
        (0, 0, 0, 0)
    );
    assert_eq!((stats.accepted, stats.done, stats.depth()), (1, 1, 0));
    // Finishing again changes nothing.
    let again = finish(&*store, &buffer, &job, done(500, "late")).await;
    assert_eq!(again, Finished::AlreadyFinal);
    assert_eq!(store.buffer_stats(&buffer).await.unwrap().done, 1);
}

async fn requests_are_taken_in_order_of_arrival(store: Arc<dyn BufferStore>) {
    let buffer = params("fifo");
    let mut receipts = Vec::new();
    for index in 0..50 {
        receipts.push(accept(&*store, &buffer, &format!("k{index}")).await.0);
    }
    let mut taken = Vec::new();
    for _ in 0..50 {
        taken.push(take_one(&*store, &buffer, "w").await.receipt);
    }
    assert_eq!(taken, receipts);
    assert!(take(&*store, &buffer, "w", 10).await.jobs.is_empty());
}

async fn positions_count_from_one_and_move_as_requests_are_taken(store: Arc<dyn BufferStore>) {
    let buffer = params("positions");
    let mut receipts = Vec::new();
    for (index, expected) in (1..=3).enumerate() {
        let (receipt, position) = accept(&*store, &buffer, &format!("k{index}")).await;
        assert_eq!(position, expected);
        receipts.push(receipt);
    }
    for (receipt, expected) in receipts.iter().zip(1..) {
        assert_eq!(
            state(&*store, receipt).await,
            ReceiptState::Queued {
                position: expected,
                attempts: 0
            }
        );
    }
    let job = take_one(&*store, &buffer, "w").await;
    assert_eq!(job.receipt, receipts[0]);
    assert_eq!(
        state(&*store, &receipts[0]).await,
        ReceiptState::Processing { attempts: 1 }
    );
    assert_eq!(
        state(&*store, &receipts[1]).await,
        ReceiptState::Queued {
            position: 1,
            attempts: 0
        }
    );
    assert_eq!(
        state(&*store, &receipts[2]).await,
        ReceiptState::Queued {
            position: 2,
            attempts: 0
        }
    );
    // A newcomer queues behind those still waiting.
    let (_, position) = accept(&*store, &buffer, "k3").await;
    assert_eq!(position, 3);
}

async fn a_known_idempotency_key_is_a_duplicate_or_a_conflict(store: Arc<dyn BufferStore>) {
    let buffer = params("idempotent");
    let (receipt, _) = accept(&*store, &buffer, "same-key").await;
    let retried = store
        .enqueue(&buffer, submission(&buffer, "same-key"))
        .await
        .unwrap();
    assert_eq!(
        retried,
        Enqueued::Duplicate {
            receipt: receipt.clone()
        }
    );
    let reused = Submission {
        fingerprint: "another request".to_owned(),
        ..submission(&buffer, "same-key")
    };
    let conflicting = store.enqueue(&buffer, reused.clone()).await.unwrap();
    assert_eq!(
        conflicting,
        Enqueued::Conflict {
            receipt: receipt.clone()
        }
    );
    // Nothing new was stored: one request queued, under the first receipt.
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.queued, stats.accepted), (1, 1));
    assert!(store.receipt(&reused.receipt).await.unwrap().is_none());
    let taken = take(&*store, &buffer, "w", 10).await;
    assert_eq!(taken.jobs.len(), 1);
    assert_eq!(taken.jobs[0].receipt, receipt);
    assert_eq!(taken.jobs[0].request, b"POST /book same-key");
    // While it is being applied, and once done, the key still answers.
    let job = &taken.jobs[0];
    assert_eq!(
        store
            .enqueue(&buffer, submission(&buffer, "same-key"))
            .await
            .unwrap(),
        Enqueued::Duplicate {
            receipt: receipt.clone()
        }
    );
    finish(&*store, &buffer, job, done(200, "ok")).await;
    assert_eq!(
        store
            .enqueue(&buffer, submission(&buffer, "same-key"))
            .await
            .unwrap(),
        Enqueued::Duplicate { receipt }
    );
    assert_eq!(store.buffer_stats(&buffer).await.unwrap().accepted, 1);
}

async fn a_full_buffer_refuses_and_stores_nothing(store: Arc<dyn BufferStore>) {
    let buffer = BufferParams {
        max_depth: 2,
        ..params("full")
    };
    accept(&*store, &buffer, "k1").await;
    accept(&*store, &buffer, "k2").await;
    let refused = submission(&buffer, "k3");
    assert_eq!(
        store.enqueue(&buffer, refused.clone()).await.unwrap(),
        Enqueued::Full { depth: 2 }
    );
    assert!(store.receipt(&refused.receipt).await.unwrap().is_none());
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.queued, stats.accepted), (2, 2));
    // A request in flight is still unfinished: no room yet.
    let job = take_one(&*store, &buffer, "w").await;
    assert_eq!(
        store
            .enqueue(&buffer, submission(&buffer, "k3"))
            .await
            .unwrap(),
        Enqueued::Full { depth: 2 }
    );
    // Waiting for a retry, it is still unfinished.
    let retrying = finish(
        &*store,
        &buffer,
        &job,
        retry(Duration::from_secs(3600), "503"),
    )
    .await;
    assert_eq!(retrying, Finished::Recorded);
    assert_eq!(
        store
            .enqueue(&buffer, submission(&buffer, "k3"))
            .await
            .unwrap(),
        Enqueued::Full { depth: 2 }
    );
    // Finished (a final answer counts without the lease), it makes room;
    // the refused key was never stored, so it is accepted as new.
    let recorded = finish(&*store, &buffer, &job, done(200, "ok")).await;
    assert_eq!(recorded, Finished::Recorded);
    let (_, position) = accept(&*store, &buffer, "k3").await;
    assert_eq!(position, 2);
    assert_eq!(store.buffer_stats(&buffer).await.unwrap().accepted, 3);
}

async fn the_in_flight_cap_is_shared_by_all_workers(store: Arc<dyn BufferStore>) {
    let buffer = BufferParams {
        max_in_flight: 2,
        ..params("capped")
    };
    for index in 0..5 {
        accept(&*store, &buffer, &format!("k{index}")).await;
    }
    let first = take(&*store, &buffer, "a", 10).await;
    assert_eq!(first.jobs.len(), 2);
    let second = take(&*store, &buffer, "b", 10).await;
    assert!(second.jobs.is_empty(), "{second:?}");
    assert!(second.wait > Duration::ZERO);
    assert_eq!(store.buffer_stats(&buffer).await.unwrap().in_flight, 2);
    // One slot freed: one more job, for whichever worker asks.
    finish(&*store, &buffer, &first.jobs[0], done(200, "ok")).await;
    let third = take(&*store, &buffer, "b", 10).await;
    assert_eq!(third.jobs.len(), 1);
    assert_eq!(third.jobs[0].lease, "b/1");
    assert!(take(&*store, &buffer, "a", 10).await.jobs.is_empty());
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.in_flight, stats.queued), (2, 2));
}

async fn the_pace_starts_with_a_full_bucket_and_then_waits(store: Arc<dyn BufferStore>) {
    // 30 per second: the bucket holds 100 ms of pace, three requests.
    let burst = BufferParams {
        drain_per_second: 30,
        ..params("burst")
    };
    for index in 0..10 {
        accept(&*store, &burst, &format!("k{index}")).await;
    }
    let taken = take(&*store, &burst, "w", 100).await;
    let expected = pace::capacity(30) / pace::UNITS;
    assert_eq!(taken.jobs.len() as u64, expected);
    assert_eq!(expected, 3);

    // One per second: one request at once, then nothing for a second.
    let slow = BufferParams {
        drain_per_second: 1,
        ..params("slow")
    };
    for index in 0..3 {
        accept(&*store, &slow, &format!("k{index}")).await;
    }
    let first = take(&*store, &slow, "w", 100).await;
    assert_eq!(first.jobs.len() as u64, pace::capacity(1) / pace::UNITS);
    let right_away = take(&*store, &slow, "w", 100).await;
    assert!(right_away.jobs.is_empty(), "{right_away:?}");
    assert!(right_away.wait > Duration::ZERO);
    assert!(right_away.wait <= IDLE_POLL);
    assert_eq!(store.buffer_stats(&slow).await.unwrap().queued, 2);
}

async fn an_empty_buffer_asks_for_an_idle_poll(store: Arc<dyn BufferStore>) {
    let buffer = params("idle");
    let taken = take(&*store, &buffer, "w", 10).await;
    assert_eq!(
        taken,
        Taken {
            jobs: Vec::new(),
            dead: Vec::new(),
            wait: IDLE_POLL
        }
    );
    // A queue with work in it asks to come back at once.
    accept(&*store, &buffer, "k1").await;
    accept(&*store, &buffer, "k2").await;
    let taken = take(&*store, &buffer, "w", 1).await;
    assert_eq!((taken.jobs.len(), taken.wait), (1, Duration::ZERO));
}

async fn an_expired_lease_is_taken_again_and_the_first_final_answer_wins(
    store: Arc<dyn BufferStore>,
) {
    let buffer = BufferParams {
        lease: Duration::from_millis(300),
        ..params("leases")
    };
    let (receipt, _) = accept(&*store, &buffer, "k1").await;
    let (later, _) = accept(&*store, &buffer, "k2").await;
    let stale = take_one(&*store, &buffer, "a").await;
    assert_eq!((stale.attempt, stale.lease.as_str()), (1, "a/1"));
    // Worker a hangs past its lease.
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The expired lease comes first, before the queue.
    let fresh = take_one(&*store, &buffer, "b").await;
    assert_eq!(fresh.receipt, receipt);
    assert_eq!((fresh.attempt, fresh.lease.as_str()), (2, "b/2"));
    assert_eq!(fresh.request, stale.request);
    assert_eq!(
        state(&*store, &receipt).await,
        ReceiptState::Processing { attempts: 2 }
    );
    assert_eq!(
        state(&*store, &later).await,
        ReceiptState::Queued {
            position: 1,
            attempts: 0
        }
    );
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.in_flight, stats.queued), (1, 1));

    // Worker a wakes up: its retry is dropped, its final answer counts.
    let lost = finish(&*store, &buffer, &stale, retry(Duration::ZERO, "timeout")).await;
    assert_eq!(lost, Finished::LeaseLost);
    assert_eq!(
        state(&*store, &receipt).await,
        ReceiptState::Processing { attempts: 2 }
    );
    let first_final = finish(&*store, &buffer, &stale, done(201, "from a")).await;
    assert_eq!(first_final, Finished::Recorded);
    assert_eq!(
        state(&*store, &receipt).await,
        ReceiptState::Done {
            status: 201,
            body: "from a".to_owned()
        }
    );
    // Worker b's answers come too late.
    let second_final = finish(&*store, &buffer, &fresh, done(200, "from b")).await;
    assert_eq!(second_final, Finished::AlreadyFinal);
    let second_retry = finish(&*store, &buffer, &fresh, retry(Duration::ZERO, "x")).await;
    assert_eq!(second_retry, Finished::AlreadyFinal);
    assert_eq!(
        state(&*store, &receipt).await,
        ReceiptState::Done {
            status: 201,
            body: "from a".to_owned()
        }
    );
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.in_flight, stats.done, stats.queued), (0, 1, 1));
}

async fn a_retry_waits_until_it_is_due(store: Arc<dyn BufferStore>) {
    let buffer = params("retries");
    let (distant, _) = accept(&*store, &buffer, "k1").await;
    let job = take_one(&*store, &buffer, "w").await;
    let recorded = finish(
        &*store,
        &buffer,
        &job,
        retry(Duration::from_secs(3600), "sink 503"),
    )
    .await;
    assert_eq!(recorded, Finished::Recorded);
    assert_eq!(
        state(&*store, &distant).await,
        ReceiptState::Queued {
            position: 1,
            attempts: 1
        }
    );
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.retrying, stats.in_flight, stats.depth()), (1, 0, 1));
    assert!(take(&*store, &buffer, "w", 10).await.jobs.is_empty());
    // The lease is given back: retrying again with it is a lost lease.
    let again = finish(&*store, &buffer, &job, retry(Duration::ZERO, "again")).await;
    assert_eq!(again, Finished::LeaseLost);

    let (soon, _) = accept(&*store, &buffer, "k2").await;
    let first = take_one(&*store, &buffer, "w").await;
    assert_eq!(first.receipt, soon);
    let recorded = finish(
        &*store,
        &buffer,
        &first,
        retry(Duration::from_millis(200), "sink 503"),
    )
    .await;
    assert_eq!(recorded, Finished::Recorded);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let taken = take(&*store, &buffer, "v", 10).await;
    assert_eq!(taken.jobs.len(), 1, "{taken:?}");
    assert_eq!(taken.jobs[0].receipt, soon);
    assert_eq!(
        (taken.jobs[0].attempt, taken.jobs[0].lease.as_str()),
        (2, "v/2")
    );
    assert_eq!(taken.jobs[0].request, b"POST /book k2");
    assert_eq!(store.buffer_stats(&buffer).await.unwrap().retrying, 1);
}

async fn a_request_that_keeps_failing_is_dead_lettered(store: Arc<dyn BufferStore>) {
    let buffer = BufferParams {
        max_attempts: 2,
        ..params("failing")
    };
    let (receipt, _) = accept(&*store, &buffer, "k1").await;
    for attempt in 1..=2 {
        let job = take_one(&*store, &buffer, "w").await;
        assert_eq!(job.attempt, attempt);
        let why = format!("sink 503 on attempt {attempt}");
        let outcome = finish(&*store, &buffer, &job, retry(Duration::ZERO, &why)).await;
        assert_eq!(outcome, Finished::Recorded);
    }
    // It comes back a third time: dead-lettered instead of handed out, and
    // the next request is handed out in the same take.
    let (next, _) = accept(&*store, &buffer, "k2").await;
    let taken = take(&*store, &buffer, "w", 10).await;
    assert_eq!(taken.dead, std::slice::from_ref(&receipt));
    assert_eq!(taken.jobs.len(), 1);
    assert_eq!(taken.jobs[0].receipt, next);
    let ReceiptState::Failed { why } = state(&*store, &receipt).await else {
        panic!("the receipt should have failed");
    };
    assert!(why.contains("2 attempts"), "{why}");
    assert!(why.contains("sink 503 on attempt 2"), "{why}");
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!(
        (stats.dead, stats.retrying, stats.in_flight, stats.done),
        (1, 0, 1, 0)
    );
    let letters = store.dead_letters(&buffer, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].receipt, receipt);
    assert_eq!(letters[0].idempotency_key, "k1");
    assert_eq!(letters[0].attempts, 2);
    assert_eq!(letters[0].why, why);
    assert_eq!(letters[0].request, b"POST /book k1");
    // Its key still names it: a resubmission is a duplicate, not a new try.
    assert_eq!(
        store
            .enqueue(&buffer, submission(&buffer, "k1"))
            .await
            .unwrap(),
        Enqueued::Duplicate { receipt }
    );
}

async fn a_request_whose_workers_keep_dying_is_dead_lettered(store: Arc<dyn BufferStore>) {
    let buffer = BufferParams {
        max_attempts: 2,
        max_in_flight: 1,
        lease: Duration::from_millis(200),
        ..params("deadly")
    };
    let (receipt, _) = accept(&*store, &buffer, "k1").await;
    let (next, _) = accept(&*store, &buffer, "k2").await;
    for attempt in 1..=2 {
        let job = take_one(&*store, &buffer, &format!("w{attempt}")).await;
        assert_eq!(
            (job.receipt.as_str(), job.attempt),
            (receipt.as_str(), attempt)
        );
        // The worker dies with the job.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Its slot is free again, and the next request gets it.
    let taken = take(&*store, &buffer, "w3", 10).await;
    assert_eq!(taken.dead, std::slice::from_ref(&receipt));
    assert_eq!(taken.jobs.len(), 1, "{taken:?}");
    assert_eq!(taken.jobs[0].receipt, next);
    let ReceiptState::Failed { why } = state(&*store, &receipt).await else {
        panic!("the receipt should have failed");
    };
    assert!(why.contains("never finished"), "{why}");
    let letters = store.dead_letters(&buffer, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].attempts, &letters[0].why), (2, &why));
    assert_eq!(letters[0].request, b"POST /book k1");
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.dead, stats.in_flight), (1, 1));
}

async fn a_worker_can_give_up_on_a_request(store: Arc<dyn BufferStore>) {
    let buffer = params("given-up");
    let (receipt, _) = accept(&*store, &buffer, "k1").await;
    let job = take_one(&*store, &buffer, "w").await;
    let outcome = Verdict::Dead {
        why: "sink refused the schema".to_owned(),
    };
    assert_eq!(
        finish(&*store, &buffer, &job, outcome.clone()).await,
        Finished::Recorded
    );
    assert_eq!(
        state(&*store, &receipt).await,
        ReceiptState::Failed {
            why: "sink refused the schema".to_owned()
        }
    );
    assert_eq!(
        finish(&*store, &buffer, &job, outcome).await,
        Finished::AlreadyFinal
    );
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.dead, stats.in_flight, stats.done), (1, 0, 0));
    let letters = store.dead_letters(&buffer, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].attempts, letters[0].request.as_slice()),
        (1, b"POST /book k1".as_slice())
    );
}

async fn dead_letters_are_listed_oldest_first_up_to_the_limit(store: Arc<dyn BufferStore>) {
    let buffer = params("letters");
    let mut receipts = Vec::new();
    for index in 0..3 {
        receipts.push(accept(&*store, &buffer, &format!("k{index}")).await.0);
    }
    let jobs = take(&*store, &buffer, "w", 10).await.jobs;
    // Given up in another order than they arrived.
    for index in [1, 0, 2] {
        let why = format!("give up {index}");
        finish(&*store, &buffer, &jobs[index], Verdict::Dead { why }).await;
    }
    let listed = |limit| {
        let store = store.clone();
        let buffer = buffer.clone();
        async move {
            store
                .dead_letters(&buffer, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|letter| letter.receipt)
                .collect::<Vec<_>>()
        }
    };
    let order = vec![
        receipts[1].clone(),
        receipts[0].clone(),
        receipts[2].clone(),
    ];
    assert_eq!(listed(10).await, order);
    assert_eq!(listed(2).await, order[..2]);
    assert!(listed(0).await.is_empty());
    assert!(
        store
            .dead_letters(&params("no-such-buffer"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_binary_request_and_an_odd_key_round_trip(store: Arc<dyn BufferStore>) {
    let buffer = BufferParams {
        max_attempts: 1,
        ..params("binary")
    };
    let request: Vec<u8> = [b"POST /book\0\r\n\n".as_slice(), &[0xff, 0xfe, 0x00, 0x80]].concat();
    // Visible ASCII, with what means something to Redis or a glob.
    let key = "key:{other}*?[x] \"quoted\"\\";
    let (receipt, _) = match store
        .enqueue(
            &buffer,
            Submission {
                request: request.clone(),
                ..submission(&buffer, key)
            },
        )
        .await
        .unwrap()
    {
        Enqueued::Accepted { receipt, position } => (receipt, position),
        other => panic!("should be accepted, got {other:?}"),
    };
    let job = take_one(&*store, &buffer, "w").await;
    assert_eq!(job.request, request);
    assert_eq!(job.idempotency_key, key);
    assert_eq!(
        store
            .enqueue(&buffer, submission(&buffer, key))
            .await
            .unwrap(),
        Enqueued::Duplicate {
            receipt: receipt.clone()
        }
    );
    finish(&*store, &buffer, &job, retry(Duration::ZERO, "503")).await;
    let taken = take(&*store, &buffer, "w", 10).await;
    assert_eq!(taken.dead, [receipt]);
    let letters = store.dead_letters(&buffer, 10).await.unwrap();
    assert_eq!(letters[0].request, request);
    assert_eq!(letters[0].idempotency_key, key);
}

async fn unknown_and_malformed_receipts_are_none(store: Arc<dyn BufferStore>) {
    let buffer = params("known");
    accept(&*store, &buffer, "k1").await;
    for receipt in [
        receipt_id("known"),
        receipt_id("never-seen"),
        String::new(),
        "known".to_owned(),
        "known.".to_owned(),
        "Known.AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "known.AAAAAAAAAAAAAAAAAAAAA*".to_owned(),
        "known.AAAAAAAAAAAAAAAAAAAAAA:x".to_owned(),
        "../known.AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
    ] {
        assert!(
            store.receipt(&receipt).await.unwrap().is_none(),
            "{receipt:?}"
        );
    }
}

async fn a_done_receipt_and_its_key_expire_after_result_for(store: Arc<dyn BufferStore>) {
    let buffer = BufferParams {
        result_for: Duration::from_millis(300),
        ..params("results")
    };
    let (receipt, _) = accept(&*store, &buffer, "k1").await;
    let (unfinished, _) = accept(&*store, &buffer, "k2").await;
    let job = take_one(&*store, &buffer, "w").await;
    finish(&*store, &buffer, &job, done(200, "ok")).await;
    assert!(matches!(
        state(&*store, &receipt).await,
        ReceiptState::Done { .. }
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(store.receipt(&receipt).await.unwrap().is_none());
    // The key is forgotten with it: the same key is a new request now.
    let (again, position) = accept(&*store, &buffer, "k1").await;
    assert_ne!(again, receipt);
    assert_eq!(position, 2);
    // Unfinished requests never expire.
    assert_eq!(
        state(&*store, &unfinished).await,
        ReceiptState::Queued {
            position: 1,
            attempts: 0
        }
    );
    assert_eq!(store.buffer_stats(&buffer).await.unwrap().done, 1);
}

async fn a_pass_holds_at_most_max_per_pass_unfinished_requests(store: Arc<dyn BufferStore>) {
    let buffer = BufferParams {
        max_per_pass: 3,
        ..params("quota")
    };
    let first = accept_from(&*store, &buffer, "ada", "k0").await;
    accept_from(&*store, &buffer, "ada", "k1").await;
    accept_from(&*store, &buffer, "ada", "k2").await;
    let refused = from_pass(&buffer, "ada", "k3");
    assert_eq!(
        store.enqueue(&buffer, refused.clone()).await.unwrap(),
        Enqueued::PassQuota { held: 3, depth: 3 }
    );
    assert!(store.receipt(&refused.receipt).await.unwrap().is_none());
    // Sent again, a request she has stored is her duplicate, not a fourth.
    assert_eq!(
        offer_from(&*store, &buffer, "ada", "k0").await,
        Enqueued::Duplicate { receipt: first }
    );
    assert_eq!(
        offer_from(&*store, &buffer, "ada", "k3").await,
        Enqueued::PassQuota { held: 3, depth: 3 }
    );
    // Another pass has a quota of its own; requests without a pass are not
    // counted against any.
    accept_from(&*store, &buffer, "bob", "k3").await;
    for index in 0..5 {
        accept(&*store, &buffer, &format!("passless-{index}")).await;
    }
    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.queued, stats.accepted), (9, 9));
    assert_eq!(
        offer_from(&*store, &buffer, "ada", "k4").await,
        Enqueued::PassQuota { held: 3, depth: 9 }
    );
    // A full buffer is full for everyone, whatever the pass holds.
    let small = BufferParams {
        max_depth: 2,
        max_per_pass: 2,
        ..params("quota-full")
    };
    accept_from(&*store, &small, "ada", "k0").await;
    accept_from(&*store, &small, "ada", "k1").await;
    assert_eq!(
        offer_from(&*store, &small, "ada", "k2").await,
        Enqueued::Full { depth: 2 }
    );
}

async fn a_request_counts_against_its_pass_until_done_or_dead(store: Arc<dyn BufferStore>) {
    let buffer = BufferParams {
        max_per_pass: 2,
        max_attempts: 1,
        ..params("quota-release")
    };
    accept_from(&*store, &buffer, "ada", "k0").await;
    accept_from(&*store, &buffer, "ada", "k1").await;
    let jobs = take(&*store, &buffer, "w", 2).await.jobs;
    assert_eq!(jobs.len(), 2);
    // In flight, both still count.
    assert!(matches!(
        offer_from(&*store, &buffer, "ada", "k2").await,
        Enqueued::PassQuota { held: 2, .. }
    ));
    // Done: one place is free again.
    finish(&*store, &buffer, &jobs[0], done(201, "booked")).await;
    accept_from(&*store, &buffer, "ada", "k2").await;
    assert!(matches!(
        offer_from(&*store, &buffer, "ada", "k3").await,
        Enqueued::PassQuota { held: 2, .. }
    ));
    // Waiting for a retry, it still counts.
    let retried = finish(&*store, &buffer, &jobs[1], retry(Duration::ZERO, "503")).await;
    assert_eq!(retried, Finished::Recorded);
    assert!(matches!(
        offer_from(&*store, &buffer, "ada", "k3").await,
        Enqueued::PassQuota { held: 2, .. }
    ));
    // Back after its last attempt, it is dead-lettered: free again.
    let taken = take(&*store, &buffer, "w", 10).await;
    assert_eq!(taken.dead, std::slice::from_ref(&jobs[1].receipt));
    assert_eq!(taken.jobs.len(), 1, "{taken:?}");
    accept_from(&*store, &buffer, "ada", "k3").await;
    // Given up on by its worker: free again.
    let given_up = Verdict::Dead {
        why: "the site refused the schema".to_owned(),
    };
    finish(&*store, &buffer, &taken.jobs[0], given_up).await;
    accept_from(&*store, &buffer, "ada", "k4").await;
    assert!(matches!(
        offer_from(&*store, &buffer, "ada", "k5").await,
        Enqueued::PassQuota { held: 2, .. }
    ));
    // A late answer to a finished request releases nothing twice.
    let late = finish(&*store, &buffer, &jobs[0], done(200, "again")).await;
    assert_eq!(late, Finished::AlreadyFinal);
    assert!(matches!(
        offer_from(&*store, &buffer, "ada", "k5").await,
        Enqueued::PassQuota { held: 2, .. }
    ));
}

/// Many requests of one pass at once (on Redis, several to a script call):
/// exactly `max_per_pass` are stored, whichever call carries them.
async fn concurrent_enqueues_of_one_pass_stop_at_its_quota(store: Arc<dyn BufferStore>) {
    let buffer = BufferParams {
        max_per_pass: 10,
        ..params("quota-together")
    };
    let mut calls = tokio::task::JoinSet::new();
    for index in 0..30 {
        let store = Arc::clone(&store);
        let buffer = buffer.clone();
        calls.spawn(async move {
            store
                .enqueue(&buffer, from_pass(&buffer, "script", &format!("s{index}")))
                .await
                .expect("enqueue")
        });
    }
    let (mut stored, mut refused) = (0, 0);
    while let Some(done) = calls.join_next().await {
        match done.expect("task") {
            Enqueued::Accepted { .. } => stored += 1,
            Enqueued::PassQuota { held, .. } => {
                assert_eq!(held, 10);
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((stored, refused), (10, 20));
    let stats = store.buffer_stats(&buffer).await.expect("stats");
    assert_eq!((stats.queued, stats.accepted), (10, 10));
}

/// The count is kept `result_for` after the pass's last accepted request
/// (a backstop against a count left behind: requests leave it as they
/// finish), on both backends alike.
async fn a_pass_count_is_forgotten_result_for_after_its_last_request(store: Arc<dyn BufferStore>) {
    let buffer = BufferParams {
        max_per_pass: 2,
        result_for: Duration::from_millis(1000),
        ..params("quota-expiry")
    };
    accept_from(&*store, &buffer, "ada", "k0").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Each accepted request keeps the count for result_for from then: past
    // k0's second, k1 has kept both.
    accept_from(&*store, &buffer, "ada", "k1").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(matches!(
        offer_from(&*store, &buffer, "ada", "k2").await,
        Enqueued::PassQuota { held: 2, .. }
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    accept_from(&*store, &buffer, "ada", "k2").await;
    assert!(matches!(
        offer_from(&*store, &buffer, "ada", "k3").await,
        Enqueued::Accepted { .. }
    ));
    assert!(matches!(
        offer_from(&*store, &buffer, "ada", "k4").await,
        Enqueued::PassQuota { held: 2, .. }
    ));
}

// ---------------------------------------------------------------- Redis only

/// Waits for the store's connection to come back after a restart.
async fn reconnected(store: &RedisStore, buffer: &BufferParams) {
    for _ in 0..100 {
        if store.buffer_stats(buffer).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the store did not reconnect after a restart");
}

/// With the append-only file fsynced on every write, an acknowledged
/// enqueue survives Redis being killed.
#[tokio::test]
async fn buffered_requests_survive_a_redis_restart() {
    let mut server = RedisServer::start_durable().await;
    let store = RedisStore::new(&server.url()).expect("redis store");
    let buffer = params("durable");
    let mut receipts = Vec::new();
    for index in 0..100 {
        receipts.push(accept(&store, &buffer, &format!("k{index}")).await.0);
    }
    server.restart().await;
    reconnected(&store, &buffer).await;

    let stats = store.buffer_stats(&buffer).await.unwrap();
    assert_eq!((stats.queued, stats.accepted), (100, 100));
    assert_eq!(
        state(&store, &receipts[99]).await,
        ReceiptState::Queued {
            position: 100,
            attempts: 0
        }
    );
    let mut taken = Vec::new();
    for _ in 0..100 {
        let job = take_one(&store, &buffer, "w").await;
        assert_eq!(
            job.request,
            format!("POST /book k{}", taken.len()).as_bytes()
        );
        taken.push(job.receipt);
    }
    assert_eq!(taken, receipts);
}

/// A pass's count is a set of its unfinished receipts that expires, and
/// that is gone once they are all finished: the quota leaves no key behind.
#[tokio::test]
async fn a_pass_count_leaves_no_key_behind() {
    let server = RedisServer::start().await;
    let store = RedisStore::new(&server.url()).expect("redis store");
    let buffer = BufferParams {
        max_attempts: 1,
        ..params("no-leak")
    };
    let held = "anteroom:buffer:{no-leak}:pass:ada";
    accept_from(&store, &buffer, "ada", "k0").await;
    accept_from(&store, &buffer, "ada", "k1").await;
    let again = store
        .enqueue(&buffer, from_pass(&buffer, "ada", "k1"))
        .await
        .unwrap();
    assert!(matches!(again, Enqueued::Duplicate { .. }), "{again:?}");
    assert_eq!(server.integer(&["SCARD", held]).await, 2, "counted once");
    let expires_in = server.integer(&["PTTL", held]).await;
    assert!(
        (1..=buffer.result_for.as_millis() as i64).contains(&expires_in),
        "{expires_in}"
    );
    let jobs = take(&store, &buffer, "w", 2).await.jobs;
    finish(&store, &buffer, &jobs[0], done(201, "ok")).await;
    assert_eq!(server.integer(&["SCARD", held]).await, 1);
    finish(&store, &buffer, &jobs[1], retry(Duration::ZERO, "503")).await;
    let taken = take(&store, &buffer, "w", 10).await;
    assert_eq!(taken.dead, std::slice::from_ref(&jobs[1].receipt));
    assert_eq!(server.integer(&["EXISTS", held]).await, 0);
    // A request without a pass makes no count at all.
    accept(&store, &buffer, "passless").await;
    let none = "anteroom:buffer:{no-leak}:pass:";
    assert_eq!(server.integer(&["EXISTS", none]).await, 0);
}

/// Every buffer call is one command on the wire: a script sent by hash.
#[tokio::test]
async fn every_buffer_call_is_one_round_trip() {
    let server = RedisServer::start().await;
    let store = RedisStore::new(&server.url()).expect("redis store");
    let buffer = params("round-trips");
    let calls = |key: &'static str| {
        let store = &store;
        let buffer = &buffer;
        async move {
            let (receipt, _) = accept(store, buffer, key).await;
            store.receipt(&receipt).await.unwrap();
            let job = take_one(store, buffer, "w").await;
            finish(store, buffer, &job, done(200, "ok")).await;
            store.buffer_stats(buffer).await.unwrap();
            store.dead_letters(buffer, 10).await.unwrap();
        }
    };
    // The first use of each script loads it.
    calls("warm-up").await;
    let counter = server.monitor().await;
    let before = counter.seen().await;
    calls("counted").await;
    assert_eq!(counter.seen().await - before, 6);
    // A malformed receipt id is answered without asking Redis.
    assert!(store.receipt("not a receipt").await.unwrap().is_none());
    assert_eq!(counter.seen().await - before, 6);
}

/// Many enqueues at once (on Redis they travel together, several to a
/// script call): each gets its own answer, duplicates included, positions
/// are one sequence, and the depth bound holds inside a batch.
async fn concurrent_enqueues_are_each_answered_once(store: Arc<dyn BufferStore>) {
    let buffer = params("together");
    let mut calls = tokio::task::JoinSet::new();
    for index in 0..200 {
        let store = Arc::clone(&store);
        let buffer = buffer.clone();
        // Keys k0..k19 are sent twice.
        let key = format!("k{}", index % 180);
        calls.spawn(async move {
            let answer = store
                .enqueue(&buffer, submission(&buffer, &key))
                .await
                .expect("enqueue");
            (key, answer)
        });
    }
    let mut accepted: std::collections::HashMap<String, String> = Default::default();
    let mut duplicates = Vec::new();
    let mut positions = Vec::new();
    while let Some(done) = calls.join_next().await {
        let (key, answer) = done.expect("task");
        match answer {
            Enqueued::Accepted { receipt, position } => {
                positions.push(position);
                assert!(accepted.insert(key, receipt).is_none(), "accepted twice");
            }
            Enqueued::Duplicate { receipt } => duplicates.push((key, receipt)),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(accepted.len(), 180);
    assert_eq!(duplicates.len(), 20);
    for (key, receipt) in &duplicates {
        assert_eq!(Some(receipt), accepted.get(key), "{key}");
    }
    positions.sort_unstable();
    assert_eq!(positions, (1..=180).collect::<Vec<u64>>());
    let stats = store.buffer_stats(&buffer).await.expect("stats");
    assert_eq!((stats.accepted, stats.queued), (180, 180));

    let small = BufferParams {
        max_depth: 10,
        ..params("together-small")
    };
    let mut calls = tokio::task::JoinSet::new();
    for index in 0..30 {
        let store = Arc::clone(&store);
        let small = small.clone();
        calls.spawn(async move {
            store
                .enqueue(&small, submission(&small, &format!("s{index}")))
                .await
                .expect("enqueue")
        });
    }
    let (mut taken, mut full) = (0, 0);
    while let Some(done) = calls.join_next().await {
        match done.expect("task") {
            Enqueued::Accepted { .. } => taken += 1,
            Enqueued::Full { .. } => full += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((taken, full), (10, 20));
    assert_eq!(store.buffer_stats(&small).await.expect("stats").queued, 10);
}
