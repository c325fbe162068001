//! Ensembles: many paths of one problem, in parallel, with results that do not depend
//! on how the paths were scheduled.
//!
//! An [`Ensemble`] is a master seed and a range of path indices (a *shard*). Path `i`
//! draws all its randomness from `SeedTree(seed).rng(i, stream)`, so it is the same path
//! whichever thread or machine runs it. Paths are run in blocks of [`BLOCK`] consecutive
//! indices (aligned to multiples of [`BLOCK`]), on rayon's thread pool when the `parallel`
//! feature is on (the default) or sequentially.
//!
//! # Statistics
//!
//! [`Ensemble::statistics`] records scalar functionals `f(t, x) ∈ R^k` at requested times
//! ([`Functionals`]) and reduces them to means and (co)variances while it runs: memory is
//! `O(times × k²)` per worker, not `O(paths × d)`. The reduction is a fixed binary tree
//! keyed by path index: the leaves are single paths, and the node covering the aligned
//! range `[j·2^l, (j+1)·2^l)` is the exact pairwise (Chan et al.) merge of its two
//! children. A range of paths is summarised by its unique decomposition into maximal
//! aligned nodes, folded left to right only when read. Every node's value is therefore a
//! pure function of the paths it covers, and
//!
//! ```text
//! statistics(a..c) = statistics(a..b).merge(statistics(b..c))     bit for bit,
//! ```
//!
//! for any split point `b`, with 1 thread or many. Paths that stop being finite are
//! counted ([`EnsembleStatistics::divergent`], with the first one's
//! [`Error::Divergence`]) and left out of the moments instead of aborting the ensemble.
//!
//! ```
//! use noether_sde::ensemble::{Ensemble, Functionals, SdeProblem};
//! use noether_sde::prelude::*;
//! use nalgebra::DVector;
//! let gbm = GeometricBrownianMotion::new(0.5, 0.2)?;
//! let span = TimeSpan::new(0.0, 1.0, 0.01)?;
//! let problem = SdeProblem::new(&gbm, Milstein::new(), DVector::from_element(1, 1.0), span)?;
//! let record = Functionals::new(vec![0.5, 1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| out[0] = x[0])?;
//! let all = Ensemble::new(7, 0..2000).statistics(&problem, &record)?;
//! // E X_1 = e^{0.5}; |z| < 4: false alarm 6e-5
//! assert!((all.mean(1, 0) - 0.5f64.exp()).abs() < 4.0 * all.std_error(1, 0));
//! // two shards merged give the same numbers, bit for bit
//! let first = Ensemble::new(7, 0..700).statistics(&problem, &record)?;
//! let second = Ensemble::new(7, 700..2000).statistics(&problem, &record)?;
//! let merged = first.merge(second)?;
//! assert_eq!(merged.mean(1, 0).to_bits(), all.mean(1, 0).to_bits());
//! assert_eq!(merged.variance(1, 0).to_bits(), all.variance(1, 0).to_bits());
//! # Ok::<(), noether_sde::Error>(())
//! ```

pub mod lockstep;
mod problems;
mod record;
mod statistics;

pub use crate::sgd::ensemble::{BatchedSgdSdeProblem, BatchedWorkspace, SgdProblem};
pub(crate) use problems::PathAdapter;
pub use problems::{EnsembleProblem, SdeProblem, SdeWorkspace};
pub use record::{Functionals, PathObserver};
pub use statistics::EnsembleStatistics;

use crate::error::{Error, Result};
use crate::observe::{check_divergence_bound, DEFAULT_DIVERGENCE_BOUND};
use crate::rng::SeedTree;
use nalgebra::{DMatrix, DVector};
use record::{BlockRecorder, Outcome};
use statistics::Accumulator;
use std::ops::Range;

/// Number of consecutive paths run together (and the width of a batched block).
/// Blocks are aligned: block `j` holds paths `[64 j, 64 (j + 1))` of the ensemble's range.
pub const BLOCK: u64 = 64;

/// The most threads [`Ensemble::threads`] accepts.
pub const MAX_THREADS: usize = 4096;

