//! Scalar factorisation `ℓ = (u w x − y)²`, `y = v x + ε`, `x ~ N(0, 1)`, `ε ~ N(0, σ²)`
//! (THEORY §6). With `a = uw − v`:
//!
//! ```text
//! L = a² + σ²,   ∇L = 2a (w, u),   Σ = 4(2a² + σ²) (w, u)(w, u)ᵀ   (rank one: scalar noise)
//! ```
//!
//! The rescaling `(u, w) → (λu, w/λ)` is an exact symmetry with charge `C = u² − w²`.

use crate::error::{check_finite, Error, Result};
use crate::sde::Noise;
use crate::sgd::{map_rows, Model, Population, PopulationBlockForms, PopulationForms, Sample};
use crate::simd::{Kernel, Vectorised};
use crate::symmetry::{ExponentialSymmetry, Symmetric};
use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

/// The scalar factorisation model with teacher `v` and label-noise standard deviation `σ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalarFactorization {
    v: f64,
    sigma: f64,
}

impl ScalarFactorization {
    /// Teacher `v`, label noise `sigma ≥ 0`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for non-finite values or `sigma < 0`.
    pub fn new(v: f64, sigma: f64) -> Result<Self> {
        check_finite("v", &[v])?;
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(Error::invalid("sigma", sigma, "must be finite and >= 0"));
        }
        Ok(ScalarFactorization { v, sigma })
    }

    /// Teacher `v`.
    pub fn v(&self) -> f64 {
        self.v
    }

    /// Label-noise standard deviation `σ`.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// `a = uw − v`.
    pub fn residual(&self, theta: &DVector<f64>) -> f64 {
        theta[0] * theta[1] - self.v
    }

    /// The charge `C = u² − w²`.
    pub fn charge(theta: &DVector<f64>) -> f64 {
        theta[0] * theta[0] - theta[1] * theta[1]
    }

    /// The point of the valley `uw = v` with charge `C`:
    /// `u² = (C + √(C² + 4v²))/2`, `w² = (−C + √(C² + 4v²))/2`, sign(w) = sign(v), u > 0.
    pub fn valley_point(&self, charge: f64) -> DVector<f64> {
        let r = (charge * charge + 4.0 * self.v * self.v).sqrt();
        let u = (0.5 * (charge + r)).max(0.0).sqrt();
        let w = (0.5 * (r - charge)).max(0.0).sqrt() * if self.v < 0.0 { -1.0 } else { 1.0 };
        DVector::from_vec(vec![u, w])
    }

    /// Sharpness (top Hessian eigenvalue of `L`) on the valley at charge `C`:
    /// `2(u² + w²) = 2√(C² + 4v²)`.
    pub fn valley_sharpness(&self, charge: f64) -> f64 {
        2.0 * self.valley_norm_squared(charge)
    }

    /// `P = u² + w² = √(C² + 4v²)` on the valley at charge `C` (`2P` is the top Hessian
    /// eigenvalue there).
    pub fn valley_norm_squared(&self, charge: f64) -> f64 {
        (charge * charge + 4.0 * self.v * self.v).sqrt()
    }

    /// The SDE's relaxation rate of the charge on the valley, refined by the stationary
    /// fluctuations of `a` (THEORY §6): `−d ln C/dt = (4ησ²/B)[1 + 2ηP/(B − 2ηP)]`.
    pub fn refined_valley_rate(&self, eta: f64, batch: usize, charge: f64) -> f64 {
        let (p, b) = (self.valley_norm_squared(charge), batch as f64);
        4.0 * eta * self.sigma * self.sigma / b * (1.0 + 2.0 * eta * p / (b - 2.0 * eta * p))
    }

    fn noise_amplitude(&self, theta: &DVector<f64>) -> f64 {
        self.amplitude_at(self.residual(theta))
    }

    /// `sqrt(2a² + σ²)` at the residual `a`.
    #[inline(always)]
    fn amplitude_at(&self, a: f64) -> f64 {
        (2.0 * a * a + self.sigma * self.sigma).sqrt()
    }

    /// `∇L = 2a (w, u)` at `θ = (u, w)`: the one evaluation of the per-path and the block
    /// route.
    #[inline(always)]
    fn gradient_at(&self, [u, w]: [f64; 2]) -> [f64; 2] {
        let a = u * w - self.v;
        [2.0 * a * w, 2.0 * a * u]
    }

    /// The factor column times `scale`, `(2 sqrt(2a² + σ²) scale)·(w, u)`: the one
    /// evaluation of the per-path and the block route.
    #[inline(always)]
    fn scaled_factor_at(&self, [u, w]: [f64; 2], scale: f64) -> [f64; 2] {
        let s = 2.0 * self.amplitude_at(u * w - self.v) * scale;
        [s * w, s * u]
    }
}

