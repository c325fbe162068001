//! Unit tests of the lockstep driver (bit-identity against the per-path route lives in
//! `tests/it/ensemble.rs`).

use super::*;
use crate::ensemble::SdeProblem;
use crate::prelude::*;
use crate::sde::batch::central_difference_block;
use crate::sde::Structure;

/// GBM `dX = μX dt + σX dW` on blocks, with the per-path route's arithmetic.
struct BlockGbm(f64, f64);

impl Sde for BlockGbm {
    fn dim(&self) -> usize {
        1
    }
    fn structure(&self) -> Structure {
        Structure::scalar()
    }
    fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = self.0 * x[0];
    }
    fn diffusion_apply(&self, _t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = self.1 * x[0] * dw[0];
    }
}

impl BatchSde for BlockGbm {
    fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = self.0 * x;
        }
        Ok(())
    }
    fn diffusion_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = self.1 * x;
        }
        Ok(())
    }
}

/// Final states (or errors) and statistics of the per-path route and the lockstep
/// route on the same ensemble, compared bit for bit (statistics over lockstep blocks
/// of several widths, partial lane groups included).
fn assert_same_paths<S, K>(
    sde: &S,
    scheme: K,
    lockstep: LockstepScheme,
    x0: &[f64],
    span: TimeSpan,
    paths: Range<u64>,
) -> Result<()>
where
    S: Sde + BatchSde + Sync,
    K: Scheme + Sync,
{
    let x0 = DVector::from_column_slice(x0);
    let d = x0.len();
    let per_path = SdeProblem::per_path(sde, scheme.clone(), x0.clone(), span)?;
    assert!(!per_path.is_lockstep());
    let routed = SdeProblem::new(sde, scheme, x0.clone(), span)?;
    assert!(
        routed.is_lockstep(),
        "{lockstep:?}: the default route is lockstep"
    );
    let lanes = LockstepProblem::new(sde, lockstep, x0, span)?;
    let (t0, t1) = (span.t0(), span.t1());
    let record = Functionals::new(
        vec![t0, 0.5 * (t0 + t1), t1],
        d,
        |_t: f64, x: &DVector<f64>, out: &mut [f64]| out.copy_from_slice(x.as_slice()),
    )?;
    let ensemble = Ensemble::new(11, paths);
    let finals_a = ensemble.final_states(&per_path)?;
    let finals_b = ensemble.final_states(&lanes)?;
    assert_eq!(finals_a.len(), finals_b.len());
    for (a, b) in finals_a.into_iter().zip(finals_b) {
        match (a, b) {
            (Ok(a), Ok(b)) => {
                let bits = |x: DVector<f64>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(a), bits(b), "{lockstep:?}");
            }
            (a, b) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{lockstep:?}"),
        }
    }
    let expected = ensemble.statistics(&per_path, &record)?;
    assert_eq!(ensemble.statistics(&lanes, &record)?, expected, "{lockstep:?}");
    assert_eq!(ensemble.statistics(&routed, &record)?, expected, "{lockstep:?}");
    for width in [1, 64, 100, 1000] {
        let got = ensemble.lockstep_statistics(&lanes, &record, width, |_| Ok(()))?;
        assert_eq!(got, expected, "{lockstep:?}, width {width}");
    }
    Ok(())
}

