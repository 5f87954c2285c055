//! Networks declared in the DSL: a call runs every particle's weights on the rows, and
//! equals the same network computed by hand.

use ravi::dfdx::prelude::TensorFromVec as _;
use ravi::dfdx::tensor::NoneTape;
use ravi::prelude::*;

model! {
    net Mlp(x: [B, 3]) -> [B, 2] { Linear(3, 4) -> tanh -> Linear(4, 2) }
    model Regress(x: [N, 3], y: [N, 2]) {
        theta ~ Normal(0.0, 1.0) [params(Mlp)];
        y ~ Normal(Mlp(x; theta), 1.0);
    }
    net Cnn(x: [B, 1, 6, 6]) -> [B, 3] { Conv2d(1, 2, 3) -> relu -> MaxPool(2) -> flatten -> Linear(8, 3) }
    model Images(x: [N, 1, 6, 6], y: [N, 3]) {
        theta ~ Normal(0.0, 1.0) [params(Cnn)];
        y ~ Normal(Cnn(x; theta), 1.0);
    }
    /// One site per layer, each with the per-layer Gaussian prior.
    model PerLayer(x: [N, 3], y: [N, 2]) {
        w1 ~ LayerGaussian() [params(Mlp, 0)];
        w2 ~ LayerGaussian() [params(Mlp, 1)];
        y ~ Normal(Mlp(x; w1, w2), 1.0);
    }
}
guide! {
    guide G for Regress { theta ~ MeanField; }
    guide Flip for Regress { theta ~ Flipout(MeanField); }
    guide Local for Regress { theta ~ Lrt(MeanField); }
}

/// W1 (3×4), b1 (4), W2 (4×2), b2 (2), as the weight vector lays them out.
fn forward(theta: &[f64], x: &[f64; 3]) -> [f64; 2] {
    let (w1, b1, w2, b2) = (
        &theta[0..12],
        &theta[12..16],
        &theta[16..24],
        &theta[24..26],
    );
    let h: Vec<f64> = (0..4)
        .map(|j| ((0..3).map(|i| x[i] * w1[i * 4 + j]).sum::<f64>() + b1[j]).tanh())
        .collect();
    [0, 1].map(|k| (0..4).map(|j| h[j] * w2[j * 2 + k]).sum::<f64>() + b2[k])
}

#[test]
fn a_net_call_equals_the_network_by_hand() {
    assert_eq!(Regress::latents()[0].shape, &[26]);
    let dev = Cpu::seeded(0);
    let xs: [[f64; 3]; 5] = [
        [0.1, -0.5, 1.2],
        [0.7, 0.3, -0.9],
        [-1.1, 0.4, 0.2],
        [0.0, 0.0, 0.0],
        [2.0, -1.0, 0.5],
    ];
    let data = RegressData {
        x: Array::from_rows_f64(&xs).unwrap(),
        y: Array::new(vec![0.0; 10], vec![5, 2]).unwrap(),
    };
    let arrays = ravi::ModelData::arrays(&data);
    let batch = ravi::Batch::upload(&dev, Regress::inputs(), &arrays, None, 5);
    // Two particles with different weights.
    let thetas: Vec<Vec<f64>> = (0..2)
        .map(|p| {
            (0..26)
                .map(|i| ((i * 7 + p * 13) % 11) as f64 / 5.0 - 1.0)
                .collect()
        })
        .collect();
    let flat: Vec<f32> = thetas.iter().flatten().map(|&v| v as f32).collect();
    let latents = vec![dev.tensor_from_vec(flat, (2usize, 26usize))];
    let terms = <Regress as Model>::log_joint_terms::<Cpu, NoneTape>(latents, &batch, 1.0);
    let y_term = terms.iter().find(|(n, _)| *n == "y").unwrap().1.as_vec();
    for (p, theta) in thetas.iter().enumerate() {
        // y = 0: log p = Σ −½ f² − ½ log 2π
        let want: f64 = xs
            .iter()
            .flat_map(|x| forward(theta, x))
            .map(|f| -0.5 * f * f - 0.5 * (2.0 * std::f64::consts::PI).ln())
            .sum();
        assert!(
            (f64::from(y_term[p]) - want).abs() < 1e-4 * (1.0 + want.abs()),
            "particle {p}: {} vs {want}",
            y_term[p]
        );
    }
}

