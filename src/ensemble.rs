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

use crate::brownian::{IncrementStream, LevyArea};
use crate::error::{check_finite, check_vector, Error, Result};
use crate::observe::{earliest, first_non_finite, reached, Flow, Observer};
use crate::rng::{SeedTree, Stream, Xoshiro256PlusPlus};
use crate::scheme::{integrate_with, Scheme, TimeSpan, Workspace};
use crate::sde::Sde;
use crate::sgd::{
    BatchedSgdSde, DiscreteSgd, GeneralizedLinearModel, Model, SgdSde, SgdSdeBlock, SgdWorkspace,
};
use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};
use std::ops::Range;

pub mod lockstep;

/// Number of consecutive paths run together (and the width of a batched block).
/// Blocks are aligned: block `j` holds paths `[64 j, 64 (j + 1))` of the ensemble's range.
pub const BLOCK: u64 = 64;

/// Receives what the paths of a block produce (implemented by the ensemble's recorders).
pub trait PathObserver {
    /// Called at the initial state (step 0) and after every step of path `path`.
    fn observe(&mut self, path: u64, step: usize, t: f64, x: &DVector<f64>);
    /// Called once when path `path` ends, with its final state or why it stopped.
    fn finish(&mut self, path: u64, outcome: Result<&DVector<f64>>);
}

/// One problem whose paths an [`Ensemble`] runs: an SDE with a scheme ([`SdeProblem`]),
/// discrete SGD ([`SgdProblem`]) or the batched SGD-SDE ([`BatchedSgdSdeProblem`]).
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
struct PathAdapter<'o, O> {
    path: u64,
    inner: &'o mut O,
}

