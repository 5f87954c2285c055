//! Nets described for run time: the layers of the guides' encoders and the Glorot blocks
//! a fit starts a net's weights from.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::{Activation, NetIr, NetLayer};

/// A net of Linear layers and activations as `&[::ravi::nn::Layer]`, run at run time by
/// the guides that read the data's rows (encoders, guide programs' nets).
pub(super) fn runtime_layers(net: &NetIr) -> TokenStream {
    let layers = net.layers.iter().map(|l| match *l {
        NetLayer::Linear { inputs, outputs } => {
            quote!(::ravi::nn::Layer::Linear { inputs: #inputs, outputs: #outputs })
        }
        NetLayer::Activation(Activation::Relu) => quote!(::ravi::nn::Layer::Relu),
        NetLayer::Activation(Activation::Tanh) => quote!(::ravi::nn::Layer::Tanh),
        NetLayer::Activation(Activation::Sigmoid) => quote!(::ravi::nn::Layer::Sigmoid),
        NetLayer::Activation(Activation::Softplus) => quote!(::ravi::nn::Layer::Softplus),
        _ => unreachable!("checked: a net on the data's rows has Linear layers and activations"),
    });
    quote!(&[#(#layers),*])
}

/// The Glorot blocks of a net's weight vector (or of its `layer`-th weighted layer).
pub(super) fn init_blocks(net: &NetIr, layer: Option<usize>) -> Vec<TokenStream> {
    net.layers
        .iter()
        .filter(|l| l.num_params() > 0)
        .enumerate()
        .filter(|(i, _)| layer.is_none_or(|k| k == *i))
        .map(|(_, l)| {
            let (fan_in, fan_out, weights, bias) = match *l {
                NetLayer::Linear { inputs, outputs } => (inputs, outputs, inputs * outputs, outputs),
                NetLayer::Conv2d { inputs, outputs, kernel, .. } => (
                    inputs * kernel * kernel,
                    outputs * kernel * kernel,
                    outputs * inputs * kernel * kernel,
                    outputs,
                ),
                _ => (0, 0, 0, 0),
            };
            quote!(::ravi::InitBlock { fan_in: #fan_in, fan_out: #fan_out, weights: #weights, bias: #bias })
        })
        .collect()
}
