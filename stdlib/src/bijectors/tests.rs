//! Every bijector: the inverse undoes the forward map, and log |det| matches a
//! finite-difference Jacobian (for stick breaking, of the map to the first K − 1
//! coordinates; its outputs must also be positive and sum to 1).

use dfdx::prelude::{
    Backward, Cpu, NoneTape, SampleTensor, SumTo, Tensor, TensorFromVec, ZerosTensor,
};
use dfdx::shapes::HasShape as _;
use ravi_backend::linalg::Matrix;
use ravi_backend::ParamStore;

use super::*;

const D: usize = 4;

fn check<B: Bijector<Cpu>>(name: &str, b: &B, store: &ParamStore<Cpu>, points: &[Vec<f32>]) {
    let dev = store.device().clone();
    let at = |v: &[f32]| -> Vec<f32> {
        let t = dev.tensor_from_vec(v.to_vec(), (1usize, v.len()));
        b.forward::<NoneTape>(store, t).0.as_vec()
    };
    for x in points {
        let d = x.len();
        let t = dev.tensor_from_vec(x.clone(), (1usize, d));
        let (y, ld) = b.forward::<NoneTape>(store, t);
        let (y, ld) = (y.as_vec(), f64::from(ld.as_vec()[0]));
        let back = b
            .inverse(store, dev.tensor_from_vec(y.clone(), (1usize, y.len())))
            .as_vec();
        for (a, e) in back.iter().zip(x) {
            assert!(
                (a - e).abs() < 2e-4 * (1.0 + e.abs()),
                "{name}: inverse(forward({x:?})) = {back:?}"
            );
        }
        let h = 1e-2f32;
        let mut jac = Matrix::zeros(d);
        for j in 0..d {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[j] += h;
            down[j] -= h;
            let (fu, fd) = (at(&up), at(&down));
            for i in 0..d {
                jac.set(
                    i,
                    j,
                    (f64::from(fu[i]) - f64::from(fd[i])) / (2.0 * f64::from(h)),
                );
            }
        }
        let want = jac.log_abs_det();
        assert!(
            (ld - want).abs() < 5e-3 * (1.0 + want.abs()),
            "{name} at {x:?}: log det {ld} vs finite differences {want}"
        );
    }
}

fn points() -> Vec<Vec<f32>> {
    vec![
        vec![0.3, -1.2, 0.8, 0.05],
        vec![-0.7, 0.4, -0.1, 1.5],
        vec![1.1, 0.9, -1.6, -0.3],
    ]
}

#[test]
fn elementwise_and_affine_bijectors() {
    let dev = Cpu::default();
    let store = ParamStore::new(&dev);
    check("Identity", &Identity, &store, &points());
    check("Exp", &Exp, &store, &points());
    check("Softplus", &Softplus, &store, &points());
    check("Sigmoid", &Sigmoid, &store, &points());
    check("Tanh", &Tanh, &store, &points());
    let affine = Affine {
        loc: vec![0.5, -1.0, 2.0, 0.0],
        scale: vec![2.0, -0.5, 1.5, 0.3],
    };
    check("Affine", &affine, &store, &points());
    let chol = LowerCholeskyAffine {
        loc: vec![0.1, 0.2, -0.3, 0.4],
        scale_tril: vec![
            1.5, 9.0, 9.0, 9.0, //
            0.3, 0.8, 9.0, 9.0, //
            -0.4, 0.2, 1.1, 9.0, //
            0.5, -0.6, 0.7, 0.9,
        ],
    };
    check("LowerCholeskyAffine", &chol, &store, &points());
}

#[test]
fn flow_layers_are_bijectors() {
    let dev = Cpu::seed_from_u64(3);
    let mut store = ParamStore::new(&dev);
    let coupling = AffineCoupling::build(&mut store, "c", D, 8, false);
    let iaf = Iaf::build(&mut store, "i", D, 8, false);
    let maf = Maf::build(&mut store, "m", D, 8, true);
    let planar = Planar::build(&mut store, "p", D);
    let radial = Radial::build(&mut store, "r", D);
    let ids: Vec<_> = store.ids().collect();
    for id in ids {
        let n = store.get(id).shape().0;
        let v: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(n,));
        let v: Vec<f32> = v.as_vec().iter().map(|x| 0.5 * x).collect();
        store.set(id, &v);
    }
    check("AffineCoupling", &coupling, &store, &points());
    check("Iaf", &iaf, &store, &points());
    check("Maf", &maf, &store, &points());
    check("Planar", &planar, &store, &points());
    check("Radial", &radial, &store, &points());
}

