//! The flags `vae_digits` and `vae_mnist` share (clap, flattened into each one's own).

use clap::Args;

/// Flags common to both VAE examples.
#[derive(Args, Debug)]
pub struct VaeFlags {
    /// The device to fit on (cuda needs `--features cuda`).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    pub device: String,
    /// The latent variables: Normal (gaussian), binary concrete (relaxed-bernoulli) or
    /// Gumbel-softmax (concrete) ones.
    #[arg(long, default_value = "gaussian", value_parser = ["gaussian", "relaxed-bernoulli", "concrete"])]
    pub latent: String,
    /// Seed of the fit's draws and minibatch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Draws of the latents per row and step.
    #[arg(long, default_value_t = 1)]
    pub particles: usize,
    /// Rows per minibatch.
    #[arg(long, default_value_t = 128, value_parser = at_least_one)]
    pub batch: usize,
    /// Relaxation temperature at the first step (relaxed latents).
    #[arg(long, default_value_t = 1.0)]
    pub tau_start: f32,
    /// Print the figures as one line of JSON.
    #[arg(long)]
    pub json: bool,
}

/// A count of at least 1 (for a flag's `value_parser`).
pub fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
