//! `simulate`: ensembles of a built-in model (SGD, GD or its SGD-SDE by a scheme) or of a
//! Python-defined SDE, run in chunks of paths with the GIL released; statistics merge
//! exactly across chunks and shards ([`EnsembleStatistics::merge`]), so the result does
//! not depend on the chunking, the thread count or the machines that ran the shards.

use crate::custom::PyCustom;
use crate::errors::{to_py, IntoPy};
use crate::models::Model;
use crate::sde::PySde;
use nalgebra::DVector;
use noether_sde::analysis::stats::MeanInterval;
use noether_sde::ensemble::lockstep::{LockstepProblem, LockstepScheme};
use noether_sde::ensemble::{Ensemble, EnsembleProblem, EnsembleStatistics, Functionals, PathRecord};
use noether_sde::models::spec::observables::{Observable, Recorded};
use noether_sde::models::spec::run::{
    self, check_paths, resolve_save_times, Collected as Output, Method, Settings,
};
use noether_sde::scheme::catalogue::SchemeKind;
use noether_sde::scheme::TimeSpan;
use noether_sde::sgd::{BlockMethod, BlockSgdProblem, SgdConfig};
use noether_sde::{Error, Result};
use numpy::{PyArray1, PyArrayMethods, ToPyArray};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::ops::Range;

/// Every scheme of the library's catalogue, as JSON (name, aliases, summary, orders,
/// noise kinds, calculus, Lévy areas, adaptivity).
#[pyfunction]
pub fn schemes() -> String {
    serde_json::Value::Array(SchemeKind::ALL.iter().map(|k| k.to_json()).collect()).to_string()
}

/// Chunks of `chunk` paths (aligned to multiples of `chunk`) covering `paths`.
fn chunks(paths: Range<u64>, chunk: u64) -> Vec<Range<u64>> {
    let chunk = chunk.max(1);
    let mut out = Vec::new();
    let mut a = paths.start;
    while a < paths.end {
        let b = ((a / chunk + 1) * chunk).min(paths.end);
        out.push(a..b);
        a = b;
    }
    out
}

/// Runs `body` on each chunk with the GIL released, merging statistics exactly and
/// concatenating per-path records; between chunks: Ctrl-C and the progress callback.
fn over_chunks(
    py: Python<'_>,
    paths: Range<u64>,
    chunk: u64,
    progress: Option<&Bound<'_, PyAny>>,
    body: impl Fn(Range<u64>) -> Result<Output> + Sync,
) -> PyResult<Output> {
    let mut stats: Option<EnsembleStatistics> = None;
    let mut records = Vec::new();
    let mut per_path = false;
    for range in chunks(paths, chunk) {
        let n = range.end - range.start;
        let out = py
            .detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(range))))
            .map_err(|_| {
                crate::errors::NoetherError::new_err("internal error: a Rust panic (please report it)")
            })?
            .py_err()?;
        match out {
            Output::Statistics(s) => {
                stats = Some(match stats {
                    None => s,
                    Some(prev) => prev.merge(s).py_err()?,
                })
            }
            Output::Paths(mut r) => {
                per_path = true;
                records.append(&mut r);
            }
        }
        py.check_signals()?;
        if let Some(p) = progress {
            p.call1((n,))?;
        }
    }
    if per_path {
        Ok(Output::Paths(records))
    } else {
        stats
            .map(Output::Statistics)
            .ok_or_else(|| to_py(Error::invalid("paths", "empty", "at least one path is needed")))
    }
}

/// Renders statistics: `times`, `mean`, `var`, `std`, `ci_low`, `ci_high` (`T × k`),
/// counts, the seed and the exact state (bytes, for merging).
fn stats_dict<'py>(py: Python<'py>, stats: &EnsembleStatistics) -> PyResult<Bound<'py, PyDict>> {
    let (t, k) = (stats.times().len(), stats.functionals());
    let n = stats.finished();
    let mut mean = Vec::with_capacity(t * k);
    let mut var = Vec::with_capacity(t * k);
    let mut low = Vec::with_capacity(t * k);
    let mut high = Vec::with_capacity(t * k);
    for i in 0..t {
        for j in 0..k {
            let (m, se) = (stats.mean(i, j), stats.std_error(i, j));
            // the level is valid, so this cannot fail; NaN bounds are what "undefined" means here
            let ci = MeanInterval::from_moments(m, se, n, 0.95).unwrap_or(MeanInterval {
                mean: m,
                std_error: se,
                ci_low: f64::NAN,
                ci_high: f64::NAN,
                level: 0.95,
                n,
            });
            mean.push(ci.mean);
            var.push(stats.variance(i, j));
            low.push(ci.ci_low);
            high.push(ci.ci_high);
        }
    }
    let shaped = |v: Vec<f64>| PyArray1::from_vec(py, v).reshape([t, k]);
    let d = PyDict::new(py);
    d.set_item("times", stats.times().to_pyarray(py))?;
    d.set_item("mean", shaped(mean)?)?;
    d.set_item("var", shaped(var)?)?;
    d.set_item("ci_low", shaped(low)?)?;
    d.set_item("ci_high", shaped(high)?)?;
    d.set_item("finished", n)?;
    d.set_item("diverged", stats.divergent())?;
    d.set_item(
        "first_divergence",
        stats.first_divergence().map(|e| e.to_string()),
    )?;
    d.set_item("seed", stats.seed())?;
    d.set_item("paths", (stats.paths().start, stats.paths().end))?;
    d.set_item("state", PyBytes::new(py, &encode(stats)?))?;
    Ok(d)
}

