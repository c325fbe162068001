//! Zero allocations per step and per path after set-up, counted by a global allocator.
//!
//! A separate test binary because a `#[global_allocator]` applies to the whole binary.
//! The counter is per thread, so tests running in parallel do not disturb each other.

use nalgebra::{DMatrix, DVector};
use noether_sde::ensemble::{
    BatchedSgdSdeProblem, Ensemble, EnsembleProblem, Functionals, SdeProblem, SgdProblem,
};
use noether_sde::models::{LinearRegression, ScalarFactorization};
use noether_sde::prelude::*;
use noether_sde::rng::{SeedTree, Stream};
use noether_sde::scheme::{integrate_with, Workspace};
use noether_sde::sgd::{BatchedSgdSde, DiscreteSgd, Model, Sampling, SgdConfig, SgdSde};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Solves paths `paths` with one workspace; returns the sum of final states.
fn solve_paths<S: Sde, K: Scheme>(
    sde: &S,
    ws: &mut Workspace<K>,
    x0: &DVector<f64>,
    span: &TimeSpan,
    paths: std::ops::Range<u64>,
) -> f64 {
    let seeds = SeedTree::new(3);
    let mut total = 0.0;
    for path in paths {
        let mut brownian = IncrementStream::new(&seeds, path, sde.noise_dim());
        let x = integrate_with(sde, ws, x0, span, &mut brownian, path, &mut ()).unwrap();
        total += x[0];
    }
    total
}

fn assert_no_allocation_after_setup<S: Sde, K: Scheme>(sde: &S, scheme: K, x0: DVector<f64>, span: TimeSpan) {
    let mut ws = Workspace::new(sde, scheme).unwrap();
    solve_paths(sde, &mut ws, &x0, &span, 0..1); // warm-up (thread-local scratch, if any)
    let mut total = 0.0;
    let count = allocations(|| total = solve_paths(sde, &mut ws, &x0, &span, 1..21));
    assert!(total.is_finite());
    assert_eq!(count, 0, "allocations over 20 paths × {} steps", span.steps());
}

#[test]
fn euler_maruyama_and_milstein_on_gbm_allocate_nothing() {
    let gbm = GeometricBrownianMotion::new(0.5, 0.3).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 1e-3).unwrap();
    let x0 = DVector::from_element(1, 1.0);
    assert_no_allocation_after_setup(&gbm, EulerMaruyama::new(), x0.clone(), span);
    assert_no_allocation_after_setup(&gbm, Milstein::new(), x0, span);
}

#[test]
fn the_sgd_sde_euler_maruyama_step_allocates_nothing() {
    let d = 6;
    let model = LinearRegression::new(DVector::from_element(d, 1.0), DMatrix::identity(d, d), 0.3).unwrap();
    let data = model.dataset(40, 1).unwrap();
    let sde = SgdSde::finite(&model, &data, SgdConfig::new(0.05, 4).with_weight_decay(0.01)).unwrap();
    let span = TimeSpan::new(0.0, 2.0, 0.05).unwrap();
    assert_no_allocation_after_setup(&sde, EulerMaruyama::new(), DVector::zeros(d), span);
    // the population forms (closed-form drift and factor)
    let population = SgdSde::population(&model, SgdConfig::new(0.05, 4)).unwrap();
    assert_no_allocation_after_setup(&population, EulerMaruyama::new(), DVector::zeros(d), span);
    let scalar = ScalarFactorization::new(1.0, 0.5).unwrap();
    let population = SgdSde::population(&scalar, SgdConfig::new(0.05, 4)).unwrap();
    let x0 = DVector::from_vec(vec![1.5, 0.3]);
    assert_no_allocation_after_setup(&population, EulerMaruyama::new(), x0.clone(), span);
    assert_no_allocation_after_setup(&population, Milstein::new(), x0, span);
}

#[test]
fn the_allocation_counter_counts() {
    // the test above would pass vacuously if the allocator were not in use
    assert!(allocations(|| drop(std::hint::black_box(vec![1.0f64; 8]))) >= 1);
    let gbm = GeometricBrownianMotion::new(0.5, 0.3).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.1).unwrap();
    let x0 = DVector::from_element(1, 1.0);
    let count = allocations(|| {
        let mut brownian = IncrementStream::new(&SeedTree::new(1), 0, 1);
        integrate(
            &gbm,
            &mut EulerMaruyama::new(),
            &x0,
            &span,
            &mut brownian,
            0,
            &mut (),
        )
        .unwrap();
    });
    assert!(count >= 2, "integrate allocates its buffers: {count}");
}

