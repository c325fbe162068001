//! Matrix factorisation (a deep linear network) `f(x) = U W x`, `y = V x + ε`, with
//! independent zero-mean Gaussian `x ~ N(0, Σ_x)`, `ε ~ N(0, Σ_ε)` (diagonal covariances),
//! loss `ℓ = ‖UWx − y‖²` (THEORY §6).
//!
//! Parameters `θ = [vec U; vec W]` (column-major; `U` is `d_out × h`, `W` is `h × d_in`),
//! the layout of [`crate::symmetry::ExponentialSymmetry::matrix_factorization`].
//!
//! Closed forms, with `E = UW − V`:
//!
//! ```text
//! L = Tr(EΣ_xEᵀ) + TrΣ_ε,   ∇_U L = 2EΣ_xWᵀ,   ∇_W L = 2UᵀEΣ_x,
//! ```
//!
//! and `Σ(θ)` exactly by Isserlis' theorem: every gradient component is
//! `g_j = 2(α_jᵀz)(β_jᵀz)` for `z = (x, ε)` with `Cov z = C = diag(Σ_x, Σ_ε)`, so
//! `Σ_jl = 4[(α_jᵀCα_l)(β_jᵀCβ_l) + (α_jᵀCβ_l)(β_jᵀCα_l)]`.
//!
//! The noise factor is exact and needs no decomposition: with `z = C^{1/2}ξ`,
//! `g_j = 2ξᵀM_jξ`, `M_j = C^{1/2} sym(α_jβ_jᵀ) C^{1/2}`, and for a standard normal `ξ`
//! `Cov(ξᵀAξ, ξᵀBξ) = 2 Tr(AB)`, so `Σ_jl = 8 Tr(M_jM_l) = Σ_{a≤b} D_{j,ab} D_{l,ab}` with
//! one column per pair `a ≤ b` of the `n_z = d_in + d_out` latent coordinates:
//!
//! ```text
//! D_{j,aa} = √8 α̃_ja β̃_ja,   D_{j,ab} = 2(α̃_ja β̃_jb + β̃_ja α̃_jb)  (a < b),   α̃ = C^{1/2}α, β̃ = C^{1/2}β,
//! ```
//!
//! `n_z(n_z + 1)/2` columns, `O(d n_z²)` per application, no allocation (the per-step
//! products `E` and `UᵀE` live in a per-thread scratch buffer).
//!
//! The noise equilibrium at a global minimum is balanced and aligned,
//! `Tr(Σ_ε) WΣ_xWᵀ = Tr(Σ_x) UᵀΣ_εU`, solved by the SVD formula of THEORY §6
//! ([`MatrixFactorization::equilibrium`]).

use crate::error::{check_finite, check_vector, Error, Result};
use crate::rng::{SeedTree, Stream};
use crate::sde::Noise;
use crate::sgd::with_flat_scratch;
use crate::sgd::{Dataset, Model, Population, PopulationBlockForms, PopulationForms, Sample};
use crate::symmetry::layout::TwoLayerLayout;
use crate::symmetry::{ExponentialSymmetry, Symmetric};
use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

/// Matrix factorisation with anisotropic input and label noise.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixFactorization {
    d_in: usize,
    hidden: usize,
    d_out: usize,
    v: DMatrix<f64>,
    sigma_x: DVector<f64>,
    sigma_eps: DVector<f64>,
}

