//! Consequences of the Noether flow for stability (THEORY §6): progressive flattening,
//! progressive sharpening, and why learning-rate warmup works.
//!
//! - Scalar factorisation from an unbalanced start: the charge decays, and with it the
//!   sharpness `2√(C² + 4v²)` falls toward `4|v|` (flattening). GD is linearly stable only
//!   while `η · sharpness < 2`, so from a start with `η > 2/sharpness(θ₀)` plain SGD
//!   diverges, while a linear warmup lets the Noether flow flatten the solution first and
//!   then reaches the same final rate stably.
//! - Matrix factorisation with anisotropic noise from a balanced (`UᵀU = WWᵀ`) start: the
//!   noise equilibrium is imbalanced (THEORY §6), and the sharpness rises toward it
//!   (sharpening).
//!
//! Divergence is detected and counted (a path whose `‖θ‖_∞` exceeds a limit, or whose
//! state stops being finite), never a crash.

use super::sharpness::{population_sharpness, PowerIteration};
use super::stats::MeanInterval;
use crate::error::{Error, Result};
use crate::models::{MatrixFactorization, ScalarFactorization};
use crate::observe::{Flow, Observer, Welford};
use crate::rng::SeedTree;
use crate::sgd::{DiscreteSgd, Schedule, SgdConfig};
use nalgebra::{DMatrix, DVector};

/// Stops a run when `‖θ‖_∞` exceeds `limit` and records sharpness-relevant states.
struct Watch<'a> {
    limit: f64,
    blew_up: bool,
    times: &'a [f64],
    next: usize,
    states: Vec<DVector<f64>>,
}

impl Observer for Watch<'_> {
    fn observe(&mut self, _step: usize, t: f64, x: &DVector<f64>) -> Flow {
        if x.amax() > self.limit || !x.iter().all(|v| v.is_finite()) {
            self.blew_up = true;
            return Flow::Stop;
        }
        while self.next < self.times.len() && t >= self.times[self.next] - 1e-9 {
            self.states.push(x.clone());
            self.next += 1;
        }
        Flow::Continue
    }
}

/// Settings of the warmup experiment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupConfig {
    /// Teacher `v`.
    pub v: f64,
    /// Label noise `σ`.
    pub sigma: f64,
    /// Batch size.
    pub batch: usize,
    /// Final learning rate (above `2/sharpness(θ₀)`).
    pub eta: f64,
    /// Learning rate at the start of the warmup.
    pub eta_start: f64,
    /// Warmup duration (SDE time).
    pub warmup_time: f64,
    /// Starting charge (on the valley).
    pub charge0: f64,
    /// Run length.
    pub t_end: f64,
    /// Paths per schedule.
    pub paths: u64,
    /// Seed.
    pub seed: u64,
}

impl Default for WarmupConfig {
    fn default() -> Self {
        WarmupConfig {
            v: 1.0,
            sigma: 1.0,
            batch: 16,
            eta: 0.35,
            eta_start: 0.005,
            warmup_time: 100.0,
            charge0: 8.0,
            t_end: 120.0,
            paths: 200,
            seed: 77,
        }
    }
}

/// The outcome of [`scalar_factorization_warmup`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WarmupResult {
    /// Final learning rate.
    pub eta: f64,
    /// Sharpness at the start, `2√(C₀² + 4v²)`.
    pub sharpness_initial: f64,
    /// `2/sharpness(θ₀)`: constant rates above it are linearly unstable at the start.
    pub critical_eta_predicted: f64,
    /// Paths per schedule.
    pub paths: u64,
    /// Diverged paths with the constant rate.
    pub diverged_constant: u64,
    /// Diverged paths with warmup.
    pub diverged_warmup: u64,
    /// Sharpness (mean over surviving warmup paths) at the recorded times: `(t, λ_max)`.
    pub sharpness_trace: Vec<(f64, f64)>,
    /// Standard error of each mean in `sharpness_trace` (over the surviving paths of the
    /// first 20).
    pub sharpness_std_error: Vec<f64>,
    /// Learning rate at the recorded times (for the `2/η` stability line).
    pub eta_trace: Vec<(f64, f64)>,
    /// Final charge of the warmup paths.
    pub final_charge: MeanInterval,
    /// `4|v|`, the sharpness at the balanced point `C = 0`.
    pub balanced_sharpness: f64,
}

