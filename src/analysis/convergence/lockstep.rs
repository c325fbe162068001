//! Convergence studies on the lockstep driver: the strong and weak errors of
//! [`super::convergence_study`] (THEORY §8), with a block of paths advanced together
//! through [`BatchSde`] (one drift and one diffusion evaluation per step for the block,
//! never one per path: the route of the Python bindings' `ns.convergence`).
//!
//! The study is the per-path one, reorganised by blocks: each path `i` of the block
//! samples its own [`BrownianGrid`] on the reference grid from `SeedTree(seed)` (the
//! same call, so the same bits, as the per-path study), and every stage is then solved
//! for the whole block on the stored increments — the reference on the finest grid,
//! then each level `h_ℓ = T/2^ℓ` from the finest to the coarsest, each coarser grid the
//! exact sum of the finer increments ([`BrownianGrid::coarsen`]):
//!
//! ```text
//! strong   e(h) = E‖X_h(T) − X_ref(T)‖
//! weak     e(h) = |E[φ(X_h(T)) − φ(X_ref(T))]|      (paired on the same path)
//! ```
//!
//! with the per-path study's estimators pushed in path order, so the errors, their
//! standard errors and the fitted order with its 95% interval are the per-path study's
//! bit for bit (the steps are the lockstep driver's, [`LockstepProblem::step_on_increments`],
//! which are the per-path schemes' arithmetic). What differs by route is the cost:
//! [`super::ConvergencePoint::wall_seconds`] is measured on this route, and the evaluation
//! counts are block calls per step (each call evaluates every path of the block once;
//! a [`BatchSde::milstein_block`] or [`BatchSde::derivative_block`] call counts as one
//! diffusion evaluation).
//!
//! The reference: [`Reference::Exact`] is evaluated per path on its grid (no SDE
//! evaluations); [`Reference::SameScheme`] runs on lanes; [`Reference::Fine`] (Milstein
//! with Lévy areas) runs on lanes as the lockstep Milstein–Lévy
//! ([`LockstepScheme::MilsteinLevy`]: for general noise it reads each path's areas from
//! its grid, and its derivative terms come from [`BatchSde::derivative_block`], one call
//! per noise per step for the block — or from the per-path derivative when the SDE has
//! no block form of it), and per path only where the lanes refuse it (scalar or diagonal
//! noise without a `milstein_block`). Schemes that read Lévy areas (RK-Milstein,
//! Milstein–Lévy on general noise) get each path's areas of every level from its grid
//! ([`LockstepProblem::step_on_increments_with_areas`]). Schemes without a lane twin, and
//! SDEs without a block form ([`Sde::batch`]), run the per-path study.
//! A weak error's [`Measure::WeakBlock`] is called once per block of paths per step
//! size (and once for the block's references).
//!
//! A path whose state turns NaN fails the study with [`Error::Divergence`] of the first
//! failing path in the per-path study's order (path, then reference, then finest to
//! coarsest); an error of a block evaluation (a failing callback) fails it at once.

use super::{
    convergence_study, finish, reference_level, sample_grid, validate, ConvergenceConfig, ConvergenceStudy,
    LevelCosts,
};
use super::{Measure, Reference};
use crate::brownian::{BrownianGrid, BrownianPath, GridPath, Increment, LevyArea, LevyMethod};
use crate::ensemble::lockstep::{BatchSde, BlockScratch, LockstepProblem, LockstepScheme, LockstepWorkspace};
use crate::ensemble::EnsembleProblem;
use crate::error::{check_vector, Error, Result};
use crate::observe::{out_of_bounds, Welford};
use crate::rng::SeedTree;
use crate::scheme::{integrate, MilsteinLevy, Scheme, TimeSpan};
use crate::sde::{DerivativeScratch, Noise, Sde, SdeExt, Structure};
use nalgebra::DVector;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Memory for the stored Brownian grids of one block (bytes): the block width is the
/// number of paths whose grids fit, between 1 and [`MAX_WIDTH`].
const GRID_BUDGET: usize = 256 << 20;

