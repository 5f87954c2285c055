//! Watching a fit's ELBO: window means, improvements, convergence, and estimates far above
//! anything the fit has seen (a broken estimator, not progress).

use super::options::Convergence;

/// A closed window of steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Window {
    pub mean: f64,
    /// The sd of the ELBO estimates in the window.
    pub sd: f64,
    pub steps: usize,
}

impl Window {
    fn of(values: &[f64]) -> Window {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Window {
            mean,
            sd: var.sqrt(),
            steps: values.len(),
        }
    }

    /// The standard error of the mean.
    fn se(&self) -> f64 {
        self.sd / (self.steps.max(1) as f64).sqrt()
    }
}

/// What closing a window found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A new best window.
    Improved,
    /// No improvement, not yet `patience` windows in a row.
    Waiting,
    /// `patience` windows without an improvement.
    Converged,
}

pub(crate) struct Monitor {
    settings: Convergence,
    window: usize,
    open: Vec<f64>,
    best: Option<Window>,
    last: Option<Window>,
    stalled: usize,
}

impl Monitor {
    pub fn new(settings: Convergence, steps: usize) -> Monitor {
        let window = settings.window_for(steps);
        Monitor {
            settings,
            window,
            open: Vec::with_capacity(window.min(1 << 16)),
            best: None,
            last: None,
            stalled: 0,
        }
    }

    pub fn window(&self) -> usize {
        self.window
    }

    /// Takes one step's ELBO estimate; at the end of a window, the verdict on it.
    pub fn push(&mut self, value: f64) -> Option<Verdict> {
        if !value.is_finite() {
            return None;
        }
        self.open.push(value);
        if self.open.len() < self.window {
            return None;
        }
        let w = Window::of(&self.open);
        self.open.clear();
        self.last = Some(w);
        let improved = match self.best {
            None => true,
            Some(b) => {
                let noise = 2.0 * (w.se().powi(2) + b.se().powi(2)).sqrt();
                let tol = self.settings.tolerance * w.mean.abs();
                w.mean - b.mean > noise.max(tol)
            }
        };
        if improved {
            self.best = Some(w);
            self.stalled = 0;
            return Some(Verdict::Improved);
        }
        self.stalled += 1;
        Some(if self.stalled >= self.settings.patience {
            Verdict::Converged
        } else {
            Verdict::Waiting
        })
    }

    /// Starts counting windows without improvement afresh (after the estimator changes).
    pub fn restart_patience(&mut self) {
        self.stalled = 0;
    }

    /// Is `value` far above every window so far: more than ten times the ELBO's size (plus
    /// ten of its sds) above the best window? No step of a working estimator jumps so far;
    /// a log q computed from garbage does.
    pub fn is_far_above(&self, value: f64) -> bool {
        match self.best {
            Some(b) => value - b.mean > 10.0 * (b.mean.abs() + 10.0 * b.sd + 1.0),
            None => false,
        }
    }

    pub fn best(&self) -> Option<Window> {
        self.best
    }

    /// The last closed window, or the open one when none has closed.
    pub fn last(&self) -> Option<Window> {
        match self.last {
            Some(w) => Some(w),
            None if !self.open.is_empty() => Some(Window::of(&self.open)),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(window: usize) -> Convergence {
        Convergence {
            window,
            ..Convergence::default()
        }
    }

    /// A climbing ELBO keeps improving; once flat with noise it converges after `patience`
    /// windows.
    #[test]
    fn a_flat_noisy_elbo_converges_and_a_climbing_one_does_not() {
        let mut m = Monitor::new(settings(100), 10_000);
        let mut rng = 12345u64;
        let mut noise = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut verdicts = Vec::new();
        for step in 0..2000 {
            // climbs by 50 over the first 1000 steps, then flat
            let trend = -100.0 + 50.0 * (step.min(1000) as f64 / 1000.0);
            if let Some(v) = m.push(trend + noise()) {
                verdicts.push(v);
            }
        }
        assert!(
            verdicts[..10].iter().all(|&v| v == Verdict::Improved),
            "{verdicts:?}"
        );
        assert!(verdicts[10..].contains(&Verdict::Converged), "{verdicts:?}");
        assert!(!m.is_far_above(-49.0));
        assert!(m.is_far_above(1e6));
    }
}
