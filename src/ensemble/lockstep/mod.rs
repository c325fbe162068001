//! Lockstep ensembles: a block of paths advanced together, one drift and one diffusion
//! evaluation per step for the whole block (THEORY §8: Euler–Maruyama, Milstein, Heun,
//! RK-Milstein, Milstein–Lévy).
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
//! CPU has them, `simd::Kernel`); lane `l` still draws exactly what its path's
//! own generator would. The update is the per-path one with the same operations in the
//! same order:
//!
//! ```text
//! Euler–Maruyama   X' = X + h a + b ΔW                                     (any Itô SDE)
//! Milstein         X' = (X + h a + b ΔW) + ½ (ΔW² − h) (L¹b)   (scalar noise, m = 1)
//!                  X' = (X + h a + b ΔW) + ½ ∂b[bΔW]ΔW − ½h ∂b[b1]1 (diagonal noise)
//!                                                              (additive noise: no term)
//! Heun             X̃ = X + h a + b ΔW,  X' = X + ½h(a + ã) + ½(b ΔW + b̃ ΔW)
//!                                                              (any Stratonovich SDE)
//! RK-Milstein      X' = X + h a + b ΔW + (1/√h) Σ_j [b(Υ_j) − b(X)] c_j,
//!                  Υ_j = X + h a + b_j √h,  c_jk = I_(j,k)                 (any Itô SDE)
//! Milstein–Lévy    X' = X + h a + b ΔW + Σ_j ∂b[b_j] c_j,  c_jk = I_(j,k)
//!                         (commutative, general; scalar, diagonal, additive as Milstein)
//!                  I_(j,k) = ½ ΔW_j ΔW_k − ½ h δ_jk + A_jk  (A: Lévy areas, general noise)
//! ```
//!
//! **Lévy areas.** On general noise (`m > 1`) RK-Milstein and Milstein–Lévy read the
//! areas `A_jk` of each step. Per path they come from the path's own
//! [`Stream::Levy`] generator (`IncrementStream::with_levy_area`:
//! `LevyArea::sample_xoshiro(h, ΔW, A, rng)`, Wiktorsson's method with `LevyArea::for_step`'s
//! number of terms); on lanes, after the lane groups have drawn the step's `ΔW`, every
//! live path samples its areas from its own `ΔW` and its own `Levy` generator with that
//! same scalar code (one sampler per worker: it keeps no state between calls), so the
//! areas, and the steps that read them, are the per-path route's bits. The areas are
//! not vectorised: for the SDEs with general noise that run here (matrix
//! factorisation, the normalised linear model, `m ≤ 16`) the block coefficients and the
//! `2m + 2` diffusion evaluations of RK-Milstein cost more. Milstein–Lévy's derivative
//! terms `∂b[b_j] c_j` come from [`BatchSde::derivative_block`] (one call per `j` for the
//! block; [`crate::sde::batch::central_difference_block`] is the library's central
//! difference on a block) or, for an SDE without it, from
//! [`crate::sde::Sde::diffusion_derivative`] path by path.
//!
//! So a [`BatchSde`] whose block coefficients do the arithmetic of an
//! [`crate::sde::Sde`] (the contract of [`crate::sde::Sde::batch`]) gives the per-path
//! route's numbers bit for bit, whatever the block width, and ensemble statistics merge
//! exactly as for any other problem. (A run takes two aligned blocks of 64 paths when a
//! path's buffers are small, `EnsembleProblem::blocks_per_run`, to spread the per-step
//! costs; for `d = m = 1` an SDE with [`BatchSde::scalar_step`] takes EM and Milstein in
//! one pass with its coefficients inlined — the same step loop, so the same numbers —
//! and Heun and RK-Milstein in two: GBM Heun 107 → 37 instructions per path-step,
//! RK-Milstein 155 → 39.)
//! The built-in reference problems
//! (`GeometricBrownianMotion`, `OrnsteinUhlenbeck`, `NonCommutative`) implement
//! [`BatchSde`] this way (tested bit for bit against the per-path route for every scheme
//! × problem the lanes solve).
//!
//! **When it applies — the default route.** [`super::SdeProblem::new`] runs on this
//! driver by itself whenever (1) the SDE returns its block form from
//! [`crate::sde::Sde::batch`], (2) the scheme is Euler–Maruyama, Milstein, Heun,
//! RK-Milstein or Milstein–Lévy with areas ([`LockstepScheme::for_scheme`]) and (3)
//! [`LockstepProblem::new`] accepts the pair (calculus; Milstein for scalar and diagonal
//! noise with a `milstein_block` and additive noise; Milstein–Lévy for those and for
//! commutative and general noise). Otherwise it runs one path at a time. **What it guarantees:** every path's
//! increments, Lévy areas, states, divergence (path, step, time), observations and final state are
//! the per-path route's bits, so statistics, shards and merges do not depend on the
//! route; only the speed does (`BENCHMARKS.md`, "Lockstep").
//!
//! A path whose state stops being finite is retired (counted as a divergence with its
//! step and time, as per path; it is not observed at that step); its row is reset to
//! `x0` so that the block's callbacks never see non-finite input. A callback that fails
//! fails every live path of its block with that error.