impl MatrixFactorization {
    /// Teacher `V` (`d_out × d_in`), hidden width `h`, variances `diag Σ_x` (`d_in`) and
    /// `diag Σ_ε` (`d_out`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `hidden = 0` or non-positive variances,
    /// [`Error::DimensionMismatch`] for wrong lengths, [`Error::NonFinite`].
    pub fn new(
        v: DMatrix<f64>,
        hidden: usize,
        sigma_x: DVector<f64>,
        sigma_eps: DVector<f64>,
    ) -> Result<Self> {
        let (d_out, d_in) = v.shape();
        if hidden == 0 || d_in == 0 || d_out == 0 {
            return Err(Error::invalid(
                "hidden",
                hidden,
                "all dimensions must be at least 1",
            ));
        }
        check_finite("V", v.as_slice())?;
        check_vector("sigma_x", &sigma_x, d_in)?;
        check_vector("sigma_eps", &sigma_eps, d_out)?;
        if sigma_x.iter().chain(sigma_eps.iter()).any(|&s| s <= 0.0) {
            return Err(Error::invalid(
                "sigma_x/sigma_eps",
                "≤ 0",
                "variances must be positive",
            ));
        }
        Ok(MatrixFactorization {
            d_in,
            hidden,
            d_out,
            v,
            sigma_x,
            sigma_eps,
        })
    }

