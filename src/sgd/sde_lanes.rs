//! The population SGD-SDE on the lockstep route: `dθ = −∇L_γ(θ) dt + sqrt(η(t) c_B) D(θ) dW`
//! (THEORY §1) with the model's closed forms evaluated on a block of paths at once
//! ([`PopulationBlockForms`]), so that [`crate::ensemble::SdeProblem`] advances its paths
//! in SIMD lanes (THEORY §8: Euler–Maruyama, RK-Milstein — on general noise with each
//! path's Lévy areas, drawn per lane from the path's own `Levy` stream —, Milstein for
//! scalar noise — its derivative term per path by the per-path functions; Heun on a
//! Stratonovich reading)
//! with the per-path route's numbers bit for bit.
//!
//! **When it applies.** [`SgdSde::population`] of a model whose [`PopulationForms::block_forms`]
//! is `Some` (scalar factorisation, matrix factorisation, the normalised linear model for
//! `d ≤ 16`), with the first-order equation ([`ModifiedEquation::First`]); any learning-rate
//! schedule. A finite data set, the second-order equation or a model without block forms
//! run per path, as before.
//!
//! **Why the numbers agree.** Both routes evaluate the same per-path arithmetic:
//!
//! ```text
//! drift      a_i  = −(∂_i L(θ) + 2γ θ_i)                 (−∂_i L when γ = 0)
//! diffusion  b_ij = sqrt(η(t) c_B) · D_ij(θ)              (the model's scaled factor)
//!            (b ΔW)_i = b_i ΔW₀  |  b_i ΔW_i  |  Σ_j b_ij ΔW_j  (from 0.0, j in order)
//! ```
//!
//! the per-path route on a block of one ([`SgdSde::diffusion_apply`] forms `b` first and
//! then multiplies by `ΔW`, exactly what the lockstep driver does with
//! [`BatchSde::diffusion_block`]).

use super::config::ModifiedEquation;
use super::model::{Model, PopulationBlockForms};
use super::SgdSde;
use crate::error::{Error, Result};
use crate::sde::batch::diffusion_width;
use crate::sde::{BatchSde, DerivativeScratch, Noise, Sde, SdeExt};
use crate::simd::{Kernel, Vectorised};
use nalgebra::DVector;
use std::cell::RefCell;

/// Factor buffers up to this many numbers live on the stack on the per-path route.
const STACK_FACTOR: usize = 16;

thread_local! {
    /// The per-path route's factor buffer when it is wider than [`STACK_FACTOR`] (a pool
    /// of its own: the models' block forms use [`super::with_flat_scratch`] inside).
    static FACTOR: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a scratch slice of `len` values: on the stack when small, else from a
/// per-thread buffer reused without allocation (a nested call allocates).
#[inline(always)]
fn with_factor_buffer<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    if len <= STACK_FACTOR {
        return f(&mut [0.0; STACK_FACTOR][..len]);
    }
    FACTOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// `f` on every row of a block, compiled for the CPU's vectors ([`Kernel::vectorised`]).
struct Rows<'s, const D: usize, const W: usize, F> {
    theta: &'s [f64],
    out: &'s mut [f64],
    f: F,
}

impl<const D: usize, const W: usize, F: Fn(&[f64; D]) -> [f64; W]> Vectorised for Rows<'_, D, W, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (theta, _) = self.theta.as_chunks::<D>();
        let (out, _) = self.out.as_chunks_mut::<W>();
        for (o, th) in out.iter_mut().zip(theta) {
            *o = (self.f)(th);
        }
    }
}

/// `out[p] = f(θ_p)` for every path of a block, `theta` in rows of `D` numbers and `out`
/// in rows of `W`: the loop for closed forms of fixed size (scalar factorisation), one
/// path per SIMD lane (AVX-512 or AVX2 when the CPU has them; the same numbers on every
/// instruction set, as no operation is fused).
pub(crate) fn map_rows<const D: usize, const W: usize>(
    theta: &[f64],
    out: &mut [f64],
    f: impl Fn(&[f64; D]) -> [f64; W],
) {
    debug_assert_eq!(theta.len() / D, out.len() / W);
    if theta.len() == D {
        // a block of one (the per-path route): no kernel dispatch, the same operations
        if let (Some(th), Some(o)) = (
            theta.as_chunks::<D>().0.first(),
            out.as_chunks_mut::<W>().0.first_mut(),
        ) {
            *o = f(th);
        }
        return;
    }
    Kernel::detect().vectorised(Rows { theta, out, f })
}

