//! The IR text of every example program, and the message of every error the compile-fail
//! suite provokes, as insta snapshots (in `tests/snapshots/`; review changes with
//! `cargo insta review`).

use ravi_compiler::{compile, render_all};

/// `examples/linear_regression.rs`'s model and guide.
const LINEAR_REGRESSION: &str = r#"
/// Bayesian linear regression with known noise.
model LinReg(x: [N, D], y: [N]) {
    w ~ Normal(0.0, 1.0) [D];
    b ~ Normal(0.0, 1.0);
    y ~ Normal(x @ w + b, 0.5);
}
guide MeanFieldLinReg for LinReg { w ~ MeanField; b ~ MeanField; }
guide FullRankLinReg for LinReg { (w, b) ~ FullRank; }
guide LowRankLinReg for LinReg { (w, b) ~ LowRank(rank = 3); }
guide ImplicitLinReg for LinReg { (w, b) ~ Implicit(hidden = [32]); }
guide FlowLinReg for LinReg { (w, b) ~ Flow(RealNVP(layers = 4, hidden = 32)); }
"#;

/// A guide of each family, per site and joint, with defaults filled in.
#[test]
fn ir_guide_families() {
    let src = r#"
model M(y: [N]) {
    a ~ Normal(0.0, 1.0) [4];
    b ~ Normal(0.0, 1.0);
    c ~ Normal(0.0, 1.0) [2, 3];
    y ~ Normal(sum(a) + b + sum(c), 1.0);
}
guide PerSite for M { a ~ MeanField; b ~ FullRank; c ~ LowRank; }
guide Joint for M { (c, a) ~ LowRank(rank = 2); b ~ MeanField; }
guide AllJoint for M { (a, b, c) ~ FullRank; }
guide Generator for M { (a, b, c) ~ Implicit(noise = 4, hidden = [8], bound = SmallestSingularValue, prior_weight = 0.01, entropy_weight = 0.1); }
guide GeneratorDefaults for M { (a, b, c) ~ Implicit; }
guide Program for M {
    param mu [4] = 0.5;
    param sd [4] positive = 0.2;
    param one positive;
    a ~ Normal(mu, sd);
    b ~ Normal(0.0, one);
    c ~ MeanField;
}
guide Flows for M { (a, b) ~ Flow(RealNVP, Iaf(hidden = 16), Planar(layers = 2), Radial); c ~ Flow(Planar); }
"#;
    insta::assert_snapshot!(compile(src).unwrap().to_text());
}

/// Indexing (`a[g]`, `a[k]`, `a[lo..hi]`) and the functions beyond exp and log:
/// `examples/radon.rs`'s varying intercepts, non-centered.
#[test]
fn ir_indexing_and_functions() {
    let src = r#"
model Radon(floor: [N], county: [N] in 0..85, log_radon: [N]) {
    mu_a ~ Normal(0.0, 10.0);
    sigma_a ~ HalfNormal(1.0);
    eta ~ Normal(0.0, 1.0) [85];
    b ~ Normal(0.0, 10.0);
    sigma ~ HalfNormal(1.0);
    let a = mu_a + sigma_a * eta;
    log_radon ~ Normal(a[county] + b * floor, sigma);
}
guide RadonGuide for Radon { (mu_a, sigma_a, eta, b, sigma) ~ MeanField; }
model Picks(y: [N]) {
    beta ~ Normal(0.0, 1.0) [4, 2];
    w ~ Beta(2.0, 2.0);
    s ~ LogNormal(0.0, 1.0) [2];
    let m = beta[0][1] + sum(beta[1..3]) + sqrt(s[0]) - abs(beta[3][0]) + square(beta[2][1]);
    y ~ Normal(m + log1p(s[1]) - expm1(beta[0][0]), pow(w * s[0] + (1.0 - w) * s[1], 0.5));
}
guide PicksGuide for Picks { beta ~ MeanField; (w, s) ~ MeanField; }
model Mixed(y: [N], x: [N, 3]) {
    locs ~ Normal(0.0, 10.0) [2] ordered;
    scales ~ HalfNormal(2.0) [2];
    logits ~ Normal(0.0, 1.0) [2];
    m ~ Normal(0.0, 1.0) [3, 2];
    track weights = softmax(logits);
    let h = logsumexp(x @ m, 1) + sum(log_softmax(transpose(m), 0)) + sum(concat(locs, logits));
    factor(penalty, -0.5 * square(locs[1] - locs[0]));
    y ~ Mixture(logits, Normal(locs + 0.0 * mean(h), scales));
}
guide MixedGuide for Mixed { (locs, scales, logits) ~ FullRank; m ~ MeanField; }
"#;
    insta::assert_snapshot!(compile(src).unwrap().to_text());
}

