use ravi::prelude::*;

model! {
    net Mlp(x: [B, 64]) -> [B, 10] { Linear(64, 100) -> tanh -> Linear(100, 10) }
    model Bnn(x: [N, 63], y: [N] in 0..10) {
        theta ~ Normal(0.0, 1.0) [params(Mlp)];
        y ~ Categorical(logits = Mlp(x; theta));
    }
}

fn main() {}
