//! A guide's local sites (one value per data row): drawn by encoders of their rows
//! (`Amortized`), or from mean-field parameters per row (`LocalMeanField`).

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::layers::runtime_layers;
use super::tokens::lit_usize;
use crate::ir::*;

/// The encoders of a guide, one item per `Amortized` line.
pub(super) struct Encoders {
    /// `amortized{i}`.
    pub(super) fields: Vec<Ident>,
    pub(super) builds: Vec<TokenStream>,
    pub(super) samples: Vec<TokenStream>,
}

/// Local sites drawn by encoders of their rows.
pub(super) fn encoders(ir: &GuideIr, model: &ModelIr, add_local_log_q: &TokenStream) -> Encoders {
    let latent_names: Vec<&str> = model.latents().map(|(_, s)| s.name.as_str()).collect();
    let fields: Vec<_> = (0..ir.amortized.len())
        .map(|i| format_ident!("amortized{}", i))
        .collect();
    let builds = ir
        .amortized
        .iter()
        .map(|a| {
            let site = lit_usize(a.site);
            let name = &latent_names[a.site];
            let layers = runtime_layers(&model.nets[a.net]);
            let kind = local_kind(a.kind);
            let prior = kl_prior(model, a.site);
            quote!(::ravi::guides::Amortized::build(&mut params, #name, #layers, latents[#site].numel(), #kind).with_kl_prior(#prior))
        })
        .collect();
    let samples = ir
        .amortized
        .iter()
        .zip(&fields)
        .map(|(a, f)| {
            let site = lit_usize(a.site);
            let input = lit_usize(a.input);
            quote! {
                let (z, lq) = self.#f.sample::<__D, __T>(
                    &self.params,
                    particles,
                    __batch.input(#input),
                    __batch.temperature(),
                    estimator,
                );
                slots[#site] = ::core::option::Option::Some(z);
                #add_local_log_q
            }
        })
        .collect();
    Encoders {
        fields,
        builds,
        samples,
    }
}

/// The local site's prior for the closed-form KL (`Estimator::AnalyticKl`): Some when it
/// is Normal in the guide's coordinate with numbers for arguments.
fn kl_prior(model: &ModelIr, site: usize) -> TokenStream {
    let prior = model
        .latents()
        .nth(site)
        .and_then(|(_, s)| model.normal_prior(s));
    match prior {
        Some((loc, scale)) => {
            let (loc, scale) = (super::f32_lit(loc), super::f32_lit(scale));
            quote!(::core::option::Option::Some(::ravi::guides::NormalPrior { loc: #loc, scale: #scale }))
        }
        None => quote!(::core::option::Option::None),
    }
}

/// `::ravi::guides::LocalKind` of an encoder: what its outputs parametrize.
fn local_kind(kind: AmortizedKind) -> TokenStream {
    match kind {
        AmortizedKind::Gaussian => quote!(::ravi::guides::LocalKind::Gaussian),
        AmortizedKind::RelaxedBernoulli(t) => {
            let t = temperature(t);
            quote!(::ravi::guides::LocalKind::RelaxedBernoulli { temperature: #t })
        }
        AmortizedKind::Concrete(t, classes) => {
            let t = temperature(t);
            quote!(::ravi::guides::LocalKind::Concrete { temperature: #t, classes: #classes })
        }
    }
}

/// A relaxed encoder's temperature: a number, or `None` for the step's.
fn temperature(t: Option<f64>) -> TokenStream {
    match t {
        Some(v) => {
            let v = super::f32_lit(v);
            quote!(::core::option::Option::Some(#v))
        }
        None => quote!(::core::option::Option::None),
    }
}

/// The local sites with mean-field parameters per data row, one item per site.
pub(super) struct RowParams {
    /// `local{i}`.
    pub(super) fields: Vec<Ident>,
    pub(super) builds: Vec<TokenStream>,
    /// Each site's parameters sized for the data's rows, in `prepare`.
    pub(super) prepares: Vec<TokenStream>,
    /// `rows_held`: the rows the first such site holds (`None` without one).
    pub(super) rows_held: TokenStream,
    pub(super) samples: Vec<TokenStream>,
}

/// Local sites with mean-field parameters per data row, sized by `prepare`.
pub(super) fn row_params(
    ir: &GuideIr,
    model: &ModelIr,
    add_local_log_q: &TokenStream,
) -> RowParams {
    let latent_names: Vec<&str> = model.latents().map(|(_, s)| s.name.as_str()).collect();
    let fields: Vec<_> = (0..ir.local_mean_field.len())
        .map(|i| format_ident!("local{}", i))
        .collect();
    let builds = ir
        .local_mean_field
        .iter()
        .map(|&i| {
            let prior = kl_prior(model, i);
            let i = lit_usize(i);
            quote!(::ravi::guides::LocalMeanField::new(latents[#i].numel()).with_kl_prior(#prior))
        })
        .collect();
    let prepares = ir
        .local_mean_field
        .iter()
        .zip(&fields)
        .map(|(&i, f)| {
            let name = &latent_names[i];
            quote!(self.#f.prepare(&mut self.params, #name, rows);)
        })
        .collect();
    let rows_held = match fields.first() {
        Some(f) => quote!(::core::option::Option::Some(self.#f.rows())),
        None => quote!(::core::option::Option::None),
    };
    let samples = ir
        .local_mean_field
        .iter()
        .zip(&fields)
        .map(|(&i, f)| {
            let site = lit_usize(i);
            quote! {
                let (z, lq) = self.#f.sample::<__D, __T>(&self.params, particles, __batch, estimator);
                slots[#site] = ::core::option::Option::Some(z);
                #add_local_log_q
            }
        })
        .collect();
    RowParams {
        fields,
        builds,
        prepares,
        rows_held,
        samples,
    }
}
