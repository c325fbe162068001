//! Problems with exact answers, shared by tests, benches and examples (THEORY §8).
//!
//! - [`GeometricBrownianMotion`]: `dX = μX dt + sX dW`,
//!   `X_T = X_0 exp((μ − s²/2)T + s W_T)`, `E X_T = X_0 e^{μT}`,
//!   `Var X_T = X_0² e^{2μT}(e^{s²T} − 1)`.
//! - [`OrnsteinUhlenbeck`]: `dX = θ(μ − X) dt + σ dW`, stationary law `N(μ, σ²/(2θ))`.
//! - [`NonCommutative`]: `dX₁ = dW₁`, `dX₂ = sin(X₁) dW₂`; the noise does not commute
//!   (`L¹b₂ = (0, cos X₁) ≠ L²b₁ = 0`), so Milstein needs the Lévy area, and
//!   `X₂(T) = ∫ sin(W₁) dW₂` has no closed form: references are fine-grid solutions.
//! - [`DoubleWell`]: `dX = (X − X³) dt + σ dW`, additive noise with a drift curved
//!   along the noise (on Ornstein–Uhlenbeck SRA1's order-1.5 error terms vanish and it
//!   converges at order 2).
//! - [`LinearSde`]: `dX = AX dt + Σ_j B_j X dW_j` with `E X_t = e^{At} X_0`; general
//!   noise in any dimension (the `d = m = 10` benchmark problem).

use super::batch::{central_difference_block, map_block, zip_block, BlockScratch, ScalarLanes};
use super::{BatchSde, Calculus, DerivativeScratch, Sde, Structure};
use crate::error::{check_finite, check_positive, Error, Result};
use crate::simd::Kernel;
use nalgebra::{DMatrix, DVector};

/// Geometric Brownian motion `dX = μX dt + sX dW` (scalar noise, `d = m = 1`).
///
/// ```
/// use noether_sde::sde::reference::GeometricBrownianMotion;
/// let gbm = GeometricBrownianMotion::new(1.5, 0.5).unwrap();
/// assert!((gbm.mean(1.0, 1.0) - 1.5f64.exp()).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct GeometricBrownianMotion {
    mu: f64,
    sigma: f64,
    calculus: Calculus,
}

impl GeometricBrownianMotion {
    /// GBM with drift rate `mu` and volatility `sigma` (Itô form).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if either is not finite.
    pub fn new(mu: f64, sigma: f64) -> Result<Self> {
        check_finite("mu", &[mu])?;
        check_finite("sigma", &[sigma])?;
        Ok(GeometricBrownianMotion {
            mu,
            sigma,
            calculus: Calculus::Ito,
        })
    }

    /// The same process written as a Stratonovich SDE, `dX = (μ − s²/2)X dt + sX ∘ dW`,
    /// for Stratonovich schemes (stochastic Heun). The exact solution is unchanged.
    pub fn stratonovich_form(self) -> Self {
        GeometricBrownianMotion {
            calculus: Calculus::Stratonovich,
            ..self
        }
    }

    /// Drift rate μ (of the Itô form).
    pub fn mu(&self) -> f64 {
        self.mu
    }

    /// Volatility s.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// The drift rate of the form being solved: `μ` (Itô) or `μ − s²/2` (Stratonovich).
    #[inline]
    fn rate(&self) -> f64 {
        match self.calculus {
            Calculus::Ito => self.mu,
            Calculus::Stratonovich => self.mu - 0.5 * self.sigma * self.sigma,
        }
    }

    /// `X_T = X_0 exp((μ − s²/2)T + s W_T)` on the path with `W_T = w`.
    pub fn exact(&self, x0: f64, t: f64, w: f64) -> f64 {
        x0 * ((self.mu - 0.5 * self.sigma * self.sigma) * t + self.sigma * w).exp()
    }

    /// `E X_t = X_0 e^{μt}`.
    pub fn mean(&self, x0: f64, t: f64) -> f64 {
        x0 * (self.mu * t).exp()
    }