use super::BLOCK;
use super::{
    Accumulator, BlockRecorder, Ensemble, EnsembleProblem, EnsembleStatistics, Functionals, PathObserver,
};
use crate::brownian::LevyArea;
use crate::error::{Error, IncompatibleReason, Result};
use crate::observe::{out_of_bounds, Flow};
use crate::rng::{NormalLanes, SeedTree, Stream, Xoshiro256PlusPlus, LANES};
use crate::scheme::{EulerMaruyama, Heun, Milstein, MilsteinLevy, RkMilstein, Scheme, TimeSpan};
pub use crate::sde::batch::{diffusion_width, BatchSde, BlockScratch};
use crate::sde::batch::{Pass, ScalarLanes};
use crate::sde::{Calculus, DerivativeScratch, Noise, SdeExt};
use crate::simd::{Kernel, Vectorised};
use nalgebra::{DMatrix, DVector};
use std::any::type_name;
use std::ops::Range;

/// Steps of normals drawn per lane-group call for one-noise SDEs (32: two of the AVX-512
/// kernel's chunks per call, 16 KiB of normals for a block of 64 paths, in L1; −2 % per
/// GBM path-step against 16, CPU time).
const AHEAD: usize = 32;

/// Blocks of [`crate::ensemble::BLOCK`] paths one lockstep run takes when a path's
/// buffers are small ([`WIDE_RUN_FLOATS`]): the per-step costs (the calls of the block
/// methods, the step's bookkeeping) are spread over 256 paths instead of 64 (fewer
/// when the ensemble is too small to give each thread two runs). Measured on GBM
/// (BENCHMARKS.md, session 9, with the 4096-layer ziggurat, whose 33 KB table now fills
/// the L1 cache either way): 256 paths 9–10 % faster per path-step than 128, 512 no
/// faster; fewer steps drawn ahead ([`AHEAD`] 16 or 8) slower. Session 7, with 256
/// layers, had found 128 best.
const WIDE_RUN: usize = 4;

/// The most floats per path (state, drift, diffusion, normals drawn ahead) for which
/// lockstep runs are [`WIDE_RUN`] blocks wide.
const WIDE_RUN_FLOATS: usize = 64;

/// The schemes of the lockstep driver, each with the per-path scheme's operations in
/// the same order (so the same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockstepScheme {
    /// Euler–Maruyama ([`crate::scheme::EulerMaruyama`]), any Itô SDE.
    EulerMaruyama,
    /// Milstein ([`crate::scheme::Milstein`]) for scalar noise (`m = 1`, any `d`) and
    /// diagonal noise with a [`BatchSde::milstein_block`], and for additive noise.
    Milstein,
    /// Stochastic Heun ([`crate::scheme::Heun`]), any Stratonovich SDE.
    Heun,
    /// Derivative-free Runge–Kutta Milstein ([`crate::scheme::RkMilstein`]), any Itô SDE
    /// (general noise with the Lévy areas of each path's own `Levy` stream).
    RkMilstein,
    /// Milstein with Lévy areas ([`crate::scheme::MilsteinLevy`], not its
    /// `without_areas` form): additive noise; scalar and diagonal noise with a
    /// [`BatchSde::milstein_block`] (there it is the lockstep Milstein's arithmetic);
    /// commutative and general noise through [`BatchSde::derivative_block`], or
    /// [`crate::sde::Sde::diffusion_derivative`] per path when the SDE has no block form
    /// of it.
    MilsteinLevy,
}

