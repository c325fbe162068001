//! Adaptive steps on a Brownian tree: an embedded error estimate, a PI step-size
//! controller, and rejected steps that re-query the same path (THEORY §9).
//!
//! # The embedded pair
//!
//! [`AdaptiveMilstein`] advances with Milstein and estimates the local error by its
//! difference from two cheaper methods that share its evaluations:
//!
//! ```text
//! X_E = X + a(t, X) h + b(t, X) ΔW                                  (Euler–Maruyama)
//! X'  = X_E + M,   M = Σ_{j,k} (L^j b_k)(t, X) ½(ΔW_j ΔW_k − δ_jk h)   (Milstein)
//! e_i = |M_i| + ½ h |a_i(t + h, X') − a_i(t, X)|
//! ```
//!
//! `|M|` is the Euler–Maruyama/Milstein difference (the stochastic local error, `O(h)`
//! in mean square); the second term is the Euler/trapezoid difference of the drift (the
//! deterministic local error, `O(h²)`), so additive noise, where `M = 0`, is still
//! controlled. The estimate is of order `q = 1` in `h` ([`EmbeddedScheme::error_order`]).
//! Why Milstein as the propagated solution: the step chosen after a rejection depends on
//! the increment over the rejected step (it looks ahead), and Euler–Maruyama's `O(h)`
//! pathwise local error, correlated with that choice, can add up to an `O(1)` bias
//! (Gaines & Lyons 1997); Milstein's pathwise local error is `o(h)`, so the adaptive
//! solution converges to the same limit as fixed steps on the same path
//! (`tests/it/adaptive.rs` checks it). Milstein's noise kinds are the ones accepted:
//! scalar, diagonal, additive, commutative (Itô); general noise would need Lévy areas,
//! which the tree does not carry, and is refused with [`Error::Incompatible`].
//!
//! # The controller
//!
//! With `sc_i = atol + rtol·max(|X_i|, |X'_i|)` and the RMS norm
//! `err = √(Σ_i (e_i / sc_i)² / d)`, a step is accepted when `err ≤ 1` (or when it is
//! already at `dt_min`: then it is counted as forced). The next step is
//!
//! ```text
//! accepted: h ← h · clamp(safety · err^(−β₁/q) · err_prev^(β₂/q), fac_min, fac_max)
//!           (fac_max replaced by 1 right after a rejection; err_prev = err clamped to [10⁻⁴, 10⁴])
//! rejected: h ← h · max(fac_min, safety · err^(−1/q))
//! ```
//!
//! then clamped to `[dt_min, dt_max]` (Gustafsson's PI controller; defaults `β₁ = 0.7`,
//! `β₂ = 0.4`, `safety = 0.9`, `fac_min = 0.2`, `fac_max = 2`, see
//! [`AdaptiveOptions`]). A non-finite error rejects with `fac_min`.
//!
//! # Landing on save times
//!
//! The step is shortened to end exactly on the next time of [`AdaptiveSpan::stops`]
//! (and on `t1`), stretching by at most 1% to avoid slivers; after a landing the
//! controller resumes from the step it had proposed. An observer whose requested times
//! are among the stops therefore sees the state at exactly those times; it is called at
//! every accepted step whose time reaches its [`Observer::next_time`].
//!
//! # References
//! J. G. Gaines, T. J. Lyons (1997), *Variable step size control in the numerical
//! solution of stochastic differential equations*, SIAM J. Appl. Math. 57(5), 1455–1484;
//! C. Rackauckas, Q. Nie (2017), *Adaptive methods for stochastic differential
//! equations via natural embeddings and rejection sampling with memory*, Discrete
//! Contin. Dyn. Syst. B 22(7); E. Hairer, G. Wanner, *Solving ODEs II*, §IV.2 (the PI
//! controller).

use super::{check_compatible, euler_update, Milstein, MilsteinWork, Scheme, SchemeInfo};
use crate::brownian::{BrownianTree, Increment};
use crate::error::{check_vector, Error, Result};
use crate::observe::{out_of_bounds, Flow, Observer};
use crate::sde::{Sde, SdeExt};
use nalgebra::DVector;