/// The widest block (paths advanced together).
pub const MAX_WIDTH: usize = 1024;

/// [`super::convergence_study`] of `scheme` on `sde`, on the lockstep driver when `sde`
/// has a block form ([`Sde::batch`]) and `scheme` a lane twin that accepts it
/// ([`LockstepScheme::for_scheme`], [`LockstepProblem::new`]); the per-path study otherwise.
/// Same seed, same numbers either way (errors, standard errors, fitted order and
/// interval; see the module docs for the cost columns). `width` fixes the number of
/// paths per block (`None`: as many as [`MAX_WIDTH`] and the grids' memory allow); it
/// changes no number.
///
/// # Errors
/// As [`super::convergence_study`]; a failing block evaluation.
///
/// ```
/// use noether_sde::analysis::convergence::{convergence_study, ConvergenceConfig, Measure, Reference};
/// use noether_sde::analysis::convergence::lockstep::lockstep_convergence_study;
/// use noether_sde::prelude::*;
/// use nalgebra::DVector;
/// let gbm = GeometricBrownianMotion::new(1.0, 0.5)?;
/// let exact = |g: &BrownianGrid| DVector::from_element(1, gbm.exact(1.0, 1.0, g.w_end()[0]));
/// let cfg = ConvergenceConfig { coarsest: 3, finest: 6, paths: 100, ..Default::default() };
/// let x0 = DVector::from_element(1, 1.0);
/// let (r, m) = (Reference::Exact(&exact), Measure::Strong);
/// let lanes = lockstep_convergence_study(&gbm, &Milstein::new(), &x0, &cfg, r, m, None)?;
/// let per_path = convergence_study(&gbm, &Milstein::new(), &x0, &cfg, r, m)?;
/// assert_eq!(lanes.fit, per_path.fit);
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub fn lockstep_convergence_study<S, K>(
    sde: &S,
    scheme: &K,
    x0: &DVector<f64>,
    config: &ConvergenceConfig,
    reference: Reference<'_>,
    measure: Measure<'_>,
    width: Option<usize>,
) -> Result<ConvergenceStudy>
where
    S: Sde + ?Sized,
    K: Scheme,
{
    validate(config)?;
    check_vector("x0", x0, sde.dim())?;
    let lanes = match (sde.batch(), LockstepScheme::for_scheme(scheme)) {
        (Some(batch), Some(lane)) => lane_route(sde, batch, lane, x0, config)?,
        _ => None,
    };
    let Some((batch, lane)) = lanes else {
        return convergence_study(sde, scheme, x0, config, reference, measure);
    };
    let study = Study {
        sde,
        blocks: CountedBlocks::new(batch),
        lane,
        x0,
        config,
        reference,
        measure,
        reads_time_integral: scheme.reads_time_integral(),
    };
    study.run(scheme.info().name, width)
}

/// The block form and the lane scheme, when the lockstep study applies (the same
/// structural checks as the per-path study first, so a refused pair errs identically).
fn lane_route<'a, S: Sde + ?Sized>(
    sde: &S,
    batch: &'a dyn BatchSde,
    lane: LockstepScheme,
    x0: &DVector<f64>,
    config: &ConvergenceConfig,
) -> Result<Option<(&'a dyn BatchSde, LockstepScheme)>> {
    let consistent = batch.dim() == sde.dim()
        && batch.noise_dim() == sde.noise_dim()
        && batch.noise() == sde.noise()
        && batch.calculus() == sde.calculus();
    let span = TimeSpan::new(0.0, config.t_end, config.t_end)?;
    let accepted = LockstepProblem::new(batch, lane, x0.clone(), span).is_ok();
    Ok((consistent && accepted).then_some((batch, lane)))
}

/// Counts block evaluations (for the cost columns); forwards everything else.
struct CountedBlocks<'a> {
    inner: &'a dyn BatchSde,
    drift: AtomicU64,
    diffusion: AtomicU64,
}

