//! The orders issue #2 asks for, measured by the same suite `cargo run --release`
//! prints (`analysis::convergence::suite`), with its default sizes.

use noether_sde::analysis::convergence::suite::{run_one, SuiteConfig, SuiteRow, ORDER_LEVEL};

fn order(problem: &str, scheme: &str, kind: &str) -> SuiteRow {
    run_one(problem, scheme, kind, &SuiteConfig::default())
        .unwrap()
        .unwrap()
}

/// The theoretical order lies in the slope's 99.9% interval (Student's t: the s.e. is
/// estimated from a handful of step sizes; a 0.1% false alarm per check), and the
/// interval excludes order ± 1/2, so the measurement tells 1/2 from 1
/// ([`SuiteRow::agrees`]).
fn assert_order(name: &str, row: SuiteRow, theory: f64) {
    assert!(
        (row.expected - theory).abs() < 1e-12,
        "{name}: the suite expects {}",
        row.expected
    );
    let [lo, hi] = row.study.fit.interval(ORDER_LEVEL);
    assert!(
        row.agrees(),
        "{name}: order {theory} vs 99.9% interval [{lo:.3}, {hi:.3}] (slope {:.3}): not inside, or too wide",
        row.study.fit.slope
    );
}

#[test]
fn gbm_euler_maruyama_strong_order_one_half() {
    assert_order("EM strong", order("gbm", "euler_maruyama", "strong"), 0.5);
}

#[test]
fn gbm_milstein_strong_order_one() {
    assert_order("Milstein strong", order("gbm", "milstein", "strong"), 1.0);
}

#[test]
fn gbm_euler_maruyama_weak_order_one() {
    assert_order("EM weak", order("gbm", "euler_maruyama", "weak"), 1.0);
}

#[test]
fn noncommutative_milstein_needs_levy_areas() {
    assert_order(
        "Milstein with areas",
        order("noncommutative", "milstein_levy", "strong"),
        1.0,
    );
    assert_order(
        "Milstein without areas",
        order("noncommutative", "milstein_no_levy", "strong"),
        0.5,
    );
}

#[test]
fn same_seed_same_study() {
    let cfg = SuiteConfig {
        strong_paths: 50,
        weak_paths: 50,
        seed: 3,
    };
    let a = run_one("noncommutative", "milstein_levy", "strong", &cfg)
        .unwrap()
        .unwrap();
    let b = run_one("noncommutative", "milstein_levy", "strong", &cfg)
        .unwrap()
        .unwrap();
    for (p, q) in a.study.points.iter().zip(&b.study.points) {
        assert_eq!(p.error.to_bits(), q.error.to_bits());
        assert_eq!(p.std_error.to_bits(), q.std_error.to_bits());
    }
    assert!(run_one("gbm", "no_such_scheme", "strong", &cfg)
        .unwrap()
        .is_none());
}
