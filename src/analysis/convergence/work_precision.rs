//! Work–precision: error against cost for a set of schemes on one problem (THEORY §8,
//! "Work–precision").
//!
//! For each scheme, [`super::convergence_study`] measures the strong error
//! `E‖X_h(T) − X_ref(T)‖` or the weak error `|E φ(X_h(T)) − E φ(X_ref(T))|` (paired on
//! shared paths) with its Monte Carlo standard error over a ladder of step sizes, and
//! every point carries its cost: steps per path (deterministic), drift and diffusion
//! evaluations per path (deterministic, counted), and wall time per path (measured, on
//! the SDE's own route). The order is the fitted slope of `ln error` on `ln h`; the
//! cost–error trade-off of a scheme is the line `ln error = a + b ln cost` through its
//! points, and two schemes' lines cross at the [`Crossover`] where the cheaper one
//! changes.
//!
//! Problems ([`PROBLEMS`]), each with named parameters (`--param key=value` on the
//! command line):
//!
//! | problem | SDE | noise | reference | weak `φ` |
//! |---|---|---|---|---|
//! | `gbm` | `dX = μX dt + sX dW` | scalar | exact | `x²` |
//! | `ou` | `dX = θ(μ − X) dt + σ dW` | additive | fine grid | `x²` |
//! | `noncommutative` | `dX₁ = dW₁, dX₂ = sin X₁ dW₂` | general | fine grid | `x₂²` |
//! | `double_well` | `dX = (X − X³) dt + σ dW` | additive | fine grid | `x²` |
//! | `scalar_factorization` | the SGD-SDE of §6.1 (population, SME-1 or SME-2) | scalar | fine grid | `C = u² − w²` (or `uw`) |
//! | `linear_regression` | the SGD-SDE of §6.4 (population, `d = 3`) | general | fine grid | `‖θ‖²` |
//!
//! The fine-grid reference is `2^offset` times finer than the finest step, on the same
//! Brownian path: for strong errors Milstein with Lévy areas when the scheme's strong
//! order is at most 1, the scheme itself above (Milstein's own error would dominate);
//! for weak errors always the scheme itself (common random numbers: the paired
//! differences have the variance of the strong gap squared, not of `φ`). Stratonovich
//! schemes run on the Stratonovich form of the Itô problem
//! ([`crate::sde::convert::StratonovichForm`]; GBM has its own exact form) against
//! themselves on the fine grid.

use super::{convergence_study, fit_order, ConvergenceConfig, ConvergenceStudy, Measure, Reference};
use crate::analysis::regression::fit_line;
use crate::brownian::BrownianGrid;
use crate::error::{Error, Result};
use crate::models::{LinearRegression, ScalarFactorization};
use crate::scheme::catalogue::{SchemeKind, SchemeVisitor};
use crate::scheme::Scheme;
use crate::sde::convert::StratonovichForm;
use crate::sde::reference::{DoubleWell, GeometricBrownianMotion, NonCommutative, OrnsteinUhlenbeck};
use crate::sde::{Calculus, Noise, Sde, SdeExt};
use crate::sgd::{ModifiedEquation, SgdConfig, SgdSde};
use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

pub use super::problems::{problem, ProblemSpec, PROBLEMS};

/// Strong or weak error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// `E‖X_h(T) − X_ref(T)‖`.
    Strong,
    /// `|E φ(X_h(T)) − E φ(X_ref(T))|`.
    Weak,
}

