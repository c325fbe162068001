//! One step of each scheme: on GBM (scalar noise) and on a d = 10, m = 10
//! general-noise linear SDE (Lévy areas from Wiktorsson's method).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use nalgebra::DVector;
use noether_sde::prelude::*;
use std::hint::black_box;

fn bench_scheme<S: Sde, K: Scheme>(
    c: &mut Criterion,
    group: &str,
    sde: &S,
    mut scheme: K,
    x0: DVector<f64>,
    inc: Increment,
) {
    let name = scheme.info().name;
    scheme.prepare(sde.dim(), sde.noise_dim());
    let mut out = DVector::zeros(sde.dim());
    c.bench_with_input(BenchmarkId::new(group, name), &x0, |b, x| {
        b.iter(|| {
            scheme
                .step(sde, 0.0, black_box(&inc), black_box(x), &mut out)
                .unwrap();
            black_box(&out);
        })
    });
}

fn increment(seed: u64, m: usize, h: f64, area: bool) -> Increment {
    let seeds = SeedTree::new(seed);
    let mut inc = if area {
        Increment::with_area(m)
    } else {
        Increment::new(m)
    };
    inc.h = h;
    let mut path = IncrementStream::new(&seeds, 0, m);
    if area {
        path = path
            .with_levy_area(&seeds, 0, LevyArea::for_step(m, h).unwrap())
            .unwrap();
    }
    path.next(&mut inc).unwrap();
    inc
}

fn gbm_steps(c: &mut Criterion) {
    let gbm = GeometricBrownianMotion::new(1.5, 0.5).unwrap();
    let x0 = DVector::from_element(1, 1.0);
    let inc = increment(1, 1, 1e-3, false);
    bench_scheme(c, "gbm_step", &gbm, EulerMaruyama::new(), x0.clone(), inc.clone());
    bench_scheme(c, "gbm_step", &gbm, Milstein::new(), x0.clone(), inc.clone());
    bench_scheme(c, "gbm_step", &gbm, MilsteinLevy::new(), x0.clone(), inc.clone());
    bench_scheme(c, "gbm_step", &gbm, RkMilstein::new(), x0.clone(), inc.clone());
    bench_scheme(c, "gbm_step", &gbm.stratonovich_form(), Heun::new(), x0, inc);
}

fn general_noise_steps(c: &mut Criterion) {
    let sde = LinearSde::random(10, 10, 0.5, 3);
    let x0 = DVector::from_element(10, 1.0);
    let inc = increment(2, 10, 1e-3, true);
    bench_scheme(
        c,
        "linear_d10_m10_step",
        &sde,
        EulerMaruyama::new(),
        x0.clone(),
        inc.clone(),
    );
    bench_scheme(
        c,
        "linear_d10_m10_step",
        &sde,
        MilsteinLevy::new(),
        x0.clone(),
        inc.clone(),
    );
    bench_scheme(
        c,
        "linear_d10_m10_step",
        &sde,
        MilsteinLevy::without_areas(),
        x0.clone(),
        inc.clone(),
    );
    bench_scheme(c, "linear_d10_m10_step", &sde, RkMilstein::new(), x0, inc);
    let mut levy = LevyArea::for_step(10, 1e-3).unwrap();
    let dw = DVector::from_element(10, 0.03);
    let mut area = nalgebra::DMatrix::zeros(10, 10);
    let mut rng = SeedTree::new(5).rng(0, Stream::Levy);
    c.bench_function("levy_area_m10_h1e-3", |b| {
        b.iter(|| {
            levy.sample(1e-3, black_box(&dw), &mut area, &mut rng);
            black_box(&area);
        })
    });
}

criterion_group!(benches, gbm_steps, general_noise_steps);
criterion_main!(benches);
