//! The library's [`Error`] as Python exceptions: `NoetherError(ValueError)` and one
//! subclass per variant, carrying the library's message.

use noether_sde::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    noether_sde,
    NoetherError,
    PyValueError,
    "Any error reported by the noether-sde library."
);
create_exception!(
    noether_sde,
    InvalidParameter,
    NoetherError,
    "A parameter outside its domain."
);
create_exception!(
    noether_sde,
    DimensionMismatch,
    NoetherError,
    "An array of the wrong size or shape."
);
create_exception!(
    noether_sde,
    NonFinite,
    NoetherError,
    "NaN or an infinity in an input."
);
create_exception!(
    noether_sde,
    Divergence,
    NoetherError,
    "A state stopped being finite during a single solve."
);
create_exception!(
    noether_sde,
    Incompatible,
    NoetherError,
    "A scheme cannot solve an SDE of this declared structure."
);
create_exception!(
    noether_sde,
    NotSymmetric,
    NoetherError,
    "A symmetry generator that is not symmetric."
);
create_exception!(
    noether_sde,
    NoFixedPoint,
    NoetherError,
    "The Noether flow has no fixed point along the orbit."
);
create_exception!(
    noether_sde,
    BrownianError,
    NoetherError,
    "A Brownian path cannot deliver an increment."
);
create_exception!(
    noether_sde,
    CallbackError,
    NoetherError,
    "A Python callback failed or returned a bad value."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("NoetherError", py.get_type::<NoetherError>())?;
    m.add("InvalidParameter", py.get_type::<InvalidParameter>())?;
    m.add("DimensionMismatch", py.get_type::<DimensionMismatch>())?;
    m.add("NonFinite", py.get_type::<NonFinite>())?;
    m.add("Divergence", py.get_type::<Divergence>())?;
    m.add("Incompatible", py.get_type::<Incompatible>())?;
    m.add("NotSymmetric", py.get_type::<NotSymmetric>())?;
    m.add("NoFixedPoint", py.get_type::<NoFixedPoint>())?;
    m.add("BrownianError", py.get_type::<BrownianError>())?;
    m.add("CallbackError", py.get_type::<CallbackError>())?;
    Ok(())
}

/// The Python exception of a library error.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::InvalidParameter { .. } => InvalidParameter::new_err(msg),
        Error::DimensionMismatch { .. } => DimensionMismatch::new_err(msg),
        Error::NonFinite { .. } => NonFinite::new_err(msg),
        Error::Divergence { .. } => Divergence::new_err(msg),
        Error::Incompatible { .. } => Incompatible::new_err(msg),
        Error::NotSymmetric { .. } => NotSymmetric::new_err(msg),
        Error::NoFixedPoint { .. } => NoFixedPoint::new_err(msg),
        Error::Brownian { .. } => BrownianError::new_err(msg),
        _ => NoetherError::new_err(msg),
    }
}

/// `Result<T, Error>` → `PyResult<T>`.
pub trait IntoPy<T> {
    /// Maps the error with [`to_py`].
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, Error> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
