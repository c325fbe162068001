//! `convergence`: one study of the library's convergence suite (the order of a scheme
//! on a problem with an exact or fine-grid reference, with its 95% interval), or, with
//! `--param`, `--dts`, `--reference-offset`, `--scheme all` or `--view work-precision`,
//! a work–precision set ([`noether_sde::analysis::convergence::work_precision`]): every
//! scheme's error with its standard error against steps, evaluations and wall time per
//! path (THEORY §8).

use super::{CliError, CliResult};
use noether_sde::analysis::convergence::suite::{run_one, SuiteConfig, ROWS};
use noether_sde::analysis::convergence::work_precision::{
    self as wp, ErrorKind, WorkPrecision, WorkPrecisionConfig,
};
use noether_sde::scheme::catalogue::SchemeKind;
use serde_json::{json, Value};

/// The problems of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Problem {
    /// Geometric Brownian motion, exact solution.
    Gbm,
    /// Ornstein–Uhlenbeck (additive noise), fine-grid reference.
    Ou,
    /// A two-dimensional problem with non-commutative noise, fine-grid reference.
    Noncommutative,
    /// The double well `dX = (X − X³) dt + σ dW` (additive noise), fine-grid reference.
    #[value(name = "double_well", alias = "double-well")]
    DoubleWell,
    /// The SGD-SDE of scalar factorisation (population, scalar noise), fine-grid reference.
    #[value(name = "scalar_factorization", alias = "scalar-factorization")]
    ScalarFactorization,
    /// The SGD-SDE of linear regression (population, d = 3, general noise), fine-grid reference.
    #[value(name = "linear_regression", alias = "linear-regression")]
    LinearRegression,
}

/// What `convergence` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// The fitted order with its interval (one scheme), or each scheme's order.
    Order,
    /// Error against cost (steps, evaluations and wall time per path) for each scheme,
    /// and where the cheapest scheme changes.
    WorkPrecision,
}

/// Strong (pathwise) or weak (in distribution) error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// `E|X_T − X_T^h|`.
    Strong,
    /// `|E φ(X_T) − E φ(X_T^h)|`.
    Weak,
}

fn problem_name(p: Problem) -> &'static str {
    match p {
        Problem::Gbm => "gbm",
        Problem::Ou => "ou",
        Problem::Noncommutative => "noncommutative",
        Problem::DoubleWell => "double_well",
        Problem::ScalarFactorization => "scalar_factorization",
        Problem::LinearRegression => "linear_regression",
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Strong => "strong",
        Kind::Weak => "weak",
    }
}

/// Runs one study and returns its JSON object
/// `{"problem","scheme","kind","order","ci":[lo,hi],"expected","paths","seed","points":[..]}`.
///
/// # Errors
/// A combination the suite does not define, or zero paths (exit 2); a failing study (exit 1).
pub fn convergence(
    problem: Problem,
    scheme: &str,
    kind: Kind,
    paths: Option<usize>,
    seed: u64,
) -> CliResult<Value> {
    let (p, k) = (problem_name(problem), kind_name(kind));
    let s = SchemeKind::parse(scheme)
        .map_err(|e| CliError::input(format!("--scheme {scheme}: {e}")))?
        .name();
    if paths == Some(0) {
        return Err(CliError::input("--paths 0: at least one path is needed"));
    }
    let defaults = SuiteConfig::default();
    let limit = 16 * defaults.strong_paths.max(defaults.weak_paths);
    if let Some(n) = paths.filter(|&n| n > limit) {
        return Err(CliError::input(format!(
            "--paths {n}: a study of {n} paths would take {}× the default's time; at most {limit} (lower --paths)",
            n / defaults.strong_paths.max(defaults.weak_paths).max(1)
        )));
    }
    let config = SuiteConfig {
        strong_paths: paths.unwrap_or(defaults.strong_paths),
        weak_paths: paths.unwrap_or(defaults.weak_paths),
        seed,
    };
    let row = run_one(p, s, k, &config)
        .map_err(|e| CliError::library("convergence", e))?
        .ok_or_else(|| {
            let defined: Vec<String> = ROWS
                .iter()
                .map(|(p, s, k)| format!("{p}/{s}/{k}"))
                .collect();
            CliError::input(format!(
                "--problem {p} --scheme {scheme} --kind {k}: not a study of the suite (defined problem/scheme/kind: {})",
                defined.join(", ")
            ))
        })?;
    Ok(json!({
        "problem": row.problem,
        "scheme": row.scheme,
        "kind": row.kind,
        "order": row.study.fit.slope,
        "ci": [row.study.fit.ci_low, row.study.fit.ci_high],
        "expected": row.expected,
        "agrees": row.agrees(),
        "paths": if k == "strong" { config.strong_paths } else { config.weak_paths },
        "seed": seed,
        "points": row.study.points,
    }))
}

