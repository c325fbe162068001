//! The noise equilibria of the Noether flow, predicted and measured (THEORY §4, §6, §7):
//! scalar factorisation on the valley, matrix factorisation's balanced-and-aligned
//! equilibrium, a normalised layer's weight-decay norm, and two networks whose
//! rescaling symmetry is only approximate (with the input-scale sweep showing the
//! prediction error vanish with the violation).
//!
//! `cargo run --release --example noether_fixed_point` prints tables;
//! `-- --json` prints one JSON object `{"results":[...], "input_scale_sweep":[...]}`;
//! `-- --quick` uses smaller ensembles.

use noether_sde::analysis::fixed_points::{suite, suite_json, SuiteSize};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let size = if args.iter().any(|a| a == "--quick") {
        SuiteSize {
            paths: 80,
            sde_paths: 8,
        }
    } else {
        SuiteSize::default()
    };
    let (rows, sweep) = match suite(&size) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if json {
        println!("{}", suite_json(&rows, &sweep));
        return;
    }
    println!(
        "{:<21} {:>10}  {:>30}  {:>30}",
        "model", "predicted", "SGD mean [95% CI]", "SDE mean [95% CI]"
    );
    for r in &rows {
        println!(
            "{:<21} {:>10.4}  {:>9.4} [{:>8.4}, {:>8.4}]  {:>9.4} [{:>8.4}, {:>8.4}]",
            r.model,
            r.predicted,
            r.sgd.mean,
            r.sgd.ci_low,
            r.sgd.ci_high,
            r.sde.mean,
            r.sde.ci_low,
            r.sde.ci_high
        );
        println!("    {}", r.quantity);
        for (k, v) in &r.notes {
            println!("    {k} = {v:.6}");
        }
    }
    println!("\napproximate symmetries: prediction error against the measured violation");
    println!(
        "{:<10} {:>6} {:>10} {:>22} {:>10} {:>10}",
        "model", "scale", "predicted", "SGD mean ± s.e.", "error", "violation"
    );
    for (name, s, r) in &sweep {
        println!(
            "{:<10} {:>6} {:>10.4} {:>12.4} ± {:>7.4} {:>10.4} {:>10.2e}",
            name,
            s,
            r.predicted,
            r.sgd.mean,
            r.sgd.std_error,
            (r.sgd.mean - r.predicted).abs(),
            r.notes[0].1
        );
    }
}
