//! Turning recordings into numbers with error bars: convergence orders (THEORY §8),
//! SGD-vs-SDE weak orders (THEORY §1) and stationary covariances.

pub mod convergence;
pub mod fixed_points;
pub mod modified_equation;
pub mod regression;
pub mod sharpness;
pub mod stationary;
pub mod stats;
pub mod timescales;
pub mod warmup;
