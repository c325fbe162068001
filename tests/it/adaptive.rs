//! The Brownian tree and adaptive steps on it (THEORY §9).
//!
//! - (a) Law: standardised increments `ΔW/√h` queried after random histories of
//!   rejected, nested and overlapping queries are N(0, 1): one-sample Kolmogorov–Smirnov
//!   at level α = 10⁻³ (one false alarm in a thousand); the same samples scaled by 1.1
//!   are rejected (the test has power). A point strictly inside a leaf has the exact
//!   marginal `W(s) ~ N(0, s)` (same KS level).
//! - (b) Sums of sub-interval increments reproduce the coarse increment to within the
//!   rounding bound of the subtractions and the sum (derived in the test; not bitwise,
//!   because `fl(c − b) + fl(b − a) ≠ fl(c − a)` in general), and every `W(s)` is
//!   bitwise the same whichever sub-interval asked for it.
//! - (c) Query-order independence, bitwise: values and whole adaptive solves.
//! - (d) GBM strong error against the exact solution from the same tree's `W(T)` falls
//!   like `tol¹` (the fitted slope's 99.9% interval contains 1 and excludes ½).
//! - (e) Adaptive and fixed steps on the same path converge to the same limit (a
//!   nonlinear SDE without closed form: the mean difference is within 4 standard errors
//!   of 0 at every tolerance and the RMS difference falls with the tolerance).
//! - (f) Same seed → same bits whatever the thread count and whatever tolerances other
//!   paths were solved at.