/// Readable text for a convergence result.
pub fn text(out: &Value) -> String {
    let get = |k: &str| super::show(out.get(k));
    format!(
        "{} order of {} on {}: {:.3}, 95% interval [{:.3}, {:.3}] (expected {}, {} paths)\n",
        get("kind"),
        get("scheme"),
        get("problem"),
        out["order"].as_f64().unwrap_or(f64::NAN),
        out["ci"][0].as_f64().unwrap_or(f64::NAN),
        out["ci"][1].as_f64().unwrap_or(f64::NAN),
        get("expected"),
        get("paths"),
    )
}

/// The options of `convergence` beyond the suite's (problem, scheme, kind, paths, seed).
#[derive(Debug, Clone, Default)]
pub struct StudyOptions {
    /// `key=value` problem parameters.
    pub params: Vec<String>,
    /// `--dts a,b,c`, unparsed.
    pub dts: Option<String>,
    /// `--reference-offset`.
    pub reference_offset: Option<u32>,
    /// `--view`.
    pub view: Option<View>,
}

impl StudyOptions {
    /// Whether any option asks for more than a suite study.
    fn extended(&self) -> bool {
        !self.params.is_empty()
            || self.dts.is_some()
            || self.reference_offset.is_some()
            || self.view == Some(View::WorkPrecision)
    }
}

/// Default paths of a work–precision set, per scheme (strong, weak).
const WP_PATHS: (usize, usize) = (1000, 10_000);
/// At most this many paths × steps per scheme (a guard against runs of hours).
const WP_BUDGET: f64 = 4e9;

/// Runs `convergence`: a suite study (as [`convergence`]) when no extended option is
/// given and one scheme is named, else a work–precision set, whose JSON is the
/// serialised [`WorkPrecision`] plus `"view"`.
///
/// # Errors
/// Invalid input (exit 2): an unknown scheme, problem parameter or step, a step that is
/// not `T/2^k`, a scheme that does not apply, zero paths, a run too large; a failing
/// study (exit 1).
pub fn run(
    problem: Problem,
    scheme: &str,
    kind: Kind,
    paths: Option<usize>,
    seed: u64,
    options: &StudyOptions,
) -> CliResult<Value> {
    let all = scheme.trim().eq_ignore_ascii_case("all");
    let suite_problem = !matches!(problem, Problem::ScalarFactorization | Problem::LinearRegression);
    if !all && !options.extended() && suite_problem {
        return convergence(problem, scheme, kind, paths, seed);
    }
    let schemes = if all {
        Vec::new()
    } else {
        vec![SchemeKind::parse(scheme).map_err(|e| CliError::input(format!("--scheme {scheme}: {e}")))?]
    };
    let params = options
        .params
        .iter()
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| CliError::input(format!("--param {pair}: expected key=value")))?;
            let value: f64 = v
                .trim()
                .parse()
                .map_err(|_| CliError::input(format!("--param {pair}: '{}' is not a number", v.trim())))?;
            Ok((k.trim().to_string(), value))
        })
        .collect::<CliResult<Vec<_>>>()?;
    let dts = match &options.dts {
        Some(list) => Some(
            list.split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| CliError::input(format!("--dts {list}: '{}' is not a number", v.trim())))
                })
                .collect::<CliResult<Vec<_>>>()?,
        ),
        None => None,
    };
    let error_kind = match kind {
        Kind::Strong => ErrorKind::Strong,
        Kind::Weak => ErrorKind::Weak,
    };
    let paths = match paths {
        Some(0) => return Err(CliError::input("--paths 0: at least one path is needed")),
        Some(n) => n,
        None if error_kind == ErrorKind::Strong => WP_PATHS.0,
        None => WP_PATHS.1,
    };
    let reference_offset = options.reference_offset.unwrap_or(3);
    if reference_offset > 8 {
        return Err(CliError::input(format!(
            "--reference-offset {reference_offset}: at most 8 (a reference 256× finer than the finest step)"
        )));
    }
    let config = WorkPrecisionConfig {
        problem: problem_name(problem).to_string(),
        params,
        kind: error_kind,
        schemes,
        dts,
        reference_offset,
        paths,
        seed,
    };
    check_budget(&config)?;
    let set = wp::work_precision(&config).map_err(|e| match e {
        noether_sde::Error::InvalidParameter { name, value, reason } => {
            let flag = match name {
                "param" | "t_end" => "--param",
                "dts" => "--dts",
                "paths" => "--paths",
                "scheme" => "--scheme",
                other => return CliError::input(format!("--param {other}={value}: {reason}")),
            };
            CliError::input(format!("{flag} {value}: {reason}"))
        }
        other => CliError::library("convergence", other),
    })?;
    let mut out = serde_json::to_value(&set).map_err(|e| CliError {
        message: format!("convergence: serialising the result: {e}"),
        code: 1,
    })?;
    out["view"] = json!(match options.view {
        Some(View::WorkPrecision) => "work-precision",
        _ => "order",
    });
    Ok(out)
}

