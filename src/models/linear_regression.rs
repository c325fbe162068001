//! Linear regression `ℓ = (θᵀx − y)²`, `x ~ N(0, Σ_x)`, `y = θ*ᵀx + σε` (THEORY §1, §8).
//!
//! Closed forms with `δ = θ − θ*`:
//!
//! ```text
//! L = δᵀΣ_xδ + σ²,   ∇L = 2Σ_xδ,   ∇²L = 2Σ_x,
//! Σ(θ) = 4[(δᵀΣ_xδ + σ²) Σ_x + Σ_xδ δᵀΣ_x]      (Isserlis),
//! D(θ) = 2[√(δᵀΣ_xδ + σ²) L_x,  Σ_xδ]            (d × (d+1), D Dᵀ = Σ, L_x L_xᵀ = Σ_x).
//! ```
//!
//! On a finite data set the gradient is affine and `Σ(θ)` quadratic in `θ`, so the first
//! two moments of SGD and of its SDE obey closed linear recursions/ODEs:
//! [`finite_sgd_moments`] (exact) and [`finite_sde_moments`] (RK4 on the moment ODE).

use crate::error::{check_finite, check_vector, Error, Result};
use crate::rng::{SeedTree, Stream};
use crate::sde::Noise;
use crate::sgd::with_flat_scratch;
use crate::sgd::{
    Dataset, GeneralizedLinearModel, Model, ModifiedEquation, Population, PopulationForms, Sample, SgdConfig,
};
use nalgebra::{Cholesky, DMatrix, DVector};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

/// Linear regression with Gaussian inputs of covariance `Σ_x` and label noise `σ`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearRegression {
    theta_star: DVector<f64>,
    sigma_x: DMatrix<f64>,
    chol: DMatrix<f64>,
    noise_std: f64,
}

impl LinearRegression {
    /// Teacher `θ*`, input covariance `Σ_x` (symmetric positive definite), label noise `σ ≥ 0`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`], [`Error::NonFinite`], or [`Error::InvalidParameter`] if
    /// `Σ_x` is not symmetric positive definite or `σ < 0`.
    pub fn new(theta_star: DVector<f64>, sigma_x: DMatrix<f64>, noise_std: f64) -> Result<Self> {
        let d = theta_star.len();
        check_vector("theta_star", &theta_star, d)?;
        if sigma_x.nrows() != d || sigma_x.ncols() != d {
            return Err(Error::DimensionMismatch {
                what: "sigma_x",
                expected: d,
                got: sigma_x.nrows(),
            });
        }
        check_finite("sigma_x", sigma_x.as_slice())?;
        if (&sigma_x - sigma_x.transpose()).amax() > 1e-12 * sigma_x.amax().max(1.0) {
            return Err(Error::invalid("sigma_x", "matrix", "must be symmetric"));
        }
        let chol = Cholesky::new(sigma_x.clone())
            .ok_or_else(|| Error::invalid("sigma_x", "matrix", "must be positive definite"))?
            .l();
        if !(noise_std.is_finite() && noise_std >= 0.0) {
            return Err(Error::invalid("noise_std", noise_std, "must be finite and >= 0"));
        }
        Ok(LinearRegression {
            theta_star,
            sigma_x,
            chol,
            noise_std,
        })
    }

    /// Teacher `θ*`.
    pub fn theta_star(&self) -> &DVector<f64> {
        &self.theta_star
    }

    /// Input covariance `Σ_x`.
    pub fn sigma_x(&self) -> &DMatrix<f64> {
        &self.sigma_x
    }

    /// Label-noise standard deviation `σ`.
    pub fn noise_std(&self) -> f64 {
        self.noise_std
    }

    /// A data set of `n` samples drawn from the population (path 0, stream `Init` of `seed`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `n = 0`.
    pub fn dataset(&self, n: usize, seed: u64) -> Result<Dataset> {
        let mut rng = SeedTree::new(seed).rng(0, Stream::Init);
        Dataset::from_population(self, n, &mut rng)
    }
}

