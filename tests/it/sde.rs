//! The `Sde` trait's defaults and the Milstein derivative terms.

use crate::common::{moments, FINITE_DIFFERENCE, ROUNDING, Z_4};
use nalgebra::{DMatrix, DVector};
use noether_sde::prelude::*;
use noether_sde::sde::DerivativeScratch;

/// A linear SDE that hides its analytic derivative, so the finite-difference default runs.
struct NoDerivative(LinearSde);

impl Sde for NoDerivative {
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

#[test]
fn finite_difference_derivative_matches_the_analytic_one() {
    let sde = LinearSde::random(4, 3, 1.0, 9);
    let fd = NoDerivative(sde.clone());
    let x = DVector::from_vec(vec![0.3, -1.2, 2.0, 0.7]);
    let v = DVector::from_vec(vec![1.0, 0.5, -0.25, 2.0]);
    let c = DVector::from_vec(vec![0.2, -0.1, 0.4]);
    let (mut a, mut b) = (DVector::zeros(4), DVector::zeros(4));
    let mut scratch = DerivativeScratch::new(4);
    sde.diffusion_derivative(0.0, &x, &v, &c, &mut a, &mut scratch);
    fd.diffusion_derivative(0.0, &x, &v, &c, &mut b, &mut scratch);
    assert!((&a - &b).amax() < FINITE_DIFFERENCE * a.amax().max(1.0));
}

/// With commuting diffusion matrices the Lévy areas cancel: commutative Milstein and
/// general Milstein with areas take the same step (up to rounding).
#[test]
fn areas_cancel_for_commutative_noise() {
    struct Commuting(LinearSde);
    impl Sde for Commuting {
        fn dim(&self) -> usize {
            2
        }
        fn structure(&self) -> Structure {
            Structure::commutative(2)
        }
        fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
            self.0.drift(t, x, out)
        }
        fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
            self.0.diffusion_apply(t, x, dw, out)
        }
    }
    let b1 = DMatrix::from_row_slice(2, 2, &[0.3, 0.0, 0.0, -0.2]);
    let b2 = DMatrix::from_row_slice(2, 2, &[0.1, 0.0, 0.0, 0.5]);
    let lin = LinearSde::new(DMatrix::identity(2, 2) * -0.5, vec![b1, b2]).unwrap();
    let sde = Commuting(lin);
    let x = DVector::from_vec(vec![1.0, 2.0]);
    let mut inc = Increment::with_area(2);
    inc.h = 0.01;
    let seeds = SeedTree::new(1);
    let mut path = IncrementStream::new(&seeds, 0, 2)
        .with_levy_area(&seeds, 0, LevyArea::for_step(2, 0.01).unwrap())
        .unwrap();
    path.next(&mut inc).unwrap();
    let (mut a, mut b) = (DVector::zeros(2), DVector::zeros(2));
    let mut m = Milstein::new();
    m.prepare(2, 2);
    m.step(&sde, 0.0, &inc, &x, &mut a).unwrap();
    let mut ml = MilsteinLevy::new();
    ml.prepare(2, 2);
    ml.step(&sde, 0.0, &inc, &x, &mut b).unwrap();
    assert!((&a - &b).amax() < FINITE_DIFFERENCE);
    // and the correction is really there: EM differs by O(h)
    let mut e = DVector::zeros(2);
    let mut em = EulerMaruyama::new();
    em.prepare(2, 2);
    em.step(&sde, 0.0, &inc, &x, &mut e).unwrap();
    assert!((&a - &e).amax() > 1e3 * FINITE_DIFFERENCE);
}

/// On `dX₁ = dW₁, dX₂ = X₁ dW₂` one Milstein step with areas is exact:
/// `X₂' = X₂ + X₁ΔW₂ + I₍₁,₂₎`. Checked against the definition of `I`.
#[test]
fn milstein_levy_step_is_exact_on_the_bilinear_problem() {
    let b1 = DMatrix::from_row_slice(2, 2, &[0.0, 0.0, 0.0, 0.0]);
    let b2 = DMatrix::from_row_slice(2, 2, &[0.0, 0.0, 1.0, 0.0]);
    // dX = B1 X dW1 + B2 X dW2 with B2 X = (0, X1): add dX1 = dW1 by shifting X1 ≡ W1 + 1.
    let sde = LinearSde::new(DMatrix::zeros(2, 2), vec![b1, b2]).unwrap();
    let x = DVector::from_vec(vec![1.5, -0.5]);
    let mut inc = Increment::with_area(2);
    inc.h = 0.1;
    inc.dw = DVector::from_vec(vec![0.2, -0.3]);
    inc.area = Some(DMatrix::from_row_slice(2, 2, &[0.0, 0.05, -0.05, 0.0]));
    let mut out = DVector::zeros(2);
    let mut s = MilsteinLevy::new();
    s.prepare(2, 2);
    s.step(&sde, 0.0, &inc, &x, &mut out).unwrap();
    // L¹b₂ = B₂B₁x = 0 here, L²b₂ = B₂B₂x = 0: only X₁ΔW₂ moves X₂.
    assert!((out[1] - (x[1] + x[0] * inc.dw[1])).abs() < ROUNDING);
    assert!((inc.iterated_integral(0, 1) - (0.5 * 0.2 * -0.3 + 0.05)).abs() < ROUNDING);
    assert!((inc.iterated_integral(1, 1) - (0.5 * 0.09 - 0.05)).abs() < ROUNDING);
}

