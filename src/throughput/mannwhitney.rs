//! One-sided Mann-Whitney U (Wilcoxon rank-sum) test.
//!
//! statrs 0.18 ships no rank-sum test (only Fisher's exact test in `stats_tests`), so it is
//! here. Throughput repeats are few (3-10), rarely normal, and prone to one slow outlier
//! (a cold cache, a noisy neighbour), which rules out Student's t. The exact null
//! distribution is computed by dynamic programming over doubled mid-ranks, which is exact
//! with ties too (equal medians are common when metrics are rounded); above
//! [`EXACT_MAX_N`] per side the normal approximation with tie and continuity correction is
//! used, where its error is far below any alpha anyone would pick.

use statrs::distribution::{ContinuousCDF, Normal};

/// Largest per-side sample size for the exact test. The DP costs O(N * n1 * N^2), about 10^7
/// steps at 40 + 40, and the normal approximation is excellent well before that.
pub const EXACT_MAX_N: usize = 40;

/// Which way the alternative hypothesis points, for sample `x` against sample `y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// `x` tends to be smaller than `y`.
    Less,
    /// `x` tends to be larger than `y`.
    Greater,
}

/// Result of [`mann_whitney_u`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MwResult {
    /// U statistic of `x`: the number of (x, y) pairs with x > y, ties counting one half.
    pub u: f64,
    pub p: f64,
    pub exact: bool,
}

/// One-sided test of `x` against `y`; `None` if either side is empty. Non-finite values must
/// have been removed by the caller.
pub fn mann_whitney_u(x: &[f64], y: &[f64], alt: Alternative) -> Option<MwResult> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let ranks2 = doubled_midranks(x, y);
    let r1: u64 = ranks2[..n1].iter().sum();
    // U = R1 - n1(n1+1)/2, and R1 = r1 / 2 with doubled ranks.
    let u = r1 as f64 / 2.0 - (n1 * (n1 + 1)) as f64 / 2.0;
    if n1 <= EXACT_MAX_N && n2 <= EXACT_MAX_N {
        let p = exact_p(&ranks2, n1, r1, alt);
        Some(MwResult { u, p, exact: true })
    } else {
        Some(MwResult {
            u,
            p: normal_p(&ranks2, n1, n2, u, alt),
            exact: false,
        })
    }
}

/// The smallest p-value the exact test can give with these sizes: every x beyond every y,
/// one arrangement out of C(n1 + n2, n1). With 3 + 3 repeats it is 1/20 = 0.05.
pub fn min_achievable_p(n1: usize, n2: usize) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (k, n) = (n1.min(n2), n1 + n2);
    let mut c = 1.0f64;
    for i in 0..k {
        c = c * (n - i) as f64 / (i + 1) as f64;
    }
    1.0 / c
}