impl Model for LinearRegression {
    fn dim(&self) -> usize {
        self.theta_star.len()
    }
    fn input_dim(&self) -> usize {
        self.theta_star.len()
    }
    fn target_dim(&self) -> usize {
        1
    }
    fn loss(&self, theta: &DVector<f64>, s: Sample<'_>) -> f64 {
        let r = dot(theta.as_slice(), s.x) - s.y[0];
        r * r
    }
    // always inlined: the per-sample pass of the SGD-SDE is compiled for the CPU's
    // vectors (`Kernel::vectorised`), and this must be compiled into it
    #[inline(always)]
    fn grad(&self, theta: &DVector<f64>, s: Sample<'_>, out: &mut DVector<f64>) {
        let r2 = 2.0 * (dot(theta.as_slice(), s.x) - s.y[0]);
        for (o, &x) in out.as_mut_slice().iter_mut().zip(s.x) {
            *o = r2 * x;
        }
    }
    fn hvp(&self, _theta: &DVector<f64>, s: Sample<'_>, v: &DVector<f64>, out: &mut DVector<f64>) {
        let xv2 = 2.0 * dot(v.as_slice(), s.x);
        for (o, &x) in out.as_mut_slice().iter_mut().zip(s.x) {
            *o = xv2 * x;
        }
    }
}

/// `∇ℓ = 2(θᵀx − y) x`: the batched SGD-SDE step applies (the same formula as
/// [`Model::grad`]).
impl GeneralizedLinearModel for LinearRegression {
    #[inline]
    fn loss_derivative(&self, z: f64, y: f64) -> f64 {
        2.0 * (z - y)
    }
}

/// Dot product with sixteen independent accumulators (two 8-wide vectors, so the
/// compiler vectorises it and the add latency is hidden; the summation order is fixed,
/// so results are reproducible on every instruction set). Always inlined, so that it is
/// compiled for the vectors of the pass that calls it.
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    const W: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; W];
    let (mut ca, mut cb) = (a.chunks_exact(W), b.chunks_exact(W));
    for (x, y) in (&mut ca).zip(&mut cb) {
        let (x, y): (&[f64; W], &[f64; W]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for ((acc, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *acc += x * y;
        }
    }
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    // fixed pairwise tree: 16 → 8 → 4 → 2 → 1
    let mut width = W;
    while width > 1 {
        width /= 2;
        for k in 0..width {
            acc[k] += acc[k + width];
        }
    }
    acc[0] + tail
}

impl Population for LinearRegression {
    fn input_dim(&self) -> usize {
        self.theta_star.len()
    }
    fn target_dim(&self) -> usize {
        1
    }
    fn draw(&self, rng: &mut dyn Rng, x: &mut [f64], y: &mut [f64]) {
        let d = self.theta_star.len();
        for v in x.iter_mut() {
            *v = 0.0;
        }
        for j in 0..d {
            let z: f64 = rng.sample(StandardNormal);
            for (i, xi) in x.iter_mut().enumerate().skip(j) {
                *xi += self.chol[(i, j)] * z;
            }
        }
        let eps: f64 = rng.sample(StandardNormal);
        y[0] = dot(self.theta_star.as_slice(), x) + self.noise_std * eps;
    }
}

impl LinearRegression {
    /// `u = Σ_x (θ − θ*)` into `u` and returns `q = (θ − θ*)ᵀu + σ²` (the per-sample
    /// gradient is `2x(xᵀδ − ε)`); `delta` is scratch. Allocates nothing.
    fn delta_stats(&self, theta: &DVector<f64>, delta: &mut [f64], u: &mut [f64]) -> f64 {
        for ((d, &t), &s) in delta.iter_mut().zip(theta.iter()).zip(self.theta_star.iter()) {
            *d = t - s;
        }
        for (i, ui) in u.iter_mut().enumerate() {
            *ui = self
                .sigma_x
                .row(i)
                .iter()
                .zip(delta.iter())
                .map(|(a, b)| a * b)
                .sum();
        }
        dot(delta, u) + self.noise_std * self.noise_std
    }
}

impl PopulationForms for LinearRegression {
    fn risk(&self, theta: &DVector<f64>) -> f64 {
        let d = theta.len();
        with_flat_scratch(2 * d, |buf| {
            let (delta, u) = buf.split_at_mut(d);
            self.delta_stats(theta, delta, u)
        })
    }
    fn risk_gradient(&self, theta: &DVector<f64>, out: &mut DVector<f64>) {
        let d = theta.len();
        with_flat_scratch(d, |delta| {
            self.delta_stats(theta, delta, out.as_mut_slice());
        });
        *out *= 2.0;
    }
    fn risk_hvp(&self, _theta: &DVector<f64>, v: &DVector<f64>, out: &mut DVector<f64>) {
        self.sigma_x.mul_to(v, out);
        *out *= 2.0;
    }
    fn noise_covariance(&self, theta: &DVector<f64>) -> DMatrix<f64> {
        let d = theta.len();
        let (mut delta, mut u) = (vec![0.0; d], DVector::zeros(d));
        let q = self.delta_stats(theta, &mut delta, u.as_mut_slice());
        (&self.sigma_x * q + &u * u.transpose()) * 4.0
    }
    fn noise_dim(&self) -> usize {
        self.theta_star.len() + 1
    }
    fn noise_kind(&self) -> Noise {
        Noise::General
    }
    fn noise_factor_apply(&self, theta: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        let d = self.theta_star.len();
        with_flat_scratch(2 * d, |buf| {
            let (delta, u) = buf.split_at_mut(d);
            let sq = self.delta_stats(theta, delta, u).sqrt();
            for i in 0..d {
                let mut acc = 0.0;
                for j in 0..=i {
                    acc += self.chol[(i, j)] * dw[j];
                }
                out[i] = 2.0 * (sq * acc + u[i] * dw[d]);
            }
        })
    }
}

/// First and second moments `E θ`, `E θθᵀ`.
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    /// `E θ`.
    pub mean: DVector<f64>,
    /// `E θθᵀ`.
    pub second: DMatrix<f64>,
}

