//! Recording: the functionals to record, and the recorder that stores what one block's
//! paths produce.

use crate::error::{check_finite, Error, Result};
use crate::observe::{earliest, out_of_bounds, reached, Flow};
use nalgebra::DVector;

/// Receives what the paths of a block produce (implemented by the ensemble's recorders).
pub trait PathObserver {
    /// Called at the initial state (step 0) and after every step of path `path`;
    /// [`Flow::Stop`] ends the path (it diverged: the observer has recorded why).
    fn observe(&mut self, path: u64, step: usize, t: f64, x: &DVector<f64>) -> Flow;
    /// The earliest step time at which `observe` must see path `path` next (drivers skip
    /// earlier steps and ask again after each call); default `−∞`, every step.
    #[inline(always)]
    fn next_time(&self, _path: u64) -> f64 {
        f64::NEG_INFINITY
    }
    /// The divergence bound the drivers test the state against, in the same pass as
    /// finiteness ([`crate::observe::out_of_bounds`]): a path whose state leaves it ends
    /// with [`Error::Divergence`]. Default `+∞`.
    #[inline(always)]
    fn divergence_bound(&self) -> f64 {
        f64::INFINITY
    }
    /// Called once when path `path` ends, with its final state or why it stopped (also
    /// after the observer stopped it).
    fn finish(&mut self, path: u64, outcome: Result<&DVector<f64>>);
}

/// Scalar functionals `f(t, x) ∈ R^k` to record at requested times (the first step at or
/// after each time).
pub struct Functionals<F> {
    pub(super) times: Vec<f64>,
    /// `earliest(times[i])`: the first step time that records save time `i` (the same
    /// test as [`crate::observe::RecordFunctionals`]), computed once.
    pub(super) earliest: Vec<f64>,
    pub(super) count: usize,
    pub(super) f: F,
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

    pub(super) fn check_span(&self, (t0, t1): (f64, f64)) -> Result<()> {
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
pub(super) enum Outcome {
    Pending,
    Finished,
    Diverged { step: usize, t: f64 },
    Failed(Error),
}

/// Records the functionals of one block's paths (and, on request, their final states).
pub(super) struct BlockRecorder<'f, F> {
    functionals: &'f Functionals<F>,
    pub(super) start: u64,
    values: Vec<f64>,
    /// Per slot: the index of the next save time, and the earliest step time that
    /// reaches it (`+∞` once all are recorded), so that a step costs one comparison.
    next: Vec<usize>,
    next_at: Vec<f64>,
    pub(super) outcomes: Vec<Outcome>,
    pub(super) finals: Option<Vec<DVector<f64>>>,
    /// The divergence bound (see [`crate::observe::out_of_bounds`]).
    bound: f64,
}

impl<'f, F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync> BlockRecorder<'f, F> {
    /// A recorder for runs of up to `slots` paths ([`crate::ensemble::EnsembleProblem::blocks_per_run`] blocks).
    pub(super) fn with_slots(
        functionals: &'f Functionals<F>,
        keep_finals: bool,
        bound: f64,
        slots: usize,
    ) -> Self {
        let cells = functionals.times.len() * functionals.count;
        BlockRecorder {
            functionals,
            start: 0,
            values: vec![f64::NAN; slots * cells],
            next: vec![0; slots],
            next_at: vec![functionals.earliest[0]; slots],
            outcomes: vec![Outcome::Pending; slots],
            finals: keep_finals.then(Vec::new),
            bound,
        }
    }

    pub(super) fn cells(&self) -> usize {
        self.functionals.times.len() * self.functionals.count
    }

    pub(super) fn reset(&mut self, start: u64) {
        self.start = start;
        self.values.fill(f64::NAN);
        self.next.fill(0);
        self.next_at.fill(self.functionals.earliest[0]);
        self.outcomes.fill(Outcome::Pending);
        if let Some(finals) = &mut self.finals {
            finals.clear();
        }
    }

    /// Records every save time that `t` reaches (`reached(t, times[i])`), in order;
    /// `false` if a recorded value is out of bounds (the path diverged).
    fn record(&mut self, slot: usize, t: f64, x: &DVector<f64>) -> bool {
        let earliest = &self.functionals.earliest;
        let k = self.functionals.count;
        let base = slot * earliest.len() * k;
        let next = &mut self.next[slot];
        let mut fine = true;
        while *next < earliest.len() && t >= earliest[*next] {
            let at = base + *next * k;
            let out = &mut self.values[at..at + k];
            (self.functionals.f)(t, x, out);
            fine &= !out_of_bounds(out, self.bound);
            *next += 1;
        }
        self.next_at[slot] = earliest.get(*next).copied().unwrap_or(f64::INFINITY);
        fine
    }

    pub(super) fn slot_values(&self, slot: usize) -> &[f64] {
        let c = self.cells();
        &self.values[slot * c..(slot + 1) * c]
    }
}

impl<F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync> PathObserver for BlockRecorder<'_, F> {
    // called only at steps that reach a save time (`next_time`); the drivers test the
    // state against the bound at every step
    fn observe(&mut self, path: u64, step: usize, t: f64, x: &DVector<f64>) -> Flow {
        let slot = (path - self.start) as usize;
        if t >= self.next_at[slot] && !self.record(slot, t, x) {
            self.outcomes[slot] = Outcome::Diverged { step, t };
            return Flow::Stop;
        }
        Flow::Continue
    }

    #[inline(always)]
    fn next_time(&self, path: u64) -> f64 {
        self.next_at[(path - self.start) as usize]
    }

    #[inline(always)]
    fn divergence_bound(&self) -> f64 {
        self.bound
    }

    fn finish(&mut self, path: u64, outcome: Result<&DVector<f64>>) {
        let slot = (path - self.start) as usize;
        if matches!(self.outcomes[slot], Outcome::Diverged { .. }) {
            return; // stopped by `observe`: the divergence stands
        }
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
