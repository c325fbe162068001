//! The registry of built-in models: each model's name, parameters (kind, default, help),
//! default SGD settings, the charge it records (THEORY §2, §6) and how it is built from a
//! checked parameter map. The command line (`--model NAME --param k=v`, `models`) and the
//! Python constructors (`ns.models.*`) both read it, so a model parameter is one edit in
//! the model's file here (`spec/<model>.rs`).

mod linear_regression;
mod matrix_factorization;
mod normalized_linear;
pub mod observables;
mod params;
pub mod predict;
pub mod run;
mod scalar_factorization;
mod two_layer;

pub use params::{ParamValue, Params};

use super::{LinearRegression, MatrixFactorization, NormalizedLinear, ScalarFactorization, TwoLayerNet};
use crate::error::{Error, Result};
use crate::sgd::{Dataset, Model};
use crate::symmetry::ExponentialSymmetry;
use nalgebra::DVector;
use serde_json::{json, Value};

/// The kind of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    /// A real number.
    Float,
    /// A non-negative integer.
    Count,
    /// Real numbers (comma-separated on the command line, an array in Python).
    List,
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// A file name.
    File,
    /// `true` or `false`.
    Flag,
}

impl ParamKind {
    /// As `models --json` writes it.
    pub fn to_json(self) -> Value {
        match self {
            ParamKind::Float => json!("float"),
            ParamKind::Count => json!("integer"),
            ParamKind::List => json!("list"),
            ParamKind::Choice(c) => json!({ "choice": c }),
            ParamKind::File => json!("file"),
            ParamKind::Flag => json!("flag"),
        }
    }
}

/// One parameter of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    /// The key.
    pub key: &'static str,
    /// Its kind.
    pub kind: ParamKind,
    /// The default, as it would be written on the command line (empty: computed, see
    /// the help).
    pub default: &'static str,
    /// What it is, with its valid range.
    pub help: &'static str,
}

/// Shorthand for a [`ParamSpec`].
pub(crate) const fn p(
    key: &'static str,
    kind: ParamKind,
    default: &'static str,
    help: &'static str,
) -> ParamSpec {
    ParamSpec {
        key,
        kind,
        default,
        help,
    }
}

/// The default run settings of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    /// Learning rate η.
    pub eta: f64,
    /// Batch size B.
    pub batch: usize,
    /// Weight decay γ.
    pub weight_decay: f64,
    /// Time horizon.
    pub time: f64,
    /// Number of paths of `simulate`.
    pub paths: u64,
}

/// Where a model's data set may come from besides its own population.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserData {
    /// The user may bring a data set (`X`, `y` in Python).
    Optional,
    /// The model trains only on the user's data set (not on the command line).
    Required,
}

/// A built-in model: everything the fronts need to offer it.
#[derive(Debug, Clone, Copy)]
pub struct ModelSpec {
    /// Canonical name (`--model NAME`, the Python model's `kind`).
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// One line.
    pub summary: &'static str,
    /// What the recorded charge is.
    pub charge: &'static str,
    /// Parameters.
    pub params: &'static [ParamSpec],
    /// Default run settings.
    pub defaults: Defaults,
    /// Whether it takes the user's data set.
    pub user_data: UserData,
    /// The observables it has besides those of every model (charge, loss, sharpness, θ).
    pub extra_observables: &'static [observables::Observable],
    /// Builds the model from checked parameters and the front's inputs.
    pub build: fn(&mut Params, Inputs) -> Result<Setup>,
}

