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

use crate::error::{Error, Result};
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

/// The declared structure of an SDE: the [`Noise`] kind, the number of Brownian
/// motions `m` and the [`Calculus`] (declared, never detected; THEORY §8).
///
/// Built with a readable constructor and, for a Stratonovich equation,
/// [`Structure::stratonovich`]; checked ([`Structure::check`]) where the SDE is first
/// used (the drivers, the lockstep route), before the first step.
///
/// ```
/// use noether_sde::sde::{Calculus, Noise, Structure};
/// let s = Structure::diagonal(3).stratonovich();
/// assert_eq!((s.noise, s.noise_dim, s.calculus), (Noise::Diagonal, 3, Calculus::Stratonovich));
/// assert!(s.check(3).is_ok() && s.check(2).is_err()); // diagonal noise needs m = d
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Structure {
    /// Structure of the diffusion `b`.
    pub noise: Noise,
    /// Number of Brownian motions `m`.
    pub noise_dim: usize,
    /// Calculus in which `a` and `b` are meant.
    pub calculus: Calculus,
}

impl Structure {
    /// `noise` with `noise_dim` Brownian motions, Itô.
    pub const fn new(noise: Noise, noise_dim: usize) -> Self {
        Structure {
            noise,
            noise_dim,
            calculus: Calculus::Ito,
        }
    }
    /// One Brownian motion (`m = 1`), [`Noise::Scalar`].
    pub const fn scalar() -> Self {
        Self::new(Noise::Scalar, 1)
    }
    /// [`Noise::Diagonal`] in state dimension `dim` (`m = d`).
    pub const fn diagonal(dim: usize) -> Self {
        Self::new(Noise::Diagonal, dim)
    }
    /// [`Noise::Additive`] (`b` independent of the state) with `noise_dim` Brownian motions.
    pub const fn additive(noise_dim: usize) -> Self {
        Self::new(Noise::Additive, noise_dim)
    }
    /// [`Noise::Commutative`] with `noise_dim` Brownian motions.
    pub const fn commutative(noise_dim: usize) -> Self {
        Self::new(Noise::Commutative, noise_dim)
    }
    /// [`Noise::General`] with `noise_dim` Brownian motions.
    pub const fn general(noise_dim: usize) -> Self {
        Self::new(Noise::General, noise_dim)
    }
    /// The same structure, for an equation written in Stratonovich calculus.
    pub const fn stratonovich(self) -> Self {
        self.with_calculus(Calculus::Stratonovich)
    }
    /// The same structure in calculus `calculus`.
    pub const fn with_calculus(mut self, calculus: Calculus) -> Self {
        self.calculus = calculus;
        self
    }

    /// Checks the declaration against the state dimension `dim`: `d ≥ 1`, `m ≥ 1`,
    /// scalar noise has `m = 1` and diagonal noise `m = d`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `dim` or `noise_dim`.
    pub fn check(&self, dim: usize) -> Result<()> {
        let m = self.noise_dim;
        if dim == 0 || m == 0 {
            return Err(Error::invalid(
                if dim == 0 { "dim" } else { "noise_dim" },
                0,
                "an SDE needs at least one state and one noise dimension",
            ));
        }
        match self.noise {
            Noise::Scalar if m != 1 => Err(Error::invalid(
                "noise_dim",
                m,
                "scalar noise has one Brownian motion (m = 1)",
            )),
            Noise::Diagonal if m != dim => Err(Error::invalid(
                "noise_dim",
                m,
                format!("diagonal noise needs m = d = {dim}"),
            )),
            _ => Ok(()),
        }
    }
}

/// A stochastic differential equation `dX = a(t, X) dt + b(t, X) dW`, `X ∈ R^d`, `W ∈ R^m`.
///
/// Implementors provide four methods: the dimension [`dim`](Sde::dim), the declared
/// [`structure`](Sde::structure) (noise kind, `m`, calculus), the
/// [`drift`](Sde::drift) and the diffusion as an operator
/// [`diffusion_apply`](Sde::diffusion_apply); the fused evaluation, the Milstein
/// derivative and the lockstep hook have defaults. The parts of the structure are read
/// as `sde.noise()`, `sde.noise_dim()`, `sde.calculus()` ([`SdeExt`]). All methods
/// write into `out` and must not allocate.
///
/// A user's own equation, the stochastic oscillator `dq = p dt`,
/// `dp = −q dt + σ q dW` (one Brownian motion), solved by Milstein (whose derivative
/// terms then come from the finite-difference default):
///
/// ```
/// use noether_sde::prelude::*;
/// use noether_sde::sde::Structure;
/// use nalgebra::DVector;
///
/// struct Oscillator {
///     sigma: f64,
/// }
///
/// impl Sde for Oscillator {
///     fn dim(&self) -> usize {
///         2
///     }
///     fn structure(&self) -> Structure {
///         Structure::scalar() // one Brownian motion; Itô
///     }
///     fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
///         out[0] = x[1];
///         out[1] = -x[0];
///     }
///     fn diffusion_apply(&self, _t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
///         out[0] = 0.0;
///         out[1] = self.sigma * x[0] * dw[0];
///     }
/// }
///
/// let sde = Oscillator { sigma: 0.0 };
/// assert_eq!((sde.noise(), sde.noise_dim(), sde.calculus()), (Noise::Scalar, 1, Calculus::Ito));
/// let span = TimeSpan::new(0.0, 1.0, 1e-3)?;
/// let mut path = IncrementStream::new(&SeedTree::new(1), 0, 1);
/// let x0 = DVector::from_vec(vec![1.0, 0.0]);
/// let x1 = integrate(&sde, &mut Milstein::new(), &x0, &span, &mut path, 0, &mut ())?;
/// // σ = 0: the harmonic oscillator, q(1) = cos 1 to O(h)
/// assert!((x1[0] - 1f64.cos()).abs() < 1e-3);
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub trait Sde {
    /// State dimension `d`.
    fn dim(&self) -> usize;
    /// Declared structure: noise kind, noise dimension `m`, calculus.
    fn structure(&self) -> Structure;
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
}

/// The parts of [`Sde::structure`] by name, for every SDE (a blanket implementation;
/// in the prelude).
pub trait SdeExt: Sde {
    /// Noise dimension `m`.
    #[inline]
    fn noise_dim(&self) -> usize {
        self.structure().noise_dim
    }
    /// Declared structure of the diffusion.
    #[inline]
    fn noise(&self) -> Noise {
        self.structure().noise
    }
    /// Calculus in which `a` and `b` are meant.
    #[inline]
    fn calculus(&self) -> Calculus {
        self.structure().calculus
    }
}

impl<S: Sde + ?Sized> SdeExt for S {}

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
    fn structure(&self) -> Structure {
        (**self).structure()
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
}

/// Counts drift and diffusion evaluations of the wrapped SDE (for work–precision
/// diagrams). Counters are plain cells: one `Counted` per thread. It does not forward
/// the wrapped SDE's [`Sde::batch`], so every evaluation goes through the counted
/// per-path methods.
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
    fn structure(&self) -> Structure {
        self.inner.structure()
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
