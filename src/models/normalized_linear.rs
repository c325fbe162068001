//! A normalised linear model `ℓ = (θᵀx/‖θ‖ − y)²` (scale symmetry, `A = I`, THEORY §2, §6).
//!
//! Data: `x ~ N(0, diag(input_variances))`, `y = θ̂*ᵀx + σε` with a unit teacher `θ̂*`.
//! Because `ℓ` depends on `θ/‖θ‖` only, `∇ℓ ⟂ θ` and `Σ(θ) = Σ(θ̂)/‖θ‖²`: without weight
//! decay the norm grows for ever; with weight decay `γ` the charge `C = ‖θ‖²` settles at
//!
//! ```text
//! C* = sqrt(η c_B Tr Σ(θ̂) / (4γ))        (η/B · Tr Σ(θ̂) with replacement)
//! ```
//!
//! Population closed forms (online SGD and its SDE, THEORY §6.3), with `n = ‖θ‖`,
//! `θ̂ = θ/n`, `P = I − θ̂θ̂ᵀ`, `S = diag Σx`, `r = θ̂ − θ̂*`, `a = S r`,
//! `c = rᵀSr + σ²` (Gaussian fourth moments, `E[(rᵀx)² xxᵀ] = (rᵀSr) S + 2 S r rᵀ S`):
//!
//! ```text
//! L(θ) = c,   ∇L = (2/n) P a,   Σ(θ) = (4/n²) P (c S + a aᵀ) P,
//! D(θ) = (2/n) P [√c S^{1/2}, a]   (d + 1 columns, D Dᵀ = Σ)
//! ```

use crate::error::{check_finite, check_vector, Error, Result};
use crate::rng::{SeedTree, Stream};
use crate::sde::Noise;
use crate::sgd::{Dataset, Model, Population, PopulationBlockForms, PopulationForms, Sample};
use crate::symmetry::{ExponentialSymmetry, Symmetric};
use nalgebra::{DMatrix, DVector, DVectorView};
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

impl NormalizedLinear {
    /// `(n, θ̂ᵀa, c)` at `θ` (see the module docs); `a_i = S_i r_i` is recomputed by callers.
    fn population_stats(&self, theta: &[f64]) -> (f64, f64, f64) {
        let n = DVectorView::from_slice(theta, theta.len()).norm();
        let (mut hat_a, mut c) = (0.0, self.noise_std * self.noise_std);
        for (i, &theta_i) in theta.iter().enumerate() {
            let hat = theta_i / n;
            let r = hat - self.teacher[i];
            let s = self.input_std[i] * self.input_std[i];
            hat_a += hat * s * r;
            c += s * r * r;
        }
        (n, hat_a, c)
    }

    /// `a_i = S_i (θ̂_i − θ̂*_i)`.
    fn a(&self, theta: &[f64], n: f64, i: usize) -> f64 {
        self.input_std[i] * self.input_std[i] * (theta[i] / n - self.teacher[i])
    }
}

impl PopulationForms for NormalizedLinear {
    fn risk(&self, theta: &DVector<f64>) -> f64 {
        self.population_stats(theta.as_slice()).2
    }

    fn risk_gradient(&self, theta: &DVector<f64>, out: &mut DVector<f64>) {
        self.gradient_into(theta.as_slice(), out.as_mut_slice())
    }

    fn risk_hvp(&self, theta: &DVector<f64>, v: &DVector<f64>, out: &mut DVector<f64>) {
        // g = (2/n)(a − θ̂ θ̂ᵀa); along v: dn = θ̂ᵀv, dθ̂ = w = P v / n, da = S w
        let (n, hat_a, _) = self.population_stats(theta.as_slice());
        let theta = theta.as_slice();
        let d = theta.len();
        let dn: f64 = (0..d).map(|i| theta[i] / n * v[i]).sum();
        let w = |i: usize| (v[i] - theta[i] / n * dn) / n;
        let s = |i: usize| self.input_std[i] * self.input_std[i];
        let (mut w_a, mut hat_da) = (0.0, 0.0);
        for i in 0..d {
            w_a += w(i) * self.a(theta, n, i);
            hat_da += theta[i] / n * s(i) * w(i);
        }
        for i in 0..d {
            let hat = theta[i] / n;
            let a = self.a(theta, n, i);
            out[i] = -2.0 / (n * n) * dn * (a - hat * hat_a)
                + 2.0 / n * (s(i) * w(i) - w(i) * hat_a - hat * (w_a + hat_da));
        }
    }

