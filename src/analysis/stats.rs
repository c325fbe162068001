//! Statistics with stated confidence levels, on top of statrs' distributions.

use crate::observe::Welford;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A sample mean with its standard error and a Student-t confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MeanInterval {
    /// Sample mean.
    pub mean: f64,
    /// Standard error of the mean.
    pub std_error: f64,
    /// Lower end of the interval.
    pub ci_low: f64,
    /// Upper end of the interval.
    pub ci_high: f64,
    /// Confidence level (e.g. 0.95).
    pub level: f64,
    /// Number of samples.
    pub n: u64,
}

impl MeanInterval {
    /// From a Welford accumulator: `mean ± t_{(1+level)/2, n−1} · s/√n`.
    /// With fewer than two samples the interval is `(−∞, ∞)`.
    pub fn from_welford(w: &Welford, level: f64) -> Self {
        let n = w.count();
        let mean = w.mean();
        if n < 2 {
            return MeanInterval {
                mean,
                std_error: f64::INFINITY,
                ci_low: f64::NEG_INFINITY,
                ci_high: f64::INFINITY,
                level,
                n,
            };
        }
        let se = w.std_error();
        let q = StudentsT::new(0.0, 1.0, (n - 1) as f64)
            .map(|t| t.inverse_cdf(0.5 + 0.5 * level))
            .unwrap_or(f64::INFINITY);
        MeanInterval {
            mean,
            std_error: se,
            ci_low: mean - q * se,
            ci_high: mean + q * se,
            level,
            n,
        }
    }

    /// From samples.
    ///
    /// ```
    /// use noether_sde::analysis::stats::MeanInterval;
    /// let ci = MeanInterval::from_samples(&[1.0, 2.0, 3.0, 4.0], 0.95);
    /// assert!((ci.mean - 2.5).abs() < 1e-15);
    /// // t_{0.975, 3} = 3.182446305284263, s/√n = 0.6454972243679028
    /// assert!((ci.ci_high - (2.5 + 3.182446305284263 * 0.6454972243679028)).abs() < 1e-9);
    /// ```
    pub fn from_samples(samples: &[f64], level: f64) -> Self {
        let mut w = Welford::new();
        samples.iter().for_each(|&x| w.push(x));
        Self::from_welford(&w, level)
    }

    /// Whether `value` lies in the interval.
    pub fn contains(&self, value: f64) -> bool {
        self.ci_low <= value && value <= self.ci_high
    }
}
