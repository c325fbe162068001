//! Invalid input is a typed error, never a panic; divergence names path, step and time.

use nalgebra::DVector;
use noether_sde::prelude::*;
use noether_sde::sde::DerivativeScratch;
use noether_sde::IncompatibleReason;

#[test]
fn time_span_validation() {
    assert!(matches!(
        TimeSpan::new(0.0, 1.0, 0.0),
        Err(Error::InvalidParameter { name: "dt", .. })
    ));
    assert!(matches!(
        TimeSpan::new(0.0, 1.0, -0.1),
        Err(Error::InvalidParameter { name: "dt", .. })
    ));
    assert!(matches!(
        TimeSpan::new(0.0, 1.0, f64::NAN),
        Err(Error::InvalidParameter { name: "dt", .. })
    ));
    assert!(matches!(
        TimeSpan::new(1.0, 0.5, 0.1),
        Err(Error::InvalidParameter { name: "t1", .. })
    ));
    assert!(matches!(
        TimeSpan::new(f64::INFINITY, 2.0, 0.1),
        Err(Error::InvalidParameter { name: "t0", .. })
    ));
    // a non-multiple end time gets a shortened last step
    let span = TimeSpan::new(0.0, 1.0, 0.3).unwrap();
    assert_eq!(span.steps(), 4);
    assert!((span.step_size(3) - 0.1).abs() < 1e-12);
    assert_eq!(TimeSpan::new(2.0, 2.0, 0.1).unwrap().steps(), 0);
}

/// `dX = X² dt` from X₀ = 1 blows up at t = 1; EM with h = 0.01 overflows shortly after.
struct BlowUp;

impl Sde for BlowUp {
    fn dim(&self) -> usize {
        1
    }
    fn structure(&self) -> Structure {
        Structure::additive(1)
    }
    fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = x[0] * x[0];
    }
    fn diffusion_apply(&self, _t: f64, _x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = 1e-3 * dw[0];
    }
    fn diffusion_derivative(
        &self,
        _t: f64,
        _x: &DVector<f64>,
        _v: &DVector<f64>,
        _c: &DVector<f64>,
        out: &mut DVector<f64>,
        _s: &mut DerivativeScratch,
    ) {
        out.fill(0.0);
    }
}

#[test]
fn divergence_is_reported_with_path_step_and_time() {
    let span = TimeSpan::new(0.0, 5.0, 0.01).unwrap();
    let mut path = IncrementStream::new(&SeedTree::new(1), 17, 1);
    let err = integrate(
        &BlowUp,
        &mut EulerMaruyama::new(),
        &DVector::from_element(1, 1.0),
        &span,
        &mut path,
        17,
        &mut (),
    )
    .unwrap_err();
    match err {
        Error::Divergence { path, step, t } => {
            assert_eq!(path, 17);
            assert!(step > 100 && step < 500, "step {step}");
            assert!((t - span.time(step)).abs() < 1e-12);
            let msg = Error::Divergence { path, step, t }.to_string();
            assert!(msg.contains("path 17") && msg.contains(&format!("step {step}")));
        }
        other => panic!("expected divergence, got {other:?}"),
    }
}

#[test]
fn structure_mismatches_are_refused_before_stepping() {
    let sde = NonCommutative;
    let x0 = DVector::zeros(2);
    let span = TimeSpan::new(0.0, 1.0, 0.1).unwrap();
    let seeds = SeedTree::new(1);
    // commutative Milstein on general noise
    let r = integrate(
        &sde,
        &mut Milstein::new(),
        &x0,
        &span,
        &mut IncrementStream::new(&seeds, 0, 2),
        0,
        &mut (),
    );
    assert!(matches!(
        r,
        Err(Error::Incompatible {
            scheme: "milstein",
            reason: IncompatibleReason::NoiseKind {
                noise: Noise::General
            },
        })
    ));
    // general-noise Milstein on a path without Lévy areas
    let r = integrate(
        &sde,
        &mut MilsteinLevy::new(),
        &x0,
        &span,
        &mut IncrementStream::new(&seeds, 0, 2),
        0,
        &mut (),
    );
    assert!(matches!(
        r,
        Err(Error::Incompatible {
            scheme: "milstein_levy",
            reason: IncompatibleReason::NeedsLevyArea { .. },
        })
    ));
    // an Itô equation handed to a Stratonovich scheme; the message is the reason's
    let r = integrate(
        &sde,
        &mut Heun::new(),
        &x0,
        &span,
        &mut IncrementStream::new(&seeds, 0, 2),
        0,
        &mut (),
    );
    let Err(
        e @ Error::Incompatible {
            reason:
                IncompatibleReason::Calculus {
                    solves: Calculus::Stratonovich,
                    sde: Calculus::Ito,
                },
            ..
        },
    ) = r
    else {
        panic!("expected a calculus mismatch, got {r:?}");
    };
    assert_eq!(
        e.to_string(),
        "scheme `heun` cannot solve this SDE: it solves Stratonovich SDEs but this SDE is Ito"
    );
    // ... but dropping the areas on purpose is allowed
    let r = integrate(
        &sde,
        &mut MilsteinLevy::without_areas(),
        &x0,
        &span,
        &mut IncrementStream::new(&seeds, 0, 2),
        0,
        &mut (),
    );
    assert!(r.is_ok());
    // a grid whose step does not match the span
    let grid = BrownianGrid::sample(&seeds, 0, 2, 0.0, 1.0, 8, None).unwrap();
    let r = integrate(
        &sde,
        &mut EulerMaruyama::new(),
        &x0,
        &span,
        &mut grid.path(),
        0,
        &mut (),
    );
    assert!(matches!(r, Err(Error::Brownian { .. })));
}