impl ErrorKind {
    /// `"strong"` or `"weak"`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Strong => "strong",
            ErrorKind::Weak => "weak",
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkPrecisionConfig {
    /// A name of [`PROBLEMS`].
    pub problem: String,
    /// Parameter overrides `(key, value)`.
    pub params: Vec<(String, f64)>,
    /// Strong or weak.
    pub kind: ErrorKind,
    /// The schemes; empty = every scheme of the catalogue that applies (see
    /// [`work_precision`]).
    pub schemes: Vec<SchemeKind>,
    /// Explicit step sizes, each `T/2^ℓ` (any order); `None` = the problem's default ladder.
    pub dts: Option<Vec<f64>>,
    /// Levels by which the fine reference is finer than the finest step (ignored where
    /// the reference is exact).
    pub reference_offset: u32,
    /// Monte Carlo paths per scheme.
    pub paths: usize,
    /// Master seed (the same paths for every scheme).
    pub seed: u64,
}

impl Default for WorkPrecisionConfig {
    fn default() -> Self {
        WorkPrecisionConfig {
            problem: "gbm".into(),
            params: Vec::new(),
            kind: ErrorKind::Strong,
            schemes: Vec::new(),
            dts: None,
            reference_offset: 3,
            paths: 1000,
            seed: 20_240_207,
        }
    }
}

/// One step size of one scheme: the error and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorkPoint {
    /// Step size `h`.
    pub h: f64,
    /// Steps per path, `T/h`.
    pub steps: u64,
    /// Strong or weak error.
    pub error: f64,
    /// Its Monte Carlo standard error.
    pub std_error: f64,
    /// Drift evaluations per path.
    pub drift_evaluations: f64,
    /// Diffusion applications per path.
    pub diffusion_evaluations: f64,
    /// Drift plus diffusion evaluations per path (the deterministic cost measure).
    pub evaluations: f64,
    /// Wall time per path (seconds), solves only.
    pub wall_seconds_per_path: f64,
}

/// A fitted slope with its 95% interval (serialisable both ways).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Slope.
    pub slope: f64,
    /// Standard error of the slope.
    pub std_error: f64,
    /// Lower end of the 95% interval.
    pub ci_low: f64,
    /// Upper end of the 95% interval.
    pub ci_high: f64,
}

impl From<&crate::analysis::regression::SlopeFit> for Fit {
    fn from(f: &crate::analysis::regression::SlopeFit) -> Self {
        Fit {
            slope: f.slope,
            std_error: f.std_error,
            ci_low: f.ci_low,
            ci_high: f.ci_high,
        }
    }
}

/// One scheme's curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkPrecisionSeries {
    /// Scheme name (catalogue).
    pub scheme: String,
    /// The order the scheme declares for this problem's noise and kind.
    pub expected_order: f64,
    /// The measured order: slope of `ln error` on `ln h`.
    pub order: Fit,
    /// Slope of `ln error` on `ln evaluations` (`−order` for fixed steps: the error per
    /// unit of work).
    pub cost_slope: Fit,
    /// The reference: `"exact"`, `"milstein_levy"` or `"same_scheme"`.
    pub reference: String,
    /// Coarsest step first.
    pub points: Vec<WorkPoint>,
}

/// Where two schemes' cost–error lines cross: below `error` (above `evaluations`) the
/// scheme `wins_below` is cheaper for the same error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crossover {
    /// The cheaper scheme at larger errors.
    pub wins_above: String,
    /// The cheaper scheme at smaller errors.
    pub wins_below: String,
    /// Error level of the crossing.
    pub error: f64,
    /// Evaluations per path at the crossing.
    pub evaluations: f64,
    /// Step size of `wins_below` at the crossing (from its `evaluations` per step).
    pub h_wins_below: f64,
    /// Step size of `wins_above` at the crossing.
    pub h_wins_above: f64,
    /// Whether the crossing lies within the measured cost range of both schemes (else
    /// it is an extrapolation of the fitted lines).
    pub measured: bool,
}

/// The work–precision set of one problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkPrecision {
    /// Problem name.
    pub problem: String,
    /// Parameter values used (defaults and overrides).
    pub params: Vec<(String, f64)>,
    /// Strong or weak.
    pub kind: ErrorKind,
    /// Levels finer of the fine reference (`None` for an exact reference).
    pub reference_offset: Option<u32>,
    /// Paths per scheme.
    pub paths: usize,
    /// Master seed.
    pub seed: u64,
    /// One curve per scheme, in catalogue order.
    pub series: Vec<WorkPrecisionSeries>,
    /// Schemes of the catalogue left out, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Pairwise crossings of the cost–error lines (evaluations as the cost).
    pub crossovers: Vec<Crossover>,
}

/// Why `kind` does not apply to `problem` with `kind_of_error`, or `None` if it does.
fn not_applicable(scheme: SchemeKind, noise: Noise, kind: ErrorKind) -> Option<String> {
    let info = scheme.info();
    if !info.accepts(noise) {
        return Some(format!("does not accept {} noise", noise.name()));
    }
    if kind == ErrorKind::Strong && info.strong_order_on(noise) <= 0.0 {
        return Some("has no strong order (weak-only)".into());
    }
    None
}