impl<'a> CountedBlocks<'a> {
    fn new(inner: &'a dyn BatchSde) -> Self {
        CountedBlocks {
            inner,
            drift: AtomicU64::new(0),
            diffusion: AtomicU64::new(0),
        }
    }

    fn reset(&self) {
        self.drift.store(0, Ordering::Relaxed);
        self.diffusion.store(0, Ordering::Relaxed);
    }
}

/// The per-path methods forward uncounted (the lockstep study calls only the block ones;
/// `BatchSde` needs them as its supertrait).
impl Sde for CountedBlocks<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn structure(&self) -> Structure {
        self.inner.structure()
    }
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        self.inner.drift(t, x, out)
    }
    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        self.inner.diffusion_apply(t, x, dw, out)
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
        self.inner.diffusion_derivative(t, x, v, c, out, scratch)
    }
}

impl BatchSde for CountedBlocks<'_> {
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.drift.fetch_add(1, Ordering::Relaxed);
        self.inner.drift_block(t, x, out)
    }
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.diffusion.fetch_add(1, Ordering::Relaxed);
        self.inner.diffusion_block(t, x, out)
    }
    fn has_milstein_block(&self) -> bool {
        self.inner.has_milstein_block()
    }
    fn milstein_block(&self, t: f64, x: &[f64], c: &[f64], out: &mut [f64]) -> Result<()> {
        self.diffusion.fetch_add(1, Ordering::Relaxed);
        self.inner.milstein_block(t, x, c, out)
    }
    fn has_derivative_block(&self) -> bool {
        self.inner.has_derivative_block()
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
        self.diffusion.fetch_add(1, Ordering::Relaxed);
        self.inner.derivative_block(t, x, v, c, out, scratch)
    }
}

/// One lockstep study (see [`lockstep_convergence_study`]).
struct Study<'a, S: ?Sized> {
    sde: &'a S,
    blocks: CountedBlocks<'a>,
    lane: LockstepScheme,
    x0: &'a DVector<f64>,
    config: &'a ConvergenceConfig,
    reference: Reference<'a>,
    measure: Measure<'a>,
    reads_time_integral: bool,
}

/// The buffers of one block: states, increments, the grid readers' increment, each
/// path's first failure.
struct BlockBuffers {
    x: Vec<f64>,
    dw: Vec<f64>,
    /// Lévy areas (path-major, `m²` per path) for the steps that read them.
    areas: Vec<f64>,
    inc: Increment,
    failure: Vec<Option<Error>>,
}