impl WarmupResult {
    /// Fraction of constant-rate paths that diverged.
    pub fn diverged_fraction_constant(&self) -> f64 {
        self.diverged_constant as f64 / self.paths as f64
    }
    /// Fraction of warmup paths that diverged.
    pub fn diverged_fraction_warmup(&self) -> f64 {
        self.diverged_warmup as f64 / self.paths as f64
    }
}

/// Plain SGD vs linear warmup from an unbalanced valley start of scalar factorisation.
///
/// # Errors
/// Invalid parameters.
pub fn scalar_factorization_warmup(cfg: &WarmupConfig) -> Result<WarmupResult> {
    let model = ScalarFactorization::new(cfg.v, cfg.sigma)?;
    let theta0 = model.valley_point(cfg.charge0);
    let sharpness_initial = model.valley_sharpness(cfg.charge0);
    let constant = SgdConfig::new(cfg.eta, cfg.batch);
    let schedule = Schedule::LinearWarmup {
        eta: cfg.eta,
        eta_start: cfg.eta_start,
        warmup_time: cfg.warmup_time,
    };
    let warm = constant.with_schedule(schedule);
    let seeds = SeedTree::new(cfg.seed);
    let times: Vec<f64> = (0..=30).map(|k| cfg.t_end * k as f64 / 30.0).collect();
    let limit = 1e6;
    let mut diverged = [0u64; 2];
    let mut sharp: Vec<Welford> = vec![Welford::new(); times.len()];
    let mut charge = Welford::new();
    let opts = PowerIteration::default();
    for (k, config) in [constant, warm].into_iter().enumerate() {
        let sgd = DiscreteSgd::population(&model, config)?;
        for p in 0..cfg.paths {
            let mut watch = Watch {
                limit,
                blew_up: false,
                times: &times,
                next: 0,
                states: Vec::new(),
            };
            let result = sgd.run(&theta0, cfg.t_end, &seeds, p, &mut watch);
            let failed = match result {
                Err(Error::Divergence { .. }) => true,
                Err(e) => return Err(e),
                Ok(_) => watch.blew_up,
            };
            if failed {
                diverged[k] += 1;
            } else if k == 1 {
                charge.push(ScalarFactorization::charge(
                    watch.states.last().unwrap_or(&theta0),
                ));
                if p < 20 {
                    for (slot, s) in watch.states.iter().enumerate() {
                        if let Ok(sh) = population_sharpness(&model, s, &opts) {
                            sharp[slot].push(sh.eigenvalue);
                        }
                    }
                }
            }
        }
    }
    Ok(WarmupResult {
        eta: cfg.eta,
        sharpness_initial,
        critical_eta_predicted: 2.0 / sharpness_initial,
        paths: cfg.paths,
        diverged_constant: diverged[0],
        diverged_warmup: diverged[1],
        sharpness_trace: times
            .iter()
            .zip(&sharp)
            .filter(|(_, w)| w.count() > 0)
            .map(|(&t, w)| (t, w.mean()))
            .collect(),
        sharpness_std_error: sharp
            .iter()
            .filter(|w| w.count() > 0)
            .map(Welford::std_error)
            .collect(),
        eta_trace: times.iter().map(|&t| (t, schedule.eta(t))).collect(),
        final_charge: MeanInterval::from_welford(&charge, 0.95),
        balanced_sharpness: 4.0 * cfg.v.abs(),
    })
}

