//! Student's t distribution, located and scaled.

use dfdx::shapes::Shape;
use ravi_backend::density::{elementwise, elementwise_with, ElementDensity, Moments, SitePass};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};
use statrs::function::gamma::{digamma, ln_gamma};

use super::arg::{add, div, mul, sub, Arg, Value};
use super::{draw, Distribution, Parametrization};

/// Student's t with `df` degrees of freedom, located and scaled; support ℝ.
pub struct StudentT;

impl Distribution for StudentT {
    const NAME: &'static str = "StudentT";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["df", "loc", "scale"],
        host: Some(Density::Elementwise(&StudentT)),
        moments: Some(&StudentT),
    }];
}

impl StudentT {
    /// log Γ((ν+1)/2) − log Γ(ν/2) − ½ log νπ − log σ − (ν+1)/2 log(1 + z²/ν)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        df: Arg<S, D, T>,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = div(sub(x, loc), scale.again());
        let half_df_plus = df.again().add_scalar(1.0).mul_scalar(0.5);
        let tail = mul(
            add(div(z.square(), df.again()), Arg::Scalar(1.0)).ln(),
            half_df_plus.again(),
        );
        let norm = half_df_plus
            .lgamma()
            .minus(df.again().mul_scalar(0.5).lgamma())
            .minus(df.mul_scalar(std::f32::consts::PI).ln().mul_scalar(0.5))
            .minus(scale.ln());
        add(tail.negate(), norm)
    }
}

/// What depends on ν alone: the normalizer log Γ((ν+1)/2) − log Γ(ν/2) − ½ log νπ and its
/// derivative ½ ψ((ν+1)/2) − ½ ψ(ν/2) − 1/(2ν), in f64 (once per pass when ν is one number).
fn df_terms(nu: f32) -> (f32, f32) {
    let nu = f64::from(nu);
    let norm =
        ln_gamma(0.5 * (nu + 1.0)) - ln_gamma(0.5 * nu) - 0.5 * (nu * std::f64::consts::PI).ln();
    let d_norm = 0.5 * digamma(0.5 * (nu + 1.0)) - 0.5 * digamma(0.5 * nu) - 0.5 / nu;
    (norm as f32, d_norm as f32)
}

/// log p and its partials given ν's terms.
#[inline(always)]
fn element_with(x: f32, nu: f32, m: f32, s: f32, (norm, d_norm): (f32, f32)) -> (f32, [f32; 4]) {
    let z = (x - m) / s;
    let z2 = z * z;
    let q = 1.0 + z2 / nu;
    let lq = ln(q);
    let lp = norm - ln(s) - 0.5 * (nu + 1.0) * lq;
    let dz = -(nu + 1.0) * z / (nu * q); // d lp / dz
    let d_nu = d_norm - 0.5 * lq + 0.5 * (nu + 1.0) * z2 / (nu * nu * q);
    // (x; ν, loc, scale)
    (lp, [dz / s, d_nu, -dz / s, -(dz * z + 1.0) / s])
}

impl ElementDensity for StudentT {
    fn name(&self) -> &'static str {
        "StudentT"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        element_with(x, a[0], a[1], a[2], df_terms(a[0]))
    }

    /// ν one number (the usual case): its log Γ and ψ terms once, not per element.
    fn pass(&self, site: SitePass<'_>) -> f64 {
        let [df, _, _] = site.args;
        if df.len() != 1 {
            return elementwise(self, site);
        }
        let (nu, terms) = (df[0], df_terms(df[0]));
        elementwise_with(site, |x, a| element_with(x, nu, a[1], a[2], terms))
    }

    fn prior_pass(&self, z: &[f32], a: [f32; 3], weight: f32, g: &mut [f32]) -> f64 {
        let terms = df_terms(a[0]);
        let mut sum = 0.0f64;
        for (&z, g) in z.iter().zip(g) {
            let (lp, d) = element_with(z, a[0], a[1], a[2], terms);
            sum += f64::from(lp);
            *g += weight * d[0];
        }
        sum
    }
}

/// Mean loc for ν > 1 (else none: NaN); variance σ² ν/(ν − 2) for ν > 2, infinite for
/// 1 < ν ≤ 2, none below.
impl Moments for StudentT {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let (nu, m, s) = (a[0], a[1], a[2]);
        let mean = if nu > 1.0 { m } else { f64::NAN };
        let var = if nu > 2.0 {
            s * s * nu / (nu - 2.0)
        } else if nu > 1.0 {
            f64::INFINITY
        } else {
            f64::NAN
        };
        (mean, var)
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        a[1] + a[2] * draw::student_t(a[0], rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use statrs::distribution::{self as sd, Continuous};
    use statrs::statistics::Distribution as _;

    const REFERENCE: Reference = Reference {
        draw: |r| {
            (
                u(r, -10.0, 10.0),
                vec![u(r, 0.5, 30.0), u(r, -3.0, 3.0), u(r, 0.2, 4.0)],
            )
        },
        log_density: |x, p| sd::StudentsT::new(p[1], p[2], p[0]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("StudentT", &REFERENCE, |x, a| {
            let (df, l, s, _) = take(a);
            StudentT::log_prob(x, df, l, s)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("StudentT", &REFERENCE, &StudentT);
    }

    /// statrs gives the mean for ν > 1 and the variance for ν > 2; between 1 and 2 the
    /// variance is infinite (the integral of z² against a tail ~ |z|^(−ν−1) diverges).
    #[test]
    fn moments_match_statrs() {
        check::moments_match("StudentT", &REFERENCE, &StudentT, |p| {
            let d = sd::StudentsT::new(p[1], p[2], p[0]).unwrap();
            let var = match d.variance() {
                Some(v) => v,
                None if p[0] > 1.0 => f64::INFINITY,
                None => f64::NAN,
            };
            (d.mean().unwrap_or(f64::NAN), var)
        });
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("StudentT", &StudentT, &[[7.0, 1.0, 2.0], [30.0, -2.0, 0.5]]);
    }
}
