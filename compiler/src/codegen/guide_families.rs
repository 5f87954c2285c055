//! A guide's family entries (`sites ~ Family(args)`) and the point masses that hold the
//! model's `param`s: their fields, how `new` builds them, how `sample` draws them, their
//! prior weights and where a fit starts them.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use super::tokens::lit_usize;
use crate::ir::*;

/// What a guide's family entries add to its struct and impls, one item per entry.
pub(super) struct Families {
    /// `entry{i}`.
    pub(super) fields: Vec<Ident>,
    /// `::ravi::guides::{Family}`, the type of each field.
    pub(super) types: Vec<TokenStream>,
    /// Each family built in `new`.
    pub(super) builds: Vec<TokenStream>,
    /// Each family's draw in `sample`.
    pub(super) samples: Vec<TokenStream>,
    /// Each family's prior weight in `prior_weights`.
    pub(super) weights: Vec<TokenStream>,
    /// Where a fit's initialisation starts each family, in `start`.
    pub(super) starts: Vec<TokenStream>,
}

pub(super) fn families(ir: &GuideIr, model: &ModelIr, add_log_q: &TokenStream) -> Families {
    let fields: Vec<_> = (0..ir.entries.len())
        .map(|i| format_ident!("entry{}", i))
        .collect();
    let types: Vec<_> = ir
        .entries
        .iter()
        .map(|e| {
            let f = format_ident!("{}", e.family.name);
            quote!(::ravi::guides::#f)
        })
        .collect();
    let builds = ir
        .entries
        .iter()
        .zip(&types)
        .map(|(e, fam)| {
            let label = e.label(model);
            let idx = e.sites.iter().map(|&i| lit_usize(i));
            let args = family_args(&e.args);
            quote!(<#fam as ::ravi::GuideFamily<__D>>::build(
                &mut params, #label, 0 #(+ latents[#idx].unconstrained_numel())*, &#args))
        })
        .collect();
    let entries = || ir.entries.iter().zip(&fields).zip(&types);
    let samples = entries()
        .map(|((e, f), fam)| family_sample(model, e, f, fam, add_log_q))
        .collect();
    let weights = entries()
        .map(|((e, f), fam)| {
            let idx = e.sites.iter().map(|&i| lit_usize(i));
            quote! {
                let w = <#fam as ::ravi::GuideFamily<__D>>::prior_weight(&self.#f);
                #(weights[#idx] = w;)*
            }
        })
        .collect();
    let starts = entries()
        .map(|((e, f), fam)| {
            let label = e.label(model);
            let idx = e.sites.iter().map(|&i| lit_usize(i));
            quote!(<#fam as ::ravi::GuideFamily<__D>>::start(&mut self.#f, &mut self.params, #label, &start.family(&[#(#idx),*]));)
        })
        .collect();
    Families {
        fields,
        types,
        builds,
        samples,
        weights,
        starts,
    }
}

/// One entry's draw in `sample`: its columns split onto its sites, its log q (weighted,
/// or the closed-form KL term) added to the sum, its Gaussian handed over for a rewrite.
fn family_sample(
    model: &ModelIr,
    e: &GuideEntryIr,
    f: &Ident,
    fam: &TokenStream,
    add_log_q: &TokenStream,
) -> TokenStream {
    let idx: Vec<_> = e.sites.iter().map(|&i| lit_usize(i)).collect();
    let analytic_kl = analytic_kl(model, e, f, &idx);
    let rewrite = e.family.rewrite.is_some().then(|| {
        let site = &idx[0];
        quote!(rewrites[#site] = ::core::option::Option::Some(self.#f.gaussian::<__D, __T>(&self.params));)
    });
    quote! {
        let ::ravi::FamilyDraw { z, log_q: lq } =
            <#fam as ::ravi::GuideFamily<__D>>::sample::<__T>(&self.#f, &self.params, particles, estimator);
        #rewrite
        #analytic_kl
        let entropy_weight = <#fam as ::ravi::GuideFamily<__D>>::entropy_weight(&self.#f);
        let lq = if weighted && entropy_weight != 1.0 { lq * entropy_weight } else { lq };
        let sizes = [#(latents[#idx].unconstrained_numel()),*];
        for (site, part) in [#(#idx),*].into_iter().zip(::ravi::__private::ops::split_columns(z, &sizes)) {
            slots[site] = ::core::option::Option::Some(part);
        }
        #add_log_q
    }
}

/// A mean-field entry whose sites all have numeric Normal priors (in the guide's
/// unconstrained space) can use the closed-form KL: the term that replaces its log q
/// under `Estimator::AnalyticKl` (`None` for other entries).
fn analytic_kl(
    model: &ModelIr,
    e: &GuideEntryIr,
    f: &Ident,
    idx: &[Literal],
) -> Option<TokenStream> {
    let latent_sites: Vec<&Site> = model.latents().map(|(_, s)| s).collect();
    let normal_priors: Option<Vec<(f32, f32)>> = e
        .family
        .mean_field
        .then(|| {
            e.sites
                .iter()
                .map(|&i| model.normal_prior(latent_sites[i]))
                .collect()
        })
        .flatten();
    normal_priors.map(|priors| {
        let (locs, scales): (Vec<TokenStream>, Vec<TokenStream>) = priors
            .into_iter()
            .map(|(m, s)| (super::f32_lit(m), super::f32_lit(s)))
            .unzip();
        quote! {
            let lq = if estimator == ::ravi::Estimator::AnalyticKl {
                let (mut prior_loc, mut prior_scale) = (::std::vec::Vec::new(), ::std::vec::Vec::new());
                for ((site, m), s) in [#(#idx),*].into_iter().zip([#(#locs),*]).zip([#(#scales),*]) {
                    prior_loc.extend(::std::iter::repeat(m).take(latents[site].numel()));
                    prior_scale.extend(::std::iter::repeat(s).take(latents[site].numel()));
                }
                self.#f.analytic_kl_term::<__D, __T>(&self.params, z.retaped::<__T>(), &prior_loc, &prior_scale)
            } else {
                lq
            };
        }
    })
}

/// `::ravi::FamilyArgs(vec![(name, value), ...])`, built when the guide is constructed.
fn family_args(args: &[(String, FamilyValue)]) -> TokenStream {
    let items = args.iter().map(|(k, v)| {
        let v = match v {
            FamilyValue::Number(x) => {
                let x = super::f64_lit(*x);
                quote!(::ravi::FamilyArg::Number(#x))
            }
            FamilyValue::List(xs) => {
                let xs = xs.iter().map(|&x| super::f64_lit(x));
                quote!(::ravi::FamilyArg::List(::std::vec![#(#xs),*]))
            }
            FamilyValue::Name(n) => quote!(::ravi::FamilyArg::Name(#n)),
            FamilyValue::Auto => quote!(::ravi::FamilyArg::Auto),
            FamilyValue::Layers(layers) => {
                let layers = layers.iter().map(|l| {
                    let kind = l.kind;
                    let args = family_args(&l.args);
                    quote!(::ravi::FlowLayer { kind: #kind, args: #args })
                });
                quote!(::ravi::FamilyArg::Layers(::std::vec![#(#layers),*]))
            }
        };
        quote!((#k, #v))
    });
    quote!(::ravi::FamilyArgs(::std::vec![#(#items),*]))
}

/// The point masses that hold the model's `param`s, one item per `param` site.
pub(super) struct Deltas {
    /// `delta{i}`.
    pub(super) fields: Vec<Ident>,
    pub(super) builds: Vec<TokenStream>,
    pub(super) samples: Vec<TokenStream>,
    pub(super) starts: Vec<TokenStream>,
}

/// Model `param`s, held as points.
pub(super) fn deltas(model: &ModelIr, add_log_q: &TokenStream) -> Deltas {
    let delta_sites: Vec<(usize, &Site)> =
        model.latents().filter(|(_, s)| s.param.is_some()).collect();
    let fields: Vec<_> = (0..delta_sites.len())
        .map(|i| format_ident!("delta{}", i))
        .collect();
    let builds = delta_sites
        .iter()
        .map(|(i, s)| {
            let i = lit_usize(*i);
            let name = &s.name;
            quote!(::ravi::guides::Delta::build(&mut params, #name, latents[#i].numel(),
                &latents[#i].param.expect("a param site has its start")))
        })
        .collect();
    let samples = delta_sites
        .iter()
        .zip(&fields)
        .map(|((i, _), f)| {
            let i = lit_usize(*i);
            quote! {
                let ::ravi::FamilyDraw { z, log_q: lq } = self.#f.sample::<__D, __T>(&self.params, particles);
                slots[#i] = ::core::option::Option::Some(z);
                #add_log_q
            }
        })
        .collect();
    let starts = delta_sites
        .iter()
        .zip(&fields)
        .map(|((i, _), f)| {
            let i = lit_usize(*i);
            quote!(if let ::core::option::Option::Some(v) = start.site(#i) { self.#f.start(&mut self.params, v); })
        })
        .collect();
    Deltas {
        fields,
        builds,
        samples,
        starts,
    }
}
