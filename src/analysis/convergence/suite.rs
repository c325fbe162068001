//! The standard convergence-order table: every scheme on problems with exact or
//! fine-grid references (what `cargo run --release` prints for now, and what the
//! `convergence_order` example prints as JSON).
//!
//! | problem | reference | schemes |
//! |---|---|---|
//! | `gbm` (μ = 1.5, s = 0.5, X₀ = 1, T = 1) | exact `X₀e^{(μ−s²/2)T+sW_T}` | EM, Milstein, RK-Milstein, Heun (Stratonovich form), DRI1, SRIW1, strong; EM and Milstein weak on `φ(x) = x` |
//! | `gbm`, weak order 2 (s = 0.3) | exact | DRI1 weak on `φ(x) = x²`, h = 1/2 … 1/64 |
//! | `noncommutative` (`dX₁ = dW₁, dX₂ = sin X₁ dW₂`) | Milstein with Lévy areas, 8× finer | Milstein with / without areas, RK-Milstein, DRI1 (with the path's areas), strong |
//! | `ou` (θ = 1, μ = 0.5, σ = 0.8, X₀ = 2) | Milstein (= EM, additive noise), 8× finer | EM strong (order 1 for additive noise) |
//! | `double_well` (`dX = (X − X³) dt + σ dW`, σ = 1, X₀ = 0) | Milstein 8× finer; SRA1 itself 8× finer | EM strong (1), SRA1 strong (1.5) |

use super::{convergence_study, ConvergenceConfig, ConvergenceStudy, Measure, Reference};
use crate::brownian::BrownianGrid;
use crate::error::Result;
use crate::scheme::catalogue::{SchemeKind, SchemeVisitor};
use crate::scheme::Scheme;
use crate::sde::reference::{DoubleWell, GeometricBrownianMotion, NonCommutative, OrnsteinUhlenbeck};
use crate::sde::{Calculus, Sde, SdeExt};
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
/// `problem` ∈ {`gbm`, `noncommutative`, `ou`}, `scheme` a name or alias of the scheme
/// catalogue, `kind` ∈ {`strong`, `weak`}. The expected order is the scheme's own
/// declaration ([`crate::scheme::SchemeInfo::strong_order_on`] the problem's noise, or
/// its weak order). Returns `Ok(None)` for a combination the suite does not define: an
/// unknown name, a scheme that does not accept the problem's noise, a weak study other
/// than on `gbm`, or a Stratonovich scheme on a problem whose reference is a fine Itô
/// solve (only `gbm` has an exact reference in both calculi).
///
/// # Errors
/// Propagates errors of [`convergence_study`].
pub fn run_one(problem: &str, scheme: &str, kind: &str, config: &SuiteConfig) -> Result<Option<SuiteRow>> {
    let Ok(scheme) = SchemeKind::parse(scheme) else {
        return Ok(None);
    };
    let Some(problem) = PROBLEMS.iter().copied().find(|p| *p == problem) else {
        return Ok(None);
    };
    let Some(kind) = ["strong", "weak"].iter().copied().find(|k| *k == kind) else {
        return Ok(None);
    };
    let study = scheme.visit(Study {
        problem,
        kind,
        config,
    })?;
    Ok(study.map(|(study, expected)| SuiteRow {
        problem,
        scheme: study.scheme,
        kind: study.kind,
        expected,
        study,
    }))
}

/// The problems of the suite.
pub const PROBLEMS: &[&str] = &["gbm", "noncommutative", "ou", "double_well"];

/// One study, generic in the scheme (run through the catalogue).
struct Study<'a> {
    problem: &'static str,
    kind: &'static str,
    config: &'a SuiteConfig,
}