impl Moments {
    /// The covariance `E θθᵀ − E θ E θᵀ`.
    pub fn covariance(&self) -> DMatrix<f64> {
        &self.second - &self.mean * self.mean.transpose()
    }
}

/// Data-set statistics of linear regression: `H = (2/N)XᵀX`, `b = (2/N)Xᵀy`, so that
/// `∇L(θ) = Hθ − b`.
struct FiniteStats {
    x: DMatrix<f64>,
    y: DVector<f64>,
    h: DMatrix<f64>,
    b: DVector<f64>,
}

impl FiniteStats {
    fn new(data: &Dataset) -> Self {
        let x = data.inputs();
        let y = data.targets().column(0).into_owned();
        let n = data.len() as f64;
        let h = x.transpose() * &x * (2.0 / n);
        let b = x.transpose() * &y * (2.0 / n);
        FiniteStats { x, y, h, b }
    }

    /// `E[Σ(θ)]` over θ with moments `(m, S)`: `(4/N)Σ x_i x_iᵀ E r_i² − E[∇L∇Lᵀ]`.
    fn expected_noise(&self, m: &DVector<f64>, s: &DMatrix<f64>) -> DMatrix<f64> {
        let n = self.x.nrows();
        let d = self.x.ncols();
        let mut q = DMatrix::zeros(d, d);
        for i in 0..n {
            let xi = self.x.row(i).transpose();
            let er2 = (s * &xi).dot(&xi) - 2.0 * self.y[i] * xi.dot(m) + self.y[i] * self.y[i];
            q.ger(4.0 * er2 / n as f64, &xi, &xi, 1.0);
        }
        q - self.expected_gradient_outer(m, s)
    }

    /// `E[∇L∇Lᵀ] = HSH − Hmbᵀ − bmᵀH + bbᵀ`.
    fn expected_gradient_outer(&self, m: &DVector<f64>, s: &DMatrix<f64>) -> DMatrix<f64> {
        let hm = &self.h * m;
        &self.h * s * &self.h - &hm * self.b.transpose() - &self.b * hm.transpose()
            + &self.b * self.b.transpose()
    }
}

fn check_moment_inputs(data: &Dataset, config: &SgdConfig, theta0: &DVector<f64>) -> Result<()> {
    config.validate(Some(data.len()))?;
    if data.target_dim() != 1 {
        return Err(Error::DimensionMismatch {
            what: "data target dimension",
            expected: 1,
            got: data.target_dim(),
        });
    }
    check_vector("theta0", theta0, data.input_dim())?;
    if !matches!(config.schedule, crate::sgd::Schedule::Constant { .. }) {
        return Err(Error::invalid(
            "schedule",
            "warmup",
            "exact moments need a constant learning rate",
        ));
    }
    Ok(())
}