/// A one-step method with an embedded local-error estimate, for [`integrate_adaptive`].
pub trait EmbeddedScheme: Clone + Send {
    /// Name, orders, accepted noise (with [`SchemeInfo::adaptive`] set).
    fn info(&self) -> SchemeInfo;
    /// The order `q` of the error estimate in `h` (`e ∝ h^q`), which scales the
    /// controller's exponents.
    fn error_order(&self) -> f64;
    /// Sizes the scratch buffers for state dimension `dim` and noise dimension `noise_dim`.
    fn prepare(&mut self, dim: usize, noise_dim: usize);
    /// Advances `x` at time `t` over `inc` into `out` and writes the componentwise error
    /// estimate (non-negative) into `error`. Allocates nothing.
    ///
    /// # Errors
    /// Reserved for schemes that can fail within a step.
    #[allow(clippy::too_many_arguments)]
    fn step_with_error<S: Sde + ?Sized>(
        &mut self,
        sde: &S,
        t: f64,
        inc: &Increment,
        x: &DVector<f64>,
        out: &mut DVector<f64>,
        error: &mut DVector<f64>,
    ) -> Result<()>;
}

/// Milstein with the Euler–Maruyama and Euler/trapezoid-drift differences as its error
/// estimate (see the module docs): strong order 1 at fixed steps, for scalar,
/// diagonal, additive and commutative Itô noise.
///
/// Cost per attempted step: Milstein's evaluations plus one drift evaluation.
///
/// # References
/// Kloeden & Platen (1992), §10.3; Gaines & Lyons (1997).
#[derive(Debug, Clone)]
pub struct AdaptiveMilstein {
    drift: DVector<f64>,
    diffusion: DVector<f64>,
    drift_end: DVector<f64>,
    correction: DVector<f64>,
    work: MilsteinWork,
}

impl Default for AdaptiveMilstein {
    fn default() -> Self {
        AdaptiveMilstein {
            drift: DVector::zeros(0),
            diffusion: DVector::zeros(0),
            drift_end: DVector::zeros(0),
            correction: DVector::zeros(0),
            work: MilsteinWork::new(0, 0),
        }
    }
}

impl AdaptiveMilstein {
    /// A new scheme (buffers are sized by [`EmbeddedScheme::prepare`]).
    pub fn new() -> Self {
        Self::default()
    }
}

impl EmbeddedScheme for AdaptiveMilstein {
    /// Milstein's orders, calculus and noise kinds, marked adaptive.
    fn info(&self) -> SchemeInfo {
        SchemeInfo {
            name: "adaptive_milstein",
            summary: "Milstein with an Euler–Maruyama embedded error estimate and a PI controller",
            adaptive: true,
            ..Milstein::new().info()
        }
    }

    fn error_order(&self) -> f64 {
        1.0
    }

    fn prepare(&mut self, dim: usize, noise_dim: usize) {
        self.drift = DVector::zeros(dim);
        self.diffusion = DVector::zeros(dim);
        self.drift_end = DVector::zeros(dim);
        self.correction = DVector::zeros(dim);
        self.work = MilsteinWork::new(dim, noise_dim);
    }

    #[inline]
    fn step_with_error<S: Sde + ?Sized>(
        &mut self,
        sde: &S,
        t: f64,
        inc: &Increment,
        x: &DVector<f64>,
        out: &mut DVector<f64>,
        error: &mut DVector<f64>,
    ) -> Result<()> {
        let h = inc.h;
        sde.drift_and_diffusion(t, x, &inc.dw, &mut self.drift, &mut self.diffusion);
        euler_update(x, h, &self.drift, &self.diffusion, out);
        self.correction.fill(0.0);
        self.work
            .add_correction(sde, t, x, inc, false, &mut self.correction);
        *out += &self.correction;
        sde.drift(t + h, out, &mut self.drift_end);
        for (((e, &m), &a0), &a1) in error
            .iter_mut()
            .zip(self.correction.iter())
            .zip(self.drift.iter())
            .zip(self.drift_end.iter())
        {
            *e = m.abs() + 0.5 * h * (a1 - a0).abs();
        }
        Ok(())
    }
}

