//! One Euler–Maruyama step of the linear-regression SGD-SDE at d = 100, N = 1000, B = 32:
//! the low-rank operator `D ξ = (Σ ξ_i g_i − (Σ ξ_i) ḡ)/√N` (O(dN) per step) against
//! forming `Σ_N = (1/N)(G − ḡ1ᵀ)(G − ḡ1ᵀ)ᵀ` (O(d²N)) and its Cholesky factor (O(d³)),
//! per path; and the low-rank step over a block of 64 paths (`BatchedSgdSde`: two
//! matrix–matrix products, `4dN` flops per path), reported per path (throughput).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nalgebra::{DMatrix, DVector};
use noether_sde::models::LinearRegression;
use noether_sde::prelude::*;
use noether_sde::sgd::{BatchedSgdSde, Dataset, Model, SgdConfig, SgdSde};
use rand::RngExt;
use rand_distr::StandardNormal;
use std::hint::black_box;

const D: usize = 100;
const N: usize = 1000;
const B: usize = 32;
const ETA: f64 = 0.01;

fn problem() -> (LinearRegression, Dataset) {
    let theta_star = DVector::from_fn(D, |i, _| ((i as f64) * 0.37).sin());
    let model = LinearRegression::new(theta_star, DMatrix::identity(D, D), 0.5).unwrap();
    let data = model.dataset(N, 1).unwrap();
    (model, data)
}

/// The Σ + Cholesky route, written out: per-sample gradients, centred outer product,
/// Cholesky, then `θ' = θ − h ḡ + sqrt(η/B) L z` with `z ~ N(0, I_d)`.
fn cholesky_step(
    model: &LinearRegression,
    data: &Dataset,
    theta: &DVector<f64>,
    z: &DVector<f64>,
    out: &mut DVector<f64>,
) {
    let mut g = DMatrix::zeros(D, N);
    let mut gi = DVector::zeros(D);
    for i in 0..N {
        model.grad(theta, data.sample(i), &mut gi);
        g.set_column(i, &gi);
    }
    let mean = g.column_mean();
    for mut c in g.column_iter_mut() {
        c -= &mean;
    }
    let sigma = &g * g.transpose() / N as f64;
    let l = sigma.cholesky().expect("Σ is positive definite for N > d").l();
    let noise = l * z * (ETA / B as f64).sqrt();
    out.copy_from(theta);
    out.axpy(-ETA, &mean, 1.0);
    *out += noise;
}

fn bench(c: &mut Criterion) {
    let (model, data) = problem();
    let sde = SgdSde::finite(&model, &data, SgdConfig::new(ETA, B)).unwrap();
    let theta = DVector::from_element(D, 0.1);
    let mut rng = SeedTree::new(3).rng(0, Stream::Brownian);
    let mut inc = Increment::new(N);
    inc.h = ETA;
    for w in inc.dw.iter_mut() {
        *w = ETA.sqrt() * rng.sample::<f64, _>(StandardNormal);
    }
    let z = DVector::from_fn(D, |_, _| ETA.sqrt() * rng.sample::<f64, _>(StandardNormal));
    let mut em = EulerMaruyama::new();
    em.prepare(D, N);
    let mut out = DVector::zeros(D);
    let mut group = c.benchmark_group("sgd_sde_step_d100_n1000_b32");
    group.bench_function("low_rank_operator", |b| {
        b.iter(|| {
            em.step(&sde, 0.0, black_box(&inc), black_box(&theta), &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    let batched = BatchedSgdSde::new(&sde).unwrap();
    let mut block = batched.block(64);
    block.state_mut().fill(0.1);
    let seeds = SeedTree::new(4);
    let mut rngs: Vec<_> = (0..64).map(|p| Some(seeds.rng(p, Stream::Brownian))).collect();
    group.throughput(Throughput::Elements(64));
    group.bench_function("low_rank_batched_64_paths", |b| {
        b.iter(|| {
            batched.euler_maruyama_step(&mut block, 0.0, ETA, &mut rngs);
            black_box(block.state());
        })
    });
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.bench_function("sigma_plus_cholesky", |b| {
        b.iter(|| {
            cholesky_step(&model, &data, black_box(&theta), black_box(&z), &mut out);
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
