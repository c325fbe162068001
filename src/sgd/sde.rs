//! The SGD-SDE of THEORY §1: `dθ = −∇L_γ(θ) dt + sqrt(η(t) c_B) D(θ) dW` (Itô), where
//! `c_B = 1/B` (with replacement) or `(N − B)/(B(N − 1))` (without), and
//!
//! - for a finite data set, `D = (G − ḡ1ᵀ)/√N` — the centred per-sample gradients as
//!   columns, `d × N`, applied as an operator in `O(dN)`:
//!   `D ξ = (Σ_i ξ_i g_i − (Σ_i ξ_i) ḡ)/√N`; Σ is never formed, nothing is factorised;
//! - for a population model, `D` is the model's closed-form factor
//!   ([`PopulationForms::noise_factor_apply`]).
//!
//! Drift and diffusion share the per-sample gradients, so the fused
//! [`Sde::drift_and_diffusion`] makes one pass over the data. With
//! [`ModifiedEquation::Second`] the drift is `−(I + (η/2)∇²L_γ)∇L_γ`.
//!
//! A population model with block forms ([`PopulationForms::block_forms`]) is evaluated
//! through them on every route — per path a block of one, the diffusion as the scaled
//! factor `sqrt(η c_B) D(θ)` times `dW` — so that ensembles can run its paths in lockstep
//! SIMD lanes with the same bits (`sde_lanes.rs`, [`Sde::batch`]).

use super::config::{ModifiedEquation, SgdConfig};
use super::data::Dataset;
use super::model::{Model, PopulationBlockForms, PopulationForms};
use super::scratch::with_scratch;
use super::sde_lanes::finish_first_order;
use crate::error::{Error, Result};
use crate::sde::{finite_difference_derivative, DerivativeScratch, Sde, Structure};
use crate::simd::{Kernel, Vectorised};
use nalgebra::DVector;

enum Source<'a> {
    Finite(&'a Dataset),
    Closed(&'a dyn PopulationForms),
}

/// The SGD-SDE built from a model and its data (THEORY §1).
///
/// ```
/// use noether_sde::prelude::*;
/// use noether_sde::models::ScalarFactorization;
/// use noether_sde::sgd::{SgdConfig, SgdSde};
/// use nalgebra::DVector;
/// let model = ScalarFactorization::new(1.0, 0.5)?;
/// let sde = SgdSde::population(&model, SgdConfig::new(0.05, 4))?;
/// assert_eq!(sde.noise(), Noise::Scalar); // Σ is rank one (THEORY §6)
/// let span = TimeSpan::new(0.0, 1.0, 0.05)?;
/// let mut path = IncrementStream::new(&SeedTree::new(1), 0, sde.noise_dim());
/// let theta = integrate(&sde, &mut Milstein::new(), &DVector::from_vec(vec![2.0, 0.5]), &span, &mut path, 0, &mut ())?;
/// assert!(theta.iter().all(|v| v.is_finite()));
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub struct SgdSde<'a, M: Model> {
    model: &'a M,
    source: Source<'a>,
    config: SgdConfig,
    covariance_factor: f64,
    /// `sqrt(η c_B)` for a constant schedule (computed once; the same value as
    /// [`SgdSde::noise_scale`] would compute every step).
    constant_scale: Option<f64>,
    /// The instruction set the per-sample passes are compiled for (the same numbers on
    /// every one).
    kernel: Kernel,
}

/// One [`SgdSde::finite_pass`], to run under [`Kernel::vectorised`].
struct FinitePass<'s, 'a, M: Model> {
    sde: &'s SgdSde<'a, M>,
    data: &'s Dataset,
    theta: &'s DVector<f64>,
    xi: Option<&'s DVector<f64>>,
    grad: &'s mut DVector<f64>,
    diffusion: Option<&'s mut DVector<f64>>,
    g: &'s mut DVector<f64>,
}

impl<M: Model> Vectorised for FinitePass<'_, '_, M> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.sde
            .finite_pass_body(self.data, self.theta, self.xi, self.grad, self.diffusion, self.g)
    }
}

