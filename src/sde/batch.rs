//! Block evaluation of an SDE's coefficients: [`BatchSde`] evaluates `a` and `b` on a
//! block of `P` states at once (THEORY §8, the coefficients of `dX = a dt + b dW`), the
//! capability the lockstep ensemble driver ([`crate::ensemble::lockstep`]) runs on.
//!
//! An [`super::Sde`] that also implements [`BatchSde`] with the *same arithmetic* (the same
//! operations in the same order, per path) says so through [`super::Sde::batch`]; ensembles
//! ([`crate::ensemble::SdeProblem`]) then advance its paths in lockstep SIMD lane groups
//! by themselves, with the per-path route's numbers bit for bit. The reference problems
//! ([`super::reference`]: GBM, Ornstein–Uhlenbeck, the non-commutative problem) do.

use super::{Noise, Sde};
use crate::error::Result;
use crate::simd::{Kernel, Vectorised};

/// An SDE `dX = a(t, X) dt + b(t, X) dW` whose coefficients are evaluated on a block of
/// states at once.
///
/// Layout: a block of `P` states is `x[p·d + i]`. [`BatchSde::drift_block`] writes
/// `a(t, x_p)` in the same layout. [`BatchSde::diffusion_block`] writes, per path, the
/// diagonal `b_i` (`d` numbers) for [`Noise::Diagonal`], and the matrix `b_{ij}` row-major
/// (`d × m` numbers, `b[p·d·m + i·m + j]`) for every other noise kind (scalar noise:
/// `m = 1`, one column). The dimensions and the declared structure are the [`Sde`]'s.
pub trait BatchSde: Sde + Sync {
    /// Drift of every state of the block.
    ///
    /// # Errors
    /// Whatever the evaluation reports (e.g. a failing user callback).
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()>;
    /// Diffusion of every state of the block, in the layout of the trait docs.
    ///
    /// # Errors
    /// Whatever the evaluation reports.
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()>;
    /// Whether [`BatchSde::milstein_block`] is provided (default `false`: Milstein is
    /// then available on the lockstep driver for additive noise only).
    fn has_milstein_block(&self) -> bool {
        false
    }
    /// The Milstein derivative terms along `c`, per path: for path `p` with state
    /// `x_p = x[p·d..(p+1)·d]` and direction `c_p = c[p·m..(p+1)·m]`,
    /// `out[p·d + i] = (∂b[b(x_p) c_p] c_p)_i`, the `d` numbers that
    /// [`Sde::diffusion_derivative`]`(t, x_p, v, c_p)`
    /// writes with `v = `[`Sde::diffusion_apply`]`(t, x_p,
    /// c_p)`, with the same arithmetic (THEORY §8, the terms `L^j b_k` of Milstein).
    ///
    /// The lockstep Milstein ([`crate::ensemble::lockstep`]) calls it as the per-path
    /// [`crate::scheme::Milstein`] calls `diffusion_derivative`: for [`Noise::Scalar`]
    /// (`m = 1`, any `d`) once with `c = 1` (`∂b[b]·1 = L¹b`); for [`Noise::Diagonal`]
    /// (`m = d`) twice, with `c = ΔW` and with `c = 1` (every entry one). Examples:
    /// one-dimensional GBM `b = s·x` writes `s·((s·x)·c)·c`; a diagonal
    /// `b_i = g_i(x_i)` writes `g_i′(x_i)·(g_i(x_i)·c_i)·c_i` in the order its
    /// `diffusion_derivative` multiplies. Called only when
    /// [`BatchSde::has_milstein_block`]; the default writes nothing.
    ///
    /// # Errors
    /// Whatever the evaluation reports.
    fn milstein_block(&self, _t: f64, _x: &[f64], _c: &[f64], _out: &mut [f64]) -> Result<()> {
        Ok(())
    }
}

/// `out[k] = f(x[k])` for every `k`, compiled for the detected instruction set (the
/// same numbers whichever runs: `f` is evaluated as written, lane by lane, no
/// fast-math): the loop of a simple [`BatchSde`] coefficient, eight paths per
/// instruction on AVX-512.
#[inline]
pub(crate) fn map_block<F: Fn(f64) -> f64>(kernel: Kernel, x: &[f64], out: &mut [f64], f: F) {
    struct Map<'a, F> {
        x: &'a [f64],
        out: &'a mut [f64],
        f: F,
    }
    impl<F: Fn(f64) -> f64> Vectorised for Map<'_, F> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            for (o, &x) in self.out.iter_mut().zip(self.x) {
                *o = (self.f)(x);
            }
        }
    }
    kernel.vectorised(Map { x, out, f });
}

/// `out[k] = f(x[k], c[k])` for every `k` (as [`map_block`]; e.g. a
/// [`BatchSde::milstein_block`] in the direction `c`).
#[inline]
pub(crate) fn zip_block<F: Fn(f64, f64) -> f64>(kernel: Kernel, x: &[f64], c: &[f64], out: &mut [f64], f: F) {
    struct Zip<'a, F> {
        x: &'a [f64],
        c: &'a [f64],
        out: &'a mut [f64],
        f: F,
    }
    impl<F: Fn(f64, f64) -> f64> Vectorised for Zip<'_, F> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            for ((o, &x), &c) in self.out.iter_mut().zip(self.x).zip(self.c) {
                *o = (self.f)(x, c);
            }
        }
    }
    kernel.vectorised(Zip { x, c, out, f });
}

/// Numbers per path that [`BatchSde::diffusion_block`] writes.
pub fn diffusion_width(noise: Noise, dim: usize, noise_dim: usize) -> usize {
    match noise {
        Noise::Diagonal => dim,
        _ => dim * noise_dim,
    }
}
