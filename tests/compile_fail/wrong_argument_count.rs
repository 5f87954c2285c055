use ravi::prelude::*;

model! {
    model M(y: [N]) {
        mu ~ Normal(0.0);
        y ~ Normal(mu, 1.0);
    }
}

fn main() {}
