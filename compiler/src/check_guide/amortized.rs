//! `z ~ Amortized(Encoder(x));`: one local site drawn by an encoder net of a row input,
//! its outputs what the site's q(z | x) needs (Gaussian, relaxed Bernoulli, concrete).

use super::row_numel;
use crate::ast::{self, ExprKind};
use crate::catalogue;
use crate::diagnostic::Diagnostic;
use crate::ir::*;

/// `z ~ Amortized(Encoder(x));`: one local site, an encoder net of features whose input is
/// a row input of the model and whose outputs are what the site's q(z | x) needs.
pub(super) fn amortized_entry(
    model: &ModelIr,
    entry: &ast::GuideEntry,
    sites: &[usize],
    errors: &mut Vec<Diagnostic>,
) -> Option<AmortizedIr> {
    let (site, s) = amortized_site(model, entry, sites, errors)?;
    let usage = format!(
        "write `{} ~ Amortized(Encoder(x));` with a net `Encoder` and a row input `x`",
        s.name
    );
    let (call, net, input) = encoder_call(model, entry, &usage, errors)?;
    if !encoder_reads_rows(model, call, net, input, errors) {
        return None;
    }
    let kind = amortized_kind(model, entry, s, errors)?;
    if !encoder_outputs_fit(model, call, net, s, kind, errors) {
        return None;
    }
    Some(AmortizedIr {
        site,
        net,
        input,
        kind,
        span: entry.span.clone(),
    })
}

/// The one local site the line covers (its latent index and the site).
fn amortized_site<'m>(
    model: &'m ModelIr,
    entry: &ast::GuideEntry,
    sites: &[usize],
    errors: &mut Vec<Diagnostic>,
) -> Option<(usize, &'m Site)> {
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
    let site_name = &entry.sites[0];
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
    Some((*site, s))
}

/// `Encoder(x)`: the call, the net it names and the model input it reads.
fn encoder_call<'e>(
    model: &ModelIr,
    entry: &'e ast::GuideEntry,
    usage: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<(&'e ast::Call, usize, usize)> {
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
    Some((call, net, input))
}

/// The encoder takes rows of features (Linear layers and activations), as many as the
/// input has per row.
fn encoder_reads_rows(
    model: &ModelIr,
    call: &ast::Call,
    net: usize,
    input: usize,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    let n = &model.nets[net];
    let features = match n.input {
        NetInput::Features(f) => f,
        NetInput::Images { .. } => {
            errors.push(Diagnostic::new(call.name.span.clone(), format!("the encoder `{}` takes images; an encoder takes rows of features (Linear layers and activations)", n.name)));
            return false;
        }
    };
    if n.layers.iter().any(|l| {
        matches!(
            l,
            NetLayer::Conv2d { .. } | NetLayer::Pool { .. } | NetLayer::Flatten
        )
    }) {
        errors.push(Diagnostic::new(call.name.span.clone(), format!("the encoder `{}` has convolution or pooling layers; an encoder has Linear layers and activations", n.name)));
        return false;
    }
    let in_shape = &model.inputs[input].shape;
    let in_numel = row_numel(in_shape);
    if in_shape.0.first() != Some(&Dim::Rows) || in_numel != Some(features) {
        errors.push(Diagnostic::new(
            call.args[0].value.span.clone(),
            format!("shape mismatch: the encoder `{}` takes rows of {features} features, but `{}` has shape {}", n.name, model.inputs[input].name, in_shape),
        ));
        return false;
    }
    true
}

/// What the encoder's outputs parametrize, by the site's distribution.
fn amortized_kind(
    model: &ModelIr,
    entry: &ast::GuideEntry,
    s: &Site,
    errors: &mut Vec<Diagnostic>,
) -> Option<AmortizedKind> {
    let site_name = &entry.sites[0];
    Some(match (s.dist.name, s.dist.support) {
        ("RelaxedBernoulli", _) => AmortizedKind::RelaxedBernoulli(temperature(model, s, errors)?),
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
            AmortizedKind::Concrete(temperature(model, s, errors)?, k)
        }
        (_, catalogue::Constraint::Real) => AmortizedKind::Gaussian,
        (d, _) => {
            errors.push(Diagnostic::new(
                site_name.span.clone(),
                format!("Amortized draws real-valued (Normal-like), RelaxedBernoulli and RelaxedOneHotCategorical sites; `{}` is {d}", s.name),
            ));
            return None;
        }
    })
}

/// The temperature the guide uses: the model's, a number or the step's `temperature`.
fn temperature(model: &ModelIr, s: &Site, errors: &mut Vec<Diagnostic>) -> Option<Option<f64>> {
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
}

/// The encoder gives per row what each of the site's values needs: a location and a
/// scale, or a logit.
fn encoder_outputs_fit(
    model: &ModelIr,
    call: &ast::Call,
    net: usize,
    s: &Site,
    kind: AmortizedKind,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    let n = &model.nets[net];
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
        return false;
    }
    true
}
