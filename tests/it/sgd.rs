//! SGD and its SDE (issue #3): exact identities first, then statistics at stated levels.

use crate::common::{moments, FINITE_DIFFERENCE, ROUNDING, Z_4};
use nalgebra::{DMatrix, DVector};
use noether_sde::analysis::modified_equation::{
    default_problem, linear_regression_weak_orders, WeakOrderConfig,
};
use noether_sde::analysis::stationary::stationary_covariance;
use noether_sde::models::{finite_sde_moments, finite_sgd_moments, LinearRegression, ScalarFactorization};
use noether_sde::prelude::*;
use noether_sde::sgd::{Dataset, DiscreteSgd, Model, PopulationForms, Sampling, Schedule, SgdConfig, SgdSde};
use rand::RngExt;
use rand_distr::StandardNormal;

/// `|z| < 4.5` per entry (two-sided 6.8e-6); a test checks at most 36 entries together
/// (9 moments of a 3-parameter model per run, up to four runs), so its family-wise
/// false-alarm probability is below 36 · 6.8e-6 = 2.5e-4.
const Z_ENTRIES: f64 = 4.5;

fn scalar_model() -> ScalarFactorization {
    ScalarFactorization::new(1.2, 0.5).unwrap()
}

/// Per-sample gradients against central differences of the loss, and Hessian-vector
/// products against central differences of the gradient, at random points.
#[test]
fn gradients_and_hvps_match_finite_differences() {
    let (lin, _) = default_problem().unwrap();
    let sf = scalar_model();
    let mut rng = SeedTree::new(1).rng(0, Stream::Custom(0));
    let mut normal = || rng.sample::<f64, _>(StandardNormal);
    fn check<M: Model>(model: &M, theta: &DVector<f64>, x: &[f64], y: &[f64], v: &DVector<f64>) {
        let s = noether_sde::sgd::Sample { x, y };
        let d = model.dim();
        let mut g = DVector::zeros(d);
        model.grad(theta, s, &mut g);
        let eps = 1e-6;
        for i in 0..d {
            let mut tp = theta.clone();
            tp[i] += eps;
            let mut tm = theta.clone();
            tm[i] -= eps;
            let fd = (model.loss(&tp, s) - model.loss(&tm, s)) / (2.0 * eps);
            assert!(
                (fd - g[i]).abs() < 1e-6 * (1.0 + g[i].abs()),
                "grad[{i}]: {} vs {fd}",
                g[i]
            );
        }
        let mut hv = DVector::zeros(d);
        model.hvp(theta, s, v, &mut hv);
        let (mut gp, mut gm) = (DVector::zeros(d), DVector::zeros(d));
        model.grad(&(theta + v * eps), s, &mut gp);
        model.grad(&(theta - v * eps), s, &mut gm);
        let fd = (gp - gm) / (2.0 * eps);
        assert!((&fd - &hv).amax() < 1e-6 * (1.0 + hv.amax()), "hvp {hv} vs {fd}");
    }
    for _ in 0..20 {
        let theta = DVector::from_fn(3, |_, _| normal());
        let v = DVector::from_fn(3, |_, _| normal());
        let x: Vec<f64> = (0..3).map(|_| normal()).collect();
        check(&lin, &theta, &x, &[normal()], &v);
        let theta = DVector::from_fn(2, |_, _| normal());
        let v = DVector::from_fn(2, |_, _| normal());
        check(&sf, &theta, &[normal()], &[normal()], &v);
    }
}

