//! Time averages of one long autocorrelated trajectory: the mean with a long-run-variance
//! standard error (batch means or Geyer's initial monotone sequence) and an effective
//! sample size (docs/THEORY.md, the statistics section).

use super::*;

/// How [`time_average`] estimates the long-run variance `σ²_∞ = lim n Var(x̄_n)` of an
/// autocorrelated series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum LongRunVariance {
    /// Non-overlapping batch means: `b` batches of `L = ⌊n/b⌋` consecutive values (the
    /// first `n − bL` values are dropped), `σ²_∞ ≈ L · s²(batch means)`, and the test uses
    /// Student t with `b − 1` degrees of freedom.
    ///
    /// A fixed `b` (10–30, Schmeiser 1982) keeps the t reference valid as `n → ∞`
    /// provided `L` is many integrated autocorrelation times; ⌊√n⌋ batches
    /// ([`LongRunVariance::sqrt_batches`]) make `σ²_∞` consistent instead.
    BatchMeans {
        /// Number of batches `b ≥ 2`.
        batches: usize,
    },
    /// Geyer's initial monotone sequence estimator: `σ²_∞ = −γ₀ + 2 Σ_{m<M} Γ_m` with
    /// `Γ_m = γ_{2m} + γ_{2m+1}` summed while positive and made non-increasing; the
    /// test uses the normal reference. Valid for reversible chains (Geyer 1992).
    /// Costs `O(n · lags)`.
    InitialMonotoneSequence,
    /// The i.i.d. formula `s²/n`. **Wrong for autocorrelated series** (it understates
    /// the error by the factor `√τ`); kept to show what the corrections correct.
    Independent,
}

impl Default for LongRunVariance {
    /// 30 batch means.
    fn default() -> Self {
        LongRunVariance::BatchMeans { batches: 30 }
    }
}

impl LongRunVariance {
    /// Batch means with `⌊√n⌋` batches (at least 2).
    pub fn sqrt_batches(n: usize) -> Self {
        LongRunVariance::BatchMeans {
            batches: ((n as f64).sqrt().floor() as usize).max(2),
        }
    }
}

/// The mean of one long trajectory with an autocorrelation-corrected standard error.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TimeAverageEstimate {
    /// Time average of the values used.
    pub mean: f64,
    /// Standard error `√(σ²_∞ / n)`.
    pub std_error: f64,
    /// Estimated long-run variance `σ²_∞ = lim n Var(x̄_n)`.
    pub long_run_variance: f64,
    /// Sample variance `γ₀` of the values used.
    pub variance: f64,
    /// Effective sample size `n γ₀ / σ²_∞` (`n` divided by the integrated
    /// autocorrelation time).
    pub effective_sample_size: f64,
    /// Number of values used.
    pub n: usize,
    /// Degrees of freedom of the t reference (`∞`: normal).
    pub df: f64,
    /// The estimator.
    pub method: LongRunVariance,
}

impl TimeAverageEstimate {
    /// Two-sided test of "the stationary mean equals `predicted`".
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `alpha ∉ (0, 1)`, [`Error::NonFinite`] for a
    /// non-finite prediction.
    pub fn t_test(&self, predicted: f64, alpha: f64) -> Result<TTest> {
        check_alpha(alpha)?;
        check_finite("predicted", &[predicted])?;
        Ok(t_test(self.mean, self.std_error, predicted, self.df, alpha))
    }

    /// Confidence interval `mean ± q · std_error` with the estimator's reference
    /// distribution (`n` reports the values used).
    pub fn interval(&self, level: f64) -> MeanInterval {
        let q = if self.df.is_finite() {
            StudentsT::new(0.0, 1.0, self.df)
                .map(|t| t.inverse_cdf(0.5 + 0.5 * level))
                .unwrap_or(f64::NAN)
        } else {
            Normal::standard().inverse_cdf(0.5 + 0.5 * level)
        };
        MeanInterval {
            mean: self.mean,
            std_error: self.std_error,
            ci_low: self.mean - q * self.std_error,
            ci_high: self.mean + q * self.std_error,
            level,
            n: self.n as u64,
        }
    }
}

