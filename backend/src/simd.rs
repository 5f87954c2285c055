//! Kernels compiled twice, for the baseline and for AVX2, and chosen at run time: the host
//! engine's loops and the stdlib's hot densities use it.

/// Whether the processor runs AVX2 (checked once).
#[cfg(target_arch = "x86_64")]
pub fn avx2() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| std::arch::is_x86_feature_detected!("avx2"))
}

/// `simd_dispatch!(name, name_avx2, body, (args) -> ret)` defines `pub(crate) fn name`,
/// which calls `body` compiled for AVX2 where the processor has it, else as built. `body`
/// should be `#[inline(always)]`, so that each copy is compiled for its target.
#[macro_export]
macro_rules! simd_dispatch {
    ($name:ident, $avx2:ident, $body:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::avx2() {
                // SAFETY: the processor has AVX2 (checked at run time).
                return unsafe { $avx2($($arg),*) };
            }
            $body($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx2($($arg: $ty),*) -> $ret {
            $body($($arg),*)
        }
    };
}
