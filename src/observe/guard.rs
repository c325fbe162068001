//! Divergence detection: the driver stops a solve at the first non-finite state and
//! reports [`crate::Error::Divergence`] with the path, step and time.

use nalgebra::DVector;

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