/// `sqrt(η c_B)` when the schedule is constant.
fn constant_scale(config: &SgdConfig, covariance_factor: f64) -> Option<f64> {
    match config.schedule {
        super::config::Schedule::Constant { eta } => Some((eta * covariance_factor).sqrt()),
        _ => None,
    }
}

impl<'a, M: Model> SgdSde<'a, M> {
    /// The SDE of SGD on the finite data set `data`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for invalid hyper-parameters (including a batch larger
    /// than the data set), [`Error::DimensionMismatch`] if the data do not fit the model.
    pub fn finite(model: &'a M, data: &'a Dataset, config: SgdConfig) -> Result<Self> {
        config.validate(Some(data.len()))?;
        super::model::check_model_dim(model)?;
        check_data_dims(model, data)?;
        Ok(SgdSde {
            model,
            source: Source::Finite(data),
            config,
            covariance_factor: config.covariance_factor(Some(data.len())),
            constant_scale: constant_scale(&config, config.covariance_factor(Some(data.len()))),
            kernel: Kernel::detect(),
        })
    }

    /// The SDE of online SGD (fresh samples) on a model with closed-form noise.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for invalid hyper-parameters.
    pub fn population(model: &'a M, config: SgdConfig) -> Result<Self>
    where
        M: PopulationForms,
    {
        config.validate(None)?;
        super::model::check_model_dim(model)?;
        Ok(SgdSde {
            model,
            source: Source::Closed(model),
            config,
            covariance_factor: config.covariance_factor(None),
            constant_scale: constant_scale(&config, config.covariance_factor(None)),
            kernel: Kernel::detect(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// The model.
    pub fn model(&self) -> &M {
        self.model
    }

    /// The batch covariance factor `c_B` (`1/B`, or `(N − B)/(B(N − 1))` without
    /// replacement): `Cov(ĝ) = c_B Σ`.
    pub fn covariance_factor(&self) -> f64 {
        self.covariance_factor
    }

    /// The finite data set, if the SDE was built from one.
    pub fn dataset(&self) -> Option<&'a Dataset> {
        match self.source {
            Source::Finite(data) => Some(data),
            Source::Closed(_) => None,
        }
    }

    /// The model's block forms ([`PopulationForms::block_forms`]), if the SDE has a
    /// population model that provides them.
    pub(super) fn block_forms(&self) -> Option<&'a dyn PopulationBlockForms> {
        match self.source {
            Source::Closed(forms) => forms.block_forms(),
            Source::Finite(_) => None,
        }
    }

    /// `Tr[A Σ(θ)]` for a symmetric `a` (`d × d`), without forming `Σ`:
    /// `(1/N) Σ_i (g_i − ḡ)ᵀ A (g_i − ḡ)` on a finite data set (two passes), or
    /// `Σ_j (D e_j)ᵀ A (D e_j)` over the columns of a closed-form factor.
    ///
    /// `Σ` is the per-sample covariance (not scaled by `η c_B`).
    pub fn trace_noise(&self, a: &nalgebra::DMatrix<f64>, theta: &DVector<f64>) -> f64 {
        let d = theta.len();
        let mut mean = DVector::zeros(d);
        self.risk_gradient(theta, &mut mean);
        let mut g = DVector::zeros(d);
        let mut ag = DVector::zeros(d);
        let mut total = 0.0;
        match self.source {
            Source::Finite(data) => {
                for i in 0..data.len() {
                    self.model.grad(theta, data.sample(i), &mut g);
                    g -= &mean;
                    a.mul_to(&g, &mut ag);
                    total += g.dot(&ag);
                }
                total / data.len() as f64
            }
            Source::Closed(forms) => {
                let k = forms.noise_dim();
                let mut e = DVector::zeros(k);
                for j in 0..k {
                    e.fill(0.0);
                    e[j] = 1.0;
                    forms.noise_factor_apply(theta, &e, &mut g);
                    a.mul_to(&g, &mut ag);
                    total += g.dot(&ag);
                }
                total
            }
        }
    }

    /// The noise amplitude `sqrt(η(t) c_B)` multiplying `D(θ)`.
    #[inline]
    pub fn noise_scale(&self, t: f64) -> f64 {
        match self.constant_scale {
            Some(scale) => scale,
            None => (self.config.schedule.eta(t) * self.covariance_factor).sqrt(),
        }
    }

    /// `out = ∇L(θ)` (mean per-sample gradient, or the closed form — the block form on a
    /// block of one when the model has one); no weight decay.
    pub fn risk_gradient(&self, theta: &DVector<f64>, out: &mut DVector<f64>) {
        match self.source {
            Source::Finite(data) => with_scratch(theta.len(), 1, |buf| {
                self.finite_pass(data, theta, None, out, None, &mut buf[0])
            }),
            Source::Closed(forms) => match forms.block_forms() {
                Some(block) => block.risk_gradient_block(theta.as_slice(), out.as_mut_slice()),
                None => forms.risk_gradient(theta, out),
            },
        }
    }

    /// One pass over the data: `grad = ḡ`, and if `xi` is given, `diffusion = D ξ`
    /// (unscaled); `g` is scratch for one per-sample gradient. Compiled for the CPU's
    /// vectors ([`Kernel::vectorised`]).
    fn finite_pass(
        &self,
        data: &Dataset,
        theta: &DVector<f64>,
        xi: Option<&DVector<f64>>,
        grad: &mut DVector<f64>,
        diffusion: Option<&mut DVector<f64>>,
        g: &mut DVector<f64>,
    ) {
        self.kernel.vectorised(FinitePass {
            sde: self,
            data,
            theta,
            xi,
            grad,
            diffusion,
            g,
        })
    }

    #[inline(always)]
    fn finite_pass_body(
        &self,
        data: &Dataset,
        theta: &DVector<f64>,
        xi: Option<&DVector<f64>>,
        grad: &mut DVector<f64>,
        diffusion: Option<&mut DVector<f64>>,
        g: &mut DVector<f64>,
    ) {
        let n = data.len();
        grad.fill(0.0);
        match (xi, diffusion) {
            (Some(xi), Some(diff)) => {
                diff.fill(0.0);
                let mut xi_sum = 0.0;
                for i in 0..n {
                    self.model.grad(theta, data.sample(i), g);
                    let w = xi[i];
                    // one fused pass: ḡ and Σ ξ_i g_i accumulate together
                    let (ga, da) = (grad.as_mut_slice(), diff.as_mut_slice());
                    for ((a, b), &gk) in ga.iter_mut().zip(da.iter_mut()).zip(g.as_slice()) {
                        *a += gk;
                        *b += w * gk;
                    }
                    xi_sum += w;
                }
                let inv_n = 1.0 / n as f64;
                let inv_sqrt_n = inv_n.sqrt();
                for (a, b) in grad.as_mut_slice().iter_mut().zip(diff.as_mut_slice().iter_mut()) {
                    *a *= inv_n;
                    *b = (*b - xi_sum * *a) * inv_sqrt_n;
                }
            }
            _ => {
                for i in 0..n {
                    self.model.grad(theta, data.sample(i), g);
                    for (a, &gk) in grad.as_mut_slice().iter_mut().zip(g.as_slice()) {
                        *a += gk;
                    }
                }
                *grad /= n as f64;
            }
        }
    }

    /// `out = ∇²L(θ) v` (mean per-sample Hessian-vector product, or the closed form);
    /// `h` is scratch for one per-sample product.
    fn risk_hvp(&self, theta: &DVector<f64>, v: &DVector<f64>, out: &mut DVector<f64>, h: &mut DVector<f64>) {
        match self.source {
            Source::Finite(data) => {
                out.fill(0.0);
                for i in 0..data.len() {
                    self.model.hvp(theta, data.sample(i), v, h);
                    *out += &*h;
                }
                *out /= data.len() as f64;
            }
            Source::Closed(forms) => forms.risk_hvp(theta, v, out),
        }
    }

    /// Turns `out = ∇L(θ)` into the drift: `−∇L_γ`, or `−(I + (η/2)∇²L_γ)∇L_γ`.
    fn finish_drift(&self, t: f64, theta: &DVector<f64>, out: &mut DVector<f64>) {
        let gamma = self.config.weight_decay;
        if self.config.order == ModifiedEquation::First {
            // −(∇L + 2γθ): the arithmetic of the lockstep route's drift
            return finish_first_order(gamma, theta.as_slice(), out.as_mut_slice());
        }
        if gamma > 0.0 {
            out.axpy(2.0 * gamma, theta, 1.0); // ∇L_γ
        }
        let eta = self.config.schedule.eta(t);
        with_scratch(theta.len(), 2, |buf| {
            let (hv, h) = buf.split_at_mut(1);
            self.risk_hvp(theta, out, &mut hv[0], &mut h[0]);
            hv[0].axpy(2.0 * gamma, out, 1.0); // ∇²L_γ ∇L_γ
            out.axpy(0.5 * eta, &hv[0], 1.0);
        });
        out.neg_mut();
    }
}

pub(crate) fn check_data_dims<M: Model + ?Sized>(model: &M, data: &Dataset) -> Result<()> {
    if data.input_dim() != model.input_dim() {
        return Err(Error::DimensionMismatch {
            what: "data input dimension",
            expected: model.input_dim(),
            got: data.input_dim(),
        });
    }
    if data.target_dim() != model.target_dim() {
        return Err(Error::DimensionMismatch {
            what: "data target dimension",
            expected: model.target_dim(),
            got: data.target_dim(),
        });
    }
    Ok(())
}

impl<M: Model> Sde for SgdSde<'_, M> {
    fn dim(&self) -> usize {
        self.model.dim()
    }

    /// General noise with `m = N` for a finite data set (the columns `c_k(θ)` of the
    /// centred gradient matrix do not commute even for the scalar model, THEORY §7a);
    /// the model's own factor for closed forms. Itô.
    fn structure(&self) -> Structure {
        match self.source {
            Source::Finite(data) => Structure::general(data.len()),
            Source::Closed(forms) => Structure::new(forms.noise_kind(), forms.noise_dim()),
        }
    }

    /// Block coefficients (the lockstep route) for a population model with block forms
    /// and the first-order equation (`sde_lanes.rs`).
    fn batch(&self) -> Option<&dyn crate::sde::BatchSde> {
        self.lanes()
    }

    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        self.risk_gradient(x, out);
        self.finish_drift(t, x, out);
    }

    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        match self.source {
            Source::Finite(data) => with_scratch(x.len(), 2, |buf| {
                let (g, grad) = buf.split_at_mut(1);
                self.finite_pass(data, x, Some(dw), &mut grad[0], Some(out), &mut g[0]);
            }),
            Source::Closed(forms) => match forms.block_forms() {
                Some(block) => return self.apply_block_factor(block, t, x, dw, out),
                None => forms.noise_factor_apply(x, dw, out),
            },
        }
        *out *= self.noise_scale(t);
    }

