//! Every DSL mistake is a `compile_error!` at the offending token. The expected compiler
//! output of each case is in `tests/compile_fail/*.stderr` (refresh with TRYBUILD=overwrite).

#[test]
fn dsl_errors_point_at_the_wrong_token() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}
