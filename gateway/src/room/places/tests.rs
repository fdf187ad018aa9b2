use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;

/// Far enough that no test reaches it: a wait that must not run out.
const NEVER: Duration = Duration::from_secs(3600);

fn take_all(places: &Arc<Places>) -> Vec<PlaceGuard> {
    std::iter::from_fn(|| places.try_acquire())
        .take(1_000)
        .collect()
}

/// Lets every spawned task run until it waits (the test runtime has one
/// thread, so they run in the order they were spawned).
async fn let_others_run() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[test]
fn unlimited_until_a_limit_is_set_and_again_after() {
    let places = Arc::new(Places::new());
    assert_eq!(places.limit(), None);
    assert_eq!(take_all(&places).len(), 1_000, "no limit of the room's own");
    places.set_limit(3);
    assert_eq!(places.limit(), Some(3));
    assert_eq!(take_all(&places).len(), 3);
    places.set_unlimited();
    assert_eq!(places.limit(), None);
    assert_eq!(take_all(&places).len(), 1_000);
}

#[test]
fn a_limit_of_zero_is_one() {
    let places = Arc::new(Places::new());
    places.set_limit(0);
    assert_eq!(places.limit(), Some(1));
    assert_eq!(take_all(&places).len(), 1);
}

#[test]
fn a_rise_gives_places_at_once() {
    let places = Arc::new(Places::new());
    places.set_limit(2);
    let mut held = take_all(&places);
    assert_eq!(held.len(), 2);
    places.set_limit(5);
    held.extend(take_all(&places));
    assert_eq!(held.len(), 5);
    assert_eq!(places.in_use(), 5);
}

#[test]
fn a_fall_revokes_nothing_and_new_requests_wait_until_fewer_are_in_use() {
    let places = Arc::new(Places::new());
    let mut held = take_all(&places);
    assert_eq!(held.len(), 1_000);
    places.set_limit(2);
    assert_eq!(places.in_use(), 1_000, "no place in use is revoked");
    assert!(places.try_acquire().is_none());
    held.truncate(2);
    assert_eq!(places.in_use(), 2);
    assert!(
        places.try_acquire().is_none(),
        "two in use, the limit is two"
    );
    held.pop();
    let again = places.try_acquire().expect("one in use: a place is free");
    assert!(places.try_acquire().is_none());
    drop(again);
    drop(held);
    assert_eq!(take_all(&places).len(), 2, "the limit is exactly two again");
}

#[test]
fn a_fall_then_a_rise_before_the_places_come_back_cancels_the_debt() {
    let places = Arc::new(Places::new());
    places.set_limit(4);
    let held = take_all(&places);
    places.set_limit(1);
    places.set_limit(3);
    assert!(
        places.try_acquire().is_none(),
        "four in use, the limit is three"
    );
    drop(held);
    assert_eq!(take_all(&places).len(), 3);
}

#[test]
fn a_dropped_guard_gives_its_place_back() {
    let places = Arc::new(Places::new());
    places.set_limit(1);
    let place = places.try_acquire().expect("a free place");
    assert!(places.try_acquire().is_none());
    drop(place);
    assert_eq!(places.in_use(), 0);
    assert!(places.try_acquire().is_some());
}

#[test]
fn a_place_remembers_whether_it_was_taken_while_probing() {
    let places = Arc::new(Places::new());
    let before = places.try_acquire().expect("a free place");
    places.set_probing(true);
    let during = places.try_acquire().expect("a free place");
    places.set_probing(false);
    let after = places.try_acquire().expect("a free place");
    assert_eq!(before.taken(), Taken::Normally);
    assert_eq!(during.taken(), Taken::WhileProbing);
    assert!(during.probing());
    assert_eq!(after.taken(), Taken::Normally);
}

#[tokio::test]
async fn waiting_requests_take_places_first_come_first_served() {
    let places = Arc::new(Places::new());
    places.set_limit(1);
    let first = places.try_acquire().expect("a free place");
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiting = Vec::new();
    for id in 0..5 {
        let (places, order) = (Arc::clone(&places), Arc::clone(&order));
        waiting.push(tokio::spawn(async move {
            let place = places.acquire(Instant::now() + NEVER).await;
            order.lock().unwrap().push(id);
            // Held a moment, so that the next one waits for it.
            tokio::task::yield_now().await;
            drop(place);
        }));
        let_others_run().await;
    }
    drop(first);
    // The place went straight to the head of the line: a newcomer does not
    // overtake it.
    assert!(places.try_acquire().is_none());
    for task in waiting {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn a_rise_lets_the_head_of_the_line_in_first() {
    let places = Arc::new(Places::new());
    places.set_limit(1);
    let _held = places.try_acquire().expect("a free place");
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let places = Arc::clone(&places);
        waiting.push(tokio::spawn(async move {
            places.acquire(Instant::now() + NEVER).await
        }));
        let_others_run().await;
    }
    places.set_limit(3);
    let_others_run().await;
    assert!(waiting[0].is_finished() && waiting[1].is_finished());
    assert!(!waiting[2].is_finished(), "two more places, two let in");
    assert_eq!(places.in_use(), 3);
}

#[tokio::test]
async fn after_a_fall_the_line_waits_for_the_debt_to_be_paid() {
    let places = Arc::new(Places::new());
    places.set_limit(2);
    let mut held = take_all(&places);
    let waiter = {
        let places = Arc::clone(&places);
        tokio::spawn(async move { places.acquire(Instant::now() + NEVER).await })
    };
    let_others_run().await;
    places.set_limit(1);
    held.pop();
    let_others_run().await;
    assert!(!waiter.is_finished(), "one in use, the limit is one");
    held.pop();
    let place = waiter.await.unwrap().expect("a place once none is in use");
    assert_eq!(places.in_use(), 1);
    drop(place);
}

#[tokio::test(start_paused = true)]
async fn the_wait_runs_out_at_the_deadline() {
    let places = Arc::new(Places::new());
    places.set_limit(1);
    let held = places.try_acquire().expect("a free place");
    let asked = Instant::now();
    let deadline = asked + Duration::from_secs(2);
    assert_eq!(places.acquire(deadline).await.unwrap_err(), Busy);
    assert_eq!(Instant::now(), deadline);
    assert_eq!(places.in_use(), 1);
    // Leaving the line leaves nothing behind.
    drop(held);
    assert!(places.try_acquire().is_some());
}

/// Many requests taking and giving back places on several threads while
/// the limit moves: afterwards exactly the last limit's places are free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_count_stays_exact_under_concurrent_changes() {
    let places = Arc::new(Places::new());
    places.set_limit(8);
    let mut tasks = Vec::new();
    for task in 0..32u64 {
        let places = Arc::clone(&places);
        tasks.push(tokio::spawn(async move {
            for round in 0..200u64 {
                if let Ok(place) = places.acquire(Instant::now() + NEVER).await {
                    if (task + round) % 3 == 0 {
                        tokio::task::yield_now().await;
                    }
                    drop(place);
                }
            }
        }));
    }
    let changer = {
        let places = Arc::clone(&places);
        tokio::spawn(async move {
            for step in 0..500u64 {
                places.set_limit(1 + step * 7 % 13);
                tokio::task::yield_now().await;
            }
            places.set_limit(5);
        })
    };
    changer.await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(places.in_use(), 0);
    assert_eq!(take_all(&places).len(), 5);
}
