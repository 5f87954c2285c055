//! A guide family's frame: fixed affine coordinates z = shift + S u in which the family
//! works, so that its parameters and the optimiser's steps are in units of the posterior.
//!
//! Why: Adam moves each coordinate by about the learning rate per step whatever its scale,
//! so on raw-scale data an intercept of 6·10⁴ is never reached while a coefficient whose
//! posterior sd is 10⁻³ jitters far beyond it. The fit's initialisation (`crate::init`)
//! finds the Laplace approximation N(m, Σ) of the posterior and gives each family the frame
//! shift = m and S a square root of Σ (a Cholesky factor, or a diagonal for the factorized
//! families), with the family itself starting at N(0, I) in u. A Gaussian family in a frame
//! is the same family in z (μ = shift + S μ_u, L = S L_u), and log q(z) = log q_u(u) −
//! log |det S|; every estimator is unchanged because S is a constant.
//!
//! The frame lives in the guide's [`ParamStore`] as two constants, `{label}.frame.shift` and
//! `{label}.frame.scale` (d values for a diagonal S, d × d row-major for a lower-triangular
//! one): the optimiser skips them and a copy of the store carries them. The family holds
//! its [`Frame`] (the two ids) and hands it to the host engine with its other parameters
//! (`GuideFamily::host_gaussian`), so the graph and the engine read the same frame. A
//! family with no frame is in the identity frame; a family restarted without a Gaussian
//! [`clear`](Frame::clear)s the constants of the frame it had, so that the store holds no
//! stale one.

use dfdx::prelude::*;

use crate::device::{Backend, Tape};
use crate::linalg::Matrix;
use crate::params::{ParamId, ParamStore};
use crate::particles::Particles;

/// S of a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameScale {
    /// S = diag(s), s > 0.
    Diagonal(Vec<f64>),
    /// S lower triangular with a positive diagonal.
    Lower(Matrix),
}

impl FrameScale {
    fn log_det(&self) -> f64 {
        match self {
            FrameScale::Diagonal(s) => s.iter().map(|v| v.ln()).sum(),
            FrameScale::Lower(l) => (0..l.n).map(|i| l.get(i, i).ln()).sum(),
        }
    }
}

/// A family's frame in the store: the ids of its two constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// The id of the shift, `dim` values.
    pub shift: ParamId,
    /// The id of S: `dim` values (diagonal) or `dim × dim` row-major (lower triangular).
    pub scale: ParamId,
    dim: usize,
    full: bool,
    /// log |det S|.
    log_det: f32,
}

/// The store names of the frame of the family labelled `label`.
pub fn frame_names(label: &str) -> (String, String) {
    (
        format!("{label}.frame.shift"),
        format!("{label}.frame.scale"),
    )
}

impl Frame {
    /// Registers (or overwrites) the frame of the family labelled `label`.
    pub fn set<D: Backend>(
        params: &mut ParamStore<D>,
        label: &str,
        shift: &[f64],
        scale: &FrameScale,
    ) -> Frame {
        let dim = shift.len();
        let (values, full) = match scale {
            FrameScale::Diagonal(s) => {
                assert_eq!(
                    s.len(),
                    dim,
                    "a diagonal frame has one scale per coordinate"
                );
                (s.iter().map(|&v| v as f32).collect(), false)
            }
            FrameScale::Lower(l) => {
                assert_eq!(l.n, dim, "a d × d frame");
                let mut v = l.to_f32();
                for i in 0..dim {
                    v[i * dim + i + 1..(i + 1) * dim].fill(0.0);
                }
                (v, true)
            }
        };
        let (shift_name, scale_name) = frame_names(label);
        let shift = params.set_constant(&shift_name, shift.iter().map(|&v| v as f32).collect());
        let scale_id = params.set_constant(&scale_name, values);
        Frame {
            shift,
            scale: scale_id,
            dim,
            full,
            log_det: scale.log_det() as f32,
        }
    }

    /// Puts the frame of the family labelled `label`, if the store holds one, back to the
    /// identity: a family restarted where there is no Gaussian to take a frame from works in
    /// z again, and its stored constants say so.
    pub fn clear<D: Backend>(params: &mut ParamStore<D>, label: &str) {
        let (shift_name, scale_name) = frame_names(label);
        let (Some(shift), Some(scale)) = (params.find(&shift_name), params.find(&scale_name))
        else {
            return;
        };
        let d = params.get(shift).shape().0;
        let identity = HostFrame::identity(d, params.get(scale).shape().0 != d);
        params.set(shift, &identity.shift);
        params.set(scale, &identity.scale);
    }

