//! What a distribution gives beyond its dfdx density: how the host engine scores it
//! ([`ElementDensity`], [`ClassDensity`]) and what the predictive reads of it
//! ([`Moments`]). Each stdlib distribution implements these in its own file, beside its dfdx
//! `log_prob`, so that the two execution paths of one density live side by side; the
//! stdlib's tests hold the host density to the dfdx one value by value and partial by
//! partial.

/// A density the host engine scores one element at a time: log p(x | a) with its partial
/// derivatives in the value and in each of up to three arguments, in the order the
/// catalogue lists them.
///
/// The engine calls [`ElementDensity::pass`] once per site and particle; its default loops
/// [`ElementDensity::element`], and a density overrides it where a faster pass exists (an
/// argument that is one number, say, whose normalizer is then computed once).
pub trait ElementDensity: Sync + 'static {
    /// The distribution's name, with its parametrization (`Bernoulli_logits`).
    fn name(&self) -> &'static str;

    /// log p(x | a) and [∂/∂x, ∂/∂a₀, ∂/∂a₁, ∂/∂a₂] (arguments the distribution does not
    /// have read 0, and their partials are never read).
    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]);

    /// What the site's log density adds that depends on the values alone, summed over
    /// them (a Poisson's −Σ log x!): computed once per site, not per particle.
    fn data_term(&self, _x: &[f32]) -> f64 {
        0.0
    }

    /// Σᵢ log p(xᵢ | aᵢ) over one particle's values, writing `weight` × each wanted partial
    /// (see [`SitePass`]).
    fn pass(&self, site: SitePass<'_>) -> f64 {
        elementwise(self, site)
    }

    /// Σᵢ log p(zᵢ | a) with every argument one number and only the values' partials
    /// wanted (a prior on a net's weights): `weight` × ∂/∂zᵢ added into `g`.
    fn prior_pass(&self, z: &[f32], a: [f32; 3], weight: f32, g: &mut [f32]) -> f64 {
        let mut sum = 0.0f64;
        for (&z, g) in z.iter().zip(g) {
            let (lp, d) = self.element(z, a);
            sum += f64::from(lp);
            *g += weight * d[0];
        }
        sum
    }
}

/// A mixture of K components of one elementwise family (`y ~ Mixture(logits,
/// Dist(..))`): log Σ_k softmax(logits)_k p(x | a_k), the component marginalised.
#[derive(Clone, Copy)]
pub struct MixtureDensity {
    /// The density of one component, whose arguments carry a last axis of K components.
    pub component: &'static dyn ElementDensity,
}

impl MixtureDensity {
    /// `Mixture of` the component's name.
    pub fn name(&self) -> &'static str {
        self.component.name()
    }

    /// The component's data term: the same for every component, so the mixture's too.
    pub fn data_term(&self, x: &[f32]) -> f64 {
        self.component.data_term(x)
    }

    /// log Σ_k softmax(l)_k p(x | a_k) at one value (less the data term), writing
    /// ∂/∂l_k into `d_logits` and ∂/∂a_{k,j} into `d_args` (K of each).
    pub fn value_into(
        &self,
        x: f32,
        logits: &[f32],
        args: &[[f32; 3]],
        d_logits: &mut [f32],
        d_args: &mut [[f32; 3]],
    ) -> f32 {
        let k = logits.len();
        let max_l = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let lse_l = max_l + logits.iter().map(|&v| (v - max_l).exp()).sum::<f32>().ln();
        // t_k = log w_k + log p_k, kept in d_logits until the responsibilities replace it
        for j in 0..k {
            let (lp, d) = self.component.element(x, args[j]);
            d_logits[j] = logits[j] - lse_l + lp;
            d_args[j] = [d[1], d[2], d[3]];
        }
        let max_t = d_logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        if !max_t.is_finite() {
            d_logits.iter_mut().for_each(|d| *d = 0.0);
            d_args.iter_mut().for_each(|d| *d = [0.0; 3]);
            return max_t;
        }
        let total = max_t
            + d_logits
                .iter()
                .map(|&t| (t - max_t).exp())
                .sum::<f32>()
                .ln();
        for j in 0..k {
            // responsibility r_k = exp(t_k − total); ∂/∂l_k = r_k − w_k, ∂/∂a_k = r_k ∂ log p_k
            let r = (d_logits[j] - total).exp();
            d_logits[j] = r - (logits[j] - lse_l).exp();
            d_args[j] = d_args[j].map(|d| r * d);
        }
        total
    }

    /// [`MixtureDensity::value_into`] into new vectors.
    pub fn value(
        &self,
        x: f32,
        logits: &[f32],
        args: &[[f32; 3]],
    ) -> (f32, Vec<f32>, Vec<[f32; 3]>) {
        let mut d_logits = vec![0.0; logits.len()];
        let mut d_args = vec![[0.0; 3]; logits.len()];
        let v = self.value_into(x, logits, args, &mut d_logits, &mut d_args);
        (v, d_logits, d_args)
    }
}