impl<S: Sde + ?Sized> Study<'_, S> {
    fn run(&self, name: &'static str, width: Option<usize>) -> Result<ConvergenceStudy> {
        let config = self.config;
        let (d, m) = (self.sde.dim(), self.sde.noise_dim());
        let seeds = SeedTree::new(config.seed);
        let sample_level = reference_level(config, self.reference)?;
        let general = self.sde.noise() == Noise::General;
        let mut levy = if general {
            Some(LevyArea::new(m, config.levy_terms, LevyMethod::Wiktorsson)?)
        } else {
            None
        };
        let width = width.unwrap_or_else(|| {
            let steps = 1usize << sample_level;
            let per_path = 8 * (steps + 1) * m * if general { 1 + m } else { 1 };
            (GRID_BUDGET / per_path).clamp(1, MAX_WIDTH)
        });
        let width = width.clamp(1, config.paths);
        let levels: Vec<u32> = (config.coarsest..=config.finest).collect();
        let span_of = |level: u32| TimeSpan::new(0.0, config.t_end, config.t_end / (1u64 << level) as f64);
        let level_problems = levels
            .iter()
            .map(|&l| LockstepProblem::new(&self.blocks, self.lane, self.x0.clone(), span_of(l)?))
            .collect::<Result<Vec<_>>>()?;
        let fine_span = span_of(sample_level)?;
        let reference_problem = match self.reference {
            Reference::Exact(_) => None,
            Reference::SameScheme { .. } => Some(LockstepProblem::new(
                &self.blocks,
                self.lane,
                self.x0.clone(),
                fine_span,
            )?),
            // Milstein–Lévy on lanes (its scalar, diagonal and additive forms are the
            // lockstep Milstein's arithmetic)
            Reference::Fine { .. } => LockstepProblem::new(
                &self.blocks,
                LockstepScheme::MilsteinLevy,
                self.x0.clone(),
                fine_span,
            )
            .ok(),
        };
        let mut ws = level_problems[0].workspace();
        let mut stats = vec![Welford::new(); levels.len()];
        let mut seconds = vec![0.0; levels.len()];
        let mut drift_evals = vec![0u64; levels.len()];
        let mut diffusion_evals = vec![0u64; levels.len()];
        let mut buffers = BlockBuffers {
            x: Vec::with_capacity(width * d),
            dw: Vec::with_capacity(width * m),
            areas: Vec::new(),
            inc: if general {
                Increment::with_area(m)
            } else {
                Increment::new(m)
            },
            failure: Vec::with_capacity(width),
        };
        let mut grids: Vec<BrownianGrid> = Vec::with_capacity(width);
        let mut x_ref: Vec<DVector<f64>> = Vec::with_capacity(width);
        let mut values = vec![0.0; width * levels.len()];
        let mut x_h = DVector::zeros(d);
        let mut start = 0u64;
        while start < config.paths as u64 {
            let paths = start..(start + width as u64).min(config.paths as u64);
            let n = (paths.end - paths.start) as usize;
            grids.clear();
            for path in paths.clone() {
                grids.push(sample_grid(
                    &seeds,
                    path,
                    m,
                    config,
                    sample_level,
                    levy.as_mut(),
                    self.reads_time_integral,
                )?);
            }
            buffers.failure.clear();
            buffers.failure.resize(n, None);
            // the reference on the finest grid
            x_ref.clear();
            match (self.reference, &reference_problem) {
                (Reference::Exact(f), _) => x_ref.extend(grids.iter().map(f)),
                (_, Some(problem)) => {
                    self.solve(problem, &mut ws, &grids, paths.start, &mut buffers)?;
                    x_ref.extend(buffers.x.chunks_exact(d).map(DVector::from_column_slice));
                }
                (_, None) => {
                    // Milstein–Lévy per path (scalar or diagonal noise without a
                    // `milstein_block`: the lanes refuse it)
                    let mut milstein_levy = MilsteinLevy::new();
                    for (p, grid) in grids.iter().enumerate() {
                        let path = paths.start + p as u64;
                        let solved = integrate(
                            self.sde,
                            &mut milstein_levy,
                            self.x0,
                            &fine_span,
                            &mut grid.path(),
                            path,
                            &mut (),
                        );
                        match solved {
                            Ok(x) => x_ref.push(x),
                            Err(e) => {
                                buffers.failure[p] = Some(e);
                                x_ref.push(self.x0.clone());
                            }
                        }
                    }
                }
            }
            // φ of the references, for the block at once
            let mut phi_ref = vec![0.0; n];
            if !matches!(self.measure, Measure::Strong) {
                let states: Vec<f64> = x_ref.iter().flat_map(|x| x.iter().copied()).collect();
                self.measure.phi_block(&states, &mut x_h, &mut phi_ref)?;
            }
            for grid in &mut grids {
                for _ in config.finest..sample_level {
                    *grid = grid.coarsen()?;
                }
            }
            for slot in (0..levels.len()).rev() {
                self.blocks.reset();
                let clock = Instant::now();
                self.solve(&level_problems[slot], &mut ws, &grids, paths.start, &mut buffers)?;
                seconds[slot] += clock.elapsed().as_secs_f64();
                if start == 0 {
                    drift_evals[slot] = self.blocks.drift.load(Ordering::Relaxed);
                    diffusion_evals[slot] = self.blocks.diffusion.load(Ordering::Relaxed);
                }
                let level = &mut values[slot * width..slot * width + n];
                if let Measure::Strong = self.measure {
                    for (p, row) in buffers.x.chunks_exact(d).enumerate() {
                        x_h.as_mut_slice().copy_from_slice(row);
                        level[p] = (&x_h - &x_ref[p]).norm();
                    }
                } else {
                    // φ(X_h) of the block at once, then the paired differences
                    self.measure.phi_block(&buffers.x, &mut x_h, level)?;
                    for (value, phi_ref) in level.iter_mut().zip(&phi_ref) {
                        *value -= phi_ref;
                    }
                }
                if slot > 0 {
                    for grid in &mut grids {
                        *grid = grid.coarsen()?;
                    }
                }
            }
            // the per-path study stops at the first failing path (its first failing stage)
            if let Some(e) = buffers.failure.iter_mut().find_map(Option::take) {
                return Err(e);
            }
            for (slot, welford) in stats.iter_mut().enumerate() {
                for &v in &values[slot * width..slot * width + n] {
                    welford.push(v);
                }
            }
            start = paths.end;
        }
        let costs = LevelCosts {
            seconds: &seconds,
            drift: &drift_evals,
            diffusion: &diffusion_evals,
        };
        finish(name, self.measure, config, &levels, &stats, &costs)
    }

    /// Solves every path of the block on its grid (`grids[p]`, whose step is the span's)
    /// from `x0`; the final states are left in `buffers.x`. A path that turns NaN keeps
    /// its first failure (as the per-path route's [`Error::Divergence`]) and restarts
    /// from `x0`, so that the block's evaluations never see it.
    fn solve(
        &self,
        problem: &LockstepProblem<'_, CountedBlocks<'_>>,
        ws: &mut LockstepWorkspace,
        grids: &[BrownianGrid],
        first: u64,
        buffers: &mut BlockBuffers,
    ) -> Result<()> {
        let (d, m) = (self.sde.dim(), self.sde.noise_dim());
        let n = grids.len();
        let x0 = self.x0.as_slice();
        let span = problem.span();
        buffers.x.clear();
        for _ in 0..n {
            buffers.x.extend_from_slice(x0);
        }
        buffers.dw.clear();
        buffers.dw.resize(n * m, 0.0);
        let areas = problem.reads_area();
        buffers.areas.clear();
        buffers.areas.resize(if areas { n * m * m } else { 0 }, 0.0);
        let mut readers: Vec<GridPath<'_>> = grids.iter().map(BrownianGrid::path).collect();
        for k in 0..span.steps() {
            let h = span.step_size(k);
            for (p, reader) in readers.iter_mut().enumerate() {
                buffers.inc.h = h;
                reader.next(&mut buffers.inc)?;
                buffers.dw[p * m..(p + 1) * m].copy_from_slice(buffers.inc.dw.as_slice());
                if let (true, Some(area)) = (areas, buffers.inc.area.as_ref()) {
                    let row = &mut buffers.areas[p * m * m..(p + 1) * m * m];
                    for j in 0..m {
                        for l in 0..m {
                            row[j * m + l] = area[(j, l)];
                        }
                    }
                }
            }
            let t = span.time(k);
            if areas {
                let (x, dw, a) = (&mut buffers.x, &mut buffers.dw, &mut buffers.areas);
                problem.step_on_increments_with_areas(ws, t, h, x, dw, a)?;
            } else {
                problem.step_on_increments(ws, t, h, &mut buffers.x, &mut buffers.dw)?;
            }
            for (p, row) in buffers.x.chunks_exact_mut(d).enumerate() {
                // the per-path driver's check with no observer: NaN (an infinite state
                // runs on, as per path)
                if out_of_bounds(row, f64::INFINITY) {
                    if buffers.failure[p].is_none() {
                        buffers.failure[p] = Some(Error::Divergence {
                            path: first + p as u64,
                            step: k + 1,
                            t: span.time(k + 1),
                        });
                    }
                    row.copy_from_slice(x0);
                }
            }
        }
        Ok(())
    }
}