#[test]
fn every_scheme_and_problem_is_bit_identical_to_the_per_path_route() -> Result<()> {
    let span = TimeSpan::new(0.0, 1.0, 0.01)?;
    let gbm = GeometricBrownianMotion::new(0.5, 0.3)?;
    let ou = OrnsteinUhlenbeck::new(2.0, 0.5, 0.7)?;
    let (em, mil) = (LockstepScheme::EulerMaruyama, LockstepScheme::Milstein);
    assert_same_paths(&gbm, EulerMaruyama::new(), em, &[1.0], span, 3..300)?;
    assert_same_paths(&gbm, Milstein::new(), mil, &[1.0], span, 3..300)?;
    assert_same_paths(&ou, EulerMaruyama::new(), em, &[1.5], span, 3..300)?;
    assert_same_paths(&ou, Milstein::new(), mil, &[1.5], span, 3..300)?;
    let span = TimeSpan::new(0.0, 1.0, 0.03)?; // a shorter last step
    assert_same_paths(
        &NonCommutative,
        EulerMaruyama::new(),
        em,
        &[0.0, 1.0],
        span,
        5..140,
    )?;
    assert_same_paths(&gbm, Milstein::new(), mil, &[1.0], span, 0..17)?;
    let span = TimeSpan::new(0.0, 1.0, 0.01)?;
    let rk = LockstepScheme::RkMilstein;
    assert_same_paths(&gbm, RkMilstein::new(), rk, &[1.0], span, 3..300)?;
    assert_same_paths(&ou, RkMilstein::new(), rk, &[1.5], span, 3..300)?;
    let stratonovich = gbm.stratonovich_form();
    let heun = LockstepScheme::Heun;
    assert_same_paths(&stratonovich, Heun::new(), heun, &[1.0], span, 3..300)?;
    let span = TimeSpan::new(0.0, 1.0, 0.03)?; // a shorter last step
    assert_same_paths(&stratonovich, Heun::new(), heun, &[2.0], span, 0..17)?;
    assert_same_paths(&gbm, RkMilstein::new(), rk, &[1.0], span, 0..17)?;
    Ok(())
}

/// `NonCommutative` without its block derivative: the lockstep Milstein–Lévy calls the
/// per-path `Sde::diffusion_derivative` lane by lane.
struct NoDerivativeBlock;

impl Sde for NoDerivativeBlock {
    fn dim(&self) -> usize {
        2
    }
    fn structure(&self) -> Structure {
        NonCommutative.structure()
    }
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        NonCommutative.drift(t, x, out)
    }
    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        NonCommutative.diffusion_apply(t, x, dw, out)
    }
    fn batch(&self) -> Option<&dyn BatchSde> {
        Some(self)
    }
}

impl BatchSde for NoDerivativeBlock {
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        NonCommutative.drift_block(t, x, out)
    }
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        NonCommutative.diffusion_block(t, x, out)
    }
}

/// General noise (the non-commutative 2-D problem, `m = 2`): RK-Milstein and
/// Milstein–Lévy read each path's Lévy areas, drawn on lanes from the path's own `Levy`
/// stream; Milstein–Lévy's derivative terms by the block central difference or lane by
/// lane; a shorter last step; and the scalar / additive forms of Milstein–Lévy.
#[test]
fn general_noise_schemes_read_the_same_levy_areas_on_lanes() -> Result<()> {
    let (rk, levy) = (LockstepScheme::RkMilstein, LockstepScheme::MilsteinLevy);
    let x0 = [0.3, 0.1];
    for h in [0.01, 0.03] {
        let span = TimeSpan::new(0.0, 1.0, h)?;
        assert_same_paths(&NonCommutative, RkMilstein::new(), rk, &x0, span, 3..150)?;
        assert_same_paths(&NonCommutative, MilsteinLevy::new(), levy, &x0, span, 3..150)?;
        assert_same_paths(&NoDerivativeBlock, MilsteinLevy::new(), levy, &x0, span, 0..17)?;
    }
    let span = TimeSpan::new(0.0, 1.0, 0.01)?;
    let gbm = GeometricBrownianMotion::new(0.5, 0.3)?;
    assert_same_paths(&gbm, MilsteinLevy::new(), levy, &[1.0], span, 3..100)?;
    let ou = OrnsteinUhlenbeck::new(2.0, 0.5, 0.7)?;
    assert_same_paths(&ou, MilsteinLevy::new(), levy, &[1.5], span, 3..100)?;
    // the block central difference is the per-path one, bit for bit
    let (x, v, c) = ([0.3, 0.1, -2.0, 5.0], [1.0, 0.0, 0.0, 0.7], [0.2, -0.4, 1.5, 0.0]);
    let mut out = [0.0; 4];
    central_difference_block(
        &NonCommutative,
        0.0,
        &x,
        &v,
        &c,
        &mut out,
        &mut BlockScratch::default(),
    )?;
    for p in 0..2 {
        let row = |a: &[f64]| DVector::from_column_slice(&a[2 * p..2 * p + 2]);
        let mut expected = DVector::zeros(2);
        let mut scratch = DerivativeScratch::new(2);
        NonCommutative.diffusion_derivative(0.0, &row(&x), &row(&v), &row(&c), &mut expected, &mut scratch);
        for i in 0..2 {
            assert_eq!(out[2 * p + i].to_bits(), expected[i].to_bits(), "path {p}, {i}");
        }
    }
    Ok(())
}