/// Weights of a small net fitted to data the net can represent: the fit runs, the ELBO
/// rises, and gradients reach every weight (the guide's scales move from their start).
#[test]
fn a_net_fits() {
    let xs: Vec<[f32; 3]> = (0..64)
        .map(|i| {
            let t = i as f32 * 0.37;
            [t.sin(), t.cos(), (2.0 * t).sin()]
        })
        .collect();
    let ys: Vec<f32> = xs
        .iter()
        .flat_map(|x| [(x[0] - x[1]).tanh(), 0.5 * x[2]])
        .collect();
    let data = RegressData {
        x: Array::from_rows(&xs).unwrap(),
        y: Array::new(ys, vec![64, 2]).unwrap(),
    };
    let mut g = G::new(&Cpu::seeded(3));
    let report = ravi::fit(
        &mut g,
        &data,
        &FitOptions {
            steps: 1500,
            progress: false,
            ..FitOptions::default()
        },
    )
    .unwrap();
    let early: f32 = report.elbo[..50].iter().sum::<f32>() / 50.0;
    let late: f32 = report.elbo[report.elbo.len() - 50..].iter().sum::<f32>() / 50.0;
    assert!(late > early + 10.0, "ELBO {early} → {late}");
    let (_, scale) = g.entry0.loc_scale(g.params());
    assert!(
        scale.iter().all(|&s| (s - 0.1).abs() > 1e-4),
        "every weight's scale moved"
    );
}

/// The gradient of the log joint in the weights against central finite differences.
#[test]
fn net_gradients_match_finite_differences() {
    use ravi::dfdx::prelude::{Backward, SumTo};
    use ravi::dfdx::tensor::OwnedTape;
    let dev = Cpu::seeded(0);
    let xs: [[f64; 3]; 3] = [[0.1, -0.5, 1.2], [0.7, 0.3, -0.9], [-1.1, 0.4, 0.2]];
    let data = RegressData {
        x: Array::from_rows_f64(&xs).unwrap(),
        y: Array::new(vec![0.5, -0.2, 0.1, 0.3, -0.4, 0.8], vec![3, 2]).unwrap(),
    };
    let arrays = ravi::ModelData::arrays(&data);
    let batch = ravi::Batch::upload(&dev, Regress::inputs(), &arrays, None, 3);
    let theta: Vec<f32> = (0..26).map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0).collect();
    let total = |th: &[f32]| -> f64 {
        let t = dev.tensor_from_vec(th.to_vec(), (1usize, 26usize));
        <Regress as Model>::log_joint_terms::<Cpu, NoneTape>(vec![t], &batch, 1.0)
            .iter()
            .map(|(_, v)| f64::from(v.as_vec()[0]))
            .sum()
    };
    let t = dev.tensor_from_vec(theta.clone(), (1usize, 26usize));
    let terms = <Regress as Model>::log_joint_terms::<Cpu, OwnedTape<f32, Cpu>>(
        vec![t.retaped()],
        &batch,
        1.0,
    );
    let sum = terms
        .into_iter()
        .map(|(_, v)| v)
        .reduce(|a, b| a + b)
        .unwrap()
        .sum::<(), _>();
    let g = sum.backward().get(&t).as_vec();
    for i in 0..26 {
        let h = 1e-2f32;
        let (mut up, mut down) = (theta.clone(), theta.clone());
        up[i] += h;
        down[i] -= h;
        let fd = (total(&up) - total(&down)) / (2.0 * f64::from(h));
        assert!(
            (f64::from(g[i]) - fd).abs() < 1e-2 * (1.0 + fd.abs()),
            "∂/∂θ{i}: {} vs {fd}",
            g[i]
        );
    }
}

