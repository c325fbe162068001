//! Turning recordings into numbers with error bars: convergence orders (THEORY §8).

pub mod convergence;
pub mod regression;
