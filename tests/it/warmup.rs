//! Warmup, progressive flattening and sharpening (issue #5, THEORY §6).

use noether_sde::analysis::warmup::{
    matrix_factorization_sharpening, scalar_factorization_warmup, WarmupConfig,
};
use noether_sde::models::ScalarFactorization;

/// From C(0) = 8 (sharpness 16.5, critical η = 0.121), η = 0.35: plain SGD diverges on
/// nearly every path (a catapult rescues a few), while a linear warmup lets the Noether
/// flow flatten the solution first — the charge falls toward the balanced point, the
/// valley sharpness toward 4|v| — and nearly every path survives at the same final rate.
#[test]
fn warmup_lets_the_noether_flow_flatten_first() {
    let r = scalar_factorization_warmup(&WarmupConfig::default()).unwrap();
    assert!(r.eta > r.critical_eta_predicted);
    assert!(
        r.diverged_fraction_constant() >= 0.9,
        "constant: {}",
        r.diverged_fraction_constant()
    );
    assert!(
        r.diverged_fraction_warmup() <= 0.05,
        "warmup: {}",
        r.diverged_fraction_warmup()
    );
    // flattening: |C| fell from 8 to near 0, so the valley sharpness is near 4|v|
    let c = r.final_charge;
    assert!(c.ci_high.abs().max(c.ci_low.abs()) < 1.0, "final charge {c:?}");
    let sf = ScalarFactorization::new(1.0, 1.0).unwrap();
    assert!(sf.valley_sharpness(c.mean) < 1.1 * r.balanced_sharpness);
    let first = r.sharpness_trace.first().unwrap().1;
    let last_quarter: Vec<f64> = r.sharpness_trace.iter().rev().take(5).map(|p| p.1).collect();
    assert!(
        last_quarter.iter().all(|&s| s < 0.5 * first),
        "no flattening: {:?}",
        r.sharpness_trace
    );
}

/// Matrix factorisation with anisotropic noise from the balanced `UᵀU = WWᵀ` minimum: the
/// noise equilibrium is sharper, and the ensemble's late-time sharpness (per-path time
/// averages; 95% interval) lies above the start.
#[test]
fn anisotropic_noise_sharpens_matrix_factorization() {
    let r = matrix_factorization_sharpening(0.02, 2, 100.0, 16, 5).unwrap();
    assert!(
        r.sharpness_equilibrium > r.sharpness_start * 1.03,
        "{} vs {}",
        r.sharpness_equilibrium,
        r.sharpness_start
    );
    assert!(
        r.late_mean.ci_low > r.sharpness_start,
        "late {:?} vs start {}",
        r.late_mean,
        r.sharpness_start
    );
}