    /// `Var X_t = X_0² e^{2μt}(e^{s²t} − 1)`.
    pub fn variance(&self, x0: f64, t: f64) -> f64 {
        x0 * x0 * (2.0 * self.mu * t).exp() * ((self.sigma * self.sigma * t).exp() - 1.0)
    }
}

impl Sde for GeometricBrownianMotion {
    fn batch(&self) -> Option<&dyn BatchSde> {
        Some(self)
    }
    fn dim(&self) -> usize {
        1
    }
    fn structure(&self) -> Structure {
        Structure::scalar().with_calculus(self.calculus)
    }
    #[inline]
    fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = self.rate() * x[0];
    }
    #[inline]
    fn diffusion_apply(&self, _t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = self.sigma * x[0] * dw[0];
    }
    /// Both coefficients from one read of the state (the same arithmetic as
    /// [`Sde::drift`] and [`Sde::diffusion_apply`]).
    #[inline]
    fn drift_and_diffusion(
        &self,
        _t: f64,
        x: &DVector<f64>,
        dw: &DVector<f64>,
        drift: &mut DVector<f64>,
        diffusion: &mut DVector<f64>,
    ) {
        let x = x[0];
        drift[0] = self.rate() * x;
        diffusion[0] = self.sigma * x * dw[0];
    }
    #[inline]
    fn diffusion_derivative(
        &self,
        _t: f64,
        _x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        _scratch: &mut DerivativeScratch,
    ) {
        out[0] = self.sigma * v[0] * c[0];
    }
}

/// Ornstein–Uhlenbeck process `dX = θ(μ − X) dt + σ dW` (additive scalar noise).
#[derive(Debug, Clone, Copy)]
pub struct OrnsteinUhlenbeck {
    theta: f64,
    mu: f64,
    sigma: f64,
}

impl OrnsteinUhlenbeck {
    /// OU with mean-reversion rate `theta > 0`, long-run mean `mu`, volatility `sigma`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `theta <= 0` or any value is not finite.
    pub fn new(theta: f64, mu: f64, sigma: f64) -> Result<Self> {
        check_positive("theta", theta)?;
        check_finite("mu", &[mu])?;
        check_finite("sigma", &[sigma])?;
        Ok(OrnsteinUhlenbeck { theta, mu, sigma })
    }

    /// `E X_t = μ + (X_0 − μ) e^{−θt}`.
    pub fn mean(&self, x0: f64, t: f64) -> f64 {
        self.mu + (x0 - self.mu) * (-self.theta * t).exp()
    }

    /// `Var X_t = σ²(1 − e^{−2θt})/(2θ)`.
    pub fn variance(&self, t: f64) -> f64 {
        self.sigma * self.sigma * (1.0 - (-2.0 * self.theta * t).exp()) / (2.0 * self.theta)
    }

    /// Stationary variance `σ²/(2θ)`.
    pub fn stationary_variance(&self) -> f64 {
        self.sigma * self.sigma / (2.0 * self.theta)
    }
}

impl Sde for OrnsteinUhlenbeck {
    fn batch(&self) -> Option<&dyn BatchSde> {
        Some(self)
    }
    fn dim(&self) -> usize {
        1
    }
    fn structure(&self) -> Structure {
        Structure::additive(1)
    }
    #[inline]
    fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = self.theta * (self.mu - x[0]);
    }
    #[inline]
    fn diffusion_apply(&self, _t: f64, _x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = self.sigma * dw[0];
    }
    fn diffusion_derivative(
        &self,
        _t: f64,
        _x: &DVector<f64>,
        _v: &DVector<f64>,
        _c: &DVector<f64>,
        out: &mut DVector<f64>,
        _scratch: &mut DerivativeScratch,
    ) {
        out.fill(0.0);
    }
}

/// The two-dimensional non-commutative problem `dX₁ = dW₁`, `dX₂ = sin(X₁) dW₂`.
///
/// `L¹b₂ = (0, cos X₁)` while `L²b₁ = 0`: the commutativity condition fails wherever
/// `cos X₁ ≠ 0`, so Milstein without the Lévy area `A₁₂` has strong order 1/2 only.
/// Uses the finite-difference default for its derivative on purpose (it exercises it).
#[derive(Debug, Clone, Copy, Default)]
pub struct NonCommutative;

