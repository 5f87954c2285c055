//! The one catalogue of the stdlib the compiler knows: every distribution with its
//! parameters, their constraints and its support; every guide family with its arguments;
//! every built-in function. The checks read it; a test of the `ravi` crate proves each entry
//! has an implementation in `ravi-stdlib` with the same parameter names.

/// The set of values a parameter takes or a distribution's samples live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    /// Any real number.
    Real,
    /// (0, ∞)
    Positive,
    /// (0, 1)
    UnitInterval,
    /// [0, 1]: the values of a continuous Bernoulli (grey pixels), 0 and 1 included.
    ClosedUnitInterval,
    /// (low, high), from the distribution's `low` and `high` parameters.
    Interval,
    /// {0, 1}
    Boolean,
    /// {0, 1, 2, ...}
    Count,
    /// The simplex along the last axis (non-negative, summing to 1).
    Simplex,
    /// A [d, d] lower-triangular matrix with a non-zero diagonal (data or numbers).
    LowerTriangular,
}

impl Constraint {
    /// The values in words, for error messages ("positive", "in (0, 1)").
    pub fn describe(self) -> &'static str {
        match self {
            Constraint::Real => "real",
            Constraint::Positive => "positive",
            Constraint::UnitInterval => "in (0, 1)",
            Constraint::ClosedUnitInterval => "in [0, 1]",
            Constraint::Interval => "within (low, high)",
            Constraint::Boolean => "0 or 1",
            Constraint::Count => "a count (0, 1, 2, ...)",
            Constraint::Simplex => "on the simplex",
            Constraint::LowerTriangular => "a lower-triangular [d, d] matrix",
        }
    }

    /// Does this compile-time constant satisfy the constraint?
    pub fn admits(self, v: f64) -> bool {
        match self {
            Constraint::Real | Constraint::Interval => v.is_finite(),
            Constraint::Positive => v.is_finite() && v > 0.0,
            Constraint::UnitInterval => v > 0.0 && v < 1.0,
            Constraint::ClosedUnitInterval => (0.0..=1.0).contains(&v),
            Constraint::Boolean => v == 0.0 || v == 1.0,
            Constraint::Count => v >= 0.0 && v.fract() == 0.0,
            Constraint::Simplex | Constraint::LowerTriangular => false,
        }
    }

    /// Is every value of `self` also a value of `other`? (What the checks know of an
    /// expression's values against what a parameter requires.)
    pub fn within(self, other: Constraint) -> bool {
        use Constraint::*;
        match (self, other) {
            (a, b) if a == b => true,
            (_, Real) => true,
            (UnitInterval, Positive) => true,
            (UnitInterval, ClosedUnitInterval) => true,
            _ => false,
        }
    }

    /// Values on integers (observed only).
    pub fn is_discrete(self) -> bool {
        matches!(self, Constraint::Boolean | Constraint::Count)
    }
}

/// One parameter of a parametrization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// Its name, as a named argument takes it (`scale = ..`).
    pub name: &'static str,
    /// The values it must take; the checks refuse an argument not known to be within them.
    pub constraint: Constraint,
}

/// One way to parametrize a distribution: `::ravi::dist::{name}::log_prob{suffix}`
/// implements it, taking the parameters in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parametrization {
    /// The suffix of its `log_prob` function (`""` for the first, `"_logits"`, ...).
    pub suffix: &'static str,
    /// The parameters, in the order positional arguments take them.
    pub params: &'static [ParamSpec],
    /// The host engine scores it: the stdlib's `Parametrization::host` is there (a test of
    /// the `ravi` crate holds the two to agreeing), and codegen emits it into the engine's
    /// program.
    pub engine: bool,
}

