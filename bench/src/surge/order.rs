//! The order checks of a report: Kendall's tau-b between two orders, and
//! the count of visitors let in while someone ahead of them in line was
//! still told to wait.

/// A visitor's place in some line, as the order checks see it: where they
/// should be (`key`, lower goes first), when the site's page first reached
/// them, and when they last sent a request that was answered "wait"
/// (milliseconds after the run's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InLine<K> {
    pub key: K,
    pub admitted_ms: Option<u64>,
    pub last_waiting_ms: Option<u64>,
}

/// Visitors let in although someone with a lower key was still told to
/// wait by a request sent after the later one's admission had arrived.
///
/// Each one counted is a real violation of the line's order, whatever the
/// polling intervals: the gateway decided "wait" for the earlier key after
/// it had decided "in" for the later one (several let in by one step, or
/// an earlier visitor who polls less often, are not counted, since the
/// earlier one's next "wait" would have to come after the later one was
/// in). Visitors with equal keys are not compared with each other.
pub fn let_in_ahead<K: Ord + Copy>(line: &mut [InLine<K>]) -> u64 {
    line.sort_unstable_by_key(|visitor| visitor.key);
    // Sweep in order of key, keeping the latest "wait" told to any lower key.
    let mut latest_wait_before: Option<u64> = None;
    let mut let_in_ahead = 0;
    for group in line.chunk_by(|a, b| a.key == b.key) {
        for visitor in group {
            if let (Some(admitted), Some(latest)) = (visitor.admitted_ms, latest_wait_before)
                && admitted < latest
            {
                let_in_ahead += 1;
            }
        }
        let group_latest = group
            .iter()
            .filter_map(|visitor| visitor.last_waiting_ms)
            .max();
        latest_wait_before = latest_wait_before.max(group_latest);
    }
    let_in_ahead
}

/// Kendall's tau-b between `x` and `y` (pairs `(x[i], y[i])`), with ties
/// in either: `(concordant − discordant) / √((n₀ − n₁)(n₀ − n₂))`, where
/// `n₀` counts all pairs and `n₁`, `n₂` the pairs tied in `x`, in `y`.
/// `None` with fewer than two pairs, when either side is all one value, or
/// when the lengths differ.
///
/// Knight's algorithm, O(n log n): sort by `(x, y)`, then count the
/// discordant pairs as the swaps of a merge sort by `y` (pairs tied in `x`
/// are already in `y` order, so they make no swaps), and the ties from the
/// runs of equal values of each sort.
pub fn tau_b<T: Ord + Copy>(x: &[T], y: &[T]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let mut pairs: Vec<(T, T)> = x.iter().copied().zip(y.iter().copied()).collect();
    pairs.sort_unstable();
    let all = pairs_among(pairs.len() as u64);
    let tied_x = tied_pairs(&pairs, |a, b| a.0 == b.0);
    let tied_both = tied_pairs(&pairs, |a, b| a == b);
    let mut ys: Vec<T> = pairs.iter().map(|pair| pair.1).collect();
    let discordant = merge_sort_counting_swaps(&mut ys);
    let tied_y = tied_pairs(&ys, |a, b| a == b);
    let denominator = ((all - tied_x) as f64 * (all - tied_y) as f64).sqrt();
    if denominator == 0.0 {
        return None;
    }
    // concordant − discordant = n₀ − n₁ − n₂ + n₃ − 2·discordant, with n₃
    // the pairs tied in both (counted in n₁ and in n₂).
    let difference =
        all as i128 - tied_x as i128 - tied_y as i128 + tied_both as i128 - 2 * discordant as i128;
    Some(difference as f64 / denominator)
}

