//! `bnn` items, rewritten into the model and guide they stand for before any check runs, so
//! that every check (and every error message) is the ordinary one.

use crate::ast::*;
use crate::diagnostic::{Diagnostic, Span};
use crate::ir::NetIr;

/// The model and guide of `bnn Name(inputs) = y ~ Dist(.. Net(x) ..) with Prior, Family;`:
/// one site `net_wK ~ Prior [params(Net, K)]` per layer with weights, the net call given
/// them, and `guide NameGuide for Name { net_wK ~ Family; .. }`.
pub fn bnn(b: &BnnDef, nets: &[NetIr]) -> Result<(ModelDef, GuideDef), Diagnostic> {
    let mut likelihood = b.likelihood.clone();
    let mut found: Option<(String, usize, Span)> = None;
    for arg in &mut likelihood.args {
        give_weights(&mut arg.value, nets, &mut found);
    }
    let Some((net, layers, call_span)) = found else {
        return Err(Diagnostic::new(
            b.likelihood.span.clone(),
            format!(
                "the likelihood of a `bnn` calls a net without weights, like `{} ~ Categorical(logits = Mlp(x))`",
                b.site.name
            ),
        ));
    };
    let weight = |k: usize| Ident {
        name: format!("{}_w{k}", net.to_lowercase()),
        span: call_span.clone(),
    };
    let mut stmts: Vec<Stmt> = (0..layers)
        .map(|k| Stmt::Sample {
            name: weight(k),
            dist: b.prior.clone(),
            shape: Some(ShapeAst {
                dims: vec![DimAst::ParamsOf(
                    Ident {
                        name: net.clone(),
                        span: call_span.clone(),
                    },
                    Some(k),
                    call_span.clone(),
                )],
                span: b.prior.span.clone(),
            }),
            ordered: false,
            span: b.prior.span.clone(),
        })
        .collect();
    stmts.push(Stmt::Sample {
        name: b.site.clone(),
        dist: likelihood,
        shape: None,
        ordered: false,
        span: b.span.clone(),
    });
    let model = ModelDef {
        docs: b.docs.clone(),
        name: b.name.clone(),
        sizes: Vec::new(),
        inputs: b.inputs.clone(),
        stmts,
        span: b.span.clone(),
    };
    let guide = GuideDef {
        docs: vec![format!(
            " The guide of [`{}`]: `{}` on every layer's weights.",
            b.name.name, b.family.name.name
        )],
        name: Ident {
            name: format!("{}Guide", b.name.name),
            span: b.name.span.clone(),
        },
        model: b.name.clone(),
        params: Vec::new(),
        entries: (0..layers)
            .map(|k| GuideEntry {
                sites: vec![weight(k)],
                family: b.family.clone(),
                span: b.family.span.clone(),
            })
            .collect(),
        span: b.span.clone(),
    };
    Ok((model, guide))
}

/// Gives the first net call without weights its per-layer weight sites.
fn give_weights(e: &mut Expr, nets: &[NetIr], found: &mut Option<(String, usize, Span)>) {
    match &mut e.kind {
        ExprKind::Call(c) => {
            if found.is_none() && c.weights.is_empty() {
                if let Some(n) = nets.iter().find(|n| n.name == c.name.name) {
                    let layers = n.layer_params().len();
                    let prefix = n.name.to_lowercase();
                    c.weights = (0..layers)
                        .map(|k| Expr {
                            kind: ExprKind::Name(Ident {
                                name: format!("{prefix}_w{k}"),
                                span: c.span.clone(),
                            }),
                            span: c.span.clone(),
                        })
                        .collect();
                    *found = Some((n.name.clone(), layers, c.span.clone()));
                    return;
                }
            }
            for a in &mut c.args {
                give_weights(&mut a.value, nets, found);
            }
        }
        ExprKind::Neg(a) => give_weights(a, nets, found),
        ExprKind::Index(a, index) => {
            give_weights(a, nets, found);
            if let Index::At(i) = index {
                give_weights(i, nets, found);
            }
        }
        ExprKind::Binary(_, a, b) => {
            give_weights(a, nets, found);
            give_weights(b, nets, found);
        }
        ExprKind::List(items) => items.iter_mut().for_each(|i| give_weights(i, nets, found)),
        ExprKind::Num(_) | ExprKind::Name(_) => {}
    }
}