/// `out_i = −(g_i + 2γ θ_i)` (`−g_i` for `γ = 0`): the first-order drift from the
/// gradient `g = out`, the per-path route's `axpy(2γ, θ, 1)` then negation.
#[inline(always)]
pub(super) fn finish_first_order(gamma: f64, theta: &[f64], out: &mut [f64]) {
    if gamma > 0.0 {
        let two_gamma = 2.0 * gamma;
        for (o, &x) in out.iter_mut().zip(theta) {
            *o = -(two_gamma * x + *o);
        }
    } else {
        for o in out.iter_mut() {
            *o = -*o;
        }
    }
}

/// [`finish_first_order`] on a block, compiled for the CPU's vectors.
struct FinishBlock<'s> {
    gamma: f64,
    theta: &'s [f64],
    out: &'s mut [f64],
}

impl Vectorised for FinishBlock<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        finish_first_order(self.gamma, self.theta, self.out)
    }
}

/// `(b w)_i` of one path: `b_i w₀` (one Brownian motion), `b_i w_i` (diagonal noise),
/// `Σ_j b_ij w_j` from `0.0` in order (otherwise) — the product of the lockstep driver
/// (the contract of [`Sde::batch`]).
#[inline(always)]
fn apply_factor(noise: Noise, d: usize, m: usize, b: &[f64], w: &[f64], out: &mut [f64]) {
    if m == 1 {
        for (o, &bi) in out.iter_mut().zip(b) {
            *o = bi * w[0];
        }
    } else if noise == Noise::Diagonal && m == d {
        for ((o, &bi), &wi) in out.iter_mut().zip(b).zip(w) {
            *o = bi * wi;
        }
    } else {
        for (o, row) in out.iter_mut().zip(b.chunks_exact(m)) {
            *o = row.iter().zip(w).fold(0.0, |s, (&bij, &wj)| s + bij * wj);
        }
    }
}

impl<'a, M: Model> SgdSde<'a, M> {
    /// `out = sqrt(η(t) c_B) D(x) dw` on the per-path route of a model with block forms:
    /// the scaled factor of a block of one, then its product with `dw` ([`apply_factor`]).
    #[inline]
    pub(super) fn apply_block_factor(
        &self,
        block: &dyn PopulationBlockForms,
        t: f64,
        x: &DVector<f64>,
        dw: &DVector<f64>,
        out: &mut DVector<f64>,
    ) {
        let (d, m, noise) = (Sde::dim(self), SdeExt::noise_dim(self), SdeExt::noise(self));
        with_factor_buffer(diffusion_width(noise, d, m), |b| {
            block.noise_factor_block(x.as_slice(), self.noise_scale(t), b);
            apply_factor(noise, d, m, b, dw.as_slice(), out.as_mut_slice());
        })
    }

    /// The model's block forms when the lockstep route applies: a population model that
    /// provides them, and the first-order equation.
    fn lane_forms(&self) -> Option<&'a dyn PopulationBlockForms> {
        (self.config().order == ModifiedEquation::First)
            .then(|| self.block_forms())
            .flatten()
    }

    /// The SDE as a [`BatchSde`] when the lockstep route applies (see the module docs).
    pub(super) fn lanes(&self) -> Option<&dyn BatchSde> {
        self.lane_forms().map(|_| self as &dyn BatchSde)
    }
}

/// The error of a block evaluation of an SGD-SDE that has no block forms (a caller that
/// did not go through [`Sde::batch`]).
fn no_block_forms() -> Error {
    Error::Incompatible {
        scheme: "lockstep",
        reason: crate::error::IncompatibleReason::NoBlockForms,
    }
}

