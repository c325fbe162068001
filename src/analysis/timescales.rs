//! The two timescales of SGD (THEORY §5), predicted and measured.
//!
//! On scalar factorisation (THEORY §6) near the valley `uw = v`, with `P = u² + w²`
//! (so `2P` is the top eigenvalue of `∇²L` there):
//!
//! - **fast**: the residual `a = uw − v` relaxes along the top Hessian eigenvector —
//!   at `2P` for the SDE, at `−ln(1 − 2ηP)/η` per unit of SGD time `t = kη`;
//! - **slow**: the charge `C = u² − w²` relaxes at `κ = 4ησ²/B` (plain), refined by the
//!   fluctuations of `a`: SDE `κ(1 + 2ηP/(B − 2ηP))` (THEORY §6); SGD
//!   `−ln(1 − 4η²E[ξ̄²])/η` with `E[ξ̄²] = E[a²](1 + 2/B) + σ²/B` and the stationary
//!   `E[a²] = ηPσ²/(B(1 − ηP(1 + 2/B)))` (THEORY §6);
//!
//! so `slow/fast = O(η/B)`. The predictions are leading order: their neglected terms are
//! O(η/B) relative to the rates (e.g. the `s²(v + a)` drift of `a`), which the tests show
//! shrinking with η/B. SGD's fast rate: `E[δa]` multiplies by `E[1 − 2ηP x̄²] = 1 − 2ηP`
//! per step at leading order, and the second-order terms (from `4η²ξ̄²(a + v)` in the
//! residual's update and from the fluctuations of `P` with `a`) are `O(ησ²/(BP))`
//! relative; measured at B = 1 with 3,000 paths the rate is +0.2 % off (95 % interval
//! −0.6 % to +1.3 %).
//!
//! Measurement, on an ensemble: the fast rate from the *coupled* difference
//! `δa(t) = a_A(t) − a_B(t)` of two copies driven by the same noise, started at the same
//! charge with residuals `a₀` and 0 (the common noise cancels, leaving the linear
//! response), by a least-squares fit of `ln E[δa]` over one decade; the slow rate from
//! `ln E[C](t)` over a window of `0.5/κ` after the fast phase. SDE runs are Milstein at
//! steps `h` and `2h` on the same Brownian path, Richardson-extrapolated per path (the
//! scheme's O(Ph) bias is as large as the effects measured). Each rate's 95% interval is
//! a percentile bootstrap over paths (paths are independent; times within a path are
//! not), reproducible from the seed. The SDE depends on `η` and `B` only through `η/B`
//! (THEORY §1), so the batch ladder is run on discrete SGD, where `B` enters on its own.

use super::regression::{fit_line, SlopeFit};
use crate::error::{Error, Result};
use crate::models::ScalarFactorization;
use crate::observe::RecordFunctionals;
use crate::rng::{SeedTree, Stream};
use crate::scheme::{integrate, Milstein, TimeSpan};
use crate::sgd::{DiscreteSgd, SgdConfig, SgdSde};
use nalgebra::DVector;
use rand::RngExt;

/// A measured rate with its bootstrap interval, next to the prediction.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RateEstimate {
    /// Fitted rate (SDE time).
    pub rate: f64,
    /// Lower end of the 95% bootstrap interval.
    pub ci_low: f64,
    /// Upper end of the 95% bootstrap interval.
    pub ci_high: f64,
    /// Theory's rate.
    pub predicted: f64,
}

impl RateEstimate {
    /// Whether the prediction lies in the 95% interval (a single check at the 5% level;
    /// for several at once use [`RateEstimate::agrees_within`]).
    pub fn agrees(&self) -> bool {
        self.ci_low <= self.predicted && self.predicted <= self.ci_high
    }

    /// The standard error implied by the 95% interval, `(hi − lo)/3.92`.
    pub fn standard_error(&self) -> f64 {
        (self.ci_high - self.ci_low) / (2.0 * 1.959_963_984_540_054)
    }

    /// `(rate − predicted)/s.e.`
    pub fn z_score(&self) -> f64 {
        (self.rate - self.predicted) / self.standard_error()
    }

