use ravi::prelude::*;

model! {
    model Softmax(x: [N, 4], y: [N]) {
        w ~ Normal(0.0, 1.0) [4, 3];
        y ~ Categorical(logits = x @ w);
    }
}

fn main() {}
