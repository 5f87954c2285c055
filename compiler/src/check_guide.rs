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
    let mut entries = Vec::new();
    for entry in &g.entries {
        let fam_name = &entry.family.name.name;
        let Some(spec) = catalogue::family(fam_name) else {
            let hint = catalogue::suggest(fam_name, catalogue::FAMILIES.iter().map(|f| f.name))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| {
                    let known: Vec<_> = catalogue::FAMILIES.iter().map(|f| f.name).collect();
                    format!(" (known: {})", known.join(", "))
                });
            errors.push(Diagnostic::new(
                entry.family.name.span.clone(),
                format!("unknown guide family `{fam_name}`{hint}"),
            ));
            continue;
        };
        let args = family_args(spec, &entry.family, &mut errors);
        let mut sites = Vec::new();
        for site in &entry.sites {
            match model.sites.iter().find(|s| s.name == site.name) {
                None => {
                    let hint = catalogue::suggest(
                        &site.name,
                        model.latents().map(|(_, s)| s.name.as_str()),
                    )
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
        entries.push(GuideEntryIr {
            family: spec,
            args,
            sites,
            span: entry.span.clone(),
        });
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
        entries,
        span: g.span.clone(),
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
        span: e.span.clone(),
    };
    let args = family_args(spec, call.unwrap_or(&empty), errors);
    Some(FlowLayerIr {
        kind: spec.name,
        args,
    })
}