/// The dyadic levels `ℓ` with `h = T/2^ℓ` of the step sizes `dts` (sorted, coarsest first).
///
/// # Errors
/// [`Error::InvalidParameter`] (name `dts`) for a step that is not `T/2^ℓ` with
/// `1 ≤ ℓ ≤ 20`, fewer than two distinct steps, or a repeated one.
pub fn levels_of(dts: &[f64], t_end: f64) -> Result<Vec<u32>> {
    let mut levels = Vec::with_capacity(dts.len());
    for &dt in dts {
        let l = (t_end / dt).log2();
        let rounded = l.round();
        if !(dt.is_finite() && dt > 0.0) || (l - rounded).abs() > 1e-9 || !(1.0..=20.0).contains(&rounded) {
            return Err(Error::invalid(
                "dts",
                dt,
                format!("each step must be T/2^k with 1 <= k <= 20 (T = {t_end}), so that one Brownian path serves every step by exact coarsening"),
            ));
        }
        let level = rounded as u32;
        if levels.contains(&level) {
            return Err(Error::invalid("dts", dt, "given twice"));
        }
        levels.push(level);
    }
    if levels.len() < 2 {
        return Err(Error::invalid(
            "dts",
            levels.len(),
            "at least two step sizes are needed",
        ));
    }
    levels.sort_unstable();
    Ok(levels)
}

/// Runs the work–precision set.
///
/// With an empty scheme list, every catalogue scheme that accepts the problem's noise
/// (and, for strong errors, has a strong order) runs; the others are listed in
/// [`WorkPrecision::skipped`]. A scheme named explicitly that does not apply is an error.
///
/// # Errors
/// [`Error::InvalidParameter`] for an unknown problem or parameter, a bad ladder, fewer
/// than two paths, or an explicitly named scheme that does not apply; errors of
/// [`convergence_study`] (a diverging path).
pub fn work_precision(config: &WorkPrecisionConfig) -> Result<WorkPrecision> {
    let spec = problem(&config.problem)?;
    let params = spec.resolve(&config.params)?;
    let get = |k: &str| params.iter().find(|(n, _)| *n == k).map_or(f64::NAN, |p| p.1);
    let t_end = get("t_end");
    crate::error::check_positive("t_end", t_end)?;
    let levels = match &config.dts {
        Some(dts) => levels_of(dts, t_end)?,
        None => {
            let (lo, hi) = match config.kind {
                ErrorKind::Strong => spec.strong_levels,
                ErrorKind::Weak => spec.weak_levels,
            };
            (lo..=hi).collect()
        }
    };
    if config.paths < 2 {
        return Err(Error::invalid(
            "paths",
            config.paths,
            "at least 2 paths are needed",
        ));
    }
    let explicit = !config.schemes.is_empty();
    let schemes: Vec<SchemeKind> = if explicit {
        config.schemes.clone()
    } else {
        SchemeKind::ALL.to_vec()
    };
    let mut series = Vec::new();
    let mut skipped = Vec::new();
    for kind in schemes {
        if let Some(reason) = not_applicable(kind, spec.noise, config.kind) {
            if explicit {
                return Err(Error::invalid(
                    "scheme",
                    kind.name(),
                    format!(
                        "{reason}: not applicable to {} ({} error)",
                        spec.name,
                        config.kind.name()
                    ),
                ));
            }
            skipped.push((kind.name().to_string(), reason));
            continue;
        }
        let run = kind.visit(Run {
            spec,
            get: &get,
            levels: &levels,
            t_end,
            config,
        })?;
        series.push(run);
    }
    let crossovers = crossovers(&series);
    Ok(WorkPrecision {
        problem: spec.name.to_string(),
        params: params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        kind: config.kind,
        reference_offset: if spec.name == "gbm" {
            None
        } else {
            Some(config.reference_offset)
        },
        paths: config.paths,
        seed: config.seed,
        series,
        skipped,
        crossovers,
    })
}

/// `v` as a whole number, if it is one.
fn whole(v: f64) -> Option<i64> {
    (v.is_finite() && (v - v.round()).abs() < 1e-12 && v.abs() < 1e15).then(|| v.round() as i64)
}

/// One scheme on the problem (generic in the scheme, run through the catalogue).
struct Run<'a> {
    spec: &'static ProblemSpec,
    get: &'a dyn Fn(&str) -> f64,
    levels: &'a [u32],
    t_end: f64,
    config: &'a WorkPrecisionConfig,
}

