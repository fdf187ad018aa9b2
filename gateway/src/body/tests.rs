use std::net::{IpAddr, Ipv4Addr};

use http_body_util::Channel;

use super::*;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

const PACE: Pace = Pace {
    timeout: Duration::from_secs(10),
    min_bytes_per_second: 1000,
};

fn budget(bytes: u64, max_body_bytes: u64) -> Budget {
    Budget::new(bytes, max_body_bytes)
}

/// Reads `body` to its end, or to its first error.
async fn drain<B: HttpBody<Data = Bytes, Error = BodyError>>(body: B) -> Result<u64, BodyError> {
    let mut body = std::pin::pin!(body);
    let mut read = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            read += data.len() as u64;
        }
    }
    Ok(read)
}

#[tokio::test(start_paused = true)]
async fn a_body_that_falls_silent_is_cut_off_after_the_timeout() {
    let (mut sender, body) = Channel::<Bytes, BoxError>::new(4);
    let reading = tokio::spawn(drain(Paced::new(body, PACE)));
    sender.send_data(Bytes::from_static(b"x")).await.unwrap();
    let started = Instant::now();
    let result = reading.await.unwrap();
    assert!(
        matches!(result, Err(BodyError::TooSlow { received: 1, .. })),
        "{result:?}"
    );
    // Silence is measured from the last byte.
    assert_eq!(started.elapsed(), PACE.timeout);
    drop(sender);
}