impl ModelSpec {
    /// The parameter `key`.
    pub fn param(&self, key: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|q| q.key == key)
    }

    /// Builds the model from `params` (checked against this spec) and `inputs`; `θ₀`
    /// from `inputs` replaces the model's default start.
    ///
    /// # Errors
    /// Invalid parameter values, a user data set or start of the wrong shape.
    pub fn build(&'static self, mut params: Params, inputs: Inputs) -> Result<Built> {
        debug_assert_eq!(params.spec().name, self.name);
        let theta0 = inputs.theta0.clone();
        let mut setup = (self.build)(&mut params, inputs)?;
        if let Some(t) = theta0 {
            setup.theta0 = t;
        }
        let dim = setup.model.dim();
        crate::error::check_vector("theta0", &setup.theta0, dim)?;
        Ok(Built {
            spec: self,
            params: params.resolved(),
            setup,
        })
    }

    /// `models --json`: name, summary, charge, defaults, parameters.
    pub fn to_json(&self) -> Value {
        let d = self.defaults;
        json!({
            "name": self.name,
            "aliases": self.aliases,
            "summary": self.summary,
            "charge": self.charge,
            "extra_observables": self.extra_observables.iter().map(|o| o.name()).collect::<Vec<_>>(),
            "defaults": {"eta": d.eta, "batch": d.batch, "weight_decay": d.weight_decay, "time": d.time, "paths": d.paths},
            "params": self.params.iter().map(|q| json!({
                "key": q.key, "kind": q.kind.to_json(), "default": q.default, "help": q.help,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Every model, in the order `models` lists them.
pub const MODELS: &[ModelSpec] = &[
    scalar_factorization::SPEC,
    matrix_factorization::SPEC,
    normalized_linear::SPEC,
    linear_regression::SPEC,
    two_layer::TANH_NET,
    two_layer::RESIDUAL,
    two_layer::TWO_LAYER,
];

/// The models that can be built from parameters alone (the command line's).
pub fn standalone() -> impl Iterator<Item = &'static ModelSpec> {
    MODELS.iter().filter(|m| m.user_data != UserData::Required)
}

/// The model called `name` (or one of its aliases).
///
/// # Errors
/// [`Error::InvalidParameter`] naming `model`, listing the known ones.
pub fn find(name: &str) -> Result<&'static ModelSpec> {
    MODELS
        .iter()
        .find(|m| m.name == name || m.aliases.contains(&name))
        .ok_or_else(|| {
            Error::invalid(
                "model",
                name,
                format!(
                    "unknown model (known: {})",
                    MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
                ),
            )
        })
}

/// What a front brings besides parameters: the user's data set and start.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The user's data set (`X`, `y`).
    pub data: Option<Dataset>,
    /// The user's start `θ₀`.
    pub theta0: Option<DVector<f64>>,
}

impl Inputs {
    /// The user's data set after checking its widths against the model's.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] for `X` or `y` of the wrong width.
    pub fn data_of(&self, input_dim: usize, target_dim: usize) -> Result<Option<Dataset>> {
        if let Some(d) = &self.data {
            check_width("X (columns)", input_dim, d.input_dim())?;
            check_width("y (columns)", target_dim, d.target_dim())?;
        }
        Ok(self.data.clone())
    }
}

fn check_width(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::DimensionMismatch { what, expected, got })
    }
}

/// What a run reports as the charge.
#[derive(Debug, Clone)]
pub enum Charge {
    /// The charge `θᵀAθ` of an exponential symmetry.
    Symmetry(ExponentialSymmetry),
    /// `‖θ‖²` of a model without a symmetry.
    NormSquared,
}

impl Charge {
    /// The charge at `θ`.
    pub fn at(&self, theta: &DVector<f64>) -> f64 {
        match self {
            Charge::Symmetry(s) => s.charge(theta),
            Charge::NormSquared => theta.norm_squared(),
        }
    }

    /// The symmetry, if the charge is one's.
    pub fn symmetry(&self) -> Option<&ExponentialSymmetry> {
        match self {
            Charge::Symmetry(s) => Some(s),
            Charge::NormSquared => None,
        }
    }
}

/// One built-in model of any kind.
#[derive(Debug, Clone)]
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

/// Runs `$body` with `$m` bound to the concrete model inside an [`AnyModel`] (a
/// reference).
#[macro_export]
#[doc(hidden)]
macro_rules! __with_model {
    ($any:expr, $m:ident => $body:expr) => {
        match $any {
            $crate::models::spec::AnyModel::Scalar($m) => $body,
            $crate::models::spec::AnyModel::Matrix($m) => $body,
            $crate::models::spec::AnyModel::Normalized($m) => $body,
            $crate::models::spec::AnyModel::Linear($m) => $body,
            $crate::models::spec::AnyModel::Net($m) => $body,
        }
    };
}
pub use crate::__with_model as with_model;

impl AnyModel {
    /// Number of parameters `D`.
    pub fn dim(&self) -> usize {
        with_model!(self, m => m.dim())
    }
}

/// A built model: the model, its start, its data set (`None`: fresh samples) and charge.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The model.
    pub model: AnyModel,
    /// `θ₀`.
    pub theta0: DVector<f64>,
    /// The data set, or `None` for the population.
    pub data: Option<Dataset>,
    /// The charge.
    pub charge: Charge,
}

impl Setup {
    /// `L(θ)`: the mean loss on the data set, or the population risk.
    pub fn risk(&self, theta: &DVector<f64>) -> f64 {
        use super::routes::ModelRoutes;
        with_model!(&self.model, m => m.risk(self.data.as_ref(), theta))
    }

    /// `λ_max(∇²L(θ))` by power iteration.
    ///
    /// # Errors
    /// As the power iteration.
    pub fn sharpness(&self, theta: &DVector<f64>) -> Result<f64> {
        use super::routes::ModelRoutes;
        with_model!(&self.model, m => m.sharpness(self.data.as_ref(), theta))
    }
}

/// A model built from its spec and parameters, with the resolved parameters.
#[derive(Debug, Clone)]
pub struct Built {
    /// The spec.
    pub spec: &'static ModelSpec,
    /// Resolved parameters (a JSON object).
    pub params: Value,
    /// The model.
    pub setup: Setup,
}