#[test]
fn diverging_lanes_are_retired_with_their_path_step_and_time() -> Result<()> {
    // per step x ← x·(1 + 10ξ) (EM) or x·(1 + 10ξ + 50(ξ² − 1)) (Milstein): over these
    // spans some of the paths pass the divergence bound 1e100 (ln 1e100 ≈ 230, reached
    // after ~140 EM steps on average), each at its own step
    let gbm = GeometricBrownianMotion::new(0.0, 100.0)?;
    for scheme in [LockstepScheme::EulerMaruyama, LockstepScheme::Milstein] {
        let t_end = if scheme == LockstepScheme::Milstein {
            0.67
        } else {
            1.4
        };
        let span = TimeSpan::new(0.0, t_end, 0.01)?;
        if scheme == LockstepScheme::Milstein {
            assert_same_paths(&gbm, Milstein::new(), scheme, &[1.0], span, 0..200)?;
        } else {
            assert_same_paths(&gbm, EulerMaruyama::new(), scheme, &[1.0], span, 0..200)?;
        }
        let lanes = LockstepProblem::new(&gbm, scheme, DVector::from_element(1, 1.0), span)?;
        let diverged = Ensemble::new(11, 0..200)
            .final_states(&lanes)?
            .into_iter()
            .filter(|x| matches!(x, Err(Error::Divergence { .. })))
            .count();
        assert!(
            diverged > 20 && diverged < 180,
            "{scheme:?}: {diverged} of 200 diverged"
        );
    }
    Ok(())
}

#[test]
fn the_sde_problem_picks_lockstep_where_it_applies() -> Result<()> {
    let span = TimeSpan::new(0.0, 1.0, 0.01)?;
    let gbm = GeometricBrownianMotion::new(0.5, 0.3)?;
    let x0 = DVector::from_element(1, 1.0);
    assert!(SdeProblem::new(&gbm, EulerMaruyama::new(), x0.clone(), span)?.is_lockstep());
    assert!(SdeProblem::new(&NonCommutative, EulerMaruyama::new(), DVector::zeros(2), span)?.is_lockstep());
    // no lockstep twin (Milstein–Lévy), a scheme the lanes cannot run on this noise
    // (RK-Milstein on general noise reads Lévy areas), an SDE without block
    // coefficients (the double well)
    let levy = SdeProblem::new(&gbm, MilsteinLevy::without_areas(), x0.clone(), span)?;
    assert!(!levy.is_lockstep());
    assert!(SdeProblem::new(&gbm, MilsteinLevy::new(), x0.clone(), span)?.is_lockstep());
    // general noise: RK-Milstein and Milstein–Lévy draw each path's Lévy areas on lanes
    let rk = SdeProblem::new(&NonCommutative, RkMilstein::new(), DVector::zeros(2), span)?;
    assert!(rk.is_lockstep());
    let levy = SdeProblem::new(&NonCommutative, MilsteinLevy::new(), DVector::zeros(2), span)?;
    assert!(levy.is_lockstep());
    assert_eq!(
        LockstepScheme::for_scheme(&MilsteinLevy::new()),
        Some(LockstepScheme::MilsteinLevy)
    );
    assert_eq!(LockstepScheme::for_scheme(&MilsteinLevy::without_areas()), None);
    assert_eq!(LockstepScheme::of::<MilsteinLevy>(), None);
    let well = crate::sde::reference::DoubleWell::new(0.5)?;
    assert!(!SdeProblem::new(&well, EulerMaruyama::new(), x0.clone(), span)?.is_lockstep());
    let err = SdeProblem::new(&NonCommutative, Milstein::new(), DVector::zeros(2), span);
    assert!(matches!(err, Err(Error::Incompatible { .. })));
    let err = SdeProblem::new(&gbm, Heun::new(), x0, span);
    assert!(matches!(err, Err(Error::Incompatible { .. })));
    assert_eq!(LockstepScheme::of::<Heun>(), Some(LockstepScheme::Heun));
    for scheme in [
        LockstepScheme::EulerMaruyama,
        LockstepScheme::RkMilstein,
        LockstepScheme::MilsteinLevy,
    ] {
        assert_eq!(LockstepScheme::from_name(scheme.name()), Some(scheme));
    }
    Ok(())
}

