//! Statistical tests (issue 5, items 2–3): reference values for what is written by hand,
//! Monte Carlo checks of the long-run variance estimators on AR(1), and the calibration
//! of the fixed-point test under a true null.

use crate::common::Z_4;
use nalgebra::DVector;
use noether_sde::analysis::stats::{
    binomial_interval, calibrate_fixed_point_test, convergence_time, kolmogorov_survival, ks_two_sample,
    one_sample_t, summarize, time_average, welch_satterthwaite_df, welch_t, FixedPointCalibration,
    LongRunVariance, MeanInterval,
};
use noether_sde::prelude::*;
use rand::RngExt;
use rand_distr::StandardNormal;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// R's `sleep` data (Cushny & Peebles), the example of R's `?t.test`.
const SLEEP_1: [f64; 10] = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
const SLEEP_2: [f64; 10] = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];

#[test]
fn kolmogorov_distribution_matches_published_values() {
    // SciPy documentation of scipy.special.kolmogorov: kolmogorov([0, 0.5, 1.0])
    // = [1., 0.96394524, 0.26999967]; full digits 0.9639452436648751, 0.26999967167735456.
    assert!((kolmogorov_survival(0.0) - 1.0).abs() < 1e-15);
    assert!((kolmogorov_survival(0.5) - 0.963_945_243_664_875_1).abs() < 1e-14);
    assert!((kolmogorov_survival(1.0) - 0.269_999_671_677_354_56).abs() < 1e-14);
    // Smirnov's asymptotic critical values (Smirnov 1948, Ann. Math. Stat. 19, Table 1;
    // SciPy kolmogi(0.05) = 1.3580986393225507, kolmogi(0.01) = 1.6276236115189):
    // Q(1.3580986393) = 0.05, Q(1.6276236115) = 0.01.
    assert!((kolmogorov_survival(1.358_098_639_322_550_7) - 0.05).abs() < 1e-12);
    assert!((kolmogorov_survival(1.627_623_611_518_9) - 0.01).abs() < 1e-12);
    // The two series agree where they switch (λ = 1.18) and the function is monotone.
    let below = kolmogorov_survival(1.18 - 1e-13);
    let above = kolmogorov_survival(1.18 + 1e-13);
    assert!((below - above).abs() < 1e-12, "{below} vs {above}");
    let grid: Vec<f64> = (0..=300).map(|k| kolmogorov_survival(0.01 * k as f64)).collect();
    assert!(grid.windows(2).all(|w| w[1] <= w[0]));
    assert!(kolmogorov_survival(10.0) < 1e-80);
}

#[test]
fn one_sample_t_matches_r() {
    // R: t.test(sleep$extra[sleep$group == 1]):
    //    t = 1.3257, df = 9, p-value = 0.2176; 95 percent CI -0.5297804 2.0297804
    let w = summarize(&SLEEP_1);
    let t = one_sample_t(&w, 0.0, 0.05).unwrap();
    assert!((t.statistic - 1.3257).abs() < 5e-5);
    assert!((t.df - 9.0).abs() < 1e-12);
    assert!((t.p_value - 0.2176).abs() < 5e-5);
    assert!(!t.rejects);
    let ci = MeanInterval::from_welford(&w, 0.95);
    assert!((ci.ci_low + 0.529_780_4).abs() < 5e-8);
    assert!((ci.ci_high - 2.029_780_4).abs() < 5e-8);
    // The test and the interval agree: the interval's ends are exactly at p = α.
    let at_edge = one_sample_t(&w, ci.ci_high, 0.05).unwrap();
    assert!((at_edge.p_value - 0.05).abs() < 1e-9);
    // A prediction far outside rejects; the level is reported as given.
    let far = one_sample_t(&w, 3.0, 0.01).unwrap();
    assert!(far.rejects && far.p_value < 0.01);
    assert!((far.alpha - 0.01).abs() < 1e-15);
}

