//! Guide programs: `param`s in the store, and each `site ~ Normal(..)` drawn from them
//! (a global site from its parameters, a local one per row, possibly from nets of the rows).

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::layers::{init_blocks, runtime_layers};
use super::tokens::{dim_usize, lit_usize};
use crate::ir::*;

/// What a guide's program adds to its struct and impls.
pub(super) struct Programs {
    /// `param{i}`: the store's id of each `param`.
    pub(super) param_fields: Vec<Ident>,
    /// Each `param` added to the store in `new`.
    pub(super) param_builds: Vec<TokenStream>,
    /// Checks in `new` that each parameter's size fits the site it draws.
    pub(super) checks: Vec<TokenStream>,
    /// Each program line's draw in `sample`.
    pub(super) samples: Vec<TokenStream>,
}

/// A guide's program lines and the fields of its parameters.
struct Program<'a> {
    ir: &'a GuideIr,
    model: &'a ModelIr,
    param_fields: &'a [Ident],
}

pub(super) fn programs(
    ir: &GuideIr,
    model: &ModelIr,
    add_log_q: &TokenStream,
    add_local_log_q: &TokenStream,
) -> Programs {
    let param_fields: Vec<_> = (0..ir.params.len())
        .map(|i| format_ident!("param{}", i))
        .collect();
    let param_builds = ir.params.iter().map(|p| param_build(model, p)).collect();
    let program = Program {
        ir,
        model,
        param_fields: &param_fields,
    };
    let checks = program.checks();
    let samples = ir
        .programs
        .iter()
        .map(|p| program.sample(p, add_log_q, add_local_log_q))
        .collect();
    Programs {
        param_fields,
        param_builds,
        checks,
        samples,
    }
}

/// A `param` added to the store: Glorot blocks for a net's weights, else its start.
fn param_build(model: &ModelIr, p: &ParamIr) -> TokenStream {
    let name = &p.name;
    let numel: Vec<TokenStream> = p.shape.0.iter().map(dim_usize).collect();
    if let Some((net, layer)) = p.net_init {
        let blocks = init_blocks(&model.nets[net], layer);
        return quote!(::ravi::guides::program::param_with_init(
            &mut params, #name, 1usize #(* #numel)*, &::ravi::ParamInit::Glorot(&[#(#blocks),*])));
    }
    let (init, positive) = (super::f32_lit(p.init), p.positive);
    quote!(params.add(#name, ::std::vec![::ravi::guides::program::stored_init(#init, #positive); 1usize #(* #numel)*]))
}

impl Program<'_> {
    /// A global site's argument.
    fn arg(&self, a: &ProgramArg) -> TokenStream {
        match a {
            ProgramArg::Const(v) => {
                let v = super::f32_lit(*v);
                quote!(::ravi::guides::program::ProgramArg::Const(#v))
            }
            ProgramArg::Param(i) => {
                let f = &self.param_fields[*i];
                let positive = self.ir.params[*i].positive;
                quote!(::ravi::guides::program::ProgramArg::Param { id: self.#f, positive: #positive })
            }
            ProgramArg::Net { .. } => unreachable!("checked: nets on rows draw local sites"),
        }
    }

    /// A local site's argument, per row.
    fn row_arg(&self, a: &ProgramArg) -> TokenStream {
        match a {
            ProgramArg::Const(v) => {
                let v = super::f32_lit(*v);
                quote!(::ravi::guides::program::RowArg::Const(#v))
            }
            ProgramArg::Param(i) => {
                let f = &self.param_fields[*i];
                let positive = self.ir.params[*i].positive;
                quote!(::ravi::guides::program::RowArg::Param { id: self.#f, positive: #positive })
            }
            ProgramArg::Net {
                net,
                input,
                param,
                softplus,
            } => {
                let f = &self.param_fields[*param];
                let layers = runtime_layers(&self.model.nets[*net]);
                let input = lit_usize(*input);
                quote!(::ravi::guides::program::RowArg::Net { layers: #layers, weights: self.#f, input: #input, softplus: #softplus })
            }
        }
    }

    /// For every parameter a line takes: one value, or one per value of its site.
    fn checks(&self) -> Vec<TokenStream> {
        let latent_names: Vec<&str> = self.model.latents().map(|(_, s)| s.name.as_str()).collect();
        self.ir
            .programs
            .iter()
            .flat_map(|p| {
                let site = lit_usize(p.site);
                let site_name = &latent_names[p.site];
                p.args.iter().filter_map(move |a| match a {
                    ProgramArg::Param(i) => Some((*i, site.clone(), *site_name)),
                    ProgramArg::Const(_) | ProgramArg::Net { .. } => None,
                })
            })
            .map(|(i, site, site_name)| {
                let f = &self.param_fields[i];
                let pname = &self.ir.params[i].name;
                quote! {
                    let n = ::ravi::__private::prelude::HasShape::shape(params.get(#f)).0;
                    assert!(
                        n == 1 || n == latents[#site].numel(),
                        "parameter `{}` has {} values but the site `{}` has {}",
                        #pname, n, #site_name, latents[#site].numel()
                    );
                }
            })
            .collect()
    }

    /// One line's draw: a Normal over a global site, or per row over a local one.
    fn sample(
        &self,
        p: &ProgramSiteIr,
        add_log_q: &TokenStream,
        add_local_log_q: &TokenStream,
    ) -> TokenStream {
        let latent_sites_all: Vec<&Site> = self.model.latents().map(|(_, s)| s).collect();
        let site = lit_usize(p.site);
        if latent_sites_all[p.site].is_local() {
            let args: Vec<TokenStream> = p.args.iter().map(|a| self.row_arg(a)).collect();
            let (loc, scale) = (&args[0], &args[1]);
            return quote! {
                let (z, lq) = ::ravi::guides::program::sample_normal_rows::<__D, __T>(
                    &self.params, __batch, #loc, #scale, particles, latents[#site].numel(), estimator);
                slots[#site] = ::core::option::Option::Some(z);
                #add_local_log_q
            };
        }
        let args: Vec<TokenStream> = p.args.iter().map(|a| self.arg(a)).collect();
        let (loc, scale) = (&args[0], &args[1]);
        quote! {
            let ::ravi::FamilyDraw { z, log_q: lq } = ::ravi::guides::program::sample_normal::<__D, __T>(
                &self.params, #loc, #scale, particles, latents[#site].numel(), estimator);
            slots[#site] = ::core::option::Option::Some(z);
            #add_log_q
        }
    }
}
