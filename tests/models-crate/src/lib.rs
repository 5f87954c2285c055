//! A library crate whose models other crates guide: the fixture of `tests/modules.rs`
//! (README, "Models in modules and crates"). Its models are `pub model`s in a module and at
//! the crate's root; a user of the crate writes `use ravi_models_fixture::models::Mean;`
//! and `guide! { guide G for Mean { .. } }`, or names the model by its path.

#![deny(missing_docs)]

/// Models, for other crates to guide.
pub mod models {
    use ravi::prelude::*;

    model! {
        /// The mean of normal data with known noise: `mu`'s posterior is a closed form.
        pub model Mean(y: [N]) {
            mu ~ Normal(0.0, 10.0);
            y ~ Normal(mu, 1.0);
        }
    }
}

ravi::model! {
    /// The same model at the crate's root, with its scale learned.
    pub model MeanScale(y: [N]) {
        mu ~ Normal(0.0, 10.0);
        sigma ~ HalfNormal(5.0);
        y ~ Normal(mu, sigma);
    }
}

/// A `pub bnn`: its model, and the guide `ClassifierGuide` that comes with it.
pub mod nets {
    use ravi::prelude::*;

    model! {
        net Small(x: [B, 2]) -> [B, 2] { Linear(2, 2) }
        pub bnn Classifier(x: [N, 2], y: [N] in 0..2) = y ~ Categorical(logits = Small(x)) with LayerGaussian, MeanField;
    }
}

/// A guide the crate ships with its model (a guide in the model's own crate, another
/// module).
pub mod guides {
    use ravi::prelude::*;

    guide! {
        /// Mean-field over `mu`.
        pub guide MeanGuide for crate::models::Mean { mu ~ MeanField; }
    }
}
