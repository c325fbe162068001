//! Models with closed forms (THEORY §6), one file each.

mod linear_regression;
mod scalar_factorization;

pub use linear_regression::{finite_sde_moments, finite_sgd_moments, LinearRegression, Moments};
pub use scalar_factorization::ScalarFactorization;
