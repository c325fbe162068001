//! SGD hyper-parameters shared by the SDE and the discrete process (THEORY §1).

use crate::error::{Error, Result};

/// Learning-rate schedule as a function of SDE time `t = Σ_k η_k`.
///
/// Both [`super::SgdSde`] (time-dependent `η(t)` in the diffusion) and
/// [`super::DiscreteSgd`] (`η_k = η(t_k)`) read the same function, so their curves
/// line up in `t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// `η(t) = eta`.
    Constant {
        /// The learning rate.
        eta: f64,
    },
    /// `η(t) = eta_start + (eta − eta_start) · min(1, t / warmup_time)`.
    LinearWarmup {
        /// Final learning rate.
        eta: f64,
        /// Learning rate at `t = 0` (must be > 0, or discrete time would never advance).
        eta_start: f64,
        /// SDE time over which the rate ramps up.
        warmup_time: f64,
    },
}

impl Schedule {
    /// `η(t)`.
    #[inline]
    pub fn eta(&self, t: f64) -> f64 {
        match *self {
            Schedule::Constant { eta } => eta,
            Schedule::LinearWarmup {
                eta,
                eta_start,
                warmup_time,
            } => eta_start + (eta - eta_start) * (t / warmup_time).clamp(0.0, 1.0),
        }
    }

    /// The final (largest) learning rate.
    pub fn final_eta(&self) -> f64 {
        match *self {
            Schedule::Constant { eta } | Schedule::LinearWarmup { eta, .. } => eta,
        }
    }

    fn validate(&self) -> Result<()> {
        let positive = |name: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(name, v, "must be finite and > 0"))
            }
        };
        match *self {
            Schedule::Constant { eta } => positive("eta", eta),
            Schedule::LinearWarmup {
                eta,
                eta_start,
                warmup_time,
            } => {
                positive("eta", eta)?;
                positive("eta_start", eta_start)?;
                positive("warmup_time", warmup_time)
            }
        }
    }
}

/// How mini-batches are drawn from a finite data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// `B` independent uniform indices: `Cov(ĝ) = Σ/B`.
    WithReplacement,
    /// A uniform `B`-subset: `Cov(ĝ) = Σ_N (N − B)/(B(N − 1))` (finite-population factor).
    WithoutReplacement,
}

/// Which stochastic modified equation the SDE is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModifiedEquation {
    /// Drift `−∇L_γ` (weak order 1 in η).
    First,
    /// Drift `−∇(L_γ + (η/4)‖∇L_γ‖²) = −(I + (η/2)∇²L_γ)∇L_γ` (weak order 2 for the mean
    /// dynamics).
    Second,
}

/// Hyper-parameters of SGD and of its SDE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Batch size `B ≥ 1`.
    pub batch: usize,
    /// Weight decay `γ ≥ 0` (`L_γ = L + γ‖θ‖²`).
    pub weight_decay: f64,
    /// Mini-batch sampling from a finite data set.
    pub sampling: Sampling,
    /// First- or second-order modified equation (SDE only).
    pub order: ModifiedEquation,
}

impl SgdConfig {
    /// Constant `eta`, batch `batch`, no weight decay, with replacement, first order.
    pub fn new(eta: f64, batch: usize) -> Self {
        SgdConfig {
            schedule: Schedule::Constant { eta },
            batch,
            weight_decay: 0.0,
            sampling: Sampling::WithReplacement,
            order: ModifiedEquation::First,
        }
    }

    /// Sets the weight decay γ.
    pub fn with_weight_decay(mut self, gamma: f64) -> Self {
        self.weight_decay = gamma;
        self
    }

    /// Sets the sampling mode.
    pub fn with_sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = sampling;
        self
    }

    /// Sets the schedule.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the modified-equation order.
    pub fn with_order(mut self, order: ModifiedEquation) -> Self {
        self.order = order;
        self
    }

    /// Checks the values; `data_size` is `Some(N)` for a finite data set.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `eta`, `batch` or `weight_decay`.
    pub fn validate(&self, data_size: Option<usize>) -> Result<()> {
        self.schedule.validate()?;
        if self.batch == 0 {
            return Err(Error::invalid("batch", 0, "the batch size must be at least 1"));
        }
        if let Some(n) = data_size {
            if self.batch > n {
                return Err(Error::invalid(
                    "batch",
                    self.batch,
                    format!("exceeds data set size {n}"),
                ));
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::invalid(
                "weight_decay",
                self.weight_decay,
                "must be finite and >= 0",
            ));
        }
        Ok(())
    }

    /// The factor multiplying `Σ` in `Cov(ĝ)`: `1/B`, or `(N − B)/(B(N − 1))` without
    /// replacement from `N` samples (THEORY §1).
    pub fn covariance_factor(&self, data_size: Option<usize>) -> f64 {
        let b = self.batch as f64;
        match (self.sampling, data_size) {
            (Sampling::WithoutReplacement, Some(n)) if n > 1 => (n as f64 - b) / (b * (n as f64 - 1.0)),
            _ => 1.0 / b,
        }
    }
}
