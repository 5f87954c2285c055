//! `y ~ Mixture(logits, Normal(locs, scales));`: an observed site whose value comes from one
//! of K components of one family, with weights softmax(logits); the components run along
//! the last axis of the logits and of the component's arguments, beyond the site's shape.
//! The site's density marginalises the component: log Σ_k softmax(logits)_k p_k(y).

use super::sample::SiteArgs;
use super::Lowering;
use crate::ast::{self, ExprKind};
use crate::catalogue;
use crate::diagnostic::Span;
use crate::ir::*;

impl Lowering<'_> {
    /// Checks a mixture site and adds it (nothing after an error).
    pub(super) fn mixture(&mut self, name: &ast::Ident, call: &ast::Call, span: &Span) {
        let Some((logits_expr, component)) = self.mixture_parts(call) else {
            return;
        };
        let Some(spec) = self.distribution(component) else {
            return;
        };
        if spec.event || spec.joint || spec.vector_event {
            self.err(
                component.name.span.clone(),
                format!(
                    "a mixture's components are an elementwise distribution; {} is not one",
                    spec.name
                ),
            );
            return;
        }
        let Some(observed) = self.observed_input(name) else {
            return;
        };
        let Some(input) = observed else {
            self.err(
                call.name.span.clone(),
                format!("a Mixture is observed only: `{}` must be an input (a latent mixture has no reparametrized draw; write the component as a latent and mix its parameters)", name.name),
            );
            return;
        };
        let Some(logits) = self.expr(logits_expr) else {
            return;
        };
        let Some((parametrization, args_spans)) = self.dist_args(spec, component) else {
            return;
        };
        let (args, arg_spans): (Vec<NodeId>, Vec<Span>) = args_spans.into_iter().unzip();
        let site_shape = self.inputs[input].shape.clone();
        let Some(k) = self.components(logits, &logits_expr.span) else {
            return;
        };
        let mut full = site_shape.clone();
        full.0.push(k);
        let all = std::iter::once((logits, logits_expr.span.clone()))
            .chain(args.iter().copied().zip(arg_spans.iter().cloned()));
        for (a, sp) in all {
            let shape = self.nodes[a].shape.clone();
            let text = format!("shape mismatch: a mixture's arguments have the site's shape and a last axis of components, {}, but `{}` has shape {}", self.show(&full), self.text(&sp), self.show(&shape));
            let msg = || text.clone();
            if self.broadcast(&shape, &full, &msg, &sp).as_ref() != Some(&full) {
                self.err(sp.clone(), text);
                return;
            }
        }
        let site = SiteArgs {
            name,
            call: component,
            spec,
            params: parametrization.params,
            args: std::iter::once(logits).chain(args).collect(),
            arg_spans,
            observed,
        };
        if !self.discrete_observed(&site) {
            return;
        }
        self.add_site(site, parametrization, site_shape, span);
        if let Some(s) = self.sites.last_mut() {
            s.mixture = true;
        }
    }

    /// `Mixture(logits, Component(..))`: the logits and the component's call.
    fn mixture_parts<'c>(&mut self, call: &'c ast::Call) -> Option<(&'c ast::Expr, &'c ast::Call)> {
        let usage = "`Mixture(logits, Normal(locs, scales))`: the components' logits, then one distribution whose arguments have a last axis of components";
        if let Some(named) = call.args.iter().find_map(|a| a.name.as_ref()) {
            self.err(
                named.span.clone(),
                format!("a mixture takes its arguments by position: {usage}"),
            );
            return None;
        }
        let [logits, component] = call.args.as_slice() else {
            self.err(
                call.span.clone(),
                format!(
                    "a mixture takes 2 arguments, {} given: {usage}",
                    call.args.len()
                ),
            );
            return None;
        };
        match &component.value.kind {
            ExprKind::Call(c)
                if catalogue::distribution(&c.name.name).is_some()
                    || c.name.name.chars().next().is_some_and(char::is_uppercase) =>
            {
                Some((&logits.value, c))
            }
            _ => {
                self.err(
                    component.value.span.clone(),
                    format!(
                        "the second argument of a mixture is its components' distribution: {usage}"
                    ),
                );
                None
            }
        }
    }

    /// The number of components: the logits' last axis, a fixed size of at least 2.
    fn components(&mut self, logits: NodeId, span: &Span) -> Option<Dim> {
        let shape = self.nodes[logits].shape.clone();
        match shape.0.last().map(|d| self.find(d)) {
            Some(Dim::Lit(k)) if k >= 2 => Some(Dim::Lit(k)),
            _ => {
                self.err(
                    span.clone(),
                    format!("a mixture's logits have a last axis of at least 2 components, like [K], but `{}` has shape {}", self.text(span), self.show(&shape)),
                );
                None
            }
        }
    }
}
