//! `site ~ Dist(args) [shape];`: the distribution and its arguments, the input an observed
//! site is named after, the site's shape, and the checks each kind of distribution needs.

use super::{Binding, Lowering};
use crate::ast::{self, ShapeAst};
use crate::catalogue::{self, Constraint, DistSpec, ParamSpec, Parametrization};
use crate::diagnostic::Span;
use crate::ir::*;

/// A site under its checks: its name, distribution and arguments, and the input it observes.
pub(super) struct SiteArgs<'a> {
    pub(super) name: &'a ast::Ident,
    pub(super) call: &'a ast::Call,
    pub(super) spec: &'static DistSpec,
    pub(super) params: &'static [ParamSpec],
    pub(super) args: Vec<NodeId>,
    pub(super) arg_spans: Vec<Span>,
    /// The input an observed site is named after; `None` for a latent site.
    pub(super) observed: Option<usize>,
}

impl Lowering<'_> {
    /// `name ~ Dist(args) [shape];`: the distribution, its arguments, the input an observed
    /// site is named after, the site's shape, then the checks its kind of distribution
    /// needs, in that order (the first that fails reports, and the site is not added).
    pub(super) fn sample(
        &mut self,
        name: &ast::Ident,
        call: &ast::Call,
        shape: Option<&ShapeAst>,
        ordered: bool,
        span: &Span,
    ) {
        if call.name.name == "Mixture" {
            if let Some(s) = shape {
                self.err(
                    s.span.clone(),
                    "a Mixture is observed: its shape is its input's",
                );
                return;
            }
            return self.mixture(name, call, span);
        }
        let Some(spec) = self.distribution(call) else {
            return;
        };
        let Some((parametrization, args_spans)) = self.dist_args(spec, call) else {
            return;
        };
        let (args, arg_spans): (Vec<NodeId>, Vec<Span>) = args_spans.into_iter().unzip();
        let Some(observed) = self.observed_input(name) else {
            return;
        };
        let site = SiteArgs {
            name,
            call,
            spec,
            params: parametrization.params,
            args,
            arg_spans,
            observed,
        };
        let mut arg_shapes: Vec<Shape> = site
            .args
            .iter()
            .map(|&a| self.nodes[a].shape.clone())
            .collect();
        let Some(site_shape) = self.site_shape(&site, shape, &arg_shapes) else {
            return;
        };
        let checks_pass = self.category_axes(&site, &mut arg_shapes)
            && self.vector_params(&site, &site_shape)
            && self.args_fit_site(&site, &arg_shapes, &site_shape)
            && self.local_shape_written(&site, shape, &site_shape)
            && self.discrete_observed(&site)
            && self.joint_numbers(&site)
            && self.interval_bounds(&site)
            && (!ordered || self.ordered_vector(&site, &site_shape, shape));
        if !checks_pass {
            return;
        }
        self.add_site(site, parametrization, site_shape, span);
        if let Some(s) = self.sites.last_mut() {
            s.ordered = ordered;
        }
    }

    /// The checked site: an observed one takes its input's node as its value, a latent
    /// one a new node that its name now refers to.
    pub(super) fn add_site(
        &mut self,
        site: SiteArgs,
        parametrization: &'static Parametrization,
        site_shape: Shape,
        span: &Span,
    ) {
        let (name, observed) = (site.name, site.observed);
        let value = match observed {
            Some(i) => self
                .nodes
                .iter()
                .position(|n| n.op == Op::Input(i))
                .expect("every input has a node"),
            None => {
                let idx = self.n_latents;
                self.n_latents += 1;
                let node = self.push(
                    Op::Sample(idx),
                    site_shape.clone(),
                    true,
                    false,
                    name.span.clone(),
                );
                self.scope.insert(name.name.clone(), Binding::Node(node));
                node
            }
        };
        self.sites.push(Site {
            name: name.name.clone(),
            observed,
            dist: site.spec,
            parametrization,
            args: site.args,
            shape: site_shape,
            value,
            param: None,
            mixture: false,
            ordered: false,
            span: span.clone(),
        });
    }

    /// The catalogue's distribution of this name (an error, with a hint, for none).
    pub(super) fn distribution(&mut self, call: &ast::Call) -> Option<&'static DistSpec> {
        let Some(spec) = catalogue::distribution(&call.name.name) else {
            let hint = catalogue::suggest(
                &call.name.name,
                catalogue::DISTRIBUTIONS.iter().map(|d| d.name),
            )
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| {
                let known: Vec<_> = catalogue::DISTRIBUTIONS.iter().map(|d| d.name).collect();
                format!(" (known: {})", known.join(", "))
            });
            self.err(
                call.name.span.clone(),
                format!("unknown distribution `{}`{hint}", call.name.name),
            );
            return None;
        };
        Some(spec)
    }

    /// An observed site is named after an input; anything else is a new latent site.
    /// `Some(None)` for a latent site, `None` where the name cannot be a site.
    pub(super) fn observed_input(&mut self, name: &ast::Ident) -> Option<Option<usize>> {
        match self.scope.get(&name.name) {
            Some(Binding::Poisoned) => None,
            Some(Binding::Size) => {
                self.err(
                    name.span.clone(),
                    format!(
                        "`{}` is a size parameter of {}, not a site",
                        name.name, self.model_name
                    ),
                );
                None
            }
            Some(Binding::Node(n)) => match self.nodes[*n].op {
                Op::Input(i) => {
                    if self.sites.iter().any(|s| s.observed == Some(i)) {
                        self.err(
                            name.span.clone(),
                            format!("input `{}` is observed twice", name.name),
                        );
                        return None;
                    }
                    Some(Some(i))
                }
                _ => {
                    self.err(
                        name.span.clone(),
                        format!(
                            "`{}` is already defined in model {}",
                            name.name, self.model_name
                        ),
                    );
                    None
                }
            },
            None => Some(None),
        }
    }

    /// The site's shape: its input's, the one written, or its arguments' broadcast.
    fn site_shape(
        &mut self,
        site: &SiteArgs,
        shape: Option<&ShapeAst>,
        arg_shapes: &[Shape],
    ) -> Option<Shape> {
        let name = site.name;
        Some(match (site.observed, shape) {
            (Some(i), Some(s)) => {
                let declared = self.shape(s, true);
                let input_shape = self.inputs[i].shape.clone();
                if declared != input_shape {
                    self.err(
                        s.span.clone(),
                        format!(
                            "`{}` is the observed input of shape {}; drop the shape annotation {}",
                            name.name,
                            self.show(&input_shape),
                            self.show(&declared)
                        ),
                    );
                    return None;
                }
                input_shape
            }
            (Some(i), None) => self.inputs[i].shape.clone(),
            (None, Some(s)) => self.shape(s, true),
            (None, None) => self.arguments_shape(site, arg_shapes)?,
        })
    }

    /// The shape the arguments broadcast to (matrix parameters aside).
    fn arguments_shape(&mut self, site: &SiteArgs, arg_shapes: &[Shape]) -> Option<Shape> {
        let (spec, params) = (site.spec, site.params);
        let mut acc = Shape::scalar();
        for (k, sh) in arg_shapes.iter().enumerate() {
            // A matrix parameter does not broadcast with the value.
            if params[k].constraint == Constraint::LowerTriangular {
                continue;
            }
            let msg = || {
                format!(
                    "shape mismatch: the arguments of {} do not broadcast",
                    spec.name
                )
            };
            match self.broadcast(&acc, sh, &msg, &site.call.span) {
                Some(s) => acc = s,
                None => {
                    self.err(
                        site.arg_spans[k].clone(),
                        format!(
                            "shape mismatch: {}'s `{}` has shape {} but the other arguments have {}",
                            spec.name,
                            params[k].name,
                            self.show(sh),
                            self.show(&acc)
                        ),
                    );
                    return None;
                }
            }
        }
        Some(acc)
    }

    /// A categorical's parameters carry a last axis of categories; the rest of their
    /// shape is checked against the site like any other argument's. Takes the axis off
    /// `arg_shapes`; an observed site's input must be declared as the categories' integers.
    fn category_axes(&mut self, site: &SiteArgs, arg_shapes: &mut [Shape]) -> bool {
        if !site.spec.event {
            return true;
        }
        let (spec, params, name) = (site.spec, site.params, site.name);
        for (k, sh) in arg_shapes.iter_mut().enumerate() {
            let Some(categories) = sh.0.pop() else {
                self.err(
                    site.arg_spans[k].clone(),
                    format!(
                        "{}'s `{}` needs a last axis of categories, like [N, K]; `{}` is a scalar",
                        spec.name,
                        params[k].name,
                        self.text(&site.arg_spans[k])
                    ),
                );
                return false;
            };
            if let (Some(i), Dim::Lit(kk)) = (site.observed, &categories) {
                let declared = self.inputs[i].integers;
                if declared != Some((0, Some(*kk as i64))) {
                    let now = match declared {
                        None => "real numbers".to_string(),
                        Some((lo, Some(hi))) => format!("the integers {lo}..{hi}"),
                        Some((lo, None)) => format!("the integers {lo}.."),
                    };
                    self.err(
                        name.span.clone(),
                        format!(
                            "{} over {kk} categories observes the integers 0..{kk}, but the input `{}` is declared as {now}; declare `{}: {} in 0..{kk}`",
                            spec.name,
                            name.name,
                            name.name,
                            self.show(&self.inputs[i].shape)
                        ),
                    );
                    return false;
                }
            }
        }
        true
    }

    /// A vector distribution: a last axis of components, and its matrix parameters
    /// [d, d] built from data or numbers.
    fn vector_params(&mut self, site: &SiteArgs, site_shape: &Shape) -> bool {
        let (spec, params, name) = (site.spec, site.params, site.name);
        if !spec.vector_event {
            return true;
        }
        let Some(d) = site_shape.0.last().cloned() else {
            self.err(
                name.span.clone(),
                format!(
                    "{} is a distribution over vectors; give `{}` a last axis of components, like `{} ~ {}(..) [K]`",
                    spec.name, name.name, name.name, spec.name
                ),
            );
            return false;
        };
        for (k, &a) in site.args.iter().enumerate() {
            if params[k].constraint != Constraint::LowerTriangular {
                continue;
            }
            let node = &self.nodes[a];
            let square = Shape(vec![d.clone(), d.clone()]);
            if node.particles || node.constant || node.shape != square {
                let why = if node.particles {
                    "it may not depend on latent sites".to_string()
                } else {
                    format!(
                        "`{}` has shape {}",
                        self.text(&site.arg_spans[k]),
                        self.show(&node.shape)
                    )
                };
                self.err(
                    site.arg_spans[k].clone(),
                    format!(
                        "{}'s `{}` must be a [{d}, {d}] matrix from the data; {why}",
                        spec.name, params[k].name
                    ),
                );
                return false;
            }
        }
        true
    }

    /// Each argument must broadcast to the site's shape (never widen it).
    fn args_fit_site(&mut self, site: &SiteArgs, arg_shapes: &[Shape], site_shape: &Shape) -> bool {
        let (spec, params, name) = (site.spec, site.params, site.name);
        for (k, sh) in arg_shapes.iter().enumerate() {
            if params[k].constraint == Constraint::LowerTriangular {
                continue;
            }
            let arg_span = site.arg_spans[k].clone();
            let site_name = name.name.clone();
            let pname = params[k].name;
            let (ss, sa) = (self.show(site_shape), self.show(sh));
            let msg = || {
                format!("shape mismatch: {}'s `{pname}` has shape {sa} but the site `{site_name}` has shape {ss}", spec.name)
            };
            let fits = sh.rank() <= site_shape.rank()
                && self.broadcast(sh, site_shape, &msg, &arg_span).as_ref() == Some(site_shape);
            if !fits {
                self.err(arg_span, msg());
                return false;
            }
        }
        true
    }

    /// A latent site over the rows is local: one value per row. It must say so with a
    /// written shape; a shape over the rows inferred from the arguments is far more
    /// often an observed site whose name misses its input.
    fn local_shape_written(
        &mut self,
        site: &SiteArgs,
        shape: Option<&ShapeAst>,
        site_shape: &Shape,
    ) -> bool {
        let (spec, name) = (site.spec, site.name);
        if site.observed.is_none() && shape.is_none() && site_shape.has_rows() {
            let inputs: Vec<_> = self
                .inputs
                .iter()
                .map(|i| format!("`{}`", i.name))
                .collect();
            self.err(
                name.span.clone(),
                format!(
                    "`{}` is not an input of {}, so it would be a local latent site with the shape {} of its arguments; an observed site must be named after an input (inputs: {}), and a local latent site writes its shape: `{} ~ {}(..) {}`",
                    name.name,
                    self.model_name,
                    self.show(site_shape),
                    inputs.join(", "),
                    name.name,
                    spec.name,
                    self.show(site_shape),
                ),
            );
            return false;
        }
        true
    }

    /// Discrete distributions: observed only, on inputs declared as integers they allow.
    pub(super) fn discrete_observed(&mut self, site: &SiteArgs) -> bool {
        let (spec, name) = (site.spec, site.name);
        if !spec.support.is_discrete() {
            return true;
        }
        let Some(i) = site.observed else {
            self.err(
                site.call.name.span.clone(),
                format!(
                    "{} is discrete and has no reparametrized sampler, so it cannot be a latent site; observe it on an input, or use a continuous relaxation",
                    spec.name
                ),
            );
            return false;
        };
        let input = &self.inputs[i];
        let example = match spec.support {
            Constraint::Boolean => "in 0..2",
            _ => "in 0..",
        };
        let fits = match (input.integers, spec.support) {
            (Some((lo, Some(hi))), Constraint::Boolean) => lo >= 0 && hi <= 2,
            (Some((_, None)), Constraint::Boolean) => false,
            (Some((lo, _)), _) => lo >= 0,
            (None, _) => false,
        };
        if !fits {
            let declared = match input.integers {
                None => "real numbers".to_string(),
                Some((lo, Some(hi))) => format!("the integers {lo}..{hi}"),
                Some((lo, None)) => format!("the integers {lo}.."),
            };
            self.err(
                name.span.clone(),
                format!(
                    "{} takes values {}, but the input `{}` is declared as {declared}; declare it as `{}: {} {example}`",
                    spec.name,
                    spec.support.describe(),
                    name.name,
                    name.name,
                    self.show(&input.shape)
                ),
            );
            return false;
        }
        true
    }

    /// `ordered`: a latent of a real elementwise distribution, with a last axis of at
    /// least 2 values.
    fn ordered_vector(
        &mut self,
        site: &SiteArgs,
        site_shape: &Shape,
        written: Option<&ShapeAst>,
    ) -> bool {
        let spec = site.spec;
        let at = written.map_or(site.name.span.clone(), |s| s.span.clone());
        let reason = if site.observed.is_some() {
            Some(format!(
                "`{}` is observed; `ordered` is a support for latent vectors",
                site.name.name
            ))
        } else if spec.support != Constraint::Real || spec.event || spec.vector_event || spec.joint
        {
            Some(format!(
                "`ordered` maps real values; {} is {}",
                spec.name,
                if spec.support != Constraint::Real {
                    spec.support.describe()
                } else {
                    "not elementwise"
                }
            ))
        } else {
            match site_shape.0.last().map(|d| self.find(d)) {
                Some(Dim::Lit(k)) if k >= 2 => None,
                _ => Some(format!("an ordered vector has a last axis of at least 2 values, like `{} ~ {}(..) [2] ordered`, but its shape is {}", site.name.name, spec.name, self.show(site_shape))),
            }
        };
        match reason {
            Some(r) => {
                self.err(at, r);
                false
            }
            None => true,
        }
    }

    /// A density of the whole site takes numbers for its parameters.
    fn joint_numbers(&mut self, site: &SiteArgs) -> bool {
        let (spec, params) = (site.spec, site.params);
        if !spec.joint {
            return true;
        }
        for (k, &a) in site.args.iter().enumerate() {
            if self.const_value(a).is_none() {
                self.err(
                    site.arg_spans[k].clone(),
                    format!(
                        "{}'s `{}` must be a number (it is a prior for a whole site); `{}` is not one",
                        spec.name,
                        params[k].name,
                        self.text(&site.arg_spans[k])
                    ),
                );
                return false;
            }
        }
        true
    }

    /// A latent on an interval is mapped onto it, so its bounds must be known numbers; bounds
    /// that are numbers (latent or observed) must be in order, low below high, and the
    /// interval's width must fit in f32.
    fn interval_bounds(&mut self, site: &SiteArgs) -> bool {
        let spec = site.spec;
        if spec.support != Constraint::Interval {
            return true;
        }
        if let (Some(&lo), Some(&hi)) = (site.args.first(), site.args.get(1)) {
            if let (Some(low), Some(high)) = (self.const_value(lo), self.const_value(hi)) {
                let span = site.arg_spans[0].start..site.arg_spans[1].end;
                // (in f32, as the generated code has them)
                if low as f32 >= high as f32 {
                    self.err(
                        span,
                        format!(
                            "{}'s bounds must satisfy low < high, but low is {low} and high is {high}",
                            spec.name
                        ),
                    );
                    return false;
                }
                if !crate::limits::fits_f32(high - low) {
                    self.err(
                        span,
                        format!(
                            "{}'s interval is {} wide, which does not fit in f32 (at most {})",
                            spec.name,
                            crate::limits::show_number(high - low),
                            crate::limits::MAX_F32_TEXT
                        ),
                    );
                    return false;
                }
            }
        }
        if site.observed.is_some() {
            return true;
        }
        for (k, &a) in site.args.iter().enumerate() {
            if self.const_value(a).is_none() {
                self.err(
                    site.arg_spans[k].clone(),
                    format!(
                        "a latent {} site needs numbers for its bounds; `{}` is not one",
                        spec.name,
                        self.text(&site.arg_spans[k])
                    ),
                );
                return false;
            }
        }
        true
    }
}