    fn noise_covariance(&self, theta: &DVector<f64>) -> DMatrix<f64> {
        let (n, _, c) = self.population_stats(theta.as_slice());
        let d = theta.len();
        let hat = theta / n;
        let p = DMatrix::identity(d, d) - &hat * hat.transpose();
        let a = DVector::from_fn(d, |i, _| self.a(theta.as_slice(), n, i));
        let s = DMatrix::from_diagonal(&self.input_std.map(|x| x * x));
        &p * (s * c + &a * a.transpose()) * &p * (4.0 / (n * n))
    }

    fn noise_dim(&self) -> usize {
        self.teacher.len() + 1
    }

    fn noise_kind(&self) -> Noise {
        Noise::General
    }

    fn noise_factor_apply(&self, theta: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        // q = √c S^{1/2} dw[..d] + a dw[d]; out = (2/n) P q
        let (n, _, c) = self.population_stats(theta.as_slice());
        let d = theta.len();
        let sqrt_c = c.sqrt();
        let mut hat_q = 0.0;
        for i in 0..d {
            out[i] = sqrt_c * self.input_std[i] * dw[i] + self.a(theta.as_slice(), n, i) * dw[d];
            hat_q += theta[i] / n * out[i];
        }
        for i in 0..d {
            out[i] = 2.0 / n * (out[i] - theta[i] / n * hat_q);
        }
    }

    /// Block forms up to `d = 16` ([`NormalizedLinear::EXPLICIT_FACTOR_MAX_DIM`]): they form the factor
    /// `D` entry by entry (`d(d + 1)` numbers, `O(d²)` per step) where
    /// [`PopulationForms::noise_factor_apply`] applies it as a projection in `O(d)`.
    fn block_forms(&self) -> Option<&dyn PopulationBlockForms> {
        (self.dim() <= Self::EXPLICIT_FACTOR_MAX_DIM).then_some(self as &dyn PopulationBlockForms)
    }
}

/// Per path the gradient `(2/n)(a − θ̂ θ̂ᵀa)` and the explicit factor
/// `D = (2/n) P [√c S^{1/2}, a]` times the scale, row-major `d × (d + 1)`:
///
/// ```text
/// D_ij = (2/n)(δ_ij √c s_j − θ̂_i (θ̂_j √c s_j))   (j < d),     D_id = (2/n)(a_i − θ̂_i θ̂ᵀa)
/// ```
impl PopulationBlockForms for NormalizedLinear {
    fn risk_gradient_block(&self, theta: &[f64], out: &mut [f64]) {
        let d = self.dim();
        for (th, out) in theta.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            self.gradient_into(th, out);
        }
    }
    fn noise_factor_block(&self, theta: &[f64], scale: f64, out: &mut [f64]) {
        let d = self.dim();
        let m = d + 1;
        for (th, out) in theta.chunks_exact(d).zip(out.chunks_exact_mut(d * m)) {
            let (n, hat_a, c) = self.population_stats(th);
            let sqrt_c = c.sqrt();
            for i in 0..d {
                let hat_i = th[i] / n;
                let row = &mut out[i * m..(i + 1) * m];
                for j in 0..d {
                    let column = sqrt_c * self.input_std[j];
                    let diagonal = if i == j { column } else { 0.0 };
                    row[j] = 2.0 / n * (diagonal - hat_i * (th[j] / n * column)) * scale;
                }
                row[d] = 2.0 / n * (self.a(th, n, i) - hat_i * hat_a) * scale;
            }
        }
    }
}

impl NormalizedLinear {
    /// The largest `d` for which the model provides block forms (above it the explicit
    /// factor, `d(d + 1)` numbers per path and step, would cost more than the `O(d)`
    /// projection of the per-path route).
    pub const EXPLICIT_FACTOR_MAX_DIM: usize = 16;

