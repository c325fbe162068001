//! The one integration-test binary (faster to link on 2 cores than one per file).

#[macro_use]
mod common;

mod brownian;
mod conformance;
mod convergence;
mod errors;
mod exact;
mod observe;
mod sde;
