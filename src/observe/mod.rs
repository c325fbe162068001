//! Observers: what a solve records, called at the initial state and after every step.
//!
//! An [`Observer`] sees `(step, t, x)` and returns a [`Flow`]; observers compose as
//! tuples and can be thinned with [`Every`]. Recording functionals instead of whole
//! states keeps memory at `O(saved times × functionals)`.

mod guard;
mod moments;
mod record;

pub use guard::{
    check_divergence_bound, first_non_finite, out_of_bounds, DEFAULT_DIVERGENCE_BOUND, MAX_DIVERGENCE_BOUND,
};
pub(crate) use moments::merge_moments;
pub use moments::{TimeAverage, VectorMoments, Welford};
pub(crate) use record::{earliest, reached};
pub use record::{RecordFunctionals, SaveAt};

use nalgebra::DVector;

/// Whether the solve should go on after an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep stepping.
    Continue,
    /// Stop the solve now (the current state is returned).
    Stop,
}

/// Something that watches a solve.
pub trait Observer {
    /// Called with step 0 at the initial state, then after each step `k ≥ 1` whose time
    /// reaches [`Observer::next_time`].
    fn observe(&mut self, step: usize, t: f64, x: &DVector<f64>) -> Flow;

    /// The earliest step time at which the observer needs to see the state next: drivers
    /// skip [`Observer::observe`] at earlier steps and ask again after each call. The
    /// default, `−∞`, asks for every step.
    #[inline(always)]
    fn next_time(&self) -> f64 {
        f64::NEG_INFINITY
    }

    /// The divergence bound: the driver ends the solve with [`crate::Error::Divergence`]
    /// as soon as the state is non-finite or exceeds it in absolute value
    /// ([`out_of_bounds`]), in the same pass as its finiteness test. The default, `+∞`,
    /// stops only non-finite states.
    #[inline(always)]
    fn divergence_bound(&self) -> f64 {
        f64::INFINITY
    }
}

impl Observer for () {
    fn observe(&mut self, _step: usize, _t: f64, _x: &DVector<f64>) -> Flow {
        Flow::Continue
    }
}

impl<O: Observer + ?Sized> Observer for &mut O {
    fn observe(&mut self, step: usize, t: f64, x: &DVector<f64>) -> Flow {
        (**self).observe(step, t, x)
    }
    #[inline(always)]
    fn next_time(&self) -> f64 {
        (**self).next_time()
    }
    #[inline(always)]
    fn divergence_bound(&self) -> f64 {
        (**self).divergence_bound()
    }
}

impl<A: Observer, B: Observer> Observer for (A, B) {
    fn observe(&mut self, step: usize, t: f64, x: &DVector<f64>) -> Flow {
        let a = self.0.observe(step, t, x);
        let b = self.1.observe(step, t, x);
        if a == Flow::Stop || b == Flow::Stop {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
    fn next_time(&self) -> f64 {
        self.0.next_time().min(self.1.next_time())
    }
    fn divergence_bound(&self) -> f64 {
        self.0.divergence_bound().min(self.1.divergence_bound())
    }
}

impl<A: Observer, B: Observer, C: Observer> Observer for (A, B, C) {
    fn observe(&mut self, step: usize, t: f64, x: &DVector<f64>) -> Flow {
        let ab = (&mut self.0, &mut self.1).observe(step, t, x);
        let c = self.2.observe(step, t, x);
        if ab == Flow::Stop || c == Flow::Stop {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
    fn next_time(&self) -> f64 {
        self.0.next_time().min(self.1.next_time()).min(self.2.next_time())
    }
    fn divergence_bound(&self) -> f64 {
        (self.0.divergence_bound().min(self.1.divergence_bound())).min(self.2.divergence_bound())
    }
}

/// Passes every `n`-th step (0, n, 2n, …) to the inner observer.
#[derive(Debug, Clone)]
pub struct Every<O> {
    n: usize,
    /// The thinned observer.
    pub inner: O,
}

impl<O> Every<O> {
    /// Observe steps that are multiples of `n` (`n = 0` is treated as 1).
    pub fn new(n: usize, inner: O) -> Self {
        Every { n: n.max(1), inner }
    }
}

impl<O: Observer> Observer for Every<O> {
    fn observe(&mut self, step: usize, t: f64, x: &DVector<f64>) -> Flow {
        if step.is_multiple_of(self.n) {
            self.inner.observe(step, t, x)
        } else {
            Flow::Continue
        }
    }
    fn divergence_bound(&self) -> f64 {
        self.inner.divergence_bound()
    }
}
