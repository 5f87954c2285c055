//! Devices: everything in ravi is generic over dfdx's device, `Cpu` by default and `Cuda`
//! under the cargo feature `cuda`; the same model code runs on both.

pub use dfdx::tensor::Cpu;
#[cfg(feature = "cuda")]
pub use dfdx::tensor::Cuda;

/// A dfdx device ravi can run on. The seed fixes every random draw made on it (dfdx draws
/// on the CPU and copies to the GPU, so a seed means the same noise on both).
pub trait Backend:
    dfdx::tensor_ops::Device<f32> + dfdx::tensor::TensorToArray<(), f32, Array = f32> + Clone + 'static
{
    /// A fresh device whose random numbers are seeded.
    fn seeded(seed: u64) -> Self;
    /// `"cpu"` or `"cuda"`, for reports.
    fn name() -> &'static str;
}

impl Backend for Cpu {
    fn seeded(seed: u64) -> Self {
        dfdx::tensor::Cpu::seed_from_u64(seed)
    }
    fn name() -> &'static str {
        "cpu"
    }
}

#[cfg(feature = "cuda")]
impl Backend for Cuda {
    fn seeded(seed: u64) -> Self {
        dfdx::tensor::Cuda::seed_from_u64(seed)
    }
    fn name() -> &'static str {
        "cuda"
    }
}

/// A gradient tape on device `D`: `OwnedTape` when fitting, `NoneTape` when only evaluating.
/// Generated code is generic over it, so one compiled model serves both.
pub trait Tape<D: Backend>: dfdx::tensor::Tape<f32, D> {}
impl<D: Backend, T: dfdx::tensor::Tape<f32, D>> Tape<D> for T {}
