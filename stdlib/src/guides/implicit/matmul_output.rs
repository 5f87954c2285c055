//! The matrix-multiplication head's output, z = mean + first d entries of A H Bᵀ + σ ⊙ ξ
//! per particle: the family's pass over all d coordinates (478,410 of them for the paper's
//! network). As dfdx ops it is eight ops, each allocating its output and its gradient and
//! passing over the m·n entries; on the CPU it is one host op: one matrix product over the
//! particles' stacked rows and one loop forward, two products and one loop back.

use dfdx::prelude::*;
use ravi_backend::gemm::par_gemm;
use ravi_backend::host_op::{add_cpu_gradient, cpu_gradient, is_cpu, laid_out};
use ravi_backend::{Backend, Particles, Tape};

/// The head's matrix: m × n, the first d entries used, from a core of rank p.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    pub m: usize,
    pub n: usize,
    pub p: usize,
    pub d: usize,
}

/// What the output is made of, on the tape.
pub(super) struct Output<D: Backend, T: Tape<D>> {
    /// A H per particle, (particles, m, p).
    pub ah: Tensor<(usize, usize, usize), f32, D, T>,
    /// B as the product uses it, n × p.
    pub b: Tensor<(usize, usize), f32, D, T>,
    /// log σ per entry of the matrix (m·n; the entries past d unused).
    pub log_sd: Tensor<(usize,), f32, D, T>,
    /// The mean (d).
    pub mean: Tensor<(usize,), f32, D, T>,
    /// ξ, particles × m·n standard normals; `None`: no output noise.
    pub xi: Option<Vec<f32>>,
}

impl<D: Backend, T: Tape<D>> Output<D, T> {
    /// z, (particles, d): on the host where the device is the CPU, else as dfdx ops.
    pub fn z(self, dims: Dims) -> Particles<D, T> {
        match is_cpu::<D>() {
            true => self.on_host(dims),
            false => self.on_graph(dims),
        }
    }

    /// z as dfdx ops, on any device.
    pub fn on_graph(self, Dims { m, n, p: _, d }: Dims) -> Particles<D, T> {
        let Output {
            ah,
            b,
            log_sd,
            mean,
            xi,
        } = self;
        let s = ah.shape().0;
        let dev = ah.device().clone();
        // dfdx's permute keeps the tensor's id, and a product of two operands with one id
        // breaks its backward pass: the transpose is materialised (+ 0)
        let b_t = b.permute::<_, Axes2<1, 0>>() + 0.0;
        let product = ah.matmul(b_t);
        let product = match xi {
            Some(xi) => {
                let sd = log_sd
                    .exp()
                    .reshape_like(&(m, n))
                    .broadcast_like::<_, Axis<0>>(&(s, m, n));
                product + sd * dev.tensor_from_vec(xi, (s, m, n))
            }
            None => product,
        }
        .reshape_like(&(s, m * n));
        let product = if m * n == d {
            product
        } else {
            product.slice((.., 0..d))
        };
        product + mean.broadcast_like::<_, Axis<0>>(&(s, d))
    }

    /// z as one host op on the CPU, with its backward pass on the tape.
    pub fn on_host(self, dims: Dims) -> Particles<D, T> {
        // (laid out in order, as the gradients are written)
        let (ah, tape) = self.ah.contiguous().split_tape();
        let (b, tape_b) = self.b.contiguous().split_tape();
        let (log_sd, tape_sd) = self.log_sd.contiguous().split_tape();
        let (mean, tape_mean) = self.mean.contiguous().split_tape();
        let mut tape = tape.merge(tape_b).merge(tape_sd).merge(tape_mean);
        let s = ah.shape().0;
        let host = Host {
            dims,
            particles: s,
            ah: laid_out(&ah),
            b: laid_out(&b),
            sd: self.xi.as_ref().map(|_| exps(&laid_out(&log_sd)[..dims.d])),
            xi: self.xi,
        };
        let z = host.forward(&laid_out(&mean));
        let out = ah.device().tensor_from_vec(z, (s, dims.d));
        if T::OWNS_TAPE {
            // (holds the output's buffer until the backward pass; only its id is read)
            let out_id = out.clone();
            tape.add_backward_op(move |grads| {
                let back = host.backward(cpu_gradient(grads, &out_id)?);
                add_cpu_gradient(grads, &ah, &back.ah)?;
                add_cpu_gradient(grads, &b, &back.b)?;
                add_cpu_gradient(grads, &log_sd, &back.log_sd)?;
                add_cpu_gradient(grads, &mean, &back.mean)
            });
        }
        out.put_tape(tape)
    }
}

ravi_backend::simd_dispatch!(exps_into, exps_avx2, exps_body, (x: &[f32], out: &mut [f32]) -> ());

/// eˣ of each entry, vectorized (libm's `exp` is a call per entry).
fn exps(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    exps_into(x, &mut out);
    out
}

/// [`exps`] into `out` (a plain loop, which vectorizes).
#[inline(always)]
fn exps_body(x: &[f32], out: &mut [f32]) {
    for (out, &x) in out.iter_mut().zip(x) {
        *out = ravi_backend::math::exp(x);
    }
}

/// The host op's operands, kept for its backward pass.
struct Host {
    dims: Dims,
    particles: usize,
    ah: Vec<f32>,
    b: Vec<f32>,
    /// σ over the first d entries, where there is output noise.
    sd: Option<Vec<f32>>,
    xi: Option<Vec<f32>>,
}

/// The gradients of the op's operands.
struct OperandGradients {
    ah: Vec<f32>,
    b: Vec<f32>,
    log_sd: Vec<f32>,
    mean: Vec<f32>,
}