#[test]
fn welch_t_matches_r() {
    // R: t.test(extra ~ group, data = sleep)   (Welch, the default)
    //    t = -1.8608, df = 17.776, p-value = 0.07939; 95 percent CI -3.3654832 0.2054832
    let (a, b) = (summarize(&SLEEP_1), summarize(&SLEEP_2));
    let df = welch_satterthwaite_df(&a, &b);
    assert!((df - 17.776).abs() < 5e-4, "df = {df}");
    let t = welch_t(&a, &b, 0.05).unwrap();
    assert!((t.statistic + 1.8608).abs() < 5e-5);
    assert!((t.p_value - 0.07939).abs() < 5e-6);
    assert!(!t.rejects);
    assert!(welch_t(&a, &b, 0.10).unwrap().rejects);
    // Equal variances and sizes: ν = 2(n − 1) exactly.
    let c = summarize(&[1.0, 2.0, 3.0]);
    let d = summarize(&[11.0, 12.0, 13.0]);
    assert!((welch_satterthwaite_df(&c, &d) - 4.0).abs() < 1e-12);
}

#[test]
fn tests_reject_bad_input() {
    let w = summarize(&SLEEP_1);
    assert!(one_sample_t(&summarize(&[1.0]), 0.0, 0.05).is_err());
    assert!(one_sample_t(&w, 0.0, 0.0).is_err());
    assert!(one_sample_t(&w, 0.0, 1.0).is_err());
    assert!(one_sample_t(&w, f64::NAN, 0.05).is_err());
    assert!(welch_t(&w, &summarize(&[2.0]), 0.05).is_err());
    assert!(ks_two_sample(&[], &[1.0], 0.05).is_err());
    assert!(ks_two_sample(&[f64::NAN], &[1.0], 0.05).is_err());
    assert!(time_average(&[1.0, 2.0, 3.0], LongRunVariance::default()).is_err());
    assert!(time_average(&[1.0; 10], LongRunVariance::BatchMeans { batches: 1 }).is_err());
    assert!(time_average(&[1.0; 10], LongRunVariance::BatchMeans { batches: 11 }).is_err());
    assert!(convergence_time(&[0.0, 1.0], std::slice::from_ref(&w), 0.0, 0.05).is_err());
    assert!(convergence_time(&[1.0, 0.0], &[w, w], 0.0, 0.05).is_err());
    assert!(binomial_interval(1.5, 10, 0.99).is_err());
}

#[test]
fn ks_statistic_is_exact_with_ties() {
    // Hand computation: x = {1, 2, 2, 3}, y = {2, 2, 4}.
    // At 1: 1/4 − 0; at 2: 3/4 − 2/3 (ties counted together); at 3: 1 − 2/3 = 1/3.
    let ks = ks_two_sample(&[3.0, 2.0, 1.0, 2.0], &[4.0, 2.0, 2.0], 0.05).unwrap();
    assert!((ks.statistic - 1.0 / 3.0).abs() < 1e-15);
    assert_eq!((ks.n1, ks.n2), (4, 3));
    // p from the documented formula: n_e = 12/7, λ = (√n_e + 0.12 + 0.11/√n_e) D.
    let root = (12.0f64 / 7.0).sqrt();
    let p = kolmogorov_survival((root + 0.12 + 0.11 / root) / 3.0);
    assert!((ks.p_value - p).abs() < 1e-15);
    // Identical samples: D = 0, p = 1; disjoint samples: D = 1.
    let same = ks_two_sample(&SLEEP_1, &SLEEP_1, 0.05).unwrap();
    assert!(same.statistic.abs() < 1e-15 && (same.p_value - 1.0).abs() < 1e-15);
    let apart: Vec<f64> = SLEEP_1.iter().map(|x| x + 100.0).collect();
    let disjoint = ks_two_sample(&SLEEP_1, &apart, 0.05).unwrap();
    assert!((disjoint.statistic - 1.0).abs() < 1e-15 && disjoint.rejects);
}

