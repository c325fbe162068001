//! Euler–Maruyama: `X' = X + a h + b ΔW` (THEORY §8). Strong order 1/2, weak order 1.

use super::{Scheme, SchemeInfo, ANY_NOISE};
use crate::brownian::Increment;
use crate::error::Result;
use crate::sde::{Calculus, Sde};
use nalgebra::DVector;

/// Euler–Maruyama for Itô SDEs with any noise.
///
/// Uses [`Sde::drift_and_diffusion`], so SDEs whose drift and diffusion share work
/// (the SGD-SDE) evaluate it once per step.
///
/// # References
/// Kloeden & Platen (1992), *Numerical Solution of Stochastic Differential Equations*, §10.2.
#[derive(Debug, Clone, Default)]
pub struct EulerMaruyama {
    drift: DVector<f64>,
    diffusion: DVector<f64>,
}

impl EulerMaruyama {
    /// A new scheme (buffers are sized by [`Scheme::prepare`]).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheme for EulerMaruyama {
    fn info(&self) -> SchemeInfo {
        SchemeInfo {
            name: "euler_maruyama",
            strong_order: 0.5,
            weak_order: 1.0,
            calculus: Calculus::Ito,
            noise: ANY_NOISE,
            needs_levy_area: false,
        }
    }

    fn prepare(&mut self, dim: usize, _noise_dim: usize) {
        self.drift = DVector::zeros(dim);
        self.diffusion = DVector::zeros(dim);
    }

    #[inline]
    fn step<S: Sde + ?Sized>(
        &mut self,
        sde: &S,
        t: f64,
        inc: &Increment,
        x: &DVector<f64>,
        out: &mut DVector<f64>,
    ) -> Result<()> {
        sde.drift_and_diffusion(t, x, &inc.dw, &mut self.drift, &mut self.diffusion);
        for i in 0..x.len() {
            out[i] = x[i] + inc.h * self.drift[i] + self.diffusion[i];
        }
        Ok(())
    }
}
