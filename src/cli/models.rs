//! The models the CLI knows, their `--param key=value` parameters with defaults, and
//! how each becomes a model, a start `θ₀`, an optional data set and a charge.

use super::{CliError, CliResult};
use nalgebra::{DMatrix, DVector};
use noether_sde::analysis::fixed_points::{
    default_matrix_factorization, default_network, default_network_start, unbalanced_start,
};
pub use noether_sde::models::routes::ModelRoutes as CliModel;
use noether_sde::models::{
    Activation, LinearRegression, MatrixFactorization, NormalizedLinear, ScalarFactorization, TwoLayerNet,
};
use noether_sde::rng::{SeedTree, Stream};
use noether_sde::sgd::{Dataset, Model};
use noether_sde::symmetry::{ExponentialSymmetry, Symmetric};
use noether_sde::{Error, Result};
use rand::RngExt;
use rand_distr::StandardNormal;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The kind of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A real number.
    Float,
    /// A non-negative integer.
    Count,
    /// Comma-separated real numbers.
    List,
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// A file name.
    File,
}

/// One `--param` of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    /// The key.
    pub key: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// The default, as it would be written on the command line.
    pub default: &'static str,
    /// What it is.
    pub help: &'static str,
}

const fn p(key: &'static str, kind: Kind, default: &'static str, help: &'static str) -> ParamSpec {
    ParamSpec {
        key,
        kind,
        default,
        help,
    }
}

/// A model the CLI knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    /// Name used with `--model`.
    pub name: &'static str,
    /// One line.
    pub summary: &'static str,
    /// What `simulate` reports as the charge.
    pub charge: &'static str,
    /// Parameters.
    pub params: &'static [ParamSpec],
    /// Default `--eta`.
    pub eta: f64,
    /// Default `--batch`.
    pub batch: usize,
    /// Default `--weight-decay`.
    pub weight_decay: f64,
    /// Default `--time`.
    pub time: f64,
    /// Default `simulate --paths`.
    pub paths: u64,
}

const N_POPULATION: &str =
    "data-set size; 0 = fresh samples each step (online SGD, the population SDE with closed-form noise)";
const N_FINITE: &str = "data-set size (the model has no closed-form noise, so it needs a data set)";
const SEED: &str =
    "seed of the model's random parts (data set, random teacher or start); --seed drives the runs";