impl Host {
    /// z, particles × d.
    fn forward(&self, mean: &[f32]) -> Vec<f32> {
        let Dims { m, n, p, d } = self.dims;
        let s = self.particles;
        // the particles' A H stacked (s·m × p) times Bᵀ (p × n, B read transposed)
        let mut product = vec![0.0f32; s * m * n];
        par_gemm(
            (s * m, p, n),
            &self.ah,
            (p, 1),
            &self.b,
            (1, p),
            0.0,
            &mut product,
        );
        let mut z = match m * n == d {
            true => product,
            false => product
                .chunks((m * n).max(1))
                .flat_map(|row| row[..d].iter().copied())
                .collect(),
        };
        for (q, z) in z.chunks_mut(d.max(1)).enumerate() {
            match (&self.sd, &self.xi) {
                (Some(sd), Some(xi)) => {
                    let xi = &xi[q * m * n..q * m * n + d];
                    for (((z, mu), sd), xi) in z.iter_mut().zip(mean).zip(sd).zip(xi) {
                        *z += mu + sd * xi;
                    }
                }
                _ => z.iter_mut().zip(mean).for_each(|(z, mu)| *z += mu),
            }
        }
        z
    }

    /// The operands' gradients from z's (particles × d).
    fn backward(&self, g: &[f32]) -> OperandGradients {
        let Dims { m, n, p, d } = self.dims;
        let s = self.particles;
        let mut mean = vec![0.0f32; d];
        let mut log_sd = vec![0.0f32; m * n];
        for (q, g) in g.chunks(d.max(1)).enumerate() {
            mean.iter_mut().zip(g).for_each(|(a, g)| *a += g);
            if let (Some(sd), Some(xi)) = (&self.sd, &self.xi) {
                let xi = &xi[q * m * n..q * m * n + d];
                for (((a, g), sd), xi) in log_sd.iter_mut().zip(g).zip(sd).zip(xi) {
                    *a += g * sd * xi;
                }
            }
        }
        // the product's gradient, m × n per particle (zero past d)
        let padded;
        let g_product: &[f32] = match m * n == d {
            true => g,
            false => {
                let mut full = vec![0.0f32; s * m * n];
                for (full, g) in full.chunks_mut(m * n).zip(g.chunks(d.max(1))) {
                    full[..d].copy_from_slice(g);
                }
                padded = full;
                &padded
            }
        };
        // ∂(A H) = G B per particle (stacked: s·m × n times n × p); ∂B = Σ Gᵀ (A H): the
        // stacked Gᵀ (n × s·m) times the stacked A H (s·m × p)
        let mut ah = vec![0.0f32; s * m * p];
        par_gemm(
            (s * m, n, p),
            g_product,
            (n, 1),
            &self.b,
            (p, 1),
            0.0,
            &mut ah,
        );
        let mut b = vec![0.0f32; n * p];
        par_gemm(
            (n, s * m, p),
            g_product,
            (1, n),
            &self.ah,
            (p, 1),
            0.0,
            &mut b,
        );
        OperandGradients {
            ah,
            b,
            log_sd,
            mean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ravi_backend::Cpu;

    /// The host op and the dfdx ops give the same z and the same gradients in every operand,
    /// with the matrix's last entries dropped (d < m·n) and not, with and without noise.
    #[test]
    fn the_host_op_matches_the_graph() {
        let dev = Cpu::seed_from_u64(3);
        let (s, m, n, p) = (2, 3, 4, 2);
        for (d, noise) in [(12, true), (10, true), (10, false)] {
            let dims = Dims { m, n, p, d };
            let normal = |len: usize| -> Vec<f32> {
                let t: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(len,));
                t.as_vec()
            };
            let (ah, b, log_sd, mean) =
                (normal(s * m * p), normal(n * p), normal(m * n), normal(d));
            let xi = noise.then(|| normal(s * m * n));
            let weights = dev.tensor_from_vec(normal(s * d), (s, d));
            let run = |host: bool| {
                let leaves = (
                    dev.tensor_from_vec(ah.clone(), (s, m, p)),
                    dev.tensor_from_vec(b.clone(), (n, p)),
                    dev.tensor_from_vec(log_sd.clone(), (m * n,)),
                    dev.tensor_from_vec(mean.clone(), (d,)),
                );
                let output = Output {
                    ah: leaves.0.clone().leaky_traced(),
                    b: leaves.1.clone().leaky_traced(),
                    log_sd: leaves.2.clone().leaky_traced(),
                    mean: leaves.3.clone().leaky_traced(),
                    xi: xi.clone(),
                };
                let z = match host {
                    true => output.on_host(dims),
                    false => output.on_graph(dims),
                };
                let values = z.as_vec();
                let grads = (z * weights.clone()).sum::<(), _>().backward();
                // (without noise the graph never reads log σ: no gradient to compare)
                let gradients = [
                    grads.get(&leaves.0).as_vec(),
                    grads.get(&leaves.1).as_vec(),
                    match noise {
                        true => grads.get(&leaves.2).as_vec(),
                        false => vec![0.0; m * n],
                    },
                    grads.get(&leaves.3).as_vec(),
                ];
                (values, gradients)
            };
            let (host, graph) = (run(true), run(false));
            let close = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                        "{what} (d = {d}): {a:?} against {b:?}"
                    );
                }
            };
            close(&host.0, &graph.0, "z");
            for (k, what) in ["A H", "B", "log σ", "mean"].iter().enumerate() {
                close(&host.1[k], &graph.1[k], what);
            }
            // the dropped entries' noise sd take no gradient
            assert!(host.1[2][d..].iter().all(|&g| g == 0.0));
        }
    }
}