impl Symmetric for ScalarFactorization {
    /// The rescaling `u → e^λ u`, `w → e^{−λ} w`: `A = diag(1, −1)`, `C = u² − w²`.
    fn symmetry(&self) -> Result<ExponentialSymmetry> {
        ExponentialSymmetry::rescaling(2, &[0], &[1])
    }
}

impl Model for ScalarFactorization {
    fn dim(&self) -> usize {
        2
    }
    fn input_dim(&self) -> usize {
        1
    }
    fn target_dim(&self) -> usize {
        1
    }
    fn loss(&self, theta: &DVector<f64>, s: Sample<'_>) -> f64 {
        let r = theta[0] * theta[1] * s.x[0] - s.y[0];
        r * r
    }
    fn grad(&self, theta: &DVector<f64>, s: Sample<'_>, out: &mut DVector<f64>) {
        let x = s.x[0];
        let r = theta[0] * theta[1] * x - s.y[0];
        out[0] = 2.0 * r * x * theta[1];
        out[1] = 2.0 * r * x * theta[0];
    }
    fn hvp(&self, theta: &DVector<f64>, s: Sample<'_>, v: &DVector<f64>, out: &mut DVector<f64>) {
        let (u, w, x) = (theta[0], theta[1], s.x[0]);
        let r = u * w * x - s.y[0];
        let off = 2.0 * x * x * u * w + 2.0 * r * x;
        out[0] = 2.0 * x * x * w * w * v[0] + off * v[1];
        out[1] = off * v[0] + 2.0 * x * x * u * u * v[1];
    }
}

impl Population for ScalarFactorization {
    fn input_dim(&self) -> usize {
        1
    }
    fn target_dim(&self) -> usize {
        1
    }
    fn draw(&self, rng: &mut dyn Rng, x: &mut [f64], y: &mut [f64]) {
        let xi: f64 = rng.sample(StandardNormal);
        let eps: f64 = rng.sample(StandardNormal);
        x[0] = xi;
        y[0] = self.v * xi + self.sigma * eps;
    }
}