/// The charge `u² − w²` at the end of one path of `sde` solved by `scheme` on `grid`.
fn charge_at_end<S: Sde + ?Sized, K: Scheme>(
    sde: &S,
    mut scheme: K,
    theta0: &DVector<f64>,
    span: &TimeSpan,
    grid: &BrownianGrid,
    path: u64,
) -> f64 {
    let end = integrate(sde, &mut scheme, theta0, span, &mut grid.path(), path, &mut ()).unwrap();
    noether_sde::models::ScalarFactorization::charge(&end)
}

/// THEORY §7a: `StratonovichForm` is the same process — Heun on it converges strongly to
/// Milstein on the Itô SDE (same Brownian paths, the gap halves with h) — while
/// `ReadAsStratonovich` (the Itô coefficients read as Stratonovich) conserves the charge of
/// scalar factorisation: the Noether flow is purely the Itô correction.
#[test]
fn ito_and_stratonovich_readings_of_the_sgd_sde() {
    use noether_sde::models::ScalarFactorization;
    use noether_sde::sde::convert::{ReadAsStratonovich, StratonovichForm};
    use noether_sde::sgd::{SgdConfig, SgdSde};
    let model = ScalarFactorization::new(1.0, 1.0).unwrap();
    let sde = SgdSde::population(&model, SgdConfig::new(0.05, 4)).unwrap();
    let strat = StratonovichForm::new(&sde).unwrap();
    let read = ReadAsStratonovich::new(&sde).unwrap();
    assert!(StratonovichForm::new(
        GeometricBrownianMotion::new(1.0, 0.5)
            .unwrap()
            .stratonovich_form()
    )
    .is_err());
    let theta0 = DVector::from_vec(vec![1.8, 0.6]);
    let c0 = ScalarFactorization::charge(&theta0);
    let t_end = 20.0;
    // per level and path: (|C_heun(strat) − C_milstein(ito)|, |C_heun(read) − C0|/C0, C_ito)
    let level = |steps: usize| {
        let (mut gap, mut kept, mut ito) = (Vec::new(), Vec::new(), Vec::new());
        for p in 0..20u64 {
            let fine = BrownianGrid::sample(&SeedTree::new(31), p, 1, 0.0, t_end, 4096, None).unwrap();
            let mut grid = fine;
            while grid.steps() > steps {
                grid = grid.coarsen().unwrap();
            }
            let span = TimeSpan::new(0.0, t_end, grid.dt()).unwrap();
            let a = charge_at_end(&strat, Heun::new(), &theta0, &span, &grid, p);
            let b = charge_at_end(&sde, Milstein::new(), &theta0, &span, &grid, p);
            let c = charge_at_end(&read, Heun::new(), &theta0, &span, &grid, p);
            gap.push((a - b).abs());
            kept.push((c - c0).abs() / c0);
            ito.push(b);
        }
        (gap, kept, ito)
    };
    let (g1, k1, ito) = level(1024);
    let (g2, k2, _) = level(2048);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let ito = mean(&ito);
    // the Itô process loses a large part of its charge (THEORY §6: rate ≥ 4ησ²/B = 0.05)
    assert!(
        ito < c0 * (-0.05 * t_end).exp() * 1.05,
        "Itô charge {ito} from {c0}"
    );
    // the Stratonovich form is the same process: the gap to Itô Milstein on the same
    // paths is the schemes' O(h) strong error, halving with h (a different process would
    // leave a gap that does not shrink)
    // per path, ln(gap_h/gap_{h/2})/ln 2 estimates the order: its mean is 1 within 4 s.e.
    // (Student's t, 19 df: false alarm ≈ 1e-3) and excludes 1/2
    let orders: Vec<f64> = g1
        .iter()
        .zip(&g2)
        .map(|(a, b)| (a / b).ln() / 2f64.ln())
        .collect();
    let (order, _, se, _) = moments(&orders);
    assert_within_se!(order, 1.0, se, Z_4);
    assert!(order - Z_4 * se > 0.5, "gap order {order} ± {se}");
    // read as Stratonovich, the charge is conserved up to the scheme's error: under 2% of
    // C0 on average (the Itô reading loses ~60%), shrinking with h at a per-path order
    // above 1/2 at 4 s.e. (measured: 0.6% → 0.18%)
    let (k1m, k2m) = (mean(&k1), mean(&k2));
    assert!(k1m < 0.02, "charge drift {k1m} → {k2m}");
    let drift_orders: Vec<f64> = k1
        .iter()
        .zip(&k2)
        .map(|(a, b)| (a / b).ln() / 2f64.ln())
        .collect();
    let (drift_order, _, drift_se, _) = moments(&drift_orders);
    assert!(
        drift_order - Z_4 * drift_se > 0.5,
        "charge drift order {drift_order} ± {drift_se}"
    );
}
