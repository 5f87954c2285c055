//! Models in modules and crates (README, "Models in modules and crates"): a model defined in
//! one module is guided in another, by `use` or by its path, with no `#[macro_use]`; a
//! `pub model` of another crate (`tests/models-crate`) is guided here; a guide may come
//! before its model. Each guide is fitted against the closed-form posterior of a normal
//! mean.

use ravi::prelude::*;

/// Models, in a module of their own.
mod models {
    use ravi::prelude::*;

    model! {
        /// Normal data with known noise.
        pub model Coin(y: [N]) {
            mu ~ Normal(0.0, 10.0);
            y ~ Normal(mu, 1.0);
        }
    }

    // Not `pub`: usable anywhere in this crate, not from other crates.
    model! {
        model Local(y: [N]) {
            mu ~ Normal(0.0, 10.0);
            y ~ Normal(mu, 1.0);
        }
    }

    /// A deeper module, with a model of a name used above too.
    pub mod deeper {
        use ravi::prelude::*;

        model! {
            pub model Local(y: [N]) {
                mu ~ Normal(0.0, 10.0);
                y ~ Normal(mu, 1.0);
            }
        }
    }
}

/// The same `pub model` text again, in another module: its exported macro takes another
/// name.
mod twin {
    use ravi::prelude::*;

    model! {
        pub model Local(y: [N]) {
            mu ~ Normal(0.0, 10.0);
            y ~ Normal(mu, 1.0);
        }
    }

    guide! { pub guide TwinGuide for Local { mu ~ MeanField; } }
}

/// Guides of those models, in another module: the model brought by `use`.
mod guides {
    use crate::models::Coin;
    use ravi::prelude::*;

    guide! {
        guide CoinPlain for Coin { mu ~ MeanField; }
        /// Mean-field over `mu` (`pub` and docs after another guide in one block).
        pub guide CoinGuide for Coin { mu ~ MeanField; }
    }
}

/// Guides that name their model by its path.
mod by_path {
    use ravi::prelude::*;

    guide! { pub guide CoinByPath for crate::models::Coin { mu ~ FullRank; } }
    guide! { pub guide DeeperByPath for super::models::deeper::Local { mu ~ MeanField; } }
}

// A model that is not `pub`, from a submodule, into the crate's root by `use`.
use models::Local;
guide! { guide LocalGuide for Local { mu ~ MeanField; } }

/// A guide written before its model in the same module.
mod order {
    use ravi::prelude::*;

    guide! { pub guide EarlyGuide for Late { mu ~ MeanField; } }
    model! {
        model Late(y: [N]) {
            mu ~ Normal(0.0, 10.0);
            y ~ Normal(mu, 1.0);
        }
    }
}

/// Models of another crate: `pub model`s of `ravi-models-fixture`, in a module and at its
/// root.
mod other_crate {
    use ravi::prelude::*;
    use ravi_models_fixture::models::Mean;

    guide! { pub guide MeanHere for Mean { mu ~ FullRank; } }
    guide! { pub guide MeanByPath for ravi_models_fixture::models::Mean { mu ~ MeanField; } }
    guide! {
        /// A guide of another crate's `pub bnn`, joint over its one layer's weights.
        pub guide ClassifierHere for ravi_models_fixture::nets::Classifier { small_w0 ~ FullRank; }
    }
    guide! {
        pub guide MeanScaleHere for ::ravi_models_fixture::MeanScale { (mu, sigma) ~ MeanField; }
    }
}

const Y: [f32; 8] = [1.3, 0.2, 2.1, 1.7, 0.9, 1.1, 2.4, 0.6];

/// `mu`'s exact posterior mean and sd under the prior N(0, 10²) and unit noise.
fn exact() -> (f32, f32) {
    let precision = Y.len() as f32 + 0.01;
    (Y.iter().sum::<f32>() / precision, precision.sqrt().recip())
}

/// Fits `guide` to `data` and checks `mu` against the exact posterior.
fn fits<G: Guide<Cpu>>(guide: &mut G, data: &<G::Model as Model>::Data, exact_sd: bool) {
    let opts = FitOptions {
        steps: 400,
        progress: false,
        ..FitOptions::default()
    };
    let report = ravi::fit(guide, data, &opts).unwrap();
    assert_eq!(report.elbo.len(), 400);
    let mu = Posterior::from_guide(guide, 20_000)
        .site("mu")
        .unwrap()
        .clone();
    let (mean, sd) = exact();
    assert!(
        (mu.mean[0] - mean).abs() < 0.05,
        "mean {} vs {mean}",
        mu.mean[0]
    );
    if exact_sd {
        assert!((mu.sd[0] / sd - 1.0).abs() < 0.1, "sd {} vs {sd}", mu.sd[0]);
    }
}

fn y() -> Array {
    Array::vector(Y.to_vec())
}

#[test]
fn a_model_in_a_module_is_guided_in_another() {
    let dev = Cpu::seeded(1);
    let data = models::CoinData { y: y() };
    fits(&mut guides::CoinGuide::new(&dev), &data, true);
    fits(&mut guides::CoinPlain::new(&dev), &data, true);
    fits(&mut by_path::CoinByPath::new(&dev), &data, true);
    let twin = twin::LocalData { y: y() };
    fits(&mut twin::TwinGuide::new(&dev), &twin, true);
}

#[test]
fn a_model_that_is_not_pub_is_guided_anywhere_in_its_crate() {
    let dev = Cpu::seeded(2);
    fits(
        &mut LocalGuide::new(&dev),
        &models::LocalData { y: y() },
        true,
    );
    let deeper = models::deeper::LocalData { y: y() };
    fits(&mut by_path::DeeperByPath::new(&dev), &deeper, true);
    fits(
        &mut order::EarlyGuide::new(&dev),
        &order::LateData { y: y() },
        true,
    );
}

#[test]
fn a_pub_model_of_another_crate_is_guided_here() {
    use ravi_models_fixture::models::MeanData;
    let dev = Cpu::seeded(3);
    let data = MeanData { y: y() };
    fits(&mut other_crate::MeanHere::new(&dev), &data, true);
    fits(&mut other_crate::MeanByPath::new(&dev), &data, true);
    // the guide the other crate ships with its model
    fits(
        &mut ravi_models_fixture::guides::MeanGuide::new(&dev),
        &data,
        true,
    );
    // a model at the other crate's root, its noise learned: only the mean is checked
    let data = ravi_models_fixture::MeanScaleData { y: y() };
    fits(&mut other_crate::MeanScaleHere::new(&dev), &data, false);

    // a `pub bnn` of the other crate: its own guide and one written here
    use ravi_models_fixture::nets::{ClassifierData, ClassifierGuide};
    let xs: Vec<[f32; 2]> = (0..40)
        .map(|i| [(i as f32 * 0.7).sin(), (i as f32 * 0.7).cos()])
        .collect();
    let ys = xs
        .iter()
        .map(|x| f32::from(u8::from(x[0] > x[1])))
        .collect();
    let data = ClassifierData {
        x: Array::from_rows(&xs).unwrap(),
        y: Array::vector(ys),
    };
    let opts = FitOptions {
        steps: 100,
        progress: false,
        ..FitOptions::default()
    };
    let here = ravi::fit(&mut other_crate::ClassifierHere::new(&dev), &data, &opts).unwrap();
    let shipped = ravi::fit(&mut ClassifierGuide::new(&dev), &data, &opts).unwrap();
    assert!(here.elbo.iter().chain(&shipped.elbo).all(|e| e.is_finite()));
}
