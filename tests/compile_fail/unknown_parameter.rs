use ravi::prelude::*;

model! {
    model M(y: [N]) {
        mu ~ Normal(loc = 0.0, sd = 1.0);
        y ~ Normal(mu, 1.0);
    }
}

fn main() {}