/// The closed-form factors satisfy `D Dᵀ = Σ(θ)` exactly (to rounding), and the scalar
/// model's analytic derivative of `D` matches finite differences.
#[test]
fn closed_form_factors_square_to_sigma() {
    let (lin, _) = default_problem().unwrap();
    let sf = scalar_model();
    fn factor_outer<M: PopulationForms>(m: &M, theta: &DVector<f64>) -> DMatrix<f64> {
        let k = m.noise_dim();
        let mut d = DMatrix::zeros(m.dim(), k);
        let mut col = DVector::zeros(m.dim());
        for j in 0..k {
            let mut e = DVector::zeros(k);
            e[j] = 1.0;
            m.noise_factor_apply(theta, &e, &mut col);
            d.set_column(j, &col);
        }
        &d * d.transpose()
    }
    let theta = DVector::from_vec(vec![0.3, 0.7, -1.1]);
    let sigma = lin.noise_covariance(&theta);
    assert!((factor_outer(&lin, &theta) - &sigma).amax() < ROUNDING * sigma.amax());
    let theta = DVector::from_vec(vec![1.5, 0.4]);
    let sigma = sf.noise_covariance(&theta);
    assert!((factor_outer(&sf, &theta) - &sigma).amax() < ROUNDING * sigma.amax());
    // analytic dD vs the SDE's finite-difference fallback
    let sde = SgdSde::population(&sf, SgdConfig::new(0.1, 2)).unwrap();
    let (v, c) = (DVector::from_vec(vec![0.3, -0.8]), DVector::from_element(1, 0.7));
    let mut analytic = DVector::zeros(2);
    let mut fd = DVector::zeros(2);
    let mut scratch = noether_sde::sde::DerivativeScratch::new(2);
    sde.diffusion_derivative(0.0, &theta, &v, &c, &mut analytic, &mut scratch);
    noether_sde::sde::finite_difference_derivative(&sde, 0.0, &theta, &v, &c, &mut fd, &mut scratch);
    assert!((&analytic - &fd).amax() < FINITE_DIFFERENCE * analytic.amax());
}

/// Closed-form risk and gradient against large-sample averages of the per-sample loss and
/// gradient (4 s.e. per component).
#[test]
fn closed_forms_match_sample_averages() {
    let (lin, _) = default_problem().unwrap();
    let data = lin.dataset(40_000, 3).unwrap();
    let theta = DVector::from_vec(vec![0.2, 0.1, -0.4]);
    let mut losses = Vec::new();
    let mut grads = vec![Vec::new(); 3];
    let mut g = DVector::zeros(3);
    for i in 0..data.len() {
        losses.push(lin.loss(&theta, data.sample(i)));
        lin.grad(&theta, data.sample(i), &mut g);
        for k in 0..3 {
            grads[k].push(g[k]);
        }
    }
    let (m, _, se, _) = moments(&losses);
    assert_within_se!(m, lin.risk(&theta), se, Z_4);
    let mut exact = DVector::zeros(3);
    lin.risk_gradient(&theta, &mut exact);
    for k in 0..3 {
        let (m, _, se, _) = moments(&grads[k]);
        assert_within_se!(m, exact[k], se, Z_4);
    }
}

/// Σ_N(θ) from the per-sample gradients of a data set: `(1/N) Σ (g_i − ḡ)(g_i − ḡ)ᵀ`.
fn per_sample_covariance<M: Model>(model: &M, data: &Dataset, theta: &DVector<f64>) -> DMatrix<f64> {
    let d = model.dim();
    let mut gs = DMatrix::zeros(d, data.len());
    let mut g = DVector::zeros(d);
    for i in 0..data.len() {
        model.grad(theta, data.sample(i), &mut g);
        gs.set_column(i, &g);
    }
    let mean = gs.column_mean();
    for mut c in gs.column_iter_mut() {
        c -= &mean;
    }
    &gs * gs.transpose() / data.len() as f64
}