/// Rejection rate of the KS test over `reps` pairs of normal samples of size `n`, the
/// second shifted by `shift`.
fn ks_rejection_rate(reps: usize, n: usize, shift: f64) -> f64 {
    let seeds = SeedTree::new(77);
    let mut rejections = 0;
    for r in 0..reps {
        let mut rng = seeds.rng(r as u64, Stream::Custom(1));
        let a: Vec<f64> = (0..n).map(|_| rng.sample::<f64, _>(StandardNormal)).collect();
        let b: Vec<f64> = (0..n)
            .map(|_| shift + rng.sample::<f64, _>(StandardNormal))
            .collect();
        rejections += usize::from(ks_two_sample(&a, &b, 0.05).unwrap().rejects);
    }
    rejections as f64 / reps as f64
}

/// The two-sample KS test at n = m = 50, α = 0.05 rejects iff D ≥ 14/50: its exact size
/// is P(D ≥ 14/50) = 0.0392 (lattice-path count of the null distribution; P(D ≥ 13/50) =
/// 0.068 > α), not 0.05 — the statistic is discrete. The null rate over 10,000 repetitions
/// must lie in the exact binomial 99.99% interval around 0.0392 (false alarm ≤ 1e-4),
/// which excludes 0.05.
#[test]
fn ks_test_is_calibrated_and_has_power() {
    let reps = 10_000;
    let [lo, hi] = binomial_interval(0.0392, reps, 0.9999).unwrap();
    assert!(hi < 0.05, "the band must tell the exact size from the nominal α");
    let null = ks_rejection_rate(reps, 50, 0.0);
    assert!(
        lo <= null && null <= hi,
        "KS null rejection rate {null} outside [{lo}, {hi}]"
    );
    let power = ks_rejection_rate(reps, 50, 1.0);
    assert!(power > 0.9, "KS power at a one-sd shift, n = 50: {power}");
}

/// `n Var(x̄_n)` of a stationary AR(1) `x_t = φ x_{t−1} + e_t`, `Var e = 1`:
/// `γ₀ [1 + 2 Σ_{k=1}^{n−1} (1 − k/n) φ^k]`, `γ₀ = 1/(1 − φ²)` (Brockwell & Davis,
/// Time Series: Theory and Methods, 2nd ed., Thm 7.1.1). Its limit is `1/(1 − φ)²`.
fn ar1_n_var_mean(phi: f64, n: usize) -> f64 {
    let gamma0 = 1.0 / (1.0 - phi * phi);
    let sum: f64 = (1..n)
        .map(|k| (1.0 - k as f64 / n as f64) * phi.powi(k as i32))
        .sum();
    gamma0 * (1.0 + 2.0 * sum)
}

fn ar1(phi: f64, n: usize, seeds: &SeedTree, path: u64) -> Vec<f64> {
    let mut rng = seeds.rng(path, Stream::Custom(2));
    let mut x = rng.sample::<f64, _>(StandardNormal) / (1.0 - phi * phi).sqrt();
    (0..n)
        .map(|_| {
            let out = x;
            x = phi * x + rng.sample::<f64, _>(StandardNormal);
            out
        })
        .collect()
}

#[test]
fn ar1_reference_formula_is_right() {
    // Limit 1/(1 − φ)² and a hand value: n = 2, φ = 0.5: γ₀(1 + 2·½·½) = (4/3)(3/2) = 2.
    assert!((ar1_n_var_mean(0.5, 2) - 2.0).abs() < 1e-14);
    assert!((ar1_n_var_mean(0.5, 1_000_000) - 4.0).abs() < 1e-5);
}

