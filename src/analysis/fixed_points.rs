//! The paper's fixed-point claims, measured against theory (THEORY §4, §6, §7): each
//! experiment runs discrete SGD and its SDE from the same start on the same model and
//! compares the ensemble's 95% interval with the prediction.

use super::stats::MeanInterval;
use crate::brownian::{BrownianGrid, IncrementStream};
use crate::error::{Error, Result};
use crate::models::{Activation, MatrixFactorization, NormalizedLinear, ScalarFactorization, TwoLayerNet};
use crate::observe::Welford;
use crate::rng::SeedTree;
use crate::scheme::{integrate, EulerMaruyama, Milstein, TimeSpan};
use crate::sde::SdeExt;
use crate::sgd::{DiscreteSgd, SgdConfig, SgdSde};
use crate::symmetry::Symmetric;
use nalgebra::{DMatrix, DVector};
use serde_json::json;

/// One row of the fixed-point table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FixedPointComparison {
    /// Model name.
    pub model: &'static str,
    /// What is compared, in words.
    pub quantity: String,
    /// The theory's value.
    pub predicted: f64,
    /// Discrete SGD ensemble.
    pub sgd: MeanInterval,
    /// SDE ensemble.
    pub sde: MeanInterval,
    /// Further predictions or measurements, by name.
    pub notes: Vec<(String, f64)>,
}

/// Settings of the scalar-factorisation valley experiment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValleyConfig {
    /// Teacher `v`.
    pub v: f64,
    /// Label noise `σ`.
    pub sigma: f64,
    /// Learning rate.
    pub eta: f64,
    /// Batch size.
    pub batch: usize,
    /// Starting charge (the start is the valley point with this charge).
    pub charge0: f64,
    /// Comparison time.
    pub t_end: f64,
    /// Fine SDE step as a fraction of η (the coarse step is twice as large).
    pub sde_step_fraction: f64,
    /// Paths per ensemble.
    pub paths: u64,
    /// Seed.
    pub seed: u64,
}

impl Default for ValleyConfig {
    fn default() -> Self {
        ValleyConfig {
            v: 1.0,
            sigma: 1.0,
            eta: 0.02,
            batch: 4,
            charge0: 2.0,
            t_end: 10.0,
            sde_step_fraction: 0.025,
            paths: 200,
            seed: 101,
        }
    }
}

/// `C(T)` predicted by the refined valley law of THEORY §6,
/// `d ln C/dt = −(4ησ²/B)[1 + 2ηP/(B − 2ηP)]`, `P = √(C² + 4v²)`, by RK4 with 10⁴ steps.
pub fn refined_valley_charge(cfg: &ValleyConfig) -> f64 {
    let model = ScalarFactorization::new(cfg.v, cfg.sigma).ok();
    let rate = |c: f64| match &model {
        Some(m) => -m.refined_valley_rate(cfg.eta, cfg.batch, c) * c,
        None => f64::NAN,
    };
    let n = 10_000;
    let h = cfg.t_end / n as f64;
    let mut c = cfg.charge0;
    for _ in 0..n {
        let k1 = rate(c);
        let k2 = rate(c + 0.5 * h * k1);
        let k3 = rate(c + 0.5 * h * k2);
        let k4 = rate(c + h * k3);
        c += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
    }
    c
}

