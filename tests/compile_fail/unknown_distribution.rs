use ravi::prelude::*;

model! {
    model M(y: [N]) {
        mu ~ Normla(0.0, 1.0);
        y ~ Normal(mu, 1.0);
    }
}

fn main() {}