    /// Whether the prediction lies within `z` standard errors (e.g. `z = 4`: a false alarm
    /// of 6e-5 per check, so a family of a dozen checks stays below 1e-3).
    pub fn agrees_within(&self, z: f64) -> bool {
        self.z_score().abs() <= z
    }
}

/// One `(η, B)` point of the timescale study.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TimescalePoint {
    /// The process measured.
    pub process: Process,
    /// Learning rate.
    pub eta: f64,
    /// Batch size.
    pub batch: usize,
    /// Fast rate (top Hessian eigenvalue `2P`).
    pub fast: RateEstimate,
    /// Slow rate (`κ`).
    pub slow: RateEstimate,
}

impl TimescalePoint {
    /// Measured `slow/fast`.
    pub fn ratio(&self) -> f64 {
        self.slow.rate / self.fast.rate
    }
}

/// Which process is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Process {
    /// The SGD-SDE (population, scalar noise), Milstein, Richardson-extrapolated.
    Sde,
    /// Discrete online SGD (fresh samples).
    Sgd,
}

/// The problem and the ensemble size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimescaleConfig {
    /// Teacher `v`.
    pub v: f64,
    /// Label noise `σ`.
    pub sigma: f64,
    /// Starting charge.
    pub charge0: f64,
    /// Residual of the perturbed copy, `a(0)` (small: linear response).
    pub residual0: f64,
    /// Fine SDE step (the coarse one is twice as large).
    pub sde_step: f64,
    /// Paths.
    pub paths: u64,
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for TimescaleConfig {
    fn default() -> Self {
        TimescaleConfig {
            v: 1.0,
            sigma: 1.0,
            charge0: 0.5,
            residual0: 0.005,
            sde_step: 0.0025,
            paths: 100,
            bootstrap: 200,
            seed: 55,
        }
    }
}

/// Least-squares slope of `ln y` against `t` (negated: a decay rate).
fn log_rate(t: &[f64], y: &[f64]) -> Option<f64> {
    if y.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return None;
    }
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    fit_line(t, &ly, None, 0.95).map(|f: SlopeFit| -f.slope)
}

/// Percentile bootstrap over paths of a statistic of the ensemble mean curve.
fn bootstrap_rate(
    curves: &[Vec<f64>],
    stat: &dyn Fn(&[f64]) -> Option<f64>,
    resamples: usize,
    seed: u64,
) -> Result<(f64, f64, f64)> {
    let n = curves.len();
    let m = curves[0].len();
    let mean_of = |idx: &mut dyn Iterator<Item = usize>| {
        let mut mean = vec![0.0; m];
        let mut k = 0.0;
        for i in idx {
            for (acc, v) in mean.iter_mut().zip(&curves[i]) {
                *acc += v;
            }
            k += 1.0;
        }
        mean.iter_mut().for_each(|v| *v /= k);
        mean
    };
    let point = stat(&mean_of(&mut (0..n)))
        .ok_or_else(|| Error::invalid("fit", "ensemble mean", "not positive over the window"))?;
    let mut rng = SeedTree::new(seed).rng(0, Stream::Custom(7));
    let mut rates = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
        if let Some(r) = stat(&mean_of(&mut idx.into_iter())) {
            rates.push(r);
        }
    }
    if rates.len() < resamples / 2 {
        return Err(Error::invalid(
            "bootstrap",
            rates.len(),
            "too many resamples had no valid fit",
        ));
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| rates[((p * (rates.len() - 1) as f64).round() as usize).min(rates.len() - 1)];
    Ok((point, q(0.025), q(0.975)))
}

/// The leading-order predictions `(fast, slow)` for `process` at `(η, B)`, charge `c`.
pub fn predicted_rates(
    cfg: &TimescaleConfig,
    process: Process,
    eta: f64,
    batch: usize,
    c: f64,
) -> (f64, f64) {
    let model = match ScalarFactorization::new(cfg.v, cfg.sigma) {
        Ok(m) => m,
        Err(_) => return (f64::NAN, f64::NAN),
    };
    let p = model.valley_norm_squared(c);
    let b = batch as f64;
    let s2 = cfg.sigma * cfg.sigma;
    match process {
        Process::Sde => (
            model.valley_sharpness(c),
            model.refined_valley_rate(eta, batch, c),
        ),
        Process::Sgd => {
            let a2 = eta * p * s2 / (b * (1.0 - eta * p * (1.0 + 2.0 / b)));
            let xi2 = a2 * (1.0 + 2.0 / b) + s2 / b;
            (
                -(1.0 - 2.0 * eta * p).abs().ln() / eta,
                -(1.0 - 4.0 * eta * eta * xi2).ln() / eta,
            )
        }
    }
}

