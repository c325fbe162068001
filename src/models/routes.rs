//! How a built-in model with an optional data set becomes what the fronts run (THEORY
//! §1): discrete SGD and its SGD-SDE on the data set (finite data) or on fresh samples
//! (the population, for models with closed forms), the risk `L(θ)` and the sharpness
//! `λ_max(∇²L(θ))`, and the batched Euler–Maruyama route where it applies. The CLI and
//! the Python bindings both use this trait, so their numbers are the same by construction.

use super::{LinearRegression, MatrixFactorization, NormalizedLinear, ScalarFactorization, TwoLayerNet};
use crate::analysis::sharpness::{dataset_sharpness, population_sharpness, PowerIteration};
use crate::ensemble::{BatchedSgdSdeProblem, Ensemble, EnsembleStatistics, Functionals};
use crate::error::{Error, Result};
use crate::scheme::TimeSpan;
use crate::sgd::{Dataset, DiscreteSgd, Model, SgdConfig, SgdSde};
use nalgebra::DVector;

/// The power iteration behind every reported sharpness (relative residual 1e-6, at most
/// 100 products per phase, seed 0).
pub const POWER_ITERATION: PowerIteration = PowerIteration {
    tolerance: 1e-6,
    max_iterations: 100,
    seed: 0,
};

/// What a front needs of a model: SGD and its SDE on the data set or the population,
/// the loss and the sharpness.
pub trait ModelRoutes: Model + Sized {
    /// Discrete SGD on `data` (or fresh samples).
    ///
    /// # Errors
    /// Invalid hyper-parameters.
    fn discrete<'a>(&'a self, data: Option<&'a Dataset>, cfg: SgdConfig) -> Result<DiscreteSgd<'a, Self>>;
    /// The SGD-SDE on `data` (or the population).
    ///
    /// # Errors
    /// Invalid hyper-parameters.
    fn sde<'a>(&'a self, data: Option<&'a Dataset>, cfg: SgdConfig) -> Result<SgdSde<'a, Self>>;
    /// `L(θ)`: the empirical risk on `data`, or the population risk.
    fn risk(&self, data: Option<&Dataset>, theta: &DVector<f64>) -> f64;
    /// `λ_max(∇²L(θ))`.
    ///
    /// # Errors
    /// As the power iteration.
    fn sharpness(&self, data: Option<&Dataset>, theta: &DVector<f64>) -> Result<f64>;
    /// Euler–Maruyama statistics of the finite-data SGD-SDE through the batched route
    /// ([`BatchedSgdSdeProblem`]: the same increments, the same paths to rounding, several
    /// times faster), for models that have one; `None` for the others.
    fn batched_em_statistics<F>(
        &self,
        _sde: &SgdSde<'_, Self>,
        _theta0: &DVector<f64>,
        _span: TimeSpan,
        _ensemble: &Ensemble,
        _record: &Functionals<F>,
    ) -> Option<Result<EnsembleStatistics>>
    where
        F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync,
    {
        None
    }
}

fn empirical_risk<M: Model>(model: &M, data: &Dataset, theta: &DVector<f64>) -> f64 {
    (0..data.len())
        .map(|i| model.loss(theta, data.sample(i)))
        .sum::<f64>()
        / data.len() as f64
}

macro_rules! population_model {
    ($t:ty $(, $batched:ident)?) => {
        impl ModelRoutes for $t {
            $(population_model!(@$batched);)?
            fn discrete<'a>(
                &'a self,
                data: Option<&'a Dataset>,
                cfg: SgdConfig,
            ) -> Result<DiscreteSgd<'a, Self>> {
                match data {
                    Some(d) => DiscreteSgd::finite(self, d, cfg),
                    None => DiscreteSgd::population(self, cfg),
                }
            }
            fn sde<'a>(&'a self, data: Option<&'a Dataset>, cfg: SgdConfig) -> Result<SgdSde<'a, Self>> {
                match data {
                    Some(d) => SgdSde::finite(self, d, cfg),
                    None => SgdSde::population(self, cfg),
                }
            }
            fn risk(&self, data: Option<&Dataset>, theta: &DVector<f64>) -> f64 {
                match data {
                    Some(d) => empirical_risk(self, d, theta),
                    None => crate::sgd::PopulationForms::risk(self, theta),
                }
            }
            fn sharpness(&self, data: Option<&Dataset>, theta: &DVector<f64>) -> Result<f64> {
                let s = match data {
                    Some(d) => dataset_sharpness(self, d, theta, &POWER_ITERATION)?,
                    None => population_sharpness(self, theta, &POWER_ITERATION)?,
                };
                Ok(s.eigenvalue)
            }
        }
    };
    (@batched) => {
        fn batched_em_statistics<F>(
            &self,
            sde: &SgdSde<'_, Self>,
            theta0: &DVector<f64>,
            span: TimeSpan,
            ensemble: &Ensemble,
            record: &Functionals<F>,
        ) -> Option<Result<EnsembleStatistics>>
        where
            F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync,
        {
            // only where the batched step applies (finite data, first-order equation);
            // the per-path route reports anything else
            let problem = BatchedSgdSdeProblem::new(sde, theta0.clone(), span).ok()?;
            Some(ensemble.statistics(&problem, record))
        }
    };
}

macro_rules! data_model {
    ($t:ty) => {
        impl ModelRoutes for $t {
            fn discrete<'a>(
                &'a self,
                data: Option<&'a Dataset>,
                cfg: SgdConfig,
            ) -> Result<DiscreteSgd<'a, Self>> {
                DiscreteSgd::finite(self, data.ok_or_else(needs_data)?, cfg)
            }
            fn sde<'a>(&'a self, data: Option<&'a Dataset>, cfg: SgdConfig) -> Result<SgdSde<'a, Self>> {
                SgdSde::finite(self, data.ok_or_else(needs_data)?, cfg)
            }
            fn risk(&self, data: Option<&Dataset>, theta: &DVector<f64>) -> f64 {
                data.map_or(f64::NAN, |d| empirical_risk(self, d, theta))
            }
            fn sharpness(&self, data: Option<&Dataset>, theta: &DVector<f64>) -> Result<f64> {
                Ok(
                    dataset_sharpness(self, data.ok_or_else(needs_data)?, theta, &POWER_ITERATION)?
                        .eigenvalue,
                )
            }
        }
    };
}

/// The error of a model without closed-form noise asked to run without a data set.
pub fn needs_data() -> Error {
    Error::invalid(
        "n",
        0,
        "this model has no closed-form noise and needs a data set (n ≥ 1)",
    )
}

population_model!(ScalarFactorization);
population_model!(MatrixFactorization);
population_model!(LinearRegression, batched);
population_model!(NormalizedLinear);
data_model!(TwoLayerNet);