/// Every model, in the order `models` lists them.
pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "scalar_factorization",
        summary: "ℓ = (u w x − y)², x ~ N(0,1), y = v x + σε (THEORY §6); rescaling symmetry u → λu, w → w/λ",
        charge: "u² − w² (exact rescaling symmetry)",
        params: &[
            p("v", Kind::Float, "1", "teacher v (the valley of minima is u w = v)"),
            p("sigma", Kind::Float, "1", "label-noise standard deviation σ"),
            p("u0", Kind::Float, "2", "start u (the defaults start on the valley, charge 3.75)"),
            p("w0", Kind::Float, "0.5", "start w"),
            p("n", Kind::Count, "0", N_POPULATION),
            p("seed", Kind::Count, "0", SEED),
        ],
        eta: 0.05,
        batch: 4,
        weight_decay: 0.0,
        time: 10.0,
        paths: 256,
    },
    ModelSpec {
        name: "matrix_factorization",
        summary: "ℓ = ‖U W x − y‖², x ~ N(0, Σx), y = V x + ε, ε ~ N(0, Σε) (THEORY §6); U → U e^{λM}, W → e^{−λM} W",
        charge: "‖U‖² − ‖W‖² = Tr(UᵀU − WWᵀ) (the M = I member of the symmetry)",
        params: &[
            p("d_in", Kind::Count, "4", "input dimension"),
            p("hidden", Kind::Count, "3", "hidden width"),
            p("d_out", Kind::Count, "2", "output dimension"),
            p(
                "sigma_x",
                Kind::List,
                "1,0.5,0.25,2",
                "diagonal input variances Σx (ones when d_in ≠ 4)",
            ),
            p(
                "sigma_eps",
                Kind::List,
                "0.25,1",
                "diagonal label-noise variances Σε (ones when d_out ≠ 2)",
            ),
            p(
                "teacher",
                Kind::List,
                "",
                "teacher V, d_out × d_in entries row by row [default: the report's V for d_in = 4, d_out = 2, else N(0, 1/d_in) entries from seed]",
            ),
            p(
                "start",
                Kind::Choice(&["unbalanced", "random", "balanced", "file"]),
                "unbalanced",
                "unbalanced = the report's unbalanced global minimum; random = N(0, init²) entries; balanced = the balanced-and-aligned global minimum (THEORY §6.2); file = θ₀ from init_file",
            ),
            p("init_u", Kind::Float, "1", "scale of the random U (start=random)"),
            p("init_w", Kind::Float, "1", "scale of the random W (start=random)"),
            p(
                "init_seed",
                Kind::Count,
                "",
                "seed of the random start (start=random) [default: seed]",
            ),
            p(
                "init_file",
                Kind::File,
                "",
                "θ₀ = [vec U; vec W] (column-major: U is d_out × hidden, W hidden × d_in), D numbers separated by commas, spaces or newlines (start=file)",
            ),
            p(
                "n",
                Kind::Count,
                "0",
                "data-set size; 0 = fresh samples each step (the population SDE, general noise)",
            ),
            p(
                "seed",
                Kind::Count,
                "0",
                "seed of the data set, the generated teacher V (the report's V for d_in = 4, d_out = 2) and, unless init_seed is given, the random start",
            ),
        ],
        eta: 0.02,
        batch: 2,
        weight_decay: 0.0,
        time: 10.0,
        paths: 64,
    },
    ModelSpec {
        name: "normalized_linear",
        summary: "ℓ = (θᵀx/‖θ‖ − y)², x ~ N(0, diag Σx), y = θ̂*ᵀx + σε (THEORY §6); scale symmetry θ → λθ",
        charge: "‖θ‖² (exact scale symmetry)",
        params: &[
            p("teacher", Kind::List, "1,1,0,0", "teacher direction (normalised)"),
            p("input_variances", Kind::List, "1,0.5,2,1", "diagonal input variances"),
            p("sigma", Kind::Float, "0.5", "label-noise standard deviation σ"),
            p("norm0", Kind::Float, "1", "start θ₀ = norm0 · teacher direction"),
            p("n", Kind::Count, "256", N_POPULATION),
            p("seed", Kind::Count, "0", SEED),
        ],
        eta: 0.05,
        batch: 4,
        weight_decay: 0.01,
        time: 20.0,
        paths: 64,
    },
    ModelSpec {
        name: "linear_regression",
        summary: "ℓ = (θᵀx − y)², x ~ N(0, diag Σx), y = θ*ᵀx + σε (THEORY §6); no symmetry",
        charge: "‖θ‖² (linear regression has no exponential symmetry: not a conserved or Noether charge)",
        params: &[
            p("theta_star", Kind::List, "1,-0.5,0.25", "teacher θ*"),
            p(
                "d",
                Kind::Count,
                "",
                "dimension with a generated teacher θ* (N(0, 1/d) entries from seed; instead of theta_star) [default: the length of theta_star]",
            ),
            p("sigma_x", Kind::List, "1,0.5,0.25", "diagonal input variances Σx"),
            p("sigma", Kind::Float, "0.5", "label-noise standard deviation σ"),
            p("theta0", Kind::List, "0,0,0", "start θ₀ (zeros of the teacher's length by default)"),
            p("n", Kind::Count, "0", N_POPULATION),
            p("seed", Kind::Count, "0", SEED),
        ],
        eta: 0.05,
        batch: 4,
        weight_decay: 0.0,
        time: 10.0,
        paths: 256,
    },
    ModelSpec {
        name: "tanh_net",
        summary: "f(x) = U φ(W x), d_in = 2, h = 2, d_out = 1, x ~ N(0, s²I), y = [1, −0.5] x + 0.5ε (THEORY §7)",
        charge: "‖U‖² − ‖W‖² (exact for φ = identity or relu, approximate for tanh)",
        params: &NET_PARAMS,
        eta: 0.05,
        batch: 4,
        weight_decay: 0.0,
        time: 10.0,
        paths: 16,
    },
    ModelSpec {
        name: "residual",
        summary: "f(x) = x + U φ(W x), d = 2, h = 2, x ~ N(0, s²I), y = [[0.5, 0.2], [−0.3, 0.4]] x + 0.5ε (THEORY §7)",
        charge: "‖U‖² − ‖W‖² (exact for φ = identity or relu, approximate for tanh)",
        params: &NET_PARAMS,
        eta: 0.05,
        batch: 4,
        weight_decay: 0.0,
        time: 10.0,
        paths: 16,
    },
];