/// Empirical covariance of `sqrt(η c_B) D(θ) ξ`, `ξ ~ N(0, I_N)`, and the standard error
/// of each entry (mean known to be 0).
fn factor_draws(
    sde: &SgdSde<'_, LinearRegression>,
    theta: &DVector<f64>,
    draws: usize,
) -> (DMatrix<f64>, DMatrix<f64>) {
    let n = sde.noise_dim();
    let d = sde.dim();
    let mut rng = SeedTree::new(5).rng(0, Stream::Custom(1));
    let mut xi = DVector::zeros(n);
    let mut z = DVector::zeros(d);
    let (mut sum, mut sum_sq): (DMatrix<f64>, DMatrix<f64>) = (DMatrix::zeros(d, d), DMatrix::zeros(d, d));
    for _ in 0..draws {
        for v in xi.iter_mut() {
            *v = rng.sample(StandardNormal);
        }
        sde.diffusion_apply(0.0, theta, &xi, &mut z);
        for i in 0..d {
            for j in 0..d {
                let p = z[i] * z[j];
                sum[(i, j)] += p;
                sum_sq[(i, j)] += p * p;
            }
        }
    }
    let nd = draws as f64;
    let cov: DMatrix<f64> = &sum / nd;
    let se = DMatrix::from_fn(d, d, |i, j| {
        ((sum_sq[(i, j)] / nd - cov[(i, j)].powi(2)) / nd).sqrt()
    });
    (cov, se)
}

/// THEORY §1: `Cov(sqrt(η c_B) D ξ) = η c_B Σ_N(θ)` with `c_B = 1/B` (with replacement) or
/// `(N − B)/(B(N − 1))` (without). The test also rejects the wrong factor.
#[test]
fn the_factor_is_right_with_and_without_replacement() {
    let (lin, _) = default_problem().unwrap();
    let data = lin.dataset(16, 11).unwrap();
    let theta = DVector::from_vec(vec![0.5, 0.2, -0.3]);
    let sigma_n = per_sample_covariance(&lin, &data, &theta);
    let (eta, b) = (0.1, 8usize);
    for sampling in [Sampling::WithReplacement, Sampling::WithoutReplacement] {
        let cfg = SgdConfig::new(eta, b).with_sampling(sampling);
        let sde = SgdSde::finite(&lin, &data, cfg).unwrap();
        let (cov, se) = factor_draws(&sde, &theta, 20_000);
        let factor = match sampling {
            Sampling::WithReplacement => 1.0 / b as f64,
            Sampling::WithoutReplacement => (16.0 - 8.0) / (8.0 * 15.0),
        };
        let expected = &sigma_n * (eta * factor);
        for i in 0..3 {
            for j in i..3 {
                assert_within_se!(cov[(i, j)], expected[(i, j)], se[(i, j)], Z_ENTRIES);
            }
        }
        // the other sampling's factor is rejected on the diagonal
        let wrong = match sampling {
            Sampling::WithReplacement => (16.0 - 8.0) / (8.0 * 15.0),
            Sampling::WithoutReplacement => 1.0 / b as f64,
        };
        assert_rejects!(cov[(0, 0)], sigma_n[(0, 0)] * eta * wrong, se[(0, 0)], Z_ENTRIES);
    }
}

/// `(mean, standard error)` of one ensemble statistic.
type MeanSe = (f64, f64);

fn ensemble_moments(samples: &[DVector<f64>]) -> (Vec<MeanSe>, Vec<MeanSe>) {
    // (mean, se) of each component and of each product θ_i θ_j (i ≤ j, row-major)
    let d = samples[0].len();
    let mut firsts = Vec::new();
    for i in 0..d {
        let xs: Vec<f64> = samples.iter().map(|s| s[i]).collect();
        let (m, _, se, _) = moments(&xs);
        firsts.push((m, se));
    }
    let mut seconds = Vec::new();
    for i in 0..d {
        for j in i..d {
            let xs: Vec<f64> = samples.iter().map(|s| s[i] * s[j]).collect();
            let (m, _, se, _) = moments(&xs);
            seconds.push((m, se));
        }
    }
    (firsts, seconds)
}

fn assert_matches_moments(samples: &[DVector<f64>], exact: &noether_sde::models::Moments) {
    let (firsts, seconds) = ensemble_moments(samples);
    let d = exact.mean.len();
    for i in 0..d {
        assert_within_se!(firsts[i].0, exact.mean[i], firsts[i].1, Z_ENTRIES);
    }
    let mut k = 0;
    for i in 0..d {
        for j in i..d {
            assert_within_se!(seconds[k].0, exact.second[(i, j)], seconds[k].1, Z_ENTRIES);
            k += 1;
        }
    }
}