/// Scalar factorisation on the valley (THEORY §6): `C(T)` of SGD and of the SDE against
/// the plain law `C(0)e^{−4ησ²T/B}` (`predicted`) and the refined law (note
/// `refined_prediction`).
///
/// The SDE value is Milstein (scalar noise) at steps `h` and `2h` on the *same* Brownian
/// path, Richardson-extrapolated (`2C_h − C_{2h}`) per path: the scheme's own O(Ph) bias
/// on the charge (from the `h²‖drift‖²` part of `ΔθᵀAΔθ`) is comparable to the O(ηP/B)
/// effect under test, and the extrapolation removes it. Notes also give the
/// unextrapolated fine-step mean.
///
/// # Errors
/// Invalid parameters; a diverging path.
pub fn scalar_factorization_valley(cfg: &ValleyConfig) -> Result<FixedPointComparison> {
    let model = ScalarFactorization::new(cfg.v, cfg.sigma)?;
    let config = SgdConfig::new(cfg.eta, cfg.batch);
    let theta0 = model.valley_point(cfg.charge0);
    let seeds = SeedTree::new(cfg.seed);
    let sgd = DiscreteSgd::population(&model, config)?;
    let sde = SgdSde::population(&model, config)?;
    let h = cfg.eta * cfg.sde_step_fraction;
    let steps = (cfg.t_end / (2.0 * h)).round() as usize * 2;
    if steps == 0 {
        return Err(Error::invalid("t_end", cfg.t_end, "shorter than one step"));
    }
    let t_end = steps as f64 * h;
    let (mut w_sgd, mut w_sde, mut w_fine) = (Welford::new(), Welford::new(), Welford::new());
    let fine_span = TimeSpan::new(0.0, t_end, h)?;
    let coarse_span = TimeSpan::new(0.0, t_end, 2.0 * h)?;
    for p in 0..cfg.paths {
        let th = sgd.run(&theta0, t_end, &seeds, p, &mut ())?;
        w_sgd.push(ScalarFactorization::charge(&th));
        let grid = BrownianGrid::sample(&seeds, p, 1, 0.0, t_end, steps, None)?;
        let fine = integrate(
            &sde,
            &mut Milstein::new(),
            &theta0,
            &fine_span,
            &mut grid.path(),
            p,
            &mut (),
        )?;
        let coarse_grid = grid.coarsen()?;
        let coarse = integrate(
            &sde,
            &mut Milstein::new(),
            &theta0,
            &coarse_span,
            &mut coarse_grid.path(),
            p,
            &mut (),
        )?;
        let (cf, cc) = (
            ScalarFactorization::charge(&fine),
            ScalarFactorization::charge(&coarse),
        );
        w_fine.push(cf);
        w_sde.push(2.0 * cf - cc);
    }
    let plain = cfg.charge0 * (-4.0 * cfg.eta * cfg.sigma * cfg.sigma * t_end / cfg.batch as f64).exp();
    Ok(FixedPointComparison {
        model: "scalar_factorization",
        quantity: format!(
            "charge C = u² − w² at t = {t_end} from C(0) = {} on the valley",
            cfg.charge0
        ),
        predicted: plain,
        sgd: MeanInterval::from_welford(&w_sgd, 0.95),
        sde: MeanInterval::from_welford(&w_sde, 0.95),
        notes: vec![
            (
                "refined_prediction".into(),
                refined_valley_charge(&ValleyConfig { t_end, ..*cfg }),
            ),
            ("sde_fine_step_unextrapolated".into(), w_fine.mean()),
        ],
    })
}

/// Settings shared by the ensemble experiments below.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnsembleConfig {
    /// Learning rate.
    pub eta: f64,
    /// Batch size.
    pub batch: usize,
    /// Comparison time.
    pub t_end: f64,
    /// Paths per ensemble.
    pub paths: u64,
    /// Seed.
    pub seed: u64,
}

/// Runs `paths` SGD and SDE (EM, `h = η`) paths from `theta0` and accumulates `f(θ(T))`.
fn ensembles<M: crate::sgd::Model>(
    sgd: &DiscreteSgd<'_, M>,
    sde: &SgdSde<'_, M>,
    theta0: &DVector<f64>,
    cfg: &EnsembleConfig,
    f: &dyn Fn(&DVector<f64>) -> f64,
    mut keep: impl FnMut(&DVector<f64>),
) -> Result<(Welford, Welford)> {
    let seeds = SeedTree::new(cfg.seed);
    let span = TimeSpan::new(0.0, cfg.t_end, cfg.eta)?;
    let (mut a, mut b) = (Welford::new(), Welford::new());
    for p in 0..cfg.paths {
        let th = sgd.run(theta0, cfg.t_end, &seeds, p, &mut ())?;
        a.push(f(&th));
        keep(&th);
        let mut path = IncrementStream::new(&seeds, p, sde.noise_dim());
        let th = integrate(
            sde,
            &mut EulerMaruyama::new(),
            theta0,
            &span,
            &mut path,
            p,
            &mut (),
        )?;
        b.push(f(&th));
    }
    Ok((a, b))
}

