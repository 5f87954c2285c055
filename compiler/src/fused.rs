//! The host engine's program for a model and its guide (`::ravi::program::Program`): emitted
//! beside the dfdx code when both stay inside what the engine covers (see the backend's
//! `fused` module); `None` otherwise, and every step takes the dfdx path.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::ast::BinOp;
use crate::catalogue::Constraint;
use crate::ir::{
    Activation, Dim, Func, GuideIr, ModelIr, NetInput, NetIr, NetLayer, Op, ProgramArg, Reduce,
    Site,
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

fn op(op: &Op) -> Option<TokenStream> {
    let f = |name: &str, a: &usize, b: &usize| {
        let name = format_ident!("{}", name);
        let (a, b) = (id(*a), id(*b));
        quote!(::ravi::program::Op::#name(#a, #b))
    };
    Some(match op {
        Op::Input(i) => {
            let i = id(*i);
            quote!(::ravi::program::Op::Input(#i))
        }
        Op::Const(v) => {
            let v = Literal::f32_suffixed(*v as f32);
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
                }
            );
            let a = id(*a);
            quote!(::ravi::program::Op::Func(::ravi::program::Func::#func, #a))
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
        Op::Temperature => return None,
    })
}

/// A net's layers for the engine: Linear layers and activations on feature rows.
fn net(net: &NetIr) -> Option<TokenStream> {
    if !matches!(net.input, NetInput::Features(_)) {
        return None;
    }
    let layers = net
        .layers
        .iter()
        .map(|l| {
            Some(match l {
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
                NetLayer::Conv2d { .. } | NetLayer::Pool { .. } | NetLayer::Flatten => return None,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(quote!(&[#(#layers),*]))
}

/// The engine's density for a site, if it has one.
fn density(model: &ModelIr, site: &Site) -> Option<TokenStream> {
    let d = &site.dist;
    if site.param.is_some() {
        return None;
    }
    if d.name == "Categorical" && site.observed.is_some() {
        // logits: the site's shape and a last axis of categories
        let logits = &model.nodes[site.args[0]].shape;
        return (logits.rank() == site.shape.rank() + 1
            && logits.0[..site.shape.rank()] == site.shape.0[..])
            .then(|| quote!(::ravi::program::Density::Categorical));
    }
    if d.event || d.joint || d.vector_event {
        return None;
    }
    // Arguments broadcast to the site by prepending axes only: none may be larger.
    if site
        .args
        .iter()
        .any(|&a| model.nodes[a].shape.rank() > site.shape.rank())
    {
        return None;
    }
    let name = match (d.name, site.parametrization.suffix, site.observed.is_some()) {
        ("Normal", "", _) => "Normal",
        ("LogNormal", "", _) => "LogNormal",
        ("HalfNormal", "", _) => "HalfNormal",
        ("HalfCauchy", "", _) => "HalfCauchy",
        ("Exponential", "", _) => "Exponential",
        ("Cauchy", "", _) => "Cauchy",
        ("Laplace", "", _) => "Laplace",
        // the engine has no digamma: a Gamma's concentration must not be a latent
        ("Gamma" | "InverseGamma", "", _) if !model.nodes[site.args[0]].particles => {
            if d.name == "Gamma" {
                "Gamma"
            } else {
                "InverseGamma"
            }
        }
        ("Bernoulli", "", true) => "Bernoulli",
        ("Bernoulli", "_logits", true) => "BernoulliLogits",
        ("Poisson", "", true) => "Poisson",
        _ => return None,
    };
    let name = format_ident!("{}", name);
    Some(quote!(::ravi::program::Density::#name))
}

/// `fn fused_program()` of the guide's `Guide` impl, or `None` when the engine does not
/// cover this model and guide: global real latents under `MeanField` and `FullRank` entries, the ops and
/// densities of [`op`] and [`density`].
pub fn program(model: &ModelIr, guide: &GuideIr) -> Option<TokenStream> {
    if !guide.amortized.is_empty()
        || !guide.local_mean_field.is_empty()
        || guide
            .entries
            .iter()
            .any(|e| !matches!(e.family.name, "MeanField" | "FullRank"))
    {
        return None;
    }
    if model.latents().any(|(_, s)| s.is_local()) {
        return None;
    }
    let nodes = model
        .nodes
        .iter()
        .map(|n| {
            let op = op(&n.op)?;
            let dims = n.shape.0.iter().map(dim);
            let particles = n.particles;
            Some(
                quote!(::ravi::program::Node { op: #op, dims: &[#(#dims),*], particles: #particles }),
            )
        })
        .collect::<Option<Vec<_>>>()?;
    let sites = model
        .sites
        .iter()
        .map(|s| {
            let density = density(model, s)?;
            let name = &s.name;
            let args = s.args.iter().map(|&a| id(a));
            let value = id(s.value);
            let observed = s.observed.is_some();
            // A latent's support: the reals as drawn, or the positive reals as eᵘ.
            let positive = !observed && s.dist.support == Constraint::Positive;
            if !observed && !matches!(s.dist.support, Constraint::Real | Constraint::Positive) {
                return None;
            }
            Some(quote!(::ravi::program::Site { name: #name, density: #density, args: &[#(#args),*], value: #value, observed: #observed, positive: #positive }))
        })
        .collect::<Option<Vec<_>>>()?;
    // Every net a node calls must be one the engine runs; the others are never called.
    let called: Vec<bool> = (0..model.nets.len())
        .map(|i| {
            model
                .nodes
                .iter()
                .any(|n| matches!(n.op, Op::Net(j, ..) if j == i))
        })
        .collect();
    let nets = model
        .nets
        .iter()
        .zip(&called)
        .map(|(n, &called)| if called { net(n) } else { Some(quote!(&[])) })
        .collect::<Option<Vec<_>>>()?;
    let latent_sites: Vec<&Site> = model.latents().map(|(_, s)| s).collect();
    // Guide-program lines `site ~ Normal(loc, scale)` (LogNormal for a positive site) whose
    // location is a plain `param` and whose scale a `positive` one: a mean-field entry
    // under the params' names, drawn after the families, as the generated guide draws.
    let program_entries = guide
        .programs
        .iter()
        .map(|p| {
            let (loc, scale) = match p.args[..] {
                [ProgramArg::Param(l), ProgramArg::Param(s)]
                    if !guide.params[l].positive && guide.params[s].positive =>
                {
                    (&guide.params[l].name, &guide.params[s].name)
                }
                _ => return None,
            };
            let site = id(p.site);
            Some(quote!(::ravi::program::Entry { sites: &[#site], loc: #loc, rho: #scale, lower: ::core::option::Option::None, normal_priors: ::core::option::Option::None, floor: ::ravi::guides::SCALE_FLOOR, label: ::core::option::Option::None }))
        })
        .collect::<Option<Vec<_>>>()?;
    let entries = guide.entries.iter().map(|e| {
        let label = e.label(model);
        let (loc, rho) = (format!("{label}.loc"), format!("{label}.rho"));
        let lower = if e.family.name == "FullRank" {
            let lower = format!("{label}.lower");
            quote!(::core::option::Option::Some(#lower))
        } else {
            quote!(::core::option::Option::None)
        };
        let sites = e.sites.iter().map(|&i| id(i));
        // The analytic KL's priors, as the generated dfdx guide finds them.
        let priors: Option<Vec<(f32, f32)>> = (e.family.name == "MeanField")
            .then(|| {
                e.sites
                    .iter()
                    .map(|&i| {
                        let site = latent_sites[i];
                        // u ~ N(m, s) in the guide's space: a Normal, or a LogNormal's log
                        if !matches!(site.dist.name, "Normal" | "LogNormal")
                            || !site.parametrization.suffix.is_empty()
                        {
                            return None;
                        }
                        let m = model.const_value(site.args[0])?;
                        let s = model.const_value(site.args[1])?;
                        Some((m as f32, s as f32))
                    })
                    .collect()
            })
            .flatten();
        let normal_priors = match priors {
            Some(p) => {
                let p = p.iter().map(|(m, s)| {
                    let (m, s) = (Literal::f32_suffixed(*m), Literal::f32_suffixed(*s));
                    quote!((#m, #s))
                });
                quote!(::core::option::Option::Some(&[#(#p),*]))
            }
            None => quote!(::core::option::Option::None),
        };
        quote!(::ravi::program::Entry { sites: &[#(#sites),*], loc: #loc, rho: #rho, lower: #lower, normal_priors: #normal_priors, floor: ::ravi::guides::SCALE_FLOOR, label: ::core::option::Option::Some(#label) })
    });
    Some(quote! {
        fn fused_program() -> ::core::option::Option<&'static ::ravi::program::Program> {
            static PROGRAM: ::ravi::program::Program = ::ravi::program::Program {
                nodes: &[#(#nodes),*],
                sites: &[#(#sites),*],
                entries: &[#(#entries,)* #(#program_entries),*],
                nets: &[#(#nets),*],
            };
            ::core::option::Option::Some(&PROGRAM)
        }
    })
}
