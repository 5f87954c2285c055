//! Guide blocks against their (already lowered) model: every latent site covered exactly
//! once, only latent sites, families and their arguments from the catalogue.
//!
//! The files by sub-job: `cover` (which latent sites each line covers, and the sites a
//! rewrite may take), `params` (the guide's `param`s), `family_args` (a family's arguments
//! and flow layers), `program` (guide-program lines) and `amortized` (encoders of rows).

use crate::ast::{self, number};
use crate::catalogue;
use crate::diagnostic::{Diagnostic, Span};
use crate::ir::*;

mod amortized;
mod cover;
mod family_args;
mod params;
mod program;

use amortized::amortized_entry;
use cover::{check_all_covered, check_rewrite, cover_sites};
use family_args::family_args;
use params::{check_params_used, lower_params};
use program::program_site;

/// What a guide's lines lower to, and which latent sites they have covered so far.
struct Lines {
    covered: Vec<Option<Span>>,
    entries: Vec<GuideEntryIr>,
    programs: Vec<ProgramSiteIr>,
    amortized: Vec<AmortizedIr>,
    local_mean_field: Vec<usize>,
}

/// Checks a guide against its (already lowered) model.
pub fn lower_guide(g: &ast::GuideDef, model: &ModelIr) -> Result<GuideIr, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut covered: Vec<Option<Span>> = vec![None; model.latents().count()];
    let params = lower_params(g, model, &mut errors);
    // A model's `param`s are held as points by every guide.
    for (i, s) in model.latents() {
        if s.param.is_some() {
            covered[i] = Some(s.span.clone());
        }
    }
    let mut lines = Lines {
        covered,
        entries: Vec::new(),
        programs: Vec::new(),
        amortized: Vec::new(),
        local_mean_field: Vec::new(),
    };
    for entry in &g.entries {
        lines.entry(g, model, &params, entry, &mut errors);
    }
    check_params_used(g, &params, &lines.programs, &mut errors);
    check_all_covered(g, model, &lines.covered, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(GuideIr {
        name: g.name.name.clone(),
        docs: g.docs.clone(),
        model: model.name.clone(),
        params,
        entries: lines.entries,
        programs: lines.programs,
        amortized: lines.amortized,
        local_mean_field: lines.local_mean_field,
        span: g.span.clone(),
    })
}

impl Lines {
    /// One line of the guide: an encoder, per-row parameters of a local site, a family
    /// entry or a program line, its sites covered.
    fn entry(
        &mut self,
        g: &ast::GuideDef,
        model: &ModelIr,
        params: &[ParamIr],
        entry: &ast::GuideEntry,
        errors: &mut Vec<Diagnostic>,
    ) {
        let name = &entry.family.name.name;
        if names_model_param(model, entry, errors) {
            return;
        }
        if name == "Amortized" {
            let sites = cover_sites(g, model, entry, &mut self.covered, errors);
            if let Some(a) = amortized_entry(model, entry, &sites, errors) {
                self.amortized.push(a);
            }
            return;
        }
        // A local site under MeanField: parameters per data row.
        if name == "MeanField"
            && entry.family.args.is_empty()
            && entry.sites.len() == 1
            && model
                .sites
                .iter()
                .any(|t| t.name == entry.sites[0].name && t.is_local())
        {
            let sites = cover_sites(g, model, entry, &mut self.covered, errors);
            self.local_mean_field.extend(sites);
            return;
        }
        if local_site_misplaced(model, entry, errors) {
            return;
        }
        let family = catalogue::family(name);
        let dist = catalogue::distribution(name);
        if family.is_none() && dist.is_none() {
            unknown_family(entry, errors);
            return;
        }
        let sites = cover_sites(g, model, entry, &mut self.covered, errors);
        match (family, dist) {
            (Some(spec), _) => {
                let args = family_args(spec, &entry.family, errors);
                if spec.rewrite.is_some() {
                    check_rewrite(model, spec.name, entry, &sites, errors);
                }
                self.entries.push(GuideEntryIr {
                    family: spec,
                    args,
                    sites,
                    span: entry.span.clone(),
                });
            }
            (None, Some(dist)) => {
                if let Some(p) = program_site(model, params, entry, dist, &sites, errors) {
                    self.programs.push(p);
                }
            }
            (None, None) => unreachable!("handled above"),
        }
    }
}

/// Does the line name a model `param` (held as a point by every guide)? Reports it.
fn names_model_param(
    model: &ModelIr,
    entry: &ast::GuideEntry,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    let Some(s) = entry.sites.iter().find(|s| {
        model
            .sites
            .iter()
            .any(|t| t.name == s.name && t.param.is_some())
    }) else {
        return false;
    };
    errors.push(Diagnostic::new(
        s.span.clone(),
        format!(
            "`{}` is a `param` of model {}: a point the fit learns, not a site a guide draws; leave it out of the guide",
            s.name, model.name
        ),
    ));
    true
}

/// Does the line give a local site a family that draws global sites? Reports it. (A guide
/// program's line may draw a local site, from nets of the rows.)
fn local_site_misplaced(
    model: &ModelIr,
    entry: &ast::GuideEntry,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    let name = &entry.family.name.name;
    let program = catalogue::family(name).is_none() && catalogue::distribution(name).is_some();
    let Some(s) = entry
        .sites
        .iter()
        .find(|s| !program && model.sites.iter().any(|t| t.name == s.name && t.is_local()))
    else {
        return false;
    };
    errors.push(Diagnostic::new(
        s.span.clone(),
        format!(
            "`{}` is a local site (one value per data row): give it an encoder of the rows, `{} ~ Amortized(Encoder(x));`, a guide program (`{} ~ Normal(Loc(x; a), softplus(Scale(x; b)));`), or parameters per row, `{} ~ MeanField;`, on a line of its own",
            s.name, s.name, s.name, s.name
        ),
    ));
    true
}

/// Reports a line's family that is neither a guide family nor a distribution.
fn unknown_family(entry: &ast::GuideEntry, errors: &mut Vec<Diagnostic>) {
    let name = &entry.family.name.name;
    let known = catalogue::FAMILIES
        .iter()
        .map(|f| f.name)
        .chain(["Amortized"]);
    let hint = catalogue::suggest(name, known.clone())
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_else(|| format!(" (known: {})", known.collect::<Vec<_>>().join(", ")));
    errors.push(Diagnostic::new(
        entry.family.name.span.clone(),
        format!("unknown guide family `{name}`{hint}"),
    ));
}

/// Values per row of a shape `[N, ..]` whose other sizes are numbers (`None` otherwise).
fn row_numel(shape: &Shape) -> Option<usize> {
    shape
        .0
        .iter()
        .skip(1)
        .map(|d| match d {
            Dim::Lit(k) => Some(*k),
            _ => None,
        })
        .product()
}