/// Measures the fast and slow rates of `process` at `(η, B)` and predicts them.
///
/// # Errors
/// Invalid parameters (including `ηP(1 + 2/B) ≥ 1`, outside SGD's mean-square stability
/// region), a diverging path, or a window where the ensemble mean is not positive.
pub fn scalar_factorization_timescales(
    cfg: &TimescaleConfig,
    process: Process,
    eta: f64,
    batch: usize,
) -> Result<TimescalePoint> {
    let model = ScalarFactorization::new(cfg.v, cfg.sigma)?;
    let config = SgdConfig::new(eta, batch);
    let theta_b = model.valley_point(cfg.charge0);
    let theta_a = ScalarFactorization::new(cfg.v + cfg.residual0, cfg.sigma)?.valley_point(cfg.charge0);
    let p0 = theta_b.norm_squared();
    if eta * p0 * (1.0 + 2.0 / batch as f64) >= 1.0 {
        return Err(Error::invalid(
            "eta",
            eta,
            "outside the mean-square stability region ηP(1 + 2/B) < 1",
        ));
    }
    let (fast0, slow0) = predicted_rates(cfg, process, eta, batch, cfg.charge0);
    // record on a lattice common to every grid used (multiples of 2h, or of η for SGD)
    let quantum = match process {
        Process::Sde => 2.0 * cfg.sde_step,
        Process::Sgd => eta,
    };
    let snap = |t: f64| (t / quantum).round() * quantum;
    let fast_window = 10f64.ln() / fast0;
    let slow_start = snap(10.0 / fast0);
    let slow_end = snap(slow_start + 0.5 / slow0);
    let nf = 20;
    let times_fast: Vec<f64> = (0..=nf)
        .map(|k| snap(fast_window * k as f64 / nf as f64))
        .collect();
    let times_slow: Vec<f64> = (0..=nf)
        .map(|k| snap(slow_start + (slow_end - slow_start) * k as f64 / nf as f64))
        .collect();
    let mut times: Vec<f64> = times_fast.iter().chain(times_slow.iter()).copied().collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    let index = |t: f64| times.iter().position(|s| (s - t).abs() < 1e-9).unwrap_or(0);
    let seeds = SeedTree::new(cfg.seed);
    let record = |times: &[f64]| {
        RecordFunctionals::new(times.to_vec(), 2, move |_t, x: &DVector<f64>, out: &mut [f64]| {
            out[0] = x[0] * x[1];
            out[1] = ScalarFactorization::charge(x);
        })
    };
    let mut fast_curves = Vec::with_capacity(cfg.paths as usize);
    let mut slow_curves = Vec::with_capacity(cfg.paths as usize);
    for p in 0..cfg.paths {
        // (uw of copy A, uw of copy B, C of copy B) at every recorded time
        let run = |grid: Option<&crate::brownian::BrownianGrid>| -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
            let mut out = (Vec::new(), Vec::new(), Vec::new());
            for (k, theta0) in [&theta_a, &theta_b].into_iter().enumerate() {
                let mut rec = record(&times);
                match (process, grid) {
                    (Process::Sde, Some(g)) => {
                        let sde = SgdSde::population(&model, config)?;
                        let span = TimeSpan::new(0.0, slow_end, g.dt())?;
                        integrate(
                            &sde,
                            &mut Milstein::new(),
                            theta0,
                            &span,
                            &mut g.path(),
                            p,
                            &mut rec,
                        )?;
                    }
                    _ => {
                        DiscreteSgd::population(&model, config)?
                            .run(theta0, slow_end, &seeds, p, &mut rec)?;
                    }
                }
                let vals = rec.values();
                let col: Vec<f64> = (0..times.len()).map(|i| vals[(i, 0)]).collect();
                if k == 0 {
                    out.0 = col;
                } else {
                    out.1 = col;
                    out.2 = (0..times.len()).map(|i| vals[(i, 1)]).collect();
                }
            }
            Ok(out)
        };
        let (ua, ub, cb) = match process {
            Process::Sde => {
                let steps = (slow_end / (2.0 * cfg.sde_step)).round() as usize * 2;
                let fine = crate::brownian::BrownianGrid::sample(&seeds, p, 1, 0.0, slow_end, steps, None)?;
                let coarse = fine.coarsen()?;
                let f = run(Some(&fine))?;
                let c = run(Some(&coarse))?;
                let rich =
                    |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| 2.0 * a - b).collect::<Vec<f64>>();
                (rich(&f.0, &c.0), rich(&f.1, &c.1), rich(&f.2, &c.2))
            }
            Process::Sgd => run(None)?,
        };
        fast_curves.push(
            times_fast
                .iter()
                .map(|&t| ua[index(t)] - ub[index(t)])
                .collect::<Vec<f64>>(),
        );
        slow_curves.push(times_slow.iter().map(|&t| cb[index(t)]).collect::<Vec<f64>>());
    }
    let (tf, ts) = (times_fast.clone(), times_slow.clone());
    let (fast, fl, fh) = bootstrap_rate(&fast_curves, &|y| log_rate(&tf, y), cfg.bootstrap, cfg.seed)?;
    let (slow, sl, sh) = bootstrap_rate(&slow_curves, &|y| log_rate(&ts, y), cfg.bootstrap, cfg.seed + 1)?;
    // the slow prediction at the window's middle charge
    let mean_c: f64 = slow_curves.iter().map(|c| c[nf / 2]).sum::<f64>() / slow_curves.len() as f64;
    let (_, slow_mid) = predicted_rates(cfg, process, eta, batch, mean_c);
    Ok(TimescalePoint {
        process,
        eta,
        batch,
        fast: RateEstimate {
            rate: fast,
            ci_low: fl,
            ci_high: fh,
            predicted: fast0,
        },
        slow: RateEstimate {
            rate: slow,
            ci_low: sl,
            ci_high: sh,
            predicted: slow_mid,
        },
    })
}