impl PopulationForms for ScalarFactorization {
    fn risk(&self, theta: &DVector<f64>) -> f64 {
        let a = self.residual(theta);
        a * a + self.sigma * self.sigma
    }
    fn risk_gradient(&self, theta: &DVector<f64>, out: &mut DVector<f64>) {
        let g = self.gradient_at([theta[0], theta[1]]);
        out.as_mut_slice().copy_from_slice(&g);
    }
    fn risk_hvp(&self, theta: &DVector<f64>, v: &DVector<f64>, out: &mut DVector<f64>) {
        let (u, w) = (theta[0], theta[1]);
        let off = 2.0 * (2.0 * u * w - self.v);
        out[0] = 2.0 * w * w * v[0] + off * v[1];
        out[1] = off * v[0] + 2.0 * u * u * v[1];
    }
    fn noise_covariance(&self, theta: &DVector<f64>) -> DMatrix<f64> {
        let a = self.residual(theta);
        let g = DVector::from_vec(vec![theta[1], theta[0]]);
        &g * g.transpose() * (4.0 * (2.0 * a * a + self.sigma * self.sigma))
    }
    fn noise_dim(&self) -> usize {
        1
    }
    fn noise_kind(&self) -> Noise {
        Noise::Scalar
    }
    /// `D dw = (2 sqrt(2a² + σ²)·(w, u)) dw` (the column first, as on the block route).
    fn noise_factor_apply(&self, theta: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        let column = self.scaled_factor_at([theta[0], theta[1]], 1.0);
        out[0] = column[0] * dw[0];
        out[1] = column[1] * dw[0];
    }
    fn noise_factor_derivative(
        &self,
        theta: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
    ) -> bool {
        let s = self.noise_amplitude(theta);
        if s <= 0.0 {
            return false;
        }
        let a = self.residual(theta);
        let da = v[0] * theta[1] + theta[0] * v[1];
        let ds = 2.0 * a * da / s;
        out[0] = 2.0 * c[0] * (ds * theta[1] + s * v[1]);
        out[1] = 2.0 * c[0] * (ds * theta[0] + s * v[0]);
        true
    }
    fn block_forms(&self) -> Option<&dyn PopulationBlockForms> {
        Some(self)
    }
}

/// Per path `∇L = 2a (w, u)` and the scaled factor column `2 sqrt(2a² + σ²) s·(w, u)`, a
/// handful of flops, in SIMD lanes across the paths of a block (one path per lane).
impl PopulationBlockForms for ScalarFactorization {
    fn risk_gradient_block(&self, theta: &[f64], out: &mut [f64]) {
        map_rows(theta, out, |th| self.gradient_at(*th));
    }
    fn noise_factor_block(&self, theta: &[f64], scale: f64, out: &mut [f64]) {
        map_rows(theta, out, |th| self.scaled_factor_at(*th, scale));
    }
    /// Per path: `v = s·(w, u) c` (the block factor times `c`), then
    /// [`PopulationForms::noise_factor_derivative`]'s arithmetic on it, times `scale`;
    /// `false` when some path's amplitude `sqrt(2a² + σ²)` is not positive (σ = 0 on
    /// the valley: the per-path route takes the central difference there).
    fn noise_factor_derivative_block(&self, theta: &[f64], c: &[f64], scale: f64, out: &mut [f64]) -> bool {
        let rows = DerivativeRows {
            model: self,
            theta,
            c,
            scale,
            out,
        };
        Kernel::detect().vectorised(rows)
    }
}

/// The arguments of [`ScalarFactorization`]'s `noise_factor_derivative_block`, its loop
/// compiled for the CPU's vectors (one path per lane; no operation fused, so the same
/// numbers on every instruction set).
struct DerivativeRows<'s> {
    model: &'s ScalarFactorization,
    theta: &'s [f64],
    c: &'s [f64],
    scale: f64,
    out: &'s mut [f64],
}

impl Vectorised for DerivativeRows<'_> {
    type Output = bool;
    #[inline(always)]
    fn run(self) -> bool {
        let (model, scale) = (self.model, self.scale);
        let (theta, _) = self.theta.as_chunks::<2>();
        let (out, _) = self.out.as_chunks_mut::<2>();
        let mut positive = true;
        for ((&[u, w], &c), o) in theta.iter().zip(self.c).zip(out.iter_mut()) {
            let column = model.scaled_factor_at([u, w], scale);
            let v = [column[0] * c, column[1] * c];
            let a = u * w - model.v;
            let s = model.amplitude_at(a);
            positive &= s > 0.0;
            let ds = 2.0 * a * (v[0] * w + u * v[1]) / s;
            *o = [
                2.0 * c * (ds * w + s * v[1]) * scale,
                2.0 * c * (ds * u + s * v[0]) * scale,
            ];
        }
        positive
    }
}