#[test]
fn milstein_needs_one_dimensional_scalar_noise() -> Result<()> {
    let span = TimeSpan::new(0.0, 1.0, 0.1)?;
    let err = LockstepProblem::milstein(&NonCommutative, DVector::zeros(2), span);
    assert!(matches!(
        err,
        Err(Error::Incompatible {
            scheme: "milstein",
            ..
        })
    ));
    let err = LockstepProblem::milstein(&BlockGbm(0.5, 0.3), DVector::from_element(1, 1.0), span);
    assert!(matches!(
        err,
        Err(Error::Incompatible {
            scheme: "milstein",
            ..
        })
    ));
    Ok(())
}

#[test]
fn a_hand_written_batch_sde_matches_the_per_path_route() -> Result<()> {
    let (mu, sigma) = (0.5, 0.3);
    let gbm = GeometricBrownianMotion::new(mu, sigma)?;
    let block = BlockGbm(gbm.mu(), sigma);
    let span = TimeSpan::new(0.0, 1.0, 0.01)?;
    let x0 = DVector::from_element(1, 1.0);
    let per_path = SdeProblem::per_path(&gbm, EulerMaruyama::new(), x0.clone(), span)?;
    let lockstep = LockstepProblem::euler_maruyama(&block, x0, span)?;
    let ensemble = Ensemble::new(11, 3..300);
    let finals_a = ensemble.final_states(&per_path)?;
    let finals_b = ensemble.final_states(&lockstep)?;
    for (a, b) in finals_a.into_iter().zip(finals_b) {
        assert_eq!(a?[0].to_bits(), b?[0].to_bits());
    }
    Ok(())
}

#[test]
fn divergence_and_callback_errors_are_reported_per_path() -> Result<()> {
    struct Explodes;
    impl Sde for Explodes {
        fn dim(&self) -> usize {
            1
        }
        fn structure(&self) -> Structure {
            Structure::additive(1)
        }
        fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
            out[0] = x[0] * x[0] * 1e10;
        }
        fn diffusion_apply(&self, _t: f64, _x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
            out[0] = dw[0];
        }
    }
    impl BatchSde for Explodes {
        fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
            out.iter_mut().zip(x).for_each(|(o, &x)| *o = x * x * 1e10);
            Ok(())
        }
        fn diffusion_block(&self, _t: f64, _x: &[f64], out: &mut [f64]) -> Result<()> {
            out.fill(1.0);
            Ok(())
        }
    }
    let span = TimeSpan::new(0.0, 1.0, 0.1)?;
    let problem = LockstepProblem::euler_maruyama(&Explodes, DVector::from_element(1, 1.0), span)?;
    let record = Functionals::new(vec![1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out[0] = x[0]
    })?;
    let stats = Ensemble::new(1, 0..10).lockstep_statistics(&problem, &record, 64, |_| Ok(()))?;
    assert_eq!(stats.divergent(), 10);
    struct Fails;
    /// The per-path twin reports its failure as NaN (as a failing Python callback does).
    impl Sde for Fails {
        fn dim(&self) -> usize {
            1
        }
        fn structure(&self) -> Structure {
            Structure::additive(1)
        }
        fn drift(&self, _t: f64, _x: &DVector<f64>, out: &mut DVector<f64>) {
            out.fill(f64::NAN);
        }
        fn diffusion_apply(&self, _t: f64, _x: &DVector<f64>, _dw: &DVector<f64>, out: &mut DVector<f64>) {
            out.fill(0.0);
        }
    }
    impl BatchSde for Fails {
        fn drift_block(&self, _t: f64, _x: &[f64], _out: &mut [f64]) -> Result<()> {
            Err(Error::invalid("drift", "callback", "failed"))
        }
        fn diffusion_block(&self, _t: f64, _x: &[f64], _out: &mut [f64]) -> Result<()> {
            Ok(())
        }
    }
    let problem = LockstepProblem::euler_maruyama(&Fails, DVector::from_element(1, 1.0), span)?;
    let err = Ensemble::new(1, 0..10).lockstep_statistics(&problem, &record, 64, |_| Ok(()));
    assert!(matches!(err, Err(Error::InvalidParameter { name: "drift", .. })));
    Ok(())
}