impl LockstepScheme {
    /// The lockstep twin of the per-path scheme `K`, if there is one: `K` is one of this
    /// crate's [`EulerMaruyama`], [`Milstein`], [`Heun`], [`RkMilstein`] (compared by
    /// full type name, so generic code needs no `'static` bound).
    pub fn of<K: Scheme>() -> Option<Self> {
        let kind = type_name::<K>();
        [
            (type_name::<EulerMaruyama>(), LockstepScheme::EulerMaruyama),
            (type_name::<Milstein>(), LockstepScheme::Milstein),
            (type_name::<Heun>(), LockstepScheme::Heun),
            (type_name::<RkMilstein>(), LockstepScheme::RkMilstein),
        ]
        .into_iter()
        .find_map(|(name, scheme)| (name == kind).then_some(scheme))
    }

    /// The lockstep twin of the per-path scheme `scheme`, if there is one: as
    /// [`LockstepScheme::of`], and also [`MilsteinLevy`] when it reads the Lévy areas
    /// (`MilsteinLevy::without_areas`, the same type, has no twin: told apart by its
    /// catalogue name).
    pub fn for_scheme<K: Scheme>(scheme: &K) -> Option<Self> {
        LockstepScheme::of::<K>().or_else(|| {
            let levy = type_name::<K>() == type_name::<MilsteinLevy>()
                && scheme.info().name == LockstepScheme::MilsteinLevy.name();
            levy.then_some(LockstepScheme::MilsteinLevy)
        })
    }

    /// Whether the scheme reads Lévy areas on `noise` with `m` Brownian motions (then
    /// each path draws them from its own `Levy` stream, as
    /// [`crate::brownian::IncrementStream::with_levy_area`] does per path).
    pub fn reads_area(self, noise: Noise, noise_dim: usize) -> bool {
        matches!(self, LockstepScheme::RkMilstein | LockstepScheme::MilsteinLevy)
            && noise == Noise::General
            && noise_dim > 1
    }

    /// The catalogue name of the scheme (`SchemeInfo::name`).
    pub fn name(self) -> &'static str {
        match self {
            LockstepScheme::EulerMaruyama => "euler_maruyama",
            LockstepScheme::Milstein => "milstein",
            LockstepScheme::Heun => "heun",
            LockstepScheme::RkMilstein => "rk_milstein",
            LockstepScheme::MilsteinLevy => "milstein_levy",
        }
    }

    /// The scheme with this catalogue name (canonical spelling), if lanes have it.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            LockstepScheme::EulerMaruyama,
            LockstepScheme::Milstein,
            LockstepScheme::Heun,
            LockstepScheme::RkMilstein,
            LockstepScheme::MilsteinLevy,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// Paths of a [`BatchSde`] solved in lockstep by one of the [`LockstepScheme`]s.
pub struct LockstepProblem<'a, S: ?Sized> {
    sde: &'a S,
    x0: DVector<f64>,
    span: TimeSpan,
    scheme: LockstepScheme,
    /// The Lévy-area sampler of the per-path route (`LevyArea::for_step(m, h)`), when the
    /// scheme reads areas.
    levy: Option<LevyArea>,
}

