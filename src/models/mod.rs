//! Models with closed forms (THEORY §6, §7), one file each.

mod linear_regression;
mod matrix_factorization;
mod normalized_linear;
pub mod routes;
mod scalar_factorization;
pub mod spec;
mod two_layer;

pub use linear_regression::{finite_sde_moments, finite_sgd_moments, LinearRegression, Moments};
pub use matrix_factorization::MatrixFactorization;
pub use normalized_linear::NormalizedLinear;
pub use scalar_factorization::ScalarFactorization;
pub use two_layer::{Activation, TwoLayerNet};
