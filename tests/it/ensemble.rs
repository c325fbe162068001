//! Ensembles: bit-identical statistics however the paths are scheduled or sharded,
//! results in path order, divergent paths counted, and the batched SGD-SDE route equal
//! to the per-path route to rounding.

use crate::common::ROUNDING;
use nalgebra::{DMatrix, DVector};
use noether_sde::ensemble::{
    BatchedSgdSdeProblem, Ensemble, EnsembleStatistics, Functionals, SdeProblem, SgdProblem,
};
use noether_sde::models::{LinearRegression, ScalarFactorization};
use noether_sde::prelude::*;
use noether_sde::sgd::{DiscreteSgd, SgdConfig, SgdSde};

type Record = fn(f64, &DVector<f64>, &mut [f64]);

/// `x₀` and `x₀²` at the save times.
fn moments_record(times: Vec<f64>) -> Functionals<Record> {
    Functionals::new(
        times,
        2,
        (|_t, x, out| {
            out[0] = x[0];
            out[1] = x[0] * x[0];
        }) as Record,
    )
    .unwrap()
}

/// Every reported number of `a` and `b` has the same bits.
fn assert_bit_identical(a: &EnsembleStatistics, b: &EnsembleStatistics, what: &str) {
    assert_eq!(a.paths(), b.paths(), "{what}");
    assert_eq!(a.finished(), b.finished(), "{what}");
    assert_eq!(a.divergent(), b.divergent(), "{what}");
    assert_eq!(a.first_divergence(), b.first_divergence(), "{what}");
    for t in 0..a.times().len() {
        for j in 0..a.functionals() {
            assert_eq!(
                a.mean(t, j).to_bits(),
                b.mean(t, j).to_bits(),
                "{what}: mean ({t}, {j})"
            );
            for l in 0..a.functionals() {
                assert_eq!(
                    a.covariance(t, j, l).to_bits(),
                    b.covariance(t, j, l).to_bits(),
                    "{what}: covariance ({t}, {j}, {l})"
                );
            }
        }
    }
    // Debug prints each f64 exactly (shortest round-trip form): equal text, equal bits
    assert_eq!(
        format!("{a:?}"),
        format!("{b:?}"),
        "{what}: the whole reduction tree"
    );
}

fn check_schedules<P: noether_sde::ensemble::EnsembleProblem>(
    problem: &P,
    record: &Functionals<Record>,
    n: u64,
    splits: &[u64],
) -> EnsembleStatistics {
    let sequential = Ensemble::new(11, 0..n)
        .sequential()
        .statistics(problem, record)
        .unwrap();
    let two = Ensemble::new(11, 0..n)
        .threads(2)
        .statistics(problem, record)
        .unwrap();
    assert_bit_identical(&sequential, &two, "1 thread vs 2 threads");
    for &k in splits {
        let first = Ensemble::new(11, 0..k)
            .threads(2)
            .statistics(problem, record)
            .unwrap();
        let second = Ensemble::new(11, k..n)
            .sequential()
            .statistics(problem, record)
            .unwrap();
        let merged = first.merge(second).unwrap();
        assert_bit_identical(&sequential, &merged, &format!("shards 0..{k} + {k}..{n}"));
    }
    // three shards, merged left to right
    let (a, b) = (n / 3, 2 * n / 3 + 1);
    let merged = Ensemble::new(11, 0..a)
        .statistics(problem, record)
        .unwrap()
        .merge(Ensemble::new(11, a..b).statistics(problem, record).unwrap())
        .unwrap()
        .merge(Ensemble::new(11, b..n).statistics(problem, record).unwrap())
        .unwrap();
    assert_bit_identical(&sequential, &merged, "three shards");
    sequential
}