#[test]
fn ir_linear_regression() {
    let program = compile(LINEAR_REGRESSION).unwrap();
    insta::assert_snapshot!(program.to_text());
}

/// Every distribution, constrained latents, integer inputs and a second parametrization.
#[test]
fn ir_distributions() {
    let src = r#"
model Dists(x: [N, 2], y: [N] in 0..2, k: [N] in 0.., r: [N], z: [N] in 0..4, lt: [2, 2]) {
    w ~ Normal(0.0, 1.0) [2];
    v ~ Normal(0.0, 1.0) [2, 4];
    s ~ HalfNormal(1.0);
    t ~ HalfCauchy(2.0);
    g ~ Gamma(2.0, 1.0);
    ig ~ InverseGamma(3.0, 1.0);
    p ~ Beta(2.0, 2.0);
    u ~ Uniform(-1.0, 1.0);
    ln ~ LogNormal(0.0, 1.0);
    e ~ Exponential(1.0);
    c ~ Cauchy(0.0, 1.0);
    l ~ Laplace(0.0, 1.0);
    m ~ ScaleMixtureNormal(0.5, 1.0, 0.1);
    y ~ Bernoulli(logits = x @ w + c + l + m);
    z ~ Categorical(logits = x @ v);
    k ~ Poisson(exp(u) * g * ln * e);
    r ~ StudentT(3.0, ig * p, s + t);
    dir ~ Dirichlet(2.0) [3];
    mv ~ MultivariateNormal(0.0, lt) [2];
    rb ~ RelaxedBernoulli(0.5, 0.0);
    ro ~ RelaxedOneHotCategorical(0.5, 0.0) [4];
}
"#;
    insta::assert_snapshot!(compile(src).unwrap().to_text());
}

/// A network declared in the DSL and called on the rows with a site's weights.
#[test]
fn ir_bnn() {
    let src = r#"
net Mlp(x: [B, 64]) -> [B, 10] { Linear(64, 100) -> tanh -> Linear(100, 10) }
model Bnn(x: [N, 64], y: [N] in 0..10) {
    theta ~ Normal(0.0, 1.0) [params(Mlp)];
    y ~ Categorical(logits = Mlp(x; theta));
}
guide MeanFieldBnn for Bnn { theta ~ MeanField; }
guide FlipoutBnn for Bnn { theta ~ Flipout(MeanField); }
guide LrtBnn for Bnn { theta ~ Lrt(MeanField); }
net Cnn(x: [B, 1, 8, 8]) -> [B, 10] { Conv2d(1, 4, 3, padding = 1) -> relu -> MaxPool(2) -> Conv2d(4, 8, 3, stride = 2) -> AvgPool(1) -> flatten -> Linear(8, 10) }
/// One line: per-layer priors and a guide.
bnn Variational(x: [N, 64], y: [N] in 0..10) = y ~ Categorical(logits = Mlp(x)) with LayerGaussian, MeanField;
model Images(x: [N, 1, 8, 8], y: [N] in 0..10) {
    w1 ~ Normal(0.0, 1.0) [params(Cnn, 0)];
    w2 ~ Normal(0.0, 1.0) [params(Cnn, 1)];
    w3 ~ Normal(0.0, 1.0) [params(Cnn, 2)];
    y ~ Categorical(logits = Cnn(x; w1, w2, w3));
}
"#;
    insta::assert_snapshot!(compile(src).unwrap().to_text());
}

/// Every op of the language in one model: lets, functions, reductions, matmul in both
/// directions, constants and Rust constants, a size checked by a static assertion.
#[test]
fn ir_every_op() {
    let src = r#"
model Ops(x: [N, K], z: [3, 2], y: [N]) {
    let s = softplus(SIGMA) * 2;
    w ~ Normal(0, 1) [K];
    v ~ Normal(0.0, s) [3];
    u ~ Normal(mean(z, 1) - 1, exp(0.5)) [3];
    let h = tanh(x @ w) + sigmoid(sum(v @ z)) - log(1.5) / sum(u);
    y ~ Normal(h, exp(mean(v)));
}
"#;
    let program = compile(src).unwrap();
    insta::assert_snapshot!(program.to_text());
}

/// Size parameters: `model Reg<D>` is generic over D; a guide of it has the model's sizes;
/// a size is a number in an expression; two sizes in one model; a guide parameter of a
/// size; the engine's program names them.
#[test]
fn ir_size_parameters() {
    let src = r#"
/// Bayesian linear regression over data of any width.
model Reg<D>(x: [N, D], y: [N]) {
    w ~ Normal(0.0, 1.0) [D];
    b ~ Normal(0.0, 1.0);
    y ~ Normal(x @ w + b, 0.5);
}
guide RegGuide for Reg { w ~ MeanField; b ~ MeanField; }
model Multi<D, K>(x: [N, D], y: [N, K], z: [3]) {
    w ~ Normal(0.0, 1.0) [D, K];
    s ~ HalfNormal(1.0);
    v ~ Normal(0.0, 1.0) [3];
    track w_mean = sum(w) / (D * K);
    y ~ Normal(x @ w + sum(v * z), s);
}
guide MultiGuide for Multi {
    param m [D, K] = 0.0;
    param sd [D, K] positive = 0.1;
    w ~ Normal(m, sd);
    (s, v) ~ FullRank;
}
"#;
    insta::assert_snapshot!(compile(src).unwrap().to_text());
}