/// The default anisotropic matrix factorisation of the report: `d_in = 4`, `h = 3`,
/// `d_out = 2`, `Σ_x = diag(1, 0.5, 0.25, 2)`, `Σ_ε = diag(0.25, 1)`.
pub fn default_matrix_factorization() -> Result<MatrixFactorization> {
    let v = DMatrix::from_row_slice(2, 4, &[1.0, -0.5, 0.3, 0.2, 0.4, 0.8, -0.6, 0.1]);
    MatrixFactorization::new(
        v,
        3,
        DVector::from_vec(vec![1.0, 0.5, 0.25, 2.0]),
        DVector::from_vec(vec![0.25, 1.0]),
    )
}

/// An unbalanced global minimum of `mf`: the equilibrium moved along the orbit
/// `U → U e^{M₀}`, `W → e^{−M₀} W` for a fixed symmetric `M₀`.
pub fn unbalanced_start(mf: &MatrixFactorization) -> Result<DVector<f64>> {
    let eq = mf.equilibrium()?;
    let (_, h, _) = mf.shape();
    let m0 = DMatrix::from_fn(h, h, |i, j| if i == j { [0.6, -0.4, 0.3][i % 3] } else { 0.15 });
    let sym = mf.symmetry_family(&m0)?;
    Ok(sym.orbit(&eq, 0.5))
}

/// Matrix factorisation from an unbalanced global minimum (THEORY §6): the relative
/// residual of the balance equation `Tr(Σ_ε)WΣ_xWᵀ = Tr(Σ_x)UᵀΣ_εU` at `T` (predicted 0),
/// for SGD with fresh samples and the SDE with the closed-form noise.
///
/// The per-path residual (the reported ensembles) carries the O(√η) fluctuation of
/// each iterate about the valley; the residual of the ensemble-mean matrices
/// (`notes`: `sgd_residual_of_means`, `sde_residual_of_means`) removes the first-order
/// fluctuation and is the O(η) quantity. Notes also give the residual at the start and
/// the largest change of `UᵀU − WWᵀ` under GD (which stays put at a minimum).
///
/// # Errors
/// Invalid parameters; a diverging path.
pub fn matrix_factorization_balance(cfg: &EnsembleConfig, sde_paths: u64) -> Result<FixedPointComparison> {
    let mf = default_matrix_factorization()?;
    let theta0 = unbalanced_start(&mf)?;
    let config = SgdConfig::new(cfg.eta, cfg.batch);
    let sgd = DiscreteSgd::population(&mf, config)?;
    let sde = SgdSde::population(&mf, config)?;
    let seeds = SeedTree::new(cfg.seed);
    let span = TimeSpan::new(0.0, cfg.t_end, cfg.eta)?;
    let (_, h, _) = mf.shape();
    let mut sides = [
        [DMatrix::zeros(h, h), DMatrix::zeros(h, h)],
        [DMatrix::zeros(h, h), DMatrix::zeros(h, h)],
    ];
    let (mut a, mut b) = (Welford::new(), Welford::new());
    for p in 0..cfg.paths {
        let th = sgd.run(&theta0, cfg.t_end, &seeds, p, &mut ())?;
        a.push(mf.balance_residual(&th));
        let (l, r) = mf.balance_sides(&th);
        sides[0][0] += l;
        sides[0][1] += r;
        if p < sde_paths {
            let mut path = IncrementStream::new(&seeds, p, sde.noise_dim());
            let th = integrate(
                &sde,
                &mut EulerMaruyama::new(),
                &theta0,
                &span,
                &mut path,
                p,
                &mut (),
            )?;
            b.push(mf.balance_residual(&th));
            let (l, r) = mf.balance_sides(&th);
            sides[1][0] += l;
            sides[1][1] += r;
        }
    }
    let residual_of_means = |s: &[DMatrix<f64>; 2]| (&s[0] - &s[1]).norm() / s[0].norm();
    let gd = DiscreteSgd::population(&mf, config)?.gradient_descent();
    let th_gd = gd.run(&theta0, cfg.t_end, &seeds, 0, &mut ())?;
    let gd_change = (mf.charge_matrix(&th_gd) - mf.charge_matrix(&theta0)).amax();
    Ok(FixedPointComparison {
        model: "matrix_factorization",
        quantity: format!(
            "relative residual ‖Tr(Σε)WΣxWᵀ − Tr(Σx)UᵀΣεU‖/‖Tr(Σε)WΣxWᵀ‖ per path at t = {} (η = {}, B = {})",
            cfg.t_end, cfg.eta, cfg.batch
        ),
        predicted: 0.0,
        sgd: MeanInterval::from_welford(&a, 0.95),
        sde: MeanInterval::from_welford(&b, 0.95),
        notes: vec![
            ("initial_residual".into(), mf.balance_residual(&theta0)),
            ("sgd_residual_of_means".into(), residual_of_means(&sides[0])),
            ("sde_residual_of_means".into(), residual_of_means(&sides[1])),
            ("gd_max_change_of_UtU_minus_WWt".into(), gd_change),
        ],
    })
}

