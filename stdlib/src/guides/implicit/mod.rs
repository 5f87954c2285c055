use dfdx::prelude::*;
use ravi_backend::frame::Frame;
use ravi_backend::linalg::Matrix;
use ravi_backend::{
    traced, Backend, Estimator, FamilyArgs, FamilyDraw, FamilyStart, GuideFamily, ParamId,
    ParamStore, Particles, PerParticle, Tape,
};

use super::dense::Dense;
use super::{gaussian_entropy_constant, INIT_SCALE};

mod matmul_output;
mod row_max;

/// How the generator's last hidden layer becomes the d outputs.
#[derive(Debug, Clone)]
enum Head {
    /// A dense layer to all d outputs, plus a linear skip path from the noise (`k × d`,
    /// row-major) that starts at 0.1 I.
    Dense { output: Dense, skip: ParamId },
    /// The matrix-multiplication generator (the paper's MM layer after an MLP): the d
    /// outputs are the first d entries of the m × n matrix A H Bᵀ plus a learned mean, with
    /// a core H (p × p) computed from the hidden layer and A (m × p), B (n × p) learned,
    /// m·n ≥ d. Its parameters grow with (m + n) p rather than d, and its Jacobian factors
    /// through the core: J v = A ∂H(v) Bᵀ, so JᵀJ is found from p × p products
    /// ([`Implicit::gram`]) and J (d × k) is never formed.
    MatMul {
        core: Dense,
        a: ParamId,
        /// A constant per row of A (A's effective rows are `row_scale` times its own):
        /// the start's spread of the coordinates in that row of the m × n matrix, so that
        /// Adam's steps on A are relative to the spread each coordinate starts at (a net's
        /// weights start a hundred times narrower than its biases' scale, say).
        row_scale: ParamId,
        b: ParamId,
        mean: ParamId,
        /// log σ_i per coordinate (m·n values, the last m·n − d unused): the output
        /// noise's sd, learned. The entropy's Jacobian term takes each row's largest σ
        /// (a lower bound, exact where a row's σ are equal) so that it still factors
        /// through the core.
        noise_log_sd: ParamId,
        m: usize,
        n: usize,
        p: usize,
    },
}

/// log σ of the matrix-multiplication generator's entries past d: far below any row's
/// maximum, so that only the masked sum of ½ log det D reads them (with no gradient).
const UNUSED_LOG_SD: f32 = -30.0;

/// The m × n matrix whose first d entries the matrix-multiplication head makes: an exact
/// factorization m·n = d with n ≤ 2m where one exists (no entries to drop, so no slice of
/// the output and its gradient per step: 478,410 = 555 × 862), else ⌈√d⌉ rows.
fn matrix_shape(d: usize) -> (usize, usize) {
    let root = (d as f64).sqrt();
    let exact = (1..=root.floor() as usize)
        .rev()
        .take_while(|&m| 2 * m * m >= d)
        .find(|&m| d.is_multiple_of(m));
    match exact {
        Some(m) => (m, d / m),
        None => {
            // at least one row (a site of size 0 from a size parameter gives 1 × 0)
            let m = (root.ceil() as usize).max(1);
            (m, d.div_ceil(m))
        }
    }
}

/// Per particle, the Jacobian's rows: (particles, k, d).
pub type JacobianRows<D, T> = Tensor<(usize, usize, usize), f32, D, T>;

/// Per particle, a k × k matrix (Jᵀ D⁻¹ J): (particles, k, k).
pub type Grams<D, T> = Tensor<(usize, usize, usize), f32, D, T>;

/// Which bound on ½ log det(JᵀJ + σ²I) the entropy uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntropyBound {
    /// The k×k log-determinant itself.
    Exact,
    /// k · log(s_min² + σ²) ≤ log det, from the smallest singular value s_min of J: the
    /// cheaper bound for large generators; it never overestimates the entropy.
    SmallestSingularValue,
}

