//! SRIW1: Rößler's strong order-1.5 stochastic Runge–Kutta method for scalar and
//! diagonal noise (THEORY §8), reading the time integrals `I_(j,0)` of the path.
//!
//! For each noise `k` (acting on component `k` for diagonal noise, on every component
//! for scalar noise), with the iterated integrals written through the path's
//! `ΔW`, `I_(k,0)`:
//!
//! ```text
//! χ₁ = I_(k,k)/√h = (ΔW² − h)/(2√h),  χ₂ = I_(k,0)/h,  χ₃ = I_(k,k,k)/h = (ΔW³ − 3hΔW)/(6h),
//! H₂⁽⁰⁾ = X + ¾h a(t, X) + (3/2) b(t, X) χ₂,
//! H₁⁽¹⁾ = X,  H₂⁽¹⁾ = X + ¼h a(t, X) + ½√h b(t, X),  H₃⁽¹⁾ = X + h a(t, X) − √h b(t, X),
//! H₄⁽¹⁾ = X + ¼h a(t, X) + √h(−5 b(t, X) + 3 b(t + h/4, H₂⁽¹⁾) + ½ b(t + h, H₃⁽¹⁾)),
//! X' = X + h(⅓ a(t, X) + ⅔ a(t + ¾h, H₂⁽⁰⁾))
//!        + Σ_i b(t + c_i h, H_i⁽¹⁾)(β_i¹ ΔW + β_i² χ₁ + β_i³ χ₂ + β_i⁴ χ₃),
//! c = (0, ¼, 1, ¼),  β¹ = (−1, 4/3, 2/3, 0),  β² = (−1, 4/3, −1/3, 0),
//! β³ = (2, −4/3, −2/3, 0),  β⁴ = (−2, 5/3, −2/3, 1),
//! ```
//!
//! products taken noise by noise. Strong order 1.5 for scalar and diagonal noise (the
//! diffusion of component `k` depending on `X_k` only, so that the noise commutes and
//! `I_(k,k)`, `I_(k,k,k)`, `I_(k,0)` are the only multiple integrals needed). Cost per
//! step: two drift evaluations and four diffusion applications.
//!
//! # References
//! A. Rößler (2010), *Runge–Kutta methods for the strong approximation of solutions of
//! stochastic differential equations*, SIAM J. Numer. Anal. 48(3), 922–952 (the SRI
//! class, eq. (5.1), and the coefficients of SRIW1, Table 5.2).

use super::sra1::missing_time_integral;
use super::{Scheme, SchemeInfo};
use crate::brownian::Increment;
use crate::error::Result;
use crate::sde::{Calculus, Noise, Sde};
use nalgebra::DVector;

const BETA: [[f64; 4]; 4] = [
    [-1.0, 4.0 / 3.0, 2.0 / 3.0, 0.0],
    [-1.0, 4.0 / 3.0, -1.0 / 3.0, 0.0],
    [2.0, -4.0 / 3.0, -2.0 / 3.0, 0.0],
    [-2.0, 5.0 / 3.0, -2.0 / 3.0, 1.0],
];
const C1: [f64; 4] = [0.0, 0.25, 1.0, 0.25];

/// SRIW1 (Rößler 2010): strong order 1.5 for scalar and diagonal Itô noise; reads
/// `I_(j,0)`.
///
/// ```
/// use noether_sde::prelude::*;
/// use noether_sde::scheme::Sriw1;
/// use nalgebra::DVector;
/// let gbm = GeometricBrownianMotion::new(0.5, 0.2)?;
/// let span = TimeSpan::new(0.0, 1.0, 0.1)?;
/// let seeds = SeedTree::new(7);
/// let mut path = IncrementStream::new(&seeds, 0, 1).with_space_time_area(&seeds, 0);
/// let x1 = integrate(&gbm, &mut Sriw1::new(), &DVector::from_element(1, 1.0), &span, &mut path, 0, &mut ())?;
/// assert!(x1[0] > 0.0);
/// # Ok::<(), noether_sde::Error>(())
/// ```
///
/// # References
/// Rößler (2010), SIAM J. Numer. Anal. 48(3), Table 5.2.
#[derive(Debug, Clone, Default)]
pub struct Sriw1 {
    k1: DVector<f64>,
    k2: DVector<f64>,
    /// `b(H_i⁽¹⁾)` applied to ones: the column (scalar noise) or the diagonal.
    g: [DVector<f64>; 4],
    stage: DVector<f64>,
    ones: DVector<f64>,
    chi2: DVector<f64>,
    /// Per-noise coefficients of one stage's diffusion.
    coefficients: DVector<f64>,
}

