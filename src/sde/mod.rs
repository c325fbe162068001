//! Stochastic differential equations `dX = a(t, X) dt + b(t, X) dW` (THEORY §8).
//!
//! An [`Sde`] declares its structure — state dimension `d`, noise dimension `m`,
//! [`Noise`] kind and [`Calculus`] — and provides the drift `a` and the diffusion as
//! an *operator* `dw ↦ b(t, x) dw`, so a low-rank diffusion such as the SGD factor
//! `(G − ḡ1ᵀ)/√N` is never materialised. Milstein-type schemes also need the
//! derivative terms `L^j b_k = Σ_l b_{lj} ∂_l b_k`; they are obtained from one
//! directional derivative of the diffusion operator,
//!
//! ```text
//! ∂b[v]·c = d/dε [ b(t, x + ε v) c ] at ε = 0,    so    Σ_k (L^j b_k) c_k = ∂b[b_j]·c,
//! ```
//!
//! which [`Sde::diffusion_derivative`] computes by a central finite difference unless
//! the SDE overrides it analytically.

pub mod batch;
pub mod convert;
pub mod reference;

pub use batch::BatchSde;

use nalgebra::DVector;

/// The structure of the diffusion `b(t, x)` (declared by the SDE, never detected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Noise {
    /// One Brownian motion (`m = 1`).
    Scalar,
    /// `m = d`, and `b` is diagonal with `b_kk` depending on `x_k` only.
    Diagonal,
    /// `b` does not depend on the state.
    Additive,
    /// `L^j b_k = L^k b_j` for all `j, k`: Lévy areas cancel in Milstein.
    Commutative,
    /// No structure: Milstein needs Lévy areas.
    General,
}

impl Noise {
    /// Whether the commutativity condition `L^j b_k = L^k b_j` holds by declaration.
    pub fn is_commutative(self) -> bool {
        !matches!(self, Noise::General)
    }

    /// Short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Noise::Scalar => "scalar",
            Noise::Diagonal => "diagonal",
            Noise::Additive => "additive",
            Noise::Commutative => "commutative",
            Noise::General => "general",
        }
    }
}

/// The stochastic calculus in which the SDE is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Calculus {
    /// Itô (the SGD-SDE of THEORY §1 is Itô).
    Ito,
    /// Stratonovich.
    Stratonovich,
}

/// Scratch space for the finite-difference default of [`Sde::diffusion_derivative`].
///
/// Owned by the caller (a scheme) so that stepping allocates nothing.
#[derive(Debug, Clone)]
pub struct DerivativeScratch {
    state: DVector<f64>,
    value: DVector<f64>,
}

impl DerivativeScratch {
    /// Scratch for an SDE of state dimension `dim`.
    pub fn new(dim: usize) -> Self {
        DerivativeScratch {
            state: DVector::zeros(dim),
            value: DVector::zeros(dim),
        }
    }
}

/// Relative size of the finite-difference step: `∛ε_machine`, optimal for a
/// central difference of a smooth function (used by [`finite_difference_derivative`]; block routes that form the same difference use it too).
pub const FD_RELATIVE_STEP: f64 = 6.055_454_452_393_343e-6;

