//! Milstein for general (non-commutative) noise (THEORY §8):
//! `X' = X + a h + b ΔW + Σ_{j,k} (L^j b_k) I_{(j,k)}`,
//! `I_{(j,k)} = ½(ΔW_j ΔW_k − δ_{jk} h) + A_{jk}` with the Lévy areas `A_{jk}` from the
//! Brownian path. Strong order 1 with areas; ½ with the areas dropped.

use super::{euler_update, MilsteinWork, Scheme, SchemeInfo, ANY_NOISE};
use crate::brownian::Increment;
use crate::error::Result;
use crate::sde::{Calculus, Noise, Sde};
use nalgebra::DVector;

/// Milstein for any noise, reading Lévy areas from the path when the noise is general.
///
/// [`MilsteinLevy::without_areas`] drops the areas on purpose (the comparison that shows
/// why they are needed: strong order falls to ½ on non-commutative noise). Cost: `m`
/// diffusion columns and `m` directional derivatives per step.
///
/// # References
/// Kloeden & Platen (1992), §10.3; areas: see [`crate::brownian::levy`].
#[derive(Debug, Clone)]
pub struct MilsteinLevy {
    use_area: bool,
    drift: DVector<f64>,
    diffusion: DVector<f64>,
    work: MilsteinWork,
}

impl Default for MilsteinLevy {
    fn default() -> Self {
        Self::with_area_flag(true)
    }
}

impl MilsteinLevy {
    /// Milstein with Lévy areas.
    pub fn new() -> Self {
        Self::default()
    }

    /// Milstein with the Lévy areas set to zero (strong order ½ on general noise).
    pub fn without_areas() -> Self {
        Self::with_area_flag(false)
    }

    fn with_area_flag(use_area: bool) -> Self {
        MilsteinLevy {
            use_area,
            drift: DVector::zeros(0),
            diffusion: DVector::zeros(0),
            work: MilsteinWork::new(0, 0),
        }
    }
}

impl Scheme for MilsteinLevy {
    fn info(&self) -> SchemeInfo {
        if self.use_area {
            SchemeInfo::new("milstein_levy", 1.0, 1.0, Calculus::Ito, ANY_NOISE)
                .levy_area(true)
                .summary("Milstein reading Lévy areas; general noise (cost ∝ m⁴ per step)")
        } else {
            SchemeInfo::new("milstein_no_levy", 0.5, 1.0, Calculus::Ito, ANY_NOISE)
                .summary("Milstein with the Lévy areas dropped (order ½ on general noise)")
                .strong_order_by_noise(&[
                (Noise::Scalar, 1.0),
                (Noise::Diagonal, 1.0),
                (Noise::Additive, 1.0),
                (Noise::Commutative, 1.0),
                ])
        }
    }

    fn prepare(&mut self, dim: usize, noise_dim: usize) {
        self.drift = DVector::zeros(dim);
        self.diffusion = DVector::zeros(dim);
        self.work = MilsteinWork::new(dim, noise_dim);
    }

    fn step<S: Sde + ?Sized>(
        &mut self,
        sde: &S,
        t: f64,
        inc: &Increment,
        x: &DVector<f64>,
        out: &mut DVector<f64>,
    ) -> Result<()> {
        sde.drift_and_diffusion(t, x, &inc.dw, &mut self.drift, &mut self.diffusion);
        euler_update(x, inc.h, &self.drift, &self.diffusion, out);
        self.work.add_correction(sde, t, x, inc, self.use_area, out);
        Ok(())
    }
}
