//! Lockstep ensembles: a block of paths advanced together, one drift and one diffusion
//! evaluation per step for the whole block (THEORY §8, Euler–Maruyama).
//!
//! An SDE that can evaluate its coefficients on many states at once implements
//! [`BatchSde`]; [`LockstepProblem`] runs it as an [`EnsembleProblem`]. The state of a
//! block of `P` paths is stored path-major (`x[p·d + i]`), so a callback sees a `P × d`
//! array: this is the route of the Python bindings' vectorised `ns.Sde` callbacks (one
//! call per step for the block, never one per path).
//!
//! Every path draws its increments from its own generator
//! (`SeedTree(seed).rng(path, Brownian)`, the same numbers in the same order as the
//! per-path route's [`crate::brownian::IncrementStream`]): the paths of a block are taken
//! eight at a time, one per lane of a [`NormalLanes`], so that the generator steps and
//! the ziggurat's fast path are vector operations across paths (AVX-512 or AVX2 when the
//! CPU has them, [`crate::simd::Kernel`]); lane `l` still draws exactly what its path's
//! own generator would. The update is the per-path one with the same operations in the
//! same order:
//!
//! ```text
//! Euler–Maruyama   X' = X + h a + b ΔW
//! Milstein         X' = (X + h a + b ΔW) + ½ (ΔW² − h) (L¹b)     (d = m = 1, scalar noise;
//!                                                                additive noise: no term)
//! ```
//!
//! So a [`BatchSde`] whose block coefficients do the arithmetic of an
//! [`crate::sde::Sde`] gives the per-path route's numbers bit for bit, whatever the block
//! width, and ensemble statistics merge exactly as for any other problem. The built-in
//! reference problems ([`GeometricBrownianMotion`], [`OrnsteinUhlenbeck`],
//! [`NonCommutative`]) implement [`BatchSde`] this way (tested bit for bit against
//! [`super::SdeProblem`] for every scheme the driver has).
//!
//! When it applies: [`RoutedSdeProblem::new`] takes any SDE that is both an
//! [`crate::sde::Sde`] and a [`BatchSde`] (the reference problems are) with a scheme, and
//! runs Euler–Maruyama (any Itô noise) or Milstein (`d = m = 1`, scalar or additive noise)
//! on the lockstep driver, every other scheme on the per-path route: the same numbers
//! either way, only faster (`BENCHMARKS.md`, "Lockstep").
//!
//! A path whose state stops being finite is retired (counted as a divergence with its
//! step and time, as per path; it is not observed at that step); its row is reset to
//! `x0` so that the block's callbacks never see non-finite input. A callback that fails
//! fails every live path of its block with that error.

use super::BLOCK;
use super::{
    Accumulator, BlockRecorder, Ensemble, EnsembleProblem, EnsembleStatistics, Functionals, PathObserver,
    SdeProblem,
};
use crate::error::{Error, Result};
use crate::observe::{out_of_bounds, Flow};
use crate::rng::{NormalLanes, SeedTree, Stream, LANES};
use crate::scheme::{EulerMaruyama, Milstein, Scheme, TimeSpan, Workspace};
use crate::sde::reference::{GeometricBrownianMotion, NonCommutative, OrnsteinUhlenbeck};
use crate::sde::{Calculus, Noise, Sde};
use crate::simd::Kernel;
use nalgebra::DVector;
use std::any::TypeId;
use std::ops::Range;

/// An SDE `dX = a(t, X) dt + b(t, X) dW` whose coefficients are evaluated on a block of
/// states at once.
///
/// Layout: a block of `P` states is `x[p·d + i]`. [`BatchSde::drift_block`] writes
/// `a(t, x_p)` in the same layout. [`BatchSde::diffusion_block`] writes, per path, the
/// diagonal `b_i` (`d` numbers) for [`Noise::Diagonal`], and the matrix `b_{ij}` row-major
/// (`d × m` numbers, `b[p·d·m + i·m + j]`) for every other noise kind (scalar noise:
/// `m = 1`, one column).
pub trait BatchSde: Sync {
    /// State dimension `d`.
    fn dim(&self) -> usize;
    /// Number of Brownian motions `m`.
    fn noise_dim(&self) -> usize;
    /// Declared noise structure.
    fn noise(&self) -> Noise;
    /// Calculus of the equation (Euler–Maruyama solves Itô equations only).
    fn calculus(&self) -> Calculus {
        Calculus::Ito
    }
    /// Drift of every state of the block.
    ///
    /// # Errors
    /// Whatever the evaluation reports (e.g. a failing user callback).
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()>;
    /// Diffusion of every state of the block, in the layout of the trait docs.
    ///
    /// # Errors
    /// Whatever the evaluation reports.
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()>;
    /// Whether [`BatchSde::milstein_block`] is provided (default `false`: Milstein is
    /// then not available on the lockstep driver).
    fn has_milstein_block(&self) -> bool {
        false
    }
    /// The Milstein derivative term of a one-dimensional SDE with scalar noise, per path:
    /// `out[p] = (L¹b)(t, x_p) = b′(x_p) b(x_p)`, evaluated as the per-path route does
    /// (`Sde::scalar_diffusion_derivative(t, x, Sde::scalar_diffusion(t, x, 1), 1)`).
    /// Called only when [`BatchSde::has_milstein_block`]; the default writes nothing.
    ///
    /// # Errors
    /// Whatever the evaluation reports.
    fn milstein_block(&self, _t: f64, _x: &[f64], _out: &mut [f64]) -> Result<()> {
        Ok(())
    }
}