/// `dX_i = (½ − X_i) dt + s_i sin(X_i) dW_i` (`d = m = 2`, diagonal noise) with an
/// analytic `∂b[v]c = s_i cos(X_i) v_i c_i` and the same arithmetic on blocks.
struct DiagonalSines([f64; 2]);

impl Sde for DiagonalSines {
    fn batch(&self) -> Option<&dyn BatchSde> {
        Some(self)
    }
    fn dim(&self) -> usize {
        2
    }
    fn structure(&self) -> Structure {
        Structure::diagonal(2)
    }
    fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        for i in 0..2 {
            out[i] = 0.5 - x[i];
        }
    }
    fn diffusion_apply(&self, _t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        for i in 0..2 {
            out[i] = self.0[i] * x[i].sin() * dw[i];
        }
    }
    fn diffusion_derivative(
        &self,
        _t: f64,
        x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        _scratch: &mut crate::sde::DerivativeScratch,
    ) {
        for i in 0..2 {
            out[i] = self.0[i] * x[i].cos() * v[i] * c[i];
        }
    }
}

impl BatchSde for DiagonalSines {
    fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        out.iter_mut().zip(x).for_each(|(o, &x)| *o = 0.5 - x);
        Ok(())
    }
    fn diffusion_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        for (k, (o, &x)) in out.iter_mut().zip(x).enumerate() {
            *o = self.0[k % 2] * x.sin();
        }
        Ok(())
    }
    fn has_milstein_block(&self) -> bool {
        true
    }
    fn milstein_block(&self, _t: f64, x: &[f64], c: &[f64], out: &mut [f64]) -> Result<()> {
        for (k, o) in out.iter_mut().enumerate() {
            let s = self.0[k % 2];
            let v = s * x[k].sin() * c[k];
            *o = s * x[k].cos() * v * c[k];
        }
        Ok(())
    }
}

/// `dX₀ = −X₀ dt + sin(X₁) dW`, `dX₁ = 0.2 dt + X₀X₁ dW` (`d = 2`, one Brownian motion:
/// scalar noise) with an analytic `∂b[v]c = (cos(X₁) v₁, X₁v₀ + X₀v₁) c`.
struct ScalarPair;

impl Sde for ScalarPair {
    fn batch(&self) -> Option<&dyn BatchSde> {
        Some(self)
    }
    fn dim(&self) -> usize {
        2
    }
    fn structure(&self) -> Structure {
        Structure::scalar()
    }
    fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = -x[0];
        out[1] = 0.2;
    }
    fn diffusion_apply(&self, _t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = x[1].sin() * dw[0];
        out[1] = x[0] * x[1] * dw[0];
    }
    fn diffusion_derivative(
        &self,
        _t: f64,
        x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        _scratch: &mut crate::sde::DerivativeScratch,
    ) {
        out[0] = x[1].cos() * v[1] * c[0];
        out[1] = (x[1] * v[0] + x[0] * v[1]) * c[0];
    }
}

