//! Fixed-step schemes and the driver [`integrate`] (THEORY §8).
//!
//! Each scheme lives in its own file, owns its scratch buffers (sized once in
//! [`Scheme::prepare`]) and advances `x → out` over one [`Increment`] without
//! allocating. [`integrate`] checks the scheme against the SDE's declared noise and
//! calculus before the first step, so a Stratonovich scheme cannot silently solve an
//! Itô equation and commutative Milstein cannot silently run on general noise.

mod adaptive;
pub mod catalogue;
pub use adaptive::{
    integrate_adaptive, AdaptiveMilstein, AdaptiveOptions, AdaptiveSolution, AdaptiveSpan, EmbeddedScheme,
};
use catalogue::catalogue;

// The scheme catalogue: one line per scheme file (module { Variant => constructor }).
// Adding a scheme = its file + one line here; the CLI, the convergence suite, the report
// and the conformance tests pick it up from its `SchemeInfo`.
catalogue! {
    euler_maruyama { EulerMaruyama => EulerMaruyama::new() }
    milstein { Milstein => Milstein::new() }
    milstein_levy {
        MilsteinLevy => MilsteinLevy::new(),
        MilsteinNoLevy => MilsteinLevy::without_areas(),
    }
    rk_milstein { RkMilstein => RkMilstein::new() }
    heun { Heun => Heun::new() }
    euler_heun { EulerHeun => EulerHeun::new() }
    dri1 {
        Dri1 => Dri1::new(),
        Dri1ThreePoint => Dri1::three_point(),
    }
    sriw1 { Sriw1 => Sriw1::new() }
    sra1 { Sra1 => Sra1::new() }
}

use crate::brownian::{BrownianPath, Increment};
use crate::error::{check_vector, Error, IncompatibleReason, Result};
use crate::observe::{Flow, Observer};
use crate::sde::{Calculus, DerivativeScratch, Noise, Sde, SdeExt};
use nalgebra::DVector;

/// What a scheme is and what it accepts: the entry the scheme catalogue
/// ([`catalogue`]), the CLI, the convergence studies and the report read.
///
/// Built with [`SchemeInfo::new`] and the `const` setters, so a scheme declares
/// everything about itself in its own file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchemeInfo {
    /// Canonical name (`"euler_maruyama"`, `"milstein"`, …): lower case, `_`-separated.
    pub name: &'static str,
    /// Other accepted spellings (`"em"`); `-` and `_` are always interchangeable.
    pub aliases: &'static [&'static str],
    /// One line for help texts.
    pub summary: &'static str,
    /// Strong order on the noise kinds it is designed for (see
    /// [`SchemeInfo::strong_order_on`] for the noise kinds where it differs).
    pub strong_order: f64,
    /// Noise kinds on which the strong order differs from [`SchemeInfo::strong_order`]
    /// (Euler–Maruyama is order 1 on additive noise).
    pub strong_order_by_noise: &'static [(Noise, f64)],
    /// Weak order.
    pub weak_order: f64,
    /// Calculus of the SDEs it solves.
    pub calculus: Calculus,
    /// Noise kinds it accepts.
    pub noise: &'static [Noise],
    /// Whether general (non-commutative) noise makes it read Lévy areas.
    pub needs_levy_area: bool,
    /// Whether it chooses its own steps (an embedded error estimate).
    pub adaptive: bool,
}

impl SchemeInfo {
    /// A fixed-step scheme without Lévy areas, aliases or per-noise orders.
    pub const fn new(
        name: &'static str,
        strong_order: f64,
        weak_order: f64,
        calculus: Calculus,
        noise: &'static [Noise],
    ) -> Self {
        SchemeInfo {
            name,
            aliases: &[],
            summary: "",
            strong_order,
            strong_order_by_noise: &[],
            weak_order,
            calculus,
            noise,
            needs_levy_area: false,
            adaptive: false,
        }
    }

    /// With other accepted spellings.
    pub const fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    /// With a one-line summary.
    pub const fn summary(mut self, summary: &'static str) -> Self {
        self.summary = summary;
        self
    }

    /// With strong orders that differ on some noise kinds.
    pub const fn strong_order_by_noise(mut self, orders: &'static [(Noise, f64)]) -> Self {
        self.strong_order_by_noise = orders;
        self
    }

