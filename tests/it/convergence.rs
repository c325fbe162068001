//! The orders issue #2 asks for, measured by the same suite `cargo run --release`
//! prints (`analysis::convergence::suite`), with its default sizes.

use noether_sde::analysis::convergence::suite::{run_one, SuiteConfig};

fn order(problem: &str, scheme: &str, kind: &str) -> (f64, f64, f64) {
    let row = run_one(problem, scheme, kind, &SuiteConfig::default())
        .unwrap()
        .unwrap();
    (row.study.fit.slope, row.study.fit.ci_low, row.study.fit.ci_high)
}

fn assert_in(name: &str, (order, lo, hi): (f64, f64, f64), band: (f64, f64)) {
    assert!(
        band.0 <= order && order <= band.1,
        "{name}: order {order:.3} (95% CI [{lo:.3}, {hi:.3}]) outside [{}, {}]",
        band.0,
        band.1
    );
    // The measurement must be sharp enough to distinguish 1/2 from 1.
    assert!(hi - lo < 0.2, "{name}: interval [{lo:.3}, {hi:.3}] too wide");
}

#[test]
fn gbm_euler_maruyama_strong_order_one_half() {
    assert_in(
        "EM strong",
        order("gbm", "euler_maruyama", "strong"),
        (0.40, 0.60),
    );
}

#[test]
fn gbm_milstein_strong_order_one() {
    assert_in(
        "Milstein strong",
        order("gbm", "milstein", "strong"),
        (0.90, 1.10),
    );
}

#[test]
fn gbm_euler_maruyama_weak_order_one() {
    assert_in("EM weak", order("gbm", "euler_maruyama", "weak"), (0.80, 1.20));
}

#[test]
fn noncommutative_milstein_needs_levy_areas() {
    assert_in(
        "Milstein with areas",
        order("noncommutative", "milstein_levy", "strong"),
        (0.85, 1.15),
    );
    assert_in(
        "Milstein without areas",
        order("noncommutative", "milstein_no_levy", "strong"),
        (0.40, 0.60),
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