impl BatchSde for ScalarPair {
    fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        for (o, x) in out.chunks_exact_mut(2).zip(x.chunks_exact(2)) {
            o.copy_from_slice(&[-x[0], 0.2]);
        }
        Ok(())
    }
    fn diffusion_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        for (o, x) in out.chunks_exact_mut(2).zip(x.chunks_exact(2)) {
            o.copy_from_slice(&[x[1].sin(), x[0] * x[1]]);
        }
        Ok(())
    }
    fn has_milstein_block(&self) -> bool {
        true
    }
    fn milstein_block(&self, _t: f64, x: &[f64], c: &[f64], out: &mut [f64]) -> Result<()> {
        for ((o, x), &c) in out.chunks_exact_mut(2).zip(x.chunks_exact(2)).zip(c) {
            let v = [x[1].sin() * c, x[0] * x[1] * c];
            o[0] = x[1].cos() * v[1] * c;
            o[1] = (x[1] * v[0] + x[0] * v[1]) * c;
        }
        Ok(())
    }
}

#[test]
fn milstein_on_lanes_solves_scalar_and_diagonal_noise_in_any_dimension() -> Result<()> {
    let mil = LockstepScheme::Milstein;
    let span = TimeSpan::new(0.0, 1.0, 0.01)?;
    let sines = DiagonalSines([0.8, 0.4]);
    assert_same_paths(&sines, Milstein::new(), mil, &[0.3, -1.2], span, 3..300)?;
    assert_same_paths(&ScalarPair, Milstein::new(), mil, &[0.5, 1.0], span, 3..300)?;
    let em = LockstepScheme::EulerMaruyama;
    assert_same_paths(&sines, EulerMaruyama::new(), em, &[0.3, -1.2], span, 3..300)?;
    let span = TimeSpan::new(0.0, 1.0, 0.03)?; // a shorter last step, a partial lane group
    assert_same_paths(&sines, Milstein::new(), mil, &[2.0, 0.1], span, 0..17)?;
    assert_same_paths(&ScalarPair, Milstein::new(), mil, &[-0.5, 0.7], span, 0..17)?;
    // the Milstein terms matter: without them the paths differ (a check that the test
    // above compares the scheme with its terms, not Euler–Maruyama twice)
    let x0 = DVector::from_column_slice(&[0.3, -1.2]);
    let with = LockstepProblem::milstein(&sines, x0.clone(), span)?;
    let without = LockstepProblem::euler_maruyama(&sines, x0, span)?;
    let ensemble = Ensemble::new(11, 0..8);
    let (a, b) = (ensemble.final_states(&with)?, ensemble.final_states(&without)?);
    assert!(a.iter().zip(&b).all(|(a, b)| a.as_ref().ok() != b.as_ref().ok()));
    Ok(())
}

#[test]
fn milstein_is_available_on_lanes_for_additive_noise_without_a_milstein_block() -> Result<()> {
    // OU needs no derivative term; it provides no milstein_block
    let ou = OrnsteinUhlenbeck::new(2.0, 0.5, 0.7)?;
    assert!(!BatchSde::has_milstein_block(&ou));
    let span = TimeSpan::new(0.0, 1.0, 0.01)?;
    assert_same_paths(
        &ou,
        Milstein::new(),
        LockstepScheme::Milstein,
        &[1.5],
        span,
        0..70,
    )?;
    Ok(())
}

#[test]
fn wide_runs_give_the_same_paths_and_statistics_whatever_the_split() -> Result<()> {
    let span = TimeSpan::new(0.0, 1.0, 0.01)?;
    let gbm = GeometricBrownianMotion::new(0.5, 0.3)?;
    let x0 = DVector::from_element(1, 1.0);
    let wide = SdeProblem::new(&gbm, EulerMaruyama::new(), x0.clone(), span)?;
    let narrow = SdeProblem::per_path(&gbm, EulerMaruyama::new(), x0, span)?;
    // small per-path buffers: WIDE_RUN (four) blocks per run; a wide state: one
    assert_eq!(wide.blocks_per_run(), WIDE_RUN);
    assert_eq!(narrow.blocks_per_run(), 1);
    let mf = crate::analysis::fixed_points::default_matrix_factorization()?;
    let sde = crate::sgd::SgdSde::population(&mf, crate::sgd::SgdConfig::new(0.02, 2))?;
    let theta0 = crate::analysis::fixed_points::unbalanced_start(&mf)?;
    assert_eq!(
        LockstepProblem::euler_maruyama(&sde, theta0, span)?.blocks_per_run(),
        1
    );
    let record = Functionals::new(vec![0.5, 1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out[0] = x[0]
    })?;
    // an unaligned range whose last run is one partial block (37..461: blocks 0..=7)
    let (start, end, cut) = (37, 461, 200);
    let expected = Ensemble::new(5, start..end)
        .sequential()
        .statistics(&narrow, &record)?;
    for threads in [1, 2, 3] {
        let got = Ensemble::new(5, start..end)
            .threads(threads)
            .statistics(&wide, &record)?;
        assert_eq!(got, expected, "{threads} threads");
    }
    let shards = Ensemble::new(5, start..cut)
        .statistics(&wide, &record)?
        .merge(Ensemble::new(5, cut..end).statistics(&wide, &record)?)?;
    assert_eq!(shards, expected, "two shards");
    let a = Ensemble::new(5, start..end).final_states(&wide)?;
    let b = Ensemble::new(5, start..end).final_states(&narrow)?;
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(
            a.as_ref().map(|x| x[0].to_bits()).ok(),
            b.as_ref().map(|x| x[0].to_bits()).ok()
        );
    }
    Ok(())
}