/// A stochastic differential equation `dX = a(t, X) dt + b(t, X) dW`, `X ∈ R^d`, `W ∈ R^m`.
///
/// Implementors provide [`drift`](Sde::drift) and
/// [`diffusion_apply`](Sde::diffusion_apply); everything else has a default.
/// All methods write into `out` and must not allocate.
pub trait Sde {
    /// State dimension `d`.
    fn dim(&self) -> usize;
    /// Noise dimension `m`.
    fn noise_dim(&self) -> usize;
    /// Declared structure of the diffusion.
    fn noise(&self) -> Noise;
    /// Calculus in which `a` and `b` are meant.
    fn calculus(&self) -> Calculus {
        Calculus::Ito
    }
    /// `out = a(t, x)`.
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>);
    /// `out = b(t, x) dw` for `dw ∈ R^m`.
    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>);

    /// Drift and diffusion together; override when both share work (the SGD-SDE).
    fn drift_and_diffusion(
        &self,
        t: f64,
        x: &DVector<f64>,
        dw: &DVector<f64>,
        drift: &mut DVector<f64>,
        diffusion: &mut DVector<f64>,
    ) {
        self.drift(t, x, drift);
        self.diffusion_apply(t, x, dw, diffusion);
    }

    /// Directional derivative of the diffusion operator:
    /// `out = d/dε [b(t, x + ε v) c]` at `ε = 0`, for `v ∈ R^d`, `c ∈ R^m`.
    ///
    /// With `v = b_j` (column `j` of `b`) this is `Σ_k (L^j b_k) c_k`, the Milstein
    /// derivative term. The default is a central difference with step
    /// `∛ε_machine · max(1, ‖x‖_∞) / ‖v‖_∞` (error `O(step²)`, about `1e-10` relative);
    /// override it analytically where the derivative is known.
    fn diffusion_derivative(
        &self,
        t: f64,
        x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        scratch: &mut DerivativeScratch,
    ) {
        finite_difference_derivative(self, t, x, v, c, out, scratch)
    }

    /// The same equation as a [`BatchSde`] (coefficients on a block of states at once)
    /// whose block arithmetic is, per path, this SDE's own: then ensembles run its paths
    /// in lockstep SIMD lane groups by themselves ([`crate::ensemble::SdeProblem`]), with
    /// the same numbers bit for bit. The contract: `drift_block` writes what
    /// [`Sde::drift`] writes; `diffusion_block` writes `b` such that
    /// [`Sde::diffusion_apply`]`(t, x, w)_i` is `b_i w_0` (one Brownian motion), `b_i w_i`
    /// (diagonal noise) or `Σ_j b_ij w_j` summed from `0.0` in order `j = 0, …, m − 1`;
    /// `milstein_block` writes [`Sde::diffusion_derivative`]`(t, x, b·1, 1)`. Default
    /// `None` (the per-path route).
    fn batch(&self) -> Option<&dyn BatchSde> {
        None
    }

    /// Declares the one-dimensional fast path: `true` only if `d = m = 1` and
    /// [`scalar_drift`](Sde::scalar_drift), [`scalar_diffusion`](Sde::scalar_diffusion) and
    /// [`scalar_diffusion_derivative`](Sde::scalar_diffusion_derivative) compute, bit for
    /// bit, what [`drift_and_diffusion`](Sde::drift_and_diffusion),
    /// [`diffusion_apply`](Sde::diffusion_apply) and
    /// [`diffusion_derivative`](Sde::diffusion_derivative) compute on one-element vectors.
    /// Schemes with a scalar step ([`crate::scheme::EulerMaruyama`],
    /// [`crate::scheme::Milstein`]) then keep the state in a register instead of a
    /// `DVector`: the same numbers, without a memory round trip per step. Default `false`;
    /// declaring it with `d ≠ 1` or `m ≠ 1` is rejected before the first step.
    fn scalar_form(&self) -> bool {
        false
    }

    /// `a(t, x)` of a one-dimensional SDE (see [`Sde::scalar_form`]). The default
    /// evaluates [`Sde::drift`] on one-element vectors, which allocates: override it when
    /// declaring the scalar form.
    fn scalar_drift(&self, t: f64, x: f64) -> f64 {
        let mut out = DVector::zeros(1);
        self.drift(t, &DVector::from_element(1, x), &mut out);
        out[0]
    }

    /// `b(t, x) dw` of a one-dimensional SDE with one Brownian motion (see
    /// [`Sde::scalar_form`]). The default evaluates [`Sde::diffusion_apply`] on
    /// one-element vectors, which allocates.
    fn scalar_diffusion(&self, t: f64, x: f64, dw: f64) -> f64 {
        let mut out = DVector::zeros(1);
        self.diffusion_apply(
            t,
            &DVector::from_element(1, x),
            &DVector::from_element(1, dw),
            &mut out,
        );
        out[0]
    }

    /// `d/dε [b(t, x + ε v) c]` at `ε = 0` of a one-dimensional SDE (see
    /// [`Sde::scalar_form`]). The default evaluates [`Sde::diffusion_derivative`] on
    /// one-element vectors, which allocates.
    fn scalar_diffusion_derivative(&self, t: f64, x: f64, v: f64, c: f64) -> f64 {
        let mut out = DVector::zeros(1);
        self.diffusion_derivative(
            t,
            &DVector::from_element(1, x),
            &DVector::from_element(1, v),
            &DVector::from_element(1, c),
            &mut out,
            &mut DerivativeScratch::new(1),
        );
        out[0]
    }
}

