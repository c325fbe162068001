//! Euler–Heun for Stratonovich SDEs (THEORY §8):
//!
//! ```text
//! X̄  = X + b(t, X) ΔW,
//! X' = X + a(t, X) h + ½[b(t, X) + b(t, X̄)] ΔW.
//! ```
//!
//! The drift is explicit Euler; the diffusion is a trapezoid on a predictor that moves
//! by the noise only. Expanding `b(X̄) = b + Σ_k ∂b[b_k] ΔW_k + O(h)` gives
//! `½ Σ_{j,k} (L^k b_j) ΔW_j ΔW_k`, the Stratonovich Milstein term when the noise is
//! commutative: strong order 1 on scalar, diagonal, additive and commutative noise, ½ on
//! general noise (the Lévy areas are missing); weak order 1. It costs one drift and two
//! diffusion evaluations per step, one drift fewer than stochastic Heun.
//!
//! # References
//! Kloeden & Platen (1992), §11.1 (the "Heun" family); Kidger et al. (2021), diffrax's
//! `EulerHeun`; torchsde's `euler_heun`.

use super::{Scheme, SchemeInfo, ANY_NOISE};
use crate::brownian::Increment;
use crate::error::Result;
use crate::sde::{Calculus, Noise, Sde};
use nalgebra::DVector;

/// Euler–Heun: Euler drift, trapezoidal diffusion; Stratonovich SDEs.
#[derive(Debug, Clone, Default)]
pub struct EulerHeun {
    drift: DVector<f64>,
    diffusion: DVector<f64>,
    predictor: DVector<f64>,
    diffusion_p: DVector<f64>,
}

impl EulerHeun {
    /// A new scheme (buffers are sized by [`Scheme::prepare`]).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheme for EulerHeun {
    fn info(&self) -> SchemeInfo {
        SchemeInfo::new("euler_heun", 1.0, 1.0, Calculus::Stratonovich, ANY_NOISE)
            .summary("Euler–Heun, Euler drift + trapezoidal diffusion; Stratonovich SDEs")
            .strong_order_by_noise(&[(Noise::General, 0.5)])
    }

    fn prepare(&mut self, dim: usize, _noise_dim: usize) {
        self.drift = DVector::zeros(dim);
        self.diffusion = DVector::zeros(dim);
        self.predictor = DVector::zeros(dim);
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
        for i in 0..x.len() {
            self.predictor[i] = x[i] + self.diffusion[i];
        }
        sde.diffusion_apply(t, &self.predictor, &inc.dw, &mut self.diffusion_p);
        for i in 0..x.len() {
            out[i] = x[i] + h * self.drift[i] + 0.5 * (self.diffusion[i] + self.diffusion_p[i]);
        }
        Ok(())
    }
}