/// An SDE whose block methods fail: only its one-pass step ([`BatchSde::scalar_step`])
/// can run it.
struct OnePassOnly<S>(S);

impl<S: Sde> Sde for OnePassOnly<S> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn structure(&self) -> Structure {
        self.0.structure()
    }
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        self.0.drift(t, x, out)
    }
    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        self.0.diffusion_apply(t, x, dw, out)
    }
}

impl<S: BatchSde> BatchSde for OnePassOnly<S> {
    fn drift_block(&self, _t: f64, _x: &[f64], _out: &mut [f64]) -> Result<()> {
        Err(Error::invalid(
            "drift_block",
            0,
            "not called when scalar_step runs",
        ))
    }
    fn diffusion_block(&self, _t: f64, _x: &[f64], _out: &mut [f64]) -> Result<()> {
        Err(Error::invalid(
            "diffusion_block",
            0,
            "not called when scalar_step runs",
        ))
    }
    fn has_milstein_block(&self) -> bool {
        true
    }
    fn scalar_step(&self, t: f64, step: ScalarLanes<'_>) -> Option<bool> {
        self.0.scalar_step(t, step)
    }
}

/// `dX = (sin t − X) dt + (0.3 + 0.2t) X dW` (Stratonovich when asked, for Heun): a
/// time-dependent SDE, so a pass at the wrong time (Heun's second is at `t + h`)
/// changes the bits.
#[derive(Clone, Copy)]
struct Timed(Calculus);

impl Timed {
    fn coefficients(t: f64, x: f64) -> [f64; 3] {
        let s = 0.3 + 0.2 * t;
        [t.sin() - x, s * x, s * (s * x * 1.0) * 1.0]
    }
}

impl Sde for Timed {
    fn dim(&self) -> usize {
        1
    }
    fn structure(&self) -> Structure {
        Structure::scalar().with_calculus(self.0)
    }
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = Self::coefficients(t, x[0])[0];
    }
    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        out[0] = Self::coefficients(t, x[0])[1] * dw[0];
    }
    /// `L¹b`'s factor as GBM forms it (`s v c`), so that Milstein's `c` above matches
    fn diffusion_derivative(
        &self,
        t: f64,
        _x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        _scratch: &mut crate::sde::DerivativeScratch,
    ) {
        out[0] = (0.3 + 0.2 * t) * v[0] * c[0];
    }
    fn batch(&self) -> Option<&dyn BatchSde> {
        Some(self)
    }
}

impl BatchSde for Timed {
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = Self::coefficients(t, x)[0];
        }
        Ok(())
    }
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = Self::coefficients(t, x)[1];
        }
        Ok(())
    }
    fn scalar_step(&self, t: f64, step: ScalarLanes<'_>) -> Option<bool> {
        Some(step.run(|x| Self::coefficients(t, x)))
    }
}