/// Tolerances and controller settings of [`integrate_adaptive`].
///
/// `dt_min`, `dt_max` and `dt_initial` left at `None` are resolved from the span `T`
/// and the tree: `dt_max = T`, `dt_initial = min(dt_max, T/100)`,
/// `dt_min = max(10⁻¹⁰ T, 16 × the tree's leaf width)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveOptions {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// First step tried.
    pub dt_initial: Option<f64>,
    /// Smallest step: a step of this size is accepted whatever its error (and counted).
    pub dt_min: Option<f64>,
    /// Largest step.
    pub dt_max: Option<f64>,
    /// Most attempted steps (accepted + rejected) before the solve gives up.
    pub max_steps: usize,
    /// Safety factor (`< 1`).
    pub safety: f64,
    /// Smallest step factor.
    pub fac_min: f64,
    /// Largest step factor.
    pub fac_max: f64,
    /// Exponent of the current error (times `1/q`).
    pub beta1: f64,
    /// Exponent of the previous accepted error (times `1/q`).
    pub beta2: f64,
}

impl AdaptiveOptions {
    /// Tolerances `rtol`, `atol` with the default controller.
    pub fn new(rtol: f64, atol: f64) -> Self {
        AdaptiveOptions {
            rtol,
            atol,
            dt_initial: None,
            dt_min: None,
            dt_max: None,
            max_steps: 10_000_000,
            safety: 0.9,
            fac_min: 0.2,
            fac_max: 2.0,
            beta1: 0.7,
            beta2: 0.4,
        }
    }

    /// The same with `rtol = atol = tol`.
    pub fn tolerance(tol: f64) -> Self {
        Self::new(tol, tol)
    }

    /// Checks every field; returns `(dt_initial, dt_min, dt_max)` resolved for a span of
    /// length `span` and a tree with leaves of width `leaf`.
    fn resolve(&self, span: f64, leaf: f64) -> Result<(f64, f64, f64)> {
        let positive = |name: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(Error::invalid(name, v, "must be finite and >= 0"))
            }
        };
        positive("rtol", self.rtol)?;
        positive("atol", self.atol)?;
        if self.rtol == 0.0 && self.atol == 0.0 {
            return Err(Error::invalid(
                "atol",
                self.atol,
                "rtol and atol cannot both be 0",
            ));
        }
        if !(self.safety > 0.0 && self.safety <= 1.0) {
            return Err(Error::invalid("safety", self.safety, "must be in (0, 1]"));
        }
        if !(self.fac_min > 0.0 && self.fac_min < 1.0) {
            return Err(Error::invalid("fac_min", self.fac_min, "must be in (0, 1)"));
        }
        if !(self.fac_max > 1.0 && self.fac_max.is_finite()) {
            return Err(Error::invalid("fac_max", self.fac_max, "must be finite and > 1"));
        }
        positive("beta1", self.beta1)?;
        positive("beta2", self.beta2)?;
        if self.max_steps == 0 {
            return Err(Error::invalid("max_steps", 0, "must be at least 1"));
        }
        let dt_max = positive("dt_max", self.dt_max.unwrap_or(span))?;
        let dt_min = positive("dt_min", self.dt_min.unwrap_or((1e-10 * span).max(16.0 * leaf)))?;
        if dt_min <= 0.0 || dt_min > dt_max {
            return Err(Error::invalid(
                "dt_min",
                dt_min,
                format!("must be > 0 and at most dt_max = {dt_max}"),
            ));
        }
        let dt_initial = positive("dt_initial", self.dt_initial.unwrap_or(dt_max.min(0.01 * span)))?;
        Ok((dt_initial.clamp(dt_min, dt_max), dt_min, dt_max))
    }
}

/// The time span of an adaptive solve and the times it must land on.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveSpan {
    t0: f64,
    t1: f64,
    /// Landing times in `(t0, t1]`, ascending, ending with `t1`.
    stops: Vec<f64>,
}

impl AdaptiveSpan {
    /// `[t0, t1]`, landing only on `t1`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for non-finite times or `t1 ≤ t0`.
    pub fn new(t0: f64, t1: f64) -> Result<Self> {
        if !t0.is_finite() {
            return Err(Error::invalid("t0", t0, "must be finite"));
        }
        if !(t1.is_finite() && t1 > t0) {
            return Err(Error::invalid(
                "t1",
                t1,
                format!("must be finite and > t0 = {t0}"),
            ));
        }
        Ok(AdaptiveSpan {
            t0,
            t1,
            stops: vec![t1],
        })
    }

    /// Also land exactly on `times` (save times): those in `(t0, t1)` are kept, sorted,
    /// without duplicates; `t0` and `t1` are always visited.
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a non-finite time.
    pub fn with_stops(mut self, times: &[f64]) -> Result<Self> {
        crate::error::check_finite("stops", times)?;
        let mut stops: Vec<f64> = times
            .iter()
            .copied()
            .filter(|&s| s > self.t0 && s < self.t1)
            .collect();
        stops.sort_by(f64::total_cmp);
        stops.dedup();
        stops.push(self.t1);
        self.stops = stops;
        Ok(self)
    }

