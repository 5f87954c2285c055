//! Scores of a classifier's predictive class probabilities against the true labels:
//! accuracy, mean negative log-likelihood, and the expected calibration error (Guo et al.
//! 2017: 15 equal-width confidence bins, every prediction counted in the bin of its top
//! probability, Σ_b |accuracy_b − confidence_b| · n_b / n).

use std::fmt;

/// The three scores of [`classification`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classification {
    /// The share of rows whose most probable class is the label.
    pub accuracy: f64,
    /// The mean of −log p(label) (each probability floored at 1e-12).
    pub nll: f64,
    /// The expected calibration error over [`ECE_BINS`] bins.
    pub ece: f64,
}

/// Confidence bins of the expected calibration error.
pub const ECE_BINS: usize = 15;

/// Probabilities and labels that cannot be scored together.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsError {
    /// Not one probability vector per label.
    Lengths {
        /// Rows of probabilities.
        probs: usize,
        /// Labels.
        labels: usize,
    },
    /// No rows to score.
    Empty,
    /// A label that is not a class index of its row's probabilities.
    Label {
        /// The row.
        row: usize,
        /// Its label.
        label: f64,
        /// The classes of its probability vector.
        classes: usize,
    },
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsError::Lengths { probs, labels } => write!(
                f,
                "{probs} rows of class probabilities but {labels} labels: one per row is needed"
            ),
            MetricsError::Empty => write!(f, "no rows to score"),
            MetricsError::Label {
                row,
                label,
                classes,
            } => write!(
                f,
                "label {label} of row {row} is not a class index in 0..{classes}"
            ),
        }
    }
}

impl std::error::Error for MetricsError {}

/// Accuracy, NLL and ECE of `probs` (one vector of class probabilities per row, as
/// [`crate::SitePredictive::Classes`] gives them) against `labels` (class indices, as the
/// data holds them: whole numbers in `0..K`).
pub fn classification(probs: &[Vec<f64>], labels: &[f64]) -> Result<Classification, MetricsError> {
    if probs.len() != labels.len() {
        return Err(MetricsError::Lengths {
            probs: probs.len(),
            labels: labels.len(),
        });
    }
    if probs.is_empty() {
        return Err(MetricsError::Empty);
    }
    let mut bins = [(0usize, 0.0f64, 0.0f64); ECE_BINS]; // (count, Σ confidence, Σ hits)
    let (mut correct, mut nll) = (0usize, 0.0f64);
    for (row, (p, &label)) in probs.iter().zip(labels).enumerate() {
        let class = label as usize;
        if label < 0.0 || label.fract() != 0.0 || class >= p.len() {
            return Err(MetricsError::Label {
                row,
                label,
                classes: p.len(),
            });
        }
        // the first of equal top probabilities, as an argmax does
        let (top, confidence) =
            p.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (k, &v)| {
                    if v > best.1 {
                        (k, v)
                    } else {
                        best
                    }
                });
        let hit = top == class;
        correct += usize::from(hit);
        nll -= p[class].max(1e-12).ln();
        // a confidence of exactly 1 falls in the last bin
        let b = ((confidence * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        bins[b].0 += 1;
        bins[b].1 += confidence;
        bins[b].2 += f64::from(u8::from(hit));
    }
    let n = probs.len() as f64;
    let ece = bins
        .iter()
        .map(|&(_, confidence, hits)| (hits - confidence).abs() / n)
        .sum();
    Ok(Classification {
        accuracy: correct as f64 / n,
        nll: nll / n,
        ece,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four rows worked by hand. Top probabilities 0.9 (right), 0.6 (wrong), 0.55 (right),
    /// 1.0 (right): bins ⌊15 c⌋ = 13, 9, 8 and 14. ECE = (|1 − 0.9| + |0 − 0.6| +
    /// |1 − 0.55| + |1 − 1|)/4 = 1.15/4; NLL = −(ln 0.9 + ln 0.3 + ln 0.55 + ln 1)/4.
    #[test]
    fn scores_match_a_hand_computation() {
        let probs = vec![
            vec![0.9, 0.1, 0.0],
            vec![0.6, 0.3, 0.1],
            vec![0.2, 0.55, 0.25],
            vec![0.0, 0.0, 1.0],
        ];
        let s = classification(&probs, &[0.0, 1.0, 1.0, 2.0]).unwrap();
        assert!((s.accuracy - 0.75).abs() < 1e-12);
        let nll = -(0.9f64.ln() + 0.3f64.ln() + 0.55f64.ln()) / 4.0;
        assert!((s.nll - nll).abs() < 1e-12, "{} vs {nll}", s.nll);
        assert!((s.ece - 1.15 / 4.0).abs() < 1e-12, "{}", s.ece);
    }

    /// Rows sharing a bin are pooled before the difference is taken: 0.7 right and 0.7
    /// wrong in one bin give |1 − 1.4|/2 = 0.2, not (0.3 + 0.7)/2.
    #[test]
    fn a_bin_pools_its_rows() {
        let probs = vec![vec![0.7, 0.3], vec![0.7, 0.3]];
        let s = classification(&probs, &[0.0, 1.0]).unwrap();
        assert!((s.ece - 0.2).abs() < 1e-12, "{}", s.ece);
    }

    #[test]
    fn bad_input_is_named() {
        let p = vec![vec![0.5, 0.5]];
        assert_eq!(
            classification(&p, &[0.0, 1.0]),
            Err(MetricsError::Lengths {
                probs: 1,
                labels: 2
            })
        );
        assert_eq!(classification(&[], &[]), Err(MetricsError::Empty));
        for bad in [2.0, -1.0, 0.5] {
            assert!(matches!(
                classification(&p, &[bad]),
                Err(MetricsError::Label {
                    row: 0,
                    classes: 2,
                    ..
                })
            ));
        }
    }
}
