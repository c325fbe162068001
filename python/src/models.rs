//! The built-in models, built from numpy arrays and keywords: the model, an optional data
//! set (the user's own, or drawn from the model's population), a start `θ₀` and the
//! symmetry whose charge is recorded (THEORY §2, §6).

use crate::errors::{to_py, IntoPy};
use nalgebra::{DMatrix, DVector};
use noether_sde::analysis::fixed_points::unbalanced_start;
use noether_sde::models::{
    Activation, LinearRegression, MatrixFactorization, NormalizedLinear, ScalarFactorization, TwoLayerNet,
};
use noether_sde::rng::{SeedTree, Stream};
use noether_sde::sgd::{Dataset, Model as _, SgdConfig};
use noether_sde::symmetry::noether::fixed_point;
use noether_sde::symmetry::ExponentialSymmetry;
use noether_sde::{Error, Result};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, ToPyArray};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rand::RngExt;
use rand_distr::StandardNormal;

use noether_sde::models::routes::needs_data;

/// One built-in model.
pub enum AnyModel {
    /// Scalar factorisation.
    Scalar(ScalarFactorization),
    /// Matrix factorisation.
    Matrix(MatrixFactorization),
    /// Normalised linear layer.
    Normalized(NormalizedLinear),
    /// Linear regression.
    Linear(LinearRegression),
    /// Two-layer network (optionally residual).
    Net(TwoLayerNet),
}

/// Runs `$body` with `$m` bound to the concrete model inside an [`AnyModel`].
macro_rules! with_model {
    ($any:expr, $m:ident => $body:expr) => {
        match $any {
            $crate::models::AnyModel::Scalar($m) => $body,
            $crate::models::AnyModel::Matrix($m) => $body,
            $crate::models::AnyModel::Normalized($m) => $body,
            $crate::models::AnyModel::Linear($m) => $body,
            $crate::models::AnyModel::Net($m) => $body,
        }
    };
}
pub(crate) use with_model;

/// SGD and its SDE on the data set or the population, the risk and the sharpness: the
/// library's glue, the same as the CLI's.
pub use noether_sde::models::routes::ModelRoutes as ModelOps;

/// A built-in model with its data, start and symmetry (see `noether_sde.models`).
#[pyclass(frozen, module = "noether_sde._core")]
pub struct Model {
    /// The model.
    pub inner: AnyModel,
    /// The data set (`None`: fresh samples from the population each step).
    pub data: Option<Dataset>,
    /// The symmetry whose charge `θᵀAθ` is recorded (`None`: `‖θ‖²` is recorded).
    pub symmetry: Option<ExponentialSymmetry>,
    /// The default start.
    pub theta0: DVector<f64>,
    /// The kind.
    pub kind: String,
}

impl Model {
    /// The recorded charge: `θᵀAθ`, or `‖θ‖²` without a symmetry.
    pub fn charge_at(&self, theta: &DVector<f64>) -> f64 {
        match &self.symmetry {
            Some(s) => s.charge(theta),
            None => theta.norm_squared(),
        }
    }

    /// `L(θ)`.
    pub fn risk(&self, theta: &DVector<f64>) -> f64 {
        with_model!(&self.inner, m => m.risk(self.data.as_ref(), theta))
    }

    /// `λ_max(∇²L(θ))` (NaN when the power iteration fails).
    pub fn sharpness_at(&self, theta: &DVector<f64>) -> f64 {
        with_model!(&self.inner, m => m.sharpness(self.data.as_ref(), theta)).unwrap_or(f64::NAN)
    }

    /// Checks a parameter vector's length and entries.
    pub fn check_theta(&self, theta: &[f64]) -> PyResult<DVector<f64>> {
        let v = DVector::from_column_slice(theta);
        noether_sde::error::check_vector("theta", &v, self.theta0.len()).py_err()?;
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
        self.theta0.len()
    }

    /// The model's kind.
    #[getter]
    fn kind(&self) -> &str {
        &self.kind
    }