    /// Start time.
    pub fn t0(&self) -> f64 {
        self.t0
    }

    /// End time.
    pub fn t1(&self) -> f64 {
        self.t1
    }

    /// The landing times (ascending, ending with `t1`).
    pub fn stops(&self) -> &[f64] {
        &self.stops
    }
}

/// What an adaptive solve returns: the final state and the step counts.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveSolution {
    /// The state at the end (at `t1`, or where an observer stopped the solve).
    pub x: DVector<f64>,
    /// The time of `x`.
    pub t: f64,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps.
    pub rejected: usize,
    /// Accepted steps whose error exceeded the tolerance because they were at `dt_min`.
    pub forced: usize,
}

/// Solves `sde` from `x0` over `span` with the embedded scheme `scheme`, choosing steps
/// by the PI controller of the module docs, on the Brownian tree `tree` (which
/// must cover the span). Rejected steps re-query the same tree, so every tolerance
/// solves the same sample path. `observer` is called at `t0` and after every accepted
/// step that reaches its [`Observer::next_time`]; steps land exactly on `span.stops()`.
///
/// ```
/// use noether_sde::prelude::*;
/// use noether_sde::brownian::BrownianTree;
/// use noether_sde::scheme::{integrate_adaptive, AdaptiveMilstein, AdaptiveOptions, AdaptiveSpan};
/// use nalgebra::DVector;
/// let gbm = GeometricBrownianMotion::new(0.5, 0.4)?;
/// let mut tree = BrownianTree::new(&SeedTree::new(7), 0, 1, 0.0, 1.0)?;
/// let span = AdaptiveSpan::new(0.0, 1.0)?;
/// let x0 = DVector::from_element(1, 1.0);
/// let options = AdaptiveOptions::tolerance(1e-4);
/// let solution = integrate_adaptive(&gbm, &mut AdaptiveMilstein::new(), &x0, &span, &options, &mut tree, 0, &mut ())?;
/// let mut w = DVector::zeros(1);
/// tree.w(1.0, &mut w)?;
/// let exact = gbm.exact(1.0, 1.0, w[0]);
/// assert!((solution.x[0] - exact).abs() < 1e-2 * exact);
/// # Ok::<(), noether_sde::Error>(())
/// ```
///
/// # Errors
/// - [`Error::DimensionMismatch`] / [`Error::NonFinite`] for a bad `x0` or a tree of the
///   wrong noise dimension;
/// - [`Error::Incompatible`] if the scheme does not accept the SDE's calculus or noise;
/// - [`Error::InvalidParameter`] for bad options, a tree that does not cover the span, or
///   when `max_steps` attempts do not reach the end;
/// - [`Error::Divergence`] with path, accepted step number and time when an accepted
///   state is non-finite or leaves the observer's divergence bound.
#[allow(clippy::too_many_arguments)]
pub fn integrate_adaptive<S, K, O>(
    sde: &S,
    scheme: &mut K,
    x0: &DVector<f64>,
    span: &AdaptiveSpan,
    options: &AdaptiveOptions,
    tree: &mut BrownianTree,
    path_index: u64,
    observer: &mut O,
) -> Result<AdaptiveSolution>
where
    S: Sde + ?Sized,
    K: EmbeddedScheme,
    O: Observer + ?Sized,
{
    use crate::brownian::BrownianPath;
    let (d, m) = (sde.dim(), sde.noise_dim());
    let info = scheme.info();
    check_compatible(&info, sde)?;
    check_vector("x0", x0, d)?;
    if tree.noise_dim() != m {
        return Err(Error::DimensionMismatch {
            what: "Brownian tree noise dimension",
            expected: m,
            got: tree.noise_dim(),
        });
    }
    if tree.t0() > span.t0 || tree.t1() < span.t1 {
        return Err(Error::invalid(
            "tree",
            format!("[{}, {}]", tree.t0(), tree.t1()),
            format!("must cover the span [{}, {}]", span.t0, span.t1),
        ));
    }
    let (mut h, dt_min, dt_max) = options.resolve(span.t1 - span.t0, tree.leaf_width())?;
    scheme.prepare(d, m);
    let q = scheme.error_order();
    let (beta1, beta2) = (options.beta1 / q, options.beta2 / q);

    let mut x = x0.clone();
    let mut next = DVector::zeros(d);
    let mut error = DVector::zeros(d);
    let mut w_now = DVector::zeros(m);
    let mut w_next = DVector::zeros(m);
    let mut inc = Increment::new(m);
    tree.w(span.t0, &mut w_now)?;

    let bound = observer.divergence_bound();
    let mut t = span.t0;
    if out_of_bounds(x.as_slice(), bound) {
        return Err(Error::Divergence {
            path: path_index,
            step: 0,
            t,
        });
    }
    let mut solution = AdaptiveSolution {
        x: DVector::zeros(0),
        t,
        accepted: 0,
        rejected: 0,
        forced: 0,
    };
    let finish = |mut solution: AdaptiveSolution, x: DVector<f64>, t: f64| {
        solution.x = x;
        solution.t = t;
        Ok(solution)
    };
    if observer.observe(0, t, &x) == Flow::Stop {
        return finish(solution, x, t);
    }
    let mut wake = observer.next_time();
    let mut stop = 0;
    let mut err_previous = 1.0f64;
    let mut after_rejection = false;
    while stop < span.stops.len() {
        if solution.accepted + solution.rejected >= options.max_steps {
            return Err(Error::invalid(
                "max_steps",
                options.max_steps,
                format!("reached at t = {t} before t1 = {}", span.t1),
            ));
        }
        let target = span.stops[stop];
        let lands = t + 1.01 * h >= target;
        let t_next = if lands { target } else { t + h };
        let h_step = t_next - t;
        tree.w(t_next, &mut w_next)?;
        inc.h = h_step;
        inc.dw.copy_from(&w_next);
        inc.dw -= &w_now;
        scheme.step_with_error(sde, t, &inc, &x, &mut next, &mut error)?;
        let err = error_norm(&error, &x, &next, options);
        // `h`, not `t_next − t`: the rounded difference may exceed dt_min forever
        if err <= 1.0 || h <= dt_min || h_step <= dt_min {
            solution.accepted += 1;
            if out_of_bounds(next.as_slice(), bound) {
                return Err(Error::Divergence {
                    path: path_index,
                    step: solution.accepted,
                    t: t_next,
                });
            }
            if err > 1.0 {
                solution.forced += 1;
            }
            std::mem::swap(&mut x, &mut next);
            std::mem::swap(&mut w_now, &mut w_next);
            t = t_next;
            if lands {
                stop += 1;
            }
            let mut fac = if err == 0.0 {
                options.fac_max
            } else if err.is_finite() {
                options.safety * err.powf(-beta1) * err_previous.powf(beta2)
            } else {
                options.fac_min // a forced step with an infinite estimate
            };
            fac = fac.clamp(
                options.fac_min,
                if after_rejection { 1.0 } else { options.fac_max },
            );
            err_previous = err.clamp(1e-4, 1e4);
            after_rejection = false;
            // after a landing, resume from the step the controller had proposed
            h = if lands {
                (h_step * fac).max(h)
            } else {
                h_step * fac
            };
            h = h.clamp(dt_min, dt_max);
            if t >= wake {
                if observer.observe(solution.accepted, t, &x) == Flow::Stop {
                    break;
                }
                wake = observer.next_time();
            }
        } else {
            solution.rejected += 1;
            after_rejection = true;
            let fac = if err.is_finite() {
                (options.safety * err.powf(-1.0 / q)).max(options.fac_min)
            } else {
                options.fac_min
            };
            h = (h_step * fac).clamp(dt_min, dt_max);
        }
    }
    finish(solution, x, t)
}

/// `√(Σ_i (e_i / (atol + rtol·max(|x_i|, |x'_i|)))² / d)` (NaN if any input is NaN).
#[inline]
fn error_norm(error: &DVector<f64>, x: &DVector<f64>, next: &DVector<f64>, options: &AdaptiveOptions) -> f64 {
    let mut sum = 0.0;
    for ((&e, &a), &b) in error.iter().zip(x.iter()).zip(next.iter()) {
        let scale = options.atol + options.rtol * a.abs().max(b.abs());
        let r = e / scale;
        sum += r * r;
    }
    let norm = (sum / error.len() as f64).sqrt();
    if next.iter().any(|v| v.is_nan()) {
        f64::NAN
    } else {
        norm
    }
}
