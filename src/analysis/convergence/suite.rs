//! The standard convergence-order table: every scheme on problems with exact or
//! fine-grid references (what `cargo run --release` prints for now, and what the
//! `convergence_order` example prints as JSON).
//!
//! | problem | reference | schemes |
//! |---|---|---|
//! | `gbm` (μ = 1.5, s = 0.5, X₀ = 1, T = 1) | exact `X₀e^{(μ−s²/2)T+sW_T}` | EM, Milstein, RK-Milstein, Heun (Stratonovich form), strong; EM and Milstein weak on `φ(x) = x` |
//! | `noncommutative` (`dX₁ = dW₁, dX₂ = sin X₁ dW₂`) | Milstein with Lévy areas, 8× finer | Milstein with / without areas, RK-Milstein, strong |
//! | `ou` (θ = 1, μ = 0.5, σ = 0.8, X₀ = 2) | Milstein (= EM, additive noise), 8× finer | EM strong (order 1 for additive noise) |

use super::{convergence_study, ConvergenceConfig, ConvergenceStudy, Measure, Reference};
use crate::brownian::BrownianGrid;
use crate::error::Result;
use crate::scheme::{EulerMaruyama, Heun, Milstein, MilsteinLevy, RkMilstein};
use crate::sde::reference::{GeometricBrownianMotion, NonCommutative, OrnsteinUhlenbeck};
use nalgebra::DVector;

/// Size of the suite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuiteConfig {
    /// Paths per strong study.
    pub strong_paths: usize,
    /// Paths per weak study.
    pub weak_paths: usize,
    /// Master seed.
    pub seed: u64,
}

