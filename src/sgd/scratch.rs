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

/// Runs `f` with `count` length-`dim` scratch vectors (contents unspecified). Re-entrant:
/// a nested call (the pool already in use, e.g. from a model's own code) gets fresh
/// vectors instead of panicking.
pub(crate) fn with_scratch<R>(dim: usize, count: usize, f: impl FnOnce(&mut [DVector<f64>]) -> R) -> R {
    POOL.with(|cell| match cell.try_borrow_mut() {
        Ok(mut pool) => {
            if pool.len() < count {
                pool.resize_with(count, || DVector::zeros(dim));
            }
            for v in pool.iter_mut().take(count) {
                if v.len() != dim {
                    *v = DVector::zeros(dim);
                }
            }
            f(&mut pool[..count])
        }
        Err(_) => f(&mut vec![DVector::zeros(dim); count]),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_scratch_calls_get_their_own_buffers() {
        let total = with_scratch(3, 2, |outer| {
            outer[0].fill(1.0);
            let inner = with_scratch(3, 1, |inner| {
                inner[0].fill(2.0);
                inner[0].sum()
            });
            let flat = with_flat_scratch(4, |a| {
                a.fill(0.5);
                with_flat_scratch(2, |b| {
                    b.fill(1.0);
                    a.iter().sum::<f64>() + b.iter().sum::<f64>()
                })
            });
            outer[0].sum() + inner + flat
        });
        assert!((total - (3.0 + 6.0 + 4.0)).abs() < 1e-12);
    }
}
