//! `noether_sde._core`: the Python face of the `noether-sde` library (PyO3).
//!
//! Like the CLI, this crate owns no numerics: it turns numpy arrays and keywords into the
//! library's models, SDEs and ensembles, releases the GIL while they run, and turns the
//! library's [`noether_sde::Error`] into Python exceptions (`NoetherError` and its
//! subclasses). The pure-Python package `noether_sde` (in `python/noether_sde/`) wraps
//! it with the documented API.

#![deny(missing_docs)]

mod callback;
mod convergence;
mod custom;
mod errors;
mod models;
mod sde;
mod simulate;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<models::Model>()?;
    m.add_class::<sde::PySde>()?;
    m.add_class::<custom::PyCustom>()?;
    m.add_function(wrap_pyfunction!(models::build_model, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::schemes, m)?)?;
    m.add_function(wrap_pyfunction!(convergence::convergence, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::simulate_model, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::simulate_sde, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::simulate_custom, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::merge_states, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::summarise_state, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::reproduce, m)?)?;
    Ok(())
}