/// Flipout and the local reparametrization estimate the same ELBO gradient as plain
/// reparametrization (means agree) with less variance, at one guide state.
#[test]
fn rewrites_estimate_the_same_gradient_with_less_variance() {
    let xs: Vec<[f32; 3]> = (0..64)
        .map(|i| {
            let t = i as f32 * 0.37;
            [t.sin(), t.cos(), (2.0 * t).sin()]
        })
        .collect();
    let ys: Vec<f32> = xs
        .iter()
        .flat_map(|x| [(x[0] - x[1]).tanh(), 0.5 * x[2]])
        .collect();
    let data = RegressData {
        x: Array::from_rows(&xs).unwrap(),
        y: Array::new(ys, vec![64, 2]).unwrap(),
    };
    // One state for all three: a guide fitted briefly, its μ and ρ copied.
    let mut fitted = G::new(&Cpu::seeded(4));
    ravi::fit(
        &mut fitted,
        &data,
        &FitOptions {
            steps: 300,
            progress: false,
            ..FitOptions::default()
        },
    )
    .unwrap();
    let state: Vec<Vec<f32>> = fitted.params().iter().map(|(_, t)| t.as_vec()).collect();
    /// Per coordinate of ∂μ: the mean and the variance of one draw's gradient; and the
    /// variance averaged over the coordinates.
    fn stats<Q: Guide<Cpu, Model = Regress>>(
        mut g: Q,
        state: &[Vec<f32>],
        data: &RegressData,
    ) -> (Vec<f64>, Vec<f64>, f64) {
        let ids: Vec<_> = g.params().ids().collect();
        for (id, v) in ids.into_iter().zip(state) {
            g.params_mut().set(id, v);
        }
        let n = 2000;
        let mut sum = vec![0.0f64; 26];
        let mut sq = vec![0.0f64; 26];
        for _ in 0..n {
            let grad = ravi::elbo_gradient(&g, data, None, 1, Estimator::AnalyticKl).unwrap();
            for (j, &v) in grad[0].iter().enumerate() {
                sum[j] += f64::from(v);
                sq[j] += f64::from(v) * f64::from(v);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        let var: Vec<f64> = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| q / n as f64 - m * m)
            .collect();
        let average = var.iter().sum::<f64>() / 26.0;
        (mean, var, average)
    }
    let (m_plain, var_plain, v_plain) = stats(G::new(&Cpu::seeded(5)), &state, &data);
    let (m_flip, var_flip, v_flip) = stats(Flip::new(&Cpu::seeded(6)), &state, &data);
    let (m_lrt, var_lrt, v_lrt) = stats(Local::new(&Cpu::seeded(7)), &state, &data);
    for j in 0..26 {
        // five Monte Carlo standard errors of the difference of two means of 2000 draws
        let tol = |var: &[f64]| 5.0 * ((var_plain[j] + var[j]) / 2000.0).sqrt() + 1e-3;
        assert!(
            (m_flip[j] - m_plain[j]).abs() < tol(&var_flip),
            "Flipout ∂μ{j}: {} vs {}",
            m_flip[j],
            m_plain[j]
        );
        assert!(
            (m_lrt[j] - m_plain[j]).abs() < tol(&var_lrt),
            "LRT ∂μ{j}: {} vs {}",
            m_lrt[j],
            m_plain[j]
        );
    }
    assert!(
        v_flip < v_plain && v_lrt < v_plain,
        "variances: plain {v_plain}, Flipout {v_flip}, LRT {v_lrt}"
    );
}

/// Per-layer weight sites are joined into the net's weight vector: the same likelihood as
/// one site holding them all, and gradients that reach both sites (finite differences).
#[test]
fn per_layer_sites_match_one_weight_site() {
    use ravi::dfdx::prelude::{Backward, SumTo};
    use ravi::dfdx::tensor::OwnedTape;
    assert_eq!(PerLayer::latents()[0].shape, &[16]);
    assert_eq!(PerLayer::latents()[1].shape, &[10]);
    let dev = Cpu::seeded(0);
    let xs: [[f64; 3]; 3] = [[0.1, -0.5, 1.2], [0.7, 0.3, -0.9], [-1.1, 0.4, 0.2]];
    let y = vec![0.5, -0.2, 0.1, 0.3, -0.4, 0.8];
    let one = RegressData {
        x: Array::from_rows_f64(&xs).unwrap(),
        y: Array::new(y.clone(), vec![3, 2]).unwrap(),
    };
    let layered = PerLayerData {
        x: Array::from_rows_f64(&xs).unwrap(),
        y: Array::new(y, vec![3, 2]).unwrap(),
    };
    let theta: Vec<f32> = (0..26).map(|i| ((i * 5) % 13) as f32 / 6.0 - 1.0).collect();
    let up =
        |d: &dyn ravi::ModelData, specs| ravi::Batch::upload(&dev, specs, &d.arrays(), None, 3);
    let b1 = up(&one, Regress::inputs());
    let b2 = up(&layered, PerLayer::inputs());
    let y_of = |terms: Vec<(
        &'static str,
        ravi::PerParticle<Cpu, ravi::dfdx::tensor::NoneTape>,
    )>| {
        terms
            .into_iter()
            .find(|(n, _)| *n == "y")
            .unwrap()
            .1
            .as_vec()[0]
    };
    let t = |v: &[f32]| dev.tensor_from_vec(v.to_vec(), (1usize, v.len()));
    let whole = y_of(<Regress as Model>::log_joint_terms(
        vec![t(&theta)],
        &b1,
        1.0,
    ));
    let split = y_of(<PerLayer as Model>::log_joint_terms(
        vec![t(&theta[..16]), t(&theta[16..])],
        &b2,
        1.0,
    ));
    assert!((whole - split).abs() < 1e-5, "{whole} vs {split}");
    // gradients of the whole log joint in each layer's weights
    let total = |w1: &[f32], w2: &[f32]| -> f64 {
        <PerLayer as Model>::log_joint_terms::<Cpu, ravi::dfdx::tensor::NoneTape>(
            vec![t(w1), t(w2)],
            &b2,
            1.0,
        )
        .iter()
        .map(|(_, v)| f64::from(v.as_vec()[0]))
        .sum()
    };
    let (t1, t2) = (t(&theta[..16]), t(&theta[16..]));
    let terms = <PerLayer as Model>::log_joint_terms::<Cpu, OwnedTape<f32, Cpu>>(
        vec![t1.retaped(), t2.retaped()],
        &b2,
        1.0,
    );
    let g = terms
        .into_iter()
        .map(|(_, v)| v)
        .reduce(|a, b| a + b)
        .unwrap()
        .sum::<(), _>()
        .backward();
    let (g1, g2) = (g.get(&t1).as_vec(), g.get(&t2).as_vec());
    for i in 0..26 {
        let h = 1e-2f32;
        let (mut a, mut b) = (theta.clone(), theta.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (total(&a[..16], &a[16..]) - total(&b[..16], &b[16..])) / (2.0 * f64::from(h));
        let got = if i < 16 { g1[i] } else { g2[i - 16] };
        assert!(
            (f64::from(got) - fd).abs() < 1e-2 * (1.0 + fd.abs()),
            "∂/∂w{i}: {got} vs {fd}"
        );
    }
}

guide! {
    guide ImagesPlain for Images { theta ~ MeanField; }
    guide ImagesFlip for Images { theta ~ Flipout(MeanField); }
    guide ImagesLocal for Images { theta ~ Lrt(MeanField); }
}

/// On a convolutional net Flipout estimates the plain gradient (means agree) with no more
/// variance. The local reparametrization draws positions independently, so after max
/// pooling its objective differs (documented); its estimate is only required to be finite.
#[test]
fn conv_rewrites_estimate_the_same_gradient() {
    let images: Vec<f32> = (0..4 * 36)
        .map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0)
        .collect();
    let data = ImagesData {
        x: Array::new(images, vec![4, 1, 6, 6]).unwrap(),
        y: Array::new((0..12).map(|i| (i % 3) as f32 - 1.0).collect(), vec![4, 3]).unwrap(),
    };
    let state: Vec<Vec<f32>> = {
        let g = ImagesPlain::new(&Cpu::seeded(1));
        g.params()
            .iter()
            .map(|(_, t)| t.as_vec().iter().map(|v| v + 0.3).collect())
            .collect()
    };
    fn stats<Q: Guide<Cpu, Model = Images>>(
        mut g: Q,
        state: &[Vec<f32>],
        data: &ImagesData,
    ) -> (Vec<f64>, f64) {
        let ids: Vec<_> = g.params().ids().collect();
        for (id, v) in ids.into_iter().zip(state) {
            g.params_mut().set(id, v);
        }
        let n = 3000;
        let mut sum = vec![0.0f64; 47];
        let mut sq = vec![0.0f64; 47];
        for _ in 0..n {
            let grad = ravi::elbo_gradient(&g, data, None, 1, Estimator::AnalyticKl).unwrap();
            for (j, &v) in grad[0].iter().enumerate() {
                sum[j] += f64::from(v);
                sq[j] += f64::from(v) * f64::from(v);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        let var = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| q / n as f64 - m * m)
            .sum::<f64>()
            / 47.0;
        (mean, var)
    }
    let (m_plain, v_plain) = stats(ImagesPlain::new(&Cpu::seeded(2)), &state, &data);
    let (m_flip, v_flip) = stats(ImagesFlip::new(&Cpu::seeded(3)), &state, &data);
    let (m_lrt, v_lrt) = stats(ImagesLocal::new(&Cpu::seeded(4)), &state, &data);
    for j in 0..47 {
        let tol = 6.0 * (v_plain / 3000.0).sqrt() + 1e-3;
        assert!(
            (m_flip[j] - m_plain[j]).abs() < tol,
            "Flipout ∂μ{j}: {} vs {}",
            m_flip[j],
            m_plain[j]
        );
        assert!(m_lrt[j].is_finite());
    }
    assert!(
        v_flip <= v_plain * 1.05,
        "variances: plain {v_plain}, Flipout {v_flip}"
    );
    assert!(v_lrt.is_finite());
}

/// The convolutional net against a hand computation: conv (filters 2×1×3×3, bias 2), relu,
/// 2×2 max pooling, flatten (channel-major), Linear(8, 3); and its gradient against finite
/// differences.
#[test]
fn a_convolutional_net_equals_the_network_by_hand() {
    use ravi::dfdx::prelude::{Backward, SumTo};
    use ravi::dfdx::tensor::OwnedTape;
    assert_eq!(Images::latents()[0].shape, &[2 * 9 + 2 + 8 * 3 + 3]);
    let dev = Cpu::seeded(0);
    let images: Vec<f64> = (0..2 * 36)
        .map(|i| ((i * 7) % 11) as f64 / 5.0 - 1.0)
        .collect();
    let theta: Vec<f32> = (0..47).map(|i| ((i * 5) % 13) as f32 / 6.0 - 1.0).collect();
    let data = ImagesData {
        x: Array::new(images.iter().map(|&v| v as f32).collect(), vec![2, 1, 6, 6]).unwrap(),
        y: Array::new(vec![0.0; 6], vec![2, 3]).unwrap(),
    };
    let batch = ravi::Batch::upload(
        &dev,
        Images::inputs(),
        &ravi::ModelData::arrays(&data),
        None,
        2,
    );
    let forward = |th: &[f64], img: &[f64]| -> Vec<f64> {
        let (f, b, w, c) = (&th[0..18], &th[18..20], &th[20..44], &th[44..47]);
        let mut pooled = Vec::new();
        for o in 0..2 {
            let conv = |y: usize, x: usize| -> f64 {
                let mut v = b[o];
                for dy in 0..3 {
                    for dx in 0..3 {
                        v += f[o * 9 + dy * 3 + dx] * img[(y + dy) * 6 + x + dx];
                    }
                }
                v.max(0.0)
            };
            for py in 0..2 {
                for px in 0..2 {
                    let m = [
                        conv(2 * py, 2 * px),
                        conv(2 * py, 2 * px + 1),
                        conv(2 * py + 1, 2 * px),
                        conv(2 * py + 1, 2 * px + 1),
                    ];
                    pooled.push(m.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
                }
            }
        }
        (0..3)
            .map(|k| (0..8).map(|j| pooled[j] * w[j * 3 + k]).sum::<f64>() + c[k])
            .collect()
    };
    let th64: Vec<f64> = theta.iter().map(|&v| f64::from(v)).collect();
    let y_term = <Images as Model>::log_joint_terms::<Cpu, ravi::dfdx::tensor::NoneTape>(
        vec![dev.tensor_from_vec(theta.clone(), (1usize, 47usize))],
        &batch,
        1.0,
    )
    .into_iter()
    .find(|(n, _)| *n == "y")
    .unwrap()
    .1
    .as_vec()[0];
    let want: f64 = (0..2)
        .flat_map(|r| forward(&th64, &images[r * 36..(r + 1) * 36]))
        .map(|f| -0.5 * f * f - 0.5 * (2.0 * std::f64::consts::PI).ln())
        .sum();
    assert!(
        (f64::from(y_term) - want).abs() < 1e-4 * (1.0 + want.abs()),
        "{y_term} vs {want}"
    );
    // gradients
    let total = |th: &[f32]| -> f64 {
        <Images as Model>::log_joint_terms::<Cpu, ravi::dfdx::tensor::NoneTape>(
            vec![dev.tensor_from_vec(th.to_vec(), (1usize, 47usize))],
            &batch,
            1.0,
        )
        .iter()
        .map(|(_, v)| f64::from(v.as_vec()[0]))
        .sum()
    };
    let t = dev.tensor_from_vec(theta.clone(), (1usize, 47usize));
    let terms = <Images as Model>::log_joint_terms::<Cpu, OwnedTape<f32, Cpu>>(
        vec![t.retaped()],
        &batch,
        1.0,
    );
    let g = terms
        .into_iter()
        .map(|(_, v)| v)
        .reduce(|a, b| a + b)
        .unwrap()
        .sum::<(), _>()
        .backward()
        .get(&t)
        .as_vec();
    for i in 0..47 {
        let h = 1e-3f32;
        let (mut a, mut b) = (theta.clone(), theta.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (total(&a) - total(&b)) / (2.0 * f64::from(h));
        assert!(
            (f64::from(g[i]) - fd).abs() < 2e-2 * (1.0 + fd.abs()),
            "∂/∂θ{i}: {} vs {fd}",
            g[i]
        );
    }
}

model! {
    net Small(x: [B, 3]) -> [B, 2] { Linear(3, 4) -> tanh -> Linear(4, 2) }
    /// Variationalized in one line: per-layer Gaussian priors, a mean-field guide.
    bnn Classifier(x: [N, 3], y: [N] in 0..2) = y ~ Categorical(logits = Small(x)) with LayerGaussian, MeanField;
}

/// `bnn` stands for a model with one weight site per layer and its guide.
#[test]
fn a_bnn_in_one_line() {
    let latents = Classifier::latents();
    let names: Vec<&str> = latents.iter().map(|l| l.name).collect();
    assert_eq!(names, vec!["small_w0", "small_w1"]);
    assert_eq!(
        (latents[0].shape, latents[1].shape),
        (&[16usize][..], &[10usize][..])
    );
    let xs: Vec<[f32; 3]> = (0..40)
        .map(|i| {
            let t = i as f32 * 0.7;
            [t.sin(), t.cos(), 0.3 * t.sin() * t.cos()]
        })
        .collect();
    let ys: Vec<f32> = xs
        .iter()
        .map(|x| f32::from(u8::from(x[0] > x[1])))
        .collect();
    let data = ClassifierData {
        x: Array::from_rows(&xs).unwrap(),
        y: Array::vector(ys),
    };
    let mut g = ClassifierGuide::new(&Cpu::seeded(0));
    let report = ravi::fit(
        &mut g,
        &data,
        &FitOptions {
            steps: 300,
            progress: false,
            ..FitOptions::default()
        },
    )
    .unwrap();
    assert!(report.elbo.iter().all(|e| e.is_finite()));
}
