//! How well SGD's SDE approximates SGD, measured (THEORY §1): the weak error
//! `|E φ(θ_SGD(t)) − E φ(θ_SDE(t))|` at fixed `t` over a ladder of learning rates, for
//! the first-order (`sme1`) and second-order (`sme2`) modified equations.
//!
//! On linear regression with a finite data set both sides are exact: the SGD moments
//! by their closed recursion, the SDE moments by RK4 on the moment ODE
//! ([`crate::models::finite_sgd_moments`], [`crate::models::finite_sde_moments`]), so
//! the errors carry no Monte Carlo noise. RK4 is run at `h` and `h/2`, and the largest
//! change is reported next to the smallest weak error, to show the SDE's own
//! discretisation error is negligible.

use super::regression::{fit_line, SlopeFit};
use crate::error::Result;
use crate::models::{finite_sde_moments, finite_sgd_moments, LinearRegression};
use crate::sgd::{ModifiedEquation, SgdConfig};
use nalgebra::{DMatrix, DVector};

/// The problem and the ladder.
#[derive(Debug, Clone, PartialEq)]
pub struct WeakOrderConfig {
    /// Learning rates (each must divide `t_end` into whole steps).
    pub etas: Vec<f64>,
    /// Comparison time.
    pub t_end: f64,
    /// Batch size.
    pub batch: usize,
    /// Data-set size.
    pub samples: usize,
    /// Seed of the data set.
    pub seed: u64,
    /// RK4 step for the SDE moments.
    pub rk4_step: f64,
}

impl Default for WeakOrderConfig {
    fn default() -> Self {
        WeakOrderConfig {
            etas: vec![0.1, 0.05, 0.025, 0.0125],
            t_end: 1.0,
            batch: 4,
            samples: 64,
            seed: 7,
            rk4_step: 1e-3,
        }
    }
}

/// One fitted order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WeakOrderRow {
    /// `"linear_regression"`.
    pub model: &'static str,
    /// `"mean"` (`‖E θ_SGD − E θ_SDE‖`) or `"second_moment"` (Frobenius norm of the
    /// difference of `E θθᵀ`).
    pub observable: &'static str,
    /// `"sme1"` or `"sme2"`.
    pub sde: &'static str,
    /// `(η, weak error)` per rung.
    pub points: Vec<(f64, f64)>,
    /// Largest change of the SDE moments when the RK4 step is halved.
    pub rk4_change: f64,
    /// Fitted slope of `ln error` against `ln η`, with its 95% interval.
    pub fit: SlopeFit,
}

/// The default linear-regression problem: `d = 3`, `Σ_x = diag(1, 0.5, 0.25)`,
/// `θ* = (1, −0.5, 0.25)`, `σ = 0.5`; SGD starts at `θ = 0`.
pub fn default_problem() -> Result<(LinearRegression, DVector<f64>)> {
    let model = LinearRegression::new(
        DVector::from_vec(vec![1.0, -0.5, 0.25]),
        DMatrix::from_diagonal(&DVector::from_vec(vec![1.0, 0.5, 0.25])),
        0.5,
    )?;
    Ok((model, DVector::zeros(3)))
}

/// Runs the three comparisons of issue #3: mean/sme1, mean/sme2, second moment/sme1.
///
/// # Errors
/// Invalid configuration (propagated from the moment functions) or a failed fit.
pub fn linear_regression_weak_orders(config: &WeakOrderConfig) -> Result<Vec<WeakOrderRow>> {
    let (model, theta0) = default_problem()?;
    let data = model.dataset(config.samples, config.seed)?;
    let mut rows = Vec::new();
    for (observable, sde, order) in [
        ("mean", "sme1", ModifiedEquation::First),
        ("mean", "sme2", ModifiedEquation::Second),
        ("second_moment", "sme1", ModifiedEquation::First),
    ] {
        let mut points = Vec::new();
        let mut rk4_change: f64 = 0.0;
        for &eta in &config.etas {
            let steps = (config.t_end / eta).round() as usize;
            let sgd_cfg = SgdConfig::new(eta, config.batch);
            let sde_cfg = sgd_cfg.with_order(order);
            let sgd = finite_sgd_moments(&data, &sgd_cfg, &theta0, steps)?;
            let t = steps as f64 * eta;
            let sde = finite_sde_moments(&data, &sde_cfg, &theta0, t, config.rk4_step)?;
            let sde_half = finite_sde_moments(&data, &sde_cfg, &theta0, t, 0.5 * config.rk4_step)?;
            let error = match observable {
                "mean" => {
                    rk4_change = rk4_change.max((&sde.mean - &sde_half.mean).norm());
                    (&sgd.mean - &sde_half.mean).norm()
                }
                _ => {
                    rk4_change = rk4_change.max((&sde.second - &sde_half.second).norm());
                    (&sgd.second - &sde_half.second).norm()
                }
            };
            points.push((eta, error));
        }
        let x: Vec<f64> = points.iter().map(|p| p.0.ln()).collect();
        let y: Vec<f64> = points.iter().map(|p| p.1.ln()).collect();
        let fit = fit_line(&x, &y, None, 0.95).ok_or_else(|| {
            crate::Error::invalid(
                "etas",
                config.etas.len(),
                "need at least two distinct learning rates",
            )
        })?;
        rows.push(WeakOrderRow {
            model: "linear_regression",
            observable,
            sde,
            points,
            rk4_change,
            fit,
        });
    }
    Ok(rows)
}