impl<O: PathObserver> Observer for PathAdapter<'_, O> {
    #[inline]
    fn observe(&mut self, step: usize, t: f64, x: &DVector<f64>) -> Flow {
        self.inner.observe(self.path, step, t, x);
        Flow::Continue
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
    /// non-finite `t_end`.
    pub fn new(sgd: &'s DiscreteSgd<'a, M>, theta0: DVector<f64>, t_end: f64) -> Result<Self> {
        check_finite("theta0", theta0.as_slice())?;
        if !(t_end.is_finite() && t_end >= 0.0) {
            return Err(Error::invalid("t_end", t_end, "must be finite and >= 0"));
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
/// ([`BatchedSgdSde`]): the same increments as [`SdeProblem`] with [`crate::scheme::EulerMaruyama`]
/// (path `i` from `rng(i, Brownian)`, in [`IncrementStream`]'s order), so the same paths
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
        ws.block.set_columns(slots.clone());
        ws.rngs.fill(None);
        ws.block.state_mut().fill(0.0);
        for p in slots.clone() {
            let path = base + p as u64;
            ws.rngs[p] = Some(seeds.rng(path, Stream::Brownian));
            ws.block.state_mut().set_column(p, &self.x0);
            observer.observe(path, 0, self.span.t0(), &self.x0);
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
                if first_non_finite(&ws.column).is_some() {
                    // retire the path: zero noise and a finite column from now on
                    ws.rngs[p] = None;
                    ws.block.state_mut().column_mut(p).fill(0.0);
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
                observer.observe(path, k + 1, t_next, &ws.column);
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

/// Scalar functionals `f(t, x) ∈ R^k` to record at requested times (the first step at or
/// after each time).
pub struct Functionals<F> {
    times: Vec<f64>,
    /// `earliest(times[i])`: the first step time that records save time `i` (the same
    /// test as [`crate::observe::RecordFunctionals`]), computed once.
    earliest: Vec<f64>,
    count: usize,
    f: F,
}

impl<F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync> Functionals<F> {
    /// Record `count` functionals computed by `f(t, x, out)` at `times` (ascending).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for no times, unsorted or non-finite times, or `count = 0`.
    pub fn new(times: Vec<f64>, count: usize, f: F) -> Result<Self> {
        if times.is_empty() {
            return Err(Error::invalid("times", "[]", "at least one save time is needed"));
        }
        check_finite("times", &times)?;
        if times.windows(2).any(|w| w[1] < w[0]) {
            return Err(Error::invalid("times", format!("{times:?}"), "must be ascending"));
        }
        if count == 0 {
            return Err(Error::invalid("count", 0, "record at least one functional"));
        }
        let earliest = times.iter().map(|&t| earliest(t)).collect();
        Ok(Functionals {
            times,
            earliest,
            count,
            f,
        })
    }

    /// The requested times.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Number of functionals `k`.
    pub fn count(&self) -> usize {
        self.count
    }

    fn check_span(&self, (t0, t1): (f64, f64)) -> Result<()> {
        let first = self.times[0];
        let last = self.times[self.times.len() - 1];
        if first < earliest(t0) || !reached(t1, last) {
            return Err(Error::invalid(
                "times",
                format!("[{first}, {last}]"),
                format!("save times must lie in the solve's interval [{t0}, {t1}]"),
            ));
        }
        Ok(())
    }
}

/// How a path of the current block ended.
#[derive(Debug, Clone)]
enum Outcome {
    Pending,
    Finished,
    Diverged { step: usize, t: f64 },
    Failed(Error),
}

/// Records the functionals of one block's paths (and, on request, their final states).
struct BlockRecorder<'f, F> {
    functionals: &'f Functionals<F>,
    start: u64,
    values: Vec<f64>,
    /// Per slot: the index of the next save time, and the earliest step time that
    /// reaches it (`+∞` once all are recorded), so that a step costs one comparison.
    next: Vec<usize>,
    next_at: Vec<f64>,
    outcomes: Vec<Outcome>,
    finals: Option<Vec<DVector<f64>>>,
}

impl<'f, F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync> BlockRecorder<'f, F> {
    fn new(functionals: &'f Functionals<F>, keep_finals: bool) -> Self {
        Self::with_slots(functionals, keep_finals, BLOCK as usize)
    }

    /// A recorder for blocks of up to `slots` paths (the lockstep driver's wide blocks).
    fn with_slots(functionals: &'f Functionals<F>, keep_finals: bool, slots: usize) -> Self {
        let cells = functionals.times.len() * functionals.count;
        BlockRecorder {
            functionals,
            start: 0,
            values: vec![f64::NAN; slots * cells],
            next: vec![0; slots],
            next_at: vec![functionals.earliest[0]; slots],
            outcomes: vec![Outcome::Pending; slots],
            finals: keep_finals.then(Vec::new),
        }
    }

    fn cells(&self) -> usize {
        self.functionals.times.len() * self.functionals.count
    }

    fn reset(&mut self, start: u64) {
        self.start = start;
        self.values.fill(f64::NAN);
        self.next.fill(0);
        self.next_at.fill(self.functionals.earliest[0]);
        self.outcomes.fill(Outcome::Pending);
        if let Some(finals) = &mut self.finals {
            finals.clear();
        }
    }

    /// Records every save time that `t` reaches (`reached(t, times[i])`), in order.
    #[cold]
    fn record(&mut self, slot: usize, t: f64, x: &DVector<f64>) {
        let earliest = &self.functionals.earliest;
        let k = self.functionals.count;
        let base = slot * earliest.len() * k;
        let next = &mut self.next[slot];
        while *next < earliest.len() && t >= earliest[*next] {
            let at = base + *next * k;
            (self.functionals.f)(t, x, &mut self.values[at..at + k]);
            *next += 1;
        }
        self.next_at[slot] = earliest.get(*next).copied().unwrap_or(f64::INFINITY);
    }

    fn slot_values(&self, slot: usize) -> &[f64] {
        let c = self.cells();
        &self.values[slot * c..(slot + 1) * c]
    }
}

impl<F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync> PathObserver for BlockRecorder<'_, F> {
    #[inline]
    fn observe(&mut self, path: u64, _step: usize, t: f64, x: &DVector<f64>) {
        let slot = (path - self.start) as usize;
        if t >= self.next_at[slot] {
            self.record(slot, t, x);
        }
    }

    fn finish(&mut self, path: u64, outcome: Result<&DVector<f64>>) {
        let slot = (path - self.start) as usize;
        self.outcomes[slot] = match outcome {
            Ok(x) => {
                if let Some(finals) = &mut self.finals {
                    while finals.len() <= slot {
                        finals.push(DVector::zeros(0));
                    }
                    finals[slot] = x.clone();
                }
                Outcome::Finished
            }
            Err(Error::Divergence { step, t, .. }) => Outcome::Diverged { step, t },
            Err(e) => Outcome::Failed(e),
        };
    }
}

/// Moments of `k` functionals at `T` times over the paths of one aligned dyadic range
/// `[start, start + 2^level)`: count, means (`T × k`) and co-moment sums (`T × k × k`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Node {
    start: u64,
    level: u32,
    n: u64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Node {
    /// `self ← self ∪ other` (Chan et al.'s exact pairwise update), per time.
    fn absorb(&mut self, other: &Node, k: usize) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            self.n = other.n;
            self.mean.copy_from_slice(&other.mean);
            self.m2.copy_from_slice(&other.m2);
            return;
        }
        let n = self.n + other.n;
        let w = other.n as f64 / n as f64;
        let cross = self.n as f64 * w;
        for (tau, (mean, om)) in self.mean.chunks_mut(k).zip(other.mean.chunks(k)).enumerate() {
            let m2 = &mut self.m2[tau * k * k..(tau + 1) * k * k];
            let om2 = &other.m2[tau * k * k..(tau + 1) * k * k];
            for a in 0..k {
                let da = om[a] - mean[a];
                for b in 0..k {
                    let db = om[b] - mean[b];
                    m2[a * k + b] += om2[a * k + b] + da * db * cross;
                }
            }
            for a in 0..k {
                mean[a] += (om[a] - mean[a]) * w;
            }
        }
        self.n = n;
    }
}

/// The canonical decomposition of a contiguous range of paths into maximal aligned
/// dyadic nodes, plus divergence bookkeeping; exact to merge.
#[derive(Debug, Clone, Default)]
struct Accumulator {
    nodes: Vec<Node>,
    spare: Vec<Node>,
    divergent: u64,
    first_divergence: Option<(u64, usize, f64)>,
    first_failure: Option<(u64, Error)>,
    k: usize,
}

impl Accumulator {
    fn new(k: usize) -> Self {
        Accumulator {
            k,
            ..Default::default()
        }
    }

    fn leaf(&mut self, path: u64, values: Option<&[f64]>, cells: usize) -> Node {
        let mut node = self.spare.pop().unwrap_or_else(|| Node {
            start: 0,
            level: 0,
            n: 0,
            mean: vec![0.0; cells],
            m2: vec![0.0; cells * self.k],
        });
        node.start = path;
        node.level = 0;
        node.m2.fill(0.0);
        match values {
            Some(v) => {
                node.n = 1;
                node.mean.copy_from_slice(v);
            }
            None => {
                node.n = 0;
                node.mean.fill(0.0);
            }
        }
        node
    }

    /// Appends the node right after the current range, merging complete sibling pairs.
    fn push(&mut self, mut node: Node) {
        while let Some(top) = self.nodes.last() {
            let size = 1u128 << node.level;
            let siblings = top.level == node.level
                && u128::from(top.start) + size == u128::from(node.start)
                && u128::from(top.start) % (2 * size) == 0;
            if !siblings {
                break;
            }
            let mut parent = self.nodes.pop().expect("non-empty");
            parent.absorb(&node, self.k);
            parent.level += 1;
            self.spare.push(node);
            node = parent;
        }
        self.nodes.push(node);
    }

    fn diverged(&mut self, path: u64, step: usize, t: f64) {
        self.divergent += 1;
        if self.first_divergence.is_none_or(|(p, _, _)| path < p) {
            self.first_divergence = Some((path, step, t));
        }
    }

    fn failed(&mut self, path: u64, e: Error) {
        if self.first_failure.as_ref().is_none_or(|(p, _)| path < *p) {
            self.first_failure = Some((path, e));
        }
    }

    /// `self` followed by `later` (the range right after).
    fn append(mut self, later: Accumulator) -> Accumulator {
        self.k = self.k.max(later.k);
        for node in later.nodes {
            self.push(node);
        }
        self.divergent += later.divergent;
        if let Some((p, s, t)) = later.first_divergence {
            if self.first_divergence.is_none_or(|(q, _, _)| p < q) {
                self.first_divergence = Some((p, s, t));
            }
        }
        if let Some((p, e)) = later.first_failure {
            self.failed(p, e);
        }
        self
    }

    /// Pushes the leaves of a finished block, in path order.
    fn record_block<F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync>(
        &mut self,
        rec: &BlockRecorder<'_, F>,
        len: usize,
    ) {
        let cells = rec.cells();
        for slot in 0..len {
            let path = rec.start + slot as u64;
            let leaf = match &rec.outcomes[slot] {
                Outcome::Finished => self.leaf(path, Some(rec.slot_values(slot)), cells),
                Outcome::Diverged { step, t } => {
                    self.diverged(path, *step, *t);
                    self.leaf(path, None, cells)
                }
                Outcome::Failed(e) => {
                    self.failed(path, e.clone());
                    self.leaf(path, None, cells)
                }
                Outcome::Pending => {
                    self.failed(
                        path,
                        Error::invalid("problem", path, "the problem did not report this path's end"),
                    );
                    self.leaf(path, None, cells)
                }
            };
            self.push(leaf);
        }
    }
}

/// Means, variances and covariances of recorded functionals over a range of paths,
/// exactly mergeable with the statistics of the adjacent range (see the module docs).
///
/// Serialisable, so shards run on different machines can be merged later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleStatistics {
    seed: u64,
    paths: Range<u64>,
    times: Vec<f64>,
    count: usize,
    nodes: Vec<Node>,
    total: Node,
    divergent: u64,
    first_divergence: Option<(u64, usize, f64)>,
}