/// Discrete SGD on one workspace ([`DiscreteSgd::run_with`]): nothing per step or per path.
fn assert_discrete_sgd_allocates_nothing<M: Model>(
    sgd: &DiscreteSgd<'_, M>,
    theta0: DVector<f64>,
    t_end: f64,
) {
    let seeds = SeedTree::new(3);
    let mut ws = sgd.workspace();
    sgd.run_with(&mut ws, &theta0, t_end, &seeds, 0, &mut ()).unwrap(); // warm-up
    let mut total = 0.0;
    let count = allocations(|| {
        for path in 1..21 {
            total += sgd
                .run_with(&mut ws, &theta0, t_end, &seeds, path, &mut ())
                .unwrap()[0];
        }
    });
    assert!(total.is_finite());
    assert_eq!(count, 0, "allocations over 20 discrete SGD paths to t = {t_end}");
}

#[test]
fn discrete_sgd_on_a_workspace_allocates_nothing() {
    let d = 6;
    let model = LinearRegression::new(DVector::from_element(d, 1.0), DMatrix::identity(d, d), 0.3).unwrap();
    let data = model.dataset(40, 1).unwrap();
    let theta0 = DVector::from_element(d, 0.2);
    for config in [
        SgdConfig::new(0.05, 4).with_weight_decay(0.01),
        SgdConfig::new(0.05, 4).with_sampling(Sampling::WithReplacement),
    ] {
        let sgd = DiscreteSgd::finite(&model, &data, config).unwrap();
        assert_discrete_sgd_allocates_nothing(&sgd, theta0.clone(), 2.0);
        assert_discrete_sgd_allocates_nothing(&sgd.gradient_descent(), theta0.clone(), 0.5);
    }
    let scalar = ScalarFactorization::new(1.0, 0.5).unwrap();
    let online = DiscreteSgd::population(&scalar, SgdConfig::new(0.05, 4)).unwrap();
    assert_discrete_sgd_allocates_nothing(&online, DVector::from_vec(vec![2.0, 0.5]), 2.0);
}

#[test]
fn discrete_sgd_on_every_paper_model_allocates_nothing() {
    use noether_sde::analysis::fixed_points as fp;
    use noether_sde::models::Activation;
    let config = SgdConfig::new(0.02, 2);
    let mf = fp::default_matrix_factorization().unwrap();
    let online = DiscreteSgd::population(&mf, config).unwrap();
    assert_discrete_sgd_allocates_nothing(&online, fp::unbalanced_start(&mf).unwrap(), 0.5);
    let data = mf.dataset(50, 1).unwrap();
    let finite = DiscreteSgd::finite(&mf, &data, config).unwrap();
    assert_discrete_sgd_allocates_nothing(&finite, fp::unbalanced_start(&mf).unwrap(), 0.5);
    let layer = fp::default_normalized_linear().unwrap();
    let data = layer.dataset(50, 1).unwrap();
    let finite = DiscreteSgd::finite(&layer, &data, config.with_weight_decay(0.01)).unwrap();
    assert_discrete_sgd_allocates_nothing(&finite, layer.teacher().clone(), 0.5);
    for residual in [false, true] {
        let net = fp::default_network(residual, Activation::Tanh, 0.5).unwrap();
        let online = DiscreteSgd::online(&net, config).unwrap();
        assert_discrete_sgd_allocates_nothing(&online, fp::default_network_start(residual), 0.5);
    }
}

/// Allocations of a sequential ensemble over `0..n` (which must all finish).
fn ensemble_allocations<P: EnsembleProblem>(problem: &P, n: u64) -> u64 {
    let record = Functionals::new(vec![0.5, 1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out[0] = x[0]
    })
    .unwrap();
    allocations(|| {
        let stats = Ensemble::new(2, 0..n)
            .sequential()
            .statistics(problem, &record)
            .unwrap();
        assert_eq!(stats.finished(), n);
    })
}

