//! Stochastic Heun (THEORY §7a, §8), for Stratonovich SDEs:
//!
//! ```text
//! X̃  = X + a(X) h + b(X) ΔW,
//! X' = X + ½[a(X) + a(X̃)] h + ½[b(X) + b(X̃)] ΔW.
//! ```
//!
//! Converges to the *Stratonovich* solution: strong order 1 for commutative noise (½ for
//! general noise), weak order 1. Run on the Itô coefficients of the SGD-SDE it would
//! conserve the Noether charge — which is why [`super::integrate`] refuses Itô SDEs.

use super::{euler_update, Scheme, SchemeInfo, ANY_NOISE};
use crate::brownian::Increment;
use crate::error::Result;
use crate::sde::{Calculus, Noise, Sde};
use nalgebra::DVector;

/// Stochastic Heun (predictor–corrector trapezoid) for Stratonovich SDEs.
///
/// # References
/// Kloeden & Platen (1992), §11.1; Rümelin (1982), SIAM J. Numer. Anal. 19(3).
#[derive(Debug, Clone, Default)]
pub struct Heun {
    drift: DVector<f64>,
    diffusion: DVector<f64>,
    predictor: DVector<f64>,
    drift_p: DVector<f64>,
    diffusion_p: DVector<f64>,
}

impl Heun {
    /// A new scheme (buffers are sized by [`Scheme::prepare`]).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheme for Heun {
    fn info(&self) -> SchemeInfo {
        SchemeInfo::new("heun", 1.0, 1.0, Calculus::Stratonovich, ANY_NOISE)
            .summary("stochastic Heun (trapezoid predictor–corrector); Stratonovich SDEs")
            .strong_order_by_noise(&[(Noise::General, 0.5)])
    }

    fn prepare(&mut self, dim: usize, _noise_dim: usize) {
        self.drift = DVector::zeros(dim);
        self.diffusion = DVector::zeros(dim);
        self.predictor = DVector::zeros(dim);
        self.drift_p = DVector::zeros(dim);
        self.diffusion_p = DVector::zeros(dim);
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
        sde.drift_and_diffusion(t, x, &inc.dw, &mut self.drift, &mut self.diffusion);
        euler_update(x, h, &self.drift, &self.diffusion, &mut self.predictor);
        sde.drift_and_diffusion(
            t + h,
            &self.predictor,
            &inc.dw,
            &mut self.drift_p,
            &mut self.diffusion_p,
        );
        for i in 0..x.len() {
            out[i] = x[i]
                + 0.5 * h * (self.drift[i] + self.drift_p[i])
                + 0.5 * (self.diffusion[i] + self.diffusion_p[i]);
        }
        Ok(())
    }
}