    /// `(d_in, hidden, d_out)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.d_in, self.hidden, self.d_out)
    }

    /// The teacher `V` (`d_out × d_in`).
    pub fn teacher(&self) -> &DMatrix<f64> {
        &self.v
    }

    /// The input variances `diag Σ_x` (`d_in`).
    pub fn input_variances(&self) -> &DVector<f64> {
        &self.sigma_x
    }

    /// The label-noise variances `diag Σ_ε` (`d_out`).
    pub fn label_noise_variances(&self) -> &DVector<f64> {
        &self.sigma_eps
    }

    /// Packs `U` and `W` into `θ`.
    pub fn pack(u: &DMatrix<f64>, w: &DMatrix<f64>) -> DVector<f64> {
        TwoLayerLayout::new((w.ncols(), u.ncols(), u.nrows())).pack(u, w)
    }

    /// Splits `θ` into `(U, W)`.
    pub fn unpack(&self, theta: &DVector<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        self.layout().unpack(theta)
    }

    /// The parameter layout `θ = [vec U; vec W]`.
    pub fn layout(&self) -> TwoLayerLayout {
        TwoLayerLayout::new((self.d_in, self.hidden, self.d_out))
    }

    /// The member `U → U e^{λM}`, `W → e^{−λM} W` of the symmetry family, for a
    /// symmetric `M` (`hidden × hidden`); [`Symmetric::symmetry`] is `M = I`.
    ///
    /// # Errors
    /// [`crate::Error::DimensionMismatch`] if `M` is not `hidden × hidden`, or not symmetric.
    pub fn symmetry_family(&self, m: &DMatrix<f64>) -> Result<ExponentialSymmetry> {
        ExponentialSymmetry::matrix_factorization(m, self.d_in, self.hidden, self.d_out)
    }

    /// The matrix charge `UᵀU − WWᵀ` (`h × h`).
    pub fn charge_matrix(&self, theta: &DVector<f64>) -> DMatrix<f64> {
        let (u, w) = self.unpack(theta);
        u.transpose() * &u - &w * w.transpose()
    }

    /// Relative residual of the balance equation,
    /// `‖Tr(Σ_ε)WΣ_xWᵀ − Tr(Σ_x)UᵀΣ_εU‖_F / ‖Tr(Σ_ε)WΣ_xWᵀ‖_F` (0 at the equilibrium).
    pub fn balance_residual(&self, theta: &DVector<f64>) -> f64 {
        let (lhs, rhs) = self.balance_sides(theta);
        (&lhs - rhs).norm() / lhs.norm()
    }

    /// The two sides of the balance equation, `(Tr(Σ_ε)WΣ_xWᵀ, Tr(Σ_x)UᵀΣ_εU)`.
    pub fn balance_sides(&self, theta: &DVector<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        let (u, w) = self.unpack(theta);
        let sx = DMatrix::from_diagonal(&self.sigma_x);
        let se = DMatrix::from_diagonal(&self.sigma_eps);
        let lhs = &w * sx * w.transpose() * self.sigma_eps.sum();
        let rhs = u.transpose() * se * &u * self.sigma_x.sum();
        (lhs, rhs)
    }

    /// The balanced-and-aligned global minimum of THEORY §6: with `κ = TrΣ_x/TrΣ_ε` and
    /// `Σ_ε^{1/2} V Σ_x^{1/2} = R S Tᵀ`,
    /// `U = Σ_ε^{−1/2} κ^{−1/4} R S^{1/2} O`, `W = κ^{1/4} Oᵀ S^{1/2} Tᵀ Σ_x^{−1/2}`
    /// with `O = [I_r 0]` (`r = rank`, unused hidden units set to zero).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `hidden < min(d_in, d_out)` (no exact factorisation).
    pub fn equilibrium(&self) -> Result<DVector<f64>> {
        let r = self.d_in.min(self.d_out);
        if self.hidden < r {
            return Err(Error::invalid(
                "hidden",
                self.hidden,
                format!("must be at least min(d_in, d_out) = {r}"),
            ));
        }
        let kappa = self.sigma_x.sum() / self.sigma_eps.sum();
        let se_half = DMatrix::from_diagonal(&self.sigma_eps.map(f64::sqrt));
        let sx_half = DMatrix::from_diagonal(&self.sigma_x.map(f64::sqrt));
        let m = &se_half * &self.v * &sx_half;
        let svd = m.svd(true, true);
        let (rr, s, tt) = (
            svd.u.expect("requested"),
            svd.singular_values,
            svd.v_t.expect("requested"),
        );
        let s_half = DMatrix::from_diagonal(&s.map(f64::sqrt));
        let mut o = DMatrix::zeros(r, self.hidden);
        for i in 0..r {
            o[(i, i)] = 1.0;
        }
        let se_inv_half = DMatrix::from_diagonal(&self.sigma_eps.map(|v| 1.0 / v.sqrt()));
        let sx_inv_half = DMatrix::from_diagonal(&self.sigma_x.map(|v| 1.0 / v.sqrt()));
        let u = se_inv_half * rr * &s_half * &o * kappa.powf(-0.25);
        let w = o.transpose() * &s_half * tt * sx_inv_half * kappa.powf(0.25);
        Ok(Self::pack(&u, &w))
    }

    /// A data set of `n` samples (path 0, stream `Init` of `seed`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `n = 0`.
    pub fn dataset(&self, n: usize, seed: u64) -> Result<Dataset> {
        Dataset::from_population(self, n, &mut SeedTree::new(seed).rng(0, Stream::Init))
    }

    /// `∇L` at `th` into `out` (`e`: scratch for `E`, `d_out × d_in`):
    /// `∇_U L = 2EΣ_xWᵀ`, `∇_W L = 2UᵀEΣ_x`, written in θ's layout.
    fn gradient_into(&self, th: &[f64], e: &mut [f64], out: &mut [f64]) {
        let (h, di, dout) = (self.hidden, self.d_in, self.d_out);
        let nu = dout * h;
        self.residual(th, e);
        for k in 0..h {
            for a in 0..dout {
                out[k * dout + a] = 2.0
                    * (0..di)
                        .map(|c| e[c * dout + a] * self.sigma_x[c] * th[nu + c * h + k])
                        .sum::<f64>();
            }
            for c in 0..di {
                out[nu + c * h + k] = 2.0
                    * (0..dout).map(|a| th[k * dout + a] * e[c * dout + a]).sum::<f64>()
                    * self.sigma_x[c];
            }
        }
    }

    /// Scratch numbers [`Self::visit_factor`] needs.
    fn factor_scratch_len(&self) -> usize {
        let (h, di, dout) = (self.hidden, self.d_in, self.d_out);
        dout * di + h * di + 2 * (di + dout)
    }

    /// Calls `f(j, col, D_{j,col})` for every entry of the pair factor at `th` (module
    /// docs), `j` in order and, within `j`, the columns `(a, b)`, `a ≤ b`, in order:
    /// `√8 α̃_a β̃_a` and `2(α̃_a β̃_b + β̃_a α̃_b)`. `buf`: [`Self::factor_scratch_len`].
    #[inline]
    fn visit_factor(&self, th: &[f64], buf: &mut [f64], mut f: impl FnMut(usize, usize, f64)) {
        let (h, di, dout) = (self.hidden, self.d_in, self.d_out);
        let nz = di + dout;
        let (e, rest) = buf.split_at_mut(dout * di);
        let (ute, rest) = rest.split_at_mut(h * di);
        let (alpha, beta) = rest.split_at_mut(nz);
        self.residual_products(th, e, ute);
        let root = |i: usize| {
            if i < di {
                self.sigma_x[i]
            } else {
                self.sigma_eps[i - di]
            }
            .sqrt()
        };
        for j in 0..self.dim() {
            self.component_alpha_beta(j, th, e, ute, alpha, beta);
            for i in 0..nz {
                let r = root(i);
                alpha[i] *= r;
                beta[i] *= r;
            }
            let mut column = 0;
            for a in 0..nz {
                f(j, column, 8f64.sqrt() * alpha[a] * beta[a]);
                column += 1;
                for b in a + 1..nz {
                    f(j, column, 2.0 * (alpha[a] * beta[b] + beta[a] * alpha[b]));
                    column += 1;
                }
            }
        }
    }

    /// `(α_j, β_j)` of every gradient component, as columns (see the module docs).
    fn alpha_beta(&self, theta: &DVector<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        let (h, di, dout) = (self.hidden, self.d_in, self.d_out);
        let (nz, d) = (di + dout, self.dim());
        let th = theta.as_slice();
        let (mut e, mut ute) = (vec![0.0; dout * di], vec![0.0; h * di]);
        self.residual_products(th, &mut e, &mut ute);
        let mut alpha = DMatrix::zeros(nz, d);
        let mut beta = DMatrix::zeros(nz, d);
        for j in 0..d {
            let (mut a, mut b) = (alpha.column_mut(j), beta.column_mut(j));
            self.component_alpha_beta(j, th, &e, &ute, a.as_mut_slice(), b.as_mut_slice());
        }
        (alpha, beta)
    }

    /// `(α_j, β_j)` of gradient component `j` into `alpha`, `beta` (length `n_z`), given
    /// `E` and `UᵀE` from [`Self::residual_products`].
    fn component_alpha_beta(
        &self,
        j: usize,
        th: &[f64],
        e: &[f64],
        ute: &[f64],
        alpha: &mut [f64],
        beta: &mut [f64],
    ) {
        let (h, di, dout) = (self.hidden, self.d_in, self.d_out);
        let nu = dout * h;
        alpha.fill(0.0);
        beta.fill(0.0);
        if j < nu {
            // U[a, k]: α = (E[a, ·], −e_a), β = (W[k, ·], 0)
            let (k, a) = (j / dout, j % dout);
            for c in 0..di {
                alpha[c] = e[c * dout + a];
                beta[c] = th[nu + c * h + k];
            }
            alpha[di + a] = -1.0;
        } else {
            // W[k, c]: α = ((UᵀE)[k, ·], −U[·, k]), β = e_c
            let (c, k) = ((j - nu) / h, (j - nu) % h);
            for cc in 0..di {
                alpha[cc] = ute[cc * h + k];
            }
            for a in 0..dout {
                alpha[di + a] = -th[k * dout + a];
            }
            beta[c] = 1.0;
        }
    }

    /// `E = UW − V` (`d_out × d_in`) and `UᵀE` (`h × d_in`), column-major, into `e`, `ute`.
    fn residual_products(&self, th: &[f64], e: &mut [f64], ute: &mut [f64]) {
        let (h, di, dout) = (self.hidden, self.d_in, self.d_out);
        self.residual(th, e);
        for k in 0..h {
            for c in 0..di {
                ute[c * h + k] = (0..dout).map(|a| th[k * dout + a] * e[c * dout + a]).sum();
            }
        }
    }

    /// `E = UW − V` (`d_out × d_in`, column-major) into `e`.
    fn residual(&self, th: &[f64], e: &mut [f64]) {
        let (h, di, dout) = (self.hidden, self.d_in, self.d_out);
        let nu = dout * h;
        for c in 0..di {
            for a in 0..dout {
                e[c * dout + a] =
                    (0..h).map(|k| th[k * dout + a] * th[nu + c * h + k]).sum::<f64>() - self.v[(a, c)];
            }
        }
    }

    fn z_covariance(&self) -> DVector<f64> {
        DVector::from_iterator(
            self.d_in + self.d_out,
            self.sigma_x.iter().chain(self.sigma_eps.iter()).copied(),
        )
    }
}