#[test]
fn one_dimensional_heun_and_rk_milstein_take_two_passes_at_the_right_times() -> Result<()> {
    // every scheme of the one-dimensional passes, through `scalar_step` alone (the block
    // methods would fail the run), against the per-path route bit for bit: GBM, and a
    // time-dependent SDE (Heun's second pass at t + h, RK-Milstein's at t)
    let span = TimeSpan::new(0.0, 1.0, 0.03)?; // a shorter last step
    let x0 = DVector::from_element(1, 0.8);
    let ensemble = Ensemble::new(6, 3..140);
    let (ito, stratonovich) = (Timed(Calculus::Ito), Timed(Calculus::Stratonovich));
    let (ito_one_pass, stratonovich_one_pass) = (OnePassOnly(ito), OnePassOnly(stratonovich));
    let gbm = GeometricBrownianMotion::new(0.5, 0.3)?;
    let gbm_stratonovich = gbm.stratonovich_form();
    let (one_pass, one_pass_stratonovich) = (OnePassOnly(gbm), OnePassOnly(gbm_stratonovich));
    let cases: [(&(dyn Sde + Sync), &(dyn BatchSde + Sync), LockstepScheme); 6] = [
        (&ito, &ito_one_pass, LockstepScheme::EulerMaruyama),
        (&ito, &ito_one_pass, LockstepScheme::Milstein),
        (&ito, &ito_one_pass, LockstepScheme::RkMilstein),
        (&stratonovich, &stratonovich_one_pass, LockstepScheme::Heun),
        (&gbm_stratonovich, &one_pass_stratonovich, LockstepScheme::Heun),
        (&gbm, &one_pass, LockstepScheme::RkMilstein),
    ];
    for (per_path_sde, lanes_sde, scheme) in cases {
        let lanes = LockstepProblem::new(lanes_sde, scheme, x0.clone(), span)?;
        let x = x0.clone();
        let per_path = match scheme {
            LockstepScheme::EulerMaruyama => ensemble.final_states(&SdeProblem::per_path(
                per_path_sde,
                EulerMaruyama::new(),
                x,
                span,
            )?)?,
            LockstepScheme::Milstein => {
                ensemble.final_states(&SdeProblem::per_path(per_path_sde, Milstein::new(), x, span)?)?
            }
            LockstepScheme::Heun => {
                ensemble.final_states(&SdeProblem::per_path(per_path_sde, Heun::new(), x, span)?)?
            }
            _ => ensemble.final_states(&SdeProblem::per_path(per_path_sde, RkMilstein::new(), x, span)?)?,
        };
        let finals = ensemble.final_states(&lanes)?;
        assert_eq!(finals.len(), per_path.len());
        for (a, b) in finals.into_iter().zip(per_path) {
            assert_eq!(a?[0].to_bits(), b?[0].to_bits(), "{scheme:?}");
        }
    }
    Ok(())
}

#[test]
fn one_dimensional_steps_take_one_pass_where_the_sde_offers_it() -> Result<()> {
    // GBM's one-pass step alone runs Euler–Maruyama and Milstein (the block methods
    // would fail the run), with the per-path route's bits
    let gbm = GeometricBrownianMotion::new(0.5, 0.3)?;
    let one_pass = OnePassOnly(gbm);
    let span = TimeSpan::new(0.0, 1.0, 0.01)?;
    let x0 = DVector::from_element(1, 1.0);
    let ensemble = Ensemble::new(4, 5..270);
    for (lanes, per_path) in [
        (
            LockstepProblem::euler_maruyama(&one_pass, x0.clone(), span)?,
            ensemble.final_states(&SdeProblem::per_path(
                &gbm,
                EulerMaruyama::new(),
                x0.clone(),
                span,
            )?)?,
        ),
        (
            LockstepProblem::milstein(&one_pass, x0.clone(), span)?,
            ensemble.final_states(&SdeProblem::per_path(&gbm, Milstein::new(), x0.clone(), span)?)?,
        ),
    ] {
        let finals = ensemble.final_states(&lanes)?;
        assert_eq!(finals.len(), per_path.len());
        for (a, b) in finals.into_iter().zip(per_path) {
            assert_eq!(a?[0].to_bits(), b?[0].to_bits(), "{:?}", lanes.scheme());
        }
    }
    Ok(())
}
