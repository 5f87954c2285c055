// A `pub model` in a module that does not parse gives its syntax error alone: its guides in
// other modules, by `use` or by path, add none.
mod models {
    use ravi::prelude::*;

    model! {
        pub model M(y: [N]) {
            mu ~ Normal(0.0, 1.0)
            y ~ Normal(mu, 1.0);
        }
    }
}

mod guides {
    use crate::models::M;
    use ravi::prelude::*;

    guide! { guide ByUse for M { mu ~ MeanField; } }
    guide! { guide ByPath for crate::models::M { mu ~ MeanField; } }
}

fn main() {}
