//! Derivative-free Runge–Kutta Milstein (Platen's explicit strong order 1.0 scheme,
//! Kloeden & Platen 1992, eq. 11.1.7), THEORY §8:
//!
//! ```text
//! Υ_j = X + a h + b_j √h,
//! X'  = X + a h + b ΔW + (1/√h) Σ_{j1,j2} [b_{j2}(Υ_{j1}) − b_{j2}(X)] I_{(j1,j2)}.
//! ```
//!
//! The bracket is a one-sided difference of the diffusion along `b_{j1}` with step `√h`,
//! replacing the derivative `L^{j1} b_{j2}`: no derivatives of `b` are needed. Strong
//! order 1 (with Lévy areas in `I` for general noise), weak order 1.

use super::{euler_update, Scheme, SchemeInfo, ANY_NOISE};
use crate::brownian::Increment;
use crate::error::Result;
use crate::sde::{Calculus, Noise, Sde, SdeExt};
use nalgebra::DVector;

/// Platen's derivative-free Milstein-type scheme, for models without derivatives.
///
/// Cost per step: one drift and `2m + 2` diffusion applications (one for scalar noise
/// fewer). Reads Lévy areas for general noise.
///
/// # References
/// Kloeden & Platen (1992), §11.1; Rößler (2010), *Runge–Kutta methods for the strong
/// approximation of solutions of SDEs*, SIAM J. Numer. Anal. 48(3), for the family.
#[derive(Debug, Clone, Default)]
pub struct RkMilstein {
    drift: DVector<f64>,
    diffusion: DVector<f64>,
    support: DVector<f64>,
    column: DVector<f64>,
    value: DVector<f64>,
    unit: DVector<f64>,
    c: DVector<f64>,
    c_sum: DVector<f64>,
}

impl RkMilstein {
    /// A new scheme (buffers are sized by [`Scheme::prepare`]).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheme for RkMilstein {
    fn info(&self) -> SchemeInfo {
        SchemeInfo::new("rk_milstein", 1.0, 1.0, Calculus::Ito, ANY_NOISE)
            .levy_area(true)
            .summary("derivative-free Runge–Kutta Milstein, Lévy areas on general noise")
    }

    fn prepare(&mut self, dim: usize, noise_dim: usize) {
        self.drift = DVector::zeros(dim);
        self.diffusion = DVector::zeros(dim);
        self.support = DVector::zeros(dim);
        self.column = DVector::zeros(dim);
        self.value = DVector::zeros(dim);
        self.unit = DVector::zeros(noise_dim);
        self.c = DVector::zeros(noise_dim);
        self.c_sum = DVector::zeros(noise_dim);
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
        let sqrt_h = h.sqrt();
        sde.drift_and_diffusion(t, x, &inc.dw, &mut self.drift, &mut self.diffusion);
        euler_update(x, h, &self.drift, &self.diffusion, out);
        if sde.noise() == Noise::Additive {
            return Ok(());
        }
        let m = inc.dw.len();
        let use_area = sde.noise() == Noise::General;
        self.c_sum.fill(0.0);
        let inv_sqrt_h = 1.0 / sqrt_h;
        for j1 in 0..m {
            self.unit.fill(0.0);
            self.unit[j1] = 1.0;
            sde.diffusion_apply(t, x, &self.unit, &mut self.column);
            // Υ_{j1} = X + a h + b_{j1} √h
            for i in 0..x.len() {
                self.support[i] = x[i] + h * self.drift[i] + sqrt_h * self.column[i];
            }
            for j2 in 0..m {
                let area = if use_area {
                    inc.area.as_ref().map_or(0.0, |a| a[(j1, j2)])
                } else {
                    0.0
                };
                let i_12 = 0.5 * inc.dw[j1] * inc.dw[j2] + if j1 == j2 { -0.5 * h } else { area };
                self.c[j2] = i_12;
                self.c_sum[j2] += i_12;
            }
            sde.diffusion_apply(t, &self.support, &self.c, &mut self.value);
            out.axpy(inv_sqrt_h, &self.value, 1.0);
        }
        sde.diffusion_apply(t, x, &self.c_sum, &mut self.value);
        out.axpy(-inv_sqrt_h, &self.value, 1.0);
        Ok(())
    }
}