/// A distribution. Its first parametrization is the one positional arguments take; naming
/// the parameters of another selects that one (`Bernoulli(logits = ..)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistSpec {
    /// The name the DSL writes (`"Normal"`), and the module `::ravi::dist::{name}`.
    pub name: &'static str,
    /// Its parametrizations, the default first.
    pub parametrizations: &'static [Parametrization],
    /// Where its values live.
    pub support: Constraint,
    /// A density of the whole site at once (`log_prob_joint`), not of each element; its
    /// parameters must be numbers.
    pub joint: bool,
    /// Its parameters have one more, last axis than the value: the categories
    /// (`log_prob_events`).
    pub event: bool,
    /// A density of each vector along the value's last axis (`log_prob_events`); its
    /// vector parameters have the value's shape.
    pub vector_event: bool,
    /// Its value, mapped to the guide's unconstrained space, is Normal(loc, scale) (a
    /// Normal, or a LogNormal's log): a mean-field guide has its KL in closed form.
    pub normal_when_unconstrained: bool,
    /// A latent site of it is scored through its logit (`log_prob_logit_space`), exact
    /// where the value rounds to 0 or 1.
    pub logit_space: bool,
}

impl DistSpec {
    /// The index of one of this distribution's parametrizations (generated code names it
    /// by index in the stdlib's `Distribution::PARAMETRIZATIONS`).
    pub fn index_of(&self, parametrization: &Parametrization) -> usize {
        self.parametrizations
            .iter()
            .position(|p| p.suffix == parametrization.suffix)
            .unwrap_or(0)
    }

    /// The parameters of the first parametrization.
    pub fn params(&self) -> &'static [ParamSpec] {
        self.parametrizations[0].params
    }
}

/// The "distribution" of a model `param`: no parameters, no density, real values. Not in
/// [`DISTRIBUTIONS`], so no program can name it.
pub const FLAT: DistSpec = DistSpec {
    name: "param",
    parametrizations: &[Parametrization {
        suffix: "",
        params: &[],
        engine: false,
    }],
    support: Constraint::Real,
    joint: false,
    event: false,
    vector_event: false,
    normal_when_unconstrained: false,
    logit_space: false,
};

const fn p(name: &'static str, constraint: Constraint) -> ParamSpec {
    ParamSpec { name, constraint }
}

/// A distribution with one parametrization (`host`: the engine scores it).
macro_rules! single {
    (normal $name:literal, [$($param:expr),*], $support:expr) => {
        DistSpec {
            name: $name,
            parametrizations: &[Parametrization { suffix: "", params: &[$($param),*], engine: true }],
            support: $support,
            joint: false,
            event: false,
            vector_event: false,
            normal_when_unconstrained: true,
            logit_space: false,
        }
    };
    (host $name:literal, [$($param:expr),*], $support:expr) => {
        DistSpec {
            name: $name,
            parametrizations: &[Parametrization { suffix: "", params: &[$($param),*], engine: true }],
            support: $support,
            joint: false,
            event: false,
            vector_event: false,
            normal_when_unconstrained: false,
            logit_space: false,
        }
    };
    ($name:literal, [$($param:expr),*], $support:expr) => {
        DistSpec {
            name: $name,
            parametrizations: &[Parametrization { suffix: "", params: &[$($param),*], engine: false }],
            support: $support,
            joint: false,
            event: false,
            vector_event: false,
            normal_when_unconstrained: false,
            logit_space: false,
        }
    };
    (joint $name:literal, [$($param:expr),*]) => {
        DistSpec {
            name: $name,
            parametrizations: &[Parametrization { suffix: "", params: &[$($param),*], engine: false }],
            support: Real,
            joint: true,
            event: false,
            vector_event: false,
            normal_when_unconstrained: false,
            logit_space: false,
        }
    };
    (vector $name:literal, [$($param:expr),*], $support:expr) => {
        DistSpec {
            name: $name,
            parametrizations: &[Parametrization { suffix: "", params: &[$($param),*], engine: false }],
            support: $support,
            joint: false,
            event: false,
            vector_event: true,
            normal_when_unconstrained: false,
            logit_space: false,
        }
    };
}

