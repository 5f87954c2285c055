//! L-BFGS (Nocedal & Wright 2006, algorithms 7.4 and 7.5) with a strong-Wolfe line search
//! (algorithms 3.5 and 3.6), in f64: the search for a posterior mode.
//!
//! The objective is the model's negative log joint, evaluated in f32, so its values carry
//! rounding noise of about 10⁻⁷ of their size: the search stops when a line search can no
//! longer find a decrease above that noise ([`Status::Stalled`]), which is where f32 can
//! take it; the Laplace step that follows refines the mode by Newton steps, which rely on
//! gradients only.

/// How the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// The gradient vanished, or the objective stopped changing.
    Converged,
    /// No step along the search direction decreased the objective beyond its noise.
    Stalled,
    /// The iteration limit.
    MaxIterations,
    /// The objective was not finite at the starting point.
    NonFinite,
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub x: Vec<f64>,
    pub f: f64,
    pub status: Status,
}

/// An objective: value and gradient at a point (a non-finite value marks a point outside
/// the objective's domain; the line search steps back from it).
pub(crate) type Objective<'a> = dyn FnMut(&[f64]) -> (f64, Vec<f64>) + 'a;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(x: &[f64], alpha: f64, d: &[f64]) -> Vec<f64> {
    x.iter().zip(d).map(|(x, d)| x + alpha * d).collect()
}

/// Minimises `f` from `x0`.
pub(crate) fn minimize(f: &mut Objective<'_>, x0: Vec<f64>, max_iterations: usize) -> Outcome {
    let memory = 30;
    let (mut fx, mut g) = f(&x0);
    let mut x = x0;
    if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Outcome {
            x,
            f: fx,
            status: Status::NonFinite,
        };
    }
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::new();
    let mut quiet = 0;
    for _ in 0..max_iterations {
        if g.iter().all(|&v| v == 0.0) {
            return Outcome {
                x,
                f: fx,
                status: Status::Converged,
            };
        }
        let d = direction(&g, &history);
        let slope = dot(&g, &d);
        let (d, slope) = if slope < 0.0 {
            (d, slope)
        } else {
            // not a descent direction (curvature information gone bad): steepest descent
            history.clear();
            let d: Vec<f64> = g.iter().map(|v| -v).collect();
            let s = dot(&g, &d);
            (d, s)
        };
        // The first step moves a unit distance; later ones take the quasi-Newton step.
        let alpha0 = if history.is_empty() {
            1.0 / dot(&d, &d).sqrt()
        } else {
            1.0
        };
        let Some((alpha, f_new, g_new)) = line_search(f, &x, fx, &d, slope, alpha0) else {
            return Outcome {
                x,
                f: fx,
                status: Status::Stalled,
            };
        };
        let x_new = axpy(&x, alpha, &d);
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-300 {
            if history.len() == memory {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        let change = (fx - f_new).abs() / fx.abs().max(f_new.abs()).max(1.0);
        quiet = if change < 1e-14 { quiet + 1 } else { 0 };
        x = x_new;
        fx = f_new;
        g = g_new;
        if quiet >= 3 {
            return Outcome {
                x,
                f: fx,
                status: Status::Converged,
            };
        }
    }
    Outcome {
        x,
        f: fx,
        status: Status::MaxIterations,
    }
}

/// −H g by the two-loop recursion over the stored pairs (s, y, 1/sᵀy).
fn direction(
    g: &[f64],
    history: &std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)>,
) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alphas = Vec::with_capacity(history.len());
    for (s, y, rho) in history.iter().rev() {
        let a = rho * dot(s, &q);
        for (q, y) in q.iter_mut().zip(y) {
            *q -= a * y;
        }
        alphas.push(a);
    }
    if let Some((s, y, _)) = history.back() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
        let b = rho * dot(y, &q);
        for (q, s) in q.iter_mut().zip(s) {
            *q += s * (a - b);
        }
    }
    q.iter().map(|v| -v).collect()
}