#[test]
fn statistics_are_bit_identical_for_threads_and_shards() {
    let gbm = GeometricBrownianMotion::new(0.5, 0.3).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.02).unwrap();
    let problem = SdeProblem::new(&gbm, Milstein::new(), DVector::from_element(1, 1.0), span).unwrap();
    let record = moments_record(vec![0.0, 0.5, 1.0]);
    let stats = check_schedules(&problem, &record, 300, &[1, 64, 100, 257, 299]);
    assert_eq!(stats.finished(), 300);
    // the streamed moments are the moments of the per-path values (to rounding)
    let paths = Ensemble::new(11, 0..300).per_path(&problem, &record).unwrap();
    for t in 0..3 {
        let xs: Vec<f64> = paths.iter().map(|p| p.as_ref().unwrap().values[(t, 0)]).collect();
        let sq: Vec<f64> = paths.iter().map(|p| p.as_ref().unwrap().values[(t, 1)]).collect();
        let (mean, var, _, _) = crate::common::moments(&xs);
        let (mean_sq, _, _, _) = crate::common::moments(&sq);
        let cov = xs
            .iter()
            .zip(&sq)
            .map(|(x, s)| (x - mean) * (s - mean_sq))
            .sum::<f64>()
            / 299.0;
        assert!((stats.mean(t, 0) - mean).abs() <= ROUNDING * mean.abs().max(1.0));
        assert!((stats.variance(t, 0) - var).abs() <= ROUNDING * var.abs().max(1.0));
        assert!((stats.covariance(t, 0, 1) - cov).abs() <= ROUNDING * cov.abs().max(1.0));
    }
    // at t = 0 every path is at x0: zero variance
    assert!(stats.variance(0, 0).abs() < ROUNDING);
    // E X_1 = e^{0.5}: |z| < 4, false alarm 6e-5
    assert_within_se!(
        stats.mean(2, 0),
        0.5f64.exp(),
        stats.std_error(2, 0),
        crate::common::Z_4
    );
}

#[test]
fn shards_must_be_adjacent_and_alike() {
    let gbm = GeometricBrownianMotion::new(0.5, 0.3).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.1).unwrap();
    let problem = SdeProblem::new(&gbm, EulerMaruyama::new(), DVector::from_element(1, 1.0), span).unwrap();
    let record = moments_record(vec![1.0]);
    let a = Ensemble::new(1, 0..10).statistics(&problem, &record).unwrap();
    let gap = Ensemble::new(1, 11..20).statistics(&problem, &record).unwrap();
    assert!(a.clone().merge(gap).is_err());
    let other_seed = Ensemble::new(2, 10..20).statistics(&problem, &record).unwrap();
    assert!(a.clone().merge(other_seed).is_err());
    // an empty shard is a neutral element
    let empty = Ensemble::new(1, 10..10).statistics(&problem, &record).unwrap();
    assert_bit_identical(&a.clone().merge(empty).unwrap(), &a, "empty shard");
    // save times outside the solve are rejected up front
    assert!(Ensemble::new(1, 0..10)
        .statistics(&problem, &moments_record(vec![2.0]))
        .is_err());
}

#[test]
fn per_path_results_come_in_path_order_and_equal_single_solves() {
    let gbm = GeometricBrownianMotion::new(0.5, 0.3).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.05).unwrap();
    let x0 = DVector::from_element(1, 1.0);
    let problem = SdeProblem::new(&gbm, EulerMaruyama::new(), x0.clone(), span).unwrap();
    let seeds = SeedTree::new(5);
    let states = Ensemble::new(5, 60..200)
        .threads(2)
        .final_states(&problem)
        .unwrap();
    assert_eq!(states.len(), 140);
    for (i, state) in states.iter().enumerate() {
        let path = 60 + i as u64;
        let mut brownian = IncrementStream::new(&seeds, path, 1);
        let alone = integrate(
            &gbm,
            &mut EulerMaruyama::new(),
            &x0,
            &span,
            &mut brownian,
            path,
            &mut (),
        )
        .unwrap();
        assert_eq!(
            state.as_ref().unwrap()[0].to_bits(),
            alone[0].to_bits(),
            "path {path}"
        );
    }
    let record = moments_record(vec![1.0]);
    let records = Ensemble::new(5, 60..200)
        .threads(2)
        .per_path(&problem, &record)
        .unwrap();
    for (i, r) in records.iter().enumerate() {
        let r = r.as_ref().unwrap();
        assert_eq!(r.path, 60 + i as u64);
        assert_eq!(
            r.values[(0, 0)].to_bits(),
            states[i].as_ref().unwrap()[0].to_bits()
        );
    }
}