use nalgebra::DVector;
use noether_sde::analysis::regression::fit_line;
use noether_sde::analysis::stats::kolmogorov_survival;
use noether_sde::brownian::BrownianTree;
use noether_sde::prelude::*;
use noether_sde::scheme::{integrate_adaptive, AdaptiveMilstein, AdaptiveOptions, AdaptiveSpan};
use rand::{Rng, RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use statrs::distribution::{ContinuousCDF, Normal};

/// One-sample KS statistic of `xs` against N(0, 1) and its asymptotic p-value (Stephens'
/// correction, as in `ks_two_sample`).
fn ks_normal(xs: &[f64]) -> (f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let normal = Normal::standard();
    let d = v.iter().enumerate().fold(0.0f64, |d, (i, &x)| {
        let f = normal.cdf(x);
        d.max((f - i as f64 / n).abs())
            .max(((i + 1) as f64 / n - f).abs())
    });
    let root = n.sqrt();
    (d, kolmogorov_survival((root + 0.12 + 0.11 / root) * d))
}

const KS_LEVEL: f64 = 1e-3;

/// Random queries on `tree`: nested (bisections of a rejected step), overlapping and
/// far away, chosen by `rng` (never by the values, so they do not bias the law).
fn random_history<R: Rng>(tree: &mut BrownianTree, rng: &mut R, queries: usize) {
    let mut inc = Increment::new(tree.noise_dim());
    for _ in 0..queries {
        let s: f64 = rng.random::<f64>() * 0.9;
        let mut h: f64 = rng.random::<f64>() * (1.0 - s);
        // a rejection sequence: halve and re-query the nested interval a few times
        for _ in 0..rng.random_range(0..4) {
            tree.increment(s, s + h, &mut inc).unwrap();
            h *= 0.5;
        }
        // an overlapping interval
        let shift = (rng.random::<f64>() - 0.5) * h;
        let a = (s + shift).clamp(0.0, 1.0);
        tree.increment(a, (a + h).min(1.0), &mut inc).unwrap();
    }
}

#[test]
fn standardised_increments_after_rejections_are_standard_normal() {
    let seeds = SeedTree::new(2024);
    let mut chooser = Xoshiro256PlusPlus::seed_from_u64(11);
    let mut z = Vec::new();
    let mut inc = Increment::new(2);
    for path in 0..1000 {
        let mut tree = BrownianTree::new(&seeds, path, 2, 0.0, 1.0).unwrap();
        random_history(&mut tree, &mut chooser, 6);
        // a controller-like walk whose rejections are coin flips: the accepted steps
        // tile [0, 1], so their increments are independent N(0, h)
        let mut t = 0.0;
        let mut h = 0.05 + 0.2 * chooser.random::<f64>();
        while t < 1.0 {
            let end = (t + h).min(1.0);
            tree.increment(t, end, &mut inc).unwrap();
            if chooser.random::<f64>() < 0.5 && end - t > 1e-3 {
                h = 0.5 * (end - t); // rejected: the nested half is queried next
                continue;
            }
            for j in 0..2 {
                z.push(inc.dw[j] / inc.h.sqrt());
            }
            t = end;
            h = 0.05 + 0.2 * chooser.random::<f64>();
        }
    }
    let (d, p) = ks_normal(&z);
    assert!(p > KS_LEVEL, "KS D = {d}, p = {p} on {} samples", z.len());
    // the same test rejects a 10% wrong scale
    let wrong: Vec<f64> = z.iter().map(|v| 1.1 * v).collect();
    let (_, p_wrong) = ks_normal(&wrong);
    assert!(p_wrong < KS_LEVEL, "no power: p = {p_wrong}");
}

#[test]
fn a_point_inside_a_leaf_has_the_exact_marginal() {
    // depth 3: leaves of width 1/8, so almost every random s is strictly inside a leaf
    let seeds = SeedTree::new(5);
    let mut chooser = Xoshiro256PlusPlus::seed_from_u64(3);
    let mut w = DVector::zeros(1);
    let mut z = Vec::new();
    for path in 0..4000 {
        let mut tree = BrownianTree::with_depth(&seeds, path, 1, 0.0, 1.0, 3).unwrap();
        let s = 0.01 + 0.99 * chooser.random::<f64>();
        tree.w(s, &mut w).unwrap();
        z.push(w[0] / s.sqrt());
    }
    let (d, p) = ks_normal(&z);
    assert!(p > KS_LEVEL, "KS D = {d}, p = {p}");
}

#[test]
fn sub_interval_increments_sum_to_the_coarse_increment() {
    let seeds = SeedTree::new(77);
    let mut chooser = Xoshiro256PlusPlus::seed_from_u64(1);
    let u = f64::EPSILON / 2.0;
    let mut inc = Increment::new(3);
    let mut worst = 0.0f64;
    for path in 0..50 {
        let mut tree = BrownianTree::new(&seeds, path, 3, 0.0, 2.0).unwrap();
        let (s, e) = (0.3 * chooser.random::<f64>(), 1.2 + 0.8 * chooser.random::<f64>());
        let n = 2 + chooser.random_range(0..40usize);
        let mut cuts: Vec<f64> = (0..n - 1)
            .map(|_| s + (e - s) * chooser.random::<f64>())
            .collect();
        cuts.sort_by(f64::total_cmp);
        let points: Vec<f64> = std::iter::once(s).chain(cuts).chain(std::iter::once(e)).collect();
        // query the pieces in a random order
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, chooser.random_range(0..=i));
        }
        let mut pieces = vec![DVector::zeros(3); n];
        for &i in &order {
            tree.increment(points[i], points[i + 1], &mut inc).unwrap();
            pieces[i].copy_from(&inc.dw);
        }
        tree.increment(s, e, &mut inc).unwrap();
        for j in 0..3 {
            let sum: f64 = pieces.iter().map(|p| p[j]).sum();
            let abs_sum: f64 = pieces.iter().map(|p| p[j].abs()).sum();
            // d_i = (W_{i+1} − W_i)(1 + δ_i), the left-to-right sum adds γ_{n−1} Σ|d_i|,
            // the coarse difference one more rounding: |Σ − C| ≤ (n + 1) u (Σ|d_i| + |C|)
            // to first order in u (the 1.01 covers the higher orders)
            let bound = 1.01 * (n as f64 + 1.0) * u * (abs_sum + inc.dw[j].abs());
            let gap = (sum - inc.dw[j]).abs();
            assert!(gap <= bound, "path {path}: |Σ − C| = {gap:e} > {bound:e}");
            worst = worst.max(gap / bound);
        }
    }
    assert!(worst < 1.0);
}

