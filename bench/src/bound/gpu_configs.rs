//! Pricing of GPU configurations for the column generation of `lp`: which multiset of per-GPU pieces
//! (shares, and 1000 for a GPU a whole-GPU pod takes) one GPU can hold, valued by the LP's prices.

use mlsched::core::GPU_MILLI;

/// The best configuration for piece prices `values[i]` of sizes `sizes[i]` (milli, 1..=1000): an unbounded
/// knapsack over one GPU's 1000 milli, solved exactly by dynamic programming. Returns its value and how
/// many of each piece it holds.
pub fn best_configuration(sizes: &[i64], values: &[f64]) -> (f64, Vec<u32>) {
    let capacity = GPU_MILLI as usize;
    // best[c]: the most value in c milli; last[c]: the piece that got it there.
    let mut best = vec![0.0f64; capacity + 1];
    let mut last: Vec<Option<usize>> = vec![None; capacity + 1];
    for c in 1..=capacity {
        best[c] = best[c - 1];
        last[c] = None;
        for (i, (&size, &value)) in sizes.iter().zip(values).enumerate() {
            let size = size as usize;
            if value > 0.0 && size > 0 && size <= c && best[c - size] + value > best[c] {
                best[c] = best[c - size] + value;
                last[c] = Some(i);
            }
        }
    }
    let mut counts = vec![0u32; sizes.len()];
    let mut c = capacity;
    while c > 0 {
        match last[c] {
            Some(i) => {
                counts[i] += 1;
                c -= sizes[i] as usize;
            }
            None => c -= 1,
        }
    }
    (best[capacity], counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_most_valuable_fill_of_one_gpu() {
        // 810 + 160 beats two 470s and six 160s; at equal prices three 320s beat one of anything else.
        let sizes = [810, 470, 160, 320];
        let (v, c) = best_configuration(&sizes, &[1.0, 0.4, 0.15, 0.1]);
        assert!((v - 1.15).abs() < 1e-12, "{v}");
        assert_eq!(c, vec![1, 0, 1, 0]);
        let (v, c) = best_configuration(&sizes, &[0.3, 0.3, 0.0, 0.3]);
        assert!((v - 0.9).abs() < 1e-12, "{v}");
        assert_eq!(c[3], 3);
        assert_eq!(best_configuration(&[1000], &[1.0]).1, vec![1]);
        assert_eq!(best_configuration(&[600], &[0.0]).0, 0.0);
    }
}