/// `dX = X³ dt + dW`: paths that wander past |x| ≈ 3 blow up within a few steps.
struct Cubic;
impl Sde for Cubic {
    fn dim(&self) -> usize {
        1
    }
    fn structure(&self) -> Structure {
        Structure::additive(1)
    }
    fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = x[0] * x[0] * x[0];
    }
    fn diffusion_apply(&self, _t: f64, _x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = dw[0];
    }
}

#[test]
fn divergent_paths_are_counted_not_fatal() {
    let span = TimeSpan::new(0.0, 2.0, 0.1).unwrap();
    let problem = SdeProblem::new(&Cubic, EulerMaruyama::new(), DVector::zeros(1), span).unwrap();
    let record = moments_record(vec![1.0, 2.0]);
    let stats = check_schedules(&problem, &record, 200, &[37, 128]);
    assert!(
        stats.divergent() > 0 && stats.finished() > 0,
        "{} divergent",
        stats.divergent()
    );
    assert_eq!(stats.divergent() + stats.finished(), 200);
    // divergence is decided by the state and the recorded observables (here x and x², so
    // a path at 1e60 has diverged): the per-path route with the same record agrees
    let per_path = Ensemble::new(11, 0..200).per_path(&problem, &record).unwrap();
    let divergent: Vec<u64> = (0..200u64).filter(|&i| per_path[i as usize].is_err()).collect();
    assert_eq!(divergent.len() as u64, stats.divergent());
    match stats.first_divergence() {
        Some(Error::Divergence { path, step, .. }) => {
            assert_eq!(path, divergent[0]);
            assert_eq!(
                per_path[path as usize].clone().unwrap_err(),
                stats.first_divergence().unwrap()
            );
            assert!(step >= 1);
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}

#[test]
fn discrete_sgd_ensembles_are_schedule_independent() {
    let model = ScalarFactorization::new(1.0, 0.5).unwrap();
    let sgd = DiscreteSgd::population(&model, SgdConfig::new(0.05, 4)).unwrap();
    let problem = SgdProblem::new(&sgd, DVector::from_vec(vec![2.0, 0.5]), 2.0).unwrap();
    let charge = Functionals::new(
        vec![1.0, 2.0],
        1,
        (|_t, x, out| {
            out[0] = ScalarFactorization::charge(x);
        }) as Record,
    )
    .unwrap();
    let stats = check_schedules(&problem, &charge, 150, &[70]);
    assert_eq!(stats.finished(), 150);
    assert!(stats.mean(1, 0).is_finite() && stats.variance(1, 0) > 0.0);
}

fn regression(d: usize, n: usize) -> (LinearRegression, noether_sde::sgd::Dataset) {
    let theta_star = DVector::from_fn(d, |i, _| ((i as f64) * 0.7).sin());
    let model = LinearRegression::new(theta_star, DMatrix::identity(d, d), 0.3).unwrap();
    let data = model.dataset(n, 3).unwrap();
    (model, data)
}

#[test]
fn batched_sgd_sde_equals_the_per_path_route_to_rounding() {
    let (model, data) = regression(8, 100);
    let sde = SgdSde::finite(&model, &data, SgdConfig::new(0.05, 10).with_weight_decay(0.01)).unwrap();
    let span = TimeSpan::new(0.0, 2.5, 0.05).unwrap();
    let x0 = DVector::from_element(8, 0.2);
    let per_path = SdeProblem::new(&sde, EulerMaruyama::new(), x0.clone(), span).unwrap();
    let batched = BatchedSgdSdeProblem::new(&sde, x0, span).unwrap();
    // 67 paths: a full block of 64 and a block of 3 (one partly filled panel of 8 lanes)
    let ensemble = Ensemble::new(9, 0..67);
    let reference = ensemble.final_states(&per_path).unwrap();
    let fast = ensemble.final_states(&batched).unwrap();
    let again = ensemble.clone().sequential().final_states(&batched).unwrap();
    for (i, (r, f)) in reference.iter().zip(&fast).enumerate() {
        let (r, f) = (r.as_ref().unwrap(), f.as_ref().unwrap());
        let scale = r.amax().max(1.0);
        assert!((r - f).amax() <= ROUNDING * scale, "path {i}: {}", (r - f).amax());
        // reproducible run to run, whatever the schedule
        let g = again[i].as_ref().unwrap();
        assert!(
            f.iter().zip(g.iter()).all(|(a, b)| a.to_bits() == b.to_bits()),
            "path {i}"
        );
    }
    let loss = Functionals::new(
        vec![1.0, 2.5],
        1,
        (|_t, x, out| out[0] = x.norm_squared()) as Record,
    )
    .unwrap();
    let stats = check_schedules(&batched, &loss, 67, &[3, 62, 64, 65]);
    let reference = Ensemble::new(11, 0..67).statistics(&per_path, &loss).unwrap();
    for t in 0..2 {
        let (a, b) = (stats.mean(t, 0), reference.mean(t, 0));
        assert!((a - b).abs() <= ROUNDING * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn batched_route_rejects_what_it_cannot_do() {
    let (lr, data) = regression(3, 20);
    let span = TimeSpan::new(0.0, 1.0, 0.1).unwrap();
    let second = SgdSde::finite(
        &lr,
        &data,
        SgdConfig::new(0.05, 4).with_order(noether_sde::sgd::ModifiedEquation::Second),
    )
    .unwrap();
    assert!(matches!(
        BatchedSgdSdeProblem::new(&second, DVector::zeros(3), span),
        Err(Error::Incompatible { .. })
    ));
    let population = SgdSde::population(&lr, SgdConfig::new(0.05, 4)).unwrap();
    assert!(BatchedSgdSdeProblem::new(&population, DVector::zeros(3), span).is_err());
    let first = SgdSde::finite(&lr, &data, SgdConfig::new(0.05, 4)).unwrap();
    assert!(matches!(
        BatchedSgdSdeProblem::new(&first, DVector::zeros(2), span),
        Err(Error::DimensionMismatch { .. })
    ));
}

/// Lockstep runs are 256 paths wide on a small SDE, narrower when the ensemble would
/// otherwise leave a thread fewer than two runs (the progress callback sees each run as
/// it finishes), and the width changes no number: 300 paths (five aligned blocks) run
/// as 256 + 44 on one thread, as five blocks of ≤ 64 on two; 2,000 paths as 256-path
/// runs on two.
#[test]
fn lockstep_runs_narrow_to_keep_every_thread_busy() {
    use std::sync::{Arc, Mutex};
    let gbm = GeometricBrownianMotion::new(0.5, 0.3).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.01).unwrap();
    let problem = SdeProblem::new(&gbm, EulerMaruyama::new(), DVector::from_element(1, 1.0), span).unwrap();
    let runs = |ensemble: Ensemble| {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let states = ensemble
            .with_progress(move |n| seen.lock().unwrap().push(n))
            .final_states(&problem)
            .unwrap();
        let mut sizes = sizes.lock().unwrap().clone();
        sizes.sort_unstable();
        (sizes, states)
    };
    let (one, a) = runs(Ensemble::new(4, 0..300).sequential());
    let (two, b) = runs(Ensemble::new(4, 0..300).threads(2));
    assert_eq!(one, vec![44, 256]);
    assert_eq!(two, vec![44, 64, 64, 64, 64]);
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "the same final states");
    let (wide, _) = runs(Ensemble::new(4, 0..2000).threads(2));
    assert_eq!(
        (wide.len(), wide[1..].iter().all(|&n| n == 256)),
        (8, true),
        "{wide:?}"
    );
}