#[test]
fn simplex_maps_map_onto_the_simplex() {
    check_simplex_map(StickBreaking);
    check_simplex_map(SoftmaxSimplex);
}

fn check_simplex_map<B: Bijector<Cpu>>(sb: B) {
    let dev = Cpu::default();
    let store = ParamStore::new(&dev);
    for x in points() {
        let k1 = x.len();
        let t = dev.tensor_from_vec(x.clone(), (1usize, k1));
        let (y, ld) = Bijector::<Cpu>::forward::<NoneTape>(&sb, &store, t);
        let y = y.as_vec();
        assert_eq!(y.len(), k1 + 1);
        assert!(y.iter().all(|&v| v > 0.0));
        assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{y:?}");
        let back = sb
            .inverse(&store, dev.tensor_from_vec(y.clone(), (1usize, k1 + 1)))
            .as_vec();
        for (a, e) in back.iter().zip(&x) {
            assert!((a - e).abs() < 1e-3, "inverse {back:?} vs {x:?}");
        }
        // Jacobian of the first K − 1 outputs.
        let at = |v: &[f32]| -> Vec<f32> {
            let t = dev.tensor_from_vec(v.to_vec(), (1usize, k1));
            Bijector::<Cpu>::forward::<NoneTape>(&sb, &store, t)
                .0
                .as_vec()
        };
        let h = 1e-2f32;
        let mut jac = Matrix::zeros(k1);
        for j in 0..k1 {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[j] += h;
            down[j] -= h;
            let (fu, fd) = (at(&up), at(&down));
            for i in 0..k1 {
                jac.set(
                    i,
                    j,
                    (f64::from(fu[i]) - f64::from(fd[i])) / (2.0 * f64::from(h)),
                );
            }
        }
        let want = jac.log_abs_det();
        let got = f64::from(ld.as_vec()[0]);
        assert!(
            (got - want).abs() < 5e-3 * (1.0 + want.abs()),
            "log det {got} vs {want}"
        );
    }
    // x = 0 is the centre of the simplex.
    let (y, _) =
        Bijector::<Cpu>::forward::<NoneTape>(&sb, &store, dev.zeros_like(&(1usize, 3usize)));
    for v in y.as_vec() {
        assert!((v - 0.25).abs() < 1e-6);
    }
}

/// The gradient of Σ wᵢ yᵢ + log |det| through the simplex maps against finite differences.
#[test]
fn simplex_map_gradients() {
    check_simplex_gradients(StickBreaking);
    check_simplex_gradients(SoftmaxSimplex);
}

fn check_simplex_gradients<B: Bijector<Cpu>>(map: B) {
    use dfdx::tensor::OwnedTape;
    let dev = Cpu::default();
    let store = ParamStore::new(&dev);
    let w = [0.3f32, -1.0, 0.7, 2.0, -0.4];
    let x0 = vec![0.3f32, -1.2, 0.8, 0.05];
    let objective = |x: &[f32]| -> f64 {
        let t = dev.tensor_from_vec(x.to_vec(), (1usize, 4usize));
        let (y, ld) = Bijector::<Cpu>::forward::<NoneTape>(&map, &store, t);
        let y = y.as_vec();
        y.iter().zip(&w).map(|(a, b)| f64::from(a * b)).sum::<f64>() + f64::from(ld.as_vec()[0])
    };
    let t = dev.tensor_from_vec(x0.clone(), (1usize, 4usize));
    let (y, ld) = Bijector::<Cpu>::forward(&map, &store, t.retaped::<OwnedTape<f32, Cpu>>());
    let wt = dev.tensor_from_vec(w.to_vec(), (1usize, 5usize));
    let total = (y * wt).sum::<(), _>() + ld.sum::<(), _>();
    let g = total.backward().get(&t).as_vec();
    for j in 0..4 {
        let h = 1e-3f32;
        let (mut up, mut down) = (x0.clone(), x0.clone());
        up[j] += h;
        down[j] -= h;
        let fd = (objective(&up) - objective(&down)) / (2.0 * f64::from(h));
        assert!(
            (f64::from(g[j]) - fd).abs() < 1e-2 * (1.0 + fd.abs()),
            "∂/∂x{j}: {} vs {fd}",
            g[j]
        );
    }
}
