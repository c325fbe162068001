//! Discrete SGD and GD on the same model and data as the SDE (THEORY §1):
//! `θ_{k+1} = θ_k − η_k (ĝ_k + 2γ θ_k)`, `ĝ_k = (1/B) Σ_{i∈batch} ∇ℓ(θ_k, x_i)`,
//! with time `t_k = Σ_{j<k} η_j` (`= kη` for a constant rate) so curves line up with the
//! SDE's.

use super::config::{Sampling, SgdConfig};
use super::data::{Dataset, Population};
use super::model::{Model, PopulationForms};
use super::sde::check_data_dims;
use crate::error::{check_vector, Error, Result};
use crate::observe::{out_of_bounds, Flow, Observer};
use crate::rng::{SeedTree, Stream, Xoshiro256PlusPlus};
use nalgebra::DVector;
use rand::RngExt;

/// Mini-batch SGD or full-batch GD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// `B` samples per step (from the data set, or fresh from the population).
    MiniBatch,
    /// The exact gradient `∇L` (GD, the noise-free limit).
    Full,
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Finite(&'a Dataset),
    Population(&'a dyn Population, Option<&'a dyn PopulationForms>),
}

/// Buffers of discrete runs ([`DiscreteSgd::workspace`]; reused for any number of paths
/// by [`DiscreteSgd::run_with`]) and the last mini-batch gradient.
#[derive(Debug, Clone)]
pub struct SgdWorkspace {
    gradient: DVector<f64>,
    sample_gradient: DVector<f64>,
    permutation: Vec<usize>,
    x: Vec<f64>,
    y: Vec<f64>,
    theta: DVector<f64>,
    next: DVector<f64>,
}

impl SgdWorkspace {
    /// The mini-batch gradient `ĝ` of the last step (without weight decay).
    pub fn last_gradient(&self) -> &DVector<f64> {
        &self.gradient
    }
}

/// Discrete SGD (or GD) on a model and its data.
///
/// ```
/// use noether_sde::models::ScalarFactorization;
/// use noether_sde::rng::SeedTree;
/// use noether_sde::sgd::{DiscreteSgd, SgdConfig};
/// use nalgebra::DVector;
/// let model = ScalarFactorization::new(1.0, 0.5)?;
/// let sgd = DiscreteSgd::population(&model, SgdConfig::new(0.05, 4))?;
/// let theta = sgd.run(&DVector::from_vec(vec![2.0, 0.5]), 1.0, &SeedTree::new(1), 0, &mut ())?;
/// assert!(theta.iter().all(|v| v.is_finite()));
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub struct DiscreteSgd<'a, M: Model> {
    model: &'a M,
    source: Source<'a>,
    config: SgdConfig,
    batching: Batching,
}

impl<'a, M: Model> DiscreteSgd<'a, M> {
    /// SGD on the finite data set `data`.
    ///
    /// # Errors
    /// As [`super::SgdSde::finite`].
    pub fn finite(model: &'a M, data: &'a Dataset, config: SgdConfig) -> Result<Self> {
        config.validate(Some(data.len()))?;
        super::model::check_model_dim(model)?;
        check_data_dims(model, data)?;
        Ok(DiscreteSgd {
            model,
            source: Source::Finite(data),
            config,
            batching: Batching::MiniBatch,
        })
    }