impl Symmetric for MatrixFactorization {
    /// `U → U e^{λI}`, `W → e^{−λI} W`: `C = ‖U‖² − ‖W‖² = Tr(UᵀU − WWᵀ)`.
    fn symmetry(&self) -> Result<ExponentialSymmetry> {
        self.symmetry_family(&DMatrix::identity(self.hidden, self.hidden))
    }
}

impl Model for MatrixFactorization {
    fn dim(&self) -> usize {
        self.hidden * (self.d_in + self.d_out)
    }
    fn input_dim(&self) -> usize {
        self.d_in
    }
    fn target_dim(&self) -> usize {
        self.d_out
    }
    fn loss(&self, theta: &DVector<f64>, s: Sample<'_>) -> f64 {
        let (u, w) = self.unpack(theta);
        let x = DVector::from_column_slice(s.x);
        let y = DVector::from_column_slice(s.y);
        (u * (w * x) - y).norm_squared()
    }
    fn grad(&self, theta: &DVector<f64>, s: Sample<'_>, out: &mut DVector<f64>) {
        let (h, di, dout) = (self.hidden, self.d_in, self.d_out);
        let nu = dout * h;
        let th = theta.as_slice();
        const STACK: usize = 16;
        let (mut wx_s, mut r_s) = ([0.0; STACK], [0.0; STACK]);
        let (mut wx_h, mut r_h);
        let (wx, r): (&mut [f64], &mut [f64]) = if h <= STACK && dout <= STACK {
            (&mut wx_s[..h], &mut r_s[..dout])
        } else {
            wx_h = vec![0.0; h];
            r_h = vec![0.0; dout];
            (&mut wx_h, &mut r_h)
        };
        for k in 0..h {
            wx[k] = (0..di).map(|c| th[nu + c * h + k] * s.x[c]).sum();
        }
        for a in 0..dout {
            r[a] = (0..h).map(|k| th[k * dout + a] * wx[k]).sum::<f64>() - s.y[a];
        }
        for k in 0..h {
            let mut utr = 0.0;
            for a in 0..dout {
                out[k * dout + a] = 2.0 * r[a] * wx[k];
                utr += th[k * dout + a] * r[a];
            }
            for c in 0..di {
                out[nu + c * h + k] = 2.0 * utr * s.x[c];
            }
        }
    }
}