/// Exact first and second moments of discrete SGD on linear regression with the finite
/// data set `data`, after `steps` steps from the deterministic `theta0`:
///
/// ```text
/// m' = c m − η(Hm − b),                 c = 1 − 2ηγ,
/// S' = c²S − cη(SH + HS − mbᵀ − bmᵀ) + η²(E[∇L∇Lᵀ] + c_B E[Σ(θ)]),
/// ```
///
/// with `c_B` the batch covariance factor of THEORY §1 (with or without replacement).
///
/// # Errors
/// Invalid configuration, non-constant schedule, or dimensions that do not match.
pub fn finite_sgd_moments(
    data: &Dataset,
    config: &SgdConfig,
    theta0: &DVector<f64>,
    steps: usize,
) -> Result<Moments> {
    check_moment_inputs(data, config, theta0)?;
    let st = FiniteStats::new(data);
    let eta = config.schedule.eta(0.0);
    let c = 1.0 - 2.0 * eta * config.weight_decay;
    let cb = config.covariance_factor(Some(data.len()));
    let mut m = theta0.clone();
    let mut s = theta0 * theta0.transpose();
    for _ in 0..steps {
        let grad_outer = st.expected_gradient_outer(&m, &s);
        let noise = st.expected_noise(&m, &s);
        let mb = &m * st.b.transpose();
        let cross = &s * &st.h + &st.h * &s - &mb - mb.transpose();
        let s_next = &s * (c * c) - cross * (c * eta) + (grad_outer + noise * cb) * (eta * eta);
        m = &m * c - (&st.h * &m - &st.b) * eta;
        s = s_next;
    }
    Ok(Moments { mean: m, second: s })
}

/// First and second moments of the SGD-SDE (first or second modified equation) on the
/// same data, at time `t`, by classical RK4 with step `h` on the moment ODE
///
/// ```text
/// dm/dt = −A'm + b',   dS/dt = −(A'S + SA'ᵀ) + b'mᵀ + mb'ᵀ + η c_B E[Σ(θ)],
/// A' = P A, b' = P b, A = H + 2γI, P = I (first order) or I + (η/2)A (second order).
/// ```
///
/// RK4's own error is `O(h⁴)`; callers show it is negligible by halving `h`.
///
/// # Errors
/// As [`finite_sgd_moments`], and [`Error::InvalidParameter`] for `h <= 0` or `t < 0`.
pub fn finite_sde_moments(
    data: &Dataset,
    config: &SgdConfig,
    theta0: &DVector<f64>,
    t: f64,
    h: f64,
) -> Result<Moments> {
    check_moment_inputs(data, config, theta0)?;
    crate::error::check_positive("h", h)?;
    if !(t.is_finite() && t >= 0.0) {
        return Err(Error::invalid("t", t, "must be finite and >= 0"));
    }
    let st = FiniteStats::new(data);
    let d = theta0.len();
    let eta = config.schedule.eta(0.0);
    let cb = config.covariance_factor(Some(data.len()));
    let a = &st.h + DMatrix::identity(d, d) * (2.0 * config.weight_decay);
    let p = match config.order {
        ModifiedEquation::First => DMatrix::identity(d, d),
        ModifiedEquation::Second => DMatrix::identity(d, d) + &a * (0.5 * eta),
    };
    let ap = &p * &a;
    let bp = &p * &st.b;
    let rhs = |m: &DVector<f64>, s: &DMatrix<f64>| {
        let dm = -(&ap * m) + &bp;
        let bm = &bp * m.transpose();
        let ds =
            -(&ap * s) - s * ap.transpose() + &bm + bm.transpose() + st.expected_noise(m, s) * (eta * cb);
        (dm, ds)
    };
    let steps = (t / h).ceil() as usize;
    let dt = if steps == 0 { 0.0 } else { t / steps as f64 };
    let mut m = theta0.clone();
    let mut s = theta0 * theta0.transpose();
    for _ in 0..steps {
        let (k1m, k1s) = rhs(&m, &s);
        let (k2m, k2s) = rhs(&(&m + &k1m * (0.5 * dt)), &(&s + &k1s * (0.5 * dt)));
        let (k3m, k3s) = rhs(&(&m + &k2m * (0.5 * dt)), &(&s + &k2s * (0.5 * dt)));
        let (k4m, k4s) = rhs(&(&m + &k3m * dt), &(&s + &k3s * dt));
        m += (k1m + k2m * 2.0 + k3m * 2.0 + k4m) * (dt / 6.0);
        s += (k1s + k2s * 2.0 + k3s * 2.0 + k4s) * (dt / 6.0);
    }
    Ok(Moments { mean: m, second: s })
}
