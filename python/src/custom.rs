//! `ns.models.Custom`: a model defined in Python by its per-sample gradients, run on the
//! library's block-gradient route ([`noether_sde::sgd::BlockSgdProblem`], THEORY §1):
//! `per_sample_grads(theta[P, d]) -> (P, N, d)` is called once per step for a block of
//! paths, the GIL held only during the call.

use crate::callback::CallbackFailure;
use crate::errors::CallbackError;
use noether_sde::sgd::BlockGradients;
use noether_sde::{Error, Result};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// A model given by the per-sample gradients of its `N` samples, `f(theta[P, d]) -> (P, N, d)`.
#[pyclass(frozen, module = "noether_sde._core", name = "Custom")]
pub struct PyCustom {
    per_sample_grads: Py<PyAny>,
    dim: usize,
    samples: usize,
    /// The first Python exception the callback raised (re-raised when the run ends).
    pub failure: CallbackFailure,
}

#[pymethods]
impl PyCustom {
    #[new]
    fn new(py: Python<'_>, per_sample_grads: Py<PyAny>, dim: usize, n: usize) -> PyResult<Self> {
        use crate::errors::to_py;
        if dim == 0 {
            return Err(to_py(Error::invalid("dim", 0, "must be at least 1")));
        }
        if n == 0 {
            return Err(to_py(Error::invalid(
                "n",
                0,
                "the data set needs at least one sample",
            )));
        }
        if !per_sample_grads.bind(py).is_callable() {
            return Err(to_py(Error::invalid(
                "per_sample_grads",
                "not callable",
                "must be a function theta[P, d] -> (P, N, d)",
            )));
        }
        Ok(PyCustom {
            per_sample_grads,
            dim,
            samples: n,
            failure: CallbackFailure::default(),
        })
    }

    /// Number of parameters `d`.
    #[getter]
    fn dim(&self) -> usize {
        self.dim
    }

    /// Number of samples `N`.
    #[getter]
    fn n(&self) -> usize {
        self.samples
    }
}

impl PyCustom {
    fn evaluate(&self, py: Python<'_>, theta: &[f64], out: &mut [f64]) -> PyResult<()> {
        let (d, n) = (self.dim, self.samples);
        let p = theta.len() / d;
        py.check_signals()?;
        let block = PyArray1::from_slice(py, theta).reshape([p, d])?;
        let result = self.per_sample_grads.call1(py, (block,))?;
        let array = crate::callback::float64_array(py, result)?;
        let shape = array.shape().to_vec();
        if shape != [p, n, d] {
            return Err(CallbackError::new_err(format!(
                "per_sample_grads(theta) returned an array of shape {shape:?}; expected ({p}, {n}, {d}) \
                 (paths, samples, parameters) for theta of shape ({p}, {d})"
            )));
        }
        crate::callback::copy_out(&array, out);
        if let Some(at) = out.iter().position(|v| v.is_nan()) {
            let (row, sample) = (at / (n * d), (at / d) % n);
            return Err(CallbackError::new_err(format!(
                "per_sample_grads(theta) returned NaN for path row {row}, sample {sample} at a finite theta \
                 (a NaN gradient is a bug in the callback; an infinite one makes the path diverge)"
            )));
        }
        Ok(())
    }
}

impl BlockGradients for PyCustom {
    fn dim(&self) -> usize {
        self.dim
    }

    fn samples(&self) -> usize {
        self.samples
    }

    fn per_sample_gradients(&self, theta: &[f64], out: &mut [f64]) -> Result<()> {
        self.failure
            .guard("per_sample_grads", |py| self.evaluate(py, theta, out))
    }
}
