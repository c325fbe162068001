//! Per-thread scratch vectors for the SGD-SDE's coefficient evaluations.
//!
//! [`crate::sde::Sde`] methods take `&self` (the SDE is shared by all threads of an
//! ensemble), so the per-sample gradient buffers live in a thread-local pool: sized on
//! first use, then reused without allocation.

use nalgebra::DVector;
use std::cell::RefCell;

thread_local! {
    static POOL: RefCell<Vec<DVector<f64>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `count` zeroed-length-`dim` scratch vectors (contents unspecified).
///
/// Not re-entrant: `f` must not call `with_scratch` again.
pub(crate) fn with_scratch<R>(dim: usize, count: usize, f: impl FnOnce(&mut [DVector<f64>]) -> R) -> R {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < count {
            pool.resize_with(count, || DVector::zeros(dim));
        }
        for v in pool.iter_mut().take(count) {
            if v.len() != dim {
                *v = DVector::zeros(dim);
            }
        }
        f(&mut pool[..count])
    })
}

thread_local! {
    static FLAT: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a scratch slice of `len` values (contents unspecified), from a per-thread
/// buffer that grows on first use and is then reused without allocation. Re-entrant: a
/// nested call (the buffer already in use) gets a fresh allocation instead.
pub(crate) fn with_flat_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    FLAT.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}