impl Population for MatrixFactorization {
    fn input_dim(&self) -> usize {
        self.d_in
    }
    fn target_dim(&self) -> usize {
        self.d_out
    }
    fn draw(&self, rng: &mut dyn Rng, x: &mut [f64], y: &mut [f64]) {
        for (c, xc) in x.iter_mut().enumerate() {
            *xc = self.sigma_x[c].sqrt() * rng.sample::<f64, _>(StandardNormal);
        }
        for (a, ya) in y.iter_mut().enumerate() {
            let t: f64 = (0..self.d_in).map(|c| self.v[(a, c)] * x[c]).sum();
            *ya = t + self.sigma_eps[a].sqrt() * rng.sample::<f64, _>(StandardNormal);
        }
    }
}

impl PopulationForms for MatrixFactorization {
    fn risk(&self, theta: &DVector<f64>) -> f64 {
        let (u, w) = self.unpack(theta);
        let e = &u * &w - &self.v;
        let sx = DMatrix::from_diagonal(&self.sigma_x);
        (&e * sx * e.transpose()).trace() + self.sigma_eps.sum()
    }
    fn risk_gradient(&self, theta: &DVector<f64>, out: &mut DVector<f64>) {
        let (di, dout) = (self.d_in, self.d_out);
        with_flat_scratch(dout * di, |e| {
            self.gradient_into(theta.as_slice(), e, out.as_mut_slice())
        })
    }
    fn risk_hvp(&self, theta: &DVector<f64>, v: &DVector<f64>, out: &mut DVector<f64>) {
        // ∇L is polynomial: a central difference with step 1e-5 is accurate to ~1e-10.
        let eps = 1e-5 * theta.amax().max(1.0) / v.amax().max(f64::MIN_POSITIVE);
        let mut minus = DVector::zeros(theta.len());
        self.risk_gradient(&(theta + v * eps), out);
        self.risk_gradient(&(theta - v * eps), &mut minus);
        *out -= minus;
        *out /= 2.0 * eps;
    }
    fn noise_covariance(&self, theta: &DVector<f64>) -> DMatrix<f64> {
        let (alpha, beta) = self.alpha_beta(theta);
        let c = DMatrix::from_diagonal(&self.z_covariance());
        let aca = alpha.transpose() * &c * &alpha;
        let bcb = beta.transpose() * &c * &beta;
        let acb = alpha.transpose() * &c * &beta;
        let d = self.dim();
        DMatrix::from_fn(d, d, |j, l| {
            4.0 * (aca[(j, l)] * bcb[(j, l)] + acb[(j, l)] * acb[(l, j)])
        })
    }
    /// One column per pair `a ≤ b` of latent coordinates: `n_z(n_z + 1)/2`.
    fn noise_dim(&self) -> usize {
        let nz = self.d_in + self.d_out;
        nz * (nz + 1) / 2
    }
    fn noise_kind(&self) -> Noise {
        Noise::General
    }
    /// The exact pair factor of the module docs, `(D dw)_j = Σ_col D_{j,col} dw_col`
    /// summed from `0.0` in column order; allocates nothing.
    fn noise_factor_apply(&self, theta: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out.fill(0.0);
        with_flat_scratch(self.factor_scratch_len(), |buf| {
            self.visit_factor(theta.as_slice(), buf, |j, column, value| {
                out[j] += value * dw[column]
            })
        })
    }
    fn block_forms(&self) -> Option<&dyn PopulationBlockForms> {
        Some(self)
    }
}

/// Per path the gradient and the pair factor of the per-path forms (the same code), one
/// path after the other with one scratch buffer for the block.
impl PopulationBlockForms for MatrixFactorization {
    fn risk_gradient_block(&self, theta: &[f64], out: &mut [f64]) {
        let d = self.dim();
        with_flat_scratch(self.d_out * self.d_in, |e| {
            for (th, out) in theta.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
                self.gradient_into(th, e, out);
            }
        })
    }
    /// `out[p·d·m + j·m + col] = D_{j,col}(θ_p) · scale` (`m = n_z(n_z + 1)/2` columns).
    fn noise_factor_block(&self, theta: &[f64], scale: f64, out: &mut [f64]) {
        let (d, m) = (self.dim(), self.noise_dim());
        with_flat_scratch(self.factor_scratch_len(), |buf| {
            for (th, out) in theta.chunks_exact(d).zip(out.chunks_exact_mut(d * m)) {
                self.visit_factor(th, buf, |j, column, value| out[j * m + column] = value * scale);
            }
        })
    }
}
