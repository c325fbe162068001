//! `convergence`: strong or weak convergence studies of schemes of the catalogue on a
//! Python-defined SDE (THEORY §8), with a reference solution from Milstein with Lévy
//! areas four times finer on the same Brownian path, on the lockstep driver
//! ([`noether_sde::analysis::convergence::lockstep`]): one call of each callback per step
//! for a block of paths, and, for a weak error, one call of the vectorised
//! `functional(X[P, d]) -> (P,)` per block and step size. The per-path study's numbers,
//! bit for bit; schemes without a lane twin (and Milstein on commutative or general
//! noise) fall back to the per-path study (one call per path per step, the functional
//! on blocks of one). The Milstein–Lévy reference runs on lanes for every noise: on
//! commutative and general noise with each path's Lévy areas and the derivative terms
//! by the block central difference ([`PySde`]'s `derivative_block`).

use crate::errors::{to_py, IntoPy};
use crate::sde::PySde;
use nalgebra::DVector;
use noether_sde::analysis::convergence::lockstep::lockstep_convergence_study;
use noether_sde::analysis::convergence::{
    convergence_study, ConvergenceConfig, ConvergenceStudy, Measure, Reference,
};
use noether_sde::scheme::catalogue::{SchemeKind, SchemeVisitor};
use noether_sde::scheme::Scheme;
use noether_sde::{Error, Result};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

struct Study<'a> {
    sde: &'a PySde,
    per_path: bool,
    x0: &'a DVector<f64>,
    config: &'a ConvergenceConfig,
    measure: Measure<'a>,
}

impl SchemeVisitor for Study<'_> {
    type Output = Result<ConvergenceStudy>;
    fn visit<K: Scheme + Sync + 'static>(self, scheme: K) -> Result<ConvergenceStudy> {
        let Study {
            sde,
            per_path,
            x0,
            config,
            measure,
        } = self;
        let reference = Reference::Fine { offset: 2 };
        if per_path {
            return convergence_study(sde, &scheme, x0, config, reference, measure);
        }
        lockstep_convergence_study(sde, &scheme, x0, config, reference, measure, None)
    }
}

/// Runs one study per scheme; returns the studies as JSON (per-level error, standard
/// error, wall seconds, evaluations, and the fitted order with its 95 % interval).
/// `per_path`: the per-path study for every scheme (one callback call per path per step;
/// the same numbers), for comparisons.
#[pyfunction]
#[pyo3(signature = (sde, x0, t_end, schemes, weak, coarsest, finest, paths, seed, functional, per_path = false))]
#[allow(clippy::too_many_arguments)]
pub fn convergence(
    py: Python<'_>,
    sde: &PySde,
    x0: Vec<f64>,
    t_end: f64,
    schemes: Vec<String>,
    weak: bool,
    coarsest: u32,
    finest: u32,
    paths: usize,
    seed: u64,
    functional: Option<Py<PyAny>>,
    per_path: bool,
) -> PyResult<String> {
    let x0 = DVector::from_vec(x0);
    let config = ConvergenceConfig {
        t_end,
        coarsest,
        finest,
        paths,
        seed,
        ..ConvergenceConfig::default()
    };
    let kinds = schemes
        .iter()
        .map(|s| SchemeKind::parse(s))
        .collect::<Result<Vec<_>>>()
        .py_err()?;
    // φ(X[P, d]) -> (P,) on a block of final states: one call per block and step size
    // (the default φ = x_1 needs no Python)
    let d = x0.len();
    let phi = |states: &[f64], out: &mut [f64]| -> Result<()> {
        let Some(f) = &functional else {
            for (o, x) in out.iter_mut().zip(states.chunks_exact(d)) {
                *o = x[0];
            }
            return Ok(());
        };
        let p = out.len();
        sde.failure.guard("functional", |py| -> PyResult<()> {
            let block = PyArray1::from_slice(py, states).reshape([p, d])?;
            let array = crate::callback::float64_array(py, f.call1(py, (block,))?)?;
            let shape = array.shape().to_vec();
            if !(shape == [p] || shape == [p, 1]) {
                return Err(crate::errors::CallbackError::new_err(format!(
                    "functional(X) returned an array of shape {shape:?}; expected ({p},) for X of shape ({p}, {d})"
                )));
            }
            crate::callback::copy_out(&array, out);
            Ok(())
        })
    };
    let measure = if weak {
        Measure::WeakBlock(&phi)
    } else {
        Measure::Strong
    };
    sde.failure.clear();
    let mut out = Vec::new();
    for kind in kinds {
        // the callbacks run on this thread, one block of paths at a time: the GIL stays held
        let study = kind.visit(Study {
            sde,
            per_path,
            x0: &x0,
            config: &config,
            measure,
        });
        py.check_signals()?;
        if let Some(e) = sde.failure.take() {
            return Err(e);
        }
        let study = study.map_err(|e| match e {
            Error::Divergence { .. } => to_py(Error::invalid(
                "sde",
                kind.name(),
                format!("a path diverged in the convergence study: {e}"),
            )),
            other => to_py(other),
        })?;
        out.push(
            serde_json::to_value(&study).map_err(|e| crate::errors::NoetherError::new_err(e.to_string()))?,
        );
    }
    Ok(serde_json::Value::Array(out).to_string())
}
