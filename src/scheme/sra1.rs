//! SRA1: Rößler's strong order-1.5 stochastic Runge–Kutta method for additive noise
//! (THEORY §8), two drift stages, reading the time integrals `I_(j,0)` of the path.
//!
//! For `dX = a(t, X) dt + b(t) dW` with `ΔW`, `I_(j,0) = ∫(W_j(s) − W_j(t)) ds` and
//! `χ = I_(·,0)/h` (the vector over the noises):
//!
//! ```text
//! H₂ = X + ¾h a(t, X) + (3/2) b(t + h) χ,
//! X' = X + h(⅓ a(t, X) + ⅔ a(t + ¾h, H₂)) + b(t + h)(ΔW − χ) + b(t) χ.
//! ```
//!
//! A Taylor expansion gives the order-1.5 Itô–Taylor terms for additive noise:
//! `(∂a b_j) I_(j,0)` from the stage `H₂` (`⅔·3/2 = 1`), `∂_t b_j I_(0,j)` from
//! `b(t + h)ΔW − (b(t + h) − b(t))χ`, and the deterministic RK2 part. Cost per step: two
//! drift evaluations and three diffusion applications.
//!
//! # References
//! A. Rößler (2010), *Runge–Kutta methods for the strong approximation of solutions of
//! stochastic differential equations*, SIAM J. Numer. Anal. 48(3), 922–952 (the SRA
//! class, eq. (6.1), and the coefficients of SRA1, Table 6.2).

use super::{Scheme, SchemeInfo};
use crate::brownian::Increment;
use crate::error::{Error, Result};
use crate::sde::{Calculus, Noise, Sde};
use nalgebra::DVector;

/// SRA1 (Rößler 2010): strong order 1.5 for additive noise; reads `I_(j,0)`.
///
/// ```
/// use noether_sde::prelude::*;
/// use noether_sde::scheme::Sra1;
/// use nalgebra::DVector;
/// let ou = OrnsteinUhlenbeck::new(1.0, 0.5, 0.8)?;
/// let span = TimeSpan::new(0.0, 1.0, 0.1)?;
/// let seeds = SeedTree::new(7);
/// let mut path = IncrementStream::new(&seeds, 0, 1).with_space_time_area(&seeds, 0);
/// let x1 = integrate(&ou, &mut Sra1::new(), &DVector::from_element(1, 2.0), &span, &mut path, 0, &mut ())?;
/// assert!(x1[0].is_finite());
/// # Ok::<(), noether_sde::Error>(())
/// ```
///
/// # References
/// Rößler (2010), SIAM J. Numer. Anal. 48(3), Table 6.2.
#[derive(Debug, Clone, Default)]
pub struct Sra1 {
    drift: DVector<f64>,
    stage_drift: DVector<f64>,
    stage: DVector<f64>,
    chi: DVector<f64>,
    column: DVector<f64>,
}

impl Sra1 {
    /// SRA1.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheme for Sra1 {
    fn info(&self) -> SchemeInfo {
        SchemeInfo::new("sra1", 1.5, 2.0, Calculus::Ito, &[Noise::Additive])
            .summary("Rößler SRA1: strong order 1.5 for additive noise (reads I_(j,0))")
    }

    fn reads_time_integral(&self) -> bool {
        true
    }

    fn prepare(&mut self, dim: usize, noise_dim: usize) {
        self.drift = DVector::zeros(dim);
        self.stage_drift = DVector::zeros(dim);
        self.stage = DVector::zeros(dim);
        self.column = DVector::zeros(dim);
        self.chi = DVector::zeros(noise_dim);
    }

    fn step<S: Sde + ?Sized>(
        &mut self,
        sde: &S,
        t: f64,
        inc: &Increment,
        x: &DVector<f64>,
        out: &mut DVector<f64>,
    ) -> Result<()> {
        let h = inc.h;
        let Some(integral) = inc.time_integral.as_ref() else {
            return Err(missing_time_integral("sra1"));
        };
        self.chi.copy_from(integral);
        self.chi /= h;
        sde.drift(t, x, &mut self.drift);
        // b(t + h) χ enters both the stage and the update
        sde.diffusion_apply(t + h, x, &self.chi, &mut self.column);
        self.stage.copy_from(x);
        self.stage.axpy(0.75 * h, &self.drift, 1.0);
        self.stage.axpy(1.5, &self.column, 1.0);
        sde.drift(t + 0.75 * h, &self.stage, &mut self.stage_drift);
        out.copy_from(x);
        out.axpy(h / 3.0, &self.drift, 1.0);
        out.axpy(2.0 * h / 3.0, &self.stage_drift, 1.0);
        *out -= &self.column;
        sde.diffusion_apply(t + h, x, &inc.dw, &mut self.column);
        *out += &self.column;
        sde.diffusion_apply(t, x, &self.chi, &mut self.column);
        *out += &self.column;
        Ok(())
    }
}

/// The error of a strong order-1.5 scheme handed an increment without `I_(j,0)`.
pub(crate) fn missing_time_integral(scheme: &'static str) -> Error {
    Error::Incompatible {
        scheme,
        reason: crate::error::IncompatibleReason::NeedsTimeIntegral {
            provider: "the increment",
        },
    }
}