/// Discrete SGD (with and without replacement) and Euler–Maruyama on the SGD-SDE with
/// `h = η` have the same exact first two moments (EM with h = η reproduces SGD's
/// moment recursion, THEORY §7a); both ensembles match them at 4.5 s.e. per entry.
#[test]
fn sgd_and_em_at_h_eta_match_the_exact_moment_recursion() {
    let (lin, theta0) = default_problem().unwrap();
    let data = lin.dataset(32, 2).unwrap();
    let (eta, steps) = (0.1, 10usize);
    let seeds = SeedTree::new(21);
    for sampling in [Sampling::WithReplacement, Sampling::WithoutReplacement] {
        let cfg = SgdConfig::new(eta, 4).with_sampling(sampling);
        let exact = finite_sgd_moments(&data, &cfg, &theta0, steps).unwrap();
        let sgd = DiscreteSgd::finite(&lin, &data, cfg).unwrap();
        let samples: Vec<DVector<f64>> = (0..4000)
            .map(|p| sgd.run(&theta0, steps as f64 * eta, &seeds, p, &mut ()).unwrap())
            .collect();
        assert_matches_moments(&samples, &exact);
        let sde = SgdSde::finite(&lin, &data, cfg).unwrap();
        let span = TimeSpan::new(0.0, steps as f64 * eta, eta).unwrap();
        let samples: Vec<DVector<f64>> = (0..4000)
            .map(|p| {
                let mut path = IncrementStream::new(&seeds, p, sde.noise_dim());
                integrate(
                    &sde,
                    &mut EulerMaruyama::new(),
                    &theta0,
                    &span,
                    &mut path,
                    p,
                    &mut (),
                )
                .unwrap()
            })
            .collect();
        assert_matches_moments(&samples, &exact);
    }
}

/// The SDE's moment ODE is what the SDE does: EM with a small step (h = η/20, whose
/// O(h) bias is below a tenth of a standard error here) matches RK4 on the moment ODE.
#[test]
fn sde_ensemble_matches_its_moment_ode() {
    let (lin, theta0) = default_problem().unwrap();
    let data = lin.dataset(32, 2).unwrap();
    let cfg = SgdConfig::new(0.2, 2);
    let sde = SgdSde::finite(&lin, &data, cfg).unwrap();
    let exact = finite_sde_moments(&data, &cfg, &theta0, 1.0, 1e-3).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.01).unwrap();
    let seeds = SeedTree::new(22);
    let samples: Vec<DVector<f64>> = (0..3000)
        .map(|p| {
            let mut path = IncrementStream::new(&seeds, p, sde.noise_dim());
            integrate(
                &sde,
                &mut EulerMaruyama::new(),
                &theta0,
                &span,
                &mut path,
                p,
                &mut (),
            )
            .unwrap()
        })
        .collect();
    assert_matches_moments(&samples, &exact);
}

/// Issue #3's weak orders: sme1 ≈ 1 for the mean and the second moment, sme2 ≈ 2 for the
/// mean; RK4 on the SDE's moment ODE changes by < 1e-6 of the smallest weak error when
/// its step is halved (the SDE's own discretisation error is negligible).
#[test]
fn weak_orders_of_the_modified_equations() {
    let rows = linear_regression_weak_orders(&WeakOrderConfig::default()).unwrap();
    for row in &rows {
        let expected = if row.sde == "sme2" { 2.0 } else { 1.0 };
        assert!(
            (row.fit.slope - expected).abs() < 0.1
                && row.fit.ci_low <= expected + 0.05
                && expected - 0.05 <= row.fit.ci_high,
            "{} / {}: order {:.3} [{:.3}, {:.3}]",
            row.observable,
            row.sde,
            row.fit.slope,
            row.fit.ci_low,
            row.fit.ci_high
        );
        let smallest = row.points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        assert!(
            row.rk4_change < 1e-6 * smallest,
            "RK4 change {} vs error {smallest}",
            row.rk4_change
        );
    }
}