#[test]
fn values_do_not_depend_on_the_query_order() {
    let seeds = SeedTree::new(31);
    let mut chooser = Xoshiro256PlusPlus::seed_from_u64(8);
    // dyadic, non-dyadic, the ends, and two points inside one leaf
    let mut times: Vec<f64> = (0..200).map(|_| 3.0 * chooser.random::<f64>()).collect();
    times.extend([
        0.0,
        3.0,
        1.5,
        0.375,
        3.0 * 2f64.powi(-32),
        1.0 + 1e-12,
        1.0 + 2e-12,
    ]);
    let reference: Vec<DVector<f64>> = {
        let mut tree = BrownianTree::new(&seeds, 9, 2, 0.0, 3.0).unwrap();
        times
            .iter()
            .map(|&s| {
                let mut w = DVector::zeros(2);
                tree.w(s, &mut w).unwrap();
                w
            })
            .collect()
    };
    for trial in 0..5 {
        let mut tree = BrownianTree::new(&seeds, 9, 2, 0.0, 3.0).unwrap();
        let mut order: Vec<usize> = (0..times.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, chooser.random_range(0..=i));
        }
        let mut w = DVector::zeros(2);
        for &i in &order {
            // an unrelated query in between moves the cache elsewhere
            if trial % 2 == 1 {
                tree.w(3.0 * chooser.random::<f64>(), &mut w).unwrap();
            }
            tree.w(times[i], &mut w).unwrap();
            let (a, b) = (w.as_slice(), reference[i].as_slice());
            assert!(
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "s = {}: {a:?} vs {b:?}",
                times[i]
            );
        }
    }
    // another path and another seed give other values
    let mut other = BrownianTree::new(&seeds, 10, 2, 0.0, 3.0).unwrap();
    let mut w = DVector::zeros(2);
    other.w(1.5, &mut w).unwrap();
    assert_ne!(w, reference[times.len() - 5]);
}

fn gbm() -> GeometricBrownianMotion {
    GeometricBrownianMotion::new(0.5, 0.6).unwrap()
}

fn solve_gbm(path: u64, tol: f64, tree: &mut BrownianTree) -> noether_sde::scheme::AdaptiveSolution {
    let span = AdaptiveSpan::new(0.0, 1.0).unwrap();
    integrate_adaptive(
        &gbm(),
        &mut AdaptiveMilstein::new(),
        &DVector::from_element(1, 1.0),
        &span,
        &AdaptiveOptions::tolerance(tol),
        tree,
        path,
        &mut (),
    )
    .unwrap()
}

#[test]
fn a_solve_does_not_depend_on_earlier_queries() {
    let seeds = SeedTree::new(4);
    let mut chooser = Xoshiro256PlusPlus::seed_from_u64(2);
    let mut fresh = BrownianTree::new(&seeds, 3, 1, 0.0, 1.0).unwrap();
    let a = solve_gbm(3, 1e-3, &mut fresh);
    let mut used = BrownianTree::new(&seeds, 3, 1, 0.0, 1.0).unwrap();
    random_history(&mut used, &mut chooser, 50);
    let _ = solve_gbm(3, 1e-2, &mut used); // another tolerance first
    let b = solve_gbm(3, 1e-3, &mut used);
    assert_eq!(a.x[0].to_bits(), b.x[0].to_bits());
    assert_eq!((a.accepted, a.rejected), (b.accepted, b.rejected));
    assert!(a.rejected > 0, "the solve should exercise rejections");
}

#[test]
fn strong_error_on_gbm_falls_like_the_tolerance() {
    let seeds = SeedTree::new(99);
    let paths = 400;
    let tols = [1e-2, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4];
    let (mut log_tol, mut log_err, mut se_log) = (Vec::new(), Vec::new(), Vec::new());
    let mut log_steps = Vec::new();
    let mut w = DVector::zeros(1);
    for &tol in &tols {
        let mut squares = Vec::with_capacity(paths);
        let mut steps = 0;
        for path in 0..paths as u64 {
            let mut tree = BrownianTree::new(&seeds, path, 1, 0.0, 1.0).unwrap();
            let solution = solve_gbm(path, tol, &mut tree);
            tree.w(1.0, &mut w).unwrap();
            let exact = gbm().exact(1.0, 1.0, w[0]);
            squares.push((solution.x[0] - exact).powi(2));
            steps += solution.accepted;
            assert_eq!(solution.forced, 0);
        }
        let (mean, _, se, _) = crate::common::moments(&squares);
        // RMS error e = √mean; se of log e = se(mean) / (2 mean)
        log_tol.push(tol.ln());
        log_steps.push((steps as f64 / paths as f64).ln());
        log_err.push(0.5 * mean.ln());
        se_log.push(se / (2.0 * mean));
        eprintln!(
            "tol {tol:e}: RMS error {:.3e} (±{:.1}%), {:.1} accepted steps per path",
            mean.sqrt(),
            100.0 * se / (2.0 * mean),
            steps as f64 / paths as f64
        );
    }
    let fit = fit_line(&log_tol, &log_err, Some(&se_log), 0.95).unwrap();
    let steps_fit = fit_line(&log_steps, &log_err, Some(&se_log), 0.95).unwrap();
    eprintln!(
        "against mean accepted steps: slope {:.3} [{:.3}, {:.3}]",
        steps_fit.slope, steps_fit.ci_low, steps_fit.ci_high
    );
    let [lo, hi] = fit.interval(0.999);
    eprintln!(
        "slope {:.3}, 95% [{:.3}, {:.3}], 99.9% [{lo:.3}, {hi:.3}]",
        fit.slope, fit.ci_low, fit.ci_high
    );
    assert!(
        lo <= 1.0 && 1.0 <= hi,
        "slope {} [{lo}, {hi}] excludes 1",
        fit.slope
    );
    assert!(lo > 0.5, "slope {} [{lo}, {hi}] does not exclude 1/2", fit.slope);
    // against the work: Milstein's strong order 1 in the mean step
    let [lo, hi] = steps_fit.interval(0.999);
    assert!(
        lo <= -1.0 && -1.0 <= hi,
        "slope {} [{lo}, {hi}] excludes -1",
        steps_fit.slope
    );
}