impl Sde for NonCommutative {
    fn batch(&self) -> Option<&dyn BatchSde> {
        Some(self)
    }
    fn dim(&self) -> usize {
        2
    }
    fn structure(&self) -> Structure {
        Structure::general(2)
    }
    fn drift(&self, _t: f64, _x: &DVector<f64>, out: &mut DVector<f64>) {
        out.fill(0.0);
    }
    fn diffusion_apply(&self, _t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = dw[0];
        out[1] = x[0].sin() * dw[1];
    }
}

/// Overdamped motion in the double well `U(x) = x⁴/4 − x²/2` with additive noise:
/// `dX = (X − X³) dt + σ dW` (`d = m = 1`).
///
/// The drift's curvature along the noise (`a'' b² = −6Xσ² ≠ 0`) keeps the order-2
/// Itô–Taylor terms `I_(1,1,0)` alive, so order-1.5 additive-noise schemes show their
/// order here (on Ornstein–Uhlenbeck, or on a Langevin system whose noise only enters
/// linearly, SRA1 converges at order 2).
///
/// ```
/// use noether_sde::sde::reference::DoubleWell;
/// use noether_sde::sde::{Noise, Sde, SdeExt};
/// let sde = DoubleWell::new(0.8)?;
/// assert_eq!((sde.dim(), sde.noise_dim(), sde.noise()), (1, 1, Noise::Additive));
/// # Ok::<(), noether_sde::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DoubleWell {
    sigma: f64,
}

impl DoubleWell {
    /// Noise `sigma`.
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a non-finite `sigma`.
    pub fn new(sigma: f64) -> Result<Self> {
        check_finite("sigma", &[sigma])?;
        Ok(DoubleWell { sigma })
    }
}

impl Sde for DoubleWell {
    fn dim(&self) -> usize {
        1
    }
    fn structure(&self) -> Structure {
        Structure::additive(1)
    }
    fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = x[0] - x[0] * x[0] * x[0];
    }
    fn diffusion_apply(&self, _t: f64, _x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = self.sigma * dw[0];
    }
    fn diffusion_derivative(
        &self,
        _t: f64,
        _x: &DVector<f64>,
        _v: &DVector<f64>,
        _c: &DVector<f64>,
        out: &mut DVector<f64>,
        _scratch: &mut DerivativeScratch,
    ) {
        out.fill(0.0);
    }
}

/// Linear SDE with multiplicative general noise `dX = AX dt + Σ_j B_j X dW_j`.
///
/// `E X_t = e^{At} X_0` for any `B_j` (Itô). The noise is general unless the `B_j`
/// commute.
#[derive(Debug, Clone)]
pub struct LinearSde {
    a: DMatrix<f64>,
    b: Vec<DMatrix<f64>>,
}

impl LinearSde {
    /// Builds the SDE from the `d × d` drift matrix `a` and `m` diffusion matrices `b`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] if a matrix is not `d × d`, [`Error::NonFinite`]
    /// for NaN or infinite entries, [`Error::InvalidParameter`] if `b` is empty or `a` is 0×0.
    pub fn new(a: DMatrix<f64>, b: Vec<DMatrix<f64>>) -> Result<Self> {
        let d = a.nrows();
        if d == 0 {
            return Err(Error::invalid(
                "a",
                "0×0",
                "the state needs at least one dimension",
            ));
        }
        if a.ncols() != d {
            return Err(Error::DimensionMismatch {
                what: "drift matrix columns",
                expected: d,
                got: a.ncols(),
            });
        }
        check_finite("drift matrix", a.as_slice())?;
        if b.is_empty() {
            return Err(Error::invalid(
                "b",
                "[]",
                "at least one diffusion matrix is needed",
            ));
        }
        for bj in &b {
            if bj.nrows() != d || bj.ncols() != d {
                return Err(Error::DimensionMismatch {
                    what: "diffusion matrix size",
                    expected: d,
                    got: if bj.nrows() != d { bj.nrows() } else { bj.ncols() },
                });
            }
            check_finite("diffusion matrix", bj.as_slice())?;
        }
        Ok(LinearSde { a, b })
    }