/// `n (n − 1) / 2`.
fn pairs_among(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Pairs within runs of neighbours that `same` says are equal (in a
/// sorted slice: the pairs tied in what `same` compares).
fn tied_pairs<T>(sorted: &[T], same: impl Fn(&T, &T) -> bool) -> u64 {
    sorted
        .chunk_by(same)
        .map(|run| pairs_among(run.len() as u64))
        .sum()
}

/// Sorts `values` (stable, bottom-up merge sort) and returns the number of
/// inversions: pairs `i < j` with `values[i] > values[j]`.
fn merge_sort_counting_swaps<T: Ord + Copy>(values: &mut Vec<T>) -> u64 {
    let n = values.len();
    let mut from = std::mem::take(values);
    let mut into = from.clone();
    let mut swaps = 0u64;
    let mut width = 1;
    while width < n {
        for start in (0..n).step_by(2 * width) {
            let middle = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut left, mut right, mut out) = (start, middle, start);
            while left < middle && right < end {
                if from[right] < from[left] {
                    // Every value left in the left half is greater.
                    swaps += (middle - left) as u64;
                    into[out] = from[right];
                    right += 1;
                } else {
                    into[out] = from[left];
                    left += 1;
                }
                out += 1;
            }
            into[out..out + middle - left].copy_from_slice(&from[left..middle]);
            out += middle - left;
            into[out..out + end - right].copy_from_slice(&from[right..end]);
        }
        std::mem::swap(&mut from, &mut into);
        width *= 2;
    }
    *values = from;
    swaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, pair by pair: O(n²).
    fn tau_b_by_pairs(x: &[u64], y: &[u64]) -> Option<f64> {
        let (mut concordant, mut discordant, mut tied_x, mut tied_y) = (0i64, 0i64, 0i64, 0i64);
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                let dx = x[i].cmp(&x[j]);
                let dy = y[i].cmp(&y[j]);
                match (dx.is_eq(), dy.is_eq()) {
                    (true, true) => {}
                    (true, false) => tied_x += 1,
                    (false, true) => tied_y += 1,
                    (false, false) if dx == dy => concordant += 1,
                    (false, false) => discordant += 1,
                }
            }
        }
        let denominator =
            (((concordant + discordant + tied_x) * (concordant + discordant + tied_y)) as f64)
                .sqrt();
        (denominator > 0.0).then(|| (concordant - discordant) as f64 / denominator)
    }

    #[test]
    fn a_small_case_computed_by_hand() {
        // x: 1 2 2 3 4, y: 1 3 2 2 5. The ten pairs (i, j):
        // (1,2) C  (1,3) C  (1,4) C  (1,5) C
        // (2,3) tied in x   (2,4) D (x 2 < 3, y 3 > 2)   (2,5) C
        // (3,4) tied in y   (3,5) C
        // (4,5) C
        // C = 7, D = 1, one tie in x, one in y:
        // tau-b = (7 − 1) / √((7 + 1 + 1)(7 + 1 + 1)) = 6 / 9.
        let x = [1u64, 2, 2, 3, 4];
        let y = [1u64, 3, 2, 2, 5];
        let tau = tau_b(&x, &y).unwrap();
        assert!((tau - 6.0 / 9.0).abs() < 1e-12, "{tau}");
        assert_eq!(tau_b_by_pairs(&x, &y), Some(tau));
    }

    #[test]
    fn extremes_and_degenerate_inputs() {
        let up: Vec<u64> = (0..1000).collect();
        let down: Vec<u64> = (0..1000).rev().collect();
        assert_eq!(tau_b(&up, &up), Some(1.0));
        assert_eq!(tau_b(&up, &down), Some(-1.0));
        assert_eq!(tau_b(&[1u64], &[1]), None);
        assert_eq!(tau_b(&[1u64, 2], &[1]), None);
        // One side all the same: no order to compare.
        assert_eq!(tau_b(&[1u64, 2, 3], &[7, 7, 7]), None);
    }

    #[test]
    fn inversions_are_counted_while_sorting() {
        let mut values = vec![3u64, 1, 2, 5, 4, 4, 0];
        // 3>1, 3>2, 3>0, 1>0, 2>0, 5>4, 5>4, 5>0, 4>0, 4>0.
        assert_eq!(merge_sort_counting_swaps(&mut values), 10);
        assert_eq!(values, vec![0, 1, 2, 3, 4, 4, 5]);
    }

    proptest! {
        #[test]
        fn agrees_with_the_definition_pair_by_pair(
            pairs in proptest::collection::vec((0u64..8, 0u64..8), 0..120)
        ) {
            let (x, y): (Vec<u64>, Vec<u64>) = pairs.into_iter().unzip();
            let fast = tau_b(&x, &y);
            let slow = tau_b_by_pairs(&x, &y);
            match (fast, slow) {
                (Some(fast), Some(slow)) => prop_assert!((fast - slow).abs() < 1e-12, "{fast} {slow}"),
                (fast, slow) => prop_assert_eq!(fast, slow),
            }
        }
    }

    fn in_line(key: u64, admitted: u64, last_wait: u64) -> InLine<u64> {
        InLine {
            key,
            admitted_ms: Some(admitted),
            last_waiting_ms: Some(last_wait),
        }
    }

    #[test]
    fn let_in_ahead_is_a_later_key_in_while_an_earlier_one_still_waits() {
        // In order: each key's last "wait" comes before the next is let in.
        let mut fair = [
            in_line(1, 100, 90),
            in_line(2, 200, 150),
            in_line(3, 300, 250),
        ];
        assert_eq!(let_in_ahead(&mut fair), 0);
        // Key 3 let in at 150, while key 1 was told to wait at 180.
        let mut unfair = [
            in_line(1, 200, 180),
            in_line(2, 250, 240),
            in_line(3, 150, 100),
        ];
        assert_eq!(let_in_ahead(&mut unfair), 1);
        // Equal keys are one rank: neither is ahead of the other.
        let mut ranks = [
            in_line(0, 500, 400),
            in_line(0, 100, 50),
            in_line(1, 450, 300),
        ];
        assert_eq!(let_in_ahead(&mut ranks), 0);
        let mut ranks = [
            in_line(0, 500, 400),
            in_line(0, 100, 50),
            in_line(1, 350, 300),
        ];
        assert_eq!(let_in_ahead(&mut ranks), 1);
    }
}
