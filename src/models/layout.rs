//! The two-layer parameter layout shared by matrix factorisation and the two-layer
//! networks: `θ = [vec U; vec W]`, column-major, `U` is `d_out × h`, `W` is `h × d_in`
//! (the layout of [`crate::symmetry::ExponentialSymmetry::matrix_factorization`]).

use nalgebra::{DMatrix, DVector};

/// Packs `U` and `W` into `θ`.
pub(crate) fn pack(u: &DMatrix<f64>, w: &DMatrix<f64>) -> DVector<f64> {
    DVector::from_iterator(u.len() + w.len(), u.iter().chain(w.iter()).copied())
}

/// Splits `θ` into `(U, W)` for the shape `(d_in, hidden, d_out)`.
pub(crate) fn unpack(
    theta: &DVector<f64>,
    (d_in, hidden, d_out): (usize, usize, usize),
) -> (DMatrix<f64>, DMatrix<f64>) {
    let nu = d_out * hidden;
    (
        DMatrix::from_column_slice(d_out, hidden, &theta.as_slice()[..nu]),
        DMatrix::from_column_slice(hidden, d_in, &theta.as_slice()[nu..]),
    )
}
