//! `ns.Sde`: an SDE whose drift and diffusion are vectorised Python callables, run on the
//! library's lockstep driver ([`noether_sde::ensemble::lockstep`]): one call per step for
//! a block of paths, the GIL held only during the call.
//!
//! Milstein (THEORY §8) needs the derivative terms `∂b[v]·c = d/dε b(x + εv)·c` along
//! `v = b·c` (scalar noise, `m = 1`, any `d`: once with `c = 1`, `L¹b = ∂b[b]`; diagonal
//! noise, `m = d`: with `c = ΔW` and with `c = 1`), the block form
//! [`BatchSde::milstein_block`]. Two routes, each, path by path, the per-path
//! [`noether_sde::sde::Sde::diffusion_derivative`]'s arithmetic, so the lockstep
//! Milstein and the per-path one give the same bits:
//!
//! - the user's vectorised `diffusion_derivative(t, X[P, d])`: for scalar noise the
//!   Jacobian `J[p, i, l] = ∂b_i/∂x_l (x_p)`, shape `(P, d, d)` (for `d = 1` also
//!   `(P, 1)` or `(P,)`), and `(∂b[v]·c)_i = (Σ_l J_il v_l)·c_1` summed in order
//!   `l = 1, …, d`; for diagonal noise the diagonal `J[p, i] = b_i′(x_{p,i})`, shape
//!   `(P, d)`, and `(∂b[v]·c)_i = (J_i v_i)·c_i`. One `diffusion_derivative` call per
//!   step for the block.
//! - otherwise the library's central difference
//!   ([`noether_sde::sde::finite_difference_derivative`]): per path
//!   `ε = δ·max(‖x‖_∞, 1)/‖v‖_∞` with the library's `δ` ([`FD_RELATIVE_STEP`]) and
//!   `∂b[v]·c = (b(x + εv)·c − b(x − εv)·c)·(½/ε)` (`0` where `v = 0`, NaN where `v` is
//!   not finite), computed with nalgebra's own `amax`, `axpy` and `scale_mut` on each
//!   path's row; every `x ± εv` of the block stacked into one `diffusion` call of `2P`
//!   rows per term.
//!
//! `v = b(t, X)·c` needs `b` at the block's states, which the step has just evaluated:
//! [`BatchSde::diffusion_block`] keeps its result (and `milstein_block` the user's
//! derivative) keyed by the exact bits of `(t, X)`, and the terms at the same arguments
//! reuse them instead of calling again.
//!
//! Commutative and general noise have no lockstep Milstein (their `L^j b_k` need every
//! column, general noise also Lévy areas); the user's derivative is refused there and
//! per-path Milstein-type schemes use the central difference.

use crate::callback::CallbackFailure;
use nalgebra::{DVector, DVectorView, DVectorViewMut};
use noether_sde::ensemble::lockstep::{diffusion_width, BatchSde};
use noether_sde::sde::batch::{central_difference_block, BlockScratch};
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
/// `diffusion(t, X) -> (P, d)` (scalar / diagonal noise) or `(P, d, m)`, and optionally
/// Milstein's `diffusion_derivative(t, X)` (see the module docs for its shapes).
#[pyclass(frozen, module = "noether_sde._core", name = "Sde")]
pub struct PySde {
    drift: Py<PyAny>,
    diffusion: Py<PyAny>,
    dim: usize,
    noise_dim: usize,
    noise: Noise,
    calculus: Calculus,
    /// `∂b/∂x` at a block of states (scalar noise: the Jacobian `(P, d, d)`; diagonal
    /// noise: its diagonal `(P, d)`), vectorised like the others; `None` for the
    /// library's central difference.
    diffusion_derivative: Option<Py<PyAny>>,
    /// Milstein's block buffers (sized once, then reused).
    milstein_scratch: Mutex<MilsteinScratch>,
    /// The first Python exception a callback raised (re-raised when the run ends).
    pub failure: CallbackFailure,
}

/// The buffers of [`BatchSde::milstein_block`] and of the per-path derivative, and the
/// block's last `b(t, X)` (and `∂b/∂x`) keyed by the exact bits of `(t, X)`: the
/// lockstep Milstein evaluates its terms at the states whose diffusion the step has just
/// evaluated (twice for diagonal noise), so the callbacks are not called again for the
/// same arguments (the callbacks are functions of `(t, X)`; the numbers do not change).
#[derive(Default)]
struct MilsteinScratch {
    /// The `t` (bits) and states `X` of `b` and `jacobian`.
    key_t: u64,
    key_x: Vec<f64>,
    /// Whether `b` holds `b(key_t, key_x)`.
    b_valid: bool,
    /// Whether `jacobian` holds the user's derivative at `(key_t, key_x)`.
    jacobian_valid: bool,
    /// `b` at the block's states.
    b: Vec<f64>,
    /// `v = b·c` per path.
    v: Vec<f64>,
    /// The user's `∂b/∂x` per path.
    jacobian: Vec<f64>,
    /// The states `x + εv` (first `P` rows) and `x − εv` (next `P` rows).
    states: Vec<f64>,
    /// `b` at those states.
    values: Vec<f64>,
    /// `b(x − εv)·c` of one path.
    minus: Vec<f64>,
    /// Each path's step `ε`, or the value of its whole term ([`difference_step`]).
    steps: Vec<std::result::Result<f64, f64>>,
}

