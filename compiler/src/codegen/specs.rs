//! The tables a model describes itself with: its inputs (`Model::inputs`) and its latent
//! sites (`Model::latents`), with their supports, starts and net weights.

use proc_macro2::TokenStream;
use quote::quote;

use super::latent::{latent_support, LatentSupport};
use super::layers::init_blocks;
use super::tokens::{dim_usize, f32_lit};
use crate::ir::*;

/// `::ravi::InputSpec`s, one per input in order.
pub(super) fn input_specs(ir: &ModelIr) -> Vec<TokenStream> {
    ir.inputs
        .iter()
        .enumerate()
        .map(|(k, i)| input_spec(ir, k, i))
        .collect()
}

fn input_spec(ir: &ModelIr, index: usize, i: &Input) -> TokenStream {
    let n = &i.name;
    let observed = ir.sites.iter().any(|s| s.observed == Some(index));
    let dims = i.shape.0.iter().map(|d| match d {
        Dim::Rows => quote!(::ravi::DimSpec::Rows),
        d => {
            let u = dim_usize(d);
            quote!(::ravi::DimSpec::Fixed(#u))
        }
    });
    let has_rows = i.shape.0.first() == Some(&Dim::Rows);
    // The axes whose size is a size parameter, by name, for the messages.
    let sizes = i
        .shape
        .0
        .iter()
        .enumerate()
        .filter_map(|(axis, d)| match d {
            Dim::Const(c) if ir.is_size(c) => Some(quote!((#axis, #c))),
            _ => None,
        });
    let integers = match i.integers {
        None => quote!(::core::option::Option::None),
        Some((lo, hi)) => {
            let hi = match hi {
                Some(h) => quote!(::core::option::Option::Some(#h)),
                None => quote!(::core::option::Option::None),
            };
            quote!(::core::option::Option::Some((#lo, #hi)))
        }
    };
    quote!(::ravi::InputSpec { name: #n, dims: &[#(#dims),*], has_rows: #has_rows, integers: #integers, sizes: &[#(#sizes),*], observed: #observed })
}

/// `::ravi::LatentSpec`s, one per latent site in order.
pub(super) fn latent_specs(ir: &ModelIr) -> Vec<TokenStream> {
    let net_weights = crate::start::net_weights(ir);
    ir.latents()
        .map(|(k, s)| latent_spec(ir, s, net_weights[k]))
        .collect()
}

/// One latent site's spec; `net_weights` is the net (and layer) whose weights it is, if any.
fn latent_spec(ir: &ModelIr, s: &Site, net_weights: Option<(usize, Option<usize>)>) -> TokenStream {
    let n = &s.name;
    let prior_median = match crate::start::prior_median(ir, s).map(|v| v as f32) {
        Some(v) if v.is_finite() => {
            let v = f32_lit(v);
            quote!(::core::option::Option::Some(#v))
        }
        _ => quote!(::core::option::Option::None),
    };
    let net = match net_weights {
        Some((net, layer)) if s.param.is_none() => {
            let blocks = init_blocks(&ir.nets[net], layer);
            quote!(::core::option::Option::Some(&[#(#blocks),*]))
        }
        _ => quote!(::core::option::Option::None),
    };
    let local = s.is_local();
    let dims = s.shape.0.iter().skip(usize::from(local)).map(dim_usize);
    let param = match &s.param {
        None => quote!(::core::option::Option::None),
        Some(ParamInitIr::Value(v)) => {
            let v = f32_lit(*v as f32);
            quote!(::core::option::Option::Some(::ravi::ParamInit::Value(#v)))
        }
        Some(ParamInitIr::Net(net, layer)) => {
            let blocks = init_blocks(&ir.nets[*net], *layer);
            quote!(::core::option::Option::Some(::ravi::ParamInit::Glorot(&[#(#blocks),*])))
        }
    };
    let support = support(ir, s);
    quote!(::ravi::LatentSpec { name: #n, shape: &[#(#dims),*], support: #support, local: #local, param: #param, prior_median: #prior_median, net: #net })
}

/// `::ravi::Support` of a latent site.
fn support(ir: &ModelIr, s: &Site) -> TokenStream {
    match latent_support(ir, s) {
        LatentSupport::Real => quote!(::ravi::Support::Real),
        LatentSupport::Positive => quote!(::ravi::Support::Positive),
        LatentSupport::UnitInterval => quote!(::ravi::Support::UnitInterval),
        LatentSupport::Simplex => quote!(::ravi::Support::Simplex),
        LatentSupport::Ordered => quote!(::ravi::Support::Ordered),
        LatentSupport::Interval(low, high) => {
            let (low, high) = (f32_lit(low as f32), f32_lit(high as f32));
            quote!(::ravi::Support::Interval { low: #low, high: #high })
        }
    }
}