/// `dX = (X − X³) dt + σ X dW`: nonlinear, multiplicative scalar noise, no closed form.
struct Cubic {
    sigma: f64,
}

impl Sde for Cubic {
    fn dim(&self) -> usize {
        1
    }
    fn structure(&self) -> Structure {
        Structure::scalar()
    }
    fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = x[0] - x[0].powi(3);
    }
    fn diffusion_apply(&self, _t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = self.sigma * x[0] * dw[0];
    }
    fn diffusion_derivative(
        &self,
        _t: f64,
        _x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        _scratch: &mut noether_sde::sde::DerivativeScratch,
    ) {
        out[0] = self.sigma * v[0] * c[0];
    }
}

#[test]
fn adaptive_and_fixed_steps_converge_to_the_same_limit() {
    // fixed Milstein at h = 2^-14 on the tree (dyadic times: every query is a node) is
    // the reference; the adaptive solutions on the same trees approach it like tol¹,
    // without a plateau (a wrong limit would flatten the slope to 0)
    let sde = Cubic { sigma: 0.8 };
    let seeds = SeedTree::new(123);
    let x0 = DVector::from_element(1, 0.5);
    let paths = 100u64;
    let tols = [2e-2, 1e-2, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4];
    let fixed: Vec<f64> = (0..paths)
        .map(|path| {
            let mut tree = BrownianTree::new(&seeds, path, 1, 0.0, 1.0).unwrap();
            let span = TimeSpan::new(0.0, 1.0, 2f64.powi(-14)).unwrap();
            integrate(&sde, &mut Milstein::new(), &x0, &span, &mut tree, path, &mut ()).unwrap()[0]
        })
        .collect();
    let span = AdaptiveSpan::new(0.0, 1.0).unwrap();
    let (mut log_tol, mut log_rms, mut se_log) = (Vec::new(), Vec::new(), Vec::new());
    for &tol in &tols {
        let squares: Vec<f64> = (0..paths)
            .map(|path| {
                let mut tree = BrownianTree::new(&seeds, path, 1, 0.0, 1.0).unwrap();
                let options = AdaptiveOptions::tolerance(tol);
                let mut scheme = AdaptiveMilstein::new();
                let s = integrate_adaptive(&sde, &mut scheme, &x0, &span, &options, &mut tree, path, &mut ())
                    .unwrap();
                (s.x[0] - fixed[path as usize]).powi(2)
            })
            .collect();
        let (mean, _, se, _) = crate::common::moments(&squares);
        eprintln!("tol {tol:e}: RMS |adaptive − fixed| = {:.3e}", mean.sqrt());
        log_tol.push(tol.ln());
        log_rms.push(0.5 * mean.ln());
        se_log.push(se / (2.0 * mean));
    }
    let fit = fit_line(&log_tol, &log_rms, Some(&se_log), 0.95).unwrap();
    let [lo, hi] = fit.interval(0.999);
    eprintln!("slope {:.3}, 99.9% [{lo:.3}, {hi:.3}]", fit.slope);
    assert!(
        lo > 0.5,
        "slope {} [{lo}, {hi}]: the difference does not vanish",
        fit.slope
    );
    assert!(
        lo <= 1.0 && 1.0 <= hi,
        "slope {} [{lo}, {hi}] excludes 1",
        fit.slope
    );
}

