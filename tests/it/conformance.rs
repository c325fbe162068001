//! Every scheme through the same suite: declared strong order on an exact-solution
//! problem (the declared order must lie in the fitted slope's 99.9% interval, which
//! must exclude the neighbouring half-orders),
//! bit-for-bit reproducibility, and the same invalid-input errors.
//! Every scheme of the catalogue (`SchemeKind::ALL`) is checked: adding a scheme to the
//! catalogue adds it here.

use nalgebra::DVector;
use noether_sde::analysis::convergence::{convergence_study, ConvergenceConfig, Measure, Reference};
use noether_sde::prelude::*;
use noether_sde::scheme::catalogue::{SchemeKind, SchemeVisitor};
use noether_sde::sde::reference::DoubleWell;
use noether_sde::sde::Noise;

/// GBM μ = 0.5, s = 0.8, in the calculus the scheme solves; exact reference on the path.
///
/// The noise dominates the drift on purpose: EM's strong error is `c₁√h + c₂h` with
/// `c₁ ∝ s²/√2` (the missing Milstein term) and `c₂ ∝ μ²/2` (the drift); with μ = 1.5,
/// s = 0.5 the `h` term still bends the line at h = 2^-12 (measured slope 0.54, interval
/// [0.50, 0.59]), here `c₁√h/c₂h ≈ 40` at the coarsest level.
fn gbm_for<K: Scheme>(scheme: &K) -> GeometricBrownianMotion {
    let gbm = GeometricBrownianMotion::new(0.5, 0.8).unwrap();
    match scheme.info().calculus {
        Calculus::Ito => gbm,
        Calculus::Stratonovich => gbm.stratonovich_form(),
    }
}

/// Path `path`'s increments under `seed`, with the time integrals `I_(j,0)` when the
/// scheme reads them.
fn stream_for<K: Scheme>(scheme: &K, seed: u64, path: u64) -> IncrementStream {
    let seeds = SeedTree::new(seed);
    let stream = IncrementStream::new(&seeds, path, 1);
    if scheme.reads_time_integral() {
        stream.with_space_time_area(&seeds, path)
    } else {
        stream
    }
}

/// The double well `dX = (X − X³) dt + dW` (additive noise, drift curved along the
/// noise: on OU an order-1.5 scheme can converge at order 2) from 0: the declared strong order against the
/// scheme itself 8× finer on the same path (a Milstein reference's own order-1 error
/// would dominate an order-1.5 scheme's), same criteria as on GBM.
fn declared_strong_order_additive<K: Scheme>(scheme: K) {
    let double_well = DoubleWell::new(1.0).unwrap();
    let cfg = ConvergenceConfig {
        coarsest: 4,
        finest: 9,
        paths: 1000,
        seed: 78,
        ..Default::default()
    };
    let x0 = DVector::from_element(1, 0.0);
    let study = convergence_study(
        &double_well,
        &scheme,
        &x0,
        &cfg,
        Reference::SameScheme { offset: 3 },
        Measure::Strong,
    )
    .unwrap();
    let info = scheme.info();
    let declared = info.strong_order_on(Noise::Additive);
    let [lo, hi] = study.fit.interval(0.999);
    assert!(
        lo <= declared && declared <= hi && declared - 0.5 < lo && hi < declared + 0.5,
        "{}: declared strong order {declared} vs the measured 99.9% interval [{lo:.3}, {hi:.3}] (slope {:.3}) on the double well",
        info.name,
        study.fit.slope
    );
}

fn reproducible_additive<K: Scheme>(scheme: K) {
    let ou = OrnsteinUhlenbeck::new(1.0, 0.5, 0.8).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.01).unwrap();
    let x0 = DVector::from_element(1, 1.0);
    let run = |seed: u64| {
        let mut path = stream_for(&scheme, seed, 3);
        integrate(&ou, &mut scheme.clone(), &x0, &span, &mut path, 3, &mut ()).unwrap()[0]
    };
    assert_eq!(
        run(9).to_bits(),
        run(9).to_bits(),
        "same seed must give the same bits"
    );
    assert_ne!(run(9).to_bits(), run(10).to_bits());
}

fn rejects_invalid_input_additive<K: Scheme>(scheme: K) {
    let ou = OrnsteinUhlenbeck::new(1.0, 0.5, 0.8).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.1).unwrap();
    let mut s = scheme.clone();
    let mut path = stream_for(&scheme, 1, 0);
    let bad_dim = integrate(&ou, &mut s, &DVector::zeros(2), &span, &mut path, 0, &mut ());
    assert!(matches!(bad_dim, Err(Error::DimensionMismatch { .. })));
    let one = DVector::from_element(1, 1.0);
    let nan = integrate(
        &ou,
        &mut s,
        &DVector::from_element(1, f64::NAN),
        &span,
        &mut path,
        0,
        &mut (),
    );
    assert!(matches!(nan, Err(Error::NonFinite { .. })));
    // multiplicative (scalar) noise is refused before the first step
    let gbm = GeometricBrownianMotion::new(0.5, 0.8).unwrap();
    let refused = integrate(&gbm, &mut s, &one, &span, &mut path, 0, &mut ());
    assert!(matches!(refused, Err(Error::Incompatible { .. })));
    // and a scheme reading I_(j,0) refuses a path without them
    if scheme.reads_time_integral() {
        let mut plain = IncrementStream::new(&SeedTree::new(1), 0, 1);
        let refused = integrate(&ou, &mut s, &one, &span, &mut plain, 0, &mut ());
        assert!(matches!(refused, Err(Error::Incompatible { .. })));
    }
}

