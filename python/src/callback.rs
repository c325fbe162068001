//! Python callbacks called from Rust: the GIL taken for the call only, a Python
//! exception (or a panic) turned into the library's error for the driver, and the first
//! exception of a run kept to be re-raised as itself when the run ends.

use noether_sde::{Error, Result};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
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

/// `numpy.asarray(value, dtype="float64")`: what a callback returned, as a float64 array
/// (converted if it is another numeric type; numpy's error if it cannot be), made
/// C-contiguous by numpy when it is not (a transposed, strided or broadcast result,
/// e.g. `np.broadcast_to(s, X.shape)`), so that [`copy_out`] is one `memcpy`.
pub fn float64_array<'py>(py: Python<'py>, value: Py<PyAny>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", "float64")?;
    let numpy = py.import("numpy")?;
    let array = numpy
        .call_method("asarray", (value,), Some(&kwargs))?
        .cast_into::<PyArrayDyn<f64>>()?;
    if array.ndim() == 0 || array.is_c_contiguous() {
        return Ok(array);
    }
    numpy
        .call_method1("ascontiguousarray", (array,))?
        .cast_into::<PyArrayDyn<f64>>()
        .map_err(PyErr::from)
}

/// Copies `array` into `out` in C order: one `memcpy` when it is C-contiguous (the usual
/// case), element by element otherwise (a transposed or strided result).
pub fn copy_out(array: &Bound<'_, PyArrayDyn<f64>>, out: &mut [f64]) {
    let readonly = array.readonly();
    match readonly.as_slice() {
        Ok(values) if values.len() == out.len() => out.copy_from_slice(values),
        _ => {
            for (o, v) in out.iter_mut().zip(readonly.as_array().iter()) {
                *o = *v;
            }
        }
    }
}