/// Long-run variance estimates over `reps` AR(1) series, against the exact `n Var(x̄)`;
/// also checks the spread of the means themselves.
fn check_long_run_variance(method: LongRunVariance, reps: usize, n: usize, phi: f64) {
    let seeds = SeedTree::new(31);
    let exact = ar1_n_var_mean(phi, n);
    let mut estimates = Welford::new();
    let mut naive = Welford::new();
    let mut scaled_means = Welford::new();
    for r in 0..reps {
        let xs = ar1(phi, n, &seeds, r as u64);
        let est = time_average(&xs, method).unwrap();
        estimates.push(est.long_run_variance);
        naive.push(est.variance);
        scaled_means.push(est.mean * (est.n as f64).sqrt());
    }
    // The simulation itself: n x̄² averages to n Var(x̄) (mean 0 known).
    // The estimator: unbiased up to O(τ/L) (batch means) or truncation (Geyer), far
    // below the Monte Carlo error here.
    assert_within_se!(estimates.mean(), exact, estimates.std_error(), Z_4); // false alarm 6e-5
                                                                            // A deliberately wrong formula (the i.i.d. variance γ₀ = 1/(1 − φ²)) is rejected.
    assert_rejects!(naive.mean(), exact, estimates.std_error(), Z_4);
    let var_of_means = scaled_means.variance();
    // Var of a sample variance of normals: 2σ⁴/(reps − 1).
    let se = exact * (2.0 / (reps - 1) as f64).sqrt();
    assert_within_se!(var_of_means, exact, se, Z_4);
}

#[test]
fn batch_means_recover_ar1_variance_of_the_mean() {
    check_long_run_variance(LongRunVariance::BatchMeans { batches: 20 }, 300, 8000, 0.5);
}

#[test]
fn initial_monotone_sequence_recovers_ar1_variance_of_the_mean() {
    check_long_run_variance(LongRunVariance::InitialMonotoneSequence, 200, 8000, 0.5);
}

#[test]
fn time_average_of_constant_and_independent_series() {
    let est = time_average(&[2.0; 16], LongRunVariance::InitialMonotoneSequence).unwrap();
    assert!((est.mean - 2.0).abs() < 1e-15 && est.std_error.abs() < 1e-15);
    let t = est.t_test(2.0, 0.05).unwrap();
    assert!(!t.rejects);
    assert!(est.t_test(2.5, 0.05).unwrap().rejects);
    // Independent: the usual s/√n, df n − 1, ESS n.
    let est = time_average(&SLEEP_1, LongRunVariance::Independent).unwrap();
    let w = summarize(&SLEEP_1);
    assert!((est.std_error - w.std_error()).abs() < 1e-15);
    assert!((est.effective_sample_size - 10.0).abs() < 1e-12);
    let ci = est.interval(0.95);
    assert!((ci.ci_high - 2.029_780_4).abs() < 5e-8); // R, as in one_sample_t_matches_r
                                                      // ⌊√n⌋ batches.
    assert_eq!(
        LongRunVariance::sqrt_batches(10_000),
        LongRunVariance::BatchMeans { batches: 100 }
    );
}

#[test]
fn binomial_interval_holds_its_level() {
    // Binomial(400, 0.05), exact sums (R: pbinom(k, 400, 0.05)): P(X ≤ 9) = 0.00423 ≤ 0.005
    // < P(X ≤ 10) = 0.00940, and P(X ≤ 31) = 0.99334 < 0.995 ≤ P(X ≤ 32) = 0.99623.
    let [lo, hi] = binomial_interval(0.05, 400, 0.99).unwrap();
    assert!((lo - 10.0 / 400.0).abs() < 1e-15, "lo = {lo}");
    assert!((hi - 32.0 / 400.0).abs() < 1e-15, "hi = {hi}");
}

#[test]
fn fixed_point_test_is_calibrated_on_an_ensemble() {
    let config = FixedPointCalibration::ensemble(16, 1.0);
    let cal = calibrate_fixed_point_test(&config).unwrap();
    assert_eq!(cal.repetitions, 2000);
    assert!(
        cal.calibrated,
        "null rejection rate {} outside {:?}",
        cal.null_rejection_rate, cal.null_rejection_ci
    );
    // offset 0.5 ≈ 3 standard errors: power of a t test with 15 df ≈ 0.8
    assert!(cal.offset / cal.mean_std_error > 2.5);
    // The check can fail: tested against a wrong prediction (off by the offset), the
    // rejection rate lies far above the interval of a calibrated test ([0.031, 0.070]).
    assert!(cal.power > 0.6, "power {}", cal.power);
}