fn declared_strong_order<K: Scheme>(scheme: K) {
    let gbm = gbm_for(&scheme);
    let exact = |g: &BrownianGrid| DVector::from_element(1, gbm.exact(1.0, g.t1(), g.w_end()[0]));
    let cfg = ConvergenceConfig {
        coarsest: 6,
        finest: 11,
        paths: 1000,
        seed: 77,
        ..Default::default()
    };
    let x0 = DVector::from_element(1, 1.0);
    let study = convergence_study(
        &gbm,
        &scheme,
        &x0,
        &cfg,
        Reference::Exact(&exact),
        Measure::Strong,
    )
    .unwrap();
    let info = scheme.info();
    let declared = info.strong_order_on(Noise::Scalar);
    // a 99.9% interval (Student's t with levels − 2 degrees of freedom: the slope's s.e.
    // is estimated from 6 points), so each scheme's check has a 0.1% false alarm; and it
    // must be narrow enough to tell the declared order from order ± 1/2
    let [lo, hi] = study.fit.interval(0.999);
    assert!(
        lo <= declared && declared <= hi,
        "{}: declared strong order {} outside the measured 99.9% interval [{lo:.3}, {hi:.3}] (slope {:.3})",
        info.name,
        declared,
        study.fit.slope
    );
    assert!(
        declared - 0.5 < lo && hi < declared + 0.5,
        "{}: interval [{lo:.3}, {hi:.3}] too wide to tell order {} from its neighbours",
        info.name,
        declared
    );
}

fn reproducible<K: Scheme>(scheme: K) {
    let gbm = gbm_for(&scheme);
    let span = TimeSpan::new(0.0, 1.0, 0.01).unwrap();
    let x0 = DVector::from_element(1, 1.0);
    let run = |seed: u64| {
        let mut path = stream_for(&scheme, seed, 3);
        integrate(&gbm, &mut scheme.clone(), &x0, &span, &mut path, 3, &mut ()).unwrap()[0]
    };
    assert_eq!(
        run(9).to_bits(),
        run(9).to_bits(),
        "same seed must give the same bits"
    );
    assert_ne!(run(9).to_bits(), run(10).to_bits());
}

fn rejects_invalid_input<K: Scheme>(scheme: K) {
    let gbm = gbm_for(&scheme);
    let mut path = IncrementStream::new(&SeedTree::new(1), 0, 1);
    let span = TimeSpan::new(0.0, 1.0, 0.1).unwrap();
    let mut s = scheme.clone();
    let bad_dim = integrate(&gbm, &mut s, &DVector::zeros(2), &span, &mut path, 0, &mut ());
    assert!(matches!(bad_dim, Err(Error::DimensionMismatch { .. })));
    let nan = integrate(
        &gbm,
        &mut s,
        &DVector::from_element(1, f64::NAN),
        &span,
        &mut path,
        0,
        &mut (),
    );
    assert!(matches!(nan, Err(Error::NonFinite { .. })));
    let mut wide = IncrementStream::new(&SeedTree::new(1), 0, 2);
    let bad_path = integrate(
        &gbm,
        &mut s,
        &DVector::from_element(1, 1.0),
        &span,
        &mut wide,
        0,
        &mut (),
    );
    assert!(matches!(bad_path, Err(Error::DimensionMismatch { .. })));
    // the other calculus is refused before the first step
    let other = match scheme.info().calculus {
        Calculus::Ito => gbm.stratonovich_form(),
        Calculus::Stratonovich => GeometricBrownianMotion::new(0.5, 0.8).unwrap(),
    };
    let wrong = integrate(
        &other,
        &mut s,
        &DVector::from_element(1, 1.0),
        &span,
        &mut path,
        0,
        &mut (),
    );
    assert!(matches!(wrong, Err(Error::Incompatible { .. })));
}

/// The three checks, generic in the scheme; run on every scheme of the catalogue.
#[derive(Clone, Copy)]
enum Check {
    Order,
    Reproducible,
    Invalid,
}

impl SchemeVisitor for Check {
    type Output = ();
    fn visit<K: Scheme + Sync + 'static>(self, scheme: K) {
        let info = scheme.info();
        if !info.accepts(Noise::Scalar) {
            assert!(
                info.accepts(Noise::Additive),
                "{}: the conformance suite runs on GBM (scalar noise) or OU (additive); give this scheme a problem here",
                info.name
            );
            return match self {
                Check::Order => declared_strong_order_additive(scheme),
                Check::Reproducible => reproducible_additive(scheme),
                Check::Invalid => rejects_invalid_input_additive(scheme),
            };
        }
        match self {
            // a weak-only scheme (no strong order): its weak order is measured exactly
            // on linear SDEs in `weak.rs`, which names every such scheme
            Check::Order if info.strong_order <= 0.0 => {
                assert!(
                    crate::weak::WEAK_ONLY.contains(&info.name),
                    "{}: declares no strong order; measure its weak order in weak.rs",
                    info.name
                );
            }
            Check::Order => declared_strong_order(scheme),
            Check::Reproducible => reproducible(scheme),
            Check::Invalid => rejects_invalid_input(scheme),
        }
    }
}

/// Runs `check` on every scheme of the catalogue, reporting every failing scheme by name.
fn every_scheme(check: Check) {
    let failures: Vec<String> = SchemeKind::ALL
        .iter()
        .filter_map(|kind| {
            std::panic::catch_unwind(|| kind.visit(check)).err().map(|e| {
                let message = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("{}: {message}", kind.name())
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_declared_strong_order_is_measured() {
    every_scheme(Check::Order);
}

#[test]
fn every_scheme_same_seed_same_bits() {
    every_scheme(Check::Reproducible);
}

#[test]
fn every_scheme_turns_invalid_input_into_typed_errors() {
    every_scheme(Check::Invalid);
}