/// Stationary fluctuations (THEORY §8): the exact stationary covariance of SGD differs
/// from the discrete Lyapunov solution `HP + PH − ηHPH = ηc_BΣ(θ*)`, and the SDE's from
/// `HP + PH = ηc_BΣ(θ*)`, by a relative O(η) (Σ depends on θ): halving η halves the gap.
/// A discrete-SGD ensemble at stationarity matches the exact covariance within 4.5 s.e.
#[test]
fn stationary_covariances_match_lyapunov_up_to_order_eta() {
    let (lin, theta0) = default_problem().unwrap();
    let data = lin.dataset(32, 2).unwrap();
    let x = data.inputs();
    let y = data.targets().column(0).into_owned();
    let n = data.len() as f64;
    let h = x.transpose() * &x * (2.0 / n);
    let theta_ls = h.clone().lu().solve(&(x.transpose() * &y * (2.0 / n))).unwrap();
    let sigma_star = per_sample_covariance(&lin, &data, &theta_ls);
    let batch = 4;
    let gap = |eta: f64, discrete: bool| {
        let cfg = SgdConfig::new(eta, batch);
        let q = &sigma_star * (eta / batch as f64);
        let t = 40.0;
        let (exact, p) = if discrete {
            let m = finite_sgd_moments(&data, &cfg, &theta_ls, (t / eta) as usize).unwrap();
            (m.covariance(), stationary_covariance(&h, &q, eta).unwrap())
        } else {
            let m = finite_sde_moments(&data, &cfg, &theta_ls, t, 0.01).unwrap();
            (m.covariance(), stationary_covariance(&h, &q, 0.0).unwrap())
        };
        (exact.clone(), (exact - &p).norm() / p.norm())
    };
    for discrete in [true, false] {
        let (_, g1) = gap(0.1, discrete);
        let (_, g2) = gap(0.05, discrete);
        let (_, g3) = gap(0.025, discrete);
        assert!(g1 < 0.15, "relative gap {g1} at η = 0.1 is not small");
        for (a, b) in [(g1, g2), (g2, g3)] {
            let ratio = a / b;
            assert!(
                (1.7..2.3).contains(&ratio),
                "gap ratio {ratio} ({a} → {b}): not O(η)"
            );
        }
    }
    // Monte Carlo: SGD at stationarity (t = 40, 400 steps) against the exact covariance.
    let eta = 0.1;
    let (exact_cov, _) = gap(eta, true);
    let exact = finite_sgd_moments(&data, &SgdConfig::new(eta, batch), &theta0, 400).unwrap();
    assert!(
        (exact.covariance() - &exact_cov).amax() < 1e-9,
        "t = 40 is stationary"
    );
    let sgd = DiscreteSgd::finite(&lin, &data, SgdConfig::new(eta, batch)).unwrap();
    let seeds = SeedTree::new(23);
    let samples: Vec<DVector<f64>> = (0..3000)
        .map(|p| sgd.run(&theta0, 40.0, &seeds, p, &mut ()).unwrap())
        .collect();
    assert_matches_moments(&samples, &exact);
}