use Constraint::{
    Boolean, ClosedUnitInterval, Count, Interval, LowerTriangular, Positive, Real, Simplex,
    UnitInterval,
};

/// Every distribution the DSL accepts.
pub const DISTRIBUTIONS: &[DistSpec] = &[
    single!(normal "Normal", [p("loc", Real), p("scale", Positive)], Real),
    single!(
        normal "LogNormal",
        [p("loc", Real), p("scale", Positive)],
        Positive
    ),
    single!(host "HalfNormal", [p("scale", Positive)], Positive),
    single!(host "HalfCauchy", [p("scale", Positive)], Positive),
    single!(host "Cauchy", [p("loc", Real), p("scale", Positive)], Real),
    single!(host "Laplace", [p("loc", Real), p("scale", Positive)], Real),
    single!(
        host "StudentT",
        [p("df", Positive), p("loc", Real), p("scale", Positive)],
        Real
    ),
    single!(
        host "HalfStudentT",
        [p("df", Positive), p("scale", Positive)],
        Positive
    ),
    single!(host "Exponential", [p("rate", Positive)], Positive),
    single!(
        host "Gamma",
        [p("concentration", Positive), p("rate", Positive)],
        Positive
    ),
    single!(
        host "InverseGamma",
        [p("concentration", Positive), p("scale", Positive)],
        Positive
    ),
    single!(
        host "Beta",
        [p("concentration1", Positive), p("concentration0", Positive)],
        UnitInterval
    ),
    single!(host "Uniform", [p("low", Real), p("high", Real)], Interval),
    DistSpec {
        name: "RelaxedBernoulli",
        parametrizations: &[Parametrization {
            suffix: "",
            params: &[p("temperature", Positive), p("logits", Real)],
            engine: false,
        }],
        support: UnitInterval,
        joint: false,
        event: false,
        vector_event: false,
        normal_when_unconstrained: false,
        logit_space: true,
    },
    single!(
        host "ScaleMixtureNormal",
        [
            p("mix", UnitInterval),
            p("scale1", Positive),
            p("scale2", Positive)
        ],
        Real
    ),
    DistSpec {
        name: "Bernoulli",
        parametrizations: &[
            Parametrization {
                suffix: "",
                params: &[p("probs", UnitInterval)],
                engine: true,
            },
            Parametrization {
                suffix: "_logits",
                params: &[p("logits", Real)],
                engine: true,
            },
        ],
        support: Boolean,
        joint: false,
        event: false,
        vector_event: false,
        normal_when_unconstrained: false,
        logit_space: false,
    },
    DistSpec {
        name: "ContinuousBernoulli",
        parametrizations: &[
            Parametrization {
                suffix: "",
                params: &[p("probs", UnitInterval)],
                engine: true,
            },
            Parametrization {
                suffix: "_logits",
                params: &[p("logits", Real)],
                engine: true,
            },
        ],
        support: ClosedUnitInterval,
        joint: false,
        event: false,
        vector_event: false,
        normal_when_unconstrained: false,
        logit_space: false,
    },
    DistSpec {
        name: "Categorical",
        parametrizations: &[Parametrization {
            suffix: "",
            params: &[p("logits", Real)],
            engine: true,
        }],
        support: Count,
        joint: false,
        event: true,
        vector_event: false,
        normal_when_unconstrained: false,
        logit_space: false,
    },
    single!(vector "Dirichlet", [p("concentration", Positive)], Simplex),
    single!(vector "RelaxedOneHotCategorical", [p("temperature", Positive), p("logits", Real)], Simplex),
    single!(vector "MultivariateNormal", [p("loc", Real), p("scale_tril", LowerTriangular)], Real),
    single!(host "Poisson", [p("rate", Positive)], Count),
    single!(
        host "NegativeBinomial",
        [p("mean", Positive), p("concentration", Positive)],
        Count
    ),
    DistSpec {
        name: "Binomial",
        parametrizations: &[
            Parametrization {
                suffix: "",
                params: &[p("total_count", Count), p("probs", UnitInterval)],
                engine: true,
            },
            Parametrization {
                suffix: "_logits",
                params: &[p("total_count", Count), p("logits", Real)],
                engine: true,
            },
        ],
        support: Count,
        joint: false,
        event: false,
        vector_event: false,
        normal_when_unconstrained: false,
        logit_space: false,
    },
    single!(
        host "ZeroInflatedPoisson",
        [p("gate", UnitInterval), p("rate", Positive)],
        Count
    ),
    // Improper priors, for latent sites whose likelihood makes the posterior proper.
    single!(host "Flat", [], Real),
    single!(host "FlatPositive", [], Positive),
    // Priors for a layer's weights: densities of the whole site.
    single!(joint "LayerGaussian", []),
    single!(joint "NormalInverseGamma", [p("loc", Real), p("precision", Positive), p("concentration", Positive), p("scale", Positive)]),
    single!(joint "ConjugateKnownMean", [p("mean", Real), p("concentration", Positive), p("scale", Positive)]),
];

