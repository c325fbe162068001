//! The SGD problems an [`Ensemble`](crate::ensemble::Ensemble) runs: discrete SGD
//! ([`SgdProblem`]) and the batched SGD-SDE ([`BatchedSgdSdeProblem`]).

use super::{BatchedSgdSde, DiscreteSgd, GeneralizedLinearModel, Model, SgdSde, SgdSdeBlock, SgdWorkspace};
use crate::ensemble::{EnsembleProblem, PathAdapter, PathObserver, BLOCK};
use crate::error::{check_finite, check_vector, Error, Result};
use crate::observe::{out_of_bounds, Flow};
use crate::rng::{SeedTree, Stream, Xoshiro256PlusPlus};
use crate::scheme::TimeSpan;
use nalgebra::DVector;
use std::ops::Range;

/// Paths of discrete SGD (or GD) from `theta0` until `t_end`
/// (see [`DiscreteSgd::run`] for the streams it draws from), each worker reusing one
/// workspace ([`DiscreteSgd::run_with`]).
pub struct SgdProblem<'s, 'a, M: Model> {
    sgd: &'s DiscreteSgd<'a, M>,
    theta0: DVector<f64>,
    t_end: f64,
}

impl<'s, 'a, M: Model> SgdProblem<'s, 'a, M> {
    /// Every path starts at `theta0` and runs until `t_end`.
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a bad `theta0`, [`Error::InvalidParameter`] for a negative or
    /// non-finite `t_end`, or one that takes more than 1e12 steps (the cap of
    /// [`TimeSpan`]).
    pub fn new(sgd: &'s DiscreteSgd<'a, M>, theta0: DVector<f64>, t_end: f64) -> Result<Self> {
        check_finite("theta0", theta0.as_slice())?;
        if !(t_end.is_finite() && t_end >= 0.0) {
            return Err(Error::invalid("t_end", t_end, "must be finite and >= 0"));
        }
        // the step cap of `TimeSpan` (1e12 steps), with the smaller of η(0) and η(t_end)
        let schedule = &sgd.config().schedule;
        let slowest = schedule.eta(0.0).min(schedule.eta(t_end));
        if t_end / slowest > 1e12 {
            return Err(Error::invalid(
                "t_end",
                t_end,
                format!("more than 1e12 steps of η ≥ {slowest:e} requested"),
            ));
        }
        Ok(SgdProblem { sgd, theta0, t_end })
    }
}

impl<M: Model> EnsembleProblem for SgdProblem<'_, '_, M> {
    type Workspace = SgdWorkspace;

    fn dim(&self) -> usize {
        self.theta0.len()
    }

    fn time_range(&self) -> (f64, f64) {
        (0.0, self.t_end)
    }

    fn workspace(&self) -> SgdWorkspace {
        self.sgd.workspace()
    }

    fn run_block<O: PathObserver>(
        &self,
        ws: &mut SgdWorkspace,
        seeds: &SeedTree,
        paths: Range<u64>,
        observer: &mut O,
    ) {
        for path in paths {
            let mut adapter = PathAdapter {
                path,
                inner: &mut *observer,
            };
            let outcome = self
                .sgd
                .run_with(ws, &self.theta0, self.t_end, seeds, path, &mut adapter);
            observer.finish(path, outcome);
        }
    }
}

/// Paths of the finite-data SGD-SDE solved by Euler–Maruyama a block at a time
/// ([`BatchedSgdSde`]): the same increments as [`crate::ensemble::SdeProblem`] with [`crate::scheme::EulerMaruyama`]
/// (path `i` from `rng(i, Brownian)`, in [`crate::brownian::IncrementStream`]'s order), so the same paths
/// to rounding, at matrix–matrix speed.
pub struct BatchedSgdSdeProblem<'a, M: GeneralizedLinearModel> {
    batched: BatchedSgdSde<'a, M>,
    x0: DVector<f64>,
    span: TimeSpan,
}