impl<'a, S: BatchSde + ?Sized> LockstepProblem<'a, S> {
    /// `scheme` on `sde` from `x0` over `span`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] / [`Error::NonFinite`] for a bad `x0`;
    /// [`Error::InvalidParameter`] for an inconsistent declared structure
    /// ([`crate::sde::Structure::check`]: e.g. diagonal noise with `m ≠ d`);
    /// [`Error::Incompatible`] when the scheme cannot solve the SDE on lanes: the wrong
    /// calculus, Milstein on noise other than additive, scalar or diagonal or without a
    /// [`BatchSde::milstein_block`] (scalar, diagonal), Milstein–Lévy on scalar or
    /// diagonal noise without a [`BatchSde::milstein_block`].
    pub fn new(sde: &'a S, scheme: LockstepScheme, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
        crate::error::check_vector("x0", &x0, sde.dim())?;
        let name = scheme.name();
        let incompatible = |reason: IncompatibleReason| Error::Incompatible { scheme: name, reason };
        let calculus = if scheme == LockstepScheme::Heun {
            Calculus::Stratonovich
        } else {
            Calculus::Ito
        };
        if sde.calculus() != calculus {
            return Err(incompatible(IncompatibleReason::Calculus {
                solves: calculus,
                sde: sde.calculus(),
            }));
        }
        let (d, m, noise) = (sde.dim(), sde.noise_dim(), sde.noise());
        sde.structure().check(d)?;
        match scheme {
            LockstepScheme::Milstein | LockstepScheme::MilsteinLevy => {
                let hook = sde.has_milstein_block();
                let solvable = match noise {
                    Noise::Additive => true,
                    Noise::Scalar | Noise::Diagonal => hook,
                    _ => scheme == LockstepScheme::MilsteinLevy,
                };
                if !solvable {
                    return Err(incompatible(IncompatibleReason::LockstepMilstein {
                        noise,
                        dim: d,
                        noise_dim: m,
                        milstein_block: hook,
                    }));
                }
            }
            _ => {}
        }
        let levy = if scheme.reads_area(noise, m) {
            Some(LevyArea::for_step(m, span.h())?)
        } else {
            None
        };
        Ok(LockstepProblem {
            sde,
            x0,
            span,
            scheme,
            levy,
        })
    }

    /// Euler–Maruyama from `x0` over `span` ([`LockstepProblem::new`]).
    ///
    /// # Errors
    /// As [`LockstepProblem::new`].
    pub fn euler_maruyama(sde: &'a S, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
        Self::new(sde, LockstepScheme::EulerMaruyama, x0, span)
    }

    /// Milstein from `x0` over `span`, for an Itô SDE with scalar noise (`m = 1`, any
    /// `d`) or diagonal noise that provides [`BatchSde::milstein_block`], or with
    /// additive noise: `X' = (X + h a + b ΔW) + ½ (ΔW² − h) L¹b` (scalar),
    /// `X'_i = ((X + h a + b ΔW)_i + ½ (∂b[bΔW]ΔW)_i) + (−½h) (∂b[b1]1)_i` (diagonal),
    /// no term (additive): the per-path [`crate::scheme::Milstein`]'s numbers.
    ///
    /// # Errors
    /// As [`LockstepProblem::new`].
    pub fn milstein(sde: &'a S, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
        Self::new(sde, LockstepScheme::Milstein, x0, span)
    }

    /// The scheme.
    pub fn scheme(&self) -> LockstepScheme {
        self.scheme
    }

    /// The time span.
    pub fn span(&self) -> &TimeSpan {
        &self.span
    }

    /// Whether the steps read Lévy areas (RK-Milstein and Milstein–Lévy on general
    /// noise, `m > 1`).
    pub fn reads_area(&self) -> bool {
        self.levy.is_some()
    }
}

/// Buffers of one worker of a [`LockstepProblem`] (they grow to the widest block run).
#[derive(Debug, Clone)]
pub struct LockstepWorkspace {
    /// States, path-major (`x[p·d + i]`).
    x: Vec<f64>,
    drift: Vec<f64>,
    diffusion: Vec<f64>,
    /// Milstein terms along `ΔW` and along `1` (`d` per path).
    correction: Vec<f64>,
    correction_unit: Vec<f64>,
    /// Every entry `1.0`: the direction `c = 1` of [`BatchSde::milstein_block`].
    ones: Vec<f64>,
    /// The next states (Heun, RK-Milstein), path-major.
    next: Vec<f64>,
    /// Predictor / support states (Heun, RK-Milstein), path-major.
    support: Vec<f64>,
    /// Coefficients at the predictor / support states.
    drift_p: Vec<f64>,
    diffusion_p: Vec<f64>,
    /// RK-Milstein's `c` and `Σ c` (`m` per path).
    c: Vec<f64>,
    c_sum: Vec<f64>,
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
    /// This step's Lévy areas, path-major (`areas[p·m² + j·m + k] = A_jk` of path `p`),
    /// when the scheme reads them.
    areas: Vec<f64>,
    /// Each path's own `Levy` generator (`SeedTree(seed).rng(path, Levy)`).
    levy_rngs: Vec<Xoshiro256PlusPlus>,
    /// The sampler (it keeps no state between calls, so one serves every path), a path's
    /// `ΔW` and areas as it reads and writes them.
    levy: Option<(LevyArea, DVector<f64>, DMatrix<f64>)>,
    /// Milstein–Lévy: the directions `b_j` (`d` per path), the weights `I_(j,·)` (`m`
    /// per path), the derivative terms (`d` per path) and their scratch.
    directions: Vec<f64>,
    weights: Vec<f64>,
    terms: Vec<f64>,
    block_scratch: BlockScratch,
    /// One path's vectors for [`crate::sde::Sde::diffusion_derivative`] when the SDE has
    /// no [`BatchSde::derivative_block`].
    lane: LaneDerivative,
}

