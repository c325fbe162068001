//! The one integration-test binary (faster to link on 2 cores than one per file).

// Index loops over matrix entries read like the formulas they check.
#![allow(clippy::needless_range_loop)]

#[macro_use]
mod common;

mod adaptive;
mod block_gradients;
mod brownian;
mod cli;
mod cli_convergence;
mod cli_merge;
mod cli_research;
mod conformance;
mod convergence;
mod convergence_lockstep;
mod docs;
mod ensemble;
mod errors;
mod exact;
mod fuzz;
mod model_spec;
mod observe;
mod population_lanes;
mod report_output;
mod sde;
mod sgd;
mod sharpness;
mod stats;
mod strong15;
mod symmetry;
mod timescales;
mod warmup;
mod weak;
mod weak_block;
mod work_precision;