    /// The number of coordinates the frame maps.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// log |det S|: what log q loses in the map from u to z.
    pub fn log_det(&self) -> f32 {
        self.log_det
    }

    /// z = shift + S u for each particle's u (a row of `u`), on u's tape.
    pub fn apply<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        u: Particles<D, T>,
    ) -> Particles<D, T> {
        let shape = *u.shape();
        let d = self.dim;
        let shift = params.get(self.shift).clone();
        let scale = params.get(self.scale).clone();
        let scaled = if self.full {
            // rows u Sᵀ; the taped operand stays on the left of the product
            u.matmul(scale.reshape_like(&(d, d)).permute::<_, Axes2<1, 0>>())
        } else {
            u * scale.broadcast_like::<_, Axis<0>>(&shape)
        };
        scaled + shift.broadcast_like::<_, Axis<0>>(&shape)
    }

    /// The frame's values on the host.
    pub fn host<D: Backend>(&self, params: &ParamStore<D>) -> HostFrame {
        HostFrame::read(params, self.shift, self.scale)
    }
}

/// A frame's values on the host (for the host engine, and for families' accessors).
#[derive(Debug, Clone, PartialEq)]
pub struct HostFrame {
    /// The shift, one value per coordinate.
    pub shift: Vec<f32>,
    /// d values (diagonal) or d × d row-major (lower triangular).
    pub scale: Vec<f32>,
    /// Whether S is a lower-triangular matrix (else a diagonal).
    pub full: bool,
}

impl HostFrame {
    fn read<D: Backend>(params: &ParamStore<D>, shift: ParamId, scale: ParamId) -> HostFrame {
        let shift = params.get(shift).as_vec();
        let scale = params.get(scale).as_vec();
        // d values are a diagonal; d × d a lower-triangular matrix (the same thing when d = 1)
        let full = scale.len() != shift.len();
        HostFrame { shift, scale, full }
    }

    fn identity(d: usize, full: bool) -> HostFrame {
        let scale = if full {
            (0..d * d)
                .map(|k| if k % (d + 1) == 0 { 1.0 } else { 0.0 })
                .collect()
        } else {
            vec![1.0; d]
        };
        HostFrame {
            shift: vec![0.0; d],
            scale,
            full,
        }
    }

    /// The number of coordinates the frame maps.
    pub fn dim(&self) -> usize {
        self.shift.len()
    }

    /// S's diagonal.
    pub fn diagonal(&self) -> Vec<f32> {
        let d = self.dim();
        if self.full {
            (0..d).map(|i| self.scale[i * d + i]).collect()
        } else {
            self.scale.clone()
        }
    }

    /// log |det S|: what log q loses in the map from u to z.
    pub fn log_det(&self) -> f32 {
        self.diagonal()
            .iter()
            .map(|&v| f64::from(v).ln())
            .sum::<f64>() as f32
    }

    /// z = shift + S u for one point.
    pub fn apply(&self, u: &[f32], z: &mut [f32]) {
        let d = self.dim();
        if self.full {
            for (i, (z, &m)) in z.iter_mut().zip(&self.shift).enumerate().take(d) {
                let row = &self.scale[i * d..i * d + i + 1];
                *z = m + row.iter().zip(u).map(|(s, u)| s * u).sum::<f32>();
            }
        } else {
            for (((z, &m), &s), &u) in z.iter_mut().zip(&self.shift).zip(&self.scale).zip(u) {
                *z = m + s * u;
            }
        }
    }

    /// gᵤ = Sᵀ g_z for one point: a gradient in z pulled back to u.
    pub fn pull_back(&self, gz: &[f32], gu: &mut [f32]) {
        let d = self.dim();
        if self.full {
            gu[..d].fill(0.0);
            for (i, &g) in gz.iter().enumerate().take(d) {
                for (j, s) in self.scale[i * d..i * d + i + 1].iter().enumerate() {
                    gu[j] += s * g;
                }
            }
        } else {
            for ((gu, &s), &g) in gu.iter_mut().zip(&self.scale).zip(gz) {
                *gu = s * g;
            }
        }
    }

    /// S M for a d × d row-major M whose rows are indexed like u: the scale matrix of a
    /// Gaussian in u, taken to z.
    pub fn scale_matrix(&self, m: &[f32]) -> Vec<f32> {
        let d = self.dim();
        let mut out = vec![0.0f32; d * d];
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] = if self.full {
                    (0..=i).map(|k| self.scale[i * d + k] * m[k * d + j]).sum()
                } else {
                    self.scale[i] * m[i * d + j]
                };
            }
        }
        out
    }
}
