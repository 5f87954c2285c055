//! Inverse autoregressive flow (Kingma et al. 2016) with a MADE network (Germain et al. 2015).

use dfdx::prelude::*;
use ravi_backend::{Backend, ParamStore, Particles, PerParticle, Tape};

use super::Dense;

/// y = σ ⊙ x + (1 − σ) ⊙ m with (m, s) = MADE(x) autoregressive (output i sees only the
/// inputs before i in the layer's order), σ = sigmoid(s); log |det| = Σ log σ. The
/// sigmoid gate starts near 1 (bias +3) with m = 0 from zero output weights, so the layer
/// starts as the identity. The order reverses from one layer to the next.
///
/// The inverse needs d passes (one coordinate becomes exact per pass).
#[derive(Debug, Clone)]
pub struct Iaf {
    dim: usize,
    hidden: Dense,
    shift: Dense,
    gate: Dense,
    /// MADE masks: inputs → hidden (d × h) and hidden → outputs (h × d).
    mask_in: Vec<f32>,
    mask_out: Vec<f32>,
    width: usize,
}

/// The initial gate bias: sigmoid(3) ≈ 0.95.
const GATE_BIAS: f32 = 3.0;

impl Iaf {
    /// Registers the MADE network under `{name}.hidden`, `.shift` and `.gate`, `hidden` units
    /// wide; `reversed` reverses the autoregressive order.
    pub fn build<D: Backend>(
        params: &mut ParamStore<D>,
        name: &str,
        dim: usize,
        hidden: usize,
        reversed: bool,
    ) -> Self {
        // Degrees: input j has degree order(j) in 1..=d; hidden units cycle through 1..d−1
        // (0 when d = 1: they see nothing); output i may use hidden units of lower degree.
        let degree_in: Vec<usize> = (0..dim)
            .map(|j| if reversed { dim - j } else { j + 1 })
            .collect();
        let degree_hidden: Vec<usize> = (0..hidden)
            .map(|k| if dim > 1 { k % (dim - 1) + 1 } else { 0 })
            .collect();
        let mut mask_in = vec![0.0; dim * hidden];
        for j in 0..dim {
            for k in 0..hidden {
                if degree_hidden[k] >= degree_in[j] && degree_hidden[k] > 0 {
                    mask_in[j * hidden + k] = 1.0;
                }
            }
        }
        let mut mask_out = vec![0.0; hidden * dim];
        for k in 0..hidden {
            for i in 0..dim {
                if degree_in[i] > degree_hidden[k] {
                    mask_out[k * dim + i] = 1.0;
                }
            }
        }
        let scale = 1.0 / (dim as f32).sqrt();
        Iaf {
            dim,
            hidden: Dense::build(params, &format!("{name}.hidden"), dim, hidden, scale, 0.0),
            shift: Dense::build(params, &format!("{name}.shift"), hidden, dim, 0.0, 0.0),
            gate: Dense::build(params, &format!("{name}.gate"), hidden, dim, 0.0, GATE_BIAS),
            mask_in,
            mask_out,
            width: hidden,
        }
    }

    /// m and σ from x.
    fn shift_and_gate<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, Particles<D, T>) {
        let dev = params.device();
        let m_in = dev.tensor_from_vec(self.mask_in.clone(), (self.dim, self.width));
        let m_out = dev.tensor_from_vec(self.mask_out.clone(), (self.width, self.dim));
        let h = self.hidden.apply(params, x, Some(&m_in)).tanh();
        let m = self.shift.apply(params, h.retaped::<T>(), Some(&m_out));
        let gate = self.gate.apply(params, h, Some(&m_out)).sigmoid();
        (m, gate)
    }

    /// y and log |det ∂y/∂x| per particle (one pass).
    pub fn forward<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let (m, gate) = self.shift_and_gate(params, x.retaped::<T>());
        let log_det = gate.retaped::<T>().ln().sum::<(usize,), Axis<1>>();
        // σ x + (1 − σ) m = m + σ (x − m)
        let y = gate * (x - m.retaped::<T>()) + m;
        (y, log_det)
    }

    /// x from y, with no gradient (d passes).
    pub fn inverse<D: Backend>(
        &self,
        params: &ParamStore<D>,
        y: Particles<D, NoneTape>,
    ) -> Particles<D, NoneTape> {
        self.inverse_taped(params, y)
    }

    /// The inverse on a tape: d passes, x ← m(x) + (y − m(x)) / σ(x); after pass i the
    /// first i coordinates in the layer's order are exact.
    pub fn inverse_taped<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        y: Particles<D, T>,
    ) -> Particles<D, T> {
        let mut x = y.retaped::<T>();
        for _ in 0..self.dim {
            let (m, gate) = self.shift_and_gate(params, x);
            x = (y.retaped::<T>() - m.retaped::<T>()) / gate + m;
        }
        // Bring y's own tape along (it carries the ops that made y).
        x + y * 0.0
    }
}

/// A masked autoregressive flow layer (Papamakarios et al. 2017): an IAF run backwards.
/// Its forward map is the IAF's inverse (d sequential passes, so sampling is slower than an
/// IAF's), its log |det| minus the IAF's at the result, and its inverse one IAF pass.
#[derive(Debug, Clone)]
pub struct Maf(pub Iaf);

impl Maf {
    /// Registers the MADE network as [`Iaf::build`] does.
    pub fn build<D: Backend>(
        params: &mut ParamStore<D>,
        name: &str,
        dim: usize,
        hidden: usize,
        reversed: bool,
    ) -> Self {
        Maf(Iaf::build(params, name, dim, hidden, reversed))
    }

    /// y and log |det ∂y/∂x| per particle (d passes).
    pub fn forward<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let y = self.0.inverse_taped(params, x);
        let (_, log_det) = self.0.forward(params, y.retaped::<T>());
        (y, log_det.negate())
    }

    /// x from y (one pass).
    pub fn inverse<D: Backend>(
        &self,
        params: &ParamStore<D>,
        y: Particles<D, NoneTape>,
    ) -> Particles<D, NoneTape> {
        self.0.forward::<D, NoneTape>(params, y).0
    }
}
