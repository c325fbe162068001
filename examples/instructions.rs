//! A fixed amount of work for instruction counting (`benches/callgrind.sh`), through
//! `Ensemble` + `SdeProblem` (the route a user takes), one thread,
//! `--paths P --steps S --scheme NAME` (any catalogue name) on one of three problems:
//!
//! - `--problem gbm` (default): GBM `dX = 0.5X dt + 0.3X dW`, X₀ = 1, over `[0, 1]`;
//! - `--problem sf`: the population SGD-SDE of scalar factorisation (THEORY §1, §6;
//!   `v = 1`, `σ = 0.5`, η = 0.05, B = 1, θ₀ = (2, 0.5), h = η: the yardstick's P2),
//!   recording the charge `u² − w²` at the end;
//! - `--problem mf`: the population SGD-SDE of matrix factorisation (general noise,
//!   `d = 18`; `analysis::fixed_points::default_matrix_factorization`, η = 0.02, B = 2,
//!   θ₀ = `unbalanced_start`, h = η), recording `θ₀` at the end: the problem whose
//!   RK-Milstein reads Lévy areas (each path's own, drawn per lane on the lockstep route).
//!
//! `--route per_path` forces the per-path route (`SdeProblem::per_path`); `--route
//! lockstep` is `SdeProblem::new`, which runs the paths on the lockstep driver
//! (`ensemble::lockstep`, eight paths per SIMD lane group) and is checked to do so; the
//! numbers are bit-identical. `callgrind.sh` runs it at two step counts and divides the
//! difference in instructions by the extra path-steps, so setup costs cancel and the
//! count is repeatable on a noisy machine.
//!
//! ```text
//! cargo run --release --example instructions -- --paths 1000 --steps 200 --scheme em
//! cargo run --release --example instructions -- --paths 1000 --steps 200 --scheme em --route lockstep
//! cargo run --release --example instructions -- --problem sf --steps 200 --route lockstep
//! ```

use nalgebra::DVector;
use noether_sde::analysis::fixed_points::{default_matrix_factorization, unbalanced_start};
use noether_sde::ensemble::{Ensemble, Functionals, SdeProblem};
use noether_sde::models::ScalarFactorization;
use noether_sde::prelude::*;
use noether_sde::scheme::catalogue::{SchemeKind, SchemeVisitor};
use noether_sde::sgd::{SgdConfig, SgdSde};

struct Run {
    problem: Problem,
    paths: u64,
    steps: usize,
    lockstep: bool,
}

#[derive(Clone, Copy)]
enum Problem {
    Gbm,
    ScalarFactorization,
    MatrixFactorization,
}

impl Run {
    /// The problem solved by `scheme` on the chosen route; returns the mean of the
    /// recorded value at the end.
    fn solve<S: Sde + Sync, K: Scheme + Sync>(
        &self,
        sde: &S,
        scheme: K,
        x0: DVector<f64>,
        span: TimeSpan,
    ) -> f64 {
        let problem = if self.lockstep {
            let problem = SdeProblem::new(sde, scheme, x0, span).expect("compatible");
            assert!(
                problem.is_lockstep(),
                "the lockstep driver has em, milstein (d = 1), heun, rk_milstein"
            );
            problem
        } else {
            SdeProblem::per_path(sde, scheme, x0, span).expect("compatible")
        };
        let t1 = span.t1();
        let record = Functionals::new(vec![t1], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
            out[0] = match self.problem {
                Problem::Gbm | Problem::MatrixFactorization => x[0],
                Problem::ScalarFactorization => x[0] * x[0] - x[1] * x[1],
            }
        })
        .expect("valid");
        let ensemble = Ensemble::new(2024, 0..self.paths);
        ensemble.statistics(&problem, &record).expect("runs").mean(0, 0)
    }
}

impl SchemeVisitor for Run {
    type Output = f64;
    fn visit<K: Scheme + Sync + 'static>(self, scheme: K) -> f64 {
        match self.problem {
            Problem::Gbm => {
                let gbm = GeometricBrownianMotion::new(0.5, 0.3).expect("valid");
                let gbm = match scheme.info().calculus {
                    Calculus::Ito => gbm,
                    Calculus::Stratonovich => gbm.stratonovich_form(),
                };
                let span = TimeSpan::new(0.0, 1.0, 1.0 / self.steps as f64).expect("valid");
                self.solve(&gbm, scheme, DVector::from_element(1, 1.0), span)
            }
            Problem::ScalarFactorization => {
                let model = ScalarFactorization::new(1.0, 0.5).expect("valid");
                let (eta, batch) = (0.05, 1);
                let sde = SgdSde::population(&model, SgdConfig::new(eta, batch)).expect("valid");
                let span = TimeSpan::new(0.0, self.steps as f64 * eta, eta).expect("valid");
                self.solve(&sde, scheme, DVector::from_vec(vec![2.0, 0.5]), span)
            }
            Problem::MatrixFactorization => {
                let model = default_matrix_factorization().expect("valid");
                let (eta, batch) = (0.02, 2);
                let sde = SgdSde::population(&model, SgdConfig::new(eta, batch)).expect("valid");
                let span = TimeSpan::new(0.0, self.steps as f64 * eta, eta).expect("valid");
                let x0 = unbalanced_start(&model).expect("valid");
                self.solve(&sde, scheme, x0, span)
            }
        }
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
    let problem = match value("--problem", "gbm").as_str() {
        "gbm" => Problem::Gbm,
        "sf" => Problem::ScalarFactorization,
        "mf" => Problem::MatrixFactorization,
        other => panic!("--problem: gbm, sf or mf, not {other}"),
    };
    let mean = kind.visit(Run {
        problem,
        paths,
        steps,
        lockstep,
    });
    println!(
        "{} paths x {steps} steps, {}: mean of the recorded value at the end ~ {mean:.6}",
        paths,
        kind.name()
    );
}
