//! Schemes against exact solutions: GBM moments, OU stationary variance (THEORY §8).

use crate::common::{moments, Z_4};
use nalgebra::DVector;
use noether_sde::prelude::*;

fn final_values<S: Sde, K: Scheme>(
    sde: &S,
    scheme: K,
    x0: f64,
    t1: f64,
    h: f64,
    paths: u64,
    seed: u64,
) -> Vec<f64> {
    let seeds = SeedTree::new(seed);
    let span = TimeSpan::new(0.0, t1, h).unwrap();
    let x0 = DVector::from_element(1, x0);
    (0..paths)
        .map(|p| {
            let mut path = IncrementStream::new(&seeds, p, 1);
            let mut s = scheme.clone();
            integrate(sde, &mut s, &x0, &span, &mut path, p, &mut ()).unwrap()[0]
        })
        .collect()
}

/// GBM with μ = 0.5, s = 0.5, T = 1, h = 2^-8: the EM/Milstein bias of the mean is
/// about e^{μT} μ² T h / 2 ≈ 8e-4, a tenth of the standard error with 10^4 paths, so
/// a 4-s.e. test checks the scheme and not its bias.
fn check_gbm_moments<K: Scheme>(scheme: K, seed: u64) {
    let gbm = GeometricBrownianMotion::new(0.5, 0.5).unwrap();
    let xs = final_values(&gbm, scheme, 1.0, 1.0, 1.0 / 256.0, 10_000, seed);
    let (mean, var, se_mean, se_var) = moments(&xs);
    assert_within_se!(mean, gbm.mean(1.0, 1.0), se_mean, Z_4);
    assert_within_se!(var, gbm.variance(1.0, 1.0), se_var, Z_4);
    // The same test rejects the Stratonovich reading of the coefficients (E X = e^{(μ+s²/2)T}).
    assert_rejects!(mean, (0.5f64 + 0.125).exp(), se_mean, Z_4);
}

#[test]
fn euler_maruyama_gbm_mean_and_variance() {
    check_gbm_moments(EulerMaruyama::new(), 11);
}

#[test]
fn milstein_gbm_mean_and_variance() {
    check_gbm_moments(Milstein::new(), 12);
}

#[test]
fn rk_milstein_gbm_mean_and_variance() {
    check_gbm_moments(RkMilstein::new(), 13);
}

#[test]
fn heun_solves_the_stratonovich_form_of_gbm() {
    let gbm = GeometricBrownianMotion::new(0.5, 0.5).unwrap();
    let xs = final_values(
        &gbm.stratonovich_form(),
        Heun::new(),
        1.0,
        1.0,
        1.0 / 256.0,
        10_000,
        14,
    );
    let (mean, var, se_mean, se_var) = moments(&xs);
    assert_within_se!(mean, gbm.mean(1.0, 1.0), se_mean, Z_4);
    assert_within_se!(var, gbm.variance(1.0, 1.0), se_var, Z_4);
}

/// OU started at its mean, run to T = 10 (e^{-2θT} ≈ 2e-9): the ensemble variance is the
/// stationary σ²/(2θ) up to EM's O(h) bias, σ²/(θ(2 − θh)) exactly for EM; at h = 0.01
/// that bias is 0.5% (0.2 s.e. with 4000 paths).
#[test]
fn ornstein_uhlenbeck_stationary_variance() {
    let ou = OrnsteinUhlenbeck::new(1.0, 0.5, 1.0).unwrap();
    let xs = final_values(&ou, EulerMaruyama::new(), 0.5, 10.0, 0.01, 4000, 15);
    let (mean, var, se_mean, se_var) = moments(&xs);
    assert_within_se!(mean, 0.5, se_mean, Z_4);
    assert_within_se!(var, ou.stationary_variance(), se_var, Z_4);
    // A wrong stationary variance (σ²/θ) is rejected by the same test.
    assert_rejects!(var, 1.0, se_var, Z_4);
}

/// E X_t = e^{At} X_0 for the general-noise linear SDE, with Lévy areas on.
#[test]
fn linear_sde_mean_with_milstein_levy() {
    let sde = LinearSde::random(3, 2, 0.6, 5);
    let x0 = DVector::from_vec(vec![1.0, -0.5, 0.25]);
    let span = TimeSpan::new(0.0, 1.0, 1.0 / 64.0).unwrap();
    let seeds = SeedTree::new(16);
    let exact = sde.mean(&x0, 1.0);
    let mut sums = vec![Vec::new(); 3];
    for p in 0..4000u64 {
        let levy = LevyArea::for_step(2, span.h()).unwrap();
        let mut path = IncrementStream::new(&seeds, p, 2)
            .with_levy_area(&seeds, p, levy)
            .unwrap();
        let x = integrate(&sde, &mut MilsteinLevy::new(), &x0, &span, &mut path, p, &mut ()).unwrap();
        for i in 0..3 {
            sums[i].push(x[i]);
        }
    }
    for i in 0..3 {
        let (mean, _, se, _) = moments(&sums[i]);
        // bias O(h) = 1.6e-2 · |A|²|x0| / 2 ≈ 2e-3, well under the 4-s.e. bound (~0.04)
        assert_within_se!(mean, exact[i], se, Z_4);
    }
}
