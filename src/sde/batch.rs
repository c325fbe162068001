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
    /// then not available on the lockstep driver).
    fn has_milstein_block(&self) -> bool {
        false
    }
    /// The Milstein derivative term of a one-dimensional SDE with scalar noise, per path:
    /// `out[p] = (L¹b)(t, x_p) = b′(x_p) b(x_p)`, evaluated as the per-path route does
    /// (`Sde::diffusion_derivative(t, x, b(t, x)·1, 1)`).
    /// Called only when [`BatchSde::has_milstein_block`]; the default writes nothing.
    ///
    /// # Errors
    /// Whatever the evaluation reports.
    fn milstein_block(&self, _t: f64, _x: &[f64], _out: &mut [f64]) -> Result<()> {
        Ok(())
    }
}

/// Numbers per path that [`BatchSde::diffusion_block`] writes.
pub fn diffusion_width(noise: Noise, dim: usize, noise_dim: usize) -> usize {
    match noise {
        Noise::Diagonal => dim,
        _ => dim * noise_dim,
    }
}
