//! Strong and weak convergence orders of a scheme, measured (THEORY §8).
//!
//! For each Monte Carlo path `i`, one Brownian path is sampled on the finest grid
//! (with Lévy areas when the noise is general) and solved at every level of a ladder
//! `h_ℓ = T/2^ℓ` by exact coarsening, so all step sizes see the *same* path:
//!
//! - **strong error** `E‖X_h(T) − X_ref(T)‖`;
//! - **weak error** `|E φ(X_h(T)) − E φ(X_ref(T))|`, estimated as the mean of the paired
//!   differences `φ(X_h) − φ(X_ref)` on shared paths (same expectation as the unpaired
//!   estimate; its variance is of the order of the strong error squared instead of
//!   `Var φ`, which is what makes weak orders measurable at all).
//!
//! The reference `X_ref` is either an exact function of the path ([`Reference::Exact`])
//! or general-noise Milstein with Lévy areas on a grid `2^offset` times finer than the
//! finest level ([`Reference::Fine`]), or the studied scheme itself on such a grid
//! ([`Reference::SameScheme`], for weak orders above 1). Every point carries its Monte Carlo standard
//! error and its cost (wall time, drift and diffusion evaluations), so work–precision
//! diagrams can be drawn. The order is the least-squares slope of `ln error` against
//! `ln h`, with a 95% interval ([`crate::analysis::regression::fit_line`]) that combines
//! the scatter about the line with the points' standard errors.

use super::regression::{fit_line, SlopeFit};
use crate::brownian::{BrownianGrid, LevyArea, LevyMethod};
use crate::error::{check_vector, Error, Result};
use crate::observe::Welford;
use crate::rng::SeedTree;
use crate::scheme::{integrate, MilsteinLevy, Scheme, TimeSpan};
use crate::sde::{Counted, Noise, Sde, SdeExt};
use nalgebra::DVector;
use std::time::Instant;

/// Which error is measured.
#[derive(Clone, Copy)]
pub enum Measure<'a> {
    /// `E‖X_h(T) − X_ref(T)‖`.
    Strong,
    /// `|E φ(X_h(T)) − E φ(X_ref(T))|` for the given test function `φ`.
    Weak(&'a dyn Fn(&DVector<f64>) -> f64),
    /// The weak error with `φ` evaluated on a block of final states at once:
    /// `phi(states, out)` receives `P` states row-major (`states.len() = P·d`) and writes
    /// `φ` of each into `out` (`P` numbers), the same number for a state whatever the
    /// block. The lockstep study ([`lockstep`]) calls it once per block of paths per step
    /// size and once for the block's references; the per-path study with blocks of one.
    /// Its error (e.g. a failing user function) ends the study.
    WeakBlock(&'a BlockFunctional<'a>),
}

/// A test function on a block of states (see [`Measure::WeakBlock`]).
pub type BlockFunctional<'a> = dyn Fn(&[f64], &mut [f64]) -> Result<()> + 'a;

impl Measure<'_> {
    /// `"strong"` or `"weak"`.
    pub fn name(&self) -> &'static str {
        match self {
            Measure::Strong => "strong",
            Measure::Weak(_) | Measure::WeakBlock(_) => "weak",
        }
    }

    /// `φ(x)` of one state (`0` for the strong error).
    fn phi(&self, x: &DVector<f64>) -> Result<f64> {
        let mut value = [0.0];
        match self {
            Measure::Strong => {}
            Measure::Weak(phi) => value[0] = phi(x),
            Measure::WeakBlock(phi) => phi(x.as_slice(), &mut value)?,
        }
        Ok(value[0])
    }

    /// `φ` of each of the `out.len()` states of `states` (row-major), `row` a buffer of
    /// one state (nothing for the strong error).
    fn phi_block(&self, states: &[f64], row: &mut DVector<f64>, out: &mut [f64]) -> Result<()> {
        match self {
            Measure::Strong => {}
            Measure::Weak(phi) => {
                for (o, x) in out.iter_mut().zip(states.chunks_exact(row.len())) {
                    row.as_mut_slice().copy_from_slice(x);
                    *o = phi(row);
                }
            }
            Measure::WeakBlock(phi) => phi(states, out)?,
        }
        Ok(())
    }
}