impl Run<'_> {
    fn study_config(&self) -> ConvergenceConfig {
        ConvergenceConfig {
            t_end: self.t_end,
            coarsest: self.levels[0],
            finest: *self.levels.last().unwrap_or(&self.levels[0]),
            paths: self.config.paths,
            seed: self.config.seed,
            ..Default::default()
        }
    }

    fn sgd_config(&self) -> Result<SgdConfig> {
        let (eta, batch, order) = ((self.get)("eta"), (self.get)("batch"), (self.get)("order"));
        if !(batch >= 1.0 && batch.fract() == 0.0 && batch <= 1e9) {
            return Err(Error::invalid("batch", batch, "must be a whole number >= 1"));
        }
        let order = match order {
            o if whole(o) == Some(1) => ModifiedEquation::First,
            o if whole(o) == Some(2) => ModifiedEquation::Second,
            o => return Err(Error::invalid("param", format!("order={o}"), "must be 1 or 2")),
        };
        Ok(SgdConfig::new(eta, batch as usize).with_order(order))
    }

    /// The study of `scheme` on an Itô `sde` (converted for a Stratonovich scheme).
    fn on<S: Sde, K: Scheme>(
        &self,
        sde: &S,
        scheme: &K,
        x0: &DVector<f64>,
        phi: &dyn Fn(&DVector<f64>) -> f64,
    ) -> Result<(ConvergenceStudy, &'static str)> {
        let cfg = self.study_config();
        let info = scheme.info();
        let offset = self.config.reference_offset;
        let measure = match self.config.kind {
            ErrorKind::Strong => Measure::Strong,
            ErrorKind::Weak => Measure::Weak(phi),
        };
        if info.calculus == Calculus::Stratonovich {
            let converted = StratonovichForm::new(sde)?;
            let study = convergence_study(
                &converted,
                scheme,
                x0,
                &cfg,
                Reference::SameScheme { offset },
                measure,
            )?;
            return Ok((study, "same_scheme"));
        }
        let (reference, name) =
            if self.config.kind == ErrorKind::Strong && info.strong_order_on(sde.noise()) <= 1.0 {
                (Reference::Fine { offset }, "milstein_levy")
            } else {
                (Reference::SameScheme { offset }, "same_scheme")
            };
        Ok((
            convergence_study(sde, scheme, x0, &cfg, reference, measure)?,
            name,
        ))
    }
}

impl SchemeVisitor for Run<'_> {
    type Output = Result<WorkPrecisionSeries>;

    fn visit<K: Scheme + Sync + 'static>(self, scheme: K) -> Self::Output {
        let get = self.get;
        let square = |x: &DVector<f64>| x[0] * x[0];
        let (study, reference) = match self.spec.name {
            "gbm" => {
                let ito = GeometricBrownianMotion::new(get("mu"), get("s"))?;
                let gbm = if scheme.info().calculus == Calculus::Ito {
                    ito
                } else {
                    ito.stratonovich_form()
                };
                let x0 = get("x0");
                crate::error::check_finite("x0", &[x0])?;
                let exact = |g: &BrownianGrid| DVector::from_element(1, gbm.exact(x0, g.t1(), g.w_end()[0]));
                let measure = match self.config.kind {
                    ErrorKind::Strong => Measure::Strong,
                    ErrorKind::Weak => Measure::Weak(&square),
                };
                let x0 = DVector::from_element(1, x0);
                let cfg = self.study_config();
                let study = convergence_study(&gbm, &scheme, &x0, &cfg, Reference::Exact(&exact), measure)?;
                (study, "exact")
            }
            "ou" => {
                let ou = OrnsteinUhlenbeck::new(get("theta"), get("mu"), get("sigma"))?;
                self.on(&ou, &scheme, &DVector::from_element(1, get("x0")), &square)?
            }
            "noncommutative" => {
                let x0 = DVector::from_vec(vec![get("x1"), get("x2")]);
                self.on(&NonCommutative, &scheme, &x0, &|x| x[1] * x[1])?
            }
            "double_well" => {
                let dw = DoubleWell::new(get("sigma"))?;
                self.on(&dw, &scheme, &DVector::from_element(1, get("x0")), &square)?
            }
            "scalar_factorization" => {
                let model = ScalarFactorization::new(get("v"), get("sigma"))?;
                let sde = SgdSde::population(&model, self.sgd_config()?)?;
                let x0 = DVector::from_vec(vec![get("u0"), get("w0")]);
                // the charge moves only at second order (∇C ⊥ D): paired differences of
                // it have a small variance, so its weak bias is resolvable
                let charge = |x: &DVector<f64>| ScalarFactorization::charge(x);
                let product = |x: &DVector<f64>| x[0] * x[1];
                let phi: &dyn Fn(&DVector<f64>) -> f64 = match get("phi") {
                    p if whole(p) == Some(0) => &charge,
                    p if whole(p) == Some(1) => &product,
                    p => {
                        return Err(Error::invalid(
                            "param",
                            format!("phi={p}"),
                            "must be 0 (charge) or 1 (uw)",
                        ))
                    }
                };
                self.on(&sde, &scheme, &x0, phi)?
            }
            _ => {
                // linear_regression
                let model = LinearRegression::new(
                    DVector::from_vec(vec![1.0, -0.5, 0.25]),
                    DMatrix::from_diagonal(&DVector::from_vec(vec![1.0, 0.5, 0.25])),
                    get("sigma"),
                )?;
                let sde = SgdSde::population(&model, self.sgd_config()?)?;
                self.on(&sde, &scheme, &DVector::zeros(3), &|x| x.norm_squared())?
            }
        };
        let info = scheme.info();
        let expected_order = match self.config.kind {
            ErrorKind::Strong => info.strong_order_on(self.spec.noise),
            ErrorKind::Weak => info.weak_order,
        };
        series_of(&study, self.levels, self.t_end, expected_order, reference)
    }
}