#[test]
fn invalid_hyper_parameters_are_typed_errors() {
    let (lin, _) = default_problem().unwrap();
    let data = lin.dataset(16, 1).unwrap();
    let err = SgdSde::finite(&lin, &data, SgdConfig::new(0.1, 17))
        .err()
        .unwrap();
    assert!(matches!(err, Error::InvalidParameter { name: "batch", .. }));
    assert!(err.to_string().contains("exceeds data set size 16"));
    assert!(matches!(
        SgdSde::finite(&lin, &data, SgdConfig::new(0.1, 0)),
        Err(Error::InvalidParameter { name: "batch", .. })
    ));
    assert!(matches!(
        DiscreteSgd::finite(&lin, &data, SgdConfig::new(0.0, 2)),
        Err(Error::InvalidParameter { name: "eta", .. })
    ));
    assert!(matches!(
        DiscreteSgd::finite(&lin, &data, SgdConfig::new(0.1, 2).with_weight_decay(-1.0)),
        Err(Error::InvalidParameter {
            name: "weight_decay",
            ..
        })
    ));
    let warm = Schedule::LinearWarmup {
        eta: 0.1,
        eta_start: 0.0,
        warmup_time: 1.0,
    };
    assert!(matches!(
        DiscreteSgd::finite(&lin, &data, SgdConfig::new(0.1, 2).with_schedule(warm)),
        Err(Error::InvalidParameter {
            name: "eta_start",
            ..
        })
    ));
    let sf = scalar_model();
    assert!(matches!(
        SgdSde::finite(&sf, &data, SgdConfig::new(0.1, 2)),
        Err(Error::DimensionMismatch { .. })
    ));
    let sgd = DiscreteSgd::finite(&lin, &data, SgdConfig::new(0.1, 2)).unwrap();
    assert!(sgd
        .run(&DVector::zeros(2), 1.0, &SeedTree::new(1), 0, &mut ())
        .is_err());
    assert!(sgd
        .run(&DVector::zeros(3), f64::NAN, &SeedTree::new(1), 0, &mut ())
        .is_err());
    assert!(Dataset::new(&DMatrix::zeros(3, 2), &DMatrix::zeros(2, 1)).is_err());
    assert!(LinearRegression::new(
        DVector::zeros(2),
        DMatrix::from_row_slice(2, 2, &[1.0, 0.5, 0.4, 1.0]),
        0.1
    )
    .is_err());
    assert!(LinearRegression::new(DVector::zeros(2), -DMatrix::identity(2, 2), 0.1).is_err());
    assert!(ScalarFactorization::new(1.0, -0.1).is_err());
}

struct Times(Vec<f64>);
impl Observer for Times {
    fn observe(&mut self, _s: usize, t: f64, _x: &DVector<f64>) -> Flow {
        self.0.push(t);
        Flow::Continue
    }
}

/// Time is `t = kη` (constant rate) or `Σ η_k` (warmup), so curves line up with the SDE.
#[test]
fn discrete_time_lines_up_with_sde_time() {
    let sf = scalar_model();
    let theta0 = DVector::from_vec(vec![1.0, 1.0]);
    let sgd = DiscreteSgd::population(&sf, SgdConfig::new(0.1, 2)).unwrap();
    let mut times = Times(Vec::new());
    sgd.run(&theta0, 1.0, &SeedTree::new(1), 0, &mut times).unwrap();
    assert_eq!(times.0.len(), 11);
    assert!(times
        .0
        .iter()
        .enumerate()
        .all(|(k, &t)| (t - 0.1 * k as f64).abs() < ROUNDING));
    let warm = Schedule::LinearWarmup {
        eta: 0.1,
        eta_start: 0.01,
        warmup_time: 0.5,
    };
    let sgd = DiscreteSgd::population(&sf, SgdConfig::new(0.1, 2).with_schedule(warm)).unwrap();
    let mut times = Times(Vec::new());
    sgd.run(&theta0, 1.0, &SeedTree::new(1), 0, &mut times).unwrap();
    for w in times.0.windows(2) {
        let eta = w[1] - w[0];
        assert!((eta - warm.eta(w[0])).abs() < ROUNDING);
    }
    assert!(*times.0.last().unwrap() >= 1.0 - 1e-9);
    // GD is deterministic: the seed does not matter
    let gd = DiscreteSgd::population(&sf, SgdConfig::new(0.1, 2))
        .unwrap()
        .gradient_descent();
    let a = gd.run(&theta0, 1.0, &SeedTree::new(1), 0, &mut ()).unwrap();
    let b = gd.run(&theta0, 1.0, &SeedTree::new(2), 5, &mut ()).unwrap();
    assert_eq!(a, b);
}