/// Refuses a set whose paths × steps (finest ladder level plus the reference) would run
/// for hours.
fn check_budget(config: &WorkPrecisionConfig) -> CliResult<()> {
    let finest_steps = match (&config.dts, wp::problem(&config.problem)) {
        (Some(dts), Ok(_)) => {
            let t_end = config
                .params
                .iter()
                .find(|(k, _)| k == "t_end")
                .map_or(1.0, |p| p.1);
            dts.iter().map(|&dt| t_end / dt).fold(0.0, f64::max)
        }
        (None, Ok(spec)) => f64::from(1u32 << spec.strong_levels.1.max(spec.weak_levels.1)),
        _ => return Ok(()),
    };
    let work =
        config.paths as f64 * finest_steps * (2.0 + f64::from(1u32 << config.reference_offset.min(20)));
    if work.is_finite() && work > WP_BUDGET {
        return Err(CliError::input(format!(
            "--paths {}: {} paths at {finest_steps:.0} steps (and a reference 2^{} finer) exceed the budget of {WP_BUDGET:.0e} path-steps per scheme; lower --paths, --dts or --reference-offset",
            config.paths, config.paths, config.reference_offset
        )));
    }
    Ok(())
}

/// Readable text of [`run`]'s output: the suite line, or the work–precision table.
pub fn text_any(out: &Value) -> String {
    if out.get("series").is_none() {
        return text(out);
    }
    match serde_json::from_value::<WorkPrecision>(out.clone()) {
        Ok(set) if out["view"] == "work-precision" => set.to_table(),
        Ok(set) => {
            let mut s = String::new();
            for series in &set.series {
                let o = &series.order;
                s.push_str(&format!(
                    "{} order of {} on {}: {:.3}, 95% interval [{:.3}, {:.3}] (expected {}, {} paths)\n",
                    set.kind.name(),
                    series.scheme,
                    set.problem,
                    o.slope,
                    o.ci_low,
                    o.ci_high,
                    series.expected_order,
                    set.paths
                ));
            }
            s
        }
        Err(_) => format!("{out}\n"),
    }
}

/// CSV of [`run`]'s output: the work–precision rows (a suite study gives its points in
/// the same columns).
pub fn csv(out: &Value) -> String {
    match serde_json::from_value::<WorkPrecision>(out.clone()) {
        Ok(set) => set.to_csv(),
        Err(_) => {
            use std::fmt::Write;
            let mut s = String::from("problem,kind,scheme,h,error,std_error,drift_evaluations,diffusion_evaluations,wall_seconds\n");
            for p in out["points"].as_array().into_iter().flatten() {
                let f = |k: &str| p[k].as_f64().map_or(String::new(), |v| v.to_string());
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{},{},{}",
                    super::show(out.get("problem")),
                    super::show(out.get("kind")),
                    super::show(out.get("scheme")),
                    f("h"),
                    f("error"),
                    f("std_error"),
                    f("drift_evaluations"),
                    f("diffusion_evaluations"),
                    f("wall_seconds")
                );
            }
            s
        }
    }
}
