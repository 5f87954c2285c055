use ravi::prelude::*;

model! {
    model M(y: [N]) {
        s ~ Normal(0.0, 1.0);
        y ~ Normal(0.0, s);
    }
}

fn main() {}