    /// Reading Lévy areas on general noise.
    pub const fn levy_area(mut self, needs: bool) -> Self {
        self.needs_levy_area = needs;
        self
    }

    /// Whether the scheme will read Lévy areas when solving an SDE with noise `noise`.
    pub fn reads_area(&self, noise: Noise) -> bool {
        self.needs_levy_area && noise == Noise::General
    }

    /// The strong order on an SDE with noise `noise` (and the scheme's calculus).
    ///
    /// ```
    /// use noether_sde::scheme::{EulerMaruyama, Scheme};
    /// use noether_sde::sde::Noise;
    /// let em = EulerMaruyama::new().info();
    /// assert_eq!(em.strong_order_on(Noise::Scalar), 0.5);
    /// assert_eq!(em.strong_order_on(Noise::Additive), 1.0);
    /// ```
    pub fn strong_order_on(&self, noise: Noise) -> f64 {
        self.strong_order_by_noise
            .iter()
            .find(|(n, _)| *n == noise)
            .map_or(self.strong_order, |&(_, order)| order)
    }

    /// Whether the scheme accepts noise `noise`.
    pub fn accepts(&self, noise: Noise) -> bool {
        self.noise.contains(&noise)
    }
}

/// All noise kinds.
pub(crate) const ANY_NOISE: &[Noise] = &[
    Noise::Scalar,
    Noise::Diagonal,
    Noise::Additive,
    Noise::Commutative,
    Noise::General,
];

/// A one-step method for `dX = a dt + b dW`.
pub trait Scheme: Clone + Send {
    /// Name, orders and what the scheme accepts.
    fn info(&self) -> SchemeInfo;
    /// Sizes the scratch buffers for state dimension `dim` and noise dimension
    /// `noise_dim`; called by [`integrate`] before the first step.
    fn prepare(&mut self, dim: usize, noise_dim: usize);
    /// Advances `x` at time `t` over `inc` into `out`. Allocates nothing.
    ///
    /// # Errors
    /// Reserved for schemes that can fail within a step (none of the explicit ones do).
    fn step<S: Sde + ?Sized>(
        &mut self,
        sde: &S,
        t: f64,
        inc: &Increment,
        x: &DVector<f64>,
        out: &mut DVector<f64>,
    ) -> Result<()>;

    /// Whether the scheme reads the time integrals `I_(j,0)`
    /// ([`Increment::time_integral`]; the strong order-1.5 schemes). The drivers then
    /// request them from the path. Default `false`.
    fn reads_time_integral(&self) -> bool {
        false
    }
}

/// The Euler–Maruyama update `out = x + h·a + b` (THEORY §8), element by element, with
/// `b` the diffusion already applied to the increment: the base step or predictor of
/// every explicit scheme. Slices of one checked length `n`, because nalgebra's strided
/// iterators do not vectorise and a four-way `zip` re-derives the length: on a
/// one-dimensional state (the per-path GBM route) this is a handful of instructions.
#[inline(always)]
pub(crate) fn euler_update(
    x: &DVector<f64>,
    h: f64,
    drift: &DVector<f64>,
    diffusion: &DVector<f64>,
    out: &mut DVector<f64>,
) {
    let out = out.as_mut_slice();
    let n = out.len();
    let (x, a, b) = (
        &x.as_slice()[..n],
        &drift.as_slice()[..n],
        &diffusion.as_slice()[..n],
    );
    if n == 1 {
        // d = 1 (GBM, OU per path): no loop set-up, no vectorisation prologue
        out[0] = x[0] + h * a[0] + b[0];
        return;
    }
    #[allow(clippy::needless_range_loop)] // one index, four slices of the same length
    for i in 0..n {
        out[i] = x[i] + h * a[i] + b[i];
    }
}

/// Whether `x` is finite and within `bound` in absolute value: the per-path driver's
/// divergence test, [`crate::observe::out_of_bounds`]'s negation with one comparison
/// per entry (`|v| ≤ bound` is false for NaN, and for ±∞ since the driver caps `bound`
/// at `f64::MAX`), branch-free.
#[inline(always)]
fn within(x: &DVector<f64>, bound: f64) -> bool {
    match x.as_slice() {
        [v] => v.abs() <= bound,
        x => x.iter().fold(true, |ok, v| ok & (v.abs() <= bound)),
    }
}

