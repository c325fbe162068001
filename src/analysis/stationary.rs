//! Stationary covariances of linearised SGD and of its SDE near a minimum (THEORY §8).
//!
//! For a quadratic risk with Hessian `H` and constant noise `Q = (η/B)Σ`:
//!
//! ```text
//! SDE (Ornstein–Uhlenbeck):   H P + P H = Q
//! discrete SGD:               H P + P H − η H P H = Q
//! ```
//!
//! Both are solved in the eigenbasis of the symmetric `H = U diag(λ) Uᵀ`:
//! `P̃_ij = Q̃_ij / (λ_i + λ_j − η λ_i λ_j)` (`η = 0` for the SDE).

use crate::error::{Error, Result};
use nalgebra::{DMatrix, SymmetricEigen};

/// Solves `HP + PH − η HPH = Q` for symmetric `H`, `Q` (`eta = 0`: the continuous
/// Lyapunov equation).
///
/// # Errors
/// [`Error::DimensionMismatch`] for non-square or mismatched matrices;
/// [`Error::InvalidParameter`] if some `λ_i + λ_j − ηλ_iλ_j ≤ 0` (no stationary law:
/// `H` not positive definite, or `η` beyond the stability limit `2/λ_max`).
///
/// ```
/// use nalgebra::DMatrix;
/// use noether_sde::analysis::stationary::stationary_covariance;
/// let h = DMatrix::from_diagonal_element(1, 1, 2.0);
/// let q = DMatrix::from_diagonal_element(1, 1, 1.0);
/// let p = stationary_covariance(&h, &q, 0.0).unwrap();
/// assert!((p[(0, 0)] - 0.25).abs() < 1e-15);
/// ```
pub fn stationary_covariance(h: &DMatrix<f64>, q: &DMatrix<f64>, eta: f64) -> Result<DMatrix<f64>> {
    let d = h.nrows();
    if h.ncols() != d || q.nrows() != d || q.ncols() != d {
        return Err(Error::DimensionMismatch {
            what: "Lyapunov matrices",
            expected: d,
            got: if h.ncols() != d { h.ncols() } else { q.nrows() },
        });
    }
    let eig = SymmetricEigen::new(h.clone());
    let u = &eig.eigenvectors;
    let lambda = &eig.eigenvalues;
    let mut qt = u.transpose() * q * u;
    for i in 0..d {
        for j in 0..d {
            let denom = lambda[i] + lambda[j] - eta * lambda[i] * lambda[j];
            if denom.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return Err(Error::invalid(
                    "eta",
                    eta,
                    format!(
                        "no stationary covariance: λ_i + λ_j − ηλ_iλ_j = {denom} for eigenvalues {} and {}",
                        lambda[i], lambda[j]
                    ),
                ));
            }
            qt[(i, j)] /= denom;
        }
    }
    Ok(u * qt * u.transpose())
}
