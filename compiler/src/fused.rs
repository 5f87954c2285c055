//! The host engine's program for a model and its guide (`::ravi::program::Program`): emitted
//! beside the dfdx code when both stay inside what the engine covers (see the backend's
//! `fused` module). Where they do not, [`program`] says why, in words: the generated guide
//! reports it, every step takes the dfdx path, and the IR text shows it (`engine: graph —
//! ...`). This file is the one place that decides.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::ast::BinOp;
use crate::catalogue::Constraint;
use crate::ir::{
    Activation, AmortizedKind, AxisFunc, Dim, Func, GuideIr, ModelIr, NetInput, NetIr, NetLayer,
    Op, ProgramArg, Reduce, Site,
};

fn dim(d: &Dim) -> TokenStream {
    match d {
        Dim::Rows => quote!(::ravi::program::Dim::Rows),
        Dim::Lit(n) => {
            let n = Literal::usize_unsuffixed(*n);
            quote!(::ravi::program::Dim::Fixed(#n))
        }
        Dim::Const(c) => {
            let c = format_ident!("{}", c);
            quote!(::ravi::program::Dim::Fixed(#c))
        }
    }
}

fn id(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

fn op(op: &Op) -> Result<TokenStream, String> {
    let f = |name: &str, a: &usize, b: &usize| {
        let name = format_ident!("{}", name);
        let (a, b) = (id(*a), id(*b));
        quote!(::ravi::program::Op::#name(#a, #b))
    };
    Ok(match op {
        Op::Input(i) => {
            let i = id(*i);
            quote!(::ravi::program::Op::Input(#i))
        }
        Op::Const(v) => {
            let v = crate::codegen::f32_lit(*v);
            quote!(::ravi::program::Op::Const(#v))
        }
        Op::RustConst(c) => {
            let c = format_ident!("{}", c);
            quote!(::ravi::program::Op::Const(#c as f32))
        }
        Op::Sample(k) => {
            let k = id(*k);
            quote!(::ravi::program::Op::Sample(#k))
        }
        Op::Neg(a) => {
            let a = id(*a);
            quote!(::ravi::program::Op::Neg(#a))
        }
        Op::Binary(BinOp::Add, a, b) => f("Add", a, b),
        Op::Binary(BinOp::Sub, a, b) => f("Sub", a, b),
        Op::Binary(BinOp::Mul, a, b) => f("Mul", a, b),
        Op::Binary(BinOp::Div, a, b) => f("Div", a, b),
        Op::Binary(BinOp::MatMul, a, b) | Op::MatMul(a, b) => f("MatMul", a, b),
        Op::Func(func, a) => {
            let func = format_ident!(
                "{}",
                match func {
                    Func::Exp => "Exp",
                    Func::Log => "Log",
                    Func::Softplus => "Softplus",
                    Func::Sigmoid => "Sigmoid",
                    Func::Tanh => "Tanh",
                    Func::Sqrt => "Sqrt",
                    Func::Abs => "Abs",
                    Func::Square => "Square",
                    Func::Log1p => "Log1p",
                    Func::Expm1 => "Expm1",
                }
            );
            let a = id(*a);
            quote!(::ravi::program::Op::Func(::ravi::program::Func::#func, #a))
        }
        Op::Pow(a, p) => {
            let (a, p) = (id(*a), crate::codegen::f32_lit(*p));
            quote!(::ravi::program::Op::Pow(#a, #p))
        }
        Op::Gather(a, g) => f("Gather", a, g),
        Op::Along(func, a, axis) => {
            let name = format_ident!(
                "{}",
                match func {
                    AxisFunc::LogSumExp => "LogSumExp",
                    AxisFunc::Softmax => "Softmax",
                    AxisFunc::LogSoftmax => "LogSoftmax",
                }
            );
            let (a, axis) = (id(*a), id(*axis));
            quote!(::ravi::program::Op::#name(#a, #axis))
        }
        Op::Transpose(a) => {
            let a = id(*a);
            quote!(::ravi::program::Op::Transpose(#a))
        }
        Op::Slice {
            src, start, len, ..
        } => {
            let (src, start, len) = (id(*src), id(*start), id(*len));
            quote!(::ravi::program::Op::Slice(#src, #start, #len))
        }
        Op::Reduce(r, a, axis) => {
            let name = format_ident!(
                "{}",
                match r {
                    Reduce::Sum => "Sum",
                    Reduce::Mean => "Mean",
                }
            );
            let a = id(*a);
            let axis = match axis {
                Some(k) => {
                    let k = id(*k);
                    quote!(::core::option::Option::Some(#k))
                }
                None => quote!(::core::option::Option::None),
            };
            quote!(::ravi::program::Op::#name(#a, #axis))
        }
        Op::Net(net, x, w) => {
            let (net, x, w) = (id(*net), id(*x), id(*w));
            quote!(::ravi::program::Op::Net(#net, #x, #w))
        }
        Op::Concat(parts) => {
            let parts = parts.iter().map(|&p| id(p));
            quote!(::ravi::program::Op::Concat(&[#(#parts),*]))
        }
        Op::Temperature => quote!(::ravi::program::Op::Temperature),
    })
}

/// A net's layers for the engine: Linear layers and activations on feature rows.
fn net(net: &NetIr) -> Result<TokenStream, String> {
    let images = || format!("net `{}` reads images (convolutions and pooling)", net.name);
    if !matches!(net.input, NetInput::Features(_)) {
        return Err(images());
    }
    let layers = net
        .layers
        .iter()
        .map(|l| {
            Ok(match l {
                NetLayer::Linear { inputs, outputs } => {
                    let (i, o) = (id(*inputs), id(*outputs));
                    quote!(::ravi::program::Layer::Linear { inputs: #i, outputs: #o })
                }
                NetLayer::Activation(a) => {
                    let f = format_ident!(
                        "{}",
                        match a {
                            Activation::Relu => "Relu",
                            Activation::Tanh => "Tanh",
                            Activation::Sigmoid => "Sigmoid",
                            Activation::Softplus => "Softplus",
                        }
                    );
                    quote!(::ravi::program::Layer::Activation(::ravi::program::Func::#f))
                }
                NetLayer::Conv2d { .. } | NetLayer::Pool { .. } | NetLayer::Flatten => {
                    return Err(images())
                }
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(quote!(&[#(#layers),*]))
}

/// The engine's density for a site: the distribution's own, from the stdlib
/// (`Distribution::PARAMETRIZATIONS[k].host`), where the catalogue says it has one.
fn density(model: &ModelIr, site: &Site) -> Result<TokenStream, String> {
    let d = &site.dist;
    let name = &site.name;
    if site.param.is_some() {
        // a point: no prior term (the guide holds its value as a parameter)
        return Ok(quote!(::ravi::program::Density::Elementwise(
            &::ravi::dist::Flat
        )));
    }
    if !site.parametrization.engine {
        let how = if site.parametrization.suffix.is_empty() {
            String::new()
        } else {
            format!(" by `{}`", site.parametrization.params[0].name)
        };
        return Err(format!(
            "site `{name}`: the engine has no density for {}{how}",
            d.name
        ));
    }
    if site.mixture {
        let dist = format_ident!("{}", d.name);
        let index = id(d.index_of(site.parametrization));
        let missing = format!(
            "the catalogue says the host engine scores {}, but ravi::dist has no elementwise host density for it",
            d.name
        );
        return Ok(quote! {
            match <::ravi::dist::#dist as ::ravi::dist::Distribution>::PARAMETRIZATIONS[#index].host {
                ::core::option::Option::Some(::ravi::program::Density::Elementwise(component)) => {
                    ::ravi::program::Density::Mixture(::ravi::dist::mixture_of(component))
                }
                _ => ::core::panic!(#missing),
            }
        });
    }
    if d.event {
        // logits: the site's shape and a last axis of categories
        let logits = &model.nodes[site.args[0]].shape;
        if site.observed.is_none()
            || logits.rank() != site.shape.rank() + 1
            || logits.0[..site.shape.rank()] != site.shape.0[..]
        {
            return Err(format!(
                "site `{name}`: the engine scores a {} with one row of logits per value",
                d.name
            ));
        }
    } else if site
        .args
        .iter()
        .any(|&a| model.nodes[a].shape.rank() > site.shape.rank())
    {
        // arguments broadcast to the site by prepending axes only
        return Err(format!(
            "site `{name}`: an argument has more axes than the site"
        ));
    }
    let dist = format_ident!("{}", d.name);
    let index = id(d.index_of(site.parametrization));
    let missing = format!(
        "the catalogue says the host engine scores {}, but ravi::dist has no host density for it",
        d.name
    );
    Ok(quote! {
        match <::ravi::dist::#dist as ::ravi::dist::Distribution>::PARAMETRIZATIONS[#index].host {
            ::core::option::Option::Some(density) => density,
            ::core::option::Option::None => ::core::panic!(#missing),
        }
    })
}

/// What the generated guide's `Guide::host_program` returns: the engine's program for this
/// model and guide (a constant expression of type `Program`, which may name the model's size
/// parameters), or why the engine does not cover them (global real or positive latents
/// under `MeanField` and `FullRank` entries or plain guide-program lines; the ops of
/// `op`, the densities of `density`, the nets of `net`, below).
pub fn program(model: &ModelIr, guide: &GuideIr) -> Result<TokenStream, String> {
    rewrites_real_weights(model, guide)?;
    if let Some(&site) = guide.local_mean_field.first() {
        return Err(format!(
            "local site `{}` has mean-field parameters per row (the engine draws local sites from encoders)",
            latent_name(model, site)
        ));
    }
    if let Some(e) = guide.entries.iter().find(|e| !e.family.engine) {
        let runs: Vec<&str> = crate::catalogue::FAMILIES
            .iter()
            .filter(|f| f.engine)
            .map(|f| f.name)
            .collect();
        let runs = match runs.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => "none".to_string(),
        };
        return Err(format!(
            "`{}` is not a family the engine runs (it runs {runs})",
            e.family.name
        ));
    }
    let encoded: Vec<usize> = guide.amortized.iter().map(|a| a.site).collect();
    let scored_by_encoder: Vec<usize> = guide
        .amortized
        .iter()
        .filter(|a| a.kind != AmortizedKind::Gaussian)
        .map(|a| a.site)
        .collect();
    let model_part = ModelPart::of(model, (&encoded, &scored_by_encoder), &encoder_nets(guide))?;
    let latent_sites: Vec<&Site> = model.latents().map(|(_, s)| s).collect();
    let encoders = guide
        .amortized
        .iter()
        .map(|a| {
            let kind = encoder_kind(model, latent_sites[a.site], a.kind)?;
            let (site, net, input) = (id(a.site), id(a.net), id(a.input));
            Ok(quote!(::ravi::program::Encoder { site: #site, net: #net, input: #input, kind: #kind }))
        })
        .collect::<Result<Vec<_>, String>>()?;
    // Guide-program lines `site ~ Normal(loc, scale)` (LogNormal for a positive site) whose
    // location is a plain `param` and whose scale a `positive` one: a mean-field entry over
    // the params, drawn after the families, as the generated guide draws.
    let program_entries = guide
        .programs
        .iter()
        .map(|p| {
            match p.args[..] {
                [ProgramArg::Param(l), ProgramArg::Param(s)]
                    if !guide.params[l].positive && guide.params[s].positive => {}
                _ => {
                    return Err(format!(
                        "the guide's line for `{}` is not `Normal(param, positive param)`",
                        latent_sites[p.site].name
                    ))
                }
            }
            let site = id(p.site);
            Ok(quote!(::ravi::program::Entry { sites: &[#site], normal_priors: ::core::option::Option::None, floor: ::ravi::guides::SCALE_FLOOR, rewrite: ::core::option::Option::None }))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let entries = guide.entries.iter().map(|e| {
        let sites = e.sites.iter().map(|&i| id(i));
        // The analytic KL's priors, as the generated dfdx guide finds them.
        let priors: Option<Vec<(f32, f32)>> = e.family.mean_field
            .then(|| {
                e.sites
                    .iter()
                    .map(|&i| model.normal_prior(latent_sites[i]))
                    .collect()
            })
            .flatten();
        let normal_priors = match priors {
            Some(p) => {
                let p = p.iter().map(|(m, s)| {
                    let (m, s) = (crate::codegen::f32_lit(*m), crate::codegen::f32_lit(*s));
                    quote!((#m, #s))
                });
                quote!(::core::option::Option::Some(&[#(#p),*]))
            }
            None => quote!(::core::option::Option::None),
        };
        let rewrite = match e.family.rewrite {
            Some(crate::catalogue::Rewrite::Flipout) => quote!(::core::option::Option::Some(::ravi::Rewrite::Flipout)),
            Some(crate::catalogue::Rewrite::Lrt) => quote!(::core::option::Option::Some(::ravi::Rewrite::Lrt)),
            None => quote!(::core::option::Option::None),
        };
        quote!(::ravi::program::Entry { sites: &[#(#sites),*], normal_priors: #normal_priors, floor: ::ravi::guides::SCALE_FLOOR, rewrite: #rewrite })
    });
    Ok(model_part.with_guide(
        quote!(#(#entries,)* #(#program_entries),*),
        quote!(#(#encoders),*),
    ))
}

/// What an encoder of `site` draws (`::ravi::program::EncoderKind`), or why the engine
/// does not run it.
fn encoder_kind(model: &ModelIr, site: &Site, kind: AmortizedKind) -> Result<TokenStream, String> {
    let f32_option = |v: Option<f64>| match v {
        Some(v) => {
            let v = crate::codegen::f32_lit(v);
            quote!(::core::option::Option::Some(#v))
        }
        None => quote!(::core::option::Option::None),
    };
    match kind {
        AmortizedKind::Gaussian => {
            if site.dist.support != Constraint::Real {
                return Err(format!(
                    "local site `{}` is {} (the engine's Gaussian encoders draw real values)",
                    site.name,
                    site.dist.support.describe()
                ));
            }
            let prior = match model.normal_prior(site) {
                Some((m, s)) => {
                    let (m, s) = (crate::codegen::f32_lit(m), crate::codegen::f32_lit(s));
                    quote!(::core::option::Option::Some((#m, #s)))
                }
                None => quote!(::core::option::Option::None),
            };
            Ok(
                quote!(::ravi::program::EncoderKind::Gaussian { normal_prior: #prior, floor: ::ravi::guides::SCALE_FLOOR }),
            )
        }
        AmortizedKind::RelaxedBernoulli(temperature) | AmortizedKind::Concrete(temperature, _) => {
            // the encoder scores the site's prior: its arguments numbers or `temperature`
            let arg = |a: usize| {
                match &model.nodes[a].op {
                Op::Temperature => Ok(quote!(::ravi::program::PriorArg::Temperature)),
                _ => match model.const_value(a) {
                    Some(v) => {
                        let v = crate::codegen::f32_lit(v);
                        Ok(quote!(::ravi::program::PriorArg::Const(#v)))
                    }
                    None => Err(format!(
                        "the prior of local site `{}` has an argument that is neither a number nor `temperature`",
                        site.name
                    )),
                },
            }
            };
            let (tau, logits) = (arg(site.args[0])?, arg(site.args[1])?);
            let temperature = f32_option(temperature);
            Ok(match kind {
                AmortizedKind::Concrete(_, classes) if classes < 2 => {
                    return Err(format!(
                        "local site `{}` has events of {classes} class (the engine's concrete encoders draw two or more)",
                        site.name
                    ))
                }
                AmortizedKind::Concrete(_, classes) => {
                    quote!(::ravi::program::EncoderKind::Concrete { temperature: #temperature, classes: #classes, prior: (#tau, #logits) })
                }
                _ => {
                    quote!(::ravi::program::EncoderKind::RelaxedBernoulli { temperature: #temperature, prior: (#tau, #logits) })
                }
            })
        }
    }
}

/// The name of latent site `i`.
fn latent_name(model: &ModelIr, i: usize) -> &str {
    model.latents().nth(i).map_or("?", |(_, s)| s.name.as_str())
}

/// The nets the guide's encoders call.
fn encoder_nets(guide: &GuideIr) -> Vec<usize> {
    guide.amortized.iter().map(|a| a.net).collect()
}

/// The model's side of the engine alone (a program with no entries): what a guide the
/// engine does not run (an implicit generator, a flow, a low-rank family, a Flipout or
/// local-reparametrization Gaussian) uses to score its draws and take their gradient, the
/// guide itself staying on the dfdx graph; a rewritten net call is run by the engine from
/// the weights' means and sds (`backend/src/fused/rewrite.rs`). Not for an amortized guide
/// (its local sites are not the engine's).
pub fn model_program(model: &ModelIr, guide: &GuideIr) -> Result<TokenStream, String> {
    if !guide.amortized.is_empty() {
        return Err("the guide is amortized (a net reads each row)".into());
    }
    rewrites_real_weights(model, guide)?;
    Ok(ModelPart::of(model, (&[], &[]), &[])?.with_guide(quote!(), quote!()))
}

/// What both programs ask of the guide: a rewritten net call's weights are real (the
/// engine runs the call on their mean and sd as they are).
fn rewrites_real_weights(model: &ModelIr, guide: &GuideIr) -> Result<(), String> {
    let latents: Vec<&Site> = model.latents().map(|(_, s)| s).collect();
    for e in guide.entries.iter().filter(|e| e.family.rewrite.is_some()) {
        if let Some(site) = e
            .sites
            .iter()
            .map(|&i| latents[i])
            .find(|s| s.dist.support != Constraint::Real)
        {
            return Err(format!(
                "`{}` rewrites the net call of `{}`, which is {} (the engine rewrites real weights)",
                e.family.name,
                site.name,
                site.dist.support.describe()
            ));
        }
    }
    Ok(())
}

/// The model's nodes, sites and nets as the engine's tables.
struct ModelPart {
    nodes: Vec<TokenStream>,
    sites: Vec<TokenStream>,
    nets: Vec<TokenStream>,
    points: Vec<TokenStream>,
}

impl ModelPart {
    /// The tables, or why the engine cannot run the model (a local site but those in
    /// `encoded`, an op, a density or a net it does not cover); the sites in `scored_by_encoder` are
    /// scored by their (relaxed) encoders, and the nets in `guide_nets` are the
    /// guide's to call.
    fn of(
        model: &ModelIr,
        (encoded, scored_by_encoder): (&[usize], &[usize]),
        guide_nets: &[usize],
    ) -> Result<Self, String> {
        if let Some((_, site)) = model
            .latents()
            .find(|(i, s)| s.is_local() && !encoded.contains(i))
        {
            return Err(format!(
                "local site `{}` is not drawn by a Gaussian `Amortized` encoder (the engine draws local sites from those alone)",
                site.name
            ));
        }
        let nodes = model
            .nodes
            .iter()
            .map(|n| {
                let op = op(&n.op)?;
                let dims = n.shape.0.iter().map(dim);
                let particles = n.particles;
                Ok(
                    quote!(::ravi::program::Node { op: #op, dims: &[#(#dims),*], particles: #particles }),
                )
            })
            .collect::<Result<Vec<_>, String>>()?;
        let sites = model
            .sites
            .iter()
            .map(|s| {
                let name = &s.name;
                let args = s.args.iter().map(|&a| id(a));
                let value = id(s.value);
                let observed = s.observed.is_some();
                // a relaxed site its encoder draws in its unconstrained coordinates, and scores
                if !observed && model.latent_index(name).is_some_and(|k| scored_by_encoder.contains(&k)) {
                    return Ok(quote!(::ravi::program::Site { name: #name, density: ::ravi::program::Density::Encoded, args: &[#(#args),*], value: #value, observed: false, positive: false }));
                }
                let density = density(model, s)?;
                // A latent's support: the reals as drawn, or the positive reals as eᵘ.
                let positive = !observed && s.dist.support == Constraint::Positive;
                if s.ordered {
                    return Err(format!(
                        "latent site `{name}` is ordered (the engine draws real and positive latents)"
                    ));
                }
                if !observed && !matches!(s.dist.support, Constraint::Real | Constraint::Positive) {
                    return Err(format!(
                        "latent site `{name}` is {} (the engine draws real and positive latents)",
                        s.dist.support.describe()
                    ));
                }
                Ok(quote!(::ravi::program::Site { name: #name, density: #density, args: &[#(#args),*], value: #value, observed: #observed, positive: #positive }))
            })
            .collect::<Result<Vec<_>, String>>()?
            .into_iter()
            .chain(model.factors.iter().map(|f| {
                let (name, value, observed) = (&f.name, id(f.value), f.shape.has_rows());
                quote!(::ravi::program::Site { name: #name, density: ::ravi::program::Density::Factor, args: &[], value: #value, observed: #observed, positive: false })
            }))
            .collect::<Vec<_>>();
        // Every net a node calls must be one the engine runs; the others are never called.
        let called: Vec<bool> = (0..model.nets.len())
            .map(|i| {
                guide_nets.contains(&i)
                    || model
                        .nodes
                        .iter()
                        .any(|n| matches!(n.op, Op::Net(j, ..) if j == i))
            })
            .collect();
        let nets = model
            .nets
            .iter()
            .zip(&called)
            .map(|(n, &called)| if called { net(n) } else { Ok(quote!(&[])) })
            .collect::<Result<Vec<_>, String>>()?;
        // The model's `param`s, which every guide holds as points.
        let points = model
            .latents()
            .filter(|(_, s)| s.param.is_some())
            .map(|(i, _)| id(i))
            .map(|i| quote!(#i))
            .collect();
        Ok(ModelPart {
            nodes,
            sites,
            nets,
            points,
        })
    }

    /// The program of these tables with the guide's Gaussian `entries` and `encoders`.
    fn with_guide(self, entries: TokenStream, encoders: TokenStream) -> TokenStream {
        let ModelPart {
            nodes,
            sites,
            nets,
            points,
        } = self;
        quote! {
            ::ravi::program::Program {
                nodes: &[#(#nodes),*],
                sites: &[#(#sites),*],
                entries: &[#entries],
                nets: &[#(#nets),*],
                points: &[#(#points),*],
                encoders: &[#encoders],
            }
        }
    }
}

/// Does the host engine run this model and guide? `Err` says why not.
pub fn coverage(model: &ModelIr, guide: &GuideIr) -> Result<(), String> {
    program(model, guide).map(|_| ())
}