/// Checks that `scheme` can solve `sde` (calculus and noise kind).
///
/// # Errors
/// [`Error::InvalidParameter`] if the SDE's declared [`crate::sde::Structure`] is
/// inconsistent ([`crate::sde::Structure::check`]); [`Error::Incompatible`] naming the
/// scheme and the mismatch ([`IncompatibleReason::Calculus`],
/// [`IncompatibleReason::NoiseKind`]).
pub fn check_compatible<S: Sde + ?Sized>(info: &SchemeInfo, sde: &S) -> Result<()> {
    sde.structure().check(sde.dim())?;
    if info.calculus != sde.calculus() {
        return Err(Error::Incompatible {
            scheme: info.name,
            reason: IncompatibleReason::Calculus {
                solves: info.calculus,
                sde: sde.calculus(),
            },
        });
    }
    if !info.noise.contains(&sde.noise()) {
        return Err(Error::Incompatible {
            scheme: info.name,
            reason: IncompatibleReason::NoiseKind { noise: sde.noise() },
        });
    }
    Ok(())
}

/// A uniform time grid `t_k = t0 + k·h` on `[t0, t1]`; the last step is shortened if
/// `t1 − t0` is not a multiple of `h`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeSpan {
    t0: f64,
    t1: f64,
    h: f64,
    steps: usize,
}

impl TimeSpan {
    /// The grid from `t0` to `t1` with step `h`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `h <= 0`, `t1 < t0`, any value is not finite, or
    /// `t1 > t0` and `h` is so large that no step would be taken (`(t1 − t0)/h ≤ 1e-9`).
    ///
    /// ```
    /// use noether_sde::scheme::TimeSpan;
    /// assert_eq!(TimeSpan::new(0.0, 1.0, 0.25).unwrap().steps(), 4);
    /// assert!(TimeSpan::new(0.0, 1.0, 0.0).is_err());
    /// assert!(TimeSpan::new(1.0, 0.0, 0.1).is_err());
    /// assert!(TimeSpan::new(0.0, 1.0, 1e10).is_err()); // zero steps
    /// ```
    pub fn new(t0: f64, t1: f64, h: f64) -> Result<Self> {
        if !t0.is_finite() {
            return Err(Error::invalid("t0", t0, "must be finite"));
        }
        if !t1.is_finite() {
            return Err(Error::invalid("t1", t1, "must be finite"));
        }
        if !(h.is_finite() && h > 0.0) {
            return Err(Error::invalid("dt", h, "the step must be finite and > 0"));
        }
        if t1 < t0 {
            return Err(Error::invalid(
                "t1",
                t1,
                format!("the end time must be >= t0 = {t0}"),
            ));
        }
        let ratio = (t1 - t0) / h;
        if ratio > 1e12 {
            return Err(Error::invalid("dt", h, "more than 1e12 steps requested"));
        }
        let steps = (ratio - 1e-9).ceil().max(0.0) as usize;
        if steps == 0 && t1 > t0 {
            return Err(Error::invalid(
                "dt",
                h,
                format!("the step is larger than the span [{t0}, {t1}]: zero steps would be taken"),
            ));
        }
        Ok(TimeSpan { t0, t1, h, steps })
    }

    /// Start time.
    pub fn t0(&self) -> f64 {
        self.t0
    }
    /// End time.
    pub fn t1(&self) -> f64 {
        self.t1
    }
    /// Nominal step.
    pub fn h(&self) -> f64 {
        self.h
    }
    /// Number of steps.
    pub fn steps(&self) -> usize {
        self.steps
    }
    /// `t_k` (exactly `t1` for `k = steps`).
    pub fn time(&self, k: usize) -> f64 {
        if k >= self.steps {
            self.t1
        } else {
            self.t0 + k as f64 * self.h
        }
    }
    /// Size of step `k` (from `t_k` to `t_{k+1}`).
    pub fn step_size(&self, k: usize) -> f64 {
        if k + 1 == self.steps {
            self.t1 - self.time(k)
        } else {
            self.h
        }
    }
}

