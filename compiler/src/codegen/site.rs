//! Each site's term of the log joint (by the kind of its density), and an observed
//! site's distribution parameters for the predictive.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::emitter::Emitter;
use super::latent::logit_space;
use super::tokens::{axes, dim_usize, lit_usize};
use crate::catalogue::Constraint;
use crate::ir::*;

impl Emitter<'_> {
    /// `(name, term)` of a site's log density: per particle (scaled and with its log-det,
    /// see `site_entry`), or per particle and row in `log_joint_rows`.
    pub(super) fn site_term(&mut self, site: &Site) -> TokenStream {
        if site.mixture {
            return self.mixture_term(site);
        }
        if site.dist.vector_event {
            return self.vector_term(site);
        }
        if site.dist.event {
            return self.event_term(site);
        }
        if site.dist.joint {
            return self.joint_term(site);
        }
        self.elementwise_term(site)
    }

    /// A distribution over vectors: values and vector parameters as (particles, M, K);
    /// matrices as (K, K).
    fn vector_term(&mut self, site: &Site) -> TokenStream {
        let dist = format_ident!("{}", site.dist.name);
        let dims = &site.shape.0;
        let m: Vec<TokenStream> = dims[..dims.len() - 1].iter().map(dim_usize).collect();
        let k = dim_usize(dims.last().expect("checked: a component axis"));
        let events = quote!(&(__s, 1usize #(* #m)*, #k));
        let value = self.take_as(site.value, &site.shape, true);
        let args: Vec<TokenStream> = site
            .args
            .iter()
            .zip(site.parametrization.params)
            .map(|(&a, p)| {
                if p.constraint == crate::catalogue::Constraint::LowerTriangular {
                    let t = self.take(a);
                    quote!(#t.reshape_like(&(#k, #k)))
                } else if self.ir.nodes[a].constant {
                    let c = self.take(a);
                    quote!(::ravi::__private::ops::filled_like(&__events, #c))
                } else {
                    let t = self.take_as(a, &site.shape, true);
                    quote!(#t.reshape_like(#events))
                }
            })
            .collect();
        if logit_space(site) {
            return self.concrete_term(site, &events, &value, &args);
        }
        let lp = quote!({
            let __events = #value.reshape_like(#events);
            ::ravi::dist::#dist::log_prob_events(__events.retaped::<__T>(), #(#args),*) + __events.sum::<(usize,), ::ravi::__private::Axes2<1, 2>>() * 0.0
        });
        self.site_entry(site, lp)
    }

    /// A concrete (relaxed one-hot) latent, scored from log y in `__logy{k}`.
    fn concrete_term(
        &mut self,
        site: &Site,
        events: &TokenStream,
        value: &TokenStream,
        args: &[TokenStream],
    ) -> TokenStream {
        let dist = format_ident!("{}", site.dist.name);
        let name = &site.name;
        let logy = format_ident!(
            "__logy{}",
            self.ir.latent_index(name).expect("a latent site")
        );
        // `__events` is what constant arguments are filled like; its tape (the
        // guide's draw) joins through the zero term.
        // Scored from log y; the value y joins with weight 0, so that its tape
        // (the exp, through which the model's other uses reach log y) is kept.
        let per_event = quote!({
            let __events = #logy.reshape_like(#events);
            let __kept = #value.reshape_like(#events).sum::<(usize, usize), ::ravi::__private::Axis<2>>() * 0.0;
            ::ravi::dist::#dist::log_prob_alr_events(__events.retaped::<__T>(), #(#args),*)
                + __events.sum::<(usize, usize), ::ravi::__private::Axis<2>>() * 0.0
                + __kept
        });
        if self.per_row {
            return quote!((#name, ::core::option::Option::Some({
                let __pe = #per_event;
                let __m = __pe.shape().1;
                __pe.reshape_like(&(__s, __n, __m / __n.max(1))).sum::<(usize, usize), ::ravi::__private::Axis<2>>()
            })));
        }
        self.site_entry(
            site,
            quote!(#per_event.sum::<(usize,), ::ravi::__private::Axis<1>>()),
        )
    }

    /// A categorical: values flattened to (M,), parameters to (particles, M, K).
    fn event_term(&mut self, site: &Site) -> TokenStream {
        let dist = format_ident!("{}", site.dist.name);
        let value = self.take(site.value);
        let m: Vec<TokenStream> = site.shape.0.iter().map(dim_usize).collect();
        let args: Vec<TokenStream> = site
            .args
            .iter()
            .map(|&a| {
                let k = self.ir.nodes[a]
                    .shape
                    .0
                    .last()
                    .expect("checked: a category axis")
                    .clone();
                let mut full = site.shape.clone();
                full.0.push(k.clone());
                let t = self.take_as(a, &full, true);
                let k = dim_usize(&k);
                quote!(#t.reshape_like(&(__s, 1usize #(* #m)*, #k)))
            })
            .collect();
        let value = quote!(#value.reshape_like(&(1usize #(* #m)*,)));
        if self.per_row {
            // per value, then summed over each row's values: (particles, rows)
            let name = &site.name;
            if site.shape.0.first() != Some(&Dim::Rows) {
                return quote!((#name, ::core::option::Option::None));
            }
            let per_value = format_ident!("log_prob_values{}", site.parametrization.suffix);
            return quote!((#name, ::core::option::Option::Some({
                let __pv = ::ravi::dist::#dist::#per_value(#value, #(#args),*);
                let __m = __pv.shape().1;
                __pv.reshape_like(&(__s, __n, __m / __n.max(1))).sum::<(usize, usize), ::ravi::__private::Axis<2>>()
            })));
        }
        let log_prob = format_ident!("log_prob_events{}", site.parametrization.suffix);
        let lp = quote!(::ravi::dist::#dist::#log_prob(#value, #(#args),*));
        self.site_entry(site, lp)
    }

    /// A mixture: each component's log density at the value, (particles, M, K), the value
    /// broadcast along the components, then log Σ_k softmax(logits)_k p_k per value.
    fn mixture_term(&mut self, site: &Site) -> TokenStream {
        let dist = format_ident!("{}", site.dist.name);
        let log_prob = format_ident!("log_prob{}", site.parametrization.suffix);
        let (k, full) = self.components(site);
        let m: Vec<TokenStream> = site.shape.0.iter().map(dim_usize).collect();
        let kk = dim_usize(&k);
        let events = quote!((__s, 1usize #(* #m)*, #kk));
        let value = self.take(site.value);
        let value = quote!(#value.reshape_like(&(1usize #(* #m)*,))
            .broadcast_like::<(usize, usize, usize), ::ravi::__private::Axes2<0, 2>>(&#events)
            .retaped::<__T>());
        let logits = {
            let t = self.take_as(site.args[0], &full, true);
            quote!(#t.reshape_like(&#events))
        };
        let args: Vec<TokenStream> = site.args[1..]
            .iter()
            .map(|&a| {
                if self.ir.nodes[a].constant {
                    let c = self.take(a);
                    quote!(::ravi::dist::Arg::Scalar(#c))
                } else {
                    let t = self.take_as(a, &full, true);
                    quote!(::ravi::dist::Arg::Tensor(#t.reshape_like(&#events)))
                }
            })
            .collect();
        let per_value = quote!(::ravi::dist::mixture_log_prob(
            ::ravi::dist::#dist::#log_prob(#value, #(#args),*),
            #logits,
        ));
        if self.per_row {
            let name = &site.name;
            if site.shape.0 != [Dim::Rows] {
                return quote!((#name, ::core::option::Option::None));
            }
            return quote!((#name, ::core::option::Option::Some(#per_value)));
        }
        let summed = quote!(#per_value.sum::<(usize,), ::ravi::__private::Axis<1>>());
        self.site_entry(site, summed)
    }

    /// A density of the whole site: its values as (particles, M).
    fn joint_term(&mut self, site: &Site) -> TokenStream {
        let dist = format_ident!("{}", site.dist.name);
        let value = self.take_as(site.value, &site.shape, true);
        let numel = site.shape.0.iter().map(dim_usize);
        let args: Vec<TokenStream> = site.args.iter().map(|&a| self.take(a)).collect();
        let lp = quote!(::ravi::dist::#dist::log_prob_joint(
            #value.reshape_like(&(__s, 1usize #(* #numel)*)), #(#args),*));
        self.site_entry(site, lp)
    }

    /// An elementwise density, its arguments numbers or tensors of the site's shape.
    fn elementwise_term(&mut self, site: &Site) -> TokenStream {
        let dist = format_ident!("{}", site.dist.name);
        let (value, log_prob) = if logit_space(site) && site.dist.logit_space {
            let k = self.ir.latent_index(&site.name).expect("a latent site");
            // Scored through its logit; the value σ(u) joins with weight 0, so that its
            // tape (the sigmoid, through which the model's other uses reach u) is kept.
            let value = self.take_as(site.value, &site.shape, true);
            let uk = format_ident!("__logit{}", k);
            (
                quote!(#uk + #value * 0.0),
                format_ident!("log_prob_logit_space"),
            )
        } else {
            let value = self.take_as(site.value, &site.shape, true);
            (
                value,
                format_ident!("log_prob{}", site.parametrization.suffix),
            )
        };
        let args: Vec<TokenStream> = site
            .args
            .iter()
            .map(|&a| {
                if self.ir.nodes[a].constant {
                    let c = self.take(a);
                    quote!(::ravi::dist::Arg::Scalar(#c))
                } else {
                    let t = self.take_as(a, &site.shape, true);
                    quote!(::ravi::dist::Arg::Tensor(#t))
                }
            })
            .collect();
        let lp = quote!(::ravi::dist::#dist::#log_prob(#value, #(#args),*));
        let rank = site.shape.rank();
        if self.per_row {
            return self.rows_term(site, lp);
        }
        let summed = if rank == 0 {
            lp
        } else {
            let ax = axes(&(1..=rank).collect::<Vec<_>>());
            quote!(#lp.sum::<(usize,), #ax>())
        };
        self.site_entry(site, summed)
    }

    /// An elementwise site's term in `log_joint_rows`: Σ over the axes after the rows,
    /// (particles, rows); `None` for a site not over the rows or mapped onto its support.
    fn rows_term(&self, site: &Site, lp: TokenStream) -> TokenStream {
        let rank = site.shape.rank();
        let name = &site.name;
        let k = self.ir.latent_index(&site.name);
        let mapped = k.is_some_and(|k| self.log_dets.contains(&k));
        if site.shape.0.first() != Some(&Dim::Rows) || mapped {
            return quote!((#name, ::core::option::Option::None));
        }
        let rows = if rank == 1 {
            lp
        } else {
            let ax = axes(&(2..=rank).collect::<Vec<_>>());
            quote!(#lp.sum::<(usize, usize), #ax>())
        };
        quote!((#name, ::core::option::Option::Some(#rows)))
    }

    /// A site's distribution parameters as `(particles, values)` tensors, for the
    /// predictive (observed sites) and the prior predictive (latent sites): elementwise
    /// parameters one value per element, a categorical's logits K per element; densities
    /// of whole sites or vectors give none.
    pub(super) fn site_args(&mut self, site: &Site) -> TokenStream {
        let name = &site.name;
        let numel: Vec<TokenStream> = site.shape.0.iter().map(dim_usize).collect();
        if site.mixture {
            return self.mixture_args(site);
        }
        let args: Vec<TokenStream> = if site.dist.joint || site.dist.vector_event {
            Vec::new()
        } else {
            site.args
                .iter()
                .map(|&a| {
                    let node = self.ir.nodes[a].clone();
                    if node.constant {
                        let c = self.take(a);
                        quote!(::ravi::__private::ops::constant_particles(__batch.carrier(), __s, 1usize #(* #numel)*, #c))
                    } else if site.dist.event {
                        let k = node.shape.0.last().expect("checked: a category axis").clone();
                        let mut full = site.shape.clone();
                        full.0.push(k.clone());
                        let t = self.take_as(a, &full, true);
                        let k = dim_usize(&k);
                        quote!(#t.reshape_like(&(__s, 1usize #(* #numel)* * #k)))
                    } else {
                        let t = self.take_as(a, &site.shape, true);
                        quote!(#t.reshape_like(&(__s, 1usize #(* #numel)*)))
                    }
                })
                .collect()
        };
        let dist = format_ident!("{}", site.dist.name);
        let index = lit_usize(site.dist.index_of(site.parametrization));
        let moments = quote!(<::ravi::dist::#dist as ::ravi::dist::Distribution>::PARAMETRIZATIONS[#index].moments);
        let predicts = if site.dist.event {
            let k = site
                .args
                .first()
                .and_then(|&a| self.ir.nodes[a].shape.0.last().cloned());
            let k = k.map_or(quote!(1usize), |k| dim_usize(&k));
            quote!(::ravi::Predicts::Classes(#k))
        } else if site.dist.joint || site.dist.vector_event {
            quote!(::ravi::Predicts::Nothing)
        } else if site.dist.support == Constraint::Boolean {
            quote!(match #moments { ::core::option::Option::Some(m) => ::ravi::Predicts::Binary(m), ::core::option::Option::None => ::ravi::Predicts::Nothing })
        } else {
            quote!(match #moments { ::core::option::Option::Some(m) => ::ravi::Predicts::Moments(m), ::core::option::Option::None => ::ravi::Predicts::Nothing })
        };
        quote!(::ravi::ObservedArgs { site: #name, predicts: #predicts, args: ::std::vec![#(#args),*] })
    }

    /// A mixture's component axis K (the last axis of its logits) and the shape of its
    /// per-component arguments, the site's with K appended.
    fn components(&self, site: &Site) -> (Dim, Shape) {
        let k = self.ir.nodes[site.args[0]]
            .shape
            .0
            .last()
            .expect("checked: a component axis")
            .clone();
        let mut full = site.shape.clone();
        full.0.push(k.clone());
        (k, full)
    }

    /// A mixture's logits and component arguments, K values per value, and its moments.
    fn mixture_args(&mut self, site: &Site) -> TokenStream {
        let name = &site.name;
        let (k, full) = self.components(site);
        let numel: Vec<TokenStream> = full.0.iter().map(dim_usize).collect();
        let args: Vec<TokenStream> = site
            .args
            .iter()
            .map(|&a| {
                if self.ir.nodes[a].constant {
                    let c = self.take(a);
                    quote!(::ravi::__private::ops::constant_particles(__batch.carrier(), __s, 1usize #(* #numel)*, #c))
                } else {
                    let t = self.take_as(a, &full, true);
                    quote!(#t.reshape_like(&(__s, 1usize #(* #numel)*)))
                }
            })
            .collect();
        let dist = format_ident!("{}", site.dist.name);
        let index = lit_usize(site.dist.index_of(site.parametrization));
        let kk = dim_usize(&k);
        quote!(::ravi::ObservedArgs {
            site: #name,
            predicts: match <::ravi::dist::#dist as ::ravi::dist::Distribution>::PARAMETRIZATIONS[#index].moments {
                ::core::option::Option::Some(m) => ::ravi::Predicts::Mixture(m, #kk),
                ::core::option::Option::None => ::ravi::Predicts::Nothing,
            },
            args: ::std::vec![#(#args),*],
        })
    }

    /// `(name, term)` of a `factor`: its value summed per particle, scaled like an observed
    /// site's when it has a value per data row (a minibatch stands for all rows).
    pub(super) fn factor_term(&mut self, f: &NamedValue) -> TokenStream {
        let name = &f.name;
        let rank = f.shape.rank();
        if self.per_row {
            // a factor with a value per data row splits by rows like an observed site
            if f.shape.0.first() != Some(&Dim::Rows) {
                return quote!((#name, ::core::option::Option::None));
            }
            let value = self.take_as(f.value, &f.shape, true);
            let rows = match rank {
                1 => value,
                _ => {
                    let ax = axes(&(2..=rank).collect::<Vec<_>>());
                    quote!(#value.sum::<(usize, usize), #ax>())
                }
            };
            return quote!((#name, ::core::option::Option::Some(#rows)));
        }
        let value = self.take_as(f.value, &f.shape, true);
        let summed = if rank == 0 {
            value
        } else {
            let ax = axes(&(1..=rank).collect::<Vec<_>>());
            quote!(#value.sum::<(usize,), #ax>())
        };
        if f.shape.has_rows() {
            quote!((#name, #summed * __scale))
        } else {
            quote!((#name, #summed))
        }
    }

    /// `(name, term)` of a site: scaled if observed or local, plus the log-det if mapped.
    /// In `log_joint_rows`, a site the per-row path did not split: `(name, None)`.
    fn site_entry(&mut self, site: &Site, summed: TokenStream) -> TokenStream {
        let name = &site.name;
        if self.per_row {
            return quote!((#name, ::core::option::Option::None));
        }
        match site.observed {
            Some(_) => quote!((#name, #summed * __scale)),
            None => {
                let k = self.ir.latent_index(&site.name).expect("a latent site");
                let term = if self.log_dets.contains(&k) {
                    let ldj = format_ident!("__log_det{}", k);
                    quote!(#summed + #ldj)
                } else {
                    summed
                };
                if site.is_local() {
                    quote!((#name, (#term) * __scale))
                } else {
                    quote!((#name, #term))
                }
            }
        }
    }
}