#[test]
fn constructors_validate() {
    assert!(OrnsteinUhlenbeck::new(0.0, 0.0, 1.0).is_err());
    assert!(GeometricBrownianMotion::new(f64::NAN, 1.0).is_err());
    assert!(LinearSde::new(nalgebra::DMatrix::zeros(2, 3), vec![]).is_err());
    assert!(LinearSde::new(nalgebra::DMatrix::zeros(2, 2), vec![]).is_err());
    assert!(LinearSde::new(
        nalgebra::DMatrix::zeros(2, 2),
        vec![nalgebra::DMatrix::zeros(3, 3)]
    )
    .is_err());
    assert!(BrownianGrid::sample(&SeedTree::new(1), 0, 1, 0.0, 1.0, 0, None).is_err());
    assert!(BrownianGrid::sample(&SeedTree::new(1), 0, 1, 1.0, 1.0, 4, None).is_err());
}

#[test]
fn what_cannot_be_computed_is_refused() {
    // a step larger than the span would take zero steps
    assert!(matches!(
        TimeSpan::new(0.0, 1.0, 1e10),
        Err(Error::InvalidParameter { name: "dt", .. })
    ));
    // an empty state
    assert!(LinearSde::new(
        nalgebra::DMatrix::zeros(0, 0),
        vec![nalgebra::DMatrix::zeros(0, 0)]
    )
    .is_err());
    // a confidence level outside (0, 1)
    assert!(noether_sde::analysis::stats::MeanInterval::from_moments(0.0, 1.0, 10, 1.5).is_err());
    // a fixed point at a NaN time
    let model = noether_sde::models::ScalarFactorization::new(1.0, 0.5).unwrap();
    let sde =
        noether_sde::sgd::SgdSde::population(&model, noether_sde::sgd::SgdConfig::new(0.05, 4)).unwrap();
    let sym = noether_sde::symmetry::ExponentialSymmetry::rescaling(2, &[0], &[1]).unwrap();
    let theta = DVector::from_vec(vec![2.0, 0.5]);
    assert!(noether_sde::symmetry::noether::fixed_point(&sym, &sde, &theta, f64::NAN).is_err());
    assert!(noether_sde::symmetry::noether::fixed_point(&sym, &sde, &theta, 0.0).is_ok());
}

#[test]
fn ensembles_at_the_end_of_the_u64_range_do_not_overflow() {
    let gbm = GeometricBrownianMotion::new(0.1, 0.2).unwrap();
    let span = TimeSpan::new(0.0, 0.2, 0.1).unwrap();
    let problem = SdeProblem::new(&gbm, EulerMaruyama::new(), DVector::from_element(1, 1.0), span).unwrap();
    let record = Functionals::new(vec![0.2], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out[0] = x[0]
    })
    .unwrap();
    let stats = Ensemble::new(1, u64::MAX - 3..u64::MAX)
        .statistics(&problem, &record)
        .unwrap();
    assert_eq!(stats.finished(), 3);
}

