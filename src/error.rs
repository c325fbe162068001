//! The crate's one error type.
//!
//! Invalid input is reported once, at the API boundary, with the offending name and
//! value; a state that stops being finite during a solve is reported as
//! [`Error::Divergence`] with the path, step and time where it happened.

use crate::sde::{Calculus, Noise};

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in `noether_sde`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is outside its domain (e.g. `h <= 0`, `t1 < t0`, zero paths).
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// The offending value, formatted.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A vector or matrix has the wrong size.
    #[error("dimension mismatch for `{what}`: expected {expected}, got {got}")]
    DimensionMismatch {
        /// What was being checked.
        what: &'static str,
        /// Expected size.
        expected: usize,
        /// Size that was given.
        got: usize,
    },
    /// An input contains NaN or an infinity.
    #[error("non-finite value in `{what}` at index {index}: {value}")]
    NonFinite {
        /// What was being checked.
        what: &'static str,
        /// Index of the first non-finite entry.
        index: usize,
        /// The entry itself.
        value: f64,
    },
    /// The path diverged: its state (or, in an ensemble, a recorded observable) became
    /// non-finite or left the divergence bound
    /// ([`crate::observe::DEFAULT_DIVERGENCE_BOUND`] unless set otherwise).
    #[error("divergence on path {path} at step {step} (t = {t}): the state or a recorded observable is no longer finite or exceeds the divergence bound")]
    Divergence {
        /// Index of the path in its ensemble (0 for a single solve).
        path: u64,
        /// Number of the step that produced the non-finite state (1-based).
        step: usize,
        /// Time at the end of that step.
        t: f64,
    },
    /// A scheme was asked to solve an SDE whose declared structure it cannot handle.
    #[error("scheme `{scheme}` cannot solve this SDE: {reason}")]
    Incompatible {
        /// Name of the scheme (or of the wrapper / route that refused).
        scheme: &'static str,
        /// What does not match.
        reason: IncompatibleReason,
    },
    /// A matrix that must be symmetric (a symmetry generator) is not.
    #[error("`{what}` is not symmetric: max |A − Aᵀ| = {max_asymmetry:e}")]
    NotSymmetric {
        /// What was being checked.
        what: &'static str,
        /// Largest entry of `|A − Aᵀ|`.
        max_asymmetry: f64,
    },
    /// The Noether flow has no fixed point along the orbit (THEORY §4).
    #[error("no fixed point of the Noether flow: {reason}")]
    NoFixedPoint {
        /// Why (e.g. gradient noise in only one eigenspace of A and no weight decay).
        reason: String,
    },
    /// Reading or writing a file failed (the message is the operating system's).
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: String,
        /// What went wrong, e.g. `Permission denied (os error 13)`.
        message: String,
    },
    /// A Brownian path cannot deliver the requested increment.
    #[error("Brownian path: {reason}")]
    Brownian {
        /// What went wrong.
        reason: String,
    },
}

