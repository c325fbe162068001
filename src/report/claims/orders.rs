//! Measured strong and weak orders of the integrators (THEORY §8): the rows are the
//! convergence suite's table ([`crate::analysis::convergence::suite::ROWS`]), the
//! expected orders each scheme's own declaration in the scheme catalogue.

use super::{Claim, Context, Family, Outcome};
use crate::analysis::convergence::suite::{self as orders, SuiteConfig, SuiteRow, ORDER_LEVEL};
use crate::error::Result;
use crate::report::figures::{Figure, Panel, Series};

/// The family.
pub const FAMILY: Family = Family {
    name: "orders",
    summary: "strong and weak orders of the integrators (THEORY §8)",
    run,
};

fn run(cx: &Context) -> Result<Outcome> {
    let rows = orders::run(&SuiteConfig {
        strong_paths: cx.size.strong_paths,
        weak_paths: cx.size.weak_paths,
        seed: 20_240_207,
    })?;
    let mut out = Outcome::default();
    for r in &rows {
        let f = &r.study.fit;
        let [lo, hi] = f.interval(ORDER_LEVEL);
        out.claim(Claim::new(
            format!("order {} {} {}", r.problem, r.scheme, r.kind),
            format!("{:.2} in the 99.9% interval, which excludes ±½", r.expected),
            format!("{:.3} [{lo:.3}, {hi:.3}]", f.slope),
            r.agrees(),
        ));
    }
    out.figures.push(figure(&rows));
    out.figures.push(work_precision_figure(&rows));
    out.results.push((
        "orders",
        serde_json::from_str(&orders::to_json(&rows)).unwrap_or(serde_json::Value::Null),
    ));
    Ok(out)
}

/// The (problem, strong/weak) pairs of the rows, in row order, strong panels first.
fn panels(rows: &[SuiteRow]) -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for r in rows {
        if !groups.contains(&(r.problem, r.kind)) {
            groups.push((r.problem, r.kind));
        }
    }
    groups.sort_by_key(|&(_, kind)| kind != "strong");
    groups
}

/// One panel per (problem, strong/weak), one colour and marker per scheme, with dotted
/// guides of the expected slopes.
fn figure(rows: &[SuiteRow]) -> Figure {
    let groups = panels(rows);
    let mut fig = Figure::new(
        "orders",
        "Integrator errors against the step size",
        "Errors of the integrators against the step size h (log–log; the slope is the order). \
         Strong error: E|X_T − X^h_T| at T = 1 on the same Brownian path as the reference \
         (exact for GBM; Milstein with Lévy areas at h/8 for the non-commutative and OU \
         problems); weak error: |E X_T − E X^h_T| on GBM with φ(x) = x. GBM: dX = μX dt + sX dW, \
         μ = 1.5, s = 0.5, X₀ = 1; non-commutative: dX₁ = dW₁, dX₂ = sin X₁ dW₂; OU: \
         dX = θ(μ − X) dt + σ dW, θ = 1, μ = 0.5, σ = 0.8, X₀ = 2. Markers are the measured \
         errors with 95% error bars (±1.96 s.e. over paths); dotted grey lines are \
         reference slopes ½ and 1.",
    );
    for (problem, kind) in groups {
        let title = match (problem, kind) {
            ("gbm", "weak") => "weak error, GBM, φ(x) = x".to_string(),
            (p, k) => format!("{k} error, {}", problem_name(p)),
        };
        let y = if kind == "strong" {
            "E|X_T − X^h_T|"
        } else {
            "|E φ(X_T) − E φ(X^h_T)|"
        };
        let mut panel = Panel::new(title, "step size h", y).log(true, true);
        let mut slopes: Vec<f64> = Vec::new();
        let mut anchor = (f64::INFINITY, 0.0, f64::INFINITY);
        for r in rows.iter().filter(|r| r.problem == problem && r.kind == kind) {
            panel = panel.with(Series::measured(
                r.scheme,
                r.study.points.iter().map(|p| (p.h, p.error, p.std_error)),
            ));
            if !slopes.iter().any(|s| (s - r.expected).abs() < 1e-9) {
                slopes.push(r.expected);
            }
            for p in &r.study.points {
                anchor.0 = anchor.0.min(p.h);
                anchor.2 = anchor.2.min(p.error);
                anchor.1 = f64::max(anchor.1, p.h);
            }
        }
        // guides start below the smallest error at the finest step
        slopes.sort_by(f64::total_cmp);
        for s in slopes {
            let label = if (s - 0.5).abs() < 1e-9 {
                "slope ½".to_string()
            } else {
                format!("slope {s}")
            };
            // over the finer two thirds of the steps, so the label at its end stays inside
            let end = anchor.0 * (anchor.1 / anchor.0).powf(2.0 / 3.0);
            panel = panel.with(Series::guide(label, (anchor.0, 0.5 * anchor.2), end, s));
        }
        fig = fig.with(panel);
    }
    fig
}

