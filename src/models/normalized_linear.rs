//! A normalised linear model `ℓ = (θᵀx/‖θ‖ − y)²` (scale symmetry, `A = I`, THEORY §2, §6).
//!
//! Data: `x ~ N(0, diag(input_variances))`, `y = θ̂*ᵀx + σε` with a unit teacher `θ̂*`.
//! Because `ℓ` depends on `θ/‖θ‖` only, `∇ℓ ⟂ θ` and `Σ(θ) = Σ(θ̂)/‖θ‖²`: without weight
//! decay the norm grows for ever; with weight decay `γ` the charge `C = ‖θ‖²` settles at
//!
//! ```text
//! C* = sqrt(η c_B Tr Σ(θ̂) / (4γ))        (η/B · Tr Σ(θ̂) with replacement)
//! ```

use crate::error::{check_finite, check_vector, Error, Result};
use crate::rng::{SeedTree, Stream};
use crate::sgd::{Dataset, Model, Population, Sample};
use crate::symmetry::{ExponentialSymmetry, Symmetric};
use nalgebra::DVector;
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

/// `ℓ = (θᵀx/‖θ‖ − y)²` with a unit-norm teacher.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizedLinear {
    teacher: DVector<f64>,
    input_std: DVector<f64>,
    noise_std: f64,
}

impl NormalizedLinear {
    /// Teacher direction (normalised here), input variances (diagonal of `Σ_x`), label noise.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a zero teacher, non-positive variances or `σ < 0`;
    /// [`Error::DimensionMismatch`] if the lengths differ.
    pub fn new(teacher: DVector<f64>, input_variances: DVector<f64>, noise_std: f64) -> Result<Self> {
        let d = teacher.len();
        check_vector("teacher", &teacher, d)?;
        check_vector("input_variances", &input_variances, d)?;
        let n = teacher.norm();
        if n <= 0.0 {
            return Err(Error::invalid("teacher", "0", "must be non-zero"));
        }
        if input_variances.iter().any(|&v| v <= 0.0) {
            return Err(Error::invalid("input_variances", "≤ 0", "must be positive"));
        }
        if !(noise_std.is_finite() && noise_std >= 0.0) {
            return Err(Error::invalid("noise_std", noise_std, "must be finite and >= 0"));
        }
        Ok(NormalizedLinear {
            teacher: teacher / n,
            input_std: input_variances.map(f64::sqrt),
            noise_std,
        })
    }

    /// The unit teacher `θ̂*`.
    pub fn teacher(&self) -> &DVector<f64> {
        &self.teacher
    }

    /// A data set of `n` samples (path 0, stream `Init` of `seed`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `n = 0`.
    pub fn dataset(&self, n: usize, seed: u64) -> Result<Dataset> {
        Dataset::from_population(self, n, &mut SeedTree::new(seed).rng(0, Stream::Init))
    }

    /// `C* = sqrt(η c_B Tr Σ(θ̂)/(4γ))` from the noise trace at a unit-norm point.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless `γ > 0` and the other values are finite and ≥ 0.
    pub fn equilibrium_norm_squared(eta_cb: f64, trace_sigma_unit: f64, gamma: f64) -> Result<f64> {
        check_finite("trace", &[trace_sigma_unit, eta_cb])?;
        crate::error::check_positive("weight_decay", gamma)?;
        Ok((eta_cb * trace_sigma_unit / (4.0 * gamma)).sqrt())
    }
}

impl Symmetric for NormalizedLinear {
    /// The scale symmetry `θ → e^λ θ`: `A = I`, `C = ‖θ‖²`.
    fn symmetry(&self) -> Result<ExponentialSymmetry> {
        let d = self.dim();
        ExponentialSymmetry::scaling(d, &(0..d).collect::<Vec<_>>())
    }
}

impl Model for NormalizedLinear {
    fn dim(&self) -> usize {
        self.teacher.len()
    }
    fn input_dim(&self) -> usize {
        self.teacher.len()
    }
    fn target_dim(&self) -> usize {
        1
    }
    fn loss(&self, theta: &DVector<f64>, s: Sample<'_>) -> f64 {
        let n = theta.norm();
        let z: f64 = theta.iter().zip(s.x).map(|(t, x)| t * x).sum::<f64>() / n;
        (z - s.y[0]).powi(2)
    }
    fn grad(&self, theta: &DVector<f64>, s: Sample<'_>, out: &mut DVector<f64>) {
        let n = theta.norm();
        let z: f64 = theta.iter().zip(s.x).map(|(t, x)| t * x).sum::<f64>() / n;
        let r2 = 2.0 * (z - s.y[0]) / n;
        for i in 0..theta.len() {
            out[i] = r2 * (s.x[i] - z * theta[i] / n);
        }
    }
}

impl Population for NormalizedLinear {
    fn input_dim(&self) -> usize {
        self.teacher.len()
    }
    fn target_dim(&self) -> usize {
        1
    }
    fn draw(&self, rng: &mut dyn Rng, x: &mut [f64], y: &mut [f64]) {
        let mut t = 0.0;
        for (i, xi) in x.iter_mut().enumerate() {
            *xi = self.input_std[i] * rng.sample::<f64, _>(StandardNormal);
            t += self.teacher[i] * *xi;
        }
        y[0] = t + self.noise_std * rng.sample::<f64, _>(StandardNormal);
    }
}
