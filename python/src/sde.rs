//! `ns.Sde`: an SDE whose drift and diffusion are vectorised Python callables, run on the
//! library's lockstep driver ([`noether_sde::ensemble::lockstep`]): one call per step for
//! a block of paths, the GIL held only during the call.

use crate::callback::CallbackFailure;
use noether_sde::ensemble::lockstep::{diffusion_width, BatchSde};
use noether_sde::sde::{Calculus, Noise, Structure};
use noether_sde::{Error, Result};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// Parses a noise kind.
///
/// # Errors
/// [`Error::InvalidParameter`] for an unknown name.
pub fn parse_noise(name: &str) -> Result<Noise> {
    Ok(match name {
        "scalar" => Noise::Scalar,
        "diagonal" => Noise::Diagonal,
        "additive" => Noise::Additive,
        "commutative" => Noise::Commutative,
        "general" => Noise::General,
        other => {
            return Err(Error::invalid(
                "noise",
                other,
                "one of scalar, diagonal, additive, commutative, general",
            ))
        }
    })
}

/// Parses a calculus.
///
/// # Errors
/// [`Error::InvalidParameter`] for an unknown name.
pub fn parse_calculus(name: &str) -> Result<Calculus> {
    match name {
        "ito" => Ok(Calculus::Ito),
        "stratonovich" => Ok(Calculus::Stratonovich),
        other => Err(Error::invalid("calculus", other, "one of ito, stratonovich")),
    }
}

/// An SDE defined by Python callbacks `drift(t, X[P, d]) -> (P, d)` and
/// `diffusion(t, X) -> (P, d)` (scalar / diagonal noise) or `(P, d, m)`.
#[pyclass(frozen, module = "noether_sde._core", name = "Sde")]
pub struct PySde {
    drift: Py<PyAny>,
    diffusion: Py<PyAny>,
    dim: usize,
    noise_dim: usize,
    noise: Noise,
    calculus: Calculus,
    /// The first Python exception a callback raised (re-raised when the run ends).
    pub failure: CallbackFailure,
}

#[pymethods]
impl PySde {
    #[new]
    #[pyo3(signature = (drift, diffusion, dim, noise_dim, noise, calculus))]
    fn new(
        drift: Py<PyAny>,
        diffusion: Py<PyAny>,
        dim: usize,
        noise_dim: usize,
        noise: &str,
        calculus: &str,
    ) -> PyResult<Self> {
        use crate::errors::IntoPy;
        let noise = parse_noise(noise).py_err()?;
        let calculus = parse_calculus(calculus).py_err()?;
        if dim == 0 {
            return Err(crate::errors::to_py(Error::invalid(
                "dim",
                0,
                "must be at least 1",
            )));
        }
        if noise_dim == 0 {
            return Err(crate::errors::to_py(Error::invalid(
                "noise_dim",
                0,
                "must be at least 1",
            )));
        }
        match noise {
            Noise::Scalar if noise_dim != 1 => {
                return Err(crate::errors::to_py(Error::invalid(
                    "noise_dim",
                    noise_dim,
                    "scalar noise has one Brownian motion",
                )))
            }
            Noise::Diagonal if noise_dim != dim => {
                return Err(crate::errors::to_py(Error::invalid(
                    "noise_dim",
                    noise_dim,
                    format!("diagonal noise has one Brownian motion per component (dim = {dim})"),
                )))
            }
            _ => {}
        }
        Python::attach(|py| {
            for (name, f) in [("drift", &drift), ("diffusion", &diffusion)] {
                if !f.bind(py).is_callable() {
                    return Err(crate::errors::to_py(Error::invalid(
                        name,
                        "not callable",
                        "must be a function of (t, X)",
                    )));
                }
            }
            Ok(())
        })?;
        Ok(PySde {
            drift,
            diffusion,
            dim,
            noise_dim,
            noise,
            calculus,
            failure: CallbackFailure::default(),
        })
    }

    /// State dimension `d`.
    #[getter]
    fn dim(&self) -> usize {
        self.dim
    }

    /// Number of Brownian motions `m`.
    #[getter]
    fn noise_dim(&self) -> usize {
        self.noise_dim
    }
}

impl PySde {
    /// Calls `f(t, X)` on the block `x` and copies the result (of `per_path` numbers per
    /// path, shaped as one of `shapes`) into `out`.
    fn call(&self, which: &'static str, f: &Py<PyAny>, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        let d = self.dim;
        let p = x.len() / d;
        let per_path = out.len() / p.max(1);
        let m = self.noise_dim;
        self.failure.guard(which, |py| -> PyResult<()> {
                py.check_signals()?;
                let block = PyArray1::from_slice(py, x).reshape([p, d])?;
                let result = f.call1(py, (t, block))?;
                let array = crate::callback::float64_array(py, result)?;
                let shape = array.shape().to_vec();
                let fits = match shape.as_slice() {
                    [a, b] => *a == p && *b == d && per_path == d,
                    [a, b, c] => *a == p && *b == d && *c == m && per_path == d * m,
                    [a] => *a == p && d == 1 && per_path == 1,
                    _ => false,
                };
                if !fits {
                    let expected = if per_path == d {
                        format!("({p}, {d})")
                    } else {
                        format!("({p}, {d}, {m})")
                    };
                    return Err(crate::errors::CallbackError::new_err(format!(
                        "{which}(t, X) returned an array of shape {shape:?}; expected {expected} for X of shape ({p}, {d})"
                    )));
                }
                crate::callback::copy_out(&array, out);
                Ok(())
        })
    }
}

impl BatchSde for PySde {
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.call("drift", &self.drift, t, x, out)
    }
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        debug_assert_eq!(
            out.len() * self.dim,
            x.len() * diffusion_width(self.noise, self.dim, self.noise_dim)
        );
        self.call("diffusion", &self.diffusion, t, x, out)
    }
}

/// One path at a time (a `1 × d` block per call): the route of convergence studies,
/// which integrate each path on its own Brownian grid at several step sizes. A failing
/// callback writes NaN (the solve then reports a divergence) and keeps its exception
/// for the caller to re-raise.
impl noether_sde::sde::Sde for PySde {
    fn dim(&self) -> usize {
        self.dim
    }
    fn structure(&self) -> Structure {
        Structure::new(self.noise, self.noise_dim).with_calculus(self.calculus)
    }
    fn drift(&self, t: f64, x: &nalgebra::DVector<f64>, out: &mut nalgebra::DVector<f64>) {
        if self
            .call("drift", &self.drift, t, x.as_slice(), out.as_mut_slice())
            .is_err()
        {
            out.fill(f64::NAN);
        }
    }
    fn diffusion_apply(
        &self,
        t: f64,
        x: &nalgebra::DVector<f64>,
        dw: &nalgebra::DVector<f64>,
        out: &mut nalgebra::DVector<f64>,
    ) {
        let (d, m) = (self.dim, self.noise_dim);
        let mut b = vec![0.0; diffusion_width(self.noise, d, m)];
        if self
            .call("diffusion", &self.diffusion, t, x.as_slice(), &mut b)
            .is_err()
        {
            out.fill(f64::NAN);
            return;
        }
        for i in 0..d {
            out[i] = match self.noise {
                Noise::Diagonal => b[i] * dw[i],
                _ if m == 1 => b[i] * dw[0],
                _ => (0..m).fold(0.0, |s, j| s + b[i * m + j] * dw[j]),
            };
        }
    }
}