/// The largest count a guide family's argument may be (a rank, a width, a number of
/// layers): a documented cap, so that no count is silently out of range. (A rank above the
/// sites' size is taken as their size by the family.)
pub const MAX_COUNT: f64 = 1e9;

/// What a guide family's argument accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A whole number ≥ 1.
    Count,
    /// A real number > 0.
    Positive,
    /// A list of whole numbers ≥ 1, like `[64, 64]`.
    Counts,
    /// Flow layers, given positionally: `Flow(RealNVP(layers = 4), Planar)`.
    Layers,
    /// One of a few names, like `bound = Exact`.
    Choice(&'static [&'static str]),
}

impl ArgKind {
    /// What the argument takes, in words, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            ArgKind::Count => "a whole number of at least 1",
            ArgKind::Positive => "a positive number",
            ArgKind::Counts => "a list of whole numbers of at least 1, like `[64, 64]`",
            ArgKind::Layers => "flow layers, like `RealNVP(layers = 4)`",
            ArgKind::Choice(_) => "one of the names listed",
        }
    }

    /// Does this number satisfy a numeric kind (or each entry of a list kind)?
    pub fn admits(self, v: f64) -> bool {
        match self {
            ArgKind::Count | ArgKind::Counts => v >= 1.0 && v.fract() == 0.0 && v <= MAX_COUNT,
            ArgKind::Positive => v.is_finite() && v > 0.0,
            ArgKind::Layers | ArgKind::Choice(_) => false,
        }
    }
}

/// The value an argument takes when it is not given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArgDefault {
    /// The family chooses from the dimension it is given (documented per family).
    Auto,
    /// This number.
    Number(f64),
    /// This list of numbers.
    List(&'static [f64]),
    /// This name (of the kind's choices).
    Name(&'static str),
    /// Must be given.
    Required,
}

/// One named argument of a guide family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilyArgSpec {
    /// The argument's name (`rank`, `hidden`, ...).
    pub name: &'static str,
    /// What values it takes.
    pub kind: ArgKind,
    /// Its value when it is not given.
    pub default: ArgDefault,
}

/// A guide family (`::ravi::guides::{name}` implements it), or a layer of a flow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilySpec {
    /// The name the DSL writes (`"MeanField"`), and the type `::ravi::guides::{name}`.
    pub name: &'static str,
    /// Named arguments, except a `Layers` one, which takes the positional arguments.
    pub args: &'static [FamilyArgSpec],
    /// The host engine runs it (its stdlib type gives `GuideFamily::host_gaussian`; a test
    /// of the `ravi` crate holds the two to agreeing).
    pub engine: bool,
    /// A mean-field Gaussian: with the `AnalyticKl` estimator its KL to a Normal prior is
    /// in closed form.
    pub mean_field: bool,
    /// It rewrites the net call its site feeds (the site must be one net's weights).
    pub rewrite: Option<Rewrite>,
}

