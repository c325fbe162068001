//! Recording states and functionals at requested times.

use super::{Flow, Observer};
use nalgebra::{DMatrix, DVector};

/// Relative tolerance for "the step has reached a requested time" (shared with the
/// ensemble's recorders).
pub(crate) const TIME_TOLERANCE: f64 = 1e-9;

/// The earliest step time that counts as having reached `target`.
#[inline]
pub(crate) fn earliest(target: f64) -> f64 {
    target - TIME_TOLERANCE * target.abs().max(1.0)
}

/// Whether a step at time `t` has reached the requested time `target`.
#[inline]
pub(crate) fn reached(t: f64, target: f64) -> bool {
    t >= earliest(target)
}

/// Saves the state at requested times (the first step at or after each time).
///
/// Storage is allocated once, in [`SaveAt::new`].
#[derive(Debug, Clone)]
pub struct SaveAt {
    times: Vec<f64>,
    saved_times: Vec<f64>,
    states: Vec<DVector<f64>>,
    next: usize,
}

impl SaveAt {
    /// Save a `dim`-dimensional state at `times` (sorted ascending).
    pub fn new(times: Vec<f64>, dim: usize) -> Self {
        let n = times.len();
        SaveAt {
            times,
            saved_times: Vec::with_capacity(n),
            states: vec![DVector::zeros(dim); n],
            next: 0,
        }
    }

    /// The requested times.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// The grid times at which states were actually saved.
    pub fn saved_times(&self) -> &[f64] {
        &self.saved_times
    }

    /// The saved states (only the first `saved_times().len()` are filled).
    pub fn states(&self) -> &[DVector<f64>] {
        &self.states[..self.saved_times.len()]
    }
}

impl Observer for SaveAt {
    fn observe(&mut self, _step: usize, t: f64, x: &DVector<f64>) -> Flow {
        while self.next < self.times.len() && reached(t, self.times[self.next]) {
            self.states[self.next].copy_from(x);
            self.saved_times.push(t);
            self.next += 1;
        }
        Flow::Continue
    }
    #[inline]
    fn next_time(&self) -> f64 {
        self.times.get(self.next).map_or(f64::INFINITY, |&t| earliest(t))
    }
}

/// Records `k` scalar functionals `f(t, x) ∈ R^k` at requested times.
///
/// ```
/// use noether_sde::observe::{Observer, RecordFunctionals};
/// use nalgebra::DVector;
/// let mut rec = RecordFunctionals::new(vec![0.0, 1.0], 1, |_t, x: &DVector<f64>, out: &mut [f64]| {
///     out[0] = x.norm_squared();
/// });
/// rec.observe(0, 0.0, &DVector::from_vec(vec![3.0, 4.0]));
/// assert_eq!(rec.values()[(0, 0)], 25.0);
/// ```
#[derive(Debug, Clone)]
pub struct RecordFunctionals<F> {
    times: Vec<f64>,
    values: DMatrix<f64>,
    recorded: usize,
    f: F,
}

impl<F: FnMut(f64, &DVector<f64>, &mut [f64])> RecordFunctionals<F> {
    /// Record `count` functionals computed by `f` at `times` (sorted ascending).
    pub fn new(times: Vec<f64>, count: usize, f: F) -> Self {
        let n = times.len();
        RecordFunctionals {
            times,
            values: DMatrix::from_element(n, count, f64::NAN),
            recorded: 0,
            f,
        }
    }

    /// Recorded values: row `i` holds the functionals at `times[i]` (NaN if not reached).
    pub fn values(&self) -> &DMatrix<f64> {
        &self.values
    }

    /// The requested times.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// How many times have been recorded so far.
    pub fn recorded(&self) -> usize {
        self.recorded
    }
}

impl<F: FnMut(f64, &DVector<f64>, &mut [f64])> Observer for RecordFunctionals<F> {
    fn observe(&mut self, _step: usize, t: f64, x: &DVector<f64>) -> Flow {
        let k = self.values.ncols();
        let mut row = [0.0f64; 16];
        while self.recorded < self.times.len() && reached(t, self.times[self.recorded]) {
            if k <= row.len() {
                (self.f)(t, x, &mut row[..k]);
                for (c, v) in row[..k].iter().enumerate() {
                    self.values[(self.recorded, c)] = *v;
                }
            } else {
                let mut buf = vec![0.0; k];
                (self.f)(t, x, &mut buf);
                for (c, v) in buf.iter().enumerate() {
                    self.values[(self.recorded, c)] = *v;
                }
            }
            self.recorded += 1;
        }
        Flow::Continue
    }
    #[inline]
    fn next_time(&self) -> f64 {
        self.times
            .get(self.recorded)
            .map_or(f64::INFINITY, |&t| earliest(t))
    }
}