/// Builds the model `name` from command-line `key=value` pairs.
///
/// # Errors
/// Unknown model or parameter, malformed or invalid values.
pub fn build_from_text(name: &str, pairs: &[String]) -> Result<Built> {
    let spec = find(name)?;
    spec.build(Params::parse(spec, pairs)?, Inputs::default())
}

/// The most parameters a built-in model may have: the fronts form dense `D × D` matrices
/// (the symmetry generator, noise covariances), `8 D²` bytes each (128 MiB at the limit),
/// and `O(D³)` factorisations.
pub const MAX_PARAMETERS: usize = 4096;

/// The most bytes a drawn data set and its per-sample gradients may take (1 GiB).
pub const MAX_DATA_BYTES: f64 = (1u64 << 30) as f64;

/// Refuses a model with `d` parameters (`key` is the parameter that sets it) before
/// anything of size `d²` is allocated.
///
/// # Errors
/// [`Error::InvalidParameter`] for `d = 0` or `d >` [`MAX_PARAMETERS`].
pub(crate) fn check_parameters(key: &'static str, value: impl std::fmt::Display, d: usize) -> Result<()> {
    if d == 0 {
        return Err(Error::invalid(key, value, "the model would have no parameters"));
    }
    if d > MAX_PARAMETERS {
        let bytes = 8.0 * (d as f64).powi(2);
        return Err(Error::invalid(key, value, format!(
            "the model would have {d} parameters; its dense {d}×{d} matrices take {:.1} GB each (at most {MAX_PARAMETERS} parameters); make the model smaller",
            bytes / 1e9
        )));
    }
    Ok(())
}

/// The data set: the user's (`inputs`, checked against the model's widths), or `n`
/// (param) samples drawn by `make(n, seed)`, or `None` for `n = 0`. A drawn data set and
/// its per-sample gradients must fit in [`MAX_DATA_BYTES`].
///
/// # Errors
/// A user data set of the wrong width; `n` too large; as `make`.
pub(crate) fn dataset<M: Model>(
    params: &mut Params,
    inputs: &Inputs,
    model: &M,
    make: impl Fn(usize, u64) -> Result<Dataset>,
) -> Result<Option<Dataset>> {
    if inputs.data.is_some() {
        return inputs.data_of(model.input_dim(), model.target_dim());
    }
    let n = params.count("n")?;
    let seed = params.count("seed")?;
    if n == 0 {
        return Ok(None);
    }
    if n > 1_000_000 {
        return Err(Error::invalid("n", n, "at most 1000000 samples"));
    }
    let width = model.input_dim() + model.target_dim() + model.dim();
    let bytes = 8.0 * n as f64 * width as f64;
    if bytes > MAX_DATA_BYTES {
        return Err(Error::invalid("n", n, format!(
            "the data set and its per-sample gradients ({width} floats per sample) would take {:.1} GB, more than {:.1} GB; lower n or make the model smaller",
            bytes / 1e9,
            MAX_DATA_BYTES / 1e9
        )));
    }
    make(n as usize, seed).map(Some)
}

/// The run defaults of the two small models with closed forms (scalar factorisation,
/// linear regression): η = 0.05, B = 4, no weight decay, T = 10, 256 paths.
pub(crate) const SMALL_MODEL_DEFAULTS: Defaults = Defaults {
    eta: 0.05,
    batch: 4,
    weight_decay: 0.0,
    time: 10.0,
    paths: 256,
};

/// Help shared by the models' `n` and `seed` parameters.
pub(crate) const N_POPULATION: &str =
    "data-set size; 0 = fresh samples each step (online SGD, the population SDE with closed-form noise)";
/// Help of `seed`.
pub(crate) const SEED: &str =
    "seed of the model's random parts (data set, random teacher or start); --seed drives the runs";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_builds_with_its_defaults() {
        for spec in standalone() {
            let built = build_from_text(spec.name, &[]).expect(spec.name);
            assert_eq!(built.setup.theta0.len(), built.setup.model.dim(), "{}", spec.name);
        }
    }

    #[test]
    fn every_default_is_recorded_or_computed() {
        for spec in MODELS {
            for q in spec.params {
                assert!(!q.help.is_empty(), "{}.{}", spec.name, q.key);
            }
        }
    }

    #[test]
    fn unknown_keys_and_models_are_invalid_parameters() {
        assert!(matches!(
            find("nope"),
            Err(Error::InvalidParameter { name: "model", .. })
        ));
        let spec = find("scalar_factorization").expect("known");
        let bad = Params::parse(spec, &["nope=1".into()]);
        assert!(matches!(bad, Err(Error::InvalidParameter { name: "param", .. })));
    }
}