/// Solves `sde` from `x0` over `span` with `scheme` on `path`, calling `observer` at the
/// initial state and after every step; returns the final state.
///
/// `path_index` only labels errors (the ensemble's index of this path).
///
/// # Errors
/// - [`Error::DimensionMismatch`] / [`Error::NonFinite`] for a bad `x0` or a path of the
///   wrong noise dimension;
/// - [`Error::Incompatible`] if the scheme does not accept the SDE's calculus or noise,
///   or needs Lévy areas the path cannot provide;
/// - [`Error::Divergence`] with path, step and time when the state stops being finite;
/// - [`Error::Brownian`] if the path runs out or its grid does not match `span`.
///
/// ```
/// use noether_sde::prelude::*;
/// use nalgebra::DVector;
/// let gbm = GeometricBrownianMotion::new(0.5, 0.2)?;
/// let span = TimeSpan::new(0.0, 1.0, 0.01)?;
/// let mut path = IncrementStream::new(&SeedTree::new(7), 0, 1);
/// let x1 = integrate(&gbm, &mut Milstein::new(), &DVector::from_element(1, 1.0), &span, &mut path, 0, &mut ())?;
/// assert!(x1[0] > 0.0);
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub fn integrate<S, K, P, O>(
    sde: &S,
    scheme: &mut K,
    x0: &DVector<f64>,
    span: &TimeSpan,
    path: &mut P,
    path_index: u64,
    observer: &mut O,
) -> Result<DVector<f64>>
where
    S: Sde + ?Sized,
    K: Scheme,
    P: BrownianPath + ?Sized,
    O: Observer + ?Sized,
{
    let d = sde.dim();
    let m = sde.noise_dim();
    check_vector("x0", x0, d)?;
    if path.noise_dim() != m {
        return Err(Error::DimensionMismatch {
            what: "Brownian path noise dimension",
            expected: m,
            got: path.noise_dim(),
        });
    }
    let info = scheme.info();
    check_compatible(&info, sde)?;
    let reads_area = info.reads_area(sde.noise());
    if reads_area && !path.provides_area() {
        return Err(Error::Incompatible {
            scheme: info.name,
            reason: IncompatibleReason::NeedsLevyArea {
                provider: "the Brownian path",
            },
        });
    }
    check_time_integral(scheme, path)?;
    scheme.prepare(d, m);
    let mut inc = increment_for(scheme, reads_area, m);
    let mut x = x0.clone();
    let mut next = DVector::zeros(d);
    step_through(
        sde, scheme, span, path, path_index, observer, &mut x, &mut next, &mut inc,
    )?;
    Ok(x)
}

/// A scheme prepared for one SDE together with the buffers of a solve (state, next
/// state, increment): built once, reused for any number of paths by [`integrate_with`],
/// which then allocates nothing.
///
/// ```
/// use noether_sde::prelude::*;
/// use noether_sde::scheme::{integrate_with, Workspace};
/// use nalgebra::DVector;
/// let gbm = GeometricBrownianMotion::new(0.5, 0.2)?;
/// let span = TimeSpan::new(0.0, 1.0, 0.01)?;
/// let seeds = SeedTree::new(7);
/// let x0 = DVector::from_element(1, 1.0);
/// let mut ws = Workspace::new(&gbm, Milstein::new())?;
/// for path in 0..4 {
///     let mut brownian = IncrementStream::new(&seeds, path, 1);
///     let x1 = integrate_with(&gbm, &mut ws, &x0, &span, &mut brownian, path, &mut ())?;
///     assert!(x1[0] > 0.0);
/// }
/// # Ok::<(), noether_sde::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Workspace<K> {
    scheme: K,
    name: &'static str,
    dim: usize,
    noise_dim: usize,
    x: DVector<f64>,
    next: DVector<f64>,
    inc: Increment,
}

impl<K: Scheme> Workspace<K> {
    /// Checks that `scheme` can solve `sde`, prepares it and sizes the buffers.
    ///
    /// # Errors
    /// [`Error::Incompatible`] as for [`integrate`].
    pub fn new<S: Sde + ?Sized>(sde: &S, mut scheme: K) -> Result<Self> {
        let info = scheme.info();
        check_compatible(&info, sde)?;
        let (d, m) = (sde.dim(), sde.noise_dim());
        scheme.prepare(d, m);
        let inc = increment_for(&scheme, info.reads_area(sde.noise()), m);
        Ok(Workspace {
            scheme,
            name: info.name,
            dim: d,
            noise_dim: m,
            x: DVector::zeros(d),
            next: DVector::zeros(d),
            inc,
        })
    }