/// An implicit guide (Uppal et al., NeurIPS 2023): z = g(η) + σ ⊙ ξ with η ~ N(0, I_k),
/// ξ ~ N(0, I_d) and g a generator network: an MLP with tanh hidden layers, then a head.
///
/// - `generator = Dense` (small d): a dense output layer plus a linear skip path from the
///   noise, which starts at 0.1 I so the guide starts as the Gaussian families do; σ² is
///   `output_variance`, fixed.
/// - `generator = MatMul` (large d, a net's weights): the paper's matrix-multiplication
///   layer: z = mean + first d entries of A H Bᵀ + σ ⊙ ξ, with H (p × p, p = `rank`) from
///   the hidden layer, A (m × p), B (n × p), m·n ≥ d, and σ learned per coordinate
///   (starting at √`output_variance`, or at the start's spread where that is narrower).
///   Its parameters grow with (m + n) p and d, not with d·k, and each row of A starts
///   scaled by the start's spread of the coordinates it makes, so a net's weights start
///   as narrow as mean-field's do.
///
/// A Bayesian hypernetwork — a network that maps noise to the weights of another network —
/// is this family over the weight site of a net.
///
/// Its entropy has no closed form. Linearising g at each draw gives q(z) ≈ N(g(η),
/// J Jᵀ + D), J = ∂g/∂η (d×k), D = diag(σ²), whose entropy is d/2 (1 + log 2π) +
/// ½ log det D + ½ log det(I_k + Jᵀ D⁻¹ J) (the determinant lemma). The k×k determinant
/// is factored on the host per particle and enters the gradient by the linear surrogate;
/// `bound = SmallestSingularValue` uses k · log λ_min instead. The dense head forms J's
/// rows (k × d per draw: small d only); the matrix-multiplication head never forms J: its
/// Jacobian–vector products are J v = A ∂H(v) Bᵀ, so Jᵀ D⁻¹ J is assembled from p × p
/// products (O(k p³) per draw, against the m·n·p of a single product J v), with D taken
/// at each row's largest σ² there (a lower bound on the entropy, exact where a row's σ are
/// equal).
///
/// Every estimator uses this entropy. `entropy_weight` and `prior_weight` down-weight the
/// entropy term and the prior terms of the covered sites while fitting (the paper uses 0.1
/// and 0.01 for BNNs); the ELBO that `ravi::elbo` reports is never weighted.
///
/// Arguments: `noise` (k; default min(d, 32)), `hidden` (default [64, 64]),
/// `output_variance` (σ², default 1e-5), `entropy_weight`, `prior_weight` (default 1),
/// `bound` (`Exact` or `SmallestSingularValue`), `generator` (`Dense` or `MatMul`),
/// `rank` (the matrix-multiplication head's p, default 8).
#[derive(Debug, Clone)]
pub struct Implicit {
    dim: usize,
    noise: usize,
    hidden: Vec<Dense>,
    head: Head,
    output_variance: f32,
    entropy_weight: f32,
    prior_weight: f32,
    bound: EntropyBound,
    frame: Option<Frame>,
}

impl Implicit {
    /// The number of coordinates the family covers.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// k, the dimension of the generator's noise η.
    pub fn noise(&self) -> usize {
        self.noise
    }

