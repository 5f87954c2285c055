//! The compiler's catalogue and the stdlib must agree: every distribution and guide family
//! the DSL accepts has an implementation with the same parameter names in the same order,
//! and nothing is implemented that the DSL cannot reach.

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
        let implemented: Vec<(&str, Vec<&str>)> = implemented
            .iter()
            .map(|(suffix, params)| (*suffix, params.to_vec()))
            .collect();
        assert_eq!(implemented, catalogued, "parametrizations of {}", spec.name);
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