/// The population SGD-SDE on a block: per path the per-path route's arithmetic (module
/// docs). Only reached through [`Sde::batch`], which returns it when the model has block
/// forms and the equation is first order.
impl<M: Model> BatchSde for SgdSde<'_, M> {
    fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        let block = self.lane_forms().ok_or_else(no_block_forms)?;
        block.risk_gradient_block(x, out);
        let gamma = self.config().weight_decay;
        Kernel::detect().vectorised(FinishBlock { gamma, theta: x, out });
        Ok(())
    }

    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        let block = self.lane_forms().ok_or_else(no_block_forms)?;
        block.noise_factor_block(x, self.noise_scale(t), out);
        Ok(())
    }

    /// Milstein on lanes for the noise kinds the lockstep Milstein takes with this hook
    /// (scalar: scalar factorisation; diagonal).
    fn has_milstein_block(&self) -> bool {
        self.lane_forms().is_some() && matches!(SdeExt::noise(self), Noise::Scalar | Noise::Diagonal)
    }

    /// The model's block derivative ([`PopulationBlockForms::noise_factor_derivative_block`],
    /// scalar factorisation), else per path the per-path route's own functions:
    /// `v = Sde::diffusion_apply(t, θ_p, c_p)` and then
    /// `Sde::diffusion_derivative(t, θ_p, v, c_p)` (the model's analytic derivative of the
    /// factor, or the central difference) — the same calls, so the same bits — on
    /// per-thread scratch vectors (no allocation once they have the size).
    fn milstein_block(&self, t: f64, x: &[f64], c: &[f64], out: &mut [f64]) -> Result<()> {
        // the model's closed-form derivative on the block, where it has one
        if let Some(block) = self.lane_forms() {
            if block.noise_factor_derivative_block(x, c, self.noise_scale(t), out) {
                return Ok(());
            }
        }
        let (d, m) = (Sde::dim(self), SdeExt::noise_dim(self));
        let mut run = |w: &mut MilsteinScratch| {
            w.fit(d, m);
            for ((xp, cp), op) in x
                .chunks_exact(d)
                .zip(c.chunks_exact(m))
                .zip(out.chunks_exact_mut(d))
            {
                w.x.copy_from_slice(xp);
                w.c.copy_from_slice(cp);
                Sde::diffusion_apply(self, t, &w.x, &w.c, &mut w.v);
                Sde::diffusion_derivative(self, t, &w.x, &w.v, &w.c, &mut w.out, &mut w.derivative);
                op.copy_from_slice(w.out.as_slice());
            }
        };
        MILSTEIN.with(|cell| match cell.try_borrow_mut() {
            Ok(mut w) => run(&mut w),
            Err(_) => run(&mut MilsteinScratch::default()),
        });
        Ok(())
    }
}

/// The per-path vectors of [`SgdSde`]'s `milstein_block`.
struct MilsteinScratch {
    x: DVector<f64>,
    c: DVector<f64>,
    v: DVector<f64>,
    out: DVector<f64>,
    derivative: DerivativeScratch,
}

impl Default for MilsteinScratch {
    fn default() -> Self {
        MilsteinScratch {
            x: DVector::zeros(0),
            c: DVector::zeros(0),
            v: DVector::zeros(0),
            out: DVector::zeros(0),
            derivative: DerivativeScratch::new(0),
        }
    }
}

impl MilsteinScratch {
    /// Sizes the vectors for `d` states and `m` noises (allocates only when they change).
    fn fit(&mut self, d: usize, m: usize) {
        if self.x.len() != d || self.c.len() != m {
            *self = MilsteinScratch {
                x: DVector::zeros(d),
                c: DVector::zeros(m),
                v: DVector::zeros(d),
                out: DVector::zeros(d),
                derivative: DerivativeScratch::new(d),
            };
        }
    }
}

thread_local! {
    /// [`MilsteinScratch`] of the lockstep Milstein's calls on this thread.
    static MILSTEIN: RefCell<MilsteinScratch> = RefCell::new(MilsteinScratch::default());
}
