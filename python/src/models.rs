//! The built-in models, built from numpy arrays and keywords: the model, an optional data
//! set (the user's own, or drawn from the model's population), a start `θ₀` and the
//! symmetry whose charge is recorded (THEORY §2, §6).

use crate::errors::{to_py, IntoPy};
use nalgebra::{DMatrix, DVector};
use noether_sde::models::spec::predict::{equilibrium, predict as noether_prediction};
use noether_sde::models::spec::{self as registry, Built, Inputs, ParamValue, Params};
use noether_sde::sgd::{Dataset, SgdConfig};
use noether_sde::Error;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, ToPyArray};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};

/// A built-in model with its data, start and symmetry (see `noether_sde.models`): the
/// library's registry entry built from the keywords.
#[pyclass(frozen, module = "noether_sde._core")]
pub struct Model {
    /// The model, its data set (`None`: fresh samples each step), start and charge.
    pub built: Built,
}

impl Model {
    /// The recorded charge: `θᵀAθ`, or `‖θ‖²` without a symmetry.
    pub fn charge_at(&self, theta: &DVector<f64>) -> f64 {
        self.built.setup.charge.at(theta)
    }

    /// `L(θ)`.
    pub fn risk(&self, theta: &DVector<f64>) -> f64 {
        self.built.setup.risk(theta)
    }

    /// The default start.
    pub fn start(&self) -> &DVector<f64> {
        &self.built.setup.theta0
    }

    /// Checks a parameter vector's length and entries.
    pub fn check_theta(&self, theta: &[f64]) -> PyResult<DVector<f64>> {
        let v = DVector::from_column_slice(theta);
        noether_sde::error::check_vector("theta", &v, self.start().len()).py_err()?;
        Ok(v)
    }
}

fn rows(theta: &PyReadonlyArray2<'_, f64>) -> PyResult<(usize, usize, Vec<f64>)> {
    let (p, d) = theta.as_array().dim();
    Ok((p, d, theta.as_array().iter().copied().collect()))
}

#[pymethods]
impl Model {
    /// Number of parameters `d`.
    #[getter]
    fn dim(&self) -> usize {
        self.start().len()
    }

    /// The model's kind.
    #[getter]
    fn kind(&self) -> &str {
        self.built.spec.name
    }

    /// The default start `θ₀`.
    #[getter]
    fn theta0<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.start().as_slice().to_pyarray(py)
    }

    /// Size of the data set (0 for fresh samples).
    #[getter]
    fn data_size(&self) -> usize {
        self.built.setup.data.as_ref().map_or(0, Dataset::len)
    }

    /// The generator `A` of the exponential symmetry, or `None`.
    fn generator<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray2<f64>>> {
        self.built
            .setup
            .charge
            .symmetry()
            .map(|s| matrix_to_py(py, s.generator()))
    }

    /// The charge at each row of `theta` (`P × d`).
    fn charge_rows<'py>(
        &self,
        py: Python<'py>,
        theta: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.map_rows(py, theta, |m, v| Ok(m.charge_at(v)))
    }

    /// The risk at each row of `theta`.
    fn loss_rows<'py>(
        &self,
        py: Python<'py>,
        theta: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.map_rows(py, theta, |m, v| Ok(m.risk(v)))
    }

    /// The sharpness at each row of `theta`.
    fn sharpness_rows<'py>(
        &self,
        py: Python<'py>,
        theta: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.map_rows(py, theta, |m, v| m.built.setup.sharpness(v).py_err())
    }

    /// The theory's predictions at `theta0` for SGD with `eta`, `batch`, `weight_decay`
    /// (THEORY §4–§5): the fixed point of the Noether flow on the orbit, its charge, the
    /// slow rate κ, the fast rate and their ratio; the equilibrium `UᵀU − WWᵀ` for matrix
    /// factorisation.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        theta0: PyReadonlyArray1<'py, f64>,
        eta: f64,
        batch: usize,
        weight_decay: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let theta0 = self.check_theta(theta0.as_slice()?)?;
        let Some(sym) = self.built.setup.charge.symmetry() else {
            return Err(crate::errors::Incompatible::new_err(format!(
                "{} has no exponential symmetry, so there is no Noether charge to predict",
                self.built.spec.name
            )));
        };
        let cfg = SgdConfig::new(eta, batch).with_weight_decay(weight_decay);
        let p = noether_prediction(&self.built.setup, sym, &theta0, cfg).py_err()?;
        let (fp, fast) = (p.fixed_point, p.fast_rate);
        let out = PyDict::new(py);
        out.set_item("start_charge", self.charge_at(&theta0))?;
        out.set_item("fixed_point_charge", fp.charge)?;
        out.set_item("fixed_point_lambda", fp.lambda)?;
        out.set_item("fixed_point", fp.theta.as_slice().to_pyarray(py))?;
        out.set_item("slow_rate", fp.slow_rate)?;
        out.set_item("fast_rate", fast)?;
        out.set_item("ratio", fp.slow_rate / fast)?;
        out.set_item("slow_timescale", 1.0 / fp.slow_rate)?;
        out.set_item("fast_timescale", 1.0 / fast)?;
        if let Some((m, eq)) = equilibrium(&self.built.setup).py_err()? {
            out.set_item("equilibrium", matrix_to_py(py, &m))?;
            out.set_item("equilibrium_theta", eq.as_slice().to_pyarray(py))?;
        }
        Ok(out)
    }
}