fn problem_name(p: &str) -> &str {
    match p {
        "gbm" => "GBM",
        "noncommutative" => "non-commutative noise",
        "ou" => "Ornstein–Uhlenbeck",
        other => other,
    }
}

/// The same studies as work against precision: error against drift + diffusion
/// evaluations per path (deterministic for fixed steps), one panel per (problem,
/// strong/weak), dotted guides of slope −p for the orders present (error ∝ cost^−p).
fn work_precision_figure(rows: &[SuiteRow]) -> Figure {
    let groups = panels(rows);
    let mut fig = Figure::new(
        "work_precision",
        "Work against precision: error against evaluations per path",
        "The studies of the orders figure with the cost on the x axis: drift plus diffusion \
         evaluations per path (T/h steps times each scheme's evaluations per step, counted), \
         log–log; lower-left is better. At equal cost the lower curve wins; a steeper curve \
         (higher order) overtakes a flatter one below the error where they cross. Markers \
         with 95% error bars (±1.96 s.e. over paths); dotted grey: slopes −p for the orders \
         present (error ∝ cost^−p). Weak order 2 (DRI1) on GBM with s = 0.3 and φ(x) = x²; \
         SRA1 on the double well against itself 8× finer; see the orders figure for the \
         problems.",
    );
    for (problem, kind) in groups {
        let mut panel = Panel::new(
            format!("{kind} error, {}", problem_name(problem)),
            "drift + diffusion evaluations per path",
            if kind == "strong" { "E|X_T − X^h_T|" } else { "|E φ(X_T) − E φ(X^h_T)|" },
        )
        .log(true, true);
        let mut orders: Vec<f64> = Vec::new();
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        let mut top = 0.0f64;
        for r in rows.iter().filter(|r| r.problem == problem && r.kind == kind) {
            let cost = |p: &crate::analysis::convergence::ConvergencePoint| p.drift_evaluations + p.diffusion_evaluations;
            panel = panel.with(Series::measured(
                r.scheme,
                r.study.points.iter().map(|p| (cost(p), p.error, p.std_error)),
            ));
            if !orders.iter().any(|o| (o - r.expected).abs() < 1e-9) {
                orders.push(r.expected);
            }
            for p in &r.study.points {
                lo = lo.min(cost(p));
                hi = hi.max(cost(p));
                top = top.max(p.error);
            }
        }
        orders.sort_by(f64::total_cmp);
        // guides from the cheapest cost, starting above the largest error
        let end = lo * (hi / lo).powf(2.0 / 3.0);
        for o in orders {
            let label = if (o - 0.5).abs() < 1e-9 { "slope −½".to_string() } else { format!("slope −{o}") };
            panel = panel.with(Series::guide(label, (lo, 2.0 * top), end, -o));
        }
        fig = fig.with(panel);
    }
    fig
}
