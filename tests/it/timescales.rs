//! The two timescales and their η/B scaling (issue #5, THEORY §5).

use noether_sde::analysis::timescales::{
    scalar_factorization_timescales, timescale_scaling, Process, TimescaleConfig,
};

/// The ratio slow/fast scales like η/B: slope 1 against η (SDE, B = 8) and −1 against B
/// (discrete SGD, η = 0.0125), each within [0.8, 1.2] in magnitude with its 95% interval
/// inside the band; every SDE rate and every SGD slow rate agrees with its prediction
/// (the prediction lies in the 95% bootstrap interval).
#[test]
fn timescale_ratio_scales_like_eta_over_b() {
    let cfg = TimescaleConfig::default();
    let study = timescale_scaling(&cfg, &[0.1, 0.05, 0.025, 0.0125], 8, &[1, 2, 4, 8], 0.0125).unwrap();
    let (e, b) = (&study.slope_eta, &study.slope_batch);
    assert!(
        0.8 <= e.ci_low && e.ci_high <= 1.2,
        "slope vs η {:.3} [{:.3}, {:.3}]",
        e.slope,
        e.ci_low,
        e.ci_high
    );
    assert!(
        -1.2 <= b.ci_low && b.ci_high <= -0.8,
        "slope vs B {:.3} [{:.3}, {:.3}]",
        b.slope,
        b.ci_low,
        b.ci_high
    );
    for p in &study.points {
        assert!(
            p.slow.agrees(),
            "{:?} η = {} B = {}: slow {:?}",
            p.process,
            p.eta,
            p.batch,
            p.slow
        );
        if p.process == Process::Sde {
            assert!(p.fast.agrees(), "SDE η = {}: fast {:?}", p.eta, p.fast);
        }
    }
}

/// SGD's fast rate `−ln(1 − 2ηP)/η` is leading order: its neglected terms grow with the
/// gradient noise, O(η/B). The prediction holds within the interval at B = 8, and the
/// deviation at B = 8 is smaller than at B = 1.
#[test]
fn sgd_fast_rate_deviation_is_an_order_eta_over_b_effect() {
    let cfg = TimescaleConfig::default();
    let p1 = scalar_factorization_timescales(&cfg, Process::Sgd, 0.0125, 1).unwrap();
    let p8 = scalar_factorization_timescales(&cfg, Process::Sgd, 0.0125, 8).unwrap();
    assert!(p8.fast.agrees(), "B = 8: {:?}", p8.fast);
    let dev =
        |p: &noether_sde::analysis::timescales::TimescalePoint| (p.fast.rate / p.fast.predicted - 1.0).abs();
    assert!(
        dev(&p8) < dev(&p1),
        "deviation B=8 {} vs B=1 {}",
        dev(&p8),
        dev(&p1)
    );
    // outside SGD's mean-square stability region the study refuses to run
    assert!(scalar_factorization_timescales(&cfg, Process::Sgd, 0.4, 1).is_err());
}