    /// The default start `θ₀`.
    #[getter]
    fn theta0<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.theta0.as_slice().to_pyarray(py)
    }

    /// Size of the data set (0 for fresh samples).
    #[getter]
    fn data_size(&self) -> usize {
        self.data.as_ref().map_or(0, Dataset::len)
    }

    /// The generator `A` of the exponential symmetry, or `None`.
    fn generator<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray2<f64>>> {
        self.symmetry.as_ref().map(|s| matrix_to_py(py, s.generator()))
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
        self.map_rows(py, theta, |m, v| {
            with_model!(&m.inner, mm => mm.sharpness(m.data.as_ref(), v)).py_err()
        })
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
        let Some(sym) = &self.symmetry else {
            return Err(crate::errors::Incompatible::new_err(format!(
                "{} has no exponential symmetry, so there is no Noether charge to predict",
                self.kind
            )));
        };
        let cfg = SgdConfig::new(eta, batch).with_weight_decay(weight_decay);
        let data = self.data.as_ref();
        let (fp, fast) = with_model!(&self.inner, m => {
            let sde = m.sde(data, cfg).py_err()?;
            let fp = fixed_point(sym, &sde, &theta0, 0.0).py_err()?;
            let fast = m.sharpness(data, &fp.theta).py_err()? + 2.0 * weight_decay;
            (fp, fast)
        });
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
        if let AnyModel::Matrix(m) = &self.inner {
            let eq = m.equilibrium().py_err()?;
            out.set_item("equilibrium", matrix_to_py(py, &m.charge_matrix(&eq)))?;
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
        if d != self.theta0.len() {
            return Err(to_py(Error::DimensionMismatch {
                what: "theta (columns)",
                expected: self.theta0.len(),
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

/// Keyword arguments of [`build_model`].
struct Kw<'a, 'py>(&'a Bound<'py, PyDict>);

impl<'py> Kw<'_, 'py> {
    fn get<T: FromPyObjectOwned<'py>>(&self, key: &str) -> PyResult<Option<T>> {
        match self.0.get_item(key)? {
            Some(v) if !v.is_none() => Ok(Some(v.extract::<T>().map_err(|e| {
                let e: PyErr = e.into();
                crate::errors::InvalidParameter::new_err(format!("`{key}`: {e}"))
            })?)),
            _ => Ok(None),
        }
    }
    fn float(&self, key: &str, default: f64) -> PyResult<f64> {
        Ok(self.get::<f64>(key)?.unwrap_or(default))
    }
    fn matrix(&self, key: &str) -> PyResult<Option<DMatrix<f64>>> {
        Ok(self.get::<PyReadonlyArray2<'py, f64>>(key)?.map(|a| {
            let (r, c) = a.as_array().dim();
            DMatrix::from_row_iterator(r, c, a.as_array().iter().copied())
        }))
    }
    fn vector(&self, key: &str) -> PyResult<Option<DVector<f64>>> {
        Ok(self
            .get::<PyReadonlyArray1<'py, f64>>(key)?
            .map(|a| DVector::from_iterator(a.as_array().len(), a.as_array().iter().copied())))
    }
}

use pyo3::conversion::FromPyObjectOwned;

/// The user's data set from `X` (`N × p`) and `y` (`N × q`), if given.
fn user_data(kw: &Kw<'_, '_>) -> PyResult<Option<Dataset>> {
    match (kw.matrix("X")?, kw.matrix("y")?) {
        (Some(x), Some(y)) => Dataset::new(&x, &y).map(Some).py_err(),
        (None, None) => Ok(None),
        _ => Err(crate::errors::InvalidParameter::new_err(
            "give both X and y (the data set), or neither",
        )),
    }
}

/// The data set: the user's, or `n` samples drawn with `draw(n, seed)`, or none.
fn data_set(kw: &Kw<'_, '_>, draw: impl Fn(usize, u64) -> Result<Dataset>) -> PyResult<Option<Dataset>> {
    if let Some(d) = user_data(kw)? {
        return Ok(Some(d));
    }
    let n = kw.get::<usize>("n")?.unwrap_or(0);
    if n == 0 {
        return Ok(None);
    }
    draw(n, kw.get::<u64>("seed")?.unwrap_or(0)).map(Some).py_err()
}

fn check_data_shape(data: &Option<Dataset>, p: usize, q: usize) -> PyResult<()> {
    if let Some(d) = data {
        if d.input_dim() != p {
            return Err(to_py(Error::DimensionMismatch {
                what: "X (columns)",
                expected: p,
                got: d.input_dim(),
            }));
        }
        if d.target_dim() != q {
            return Err(to_py(Error::DimensionMismatch {
                what: "y (columns)",
                expected: q,
                got: d.target_dim(),
            }));
        }
    }
    Ok(())
}

/// Builds a built-in model of `kind` from keywords (called by `noether_sde.models`).
#[pyfunction]
#[pyo3(signature = (kind, **kwargs))]
pub fn build_model(py: Python<'_>, kind: &str, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Model> {
    let empty = PyDict::new(py);
    let kw = Kw(kwargs.unwrap_or(&empty));
    let theta0_given = kw.vector("theta0")?;
    let (inner, data, symmetry, theta0) = match kind {
        "scalar_factorization" => {
            let model = ScalarFactorization::new(kw.float("v", 1.0)?, kw.float("sigma", 1.0)?).py_err()?;
            let data = data_set(&kw, |n, seed| {
                Dataset::from_population(&model, n, &mut SeedTree::new(seed).rng(0, Stream::Init))
            })?;
            check_data_shape(&data, 1, 1)?;
            let theta0 = theta0_given.unwrap_or_else(|| DVector::from_vec(vec![2.0, 0.5]));
            let sym = ExponentialSymmetry::rescaling(2, &[0], &[1]).py_err()?;
            (AnyModel::Scalar(model), data, Some(sym), theta0)
        }
        "matrix_factorization" => {
            let teacher = kw.matrix("teacher")?.ok_or_else(|| {
                crate::errors::InvalidParameter::new_err(
                    "`teacher`: the teacher matrix V (d_out × d_in) is required",
                )
            })?;
            let (d_out, d_in) = teacher.shape();
            let hidden = kw.get::<usize>("hidden")?.unwrap_or(d_in.min(d_out).max(1));
            let sigma_x = kw
                .vector("sigma_x")?
                .unwrap_or_else(|| DVector::from_element(d_in, 1.0));
            let sigma_eps = kw
                .vector("sigma_eps")?
                .unwrap_or_else(|| DVector::from_element(d_out, 1.0));
            let model = MatrixFactorization::new(teacher, hidden, sigma_x, sigma_eps).py_err()?;
            let data = data_set(&kw, |n, s| model.dataset(n, s))?;
            check_data_shape(&data, d_in, d_out)?;
            let theta0 = match theta0_given {
                Some(t) => t,
                None => unbalanced_start(&model).py_err()?,
            };
            let identity = DMatrix::identity(hidden, hidden);
            let sym = ExponentialSymmetry::matrix_factorization(&identity, d_in, hidden, d_out).py_err()?;
            (AnyModel::Matrix(model), data, Some(sym), theta0)
        }
        "normalized_linear" => {
            let teacher = kw.vector("teacher")?.ok_or_else(|| {
                crate::errors::InvalidParameter::new_err("`teacher`: the teacher direction is required")
            })?;
            let d = teacher.len();
            let variances = kw
                .vector("input_variances")?
                .unwrap_or_else(|| DVector::from_element(d, 1.0));
            let model = NormalizedLinear::new(teacher, variances, kw.float("sigma", 0.5)?).py_err()?;
            let data = match user_data(&kw)? {
                Some(d) => Some(d),
                None => {
                    let n = kw.get::<usize>("n")?.unwrap_or(256);
                    if n == 0 {
                        return Err(to_py(needs_data()));
                    }
                    Some(model.dataset(n, kw.get::<u64>("seed")?.unwrap_or(0)).py_err()?)
                }
            };
            check_data_shape(&data, d, 1)?;
            let theta0 =
                theta0_given.unwrap_or_else(|| model.teacher() * kw.float("norm0", 1.0).unwrap_or(1.0));
            let all: Vec<usize> = (0..d).collect();
            let sym = ExponentialSymmetry::scaling(d, &all).py_err()?;
            (AnyModel::Normalized(model), data, Some(sym), theta0)
        }
        "linear_regression" => {
            let user = user_data(&kw)?;
            let d = match (&user, kw.vector("theta_star")?) {
                (Some(data), _) => data.input_dim(),
                (None, Some(t)) => t.len(),
                (None, None) => {
                    return Err(crate::errors::InvalidParameter::new_err(
                        "give the data set (X, y) or the teacher `theta_star`",
                    ))
                }
            };
            // with the user's data the teacher only enters the population forms, which a
            // finite data set does not use
            let theta_star = kw.vector("theta_star")?.unwrap_or_else(|| DVector::zeros(d));
            let variances = kw
                .vector("sigma_x")?
                .unwrap_or_else(|| DVector::from_element(d, 1.0));
            noether_sde::error::check_vector("sigma_x", &variances, d).py_err()?;
            let model = LinearRegression::new(
                theta_star,
                DMatrix::from_diagonal(&variances),
                kw.float("sigma", 0.5)?,
            )
            .py_err()?;
            let data = match user {
                Some(u) => Some(u),
                None => data_set(&kw, |n, s| model.dataset(n, s))?,
            };
            check_data_shape(&data, d, 1)?;
            let theta0 = theta0_given.unwrap_or_else(|| DVector::zeros(d));
            (AnyModel::Linear(model), data, None, theta0)
        }
        "two_layer" => {
            let data = user_data(&kw)?.ok_or_else(|| {
                crate::errors::InvalidParameter::new_err(
                    "TwoLayer needs the data set X (N × d_in), y (N × d_out)",
                )
            })?;
            let (d_in, d_out) = (data.input_dim(), data.target_dim());
            let width = kw.get::<usize>("width")?.unwrap_or(2);
            let activation = match kw.get::<String>("activation")?.as_deref().unwrap_or("tanh") {
                "tanh" => Activation::Tanh,
                "linear" | "identity" => Activation::Identity,
                "relu" => Activation::Relu,
                other => {
                    return Err(crate::errors::InvalidParameter::new_err(format!(
                        "activation `{other}`: the library has \"tanh\", \"relu\" and \"linear\""
                    )))
                }
            };
            let skip = kw.get::<bool>("skip")?.unwrap_or(false);
            // the teacher only generates data, and the user brought theirs
            let teacher = DMatrix::zeros(d_out, d_in);
            let model = if skip {
                TwoLayerNet::residual(width, teacher, activation, 1.0, 0.0)
            } else {
                TwoLayerNet::new(width, teacher, activation, 1.0, 0.0)
            }
            .py_err()?;
            let theta0 = match theta0_given {
                Some(t) => t,
                None => {
                    let mut rng = SeedTree::new(kw.get::<u64>("seed")?.unwrap_or(0)).rng(2, Stream::Init);
                    let d = model.dim();
                    DVector::from_fn(d, |_, _| 0.5 * rng.sample::<f64, _>(StandardNormal))
                }
            };
            let identity = DMatrix::identity(width, width);
            let sym = ExponentialSymmetry::matrix_factorization(&identity, d_in, width, d_out).py_err()?;
            (AnyModel::Net(model), Some(data), Some(sym), theta0)
        }
        other => {
            return Err(crate::errors::InvalidParameter::new_err(format!(
                "unknown model kind `{other}`"
            )));
        }
    };
    let dim = with_model!(&inner, m => m.dim());
    noether_sde::error::check_vector("theta0", &theta0, dim).py_err()?;
    Ok(Model {
        inner,
        data,
        symmetry,
        theta0,
        kind: kind.to_string(),
    })
}
