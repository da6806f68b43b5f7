//! Element-wise loops compiled for the widest vector unit the CPU has.
//!
//! Our crate builds for baseline x86-64, so a loop that vectorises gets 4-lane SSE. The
//! `widest_simd` macro compiles a loop three times (AVX-512, AVX2, baseline) and picks one
//! at run time. The choice never changes a result: the loops are plain IEEE adds,
//! multiplies, divides, min and max, which Rust never contracts into fused multiply-adds or
//! reorders, so every width computes the same operations on the same values in the same
//! order. The tests beside each kernel check that bit for bit on the machine they run on.

/// `fn $name(args) = $portable;` defines `$name` to call `$portable` (which must be
/// `#[inline(always)]`, so that it is compiled into each caller), from a copy compiled with
/// AVX-512F or AVX2 on x86-64 CPUs that have them.
macro_rules! widest_simd {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) = $portable:ident;) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: this CPU has AVX-512F, the only feature `avx512` assumes.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: this CPU has AVX2, the only feature `avx2` assumes.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }
    };
}

pub(super) use widest_simd;
