//! The SDE's slow rate (THEORY §6.1, §6b.2) against the integrator's step: one point of
//! the timescale study at a chosen η, SDE step h and ensemble size, to separate the
//! scheme's step error from the refined law's neglected terms.
//!
//! `cargo run --release --example slow_rate_step -- ETA H PATHS [SEED]` prints
//! `eta h paths rate [lo, hi] predicted rel_dev z`.

use noether_sde::analysis::timescales::{scalar_factorization_timescales, Process, TimescaleConfig};

fn main() {
    let args: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if args.len() < 3 {
        eprintln!("usage: slow_rate_step ETA H PATHS [SEED]");
        std::process::exit(2);
    }
    let cfg = TimescaleConfig {
        sde_step: args[1],
        paths: args[2] as u64,
        seed: args.get(3).map_or(55, |s| *s as u64),
        ..TimescaleConfig::default()
    };
    match scalar_factorization_timescales(&cfg, Process::Sde, args[0], 8) {
        Ok(p) => {
            let s = p.slow;
            println!(
                "eta {} h {} paths {} slow {:.7} [{:.7}, {:.7}] predicted {:.7} rel {:+.2e} z {:+.2}",
                args[0],
                args[1],
                cfg.paths,
                s.rate,
                s.ci_low,
                s.ci_high,
                s.predicted,
                s.rate / s.predicted - 1.0,
                s.z_score()
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
