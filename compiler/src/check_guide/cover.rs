//! Which latent sites a guide's lines cover (each exactly once, only latent sites, every
//! one of them), and the sites a Flipout or LRT line may rewrite.

use crate::ast;
use crate::catalogue;
use crate::diagnostic::{Diagnostic, Span};
use crate::ir::*;

/// The latent sites a guide line covers (each once in the whole guide).
pub(super) fn cover_sites(
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

/// Every latent site must be covered (reported only when nothing else was wrong).
pub(super) fn check_all_covered(
    g: &ast::GuideDef,
    model: &ModelIr,
    covered: &[Option<Span>],
    errors: &mut Vec<Diagnostic>,
) {
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
}

/// Flipout and the local reparametrization rewrite a net call: the site must be the
/// weights of exactly one net call and nothing else.
pub(super) fn check_rewrite(
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
