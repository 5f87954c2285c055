//! The host engine's coverage, walked over the catalogue: every parametrization the
//! catalogue says the engine scores compiles to a program that names the stdlib's host
//! density for it (observed, and latent where its support is one the engine draws); every
//! other one says, in words, why its guide runs on the graph.

use ravi_compiler::catalogue::{Constraint, DistSpec, Parametrization, DISTRIBUTIONS};
use ravi_compiler::{compile, fused};

/// An argument of the constraint a parameter takes, from the real latent `w` where it can.
fn argument(constraint: Constraint, first_real: &mut bool) -> String {
    match constraint {
        Constraint::Real if *first_real => {
            *first_real = false;
            "w".into()
        }
        Constraint::Real => "0.5".into(),
        Constraint::Positive => "exp(w)".into(),
        Constraint::UnitInterval => "sigmoid(w)".into(),
        _ => "1.0".into(),
    }
}

/// A model observing `y ~ dist(...)` (its arguments built from a latent `w`), and a
/// mean-field guide.
fn observed_source(d: &DistSpec, p: &Parametrization) -> String {
    let mut first_real = true;
    let args: Vec<String> = p
        .params
        .iter()
        .map(|q| {
            let a = argument(q.constraint, &mut first_real);
            if p.suffix.is_empty() {
                a
            } else {
                format!("{} = {a}", q.name)
            }
        })
        .collect();
    let (y, extra, args) = match d.support {
        _ if d.event => (
            "y: [N] in 0..3".to_string(),
            ", l: [N, 3]".to_string(),
            vec!["l * w".to_string()],
        ),
        Constraint::Boolean => ("y: [N] in 0..2".into(), String::new(), args),
        Constraint::Count => ("y: [N] in 0..".into(), String::new(), args),
        _ => ("y: [N]".into(), String::new(), args),
    };
    let args = if d.name == "Uniform" {
        vec!["w - 5.0".to_string(), "w + 5.0".to_string()]
    } else {
        args
    };
    format!(
        "model M({y}{extra}) {{ w ~ Normal(0.0, 1.0); y ~ {}({}); }}\nguide G for M {{ w ~ MeanField; }}",
        d.name,
        args.join(", ")
    )
}

fn coverage(source: &str) -> Result<String, String> {
    let program = compile(source).unwrap_or_else(|e| panic!("{source}: {e:?}"));
    let (model, guide) = (&program.models[0], &program.guides[0]);
    fused::program(model, guide).map(|tokens| tokens.to_string())
}

#[test]
fn every_distribution_the_engine_claims_is_on_it() {
    for d in DISTRIBUTIONS.iter().filter(|d| !d.joint && !d.vector_event) {
        for p in d.parametrizations {
            let source = observed_source(d, p);
            match (p.engine, coverage(&source)) {
                (true, Ok(tokens)) => {
                    let host = format!("ravi :: dist :: {} as", d.name);
                    assert!(tokens.contains(&host), "{source}: {tokens}");
                }
                (true, Err(why)) => panic!("{source}: the engine claims it, but: {why}"),
                (false, Ok(_)) => panic!("{source}: on the engine, though not claimed"),
                (false, Err(why)) => {
                    assert!(why.contains("site `y`"), "{source}: {why}")
                }
            }
        }
    }
}

/// A latent of each claimed distribution on the reals or the positive reals runs on the
/// engine; one on (0, 1) or an interval says the engine draws only those.
#[test]
fn latents_on_the_engine_are_real_or_positive() {
    for d in DISTRIBUTIONS
        .iter()
        .filter(|d| !d.joint && !d.vector_event && !d.event && !d.support.is_discrete())
    {
        let p = &d.parametrizations[0];
        let mut first_real = true;
        let args: Vec<String> = p
            .params
            .iter()
            .map(|q| match q.constraint {
                Constraint::Real if first_real => {
                    first_real = false;
                    "0.0".into()
                }
                Constraint::Real => "2.0".into(),
                Constraint::UnitInterval => "0.5".into(),
                _ => "1.5".into(),
            })
            .collect();
        let source = format!(
            "model M(y: [N]) {{ x ~ {}({}); y ~ Normal(x, 1.0); }}\nguide G for M {{ x ~ MeanField; }}",
            d.name,
            args.join(", ")
        );
        let drawn = matches!(d.support, Constraint::Real | Constraint::Positive);
        match coverage(&source) {
            Ok(_) => assert!(drawn && p.engine, "{source}: on the engine"),
            Err(why) => assert!(!drawn || !p.engine, "{source}: {why}"),
        }
    }
}

/// Flipout and LRT run on the engine over real weights; over positive ones (which the
/// engine would draw as eᵘ, not rewrite) the guide stays on the graph, and says why.
#[test]
fn rewritten_nets_on_the_engine_have_real_weights() {
    let source = |prior: &str, family: &str| {
        format!(
            "net Net(x: [B, 2]) -> [B, 1] {{ Linear(2, 3) -> tanh -> Linear(3, 1) }}\n\
             model M(x: [N, 2], y: [N, 1]) {{ w ~ {prior} [params(Net)]; y ~ Normal(Net(x; w), 1.0); }}\n\
             guide G for M {{ w ~ {family}(MeanField); }}"
        )
    };
    for family in ["Flipout", "Lrt"] {
        assert!(coverage(&source("Normal(0.0, 1.0)", family)).is_ok());
        let why = coverage(&source("HalfNormal(1.0)", family)).unwrap_err();
        assert!(why.contains("rewrites") && why.contains("`w`"), "{why}");
    }
}