/// [`BatchSde`] for one-dimensional reference SDEs in scalar form: the drift is
/// `Sde::scalar_drift`, the diffusion `Sde::scalar_diffusion(t, x, 1)` (for these
/// problems `b(x)·ΔW` is then the per-path `scalar_diffusion(t, x, ΔW)` to the bit: `b`
/// is formed first and multiplied by `ΔW` last), and the Milstein term the per-path one.
macro_rules! scalar_form_batch {
    ($($ty:ty),*) => {$(
        impl BatchSde for $ty {
            fn dim(&self) -> usize {
                1
            }
            fn noise_dim(&self) -> usize {
                1
            }
            fn noise(&self) -> Noise {
                Sde::noise(self)
            }
            fn calculus(&self) -> Calculus {
                Sde::calculus(self)
            }
            #[inline]
            fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
                for (o, &x) in out.iter_mut().zip(x) {
                    *o = self.scalar_drift(t, x);
                }
                Ok(())
            }
            #[inline]
            fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
                for (o, &x) in out.iter_mut().zip(x) {
                    *o = self.scalar_diffusion(t, x, 1.0);
                }
                Ok(())
            }
            fn has_milstein_block(&self) -> bool {
                true
            }
            #[inline]
            fn milstein_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
                for (o, &x) in out.iter_mut().zip(x) {
                    let column = self.scalar_diffusion(t, x, 1.0);
                    *o = self.scalar_diffusion_derivative(t, x, column, 1.0);
                }
                Ok(())
            }
        }
    )*};
}

scalar_form_batch!(GeometricBrownianMotion, OrnsteinUhlenbeck);

/// `dX₁ = dW₁`, `dX₂ = sin(X₁) dW₂` on a block: `b = [[1, 0], [0, sin X₁]]` per path
/// (general noise, row-major).
impl BatchSde for NonCommutative {
    fn dim(&self) -> usize {
        2
    }
    fn noise_dim(&self) -> usize {
        2
    }
    fn noise(&self) -> Noise {
        Noise::General
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

/// Steps of normals drawn per lane-group call for one-noise SDEs.
const AHEAD: usize = 16;

/// Numbers per path that [`BatchSde::diffusion_block`] writes.
pub fn diffusion_width(noise: Noise, dim: usize, noise_dim: usize) -> usize {
    match noise {
        Noise::Diagonal => dim,
        _ => dim * noise_dim,
    }
}

/// The schemes of the lockstep driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockstepScheme {
    /// Euler–Maruyama, any Itô SDE.
    EulerMaruyama,
    /// Milstein for `d = m = 1` with scalar or additive noise.
    Milstein,
}

/// Paths of a [`BatchSde`] solved in lockstep by Euler–Maruyama or Milstein.
pub struct LockstepProblem<'a, S: ?Sized> {
    sde: &'a S,
    x0: DVector<f64>,
    span: TimeSpan,
    scheme: LockstepScheme,
}

impl<'a, S: BatchSde + ?Sized> LockstepProblem<'a, S> {
    /// Euler–Maruyama from `x0` over `span`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] / [`Error::NonFinite`] for a bad `x0`;
    /// [`Error::Incompatible`] for a Stratonovich equation or diagonal noise with `m ≠ d`.
    pub fn euler_maruyama(sde: &'a S, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
        crate::error::check_vector("x0", &x0, sde.dim())?;
        if sde.calculus() != Calculus::Ito {
            return Err(Error::Incompatible {
                scheme: "euler_maruyama",
                reason: "Euler–Maruyama converges to the Itô solution; the SDE is declared Stratonovich"
                    .into(),
            });
        }
        let (d, m) = (sde.dim(), sde.noise_dim());
        if m == 0 {
            return Err(Error::invalid(
                "noise_dim",
                0,
                "at least one Brownian motion is needed",
            ));
        }
        let consistent = match sde.noise() {
            Noise::Diagonal => m == d,
            Noise::Scalar => m == 1,
            _ => true,
        };
        if !consistent {
            return Err(Error::Incompatible {
                scheme: "euler_maruyama",
                reason: format!("{:?} noise with d = {d} and m = {m}", sde.noise()),
            });
        }
        Ok(LockstepProblem {
            sde,
            x0,
            span,
            scheme: LockstepScheme::EulerMaruyama,
        })
    }