impl Model {
    fn map_rows<'py>(
        &self,
        py: Python<'py>,
        theta: PyReadonlyArray2<'py, f64>,
        f: impl Fn(&Model, &DVector<f64>) -> PyResult<f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (p, d, flat) = rows(&theta)?;
        if d != self.start().len() {
            return Err(to_py(Error::DimensionMismatch {
                what: "theta (columns)",
                expected: self.start().len(),
                got: d,
            }));
        }
        let mut out = Vec::with_capacity(p);
        for r in 0..p {
            let v = self.check_theta(&flat[r * d..(r + 1) * d])?;
            out.push(f(self, &v)?);
        }
        Ok(PyArray1::from_vec(py, out))
    }
}

/// A row-major numpy matrix.
pub fn matrix_to_py<'py>(py: Python<'py>, m: &DMatrix<f64>) -> Bound<'py, PyArray2<f64>> {
    let rows: Vec<Vec<f64>> = m.row_iter().map(|r| r.iter().copied().collect()).collect();
    PyArray2::from_vec2(py, &rows).expect("rows of equal length")
}

/// A keyword's value as a registry parameter value (by its Python type).
fn param_value(key: &str, v: &Bound<'_, PyAny>) -> PyResult<ParamValue> {
    if v.is_instance_of::<PyBool>() {
        return Ok(ParamValue::Flag(v.extract()?));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(ParamValue::Text(v.extract()?));
    }
    if let Ok(i) = v.extract::<i64>() {
        return Ok(ParamValue::Int(i));
    }
    if let Ok(x) = v.extract::<f64>() {
        return Ok(ParamValue::Float(x));
    }
    if let Ok(a) = v.extract::<PyReadonlyArray1<'_, f64>>() {
        return Ok(ParamValue::Vector(a.as_array().iter().copied().collect()));
    }
    if let Ok(a) = v.extract::<PyReadonlyArray2<'_, f64>>() {
        let (r, c) = a.as_array().dim();
        return Ok(ParamValue::Matrix(DMatrix::from_row_iterator(
            r,
            c,
            a.as_array().iter().copied(),
        )));
    }
    Err(crate::errors::InvalidParameter::new_err(format!(
        "`{key}`: expected a number, a string, a flag or a float64 array, got {}",
        v.get_type().name()?
    )))
}

/// A float64 matrix keyword (a row-major numpy array).
fn matrix(key: &str, v: &Bound<'_, PyAny>) -> PyResult<DMatrix<f64>> {
    let a = v
        .extract::<PyReadonlyArray2<'_, f64>>()
        .map_err(|e| crate::errors::InvalidParameter::new_err(format!("`{key}`: {e}")))?;
    let (r, c) = a.as_array().dim();
    Ok(DMatrix::from_row_iterator(r, c, a.as_array().iter().copied()))
}

/// Builds the built-in model `kind` of the library's registry from keywords (called by
/// `noether_sde.models`): `X`, `y` (the user's data set) and `theta0` (the start) besides
/// the model's parameters.
#[pyfunction]
#[pyo3(signature = (kind, **kwargs))]
pub fn build_model(kind: &str, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Model> {
    let spec = registry::find(kind).py_err()?;
    let (mut x, mut y, mut theta0, mut given) = (None, None, None, Vec::new());
    for (key, value) in kwargs.into_iter().flat_map(|d| d.iter()) {
        let key: String = key.extract()?;
        if value.is_none() {
            continue;
        }
        match key.as_str() {
            "X" => x = Some(matrix("X", &value)?),
            "y" => y = Some(matrix("y", &value)?),
            "theta0" => {
                let t = value
                    .extract::<PyReadonlyArray1<'_, f64>>()
                    .map_err(|e| crate::errors::InvalidParameter::new_err(format!("`theta0`: {e}")))?;
                theta0 = Some(DVector::from_iterator(
                    t.as_array().len(),
                    t.as_array().iter().copied(),
                ));
            }
            _ => {
                let v = param_value(&key, &value)?;
                given.push((key, v));
            }
        }
    }
    let data = match (x, y) {
        (Some(x), Some(y)) => Some(Dataset::new(&x, &y).py_err()?),
        (None, None) => None,
        _ => {
            return Err(crate::errors::InvalidParameter::new_err(
                "give both X and y (the data set), or neither",
            ))
        }
    };
    let params = Params::new(spec, given).py_err()?;
    let built = spec.build(params, Inputs { data, theta0 }).py_err()?;
    Ok(Model { built })
}