/// The isotropically balanced global minimum of `mf` (`UᵀU = WWᵀ`): `U = R S^{1/2} O`,
/// `W = Oᵀ S^{1/2} Tᵀ` from `V = R S Tᵀ` (unused hidden units zero).
pub fn isotropic_balanced_start(mf: &MatrixFactorization, v: &DMatrix<f64>) -> DVector<f64> {
    let (_, hidden, _) = mf.shape();
    let r = v.nrows().min(v.ncols());
    let svd = v.clone().svd(true, true);
    let (rr, s, tt) = (
        svd.u.unwrap_or_else(|| DMatrix::identity(v.nrows(), r)),
        svd.singular_values,
        svd.v_t.unwrap_or_else(|| DMatrix::identity(r, v.ncols())),
    );
    let s_half = DMatrix::from_diagonal(&s.map(f64::sqrt));
    let mut o = DMatrix::zeros(r, hidden);
    for i in 0..r.min(hidden) {
        o[(i, i)] = 1.0;
    }
    let u = rr * &s_half * &o;
    let w = o.transpose() * s_half * tt;
    MatrixFactorization::pack(&u, &w)
}

/// Progressive sharpening of matrix factorisation with anisotropic noise (the default
/// model of [`super::fixed_points::default_matrix_factorization`]), SGD from the
/// isotropically balanced minimum: mean sharpness over `paths` at the recorded times,
/// and the sharpness at the start and at the noise equilibrium.
///
/// # Errors
/// Invalid parameters, or a diverging path.
pub fn matrix_factorization_sharpening(
    eta: f64,
    batch: usize,
    t_end: f64,
    paths: u64,
    seed: u64,
) -> Result<SharpeningResult> {
    let mf = super::fixed_points::default_matrix_factorization()?;
    let v = DMatrix::from_row_slice(2, 4, &[1.0, -0.5, 0.3, 0.2, 0.4, 0.8, -0.6, 0.1]);
    let theta0 = isotropic_balanced_start(&mf, &v);
    let opts = PowerIteration::default();
    let start = population_sharpness(&mf, &theta0, &opts)?.eigenvalue;
    let equilibrium = population_sharpness(&mf, &mf.equilibrium()?, &opts)?.eigenvalue;
    let times: Vec<f64> = (0..=20).map(|k| t_end * k as f64 / 20.0).collect();
    let sgd = DiscreteSgd::population(&mf, SgdConfig::new(eta, batch))?;
    let seeds = SeedTree::new(seed);
    let mut sharp = vec![Welford::new(); times.len()];
    let mut late = Welford::new();
    for p in 0..paths {
        let mut watch = Watch {
            limit: 1e6,
            blew_up: false,
            times: &times,
            next: 0,
            states: Vec::new(),
        };
        sgd.run(&theta0, t_end, &seeds, p, &mut watch)?;
        if watch.blew_up {
            return Err(Error::Divergence {
                path: p,
                step: 0,
                t: f64::NAN,
            });
        }
        let mut path_late = Welford::new();
        for (slot, s) in watch.states.iter().enumerate() {
            let e = population_sharpness(&mf, s, &opts)?.eigenvalue;
            sharp[slot].push(e);
            if 2 * slot >= times.len() {
                path_late.push(e);
            }
        }
        late.push(path_late.mean());
    }
    Ok(SharpeningResult {
        eta,
        sharpness_start: start,
        sharpness_equilibrium: equilibrium,
        late_mean: MeanInterval::from_welford(&late, 0.95),
        trace: times
            .iter()
            .zip(&sharp)
            .map(|(&t, w)| (t, MeanInterval::from_welford(w, 0.95)))
            .collect(),
    })
}

/// The outcome of [`matrix_factorization_sharpening`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SharpeningResult {
    /// Learning rate.
    pub eta: f64,
    /// Sharpness at the balanced start.
    pub sharpness_start: f64,
    /// Sharpness at the noise equilibrium (THEORY §6).
    pub sharpness_equilibrium: f64,
    /// Mean sharpness of the ensemble at the recorded times.
    pub trace: Vec<(f64, MeanInterval)>,
    /// Per-path time averages over the second half of the run, averaged over paths
    /// (independent across paths, so its interval is a valid 95% interval).
    pub late_mean: MeanInterval,
}