    /// A reproducible test instance: `A = −I/2`, `B_j` with independent `N(0, s²/d)`
    /// entries drawn from `seed`.
    pub fn random(dim: usize, noise_dim: usize, s: f64, seed: u64) -> Self {
        use rand::RngExt;
        use rand_distr::StandardNormal;
        let mut rng = crate::rng::SeedTree::new(seed).rng(0, crate::rng::Stream::Init);
        let scale = s / (dim as f64).sqrt();
        let b = (0..noise_dim)
            .map(|_| DMatrix::from_fn(dim, dim, |_, _| scale * rng.sample::<f64, _>(StandardNormal)))
            .collect();
        LinearSde {
            a: DMatrix::identity(dim, dim) * -0.5,
            b,
        }
    }

    /// The three-noise non-commutative instance of the weak order-2 studies: `d = 2`,
    ///
    /// ```text
    /// A = [[−0.5, 0.4], [−0.3, −0.6]],  B₁ = 0.4 [[0, 1], [1, 0]],
    /// B₂ = 0.4 [[1, 0], [0, −1]],        B₃ = 0.3 [[0, −1], [1, 0]],
    /// ```
    ///
    /// whose `B_j` pairwise do not commute (`B₁B₂ = −B₂B₁ ≠ 0`, …), so `L^j b_k ≠ L^k b_j`.
    pub fn three_noise() -> Self {
        let m = |s: f64, v: [f64; 4]| DMatrix::from_row_slice(2, 2, &v) * s;
        LinearSde {
            a: m(1.0, [-0.5, 0.4, -0.3, -0.6]),
            b: vec![
                m(0.4, [0.0, 1.0, 1.0, 0.0]),
                m(0.4, [1.0, 0.0, 0.0, -1.0]),
                m(0.3, [0.0, -1.0, 1.0, 0.0]),
            ],
        }
    }

    /// `E X_t = e^{At} X_0`.
    pub fn mean(&self, x0: &DVector<f64>, t: f64) -> DVector<f64> {
        (&self.a * t).exp() * x0
    }

    /// The second moment `M_t = E[X_t X_tᵀ]`, which solves the linear ODE
    /// `Ṁ = AM + MAᵀ + Σ_j B_j M B_jᵀ` (Itô), so `vec M_t = e^{Lt} vec(X₀X₀ᵀ)` with
    /// `L = I⊗A + A⊗I + Σ_j B_j⊗B_j` (`d² × d²`; meant for small `d`).
    ///
    /// ```
    /// use noether_sde::sde::reference::LinearSde;
    /// use nalgebra::{DMatrix, DVector};
    /// // scalar GBM: E X_t² = X₀² e^{(2μ + s²)t}
    /// let gbm = LinearSde::new(DMatrix::from_element(1, 1, 0.3), vec![DMatrix::from_element(1, 1, 0.5)])?;
    /// let m = gbm.second_moment(&DVector::from_element(1, 2.0), 1.5);
    /// assert!((m[(0, 0)] - 4.0 * ((0.6f64 + 0.25) * 1.5).exp()).abs() < 1e-12);
    /// # Ok::<(), noether_sde::Error>(())
    /// ```
    pub fn second_moment(&self, x0: &DVector<f64>, t: f64) -> DMatrix<f64> {
        let d = self.a.nrows();
        let identity = DMatrix::<f64>::identity(d, d);
        let mut generator = identity.kronecker(&self.a) + self.a.kronecker(&identity);
        for bj in &self.b {
            generator += bj.kronecker(bj);
        }
        let start = x0 * x0.transpose();
        let vec_m = (generator * t).exp() * DVector::from_column_slice(start.as_slice());
        DMatrix::from_column_slice(d, d, vec_m.as_slice())
    }
}