impl SchemeVisitor for Study<'_> {
    type Output = Result<Option<(ConvergenceStudy, f64)>>;

    fn visit<K: Scheme + Sync + 'static>(self, scheme: K) -> Self::Output {
        let info = scheme.info();
        let ladder = |coarsest, finest, paths| ConvergenceConfig {
            coarsest,
            finest,
            paths,
            seed: self.config.seed,
            ..Default::default()
        };
        let (strong, weak) = (self.config.strong_paths, self.config.weak_paths);
        let identity = |x: &DVector<f64>| x[0];
        let expected = |noise| match self.kind {
            "strong" => info.strong_order_on(noise),
            _ => info.weak_order,
        };
        let ito = info.calculus == Calculus::Ito;
        match (self.problem, self.kind) {
            // weak order 2 on GBM: s = 0.3 and φ(x) = x² (φ(x) = x would only see the
            // deterministic Runge–Kutta part: order 3 for DRI1), steps 1/2 … 1/64
            ("gbm", "weak") if info.weak_order >= 2.0 => {
                let gbm = GeometricBrownianMotion::new(1.5, 0.3)?;
                let x0 = DVector::from_element(1, 1.0);
                let exact = |g: &BrownianGrid| DVector::from_element(1, gbm.exact(1.0, g.t1(), g.w_end()[0]));
                let square = |x: &DVector<f64>| x[0] * x[0];
                if !info.accepts(gbm.noise()) || !ito {
                    return Ok(None);
                }
                let cfg = ladder(1, 6, weak);
                let study = convergence_study(
                    &gbm,
                    &scheme,
                    &x0,
                    &cfg,
                    Reference::Exact(&exact),
                    Measure::Weak(&square),
                )?;
                Ok(Some((study, info.weak_order)))
            }
            ("gbm", _) => {
                let ito_gbm = GeometricBrownianMotion::new(1.5, 0.5)?;
                let gbm = if ito { ito_gbm } else { ito_gbm.stratonovich_form() };
                let x0 = DVector::from_element(1, 1.0);
                let exact = |g: &BrownianGrid| DVector::from_element(1, gbm.exact(1.0, g.t1(), g.w_end()[0]));
                let (cfg, measure) = match self.kind {
                    "strong" => (ladder(7, 12, strong), Measure::Strong),
                    _ => (ladder(4, 8, weak), Measure::Weak(&identity)),
                };
                if !info.accepts(gbm.noise()) {
                    return Ok(None);
                }
                let study = convergence_study(&gbm, &scheme, &x0, &cfg, Reference::Exact(&exact), measure)?;
                Ok(Some((study, expected(gbm.noise()))))
            }
            // strong studies against a fine Milstein-with-areas solve on the same path
            ("noncommutative", "strong") if ito => {
                let x0 = DVector::from_vec(vec![0.0, 0.0]);
                fine_study(&NonCommutative, &scheme, &x0, ladder(4, 8, strong), expected)
            }
            ("ou", "strong") if ito => {
                let ou = OrnsteinUhlenbeck::new(1.0, 0.5, 0.8)?;
                let x0 = DVector::from_element(1, 2.0);
                fine_study(&ou, &scheme, &x0, ladder(3, 8, strong), expected)
            }
            ("double_well", "strong") if ito => {
                let double_well = DoubleWell::new(1.0)?;
                let x0 = DVector::from_element(1, 0.0);
                fine_study(&double_well, &scheme, &x0, ladder(4, 9, strong), expected)
            }
            _ => Ok(None),
        }
    }
}

/// The rows of the standard table, in order.
pub const ROWS: &[(&str, &str, &str)] = &[
    ("gbm", "euler_maruyama", "strong"),
    ("gbm", "milstein", "strong"),
    ("gbm", "rk_milstein", "strong"),
    ("gbm", "heun", "strong"),
    ("gbm", "euler_heun", "strong"),
    ("gbm", "euler_maruyama", "weak"),
    ("gbm", "milstein", "weak"),
    ("noncommutative", "milstein_levy", "strong"),
    ("noncommutative", "milstein_no_levy", "strong"),
    ("noncommutative", "rk_milstein", "strong"),
    ("noncommutative", "euler_maruyama", "strong"),
    ("ou", "euler_maruyama", "strong"),
    ("gbm", "dri1", "strong"),
    ("gbm", "sriw1", "strong"),
    ("noncommutative", "dri1", "strong"),
    ("double_well", "euler_maruyama", "strong"),
    ("double_well", "sra1", "strong"),
    ("gbm", "dri1", "weak"),
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

/// A strong study against a reference 8× finer than the finest level (Milstein with
/// areas; the scheme itself for orders above 1) (`None` if the
/// scheme does not accept the problem's noise); `expected` maps the noise to the order.
fn fine_study<S: Sde, K: Scheme>(
    sde: &S,
    scheme: &K,
    x0: &DVector<f64>,
    cfg: ConvergenceConfig,
    expected: impl Fn(crate::sde::Noise) -> f64,
) -> Result<Option<(ConvergenceStudy, f64)>> {
    if !scheme.info().accepts(sde.noise()) {
        return Ok(None);
    }
    let order = expected(sde.noise());
    // above order 1 the Milstein reference's own error would dominate: the scheme itself
    let reference = if order > 1.0 {
        Reference::SameScheme { offset: 3 }
    } else {
        Reference::Fine { offset: 3 }
    };
    let study = convergence_study(sde, scheme, x0, &cfg, reference, Measure::Strong)?;
    Ok(Some((study, order)))
}