const NET_PARAMS: [ParamSpec; 4] = [
    p(
        "activation",
        Kind::Choice(&["tanh", "identity", "relu"]),
        "tanh",
        "φ: tanh breaks the rescaling symmetry, identity and relu (positively homogeneous) keep it",
    ),
    p(
        "input_scale",
        Kind::Float,
        "1",
        "input scale s (tanh is nearly linear for small s)",
    ),
    p("n", Kind::Count, "256", N_FINITE),
    p("seed", Kind::Count, "0", SEED),
];

/// The spec of `name`.
///
/// # Errors
/// An unknown model (exit 2), listing the known ones.
pub fn spec(name: &str) -> CliResult<&'static ModelSpec> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
        CliError::input(format!(
            "--model {name}: unknown model (known: {})",
            MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// `models` output as text.
pub fn models_text() -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for m in MODELS {
        let _ = writeln!(s, "{}\n  {}\n  charge: {}", m.name, m.summary, m.charge);
        let _ = writeln!(
            s,
            "  defaults: --eta {} --batch {} --weight-decay {} --time {} (simulate --paths {})",
            m.eta, m.batch, m.weight_decay, m.time, m.paths
        );
        for q in m.params {
            let _ = writeln!(
                s,
                "  --param {:<28} {}",
                format!("{}={}", q.key, q.default),
                q.help
            );
        }
        s.push('\n');
    }
    s
}

/// `models --json`: `{"models":[{"name","summary","charge","defaults":{..},"params":[{"key","kind","default","help"}]}]}`.
pub fn models_json() -> Value {
    let kind = |k: Kind| match k {
        Kind::Float => json!("float"),
        Kind::Count => json!("integer"),
        Kind::List => json!("list"),
        Kind::Choice(c) => json!({ "choice": c }),
        Kind::File => json!("file"),
    };
    json!({
        "models": MODELS.iter().map(|m| json!({
            "name": m.name,
            "summary": m.summary,
            "charge": m.charge,
            "defaults": {"eta": m.eta, "batch": m.batch, "weight_decay": m.weight_decay, "time": m.time, "paths": m.paths},
            "params": m.params.iter().map(|q| json!({
                "key": q.key, "kind": kind(q.kind), "default": q.default, "help": q.help,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The `--param key=value` values of one model, checked against its spec.
#[derive(Debug, Clone)]
pub struct Params {
    spec: &'static ModelSpec,
    given: BTreeMap<&'static str, String>,
    resolved: serde_json::Map<String, Value>,
}

impl Params {
    /// Parses `key=value` strings.
    ///
    /// # Errors
    /// Malformed pairs, unknown or repeated keys (exit 2).
    pub fn parse(spec: &'static ModelSpec, pairs: &[String]) -> CliResult<Self> {
        let mut given = BTreeMap::new();
        for pair in pairs {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| CliError::input(format!("--param {pair}: expected key=value")))?;
            let key = key.trim();
            let q = spec.params.iter().find(|q| q.key == key).ok_or_else(|| {
                CliError::input(format!(
                    "--param {key}: unknown parameter of model {} (known: {})",
                    spec.name,
                    spec.params.iter().map(|q| q.key).collect::<Vec<_>>().join(", ")
                ))
            })?;
            if given.insert(q.key, value.trim().to_string()).is_some() {
                return Err(CliError::input(format!("--param {key}: given twice")));
            }
        }
        Ok(Params {
            spec,
            given,
            resolved: serde_json::Map::new(),
        })
    }

    fn spec_of(&self, key: &str) -> &'static ParamSpec {
        self.spec
            .params
            .iter()
            .find(|q| q.key == key)
            .expect("keys are the spec's")
    }

    fn raw(&self, key: &'static str) -> (&str, bool) {
        match self.given.get(key) {
            Some(v) => (v.as_str(), true),
            None => (self.spec_of(key).default, false),
        }
    }

    /// Whether the user gave `key`.
    pub fn is_given(&self, key: &str) -> bool {
        self.given.contains_key(key)
    }

    fn float_of(key: &str, text: &str) -> CliResult<f64> {
        let v: f64 = text
            .parse()
            .map_err(|_| CliError::input(format!("--param {key}={text}: `{text}` is not a number")))?;
        if !v.is_finite() {
            return Err(CliError::input(format!("--param {key}={text}: must be finite")));
        }
        Ok(v)
    }

    /// A real parameter.
    pub fn float(&mut self, key: &'static str) -> CliResult<f64> {
        let (text, _) = self.raw(key);
        let v = Self::float_of(key, text)?;
        self.resolved.insert(key.into(), json!(v));
        Ok(v)
    }

    /// A non-negative integer parameter.
    pub fn count(&mut self, key: &'static str) -> CliResult<u64> {
        let (text, _) = self.raw(key);
        let v: u64 = text.parse().map_err(|_| {
            CliError::input(format!(
                "--param {key}={text}: `{text}` is not a non-negative integer"
            ))
        })?;
        self.resolved.insert(key.into(), json!(v));
        Ok(v)
    }

    /// A list parameter; `fallback` replaces the default when it is `Some`.
    pub fn list(&mut self, key: &'static str, fallback: Option<Vec<f64>>) -> CliResult<Vec<f64>> {
        let (text, given) = self.raw(key);
        let v = match (given, fallback) {
            (false, Some(f)) => f,
            _ => {
                if text.trim().is_empty() {
                    return Err(CliError::input(format!("--param {key}=: the list is empty")));
                }
                text.split(',')
                    .map(|t| Self::float_of(key, t.trim()))
                    .collect::<CliResult<Vec<f64>>>()?
            }
        };
        self.resolved.insert(key.into(), json!(v));
        Ok(v)
    }

    /// A non-negative integer parameter whose default is `fallback` (another parameter's
    /// value).
    pub fn count_or(&mut self, key: &'static str, fallback: u64) -> CliResult<u64> {
        if self.is_given(key) {
            return self.count(key);
        }
        self.resolved.insert(key.into(), json!(fallback));
        Ok(fallback)
    }

    /// The text of a given parameter (`None` when not given; not recorded until used).
    pub fn text(&mut self, key: &'static str) -> Option<String> {
        let v = self.given.get(key).cloned()?;
        self.resolved.insert(key.into(), json!(v));
        Some(v)
    }

    /// A choice parameter.
    pub fn choice(&mut self, key: &'static str) -> CliResult<&'static str> {
        let (text, _) = self.raw(key);
        let Kind::Choice(options) = self.spec_of(key).kind else {
            unreachable!("{key} is a choice")
        };
        let v = options.iter().find(|o| **o == text).ok_or_else(|| {
            CliError::input(format!(
                "--param {key}={text}: must be one of {}",
                options.join(", ")
            ))
        })?;
        self.resolved.insert(key.into(), json!(v));
        Ok(v)
    }

    /// The resolved values (defaults filled in) as a JSON object.
    pub fn resolved(&self) -> Value {
        Value::Object(self.resolved.clone())
    }
}

/// What `simulate` and `predict` report as the charge.
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
}

/// A built model: the model, its start, its data set (`None`: fresh samples) and charge.
pub struct Setup<M> {
    /// The model.
    pub model: M,
    /// `θ₀`.
    pub theta0: DVector<f64>,
    /// The data set, or `None` for the population.
    pub data: Option<Dataset>,
    /// The charge.
    pub charge: Charge,
}

/// One built model of any kind.
pub enum AnySetup {
    /// `scalar_factorization`.
    Scalar(Setup<ScalarFactorization>),
    /// `matrix_factorization`.
    Matrix(Setup<MatrixFactorization>),
    /// `normalized_linear`.
    Normalized(Setup<NormalizedLinear>),
    /// `linear_regression`.
    Linear(Setup<LinearRegression>),
    /// `tanh_net` and `residual`.
    Net(Setup<TwoLayerNet>),
}

/// Runs `$body` with `$s` bound to the [`Setup`] inside an [`AnySetup`].
macro_rules! with_setup {
    ($any:expr, $s:ident => $body:expr) => {
        match $any {
            $crate::cli::models::AnySetup::Scalar($s) => $body,
            $crate::cli::models::AnySetup::Matrix($s) => $body,
            $crate::cli::models::AnySetup::Normalized($s) => $body,
            $crate::cli::models::AnySetup::Linear($s) => $body,
            $crate::cli::models::AnySetup::Net($s) => $body,
        }
    };
}
pub(crate) use with_setup;

/// A model built from `--model` and `--param`s, with its resolved parameters.
pub struct Built {
    /// The spec.
    pub spec: &'static ModelSpec,
    /// Resolved parameters (JSON object).
    pub params: Value,
    /// The model.
    pub setup: AnySetup,
}

/// Builds `name` from `pairs` (`key=value`).
///
/// # Errors
/// Unknown model or parameter, malformed or invalid values (exit 2).
pub fn build(name: &str, pairs: &[String]) -> CliResult<Built> {
    let spec = spec(name)?;
    let mut params = Params::parse(spec, pairs)?;
    let lib = |e: Error| CliError::library("--param", e);
    let setup = match spec.name {
        "scalar_factorization" => {
            let model = ScalarFactorization::new(params.float("v")?, params.float("sigma")?).map_err(lib)?;
            let theta0 = DVector::from_vec(vec![params.float("u0")?, params.float("w0")?]);
            let data = dataset(&mut params, sample_width(&model, theta0.len()), |n, seed| {
                Dataset::from_population(&model, n, &mut SeedTree::new(seed).rng(0, Stream::Init))
            })?;
            let charge = Charge::Symmetry(model.symmetry().map_err(lib)?);
            AnySetup::Scalar(Setup {
                model,
                theta0,
                data,
                charge,
            })
        }
        "matrix_factorization" => {
            let d_in = positive_count(&mut params, "d_in")?;
            let hidden = positive_count(&mut params, "hidden")?;
            let d_out = positive_count(&mut params, "d_out")?;
            check_parameters(
                "--param d_in/hidden/d_out",
                hidden.saturating_mul(d_in.saturating_add(d_out)),
            )?;
            let sigma_x = params.list("sigma_x", (d_in != 4).then(|| vec![1.0; d_in]))?;
            let sigma_eps = params.list("sigma_eps", (d_out != 2).then(|| vec![1.0; d_out]))?;
            let start = params.choice("start")?;
            let (init_u, init_w) = (params.float("init_u")?, params.float("init_w")?);
            let only_with = |key: &str, value: &str| {
                CliError::input(format!("--param {key}: only applies with --param start={value}"))
            };
            if start != "random" {
                for key in ["init_u", "init_w", "init_seed"] {
                    if params.is_given(key) {
                        return Err(only_with(key, "random"));
                    }
                }
            }
            if start != "file" && params.is_given("init_file") {
                return Err(only_with("init_file", "file"));
            }
            let seed = params.count("seed")?;
            let teacher = if params.is_given("teacher") {
                let entries = params.list("teacher", None)?;
                if entries.len() != d_out * d_in {
                    return Err(CliError::input(format!(
                        "--param teacher: {} entries, but V is d_out × d_in = {d_out} × {d_in} = {} (row by row)",
                        entries.len(),
                        d_out * d_in
                    )));
                }
                DMatrix::from_row_slice(d_out, d_in, &entries)
            } else if (d_in, d_out) == (4, 2) {
                default_matrix_factorization().map_err(lib)?.teacher().clone()
            } else {
                let mut rng = SeedTree::new(seed).rng(1, Stream::Init);
                let scale = 1.0 / (d_in as f64).sqrt();
                DMatrix::from_fn(d_out, d_in, |_, _| scale * rng.sample::<f64, _>(StandardNormal))
            };
            let model = MatrixFactorization::new(
                teacher,
                hidden,
                DVector::from_vec(sigma_x),
                DVector::from_vec(sigma_eps),
            )
            .map_err(lib)?;
            // the teacher used, given or generated, row by row
            params
                .resolved
                .insert("teacher".into(), json!(model.teacher().transpose().as_slice()));
            let dim = hidden * (d_in + d_out);
            let theta0 = match start {
                "random" => {
                    let init_seed = params.count_or("init_seed", seed)?;
                    let mut rng = SeedTree::new(init_seed).rng(2, Stream::Init);
                    let u = DMatrix::from_fn(d_out, hidden, |_, _| {
                        init_u * rng.sample::<f64, _>(StandardNormal)
                    });
                    let w =
                        DMatrix::from_fn(hidden, d_in, |_, _| init_w * rng.sample::<f64, _>(StandardNormal));
                    MatrixFactorization::pack(&u, &w)
                }
                "balanced" => model
                    .equilibrium()
                    .map_err(|e| CliError::library("--param start=balanced", e))?,
                "file" => {
                    let file = params
                        .text("init_file")
                        .ok_or_else(|| CliError::input("--param start=file: needs --param init_file=PATH"))?;
                    read_theta(&file, dim)?
                }
                _ => unbalanced_start(&model).map_err(lib)?,
            };
            let data = dataset(&mut params, sample_width(&model, theta0.len()), |n, s| {
                model.dataset(n, s)
            })?;
            let charge = Charge::Symmetry(model.symmetry().map_err(lib)?);
            AnySetup::Matrix(Setup {
                model,
                theta0,
                data,
                charge,
            })
        }
        "normalized_linear" => {
            let teacher = DVector::from_vec(params.list("teacher", None)?);
            check_parameters("--param teacher", teacher.len())?;
            let variances = DVector::from_vec(params.list("input_variances", None)?);
            let model = NormalizedLinear::new(teacher, variances, params.float("sigma")?).map_err(lib)?;
            let norm0 = params.float("norm0")?;
            if norm0 <= 0.0 {
                return Err(CliError::input(format!("--param norm0={norm0}: must be > 0")));
            }
            let theta0 = model.teacher() * norm0;
            let data = dataset(&mut params, sample_width(&model, theta0.len()), |n, s| {
                model.dataset(n, s)
            })?;
            let charge = Charge::Symmetry(model.symmetry().map_err(lib)?);
            AnySetup::Normalized(Setup {
                model,
                theta0,
                data,
                charge,
            })
        }
        "linear_regression" => {
            let theta_star = if params.is_given("d") {
                if params.is_given("theta_star") {
                    return Err(CliError::input(
                        "--param d: give either d (a generated teacher) or theta_star, not both",
                    ));
                }
                let d = params.count("d")? as usize;
                check_parameters("--param d", d)?;
                let seed = params.count("seed")?;
                let mut rng = SeedTree::new(seed).rng(1, Stream::Init);
                let scale = 1.0 / (d as f64).sqrt();
                let teacher = DVector::from_fn(d, |_, _| scale * rng.sample::<f64, _>(StandardNormal));
                params
                    .resolved
                    .insert("theta_star".into(), json!(teacher.as_slice()));
                teacher
            } else {
                DVector::from_vec(params.list("theta_star", None)?)
            };
            let d = theta_star.len();
            check_parameters("--param theta_star", d)?;
            let variances = params.list("sigma_x", (d != 3).then(|| vec![1.0; d]))?;
            if variances.len() != d {
                return Err(CliError::input(format!(
                    "--param sigma_x: {} variances for a teacher of length {d}",
                    variances.len()
                )));
            }
            if variances.iter().any(|&v| v <= 0.0) {
                return Err(CliError::input("--param sigma_x: variances must be > 0"));
            }
            let sigma_x = DMatrix::from_diagonal(&DVector::from_vec(variances));
            let model = LinearRegression::new(theta_star, sigma_x, params.float("sigma")?).map_err(lib)?;
            let theta0 = DVector::from_vec(params.list("theta0", (d != 3).then(|| vec![0.0; d]))?);
            if theta0.len() != d {
                return Err(CliError::input(format!(
                    "--param theta0: length {} for a teacher of length {d}",
                    theta0.len()
                )));
            }
            let data = dataset(&mut params, sample_width(&model, theta0.len()), |n, s| {
                model.dataset(n, s)
            })?;
            AnySetup::Linear(Setup {
                model,
                theta0,
                data,
                charge: Charge::NormSquared,
            })
        }
        "tanh_net" | "residual" => {
            let residual = spec.name == "residual";
            let activation = match params.choice("activation")? {
                "identity" => Activation::Identity,
                "relu" => Activation::Relu,
                _ => Activation::Tanh,
            };
            let scale = params.float("input_scale")?;
            let model = default_network(residual, activation, scale).map_err(lib)?;
            let theta0 = default_network_start(residual);
            let data = dataset(&mut params, sample_width(&model, theta0.len()), |n, s| {
                model.dataset(n, s)
            })?;
            if data.is_none() {
                return Err(CliError::input(format!(
                    "--param n=0: {} has no closed-form noise and needs a data set (n ≥ 1)",
                    spec.name
                )));
            }
            let charge = Charge::Symmetry(model.symmetry().map_err(lib)?);
            AnySetup::Net(Setup {
                model,
                theta0,
                data,
                charge,
            })
        }
        _ => unreachable!("every spec is built"),
    };
    Ok(Built {
        spec,
        params: params.resolved(),
        setup,
    })
}

/// `θ₀` from a file of `dim` numbers separated by commas, spaces or newlines.
fn read_theta(file: &str, dim: usize) -> CliResult<DVector<f64>> {
    let flag = format!("--param init_file={file}");
    let meta = std::fs::metadata(file).map_err(|e| CliError::input(format!("{flag}: cannot read: {e}")))?;
    if meta.len() > 1 << 20 {
        return Err(CliError::input(format!(
            "{flag}: {} bytes; a start of {dim} numbers takes far less (at most 1 MiB)",
            meta.len()
        )));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| CliError::input(format!("{flag}: cannot read: {e}")))?;
    let values = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| CliError::input(format!("{flag}: `{t}` is not a finite number")))
        })
        .collect::<CliResult<Vec<f64>>>()?;
    if values.len() != dim {
        return Err(CliError::input(format!(
            "{flag}: {} numbers, but θ has hidden × (d_in + d_out) = {dim}",
            values.len()
        )));
    }
    Ok(DVector::from_vec(values))
}

fn positive_count(params: &mut Params, key: &'static str) -> CliResult<usize> {
    let v = params.count(key)?;
    if v == 0 || v > 4096 {
        return Err(CliError::input(format!(
            "--param {key}={v}: must be between 1 and 4096"
        )));
    }
    Ok(v as usize)
}

/// The most parameters a model may have: the CLI forms dense `D × D` matrices (the
/// symmetry generator, noise covariances), `8 D²` bytes each (128 MiB at the limit), and
/// `O(D³)` factorisations.
pub const MAX_PARAMETERS: usize = 4096;

/// The most bytes the data set and its per-sample gradients may take (1 GiB).
pub const MAX_DATA_BYTES: f64 = (1u64 << 30) as f64;

/// Refuses a model with `d` parameters before anything of size `d²` is allocated.
fn check_parameters(flag: &str, d: usize) -> CliResult<()> {
    if d == 0 {
        return Err(CliError::input(format!(
            "{flag}: the model would have no parameters"
        )));
    }
    if d > MAX_PARAMETERS {
        let bytes = 8.0 * (d as f64).powi(2);
        return Err(CliError::input(format!(
            "{flag}: the model would have {d} parameters; its dense {d}×{d} matrices take {:.1} GB each (at most {MAX_PARAMETERS} parameters); make the model smaller",
            bytes / 1e9
        )));
    }
    Ok(())
}

/// Floats stored per data sample: the sample itself and its per-sample gradient.
fn sample_width<M: Model>(model: &M, dim: usize) -> usize {
    model.input_dim() + model.target_dim() + dim
}

/// The data set of `n` (param) samples from `seed` (param), or `None` for `n = 0`;
/// `width` floats per sample bound its memory ([`MAX_DATA_BYTES`]).
fn dataset(
    params: &mut Params,
    width: usize,
    make: impl Fn(usize, u64) -> Result<Dataset>,
) -> CliResult<Option<Dataset>> {
    let n = params.count("n")?;
    let seed = params.count("seed")?;
    if n == 0 {
        return Ok(None);
    }
    if n > 1_000_000 {
        return Err(CliError::input(format!("--param n={n}: at most 1000000 samples")));
    }
    let bytes = 8.0 * n as f64 * width as f64;
    if bytes > MAX_DATA_BYTES {
        return Err(CliError::input(format!(
            "--param n={n}: the data set and its per-sample gradients ({width} floats per sample) would take {:.1} GB, more than {:.1} GB; lower --param n or make the model smaller",
            bytes / 1e9,
            MAX_DATA_BYTES / 1e9
        )));
    }
    make(n as usize, seed)
        .map(Some)
        .map_err(|e| CliError::library("--param n", e))
}
