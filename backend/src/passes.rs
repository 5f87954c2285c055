//! Evaluation over many rows in passes whose size bounds memory. A pass holds at most
//! [`PASS_BUDGET`] (draw, row) pairs, so scoring the 10,000 MNIST test images under a VAE
//! with 100 draws stays within a few hundred MiB instead of materialising every draw of
//! every row at once (9.3 GiB); totals over passes are summed in f64.

use std::ops::Range;

/// The (draw, row) pairs one evaluation pass holds. A row of the MNIST VAE (784-400-20)
/// costs about 30 KB per draw through its layers, so a pass stays near 128 MiB.
pub const PASS_BUDGET: usize = 4096;

/// Draws per pass when every pass holds all `rows`: at least 1, at most `cap`.
pub fn draws_per_pass(rows: usize, cap: usize) -> usize {
    (PASS_BUDGET / rows.max(1)).clamp(1, cap.max(1))
}

/// Rows per pass when a pass holds `draws` draws of each row: at least 1, at most `rows`.
pub fn rows_per_pass(draws: usize, rows: usize) -> usize {
    (PASS_BUDGET / draws.max(1)).clamp(1, rows.max(1))
}

/// `0..n` cut into consecutive ranges of at most `size` (one empty range when `n` is 0,
/// so that a pass over no rows still runs once).
pub fn ranges(n: usize, size: usize) -> Vec<Range<usize>> {
    let size = size.max(1);
    match n {
        0 => std::iter::once(0..0).collect(),
        _ => (0..n).step_by(size).map(|a| a..(a + size).min(n)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_index_once_in_order() {
        for (n, size) in [(10, 3), (9, 3), (1, 5), (5, 1), (4096, 4096)] {
            let flat: Vec<usize> = ranges(n, size).into_iter().flatten().collect();
            assert_eq!(flat, (0..n).collect::<Vec<_>>(), "n {n} size {size}");
            assert!(ranges(n, size).iter().all(|r| r.len() <= size));
        }
        assert_eq!(ranges(0, 3), vec![0..0]);
    }

    #[test]
    fn a_pass_holds_at_most_the_budget() {
        assert_eq!(draws_per_pass(10_000, 250), 1);
        assert_eq!(draws_per_pass(100, 250), 40);
        assert_eq!(draws_per_pass(1, 250), 250);
        assert_eq!(rows_per_pass(100, 10_000), 40);
        assert_eq!(rows_per_pass(1, 10), 10);
        assert!(rows_per_pass(10_000, 10) >= 1);
    }
}