/// The central-difference directional derivative used by the default of
/// [`Sde::diffusion_derivative`]; callable by overrides that fall back to it.
pub fn finite_difference_derivative<S: Sde + ?Sized>(
    sde: &S,
    t: f64,
    x: &DVector<f64>,
    v: &DVector<f64>,
    c: &DVector<f64>,
    out: &mut DVector<f64>,
    scratch: &mut DerivativeScratch,
) {
    let v_norm = v.amax();
    if v_norm == 0.0 || !v_norm.is_finite() {
        out.fill(if v_norm == 0.0 { 0.0 } else { f64::NAN });
        return;
    }
    let eps = FD_RELATIVE_STEP * x.amax().max(1.0) / v_norm;
    scratch.state.copy_from(x);
    scratch.state.axpy(eps, v, 1.0);
    sde.diffusion_apply(t, &scratch.state, c, out);
    scratch.state.copy_from(x);
    scratch.state.axpy(-eps, v, 1.0);
    sde.diffusion_apply(t, &scratch.state, c, &mut scratch.value);
    out.axpy(-1.0, &scratch.value, 1.0);
    out.scale_mut(0.5 / eps);
}

impl<S: Sde + ?Sized> Sde for &S {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn noise_dim(&self) -> usize {
        (**self).noise_dim()
    }
    fn noise(&self) -> Noise {
        (**self).noise()
    }
    fn calculus(&self) -> Calculus {
        (**self).calculus()
    }
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        (**self).drift(t, x, out)
    }
    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        (**self).diffusion_apply(t, x, dw, out)
    }
    fn drift_and_diffusion(
        &self,
        t: f64,
        x: &DVector<f64>,
        dw: &DVector<f64>,
        drift: &mut DVector<f64>,
        diffusion: &mut DVector<f64>,
    ) {
        (**self).drift_and_diffusion(t, x, dw, drift, diffusion)
    }
    fn diffusion_derivative(
        &self,
        t: f64,
        x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        scratch: &mut DerivativeScratch,
    ) {
        (**self).diffusion_derivative(t, x, v, c, out, scratch)
    }
    fn batch(&self) -> Option<&dyn BatchSde> {
        (**self).batch()
    }
    fn scalar_form(&self) -> bool {
        (**self).scalar_form()
    }
    fn scalar_drift(&self, t: f64, x: f64) -> f64 {
        (**self).scalar_drift(t, x)
    }
    fn scalar_diffusion(&self, t: f64, x: f64, dw: f64) -> f64 {
        (**self).scalar_diffusion(t, x, dw)
    }
    fn scalar_diffusion_derivative(&self, t: f64, x: f64, v: f64, c: f64) -> f64 {
        (**self).scalar_diffusion_derivative(t, x, v, c)
    }
}

/// Counts drift and diffusion evaluations of the wrapped SDE (for work–precision
/// diagrams). Counters are plain cells: one `Counted` per thread. It does not declare
/// the wrapped SDE's [`Sde::scalar_form`], so every evaluation goes through the counted
/// vector methods.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    drift: std::cell::Cell<u64>,
    diffusion: std::cell::Cell<u64>,
}

impl<S: Sde> Counted<S> {
    /// Wraps `inner` with zeroed counters.
    pub fn new(inner: S) -> Self {
        Counted {
            inner,
            drift: 0.into(),
            diffusion: 0.into(),
        }
    }
    /// Number of drift evaluations so far.
    pub fn drift_evaluations(&self) -> u64 {
        self.drift.get()
    }
    /// Number of diffusion-operator applications so far (each directional
    /// derivative counts as the two applications of its finite difference).
    pub fn diffusion_evaluations(&self) -> u64 {
        self.diffusion.get()
    }
    /// Sets both counters to zero.
    pub fn reset(&self) {
        self.drift.set(0);
        self.diffusion.set(0);
    }
}

impl<S: Sde> Sde for Counted<S> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn noise_dim(&self) -> usize {
        self.inner.noise_dim()
    }
    fn noise(&self) -> Noise {
        self.inner.noise()
    }
    fn calculus(&self) -> Calculus {
        self.inner.calculus()
    }
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        self.drift.set(self.drift.get() + 1);
        self.inner.drift(t, x, out)
    }
    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        self.diffusion.set(self.diffusion.get() + 1);
        self.inner.diffusion_apply(t, x, dw, out)
    }
    fn drift_and_diffusion(
        &self,
        t: f64,
        x: &DVector<f64>,
        dw: &DVector<f64>,
        drift: &mut DVector<f64>,
        diffusion: &mut DVector<f64>,
    ) {
        self.drift.set(self.drift.get() + 1);
        self.diffusion.set(self.diffusion.get() + 1);
        self.inner.drift_and_diffusion(t, x, dw, drift, diffusion)
    }
    fn diffusion_derivative(
        &self,
        t: f64,
        x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        scratch: &mut DerivativeScratch,
    ) {
        self.diffusion.set(self.diffusion.get() + 2);
        self.inner.diffusion_derivative(t, x, v, c, out, scratch)
    }
}
