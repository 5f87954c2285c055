use ravi::prelude::*;

model! {
    model Reg<D>(x: [N, D], y: [N]) {
        w ~ Normal(0.0, 1.0) [3];
        y ~ Normal(x @ w, 0.5);
    }
}

fn main() {}
