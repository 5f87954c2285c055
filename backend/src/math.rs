//! exp, log and tanh on f32 that vectorize: libm's are calls, one element at a time, and in
//! a net's activations or a million softplus scales they cost more than the products.
//! Cephes' single-precision polynomials (range reduction to a short interval, a minimax
//! polynomial there), written without branches so that loops over them run eight lanes
//! wide; within 2 ulp of libm on their domains (tested against it).

// The coefficients as Cephes publishes them.
#![allow(clippy::excessive_precision)]

/// ½ log 2π, the Normal density's constant.
pub const HALF_LN_2PI: f32 = 0.918_938_5;

const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const LOG2E: f32 = std::f32::consts::LOG2_E;

/// eˣ (0 below −87.3, ∞ above 88.7, NaN for NaN).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let xc = x.clamp(-87.336_55, 88.722_83);
    // x = n ln 2 + r, |r| ≤ ln 2 / 2; n rounded by adding and taking away 1.5 · 2²³ (no
    // call to `round`, which the baseline x86-64 target does not have as an instruction)
    const ROUND: f32 = 12_582_912.0;
    let shifted = xc * LOG2E + ROUND;
    let n = shifted - ROUND;
    // n as an integer from the bits: ROUND + n has ROUND's exponent (|n| ≤ 128), so its
    // bits are ROUND's plus n. (`n as i32` is a saturating cast, which does not vectorize:
    // it cost a loop of exps eight scalar conversions per eight lanes.)
    let ni = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r2 + r + 1.0;
    // × 2ⁿ through the exponent bits, in two factors (2ⁿ itself is out of range at the
    // ends of the clamp)
    let half = ni >> 1;
    let a = f32::from_bits(((half + 127) as u32) << 23);
    let b = f32::from_bits(((ni - half + 127) as u32) << 23);
    let y = e * a * b;
    if x > 88.722_83 {
        f32::INFINITY
    } else if x < -87.336_55 {
        0.0
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

/// ln x (−∞ at 0, NaN below, ∞ at ∞).
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    // x = m 2ᵉ with m in [√½, √2)
    let bits = x.max(f32::MIN_POSITIVE).to_bits();
    let mut e = ((bits >> 23) as i32 - 126) as f32;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // in [½, 1)
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e = if small { e - 1.0 } else { e };
    m = if small { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    const P: [f32; 9] = [
        7.037_683_6e-2,
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ];
    let p = P.iter().fold(0.0f32, |acc, &c| acc * m + c);
    let y = m + (m * z * p + e * LN2_LO - 0.5 * z) + e * LN2_HI;
    if x == 0.0 {
        f32::NEG_INFINITY
    } else if x.is_nan() || x < 0.0 {
        f32::NAN
    } else if x == f32::INFINITY {
        x
    } else {
        y
    }
}

/// tanh x.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // |x| ≥ 0.625: 1 − 2 / (e^{2|x|} + 1), with x's sign
    let far = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    let z = x * x;
    let near =
        ((((-5.704_988_7e-3 * z + 2.063_908_8e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328_2e-1)
            * z
            * x
            + x;
    if a >= 0.625 {
        far.copysign(x)
    } else {
        near
    }
}

/// softplus(x) = log(1 + eˣ) as the dfdx path computes it, max(x, 0) + log(1 + e^{−|x|}).
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    x.max(0.0) + ln(exp(-x.abs()) + 1.0)
}

/// 1 / (1 + e^{−x})
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place.
    fn ulps(a: f32, b: f32) -> u32 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    fn sweep(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    #[test]
    fn exp_is_within_two_ulps_of_libm() {
        for x in sweep(-87.0, 88.5, 200_000) {
            assert!(
                ulps(exp(x), x.exp()) <= 2,
                "exp({x}) = {} vs {}",
                exp(x),
                x.exp()
            );
        }
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(200.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn ln_is_within_two_ulps_of_libm() {
        for x in sweep(-30.0, 30.0, 100_000)
            .map(f32::exp)
            .chain(sweep(1e-3, 10.0, 100_000))
        {
            assert!(
                ulps(ln(x), x.ln()) <= 2,
                "ln({x}) = {} vs {}",
                ln(x),
                x.ln()
            );
        }
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f32::NAN).is_nan());
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn tanh_softplus_sigmoid_are_close_to_libm() {
        for x in sweep(-20.0, 20.0, 200_000) {
            let t = x.tanh();
            assert!(
                (tanh(x) - t).abs() <= 2.0 * f32::EPSILON * t.abs().max(1e-30) + 1e-37,
                "tanh({x}) = {} vs {t}",
                tanh(x)
            );
            // log(1 + e) rounds 1 + e first, in libm's form as in this one: an absolute
            // error of about ε beside max(x, 0).
            let sp = x.max(0.0) + ((-x.abs()).exp() + 1.0).ln();
            let tol = 2.0 * f32::EPSILON * (x.max(0.0) + 1.0);
            assert!(
                (softplus(x) - sp).abs() <= tol,
                "softplus({x}) = {} vs {sp}",
                softplus(x)
            );
            let sg = 1.0 / (1.0 + (-x).exp());
            assert!(
                (sigmoid(x) - sg).abs() <= 3.0 * f32::EPSILON * sg,
                "sigmoid({x})"
            );
        }
    }
}
