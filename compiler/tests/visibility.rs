//! `pub` before a model, a guide or a `bnn`: accepted, and no change to what is compiled
//! (the word matters to `ravi-dsl`, which exports a `pub model`'s macro from the crate).

use ravi_compiler::{compile, render_all};

const PLAIN: &str = r#"
/// A normal mean.
model M(y: [N]) {
    mu ~ Normal(0.0, 10.0);
    y ~ Normal(mu, 1.0);
}
/// Its guide.
guide G for M { mu ~ MeanField; }
net Small(x: [B, 3]) -> [B, 2] { Linear(3, 4) -> tanh -> Linear(4, 2) }
bnn Classifier(x: [N, 3], y: [N] in 0..2) = y ~ Categorical(logits = Small(x)) with LayerGaussian, MeanField;
"#;

#[test]
fn pub_items_compile_as_their_plain_selves() {
    let public = PLAIN
        .replace("\nmodel", "\npub model")
        .replace("\nguide", "\npub guide")
        .replace("\nbnn", "\npub bnn");
    assert_eq!(public.matches("pub ").count(), 3);
    let plain = compile(PLAIN).unwrap();
    assert_eq!(compile(&public).unwrap().to_text(), plain.to_text());
    // from a token stream, `#[doc = ..]` attributes come before `pub`
    let attrs = "#[doc = \" A normal mean.\"] pub model M(y: [N]) { mu ~ Normal(0.0, 10.0); y ~ Normal(mu, 1.0); }";
    assert_eq!(compile(attrs).unwrap().models[0].docs, plain.models[0].docs);
}

#[test]
fn pub_before_anything_else_is_a_syntax_error() {
    let src = "pub net Small(x: [B, 3]) -> [B, 2] { Linear(3, 2) }";
    let errors = render_all(&compile(src).unwrap_err(), src);
    assert!(
        errors.contains("expected `model`, `guide` or `bnn`, found `net`"),
        "{errors}"
    );
}
