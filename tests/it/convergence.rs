//! The orders issue #2 asks for, measured by the same suite `cargo run --release`
//! prints (`analysis::convergence::suite`), with its default sizes.

use noether_sde::analysis::convergence::suite::{run_one, SuiteConfig};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// `(slope, s.e., degrees of freedom)` of the fitted order.
fn order(problem: &str, scheme: &str, kind: &str) -> (f64, f64, f64) {
    let row = run_one(problem, scheme, kind, &SuiteConfig::default())
        .unwrap()
        .unwrap();
    let df = row.study.points.len() as f64 - 2.0;
    (row.study.fit.slope, row.study.fit.std_error, df)
}

/// The theoretical order lies in the slope's 99.9% interval (Student's t: the s.e. is
/// estimated from a handful of step sizes; a 0.1% false alarm per check), and the
/// interval excludes order ± 1/2, so the measurement tells 1/2 from 1.
fn assert_order(name: &str, (slope, se, df): (f64, f64, f64), theory: f64) {
    let q = StudentsT::new(0.0, 1.0, df).unwrap().inverse_cdf(1.0 - 0.0005);
    let (lo, hi) = (slope - q * se, slope + q * se);
    assert!(
        lo <= theory && theory <= hi,
        "{name}: order {theory} outside the 99.9% interval [{lo:.3}, {hi:.3}] (slope {slope:.3})"
    );
    assert!(
        theory - 0.5 < lo && hi < theory + 0.5,
        "{name}: interval [{lo:.3}, {hi:.3}] too wide to tell {theory} from its neighbours"
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