impl EnsembleStatistics {
    fn from_accumulator(
        seed: u64,
        paths: Range<u64>,
        times: Vec<f64>,
        count: usize,
        acc: Accumulator,
    ) -> Self {
        let total = Self::fold(&acc.nodes, times.len() * count, count);
        EnsembleStatistics {
            seed,
            paths,
            times,
            count,
            nodes: acc.nodes,
            total,
            divergent: acc.divergent,
            first_divergence: acc.first_divergence,
        }
    }

    /// Left-to-right fold of the canonical nodes.
    fn fold(nodes: &[Node], cells: usize, k: usize) -> Node {
        let mut total = Node {
            start: nodes.first().map_or(0, |n| n.start),
            level: 0,
            n: 0,
            mean: vec![0.0; cells],
            m2: vec![0.0; cells * k],
        };
        for node in nodes {
            total.absorb(node, k);
        }
        total
    }

    /// The statistics of `self`'s paths followed by `later`'s: bit-identical to running
    /// the union of the two ranges at once.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless `later` starts where `self` ends and both used the
    /// same seed, save times and functionals count.
    pub fn merge(self, later: EnsembleStatistics) -> Result<Self> {
        if later.paths.start != self.paths.end {
            return Err(Error::invalid(
                "paths",
                format!("{:?} then {:?}", self.paths, later.paths),
                "shards must be adjacent and in order",
            ));
        }
        let same_times = self.times.len() == later.times.len()
            && self
                .times
                .iter()
                .zip(&later.times)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if self.seed != later.seed || !same_times || self.count != later.count {
            return Err(Error::invalid(
                "shards",
                format!("seeds {} and {}", self.seed, later.seed),
                "shards must share the seed, the save times and the functionals",
            ));
        }
        let mut acc = Accumulator::new(self.count);
        acc.nodes = self.nodes;
        acc.divergent = self.divergent;
        acc.first_divergence = self.first_divergence;
        let mut other = Accumulator::new(later.count);
        other.nodes = later.nodes;
        other.divergent = later.divergent;
        other.first_divergence = later.first_divergence;
        let acc = acc.append(other);
        Ok(Self::from_accumulator(
            self.seed,
            self.paths.start..later.paths.end,
            self.times,
            self.count,
            acc,
        ))
    }