/// One path's recorded functionals (`times × k`) and final state.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRecord {
    /// The path index.
    pub path: u64,
    /// Row `i` holds the functionals at save time `i`.
    pub values: DMatrix<f64>,
    /// The state at the end of the solve.
    pub final_state: DVector<f64>,
}

/// How an ensemble is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Threads {
    Sequential,
    Current,
    Exactly(usize),
}

/// A callback told the number of paths in each block as the block finishes (from the
/// worker thread that ran it): progress reporting for long runs. Compares equal only to
/// itself (the same `Arc`).
#[derive(Clone)]
pub struct Progress(std::sync::Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

impl PartialEq for Progress {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A master seed, a range of paths (a shard) and how to schedule them.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    seeds: SeedTree,
    paths: Range<u64>,
    threads: Threads,
    progress: Option<Progress>,
    divergence_bound: f64,
}

impl Ensemble {
    /// Paths `paths` of the ensemble rooted at `seed`, run on the current rayon pool (the
    /// global one, or the one a caller `install`ed) when the `parallel` feature is on.
    pub fn new(seed: u64, paths: Range<u64>) -> Self {
        Ensemble {
            seeds: SeedTree::new(seed),
            paths,
            threads: Threads::Current,
            progress: None,
            divergence_bound: DEFAULT_DIVERGENCE_BOUND,
        }
    }

    /// A path diverges when its state or a recorded functional is non-finite or exceeds
    /// `bound` in absolute value ([`crate::observe::out_of_bounds`]); the default is
    /// [`DEFAULT_DIVERGENCE_BOUND`] = 1e100. Diverged paths are counted and left out of
    /// every statistic.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless `0 < bound <= `[`crate::observe::MAX_DIVERGENCE_BOUND`].
    ///
    /// ```
    /// use noether_sde::ensemble::Ensemble;
    /// assert!(Ensemble::new(1, 0..10).with_divergence_bound(1e6).is_ok());
    /// assert!(Ensemble::new(1, 0..10).with_divergence_bound(f64::NAN).is_err());
    /// ```
    pub fn with_divergence_bound(mut self, bound: f64) -> Result<Self> {
        self.divergence_bound = check_divergence_bound(bound)?;
        Ok(self)
    }

    /// The divergence bound.
    pub fn divergence_bound(&self) -> f64 {
        self.divergence_bound
    }

    /// Calls `report(n)` each time a block of `n` paths finishes (e.g. to advance a
    /// progress bar; blocks finish in any order when run in parallel). Results do not
    /// depend on it.
    ///
    /// ```
    /// use noether_sde::ensemble::{Ensemble, SdeProblem};
    /// use noether_sde::prelude::*;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// let gbm = GeometricBrownianMotion::new(0.1, 0.2)?;
    /// let span = TimeSpan::new(0.0, 1.0, 0.1)?;
    /// let problem = SdeProblem::new(&gbm, EulerMaruyama::new(), nalgebra::dvector![1.0], span)?;
    /// let done = Arc::new(AtomicU64::new(0));
    /// let counter = done.clone();
    /// let ensemble = Ensemble::new(1, 0..150).with_progress(move |n| {
    ///     counter.fetch_add(n, Ordering::Relaxed);
    /// });
    /// ensemble.final_states(&problem)?;
    /// assert_eq!(done.load(Ordering::Relaxed), 150);
    /// # Ok::<(), noether_sde::Error>(())
    /// ```
    pub fn with_progress(mut self, report: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.progress = Some(Progress(std::sync::Arc::new(report)));
        self
    }

    fn report(&self, block: &Range<u64>) {
        if let Some(Progress(report)) = &self.progress {
            report(block.end - block.start);
        }
    }

    /// Run on the calling thread only.
    pub fn sequential(mut self) -> Self {
        self.threads = Threads::Sequential;
        self
    }

    /// Run on a dedicated pool of `threads` threads (`0` = rayon's default count; more
    /// than [`MAX_THREADS`] is an error when the ensemble runs).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Threads::Exactly(threads);
        self
    }

    /// The seed tree.
    pub fn seeds(&self) -> &SeedTree {
        &self.seeds
    }

    /// The range of paths.
    pub fn paths(&self) -> Range<u64> {
        self.paths.clone()
    }

    /// `(first aligned block index, number of blocks)` of the range.
    fn blocks(&self) -> (u64, usize) {
        if self.paths.is_empty() {
            return (0, 0);
        }
        let first = self.paths.start / BLOCK;
        let last = (self.paths.end - 1) / BLOCK;
        (first, (last - first + 1) as usize)
    }

    fn block(&self, first: u64, i: usize) -> Range<u64> {
        let j = first + i as u64;
        // saturating: the last aligned block of the u64 range ends at 2^64
        (j * BLOCK).max(self.paths.start)..((j + 1).saturating_mul(BLOCK)).min(self.paths.end)
    }

    /// `wanted` blocks per run, or fewer where that would leave a thread fewer than two
    /// runs (a run is one thread's unit of work, so a 300-path ensemble of 256-path runs
    /// would keep one of two threads idle). The width changes no path's numbers: each
    /// path is advanced on its own, whatever its neighbours (THEORY §8).
    fn run_width(&self, wanted: usize) -> usize {
        let threads = match self.threads {
            Threads::Sequential => 1,
            #[cfg(feature = "parallel")]
            Threads::Current | Threads::Exactly(0) => rayon::current_num_threads(),
            #[cfg(not(feature = "parallel"))]
            Threads::Current | Threads::Exactly(0) => 1,
            Threads::Exactly(n) => n.min(MAX_THREADS),
        };
        let (_, blocks) = self.blocks();
        let mut per = wanted.max(1);
        while per > 1 && blocks.div_ceil(per) < 2 * threads {
            per -= 1;
        }
        per
    }

    /// The number of runs of `per ≥ 1` consecutive aligned blocks in the range, and run
    /// `u`'s paths (the last run may be shorter): what [`EnsembleProblem::run_block`] is
    /// called with.
    fn runs(&self, per: usize) -> (usize, impl Fn(usize) -> Range<u64> + Sync + '_) {
        let (first, count) = self.blocks();
        let run = move |u: usize| {
            let last = ((u + 1) * per).min(count) - 1;
            self.block(first, u * per).start..self.block(first, last).end
        };
        (count.div_ceil(per), run)
    }

    /// Folds `step` over the runs of `per` consecutive aligned blocks in order, with one
    /// workspace per worker, and combines the per-worker results with `append` (which
    /// must be exactly associative).
    fn over_blocks<W, A, MW, MA, ST, AP>(
        &self,
        per: usize,
        make_ws: MW,
        empty: MA,
        step: ST,
        append: AP,
    ) -> Result<A>
    where
        W: Send,
        A: Send,
        MW: Fn() -> W + Sync + Send,
        MA: Fn() -> A + Sync + Send,
        ST: Fn(&mut W, &mut A, Range<u64>) + Sync + Send,
        AP: Fn(A, A) -> A + Sync + Send,
    {
        let (runs, run) = self.runs(per);
        let sequential = || {
            let mut ws = make_ws();
            let mut acc = empty();
            for u in 0..runs {
                let block = run(u);
                step(&mut ws, &mut acc, block.clone());
                self.report(&block);
            }
            acc
        };
        #[cfg(feature = "parallel")]
        {
            use rayon::prelude::*;
            let parallel = || {
                (0..runs)
                    .into_par_iter()
                    .fold(
                        || (make_ws(), empty()),
                        |(mut ws, mut acc), u| {
                            let block = run(u);
                            step(&mut ws, &mut acc, block.clone());
                            self.report(&block);
                            (ws, acc)
                        },
                    )
                    .map(|(_, acc)| acc)
                    .reduce(&empty, &append)
            };
            match self.threads {
                Threads::Sequential => Ok(sequential()),
                Threads::Current => Ok(parallel()),
                Threads::Exactly(n) if n > MAX_THREADS => Err(Error::invalid(
                    "threads",
                    n,
                    format!("at most {MAX_THREADS} threads (each reserves a stack)"),
                )),
                Threads::Exactly(n) => {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .build()
                        .map_err(|e| Error::invalid("threads", n, e.to_string()))?;
                    Ok(pool.install(parallel))
                }
            }
        }
        #[cfg(not(feature = "parallel"))]
        {
            let _ = &append;
            Ok(sequential())
        }
    }

    /// Runs every path of the range, recording `functionals`, and returns their moments
    /// (streaming: per-path values are reduced as soon as their block ends).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if a save time lies outside the problem's time interval;
    /// the first (lowest-index) path's error other than [`Error::Divergence`] (a path that
    /// cannot be run is a bug in the set-up, not a statistic).
    pub fn statistics<P, F>(&self, problem: &P, functionals: &Functionals<F>) -> Result<EnsembleStatistics>
    where
        P: EnsembleProblem,
        F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync,
    {
        functionals.check_span(problem.time_range())?;
        let k = functionals.count;
        let per = self.run_width(problem.blocks_per_run());
        let slots = per * BLOCK as usize;
        let acc = self.over_blocks(
            per,
            || {
                (
                    problem.workspace(),
                    BlockRecorder::with_slots(functionals, false, self.divergence_bound, slots),
                )
            },
            || Accumulator::new(k),
            |(ws, rec), acc, block| {
                rec.reset(block.start);
                let len = (block.end - block.start) as usize;
                problem.run_block(ws, &self.seeds, block, rec);
                acc.record_block(rec, len);
            },
            Accumulator::append,
        )?;
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

    /// Runs every path and returns, in path order, each path's recorded functionals and
    /// final state, or its error (a divergence is `Err(Error::Divergence { .. })`).
    /// Memory is `O(paths × (d + times × k))`: prefer [`Ensemble::statistics`] for large
    /// ensembles.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if a save time lies outside the problem's time interval.
    pub fn per_path<P, F>(&self, problem: &P, functionals: &Functionals<F>) -> Result<Vec<Result<PathRecord>>>
    where
        P: EnsembleProblem,
        F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync,
    {
        functionals.check_span(problem.time_range())?;
        let (rows, k) = (functionals.times.len(), functionals.count);
        let per = self.run_width(problem.blocks_per_run());
        let slots = per * BLOCK as usize;
        self.over_blocks(
            per,
            || {
                (
                    problem.workspace(),
                    BlockRecorder::with_slots(functionals, true, self.divergence_bound, slots),
                )
            },
            Vec::new,
            |(ws, rec), out: &mut Vec<Result<PathRecord>>, block| {
                rec.reset(block.start);
                let len = (block.end - block.start) as usize;
                problem.run_block(ws, &self.seeds, block.clone(), rec);
                for slot in 0..len {
                    let path = block.start + slot as u64;
                    out.push(match &rec.outcomes[slot] {
                        Outcome::Finished => Ok(PathRecord {
                            path,
                            values: DMatrix::from_row_slice(rows, k, rec.slot_values(slot)),
                            final_state: rec
                                .finals
                                .as_ref()
                                .map_or_else(|| DVector::zeros(0), |f| f[slot].clone()),
                        }),
                        Outcome::Diverged { step, t } => Err(Error::Divergence {
                            path,
                            step: *step,
                            t: *t,
                        }),
                        Outcome::Failed(e) => Err(e.clone()),
                        Outcome::Pending => Err(Error::invalid(
                            "problem",
                            path,
                            "the problem did not report this path's end",
                        )),
                    });
                }
            },
            |mut a, mut b| {
                a.append(&mut b);
                a
            },
        )
    }

    /// The final state of every path, in path order (or its error).
    ///
    /// # Errors
    /// As [`Ensemble::per_path`].
    pub fn final_states<P: EnsembleProblem>(&self, problem: &P) -> Result<Vec<Result<DVector<f64>>>> {
        let (_, t1) = problem.time_range();
        let nothing = Functionals::new(vec![t1], 1, |_t: f64, _x: &DVector<f64>, out: &mut [f64]| {
            out[0] = 0.0
        })?;
        Ok(self
            .per_path(problem, &nothing)?
            .into_iter()
            .map(|r| r.map(|rec| rec.final_state))
            .collect())
    }
}
