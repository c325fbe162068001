//! Euler–Maruyama: `X' = X + a h + b ΔW` (THEORY §8). Strong order 1/2, weak order 1.

use super::{euler_update, Scheme, SchemeInfo, ANY_NOISE};
use crate::brownian::Increment;
use crate::error::Result;
use crate::sde::{Calculus, Noise, Sde};
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
        SchemeInfo::new("euler_maruyama", 0.5, 1.0, Calculus::Ito, ANY_NOISE)
            .aliases(&["em"])
            .summary("Euler–Maruyama, X' = X + a h + b ΔW; any Itô SDE")
            .strong_order_by_noise(&[(Noise::Additive, 1.0)])
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
        let h = inc.h;
        euler_update(x, h, &self.drift, &self.diffusion, out);
        Ok(())
    }

}
