//! SGD and its SDE on the same model and data (THEORY §1).
//!
//! A [`Model`] gives per-sample losses and gradients; data come from a finite
//! [`Dataset`] or a [`Population`] sampler. [`SgdSde`] turns them into the Itô SDE
//! `dθ = −∇L_γ(θ) dt + sqrt(η/B) D(θ) dW` (an [`crate::sde::Sde`], so every scheme and
//! observer works on it), and [`DiscreteSgd`] runs the SGD/GD iteration it approximates
//! on the same model and data, reporting time as `t = Σ_k η_k` so the curves line up.

mod batched;
mod block_gradients;
mod config;
mod data;
mod discrete;
pub mod ensemble;
mod model;
// SIMD tile products behind run-time CPU-feature detection (`crate::simd`): calling a
// `#[target_feature]` function and raw-pointer vector loads need `unsafe`. Each kernel is
// tested bit-for-bit against the portable safe code it replaces.
#[allow(unsafe_code)]
mod packed;
mod scratch;
mod sde;
mod sde_lanes;

pub use batched::{BatchedSgdSde, GeneralizedLinearModel, SgdSdeBlock};
pub use block_gradients::{BlockGradients, BlockMethod, BlockSgdProblem, BlockSgdWorkspace};
pub use config::{ModifiedEquation, Sampling, Schedule, SgdConfig};
pub use data::{Dataset, Population, Sample};
pub use discrete::{Batching, DiscreteSgd, SgdWorkspace};
pub use model::{Model, PopulationBlockForms, PopulationForms};
pub(crate) use scratch::with_flat_scratch;
pub(crate) use sde::check_data_dims;
pub use sde::SgdSde;
pub(crate) use sde_lanes::map_rows;