/// The study's points at the requested levels, with the order refitted on them.
fn series_of(
    study: &ConvergenceStudy,
    levels: &[u32],
    t_end: f64,
    expected_order: f64,
    reference: &str,
) -> Result<WorkPrecisionSeries> {
    let kept: Vec<_> = study
        .points
        .iter()
        .filter(|p| {
            levels
                .iter()
                .any(|&l| ((t_end / p.h).log2() - f64::from(l)).abs() < 1e-9)
        })
        .copied()
        .collect();
    let order = fit_order(&kept)?;
    let points: Vec<WorkPoint> = kept
        .iter()
        .map(|p| WorkPoint {
            h: p.h,
            steps: (t_end / p.h).round() as u64,
            error: p.error,
            std_error: p.std_error,
            drift_evaluations: p.drift_evaluations,
            diffusion_evaluations: p.diffusion_evaluations,
            evaluations: p.drift_evaluations + p.diffusion_evaluations,
            wall_seconds_per_path: p.wall_seconds / p.paths as f64,
        })
        .collect();
    let cost_slope = cost_fit(&points).map_or(
        Fit {
            slope: f64::NAN,
            std_error: f64::NAN,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
        },
        |f| Fit::from(&f),
    );
    Ok(WorkPrecisionSeries {
        scheme: study.scheme.to_string(),
        expected_order,
        order: Fit::from(&order),
        cost_slope,
        reference: reference.to_string(),
        points,
    })
}

/// `ln error = a + b ln evaluations` over the points with a positive error.
fn cost_fit(points: &[WorkPoint]) -> Option<crate::analysis::regression::SlopeFit> {
    let usable: Vec<&WorkPoint> = points
        .iter()
        .filter(|p| p.error > 0.0 && p.evaluations > 0.0)
        .collect();
    let x: Vec<f64> = usable.iter().map(|p| p.evaluations.ln()).collect();
    let y: Vec<f64> = usable.iter().map(|p| p.error.ln()).collect();
    let se: Vec<f64> = usable.iter().map(|p| p.std_error / p.error).collect();
    fit_line(&x, &y, Some(&se), 0.95)
}

