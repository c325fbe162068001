//! Milstein for commutative noise (THEORY §8):
//! `X' = X + a h + b ΔW + ½ Σ_{j,k} (L^j b_k)(ΔW_j ΔW_k − δ_{jk} h)`.
//! Strong order 1, weak order 1.

use super::{euler_update, MilsteinWork, Scheme, SchemeInfo};
use crate::brownian::Increment;
use crate::error::Result;
use crate::sde::{Calculus, Noise, Sde};
use nalgebra::DVector;

/// Milstein for scalar, diagonal, additive and commutative noise.
///
/// With commutative noise (`L^j b_k = L^k b_j`) the Lévy areas cancel from the double
/// sum, so only `ΔW` is needed. General noise is rejected (use [`super::MilsteinLevy`]).
/// The derivative terms come from [`Sde::diffusion_derivative`] (analytic or finite
/// difference); the cost per step is one derivative for scalar noise, two for diagonal,
/// `m` for commutative.
///
/// # References
/// Kloeden & Platen (1992), §10.3.
#[derive(Debug, Clone)]
pub struct Milstein {
    drift: DVector<f64>,
    diffusion: DVector<f64>,
    work: MilsteinWork,
}

impl Default for Milstein {
    fn default() -> Self {
        Milstein {
            drift: DVector::zeros(0),
            diffusion: DVector::zeros(0),
            work: MilsteinWork::new(0, 0),
        }
    }
}

impl Milstein {
    /// A new scheme (buffers are sized by [`Scheme::prepare`]).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheme for Milstein {
    fn info(&self) -> SchemeInfo {
        SchemeInfo::new(
            "milstein",
            1.0,
            1.0,
            Calculus::Ito,
            &[
                Noise::Scalar,
                Noise::Diagonal,
                Noise::Additive,
                Noise::Commutative,
            ],
        )
        .summary("Milstein with the derivative terms L^j b_k; commutative noise only")
    }

    fn prepare(&mut self, dim: usize, noise_dim: usize) {
        self.drift = DVector::zeros(dim);
        self.diffusion = DVector::zeros(dim);
        self.work = MilsteinWork::new(dim, noise_dim);
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
        self.work.add_correction(sde, t, x, inc, false, out);
        Ok(())
    }

}