    /// Online SGD: fresh samples from the model's population each step (GD uses the
    /// closed-form risk gradient).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for invalid hyper-parameters.
    pub fn population(model: &'a M, config: SgdConfig) -> Result<Self>
    where
        M: Population + PopulationForms,
    {
        config.validate(None)?;
        super::model::check_model_dim(model)?;
        Ok(DiscreteSgd {
            model,
            source: Source::Population(model, Some(model)),
            config,
            batching: Batching::MiniBatch,
        })
    }

    /// Online SGD on a model that can draw samples but has no closed forms; its
    /// gradient-descent variant is unavailable ([`DiscreteSgd::run`] reports it).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for invalid hyper-parameters.
    pub fn online(model: &'a M, config: SgdConfig) -> Result<Self>
    where
        M: Population,
    {
        config.validate(None)?;
        super::model::check_model_dim(model)?;
        Ok(DiscreteSgd {
            model,
            source: Source::Population(model, None),
            config,
            batching: Batching::MiniBatch,
        })
    }

    /// The same process with full-batch gradients: gradient descent.
    pub fn gradient_descent(mut self) -> Self {
        self.batching = Batching::Full;
        self
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// Mini-batch or full batch.
    pub fn batching(&self) -> Batching {
        self.batching
    }

    /// Buffers for [`DiscreteSgd::step`] and [`DiscreteSgd::run_with`].
    pub fn workspace(&self) -> SgdWorkspace {
        let d = self.model.dim();
        let (n, p, q) = match self.source {
            Source::Finite(data) => (data.len(), 0, 0),
            Source::Population(pop, _) => (0, pop.input_dim(), pop.target_dim()),
        };
        SgdWorkspace {
            gradient: DVector::zeros(d),
            sample_gradient: DVector::zeros(d),
            permutation: (0..n).collect(),
            x: vec![0.0; p],
            y: vec![0.0; q],
            theta: DVector::zeros(d),
            next: DVector::zeros(d),
        }
    }

    /// `ws.gradient = ĝ(θ)`: the mini-batch (or full) gradient.
    fn batch_gradient(&self, theta: &DVector<f64>, ws: &mut SgdWorkspace, rng: &mut Xoshiro256PlusPlus) {
        let b = self.config.batch;
        ws.gradient.fill(0.0);
        match (self.source, self.batching) {
            (Source::Finite(data), Batching::Full) => {
                for i in 0..data.len() {
                    self.model.grad(theta, data.sample(i), &mut ws.sample_gradient);
                    ws.gradient += &ws.sample_gradient;
                }
                ws.gradient /= data.len() as f64;
            }
            (Source::Population(_, Some(forms)), Batching::Full) => {
                forms.risk_gradient(theta, &mut ws.gradient)
            }
            (Source::Population(_, None), Batching::Full) => ws.gradient.fill(f64::NAN),
            (Source::Finite(data), Batching::MiniBatch) => {
                let n = data.len();
                for k in 0..b {
                    let i = match self.config.sampling {
                        Sampling::WithReplacement => rng.random_range(0..n),
                        Sampling::WithoutReplacement => {
                            // partial Fisher–Yates: positions 0..B become a uniform B-subset
                            let j = rng.random_range(k..n);
                            ws.permutation.swap(k, j);
                            ws.permutation[k]
                        }
                    };
                    self.model.grad(theta, data.sample(i), &mut ws.sample_gradient);
                    ws.gradient += &ws.sample_gradient;
                }
                ws.gradient /= b as f64;
            }
            (Source::Population(pop, _), Batching::MiniBatch) => {
                for _ in 0..b {
                    pop.draw(rng, &mut ws.x, &mut ws.y);
                    let sample = super::data::Sample { x: &ws.x, y: &ws.y };
                    self.model.grad(theta, sample, &mut ws.sample_gradient);
                    ws.gradient += &ws.sample_gradient;
                }
                ws.gradient /= b as f64;
            }
        }
    }

    /// One step at time `t`: `out = (1 − 2ηγ)θ − η ĝ`; returns the `η` used.
    /// The mini-batch gradient stays in `ws` ([`SgdWorkspace::last_gradient`]).
    pub fn step(
        &self,
        theta: &DVector<f64>,
        t: f64,
        ws: &mut SgdWorkspace,
        rng: &mut Xoshiro256PlusPlus,
        out: &mut DVector<f64>,
    ) -> f64 {
        let eta = self.config.schedule.eta(t);
        self.batch_gradient(theta, ws, rng);
        let decay = 1.0 - 2.0 * eta * self.config.weight_decay;
        for i in 0..theta.len() {
            out[i] = decay * theta[i] - eta * ws.gradient[i];
        }
        eta
    }

    /// Runs from `theta0` until time `t_end` (the first step at or after it), calling
    /// `observer` at `t = 0` and after every step with `t_k = Σ_{j<k} η_j`.
    ///
    /// Randomness: path `path` of `seeds`, stream [`Stream::Batches`] (finite data) or
    /// [`Stream::Samples`] (population). Allocates its buffers; [`DiscreteSgd::run_with`]
    /// reuses a workspace and returns the same numbers.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`]/[`Error::NonFinite`] for a bad `theta0`,
    /// [`Error::InvalidParameter`] for a negative or non-finite `t_end`,
    /// [`Error::Divergence`] when the iterate stops being finite.
    pub fn run<O: Observer + ?Sized>(
        &self,
        theta0: &DVector<f64>,
        t_end: f64,
        seeds: &SeedTree,
        path: u64,
        observer: &mut O,
    ) -> Result<DVector<f64>> {
        let mut ws = self.workspace();
        self.run_with(&mut ws, theta0, t_end, seeds, path, observer)?;
        Ok(ws.theta)
    }

    /// [`DiscreteSgd::run`] on the buffers of `ws` (from [`DiscreteSgd::workspace`]): the
    /// same steps and numbers, without allocating. Returns the final iterate (held by
    /// the workspace).
    ///
    /// ```
    /// use noether_sde::models::ScalarFactorization;
    /// use noether_sde::rng::SeedTree;
    /// use noether_sde::sgd::{DiscreteSgd, SgdConfig};
    /// use nalgebra::DVector;
    /// let model = ScalarFactorization::new(1.0, 0.5)?;
    /// let sgd = DiscreteSgd::population(&model, SgdConfig::new(0.05, 4))?;
    /// let (theta0, seeds) = (DVector::from_vec(vec![2.0, 0.5]), SeedTree::new(1));
    /// let mut ws = sgd.workspace();
    /// for path in 0..3 {
    ///     let theta = sgd.run_with(&mut ws, &theta0, 1.0, &seeds, path, &mut ())?.clone();
    ///     assert_eq!(theta, sgd.run(&theta0, 1.0, &seeds, path, &mut ())?);
    /// }
    /// # Ok::<(), noether_sde::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`DiscreteSgd::run`]; also [`Error::DimensionMismatch`] if `ws` was built for
    /// another problem.
    pub fn run_with<'w, O: Observer + ?Sized>(
        &self,
        ws: &'w mut SgdWorkspace,
        theta0: &DVector<f64>,
        t_end: f64,
        seeds: &SeedTree,
        path: u64,
        observer: &mut O,
    ) -> Result<&'w DVector<f64>> {
        check_vector("theta0", theta0, self.model.dim())?;
        let (n, p, q) = match self.source {
            Source::Finite(data) => (data.len(), 0, 0),
            Source::Population(pop, _) => (0, pop.input_dim(), pop.target_dim()),
        };
        if ws.theta.len() != theta0.len() || ws.permutation.len() != n || ws.x.len() != p || ws.y.len() != q {
            return Err(Error::DimensionMismatch {
                what: "SGD workspace (built for another problem)",
                expected: theta0.len(),
                got: ws.theta.len(),
            });
        }
        if let (Source::Population(_, None), Batching::Full) = (self.source, self.batching) {
            return Err(Error::invalid(
                "batching",
                "full",
                "gradient descent on a population needs the model's closed-form risk gradient",
            ));
        }
        if !(t_end.is_finite() && t_end >= 0.0) {
            return Err(Error::invalid("t_end", t_end, "must be finite and >= 0"));
        }
        let stream = match self.source {
            Source::Finite(_) => Stream::Batches,
            Source::Population(..) => Stream::Samples,
        };
        let mut rng = seeds.rng(path, stream);
        // a fresh path starts from the identity permutation, as with fresh buffers
        for (i, slot) in ws.permutation.iter_mut().enumerate() {
            *slot = i;
        }
        let mut theta = std::mem::take(&mut ws.theta);
        let mut next = std::mem::take(&mut ws.next);
        theta.copy_from(theta0);
        let outcome = self.steps(ws, &mut theta, &mut next, t_end, &mut rng, path, observer);
        ws.theta = theta;
        ws.next = next;
        outcome?;
        Ok(&ws.theta)
    }

    /// The loop of [`DiscreteSgd::run_with`]: `theta` holds the initial iterate on entry
    /// and the last finite one on exit.
    #[allow(clippy::too_many_arguments)]
    fn steps<O: Observer + ?Sized>(
        &self,
        ws: &mut SgdWorkspace,
        theta: &mut DVector<f64>,
        next: &mut DVector<f64>,
        t_end: f64,
        rng: &mut Xoshiro256PlusPlus,
        path: u64,
        observer: &mut O,
    ) -> Result<()> {
        let constant = match self.config.schedule {
            super::Schedule::Constant { eta } => Some(eta),
            _ => None,
        };
        let tolerance = 1e-9 * t_end.max(1.0);
        let mut t = 0.0;
        let mut k = 0usize;
        let bound = observer.divergence_bound();
        if out_of_bounds(theta.as_slice(), bound) {
            return Err(Error::Divergence { path, step: 0, t });
        }
        if observer.observe(0, t, theta) == Flow::Stop {
            return Ok(());
        }
        let mut wake = observer.next_time();
        while t < t_end - tolerance {
            let eta = self.step(theta, t, ws, rng, next);
            k += 1;
            t = match constant {
                Some(eta) => k as f64 * eta,
                None => t + eta,
            };
            if out_of_bounds(next.as_slice(), bound) {
                return Err(Error::Divergence { path, step: k, t });
            }
            std::mem::swap(theta, next);
            if t >= wake {
                if observer.observe(k, t, theta) == Flow::Stop {
                    break;
                }
                wake = observer.next_time();
            }
        }
        Ok(())
    }
}