impl<'a, M: GeneralizedLinearModel> BatchedSgdSdeProblem<'a, M> {
    /// Every path starts at `x0` and is solved over `span`.
    ///
    /// # Errors
    /// As [`BatchedSgdSde::new`]; [`Error::DimensionMismatch`] / [`Error::NonFinite`] for a
    /// bad `x0`.
    pub fn new(sde: &'a SgdSde<'a, M>, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
        let batched = BatchedSgdSde::new(sde)?;
        check_vector("x0", &x0, batched.dim())?;
        Ok(BatchedSgdSdeProblem { batched, x0, span })
    }
}

/// Buffers of one worker of a [`BatchedSgdSdeProblem`].
#[derive(Debug, Clone)]
pub struct BatchedWorkspace {
    block: SgdSdeBlock,
    rngs: Vec<Option<Xoshiro256PlusPlus>>,
    column: DVector<f64>,
}

impl<M: GeneralizedLinearModel> EnsembleProblem for BatchedSgdSdeProblem<'_, M> {
    type Workspace = BatchedWorkspace;

    fn dim(&self) -> usize {
        self.batched.dim()
    }

    fn time_range(&self) -> (f64, f64) {
        (self.span.t0(), self.span.t1())
    }

    fn workspace(&self) -> BatchedWorkspace {
        BatchedWorkspace {
            block: self.batched.block(BLOCK as usize),
            rngs: vec![None; BLOCK as usize],
            column: DVector::zeros(self.dim()),
        }
    }

    /// Path `i` lives in column `i mod BLOCK` whatever the shard, and a column's numbers
    /// depend only on its own path ([`SgdSdeBlock::set_columns`]): sharding cannot change
    /// them.
    fn run_block<O: PathObserver>(
        &self,
        ws: &mut BatchedWorkspace,
        seeds: &SeedTree,
        paths: Range<u64>,
        observer: &mut O,
    ) {
        let base = paths.start - paths.start % BLOCK;
        let slots = (paths.start - base) as usize..(paths.end - base) as usize;
        let bound = observer.divergence_bound();
        ws.block.set_columns(slots.clone());
        ws.rngs.fill(None);
        ws.block.state_mut().fill(0.0);
        for p in slots.clone() {
            let path = base + p as u64;
            ws.rngs[p] = Some(seeds.rng(path, Stream::Brownian));
            ws.block.state_mut().set_column(p, &self.x0);
            if out_of_bounds(self.x0.as_slice(), bound) {
                let t = self.span.t0();
                ws.rngs[p] = None;
                ws.block.state_mut().column_mut(p).fill(0.0);
                observer.finish(path, Err(Error::Divergence { path, step: 0, t }));
                continue;
            }
            if observer.observe(path, 0, self.span.t0(), &self.x0) == Flow::Stop {
                ws.rngs[p] = None;
                ws.block.state_mut().column_mut(p).fill(0.0);
                observer.finish(path, Ok(&self.x0));
            }
        }
        for k in 0..self.span.steps() {
            let t = self.span.time(k);
            let t_next = self.span.time(k + 1);
            self.batched
                .euler_maruyama_step(&mut ws.block, t, self.span.step_size(k), &mut ws.rngs);
            for p in slots.clone() {
                if ws.rngs[p].is_none() {
                    continue; // diverged earlier
                }
                let path = base + p as u64;
                ws.column.copy_from(&ws.block.state().column(p));
                if out_of_bounds(ws.column.as_slice(), bound) {
                    // retire the path: zero noise and a finite column from now on
                    ws.rngs[p] = None;
                    ws.block.state_mut().column_mut(p).fill(0.0);
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
                if observer.observe(path, k + 1, t_next, &ws.column) == Flow::Stop {
                    // retire the path: zero noise and a finite column from now on
                    ws.rngs[p] = None;
                    ws.block.state_mut().column_mut(p).fill(0.0);
                    observer.finish(path, Ok(&ws.column));
                }
            }
        }
        for p in slots {
            if ws.rngs[p].is_some() {
                ws.column.copy_from(&ws.block.state().column(p));
                observer.finish(base + p as u64, Ok(&ws.column));
            }
        }
    }
}