#[test]
fn same_bits_whatever_the_threads_and_the_other_paths() {
    let seeds = SeedTree::new(8);
    let paths: Vec<u64> = (0..12).collect();
    let solve = |path: u64, tol: f64, scheme: &mut AdaptiveMilstein| {
        let mut tree = BrownianTree::new(&seeds, path, 1, 0.0, 1.0).unwrap();
        let span = AdaptiveSpan::new(0.0, 1.0).unwrap();
        let x0 = DVector::from_element(1, 1.0);
        let options = AdaptiveOptions::tolerance(tol);
        integrate_adaptive(&gbm(), scheme, &x0, &span, &options, &mut tree, path, &mut ())
            .unwrap()
            .x[0]
            .to_bits()
    };
    let reference: Vec<u64> = paths
        .iter()
        .map(|&p| solve(p, 1e-3, &mut AdaptiveMilstein::new()))
        .collect();
    for threads in [2usize, 3] {
        let results: Vec<Vec<(u64, u64)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|r| {
                    let solve = &solve;
                    scope.spawn(move || {
                        // one scheme (scratch) per thread; other paths at other
                        // tolerances in between
                        let mut scheme = AdaptiveMilstein::new();
                        let mut chooser = Xoshiro256PlusPlus::seed_from_u64(r as u64);
                        (r..12)
                            .step_by(threads)
                            .rev()
                            .map(|p| {
                                let p = p as u64;
                                let other = chooser.random_range(0..12u64);
                                let _ = solve(
                                    other,
                                    10f64.powf(-1.0 - 3.0 * chooser.random::<f64>()),
                                    &mut scheme,
                                );
                                (p, solve(p, 1e-3, &mut scheme))
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (p, bits) in results.into_iter().flatten() {
            assert_eq!(bits, reference[p as usize], "path {p} with {threads} threads");
        }
    }
}

#[test]
fn lands_on_save_times_and_reports_errors() {
    let seeds = SeedTree::new(1);
    let times = vec![0.1, 0.25, 1.0 / 3.0, 0.7, 1.0];
    let span = AdaptiveSpan::new(0.0, 1.0).unwrap().with_stops(&times).unwrap();
    let mut saved = SaveAt::new(times.clone(), 1);
    let mut tree = BrownianTree::new(&seeds, 0, 1, 0.0, 1.0).unwrap();
    let x0 = DVector::from_element(1, 1.0);
    let options = AdaptiveOptions::tolerance(1e-3);
    let s = integrate_adaptive(
        &gbm(),
        &mut AdaptiveMilstein::new(),
        &x0,
        &span,
        &options,
        &mut tree,
        0,
        &mut saved,
    )
    .unwrap();
    // exactly the requested times, and the last state is the returned one
    assert_eq!(saved.saved_times(), &times[..]);
    assert_eq!(saved.states()[4], s.x);
    assert_eq!(s.t.to_bits(), 1f64.to_bits());
    // general noise needs Lévy areas: refused before the first step
    let mut tree2 = BrownianTree::new(&seeds, 0, 2, 0.0, 1.0).unwrap();
    let err = integrate_adaptive(
        &NonCommutative,
        &mut AdaptiveMilstein::new(),
        &DVector::from_element(2, 1.0),
        &span,
        &options,
        &mut tree2,
        0,
        &mut (),
    );
    assert!(matches!(err, Err(Error::Incompatible { .. })), "{err:?}");
    // a tree that does not cover the span
    let mut short = BrownianTree::new(&seeds, 0, 1, 0.0, 0.5).unwrap();
    let err = integrate_adaptive(
        &gbm(),
        &mut AdaptiveMilstein::new(),
        &x0,
        &span,
        &options,
        &mut short,
        0,
        &mut (),
    );
    assert!(
        matches!(err, Err(Error::InvalidParameter { name: "tree", .. })),
        "{err:?}"
    );
    // divergence: dX = X³ dt + X dW blows up before t = 1 from x0 = 2 (deterministic
    // blow-up at t = 1/8); dt_min stops the controller from chasing it forever
    struct Blowup;
    impl Sde for Blowup {
        fn dim(&self) -> usize {
            1
        }
        fn structure(&self) -> Structure {
            Structure::scalar()
        }
        fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
            out[0] = x[0].powi(3);
        }
        fn diffusion_apply(&self, _t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
            out[0] = 0.1 * x[0] * dw[0];
        }
    }
    let mut options = AdaptiveOptions::tolerance(1e-3);
    options.dt_min = Some(1e-3);
    let err = integrate_adaptive(
        &Blowup,
        &mut AdaptiveMilstein::new(),
        &DVector::from_element(1, 2.0),
        &AdaptiveSpan::new(0.0, 1.0).unwrap(),
        &options,
        &mut tree,
        7,
        &mut (),
    );
    match err {
        Err(Error::Divergence { path: 7, step, t }) => assert!(step > 0 && t > 0.0 && t < 0.5, "{step} {t}"),
        other => panic!("{other:?}"),
    }
}