impl Default for SuiteConfig {
    fn default() -> Self {
        SuiteConfig {
            strong_paths: 2000,
            weak_paths: 20_000,
            seed: 20_240_207,
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SuiteRow {
    /// Problem name (`"gbm"`, `"noncommutative"`, `"ou"`).
    pub problem: &'static str,
    /// Scheme name (see [`crate::scheme::SchemeInfo::name`]).
    pub scheme: &'static str,
    /// `"strong"` or `"weak"`.
    pub kind: &'static str,
    /// The order theory predicts here.
    pub expected: f64,
    /// The study (points and fit).
    pub study: ConvergenceStudy,
}

/// Level of the interval in which [`SuiteRow::agrees`] looks for the expected order
/// (a 0.1% false alarm per study).
pub const ORDER_LEVEL: f64 = 0.999;

impl SuiteRow {
    /// Whether the expected order lies in the fitted slope's 99.9% interval
    /// ([`ORDER_LEVEL`], Student's t: the slope's s.e. comes from a handful of step sizes)
    /// and that interval excludes the expected order ± 1/2 (so the study can tell 1/2
    /// from 1).
    pub fn agrees(&self) -> bool {
        let [lo, hi] = self.study.fit.interval(ORDER_LEVEL);
        lo <= self.expected && self.expected <= hi && self.expected - 0.5 < lo && hi < self.expected + 0.5
    }
}

/// Runs one named study of the suite.
///
/// `problem` ∈ {`gbm`, `noncommutative`, `ou`}, `scheme` a scheme name, `kind`
/// ∈ {`strong`, `weak`}. Returns `Ok(None)` for a combination the suite does not define.
///
/// # Errors
/// Propagates errors of [`convergence_study`].
pub fn run_one(problem: &str, scheme: &str, kind: &str, config: &SuiteConfig) -> Result<Option<SuiteRow>> {
    let strong = |coarsest, finest| ConvergenceConfig {
        coarsest,
        finest,
        paths: config.strong_paths,
        seed: config.seed,
        ..Default::default()
    };
    let weak = |coarsest, finest| ConvergenceConfig {
        coarsest,
        finest,
        paths: config.weak_paths,
        seed: config.seed,
        ..Default::default()
    };
    let identity = |x: &DVector<f64>| x[0];
    let row = match (problem, kind) {
        ("gbm", _) => {
            let gbm = GeometricBrownianMotion::new(1.5, 0.5)?;
            let x0 = DVector::from_element(1, 1.0);
            let exact = |g: &BrownianGrid| DVector::from_element(1, gbm.exact(1.0, g.t1(), g.w_end()[0]));
            let reference = Reference::Exact(&exact);
            let (cfg, measure) = match kind {
                "strong" => (strong(7, 12), Measure::Strong),
                "weak" => (weak(4, 8), Measure::Weak(&identity)),
                _ => return Ok(None),
            };
            let go = |s: &dyn Fn() -> Result<ConvergenceStudy>,
                      expected|
             -> Result<Option<(ConvergenceStudy, f64)>> {
                s().map(|st| Some((st, expected)))
            };
            let strat = gbm.stratonovich_form();
            let result = match (scheme, kind) {
                ("euler_maruyama", "strong") => go(
                    &|| convergence_study(&gbm, &EulerMaruyama::new(), &x0, &cfg, reference, measure),
                    0.5,
                )?,
                ("euler_maruyama", "weak") => go(
                    &|| convergence_study(&gbm, &EulerMaruyama::new(), &x0, &cfg, reference, measure),
                    1.0,
                )?,
                ("milstein", _) => go(
                    &|| convergence_study(&gbm, &Milstein::new(), &x0, &cfg, reference, measure),
                    1.0,
                )?,
                ("rk_milstein", _) => go(
                    &|| convergence_study(&gbm, &RkMilstein::new(), &x0, &cfg, reference, measure),
                    1.0,
                )?,
                ("heun", _) => go(
                    &|| convergence_study(&strat, &Heun::new(), &x0, &cfg, reference, measure),
                    1.0,
                )?,
                _ => None,
            };
            result.map(|(study, expected)| (study, expected, "gbm"))
        }
        ("noncommutative", "strong") => {
            let sde = NonCommutative;
            let x0 = DVector::from_vec(vec![0.0, 0.0]);
            let cfg = strong(4, 8);
            let reference = Reference::Fine { offset: 3 };
            let run = |s: &dyn Fn() -> Result<ConvergenceStudy>, e: f64| {
                s().map(|st| Some((st, e, "noncommutative")))
            };
            match scheme {
                "milstein_levy" => run(
                    &|| convergence_study(&sde, &MilsteinLevy::new(), &x0, &cfg, reference, Measure::Strong),
                    1.0,
                )?,
                "milstein_no_levy" => run(
                    &|| {
                        convergence_study(
                            &sde,
                            &MilsteinLevy::without_areas(),
                            &x0,
                            &cfg,
                            reference,
                            Measure::Strong,
                        )
                    },
                    0.5,
                )?,
                "rk_milstein" => run(
                    &|| convergence_study(&sde, &RkMilstein::new(), &x0, &cfg, reference, Measure::Strong),
                    1.0,
                )?,
                "euler_maruyama" => run(
                    &|| convergence_study(&sde, &EulerMaruyama::new(), &x0, &cfg, reference, Measure::Strong),
                    0.5,
                )?,
                _ => None,
            }
        }
        ("ou", "strong") => {
            let ou = OrnsteinUhlenbeck::new(1.0, 0.5, 0.8)?;
            let x0 = DVector::from_element(1, 2.0);
            let cfg = strong(3, 8);
            let reference = Reference::Fine { offset: 3 };
            match scheme {
                "euler_maruyama" => Some((
                    convergence_study(&ou, &EulerMaruyama::new(), &x0, &cfg, reference, Measure::Strong)?,
                    1.0,
                    "ou",
                )),
                _ => None,
            }
        }
        _ => None,
    };
    Ok(row.map(|(study, expected, problem)| SuiteRow {
        problem,
        scheme: study.scheme,
        kind: study.kind,
        expected,
        study,
    }))
}

/// The rows of the standard table, in order.
pub const ROWS: &[(&str, &str, &str)] = &[
    ("gbm", "euler_maruyama", "strong"),
    ("gbm", "milstein", "strong"),
    ("gbm", "rk_milstein", "strong"),
    ("gbm", "heun", "strong"),
    ("gbm", "euler_maruyama", "weak"),
    ("gbm", "milstein", "weak"),
    ("noncommutative", "milstein_levy", "strong"),
    ("noncommutative", "milstein_no_levy", "strong"),
    ("noncommutative", "rk_milstein", "strong"),
    ("noncommutative", "euler_maruyama", "strong"),
    ("ou", "euler_maruyama", "strong"),
];

/// Runs every row of [`ROWS`].
///
/// # Errors
/// Propagates errors of [`convergence_study`].
pub fn run(config: &SuiteConfig) -> Result<Vec<SuiteRow>> {
    let mut rows = Vec::with_capacity(ROWS.len());
    for (problem, scheme, kind) in ROWS {
        if let Some(row) = run_one(problem, scheme, kind, config)? {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// `{"results":[{"problem","scheme","kind","order","ci":[lo,hi],"expected","points":[...]}, ...]}`.
pub fn to_json(rows: &[SuiteRow]) -> String {
    let results: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "problem": r.problem,
                "scheme": r.scheme,
                "kind": r.kind,
                "order": r.study.fit.slope,
                "ci": [r.study.fit.ci_low, r.study.fit.ci_high],
                "expected": r.expected,
                "points": r.study.points,
            })
        })
        .collect();
    serde_json::json!({ "results": results }).to_string()
}

/// A readable table: one line per row, then the work–precision points.
pub fn to_table(rows: &[SuiteRow]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<15} {:<17} {:<6} {:>6} {:>17} {:>8}  agrees",
        "problem", "scheme", "kind", "order", "95% CI", "expected"
    );
    for r in rows {
        let f = &r.study.fit;
        let _ = writeln!(
            s,
            "{:<15} {:<17} {:<6} {:>6.3} [{:>6.3}, {:>6.3}] {:>8.2}  {}",
            r.problem,
            r.scheme,
            r.kind,
            f.slope,
            f.ci_low,
            f.ci_high,
            r.expected,
            if r.agrees() { "yes" } else { "NO" }
        );
    }
    let _ = writeln!(
        s,
        "\nwork-precision points (h, error ± s.e., evaluations per path, wall ms):"
    );
    for r in rows {
        let _ = writeln!(s, "{} / {} / {}:", r.problem, r.scheme, r.kind);
        for p in &r.study.points {
            let _ = writeln!(
                s,
                "  h = {:<10.3e} error = {:.3e} ± {:.1e}  drift {:>7.0} diffusion {:>8.0}  {:>8.2} ms",
                p.h,
                p.error,
                p.std_error,
                p.drift_evaluations,
                p.diffusion_evaluations,
                1e3 * p.wall_seconds
            );
        }
    }
    s
}