fn encode(stats: &EnsembleStatistics) -> PyResult<Vec<u8>> {
    bincode::serialize(stats)
        .map_err(|e| crate::errors::NoetherError::new_err(format!("cannot encode statistics: {e}")))
}

fn decode(bytes: &[u8]) -> PyResult<EnsembleStatistics> {
    bincode::deserialize(bytes).map_err(|e| {
        crate::errors::InvalidParameter::new_err(format!("not the state of an ensemble's statistics: {e}"))
    })
}

/// Renders per-path records: `values` (`P × T × k`, NaN for paths that did not finish),
/// `finals` (`P × d`), `ok` (`P`), the divergence count and the first error.
fn paths_dict<'py>(
    py: Python<'py>,
    records: Vec<Result<PathRecord>>,
    times: &[f64],
    k: usize,
    d: usize,
    start: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let p = records.len();
    let t = times.len();
    let mut values = vec![f64::NAN; p * t * k];
    let mut finals = vec![f64::NAN; p * d];
    let mut ok = vec![false; p];
    let mut diverged = 0u64;
    let mut first: Option<String> = None;
    for (i, r) in records.into_iter().enumerate() {
        match r {
            Ok(rec) => {
                ok[i] = true;
                for a in 0..t {
                    for b in 0..k {
                        values[(i * t + a) * k + b] = rec.values[(a, b)];
                    }
                }
                if rec.final_state.len() == d {
                    finals[i * d..(i + 1) * d].copy_from_slice(rec.final_state.as_slice());
                }
            }
            Err(e @ Error::Divergence { .. }) => {
                diverged += 1;
                first.get_or_insert_with(|| e.to_string());
            }
            Err(e) => return Err(to_py(e)),
        }
    }
    let dict = PyDict::new(py);
    dict.set_item("times", times.to_pyarray(py))?;
    dict.set_item("values", PyArray1::from_vec(py, values).reshape([p, t, k])?)?;
    dict.set_item("finals", PyArray1::from_vec(py, finals).reshape([p, d])?)?;
    dict.set_item("ok", PyArray1::from_vec(py, ok))?;
    dict.set_item("diverged", diverged)?;
    dict.set_item("first_divergence", first)?;
    dict.set_item("paths", (start, start + p as u64))?;
    Ok(dict)
}

/// Runs an ensemble of a built-in model; see `noether_sde.simulate`.
#[pyfunction]
#[pyo3(signature = (model, method, eta, batch, weight_decay, t_end, dt, seed, paths, theta0, save_every, save_at, observables, keep_paths, threads, chunk, progress))]
#[allow(clippy::too_many_arguments)]
pub fn simulate_model<'py>(
    py: Python<'py>,
    model: &Model,
    method: &str,
    eta: f64,
    batch: usize,
    weight_decay: f64,
    t_end: f64,
    dt: Option<f64>,
    seed: u64,
    paths: (u64, u64),
    theta0: Option<Vec<f64>>,
    save_every: Option<f64>,
    save_at: Option<Vec<f64>>,
    observables: Vec<String>,
    keep_paths: bool,
    threads: usize,
    chunk: u64,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = Settings {
        method: Method::parse(method).py_err()?,
        eta,
        batch,
        weight_decay,
        t_end,
        dt,
    };
    settings.check().py_err()?;
    check_paths(&(paths.0..paths.1)).py_err()?;
    settings.check_data(model.built.setup.data.as_ref()).py_err()?;
    let theta0 = match theta0 {
        Some(t) => model.check_theta(&t)?,
        None => model.start().clone(),
    };
    let times = resolve_save_times(t_end, save_every, save_at).py_err()?;
    if observables.is_empty() {
        return Err(to_py(Error::invalid(
            "observables",
            "[]",
            "record at least one observable",
        )));
    }
    let chosen = observables
        .iter()
        .map(|o| Observable::parse(o))
        .collect::<Result<Vec<_>>>()
        .py_err()?;
    let recorded = Recorded::resolve(&chosen, &model.built).py_err()?;
    let k = recorded.columns().len();
    let setup = &model.built.setup;
    let record = Functionals::new(times.clone(), k, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        recorded.eval(setup, x, out)
    })
    .py_err()?;
    let ensemble = |range: Range<u64>| {
        let e = Ensemble::new(seed, range);
        if threads > 0 {
            e.threads(threads)
        } else {
            e
        }
    };
    let out = over_chunks(py, paths.0..paths.1, chunk, progress.as_ref(), |range| {
        run::run(setup, &settings, &theta0, &ensemble(range), &record, keep_paths).map(|(c, _)| c)
    })?;
    match out {
        Output::Statistics(s) => stats_dict(py, &s),
        Output::Paths(r) => paths_dict(py, r, &times, k, theta0.len(), paths.0),
    }
}

