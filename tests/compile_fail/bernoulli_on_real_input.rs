use ravi::prelude::*;

model! {
    model Logistic(x: [N, 3], y: [N]) {
        w ~ Normal(0.0, 1.0) [3];
        y ~ Bernoulli(logits = x @ w);
    }
}

fn main() {}
