//! The guide's side of the host engine: the engine's program for the model and guide, and
//! the parameters of each Gaussian entry, or why the engine does not run them.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::*;

/// The host engine's side of a guide: the program's table and the `Guide` functions.
pub(super) struct HostProgram {
    /// `const __PROGRAM: &'static Program = &Program { .. };`, an associated const of the
    /// guide's inherent impl (nothing where the engine does not run the guide). Not a
    /// `static` in `host_program`: the program of a model with size parameters names them
    /// (`Dim::Fixed(D)`), and an item inside a function cannot name its impl's generics.
    pub(super) table: TokenStream,
    /// `Guide::host_program` and `Guide::host_gaussians`.
    pub(super) fns: TokenStream,
}

/// The guide's side of the host engine (`Guide::host_program`, `Guide::host_gaussians`,
/// `Guide::host_points`, `Guide::host_encoders`): the engine's program and the parameters
/// of each Gaussian entry, in the order the guide draws them (its families, then its
/// program lines), of each model `param` held as a point (`deltas`) and each encoder
/// (`encoders`), or why the engine does not run it.
pub(super) fn host_program(
    ir: &GuideIr,
    model: &ModelIr,
    fields: &[proc_macro2::Ident],
    families: &[TokenStream],
    param_fields: &[proc_macro2::Ident],
    (deltas, encoders): (&[proc_macro2::Ident], &[proc_macro2::Ident]),
) -> HostProgram {
    let model_only = model_program(ir, model);
    let program = match crate::fused::program(model, ir) {
        Ok(program) => program,
        Err(reason) => {
            let HostProgram { table, fns } = model_only;
            return HostProgram {
                table,
                fns: quote! {
                    fn host_program() -> ::core::result::Result<&'static ::ravi::program::Program, &'static str> {
                        ::core::result::Result::Err(#reason)
                    }
                    #fns
                },
            };
        }
    };
    let families = fields
        .iter()
        .zip(families)
        .map(|(f, fam)| quote!(<#fam as ::ravi::GuideFamily<__D>>::host_gaussian(&self.#f)));
    let lines = ir.programs.iter().map(|p| match p.args[..] {
        [ProgramArg::Param(l), ProgramArg::Param(s)] => {
            let (l, s) = (&param_fields[l], &param_fields[s]);
            quote!(::core::option::Option::Some(::ravi::HostGaussian::mean_field(self.#l, self.#s)))
        }
        _ => unreachable!("checked by the program's coverage"),
    });
    let HostProgram {
        table: model_table,
        fns: model_fns,
    } = model_only;
    HostProgram {
        table: quote! {
            const __PROGRAM: &'static ::ravi::program::Program = &#program;
            #model_table
        },
        fns: quote! {
            #model_fns
            fn host_program() -> ::core::result::Result<&'static ::ravi::program::Program, &'static str> {
                ::core::result::Result::Ok(Self::__PROGRAM)
            }
            fn host_gaussians(&self) -> ::core::option::Option<::std::vec::Vec<::ravi::HostGaussian>> {
                [#(#families,)* #(#lines),*].into_iter().collect()
            }
            fn host_points(&self) -> ::std::vec::Vec<::ravi::ParamId> {
                ::std::vec![#(self.#deltas.param()),*]
            }
            fn host_encoders(&self) -> ::std::vec::Vec<::ravi::ParamId> {
                ::std::vec![#(self.#encoders.encoder()),*]
            }
        },
    }
}

/// `Guide::host_model_program`: the model's side of the engine alone, where the engine runs
/// the model but not (all of) the guide; nothing where it does not run the model (the
/// trait's default says so).
fn model_program(ir: &GuideIr, model: &ModelIr) -> HostProgram {
    match crate::fused::model_program(model, ir) {
        Ok(program) => HostProgram {
            table: quote! {
                const __MODEL_PROGRAM: &'static ::ravi::program::Program = &#program;
            },
            fns: quote! {
                fn host_model_program() -> ::core::option::Option<&'static ::ravi::program::Program> {
                    ::core::option::Option::Some(Self::__MODEL_PROGRAM)
                }
            },
        },
        Err(_) => HostProgram {
            table: quote!(),
            fns: quote!(),
        },
    }
}