impl Sriw1 {
    /// SRIW1.
    pub fn new() -> Self {
        Self::default()
    }
}

/// `out += g ⊙ c`, broadcasting `c` for scalar noise (`c` has one entry).
#[inline]
fn add_product(out: &mut DVector<f64>, g: &DVector<f64>, c: &DVector<f64>, scale: f64) {
    if c.len() == 1 {
        out.axpy(scale * c[0], g, 1.0);
    } else {
        for ((o, &gk), &ck) in out.iter_mut().zip(g.iter()).zip(c.iter()) {
            *o += scale * gk * ck;
        }
    }
}

impl Scheme for Sriw1 {
    fn info(&self) -> SchemeInfo {
        SchemeInfo::new("sriw1", 1.5, 2.0, Calculus::Ito, &[Noise::Scalar, Noise::Diagonal])
            .summary("Rößler SRIW1: strong order 1.5 for scalar and diagonal noise (reads I_(j,0))")
    }

    fn reads_time_integral(&self) -> bool {
        true
    }

    fn prepare(&mut self, dim: usize, noise_dim: usize) {
        self.k1 = DVector::zeros(dim);
        self.k2 = DVector::zeros(dim);
        for g in &mut self.g {
            *g = DVector::zeros(dim);
        }
        self.stage = DVector::zeros(dim);
        self.ones = DVector::from_element(noise_dim, 1.0);
        self.chi2 = DVector::zeros(noise_dim);
        self.coefficients = DVector::zeros(noise_dim);
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
        let Some(integral) = inc.time_integral.as_ref() else {
            return Err(missing_time_integral("sriw1"));
        };
        self.chi2.copy_from(integral);
        self.chi2 /= h;
        let [g1, g2, g3, g4] = &mut self.g;
        sde.drift(t, x, &mut self.k1);
        sde.diffusion_apply(t, x, &self.ones, g1);
        // drift stage H₂⁽⁰⁾
        self.stage.copy_from(x);
        self.stage.axpy(0.75 * h, &self.k1, 1.0);
        add_product(&mut self.stage, g1, &self.chi2, 1.5);
        sde.drift(t + 0.75 * h, &self.stage, &mut self.k2);
        // diffusion stages H₂⁽¹⁾, H₃⁽¹⁾, H₄⁽¹⁾
        self.stage.copy_from(x);
        self.stage.axpy(0.25 * h, &self.k1, 1.0);
        self.stage.axpy(0.5 * sqrt_h, g1, 1.0);
        sde.diffusion_apply(t + C1[1] * h, &self.stage, &self.ones, g2);
        self.stage.copy_from(x);
        self.stage.axpy(h, &self.k1, 1.0);
        self.stage.axpy(-sqrt_h, g1, 1.0);
        sde.diffusion_apply(t + C1[2] * h, &self.stage, &self.ones, g3);
        self.stage.copy_from(x);
        self.stage.axpy(0.25 * h, &self.k1, 1.0);
        self.stage.axpy(-5.0 * sqrt_h, g1, 1.0);
        self.stage.axpy(3.0 * sqrt_h, g2, 1.0);
        self.stage.axpy(0.5 * sqrt_h, g3, 1.0);
        sde.diffusion_apply(t + C1[3] * h, &self.stage, &self.ones, g4);

        out.copy_from(x);
        out.axpy(h / 3.0, &self.k1, 1.0);
        out.axpy(2.0 * h / 3.0, &self.k2, 1.0);
        for (i, g) in [&*g1, &*g2, &*g3, &*g4].into_iter().enumerate() {
            for (k, c) in self.coefficients.iter_mut().enumerate() {
                let dw = inc.dw[k];
                let chi1 = 0.5 * (dw * dw - h) / sqrt_h;
                let chi3 = (dw * dw * dw - 3.0 * h * dw) / (6.0 * h);
                *c = BETA[0][i] * dw + BETA[1][i] * chi1 + BETA[2][i] * self.chi2[k] + BETA[3][i] * chi3;
            }
            add_product(out, g, &self.coefficients, 1.0);
        }
        Ok(())
    }
}
