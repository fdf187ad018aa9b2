use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;

/// A fixed seed per label, so that every run checks the same draws.
fn seed_of(label: &str) -> Seed {
    Seed::from_bytes(Sha256::digest(label.as_bytes()).into())
}

fn vector_seeds() -> [Seed; 3] {
    let mut counting = [0u8; 32];
    for (index, byte) in counting.iter_mut().enumerate() {
        *byte = index as u8;
    }
    [
        Seed::from_bytes([0; 32]),
        Seed::from_bytes(counting),
        seed_of("anteroom test seed"),
    ]
}

/// The test vectors of docs/draw.md, computed independently by
/// docs/draw.py: (seed index, P, ticket, place). Any change to the
/// algorithm breaks them; such a change is a new `ALGORITHM` version.
const VECTORS: &[(usize, u64, u64, u64)] = &[
    (0, 1, 1, 1),
    (0, 2, 1, 2),
    (0, 2, 2, 1),
    (0, 10, 1, 5),
    (0, 10, 7, 2),
    (0, 10, 10, 4),
    (0, 1000, 1, 515),
    (0, 1000, 500, 633),
    (0, 10_000, 9_999, 3989),
    (0, 1_000_000_000, 1, 342_955_807),
    (0, 1_000_000_000, 123_456_789, 560_289_079),
    (0, u64::MAX, 1 << 63, 17_357_820_887_368_821_361),
    (1, 10, 1, 8),
    (1, 1000, 1, 632),
    (1, 1000, 500, 991),
    (1, 10_000, 9_999, 1492),
    (1, 1_000_000_000, 123_456_789, 636_984_895),
    (1, u64::MAX, 1 << 63, 6_663_012_053_003_380_848),
    (2, 2, 1, 1),
    (2, 10, 7, 1),
    (2, 10, 10, 9),
    (2, 1000, 500, 204),
    (2, 10_000, 9_999, 9171),
    (2, 1_000_000_000, 1, 357_585_037),
    (2, 1_000_000_000, 123_456_789, 408_856_164),
    (2, u64::MAX, 1 << 63, 7_049_966_587_191_780_915),
];

#[test]
fn the_test_vectors_hold_both_ways() {
    let seeds = vector_seeds();
    for &(seed, pre_queue, ticket, expected) in VECTORS {
        let seed = &seeds[seed];
        assert_eq!(
            place(seed, pre_queue, ticket),
            Ok(expected),
            "P {pre_queue} ticket {ticket}"
        );
        assert_eq!(ticket_at(seed, pre_queue, expected), Ok(ticket));
    }
}