const VAE_NETS: &str = "net Enc(x: [B, 4]) -> [B, 4] { Linear(4, 8) -> tanh -> Linear(8, 4) }\nnet Dec(z: [B, 2]) -> [B, 4] { Linear(2, 8) -> tanh -> Linear(8, 4) }\n";

/// `examples/vae_digits.rs`-like programs: local latents, a decoder `param`, amortized
/// guides of Gaussian and relaxed Bernoulli latents, the annealed `temperature`.
#[test]
fn ir_vae() {
    let src = format!(
        "{VAE_NETS}net Enc1(x: [B, 4]) -> [B, 2] {{ Linear(4, 2) }}\nnet Loc(x: [B, 4]) -> [B, 2] {{ Linear(4, 2) }}\n{}",
        r#"
model Vae(x: [N, 4] in 0..2) {
    param dec [params(Dec)];
    z ~ Normal(0.0, 1.0) [N, 2];
    x ~ Bernoulli(logits = Dec(z; dec));
}
guide VaeGuide for Vae { z ~ Amortized(Enc(x)); }
guide VaePerRow for Vae { z ~ MeanField; }
guide VaeProgram for Vae {
    param a [params(Loc)];
    param b [params(Loc)];
    z ~ Normal(Loc(x; a), softplus(Loc(x; b)));
}
model Relaxed(x: [N, 4] in 0..2) {
    param dec [params(Dec)];
    param shift = 0.5;
    z ~ RelaxedBernoulli(temperature, 0.0) [N, 2];
    x ~ Bernoulli(logits = Dec(z; dec) + shift);
}
guide RelaxedGuide for Relaxed { z ~ Amortized(Enc1(x)); }
"#
    );
    insta::assert_snapshot!(compile(&src).unwrap().to_text());
}

fn error(src: &str) -> String {
    let e = compile(src).expect_err("this program must not compile");
    render_all(&e, src)
}

