//! Where a fit may start each latent site, as far as the model says: the prior's median in
//! the guide's unconstrained coordinates (where the prior's arguments are numbers), and for
//! a site that is the weights of a net call, that net's layers (a fit starts such weights
//! at random, Glorot-uniform, so that no two hidden units start the same).

use crate::catalogue::Constraint;
use crate::ir::{ModelIr, Op, Site};

/// The median of `site`'s prior in the guide's unconstrained coordinate (ℝ for a real
/// site, log x for a positive one, the logit of the position for an interval), when the
/// prior's arguments are numbers; `None` otherwise (a fit then starts it at 0).
pub fn prior_median(model: &ModelIr, site: &Site) -> Option<f64> {
    let arg = |i: usize| site.args.get(i).and_then(|&a| model.const_value(a));
    let gamma_median = |a: f64| {
        // Wilson–Hilferty, good to a few percent down to a = 0.1 (a start, not a summary)
        (a * (1.0 - 1.0 / (9.0 * a)).powi(3)).max(a * 1e-3)
    };
    if site.ordered {
        // one median for every element would be no ordered vector; a fit starts at 0, 1, 2..
        return None;
    }
    let x = match site.dist.name {
        "Normal" | "Cauchy" | "Laplace" => arg(0)?,
        "StudentT" => arg(1)?,
        "LogNormal" => arg(0)?.exp(),
        "HalfNormal" => 0.674_489_75 * arg(0)?,
        "HalfCauchy" => arg(0)?,
        // t's upper quartile, 1 at ν = 1 down to the Normal's 0.674 (within 2%: a start)
        "HalfStudentT" => arg(1)? * (0.674_489_75 + 0.325_5 / arg(0)?.powf(1.1)),
        "Exponential" => std::f64::consts::LN_2 / arg(0)?,
        "Gamma" => gamma_median(arg(0)?) / arg(1)?,
        "InverseGamma" => arg(1)? / gamma_median(arg(0)?),
        "Beta" => {
            let (a, b) = (arg(0)?, arg(1)?);
            if a > 1.0 && b > 1.0 {
                (a - 1.0 / 3.0) / (a + b - 2.0 / 3.0)
            } else {
                a / (a + b)
            }
        }
        "Uniform" => 0.5 * (arg(0)? + arg(1)?),
        _ => return None,
    };
    let u = match site.dist.support {
        Constraint::Positive => x.ln(),
        Constraint::UnitInterval | Constraint::ClosedUnitInterval => (x / (1.0 - x)).ln(),
        Constraint::Interval => {
            let (lo, hi) = (arg(0)?, arg(1)?);
            let p = (x - lo) / (hi - lo);
            (p / (1.0 - p)).ln()
        }
        Constraint::Simplex => return None,
        _ => x,
    };
    // (an f32 in the generated code)
    crate::limits::fits_f32(u).then_some(u)
}

/// Per latent site (the model's order): the net and, for one site per Linear layer, the
/// layer whose weights the site is (`Mlp(x; theta)`: the whole net; `Mlp(x; w1, w2)`: one
/// layer each). `None` for a site that feeds no net as its weights.
pub fn net_weights(model: &ModelIr) -> Vec<Option<(usize, Option<usize>)>> {
    let mut out = vec![None; model.latents().count()];
    let sample = |node: usize| match model.nodes[node].op {
        Op::Sample(k) => Some(k),
        _ => None,
    };
    for node in &model.nodes {
        let Op::Net(net, _, w) = node.op else {
            continue;
        };
        match &model.nodes[w].op {
            Op::Sample(k) => out[*k] = Some((net, None)),
            Op::Concat(parts) => {
                for (layer, &p) in parts.iter().enumerate() {
                    if let Some(k) = sample(p) {
                        out[k] = Some((net, Some(layer)));
                    }
                }
            }
            _ => {}
        }
    }
    out
}