/// The default normalised linear model: `d = 4`, teacher `(1, 1, 0, 0)/√2`,
/// `Σ_x = diag(1, 0.5, 2, 1)`, `σ = 0.5`.
pub fn default_normalized_linear() -> Result<NormalizedLinear> {
    NormalizedLinear::new(
        DVector::from_vec(vec![1.0, 1.0, 0.0, 0.0]),
        DVector::from_vec(vec![1.0, 0.5, 2.0, 1.0]),
        0.5,
    )
}

/// Normalised linear model with weight decay `γ` on a data set of `samples` points:
/// `‖θ‖²` at `T` against `C* = sqrt(η c_B TrΣ(θ̂)/(4γ))` (THEORY §6), with `θ̂` the
/// minimising direction (found by GD, which keeps the norm up to O(η²) per step).
///
/// # Errors
/// Invalid parameters; a diverging path.
pub fn normalized_linear_norm(
    cfg: &EnsembleConfig,
    gamma: f64,
    samples: usize,
) -> Result<FixedPointComparison> {
    let model = default_normalized_linear()?;
    let data = model.dataset(samples, cfg.seed ^ 0x5a5a)?;
    let config = SgdConfig::new(cfg.eta, cfg.batch).with_weight_decay(gamma);
    let sgd = DiscreteSgd::finite(&model, &data, config)?;
    let sde = SgdSde::finite(&model, &data, config)?;
    // the minimising direction: GD without weight decay from the teacher
    let gd = DiscreteSgd::finite(&model, &data, SgdConfig::new(0.5, 1))?.gradient_descent();
    let direction = gd.run(model.teacher(), 200.0, &SeedTree::new(0), 0, &mut ())?;
    let unit = &direction / direction.norm();
    let trace = sde.trace_noise(&DMatrix::identity(unit.len(), unit.len()), &unit);
    let predicted =
        NormalizedLinear::equilibrium_norm_squared(cfg.eta * sde.covariance_factor(), trace, gamma)?;
    let theta0 = model.teacher() * predicted.sqrt();
    let f = |th: &DVector<f64>| th.norm_squared();
    let (a, b) = ensembles(&sgd, &sde, &theta0, cfg, &f, |_| ())?;
    Ok(FixedPointComparison {
        model: "normalized_linear",
        quantity: format!(
            "‖θ‖² at t = {} (η = {}, B = {}, γ = {gamma})",
            cfg.t_end, cfg.eta, cfg.batch
        ),
        predicted,
        sgd: MeanInterval::from_welford(&a, 0.95),
        sde: MeanInterval::from_welford(&b, 0.95),
        notes: vec![("trace_sigma_unit".into(), trace)],
    })
}