    /// Whether the scheme reads Lévy areas on this SDE (the Brownian path must provide them).
    pub fn reads_area(&self) -> bool {
        self.inc.area.is_some()
    }

    /// The prepared scheme.
    pub fn scheme(&self) -> &K {
        &self.scheme
    }

    /// The state after the last solve.
    pub fn state(&self) -> &DVector<f64> {
        &self.x
    }
}

/// [`integrate`] on a [`Workspace`]: the same steps and the same numbers, without
/// allocating. Returns the final state (held by the workspace).
///
/// # Errors
/// As [`integrate`]; also [`Error::DimensionMismatch`] if `sde` is not the SDE (of the
/// same dimensions) the workspace was built for.
#[allow(clippy::too_many_arguments)]
pub fn integrate_with<'w, S, K, P, O>(
    sde: &S,
    ws: &'w mut Workspace<K>,
    x0: &DVector<f64>,
    span: &TimeSpan,
    path: &mut P,
    path_index: u64,
    observer: &mut O,
) -> Result<&'w DVector<f64>>
where
    S: Sde + ?Sized,
    K: Scheme,
    P: BrownianPath + ?Sized,
    O: Observer + ?Sized,
{
    let (d, m) = (sde.dim(), sde.noise_dim());
    if (d, m) != (ws.dim, ws.noise_dim) {
        return Err(Error::DimensionMismatch {
            what: "SDE dimension (workspace built for another SDE)",
            expected: if d != ws.dim { ws.dim } else { ws.noise_dim },
            got: if d != ws.dim { d } else { m },
        });
    }
    check_vector("x0", x0, d)?;
    if path.noise_dim() != m {
        return Err(Error::DimensionMismatch {
            what: "Brownian path noise dimension",
            expected: m,
            got: path.noise_dim(),
        });
    }
    if ws.reads_area() && !path.provides_area() {
        return Err(Error::Incompatible {
            scheme: ws.name,
            reason: IncompatibleReason::NeedsLevyArea {
                provider: "the Brownian path",
            },
        });
    }
    check_time_integral(&ws.scheme, path)?;
    let Workspace {
        scheme, x, next, inc, ..
    } = ws;
    x.copy_from(x0);
    step_through(sde, scheme, span, path, path_index, observer, x, next, inc)?;
    Ok(&ws.x)
}

/// The increment buffer a scheme reads: `ΔW`, and the areas / time integrals it needs.
fn increment_for<K: Scheme>(scheme: &K, reads_area: bool, m: usize) -> Increment {
    let inc = if reads_area {
        Increment::with_area(m)
    } else {
        Increment::new(m)
    };
    if scheme.reads_time_integral() {
        inc.and_time_integral()
    } else {
        inc
    }
}

/// [`Error::Incompatible`] if `scheme` reads `I_(j,0)` and `path` cannot provide it.
fn check_time_integral<K: Scheme, P: BrownianPath + ?Sized>(scheme: &K, path: &P) -> Result<()> {
    if scheme.reads_time_integral() && !path.provides_time_integral() {
        return Err(Error::Incompatible {
            scheme: scheme.info().name,
            reason: IncompatibleReason::NeedsTimeIntegral {
                provider: "the Brownian path",
            },
        });
    }
    Ok(())
}

/// The stepping loop shared by [`integrate`] and [`integrate_with`]: `x` holds the
/// initial state on entry and the final one on exit.
#[allow(clippy::too_many_arguments)]
#[inline]
fn step_through<S, K, P, O>(
    sde: &S,
    scheme: &mut K,
    span: &TimeSpan,
    path: &mut P,
    path_index: u64,
    observer: &mut O,
    x: &mut DVector<f64>,
    next: &mut DVector<f64>,
    inc: &mut Increment,
) -> Result<()>
where
    S: Sde + ?Sized,
    K: Scheme,
    P: BrownianPath + ?Sized,
    O: Observer + ?Sized,
{
    // at most f64::MAX, so that `|v| ≤ bound` also rejects ±∞ under the default bound +∞
    let bound = observer.divergence_bound().min(f64::MAX);
    if !within(x, bound) {
        return Err(Error::Divergence {
            path: path_index,
            step: 0,
            t: span.t0(),
        });
    }
    if observer.observe(0, span.t0(), x) == Flow::Stop {
        return Ok(());
    }
    let mut wake = observer.next_time();
    let mut t = span.time(0);
    for k in 0..span.steps() {
        inc.h = span.step_size(k);
        path.next(inc)?;
        scheme.step(sde, t, inc, x, next)?;
        let t_next = span.time(k + 1);
        if !within(next, bound) {
            return Err(Error::Divergence {
                path: path_index,
                step: k + 1,
                t: t_next,
            });
        }
        std::mem::swap(x, next);
        if t_next >= wake {
            if observer.observe(k + 1, t_next, x) == Flow::Stop {
                break;
            }
            wake = observer.next_time();
        }
        t = t_next;
    }
    Ok(())
}