/// How a family rewrites a net call instead of running one draw of its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Flipout (Wen et al. 2018): one weight perturbation per particle, decorrelated per row
    /// by random signs.
    Flipout,
    /// The local reparametrization.
    Lrt,
}

impl Rewrite {
    /// The rewrite's name, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Rewrite::Flipout => "Flipout",
            Rewrite::Lrt => "local reparametrization",
        }
    }
}

const fn positive(name: &'static str, default: f64) -> FamilyArgSpec {
    FamilyArgSpec {
        name,
        kind: ArgKind::Positive,
        default: ArgDefault::Number(default),
    }
}

const fn count(name: &'static str, default: f64) -> FamilyArgSpec {
    FamilyArgSpec {
        name,
        kind: ArgKind::Count,
        default: ArgDefault::Number(default),
    }
}

/// Every guide family and flow layer the DSL accepts.
pub const FAMILIES: &[FamilySpec] = &[
    FamilySpec {
        name: "MeanField",
        args: &[],
        engine: true,
        mean_field: true,
        rewrite: None,
    },
    FamilySpec {
        name: "FullRank",
        args: &[],
        engine: true,
        mean_field: false,
        rewrite: None,
    },
    FamilySpec {
        name: "LowRank",
        args: &[FamilyArgSpec {
            name: "rank",
            kind: ArgKind::Count,
            default: ArgDefault::Auto,
        }],
        engine: false,
        mean_field: false,
        rewrite: None,
    },
    FamilySpec {
        name: "Implicit",
        args: &[
            FamilyArgSpec {
                name: "noise",
                kind: ArgKind::Count,
                default: ArgDefault::Auto,
            },
            FamilyArgSpec {
                name: "hidden",
                kind: ArgKind::Counts,
                default: ArgDefault::List(&[64.0, 64.0]),
            },
            positive("output_variance", 1e-5),
            positive("entropy_weight", 1.0),
            positive("prior_weight", 1.0),
            FamilyArgSpec {
                name: "bound",
                kind: ArgKind::Choice(&["Exact", "SmallestSingularValue"]),
                default: ArgDefault::Name("Exact"),
            },
            FamilyArgSpec {
                name: "generator",
                kind: ArgKind::Choice(&["Dense", "MatMul"]),
                default: ArgDefault::Name("Dense"),
            },
            count("rank", 8.0),
        ],
        engine: false,
        mean_field: false,
        rewrite: None,
    },
    FamilySpec {
        name: "Flipout",
        args: &[FamilyArgSpec {
            name: "guide",
            kind: ArgKind::Choice(&["MeanField"]),
            default: ArgDefault::Name("MeanField"),
        }],
        engine: true,
        mean_field: true,
        rewrite: Some(Rewrite::Flipout),
    },
    FamilySpec {
        name: "Lrt",
        args: &[FamilyArgSpec {
            name: "guide",
            kind: ArgKind::Choice(&["MeanField"]),
            default: ArgDefault::Name("MeanField"),
        }],
        engine: true,
        mean_field: true,
        rewrite: Some(Rewrite::Lrt),
    },
    FamilySpec {
        name: "Flow",
        args: &[FamilyArgSpec {
            name: "layers",
            kind: ArgKind::Layers,
            default: ArgDefault::Required,
        }],
        engine: false,
        mean_field: false,
        rewrite: None,
    },
];