#[test]
fn fixed_point_test_on_one_long_trajectory_is_calibrated_with_batch_means() {
    let mut config = FixedPointCalibration::time_average(8000, LongRunVariance::BatchMeans { batches: 20 });
    config.h = 0.1; // lag-one autocorrelation 0.9, integrated autocorrelation time 19 steps
    let cal = calibrate_fixed_point_test(&config).unwrap();
    assert!(
        cal.calibrated,
        "batch means: null rejection rate {} outside {:?}",
        cal.null_rejection_rate, cal.null_rejection_ci
    );
    assert!(cal.power > 0.5, "power {}", cal.power);
    // The i.i.d. standard error on the same trajectories rejects a true null far too
    // often: the calibration check catches the wrong formula.
    config.design = noether_sde::analysis::stats::CalibrationDesign::TimeAverage {
        steps: 8000,
        method: LongRunVariance::Independent,
    };
    let naive = calibrate_fixed_point_test(&config).unwrap();
    assert!(!naive.calibrated && naive.null_rejection_rate > 0.3, "{naive:?}");
}

#[test]
fn fixed_point_test_on_one_long_trajectory_is_calibrated_with_geyer() {
    let mut config = FixedPointCalibration::time_average(8000, LongRunVariance::InitialMonotoneSequence);
    config.h = 0.1;
    let cal = calibrate_fixed_point_test(&config).unwrap();
    assert!(
        cal.calibrated,
        "initial monotone sequence: null rejection rate {} outside {:?}",
        cal.null_rejection_rate, cal.null_rejection_ci
    );
}

#[test]
fn calibration_is_deterministic() {
    let mut config = FixedPointCalibration::ensemble(4, 0.5);
    config.repetitions = 20;
    let a = calibrate_fixed_point_test(&config).unwrap();
    let b = calibrate_fixed_point_test(&config).unwrap();
    assert_eq!(a, b);
}

#[test]
fn convergence_time_of_an_ou_ensemble() {
    // OU from x0 = 3 relaxing to μ = 0; 64 paths; tests at 25 times, Bonferroni over them
    // at a family-wise 1e-4 (so a false rejection after settling, which would push the
    // time later, has probability ≤ 1e-4). The bias 3e^{−t} meets the test's resolution
    // q·se (q the t quantile, se of the mean) at t* = ln(3/(q·se)); the mean's noise moves
    // the crossing by δt ≈ se/(3e^{−t*}) = 1/q, and the grid by up to 0.25: the measured
    // time must lie within t* ± (4δt + 0.25).
    let ou = OrnsteinUhlenbeck::new(1.0, 0.0, 1.0).unwrap();
    let span = TimeSpan::new(0.0, 6.0, 0.01).unwrap();
    let times: Vec<f64> = (0..=24).map(|k| 0.25 * k as f64).collect();
    let seeds = SeedTree::new(5);
    let mut stats = vec![Welford::new(); times.len()];
    for path in 0..64 {
        let mut rec = SaveAt::new(times.clone(), 1);
        let mut inc = IncrementStream::new(&seeds, path, 1);
        let x0 = DVector::from_element(1, 3.0);
        integrate(
            &ou,
            &mut EulerMaruyama::new(),
            &x0,
            &span,
            &mut inc,
            path,
            &mut rec,
        )
        .unwrap();
        for (w, x) in stats.iter_mut().zip(rec.states()) {
            w.push(x[0]);
        }
    }
    let alpha = 1e-4 / times.len() as f64;
    let c = convergence_time(&times, &stats, 0.0, alpha).unwrap();
    let t = c.time.expect("the ensemble settles at its fixed point");
    let last = &c.tests[c.tests.len() - 1];
    let q = StudentsT::new(0.0, 1.0, last.df)
        .unwrap()
        .inverse_cdf(1.0 - alpha / 2.0);
    let t_star = (3.0 / (q * last.std_error)).ln();
    let band = 4.0 / q + 0.25;
    assert!(
        (t - t_star).abs() <= band,
        "convergence time {t}, predicted {t_star:.2} ± {band:.2}"
    );
    // Against a wrong fixed point the ensemble never settles.
    assert_eq!(convergence_time(&times, &stats, 0.6, alpha).unwrap().time, None);
}