/// The scaling study: `η ∈ etas` at batch `batch_for_eta` (SDE), and `B ∈ batches` at
/// `eta_for_batch` (discrete SGD); slopes of `ln(slow/fast)` against `ln η` and `ln B`
/// with 95% intervals (scatter about the line).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TimescaleStudy {
    /// All points (η ladder first, then the B ladder).
    pub points: Vec<TimescalePoint>,
    /// Slope against `ln η` (expected 1).
    pub slope_eta: SlopeFit,
    /// Slope against `ln B` (expected −1).
    pub slope_batch: SlopeFit,
}

/// Runs [`scalar_factorization_timescales`] over both ladders.
///
/// # Errors
/// As [`scalar_factorization_timescales`]; fewer than two rungs on a ladder.
pub fn timescale_scaling(
    cfg: &TimescaleConfig,
    etas: &[f64],
    batch_for_eta: usize,
    batches: &[usize],
    eta_for_batch: f64,
) -> Result<TimescaleStudy> {
    let mut points = Vec::new();
    for &eta in etas {
        points.push(scalar_factorization_timescales(
            cfg,
            Process::Sde,
            eta,
            batch_for_eta,
        )?);
    }
    for &b in batches {
        points.push(scalar_factorization_timescales(
            cfg,
            Process::Sgd,
            eta_for_batch,
            b,
        )?);
    }
    let fit = |xs: Vec<f64>, pts: &[TimescalePoint]| {
        let ys: Vec<f64> = pts.iter().map(|p| p.ratio().ln()).collect();
        fit_line(&xs, &ys, None, 0.95)
            .ok_or_else(|| Error::invalid("ladder", xs.len(), "need at least two distinct rungs"))
    };
    let ne = etas.len();
    let slope_eta = fit(etas.iter().map(|e| e.ln()).collect(), &points[..ne])?;
    let slope_batch = fit(batches.iter().map(|&b| (b as f64).ln()).collect(), &points[ne..])?;
    Ok(TimescaleStudy {
        points,
        slope_eta,
        slope_batch,
    })
}