/// Time average of one autocorrelated trajectory (e.g. successive SGD iterates after
/// burn-in) with the standard error of `method`.
///
/// ```text
/// x̄ = (1/n) Σ x_t,   SE = √(σ²_∞ / n),   ESS = n γ₀ / σ²_∞
/// ```
///
/// # Errors
/// [`Error::NonFinite`] for NaN or infinite values; [`Error::InvalidParameter`] for
/// fewer than 4 values, fewer than 2 batches or more batches than values, or a
/// non-positive initial-sequence estimate of a non-constant series.
///
/// ```
/// use noether_sde::analysis::stats::{time_average, LongRunVariance};
/// // batch means 2.5, 6.5, 10.5: s² = 16, SE = √(16/3)
/// let xs: Vec<f64> = (1..=12).map(f64::from).collect();
/// let est = time_average(&xs, LongRunVariance::BatchMeans { batches: 3 })?;
/// assert!((est.mean - 6.5).abs() < 1e-14);
/// assert!((est.std_error - (16.0f64 / 3.0).sqrt()).abs() < 1e-14);
/// # Ok::<(), noether_sde::Error>(())
/// ```
///
/// # References
/// Schmeiser, B. (1982), "Batch size effects in the analysis of simulation output",
/// Operations Research 30, 556–568; Geyer, C. J. (1992), "Practical Markov chain Monte
/// Carlo", Statistical Science 7, 473–483 (initial monotone sequence, §3.3).
pub fn time_average(samples: &[f64], method: LongRunVariance) -> Result<TimeAverageEstimate> {
    check_finite("samples", samples)?;
    let n = samples.len();
    if n < 4 {
        return Err(Error::invalid(
            "samples",
            n,
            "a time average needs at least 4 values",
        ));
    }
    match method {
        LongRunVariance::BatchMeans { batches } => batch_means(samples, batches),
        LongRunVariance::InitialMonotoneSequence => initial_monotone_sequence(samples),
        LongRunVariance::Independent => {
            let w = summarize(samples);
            Ok(TimeAverageEstimate {
                mean: w.mean(),
                std_error: w.std_error(),
                long_run_variance: w.variance(),
                variance: w.variance(),
                effective_sample_size: n as f64,
                n,
                df: (n - 1) as f64,
                method,
            })
        }
    }
}

fn batch_means(samples: &[f64], batches: usize) -> Result<TimeAverageEstimate> {
    let n = samples.len();
    if batches < 2 || batches > n {
        return Err(Error::invalid(
            "batches",
            batches,
            format!("batch means need 2 ≤ batches ≤ n = {n}"),
        ));
    }
    let size = n / batches;
    let used = &samples[n - batches * size..];
    let mut means = Welford::new();
    for batch in used.chunks_exact(size) {
        means.push(batch.iter().sum::<f64>() / size as f64);
    }
    let all = summarize(used);
    let se2 = means.variance() / batches as f64;
    let long_run_variance = size as f64 * means.variance();
    Ok(TimeAverageEstimate {
        mean: all.mean(),
        std_error: se2.sqrt(),
        long_run_variance,
        variance: all.variance(),
        effective_sample_size: effective_size(used.len(), all.variance(), long_run_variance),
        n: used.len(),
        df: (batches - 1) as f64,
        method: LongRunVariance::BatchMeans { batches },
    })
}

fn effective_size(n: usize, variance: f64, long_run_variance: f64) -> f64 {
    if long_run_variance > 0.0 {
        n as f64 * variance / long_run_variance
    } else {
        n as f64
    }
}

fn initial_monotone_sequence(samples: &[f64]) -> Result<TimeAverageEstimate> {
    let n = samples.len();
    let mean = samples.iter().sum::<f64>() / n as f64;
    // Biased autocovariance γ_k = (1/n) Σ_{t<n−k} (x_t − x̄)(x_{t+k} − x̄) (Geyer's choice:
    // it makes the sequence positive definite).
    let gamma = |k: usize| -> f64 {
        samples[..n - k]
            .iter()
            .zip(&samples[k..])
            .map(|(a, b)| (a - mean) * (b - mean))
            .sum::<f64>()
            / n as f64
    };
    let gamma0 = gamma(0);
    let method = LongRunVariance::InitialMonotoneSequence;
    if gamma0 <= 0.0 {
        // a constant series: its mean is known exactly
        return Ok(TimeAverageEstimate {
            mean,
            std_error: 0.0,
            long_run_variance: 0.0,
            variance: 0.0,
            effective_sample_size: n as f64,
            n,
            df: f64::INFINITY,
            method,
        });
    }
    let mut sum = 0.0;
    let mut previous = f64::INFINITY;
    let mut m = 0;
    while 2 * m + 1 < n {
        let pair = gamma(2 * m) + gamma(2 * m + 1);
        if pair <= 0.0 {
            break;
        }
        let pair = pair.min(previous);
        sum += pair;
        previous = pair;
        m += 1;
    }
    let long_run_variance = -gamma0 + 2.0 * sum;
    if long_run_variance <= 0.0 {
        return Err(Error::invalid(
            "samples",
            format!("γ₀ = {gamma0:e}, γ₀ + γ₁ ≤ 0"),
            "the initial monotone sequence estimate of the long-run variance is not positive",
        ));
    }
    let variance = gamma0 * n as f64 / (n - 1) as f64;
    Ok(TimeAverageEstimate {
        mean,
        std_error: (long_run_variance / n as f64).sqrt(),
        long_run_variance,
        variance,
        effective_sample_size: n as f64 * gamma0 / long_run_variance,
        n,
        df: f64::INFINITY,
        method,
    })
}