/// What a callback returns per path (the trailing dimensions of its array).
#[derive(Clone, Copy)]
enum Returns {
    /// `(P, d)`: the drift.
    State,
    /// `(P, d)` for scalar / diagonal noise, `(P, d, m)` otherwise.
    Diffusion,
    /// `(P, d, d)` for scalar noise, `(P, d)` for diagonal noise.
    Derivative,
}

/// `out = b·w` for one path, `b` in the block layout ([`diffusion_width`] numbers): the
/// arithmetic of [`noether_sde::sde::Sde::diffusion_apply`] for a Python Sde, shared
/// by the per-path route and the Milstein block so that both form the same `v = b·c`.
fn apply_diffusion(noise: Noise, m: usize, b: &[f64], w: &[f64], out: &mut [f64]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = match noise {
            Noise::Diagonal => b[i] * w[i],
            _ if m == 1 => b[i] * w[0],
            _ => (0..m).fold(0.0, |s, j| s + b[i * m + j] * w[j]),
        };
    }
}

/// `out = ∂b[v]·c` for one path from the user's derivative `jacobian` (scalar noise:
/// `(Σ_l J_il v_l)·c_1`, summed in order from the first term; diagonal noise:
/// `(J_i v_i)·c_i`): the arithmetic both routes use.
fn jacobian_term(noise: Noise, jacobian: &[f64], v: &[f64], c: &[f64], out: &mut [f64]) {
    let d = out.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = if noise == Noise::Diagonal {
            jacobian[i] * v[i] * c[i]
        } else {
            let row = &jacobian[i * d..(i + 1) * d];
            let s = row[1..]
                .iter()
                .zip(&v[1..])
                .fold(row[0] * v[0], |s, (&j, &v)| s + j * v);
            s * c[0]
        };
    }
}