/// A network with an approximate rescaling symmetry (THEORY §7): the charge
/// `C = ‖U‖² − ‖W‖²` at `T` against the prediction of the symmetric theory — the
/// balanced equilibrium of the network's symmetric limit (tanh → identity,
/// [`TwoLayerNet::symmetric_limit`]). SGD draws fresh samples; the SDE (EM, `h = η`,
/// `sde_paths` paths) uses a data set of `samples` points. Notes: the measured symmetry
/// violation on that data and the starting charge.
///
/// # Errors
/// Invalid parameters; a diverging path.
pub fn approximate_symmetry(
    net: &TwoLayerNet,
    name: &'static str,
    theta0: &DVector<f64>,
    cfg: &EnsembleConfig,
    sde_paths: u64,
    samples: usize,
) -> Result<FixedPointComparison> {
    let sym = net.symmetry()?;
    let limit = net.symmetric_limit()?;
    let predicted = sym.charge(&limit.equilibrium()?);
    let data = net.dataset(samples, cfg.seed ^ 0xa5a5)?;
    let config = SgdConfig::new(cfg.eta, cfg.batch);
    let sgd = DiscreteSgd::online(net, config)?;
    let sde = SgdSde::finite(net, &data, config)?;
    let seeds = SeedTree::new(cfg.seed);
    let span = TimeSpan::new(0.0, cfg.t_end, cfg.eta)?;
    let (mut a, mut b) = (Welford::new(), Welford::new());
    for p in 0..cfg.paths {
        let th = sgd.run(theta0, cfg.t_end, &seeds, p, &mut ())?;
        a.push(sym.charge(&th));
        if p < sde_paths {
            let mut path = IncrementStream::new(&seeds, p, sde.noise_dim());
            let th = integrate(
                &sde,
                &mut EulerMaruyama::new(),
                theta0,
                &span,
                &mut path,
                p,
                &mut (),
            )?;
            b.push(sym.charge(&th));
        }
    }
    let violation = sym.check(net, &data, 200, 1.0, cfg.seed)?;
    Ok(FixedPointComparison {
        model: name,
        quantity: format!(
            "charge ‖U‖² − ‖W‖² at t = {} (η = {}, B = {}, input scale {}) vs the symmetric limit's equilibrium",
            cfg.t_end,
            cfg.eta,
            cfg.batch,
            net.input_scale()
        ),
        predicted,
        sgd: MeanInterval::from_welford(&a, 0.95),
        sde: MeanInterval::from_welford(&b, 0.95),
        notes: vec![
            ("symmetry_violation_gradient_alignment".into(), violation.gradient_alignment),
            ("initial_charge".into(), sym.charge(theta0)),
        ],
    })
}

/// An unbalanced start near a minimum of [`default_network`]: `W = [[2, 0.3], [−0.2, 1.5]]`
/// and `U` solving `UW = V` (or `V − I`).
pub fn default_network_start(residual: bool) -> DVector<f64> {
    let w = DMatrix::from_row_slice(2, 2, &[2.0, 0.3, -0.2, 1.5]);
    let target = if residual {
        DMatrix::from_row_slice(2, 2, &[0.5, 0.2, -0.3, 0.4]) - DMatrix::identity(2, 2)
    } else {
        DMatrix::from_row_slice(1, 2, &[1.0, -0.5])
    };
    let w_inv = w.clone().try_inverse().unwrap_or_else(|| DMatrix::identity(2, 2));
    TwoLayerNet::pack(&(target * w_inv), &w)
}

/// The default two-layer networks of the report: `d_in = 2`, `h = 2`, teacher
/// `V = [1, −0.5]` (tanh net) or `V = [[0.5, 0.2], [−0.3, 0.4]]` (residual block),
/// label noise 0.5, input scale `s`.
pub fn default_network(residual: bool, activation: Activation, input_scale: f64) -> Result<TwoLayerNet> {
    if residual {
        TwoLayerNet::residual(
            2,
            DMatrix::from_row_slice(2, 2, &[0.5, 0.2, -0.3, 0.4]),
            activation,
            input_scale,
            0.5,
        )
    } else {
        TwoLayerNet::new(
            2,
            DMatrix::from_row_slice(1, 2, &[1.0, -0.5]),
            activation,
            input_scale,
            0.5,
        )
    }
}

/// The report's matrix-factorisation run: η = 0.02, B = 2, T = 150 from
/// [`unbalanced_start`] (`paths` SGD paths, `sde_paths` SDE paths).
///
/// # Errors
/// As [`matrix_factorization_balance`].
pub fn default_matrix_factorization_balance(paths: u64, sde_paths: u64) -> Result<FixedPointComparison> {
    let cfg = EnsembleConfig {
        eta: 0.02,
        batch: 2,
        t_end: 150.0,
        paths,
        seed: 3,
    };
    matrix_factorization_balance(&cfg, sde_paths)
}

/// The report's normalised-layer run: η = 0.05, B = 4, γ = 0.01, T = 60, 256 samples.
///
/// # Errors
/// As [`normalized_linear_norm`].
pub fn default_normalized_linear_norm(paths: u64) -> Result<FixedPointComparison> {
    let cfg = EnsembleConfig {
        eta: 0.05,
        batch: 4,
        t_end: 60.0,
        paths,
        seed: 3,
    };
    normalized_linear_norm(&cfg, 0.01, 256)
}