    /// The hidden layers at η and, in forward mode, their Jacobian's rows
    /// ∂h/∂η (particles × k × width); `None` rows without a hidden layer (the identity).
    fn hidden_layers<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        eta: Tensor<(usize, usize), f32, D>,
    ) -> (Particles<D, T>, Option<JacobianRows<D, T>>) {
        let (s, k) = *eta.shape();
        let mut x = eta.retaped::<T>();
        let mut rows: Option<JacobianRows<D, T>> = None;
        for layer in &self.hidden {
            let h = layer.apply(params, x, None).tanh();
            let width = layer.outputs();
            let slope = (h.retaped::<T>().square().negate() + 1.0)
                .broadcast_like::<_, Axis<1>>(&(s, k, width));
            let pre = match rows {
                None => layer
                    .weight::<D, T>(params)
                    .broadcast_like::<_, Axis<0>>(&(s, k, width)),
                Some(a) => {
                    let inputs = a.shape().2;
                    let a = layer.times(params, a.reshape_like(&(s * k, inputs)));
                    a.reshape_like(&(s, k, width))
                }
            };
            rows = Some(pre * slope);
            x = h;
        }
        (x, rows)
    }

    /// g(η) and Jᵀ D⁻¹ J per particle (particles × k × k), J = ∂g/∂η and D the output
    /// noise's (diagonal) covariance, on the tape.
    pub fn generate<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        eta: Tensor<(usize, usize), f32, D>,
    ) -> (Particles<D, T>, Grams<D, T>) {
        let (z, gram, _) = self.generate_with_noise(params, eta, None);
        (z, gram)
    }

    /// The standard normals the output noise takes per particle: d, or the m·n entries of
    /// the matrix-multiplication generator's matrix (the noise is added before its entries
    /// past d are dropped, in the same pass).
    fn noise_width(&self) -> usize {
        match &self.head {
            Head::Dense { .. } => self.dim,
            Head::MatMul { m, n, .. } => m * n,
        }
    }

    /// [`Implicit::generate`], with the output noise σ ⊙ ξ added when `xi` (particles ×
    /// [`Implicit::noise_width`] standard normals) is given, and ½ log det D per particle:
    /// D = σ² I with σ² = `output_variance` fixed for the dense generator, a learned σ per
    /// row of the matrix-multiplication generator's m × n matrix.
    fn generate_with_noise<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        eta: Tensor<(usize, usize), f32, D>,
        xi: Option<Vec<f32>>,
    ) -> (Particles<D, T>, Grams<D, T>, PerParticle<D, T>) {
        let (s, k) = *eta.shape();
        let dev = params.device();
        let (x, rows) = self.hidden_layers::<D, T>(params, eta.clone());
        match &self.head {
            Head::Dense { output, skip } => {
                let skip = traced::<D, T>(params, *skip).reshape_like(&(k, self.dim));
                let w_out = output.weight::<D, T>(params);
                let skip_rows = skip
                    .retaped::<T>()
                    .broadcast_like::<_, Axis<0>>(&(s, k, self.dim));
                // The Jacobian's rows Jᵀ (k × d per particle): small d only.
                let jac_rows = match rows {
                    // No hidden layer: the output layer acts on η directly.
                    None => skip_rows + w_out.broadcast_like::<_, Axis<0>>(&(s, k, self.dim)),
                    Some(a) => a.matmul(w_out) + skip_rows,
                };
                let z = output.apply(params, x, None) + eta.retaped::<T>().matmul(skip);
                let z = match xi {
                    Some(xi) => {
                        z + dev.tensor_from_vec(xi, (s, self.dim)) * self.output_variance.sqrt()
                    }
                    None => z,
                };
                let half = 0.5 * self.dim as f32 * self.output_variance.ln();
                let half = dev.tensor_from_vec(vec![half; s], (s,)).retaped::<T>();
                (z, gram(jac_rows) * self.output_variance.recip(), half)
            }
            Head::MatMul {
                core,
                a,
                row_scale,
                b,
                mean,
                noise_log_sd,
                m,
                n,
                p,
            } => {
                let (m, n, p, d) = (*m, *n, *p, self.dim);
                // log σ; the unused entries are held at −30 (never a row's maximum, and
                // dropped with the product's entries past d, so they take no gradient)
                let log_sd = traced::<D, T>(params, *noise_log_sd);
                // D̃^{-1/2} with D̃ = each row's largest σ², applied to A's rows: Jᵀ D̃⁻¹ J ⪯
                // Jᵀ D⁻¹ J, so the entropy is bounded below
                let whiten = row_max::row_maxima(log_sd.retaped::<T>(), (m, n))
                    .negate()
                    .exp()
                    .broadcast_like::<_, Axis<1>>(&(m, p));
                let scale =
                    traced::<D, T>(params, *row_scale).broadcast_like::<_, Axis<1>>(&(m, p));
                let a = traced::<D, T>(params, *a).reshape_like(&(m, p)) * scale;
                let b =
                    traced::<D, T>(params, *b).reshape_like(&(n, p)) * (p as f32).sqrt().recip();
                let h = core.apply(params, x, None).reshape_like(&(s, p, p));
                // A H Bᵀ, (A H) first: m p² + m n p multiply-adds per particle.
                let ah = a
                    .retaped::<T>()
                    .broadcast_like::<_, Axis<0>>(&(s, m, p))
                    .matmul(h);
                let z = matmul_output::Output {
                    ah,
                    b: b.retaped::<T>(),
                    log_sd: log_sd.retaped::<T>(),
                    mean: traced::<D, T>(params, *mean),
                    xi,
                }
                .z(matmul_output::Dims { m, n, p, d });
                // ∂H/∂η_i per noise coordinate: the core layer is linear in the hidden one.
                let dh = match rows {
                    None => {
                        core.weight::<D, T>(params)
                            .broadcast_like::<_, Axis<0>>(&(s, k, p * p))
                    }
                    Some(r) => {
                        let width = r.shape().2;
                        let r = core.times(params, r.reshape_like(&(s * k, width)));
                        r.reshape_like(&(s, k, p * p))
                    }
                };
                // ½ log det D = Σ_i log σ_i over the d coordinates
                let half = ravi_backend::host_op::leading_sum(log_sd, d).broadcast_like(&(s,));
                (z, core_gram(dh, a * whiten, b, (m, n, p, d)), half)
            }
        }
    }

    /// The variance the Jacobian term divides each coordinate by (for tests: D̃ of
    /// Jᵀ D̃⁻¹ J): σ² for the dense generator, its row's largest σ² for the other.
    #[cfg(test)]
    fn output_variances(&self, params: &ParamStore<Cpu>) -> Vec<f64> {
        match &self.head {
            Head::Dense { .. } => vec![f64::from(self.output_variance); self.dim],
            Head::MatMul {
                noise_log_sd, n, ..
            } => {
                let log_sd = params.get(*noise_log_sd).as_vec();
                let d = self.dim;
                // over all n entries, the unused ones too (as `generate` takes them)
                let row_max = |r: usize| {
                    log_sd[r * n..(r + 1) * n]
                        .iter()
                        .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
                };
                (0..d)
                    .map(|i| (2.0 * f64::from(row_max(i / n))).exp())
                    .collect()
            }
        }
    }

    /// Per particle: the value of ½ log det M (or its bound) and its gradient with respect
    /// to M (symmetric positive definite, k × k per particle), from M's values.
    fn half_log_det(&self, m: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let k = self.noise;
        let mut values = Vec::with_capacity(m.len() / (k * k));
        let mut grads = Vec::with_capacity(m.len());
        for block in m.chunks(k * k) {
            let mut mat = Matrix::from_f32(k, block);
            // Symmetrize against rounding in the batched product.
            for i in 0..k {
                for j in 0..i {
                    let v = 0.5 * (mat.get(i, j) + mat.get(j, i));
                    mat.set(i, j, v);
                    mat.set(j, i, v);
                }
            }
            match self.bound {
                EntropyBound::Exact => {
                    let (inv, logdet) = mat
                        .spd_inverse_logdet()
                        .expect("JᵀJ + σ²I is positive definite");
                    values.push((0.5 * logdet) as f32);
                    grads.extend(inv.data.iter().map(|v| (0.5 * v) as f32));
                }
                EntropyBound::SmallestSingularValue => {
                    let (lambda, v) = mat.symmetric_min_eigen();
                    values.push((0.5 * k as f64 * lambda.ln()) as f32);
                    // ∂λ_min/∂M = v vᵀ
                    for i in 0..k {
                        for j in 0..k {
                            grads.push((0.5 * k as f64 / lambda * v[i] * v[j]) as f32);
                        }
                    }
                }
            }
        }
        (values, grads)
    }
}

