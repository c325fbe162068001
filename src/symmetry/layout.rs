//! The two-layer parameter layout, defined once: `θ = [vec U; vec W]`, column-major,
//! `U` is `d_out × h`, `W` is `h × d_in` (THEORY §2, §6). Matrix factorisation and the
//! two-layer networks pack and unpack their parameters with it, and the
//! matrix-factorisation generator ([`super::ExponentialSymmetry::matrix_factorization`])
//! indexes its entries with it.

use nalgebra::{DMatrix, DVector};

/// The shape `(d_in, hidden, d_out)` of a two-layer model `U W` (or `U φ(W x)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwoLayerLayout {
    /// Input dimension (columns of `W`).
    pub d_in: usize,
    /// Hidden width (columns of `U`, rows of `W`).
    pub hidden: usize,
    /// Output dimension (rows of `U`).
    pub d_out: usize,
}

impl TwoLayerLayout {
    /// The layout of shape `(d_in, hidden, d_out)`.
    pub fn new((d_in, hidden, d_out): (usize, usize, usize)) -> Self {
        TwoLayerLayout { d_in, hidden, d_out }
    }

    /// Number of entries of `U`.
    pub fn u_len(&self) -> usize {
        self.d_out * self.hidden
    }

    /// Parameter dimension `d = d_out·h + h·d_in`.
    pub fn dim(&self) -> usize {
        self.u_len() + self.hidden * self.d_in
    }

    /// Index of `U[r, k]` in `θ`.
    pub fn u_index(&self, r: usize, k: usize) -> usize {
        k * self.d_out + r
    }

    /// Index of `W[k, c]` in `θ`.
    pub fn w_index(&self, k: usize, c: usize) -> usize {
        self.u_len() + c * self.hidden + k
    }

    /// Packs `U` and `W` into `θ`.
    pub fn pack(&self, u: &DMatrix<f64>, w: &DMatrix<f64>) -> DVector<f64> {
        DVector::from_iterator(u.len() + w.len(), u.iter().chain(w.iter()).copied())
    }

    /// Splits `θ` into `(U, W)`.
    pub fn unpack(&self, theta: &DVector<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        let nu = self.u_len();
        (
            DMatrix::from_column_slice(self.d_out, self.hidden, &theta.as_slice()[..nu]),
            DMatrix::from_column_slice(self.hidden, self.d_in, &theta.as_slice()[nu..]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_agree_with_pack() {
        let layout = TwoLayerLayout::new((3, 2, 4));
        let u = DMatrix::from_fn(4, 2, |r, k| (10 * r + k) as f64);
        let w = DMatrix::from_fn(2, 3, |k, c| (100 + 10 * k + c) as f64);
        let theta = layout.pack(&u, &w);
        assert_eq!(theta.len(), layout.dim());
        for r in 0..4 {
            for k in 0..2 {
                assert_eq!(theta[layout.u_index(r, k)].to_bits(), u[(r, k)].to_bits());
            }
        }
        for k in 0..2 {
            for c in 0..3 {
                assert_eq!(theta[layout.w_index(k, c)].to_bits(), w[(k, c)].to_bits());
            }
        }
        assert_eq!(layout.unpack(&theta), (u, w));
    }
}