    fn drift_and_diffusion(
        &self,
        t: f64,
        x: &DVector<f64>,
        dw: &DVector<f64>,
        drift: &mut DVector<f64>,
        diffusion: &mut DVector<f64>,
    ) {
        match self.source {
            Source::Finite(data) => with_scratch(x.len(), 1, |buf| {
                self.finite_pass(data, x, Some(dw), drift, Some(diffusion), &mut buf[0])
            }),
            Source::Closed(forms) => match forms.block_forms() {
                Some(block) => {
                    block.risk_gradient_block(x.as_slice(), drift.as_mut_slice());
                    self.apply_block_factor(block, t, x, dw, diffusion);
                    return self.finish_drift(t, x, drift);
                }
                None => {
                    forms.risk_gradient(x, drift);
                    forms.noise_factor_apply(x, dw, diffusion);
                }
            },
        }
        *diffusion *= self.noise_scale(t);
        self.finish_drift(t, x, drift);
    }

    #[inline]
    fn diffusion_derivative(
        &self,
        t: f64,
        x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        scratch: &mut DerivativeScratch,
    ) {
        if let Source::Closed(forms) = self.source {
            if forms.noise_factor_derivative(x, v, c, out) {
                *out *= self.noise_scale(t);
                return;
            }
        }
        finite_difference_derivative(self, t, x, v, c, out, scratch)
    }
}
