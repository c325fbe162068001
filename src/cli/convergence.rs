//! `convergence`: one study of the library's convergence suite (the order of a scheme
//! on a problem with an exact or fine-grid reference, with its 95% interval).

use super::{CliError, CliResult};
use noether_sde::analysis::convergence::suite::{run_one, SuiteConfig, ROWS};
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
