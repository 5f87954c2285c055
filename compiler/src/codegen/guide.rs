//! A guide's Rust items: its struct (families, parameters, point masses, encoders,
//! per-row parameters), its constructor, and the `Guide` impl that draws every latent site.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::guide_families::{deltas, families, Deltas, Families};
use super::guide_local::{encoders, row_params, Encoders, RowParams};
use super::guide_program::{programs, Programs};
use super::host::{host_program, HostProgram};
use super::tokens::{docs, size_generics, sizes};
use super::SpanMap;
use crate::ir::*;

/// What each kind of guide line adds to the guide's struct and impls.
struct Parts {
    families: Families,
    programs: Programs,
    deltas: Deltas,
    encoders: Encoders,
    rows: RowParams,
}

/// The Rust items of a guide: a struct holding its parameters and families, its
/// constructor, and the `Guide` impl that draws every latent site of the model, which the
/// generated code names by `model_path` (the model's name, or the path the guide was
/// written with, as in `guide G for crate::models::M`).
pub(super) fn items(
    ir: &GuideIr,
    model: &ModelIr,
    model_path: &TokenStream,
    span_of: SpanMap,
) -> TokenStream {
    // Each entry adds its log q term to the global or the per-row sum.
    let add_log_q = accumulate(&format_ident!("log_q"), quote!(lq));
    let add_local_log_q = accumulate(&format_ident!("local_log_q"), quote!(lq));
    let name = format_ident!("{}", ir.name, span = span_of(&ir.span));
    let parts = Parts {
        families: families(ir, model, &add_log_q),
        programs: programs(ir, model, &add_log_q, &add_local_log_q),
        deltas: deltas(model, &add_log_q),
        encoders: encoders(ir, model, &add_local_log_q),
        rows: row_params(ir, model, &add_local_log_q),
    };
    // A guide of a model with size parameters is generic over them as the model is (before
    // the device, whose default must come last): `G<const D: usize, __D = Cpu>` with
    // `type Model = Reg<D>`.
    let (_, size_args) = size_generics(model);
    let sizes = sizes(model);
    let generics = Generics {
        params: quote!(<#(const #sizes: usize,)* __D: ::ravi::Backend>),
        args: quote!(<#(#sizes,)* __D>),
        sizes: quote!(#(const #sizes: usize,)*),
        model_path: model_path.clone(),
        model_ty: quote!(#model_path #size_args),
    };
    let host = host_program(
        ir,
        model,
        &parts.families.fields,
        &parts.families.types,
        &parts.programs.param_fields,
        (&parts.deltas.fields, &parts.encoders.fields),
    );
    let definition = definition(ir, model, &name, &generics, &parts, &host);
    let guide_impl = guide_impl(model, &name, &generics, &parts, &host);
    quote! {
        #definition

        #guide_impl
    }
}

/// The guide's generic parameters: `<const D: usize, __D: Backend>` and the arguments
/// `<D, __D>` (the model's size parameters, then the device), and the size parameters
/// alone (`const D: usize,`), which the struct declares before `__D = Cpu`; the model's
/// path as the guide wrote it and its type (`Reg<D>`).
struct Generics {
    params: TokenStream,
    args: TokenStream,
    sizes: TokenStream,
    model_path: TokenStream,
    model_ty: TokenStream,
}

/// `acc = Some(acc + term)` (or `Some(term)` first) in generated code: how the guide sums
/// its entries' log q terms.
fn accumulate(acc: &Ident, term: TokenStream) -> TokenStream {
    quote! {
        #acc = ::core::option::Option::Some(match #acc {
            ::core::option::Option::None => #term,
            ::core::option::Option::Some(acc) => acc + #term,
        });
    }
}

/// The guide's struct and its constructor `new` (and the host engine's program, where it
/// is an associated const).
fn definition(
    ir: &GuideIr,
    model: &ModelIr,
    name: &Ident,
    generics: &Generics,
    parts: &Parts,
    host: &HostProgram,
) -> TokenStream {
    let Generics {
        params,
        args,
        sizes,
        model_path,
        model_ty,
    } = generics;
    let doc = docs(&ir.docs);
    // "A guide for [`M`]", the link to where the guide's path leads.
    let path = model_path.to_string().replace(' ', "");
    let model_doc = if path == model.name {
        format!("\n\nA guide for [`{}`].", model.name)
    } else {
        format!("\n\nA guide for [`{}`]({path}).", model.name)
    };
    let (fields, families, builds) = (
        &parts.families.fields,
        &parts.families.types,
        &parts.families.builds,
    );
    let Programs {
        param_fields,
        param_builds,
        checks: program_checks,
        ..
    } = &parts.programs;
    let (delta_fields, delta_builds) = (&parts.deltas.fields, &parts.deltas.builds);
    let (amortized_fields, amortized_builds) = (&parts.encoders.fields, &parts.encoders.builds);
    let (local_fields, local_builds) = (&parts.rows.fields, &parts.rows.builds);
    let program_table = &host.table;
    quote! {
        #doc
        #[doc = #model_doc]
        #[derive(Debug, Clone)]
        pub struct #name<#sizes __D: ::ravi::Backend = ::ravi::Cpu> {
            params: ::ravi::ParamStore<__D>,
            #(#[doc = "A guide family of this guide, in the order written."] pub #fields: #families,)*
            #(#param_fields: ::ravi::ParamId,)*
            #(#delta_fields: ::ravi::guides::Delta,)*
            #(#amortized_fields: ::ravi::guides::Amortized,)*
            #(#local_fields: ::ravi::guides::LocalMeanField,)*
        }

        impl #params #name #args {
            #program_table

            /// A fresh guide with its parameters on `dev` (locations 0, scales 0.1).
            pub fn new(dev: &__D) -> Self {
                let latents = <#model_ty as ::ravi::Model>::latents();
                let mut params = ::ravi::ParamStore::new(dev);
                #(let #fields = #builds;)*
                #(let #param_fields = #param_builds;)*
                #(let #delta_fields = #delta_builds;)*
                #(let #amortized_fields = #amortized_builds;)*
                #(let #local_fields = #local_builds;)*
                #(#program_checks)*
                Self { params, #(#fields,)* #(#param_fields,)* #(#delta_fields,)* #(#amortized_fields,)* #(#local_fields,)* }
            }

            /// Writes the guide's parameters to `path` (safetensors, with what `load` checks:
            /// the model, the guide, every parameter's name and size). An example of both:
            /// `ravi::save::save`.
            pub fn save(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<(), ::ravi::SaveError> {
                ::ravi::save::save(self, path)
            }

            /// The guide saved at `path` by `save`, on `dev`: a typed error
            /// if the file holds another model's or guide's parameters, or other sizes.
            pub fn load(path: impl ::core::convert::AsRef<::std::path::Path>, dev: &__D) -> ::core::result::Result<Self, ::ravi::SaveError> {
                ::ravi::save::load_into(Self::new(dev), path)
            }
        }
    }
}

/// `impl ::ravi::Guide` for the guide: its parameters, starts, per-row sizes, prior
/// weights, the host engine's side (`host`) and `sample`.
fn guide_impl(
    model: &ModelIr,
    name: &Ident,
    generics: &Generics,
    parts: &Parts,
    host: &HostProgram,
) -> TokenStream {
    let Generics {
        params,
        args,
        model_ty,
        ..
    } = generics;
    let host = &host.fns;
    let n_latents = model.latents().count();
    let families = &parts.families.types;
    let (starts, weights) = (&parts.families.starts, &parts.families.weights);
    let delta_starts = &parts.deltas.starts;
    let (local_prepares, rows_held) = (&parts.rows.prepares, &parts.rows.rows_held);
    let sample = sample_fn(model, model_ty, parts);
    quote! {
        impl #params ::ravi::Guide<__D> for #name #args {
            type Model = #model_ty;
            fn params(&self) -> &::ravi::ParamStore<__D> {
                &self.params
            }
            fn params_mut(&mut self) -> &mut ::ravi::ParamStore<__D> {
                &mut self.params
            }
            fn start(&mut self, start: &::ravi::Start) {
                let _ = start;
                #(#starts)*
                #(#delta_starts)*
            }
            fn prepare(&mut self, rows: usize) {
                let _ = rows;
                #(#local_prepares)*
            }
            fn rows_held(&self) -> ::core::option::Option<usize> {
                #rows_held
            }
            fn exact_log_q() -> bool {
                true #(&& <#families as ::ravi::GuideFamily<__D>>::EXACT_LOG_Q)*
            }
            fn prior_weights(&self) -> ::std::vec::Vec<f32> {
                let mut weights = ::std::vec![1.0f32; #n_latents];
                #(#weights)*
                weights
            }
            #host
            #sample
        }
    }
}

/// `Guide::sample`: every line's draw into its sites' slots, and the sums of log q.
fn sample_fn(model: &ModelIr, model_ty: &TokenStream, parts: &Parts) -> TokenStream {
    let n_latents = model.latents().count();
    let samples = &parts.families.samples;
    let programs = &parts.programs.samples;
    let delta_samples = &parts.deltas.samples;
    let amortized_samples = &parts.encoders.samples;
    let local_samples = &parts.rows.samples;
    quote! {
        fn sample<__T: ::ravi::Tape<__D>>(&self, particles: usize, __batch: &::ravi::Batch<__D>, estimator: ::ravi::Estimator, weighted: bool) -> ::ravi::GuideSample<__D, __T> {
            let latents = <#model_ty as ::ravi::Model>::latents();
            let mut slots: ::std::vec::Vec<::core::option::Option<::ravi::Particles<__D, __T>>> =
                (0..#n_latents).map(|_| ::core::option::Option::None).collect();
            let mut log_q: ::core::option::Option<::ravi::PerParticle<__D, __T>> = ::core::option::Option::None;
            let mut rewrites: ::std::vec::Vec<::core::option::Option<::ravi::GaussianWeights<__D, __T>>> =
                (0..#n_latents).map(|_| ::core::option::Option::None).collect();
            let mut local_log_q: ::core::option::Option<::ravi::Rows<__D, __T>> = ::core::option::Option::None;
            #(#samples)*
            #(#programs)*
            #(#delta_samples)*
            #(#amortized_samples)*
            #(#local_samples)*
            ::ravi::GuideSample {
                latents: slots.into_iter().map(|s| s.expect("the compiler checked every latent site is covered")).collect(),
                log_q: log_q.unwrap_or_else(|| ::ravi::__private::ops::zero_per_particle(self.params.device(), particles)),
                local_log_q,
                rewrites,
            }
        }
    }
}
