//! The problems an ensemble runs: the trait every problem implements and the SDE +
//! scheme problem (the SGD problems live in [`crate::sgd::ensemble`]).
//!
//! [`SdeProblem`] picks its route by itself: when the SDE offers block coefficients
//! ([`Sde::batch`]) and the scheme has a lockstep twin ([`LockstepScheme::for_scheme`]:
//! EM, Milstein, Heun, RK-Milstein, Milstein–Lévy, within the limits of
//! [`LockstepProblem::new`]; Lévy areas from each path's own `Levy` stream), its
//! paths run in lockstep SIMD lane groups ([`super::lockstep`], THEORY §8); otherwise
//! one path at a time through [`integrate_with`]. Both routes give every path the same
//! bits, so the choice changes the speed only.

use super::lockstep::{LockstepProblem, LockstepScheme, LockstepWorkspace};
use super::PathObserver;
use crate::brownian::{IncrementStream, LevyArea};
use crate::error::{check_vector, Error, Result};
use crate::observe::{Flow, Observer};
use crate::rng::SeedTree;
use crate::scheme::{integrate_with, Scheme, TimeSpan, Workspace};
use crate::sde::{BatchSde, Sde, SdeExt};
use nalgebra::DVector;
use std::ops::Range;

/// One problem whose paths an [`super::Ensemble`] runs: an SDE with a scheme ([`SdeProblem`]),
/// discrete SGD ([`super::SgdProblem`]) or the batched SGD-SDE ([`super::BatchedSgdSdeProblem`]).
pub trait EnsembleProblem: Sync {
    /// Per-worker buffers, built once and reused for every block the worker runs.
    type Workspace: Send;
    /// State dimension.
    fn dim(&self) -> usize;
    /// `(t0, t_end)`: requested save times must lie in this interval.
    fn time_range(&self) -> (f64, f64);
    /// Fresh buffers.
    fn workspace(&self) -> Self::Workspace;
    /// How many aligned blocks of [`super::BLOCK`] paths one [`EnsembleProblem::run_block`]
    /// call takes (default 1). A problem that advances its paths together (the lockstep
    /// driver) spreads its per-step costs over more paths with wider runs. The results do
    /// not depend on it: every path draws from its own streams and the statistics are
    /// reduced by path index.
    fn blocks_per_run(&self) -> usize {
        1
    }
    /// Runs the consecutive paths `paths` (at most [`EnsembleProblem::blocks_per_run`] ·
    /// [`super::BLOCK`] of them), reporting every observation and every path's end to
    /// `observer`.
    fn run_block<O: PathObserver>(
        &self,
        ws: &mut Self::Workspace,
        seeds: &SeedTree,
        paths: Range<u64>,
        observer: &mut O,
    );
}

/// Passes one path's observations to a [`PathObserver`].
pub(crate) struct PathAdapter<'o, O> {
    pub(crate) path: u64,
    pub(crate) inner: &'o mut O,
}

impl<O: PathObserver> Observer for PathAdapter<'_, O> {
    #[inline(always)]
    fn observe(&mut self, step: usize, t: f64, x: &DVector<f64>) -> Flow {
        self.inner.observe(self.path, step, t, x)
    }
    #[inline(always)]
    fn next_time(&self) -> f64 {
        self.inner.next_time(self.path)
    }
    #[inline(always)]
    fn divergence_bound(&self) -> f64 {
        self.inner.divergence_bound()
    }
}

/// Paths of an SDE solved by a scheme on [`IncrementStream`] Brownian paths (with Lévy
/// areas from the path's `Levy` stream when the scheme reads them).
///
/// The route is picked by [`SdeProblem::new`]: the lockstep driver when the SDE offers
/// block coefficients ([`Sde::batch`]: the reference problems do) and the scheme has a
/// lockstep twin that solves it ([`LockstepProblem::new`]), the per-path route
/// otherwise. Every path gets the same bits on either route (tested for every scheme ×
/// problem the lanes have), so statistics, divergences and final states do not depend on
/// the route; [`SdeProblem::per_path`] forces the per-path route.
///
/// ```
/// use nalgebra::DVector;
/// use noether_sde::prelude::*;
/// let gbm = GeometricBrownianMotion::new(0.5, 0.3)?;
/// let span = TimeSpan::new(0.0, 1.0, 0.01)?;
/// let x0 = DVector::from_element(1, 1.0);
/// let lanes = SdeProblem::new(&gbm, Milstein::new(), x0.clone(), span)?;
/// assert!(lanes.is_lockstep());
/// let per_path = SdeProblem::per_path(&gbm, Milstein::new(), x0, span)?;
/// let ensemble = Ensemble::new(7, 0..100);
/// for (a, b) in ensemble.final_states(&lanes)?.into_iter().zip(ensemble.final_states(&per_path)?) {
///     assert_eq!(a?[0].to_bits(), b?[0].to_bits());
/// }
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub struct SdeProblem<'a, S: ?Sized, K> {
    sde: &'a S,
    scheme: K,
    x0: DVector<f64>,
    span: TimeSpan,
    levy: Option<LevyArea>,
    lockstep: Option<LockstepProblem<'a, dyn BatchSde + 'a>>,
}