/// Mid-ranks of the pooled sample (x first, then y), doubled so ties stay integers.
fn doubled_midranks(x: &[f64], y: &[f64]) -> Vec<u64> {
    let pooled: Vec<f64> = x.iter().chain(y).copied().collect();
    let mut order: Vec<usize> = (0..pooled.len()).collect();
    order.sort_by(|&a, &b| pooled[a].total_cmp(&pooled[b]));
    let mut ranks = vec![0u64; pooled.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && pooled[order[j + 1]] == pooled[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean; doubled: (i+1) + (j+1).
        for &k in &order[i..=j] {
            ranks[k] = (i + j + 2) as u64;
        }
        i = j + 1;
    }
    ranks
}

/// P(R1 <= r1) or P(R1 >= r1) under the null that all C(N, n1) assignments of the pooled
/// ranks to x are equally likely. `ways[k][s]`: share of assignments picking k of the ranks
/// seen so far with doubled sum s, kept as probabilities so nothing overflows.
fn exact_p(ranks2: &[u64], n1: usize, r1: u64, alt: Alternative) -> f64 {
    let n = ranks2.len();
    let max_sum: u64 = ranks2.iter().sum();
    let width = max_sum as usize + 1;
    let mut ways = vec![vec![0.0f64; width]; n1 + 1];
    ways[0][0] = 1.0;
    for (i, &r) in ranks2.iter().enumerate() {
        // Counts in f64: exact up to 2^53 (C(50, 25)), relative error ~1e-16 beyond.
        // k runs downwards so row k still holds the counts without item i when read.
        for k in (0..n1.min(i + 1)).rev() {
            let (lo, hi) = ways.split_at_mut(k + 1);
            let (from, to) = (&lo[k], &mut hi[0]);
            for s in (0..width - r as usize).rev() {
                if from[s] != 0.0 {
                    to[s + r as usize] += from[s];
                }
            }
        }
    }
    let total: f64 = ways[n1].iter().sum();
    debug_assert!(total > 0.0 && n >= n1);
    let tail: f64 = match alt {
        Alternative::Less => ways[n1][..=r1 as usize].iter().sum(),
        Alternative::Greater => ways[n1][r1 as usize..].iter().sum(),
    };
    (tail / total).clamp(0.0, 1.0)
}

fn normal_p(ranks2: &[u64], n1: usize, n2: usize, u: f64, alt: Alternative) -> f64 {
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let n = n1f + n2f;
    let mean = n1f * n2f / 2.0;
    // Tie correction: sum of (t^3 - t) over groups of tied ranks.
    let mut sorted = ranks2.to_vec();
    sorted.sort_unstable();
    let mut ties = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].iter().take_while(|&&r| r == sorted[i]).count();
        ties += (j * j * j - j) as f64;
        i += j;
    }
    let var = n1f * n2f / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return 1.0; // every value tied: no evidence either way
    }
    let sd = var.sqrt();
    let z = match alt {
        Alternative::Less => (u - mean + 0.5) / sd,
        Alternative::Greater => -(u - mean - 0.5) / sd,
    };
    Normal::standard().cdf(z).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over all subsets, independent of the DP.
    fn enumerate_p(x: &[f64], y: &[f64], alt: Alternative) -> f64 {
        let ranks = doubled_midranks(x, y);
        let n1 = x.len();
        let r1: u64 = ranks[..n1].iter().sum();
        let n = ranks.len();
        let (mut hit, mut all) = (0u64, 0u64);
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize != n1 {
                continue;
            }
            let s: u64 = (0..n)
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| ranks[i])
                .sum();
            all += 1;
            let extreme = match alt {
                Alternative::Less => s <= r1,
                Alternative::Greater => s >= r1,
            };
            hit += extreme as u64;
        }
        hit as f64 / all as f64
    }

    #[test]
    fn textbook_values() {
        // Complete separation, 3 vs 3: 1 / C(6,3).
        let r = mann_whitney_u(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], Alternative::Less).unwrap();
        assert!((r.p - 0.05).abs() < 1e-12, "{r:?}");
        assert_eq!(r.u, 0.0);
        let r = mann_whitney_u(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], Alternative::Greater).unwrap();
        assert!((r.p - 1.0).abs() < 1e-12);
        assert!((min_achievable_p(3, 3) - 0.05).abs() < 1e-12);
        assert!((min_achievable_p(5, 5) - 1.0 / 252.0).abs() < 1e-15);
        assert!((min_achievable_p(2, 2) - 1.0 / 6.0).abs() < 1e-12);
        // Identical samples: nothing to see.
        let r = mann_whitney_u(&[1.0, 1.0], &[1.0, 1.0], Alternative::Less).unwrap();
        assert_eq!(r.p, 1.0);
    }

    #[test]
    fn dp_matches_brute_force_with_and_without_ties() {
        let cases: [(&[f64], &[f64]); 4] = [
            (&[1.0, 4.0, 2.0, 8.0, 3.0], &[5.0, 6.0, 7.0, 9.0, 10.0]),
            (&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 3.0, 4.0, 5.0]),
            (
                &[0.9, 1.0, 1.0, 1.1, 1.2, 0.95],
                &[1.0, 1.05, 1.3, 1.2, 1.25],
            ),
            (&[7.0], &[1.0, 2.0, 3.0]),
        ];
        for (x, y) in cases {
            for alt in [Alternative::Less, Alternative::Greater] {
                let got = mann_whitney_u(x, y, alt).unwrap().p;
                let want = enumerate_p(x, y, alt);
                assert!(
                    (got - want).abs() < 1e-12,
                    "{x:?} {y:?} {alt:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn normal_approximation_agrees_with_exact_for_large_samples() {
        let x: Vec<f64> = (0..40).map(|i| (i * 37 % 41) as f64).collect();
        let y: Vec<f64> = (0..40).map(|i| (i * 13 % 43) as f64 + 4.5).collect();
        let exact = mann_whitney_u(&x, &y, Alternative::Less).unwrap();
        assert!(exact.exact);
        let ranks = doubled_midranks(&x, &y);
        let approx = normal_p(&ranks, 40, 40, exact.u, Alternative::Less);
        assert!((exact.p - approx).abs() < 0.005, "{} vs {approx}", exact.p);
        let big: Vec<f64> = (0..60).map(f64::from).collect();
        assert!(!mann_whitney_u(&big, &big, Alternative::Less).unwrap().exact);
    }
}