/// The central difference's step `ε = δ·max(‖x‖_∞, 1)/‖v‖_∞` of
/// [`noether_sde::sde::finite_difference_derivative`] (nalgebra's `amax`, as there), or
/// the value the whole term takes when there is no step: `0` for `v = 0`, NaN for a
/// non-finite `v`.
fn difference_step(x: &[f64], v: &[f64]) -> std::result::Result<f64, f64> {
    let v_norm = DVectorView::from_slice(v, v.len()).amax();
    if v_norm == 0.0 || !v_norm.is_finite() {
        return Err(if v_norm == 0.0 { 0.0 } else { f64::NAN });
    }
    Ok(FD_RELATIVE_STEP * DVectorView::from_slice(x, x.len()).amax().max(1.0) / v_norm)
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
        if diffusion_derivative.is_some() && matches!(noise, Noise::Commutative | Noise::General) {
            return Err(crate::errors::Incompatible::new_err(format!(
                "diffusion_derivative (∂b/∂x for Milstein) is used with scalar noise (the Jacobian, \
                 (P, d, d)) and diagonal noise (b_i′(x_i), (P, d)); this SDE has {} noise, whose \
                 Milstein terms come from the library's finite differences: leave it out",
                noise.name()
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
            milstein_scratch: Mutex::new(MilsteinScratch::default()),
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
    /// Calls `f(t, X)` on the block `x` (`P × d`) and copies the result, `P` arrays of
    /// the shape `returns` says (for one number per path also `(P,)` or `(P, 1)`), into
    /// `out` (C order).
    fn call(
        &self,
        which: &'static str,
        f: &Py<PyAny>,
        returns: Returns,
        t: f64,
        x: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        let (d, m) = (self.dim, self.noise_dim);
        let p = x.len() / d;
        let trailing: &[usize] = match (returns, self.noise) {
            (Returns::State, _)
            | (Returns::Diffusion, Noise::Scalar | Noise::Diagonal)
            | (Returns::Derivative, Noise::Diagonal) => &[d],
            (Returns::Diffusion, _) => &[d, m],
            (Returns::Derivative, _) => &[d, d],
        };
        let per_path: usize = trailing.iter().product();
        debug_assert_eq!(out.len(), p * per_path);
        self.failure.guard(which, |py| -> PyResult<()> {
            py.check_signals()?;
            let block = PyArray1::from_slice(py, x).reshape([p, d])?;
            let result = f.call1(py, (t, block))?;
            let array = crate::callback::float64_array(py, result)?;
            let shape = array.shape().to_vec();
            let fits = shape.first() == Some(&p)
                && (shape[1..] == *trailing
                    || (per_path == 1 && shape.len() <= 3 && shape[1..].iter().all(|&k| k == 1)));
            if !fits {
                let expected = trailing.iter().fold(format!("({p}"), |s, k| format!("{s}, {k}")) + ")";
                return Err(crate::errors::CallbackError::new_err(format!(
                    "{which}(t, X) returned an array of shape {shape:?}; expected {expected} for X of shape ({p}, {d})"
                )));
            }
            crate::callback::copy_out(&array, out);
            Ok(())
        })
    }

    /// Whether the scratch's `b` is `b(t, x)` (the exact bits of both).
    fn holds(s: &MilsteinScratch, t: f64, x: &[f64]) -> bool {
        s.b_valid
            && s.key_t == t.to_bits()
            && s.key_x.len() == x.len()
            && s.key_x.iter().zip(x).all(|(a, b)| a.to_bits() == b.to_bits())
    }

    /// Keys the scratch's `b` (just evaluated) to `(t, x)`.
    fn key(s: &mut MilsteinScratch, t: f64, x: &[f64]) {
        s.key_t = t.to_bits();
        s.key_x.clear();
        s.key_x.extend_from_slice(x);
        s.b_valid = true;
        s.jacobian_valid = false;
    }

    /// The user's derivative, where it applies (scalar and diagonal noise; additive
    /// noise has no derivative term).
    fn derivative(&self) -> Option<&Py<PyAny>> {
        match self.noise {
            Noise::Scalar | Noise::Diagonal => self.diffusion_derivative.as_ref(),
            _ => None,
        }
    }

    fn scratch(&self) -> Result<std::sync::MutexGuard<'_, MilsteinScratch>> {
        self.milstein_scratch
            .lock()
            .map_err(|_| Error::invalid("diffusion_derivative", "scratch", "poisoned by an earlier panic"))
    }
}

impl BatchSde for PySde {
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.call("drift", &self.drift, Returns::State, t, x, out)
    }
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        debug_assert_eq!(
            out.len() * self.dim,
            x.len() * diffusion_width(self.noise, self.dim, self.noise_dim)
        );
        self.call("diffusion", &self.diffusion, Returns::Diffusion, t, x, out)?;
        if matches!(self.noise, Noise::Scalar | Noise::Diagonal) {
            // kept for the Milstein terms at the same states
            let mut s = self.scratch()?;
            s.b.clear();
            s.b.extend_from_slice(out);
            Self::key(&mut s, t, x);
        }
        Ok(())
    }
    /// Milstein–Lévy's derivative terms on commutative and general noise (no user
    /// derivative there): the library's central difference on the whole block, both
    /// shifted states of every path in one `diffusion` call — the numbers of the per-path
    /// `diffusion_derivative` (`finite_difference_derivative`), so the convergence
    /// study's reference calls Python once per step per block, never per path.
    fn has_derivative_block(&self) -> bool {
        self.derivative().is_none()
    }
    fn derivative_block(
        &self,
        t: f64,
        x: &[f64],
        v: &[f64],
        c: &[f64],
        out: &mut [f64],
        scratch: &mut BlockScratch,
    ) -> Result<()> {
        central_difference_block(self, t, x, v, c, out, scratch)
    }
    /// Milstein's block terms for scalar and diagonal noise (additive noise needs none),
    /// any `d`: see the module docs for the two routes.
    fn has_milstein_block(&self) -> bool {
        matches!(self.noise, Noise::Scalar | Noise::Diagonal | Noise::Additive)
    }
    fn milstein_block(&self, t: f64, x: &[f64], c: &[f64], out: &mut [f64]) -> Result<()> {
        let (d, m, noise) = (self.dim, self.noise_dim, self.noise);
        let width = diffusion_width(noise, d, m);
        let n = x.len() / d;
        let mut scratch = self.scratch()?;
        let s = &mut *scratch;
        // v = b·c per path, as the per-path route's `diffusion_apply(t, x, c)`
        if !Self::holds(s, t, x) {
            s.b_valid = false;
            s.b.resize(n * width, 0.0);
            self.call("diffusion", &self.diffusion, Returns::Diffusion, t, x, &mut s.b)?;
            Self::key(s, t, x);
        }
        s.v.resize(n * d, 0.0);
        for p in 0..n {
            let (b, cp) = (&s.b[p * width..(p + 1) * width], &c[p * m..(p + 1) * m]);
            apply_diffusion(noise, m, b, cp, &mut s.v[p * d..(p + 1) * d]);
        }
        if let Some(derivative) = self.derivative() {
            let jw = if noise == Noise::Diagonal { d } else { d * d };
            if !s.jacobian_valid {
                s.jacobian.resize(n * jw, 0.0);
                self.call(
                    "diffusion_derivative",
                    derivative,
                    Returns::Derivative,
                    t,
                    x,
                    &mut s.jacobian,
                )?;
                s.jacobian_valid = true;
            }
            for p in 0..n {
                jacobian_term(
                    noise,
                    &s.jacobian[p * jw..(p + 1) * jw],
                    &s.v[p * d..(p + 1) * d],
                    &c[p * m..(p + 1) * m],
                    &mut out[p * d..(p + 1) * d],
                );
            }
            return Ok(());
        }
        // the central difference: x + εv in rows 0..n, x − εv in rows n..2n, one call
        s.states.resize(2 * n * d, 0.0);
        s.values.resize(2 * n * width, 0.0);
        s.minus.resize(d, 0.0);
        s.steps.clear();
        for p in 0..n {
            let (xp, vp) = (&x[p * d..(p + 1) * d], &s.v[p * d..(p + 1) * d]);
            let (plus, minus) = s.states.split_at_mut(n * d);
            let (plus, minus) = (&mut plus[p * d..(p + 1) * d], &mut minus[p * d..(p + 1) * d]);
            plus.copy_from_slice(xp);
            minus.copy_from_slice(xp);
            // nalgebra's `axpy`, as `finite_difference_derivative` forms x ± εv
            let step = difference_step(xp, vp);
            s.steps.push(step);
            if let Ok(eps) = step {
                let v = DVectorView::from_slice(vp, d);
                DVectorViewMut::from_slice(plus, d).axpy(eps, &v, 1.0);
                DVectorViewMut::from_slice(minus, d).axpy(-eps, &v, 1.0);
            }
        }
        self.call(
            "diffusion",
            &self.diffusion,
            Returns::Diffusion,
            t,
            &s.states,
            &mut s.values,
        )?;
        for p in 0..n {
            let cp = &c[p * m..(p + 1) * m];
            let o = &mut out[p * d..(p + 1) * d];
            match s.steps[p] {
                Err(value) => o.fill(value),
                Ok(eps) => {
                    let (plus, minus) = (
                        &s.values[p * width..(p + 1) * width],
                        &s.values[(n + p) * width..(n + p + 1) * width],
                    );
                    apply_diffusion(noise, m, plus, cp, o);
                    apply_diffusion(noise, m, minus, cp, &mut s.minus);
                    let mut o = DVectorViewMut::from_slice(o, d);
                    o.axpy(-1.0, &DVectorView::from_slice(&s.minus, d), 1.0);
                    o.scale_mut(0.5 / eps);
                }
            }
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
    /// With the user's derivative (scalar and diagonal noise): `∂b[v]·c` from it as in
    /// the module docs; otherwise the library's central difference.
    fn diffusion_derivative(
        &self,
        t: f64,
        x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        scratch: &mut DerivativeScratch,
    ) {
        let Some(derivative) = self.derivative() else {
            noether_sde::sde::finite_difference_derivative(self, t, x, v, c, out, scratch);
            return;
        };
        let Ok(mut s) = self.scratch() else {
            out.fill(f64::NAN);
            return;
        };
        let d = self.dim;
        let jw = if self.noise == Noise::Diagonal { d } else { d * d };
        s.jacobian_valid = false;
        s.jacobian.resize(jw, 0.0);
        let called = self.call(
            "diffusion_derivative",
            derivative,
            Returns::Derivative,
            t,
            x.as_slice(),
            &mut s.jacobian,
        );
        if called.is_err() {
            out.fill(f64::NAN);
            return;
        }
        jacobian_term(
            self.noise,
            &s.jacobian,
            v.as_slice(),
            c.as_slice(),
            out.as_mut_slice(),
        );
    }
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        if self
            .call(
                "drift",
                &self.drift,
                Returns::State,
                t,
                x.as_slice(),
                out.as_mut_slice(),
            )
            .is_err()
        {
            out.fill(f64::NAN);
        }
    }
    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        let mut b = vec![0.0; diffusion_width(self.noise, self.dim, self.noise_dim)];
        if self
            .call(
                "diffusion",
                &self.diffusion,
                Returns::Diffusion,
                t,
                x.as_slice(),
                &mut b,
            )
            .is_err()
        {
            out.fill(f64::NAN);
            return;
        }
        apply_diffusion(self.noise, self.noise_dim, &b, dw.as_slice(), out.as_mut_slice());
    }
}