/// Where the reference solution comes from.
#[derive(Clone, Copy)]
pub enum Reference<'a> {
    /// The exact solution at `T` as a function of the stored Brownian path.
    Exact(&'a dyn Fn(&BrownianGrid) -> DVector<f64>),
    /// Milstein with Lévy areas on a grid `2^offset` times finer than the finest level.
    Fine {
        /// How many dyadic levels finer than the finest level of the ladder.
        offset: u32,
    },
    /// The studied scheme itself on a grid `2^offset` times finer than the finest level,
    /// on the same path: for weak studies of schemes above order 1, where a Milstein
    /// reference's own `O(h)` bias would dominate (common random numbers keep the paired
    /// differences' variance of the order of the strong gap squared).
    SameScheme {
        /// How many dyadic levels finer than the finest level of the ladder.
        offset: u32,
    },
}

/// The ladder of step sizes and the Monte Carlo size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvergenceConfig {
    /// Final time `T` (the solve runs on `[0, T]`).
    pub t_end: f64,
    /// Coarsest level: `h = T/2^coarsest`.
    pub coarsest: u32,
    /// Finest level: `h = T/2^finest`.
    pub finest: u32,
    /// Number of Monte Carlo paths.
    pub paths: usize,
    /// Master seed.
    pub seed: u64,
    /// Fourier terms of the Lévy areas sampled on the finest grid (Wiktorsson's method);
    /// coarser levels get exact areas by Chen's relation.
    pub levy_terms: usize,
}

impl Default for ConvergenceConfig {
    fn default() -> Self {
        ConvergenceConfig {
            t_end: 1.0,
            coarsest: 3,
            finest: 8,
            paths: 2000,
            seed: 20_240_207,
            levy_terms: 4,
        }
    }
}

/// One step size of a convergence study.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ConvergencePoint {
    /// Step size `h`.
    pub h: f64,
    /// Estimated error (strong, or absolute weak).
    pub error: f64,
    /// Monte Carlo standard error of `error`.
    pub std_error: f64,
    /// Paths used.
    pub paths: usize,
    /// Wall time spent solving at this step size, all paths (seconds; the solves only,
    /// not the Brownian path or the reference).
    pub wall_seconds: f64,
    /// Drift evaluations per path (counted on path 0: with fixed steps every path costs
    /// the same).
    pub drift_evaluations: f64,
    /// Diffusion-operator applications per path (counted on path 0).
    pub diffusion_evaluations: f64,
}

/// The result of a convergence study.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConvergenceStudy {
    /// Scheme name.
    pub scheme: &'static str,
    /// `"strong"` or `"weak"`.
    pub kind: &'static str,
    /// One point per step size, coarsest first.
    pub points: Vec<ConvergencePoint>,
    /// Fitted order with its 95% interval.
    pub fit: SlopeFit,
}

impl ConvergenceStudy {
    /// The fitted order.
    pub fn order(&self) -> f64 {
        self.fit.slope
    }
}

fn validate(config: &ConvergenceConfig) -> Result<()> {
    crate::error::check_positive("t_end", config.t_end)?;
    if config.finest <= config.coarsest {
        return Err(Error::invalid(
            "finest",
            config.finest,
            format!(
                "must exceed coarsest = {} (at least two step sizes)",
                config.coarsest
            ),
        ));
    }
    if config.finest > 24 {
        return Err(Error::invalid(
            "finest",
            config.finest,
            "at most 24 (2^24 steps per path)",
        ));
    }
    if config.paths < 2 {
        return Err(Error::invalid(
            "paths",
            config.paths,
            "at least 2 paths are needed",
        ));
    }
    if config.levy_terms == 0 {
        return Err(Error::invalid(
            "levy_terms",
            config.levy_terms,
            "must be at least 1",
        ));
    }
    Ok(())
}

