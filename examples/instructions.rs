//! A fixed amount of work for instruction counting (`benches/callgrind.sh`): GBM
//! `dX = 0.5X dt + 0.3X dW`, X₀ = 1, through `Ensemble` + `SdeProblem` (the route a user
//! takes), one thread, `--paths P --steps S --scheme NAME` (any catalogue name);
//! `--route lockstep` runs the same paths on the lockstep driver instead
//! (`ensemble::lockstep::LockstepProblem`, eight paths per SIMD lane group; `em` and
//! `milstein`), whose numbers are bit-identical.
//! `callgrind.sh` runs it at two step counts and divides the difference in instructions
//! by the extra path-steps, so setup costs cancel and the count is repeatable on a noisy
//! machine.
//!
//! ```text
//! cargo run --release --example instructions -- --paths 1000 --steps 200 --scheme em
//! cargo run --release --example instructions -- --paths 1000 --steps 200 --scheme em --route lockstep
//! ```

use nalgebra::DVector;
use noether_sde::ensemble::lockstep::{LockstepProblem, LockstepScheme};
use noether_sde::ensemble::{Ensemble, Functionals, SdeProblem};
use noether_sde::prelude::*;
use noether_sde::scheme::catalogue::{SchemeKind, SchemeVisitor};

struct Run {
    paths: u64,
    steps: usize,
    lockstep: bool,
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
        let x0 = DVector::from_element(1, 1.0);
        let record = Functionals::new(vec![1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
            out[0] = x[0]
        })
        .expect("valid");
        let ensemble = Ensemble::new(2024, 0..self.paths);
        let stats = if self.lockstep {
            let name = scheme.info().name;
            let lanes = LockstepScheme::from_name(name)
                .expect("the lockstep driver has em, milstein, heun, rk_milstein");
            let problem = LockstepProblem::new(&gbm, lanes, x0, span).expect("compatible");
            ensemble.statistics(&problem, &record)
        } else {
            let problem = SdeProblem::per_path(&gbm, scheme, x0, span).expect("compatible");
            ensemble.statistics(&problem, &record)
        };
        stats.expect("runs").mean(0, 0)
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
    let lockstep = match value("--route", "per_path").as_str() {
        "per_path" => false,
        "lockstep" => true,
        other => panic!("--route: per_path or lockstep, not {other}"),
    };
    let mean = kind.visit(Run {
        paths,
        steps,
        lockstep,
    });
    println!(
        "{} paths x {steps} steps, {}: E X_1 ~ {mean:.6}",
        paths,
        kind.name()
    );
}
