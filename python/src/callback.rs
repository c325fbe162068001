//! Python callbacks called from Rust: the GIL taken for the call only, a Python
//! exception (or a panic) turned into the library's error for the driver, and the first
//! exception of a run kept to be re-raised as itself when the run ends.

use noether_sde::{Error, Result};
use pyo3::prelude::*;
use std::sync::Mutex;

/// The first Python exception a callback raised during a run.
#[derive(Default)]
pub struct CallbackFailure(Mutex<Option<PyErr>>);

impl CallbackFailure {
    /// The exception of the last run, if any (taken).
    pub fn take(&self) -> Option<PyErr> {
        self.0.lock().ok().and_then(|mut f| f.take())
    }

    /// Forgets a previous run's exception.
    pub fn clear(&self) {
        if let Ok(mut f) = self.0.lock() {
            *f = None;
        }
    }

    /// Runs `call` with the GIL; an exception (or a panic) is kept (the first one of the
    /// run) and reported to the driver as [`Error::InvalidParameter`] named `which`.
    ///
    /// # Errors
    /// The callback's failure, as above.
    pub fn guard(&self, which: &'static str, call: impl FnOnce(Python<'_>) -> PyResult<()>) -> Result<()> {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Python::attach(call)));
        let err = match outcome {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => crate::errors::CallbackError::new_err(format!(
                "{which}: a Rust panic while calling the callback"
            )),
        };
        let message = Python::attach(|py| err.value(py).to_string());
        if let Ok(mut slot) = self.0.lock() {
            if slot.is_none() {
                *slot = Some(err);
            }
        }
        Err(Error::invalid(which, "callback", message))
    }
}