#[test]
fn the_commitment_is_the_sha256_of_the_seeds_bytes() {
    let [zero, counting, named] = vector_seeds();
    assert_eq!(
        zero.commitment().to_hex(),
        "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
    );
    assert_eq!(
        counting.commitment().to_hex(),
        "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    );
    assert_eq!(
        named.to_hex(),
        "4cbc371f3c7cfe8933f2d55c80778d1a84f359df137b0092b5c43513fe606196"
    );
    assert_eq!(
        named.commitment().to_string(),
        "17e534be40f2db353188d8b8178bce2de86e6d1ed81e648d442102be88cd5952"
    );
    assert!(named.commitment().is_of(&named));
    assert!(!named.commitment().is_of(&zero));
}

#[test]
fn every_small_draw_is_a_bijection_and_ticket_at_undoes_it() {
    let seed = seed_of("bijection");
    // Every size up to 120, and around the domain edges (a debug build
    // hashes slowly: this is about 3 s).
    let sizes = (1..=120).chain([255, 256, 257, 1023, 1025]);
    for pre_queue in sizes {
        let draw = Draw::new(&seed, pre_queue);
        let mut seen = vec![false; pre_queue as usize];
        for ticket in 1..=pre_queue {
            let place = draw.place(ticket).unwrap();
            assert!((1..=pre_queue).contains(&place), "P {pre_queue}: {place}");
            assert!(
                !seen[place as usize - 1],
                "P {pre_queue}: place {place} twice"
            );
            seen[place as usize - 1] = true;
            assert_eq!(draw.ticket_at(place), Ok(ticket), "P {pre_queue}");
        }
    }
}

#[test]
fn the_domain_is_even_bits_and_below_four_times_p() {
    assert_eq!(half_bits(0), 1);
    assert_eq!(half_bits(1), 1);
    assert_eq!(half_bits(4), 1);
    assert_eq!(half_bits(5), 2);
    assert_eq!(half_bits(16), 2);
    assert_eq!(half_bits(17), 3);
    assert_eq!(half_bits(1_000_000_000), 15);
    assert_eq!(half_bits(1 << 32), 16);
    assert_eq!(half_bits((1 << 32) + 1), 17);
    assert_eq!(half_bits(u64::MAX), 32);
    for pre_queue in (2..5000).chain([(1 << 40) + 1, 1 << 41, u64::MAX]) {
        let domain = 1u128 << (2 * half_bits(pre_queue));
        assert!(domain >= u128::from(pre_queue), "P {pre_queue}");
        assert!(domain < 4 * u128::from(pre_queue), "P {pre_queue}");
    }
}

#[test]
fn outside_the_draw_is_a_typed_error() {
    let seed = seed_of("edges");
    assert_eq!(place(&seed, 0, 1), Err(DrawError::Empty(1)));
    assert_eq!(ticket_at(&seed, 0, 1), Err(DrawError::Empty(1)));
    assert_eq!(
        place(&seed, 5, 0),
        Err(DrawError::NoSuchTicket {
            ticket: 0,
            pre_queue: 5
        })
    );
    let error = place(&seed, 5, 6).unwrap_err();
    assert_eq!(
        error.to_string(),
        "ticket 6 is not in the pre-queue (tickets 1 to 5)"
    );
    assert_eq!(
        ticket_at(&seed, 5, 6),
        Err(DrawError::NoSuchPlace {
            place: 6,
            pre_queue: 5
        })
    );
    assert_eq!(place(&seed, 1, 1), Ok(1));
    assert_eq!(ticket_at(&seed, 1, 1), Ok(1));
}

#[test]
fn different_seeds_give_different_orders() {
    let orders: Vec<Vec<u64>> = (0..20)
        .map(|index| {
            let draw = Draw::new(&seed_of(&format!("seed {index}")), 100);
            (1..=100)
                .map(|ticket| draw.place(ticket).unwrap())
                .collect()
        })
        .collect();
    for (index, order) in orders.iter().enumerate() {
        for other in &orders[index + 1..] {
            assert_ne!(order, other);
        }
    }
    // And the same seed over another P is another order, not a prefix.
    let seed = seed_of("seed 0");
    let longer: Vec<u64> = (1..=100).map(|t| place(&seed, 101, t).unwrap()).collect();
    assert_ne!(orders[0], longer);
}

/// |Kendall tau| between ticket number (arrival order) and place, over
/// P = 10,000: the issue's bar for "arriving at 11:00 or at 11:59 gives the
/// same chance". A random order has tau ≈ 0 ± 0.0067, so 0.05 is 7 sigma.
#[test]
fn the_draw_is_independent_of_arrival_order() {
    const P: u64 = 10_000;
    for label in ["tau 1", "tau 2", "tau 3"] {
        let draw = Draw::new(&seed_of(label), P);
        let mut places: Vec<u64> = (1..=P).map(|ticket| draw.place(ticket).unwrap()).collect();
        let tau = kendall_tau_against_identity(&mut places);
        assert!(tau.abs() < 0.05, "seed {label:?}: tau {tau}");
    }
    // The measure itself: the identity is 1, the reverse −1.
    assert_eq!(
        kendall_tau_against_identity(&mut (1..=100).collect::<Vec<u64>>()),
        1.0
    );
    assert_eq!(
        kendall_tau_against_identity(&mut (1..=100).rev().collect::<Vec<u64>>()),
        -1.0
    );
}

/// Arriving first gives no edge: over 2,000 seeds, ticket 1 of a
/// pre-queue of 10 lands on each place about 200 times (sigma ≈ 13.4).
#[test]
fn the_first_ticket_lands_anywhere_alike() {
    let mut counts = [0u32; 10];
    for index in 0..2000 {
        let place = place(&seed_of(&format!("first {index}")), 10, 1).unwrap();
        counts[place as usize - 1] += 1;
    }
    for (place, count) in counts.iter().enumerate() {
        assert!(
            (140..=260).contains(count),
            "place {}: {count} of 2000",
            place + 1
        );
    }
}

/// Kendall tau between positions `1..=n` and `values` (distinct): from the
/// number of inversions, counted by merge sort in O(n log n).
fn kendall_tau_against_identity(values: &mut [u64]) -> f64 {
    let n = values.len() as f64;
    let pairs = n * (n - 1.0) / 2.0;
    let inversions = count_inversions(values) as f64;
    (pairs - 2.0 * inversions) / pairs
}

fn count_inversions(values: &mut [u64]) -> u64 {
    if values.len() < 2 {
        return 0;
    }
    let middle = values.len() / 2;
    let mut inversions =
        count_inversions(&mut values[..middle]) + count_inversions(&mut values[middle..]);
    let mut merged = Vec::with_capacity(values.len());
    let (left, right) = values.split_at(middle);
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if left[i] <= right[j] {
            merged.push(left[i]);
            i += 1;
        } else {
            // right[j] comes before every remaining element of left.
            inversions += (left.len() - i) as u64;
            merged.push(right[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&left[i..]);
    merged.extend_from_slice(&right[j..]);
    values.copy_from_slice(&merged);
    inversions
}

#[test]
fn count_inversions_counts_them() {
    assert_eq!(count_inversions(&mut [1, 2, 3]), 0);
    assert_eq!(count_inversions(&mut [3, 2, 1]), 3);
    assert_eq!(count_inversions(&mut [2, 4, 1, 3, 5]), 3);
}

#[test]
fn seeds_and_commitments_read_lowercase_hex_only() {
    let seed = seed_of("hex");
    let hex = seed.to_hex();
    assert_eq!(hex.len(), 64);
    assert_eq!(Seed::from_hex(&hex), Ok(seed));
    assert_eq!(
        Seed::from_hex(&hex.to_uppercase().replace(char::is_numeric, "A")),
        Err(HexError::NotLowercaseHex {
            position: 1,
            found: 'A'
        })
    );
    assert_eq!(
        Seed::from_hex(&hex[..63]),
        Err(HexError::Length {
            length: 63,
            expected: 64
        })
    );
    let with_g = format!("{}g", &hex[..63]);
    assert_eq!(
        Seed::from_hex(&with_g).unwrap_err().to_string(),
        "'g' at character 64 is not lowercase hex (0-9, a-f)"
    );
    assert_eq!(
        Commitment::from_hex("abc").unwrap_err().to_string(),
        "3 characters, expected 64 (lowercase hex of 32 bytes)"
    );
    // Multibyte characters are counted as characters, and refused.
    let accented = format!("{}é", &hex[..63]);
    assert!(matches!(
        Seed::from_hex(&accented),
        Err(HexError::NotLowercaseHex { position: 64, .. })
    ));
    assert_eq!(format!("{seed:?}"), "Seed(…)");
    assert_ne!(Seed::generate(), Seed::generate());
}

#[test]
fn a_public_draw_checks_its_seed_against_its_commitment() {
    let seed = seed_of("public");
    let opens_at = Some("2021-02-01T12:00:00+01:00".to_owned());
    let drawn = PublicDraw::drawn("vaccini", &seed, 1234, opens_at.clone());
    let verified = drawn.verify().unwrap();
    assert_eq!(verified.room, "vaccini");
    assert_eq!(verified.draw.pre_queue(), 1234);
    assert_eq!(verified.draw.place(7), place(&seed, 1234, 7));

    let json = serde_json::to_value(PublicDraw::pending("vaccini", &seed, 3, opens_at)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "room": "vaccini",
            "state": "pending",
            "commitment": seed.commitment().to_hex(),
            "seed": null,
            "pre_queue": 3,
            "opens_at": "2021-02-01T12:00:00+01:00",
            "algorithm": ALGORITHM,
        })
    );
    let pending: PublicDraw = serde_json::from_value(json).unwrap();
    assert!(matches!(pending.verify(), Err(VerifyError::Pending { .. })));

    let other = seed_of("another");
    let forged = PublicDraw {
        seed: Some(other.to_hex()),
        ..drawn.clone()
    };
    let error = forged.verify().unwrap_err();
    assert!(error.is_mismatch(), "{error}");
    assert!(error.to_string().contains("DOES NOT MATCH"), "{error}");

    let unknown = PublicDraw {
        algorithm: "anteroom-draw-v2: something else".to_owned(),
        ..drawn.clone()
    };
    assert!(matches!(
        unknown.verify(),
        Err(VerifyError::UnknownAlgorithm { .. })
    ));
    // A mismatch is reported whatever the algorithm says.
    let both = PublicDraw {
        algorithm: "anteroom-draw-v2".to_owned(),
        ..forged
    };
    assert!(both.verify().unwrap_err().is_mismatch());

    let no_seed = PublicDraw {
        seed: None,
        ..drawn.clone()
    };
    assert!(matches!(no_seed.verify(), Err(VerifyError::NoSeed { .. })));
    let bad_seed = PublicDraw {
        seed: Some("xyz".to_owned()),
        ..drawn.clone()
    };
    assert!(matches!(
        bad_seed.verify(),
        Err(VerifyError::BadSeed { .. })
    ));
    let bad_commitment = PublicDraw {
        commitment: "XYZ".to_owned(),
        ..drawn
    };
    assert!(matches!(
        bad_commitment.verify(),
        Err(VerifyError::BadCommitment { .. })
    ));
}

proptest! {
    #[test]
    fn place_and_ticket_at_are_inverses(
        seed in any::<[u8; 32]>(),
        pre_queue in 1..=u64::MAX,
        pick in any::<u64>(),
    ) {
        let draw = Draw::new(&Seed::from_bytes(seed), pre_queue);
        let ticket = pick % pre_queue + 1;
        let place = draw.place(ticket).unwrap();
        prop_assert!((1..=pre_queue).contains(&place));
        prop_assert_eq!(draw.ticket_at(place), Ok(ticket));
        // And the other way round, from the same number as a place.
        let at = draw.ticket_at(ticket).unwrap();
        prop_assert!((1..=pre_queue).contains(&at));
        prop_assert_eq!(draw.place(at), Ok(ticket));
    }

    #[test]
    fn draws_up_to_a_billion_are_inverses(
        seed in any::<[u8; 32]>(),
        pre_queue in 1..=1_000_000_000u64,
        pick in any::<u64>(),
    ) {
        let draw = Draw::new(&Seed::from_bytes(seed), pre_queue);
        let ticket = pick % pre_queue + 1;
        prop_assert_eq!(draw.ticket_at(draw.place(ticket).unwrap()), Ok(ticket));
    }

    #[test]
    fn a_small_draw_is_a_permutation(seed in any::<[u8; 32]>(), pre_queue in 1..=64u64) {
        let draw = Draw::new(&Seed::from_bytes(seed), pre_queue);
        let mut places: Vec<u64> = (1..=pre_queue).map(|ticket| draw.place(ticket).unwrap()).collect();
        places.sort_unstable();
        prop_assert_eq!(places, (1..=pre_queue).collect::<Vec<u64>>());
    }

    #[test]
    fn any_text_is_a_seed_only_if_it_is_64_lowercase_hex_digits(text in "\\PC{0,70}|[0-9a-f]{64}|[0-9a-fA-F]{64}") {
        let is_hex = text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match Seed::from_hex(&text) {
            Ok(seed) => {
                prop_assert!(is_hex);
                prop_assert_eq!(seed.to_hex(), text);
            }
            Err(_) => prop_assert!(!is_hex),
        }
    }

    #[test]
    fn seed_hex_round_trips(seed in any::<[u8; 32]>()) {
        let seed = Seed::from_bytes(seed);
        prop_assert_eq!(Seed::from_hex(&seed.to_hex()), Ok(seed));
        let commitment = seed.commitment();
        prop_assert_eq!(Commitment::from_hex(&commitment.to_hex()), Ok(commitment));
    }
}