impl<'a, S: Sde + Sync + ?Sized, K: Scheme> SdeProblem<'a, S, K> {
    /// Every path starts at `x0` and is solved by `scheme` over `span`, on the lockstep
    /// route when it applies (see the type's docs).
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] / [`Error::NonFinite`] for a bad `x0`,
    /// [`Error::Incompatible`] if the scheme cannot solve the SDE.
    pub fn new(sde: &'a S, scheme: K, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
        let mut problem = Self::per_path(sde, scheme, x0, span)?;
        problem.lockstep = match (sde.batch(), LockstepScheme::for_scheme(&problem.scheme)) {
            (Some(batch), Some(lanes)) => LockstepProblem::new(batch, lanes, problem.x0.clone(), span).ok(),
            _ => None,
        };
        Ok(problem)
    }

    /// [`SdeProblem::new`] on the per-path route whatever the SDE and scheme (for
    /// comparisons and benchmarks: the numbers are the same).
    ///
    /// # Errors
    /// As [`SdeProblem::new`].
    pub fn per_path(sde: &'a S, scheme: K, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
        if sde.dim() == 0 {
            return Err(Error::invalid("dim", 0, "the SDE has no state dimension"));
        }
        check_vector("x0", &x0, sde.dim())?;
        let ws = Workspace::new(sde, scheme.clone())?;
        let levy = if ws.reads_area() {
            Some(LevyArea::for_step(sde.noise_dim(), span.h())?)
        } else {
            None
        };
        Ok(SdeProblem {
            sde,
            scheme,
            x0,
            span,
            levy,
            lockstep: None,
        })
    }

    /// Whether the paths run on the lockstep driver.
    pub fn is_lockstep(&self) -> bool {
        self.lockstep.is_some()
    }
}

/// The buffers of the route an [`SdeProblem`] runs on.
#[allow(clippy::large_enum_variant)] // one per worker
pub enum SdeWorkspace<K> {
    /// Of the lockstep driver.
    Lockstep(LockstepWorkspace),
    /// Of the per-path route.
    PerPath(Workspace<K>),
}

impl<S: Sde + Sync + ?Sized, K: Scheme + Sync> EnsembleProblem for SdeProblem<'_, S, K> {
    type Workspace = SdeWorkspace<K>;

    fn dim(&self) -> usize {
        self.sde.dim()
    }

    fn time_range(&self) -> (f64, f64) {
        (self.span.t0(), self.span.t1())
    }

    fn workspace(&self) -> SdeWorkspace<K> {
        match &self.lockstep {
            Some(lanes) => SdeWorkspace::Lockstep(lanes.workspace()),
            None => SdeWorkspace::PerPath(
                Workspace::new(self.sde, self.scheme.clone())
                    .expect("compatibility was checked in SdeProblem::new"),
            ),
        }
    }

    fn blocks_per_run(&self) -> usize {
        self.lockstep.as_ref().map_or(1, |lanes| lanes.blocks_per_run())
    }

    fn run_block<O: PathObserver>(
        &self,
        ws: &mut SdeWorkspace<K>,
        seeds: &SeedTree,
        paths: Range<u64>,
        observer: &mut O,
    ) {
        // a workspace of the other route (built by another problem) is rebuilt
        let fits = matches!(
            (&self.lockstep, &*ws),
            (Some(_), SdeWorkspace::Lockstep(_)) | (None, SdeWorkspace::PerPath(_))
        );
        if !fits {
            *ws = self.workspace();
        }
        match (&self.lockstep, ws) {
            (Some(lanes), SdeWorkspace::Lockstep(ws)) => lanes.run_block(ws, seeds, paths, observer),
            (_, SdeWorkspace::PerPath(ws)) => self.run_paths(ws, seeds, paths, observer),
            (None, SdeWorkspace::Lockstep(_)) => {} // rebuilt above
        }
    }
}

impl<S: Sde + Sync + ?Sized, K: Scheme + Sync> SdeProblem<'_, S, K> {
    /// The per-path route: `paths` one after the other through [`integrate_with`].
    fn run_paths<O: PathObserver>(
        &self,
        ws: &mut Workspace<K>,
        seeds: &SeedTree,
        paths: Range<u64>,
        observer: &mut O,
    ) {
        let m = self.sde.noise_dim();
        for path in paths {
            let mut brownian = IncrementStream::new(seeds, path, m);
            if let Some(levy) = &self.levy {
                brownian = match brownian.with_levy_area(seeds, path, levy.clone()) {
                    Ok(b) => b,
                    Err(e) => {
                        observer.finish(path, Err(e));
                        continue;
                    }
                };
            }
            if self.scheme.reads_time_integral() {
                brownian = brownian.with_space_time_area(seeds, path);
            }
            let mut adapter = PathAdapter {
                path,
                inner: &mut *observer,
            };
            let outcome = integrate_with(
                self.sde,
                ws,
                &self.x0,
                &self.span,
                &mut brownian,
                path,
                &mut adapter,
            );
            observer.finish(path, outcome);
        }
    }
}
