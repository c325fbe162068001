//! A fixed amount of work for instruction counting (`benches/callgrind.sh`): GBM
//! `dX = 0.5X dt + 0.3X dW`, X₀ = 1, through `Ensemble` + `SdeProblem` (the route a user
//! takes), one thread, `--paths P --steps S --scheme NAME` (any catalogue name).
//! `callgrind.sh` runs it at two step counts and divides the difference in instructions
//! by the extra path-steps, so setup costs cancel and the count is repeatable on a noisy
//! machine.
//!
//! ```text
//! cargo run --release --example instructions -- --paths 1000 --steps 200 --scheme em
//! ```

use nalgebra::DVector;
use noether_sde::ensemble::{Ensemble, Functionals, SdeProblem};
use noether_sde::prelude::*;
use noether_sde::scheme::catalogue::{SchemeKind, SchemeVisitor};

struct Run {
    paths: u64,
    steps: usize,
}

impl SchemeVisitor for Run {
    type Output = f64;
    fn visit<K: Scheme + Sync + 'static>(self, scheme: K) -> f64 {
        let gbm = GeometricBrownianMotion::new(0.5, 0.3).expect("valid");
        let gbm = match scheme.info().calculus {
            Calculus::Ito => gbm,
            Calculus::Stratonovich => gbm.stratonovich_form(),
        };
        let span = TimeSpan::new(0.0, 1.0, 1.0 / self.steps as f64).expect("valid");
        let problem = SdeProblem::new(&gbm, scheme, DVector::from_element(1, 1.0), span).expect("compatible");
        let record = Functionals::new(vec![1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
            out[0] = x[0]
        })
        .expect("valid");
        let stats = Ensemble::new(2024, 0..self.paths)
            .statistics(&problem, &record)
            .expect("runs");
        stats.mean(0, 0)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_string())
    };
    let paths: u64 = value("--paths", "1000").parse().expect("--paths: a number");
    let steps: usize = value("--steps", "200").parse().expect("--steps: a number");
    let kind = SchemeKind::parse(&value("--scheme", "em")).expect("--scheme: a catalogue name");
    let mean = kind.visit(Run { paths, steps });
    println!(
        "{} paths x {steps} steps, {}: E X_1 ~ {mean:.6}",
        paths,
        kind.name()
    );
}