#[test]
fn a_functional_returning_nan_or_passing_the_bound_is_a_divergence() {
    let gbm = GeometricBrownianMotion::new(0.1, 0.2).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.1).unwrap();
    let problem = SdeProblem::new(&gbm, EulerMaruyama::new(), DVector::from_element(1, 1.0), span).unwrap();
    let nan = Functionals::new(vec![1.0], 1, |_t: f64, _x: &DVector<f64>, out: &mut [f64]| {
        out[0] = f64::NAN
    })
    .unwrap();
    let stats = Ensemble::new(1, 0..10).statistics(&problem, &nan).unwrap();
    assert_eq!((stats.finished(), stats.divergent()), (0, 10));
    assert_eq!(stats.undefined(), Some("no finished paths"));
    // the state passes a bound of 0.5 at step 0 (x0 = 1)
    let value = Functionals::new(vec![1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out[0] = x[0]
    })
    .unwrap();
    let bounded = Ensemble::new(1, 0..10).with_divergence_bound(0.5).unwrap();
    let stats = bounded.statistics(&problem, &value).unwrap();
    assert_eq!(stats.divergent(), 10);
    assert!(matches!(
        stats.first_divergence(),
        Some(Error::Divergence { path: 0, step: 0, .. })
    ));
    assert!(Ensemble::new(1, 0..10).with_divergence_bound(0.0).is_err());
    assert!(Ensemble::new(1, 0..10).with_divergence_bound(1e200).is_err());
}

/// A user's `Sde` with no state (or no noise, or an inconsistent structure) is refused before the first step, by every
/// entry point that checks a scheme against an SDE.
#[test]
fn empty_sdes_are_refused() {
    struct Empty(usize, usize, bool);
    impl Sde for Empty {
        fn dim(&self) -> usize {
            self.0
        }
        fn structure(&self) -> Structure {
            if self.2 {
                Structure::new(Noise::Scalar, self.1)
            } else {
                Structure::general(self.1)
            }
        }
        fn drift(&self, _t: f64, _x: &DVector<f64>, _out: &mut DVector<f64>) {}
        fn diffusion_apply(&self, _t: f64, _x: &DVector<f64>, _dw: &DVector<f64>, _out: &mut DVector<f64>) {}
    }
    let span = TimeSpan::new(0.0, 1.0, 0.1).unwrap();
    let seeds = SeedTree::new(1);
    for (d, m, scalar) in [(0, 1, false), (1, 0, false), (0, 0, false), (2, 2, true)] {
        // an inconsistent declaration: scalar noise with two Brownian motions
        let sde = Empty(d, m, scalar);
        let r = integrate(
            &sde,
            &mut EulerMaruyama::new(),
            &DVector::zeros(d),
            &span,
            &mut IncrementStream::new(&seeds, 0, m),
            0,
            &mut (),
        );
        assert!(
            matches!(r, Err(Error::InvalidParameter { .. })),
            "d = {d}, m = {m}: {r:?}"
        );
        assert!(noether_sde::scheme::Workspace::new(&sde, EulerMaruyama::new()).is_err());
    }
}

/// The divergence bound is tested at every step, not only at save times: a path that
/// passes it between two save times is stopped at that step, on the per-path and the
/// lockstep routes alike (the recorder itself is only called at save times).
#[test]
fn the_bound_is_tested_between_save_times() {
    let gbm = GeometricBrownianMotion::new(3.0, 0.2).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.01).unwrap();
    let x0 = DVector::from_element(1, 1.0);
    // the first step at which path 0 passes 2, found with an every-step observer
    struct FirstAbove(Option<(usize, f64)>);
    impl Observer for FirstAbove {
        fn observe(&mut self, step: usize, t: f64, x: &DVector<f64>) -> Flow {
            if x[0].abs() > 2.0 && self.0.is_none() {
                self.0 = Some((step, t));
            }
            Flow::Continue
        }
    }
    let mut first = FirstAbove(None);
    let seeds = SeedTree::new(5);
    integrate(
        &gbm,
        &mut EulerMaruyama::new(),
        &x0,
        &span,
        &mut IncrementStream::new(&seeds, 0, 1),
        0,
        &mut first,
    )
    .unwrap();
    let (step, t) = first.0.expect("GBM with drift 3 passes 2 before t = 1");
    assert!(
        step > 1 && step < 100,
        "passes the bound strictly between the save times"
    );
    let record = Functionals::new(vec![0.0, 1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out[0] = x[0]
    })
    .unwrap();
    let ensemble = Ensemble::new(5, 0..1).with_divergence_bound(2.0).unwrap();
    let per_path = SdeProblem::per_path(&gbm, EulerMaruyama::new(), x0.clone(), span).unwrap();
    let routed = SdeProblem::new(&gbm, EulerMaruyama::new(), x0.clone(), span).unwrap();
    assert!(routed.is_lockstep());
    for stats in [
        ensemble.statistics(&per_path, &record).unwrap(),
        ensemble.statistics(&routed, &record).unwrap(),
    ] {
        assert_eq!(stats.divergent(), 1);
        match stats.first_divergence() {
            Some(Error::Divergence {
                path: 0,
                step: s,
                t: u,
            }) => assert_eq!((s, u.to_bits()), (step, t.to_bits())),
            other => panic!("expected the divergence at step {step}: {other:?}"),
        }
    }
}
