//! Ensemble throughput (criterion; throughput is in path-steps, so 1/throughput is the
//! time per path-step):
//!
//! - `gbm_10000x1000`: GBM, 10,000 paths × 1,000 steps, Euler–Maruyama and Milstein through
//!   `Ensemble::statistics`, against hand-written loops with the same generator and sampler;
//! - `scalar_factorization_sde`: population SGD-SDE, 2 parameters, rank-one noise,
//!   1,000 paths, T = 200, h = η = 0.05, library vs hand loop;
//! - `linear_regression_sde_d100_n1000`: B = 32, 100 paths, batched vs per-path library
//!   route vs per-path hand loop (fewer steps than the 1,000 of the example: the cost per
//!   path-step does not depend on the step count);
//! - `threads`: the GBM and batched cases on 1 and 2 threads.
//!
//! `cargo bench -p noether-sde-benches --bench ensemble -- --warm-up-time 1 --measurement-time 3`

#[path = "common/hand_loops.rs"]
mod hand_loops;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nalgebra::{DMatrix, DVector};
use noether_sde::ensemble::{BatchedSgdSdeProblem, Ensemble, EnsembleProblem, Functionals, SdeProblem};
use noether_sde::models::{LinearRegression, ScalarFactorization};
use noether_sde::prelude::*;
use noether_sde::sgd::{SgdConfig, SgdSde};
use std::hint::black_box;
use std::ops::Range;

const SEED: u64 = 2024;

fn mean_at_end<P: EnsembleProblem>(problem: &P, paths: Range<u64>, threads: usize, t1: f64) -> f64 {
    let record = Functionals::new(vec![t1], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out[0] = x[0]
    })
    .unwrap();
    let ensemble = Ensemble::new(SEED, paths);
    let ensemble = if threads == 1 {
        ensemble.sequential()
    } else {
        ensemble.threads(threads)
    };
    ensemble.statistics(problem, &record).unwrap().mean(0, 0)
}

fn gbm(c: &mut Criterion) {
    let (mu, s, h, paths) = (0.5, 0.3, 1e-3, 10_000u64);
    let sde = GeometricBrownianMotion::new(mu, s).unwrap();
    let span = TimeSpan::new(0.0, 1.0, h).unwrap();
    let x0 = DVector::from_element(1, 1.0);
    // SdeProblem::new picks the lockstep route for GBM; per_path forces the other one
    let em = SdeProblem::new(&sde, EulerMaruyama::new(), x0.clone(), span).unwrap();
    let milstein = SdeProblem::new(&sde, Milstein::new(), x0.clone(), span).unwrap();
    let em_per_path = SdeProblem::per_path(&sde, EulerMaruyama::new(), x0.clone(), span).unwrap();
    let milstein_per_path = SdeProblem::per_path(&sde, Milstein::new(), x0, span).unwrap();
    let mut group = c.benchmark_group("gbm_10000x1000");
    group.sample_size(10);
    group.throughput(Throughput::Elements(paths * span.steps() as u64));
    group.bench_function("library_euler_maruyama", |b| {
        b.iter(|| black_box(mean_at_end(&em, 0..paths, 1, 1.0)))
    });
    group.bench_function("library_per_path_euler_maruyama", |b| {
        b.iter(|| black_box(mean_at_end(&em_per_path, 0..paths, 1, 1.0)))
    });
    group.bench_function("library_per_path_milstein", |b| {
        b.iter(|| black_box(mean_at_end(&milstein_per_path, 0..paths, 1, 1.0)))
    });
    group.bench_function("hand_loop_euler_maruyama", |b| {
        b.iter(|| black_box(hand_loops::gbm(SEED, 0..paths, span.steps(), h, mu, s, false)))
    });
    group.bench_function("library_milstein", |b| {
        b.iter(|| black_box(mean_at_end(&milstein, 0..paths, 1, 1.0)))
    });
    group.bench_function("hand_loop_milstein", |b| {
        b.iter(|| black_box(hand_loops::gbm(SEED, 0..paths, span.steps(), h, mu, s, true)))
    });
    group.finish();
}

