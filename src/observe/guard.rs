//! Divergence detection: the driver stops a solve at the first non-finite state and
//! reports [`crate::Error::Divergence`] with the path, step and time; an ensemble also
//! stops a path whose state or recorded observables leave a bound ([`out_of_bounds`]).
//!
//! # Divergence, defined once
//!
//! In an ensemble a path *diverges* at the first step where its state `x`, or a value of a
//! recorded functional, is non-finite or exceeds the divergence bound `B` in absolute
//! value (the maximum norm, `max_i |x_i| > B`). `B` defaults to
//! [`DEFAULT_DIVERGENCE_BOUND`] = 1e100 and may be set in `(0, `[`MAX_DIVERGENCE_BOUND`]`]`.
//! A diverged path is counted, the first one is kept (path, step, time) and it is left out
//! of every statistic.

use nalgebra::DVector;

/// The default divergence bound: a path whose state or recorded observables exceed
/// 1e100 in absolute value has diverged.
pub const DEFAULT_DIVERGENCE_BOUND: f64 = 1e100;

/// The largest divergence bound accepted: with every value at most `1e140` in absolute
/// value, the co-moment sums of up to `2^64` paths (`≤ n (2B)²`) stay finite.
pub const MAX_DIVERGENCE_BOUND: f64 = 1e140;

/// Whether some entry of `x` is NaN, infinite or larger than `bound` in absolute value.
///
/// ```
/// use noether_sde::observe::out_of_bounds;
/// assert!(!out_of_bounds(&[1.0, -2.0], 2.0));
/// assert!(out_of_bounds(&[1.0, -2.5], 2.0));
/// assert!(out_of_bounds(&[f64::NAN], 2.0));
/// assert!(out_of_bounds(&[f64::NEG_INFINITY], 2.0));
/// ```
#[inline]
pub fn out_of_bounds(x: &[f64], bound: f64) -> bool {
    // one branch-free pass: the largest |x_i| (NaN ignored by max) and a NaN detector
    let (largest, nan) = x
        .iter()
        .fold((0.0f64, 0.0f64), |(m, s), v| (m.max(v.abs()), s + 0.0 * v));
    nan.is_nan() || largest > bound
}

/// Checks a divergence bound: finite, `> 0` and at most [`MAX_DIVERGENCE_BOUND`].
///
/// # Errors
/// [`crate::Error::InvalidParameter`] (`divergence_bound`) otherwise.
pub fn check_divergence_bound(bound: f64) -> crate::Result<f64> {
    if bound.is_finite() && bound > 0.0 && bound <= MAX_DIVERGENCE_BOUND {
        Ok(bound)
    } else {
        Err(crate::Error::invalid(
            "divergence_bound",
            bound,
            format!("must be finite, > 0 and at most {MAX_DIVERGENCE_BOUND:e}"),
        ))
    }
}

/// Index of the first NaN or infinite entry of `x`, if any.
#[inline]
pub fn first_non_finite(x: &DVector<f64>) -> Option<usize> {
    // `0 · v` is 0 for finite v and NaN otherwise: one branch-free pass that the
    // compiler vectorises; the position is only searched for when something is wrong.
    let x = x.as_slice();
    if x.iter().fold(0.0, |acc, v| acc + 0.0 * v).is_nan() {
        x.iter().position(|v| !v.is_finite())
    } else {
        None
    }
}
