//! The problems an ensemble runs: the trait every problem implements and the SDE +
//! scheme problem (the SGD problems live in [`crate::sgd::ensemble`]).

use super::PathObserver;
use crate::brownian::{IncrementStream, LevyArea};
use crate::error::{check_vector, Error, Result};
use crate::observe::{Flow, Observer};
use crate::rng::SeedTree;
use crate::scheme::{integrate_with, Scheme, TimeSpan, Workspace};
use crate::sde::Sde;
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
    /// Runs the consecutive paths `paths` (at most [`BLOCK`] of them), reporting every
    /// observation and every path's end to `observer`.
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
pub struct SdeProblem<'a, S: ?Sized, K> {
    sde: &'a S,
    scheme: K,
    x0: DVector<f64>,
    span: TimeSpan,
    levy: Option<LevyArea>,
}

impl<'a, S: Sde + Sync + ?Sized, K: Scheme> SdeProblem<'a, S, K> {
    /// Every path starts at `x0` and is solved by `scheme` over `span`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] / [`Error::NonFinite`] for a bad `x0`,
    /// [`Error::Incompatible`] if the scheme cannot solve the SDE.
    pub fn new(sde: &'a S, scheme: K, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
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
        })
    }
}

impl<S: Sde + Sync + ?Sized, K: Scheme + Sync> EnsembleProblem for SdeProblem<'_, S, K> {
    type Workspace = Workspace<K>;

    fn dim(&self) -> usize {
        self.sde.dim()
    }

    fn time_range(&self) -> (f64, f64) {
        (self.span.t0(), self.span.t1())
    }

    fn workspace(&self) -> Workspace<K> {
        Workspace::new(self.sde, self.scheme.clone()).expect("compatibility was checked in SdeProblem::new")
    }

    fn run_block<O: PathObserver>(
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
