//! `ns.Sde`: an SDE whose drift and diffusion are vectorised Python callables, run on the
//! library's lockstep driver ([`noether_sde::ensemble::lockstep`]): one call per step for
//! a block of paths, the GIL held only during the call.
//!
//! Milstein (`d = m = 1`, scalar or additive noise, THEORY §8) needs the derivative term
//! `L¹b = b′ b` (`X' = X + a h + b ΔW + ½ (ΔW² − h) L¹b`): from the user's vectorised
//! `diffusion_derivative(t, X[P, 1]) → b′(X)` of shape `(P, 1)` (or `(P,)`) when given,
//! as `(b′ · (b·1))·1`; otherwise from the library's central difference
//! ([`noether_sde::sde::finite_difference_derivative`]) along `v = b·1`:
//! `ε = δ·max(|x|, 1)/|v|`, `L¹b = (b(x + εv) − b(x − εv))·(½/ε)` with the library's `δ`,
//! both `x ± εv` of a block in one call. Either way the block value is, path by path,
//! the per-path [`noether_sde::sde::Sde::diffusion_derivative`]'s, so the lockstep
//! Milstein and the per-path one give the same numbers.

use crate::callback::CallbackFailure;
use noether_sde::ensemble::lockstep::{diffusion_width, BatchSde};
use noether_sde::sde::{Calculus, DerivativeScratch, Noise, Structure, FD_RELATIVE_STEP};
use noether_sde::{Error, Result};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use std::sync::Mutex;

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
    /// `b′(t, X)` of a `d = m = 1` SDE, vectorised like the others (Milstein's `L¹b = b′b`).
    diffusion_derivative: Option<Py<PyAny>>,
    /// Milstein's block buffers: `b(x)`, the states `x ± εv` stacked, `b` there.
    milstein_scratch: Mutex<(Vec<f64>, Vec<f64>, Vec<f64>)>,
    /// The first Python exception a callback raised (re-raised when the run ends).
    pub failure: CallbackFailure,
}

#[pymethods]
impl PySde {
    #[new]
    #[pyo3(signature = (drift, diffusion, dim, noise_dim, noise, calculus, diffusion_derivative=None))]
    fn new(
        drift: Py<PyAny>,
        diffusion: Py<PyAny>,
        dim: usize,
        noise_dim: usize,
        noise: &str,
        calculus: &str,
        diffusion_derivative: Option<Py<PyAny>>,
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
        if diffusion_derivative.is_some() && !(dim == 1 && noise_dim == 1) {
            return Err(crate::errors::Incompatible::new_err(format!(
                "diffusion_derivative (b′ for Milstein's L¹b = b′b) is supported for d = m = 1 \
                     (scalar or additive noise); this SDE has d = {dim}, m = {noise_dim}: leave it out \
                     (Milstein-type references then use the library's finite differences)"
            )));
        }
        Python::attach(|py| {
            let callbacks = [("drift", Some(&drift)), ("diffusion", Some(&diffusion))];
            let derivative = [("diffusion_derivative", diffusion_derivative.as_ref())];
            for (name, f) in callbacks.into_iter().chain(derivative) {
                let Some(f) = f else { continue };
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
            diffusion_derivative,
            milstein_scratch: Mutex::new((Vec::new(), Vec::new(), Vec::new())),
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
    /// Milstein's block term for `d = m = 1` (scalar or additive noise; see the module
    /// docs for the two routes).
    fn has_milstein_block(&self) -> bool {
        self.dim == 1 && self.noise_dim == 1 && matches!(self.noise, Noise::Scalar | Noise::Additive)
    }
    fn milstein_block(&self, t: f64, x: &[f64], c: &[f64], out: &mut [f64]) -> Result<()> {
        let n = x.len();
        let mut scratch = self
            .milstein_scratch
            .lock()
            .map_err(|_| Error::invalid("diffusion_derivative", "scratch", "poisoned by an earlier panic"))?;
        let (b, states, values) = &mut *scratch;
        b.resize(n, 0.0);
        self.call("diffusion", &self.diffusion, t, x, b)?;
        if let Some(derivative) = &self.diffusion_derivative {
            // ∂b[b c] c = (b′ · (b·c))·c, as the per-path `diffusion_derivative(x, b·c, c)`
            // (the lockstep Milstein passes c = 1 for scalar noise: L¹b = b′b)
            self.call("diffusion_derivative", derivative, t, x, out)?;
            for ((o, &b), &c) in out.iter_mut().zip(b.iter()).zip(c) {
                *o = *o * (b * c) * c;
            }
            return Ok(());
        }
        // the library's central difference along v = b·c, both sides in one call
        states.resize(2 * n, 0.0);
        values.resize(2 * n, 0.0);
        for (p, (&x, &b)) in x.iter().zip(b.iter()).enumerate() {
            let v = b * c[p];
            let usable = v != 0.0 && v.is_finite();
            let eps = if usable {
                FD_RELATIVE_STEP * x.abs().max(1.0) / v.abs()
            } else {
                0.0
            };
            states[p] = eps * v + x;
            states[n + p] = -eps * v + x;
        }
        self.call("diffusion", &self.diffusion, t, states, values)?;
        for (p, o) in out.iter_mut().enumerate() {
            let v = b[p] * c[p];
            *o = if v == 0.0 {
                0.0
            } else if !v.is_finite() {
                f64::NAN
            } else {
                let eps = FD_RELATIVE_STEP * x[p].abs().max(1.0) / v.abs();
                (-(values[n + p] * c[p]) + values[p] * c[p]) * (0.5 / eps)
            };
        }
        Ok(())
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
    /// The block form: the same callbacks, so, path by path, the same arithmetic.
    fn batch(&self) -> Option<&dyn BatchSde> {
        Some(self)
    }
    /// With the user's `b′` (`d = m = 1` only): `(∂b[v]) c = (b′ v) c`; otherwise the
    /// library's central difference.
    fn diffusion_derivative(
        &self,
        t: f64,
        x: &nalgebra::DVector<f64>,
        v: &nalgebra::DVector<f64>,
        c: &nalgebra::DVector<f64>,
        out: &mut nalgebra::DVector<f64>,
        scratch: &mut DerivativeScratch,
    ) {
        let Some(derivative) = &self.diffusion_derivative else {
            noether_sde::sde::finite_difference_derivative(self, t, x, v, c, out, scratch);
            return;
        };
        if self
            .call(
                "diffusion_derivative",
                derivative,
                t,
                x.as_slice(),
                out.as_mut_slice(),
            )
            .is_err()
        {
            out.fill(f64::NAN);
            return;
        }
        out[0] = out[0] * v[0] * c[0];
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