/// A point on the search line: step length, value, slope along d, gradient (none at 0).
struct LinePoint {
    alpha: f64,
    f: f64,
    slope: f64,
    g: Option<Vec<f64>>,
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;

/// A step length satisfying the strong Wolfe conditions along `d` (c₁ = 10⁻⁴, c₂ = 0.9),
/// with the value and gradient there; `None` when no step decreases the objective.
fn line_search(
    f: &mut Objective<'_>,
    x: &[f64],
    f0: f64,
    d: &[f64],
    slope0: f64,
    alpha0: f64,
) -> Option<(f64, f64, Vec<f64>)> {
    let mut eval = |alpha: f64| {
        let (v, g) = f(&axpy(x, alpha, d));
        let ok = v.is_finite() && g.iter().all(|g| g.is_finite());
        LinePoint {
            alpha,
            f: if ok { v } else { f64::INFINITY },
            slope: if ok { dot(&g, d) } else { f64::NAN },
            g: Some(g),
        }
    };
    let mut prev = LinePoint {
        alpha: 0.0,
        f: f0,
        slope: slope0,
        g: None,
    };
    let mut alpha = alpha0;
    // Grow the step until it brackets an acceptable one (algorithm 3.5).
    for i in 0..60 {
        let p = eval(alpha);
        if !p.f.is_finite() || p.f > f0 + C1 * alpha * slope0 || (i > 0 && p.f >= prev.f) {
            return zoom(&mut eval, prev, alpha, (f0, slope0));
        }
        if p.slope.abs() <= -C2 * slope0 {
            return Some((p.alpha, p.f, p.g.expect("evaluated")));
        }
        if p.slope >= 0.0 {
            let hi = prev.alpha;
            return zoom(&mut eval, p, hi, (f0, slope0));
        }
        prev = p;
        alpha *= 4.0;
    }
    accept(prev, f0)
}

/// Algorithm 3.6 between `lo` (the better end) and `hi`, by bisection (robust where the
/// values are noisy); the best decrease found when the interval collapses.
fn zoom(
    eval: &mut dyn FnMut(f64) -> LinePoint,
    mut lo: LinePoint,
    mut hi: f64,
    (f0, slope0): (f64, f64),
) -> Option<(f64, f64, Vec<f64>)> {
    for _ in 0..60 {
        let p = eval(0.5 * (lo.alpha + hi));
        if !p.f.is_finite() || p.f > f0 + C1 * p.alpha * slope0 || p.f >= lo.f {
            hi = p.alpha;
        } else {
            if p.slope.abs() <= -C2 * slope0 {
                return Some((p.alpha, p.f, p.g.expect("evaluated")));
            }
            if p.slope * (hi - lo.alpha) >= 0.0 {
                hi = lo.alpha;
            }
            lo = p;
        }
        if (hi - lo.alpha).abs() <= 1e-14 * hi.abs().max(lo.alpha.abs()) {
            break;
        }
    }
    accept(lo, f0)
}

/// A point that decreased the objective, though not by the Wolfe conditions.
fn accept(p: LinePoint, f0: f64) -> Option<(f64, f64, Vec<f64>)> {
    match p.g {
        Some(g) if p.alpha > 0.0 && p.f < f0 => Some((p.alpha, p.f, g)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's valley and a badly scaled quadratic reach their minima.
    #[test]
    fn finds_the_minimum_of_hard_functions() {
        let mut rosen = |x: &[f64]| {
            let (a, b) = (x[0], x[1]);
            let v = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
            let g = vec![
                -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
                200.0 * (b - a * a),
            ];
            (v, g)
        };
        let out = minimize(&mut rosen, vec![-1.2, 1.0], 500);
        assert!(
            (out.x[0] - 1.0).abs() < 1e-5 && (out.x[1] - 1.0).abs() < 1e-5,
            "{out:?}"
        );
        // scales 10⁻³ to 10⁴, the minimum far from the start
        let centre = [6.0e4, -3.0, 0.002];
        let curvature = [1e-8, 1.0, 1e6];
        let mut quad = |x: &[f64]| {
            let v = (0..3)
                .map(|i| 0.5 * curvature[i] * (x[i] - centre[i]).powi(2))
                .sum();
            let g = (0..3).map(|i| curvature[i] * (x[i] - centre[i])).collect();
            (v, g)
        };
        let out = minimize(&mut quad, vec![0.0; 3], 500);
        for i in 0..3 {
            let sd = 1.0 / curvature[i].sqrt();
            assert!((out.x[i] - centre[i]).abs() < 1e-3 * sd, "{i}: {out:?}");
        }
    }

    #[test]
    fn steps_back_from_points_outside_the_domain() {
        // −log x + x: minimum at 1, undefined for x ≤ 0
        let mut f = |x: &[f64]| {
            if x[0] <= 0.0 {
                (f64::NAN, vec![f64::NAN])
            } else {
                (x[0] - x[0].ln(), vec![1.0 - 1.0 / x[0]])
            }
        };
        let out = minimize(&mut f, vec![5.0], 200);
        assert!((out.x[0] - 1.0).abs() < 1e-6, "{out:?}");
    }
}