/// Why a scheme (or a route) cannot solve an SDE: the reason of [`Error::Incompatible`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IncompatibleReason {
    /// The scheme solves equations in one calculus and the SDE is declared in the other.
    #[error("it solves {solves:?} SDEs but this SDE is {sde:?}")]
    Calculus {
        /// The scheme's calculus.
        solves: Calculus,
        /// The SDE's declared calculus.
        sde: Calculus,
    },
    /// The scheme does not accept the SDE's declared noise kind.
    #[error("it does not accept {} noise", noise.name())]
    NoiseKind {
        /// The SDE's declared noise.
        noise: Noise,
    },
    /// General noise needs Lévy areas that the source of increments does not provide
    /// (a Brownian path built without them; lockstep steps on caller-given increments
    /// without areas. The lockstep driver itself draws them: each path from its own
    /// `Levy` stream, as per path).
    #[error("general noise needs Lévy areas, and {provider} provides none")]
    NeedsLevyArea {
        /// What lacks them ("the Brownian path", "step_on_increments …").
        provider: &'static str,
    },
    /// The scheme reads the time integrals `I_(j,0)` and the source provides none.
    #[error(
        "it reads the time integrals I_(j,0), and {provider} provides none \
         (IncrementStream::with_space_time_area, BrownianGrid::with_space_time_area)"
    )]
    NeedsTimeIntegral {
        /// What lacks them ("the Brownian path", "the increment").
        provider: &'static str,
    },
    /// More Brownian motions than the scheme handles.
    #[error("at most {max} noises (this SDE has {noise_dim})")]
    TooManyNoises {
        /// The scheme's limit.
        max: usize,
        /// The SDE's `m`.
        noise_dim: usize,
    },
    /// Outside what the lockstep Milstein solves: scalar (`m = 1`) and diagonal noise with
    /// a `milstein_block`, and additive noise.
    #[error(
        "the lockstep Milstein solves scalar (m = 1) and diagonal noise with a \
         milstein_block, and additive noise; this SDE has {noise:?} noise, d = {dim}, \
         m = {noise_dim}{}",
        if *milstein_block { "" } else { ", no milstein_block" }
    )]
    LockstepMilstein {
        /// The SDE's noise.
        noise: Noise,
        /// The SDE's `d`.
        dim: usize,
        /// The SDE's `m`.
        noise_dim: usize,
        /// Whether the SDE provides a Milstein block.
        milstein_block: bool,
    },
    /// A Stratonovich conversion was asked of an SDE that is already Stratonovich.
    #[error("the wrapped SDE is already Stratonovich")]
    AlreadyStratonovich,
    /// The second-order modified equation needs Hessian-vector products the model lacks.
    #[error("a block-gradient model has no Hessian-vector products for the second-order equation")]
    NeedsHessianVectorProduct,
    /// The batched SGD-SDE step needs an SDE built from a finite data set.
    #[error("the batched step needs a finite data set")]
    NeedsFiniteData,
    /// The batched SGD-SDE step implements the first-order modified equation only.
    #[error("the batched step implements the first-order equation only")]
    FirstOrderOnly,
    /// The batched SGD-SDE step needs scalar targets.
    #[error("the batched step needs scalar targets")]
    NeedsScalarTargets,
    /// The SGD-SDE route has no block forms for the lockstep driver.
    #[error(
        "this SGD-SDE has no block forms (a finite data set, the second-order equation or a \
         model without PopulationForms::block_forms)"
    )]
    NoBlockForms,
    /// A Stratonovich scheme on an Itô SGD-SDE with too many noise columns to convert.
    #[error(
        "solves {calculus:?} SDEs, and the conversion of this Itô SGD-SDE needs one directional \
         derivative per noise column ({noise_dim}, one per sample); use an Itô scheme such as \
         euler_maruyama, or n=0 where the model has closed forms"
    )]
    ConversionTooCostly {
        /// The scheme's calculus.
        calculus: Calculus,
        /// The SDE's `m`.
        noise_dim: usize,
    },
    /// Lévy areas of too many noise columns (their cost grows as `m⁴` per step).
    #[error(
        "needs Lévy areas of all {noise_dim} noise columns (cost ∝ m⁴ per step, at most {max} \
         here); use euler_maruyama (or a model with fewer noise columns: a finite data set has \
         one per sample)"
    )]
    TooManyLevyAreas {
        /// The route's limit.
        max: usize,
        /// The SDE's `m`.
        noise_dim: usize,
    },
    /// An SGD-SDE's incompatibility, with the schemes of the catalogue that accept its
    /// noise.
    #[error(
        "{reason} (this SGD-SDE's noise is {}, as is every finite-data SGD-SDE's unless noted; \
         schemes that accept it: {}; scalar_factorization with n=0 has scalar noise)",
        noise.name(),
        accepting.join(", ")
    )]
    SgdSdeNoise {
        /// Why the scheme cannot solve it.
        reason: Box<IncompatibleReason>,
        /// The SGD-SDE's noise.
        noise: Noise,
        /// The schemes that accept this noise.
        accepting: Vec<&'static str>,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub fn invalid(name: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

impl Error {
    /// An [`Error::Io`] for `path` from an operating-system error.
    pub fn io(path: &std::path::Path, e: &std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

/// Checks that `v` has length `expected` and only finite entries.
///
/// # Errors
/// [`Error::DimensionMismatch`] or [`Error::NonFinite`], naming `what`.
pub fn check_vector(what: &'static str, v: &nalgebra::DVector<f64>, expected: usize) -> Result<()> {
    if v.len() != expected {
        return Err(Error::DimensionMismatch {
            what,
            expected,
            got: v.len(),
        });
    }
    check_finite(what, v.as_slice())
}

/// Checks that every entry of `values` is finite.
///
/// # Errors
/// [`Error::NonFinite`] naming `what` and the first offending index.
pub fn check_finite(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::NonFinite {
            what,
            index,
            value: values[index],
        }),
    }
}

/// Checks that a scalar parameter is finite and strictly positive.
///
/// # Errors
/// [`Error::InvalidParameter`] naming `name`.
pub fn check_positive(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(name, value, "must be finite and > 0"))
    }
}