    /// The range of paths summarised.
    pub fn paths(&self) -> Range<u64> {
        self.paths.clone()
    }

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The requested save times.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Number of functionals `k`.
    pub fn functionals(&self) -> usize {
        self.count
    }

    /// Number of paths in the moments (those that stayed finite).
    pub fn finished(&self) -> u64 {
        self.total.n
    }

    /// Number of paths that stopped being finite (left out of the moments).
    pub fn divergent(&self) -> u64 {
        self.divergent
    }

    /// The [`Error::Divergence`] of the divergent path with the smallest index.
    pub fn first_divergence(&self) -> Option<Error> {
        self.first_divergence
            .map(|(path, step, t)| Error::Divergence { path, step, t })
    }

    /// Mean of functional `j` at save time `time` (NaN without finished paths).
    ///
    /// # Panics
    /// If `time` or `j` is out of range.
    pub fn mean(&self, time: usize, j: usize) -> f64 {
        assert!(time < self.times.len() && j < self.count, "index out of range");
        if self.total.n == 0 {
            f64::NAN
        } else {
            self.total.mean[time * self.count + j]
        }
    }

    /// Unbiased covariance of functionals `a` and `b` at save time `time` (NaN with fewer
    /// than two finished paths).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn covariance(&self, time: usize, a: usize, b: usize) -> f64 {
        let k = self.count;
        assert!(time < self.times.len() && a < k && b < k, "index out of range");
        if self.total.n < 2 {
            return f64::NAN;
        }
        // the co-moment sums are symmetric up to rounding: average the two halves
        let m2 = &self.total.m2[time * k * k..];
        0.5 * (m2[a * k + b] + m2[b * k + a]) / (self.total.n - 1) as f64
    }

    /// Unbiased variance of functional `j` at save time `time`.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn variance(&self, time: usize, j: usize) -> f64 {
        self.covariance(time, j, j)
    }

    /// Standard error of the mean, `sqrt(variance / n)`.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn std_error(&self, time: usize, j: usize) -> f64 {
        (self.variance(time, j) / self.total.n as f64).sqrt()
    }
}

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
        }
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

    /// Run on a dedicated pool of `threads` threads (`0` = rayon's default count).
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
        (j * BLOCK).max(self.paths.start)..((j + 1) * BLOCK).min(self.paths.end)
    }

    /// Folds `step` over the blocks in order, with one workspace per worker, and combines
    /// the per-worker results with `append` (which must be exactly associative).
    fn over_blocks<W, A, MW, MA, ST, AP>(&self, make_ws: MW, empty: MA, step: ST, append: AP) -> Result<A>
    where
        W: Send,
        A: Send,
        MW: Fn() -> W + Sync + Send,
        MA: Fn() -> A + Sync + Send,
        ST: Fn(&mut W, &mut A, Range<u64>) + Sync + Send,
        AP: Fn(A, A) -> A + Sync + Send,
    {
        let (first, count) = self.blocks();
        let sequential = || {
            let mut ws = make_ws();
            let mut acc = empty();
            for i in 0..count {
                let block = self.block(first, i);
                step(&mut ws, &mut acc, block.clone());
                self.report(&block);
            }
            acc
        };
        #[cfg(feature = "parallel")]
        {
            use rayon::prelude::*;
            let parallel = || {
                (0..count)
                    .into_par_iter()
                    .fold(
                        || (make_ws(), empty()),
                        |(mut ws, mut acc), i| {
                            let block = self.block(first, i);
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
        let acc = self.over_blocks(
            || (problem.workspace(), BlockRecorder::new(functionals, false)),
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
        self.over_blocks(
            || (problem.workspace(), BlockRecorder::new(functionals, true)),
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