/// One row of the input-scale sweep: model name, input scale, comparison.
pub type SweepRow = (String, f64, FixedPointComparison);

/// The input-scale sweep of one approximate symmetry (THEORY §7): the tanh network
/// (`residual = false`) or the residual block at `s ∈ {1, 1/2, 1/4}` with `η = 0.05/s²`
/// (the symmetric part's dynamics then take the same number of steps) and 8000 steps;
/// the SDE (`sde_paths` paths) runs at the smallest scale only.
///
/// # Errors
/// As [`approximate_symmetry`].
pub fn input_scale_sweep(
    residual: bool,
    name: &'static str,
    paths: u64,
    sde_paths: u64,
) -> Result<Vec<(f64, FixedPointComparison)>> {
    let mut out = Vec::new();
    for s in [1.0, 0.5, 0.25] {
        let net = default_network(residual, Activation::Tanh, s)?;
        let eta = 0.05 / (s * s);
        let cfg = EnsembleConfig {
            eta,
            batch: 4,
            t_end: 8000.0 * eta,
            paths,
            seed: 3,
        };
        let sde = if s < 0.3 { sde_paths } else { 0 };
        out.push((
            s,
            approximate_symmetry(&net, name, &default_network_start(residual), &cfg, sde, 256)?,
        ));
    }
    Ok(out)
}

/// Sizes of the fixed-point suite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuiteSize {
    /// Paths of the cheap ensembles (SGD, scalar SDEs).
    pub paths: u64,
    /// Paths of the expensive SDE ensembles (closed-form matrix noise, finite data).
    pub sde_paths: u64,
}

impl Default for SuiteSize {
    fn default() -> Self {
        SuiteSize {
            paths: 400,
            sde_paths: 20,
        }
    }
}

/// The five comparisons of the fixed-point table (issue #4), with the networks at input
/// scale 1/4, plus the input-scale sweep of the two approximate symmetries
/// (`s ∈ {1, 1/2, 1/4}`, `η = 0.05/s²`, 8000 steps).
///
/// # Errors
/// Propagates the experiments' errors.
pub fn suite(size: &SuiteSize) -> Result<(Vec<FixedPointComparison>, Vec<SweepRow>)> {
    let mut rows = vec![scalar_factorization_valley(&ValleyConfig {
        paths: size.paths.min(200),
        ..Default::default()
    })?];
    rows.push(default_matrix_factorization_balance(size.paths, size.sde_paths)?);
    rows.push(default_normalized_linear_norm(size.paths / 4)?);
    let mut sweep = Vec::new();
    for (residual, name) in [(false, "tanh_net"), (true, "residual")] {
        let runs = input_scale_sweep(residual, name, size.paths / 4, size.sde_paths / 4)?;
        if let Some((_, last)) = runs.last() {
            rows.push(last.clone());
        }
        sweep.extend(runs.into_iter().map(|(s, r)| (name.to_string(), s, r)));
    }
    Ok((rows, sweep))
}

/// `{"results":[{"model","quantity","predicted","sgd":{"mean","ci"},"sde":{"mean","ci"},"notes"}],
/// "input_scale_sweep":[{"model","input_scale","predicted","sgd":{..},"violation"}]}`.
pub fn suite_json(
    rows: &[FixedPointComparison],
    sweep: &[(String, f64, FixedPointComparison)],
) -> serde_json::Value {
    let interval = |m: &MeanInterval| json!({"mean": m.mean, "ci": [m.ci_low, m.ci_high], "n": m.n});
    let notes = |r: &FixedPointComparison| {
        r.notes
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
    };
    json!({
        "results": rows.iter().map(|r| json!({
            "model": r.model,
            "quantity": r.quantity,
            "predicted": r.predicted,
            "sgd": interval(&r.sgd),
            "sde": interval(&r.sde),
            "notes": notes(r),
        })).collect::<Vec<_>>(),
        "input_scale_sweep": sweep.iter().map(|(name, s, r)| json!({
            "model": name,
            "input_scale": s,
            "predicted": r.predicted,
            "sgd": interval(&r.sgd),
            "violation": r.notes.first().map(|n| n.1),
        })).collect::<Vec<_>>(),
    })
}