#[tokio::test(start_paused = true)]
async fn a_byte_now_and_then_does_not_keep_a_body_alive() {
    let (mut sender, body) = Channel::<Bytes, BoxError>::new(4);
    let started = Instant::now();
    let reading = tokio::spawn(drain(Paced::new(body, PACE)));
    let trickle = tokio::spawn(async move {
        // One byte every 5 s: never silent for 10 s, far below 1000 B/s.
        while sender.send_data(Bytes::from_static(b"x")).await.is_ok() {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let result = reading.await.unwrap();
    let Err(BodyError::TooSlow { received, .. }) = result else {
        panic!("{result:?}");
    };
    // The floor allows `timeout` plus a millisecond per byte at 1000 B/s.
    assert!(received <= 3, "received {received}");
    assert!(started.elapsed() < Duration::from_secs(11));
    trickle.abort();
}

#[tokio::test(start_paused = true)]
async fn a_body_above_the_floor_is_read_whole_however_long_it_takes() {
    let (mut sender, body) = Channel::<Bytes, BoxError>::new(4);
    let reading = tokio::spawn(drain(Paced::new(body, PACE)));
    // 2000 B/s for 60 s: twice the floor, and far longer than the timeout.
    for _ in 0..60 {
        sender
            .send_data(Bytes::from(vec![b'x'; 2000]))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(sender);
    assert_eq!(reading.await.unwrap().unwrap(), 120_000);
}

#[tokio::test(start_paused = true)]
async fn a_zero_floor_keeps_only_the_silence_timeout() {
    let pace = Pace {
        min_bytes_per_second: 0,
        ..PACE
    };
    let (mut sender, body) = Channel::<Bytes, BoxError>::new(4);
    let reading = tokio::spawn(drain(Paced::new(body, pace)));
    for _ in 0..10 {
        sender.send_data(Bytes::from_static(b"x")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(9)).await;
    }
    drop(sender);
    assert_eq!(reading.await.unwrap().unwrap(), 10);
}

#[tokio::test]
async fn the_budget_bounds_all_bodies_together_and_each_client_to_its_share() {
    // 1600 bytes in all; a client's share is a sixteenth (100), but at
    // least one body (300).
    let budget = budget(1600, 300);
    let mut first = budget.charge(CLIENT);
    first.add(300).unwrap();
    let mut second = budget.charge(CLIENT);
    assert!(matches!(second.add(1), Err(BodyError::OverClientShare)));
    let mut others: Vec<Charge> = Vec::new();
    for index in 0..4 {
        let mut charge = budget.charge(IpAddr::V4(Ipv4Addr::new(10, 1, 0, index)));
        charge.add(300).unwrap();
        others.push(charge);
    }
    // 1500 held: 100 left for everybody.
    let mut last = budget.charge(OTHER);
    assert!(matches!(last.add(101), Err(BodyError::OverBudget)));
    last.add(100).unwrap();
    assert_eq!(budget.held(), 1600);
    drop(first);
    drop(others);
    drop(last);
    assert_eq!(budget.held(), 0);
    second.add(300).unwrap();
}

#[tokio::test]
async fn a_refused_chunk_leaves_nothing_charged() {
    let budget = budget(1000, 500);
    let mut charge = budget.charge(CLIENT);
    charge.add(400).unwrap();
    assert!(matches!(charge.add(200), Err(BodyError::OverClientShare)));
    assert_eq!(budget.held(), 400);
    drop(charge);
    assert_eq!(budget.held(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_short_body_is_read_whole_before_anything_else() {
    let budget = budget(1 << 20, 1 << 16);
    let (mut sender, body) = Channel::<Bytes, BoxError>::new(4);
    sender
        .send_data(Bytes::from_static(b"hello "))
        .await
        .unwrap();
    sender
        .send_data(Bytes::from_static(b"world"))
        .await
        .unwrap();
    drop(sender);
    let prefix = read_prefix(Paced::new(body, PACE), 1024, 1 << 20, budget.charge(CLIENT))
        .await
        .unwrap();
    let Prefix::Whole(replay) = prefix else {
        panic!("a short body is whole");
    };
    assert_eq!(budget.held(), 11, "held until sent");
    assert_eq!(replay.size_hint().lower(), 11);
    let collected = replay.collect().await.unwrap().to_bytes();
    assert_eq!(&collected[..], b"hello world");
    assert_eq!(budget.held(), 0, "given back once sent");
}

#[tokio::test(start_paused = true)]
async fn a_long_body_goes_on_after_its_prefix_in_order() {
    let budget = budget(1 << 20, 1 << 16);
    let (mut sender, body) = Channel::<Bytes, BoxError>::new(4);
    let sending = tokio::spawn(async move {
        for byte in b'a'..=b'j' {
            sender
                .send_data(Bytes::from(vec![byte; 400]))
                .await
                .unwrap();
        }
    });
    let prefix = read_prefix(Paced::new(body, PACE), 1000, 1 << 20, budget.charge(CLIENT))
        .await
        .unwrap();
    let Prefix::Longer(replay) = prefix else {
        panic!("a long body goes on");
    };
    // Three chunks were needed to pass 1000 bytes.
    assert_eq!(budget.held(), 1200);
    let collected = replay.collect().await.unwrap().to_bytes();
    sending.await.unwrap();
    assert_eq!(collected.len(), 4000);
    let expected: Vec<u8> = (b'a'..=b'j').flat_map(|byte| vec![byte; 400]).collect();
    assert_eq!(&collected[..], &expected[..]);
}

#[tokio::test(start_paused = true)]
async fn a_prefix_that_never_comes_holds_nothing_after_the_timeout() {
    let budget = budget(1 << 20, 1 << 16);
    let (mut sender, body) = Channel::<Bytes, BoxError>::new(4);
    sender.send_data(Bytes::from_static(b"x")).await.unwrap();
    let result = read_prefix(Paced::new(body, PACE), 1000, 1 << 20, budget.charge(CLIENT)).await;
    assert!(matches!(result, Err(BodyError::TooSlow { .. })));
    assert_eq!(budget.held(), 0);
    drop(sender);
}

#[tokio::test]
async fn a_whole_body_over_the_limit_is_refused_as_it_arrives() {
    let budget = budget(1 << 20, 1 << 16);
    let (mut sender, body) = Channel::<Bytes, BoxError>::new(4);
    tokio::spawn(async move {
        for _ in 0..4 {
            if sender.send_data(Bytes::from(vec![0; 100])).await.is_err() {
                break;
            }
        }
    });
    let mut charge = budget.charge(CLIENT);
    let result = read_whole(body, PACE, 250, &mut charge).await;
    assert!(matches!(result, Err(BodyError::TooLarge { limit: 250 })));
}

#[tokio::test]
async fn a_declared_length_is_charged_whole_before_its_bytes_come() {
    let budget = budget(1000, 1000);
    let mut charge = budget.charge(CLIENT);
    let body = http_body_util::Full::new(Bytes::from(vec![1u8; 600]));
    let read = read_whole(body, PACE, 1000, &mut charge).await.unwrap();
    assert_eq!(read.len(), 600);
    assert_eq!(budget.held(), 600, "exactly what was declared");
    // A second one of 600 does not fit beside it.
    let mut second = budget.charge(OTHER);
    let body = http_body_util::Full::new(Bytes::from(vec![1u8; 600]));
    let refused = read_whole(body, PACE, 1000, &mut second).await;
    assert!(matches!(refused, Err(BodyError::OverBudget)), "{refused:?}");
    drop(charge);
    assert_eq!(budget.held(), 0);
}