/// Pairwise crossings of the schemes' cost–error lines (evaluations as the cost), for
/// the pairs whose cost slopes differ by more than two combined standard errors (with
/// equal slopes one scheme is cheaper everywhere, or neither is).
pub fn crossovers(series: &[WorkPrecisionSeries]) -> Vec<Crossover> {
    let lines: Vec<Option<(f64, f64, f64)>> = series
        .iter()
        .map(|s| cost_fit(&s.points).map(|f| (f.intercept, f.slope, f.std_error)))
        .collect();
    let range = |s: &WorkPrecisionSeries| {
        s.points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
            (lo.min(p.evaluations), hi.max(p.evaluations))
        })
    };
    let mut out = Vec::new();
    for i in 0..series.len() {
        for j in i + 1..series.len() {
            let (Some((a1, b1, s1)), Some((a2, b2, s2))) = (lines[i], lines[j]) else {
                continue;
            };
            // slopes that do not differ by 2 combined s.e.: no crossing to speak of
            let distinct = (b1 - b2).abs() > 2.0 * s1.hypot(s2);
            if !distinct {
                continue;
            }
            // a1 + b1 x = a2 + b2 x
            let x = (a2 - a1) / (b1 - b2);
            let (cost, error) = (x.exp(), (a1 + b1 * x).exp());
            // the steeper line (more negative slope) wins at high cost / small error
            let (below, above) = if b1 < b2 { (i, j) } else { (j, i) };
            let per_step = |k: usize| {
                let p = &series[k].points[0];
                p.evaluations / p.steps as f64
            };
            let t_end = series[0].points[0].h * series[0].points[0].steps as f64;
            let (ri, rj) = (range(&series[i]), range(&series[j]));
            out.push(Crossover {
                wins_above: series[above].scheme.clone(),
                wins_below: series[below].scheme.clone(),
                error,
                evaluations: cost,
                h_wins_below: t_end * per_step(below) / cost,
                h_wins_above: t_end * per_step(above) / cost,
                measured: cost >= ri.0.max(rj.0) && cost <= ri.1.min(rj.1),
            });
        }
    }
    out
}

impl WorkPrecision {
    /// Long-format CSV, one row per scheme × step size:
    /// `problem,kind,scheme,h,steps,error,std_error,drift_evaluations,diffusion_evaluations,evaluations,wall_seconds_per_path,order,order_ci_low,order_ci_high,expected_order`.
    pub fn to_csv(&self) -> String {
        use std::fmt::Write;
        let mut s = String::from(
            "problem,kind,scheme,h,steps,error,std_error,drift_evaluations,diffusion_evaluations,evaluations,wall_seconds_per_path,order,order_ci_low,order_ci_high,expected_order\n",
        );
        for series in &self.series {
            for p in &series.points {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    self.problem,
                    self.kind.name(),
                    series.scheme,
                    p.h,
                    p.steps,
                    p.error,
                    p.std_error,
                    p.drift_evaluations,
                    p.diffusion_evaluations,
                    p.evaluations,
                    p.wall_seconds_per_path,
                    series.order.slope,
                    series.order.ci_low,
                    series.order.ci_high,
                    series.expected_order
                );
            }
        }
        s
    }

    /// A readable table: per scheme its order and its points, then the crossovers.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "{} error on {} ({}), {} paths, seed {}",
            self.kind.name(),
            self.problem,
            params.join(", "),
            self.paths,
            self.seed
        );
        for series in &self.series {
            let o = &series.order;
            let _ = writeln!(
                s,
                "\n{}: order {:.3} [{:.3}, {:.3}] (expected {}), reference {}",
                series.scheme, o.slope, o.ci_low, o.ci_high, series.expected_order, series.reference
            );
            let _ = writeln!(
                s,
                "  {:>10} {:>8} {:>11} {:>9} {:>11} {:>12}",
                "h", "steps", "error", "± s.e.", "evals/path", "µs/path"
            );
            for p in &series.points {
                let _ = writeln!(
                    s,
                    "  {:>10.3e} {:>8} {:>11.3e} {:>9.1e} {:>11.0} {:>12.2}",
                    p.h,
                    p.steps,
                    p.error,
                    p.std_error,
                    p.evaluations,
                    1e6 * p.wall_seconds_per_path
                );
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "\nskipped:");
            for (scheme, reason) in &self.skipped {
                let _ = writeln!(s, "  {scheme}: {reason}");
            }
        }
        if !self.crossovers.is_empty() {
            let _ = writeln!(s, "\ncrossovers (evaluations per path as the cost):");
            for c in &self.crossovers {
                let _ = writeln!(
                    s,
                    "  {} beats {} below error {:.2e} (above {:.0} evaluations/path; h = {:.2e} vs {:.2e}){}",
                    c.wins_below,
                    c.wins_above,
                    c.error,
                    c.evaluations,
                    c.h_wins_below,
                    c.h_wins_above,
                    if c.measured {
                        ""
                    } else {
                        " [extrapolated: outside the measured costs]"
                    }
                );
            }
        }
        s
    }
}
