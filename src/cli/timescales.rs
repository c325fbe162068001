//! `timescales`: the two timescales of scalar factorisation (THEORY §5) on user-chosen
//! ladders — the fast rate (top Hessian eigenvalue) and the slow rate κ of the charge,
//! measured on an ensemble with bootstrap intervals and predicted (fast: next order,
//! THEORY §6b.1; slow: the refined law, THEORY §6) — and the slopes of `ln(slow/fast)`
//! against `ln η` (SDE ladder, expected 1) and `ln B` (SGD ladder, expected −1).

use super::{require_positive, CliError, CliResult};
use noether_sde::analysis::timescales::{timescale_scaling, TimescaleConfig};
use serde_json::{json, Value};

/// The settings of `timescales` (`None` = the library's default).
#[derive(Debug, Clone)]
pub struct TimescalesArgs {
    /// `--etas`: the SDE ladder's learning rates.
    pub etas: Vec<f64>,
    /// `--batch-for-etas`: the SDE ladder's batch size.
    pub batch_for_etas: usize,
    /// `--batches`: the SGD ladder's batch sizes.
    pub batches: Vec<usize>,
    /// `--eta-for-batches`: the SGD ladder's learning rate.
    pub eta_for_batches: f64,
    /// `--paths`.
    pub paths: Option<u64>,
    /// `--seed`.
    pub seed: u64,
    /// `--v`, `--sigma`, `--charge0`.
    pub v: Option<f64>,
    /// Label noise σ.
    pub sigma: Option<f64>,
    /// Starting charge.
    pub charge0: Option<f64>,
}

/// Largest ladder (each rung is one ensemble).
const MAX_RUNGS: usize = 16;

/// Runs the study and returns its JSON object
/// `{"points": [{process, eta, batch, fast: {rate, ci_low, ci_high, predicted}, slow: …,
/// ratio}], "slope_eta": {…}, "slope_batch": {…}, settings…}`.
///
/// # Errors
/// Bad ladders or parameters (exit 2); a failing ensemble (exit 1).
pub fn timescales(args: &TimescalesArgs) -> CliResult<Value> {
    if args.etas.len() < 2 || args.batches.len() < 2 {
        return Err(CliError::input(
            "--etas and --batches need at least two rungs each (the slopes are fitted)",
        ));
    }
    if args.etas.len() + args.batches.len() > MAX_RUNGS {
        return Err(CliError::input(format!(
            "--etas/--batches: {} rungs asked, at most {MAX_RUNGS} (each rung is one ensemble)",
            args.etas.len() + args.batches.len()
        )));
    }
    for &eta in args.etas.iter().chain(std::iter::once(&args.eta_for_batches)) {
        require_positive("--etas/--eta-for-batches", eta)?;
    }
    if args.batches.contains(&0) || args.batch_for_etas == 0 {
        return Err(CliError::input(
            "--batches/--batch-for-etas: batch sizes must be at least 1",
        ));
    }
    let defaults = TimescaleConfig::default();
    let paths = args.paths.unwrap_or(defaults.paths);
    if !(2..=1_000_000).contains(&paths) {
        return Err(CliError::input(format!(
            "--paths {paths}: between 2 and 1000000 (the bootstrap needs two paths)"
        )));
    }
    let cfg = TimescaleConfig {
        v: args.v.unwrap_or(defaults.v),
        sigma: args.sigma.unwrap_or(defaults.sigma),
        charge0: args.charge0.unwrap_or(defaults.charge0),
        paths,
        seed: args.seed,
        ..defaults
    };
    let study = timescale_scaling(
        &cfg,
        &args.etas,
        args.batch_for_etas,
        &args.batches,
        args.eta_for_batches,
    )
    .map_err(|e| CliError::library("timescales", e))?;
    let points: Vec<Value> = study
        .points
        .iter()
        .map(|p| {
            json!({
                "process": format!("{:?}", p.process).to_lowercase(),
                "eta": p.eta,
                "batch": p.batch,
                "fast": p.fast,
                "slow": p.slow,
                "ratio": p.ratio(),
                "fast_z": p.fast.z_score(),
                "slow_z": p.slow.z_score(),
            })
        })
        .collect();
    Ok(json!({
        "model": "scalar_factorization",
        "v": cfg.v,
        "sigma": cfg.sigma,
        "charge0": cfg.charge0,
        "paths": cfg.paths,
        "seed": cfg.seed,
        "ratio_definition": "slow/fast = κ / λ_max(∇²L), measured rates in SDE time (t = kη for SGD)",
        "points": points,
        "slope_eta": study.slope_eta,
        "slope_batch": study.slope_batch,
    }))
}

/// Readable text for a timescales result.
pub fn text(out: &Value) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let _ = writeln!(
        s,
        "{:<4} {:>8} {:>5}  {:>27} {:>9}  {:>27} {:>9}  {:>10}",
        "", "eta", "B", "fast rate [95% CI]", "predicted", "slow rate [95% CI]", "predicted", "slow/fast"
    );
    for p in out["points"].as_array().into_iter().flatten() {
        let rate = |r: &Value| {
            format!(
                "{:.4} [{:.4}, {:.4}]",
                f(&r["rate"]),
                f(&r["ci_low"]),
                f(&r["ci_high"])
            )
        };
        let _ = writeln!(
            s,
            "{:<4} {:>8} {:>5}  {:>27} {:>9.4}  {:>27} {:>9.4}  {:>10.3e}",
            p["process"].as_str().unwrap_or(""),
            f(&p["eta"]),
            p["batch"],
            rate(&p["fast"]),
            f(&p["fast"]["predicted"]),
            rate(&p["slow"]),
            f(&p["slow"]["predicted"]),
            f(&p["ratio"]),
        );
    }
    for (name, key, expected) in [("η", "slope_eta", 1), ("B", "slope_batch", -1)] {
        let fit = &out[key];
        let _ = writeln!(
            s,
            "slope of ln(slow/fast) in ln {name}: {:.3} [{:.3}, {:.3}] (expected {expected})",
            f(&fit["slope"]),
            f(&fit["ci_low"]),
            f(&fit["ci_high"])
        );
    }
    s
}