/// A Aᵀ per particle. dfdx's permute keeps the tensor's id, and a product of two operands
/// with one id breaks its backward pass, so the transpose is materialised (+ 0) first.
fn gram<D: Backend, T: Tape<D>>(
    rows: Tensor<(usize, usize, usize), f32, D, T>,
) -> Tensor<(usize, usize, usize), f32, D, T> {
    let transposed = rows.retaped::<T>().permute::<_, Axes3<0, 2, 1>>() + 0.0;
    rows.matmul(transposed)
}

/// JᵀJ of the matrix-multiplication head from its core, with J v = first d entries of
/// A ∂H(v) Bᵀ (with A's rows over the noise's sd: Jᵀ D⁻¹ J): (JᵀJ)_ij = ⟨∂H_i, G_A ∂H_j G_B⟩ (G_A = AᵀA, G_B = BᵀB, p × p) less the
/// m·n − d entries past d, which all lie in the matrix's last row (columns c₀..n):
/// D_ij = a_{m−1}ᵀ ∂H_i b_j, subtracted as D Dᵀ. `dh` holds ∂H_i, (particles, k, p²).
/// O(k p³ + k² p²) per particle; J (d × k) is never formed.
fn core_gram<D: Backend, T: Tape<D>>(
    dh: Tensor<(usize, usize, usize), f32, D, T>,
    a: Tensor<(usize, usize), f32, D, T>,
    b: Tensor<(usize, usize), f32, D, T>,
    (m, n, p, d): (usize, usize, usize, usize),
) -> Tensor<(usize, usize, usize), f32, D, T> {
    let (s, k, _) = *dh.shape();
    let gram_of = |x: Tensor<(usize, usize), f32, D, T>| {
        let t = x.retaped::<T>().permute::<_, Axes2<1, 0>>() + 0.0;
        t.matmul(x)
    };
    // (dfdx carries a tensor's tape in the tensor itself: where no entry is dropped, a, b
    // and dh are consumed here, else by the dropped entries' correction below)
    let exact = m * n == d;
    let (g_a, g_b, kept) = match exact {
        true => (gram_of(a), gram_of(b), None),
        false => (
            gram_of(a.retaped::<T>()),
            gram_of(b.retaped::<T>()),
            Some((a, b)),
        ),
    };
    let dh4 = dh.retaped::<T>().reshape_like(&(s, k, p, p));
    let left = g_a
        .broadcast_like::<_, Axes2<0, 1>>(&(s, k, p, p))
        .matmul(dh4);
    let x = left
        .matmul(g_b.broadcast_like::<_, Axes2<0, 1>>(&(s, k, p, p)))
        .reshape_like(&(s, k, p * p));
    let x_t = x.permute::<_, Axes3<0, 2, 1>>() + 0.0;
    let (full, dh) = match exact {
        true => (dh.matmul(x_t), None),
        false => (dh.retaped::<T>().matmul(x_t), Some(dh)),
    };
    let (Some((a, b)), Some(dh)) = (kept, dh) else {
        return full;
    };
    // The dropped entries: last row m − 1, columns c₀..n.
    let c0 = d - (m - 1) * n;
    let last_row = a.slice((m - 1..m, ..)).reshape_like(&(p, 1usize)); // a_{m−1}
    let dropped = b.slice((c0..n, ..)); // (n − c₀) × p
    let dropped_t = dropped.permute::<_, Axes2<1, 0>>() + 0.0;
    // a_{m−1}ᵀ ∂H_i: ∂H_i transposed times a_{m−1}, then times the dropped b_jᵀ.
    let dh_t = dh
        .reshape_like(&(s, k, p, p))
        .permute::<_, Axes4<0, 1, 3, 2>>()
        + 0.0;
    let row = dh_t
        .matmul(last_row.broadcast_like::<_, Axes2<0, 1>>(&(s, k, p, 1)))
        .reshape_like(&(s, k, p));
    let dd = row.matmul(dropped_t); // (s, k, n − c₀)
    let dd_t = dd.retaped::<T>().permute::<_, Axes3<0, 2, 1>>() + 0.0;
    full - dd.matmul(dd_t)
}

impl<D: Backend> GuideFamily<D> for Implicit {
    /// Its entropy linearises the generator: an estimate, not the density.
    const EXACT_LOG_Q: bool = false;