/// Measures the strong or weak error of `scheme` on `sde` from `x0` over a ladder of
/// step sizes, and fits the order.
///
/// # Errors
/// Invalid configuration or `x0` ([`Error::InvalidParameter`], [`Error::DimensionMismatch`]),
/// an incompatible scheme, or a diverging path (reported with its index).
///
/// ```
/// use noether_sde::analysis::convergence::*;
/// use noether_sde::prelude::*;
/// use nalgebra::DVector;
/// let gbm = GeometricBrownianMotion::new(1.0, 0.5)?;
/// let exact = |g: &BrownianGrid| DVector::from_element(1, gbm.exact(1.0, 1.0, g.w_end()[0]));
/// let cfg = ConvergenceConfig { coarsest: 4, finest: 7, paths: 200, ..Default::default() };
/// let study = convergence_study(&gbm, &Milstein::new(), &DVector::from_element(1, 1.0),
///                               &cfg, Reference::Exact(&exact), Measure::Strong)?;
/// assert!((study.order() - 1.0).abs() < 0.3);
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub fn convergence_study<S, K>(
    sde: &S,
    scheme: &K,
    x0: &DVector<f64>,
    config: &ConvergenceConfig,
    reference: Reference<'_>,
    measure: Measure<'_>,
) -> Result<ConvergenceStudy>
where
    S: Sde + ?Sized,
    K: Scheme,
{
    validate(config)?;
    check_vector("x0", x0, sde.dim())?;
    let info = scheme.info();
    crate::scheme::check_compatible(&info, sde)?;
    let m = sde.noise_dim();
    let seeds = SeedTree::new(config.seed);
    let sample_level = reference_level(config, reference)?;
    let mut levy = if sde.noise() == Noise::General {
        Some(LevyArea::new(m, config.levy_terms, LevyMethod::Wiktorsson)?)
    } else {
        None
    };
    let levels: Vec<u32> = (config.coarsest..=config.finest).collect();
    let mut stats = vec![Welford::new(); levels.len()];
    let mut seconds = vec![0.0; levels.len()];
    let mut drift_evals = vec![0u64; levels.len()];
    let mut diffusion_evals = vec![0u64; levels.len()];
    let counted = Counted::new(sde);
    let mut reference_scheme = MilsteinLevy::new();
    for path in 0..config.paths as u64 {
        let mut grid = sample_grid(
            &seeds,
            path,
            m,
            config,
            sample_level,
            levy.as_mut(),
            scheme.reads_time_integral(),
        )?;
        let x_ref = match reference {
            Reference::Exact(f) => f(&grid),
            Reference::Fine { .. } => {
                let span = TimeSpan::new(0.0, config.t_end, grid.dt())?;
                integrate(
                    sde,
                    &mut reference_scheme,
                    x0,
                    &span,
                    &mut grid.path(),
                    path,
                    &mut (),
                )?
            }
            Reference::SameScheme { .. } => {
                let span = TimeSpan::new(0.0, config.t_end, grid.dt())?;
                integrate(
                    sde,
                    &mut scheme.clone(),
                    x0,
                    &span,
                    &mut grid.path(),
                    path,
                    &mut (),
                )?
            }
        };
        let phi_ref = measure.phi(&x_ref)?;
        for _ in config.finest..sample_level {
            grid = grid.coarsen()?;
        }
        for (slot, _level) in levels.iter().enumerate().rev() {
            let span = TimeSpan::new(0.0, config.t_end, grid.dt())?;
            let mut local = scheme.clone();
            // fixed steps: every path costs the same evaluations, so path 0 counts them
            // (through `Counted`, whose counters cost a little) and the others
            // run, and are timed, on the SDE's own route
            let start = Instant::now();
            let x_h = if path == 0 {
                counted.reset();
                let x = integrate(&counted, &mut local, x0, &span, &mut grid.path(), path, &mut ())?;
                drift_evals[slot] = counted.drift_evaluations();
                diffusion_evals[slot] = counted.diffusion_evaluations();
                x
            } else {
                integrate(sde, &mut local, x0, &span, &mut grid.path(), path, &mut ())?
            };
            seconds[slot] += start.elapsed().as_secs_f64();
            let value = match measure {
                Measure::Strong => (&x_h - &x_ref).norm(),
                _ => measure.phi(&x_h)? - phi_ref,
            };
            stats[slot].push(value);
            if slot > 0 {
                grid = grid.coarsen()?;
            }
        }
    }
    let costs = LevelCosts {
        seconds: &seconds,
        drift: &drift_evals,
        diffusion: &diffusion_evals,
    };
    finish(info.name, measure, config, &levels, &stats, &costs)
}