impl Sde for LinearSde {
    fn dim(&self) -> usize {
        self.a.nrows()
    }
    fn structure(&self) -> Structure {
        Structure::general(self.b.len())
    }
    fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        self.a.mul_to(x, out);
    }
    fn diffusion_apply(&self, _t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out.fill(0.0);
        for (bj, &w) in self.b.iter().zip(dw.iter()) {
            out.gemv(w, bj, x, 1.0);
        }
    }
    fn diffusion_derivative(
        &self,
        t: f64,
        _x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        _scratch: &mut DerivativeScratch,
    ) {
        // b(x) c is linear in x, so its derivative along v is b(v) c.
        self.diffusion_apply(t, v, c, out);
    }
}

/// GBM on a block, with [`Sde`]'s arithmetic per path: `b = s·x` (so `b·ΔW` is the
/// per-path `s·x·ΔW`), Milstein term along `c`: `s·((s·x)·c)·c` (the per-path
/// `∂b[b·c]·c`, `L¹b` for `c = 1`).
impl BatchSde for GeometricBrownianMotion {
    #[inline]
    fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        let rate = self.rate();
        map_block(Kernel::detect(), x, out, |x| rate * x);
        Ok(())
    }
    #[inline]
    fn diffusion_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        let sigma = self.sigma;
        map_block(Kernel::detect(), x, out, |x| sigma * x);
        Ok(())
    }
    fn has_milstein_block(&self) -> bool {
        true
    }
    #[inline]
    fn milstein_block(&self, _t: f64, x: &[f64], c: &[f64], out: &mut [f64]) -> Result<()> {
        let sigma = self.sigma;
        zip_block(Kernel::detect(), x, c, out, |x, c| sigma * (sigma * x * c) * c);
        Ok(())
    }
    /// The three block methods' numbers in one pass (`c = 1` as the driver passes it).
    #[inline]
    fn scalar_step(&self, _t: f64, step: ScalarLanes<'_>) -> Option<bool> {
        let (rate, sigma) = (self.rate(), self.sigma);
        Some(step.run(|x| [rate * x, sigma * x, sigma * (sigma * x * 1.0) * 1.0]))
    }
}

/// Ornstein–Uhlenbeck on a block: `a = θ(μ − x)`, `b = σ` (additive: no Milstein term).
impl BatchSde for OrnsteinUhlenbeck {
    #[inline]
    fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        let (theta, mu) = (self.theta, self.mu);
        map_block(Kernel::detect(), x, out, |x| theta * (mu - x));
        Ok(())
    }
    #[inline]
    fn diffusion_block(&self, _t: f64, _x: &[f64], out: &mut [f64]) -> Result<()> {
        out.fill(self.sigma);
        Ok(())
    }
    /// The block methods' numbers in one pass (additive noise: Milstein adds nothing, so
    /// the driver reads no `c`).
    #[inline]
    fn scalar_step(&self, _t: f64, step: ScalarLanes<'_>) -> Option<bool> {
        let (theta, mu, sigma) = (self.theta, self.mu, self.sigma);
        Some(step.run(|x| [theta * (mu - x), sigma, 0.0]))
    }
}

/// `dX₁ = dW₁`, `dX₂ = sin(X₁) dW₂` on a block: `b = [[1, 0], [0, sin X₁]]` per path
/// (general noise, row-major); the derivative terms by the library's central difference
/// on the block ([`central_difference_block`]), the per-path default's numbers.
impl BatchSde for NonCommutative {
    fn has_derivative_block(&self) -> bool {
        true
    }
    fn derivative_block(
        &self,
        t: f64,
        x: &[f64],
        v: &[f64],
        c: &[f64],
        out: &mut [f64],
        scratch: &mut BlockScratch,
    ) -> Result<()> {
        central_difference_block(self, t, x, v, c, out, scratch)
    }
    fn drift_block(&self, _t: f64, _x: &[f64], out: &mut [f64]) -> Result<()> {
        out.fill(0.0);
        Ok(())
    }
    fn diffusion_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        for (b, x) in out.chunks_exact_mut(4).zip(x.chunks_exact(2)) {
            b.copy_from_slice(&[1.0, 0.0, 0.0, x[0].sin()]);
        }
        Ok(())
    }
}