/// One path's vectors for a per-path [`crate::sde::Sde::diffusion_derivative`] call.
#[derive(Debug, Clone)]
pub(super) struct LaneDerivative {
    x: DVector<f64>,
    v: DVector<f64>,
    c: DVector<f64>,
    out: DVector<f64>,
    scratch: DerivativeScratch,
}

/// The earliest time at which a live path of `paths` is next due for an observation.
fn next_wake<O: PathObserver>(observer: &O, paths: &Range<u64>, live: &[bool]) -> f64 {
    paths
        .clone()
        .zip(live)
        .filter(|(_, &live)| live)
        .fold(f64::INFINITY, |wake, (path, _)| {
            wake.min(observer.next_time(path))
        })
}

impl<S: BatchSde + ?Sized> EnsembleProblem for LockstepProblem<'_, S> {
    type Workspace = LockstepWorkspace;

    /// Four blocks (256 paths) when a path's buffers are small (at most 64 floats of
    /// state, drift, diffusion and normals drawn ahead), else one.
    fn blocks_per_run(&self) -> usize {
        let (d, m) = (self.sde.dim(), self.sde.noise_dim());
        let width = diffusion_width(self.sde.noise(), d, m);
        let ahead = if m == 1 { AHEAD } else { m };
        if d * (2 + width) + ahead <= WIDE_RUN_FLOATS {
            WIDE_RUN
        } else {
            1
        }
    }

    fn dim(&self) -> usize {
        self.sde.dim()
    }

    fn time_range(&self) -> (f64, f64) {
        (self.span.t0(), self.span.t1())
    }

    fn workspace(&self) -> LockstepWorkspace {
        let (d, m) = (self.sde.dim(), self.sde.noise_dim());
        LockstepWorkspace {
            x: Vec::new(),
            drift: Vec::new(),
            diffusion: Vec::new(),
            correction: Vec::new(),
            correction_unit: Vec::new(),
            ones: Vec::new(),
            lanes: Vec::new(),
            normals: Vec::new(),
            dw: Vec::new(),
            live: Vec::new(),
            next: Vec::new(),
            support: Vec::new(),
            drift_p: Vec::new(),
            diffusion_p: Vec::new(),
            c: Vec::new(),
            c_sum: Vec::new(),
            column: DVector::zeros(self.sde.dim()),
            kernel: Kernel::detect(),
            areas: Vec::new(),
            levy_rngs: Vec::new(),
            levy: self.levy.clone().map(|levy| {
                let m = levy.noise_dim();
                (levy, DVector::zeros(m), DMatrix::zeros(m, m))
            }),
            directions: Vec::new(),
            weights: Vec::new(),
            terms: Vec::new(),
            block_scratch: BlockScratch::default(),
            lane: LaneDerivative {
                x: DVector::zeros(d),
                v: DVector::zeros(d),
                c: DVector::zeros(m),
                out: DVector::zeros(d),
                scratch: DerivativeScratch::new(d),
            },
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
        let milstein = matches!(
            self.scheme,
            LockstepScheme::Milstein | LockstepScheme::MilsteinLevy
        );
        // d = m = 1 Euler–Maruyama and Milstein (not the diagonal form): one fused pass;
        // Heun and RK-Milstein (without Lévy areas): two, where the SDE offers them
        let one_dim = d == 1
            && m == 1
            && match self.scheme {
                LockstepScheme::EulerMaruyama | LockstepScheme::Heun => true,
                LockstepScheme::Milstein | LockstepScheme::MilsteinLevy => noise != Noise::Diagonal,
                LockstepScheme::RkMilstein => self.levy.is_none(),
            };
        let n = (paths.end - paths.start) as usize;
        let groups = n.div_ceil(LANES);
        ws.x.clear();
        for _ in 0..n {
            ws.x.extend_from_slice(self.x0.as_slice());
        }
        ws.drift.resize(n * d, 0.0);
        ws.diffusion.resize(n * width, 0.0);
        let derivatives = if milstein { n * d } else { 0 };
        ws.correction.resize(derivatives, 0.0);
        ws.correction_unit.resize(derivatives, 0.0);
        // one noise: the normals of AHEAD steps drawn in one call per lane group (they do
        // not depend on the state); several: one step at a time
        let ahead = if m == 1 { AHEAD } else { 1 };
        ws.normals.resize(ahead * groups * m * LANES, 0.0);
        ws.dw.resize(n * m, 0.0);
        ws.live.clear();
        ws.live.resize(n, true);
        ws.lanes.resize_with(groups, NormalLanes::new);
        seeds.seed_lanes(paths.clone(), Stream::Brownian, &mut ws.lanes[..groups]);
        // Lévy areas: each path's own `Levy` generator, as `IncrementStream::with_levy_area`
        ws.levy_rngs.clear();
        if ws.levy.is_some() {
            ws.levy_rngs
                .extend(paths.clone().map(|path| seeds.rng(path, Stream::Levy)));
            ws.areas.resize(n * m * m, 0.0);
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
        let limit = bound.min(f64::MAX);
        let mut wake = next_wake(observer, &paths, &ws.live);
        for k in 0..self.span.steps() {
            let t = self.span.time(k);
            let t_next = self.span.time(k + 1);
            let h = self.span.step_size(k);
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
                    lanes.fill_with(ws.kernel, &scale, out, stride, rows, None);
                }
            }
            let sqrt_h = h.sqrt();
            // normals[(row·groups + g)·8 + l]: path-major within a row
            let one_pass = match one_dim {
                true => self
                    .one_dim_step(ws, row * groups * LANES, n, t, [h, sqrt_h, limit])
                    .transpose(),
                false => None,
            };
            let stepped = if let Some(stepped) = one_pass {
                stepped
            } else {
                if m == 1 {
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
                    sample_areas(ws, n, m, h);
                }
                // one vectorised pass: every lane finite and within the bound (NaN fails
                // the comparison; `limit` is finite so ±∞ fails too)
                self.advance(ws, n, t, h)
                    .map(|()| ws.x.iter().fold(true, |ok, &x| ok & (x.abs() <= limit)))
            };
            let fine = match stepped {
                Ok(fine) => fine,
                Err(e) => {
                    for (p, live) in ws.live.iter_mut().enumerate() {
                        if std::mem::replace(live, false) {
                            observer.finish(paths.start + p as u64, Err(e.clone()));
                        }
                    }
                    return;
                }
            };
            // every lane fine and no path due for an observation: nothing to do per path
            // this step (retired lanes are reset when a pass fails, so callbacks still
            // never see a non-finite state)
            if fine && t_next < wake {
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
            wake = next_wake(observer, &paths, &ws.live);
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
        let (runs, run) = self.runs(per);
        for u in 0..runs {
            let range = run(u);
            rec.reset(range.start);
            let len = (range.end - range.start) as usize;
            problem.run_block(&mut ws, &self.seeds, range.clone(), &mut rec);
            acc.record_block(&rec, len);
            self.report(&range);
            between(range.end - range.start)?;
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

/// Each live path's Lévy areas for this step from its own `ΔW` and `Levy` generator,
/// by the per-path sampler's scalar code (`LevyArea::sample_xoshiro(h, ΔW, A, rng)`, the call of
/// [`crate::brownian::IncrementStream`]): the same numbers. A retired path draws none
/// (its lane's result is never read again).
fn sample_areas(ws: &mut LockstepWorkspace, n: usize, m: usize, h: f64) {
    let Some((levy, dw, area)) = ws.levy.as_mut() else {
        return;
    };
    for p in 0..n {
        if !ws.live[p] {
            continue;
        }
        dw.as_mut_slice().copy_from_slice(&ws.dw[p * m..(p + 1) * m]);
        levy.sample_xoshiro(h, dw, area, &mut ws.levy_rngs[p]);
        let row = &mut ws.areas[p * m * m..(p + 1) * m * m];
        for j in 0..m {
            for k in 0..m {
                row[j * m + k] = area[(j, k)];
            }
        }
    }
}

mod given;
mod step;

#[cfg(test)]
mod tests;