    /// Milstein from `x0` over `span`, for a one-dimensional Itô SDE with scalar or
    /// additive noise that provides [`BatchSde::milstein_block`]:
    /// `X' = (X + h a + b ΔW) + ½ (ΔW² − h) (L¹b)` (no term for additive noise), the
    /// per-path [`crate::scheme::Milstein`]'s numbers.
    ///
    /// # Errors
    /// As [`LockstepProblem::euler_maruyama`]; [`Error::Incompatible`] for another noise
    /// kind or dimension, or without [`BatchSde::milstein_block`].
    pub fn milstein(sde: &'a S, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
        let problem = Self::euler_maruyama(sde, x0, span)?;
        let scalar = matches!(sde.noise(), Noise::Scalar | Noise::Additive);
        if !(scalar && sde.dim() == 1 && sde.noise_dim() == 1 && sde.has_milstein_block()) {
            return Err(Error::Incompatible {
                scheme: "milstein",
                reason: format!(
                    "the lockstep Milstein solves d = m = 1 with scalar or additive noise and a \
                     milstein_block; this SDE has {:?} noise, d = {}, m = {}{}",
                    sde.noise(),
                    sde.dim(),
                    sde.noise_dim(),
                    if sde.has_milstein_block() {
                        ""
                    } else {
                        ", no milstein_block"
                    }
                ),
            });
        }
        Ok(LockstepProblem {
            scheme: LockstepScheme::Milstein,
            ..problem
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> LockstepScheme {
        self.scheme
    }

    /// The time span.
    pub fn span(&self) -> &TimeSpan {
        &self.span
    }
}

/// Buffers of one worker of a [`LockstepProblem`] (they grow to the widest block run).
#[derive(Debug, Clone)]
pub struct LockstepWorkspace {
    /// States, path-major (`x[p·d + i]`).
    x: Vec<f64>,
    drift: Vec<f64>,
    diffusion: Vec<f64>,
    /// Milstein terms (one per path).
    correction: Vec<f64>,
    /// The generators, eight paths per [`NormalLanes`].
    lanes: Vec<NormalLanes>,
    /// Standard normals as the lanes write them: for `m = 1` [`AHEAD`] steps,
    /// `normals[(r·G + g)·8 + l]` for step `r` of the chunk, path `8g + l` (`G` groups);
    /// for `m > 1` one step, `normals[(g·m + j)·8 + l]` for `ξ_j` of path `8g + l`.
    normals: Vec<f64>,
    /// This step's `ΔW`, path-major (`dw[p·m + j]`).
    dw: Vec<f64>,
    /// Whether each path is still running.
    live: Vec<bool>,
    column: DVector<f64>,
    kernel: Kernel,
}

impl<S: BatchSde + ?Sized> EnsembleProblem for LockstepProblem<'_, S> {
    type Workspace = LockstepWorkspace;

    fn dim(&self) -> usize {
        self.sde.dim()
    }

    fn time_range(&self) -> (f64, f64) {
        (self.span.t0(), self.span.t1())
    }

    fn workspace(&self) -> LockstepWorkspace {
        LockstepWorkspace {
            x: Vec::new(),
            drift: Vec::new(),
            diffusion: Vec::new(),
            correction: Vec::new(),
            lanes: Vec::new(),
            normals: Vec::new(),
            dw: Vec::new(),
            live: Vec::new(),
            column: DVector::zeros(self.sde.dim()),
            kernel: Kernel::detect(),
        }
    }

    /// Runs `paths` in one lockstep block (any number of paths, not only [`BLOCK`]).
    fn run_block<O: PathObserver>(
        &self,
        ws: &mut LockstepWorkspace,
        seeds: &SeedTree,
        paths: Range<u64>,
        observer: &mut O,
    ) {
        let (d, m, noise) = (self.sde.dim(), self.sde.noise_dim(), self.sde.noise());
        let width = diffusion_width(noise, d, m);
        let milstein = self.scheme == LockstepScheme::Milstein;
        let n = (paths.end - paths.start) as usize;
        let groups = n.div_ceil(LANES);
        ws.x.clear();
        for _ in 0..n {
            ws.x.extend_from_slice(self.x0.as_slice());
        }
        ws.drift.resize(n * d, 0.0);
        ws.diffusion.resize(n * width, 0.0);
        ws.correction.resize(if milstein { n } else { 0 }, 0.0);
        // one noise: the normals of AHEAD steps drawn in one call per lane group (they do
        // not depend on the state); several: one step at a time
        let ahead = if m == 1 { AHEAD } else { 1 };
        ws.normals.resize(ahead * groups * m * LANES, 0.0);
        ws.dw.resize(n * m, 0.0);
        ws.live.clear();
        ws.live.resize(n, true);
        ws.lanes.resize_with(groups, NormalLanes::new);
        for (g, lanes) in ws.lanes.iter_mut().enumerate() {
            for l in 0..LANES {
                let p = g * LANES + l;
                let rng = (p < n).then(|| seeds.rng(paths.start + p as u64, Stream::Brownian));
                lanes.set(l, rng.as_ref());
            }
        }
        // a path the recorder stops (an observable out of bounds: the divergence bound) is
        // retired like a non-finite one; the recorder has already counted it
        let bound = observer.divergence_bound();
        for (p, path) in paths.clone().enumerate() {
            if out_of_bounds(self.x0.as_slice(), bound) {
                ws.live[p] = false;
                let t = self.span.t0();
                observer.finish(path, Err(Error::Divergence { path, step: 0, t }));
            } else if observer.observe(path, 0, self.span.t0(), &self.x0) == Flow::Stop {
                ws.live[p] = false;
            }
        }
        let mut sums = [0.0; LANES];
        for k in 0..self.span.steps() {
            let t = self.span.time(k);
            let t_next = self.span.time(k + 1);
            let h = self.span.step_size(k);
            let evaluated = self
                .sde
                .drift_block(t, &ws.x, &mut ws.drift)
                .and_then(|()| self.sde.diffusion_block(t, &ws.x, &mut ws.diffusion))
                .and_then(|()| {
                    if milstein {
                        self.sde.milstein_block(t, &ws.x, &mut ws.correction)
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = evaluated {
                for (p, live) in ws.live.iter_mut().enumerate() {
                    if std::mem::replace(live, false) {
                        observer.finish(paths.start + p as u64, Err(e.clone()));
                    }
                }
                return;
            }
            // ξ in lanes (unit scale; padding lanes get zeros), then ΔW = √h ξ, as
            // `IncrementStream::next` forms it (1·ξ is exact)
            let row = k % ahead;
            if row == 0 {
                let rows = ahead.min(self.span.steps() - k) * m;
                let stride = if m == 1 { groups * LANES } else { LANES };
                let mut scale = [1.0; LANES];
                for (g, lanes) in ws.lanes.iter_mut().enumerate() {
                    if (g + 1) * LANES > n {
                        for (l, s) in scale.iter_mut().enumerate() {
                            *s = if g * LANES + l < n { 1.0 } else { 0.0 };
                        }
                    }
                    let out = &mut ws.normals[g * m * LANES..];
                    lanes.fill_with(ws.kernel, &scale, out, stride, rows, &mut sums);
                }
            }
            let sqrt_h = h.sqrt();
            if m == 1 {
                // normals[(row·groups + g)·8 + l]: path-major within a row
                let z = &ws.normals[row * groups * LANES..row * groups * LANES + n];
                for (w, &z) in ws.dw.iter_mut().zip(z) {
                    *w = sqrt_h * z;
                }
            } else {
                for p in 0..n {
                    let (g, l) = (p / LANES, p % LANES);
                    for j in 0..m {
                        ws.dw[p * m + j] = sqrt_h * ws.normals[(g * m + j) * LANES + l];
                    }
                }
            }
            let dw = &ws.dw;
            let (x, a, b) = (&mut ws.x, &ws.drift, &ws.diffusion);
            if milstein && noise == Noise::Scalar {
                // d = m = 1: X + h a + b ΔW, plus ½ (ΔW² − h) L¹b
                let lanes = x.iter_mut().zip(a).zip(b).zip(dw).zip(&ws.correction);
                for ((((x, &a), &b), &w), &c) in lanes {
                    let em = *x + h * a + b * w;
                    *x = em + 0.5 * (w * w - h) * c;
                }
            } else if d == 1 && m == 1 {
                // Euler–Maruyama, and Milstein on additive noise (no derivative term)
                for (((x, &a), &b), &w) in x.iter_mut().zip(a).zip(b).zip(dw) {
                    *x = *x + h * a + b * w;
                }
            } else if width == d && (m == 1 || noise == Noise::Diagonal) {
                // one coefficient per coordinate: b_i ΔW_i (diagonal) or b_i ΔW (m = 1)
                let stride = if m == 1 { 0 } else { 1 };
                for p in 0..n {
                    for i in 0..d {
                        let w = dw[p * m + i * stride];
                        x[p * d + i] = x[p * d + i] + h * a[p * d + i] + b[p * d + i] * w;
                    }
                }
            } else {
                for p in 0..n {
                    let w = &dw[p * m..(p + 1) * m];
                    for i in 0..d {
                        let row = &b[p * width + i * m..p * width + (i + 1) * m];
                        let noise_term = row.iter().zip(w).fold(0.0, |s, (&bij, &w)| s + bij * w);
                        x[p * d + i] = x[p * d + i] + h * a[p * d + i] + noise_term;
                    }
                }
            }
            if d == 1 {
                // the same as below, without the row slices
                let x0 = self.x0[0];
                for (p, (x, live)) in ws.x.iter_mut().zip(ws.live.iter_mut()).enumerate() {
                    if !*live {
                        *x = x0;
                        continue;
                    }
                    let path = paths.start + p as u64;
                    if !x.is_finite() || x.abs() > bound {
                        *live = false;
                        *x = x0;
                        let step = k + 1;
                        observer.finish(
                            path,
                            Err(Error::Divergence {
                                path,
                                step,
                                t: t_next,
                            }),
                        );
                        continue;
                    }
                    if t_next < observer.next_time(path) {
                        continue;
                    }
                    ws.column[0] = *x;
                    if observer.observe(path, k + 1, t_next, &ws.column) == Flow::Stop {
                        *live = false;
                        *x = x0;
                    }
                }
                continue;
            }
            for p in 0..n {
                let row = &mut ws.x[p * d..(p + 1) * d];
                if !ws.live[p] {
                    row.copy_from_slice(self.x0.as_slice());
                    continue;
                }
                let path = paths.start + p as u64;
                if out_of_bounds(row, bound) {
                    ws.live[p] = false;
                    row.copy_from_slice(self.x0.as_slice());
                    observer.finish(
                        path,
                        Err(Error::Divergence {
                            path,
                            step: k + 1,
                            t: t_next,
                        }),
                    );
                    continue;
                }
                if t_next < observer.next_time(path) {
                    continue;
                }
                if d == 1 {
                    ws.column[0] = row[0];
                } else {
                    ws.column.as_mut_slice().copy_from_slice(row);
                }
                if observer.observe(path, k + 1, t_next, &ws.column) == Flow::Stop {
                    ws.live[p] = false;
                    row.copy_from_slice(self.x0.as_slice());
                }
            }
        }
        for p in 0..n {
            if ws.live[p] {
                ws.column
                    .as_mut_slice()
                    .copy_from_slice(&ws.x[p * d..(p + 1) * d]);
                observer.finish(paths.start + p as u64, Ok(&ws.column));
            }
        }
    }
}

/// An SDE solved by a scheme on whichever ensemble route is fastest, with the same
/// numbers: the lockstep driver ([`LockstepProblem`]) when it has the scheme for this SDE
/// (Euler–Maruyama on any Itô [`BatchSde`]; Milstein when [`LockstepProblem::milstein`]
/// accepts it), the per-path route ([`SdeProblem`]) otherwise.
///
/// Both routes give every path the same bits (same generator, same draws, same
/// operations in the same order: tested on GBM, OU and [`NonCommutative`]), so
/// statistics, divergences and final states do not depend on the route picked; only the
/// speed does. The built-in reference problems implement both [`Sde`] and [`BatchSde`].
///
/// ```
/// use nalgebra::DVector;
/// use noether_sde::ensemble::lockstep::RoutedSdeProblem;
/// use noether_sde::prelude::*;
/// let gbm = GeometricBrownianMotion::new(0.5, 0.3)?;
/// let span = TimeSpan::new(0.0, 1.0, 0.01)?;
/// let x0 = DVector::from_element(1, 1.0);
/// let routed = RoutedSdeProblem::new(&gbm, Milstein::new(), x0.clone(), span)?;
/// assert!(routed.is_lockstep());
/// let per_path = SdeProblem::new(&gbm, Milstein::new(), x0, span)?;
/// let ensemble = Ensemble::new(7, 0..100);
/// for (a, b) in ensemble.final_states(&routed)?.into_iter().zip(ensemble.final_states(&per_path)?) {
///     assert_eq!(a?[0].to_bits(), b?[0].to_bits());
/// }
/// # Ok::<(), noether_sde::Error>(())
/// ```
#[allow(clippy::large_enum_variant)] // one per ensemble run: boxing would buy nothing
pub enum RoutedSdeProblem<'a, S: ?Sized, K> {
    /// Paths in lockstep lane groups.
    Lockstep(LockstepProblem<'a, S>),
    /// One path at a time.
    PerPath(SdeProblem<'a, S, K>),
}

impl<'a, S, K> RoutedSdeProblem<'a, S, K>
where
    S: Sde + BatchSde + Sync + ?Sized,
    K: Scheme + Sync + 'static,
{
    /// `scheme` on `sde` from `x0` over `span`, on the lockstep route when it applies.
    ///
    /// # Errors
    /// As [`SdeProblem::new`].
    pub fn new(sde: &'a S, scheme: K, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
        let per_path = SdeProblem::new(sde, scheme, x0.clone(), span)?;
        let kind = TypeId::of::<K>();
        let lockstep = if kind == TypeId::of::<EulerMaruyama>() {
            LockstepProblem::euler_maruyama(sde, x0, span).ok()
        } else if kind == TypeId::of::<Milstein>() {
            LockstepProblem::milstein(sde, x0, span).ok()
        } else {
            None
        };
        Ok(match lockstep {
            Some(problem) => RoutedSdeProblem::Lockstep(problem),
            None => RoutedSdeProblem::PerPath(per_path),
        })
    }

    /// Whether the lockstep route was picked.
    pub fn is_lockstep(&self) -> bool {
        matches!(self, RoutedSdeProblem::Lockstep(_))
    }
}

/// The workspace of the route a [`RoutedSdeProblem`] picked.
#[allow(clippy::large_enum_variant)] // one per worker
pub enum RoutedWorkspace<K> {
    /// Of [`LockstepProblem`].
    Lockstep(LockstepWorkspace),
    /// Of [`SdeProblem`].
    PerPath(Workspace<K>),
}

impl<S, K> EnsembleProblem for RoutedSdeProblem<'_, S, K>
where
    S: Sde + BatchSde + Sync + ?Sized,
    K: Scheme + Sync + Send,
{
    type Workspace = RoutedWorkspace<K>;

    fn dim(&self) -> usize {
        match self {
            RoutedSdeProblem::Lockstep(p) => p.dim(),
            RoutedSdeProblem::PerPath(p) => p.dim(),
        }
    }

    fn time_range(&self) -> (f64, f64) {
        match self {
            RoutedSdeProblem::Lockstep(p) => p.time_range(),
            RoutedSdeProblem::PerPath(p) => p.time_range(),
        }
    }

    fn workspace(&self) -> RoutedWorkspace<K> {
        match self {
            RoutedSdeProblem::Lockstep(p) => RoutedWorkspace::Lockstep(p.workspace()),
            RoutedSdeProblem::PerPath(p) => RoutedWorkspace::PerPath(p.workspace()),
        }
    }

    fn run_block<O: PathObserver>(
        &self,
        ws: &mut RoutedWorkspace<K>,
        seeds: &SeedTree,
        paths: Range<u64>,
        observer: &mut O,
    ) {
        match (self, ws) {
            (RoutedSdeProblem::Lockstep(p), RoutedWorkspace::Lockstep(ws)) => {
                p.run_block(ws, seeds, paths, observer)
            }
            (RoutedSdeProblem::PerPath(p), RoutedWorkspace::PerPath(ws)) => {
                p.run_block(ws, seeds, paths, observer)
            }
            (problem, ws) => {
                // a workspace of the other route (built by another problem): rebuild it
                *ws = problem.workspace();
                problem.run_block(ws, seeds, paths, observer)
            }
        }
    }
}

impl Ensemble {
    /// [`Ensemble::statistics`] for a [`LockstepProblem`], run in lockstep blocks of
    /// `width` paths (rounded up to a multiple of [`BLOCK`], aligned like the ensemble's
    /// blocks) one after the other on the calling thread, with `between()` called after
    /// each block (e.g. to check for an interrupt: an error stops the run and is returned).
    /// The statistics are bit-identical to [`Ensemble::statistics`] on the same problem:
    /// the paths are the same and the reduction tree is keyed by path index.
    ///
    /// # Errors
    /// As [`Ensemble::statistics`]; the first error of `between`.
    pub fn lockstep_statistics<S, F>(
        &self,
        problem: &LockstepProblem<'_, S>,
        functionals: &Functionals<F>,
        width: usize,
        mut between: impl FnMut(u64) -> Result<()>,
    ) -> Result<EnsembleStatistics>
    where
        S: BatchSde + ?Sized,
        F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync,
    {
        functionals.check_span(problem.time_range())?;
        let k = functionals.count;
        let per = width.div_ceil(BLOCK as usize).max(1);
        let mut rec =
            BlockRecorder::with_slots(functionals, false, self.divergence_bound, per * BLOCK as usize);
        let mut ws = problem.workspace();
        let mut acc = Accumulator::new(k);
        let (first, count) = self.blocks();
        let mut i = 0;
        while i < count {
            let last = (i + per).min(count) - 1;
            let range = self.block(first, i).start..self.block(first, last).end;
            rec.reset(range.start);
            let len = (range.end - range.start) as usize;
            problem.run_block(&mut ws, &self.seeds, range.clone(), &mut rec);
            acc.record_block(&rec, len);
            self.report(&range);
            between(range.end - range.start)?;
            i = last + 1;
        }
        if let Some((_, e)) = acc.first_failure {
            return Err(e);
        }
        Ok(EnsembleStatistics::from_accumulator(
            self.seeds.seed(),
            self.paths.clone(),
            self.divergence_bound,
            functionals.times.clone(),
            k,
            acc,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ensemble::SdeProblem;
    use crate::prelude::*;

    /// GBM `dX = μX dt + σX dW` on blocks, with the per-path route's arithmetic.
    struct BlockGbm(f64, f64);

    impl BatchSde for BlockGbm {
        fn dim(&self) -> usize {
            1
        }
        fn noise_dim(&self) -> usize {
            1
        }
        fn noise(&self) -> Noise {
            Noise::Scalar
        }
        fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
            for (o, &x) in out.iter_mut().zip(x) {
                *o = self.0 * x;
            }
            Ok(())
        }
        fn diffusion_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
            for (o, &x) in out.iter_mut().zip(x) {
                *o = self.1 * x;
            }
            Ok(())
        }
    }

    /// Final states (or errors) and statistics of the per-path route and the lockstep
    /// route on the same ensemble, compared bit for bit (statistics over lockstep blocks
    /// of several widths, partial lane groups included).
    fn assert_same_paths<S, K>(
        sde: &S,
        scheme: K,
        lockstep: LockstepScheme,
        x0: &[f64],
        span: TimeSpan,
        paths: Range<u64>,
    ) -> Result<()>
    where
        S: Sde + BatchSde + Sync,
        K: Scheme + Sync,
    {
        let x0 = DVector::from_column_slice(x0);
        let d = x0.len();
        let per_path = SdeProblem::new(sde, scheme, x0.clone(), span)?;
        let lanes = match lockstep {
            LockstepScheme::EulerMaruyama => LockstepProblem::euler_maruyama(sde, x0, span)?,
            LockstepScheme::Milstein => LockstepProblem::milstein(sde, x0, span)?,
        };
        let (t0, t1) = (span.t0(), span.t1());
        let record = Functionals::new(
            vec![t0, 0.5 * (t0 + t1), t1],
            d,
            |_t: f64, x: &DVector<f64>, out: &mut [f64]| out.copy_from_slice(x.as_slice()),
        )?;
        let ensemble = Ensemble::new(11, paths);
        let finals_a = ensemble.final_states(&per_path)?;
        let finals_b = ensemble.final_states(&lanes)?;
        assert_eq!(finals_a.len(), finals_b.len());
        for (a, b) in finals_a.into_iter().zip(finals_b) {
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    let bits = |x: DVector<f64>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(a), bits(b), "{lockstep:?}");
                }
                (a, b) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{lockstep:?}"),
            }
        }
        let expected = ensemble.statistics(&per_path, &record)?;
        assert_eq!(ensemble.statistics(&lanes, &record)?, expected, "{lockstep:?}");
        for width in [1, 64, 100, 1000] {
            let got = ensemble.lockstep_statistics(&lanes, &record, width, |_| Ok(()))?;
            assert_eq!(got, expected, "{lockstep:?}, width {width}");
        }
        Ok(())
    }

    #[test]
    fn every_scheme_and_problem_is_bit_identical_to_the_per_path_route() -> Result<()> {
        let span = TimeSpan::new(0.0, 1.0, 0.01)?;
        let gbm = GeometricBrownianMotion::new(0.5, 0.3)?;
        let ou = OrnsteinUhlenbeck::new(2.0, 0.5, 0.7)?;
        let (em, mil) = (LockstepScheme::EulerMaruyama, LockstepScheme::Milstein);
        assert_same_paths(&gbm, EulerMaruyama::new(), em, &[1.0], span, 3..300)?;
        assert_same_paths(&gbm, Milstein::new(), mil, &[1.0], span, 3..300)?;
        assert_same_paths(&ou, EulerMaruyama::new(), em, &[1.5], span, 3..300)?;
        assert_same_paths(&ou, Milstein::new(), mil, &[1.5], span, 3..300)?;
        let span = TimeSpan::new(0.0, 1.0, 0.03)?; // a shorter last step
        assert_same_paths(
            &NonCommutative,
            EulerMaruyama::new(),
            em,
            &[0.0, 1.0],
            span,
            5..140,
        )?;
        assert_same_paths(&gbm, Milstein::new(), mil, &[1.0], span, 0..17)?;
        Ok(())
    }

    #[test]
    fn diverging_lanes_are_retired_with_their_path_step_and_time() -> Result<()> {
        // per step x ← x·(1 + 10ξ) (EM) or x·(1 + 10ξ + 50(ξ² − 1)) (Milstein): over these
        // spans some of the paths pass the divergence bound 1e100 (ln 1e100 ≈ 230, reached
        // after ~140 EM steps on average), each at its own step
        let gbm = GeometricBrownianMotion::new(0.0, 100.0)?;
        for scheme in [LockstepScheme::EulerMaruyama, LockstepScheme::Milstein] {
            let t_end = if scheme == LockstepScheme::Milstein {
                0.67
            } else {
                1.4
            };
            let span = TimeSpan::new(0.0, t_end, 0.01)?;
            match scheme {
                LockstepScheme::EulerMaruyama => {
                    assert_same_paths(&gbm, EulerMaruyama::new(), scheme, &[1.0], span, 0..200)?
                }
                LockstepScheme::Milstein => {
                    assert_same_paths(&gbm, Milstein::new(), scheme, &[1.0], span, 0..200)?
                }
            }
            let lanes = match scheme {
                LockstepScheme::EulerMaruyama => {
                    LockstepProblem::euler_maruyama(&gbm, DVector::from_element(1, 1.0), span)?
                }
                LockstepScheme::Milstein => {
                    LockstepProblem::milstein(&gbm, DVector::from_element(1, 1.0), span)?
                }
            };
            let diverged = Ensemble::new(11, 0..200)
                .final_states(&lanes)?
                .into_iter()
                .filter(|x| matches!(x, Err(Error::Divergence { .. })))
                .count();
            assert!(
                diverged > 20 && diverged < 180,
                "{scheme:?}: {diverged} of 200 diverged"
            );
        }
        Ok(())
    }

    #[test]
    fn the_routed_problem_picks_lockstep_where_it_applies() -> Result<()> {
        let span = TimeSpan::new(0.0, 1.0, 0.01)?;
        let gbm = GeometricBrownianMotion::new(0.5, 0.3)?;
        let x0 = DVector::from_element(1, 1.0);
        let routed = RoutedSdeProblem::new(&gbm, EulerMaruyama::new(), x0.clone(), span)?;
        assert!(routed.is_lockstep());
        let routed_noncommutative =
            RoutedSdeProblem::new(&NonCommutative, EulerMaruyama::new(), DVector::zeros(2), span)?;
        assert!(routed_noncommutative.is_lockstep());
        let stratonovich = gbm.stratonovich_form();
        let heun = RoutedSdeProblem::new(&stratonovich, Heun::new(), x0.clone(), span)?;
        assert!(!heun.is_lockstep());
        let err = RoutedSdeProblem::new(&NonCommutative, Milstein::new(), DVector::zeros(2), span);
        assert!(matches!(err, Err(Error::Incompatible { .. })));
        let record = Functionals::new(vec![0.5, 1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
            out[0] = x[0]
        })?;
        let ensemble = Ensemble::new(3, 0..150);
        let per_path = SdeProblem::new(&gbm, EulerMaruyama::new(), x0, span)?;
        assert_eq!(
            ensemble.statistics(&routed, &record)?,
            ensemble.statistics(&per_path, &record)?
        );
        Ok(())
    }

    #[test]
    fn milstein_needs_one_dimensional_scalar_noise() -> Result<()> {
        let span = TimeSpan::new(0.0, 1.0, 0.1)?;
        let err = LockstepProblem::milstein(&NonCommutative, DVector::zeros(2), span);
        assert!(matches!(
            err,
            Err(Error::Incompatible {
                scheme: "milstein",
                ..
            })
        ));
        let err = LockstepProblem::milstein(&BlockGbm(0.5, 0.3), DVector::from_element(1, 1.0), span);
        assert!(matches!(
            err,
            Err(Error::Incompatible {
                scheme: "milstein",
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn a_hand_written_batch_sde_matches_the_per_path_route() -> Result<()> {
        let (mu, sigma) = (0.5, 0.3);
        let gbm = GeometricBrownianMotion::new(mu, sigma)?;
        let block = BlockGbm(gbm.mu(), sigma);
        let span = TimeSpan::new(0.0, 1.0, 0.01)?;
        let x0 = DVector::from_element(1, 1.0);
        let per_path = SdeProblem::new(&gbm, EulerMaruyama::new(), x0.clone(), span)?;
        let lockstep = LockstepProblem::euler_maruyama(&block, x0, span)?;
        let ensemble = Ensemble::new(11, 3..300);
        let finals_a = ensemble.final_states(&per_path)?;
        let finals_b = ensemble.final_states(&lockstep)?;
        for (a, b) in finals_a.into_iter().zip(finals_b) {
            assert_eq!(a?[0].to_bits(), b?[0].to_bits());
        }
        Ok(())
    }

    #[test]
    fn divergence_and_callback_errors_are_reported_per_path() -> Result<()> {
        struct Explodes;
        impl BatchSde for Explodes {
            fn dim(&self) -> usize {
                1
            }
            fn noise_dim(&self) -> usize {
                1
            }
            fn noise(&self) -> Noise {
                Noise::Additive
            }
            fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
                out.iter_mut().zip(x).for_each(|(o, &x)| *o = x * x * 1e10);
                Ok(())
            }
            fn diffusion_block(&self, _t: f64, _x: &[f64], out: &mut [f64]) -> Result<()> {
                out.fill(1.0);
                Ok(())
            }
        }
        let span = TimeSpan::new(0.0, 1.0, 0.1)?;
        let problem = LockstepProblem::euler_maruyama(&Explodes, DVector::from_element(1, 1.0), span)?;
        let record = Functionals::new(vec![1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
            out[0] = x[0]
        })?;
        let stats = Ensemble::new(1, 0..10).lockstep_statistics(&problem, &record, 64, |_| Ok(()))?;
        assert_eq!(stats.divergent(), 10);
        struct Fails;
        impl BatchSde for Fails {
            fn dim(&self) -> usize {
                1
            }
            fn noise_dim(&self) -> usize {
                1
            }
            fn noise(&self) -> Noise {
                Noise::Additive
            }
            fn drift_block(&self, _t: f64, _x: &[f64], _out: &mut [f64]) -> Result<()> {
                Err(Error::invalid("drift", "callback", "failed"))
            }
            fn diffusion_block(&self, _t: f64, _x: &[f64], _out: &mut [f64]) -> Result<()> {
                Ok(())
            }
        }
        let problem = LockstepProblem::euler_maruyama(&Fails, DVector::from_element(1, 1.0), span)?;
        let err = Ensemble::new(1, 0..10).lockstep_statistics(&problem, &record, 64, |_| Ok(()));
        assert!(matches!(err, Err(Error::InvalidParameter { name: "drift", .. })));
        Ok(())
    }
}
