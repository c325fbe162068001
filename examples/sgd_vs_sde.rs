//! How fast SGD's SDE approaches SGD as η → 0 (THEORY §1): weak-error orders of the
//! first- and second-order modified equations on linear regression, from exact moments.
//!
//! `cargo run --release --example sgd_vs_sde` prints a table; `-- --json` prints
//! `{"results":[{"model","observable","sde","order","ci":[lo,hi],"points":[[eta,err],..],"rk4_change"}, ...]}`.

use noether_sde::analysis::modified_equation::{linear_regression_weak_orders, WeakOrderConfig};

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let rows = match linear_regression_weak_orders(&WeakOrderConfig::default()) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if json {
        let results: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "model": r.model,
                    "observable": r.observable,
                    "sde": r.sde,
                    "order": r.fit.slope,
                    "ci": [r.fit.ci_low, r.fit.ci_high],
                    "points": r.points,
                    "rk4_change": r.rk4_change,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "results": results }));
    } else {
        println!(
            "{:<18} {:<14} {:<5} {:>6} {:>18}  {:>10}",
            "model", "observable", "sde", "order", "95% CI", "RK4 change"
        );
        for r in &rows {
            println!(
                "{:<18} {:<14} {:<5} {:>6.3} [{:>6.3}, {:>6.3}]  {:>10.1e}",
                r.model, r.observable, r.sde, r.fit.slope, r.fit.ci_low, r.fit.ci_high, r.rk4_change
            );
            for (eta, err) in &r.points {
                println!("    eta = {eta:<8} weak error = {err:.4e}");
            }
        }
    }
}