/// The level of the reference grid (where each path's Brownian path is sampled): the
/// finest level plus the reference's offset.
///
/// # Errors
/// [`Error::InvalidParameter`] (name `offset`) beyond `2^26` steps.
/// Path `path`'s Brownian grid on `[0, T]` at `2^sample_level` steps (with Lévy areas when
/// `levy` is given, and the space–time integrals when the scheme reads them): the one
/// path both studies (per path and lockstep) solve at every level.
#[allow(clippy::too_many_arguments)]
fn sample_grid(
    seeds: &SeedTree,
    path: u64,
    m: usize,
    config: &ConvergenceConfig,
    sample_level: u32,
    levy: Option<&mut LevyArea>,
    reads_time_integral: bool,
) -> Result<BrownianGrid> {
    let grid = BrownianGrid::sample(seeds, path, m, 0.0, config.t_end, 1usize << sample_level, levy)?;
    Ok(if reads_time_integral {
        grid.with_space_time_area(seeds, path)
    } else {
        grid
    })
}

fn reference_level(config: &ConvergenceConfig, reference: Reference<'_>) -> Result<u32> {
    let offset = match reference {
        Reference::Exact(_) => 0,
        Reference::Fine { offset } | Reference::SameScheme { offset } => offset,
    };
    let sample_level = config.finest + offset;
    if sample_level > 26 {
        return Err(Error::invalid(
            "offset",
            offset,
            "reference grid too fine (more than 2^26 steps)",
        ));
    }
    Ok(sample_level)
}

/// Per level: wall seconds (all paths), drift and diffusion evaluations per path.
struct LevelCosts<'a> {
    seconds: &'a [f64],
    drift: &'a [u64],
    diffusion: &'a [u64],
}

/// The points of a study from the per-level estimators and costs, and the fitted order.
fn finish(
    scheme: &'static str,
    measure: Measure<'_>,
    config: &ConvergenceConfig,
    levels: &[u32],
    stats: &[Welford],
    costs: &LevelCosts<'_>,
) -> Result<ConvergenceStudy> {
    let points: Vec<ConvergencePoint> = levels
        .iter()
        .enumerate()
        .map(|(slot, &level)| ConvergencePoint {
            h: config.t_end / (1u64 << level) as f64,
            error: stats[slot].mean().abs(),
            std_error: stats[slot].std_error(),
            paths: config.paths,
            wall_seconds: costs.seconds[slot],
            drift_evaluations: costs.drift[slot] as f64,
            diffusion_evaluations: costs.diffusion[slot] as f64,
        })
        .collect();
    let fit = fit_order(&points)?;
    Ok(ConvergenceStudy {
        scheme,
        kind: measure.name(),
        points,
        fit,
    })
}

/// Fits `ln error = a + order · ln h` with a 95% interval; the standard error of each
/// `ln error` is taken as `std_error / error` (delta method).
///
/// # Errors
/// [`Error::InvalidParameter`] if fewer than two points have a positive error.
pub fn fit_order(points: &[ConvergencePoint]) -> Result<SlopeFit> {
    let usable: Vec<&ConvergencePoint> = points
        .iter()
        .filter(|p| p.error > 0.0 && p.error.is_finite())
        .collect();
    let x: Vec<f64> = usable.iter().map(|p| p.h.ln()).collect();
    let y: Vec<f64> = usable.iter().map(|p| p.error.ln()).collect();
    let se: Vec<f64> = usable.iter().map(|p| p.std_error / p.error).collect();
    fit_line(&x, &y, Some(&se), 0.95).ok_or_else(|| {
        Error::invalid(
            "points",
            usable.len(),
            "need at least two points with a positive error",
        )
    })
}

pub mod lockstep;
pub mod problems;
pub mod suite;
pub mod work_precision;