#[test]
fn errors() {
    let cases = [
        ("unknown name", "model M(x: [N, 3], y: [N]) { w ~ Normal(0.0, 1.0) [3]; y ~ Normal(x @ v, 0.5); }"),
        ("shape mismatch", "model M(x: [N, 10], y: [N]) { w ~ Normal(0.0, 1.0) [9]; y ~ Normal(x @ w, 0.5); }"),
        ("elementwise shape mismatch", "model M(x: [N, 3], y: [N]) { w ~ Normal(0.0, 1.0) [4]; y ~ Normal(sum(x, 1) + w, 0.5); }"),
        ("argument shape mismatch", "model M(y: [N]) { w ~ Normal(0.0, 1.0) [4]; v ~ Normal(w, 1.0) [5]; y ~ Normal(0.0, 1.0); }"),
        ("too few arguments", "model M(y: [N]) { mu ~ Normal(0.0); y ~ Normal(mu, 1.0); }"),
        ("too many arguments", "model M(y: [N]) { mu ~ Normal(0.0, 1.0, 2.0); y ~ Normal(mu, 1.0); }"),
        ("negative scale", "model M(y: [N]) { mu ~ Normal(0.0, -1.0); y ~ Normal(mu, 1.0); }"),
        ("unknown parameter", "model M(y: [N]) { mu ~ Normal(loc = 0.0, sd = 1.0); y ~ Normal(mu, 1.0); }"),
        ("positional after named", "model M(y: [N]) { mu ~ Normal(loc = 0.0, 1.0); y ~ Normal(mu, 1.0); }"),
        ("unknown distribution", "model M(y: [N]) { mu ~ Normla(0.0, 1.0); y ~ Normal(mu, 1.0); }"),
        ("unknown function", "model M(y: [N]) { mu ~ Normal(0.0, 1.0); y ~ Normal(expp(mu), 1.0); }"),
        ("observed site not an input", "model M(x: [N, 3], y: [N]) { w ~ Normal(0.0, 1.0) [3]; y_obs ~ Normal(x @ w, 0.5); }"),
        ("redefinition", "model M(y: [N]) { mu ~ Normal(0.0, 1.0); mu ~ Normal(0.0, 1.0); y ~ Normal(mu, 1.0); }"),
        ("matmul of a scalar", "model M(y: [N]) { mu ~ Normal(0.0, 1.0); y ~ Normal(mu @ mu, 1.0); }"),
        ("syntax: missing semicolon", "model M(y: [N]) {\n    mu ~ Normal(0.0, 1.0)\n    y ~ Normal(mu, 1.0);\n}"),
        ("syntax: missing tilde", "model M(y: [N]) { mu Normal(0.0, 1.0); }"),
        ("syntax: bad shape", "model M(y: [N,]) { mu ~ Normal(0.0, 1.0) [3.5]; }"),
        ("guide misses a site", "model M(y: [N]) { a ~ Normal(0.0, 1.0); b ~ Normal(a, 1.0); y ~ Normal(b, 1.0); }\nguide G for M { a ~ MeanField; }"),
        ("guide names an unknown site", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ MeanField; c ~ MeanField; }"),
        ("guide names an observed site", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ MeanField; y ~ MeanField; }"),
        ("guide covers a site twice", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ MeanField; (a) ~ MeanField; }"),
        ("unknown guide family", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ MeanFeld; }"),
        ("guide family argument", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ MeanField(rank = 2); }"),
        ("joint guide over an unknown site", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { (a, q) ~ FullRank; }"),
        ("joint guide names a site twice", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { (a, a) ~ FullRank; }"),
        ("rank must be a count", "model M(y: [N]) { a ~ Normal(0.0, 1.0) [3]; y ~ Normal(sum(a), 1.0); }\nguide G for M { a ~ LowRank(rank = 0.5); }"),
        ("rank is named", "model M(y: [N]) { a ~ Normal(0.0, 1.0) [3]; y ~ Normal(sum(a), 1.0); }\nguide G for M { a ~ LowRank(2); }"),
        ("flow without layers", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ Flow; }"),
        ("unknown flow layer", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ Flow(RealNPV(layers = 2)); }"),
        ("flow layer argument", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ Flow(Planar(layers = 0)); }"),
        ("flow takes only layers", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ Flow(Planar, hidden = 3); }"),
        ("unknown entropy bound", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ Implicit(bound = Fast); }"),
        ("hidden sizes are a list", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ Implicit(hidden = 64); }"),
        ("real-valued latent as a scale", "model M(y: [N]) { s ~ Normal(0.0, 1.0); y ~ Normal(0.0, s); }"),
        ("real-valued expression as a probability", "model M(y: [N] in 0..2) { l ~ Normal(0.0, 1.0); y ~ Bernoulli(l * 2.0); }"),
        ("Bernoulli on a real input", "model M(y: [N]) { l ~ Normal(0.0, 1.0); y ~ Bernoulli(logits = l); }"),
        ("Bernoulli on too wide a range", "model M(y: [N] in 0..3) { l ~ Normal(0.0, 1.0); y ~ Bernoulli(logits = l); }"),
        ("latent discrete site", "model M(y: [N]) { k ~ Poisson(3.0); y ~ Normal(0.0, 1.0); }"),
        ("latent uniform with a latent bound", "model M(y: [N]) { h ~ HalfNormal(1.0); u ~ Uniform(0.0, h); y ~ Normal(u, 1.0); }"),
        ("a layer prior with a latent parameter", "model M(y: [N]) { s ~ HalfNormal(1.0); w ~ NormalInverseGamma(0.0, s, 2.0, 1.0) [4]; y ~ Normal(sum(w), 1.0); }"),
        ("guide program: unknown param", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { param m = 0.0; a ~ Normal(mu, 1.0); }"),
        ("guide program: scale not positive", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { param m = 0.0; param s = 1.0; a ~ Normal(m, s); }"),
        ("guide program: Normal on a positive site", "model M(y: [N]) { a ~ HalfNormal(1.0); y ~ Normal(0.0, a); }\nguide G for M { a ~ Normal(0.0, 1.0); }"),
        ("guide program: param shape", "model M(y: [N]) { a ~ Normal(0.0, 1.0) [3]; y ~ Normal(sum(a), 1.0); }\nguide G for M { param m [4] = 0.0; a ~ Normal(m, 1.0); }"),
        ("guide program: negative initial scale", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { param s positive = -1.0; a ~ Normal(0.0, s); }"),
        ("guide program: unused param", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { param m = 0.0; a ~ MeanField; }"),
        ("Categorical on a real input", "model M(x: [N, 4], y: [N]) { w ~ Normal(0.0, 1.0) [4, 3]; y ~ Categorical(logits = x @ w); }"),
        ("Categorical with the wrong number of categories", "model M(x: [N, 4], y: [N] in 0..10) { w ~ Normal(0.0, 1.0) [4, 3]; y ~ Categorical(logits = x @ w); }"),
        ("Categorical with scalar logits", "model M(y: [N] in 0..2) { l ~ Normal(0.0, 1.0); y ~ Categorical(logits = l); }"),
        ("a vector distribution on a scalar", "model M(y: [N]) { p ~ Dirichlet(1.0); y ~ Normal(0.0, 1.0); }"),
        ("a scale_tril that depends on a latent", "model M(y: [N]) { s ~ HalfNormal(1.0) [2, 2]; z ~ MultivariateNormal(0.0, s) [2]; y ~ Normal(sum(z), 1.0); }"),
        ("a scale_tril of the wrong shape", "model M(l: [3, 3], y: [N]) { z ~ MultivariateNormal(0.0, l) [2]; y ~ Normal(sum(z), 1.0); }"),
        ("net: wrong input width", "net Mlp(x: [B, 4]) -> [B, 2] { Linear(4, 3) -> relu -> Linear(3, 2) }\nmodel M(x: [N, 5], y: [N]) { t ~ Normal(0.0, 1.0) [params(Mlp)]; y ~ Normal(sum(Mlp(x; t), 1), 1.0); }"),
        ("net: wrong weight count", "net Mlp(x: [B, 4]) -> [B, 2] { Linear(4, 2) }\nmodel M(x: [N, 4], y: [N]) { t ~ Normal(0.0, 1.0) [9]; y ~ Normal(sum(Mlp(x; t), 1), 1.0); }"),
        ("net: layers that do not chain", "net Mlp(x: [B, 4]) -> [B, 2] { Linear(4, 3) -> tanh -> Linear(5, 2) }"),
        ("net: unknown layer", "net Mlp(x: [B, 4]) -> [B, 2] { Linear(4, 2) -> tahn }"),
        ("net: declared output differs", "net Mlp(x: [B, 4]) -> [B, 3] { Linear(4, 2) }"),
        ("net: call without weights", "net Mlp(x: [B, 4]) -> [B, 2] { Linear(4, 2) }\nmodel M(x: [N, 4], y: [N]) { t ~ Normal(0.0, 1.0) [10]; y ~ Normal(sum(Mlp(x), 1), 1.0); }"),
        ("net: unknown net in params", "model M(y: [N]) { t ~ Normal(0.0, 1.0) [params(Mlp)]; y ~ Normal(sum(t), 1.0); }"),
        ("Flipout on weights that are also a layer of another net", "net One(x: [B, 4]) -> [B, 2] { Linear(4, 2) }\nnet Two(x: [B, 4]) -> [B, 2] { Linear(4, 2) -> tanh -> Linear(2, 2) }\nmodel M(x: [N, 4], y: [N]) { t ~ Normal(0.0, 1.0) [10]; u ~ Normal(0.0, 1.0) [6]; y ~ Normal(sum(One(x; t), 1) + sum(Two(x; t, u), 1), 1.0); }\nguide G for M { t ~ Flipout(MeanField); u ~ MeanField; }"),
        ("Flipout on weights used outside the net", "net Mlp(x: [B, 4]) -> [B, 2] { Linear(4, 2) }\nmodel M(x: [N, 4], y: [N]) { t ~ Normal(0.0, 1.0) [10]; y ~ Normal(sum(Mlp(x; t), 1) + sum(t), 1.0); }\nguide G for M { t ~ Flipout(MeanField); }"),
        ("Lrt on a site that is not a net's weights", "model M(y: [N]) { t ~ Normal(0.0, 1.0); y ~ Normal(t, 1.0); }\nguide G for M { t ~ Lrt(MeanField); }"),
        ("Flipout of another family", "net Mlp(x: [B, 4]) -> [B, 2] { Linear(4, 2) }\nmodel M(x: [N, 4], y: [N]) { t ~ Normal(0.0, 1.0) [10]; y ~ Normal(sum(Mlp(x; t), 1), 1.0); }\nguide G for M { t ~ Flipout(FullRank); }"),
        ("net: a convolution on features", "net Bad(x: [B, 4]) -> [B, 2] { Conv2d(1, 2, 3) -> Linear(4, 2) }"),
        ("net: Linear on images", "net Bad(x: [B, 1, 4, 4]) -> [B, 2] { Conv2d(1, 2, 3) -> Linear(8, 2) }"),
        ("net: ends on images", "net Bad(x: [B, 1, 4, 4]) -> [B, 2] { Conv2d(1, 2, 3) }"),
        ("bnn without a net call", "bnn B(x: [N, 3], y: [N]) = y ~ Normal(sum(x, 1), 1.0) with LayerGaussian, MeanField;"),
        ("bnn with an unknown family", "net Mlp(x: [B, 3]) -> [B, 1] { Linear(3, 1) }\nbnn B(x: [N, 3], y: [N, 1]) = y ~ Normal(Mlp(x), 1.0) with LayerGaussian, MeanFeld;"),
        ("index: range wider than the axis", "model M(g: [N] in 0..5, y: [N]) { a ~ Normal(0.0, 1.0) [4]; y ~ Normal(a[g], 1.0); }"),
        ("index: not declared as integers", "model M(g: [N], y: [N]) { a ~ Normal(0.0, 1.0) [4]; y ~ Normal(a[g], 1.0); }"),
        ("index: a latent as an index", "model M(y: [N]) { a ~ Normal(0.0, 1.0) [4]; b ~ Normal(0.0, 1.0); y ~ Normal(a[b], 1.0); }"),
        ("index: element outside the axis", "model M(y: [N]) { a ~ Normal(0.0, 1.0) [4]; y ~ Normal(a[4], 1.0); }"),
        ("index: range outside the axis", "model M(y: [N]) { a ~ Normal(0.0, 1.0) [4]; y ~ Normal(sum(a[2..6]), 1.0); }"),
        ("index: the rows", "model M(x: [N], g: [N] in 0..3, y: [N]) { y ~ Normal(x[g], 1.0); }"),
        ("index: a scalar", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a[0], 1.0); }"),
        ("pow with a latent exponent", "model M(y: [N]) { a ~ Normal(0.0, 1.0); s ~ HalfNormal(1.0); y ~ Normal(pow(s, a), 1.0); }"),
        ("syntax: index without a closing bracket", "model M(y: [N]) { a ~ Normal(0.0, 1.0) [4]; y ~ Normal(a[1, 1.0); }"),
        ("mixture: a latent site", "model M(y: [N]) { w ~ Normal(0.0, 1.0) [2]; z ~ Mixture(w, Normal(0.0, 1.0)); y ~ Normal(z, 1.0); }"),
        ("mixture: components not a distribution", "model M(y: [N]) { w ~ Normal(0.0, 1.0) [2]; y ~ Mixture(w, exp(w)); }"),
        ("mixture: one component", "model M(y: [N]) { w ~ Normal(0.0, 1.0) [1]; y ~ Mixture(w, Normal(w, 1.0)); }"),
        ("mixture: arguments without the component axis", "model M(y: [N]) { w ~ Normal(0.0, 1.0) [2]; m ~ Normal(0.0, 1.0) [3]; y ~ Mixture(w, Normal(m, 1.0)); }"),
        ("ordered: a positive distribution", "model M(y: [N]) { s ~ HalfNormal(1.0) [2] ordered; y ~ Normal(sum(s), 1.0); }"),
        ("ordered: a scalar", "model M(y: [N]) { s ~ Normal(0.0, 1.0) ordered; y ~ Normal(s, 1.0); }"),
        ("factor of data alone", "model M(y: [N]) { s ~ Normal(0.0, 1.0); factor(f, sum(y)); y ~ Normal(s, 1.0); }"),
        ("track of a number", "model M(y: [N]) { s ~ Normal(0.0, 1.0); track t = 2.0; y ~ Normal(s, 1.0); }"),
        ("concat of data", "model M(a: [2], b: [3], y: [N]) { s ~ Normal(0.0, 1.0); y ~ Normal(s + sum(concat(a, b)), 1.0); }"),
        ("transpose of a vector", "model M(y: [N]) { s ~ Normal(0.0, 1.0) [3]; y ~ Normal(sum(transpose(s)), 1.0); }"),
        ("a list in a model", "model M(y: [N]) { a ~ Normal([0.0, 1.0], 1.0); y ~ Normal(a, 1.0); }"),
        ("guide for an unknown model", "guide G for Nope { a ~ MeanField; }"),
        ("local latent, rows not first", "model M(y: [N]) { z ~ Normal(0.0, 1.0) [3, N]; y ~ Normal(1.0, 1.0); }"),
        ("local latent with a global family", "model M(y: [N]) { z ~ Normal(0.0, 1.0) [N]; y ~ Normal(z, 1.0); }\nguide G for M { z ~ FullRank; }"),
        ("a model param in the guide", "model M(y: [N]) { param m = 0.5; y ~ Normal(m, 1.0); }\nguide G for M { m ~ MeanField; }"),
        ("a param with rows", "model M(y: [N]) { param m [N]; y ~ Normal(m, 1.0); }"),
        ("a param that starts at a site", "model M(y: [N]) { a ~ Normal(0.0, 1.0); param m = a; y ~ Normal(m, 1.0); }"),
        ("Amortized on a global site", &format!("{VAE_NETS}model M(x: [N, 4]) {{ z ~ Normal(0.0, 1.0) [2]; param d [params(Dec)]; x ~ Normal(sum(z) + 0.0 * sum(d), 1.0); }}\nguide G for M {{ z ~ Amortized(Enc(x)); }}")),
        ("Amortized without a net call", &format!("{VAE_NETS}model M(x: [N, 4]) {{ z ~ Normal(0.0, 1.0) [N, 2]; param d [params(Dec)]; x ~ Normal(Dec(z; d), 1.0); }}\nguide G for M {{ z ~ Amortized(x); }}")),
        ("Amortized encoder of the wrong width", &format!("{VAE_NETS}model M(x: [N, 4]) {{ z ~ Normal(0.0, 1.0) [N, 3]; x ~ Normal(sum(z) + 0.0, 1.0); }}\nguide G for M {{ z ~ Amortized(Enc(x)); }}")),
        ("guide program: a net without softplus as a scale", &format!("{VAE_NETS}model M(x: [N, 4]) {{ z ~ Normal(0.0, 1.0) [N, 2]; param d [params(Dec)]; x ~ Normal(Dec(z; d), 1.0); }}\nguide G for M {{ param a [params(Dec)]; z ~ Normal(0.0, Dec(x; a)); }}")),
        ("guide program: a net for a global site", &format!("{VAE_NETS}model M(x: [N, 4]) {{ z ~ Normal(0.0, 1.0) [4]; x ~ Normal(sum(z), 1.0); }}\nguide G for M {{ param a [params(Enc)]; z ~ Normal(Enc(x; a), 1.0); }}")),
        ("size parameter: unified with a literal", "model Reg<D>(x: [N, D], y: [N]) { w ~ Normal(0.0, 1.0) [3]; y ~ Normal(x @ w, 0.5); }"),
        ("size parameter: unified with another", "model Reg<D, K>(x: [N, D], y: [N]) { w ~ Normal(0.0, 1.0) [K]; y ~ Normal(x @ w, 0.5); }"),
        ("size parameter: unified with a Rust constant", "model Reg<D>(x: [N, D], y: [N]) { w ~ Normal(0.0, 1.0) [P]; y ~ Normal(x @ w, 0.5); }"),
        ("size parameter: elementwise with a literal", "model Reg<D>(a: [D], y: [N]) { w ~ Normal(0.0, 1.0) [4]; y ~ Normal(sum(a + w), 0.5); }"),
        ("size parameter: declared twice", "model Reg<D, D>(x: [N, D], y: [N]) { w ~ Normal(0.0, 1.0) [D]; y ~ Normal(x @ w, 0.5); }"),
        ("size parameter: not in UPPER_CASE", "model Reg<d>(x: [N, d], y: [N]) { w ~ Normal(0.0, 1.0) [d]; y ~ Normal(x @ w, 0.5); }"),
        ("size parameter: the rows", "model Reg<N>(x: [N, 3], y: [N]) { w ~ Normal(0.0, 1.0) [3]; y ~ Normal(x @ w, 0.5); }"),
        ("size parameter: as a site", "model Reg<D>(y: [N]) { D ~ Normal(0.0, 1.0); y ~ Normal(0.0, 0.5); }"),
        ("size parameter: indexed", "model Reg<D>(y: [N]) { w ~ Normal(0.0, 1.0) [D]; y ~ Normal(w[0], 0.5); }"),
        ("size parameter: a net's input", "net Mlp(x: [B, 4]) -> [B, 1] { Linear(4, 1) }\nmodel Reg<D>(x: [N, D], y: [N, 1]) { t ~ Normal(0.0, 1.0) [params(Mlp)]; y ~ Normal(Mlp(x; t), 0.5); }"),
        ("size parameter: a guide parameter of a literal size", "model Reg<D>(x: [N, D], y: [N]) { w ~ Normal(0.0, 1.0) [D]; y ~ Normal(x @ w, 0.5); }\nguide G for Reg { param m [3] = 0.0; param s [D] positive = 0.1; w ~ Normal(m, s); }"),
        ("syntax: size parameters unclosed", "model Reg<D(x: [N, D], y: [N]) { y ~ Normal(0.0, 0.5); }"),
        ("Amortized encoder of a non-input", &format!("{VAE_NETS}model M(x: [N, 4]) {{ z ~ Normal(0.0, 1.0) [N, 2]; param d [params(Dec)]; x ~ Normal(Dec(z; d), 1.0); }}\nguide G for M {{ z ~ Amortized(Enc(y)); }}")),
        ("Uniform with equal bounds", "model M(y: [N]) { mu ~ Uniform(0.0, 0.0); y ~ Normal(mu, 1.0); }"),
        ("Uniform with its bounds reversed", "model M(y: [N]) { mu ~ Uniform(1.0, 0.0); y ~ Normal(mu, 1.0); }"),
        ("a number beyond f32", "model M(y: [N]) { mu ~ Normal(3.5e38, 1.0); y ~ Normal(mu, 1.0); }"),
        ("an infinite number in an expression", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a * 1e999, 1.0); }"),
        ("numbers whose product is beyond f32", "model M(y: [N]) { mu ~ Normal(1e30 * 1e30, 1.0); y ~ Normal(mu, 1.0); }"),
        ("a positive number that is 0 in f32", "model M(y: [N]) { mu ~ Normal(0.0, 1e-50); y ~ Normal(mu, 1.0); }"),
        ("net: no input sizes", "net M(x: []) -> [B, 2] { relu }"),
        ("net: an input size past the limit", "net M(x: [B, 100000000, 1000000000000]) -> [B, 2] { Linear(2, 2) }"),
        ("net: input rows past the limit", "net M(x: [B, 100000000, 100000000]) -> [B, 2] { Linear(2, 2) }"),
        ("net: padding past the limit", "net C(x: [B, 1, 4, 4]) -> [B, 2] { Conv2d(1, 2, 3, padding = 18446744073709551615) -> flatten -> Linear(32, 2) }"),
        ("net: a Linear size past the limit", "net L(x: [B, 4]) -> [B, 2] { Linear(4, 4294967296) -> Linear(4294967296, 2) }"),
        ("net: a layer's weights past the limit", "net L(x: [B, 65536]) -> [B, 65536] { Linear(65536, 65536) }"),
        ("shape: a size that is no usize", "model M(x: [18446744073709551616], y: [N]) { y ~ Normal(0.0, 1.0); }"),
        ("shape: more elements than the limit", "model M(x: [65536, 65537], y: [N]) { y ~ Normal(0.0, 1.0); }"),
        ("shape: a value past the limit", "model M(a: [65536, 1], b: [1, 65536], y: [N]) { w ~ Normal(0.0, 1.0); y ~ Normal(sum(a @ b) * w, 1.0); }"),
        ("shape: a lower-case size", "model M(y: [N]) { w ~ Normal(0.0, 1.0) [d]; y ~ Normal(sum(w), 1.0); }"),
        ("integers in an empty range", "model M(g: [N] in 5..2, y: [N]) { y ~ Normal(0.0, 1.0); }"),
        ("nesting: parentheses past the limit", &format!("model M(y: [N]) {{ a ~ Normal(0.0, 1.0); y ~ Normal({}a{}, 1.0); }}", "(".repeat(200), ")".repeat(200))),
        ("nesting: a sum past the limit", &format!("model M(y: [N]) {{ a ~ Normal(0.0, 1.0); y ~ Normal({}, 1.0); }}", vec!["a"; 200].join(" + "))),
        ("nesting: functions past the limit", &format!("model M(y: [N]) {{ a ~ Normal(0.0, 1.0); y ~ Normal({}a{}, 1.0); }}", "exp(".repeat(150), ")".repeat(150))),
        ("a Rust keyword as a model's name", "model self(y: [N]) { y ~ Normal(0.0, 1.0); }"),
        ("a Rust keyword as an input", "model M(fn: [N]) { fn ~ Normal(0.0, 1.0); }"),
        ("a Rust keyword as a let", "model M(y: [N]) { let type = 1.0; y ~ Normal(type, 1.0); }"),
        ("a Rust keyword as a guide's name", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide match for M { a ~ MeanField; }"),
        ("a rank past the cap", "model M(y: [N]) { a ~ Normal(0.0, 1.0) [3]; y ~ Normal(sum(a), 1.0); }\nguide G for M { a ~ LowRank(rank = 1000000000000); }"),
        ("a guide defined twice", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide G for M { a ~ MeanField; }\nguide G for M { a ~ FullRank; }"),
        ("a guide named as a model", "model M(y: [N]) { a ~ Normal(0.0, 1.0); y ~ Normal(a, 1.0); }\nguide M for M { a ~ MeanField; }"),
    ];
    let mut out = String::new();
    for (name, src) in cases {
        let src: &str = src;
        out.push_str(&format!("== {name}\n{}\n\n", error(src)));
    }
    insta::assert_snapshot!(out);
}

/// A size that involves a Rust constant is not an error for the macro: it becomes a static
/// assertion, and the two sizes share one type in the generated code.
#[test]
fn symbolic_sizes_become_assertions() {
    let p = compile(
        "model M(x: [N, D], y: [N]) { w ~ Normal(0.0, 1.0) [10]; y ~ Normal(x @ w, 0.5); }",
    )
    .unwrap();
    let m = &p.models[0];
    assert_eq!(m.asserts.len(), 1);
    assert!(
        m.asserts[0]
            .message
            .contains("x @ w has x: [N, D] but w: [10]"),
        "{}",
        m.asserts[0].message
    );
    // `x` is typed with the literal, so only the assertion can fail.
    assert_eq!(m.inputs[0].shape.to_string(), "[N, 10]");
}