    fn build(params: &mut ParamStore<D>, name: &str, dim: usize, args: &FamilyArgs) -> Self {
        let noise = args.count("noise").unwrap_or(dim.min(32)).max(1);
        let widths: Vec<usize> = args
            .list("hidden")
            .map(|v| v.iter().map(|&x| x as usize).collect())
            .unwrap_or_else(|| vec![64, 64]);
        let mut hidden = Vec::new();
        let mut inputs = noise;
        for (i, &w) in widths.iter().enumerate() {
            hidden.push(Dense::build_unit(
                params,
                &format!("{name}.hidden{i}"),
                inputs,
                w,
            ));
            inputs = w;
        }
        let output_variance = args.number("output_variance").unwrap_or(1e-5) as f32;
        let head = match args.name("generator") {
            Some("MatMul") => {
                let p = args.count("rank").unwrap_or(8).max(1);
                let (m, n) = matrix_shape(dim);
                // A and B are stored N(0, 1) and used times 1/√p (A's rows also times their
                // scale, INIT_SCALE until the start sets it), the core's entries near unit
                // size, so each entry of A H Bᵀ starts with a spread near its row's scale;
                // zero would stall them (each one's gradient is proportional to the
                // others'), and unit-size stored values make Adam's steps relative to them.
                let unit = |rows: usize, name: &str, params: &mut ParamStore<D>| {
                    let t: Tensor<(usize,), f32, D> =
                        params.device().sample_normal_like(&(rows * p,));
                    params.add(name.to_string(), t.as_vec())
                };
                Head::MatMul {
                    core: Dense::build_unit(params, &format!("{name}.core"), inputs, p * p),
                    a: unit(m, &format!("{name}.a"), params),
                    row_scale: params.add_constant(
                        format!("{name}.row_scale"),
                        vec![INIT_SCALE / (p as f32).sqrt(); m],
                    ),
                    b: unit(n, &format!("{name}.b"), params),
                    mean: params.add(format!("{name}.mean"), vec![0.0; dim]),
                    noise_log_sd: params.add(
                        format!("{name}.noise_log_sd"),
                        (0..m * n)
                            .map(|i| match i < dim {
                                true => 0.5 * output_variance.ln(),
                                false => UNUSED_LOG_SD,
                            })
                            .collect(),
                    ),
                    m,
                    n,
                    p,
                }
            }
            _ => {
                let output = Dense::build(params, &format!("{name}.output"), inputs, dim, 0.0, 0.0);
                let mut skip = vec![0.0; noise * dim];
                for i in 0..noise.min(dim) {
                    skip[i * dim + i] = INIT_SCALE;
                }
                Head::Dense {
                    output,
                    skip: params.add(format!("{name}.skip"), skip),
                }
            }
        };
        let bound = match args.name("bound") {
            Some("SmallestSingularValue") => EntropyBound::SmallestSingularValue,
            _ => EntropyBound::Exact,
        };
        Implicit {
            dim,
            noise,
            hidden,
            head,
            output_variance,
            entropy_weight: args.number("entropy_weight").unwrap_or(1.0) as f32,
            prior_weight: args.number("prior_weight").unwrap_or(1.0) as f32,
            bound,
            frame: None,
        }
    }

    /// In the Laplace Gaussian's frame (S = chol(H⁻¹)) the generator's output starts at 0
    /// (z at the mode) and its skip path at the frame's unit scale, so the family starts at
    /// that Gaussian over its first `noise` coordinates; otherwise the output starts at the
    /// given locations.
    fn start(&mut self, params: &mut ParamStore<D>, label: &str, start: &FamilyStart) {
        let d = self.dim;
        let centre = if start.has_gaussian() {
            self.frame = Some(Frame::set(params, label, &start.loc, &start.full_frame()));
            vec![0.0; d]
        } else {
            self.frame = None;
            Frame::clear(params, label);
            start.loc_f32()
        };
        match &self.head {
            Head::Dense { output, skip } => {
                params.set(output.bias(), &centre);
                let unit = start.unit_scale();
                let mut values = vec![0.0; self.noise * d];
                for i in 0..self.noise.min(d) {
                    values[i * d + i] = unit[i];
                }
                params.set(*skip, &values);
            }
            Head::MatMul {
                mean,
                row_scale,
                noise_log_sd,
                m,
                n,
                p,
                ..
            } => {
                params.set(*mean, &centre);
                // the output noise starts at √output_variance, or narrower where the
                // coordinate's start spread is (a net's weights)
                let ceiling = 0.5 * self.output_variance.ln();
                let unit = start.unit_scale();
                let log_sd: Vec<f32> = (0..m * n)
                    .map(|i| unit.get(i).map_or(UNUSED_LOG_SD, |u| u.ln().min(ceiling)))
                    .collect();
                params.set(*noise_log_sd, &log_sd);
                // each row's scale: the root mean square of its coordinates' start spreads
                let unit = start.unit_scale();
                let scales: Vec<f32> = (0..*m)
                    .map(|r| {
                        let row = &unit[(r * n).min(d)..((r + 1) * n).min(d)];
                        let ms = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>()
                            / row.len().max(1) as f64;
                        let rms = if row.is_empty() {
                            INIT_SCALE
                        } else {
                            ms.sqrt() as f32
                        };
                        rms / (*p as f32).sqrt()
                    })
                    .collect();
                params.set(*row_scale, &scales);
            }
        }
    }