/// The layers a `Flow` stacks, each `Kind(layers = n, ...)`: n layers of that kind.
pub const FLOW_LAYERS: &[FamilySpec] = &[
    FamilySpec {
        name: "RealNVP",
        args: &[count("layers", 4.0), count("hidden", 32.0)],
        engine: false,
        mean_field: false,
        rewrite: None,
    },
    FamilySpec {
        name: "Iaf",
        args: &[count("layers", 2.0), count("hidden", 32.0)],
        engine: false,
        mean_field: false,
        rewrite: None,
    },
    FamilySpec {
        name: "Maf",
        args: &[count("layers", 2.0), count("hidden", 32.0)],
        engine: false,
        mean_field: false,
        rewrite: None,
    },
    FamilySpec {
        name: "Planar",
        args: &[count("layers", 4.0)],
        engine: false,
        mean_field: false,
        rewrite: None,
    },
    FamilySpec {
        name: "Radial",
        args: &[count("layers", 4.0)],
        engine: false,
        mean_field: false,
        rewrite: None,
    },
];

/// Elementwise functions of the language.
pub const ELEMENTWISE: &[&str] = &[
    "exp", "log", "softplus", "sigmoid", "tanh", "sqrt", "abs", "square", "log1p", "expm1", "pow",
];
/// Reductions: `sum(e)` over every axis, `sum(e, axis)` over one.
pub const REDUCTIONS: &[&str] = &["sum", "mean"];
/// Functions along one axis (the last unless named): `logsumexp` drops it.
pub const ALONG_AXIS: &[&str] = &["logsumexp", "softmax", "log_softmax"];
/// Functions of shapes: `transpose(m)` of a matrix, `concat(a, b, ..)` of vectors.
pub const SHAPE_FUNCTIONS: &[&str] = &["transpose", "concat"];

/// The distribution the DSL calls `name`, if there is one.
pub fn distribution(name: &str) -> Option<&'static DistSpec> {
    DISTRIBUTIONS.iter().find(|d| d.name == name)
}

/// The guide family or flow layer the DSL calls `name`, if there is one.
pub fn family(name: &str) -> Option<&'static FamilySpec> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// Names longer than this get no "did you mean" hint, and are no hint themselves.
pub const SUGGEST_MAX_LEN: usize = 64;

/// The most character comparisons the hints of one [`crate::compile`] may make: past it, an
/// unknown name gets no hint (so thousands of unknown names cost no more than a few).
pub const SUGGEST_BUDGET: usize = 1_000_000;

thread_local! {
    static SUGGEST_LEFT: std::cell::Cell<usize> = const { std::cell::Cell::new(SUGGEST_BUDGET) };
}

/// Gives the hints of a new compile their whole budget.
pub(crate) fn reset_suggestions() {
    SUGGEST_LEFT.with(|b| b.set(SUGGEST_BUDGET));
}

/// Is some of this compile's budget for hints left? (Callers that gather many candidates
/// ask before gathering them.)
pub fn suggestions_left() -> bool {
    SUGGEST_LEFT.with(|b| b.get() > 0)
}

/// The closest known name, for "did you mean ...?" hints (the first of the closest, in
/// `known`'s order). `None` for a name longer than [`SUGGEST_MAX_LEN`], and once this
/// compile's [`SUGGEST_BUDGET`] is spent.
pub fn suggest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    if len > SUGGEST_MAX_LEN || !suggestions_left() {
        return None;
    }
    let known: Vec<&str> = known
        .into_iter()
        .filter(|k| k.len() <= SUGGEST_MAX_LEN)
        .collect();
    let cost: usize = known.iter().map(|k| (len + 1) * (k.len() + 1)).sum();
    let affordable = SUGGEST_LEFT.with(|b| match b.get().checked_sub(cost) {
        Some(left) => {
            b.set(left);
            true
        }
        None => {
            b.set(0);
            false
        }
    });
    if !affordable {
        return None;
    }
    let name = name.to_lowercase();
    known
        .into_iter()
        .map(|k| (edit_distance(&name, &k.to_lowercase()), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("Normla", DISTRIBUTIONS.iter().map(|d| d.name)),
            Some("Normal")
        );
        assert_eq!(
            suggest("Gama", DISTRIBUTIONS.iter().map(|d| d.name)),
            Some("Gamma")
        );
        assert_eq!(
            suggest("Wishart", DISTRIBUTIONS.iter().map(|d| d.name)),
            None
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