/// Scratch shared by the Milstein-type schemes: the derivative-term sum
/// `Σ_{j,k} (L^j b_k) I_{(j,k)}` evaluated column by column as `∂b[b_j]·c_j`,
/// `c_{jk} = I_{(j,k)}` (THEORY §8).
#[derive(Debug, Clone)]
pub(crate) struct MilsteinWork {
    pub(crate) unit: DVector<f64>,
    pub(crate) c: DVector<f64>,
    pub(crate) column: DVector<f64>,
    pub(crate) term: DVector<f64>,
    pub(crate) scratch: DerivativeScratch,
}

impl MilsteinWork {
    pub(crate) fn new(dim: usize, noise_dim: usize) -> Self {
        MilsteinWork {
            unit: DVector::zeros(noise_dim),
            c: DVector::zeros(noise_dim),
            column: DVector::zeros(dim),
            term: DVector::zeros(dim),
            scratch: DerivativeScratch::new(dim),
        }
    }

    /// Adds `Σ_{j,k} (L^j b_k) I_{(j,k)}` to `out`. `use_area = false` drops the Lévy
    /// areas (exact for commutative noise). Structure-aware: scalar noise costs one
    /// derivative, diagonal two, additive none, otherwise `m`.
    #[inline]
    pub(crate) fn add_correction<S: Sde + ?Sized>(
        &mut self,
        sde: &S,
        t: f64,
        x: &DVector<f64>,
        inc: &Increment,
        use_area: bool,
        out: &mut DVector<f64>,
    ) {
        let h = inc.h;
        match sde.noise() {
            Noise::Additive => {}
            Noise::Scalar => {
                self.unit[0] = 1.0;
                sde.diffusion_apply(t, x, &self.unit, &mut self.column);
                sde.diffusion_derivative(t, x, &self.column, &self.unit, &mut self.term, &mut self.scratch);
                // out += ½(ΔW² − h) L¹b (the arithmetic of `axpy` with b = 1)
                let coefficient = 0.5 * (inc.dw[0] * inc.dw[0] - h);
                match (out.as_mut_slice(), self.term.as_slice()) {
                    ([o], [l]) => *o += coefficient * l,
                    (out, term) => {
                        for (o, &l) in out.iter_mut().zip(term) {
                            *o += coefficient * l;
                        }
                    }
                }
            }
            Noise::Diagonal => {
                // ½[∂b[bΔW]·ΔW − h ∂b[b1]·1]: only the diagonal terms L^k b_k survive.
                sde.diffusion_apply(t, x, &inc.dw, &mut self.column);
                sde.diffusion_derivative(t, x, &self.column, &inc.dw, &mut self.term, &mut self.scratch);
                out.axpy(0.5, &self.term, 1.0);
                self.unit.fill(1.0);
                sde.diffusion_apply(t, x, &self.unit, &mut self.column);
                sde.diffusion_derivative(t, x, &self.column, &self.unit, &mut self.term, &mut self.scratch);
                out.axpy(-0.5 * h, &self.term, 1.0);
            }
            Noise::Commutative | Noise::General => {
                let m = inc.dw.len();
                for j in 0..m {
                    self.unit.fill(0.0);
                    self.unit[j] = 1.0;
                    sde.diffusion_apply(t, x, &self.unit, &mut self.column);
                    for k in 0..m {
                        self.c[k] = if use_area {
                            inc.iterated_integral(j, k)
                        } else {
                            inc.symmetric_integral(j, k)
                        };
                    }
                    sde.diffusion_derivative(t, x, &self.column, &self.c, &mut self.term, &mut self.scratch);
                    *out += &self.term;
                }
            }
        }
    }
}
