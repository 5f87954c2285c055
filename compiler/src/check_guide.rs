//! Guide blocks against their (already lowered) model: every latent site covered exactly
//! once, only latent sites, families and their arguments from the catalogue.

use crate::ast::{self, ExprKind};
use crate::catalogue::{self, ArgDefault, ArgKind, FamilySpec};
use crate::diagnostic::{Diagnostic, Span};
use crate::ir::*;

/// Checks a guide against its (already lowered) model.
pub fn lower_guide(g: &ast::GuideDef, model: &ModelIr) -> Result<GuideIr, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut covered: Vec<Option<Span>> = vec![None; model.latents().count()];
    let params = lower_params(g, model, &mut errors);
    let mut entries = Vec::new();
    let mut programs = Vec::new();
    let mut amortized = Vec::new();
    let mut local_mean_field = Vec::new();
    // A model's `param`s are held as points by every guide.
    for (i, s) in model.latents() {
        if s.param.is_some() {
            covered[i] = Some(s.span.clone());
        }
    }
    for entry in &g.entries {
        let name = &entry.family.name.name;
        if let Some(s) = entry.sites.iter().find(|s| {
            model
                .sites
                .iter()
                .any(|t| t.name == s.name && t.param.is_some())
        }) {
            errors.push(Diagnostic::new(
                s.span.clone(),
                format!(
                    "`{}` is a `param` of model {}: a point the fit learns, not a site a guide draws; leave it out of the guide",
                    s.name, model.name
                ),
            ));
            continue;
        }
        if name == "Amortized" {
            let sites = cover_sites(g, model, entry, &mut covered, &mut errors);
            if let Some(a) = amortized_entry(model, entry, &sites, &mut errors) {
                amortized.push(a);
            }
            continue;
        }
        // A local site under MeanField: parameters per data row.
        if name == "MeanField"
            && entry.family.args.is_empty()
            && entry.sites.len() == 1
            && model
                .sites
                .iter()
                .any(|t| t.name == entry.sites[0].name && t.is_local())
        {
            let sites = cover_sites(g, model, entry, &mut covered, &mut errors);
            local_mean_field.extend(sites);
            continue;
        }
        // A guide program's line may draw a local site (from nets of the rows).
        let program = catalogue::family(name).is_none() && catalogue::distribution(name).is_some();
        if let Some(s) = entry
            .sites
            .iter()
            .find(|s| !program && model.sites.iter().any(|t| t.name == s.name && t.is_local()))
        {
            errors.push(Diagnostic::new(
                s.span.clone(),
                format!(
                    "`{}` is a local site (one value per data row): give it an encoder of the rows, `{} ~ Amortized(Encoder(x));`, a guide program (`{} ~ Normal(Loc(x; a), softplus(Scale(x; b)));`), or parameters per row, `{} ~ MeanField;`, on a line of its own",
                    s.name, s.name, s.name, s.name
                ),
            ));
            continue;
        }
        let family = catalogue::family(name);
        let dist = catalogue::distribution(name);
        if family.is_none() && dist.is_none() {
            let known = catalogue::FAMILIES
                .iter()
                .map(|f| f.name)
                .chain(["Amortized"]);
            let hint = catalogue::suggest(name, known.clone())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!(" (known: {})", known.collect::<Vec<_>>().join(", ")));
            errors.push(Diagnostic::new(
                entry.family.name.span.clone(),
                format!("unknown guide family `{name}`{hint}"),
            ));
            continue;
        }
        let sites = cover_sites(g, model, entry, &mut covered, &mut errors);
        match (family, dist) {
            (Some(spec), _) => {
                let args = family_args(spec, &entry.family, &mut errors);
                if spec.rewrite.is_some() {
                    check_rewrite(model, spec.name, entry, &sites, &mut errors);
                }
                entries.push(GuideEntryIr {
                    family: spec,
                    args,
                    sites,
                    span: entry.span.clone(),
                });
            }
            (None, Some(dist)) => {
                if let Some(p) = program_site(model, &params, entry, dist, &sites, &mut errors) {
                    programs.push(p);
                }
            }
            (None, None) => unreachable!("handled above"),
        }
    }
    // Every parameter must feed some draw (an unused one would have no gradient).
    for (i, p) in params.iter().enumerate() {
        let used = programs.iter().any(|q| {
            q.args.iter().any(|a| match a {
                ProgramArg::Param(j) => *j == i,
                ProgramArg::Net { param, .. } => *param == i,
                ProgramArg::Const(_) => false,
            })
        });
        if !used && errors.is_empty() {
            errors.push(Diagnostic::new(
                p.span.clone(),
                format!(
                    "parameter `{}` is declared but no site of guide {} uses it",
                    p.name, g.name.name
                ),
            ));
        }
    }
    let missing: Vec<&str> = model
        .latents()
        .filter(|(i, _)| covered[*i].is_none())
        .map(|(_, s)| s.name.as_str())
        .collect();
    if !missing.is_empty() && errors.is_empty() {
        let list = missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let example = missing
            .iter()
            .map(|m| format!("{m} ~ MeanField;"))
            .collect::<Vec<_>>()
            .join(" ");
        errors.push(Diagnostic::new(
            g.name.span.clone(),
            format!(
                "guide {} does not cover the latent site{} {list} of model {}; add e.g. `{example}`",
                g.name.name,
                if missing.len() == 1 { "" } else { "s" },
                model.name
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(GuideIr {
        name: g.name.name.clone(),
        docs: g.docs.clone(),
        model: model.name.clone(),
        params,
        entries,
        programs,
        amortized,
        local_mean_field,
        span: g.span.clone(),
    })
}

/// `z ~ Amortized(Encoder(x));`: one local site, an encoder net of features whose input is
/// a row input of the model and whose outputs are what the site's q(z | x) needs.
fn amortized_entry(
    model: &ModelIr,
    entry: &ast::GuideEntry,
    sites: &[usize],
    errors: &mut Vec<Diagnostic>,
) -> Option<AmortizedIr> {
    let [site] = sites else {
        if sites.len() > 1 {
            errors.push(Diagnostic::new(
                entry.span.clone(),
                "Amortized covers one local site; give each its own line",
            ));
        }
        return None;
    };
    let s = model.latents().nth(*site).expect("a latent index").1;
    let site_name = entry.sites[0].clone();
    if !s.is_local() {
        errors.push(Diagnostic::new(
            site_name.span.clone(),
            format!(
                "`{}` is a global site (shape {}); Amortized draws local sites, whose shape starts with the rows `N`",
                s.name, s.shape
            ),
        ));
        return None;
    }
    let usage = format!(
        "write `{} ~ Amortized(Encoder(x));` with a net `Encoder` and a row input `x`",
        s.name
    );
    let call = match entry.family.args.as_slice() {
        [ast::Arg {
            name: None,
            value:
                ast::Expr {
                    kind: ExprKind::Call(c),
                    ..
                },
        }] => c,
        _ => {
            errors.push(Diagnostic::new(entry.family.span.clone(), usage));
            return None;
        }
    };
    let Some(net) = model.nets.iter().position(|n| n.name == call.name.name) else {
        errors.push(Diagnostic::new(
            call.name.span.clone(),
            format!("`{}` is not a net; {usage}", call.name.name),
        ));
        return None;
    };
    let input = match call.args.as_slice() {
        [ast::Arg {
            name: None,
            value:
                ast::Expr {
                    kind: ExprKind::Name(x),
                    ..
                },
        }] if call.weights.is_empty() => {
            match model.inputs.iter().position(|i| i.name == x.name) {
                Some(i) => i,
                None => {
                    errors.push(Diagnostic::new(
                        x.span.clone(),
                        format!("`{}` is not an input of model {}; the encoder reads the rows of an input", x.name, model.name),
                    ));
                    return None;
                }
            }
        }
        _ => {
            errors.push(Diagnostic::new(
                call.span.clone(),
                format!(
                    "the encoder takes one input and no weights (they are the guide's); {usage}"
                ),
            ));
            return None;
        }
    };
    let n = &model.nets[net];
    let features = match n.input {
        NetInput::Features(f) => f,
        NetInput::Images { .. } => {
            errors.push(Diagnostic::new(call.name.span.clone(), format!("the encoder `{}` takes images; an encoder takes rows of features (Linear layers and activations)", n.name)));
            return None;
        }
    };
    if n.layers.iter().any(|l| {
        matches!(
            l,
            NetLayer::Conv2d { .. } | NetLayer::Pool { .. } | NetLayer::Flatten
        )
    }) {
        errors.push(Diagnostic::new(call.name.span.clone(), format!("the encoder `{}` has convolution or pooling layers; an encoder has Linear layers and activations", n.name)));
        return None;
    }
    let in_shape = &model.inputs[input].shape;
    let in_numel = row_numel(in_shape);
    if in_shape.0.first() != Some(&Dim::Rows) || in_numel != Some(features) {
        errors.push(Diagnostic::new(
            call.args[0].value.span.clone(),
            format!("shape mismatch: the encoder `{}` takes rows of {features} features, but `{}` has shape {}", n.name, model.inputs[input].name, in_shape),
        ));
        return None;
    }
    // The temperature the guide uses: the model's, a number or the step's `temperature`.
    let temperature = |errors: &mut Vec<Diagnostic>| -> Option<Option<f64>> {
        let t = s.args[0];
        match &model.nodes[t].op {
            Op::Temperature => Some(None),
            _ => match model.const_value(t) {
                Some(v) => Some(Some(v)),
                None => {
                    errors.push(Diagnostic::new(
                        s.span.clone(),
                        "an amortized relaxed site needs its temperature to be a number or `temperature`, so that the guide uses the same one",
                    ));
                    None
                }
            },
        }
    };
    let kind = match (s.dist.name, s.dist.support) {
        ("RelaxedBernoulli", _) => AmortizedKind::RelaxedBernoulli(temperature(errors)?),
        ("RelaxedOneHotCategorical", _) => {
            let k = match s.shape.0.last() {
                Some(Dim::Lit(k)) if s.shape.rank() >= 2 => *k,
                _ => {
                    errors.push(Diagnostic::new(
                        site_name.span.clone(),
                        format!(
                            "`{}` needs a last axis of classes after the rows, like [N, K]",
                            s.name
                        ),
                    ));
                    return None;
                }
            };
            AmortizedKind::Concrete(temperature(errors)?, k)
        }
        (_, catalogue::Constraint::Real) => AmortizedKind::Gaussian,
        (d, _) => {
            errors.push(Diagnostic::new(
                site_name.span.clone(),
                format!("Amortized draws real-valued (Normal-like), RelaxedBernoulli and RelaxedOneHotCategorical sites; `{}` is {d}", s.name),
            ));
            return None;
        }
    };
    let per_row = row_numel(&s.shape);
    let per_value = match kind {
        AmortizedKind::Gaussian => 2,
        AmortizedKind::RelaxedBernoulli(_) | AmortizedKind::Concrete(..) => 1,
    };
    let what = if per_value == 2 {
        "a location and a scale"
    } else {
        "a logit"
    };
    if per_row.map(|k| k * per_value) != Some(n.outputs) {
        errors.push(Diagnostic::new(
            call.name.span.clone(),
            format!(
                "shape mismatch: the encoder `{}` gives {} outputs per row, but `{}` has {} values per row and each needs {what}: {} outputs",
                n.name,
                n.outputs,
                s.name,
                per_row.map_or("?".into(), |k| k.to_string()),
                per_row.map_or("?".into(), |k| (k * per_value).to_string())
            ),
        ));
        return None;
    }
    Some(AmortizedIr {
        site: *site,
        net,
        input,
        kind,
        span: entry.span.clone(),
    })
}

/// Flipout and the local reparametrization rewrite a net call: the site must be the
/// weights of exactly one net call and nothing else.
fn check_rewrite(
    model: &ModelIr,
    family: &str,
    entry: &ast::GuideEntry,
    sites: &[usize],
    errors: &mut Vec<Diagnostic>,
) {
    let [site] = sites else {
        errors.push(Diagnostic::new(
            entry.span.clone(),
            format!("{family} rewrites one net's weights: give it one site"),
        ));
        return;
    };
    let s = model.latents().nth(*site).expect("a latent index").1;
    let id = s.value;
    let mut net_calls = 0;
    let mut other = None;
    for node in &model.nodes {
        match &node.op {
            Op::Net(_, x, w) if *w == id && *x != id => net_calls += 1,
            op => {
                if op.operands().contains(&id) && other.is_none() {
                    other = Some(node.span.clone());
                }
            }
        }
    }
    let in_args = model.sites.iter().any(|t| t.args.contains(&id));
    if net_calls != 1 || other.is_some() || in_args {
        let why = if net_calls == 0 {
            format!("`{}` is not the weights of a net call", s.name)
        } else if net_calls > 1 {
            format!("`{}` is the weights of {net_calls} net calls", s.name)
        } else {
            format!("`{}` is also used outside its net call", s.name)
        };
        errors.push(Diagnostic::new(
            entry.span.clone(),
            format!("{family} rewrites the net call that `{}` feeds, so `{}` must be used only as the weights of one net call; {why}", s.name, s.name),
        ));
    }
}

/// The latent sites a guide line covers (each once in the whole guide).
fn cover_sites(
    g: &ast::GuideDef,
    model: &ModelIr,
    entry: &ast::GuideEntry,
    covered: &mut [Option<Span>],
    errors: &mut Vec<Diagnostic>,
) -> Vec<usize> {
    let mut sites = Vec::new();
    for site in &entry.sites {
        match model.sites.iter().find(|s| s.name == site.name) {
            None => {
                let hint =
                    catalogue::suggest(&site.name, model.latents().map(|(_, s)| s.name.as_str()))
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                errors.push(Diagnostic::new(
                    site.span.clone(),
                    format!("model {} has no site `{}`{hint}", model.name, site.name),
                ));
            }
            Some(s) if s.observed.is_some() => errors.push(Diagnostic::new(
                site.span.clone(),
                format!(
                    "`{}` is observed in {} (it is an input); a guide covers only latent sites",
                    site.name, model.name
                ),
            )),
            Some(_) => {
                let idx = model.latent_index(&site.name).expect("latent site");
                if covered[idx].is_some() {
                    errors.push(Diagnostic::new(
                        site.span.clone(),
                        format!(
                            "site `{}` is covered twice in guide {}",
                            site.name, g.name.name
                        ),
                    ));
                } else {
                    covered[idx] = Some(site.span.clone());
                    sites.push(idx);
                }
            }
        }
    }
    sites
}

/// `param` declarations: shapes of literal sizes or Rust constants, numeric initial values
/// (positive for a positive parameter; 0 and 1 by default).
fn lower_params(g: &ast::GuideDef, model: &ModelIr, errors: &mut Vec<Diagnostic>) -> Vec<ParamIr> {
    let mut out: Vec<ParamIr> = Vec::new();
    for p in &g.params {
        if out.iter().any(|q| q.name == p.name.name) {
            errors.push(Diagnostic::new(
                p.name.span.clone(),
                format!("parameter `{}` is declared twice", p.name.name),
            ));
            continue;
        }
        let mut dims = Vec::new();
        let mut net_init = None;
        for d in p.shape.iter().flat_map(|s| &s.dims) {
            match d {
                ast::DimAst::Lit(n, _) => dims.push(Dim::Lit(*n)),
                ast::DimAst::Named(id) if id.name == "N" => errors.push(Diagnostic::new(
                    id.span.clone(),
                    "a guide parameter has no row dimension `N`",
                )),
                ast::DimAst::Named(id) => dims.push(Dim::Const(id.name.clone())),
                ast::DimAst::ParamsOf(net, layer, _) => {
                    match crate::check_net::params_of(&model.nets, net, *layer) {
                        Ok(d) => {
                            dims.push(d);
                            net_init = model
                                .nets
                                .iter()
                                .position(|n| n.name == net.name)
                                .map(|i| (i, *layer));
                        }
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        let default = if p.positive { 1.0 } else { 0.0 };
        let init = match &p.init {
            None => default,
            Some(e) => match number(e) {
                Some(v) if !p.positive || v > 0.0 => v,
                _ => {
                    errors.push(Diagnostic::new(
                        e.span.clone(),
                        format!(
                            "the initial value of `{}` must be a {}number",
                            p.name.name,
                            if p.positive { "positive " } else { "" }
                        ),
                    ));
                    default
                }
            },
        };
        out.push(ParamIr {
            name: p.name.name.clone(),
            net_init: net_init.filter(|_| dims.len() == 1 && p.init.is_none() && !p.positive),
            shape: Shape(dims),
            positive: p.positive,
            init,
            span: p.name.span.clone(),
        });
    }
    out
}

/// `site ~ Dist(args)` in a guide program: one site, a distribution the guide can sample
/// by reparametrization onto that site's support, and arguments that are numbers or
/// parameters of a matching shape.
fn program_site(
    model: &ModelIr,
    params: &[ParamIr],
    entry: &ast::GuideEntry,
    dist: &'static catalogue::DistSpec,
    sites: &[usize],
    errors: &mut Vec<Diagnostic>,
) -> Option<ProgramSiteIr> {
    let call = &entry.family;
    if entry.sites.len() != 1 {
        errors.push(Diagnostic::new(
            entry.span.clone(),
            format!(
                "a distribution in a guide covers one site; `{}` cannot be joint",
                dist.name
            ),
        ));
        return None;
    }
    let &site_idx = sites.first()?;
    let site = model.latents().nth(site_idx).expect("a latent index").1;
    // What the guide can draw, on the support the model maps to.
    let fits = matches!(
        (dist.name, site.dist.support),
        ("Normal", catalogue::Constraint::Real) | ("LogNormal", catalogue::Constraint::Positive)
    );
    if !fits {
        errors.push(Diagnostic::new(
            call.name.span.clone(),
            format!(
                "a guide program draws `{}` from Normal (a real site) or LogNormal (a positive site); `{}` is {} and {} cannot be drawn here",
                site.name,
                site.name,
                site.dist.support.describe(),
                dist.name
            ),
        ));
        return None;
    }
    let spec_params = dist.params();
    let mut args: Vec<Option<ProgramArg>> = vec![None; spec_params.len()];
    for (pos, a) in call.args.iter().enumerate() {
        let slot = match &a.name {
            Some(n) => spec_params.iter().position(|p| p.name == n.name),
            None => (pos < spec_params.len()).then_some(pos),
        };
        let Some(slot) = slot else {
            errors.push(Diagnostic::new(
                a.value.span.clone(),
                format!(
                    "{} takes ({})",
                    dist.name,
                    spec_params
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            return None;
        };
        let need = spec_params[slot].constraint;
        let positive = need == catalogue::Constraint::Positive;
        // `Net(x; p)` or `softplus(Net(x; p))`: an encoder written out, local sites only.
        let net_call = match &a.value.kind {
            ExprKind::Call(c) if model.nets.iter().any(|n| n.name == c.name.name) => {
                Some((c, false))
            }
            ExprKind::Call(c)
                if c.name.name == "softplus" && c.args.len() == 1 && c.weights.is_empty() =>
            {
                match &c.args[0].value.kind {
                    ExprKind::Call(inner)
                        if model.nets.iter().any(|n| n.name == inner.name.name) =>
                    {
                        Some((inner, true))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((c, softplus)) = net_call {
            let arg = program_net(
                model,
                params,
                site,
                c,
                softplus,
                positive,
                &a.value.span,
                errors,
            )?;
            args[slot] = Some(arg);
            continue;
        }
        let value = match &a.value.kind {
            ExprKind::Name(id) => match params.iter().position(|p| p.name == id.name) {
                None => {
                    errors.push(Diagnostic::new(
                        id.span.clone(),
                        format!("unknown name `{}`: not a `param` of this guide", id.name),
                    ));
                    return None;
                }
                Some(i) => {
                    let p = &params[i];
                    if need == catalogue::Constraint::Positive && !p.positive {
                        errors.push(Diagnostic::new(
                            id.span.clone(),
                            format!(
                                "{}'s `{}` must be positive; declare `param {} ... positive`",
                                dist.name, spec_params[slot].name, p.name
                            ),
                        ));
                        return None;
                    }
                    let scalar = p.shape.rank() == 0;
                    // A local site's parameters are per row (the same for every row).
                    let site_dims = &site.shape.0[usize::from(site.is_local())..];
                    let same = p.shape.rank() == site_dims.len()
                        && p.shape.0.iter().zip(site_dims).all(|(a, b)| {
                            a == b || matches!(a, Dim::Const(_)) || matches!(b, Dim::Const(_))
                        });
                    if !scalar && !same {
                        errors.push(Diagnostic::new(
                            id.span.clone(),
                            format!(
                                "shape mismatch: parameter `{}` has shape {} but the site `{}` has shape {}",
                                p.name, p.shape, site.name, site.shape
                            ),
                        ));
                        return None;
                    }
                    ProgramArg::Param(i)
                }
            },
            _ => match number(&a.value) {
                Some(v) if need.admits(v) => ProgramArg::Const(v),
                _ => {
                    errors.push(Diagnostic::new(
                        a.value.span.clone(),
                        format!(
                            "{}'s `{}` in a guide is a `param` or a number ({})",
                            dist.name,
                            spec_params[slot].name,
                            need.describe()
                        ),
                    ));
                    return None;
                }
            },
        };
        args[slot] = Some(value);
    }
    let Some(args) = args.into_iter().collect::<Option<Vec<_>>>() else {
        errors.push(Diagnostic::new(
            call.span.clone(),
            format!(
                "{} needs ({})",
                dist.name,
                spec_params
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
        return None;
    };
    Some(ProgramSiteIr {
        site: site_idx,
        dist,
        args,
        span: entry.span.clone(),
    })
}

/// `Net(x; p)` (`softplus(Net(x; p))` for a positive parameter) in a guide program: the
/// site is local, x a row input the net reads, p a `param` holding the net's weights, and
/// the net gives one output per value of the site's row.
#[allow(clippy::too_many_arguments)]
fn program_net(
    model: &ModelIr,
    params: &[ParamIr],
    site: &Site,
    call: &ast::Call,
    softplus: bool,
    positive: bool,
    span: &Span,
    errors: &mut Vec<Diagnostic>,
) -> Option<ProgramArg> {
    let mut fail = |sp: &Span, msg: String| {
        errors.push(Diagnostic::new(sp.clone(), msg));
        None
    };
    let net = model.nets.iter().position(|n| n.name == call.name.name)?;
    let n = &model.nets[net];
    if !site.is_local() {
        return fail(span, format!("a net on the data's rows gives one value per row; `{}` is a global site (shape {})", site.name, site.shape));
    }
    if n.layers.iter().any(|l| {
        matches!(
            l,
            NetLayer::Conv2d { .. } | NetLayer::Pool { .. } | NetLayer::Flatten
        )
    }) {
        return fail(&call.name.span, format!("net {} has convolution or pooling layers; a guide's net has Linear layers and activations", n.name));
    }
    if positive && !softplus {
        return fail(
            span,
            format!(
                "this parameter must be positive; write `softplus({}(..))`",
                n.name
            ),
        );
    }
    let (input, param) = match (call.args.as_slice(), call.weights.as_slice()) {
        ([ast::Arg { name: None, value: x }], [w]) => (x, w),
        _ => return fail(&call.span, format!("write `{}(x; p)`: a row input of the model and a `param` of this guide holding the weights", n.name)),
    };
    let ExprKind::Name(x) = &input.kind else {
        return fail(
            &input.span,
            format!("the net reads an input of model {}", model.name),
        );
    };
    let Some(input_idx) = model.inputs.iter().position(|i| i.name == x.name) else {
        return fail(
            &x.span,
            format!("`{}` is not an input of model {}", x.name, model.name),
        );
    };
    let shape = &model.inputs[input_idx].shape;
    let features = row_numel(shape);
    let wants: usize = n.row_dims.iter().product();
    if shape.0.first() != Some(&Dim::Rows) || features != Some(wants) {
        return fail(
            &input.span,
            format!(
                "shape mismatch: net {} takes rows of {wants} values, but `{}` has shape {shape}",
                n.name, x.name
            ),
        );
    }
    let ExprKind::Name(w) = &param.kind else {
        return fail(
            &param.span,
            format!("the weights of {} are a `param` of this guide", n.name),
        );
    };
    let Some(p) = params.iter().position(|q| q.name == w.name) else {
        return fail(
            &w.span,
            format!(
                "unknown name `{}`: not a `param` of this guide (declare `param {} [params({})];`)",
                w.name, w.name, n.name
            ),
        );
    };
    if params[p].shape != Shape(vec![Dim::Lit(n.num_params())]) || params[p].positive {
        return fail(
            &w.span,
            format!(
                "`{}` holds the weights of {}: declare it `param {} [params({})];`",
                w.name, n.name, w.name, n.name
            ),
        );
    }
    let per_row = row_numel(&site.shape);
    if per_row != Some(n.outputs) {
        return fail(
            &call.name.span,
            format!(
                "shape mismatch: net {} gives {} outputs per row, but `{}` has {} values per row",
                n.name,
                n.outputs,
                site.name,
                per_row.map_or("?".into(), |k| k.to_string())
            ),
        );
    }
    Some(ProgramArg::Net {
        net,
        input: input_idx,
        param: p,
        softplus,
    })
}

/// A family's arguments by the catalogue: named, known, of the right kind, defaults filled
/// in, in the catalogue's order. A `Layers` argument takes the positional arguments.
fn family_args(
    spec: &'static FamilySpec,
    call: &ast::Call,
    errors: &mut Vec<Diagnostic>,
) -> Vec<(String, FamilyValue)> {
    let layers_arg = spec.args.iter().find(|a| a.kind == ArgKind::Layers);
    let mut args: Vec<(String, Option<FamilyValue>)> = spec
        .args
        .iter()
        .map(|a| {
            let v = match a.default {
                ArgDefault::Auto => Some(FamilyValue::Auto),
                ArgDefault::Number(v) => Some(FamilyValue::Number(v)),
                ArgDefault::List(v) => Some(FamilyValue::List(v.to_vec())),
                ArgDefault::Name(v) => Some(FamilyValue::Name(v)),
                ArgDefault::Required => None,
            };
            (a.name.to_string(), v)
        })
        .collect();
    let mut layers = Vec::new();
    let mut positional = 0;
    for a in &call.args {
        let Some(n) = &a.name else {
            positional += 1;
            // `Flipout(MeanField)`: a lone positional name fills the family's choice.
            let choice = spec
                .args
                .iter()
                .find(|s| matches!(s.kind, ArgKind::Choice(_)));
            if let (None, Some(c), ExprKind::Name(id), 1) =
                (layers_arg, choice, &a.value.kind, call.args.len())
            {
                if let ArgKind::Choice(names) = c.kind {
                    match names.iter().find(|n| **n == id.name) {
                        Some(n) => {
                            let slot = args
                                .iter_mut()
                                .find(|(k, _)| k == c.name)
                                .expect("in the catalogue");
                            slot.1 = Some(FamilyValue::Name(n));
                        }
                        None => errors.push(Diagnostic::new(
                            id.span.clone(),
                            format!(
                                "{} wraps {}, not `{}`",
                                spec.name,
                                names.join(" or "),
                                id.name
                            ),
                        )),
                    }
                    continue;
                }
            }
            match layers_arg {
                Some(_) => {
                    if let Some(layer) = flow_layer(&a.value, errors) {
                        layers.push(layer);
                    }
                }
                None => {
                    let msg = if spec.args.is_empty() {
                        format!("{} takes no arguments", spec.name)
                    } else {
                        format!(
                            "the arguments of {} are named, like `{}({} = ...)`",
                            spec.name, spec.name, spec.args[0].name
                        )
                    };
                    errors.push(Diagnostic::new(a.value.span.clone(), msg));
                }
            }
            continue;
        };
        let named = spec
            .args
            .iter()
            .find(|s| s.name == n.name && s.kind != ArgKind::Layers);
        let Some(arg_spec) = named else {
            let names: Vec<_> = spec
                .args
                .iter()
                .filter(|s| s.kind != ArgKind::Layers)
                .map(|s| s.name)
                .collect();
            let known = if spec.args.is_empty() {
                "it takes no arguments".to_string()
            } else if names.is_empty() {
                "it takes only layers, like `RealNVP(layers = 4)`".to_string()
            } else {
                format!("its arguments: {}", names.join(", "))
            };
            errors.push(Diagnostic::new(
                n.span.clone(),
                format!("{} has no argument `{}` ({known})", spec.name, n.name),
            ));
            continue;
        };
        let value = match arg_spec.kind {
            ArgKind::Choice(names) => match &a.value.kind {
                ExprKind::Name(id) => names
                    .iter()
                    .find(|c| **c == id.name)
                    .map(|c| FamilyValue::Name(c)),
                _ => None,
            },
            ArgKind::Counts => match &a.value.kind {
                ExprKind::List(items) => items
                    .iter()
                    .map(number)
                    .collect::<Option<Vec<f64>>>()
                    .filter(|v| v.iter().all(|&x| arg_spec.kind.admits(x)))
                    .map(FamilyValue::List),
                _ => None,
            },
            _ => number(&a.value)
                .filter(|&v| arg_spec.kind.admits(v))
                .map(FamilyValue::Number),
        };
        match value {
            Some(v) => {
                let slot = args
                    .iter_mut()
                    .find(|(k, _)| *k == n.name)
                    .expect("in the catalogue");
                slot.1 = Some(v);
            }
            None => {
                let what = match arg_spec.kind {
                    ArgKind::Choice(names) => {
                        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                        format!("one of {}", names.join(", "))
                    }
                    kind => kind.describe().to_string(),
                };
                errors.push(Diagnostic::new(
                    a.value.span.clone(),
                    format!("`{}` of {} must be {what}", n.name, spec.name),
                ))
            }
        }
    }
    if let Some(l) = layers_arg {
        // A layer that failed its own checks has said why already.
        if positional == 0 {
            let known: Vec<_> = catalogue::FLOW_LAYERS.iter().map(|f| f.name).collect();
            errors.push(Diagnostic::new(
                call.span.clone(),
                format!(
                    "{} needs at least one layer, like `{}(RealNVP(layers = 4, hidden = 32))` (layers: {})",
                    spec.name,
                    spec.name,
                    known.join(", ")
                ),
            ));
        }
        let slot = args
            .iter_mut()
            .find(|(k, _)| k == l.name)
            .expect("in the catalogue");
        slot.1 = Some(FamilyValue::Layers(layers));
    }
    args.into_iter()
        .map(|(k, v)| (k, v.unwrap_or(FamilyValue::Auto)))
        .collect()
}

/// A literal number (possibly negated).
fn number(e: &ast::Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Num(v) => Some(*v),
        ExprKind::Neg(inner) => number(inner).map(|v| -v),
        _ => None,
    }
}

/// One positional argument of a flow: `RealNVP(layers = 4)` or a bare `Planar`.
fn flow_layer(e: &ast::Expr, errors: &mut Vec<Diagnostic>) -> Option<FlowLayerIr> {
    let (name, call) = match &e.kind {
        ExprKind::Call(c) => (&c.name, Some(c)),
        ExprKind::Name(n) => (n, None),
        _ => {
            errors.push(Diagnostic::new(
                e.span.clone(),
                "a flow layer like `RealNVP(layers = 4, hidden = 32)`, `Iaf`, `Planar` or `Radial`",
            ));
            return None;
        }
    };
    let Some(spec) = catalogue::FLOW_LAYERS.iter().find(|f| f.name == name.name) else {
        let known = catalogue::FLOW_LAYERS.iter().map(|f| f.name);
        let hint = catalogue::suggest(&name.name, known.clone())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| format!(" (layers: {})", known.collect::<Vec<_>>().join(", ")));
        errors.push(Diagnostic::new(
            name.span.clone(),
            format!("unknown flow layer `{}`{hint}", name.name),
        ));
        return None;
    };
    let empty = ast::Call {
        name: name.clone(),
        args: Vec::new(),
        weights: Vec::new(),
        span: e.span.clone(),
    };
    let args = family_args(spec, call.unwrap_or(&empty), errors);
    Some(FlowLayerIr {
        kind: spec.name,
        args,
    })
}

/// Values per row of a shape `[N, ..]` whose other sizes are numbers (`None` otherwise).
fn row_numel(shape: &Shape) -> Option<usize> {
    shape
        .0
        .iter()
        .skip(1)
        .map(|d| match d {
            Dim::Lit(k) => Some(*k),
            _ => None,
        })
        .product()
}
