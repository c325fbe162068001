//! Run-time instruction-set dispatch for the SIMD kernels (the batched SGD-SDE's tile
//! products in `sgd::packed`, the lane normal generator in `rng::normal_simd`, the
//! per-path linear-regression pass).
//!
//! [`Kernel`] is detected once; [`Kernel::vectorised`] runs safe portable code compiled
//! for the detected instruction set. No kernel uses fast-math: whichever runs, the
//! numbers are the same bits (each SIMD kernel is tested bit-for-bit against the portable
//! path). The `unsafe` here is only the call of a `#[target_feature]` function after the
//! feature was detected.

/// The instruction set the SIMD kernels use (detected once; all give the same bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// 512-bit vectors: `MR / 8 × NR` accumulators in registers.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// The portable loop compiled for AVX2 + FMA.
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    /// The portable loop (`f64::mul_add`, correctly rounded everywhere).
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Kernel::Avx2Fma;
            }
        }
        Kernel::Portable
    }

    /// Every kernel this CPU can run, fastest first (for tests that compare them).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Kernel> {
        let mut all = vec![Kernel::detect()];
        #[cfg(target_arch = "x86_64")]
        if all[0] == Kernel::Avx512
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            all.push(Kernel::Avx2Fma);
        }
        if all[all.len() - 1] != Kernel::Portable {
            all.push(Kernel::Portable);
        }
        all
    }
}

impl Kernel {
    /// Runs `f` in a function compiled for this kernel's instruction set, so that its
    /// loops (inlined there: [`Vectorised::run`] is `#[inline(always)]`) are vectorised
    /// the same way (no fast-math: the same numbers whichever instruction set runs).
    #[inline]
    pub(crate) fn vectorised<F: Vectorised>(self, f: F) -> F::Output {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx512` is only constructed when AVX-512F is detected.
            Kernel::Avx512 => unsafe { with_avx512(f) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx2Fma` is only constructed when AVX2 and FMA are detected.
            Kernel::Avx2Fma => unsafe { with_avx2(f) },
            Kernel::Portable => f.run(),
        }
    }
}

/// Work to run under [`Kernel::vectorised`]; implement `run` with `#[inline(always)]` so
/// that it is compiled into the caller's instruction set (a closure would not be inlined).
pub(crate) trait Vectorised {
    /// What the work returns.
    type Output;
    /// Does the work.
    fn run(self) -> Self::Output;
}

/// Calls `f` compiled with AVX-512F (when inlined here).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn with_avx512<F: Vectorised>(f: F) -> F::Output {
    f.run()
}

/// Calls `f` compiled with AVX2 and FMA (when inlined here).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<F: Vectorised>(f: F) -> F::Output {
    f.run()
}
