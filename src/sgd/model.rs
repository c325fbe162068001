//! Models: per-sample loss `ℓ(θ, x)`, its gradient and Hessian-vector products
//! (THEORY §1), and the closed forms a population model may provide — per parameter
//! vector ([`PopulationForms`]) and, optionally, on a block of them at once
//! ([`PopulationBlockForms`], the lockstep route of the SGD-SDE, THEORY §1 and §8).

use super::data::Sample;
use crate::sde::Noise;
use nalgebra::{DMatrix, DVector};

/// The central-difference step of the Hessian-vector default, relative (the crate's one
/// finite-difference step, `∛ε_machine`).
const HVP_STEP: f64 = crate::sde::FD_RELATIVE_STEP;

/// A per-sample loss `ℓ(θ, x)` with its gradient.
pub trait Model: Sync {
    /// Parameter dimension `d`.
    fn dim(&self) -> usize;
    /// Input dimension the model expects.
    fn input_dim(&self) -> usize;
    /// Target dimension the model expects.
    fn target_dim(&self) -> usize;
    /// `ℓ(θ, x)`.
    fn loss(&self, theta: &DVector<f64>, sample: Sample<'_>) -> f64;
    /// `out = ∇_θ ℓ(θ, x)` (overwrites `out`; must not allocate).
    fn grad(&self, theta: &DVector<f64>, sample: Sample<'_>, out: &mut DVector<f64>);
    /// `out = ∇²_θ ℓ(θ, x) v`.
    ///
    /// The default is a central difference of [`Model::grad`] along `v` with step
    /// `∛ε · max(1, ‖θ‖_∞)/‖v‖_∞`; it allocates two temporaries, so models used in hot
    /// loops (the second-order modified equation) override it analytically.
    fn hvp(&self, theta: &DVector<f64>, sample: Sample<'_>, v: &DVector<f64>, out: &mut DVector<f64>) {
        let vn = v.amax();
        if vn == 0.0 {
            out.fill(0.0);
            return;
        }
        let eps = HVP_STEP * theta.amax().max(1.0) / vn;
        let plus = theta + v * eps;
        let minus = theta - v * eps;
        let mut g = DVector::zeros(theta.len());
        self.grad(&plus, sample, out);
        self.grad(&minus, sample, &mut g);
        *out -= &g;
        out.scale_mut(0.5 / eps);
    }
}

/// Closed forms of a model under its data distribution: risk, gradient, Hessian and
/// the gradient-noise covariance `Σ(θ) = Cov_x[∇ℓ(θ, x)]` with a factor `D Dᵀ = Σ`.
pub trait PopulationForms: Model {
    /// Population risk `L(θ)`.
    fn risk(&self, theta: &DVector<f64>) -> f64;
    /// `out = ∇L(θ)`.
    fn risk_gradient(&self, theta: &DVector<f64>, out: &mut DVector<f64>);
    /// `out = ∇²L(θ) v`.
    fn risk_hvp(&self, theta: &DVector<f64>, v: &DVector<f64>, out: &mut DVector<f64>);
    /// `Σ(θ)` as a matrix (for tests and reports; not used while stepping).
    fn noise_covariance(&self, theta: &DVector<f64>) -> DMatrix<f64>;
    /// Number of columns `m` of the factor `D(θ)`.
    fn noise_dim(&self) -> usize;
    /// Structure of the factor (e.g. [`Noise::Scalar`] for a rank-one `Σ`).
    fn noise_kind(&self) -> Noise;
    /// `out = D(θ) dw`, with `D(θ) D(θ)ᵀ = Σ(θ)`.
    fn noise_factor_apply(&self, theta: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>);
    /// `out = d/dε [D(θ + εv) c]` at `ε = 0`, if known analytically (for Milstein);
    /// `false` means "use finite differences".
    fn noise_factor_derivative(
        &self,
        _theta: &DVector<f64>,
        _v: &DVector<f64>,
        _c: &DVector<f64>,
        _out: &mut DVector<f64>,
    ) -> bool {
        false
    }
    /// The same closed forms on a block of parameter vectors ([`PopulationBlockForms`]),
    /// if the model provides them. Default `None`.
    ///
    /// When `Some`, the SGD-SDE ([`super::SgdSde::population`]) forms its diffusion from
    /// the explicit scaled factor of [`PopulationBlockForms::noise_factor_block`] on every
    /// route (per path: a block of one), so that its paths can run in lockstep SIMD lanes
    /// ([`crate::sde::Sde::batch`]) with the per-path route's numbers bit for bit.
    fn block_forms(&self) -> Option<&dyn PopulationBlockForms> {
        None
    }
}

/// The closed forms of [`PopulationForms`] on a block of `P` parameter vectors at once,
/// `theta[p·d + i]` (the layout of [`crate::sde::BatchSde`]), for the lockstep route of
/// the SGD-SDE `dθ = −∇L_γ dt + sqrt(η c_B) D(θ) dW` (THEORY §1, §8).
///
/// Per path the arithmetic must not depend on the block: a block of one is what the
/// per-path route evaluates, so every path gets the same bits on either route.
pub trait PopulationBlockForms: Sync {
    /// `out[p·d..(p+1)·d] = ∇L(θ_p)`, per path the arithmetic of
    /// [`PopulationForms::risk_gradient`] (the same operations in the same order).
    fn risk_gradient_block(&self, theta: &[f64], out: &mut [f64]);
    /// The factor `D(θ_p)` of every path times `scale`, in the layout of
    /// [`crate::sde::BatchSde::diffusion_block`] for [`PopulationForms::noise_kind`]:
    /// `d` numbers per path for scalar or diagonal noise, `d × m` row-major
    /// (`out[p·d·m + i·m + j] = scale · D_ij(θ_p)`, each entry formed as the model
    /// documents) otherwise. Called with `scale = sqrt(η c_B)`; with `scale = 1` it is
    /// the factor itself.
    fn noise_factor_block(&self, theta: &[f64], scale: f64, out: &mut [f64]);
    /// Milstein's derivative term on a block, for a model with one noise whose factor
    /// has a closed-form derivative: per path `out[p·d..(p+1)·d] = scale · ∂D(θ_p)[v_p] c_p`
    /// with `v_p = scale · D(θ_p) c_p` — the numbers of the SGD-SDE's per-path
    /// `diffusion_apply` then `diffusion_derivative` (the same operations in the same
    /// order). Returns `false` where the model has no such form, or where a path needs
    /// the central difference instead (the caller then takes the per-path functions for
    /// the whole block). Default: `false`.
    fn noise_factor_derivative_block(
        &self,
        _theta: &[f64],
        _c: &[f64],
        _scale: f64,
        _out: &mut [f64],
    ) -> bool {
        false
    }
}

/// A model must have at least one parameter.
///
/// # Errors
/// [`crate::Error::InvalidParameter`] (`dim`) for `model.dim() = 0`.
pub(crate) fn check_model_dim<M: Model + ?Sized>(model: &M) -> crate::Result<()> {
    if model.dim() == 0 {
        return Err(crate::Error::invalid(
            "dim",
            0,
            "the model has no parameters (an empty model has nothing to train)",
        ));
    }
    Ok(())
}