/// One particle's values of a site and its arguments, for [`ElementDensity::pass`].
pub struct SitePass<'a> {
    /// The site's n values.
    pub x: &'a [f32],
    /// Each argument's values: n of them, or fewer that repeat over the leading axes (one
    /// number, or a vector broadcast over rows). An argument the distribution does not
    /// have is `[0.0]`.
    pub args: [&'a [f32]; 3],
    /// Where to write `weight` × ∂ log pᵢ / ∂(xᵢ, a₀ᵢ, a₁ᵢ, a₂ᵢ), n values each, for the
    /// partials the engine wants (`None`: not wanted).
    pub partials: [Option<&'a mut [f32]>; 4],
    /// The factor on this pass's terms and partials (total rows / batch rows for an observed site,
    /// 1 otherwise).
    pub weight: f32,
}

impl SitePass<'_> {
    /// Element `i` of argument `j` (broadcast).
    #[inline(always)]
    pub fn arg(&self, j: usize, i: usize) -> f32 {
        let a = self.args[j];
        a[wrap(i, a.len(), self.x.len())]
    }
}

/// [`ElementDensity::pass`] by the element: what every density does unless it has better.
#[inline(always)]
pub fn elementwise<E: ElementDensity + ?Sized>(density: &E, site: SitePass<'_>) -> f64 {
    elementwise_with(site, |x, a| density.element(x, a))
}

/// A pass by the element of `element` (a density's own element function, or one with
/// some of its work hoisted out of the loop).
#[inline(always)]
pub fn elementwise_with(
    site: SitePass<'_>,
    element: impl Fn(f32, [f32; 3]) -> (f32, [f32; 4]),
) -> f64 {
    let n = site.x.len();
    let SitePass {
        x,
        args,
        mut partials,
        weight,
    } = site;
    let lens = args.map(<[f32]>::len);
    let mut sum = 0.0f64;
    for i in 0..n {
        let a = std::array::from_fn(|j| args[j][wrap(i, lens[j], n)]);
        let (lp, d) = element(x[i], a);
        sum += f64::from(lp);
        for (out, d) in partials.iter_mut().zip(d) {
            if let Some(out) = out {
                out[i] = weight * d;
            }
        }
    }
    sum
}

/// Element `i` of an output of `n` elements in an operand of `len` (which divides `n`): a
/// division only when the operand is neither full-size nor one number.
#[inline(always)]
pub fn wrap(i: usize, len: usize, n: usize) -> usize {
    if len == n {
        i
    } else if len == 1 {
        0
    } else {
        i % len
    }
}

/// A density over one of K classes per value, from logits with a last axis of K (the
/// categorical), as the host engine scores it.
pub trait ClassDensity: Sync + 'static {
    /// The distribution's (and parametrization's) name, for messages.
    fn name(&self) -> &'static str;

    /// Σᵢ log p(yᵢ | logitsᵢ) over one particle's values `y` (class indices as numbers),
    /// `logits` holding K per value; `weight` × ∂/∂logits added into `grad` when given.
    fn rows(
        &self,
        y: &[f32],
        logits: &[f32],
        k: usize,
        weight: f32,
        grad: Option<&mut [f32]>,
    ) -> f64;
}

/// The mean and variance of an elementwise distribution given its arguments (what the
/// posterior predictive averages over draws). NaN where the moment does not exist (a
/// Cauchy's mean), ∞ where it is infinite.
pub trait Moments: Sync + 'static {
    /// The mean and variance of the distribution with arguments `a` (unused ones 0).
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64);
    /// One draw of the distribution with arguments `a` (what the predictive samples at
    /// each posterior draw); NaN where the arguments are outside its parameters' domain.
    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64;
}
