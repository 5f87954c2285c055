//! The compiler's catalogue and the stdlib must agree: every distribution and guide family
//! the DSL accepts has an implementation with the same parameter names in the same order,
//! the host engine covers exactly the parametrizations and families the catalogue says it
//! does, and nothing is implemented that the DSL cannot reach.

use ravi_compiler::catalogue::{DISTRIBUTIONS, FAMILIES};

#[test]
fn every_catalogued_distribution_is_implemented_with_the_same_parameters() {
    for spec in DISTRIBUTIONS {
        let (_, implemented) = ravi::dist::IMPLEMENTED
            .iter()
            .find(|(name, _)| *name == spec.name)
            .unwrap_or_else(|| panic!("{} is in the catalogue but not in ravi::dist", spec.name));
        let catalogued: Vec<(&str, Vec<&str>)> = spec
            .parametrizations
            .iter()
            .map(|p| (p.suffix, p.params.iter().map(|q| q.name).collect()))
            .collect();
        let stdlib: Vec<(&str, Vec<&str>)> = implemented
            .iter()
            .map(|p| (p.suffix, p.params.to_vec()))
            .collect();
        assert_eq!(stdlib, catalogued, "parametrizations of {}", spec.name);
        for (catalogued, implemented) in spec.parametrizations.iter().zip(implemented.iter()) {
            assert_eq!(
                catalogued.engine,
                implemented.host.is_some(),
                "{}{}: the catalogue says the engine {} it, the stdlib {} a host density",
                spec.name,
                catalogued.suffix,
                if catalogued.engine {
                    "scores"
                } else {
                    "does not score"
                },
                if implemented.host.is_some() {
                    "has"
                } else {
                    "has no"
                },
            );
            if let Some(host) = implemented.host {
                let name = format!("{}{}", spec.name, catalogued.suffix);
                assert_eq!(host.name(), name, "the host density's name");
            }
            // every elementwise distribution gives the predictive its moments, but the
            // relaxed Bernoulli, whose moments have no closed form, and the improper flat
            // priors, which have none
            let elementwise = !(spec.joint || spec.event || spec.vector_event);
            let no_moments = matches!(spec.name, "RelaxedBernoulli" | "Flat" | "FlatPositive");
            assert_eq!(
                implemented.moments.is_some(),
                elementwise && !no_moments,
                "{}: moments",
                spec.name
            );
        }
    }
    for (name, _) in ravi::dist::IMPLEMENTED {
        assert!(
            DISTRIBUTIONS.iter().any(|d| d.name == *name),
            "{name} is implemented but the DSL's catalogue lacks it"
        );
    }
}

#[test]
fn every_catalogued_family_is_implemented() {
    let catalogued: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
    let mut implemented = ravi::guides::IMPLEMENTED.to_vec();
    implemented.sort_unstable();
    let mut sorted = catalogued.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, implemented);
}

/// The host engine's families, as the catalogue claims them: each gives the engine its
/// Gaussian's parameters.
#[test]
fn every_family_the_engine_claims_gives_it_a_gaussian() {
    use ravi::{Cpu, FamilyArgs, GuideFamily, ParamStore};
    fn gives_a_gaussian<F: GuideFamily<Cpu>>() -> bool {
        let mut store = ParamStore::new(&Cpu::default());
        F::build(&mut store, "q", 3, &FamilyArgs(Vec::new()))
            .host_gaussian()
            .is_some()
    }
    for family in FAMILIES.iter().filter(|f| f.engine) {
        let gives = match family.name {
            "MeanField" => gives_a_gaussian::<ravi::guides::MeanField>(),
            "FullRank" => gives_a_gaussian::<ravi::guides::FullRank>(),
            // their net calls run on the Gaussian's mean and sd (`fused/rewrite.rs`)
            "Flipout" => gives_a_gaussian::<ravi::guides::Flipout>(),
            "Lrt" => gives_a_gaussian::<ravi::guides::Lrt>(),
            other => panic!("the catalogue says the engine runs `{other}`: add it here"),
        };
        assert!(gives, "`{}` gives the engine no Gaussian", family.name);
    }
}
