//! Special functions on tensors, built from dfdx's elementwise ops so that their gradients
//! come for free (dfdx has no lgamma).

use dfdx::shapes::Shape;
use dfdx::tensor::Tensor;
use ravi_backend::{Backend, Tape};

use super::consts::HALF_LN_2PI;

/// log Γ(x) for x > 0: shift to z = x + 6 by the recurrence, then Stirling's series,
/// log Γ(z) = (z − ½) log z − z + ½ log 2π + 1/(12z) − 1/(360z³) + 1/(1260z⁵),
/// whose next term is below 1/(1680 z⁷) < 6e-9 for z ≥ 6.
pub fn ln_gamma<S: Shape, D: Backend, T: Tape<D>>(x: Tensor<S, f32, D, T>) -> Tensor<S, f32, D, T> {
    // log(x (x+1) … (x+5)) as a sum of logs: no overflow for large x.
    let mut shift = x.retaped::<T>().ln();
    for k in 1..6 {
        shift = shift + (x.retaped::<T>() + k as f32).ln();
    }
    let z = x + 6.0;
    let inv = z.retaped::<T>().recip();
    let inv2 = inv.retaped::<T>().square();
    let series = inv.retaped::<T>() * (1.0 / 12.0)
        - inv.retaped::<T>() * inv2.retaped::<T>() * (1.0 / 360.0)
        + inv * inv2.retaped::<T>() * inv2 * (1.0 / 1260.0);
    let main = (z.retaped::<T>() - 0.5) * z.retaped::<T>().ln() - z + HALF_LN_2PI;
    main + series - shift
}

/// log Γ of a compile-time number.
pub fn ln_gamma_f32(x: f32) -> f32 {
    statrs::function::gamma::ln_gamma(f64::from(x)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::prelude::*;

    #[test]
    fn ln_gamma_matches_statrs_and_its_derivative_is_digamma() {
        let dev = Cpu::default();
        let xs: Vec<f32> = (1..400)
            .map(|i| 0.01 * i as f32 * i as f32 / 10.0)
            .collect();
        let t = dev.tensor_from_vec(xs.clone(), (xs.len(),));
        let lg = ln_gamma(t.retaped::<dfdx::tensor::OwnedTape<f32, Cpu>>());
        let values = lg.as_vec();
        let grads = lg.sum::<(), _>().backward().get(&t).as_vec();
        for (i, &x) in xs.iter().enumerate() {
            let want = statrs::function::gamma::ln_gamma(f64::from(x));
            assert!(
                (f64::from(values[i]) - want).abs() < 2e-5 * (1.0 + want.abs()),
                "lgamma({x}) {} vs {want}",
                values[i]
            );
            let dg = statrs::function::gamma::digamma(f64::from(x));
            assert!(
                (f64::from(grads[i]) - dg).abs() < 2e-4 * (1.0 + dg.abs()),
                "digamma({x}) {} vs {dg}",
                grads[i]
            );
        }
    }
}
