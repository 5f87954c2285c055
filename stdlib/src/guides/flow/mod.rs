//! Normalizing flows: z = f_K ∘ … ∘ f_1(z₀), z₀ from a diagonal Gaussian base with learnable
//! location and scale, log q(z) = log q₀(z₀) − Σ_k log |det ∂f_k|.
//!
//! `Flow(RealNVP(layers = 4, hidden = 32), Planar(layers = 2))` stacks the blocks in the
//! order written, each block `layers` layers of its kind. Every layer starts as the
//! identity, so a flow starts as the MeanField guide does and can only improve on it.
//!
//! Estimators: flows have no closed-form entropy, and planar, radial and IAF layers cannot
//! evaluate log q at a given point cheaply, so every estimator falls back to the standard
//! one (log q of the draws with its full gradient).

mod coupling;
mod iaf;
mod planar;
mod radial;

pub use coupling::AffineCoupling;
pub use iaf::{Iaf, Maf};
pub use planar::Planar;
pub use radial::Radial;

use dfdx::prelude::*;
use ravi_backend::frame::Frame;
use ravi_backend::linalg::Matrix;
use ravi_backend::{
    traced, Backend, Estimator, FamilyArgs, FamilyDraw, FamilyStart, GuideFamily, ParamId,
    ParamStore, Particles, PerParticle, Tape,
};

pub(crate) use super::dense::Dense;
use super::{per_particle, rho_for, scale_of, std_normal_log_density, INIT_SCALE};

/// A scalar on a tape.
pub(crate) type Scalar<D, T> = Tensor<(), f32, D, T>;
/// A vector of run-time length on a tape.
pub(crate) type Vector<D, T> = Tensor<(usize,), f32, D, T>;

/// One invertible layer of a flow.
#[derive(Debug, Clone)]
pub enum Layer {
    /// RealNVP.
    Coupling(AffineCoupling),
    /// Inverse autoregressive.
    Iaf(Iaf),
    /// Masked autoregressive.
    Maf(Maf),
    /// Planar (not invertible in closed form).
    Planar(Planar),
    /// Radial (not invertible in closed form).
    Radial(Radial),
}

impl Layer {
    /// y = f(x) and log |det ∂f/∂x| per particle.
    pub fn forward<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        match self {
            Layer::Coupling(l) => l.forward(params, x),
            Layer::Iaf(l) => l.forward(params, x),
            Layer::Maf(l) => l.forward(params, x),
            Layer::Planar(l) => l.forward(params, x),
            Layer::Radial(l) => l.forward(params, x),
        }
    }

    /// x = f⁻¹(y) (no gradient).
    pub fn inverse<D: Backend>(
        &self,
        params: &ParamStore<D>,
        y: Particles<D, NoneTape>,
    ) -> Particles<D, NoneTape> {
        match self {
            Layer::Coupling(l) => l.inverse(params, y),
            Layer::Iaf(l) => l.inverse(params, y),
            Layer::Maf(l) => l.inverse(params, y),
            Layer::Planar(l) => l.inverse(params, y),
            Layer::Radial(l) => l.inverse(params, y),
        }
    }
}

/// Every flow layer is a bijector.
macro_rules! layer_bijector {
    ($($t:ty),*) => {$(
        impl<D: Backend> crate::bijectors::Bijector<D> for $t {
            fn forward<T: Tape<D>>(&self, params: &ParamStore<D>, x: Particles<D, T>) -> (Particles<D, T>, PerParticle<D, T>) {
                <$t>::forward(self, params, x)
            }
            fn inverse(&self, params: &ParamStore<D>, y: Particles<D, NoneTape>) -> Particles<D, NoneTape> {
                <$t>::inverse(self, params, y)
            }
        }
    )*};
}

layer_bijector!(AffineCoupling, Iaf, Maf, Planar, Radial, Layer);

/// A normalizing-flow guide family; see the module docs. The Laplace initialisation
/// starts it in the frame z = m + S u of that Gaussian (S = chol(H⁻¹),
/// [`ravi_backend::frame`]) with its base at N(0, I) and every layer the identity.
#[derive(Debug, Clone)]
pub struct Flow {
    dim: usize,
    loc: ParamId,
    rho: ParamId,
    layers: Vec<Layer>,
    frame: Option<Frame>,
}

impl Flow {
    /// The number of coordinates the flow covers.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The layers, in the order they apply to the base draw.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// log q(z) at given points (no gradient), by inverting every layer: for tests of
    /// the density and for flows made only of invertible layers.
    pub fn log_density<D: Backend>(
        &self,
        params: &ParamStore<D>,
        z: Particles<D, NoneTape>,
    ) -> PerParticle<D, NoneTape> {
        let Some(frame) = &self.frame else {
            return self.own_log_density(params, z);
        };
        // u = S⁻¹ (z − m), point by point on the host
        let host = frame.host(params);
        let d = self.dim;
        let s = Matrix::from_f32(
            d,
            &(if host.full {
                host.scale.clone()
            } else {
                let mut m = vec![0.0; d * d];
                for i in 0..d {
                    m[i * d + i] = host.scale[i];
                }
                m
            }),
        );
        let shape = *z.shape();
        let u: Vec<f32> = z
            .as_vec()
            .chunks(d)
            .flat_map(|row| {
                let centred: Vec<f64> = row
                    .iter()
                    .zip(&host.shift)
                    .map(|(&z, &m)| f64::from(z) - f64::from(m))
                    .collect();
                s.solve_lower(&centred).into_iter().map(|v| v as f32)
            })
            .collect();
        let u = params.device().tensor_from_vec(u, shape);
        self.own_log_density(params, u) - frame.log_det()
    }

