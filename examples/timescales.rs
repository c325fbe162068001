//! The two timescales of SGD and their η/B scaling (THEORY §5): fast (the top Hessian
//! eigenvalue, relaxation of the residual) and slow (the Noether flow of the charge),
//! measured on scalar factorisation with bootstrap intervals, against theory.
//!
//! `cargo run --release --example timescales` prints a table; `-- --json` prints
//! `{"slope_eta":..,"slope_eta_ci":[..],"slope_batch":..,"slope_batch_ci":[..],"points":[...]}`.

use noether_sde::analysis::timescales::{timescale_scaling, Process, TimescaleConfig};

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let study = match timescale_scaling(
        &TimescaleConfig::default(),
        &[0.1, 0.05, 0.025, 0.0125],
        8,
        &[1, 2, 4, 8],
        0.0125,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if json {
        let points: Vec<serde_json::Value> = study
            .points
            .iter()
            .map(|p| {
                serde_json::json!({
                    "process": p.process, "eta": p.eta, "batch": p.batch,
                    "fast_rate": p.fast.rate, "fast_rate_ci": [p.fast.ci_low, p.fast.ci_high],
                    "slow_rate": p.slow.rate, "slow_rate_ci": [p.slow.ci_low, p.slow.ci_high],
                    "fast_rate_predicted": p.fast.predicted, "slow_rate_predicted": p.slow.predicted,
                    "ratio": p.ratio(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "slope_eta": study.slope_eta.slope,
                "slope_eta_ci": [study.slope_eta.ci_low, study.slope_eta.ci_high],
                "slope_batch": study.slope_batch.slope,
                "slope_batch_ci": [study.slope_batch.ci_low, study.slope_batch.ci_high],
                "points": points,
            })
        );
        return;
    }
    println!(
        "{:>4} {:>7} {:>3} {:>28} {:>9} {:>32} {:>10} {:>10}",
        "proc", "eta", "B", "fast [95% CI]", "predicted", "slow [95% CI]", "predicted", "slow/fast"
    );
    for p in &study.points {
        println!(
            "{:>4} {:>7} {:>3} {:>8.4} [{:>7.4}, {:>7.4}] {:>9.4} {:>10.5} [{:>8.5}, {:>8.5}] {:>10.5} {:>10.2e}",
            if p.process == Process::Sde { "SDE" } else { "SGD" }, p.eta, p.batch, p.fast.rate, p.fast.ci_low, p.fast.ci_high, p.fast.predicted, p.slow.rate, p.slow.ci_low, p.slow.ci_high, p.slow.predicted, p.ratio()
        );
    }
    println!(
        "slope of ln(slow/fast) vs ln η: {:.3} [{:.3}, {:.3}] (theory 1)",
        study.slope_eta.slope, study.slope_eta.ci_low, study.slope_eta.ci_high
    );
    println!(
        "slope of ln(slow/fast) vs ln B: {:.3} [{:.3}, {:.3}] (theory −1)",
        study.slope_batch.slope, study.slope_batch.ci_low, study.slope_batch.ci_high
    );
}