/// Runs an ensemble of a Python-defined SDE by EM, Heun or RK-Milstein on the lockstep driver,
/// recording the state at the save times; see `noether_sde.simulate`.
#[pyfunction]
#[pyo3(signature = (sde, method, x0, t0, t_end, dt, seed, paths, save_every, save_at, keep_paths, chunk, progress))]
#[allow(clippy::too_many_arguments)]
pub fn simulate_sde<'py>(
    py: Python<'py>,
    sde: &PySde,
    method: &str,
    x0: Vec<f64>,
    t0: f64,
    t_end: f64,
    dt: f64,
    seed: u64,
    paths: (u64, u64),
    save_every: Option<f64>,
    save_at: Option<Vec<f64>>,
    keep_paths: bool,
    chunk: u64,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    // the lockstep twin of the catalogue scheme (LockstepProblem::new checks the rest:
    // calculus, noise, and that Milstein has its derivative terms: scalar, diagonal or
    // additive noise for a Python Sde)
    let lanes = match Method::parse(method).py_err()? {
        Method::Sde(kind) => LockstepScheme::from_name(kind.info().name),
        _ => None,
    };
    let Some(lanes) = lanes else {
        return Err(crate::errors::Incompatible::new_err(format!(
            "method `{method}`: a Python-defined Sde runs on the lockstep driver, which has em, milstein \
             (scalar, diagonal or additive noise), milstein_levy, heun (Stratonovich) and rk_milstein"
        )));
    };
    if lanes == LockstepScheme::Milstein {
        use noether_sde::sde::{Noise, SdeExt};
        let noise = sde.noise();
        let instead = match noise {
            Noise::General if sde.noise_dim() > 1 => Some(
                "Milstein-type schemes need Lévy areas there: use method=\"milstein_levy\" or \
                 \"rk_milstein\" (strong order 1, each path's areas drawn on the same lanes)",
            ),
            Noise::Commutative | Noise::General => Some(
                "use method=\"rk_milstein\" (derivative-free Runge–Kutta Milstein: strong order 1 \
                 on commutative noise and with one Brownian motion, on the same lanes)",
            ),
            _ => None,
        };
        if let Some(instead) = instead {
            return Err(crate::errors::Incompatible::new_err(format!(
                "method `milstein`: a Python-defined Sde runs Milstein on scalar, diagonal or additive \
                 noise; this SDE has {} noise: {instead}",
                noise.name()
            )));
        }
    }
    check_paths(&(paths.0..paths.1)).py_err()?;
    let span = TimeSpan::new(t0, t_end, dt).py_err()?;
    // save times relative to t0 (`save_every`), or absolute (`save_at`)
    let times: Vec<f64> = match save_at {
        Some(at) if save_every.is_none() => at,
        at => resolve_save_times(t_end - t0, save_every, at)
            .py_err()?
            .into_iter()
            .map(|t| t + t0)
            .collect(),
    };
    let x0 = DVector::from_vec(x0);
    let d = x0.len();
    let problem = LockstepProblem::new(sde, lanes, x0, span).py_err()?;
    let record = Functionals::new(times.clone(), d, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out.copy_from_slice(x.as_slice())
    })
    .py_err()?;
    sde.failure.clear();
    let result = over_chunks(py, paths.0..paths.1, chunk, progress.as_ref(), |range| {
        let ensemble = Ensemble::new(seed, range).sequential();
        if keep_paths {
            ensemble.per_path(&problem, &record).map(Output::Paths)
        } else {
            ensemble
                .lockstep_statistics(&problem, &record, chunk as usize, |_| Ok(()))
                .map(Output::Statistics)
        }
    });
    if let Some(e) = sde.failure.take() {
        return Err(e);
    }
    match result? {
        Output::Statistics(s) => stats_dict(py, &s),
        Output::Paths(r) => paths_dict(py, r, &times, d, d, paths.0),
    }
}