/// A sequential ensemble allocates per worker and per reduction-tree level, not per path:
/// 16× more paths cost at most a few allocations more (two per extra tree level).
fn assert_no_allocation_per_path<P: EnsembleProblem>(problem: &P, what: &str) {
    ensemble_allocations(problem, 64); // warm-up
    let (small, large) = (
        ensemble_allocations(problem, 256),
        ensemble_allocations(problem, 4096),
    );
    assert!(
        large <= small + 2 * 2 * 4 + 4,
        "{what}: 256 paths: {small} allocations, 4096 paths: {large}"
    );
}

#[test]
fn sequential_ensemble_statistics_do_not_allocate_per_path() {
    let gbm = GeometricBrownianMotion::new(0.5, 0.3).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.05).unwrap();
    let x0 = DVector::from_element(1, 1.0);
    let problem = SdeProblem::new(&gbm, Milstein::new(), x0.clone(), span).unwrap();
    assert_no_allocation_per_path(&problem, "GBM, Milstein");
    // the per-path route, as any SDE without block coefficients takes
    let problem = SdeProblem::per_path(&gbm, Milstein::new(), x0, span).unwrap();
    assert_no_allocation_per_path(&problem, "GBM through the per-path route");
}

#[test]
fn discrete_sgd_ensembles_do_not_allocate_per_path() {
    let scalar = ScalarFactorization::new(1.0, 0.5).unwrap();
    let online = DiscreteSgd::population(&scalar, SgdConfig::new(0.05, 4)).unwrap();
    let problem = SgdProblem::new(&online, DVector::from_vec(vec![2.0, 0.5]), 1.0).unwrap();
    assert_no_allocation_per_path(&problem, "online SGD");
    let d = 4;
    let model = LinearRegression::new(DVector::from_element(d, 1.0), DMatrix::identity(d, d), 0.3).unwrap();
    let data = model.dataset(30, 1).unwrap();
    let finite = DiscreteSgd::finite(&model, &data, SgdConfig::new(0.05, 4)).unwrap();
    let problem = SgdProblem::new(&finite, DVector::from_element(d, 0.2), 1.0).unwrap();
    assert_no_allocation_per_path(&problem, "finite-data SGD");
}

#[test]
fn the_batched_sgd_sde_allocates_nothing_per_step_or_per_block() {
    let d = 10;
    let model = LinearRegression::new(DVector::from_element(d, 1.0), DMatrix::identity(d, d), 0.3).unwrap();
    let data = model.dataset(70, 1).unwrap();
    let sde = SgdSde::finite(&model, &data, SgdConfig::new(0.05, 4).with_weight_decay(0.01)).unwrap();
    let batched = BatchedSgdSde::new(&sde).unwrap();
    let mut block = batched.block(64);
    let seeds = SeedTree::new(4);
    let mut rngs: Vec<_> = (0..64)
        .map(|p| (p % 5 != 0).then(|| seeds.rng(p, Stream::Brownian)))
        .collect();
    block.set_columns(3..61);
    let count = allocations(|| {
        for k in 0..50 {
            batched.euler_maruyama_step(&mut block, 0.05 * k as f64, 0.05, &mut rngs);
        }
    });
    assert_eq!(count, 0, "allocations over 50 batched steps");
    assert!(block.state().iter().all(|v| v.is_finite()));
    let span = TimeSpan::new(0.0, 1.0, 0.05).unwrap();
    let problem = BatchedSgdSdeProblem::new(&sde, DVector::from_element(d, 0.2), span).unwrap();
    assert_no_allocation_per_path(&problem, "batched SGD-SDE");
}

#[test]
fn the_matrix_factorization_population_sde_allocates_nothing() {
    let mf = noether_sde::analysis::fixed_points::default_matrix_factorization().unwrap();
    let sde = SgdSde::population(&mf, SgdConfig::new(0.02, 2)).unwrap();
    let x0 = noether_sde::analysis::fixed_points::unbalanced_start(&mf).unwrap();
    let span = TimeSpan::new(0.0, 0.5, 0.02).unwrap();
    assert_no_allocation_after_setup(&sde, EulerMaruyama::new(), x0.clone(), span);
    // and the finite-data SDE of the same model (per-sample gradients)
    let data = mf.dataset(30, 1).unwrap();
    let finite = SgdSde::finite(&mf, &data, SgdConfig::new(0.02, 2)).unwrap();
    assert_no_allocation_after_setup(&finite, EulerMaruyama::new(), x0, span);
}
