//! Each layer against independent computations: log |det| against a finite-difference
//! Jacobian, the inverse against the forward map; the flow's log q of its draws against the
//! density computed by inverting it.

use dfdx::prelude::*;
use ravi_backend::linalg::Matrix;
use ravi_backend::{Estimator, FamilyArg, FamilyArgs, FlowLayer, GuideFamily, ParamStore};

use super::*;

const DIM: usize = 4;

/// Moves every parameter to a random value (so no layer is at its identity start).
fn randomize(store: &mut ParamStore<Cpu>, dev: &Cpu, scale: f32) {
    let ids: Vec<_> = store.ids().collect();
    for id in ids {
        let n = store.get(id).shape().0;
        let v: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(n,));
        let v: Vec<f32> = v.as_vec().iter().map(|x| scale * x).collect();
        store.set(id, &v);
    }
}

fn layers(store: &mut ParamStore<Cpu>) -> Vec<(&'static str, Layer)> {
    vec![
        (
            "coupling even",
            Layer::Coupling(AffineCoupling::build(store, "c0", DIM, 8, false)),
        ),
        (
            "coupling odd",
            Layer::Coupling(AffineCoupling::build(store, "c1", DIM, 8, true)),
        ),
        ("iaf", Layer::Iaf(Iaf::build(store, "i0", DIM, 8, false))),
        (
            "iaf reversed",
            Layer::Iaf(Iaf::build(store, "i1", DIM, 8, true)),
        ),
        ("planar", Layer::Planar(Planar::build(store, "p", DIM))),
        ("radial", Layer::Radial(Radial::build(store, "r", DIM))),
    ]
}

fn points(dev: &Cpu, n: usize) -> Tensor<(usize, usize), f32, Cpu> {
    dev.sample_normal_like(&(n, DIM))
}

#[test]
fn log_det_matches_a_finite_difference_jacobian() {
    let dev = Cpu::seed_from_u64(11);
    let mut store = ParamStore::new(&dev);
    let all = layers(&mut store);
    randomize(&mut store, &dev, 0.5);
    let x = points(&dev, 5).as_vec();
    for (name, layer) in &all {
        for row in x.chunks(DIM) {
            let at = |v: &[f32]| -> Vec<f32> {
                let t = dev.tensor_from_vec(v.to_vec(), (1usize, DIM));
                layer.forward::<Cpu, NoneTape>(&store, t).0.as_vec()
            };
            let x_t = dev.tensor_from_vec(row.to_vec(), (1usize, DIM));
            let log_det = f64::from(layer.forward::<Cpu, NoneTape>(&store, x_t).1.as_vec()[0]);
            let h = 1e-2f32;
            let mut jac = Matrix::zeros(DIM);
            for j in 0..DIM {
                let (mut up, mut down) = (row.to_vec(), row.to_vec());
                up[j] += h;
                down[j] -= h;
                let (fu, fd) = (at(&up), at(&down));
                for i in 0..DIM {
                    jac.set(
                        i,
                        j,
                        (f64::from(fu[i]) - f64::from(fd[i])) / (2.0 * f64::from(h)),
                    );
                }
            }
            let want = jac.log_abs_det();
            // Central differences: O(h²) ≈ 1e-4 truncation, f32 rounding ≈ 1e-5 / h.
            assert!(
                (log_det - want).abs() < 5e-3,
                "{name}: log det {log_det} vs finite differences {want}"
            );
        }
    }
}

#[test]
fn inverse_undoes_forward() {
    let dev = Cpu::seed_from_u64(12);
    let mut store = ParamStore::new(&dev);
    let all = layers(&mut store);
    randomize(&mut store, &dev, 0.5);
    let x = points(&dev, 64);
    for (name, layer) in &all {
        let (y, _) = layer.forward::<Cpu, NoneTape>(&store, x.clone());
        let back = layer.inverse(&store, y).as_vec();
        for (a, b) in back.iter().zip(x.as_vec()) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{name}: {a} vs {b}");
        }
    }
}

fn flow_args() -> FamilyArgs {
    let block = |kind: &'static str, layers: f64| FlowLayer {
        kind,
        args: FamilyArgs(vec![
            ("layers", FamilyArg::Number(layers)),
            ("hidden", FamilyArg::Number(8.0)),
        ]),
    };
    FamilyArgs(vec![(
        "layers",
        FamilyArg::Layers(vec![
            block("RealNVP", 2.0),
            block("Iaf", 2.0),
            block("Planar", 1.0),
            block("Radial", 1.0),
        ]),
    )])
}

#[test]
fn log_q_of_the_draws_is_their_density() {
    let dev = Cpu::seed_from_u64(13);
    let mut store = ParamStore::new(&dev);
    let flow: Flow = GuideFamily::<Cpu>::build(&mut store, "z", DIM, &flow_args());
    assert_eq!(flow.layers().len(), 6);
    randomize(&mut store, &dev, 0.4);
    let draw = flow.sample::<NoneTape>(&store, 200, Estimator::Standard);
    let again = flow.log_density(&store, draw.z.clone()).as_vec();
    for (a, b) in draw.log_q.as_vec().iter().zip(&again) {
        assert!((a - b).abs() < 2e-3 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

/// In one dimension the coupling layers are affine maps (the even mask keeps the only
/// coordinate, the odd one transforms it): a flow still works on a scalar site.
#[test]
fn a_flow_on_a_scalar_is_a_valid_density() {
    let dev = Cpu::seed_from_u64(14);
    let mut store = ParamStore::new(&dev);
    let flow: Flow = GuideFamily::<Cpu>::build(&mut store, "z", 1, &flow_args());
    randomize(&mut store, &dev, 0.4);
    // ∫ q = 1 on a grid, by the density computed through the inverse.
    let grid: Vec<f32> = (0..4001).map(|i| -8.0 + 16.0 * i as f32 / 4000.0).collect();
    let n = grid.len();
    let q = flow
        .log_density(&store, dev.tensor_from_vec(grid, (n, 1usize)))
        .as_vec();
    let mass: f64 = q.iter().map(|l| f64::from(*l).exp() * 16.0 / 4000.0).sum();
    assert!((mass - 1.0).abs() < 1e-2, "{mass}");
}