fn scalar_factorization(c: &mut Criterion) {
    let (eta, batch, paths) = (0.05, 4, 1_000u64);
    let model = ScalarFactorization::new(1.0, 0.5).unwrap();
    let sde = SgdSde::population(&model, SgdConfig::new(eta, batch)).unwrap();
    let span = TimeSpan::new(0.0, 200.0, eta).unwrap();
    let theta0 = [2.0, 0.5];
    let problem =
        SdeProblem::new(&sde, EulerMaruyama::new(), DVector::from_row_slice(&theta0), span).unwrap();
    let scale = sde.noise_scale(0.0);
    let mut group = c.benchmark_group("scalar_factorization_sde");
    group.sample_size(10);
    group.throughput(Throughput::Elements(paths * span.steps() as u64));
    group.bench_function("library_euler_maruyama", |b| {
        b.iter(|| black_box(mean_at_end(&problem, 0..paths, 1, 200.0)))
    });
    group.bench_function("hand_loop_euler_maruyama", |b| {
        b.iter(|| {
            black_box(hand_loops::scalar_factorization(
                SEED,
                0..paths,
                span.steps(),
                eta,
                1.0,
                0.5,
                scale,
                theta0,
            ))
        })
    });
    group.finish();
}

fn linear_regression(c: &mut Criterion) {
    let (d, n, batch, eta, paths, steps) = (100, 1000, 32, 0.01, 100u64, 20);
    let theta_star = DVector::from_fn(d, |i, _| ((i as f64) * 0.37).sin());
    let model = LinearRegression::new(theta_star, DMatrix::identity(d, d), 0.5).unwrap();
    let data = model.dataset(n, 1).unwrap();
    let sde = SgdSde::finite(&model, &data, SgdConfig::new(eta, batch)).unwrap();
    let span = TimeSpan::new(0.0, steps as f64 * eta, eta).unwrap();
    let theta0 = DVector::from_element(d, 0.1);
    let batched = BatchedSgdSdeProblem::new(&sde, theta0.clone(), span).unwrap();
    let per_path = SdeProblem::new(&sde, EulerMaruyama::new(), theta0.clone(), span).unwrap();
    let scale = sde.noise_scale(0.0);
    let mut group = c.benchmark_group("linear_regression_sde_d100_n1000");
    group.sample_size(10);
    group.throughput(Throughput::Elements(paths * span.steps() as u64));
    group.bench_function("library_batched", |b| {
        b.iter(|| black_box(mean_at_end(&batched, 0..paths, 1, span.t1())))
    });
    group.bench_function("library_per_path", |b| {
        b.iter(|| black_box(mean_at_end(&per_path, 0..paths, 1, span.t1())))
    });
    group.bench_function("hand_loop_per_path", |b| {
        b.iter(|| {
            black_box(hand_loops::linear_regression(
                SEED,
                0..paths,
                span.steps(),
                eta,
                &data,
                scale,
                theta0.as_slice(),
            ))
        })
    });
    group.finish();
}

fn threads(c: &mut Criterion) {
    let sde = GeometricBrownianMotion::new(0.5, 0.3).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 1e-3).unwrap();
    let em = SdeProblem::new(&sde, EulerMaruyama::new(), DVector::from_element(1, 1.0), span).unwrap();
    let (d, n) = (100, 1000);
    let theta_star = DVector::from_fn(d, |i, _| ((i as f64) * 0.37).sin());
    let model = LinearRegression::new(theta_star, DMatrix::identity(d, d), 0.5).unwrap();
    let data = model.dataset(n, 1).unwrap();
    let lr = SgdSde::finite(&model, &data, SgdConfig::new(0.01, 32)).unwrap();
    let lr_span = TimeSpan::new(0.0, 0.2, 0.01).unwrap();
    let batched = BatchedSgdSdeProblem::new(&lr, DVector::from_element(d, 0.1), lr_span).unwrap();
    let mut group = c.benchmark_group("threads");
    group.sample_size(10);
    for t in [1, 2] {
        group.throughput(Throughput::Elements(10_000 * span.steps() as u64));
        group.bench_function(format!("gbm_euler_maruyama_{t}"), |b| {
            b.iter(|| black_box(mean_at_end(&em, 0..10_000, t, 1.0)))
        });
        // 128 paths: two full blocks, one per thread
        group.throughput(Throughput::Elements(128 * lr_span.steps() as u64));
        group.bench_function(format!("linear_regression_batched_{t}"), |b| {
            b.iter(|| black_box(mean_at_end(&batched, 0..128, t, lr_span.t1())))
        });
    }
    group.finish();
}

criterion_group!(benches, gbm, scalar_factorization, linear_regression, threads);
criterion_main!(benches);