    fn sample<T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        particles: usize,
        _estimator: Estimator,
    ) -> FamilyDraw<D, T> {
        let dev = params.device();
        let (s, k, d) = (particles, self.noise, self.dim);
        let eta: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&(s, k));
        // hundreds of thousands of them for a net's weights: the parallel streams
        let xi = ravi_backend::normals::standard_normals_vec(dev, (s, self.noise_width()));
        let (z, white_gram, half_log_det_noise) =
            self.generate_with_noise::<D, T>(params, eta, Some(xi));
        // q(z) ≈ N(g(η), J Jᵀ + D): ½ log det = ½ log det D + ½ log det M, M = I + Jᵀ D⁻¹ J
        let mut eye = vec![0.0f32; k * k];
        for i in 0..k {
            eye[i * k + i] = 1.0;
        }
        let m = white_gram
            + dev
                .tensor_from_vec(eye, (k, k))
                .broadcast_like::<_, Axis<0>>(&(s, k, k));
        let (values, grads) = self.half_log_det(&m.as_vec());
        let grads = dev.tensor_from_vec(grads, (s, k, k));
        let surrogate = (m * grads).sum::<(usize,), Axes2<1, 2>>();
        let held: Vec<f32> = surrogate.as_vec();
        let offset: Vec<f32> = values.iter().zip(&held).map(|(v, h)| v - h).collect();
        let half_log_det = surrogate + dev.tensor_from_vec(offset, (s,));
        // −H per particle: −[d/2 (1 + log 2π) + ½ log det D + ½ log det M]
        let log_q = (half_log_det + half_log_det_noise).negate() - gaussian_entropy_constant(d);
        match &self.frame {
            None => FamilyDraw { z, log_q },
            Some(f) => FamilyDraw {
                z: f.apply(params, z),
                log_q: log_q - f.log_det(),
            },
        }
    }

    fn prior_weight(&self) -> f32 {
        self.prior_weight
    }

    fn entropy_weight(&self) -> f32 {
        self.entropy_weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ravi_backend::FamilyArg;

    fn args(noise: f64, bound: &'static str) -> FamilyArgs {
        FamilyArgs(vec![
            ("noise", FamilyArg::Number(noise)),
            ("hidden", FamilyArg::List(vec![6.0, 5.0])),
            ("output_variance", FamilyArg::Number(1e-3)),
            ("bound", FamilyArg::Name(bound)),
        ])
    }

    fn randomized(a: &FamilyArgs, dim: usize) -> (Implicit, ParamStore<Cpu>, Cpu) {
        let dev = Cpu::seed_from_u64(21);
        let mut store = ParamStore::new(&dev);
        let f: Implicit = GuideFamily::<Cpu>::build(&mut store, "z", dim, a);
        // every parameter at random (the constants, a mask and row scales, as built)
        let ids: Vec<_> = store.ids().filter(|&id| !store.is_constant(id)).collect();
        for id in ids {
            let n = store.get(id).shape().0;
            let v: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(n,));
            let v: Vec<f32> = v.as_vec().iter().map(|x| 0.5 * x).collect();
            store.set(id, &v);
        }
        (f, store, dev)
    }

    /// The matrix-multiplication generator's Jᵀ D⁻¹ J against central finite differences, with
    /// d = 7 (not a product m·n: the last entries of A H Bᵀ are dropped) and with d = 9.
    #[test]
    fn matmul_generator_gram_matches_finite_differences() {
        for (d, (m, n)) in [(7, (3, 3)), (9, (3, 3)), (10, (4, 3))] {
            let mut a = args(3.0, "Exact");
            a.0.push(("generator", FamilyArg::Name("MatMul")));
            a.0.push(("rank", FamilyArg::Number(2.0)));
            let (f, store, dev) = randomized(&a, d);
            assert!(
                matches!(f.head, Head::MatMul { m: mm, n: nn, p: 2, .. } if (mm, nn) == (m, n)),
                "{:?}",
                f.head
            );
            check_jacobian(&f, &store, &dev, d);
        }
    }

    /// Jᵀ D⁻¹ J as `generate` gives it against g's Jacobian by central differences.
    fn check_jacobian(f: &Implicit, store: &ParamStore<Cpu>, dev: &Cpu, d: usize) {
        let eta = [0.3f32, -0.7, 1.1];
        let g = |e: &[f32]| {
            f.generate::<Cpu, NoneTape>(store, dev.tensor_from_vec(e.to_vec(), (1usize, 3usize)))
                .0
                .as_vec()
        };
        let (_, gram) =
            f.generate::<Cpu, NoneTape>(store, dev.tensor_from_vec(eta.to_vec(), (1usize, 3usize)));
        let gram = gram.as_vec(); // (1, k, k)
        let h = 1e-2f32;
        let columns: Vec<Vec<f64>> = (0..3)
            .map(|j| {
                let (mut up, mut down) = (eta.to_vec(), eta.to_vec());
                up[j] += h;
                down[j] -= h;
                let (gu, gd) = (g(&up), g(&down));
                assert_eq!(gu.len(), d);
                (0..d)
                    .map(|i| f64::from(gu[i] - gd[i]) / (2.0 * f64::from(h)))
                    .collect()
            })
            .collect();
        let variances = f.output_variances(store);
        for i in 0..3 {
            for j in 0..3 {
                let fd: f64 = (0..d)
                    .map(|r| columns[i][r] * columns[j][r] / variances[r])
                    .sum();
                let got = f64::from(gram[i * 3 + j]);
                assert!(
                    (got - fd).abs() < 3e-3 * (1.0 + fd.abs()),
                    "(JᵀJ)_{i}{j}: {got} vs {fd}"
                );
            }
        }
    }

    /// The forward-mode Jacobian against central finite differences of g.
    #[test]
    fn jacobian_matches_finite_differences() {
        let (f, store, dev) = randomized(&args(3.0, "Exact"), 4);
        check_jacobian(&f, &store, &dev, 4);
    }

    /// For a linear generator (no hidden layers) the linearisation is exact: q is the
    /// Gaussian N(b, Aᵀ A + σ²I), A = skip + W_out (k×d), and −(log q term) its entropy,
    /// computed densely.
    #[test]
    fn entropy_is_exact_for_a_linear_generator() {
        let a = FamilyArgs(vec![
            ("noise", FamilyArg::Number(2.0)),
            ("hidden", FamilyArg::List(vec![])),
            ("output_variance", FamilyArg::Number(1e-2)),
        ]);
        let (f, store, _) = randomized(&a, 3);
        // g(η) = η (skip + W_out) + b: the map's matrix, read back through unit noise.
        let Head::Dense { output, skip } = &f.head else {
            unreachable!("the dense generator")
        };
        let skip = store.get(*skip).as_vec(); // 2 × 3
        let out = output.weight::<Cpu, NoneTape>(&store).as_vec();
        let map: Vec<f64> = skip
            .iter()
            .zip(&out)
            .map(|(a, b)| f64::from(*a) + f64::from(*b))
            .collect();
        let mut cov = Matrix::zeros(3);
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..2).map(|r| map[r * 3 + i] * map[r * 3 + j]).sum();
                cov.set(i, j, v + if i == j { 1e-2 } else { 0.0 });
            }
        }
        let h = 0.5 * cov.log_abs_det() + 3.0 * 0.5 * (1.0 + (2.0 * std::f64::consts::PI).ln());
        let draw = f.sample::<NoneTape>(&store, 4, Estimator::Standard);
        for l in draw.log_q.as_vec() {
            assert!((f64::from(l) + h).abs() < 1e-3, "{l} vs −H {}", -h);
        }
    }

    /// The matrix-multiplication generator with no hidden layer is linear in η, so q is
    /// exactly N(g(0), J Jᵀ + D) with D its learned per-coordinate noise. With σ equal
    /// within each row of the m × n matrix, −log q of every draw is that Gaussian's
    /// entropy, computed densely; with σ varying within rows it is a lower bound on it (the
    /// Jacobian term takes each row's largest σ). d = 7: two entries of the 3 × 3 matrix
    /// dropped.
    #[test]
    fn matmul_entropy_is_exact_for_a_linear_core_and_a_bound_otherwise() {
        let a = FamilyArgs(vec![
            ("noise", FamilyArg::Number(2.0)),
            ("hidden", FamilyArg::List(vec![])),
            ("generator", FamilyArg::Name("MatMul")),
            ("rank", FamilyArg::Number(2.0)),
        ]);
        let d = 7;
        let (f, mut store, dev) = randomized(&a, d);
        let Head::MatMul {
            noise_log_sd,
            row_scale,
            n,
            m,
            ..
        } = f.head
        else {
            unreachable!("the matrix-multiplication generator")
        };
        // a Jacobian term of the noise's size
        store.set(row_scale, &vec![1.0; m]);
        let entropy = |store: &ParamStore<Cpu>| {
            let g = |e: [f32; 2]| {
                f.generate::<Cpu, NoneTape>(
                    store,
                    dev.tensor_from_vec(e.to_vec(), (1usize, 2usize)),
                )
                .0
                .as_vec()
            };
            let origin = g([0.0, 0.0]);
            let columns: Vec<Vec<f64>> = [[1.0, 0.0], [0.0, 1.0]]
                .iter()
                .map(|&e| {
                    g(e).iter()
                        .zip(&origin)
                        .map(|(a, b)| f64::from(a - b))
                        .collect()
                })
                .collect();
            let log_sd = store.get(noise_log_sd).as_vec();
            let mut cov = Matrix::zeros(d);
            for i in 0..d {
                for j in 0..d {
                    let v: f64 = columns.iter().map(|c| c[i] * c[j]).sum();
                    let noise = (2.0 * f64::from(log_sd[i])).exp();
                    cov.set(i, j, v + if i == j { noise } else { 0.0 });
                }
            }
            0.5 * cov.log_abs_det() + d as f64 * 0.5 * (1.0 + (2.0 * std::f64::consts::PI).ln())
        };
        let neg_log_q = |store: &ParamStore<Cpu>| {
            f.sample::<NoneTape>(store, 4, Estimator::Standard)
                .log_q
                .as_vec()
                .into_iter()
                .map(|l| -f64::from(l))
                .collect::<Vec<_>>()
        };
        // σ varying within rows: a lower bound, strictly below here
        let h = entropy(&store);
        for bound in neg_log_q(&store) {
            assert!(bound < h - 0.01, "bound {bound} vs H {h}");
        }
        // σ equal within each row: exact
        let log_sd = store.get(noise_log_sd).as_vec();
        let per_row: Vec<f32> = (0..log_sd.len()).map(|i| log_sd[(i / n) * n]).collect();
        store.set(noise_log_sd, &per_row);
        let h = entropy(&store);
        for got in neg_log_q(&store) {
            assert!((got - h).abs() < 2e-3 * h.abs().max(1.0), "{got} vs H {h}");
        }
    }

    /// The matrix's shape: exact factorizations with n ≤ 2m where they exist (the MNIST
    /// MLP's 478,410 weights as 555 × 862), ⌈√d⌉ rows otherwise; always m·n ≥ d.
    #[test]
    fn the_matrix_shape_factors_d_when_it_can() {
        assert_eq!(matrix_shape(478_410), (555, 862));
        assert_eq!(matrix_shape(9), (3, 3));
        assert_eq!(matrix_shape(12), (3, 4));
        assert_eq!(matrix_shape(7), (3, 3));
        assert_eq!(matrix_shape(10), (4, 3));
        assert_eq!(matrix_shape(0), (1, 0));
        for d in 1..2000 {
            let (m, n) = matrix_shape(d);
            assert!(m * n >= d && m * n < d + m.max(n), "{d}: {m} × {n}");
        }
    }

    #[test]
    fn the_singular_value_bound_never_exceeds_the_exact_entropy() {
        let (exact, store, _) = randomized(&args(3.0, "Exact"), 5);
        let mut bound = exact.clone();
        bound.bound = EntropyBound::SmallestSingularValue;
        let dev = Cpu::seed_from_u64(5);
        let eta: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(50, 3));
        let (_, gram) = exact.generate::<Cpu, NoneTape>(&store, eta);
        let gram = gram.as_vec();
        let m: Vec<f32> = gram
            .chunks(9)
            .flat_map(|b| {
                b.iter()
                    .enumerate()
                    .map(|(i, v)| if i % 4 == 0 { v + 1.0 } else { *v })
                    .collect::<Vec<_>>()
            })
            .collect();
        let (e, _) = exact.half_log_det(&m);
        let (b, _) = bound.half_log_det(&m);
        for (e, b) in e.iter().zip(&b) {
            assert!(b <= &(e + 1e-4), "bound {b} above exact {e}");
        }
    }

    /// The surrogate's gradient of ½ log det M against finite differences in a parameter:
    /// the dense generator's skip path, and the matrix-multiplication one's A (through the
    /// core's Gram products and the dropped entries' correction).
    #[test]
    fn entropy_gradient_matches_finite_differences() {
        let (f, store, dev) = randomized(&args(2.0, "Exact"), 3);
        let Head::Dense { skip, .. } = &f.head else {
            unreachable!("the dense generator")
        };
        let id = *skip;
        check_entropy_gradient(&f, store, &dev, id);
        // d = 7 drops two entries of the 3 × 3 matrix; d = 9 drops none (another path)
        for d in [7, 9] {
            let mut a = args(2.0, "Exact");
            a.0.push(("generator", FamilyArg::Name("MatMul")));
            a.0.push(("rank", FamilyArg::Number(2.0)));
            let (f, store, dev) = randomized(&a, d);
            let Head::MatMul { a, b, .. } = &f.head else {
                unreachable!("the matrix-multiplication generator")
            };
            let (a, b) = (*a, *b);
            check_entropy_gradient(&f, store.clone(), &dev, a);
            check_entropy_gradient(&f, store, &dev, b);
        }
    }

    fn check_entropy_gradient(f: &Implicit, mut store: ParamStore<Cpu>, dev: &Cpu, id: ParamId) {
        let eta: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(8, 2));
        let half_log_det = |store: &ParamStore<Cpu>| -> f64 {
            let (_, gram) = f.generate::<Cpu, NoneTape>(store, eta.clone());
            let gram = gram.as_vec();
            let m: Vec<f32> = gram
                .chunks(4)
                .flat_map(|b| [b[0] + 1.0, b[1], b[2], b[3] + 1.0])
                .collect();
            f.half_log_det(&m).0.iter().map(|v| f64::from(*v)).sum()
        };
        // the taped value
        let (_, gram) = f.generate::<Cpu, dfdx::tensor::OwnedTape<f32, Cpu>>(&store, eta.clone());
        let eye = dev
            .tensor_from_vec(vec![1.0, 0.0, 0.0, 1.0], (2usize, 2usize))
            .broadcast_like::<_, Axis<0>>(&(8, 2, 2));
        let m = gram + eye;
        let (_, grads) = f.half_log_det(&m.as_vec());
        let grads = dev.tensor_from_vec(grads, (8, 2, 2));
        let total = (m * grads).sum::<(), _>();
        let g = total.backward();
        let analytic = g.get(store.get(id)).as_vec();
        let base = store.get(id).as_vec();
        for i in 0..base.len() {
            let step = 1e-3f32;
            let mut v = base.clone();
            v[i] += step;
            store.set(id, &v);
            let up = half_log_det(&store);
            v[i] = base[i] - step;
            store.set(id, &v);
            let down = half_log_det(&store);
            store.set(id, &base);
            let fd = (up - down) / (2.0 * f64::from(step));
            assert!(
                (f64::from(analytic[i]) - fd).abs() < 2e-2 * (1.0 + fd.abs()),
                "parameter element {i}: {} vs {fd}",
                analytic[i]
            );
        }
    }
}
