#![doc = include_str!("../README.md")]
// `deny`, not `forbid`: `unsafe` is allowed per kernel, in three modules only — `simd`
// (instruction-set dispatch), `rng::normal_simd` (the lane ziggurat) and `sgd::packed`
// (tile products) — each block with a `// SAFETY:` comment and each kernel tested
// bit-for-bit against the portable path.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::float_cmp)]

pub mod analysis;
pub mod brownian;
pub mod ensemble;
pub mod error;
pub mod models;
pub mod observe;
pub mod report;
pub mod rng;
pub mod scheme;
pub mod sde;
pub mod sgd;
#[allow(unsafe_code)]
pub(crate) mod simd;
pub mod symmetry;

pub use error::{Error, IncompatibleReason, Result};

/// The user guide (`docs/GUIDE.md`): your own `Sde`, your own `Model` with SGD and its
/// SDE, choosing a scheme, reading the report. Its code blocks run as doc tests. The
/// science it cites is `docs/THEORY.md` ("THEORY §N").
#[doc = include_str!("../docs/GUIDE.md")]
pub mod guide {}

/// The names most programs need, in one import: `use noether_sde::prelude::*;`.
pub mod prelude {
    pub use crate::brownian::{
        BrownianGrid, BrownianPath, BrownianTree, Increment, IncrementStream, LevyArea, LevyMethod,
    };
    pub use crate::ensemble::{Ensemble, EnsembleStatistics, Functionals, SdeProblem};
    pub use crate::error::{Error, Result};
    pub use crate::observe::{Every, Flow, Observer, RecordFunctionals, SaveAt, TimeAverage, Welford};
    pub use crate::rng::{SeedTree, Stream};
    pub use crate::scheme::{
        integrate, EulerMaruyama, Heun, Milstein, MilsteinLevy, RkMilstein, Scheme, TimeSpan,
    };
    pub use crate::sde::reference::{GeometricBrownianMotion, LinearSde, NonCommutative, OrnsteinUhlenbeck};
    pub use crate::sde::{Calculus, Noise, Sde, SdeExt, Structure};
    pub use crate::symmetry::{ExponentialSymmetry, Symmetric};
}