    /// `∇L = (2/n)(a − θ̂ θ̂ᵀa)` at `theta` into `out`.
    fn gradient_into(&self, theta: &[f64], out: &mut [f64]) {
        let (n, hat_a, _) = self.population_stats(theta);
        for i in 0..theta.len() {
            out[i] = 2.0 / n * (self.a(theta, n, i) - theta[i] / n * hat_a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> NormalizedLinear {
        NormalizedLinear::new(
            DVector::from_vec(vec![1.0, 1.0, 0.0]),
            DVector::from_vec(vec![1.0, 0.5, 2.0]),
            0.5,
        )
        .expect("valid")
    }

    /// Gradient and Hessian-vector product against central differences of the closed
    /// forms one order down (step 1e-5: truncation ~1e-10, rounding ~1e-11).
    #[test]
    fn closed_form_derivatives_match_central_differences() {
        let m = model();
        let theta = DVector::from_vec(vec![0.7, -0.4, 1.3]);
        let v = DVector::from_vec(vec![0.2, 0.9, -0.5]);
        let h = 1e-5;
        let mut g = DVector::zeros(3);
        m.risk_gradient(&theta, &mut g);
        for i in 0..3 {
            let mut e = DVector::zeros(3);
            e[i] = h;
            let fd = (m.risk(&(&theta + &e)) - m.risk(&(&theta - &e))) / (2.0 * h);
            assert!((g[i] - fd).abs() < 1e-8, "grad {i}: {} vs {fd}", g[i]);
        }
        let mut hv = DVector::zeros(3);
        m.risk_hvp(&theta, &v, &mut hv);
        let (mut gp, mut gm) = (DVector::zeros(3), DVector::zeros(3));
        m.risk_gradient(&(&theta + &v * h), &mut gp);
        m.risk_gradient(&(&theta - &v * h), &mut gm);
        let fd = (gp - gm) / (2.0 * h);
        assert!((&hv - &fd).amax() < 1e-8, "{hv} vs {fd}");
    }

    /// `D Dᵀ = Σ` to rounding, and `Σ` against the sample covariance of 200,000 per-sample
    /// gradients, entry by entry within 4 standard errors (false alarm ~6e-5 per entry);
    /// the same for the risk and the gradient.
    #[test]
    fn closed_forms_match_per_sample_averages() {
        let m = model();
        let theta = DVector::from_vec(vec![0.7, -0.4, 1.3]);
        let (d, k) = (3, 4);
        let mut factor = DMatrix::zeros(d, k);
        let mut col = DVector::zeros(d);
        for j in 0..k {
            let mut e = DVector::zeros(k);
            e[j] = 1.0;
            m.noise_factor_apply(&theta, &e, &mut col);
            factor.set_column(j, &col);
        }
        let sigma = m.noise_covariance(&theta);
        assert!((&factor * factor.transpose() - &sigma).amax() < 1e-13 * sigma.amax().max(1.0));
        let n = 200_000;
        let data = m.dataset(n, 11).expect("data");
        let mut grads = DMatrix::zeros(n, d);
        let mut g = DVector::zeros(d);
        let mut losses = Vec::with_capacity(n);
        for i in 0..n {
            m.grad(&theta, data.sample(i), &mut g);
            grads.set_row(i, &g.transpose());
            losses.push(m.loss(&theta, data.sample(i)));
        }
        let mean_of = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
        let se_of = |xs: &[f64]| {
            let mu = mean_of(xs);
            (xs.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (xs.len() - 1) as f64 / xs.len() as f64)
                .sqrt()
        };
        assert!((mean_of(&losses) - m.risk(&theta)).abs() < 4.0 * se_of(&losses));
        let mut grad = DVector::zeros(d);
        m.risk_gradient(&theta, &mut grad);
        let columns: Vec<Vec<f64>> = (0..d)
            .map(|j| grads.column(j).iter().copied().collect())
            .collect();
        for j in 0..d {
            assert!(
                (mean_of(&columns[j]) - grad[j]).abs() < 4.0 * se_of(&columns[j]),
                "grad {j}"
            );
        }
        for i in 0..d {
            for j in 0..d {
                // products of the centred gradients (centred at the exact mean)
                let prods: Vec<f64> = (0..n)
                    .map(|r| (grads[(r, i)] - grad[i]) * (grads[(r, j)] - grad[j]))
                    .collect();
                let (est, se) = (mean_of(&prods), se_of(&prods));
                assert!(
                    (est - sigma[(i, j)]).abs() < 4.0 * se,
                    "Σ[{i},{j}]: {est} vs {} (se {se})",
                    sigma[(i, j)]
                );
            }
        }
    }
}