    /// log q_u(u) in the family's own coordinates.
    fn own_log_density<D: Backend>(
        &self,
        params: &ParamStore<D>,
        z: Particles<D, NoneTape>,
    ) -> PerParticle<D, NoneTape> {
        let mut ys = vec![z];
        for layer in self.layers.iter().rev() {
            let y = ys.last().expect("non-empty").clone();
            ys.push(layer.inverse(params, y));
        }
        let z0 = ys.pop().expect("the base point");
        let mut log_det = per_particle(dev_zero(params), z0.shape().0);
        let mut x = z0.clone();
        for layer in &self.layers {
            let (y, ld) = layer.forward::<D, NoneTape>(params, x);
            log_det = log_det + ld;
            x = y;
        }
        let shape = *z0.shape();
        let loc = params
            .get(self.loc)
            .clone()
            .broadcast_like::<_, Axis<0>>(&shape);
        let sigma = scale_of(params.get(self.rho).clone());
        let log_sigma = sigma.clone().ln().sum::<(), _>();
        let eps = (z0 - loc) / sigma.broadcast_like::<_, Axis<0>>(&shape);
        std_normal_log_density(eps) - per_particle(log_sigma, shape.0) - log_det
    }
}

fn dev_zero<D: Backend>(params: &ParamStore<D>) -> Tensor<(), f32, D> {
    params.device().zeros()
}

impl<D: Backend> GuideFamily<D> for Flow {
    fn build(params: &mut ParamStore<D>, name: &str, dim: usize, args: &FamilyArgs) -> Self {
        let loc = params.add(format!("{name}.loc"), vec![0.0; dim]);
        let rho = params.add(format!("{name}.rho"), vec![rho_for(INIT_SCALE); dim]);
        let mut layers = Vec::new();
        for block in args.layers("layers") {
            let count = block.args.count("layers").unwrap_or(1);
            for _ in 0..count {
                let i = layers.len();
                let prefix = format!("{name}.flow{i}");
                let hidden = block.args.count("hidden").unwrap_or(32);
                layers.push(match block.kind {
                    "RealNVP" => Layer::Coupling(AffineCoupling::build(params, &prefix, dim, hidden, i % 2 == 1)),
                    "Iaf" => Layer::Iaf(Iaf::build(params, &prefix, dim, hidden, i % 2 == 1)),
                    "Maf" => Layer::Maf(Maf::build(params, &prefix, dim, hidden, i % 2 == 1)),
                    "Planar" => Layer::Planar(Planar::build(params, &prefix, dim)),
                    "Radial" => Layer::Radial(Radial::build(params, &prefix, dim)),
                    other => panic!("unknown flow layer {other}: the compiler's catalogue and the stdlib disagree"),
                });
            }
        }
        Flow {
            dim,
            loc,
            rho,
            layers,
            frame: None,
        }
    }

    fn start(&mut self, params: &mut ParamStore<D>, label: &str, start: &FamilyStart) {
        if start.has_gaussian() {
            self.frame = Some(Frame::set(params, label, &start.loc, &start.full_frame()));
            params.set(self.loc, &vec![0.0; self.dim]);
        } else {
            self.frame = None;
            Frame::clear(params, label);
            params.set(self.loc, &start.loc_f32());
        }
        let rho: Vec<f32> = start.unit_scale().into_iter().map(rho_for).collect();
        params.set(self.rho, &rho);
    }

    fn sample<T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        particles: usize,
        _estimator: Estimator,
    ) -> FamilyDraw<D, T> {
        let dev = params.device();
        let shape = (particles, self.dim);
        let eps: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&shape);
        let loc = traced::<D, T>(params, self.loc);
        let sigma = scale_of(traced::<D, T>(params, self.rho));
        let log_sigma = sigma.retaped::<T>().ln().sum::<(), _>();
        let mut z = sigma.broadcast_like::<_, Axis<0>>(&shape) * eps.clone()
            + loc.broadcast_like::<_, Axis<0>>(&shape);
        let mut log_q = per_particle(log_sigma, particles).negate() + std_normal_log_density(eps);
        for layer in &self.layers {
            let (y, log_det) = layer.forward(params, z);
            log_q = log_q - log_det;
            z = y;
        }
        match &self.frame {
            None => FamilyDraw { z, log_q },
            Some(f) => FamilyDraw {
                z: f.apply(params, z),
                log_q: log_q - f.log_det(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