/// Runs an ensemble of a Python-defined model (`ns.models.Custom`) by SGD, GD or the
/// SGD-SDE's Euler–Maruyama on the block-gradient route, recording `θ` at the save
/// times per path (the observables are computed from it in Python); see
/// `noether_sde.simulate`.
#[pyfunction]
#[pyo3(signature = (model, method, eta, batch, weight_decay, t_end, dt, seed, paths, theta0, save_every, save_at, threads, chunk, progress))]
#[allow(clippy::too_many_arguments)]
pub fn simulate_custom<'py>(
    py: Python<'py>,
    model: &PyCustom,
    method: &str,
    eta: f64,
    batch: usize,
    weight_decay: f64,
    t_end: f64,
    dt: Option<f64>,
    seed: u64,
    paths: (u64, u64),
    theta0: Vec<f64>,
    save_every: Option<f64>,
    save_at: Option<Vec<f64>>,
    threads: usize,
    chunk: u64,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let block_method = match Method::parse(method).py_err()? {
        Method::Sgd => BlockMethod::Sgd,
        Method::Gd => BlockMethod::Gd,
        Method::Sde(SchemeKind::EulerMaruyama) => BlockMethod::EulerMaruyama,
        Method::Sde(_) => {
            return Err(crate::errors::Incompatible::new_err(format!(
                "method `{method}`: a Custom model runs sgd, gd and em (Euler–Maruyama on its SGD-SDE); \
                 other schemes need its diffusion's derivatives"
            )))
        }
    };
    check_paths(&(paths.0..paths.1)).py_err()?;
    if block_method != BlockMethod::EulerMaruyama && dt.is_some() {
        return Err(to_py(Error::invalid(
            "dt",
            dt.unwrap_or(0.0),
            "applies to the SDE methods only (sgd and gd step by eta)",
        )));
    }
    let cfg = SgdConfig::new(eta, batch).with_weight_decay(weight_decay);
    let theta0 = DVector::from_vec(theta0);
    let problem = if block_method == BlockMethod::EulerMaruyama {
        let span = TimeSpan::new(0.0, t_end, dt.unwrap_or(eta / 2.0)).py_err()?;
        BlockSgdProblem::euler_maruyama(model, cfg, theta0, span)
    } else {
        BlockSgdProblem::discrete(model, cfg, block_method, theta0, t_end)
    }
    .py_err()?;
    let d = problem.dim();
    let times = resolve_save_times(t_end, save_every, save_at).py_err()?;
    let record = Functionals::new(times.clone(), d, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out.copy_from_slice(x.as_slice())
    })
    .py_err()?;
    model.failure.clear();
    let result = over_chunks(py, paths.0..paths.1, chunk, progress.as_ref(), |range| {
        let ensemble = Ensemble::new(seed, range);
        let ensemble = if threads > 0 {
            ensemble.threads(threads)
        } else {
            ensemble
        };
        ensemble.per_path(&problem, &record).map(Output::Paths)
    });
    if let Some(e) = model.failure.take() {
        return Err(e);
    }
    match result? {
        Output::Paths(r) => paths_dict(py, r, &times, d, d, paths.0),
        Output::Statistics(_) => unreachable!("the custom route records per path"),
    }
}

/// Merges the exact states of adjacent shards (in path order) into one.
#[pyfunction]
pub fn merge_states<'py>(py: Python<'py>, states: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyBytes>> {
    let mut iter = states.iter();
    let first = iter
        .next()
        .ok_or_else(|| crate::errors::InvalidParameter::new_err("no states to merge"))?;
    let mut merged = decode(first)?;
    for s in iter {
        merged = merged.merge(decode(s)?).py_err()?;
    }
    Ok(PyBytes::new(py, &encode(&merged)?))
}

/// The statistics dictionary of an exact state.
#[pyfunction]
pub fn summarise_state<'py>(py: Python<'py>, state: Vec<u8>) -> PyResult<Bound<'py, PyDict>> {
    stats_dict(py, &decode(&state)?)
}

/// Runs the paper-reproduction report (the library's `report::run`, as the CLI's
/// `reproduce`) into `out`; returns the summary (claims, files) as JSON.
#[pyfunction]
#[pyo3(signature = (out, quick, only=None, force=false))]
pub fn reproduce(
    py: Python<'_>,
    out: std::path::PathBuf,
    quick: bool,
    only: Option<Vec<String>>,
    force: bool,
) -> PyResult<String> {
    let options = noether_sde::report::ReportOptions {
        out_dir: out,
        quick,
        progress: false,
        only: only.unwrap_or_default(),
        force,
    };
    let summary = py.detach(|| noether_sde::report::run(&options)).py_err()?;
    serde_json::to_string(&summary).map_err(|e| crate::errors::NoetherError::new_err(e.to_string()))
}
