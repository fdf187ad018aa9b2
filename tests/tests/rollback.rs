//! A Redis whose counters go back within an epoch (restarted from an older
//! RDB snapshot; a lagging replica promoted looks the same to a gateway):
//! the gateway's marks mean no number is handed out twice, the room never
//! holds more than its capacity, and everyone keeps their order. And an
//! arrival whose reply was lost leaves no ghost ticket holding a slot.

use std::process::Command;

use anteroom_tests::{RedisServer, Visitor, eventually, gateway, reached_origin, room, upstream};

const ROOM: &str = "/echo/vaccini";
const CAPACITY: usize = 3;

/// `SAVE` now: a restart loads this snapshot, and loses what came after.
fn snapshot(redis: &RedisServer) {
    let status = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "SAVE"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli runs");
    assert!(status.success(), "SAVE");
}

/// How many of `visitors` reach the origin now.
async fn inside(visitors: &[&Visitor]) -> usize {
    let mut count = 0;
    for visitor in visitors {
        if reached_origin(visitor.get(ROOM).await).await {
            count += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_gone_back_hand_out_no_number_twice_and_keep_capacity_and_order() {
    let mut redis = RedisServer::start().await;
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(CAPACITY as u32))
        .redis(&redis)
        .start()
        .await;
    let mut inside_first = Vec::new();
    for _ in 0..CAPACITY {
        let visitor = gw.visitor();
        assert!(reached_origin(visitor.get(ROOM).await).await);
        inside_first.push(visitor);
    }
    let mut line = Vec::new();
    for expected in 1..=6u64 {
        let visitor = gw.visitor();
        assert!(!reached_origin(visitor.get(ROOM).await).await);
        assert_eq!(visitor.position("vaccini").await, Some(expected));
        line.push(visitor);
    }
    gw.settle().await;
    snapshot(&redis);

    // After the snapshot: one leaves and the first in line goes in; six
    // more arrive. A restart from the snapshot forgets all of it.
    inside_first[0].leave("vaccini").await;
    eventually("the first in line goes in", || async {
        reached_origin(line[0].get(ROOM).await).await
    })
    .await;
    for expected in 6..=11u64 {
        let visitor = gw.visitor();
        assert!(!reached_origin(visitor.get(ROOM).await).await);
        assert_eq!(visitor.position("vaccini").await, Some(expected));
        line.push(visitor);
    }
    gw.settle().await;

    redis.restart().await;
    eventually("ready again", || async { gw.readiness().await == 200 }).await;
    let newcomer = gw.newcomer_in_line("vaccini", ROOM).await;
    // Every place is held once, in the order people came: the newcomer's
    // number is none of theirs, and behind them all.
    let mut positions = Vec::new();
    for visitor in line.iter().skip(1).chain([&newcomer]) {
        positions.push(visitor.position("vaccini").await);
    }
    let expected: Vec<_> = (1..=12u64).map(Some).collect();
    assert_eq!(positions, expected);

    // The room holds its capacity, not more: the two still inside and the
    // one who went in after the snapshot.
    let mut holders: Vec<&Visitor> = inside_first.iter().skip(1).collect();
    holders.push(&line[0]);
    assert_eq!(inside(&holders).await, CAPACITY);
    let everyone: Vec<&Visitor> = inside_first
        .iter()
        .chain(&line)
        .chain([&newcomer])
        .collect();
    assert_eq!(inside(&everyone).await, CAPACITY, "nobody else is inside");

    // Each leave lets in exactly the next in line.
    let mut leaving = holders.clone();
    for (index, next) in line.iter().enumerate().skip(1) {
        leaving.remove(0).leave("vaccini").await;
        eventually("the next in line goes in", || async {
            reached_origin(next.get(ROOM).await).await
        })
        .await;
        leaving.push(next);
        let behind: Vec<&Visitor> = line.iter().skip(index + 1).chain([&newcomer]).collect();
        assert_eq!(inside(&behind).await, 0, "nobody behind goes first");
    }
}

/// An arrival whose script ran but whose reply never came back (Redis
/// frozen past the gateway's timeout) is voided once Redis answers again,
/// so its number does not hold a slot as a no-show for `arrival_seconds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrival_without_a_reply_leaves_no_ghost_ticket() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    let gw = gateway(&up)
        .room(room("vaccini").capacity(1).arrival_seconds(300))
        .redis(&redis)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get(ROOM).await).await);
    gw.settle().await;

    redis.pause();
    // Sent while Redis is frozen: it runs when Redis thaws, after the
    // gateway gave up on it; the visitor never got the ticket.
    let ghost = gw.visitor();
    assert!(!reached_origin(ghost.get(ROOM).await).await);
    assert_eq!(ghost.position("vaccini").await, None, "no ticket");
    redis.resume();
    eventually("ready again", || async { gw.readiness().await == 200 }).await;
    gw.settle().await;

    let next = gw.newcomer_in_line("vaccini", ROOM).await;
    inside.leave("vaccini").await;
    // The ghost's number comes first in line but is passed over: the next
    // real visitor goes in now, not when the ghost's arrival time runs out.
    eventually("the next real visitor goes in", || async {
        reached_origin(next.get(ROOM).await).await
    })
    .await;
}
