//! Issue 15's compiler cases through the real macro: each an error at its token, never a
//! panic, a rustc crash or an error inside generated code.

mod keyword {
    use ravi::prelude::*;
    model! {
        model self(y: [N]) {
            y ~ Normal(0.0, 1.0);
        }
    }
}

mod bounds {
    use ravi::prelude::*;
    model! {
        model M(y: [N]) {
            mu ~ Uniform(1.0, 0.0);
            y ~ Normal(mu, 1.0);
        }
    }
}

mod big_number {
    use ravi::prelude::*;
    model! {
        model M(y: [N]) {
            a ~ Normal(0.0, 1.0);
            y ~ Normal(a * 1e999, 1.0);
        }
    }
}

mod net_size {
    use ravi::prelude::*;
    model! {
        net L(x: [B, 4]) -> [B, 2] { Linear(4, 4294967296) -> Linear(4294967296, 2) }
    }
}

mod shape_size {
    use ravi::prelude::*;
    model! {
        model M(x: [65536, 65537], y: [N]) {
            y ~ Normal(0.0, 1.0);
        }
    }
}

mod deep {
    use ravi::prelude::*;
    model! {
        model Deep(y: [N]) {
            a ~ Normal(0.0, 1.0);
            y ~ Normal(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))), 1.0);
        }
    }
}

fn main() {}
