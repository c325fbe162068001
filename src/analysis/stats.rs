//! Statistics with stated confidence levels, on top of statrs' distributions.
//!
//! - [`MeanInterval`]: Student-t confidence interval of an ensemble mean.
//! - [`one_sample_t`]: "the ensemble's observable equals the predicted fixed point".
//! - [`welch_t`]: "SGD and its SDE have the same mean at time t" (Welch–Satterthwaite df).
//! - [`ks_two_sample`]: "SGD and its SDE have the same distribution at time t".
//! - [`time_average`]: the mean of one long autocorrelated trajectory with a
//!   [`LongRunVariance`]-corrected standard error and effective sample size.
//! - [`convergence_time`]: the first recorded time after which the fixed-point test stops
//!   rejecting for good.
//! - [`calibrate_fixed_point_test`]: the tests' own calibration, by simulation under a
//!   true null (rejection rate against its binomial interval) and under an offset (power).
//!
//! Every test reports its statistic, p-value, the α it was run at and whether it
//! rejects. What statrs lacks is written here, each piece with a reference-value test in
//! `tests/it/stats.rs`: the Kolmogorov distribution ([`kolmogorov_survival`]), the
//! Welch–Satterthwaite degrees of freedom, batch means and Geyer's initial monotone
//! sequence estimator.

use crate::brownian::IncrementStream;
use crate::error::{check_finite, Error, Result};
use crate::observe::{Flow, Observer, Welford};
use crate::rng::{SeedTree, Stream};
use crate::scheme::{integrate, EulerMaruyama, TimeSpan};
use crate::sde::reference::OrnsteinUhlenbeck;
use nalgebra::DVector;
use rand::RngExt;
use rand_distr::StandardNormal;
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal, StudentsT};

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
    /// With fewer than two samples the interval is `(−∞, ∞)`; with `level` outside
    /// `(0, 1)` its ends are NaN (use [`MeanInterval::from_moments`] to have it refused).
    pub fn from_welford(w: &Welford, level: f64) -> Self {
        Self::interval(w.mean(), w.std_error(), w.count(), level)
    }

    /// From a mean, its standard error `s/√n` and the sample count `n`:
    /// `mean ± t_{(1+level)/2, n−1} · se` (the interval is `(−∞, ∞)` for `n < 2`).
    ///
    /// # Errors
    /// [`crate::Error::InvalidParameter`] unless `0 < level < 1`.
    ///
    /// ```
    /// use noether_sde::analysis::stats::MeanInterval;
    /// assert!(MeanInterval::from_moments(1.0, 0.1, 10, 1.5).is_err());
    /// assert!(MeanInterval::from_moments(1.0, 0.1, 10, 0.95)?.contains(1.0));
    /// # Ok::<(), noether_sde::Error>(())
    /// ```
    pub fn from_moments(mean: f64, std_error: f64, n: u64, level: f64) -> crate::Result<Self> {
        if !(level > 0.0 && level < 1.0) {
            return Err(crate::Error::invalid(
                "level",
                level,
                "a confidence level must lie in (0, 1)",
            ));
        }
        Ok(Self::interval(mean, std_error, n, level))
    }

    /// The interval, never panicking (NaN ends for a level outside `(0, 1)`).
    fn interval(mean: f64, std_error: f64, n: u64, level: f64) -> Self {
        if !(level > 0.0 && level < 1.0) {
            return MeanInterval {
                mean,
                std_error,
                ci_low: f64::NAN,
                ci_high: f64::NAN,
                level,
                n,
            };
        }
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
        let p = 0.5 + 0.5 * level;
        let dof = (n - 1) as f64;
        let q = if p >= 1.0 {
            f64::INFINITY
        } else if dof > 1e6 {
            // t_{p, ν} = z_p (1 + O(1/ν)): past 10⁶ degrees of freedom the normal quantile
            // (closed form) replaces statrs' iterative t quantile, which can stall there
            Normal::new(0.0, 1.0).map_or(f64::INFINITY, |z| z.inverse_cdf(p))
        } else {
            StudentsT::new(0.0, 1.0, dof)
                .map(|t| t.inverse_cdf(p))
                .unwrap_or(f64::INFINITY)
        };
        MeanInterval {
            mean,
            std_error,
            ci_low: mean - q * std_error,
            ci_high: mean + q * std_error,
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
        Self::from_welford(&summarize(samples), level)
    }

    /// Whether `value` lies in the interval.
    pub fn contains(&self, value: f64) -> bool {
        self.ci_low <= value && value <= self.ci_high
    }
}

/// The Welford summary (count, mean, variance) of `samples`.
pub fn summarize(samples: &[f64]) -> Welford {
    let mut w = Welford::new();
    samples.iter().for_each(|&x| w.push(x));
    w
}

/// Outcome of a two-sided t test of `H₀: E[estimate] = null`.
///
/// ```text
/// statistic = (estimate − null) / std_error,   p = 2 P(T_df > |statistic|)
/// ```
///
/// `df = ∞` means the reference distribution is the standard normal.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TTest {
    /// The estimate (a mean, or a difference of means).
    pub estimate: f64,
    /// Its standard error.
    pub std_error: f64,
    /// The value under the null hypothesis.
    pub null: f64,
    /// `t = (estimate − null) / std_error`.
    pub statistic: f64,
    /// Degrees of freedom of the reference t distribution (`∞`: normal).
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Level the test was run at.
    pub alpha: f64,
    /// Whether `p_value < alpha`.
    pub rejects: bool,
}

fn check_alpha(alpha: f64) -> Result<()> {
    if alpha.is_finite() && alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(Error::invalid("alpha", alpha, "the level must lie in (0, 1)"))
    }
}

/// `P(|T_df| > |t|)`: Student t for finite `df`, standard normal for `df = ∞`.
fn two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    let a = t.abs();
    let tail = if df.is_finite() {
        StudentsT::new(0.0, 1.0, df).map(|d| d.sf(a)).unwrap_or(f64::NAN)
    } else {
        Normal::standard().sf(a)
    };
    (2.0 * tail).min(1.0)
}

/// A two-sided t test from an estimate and its standard error. A zero standard error
/// gives `t = 0` (p = 1) if the estimate equals the null, and `t = ±∞` (p = 0) otherwise.
fn t_test(estimate: f64, std_error: f64, null: f64, df: f64, alpha: f64) -> TTest {
    let diff = estimate - null;
    let statistic = if std_error > 0.0 {
        diff / std_error
    } else if diff.abs() > 0.0 {
        diff.signum() * f64::INFINITY
    } else {
        0.0
    };
    let p_value = two_sided_p(statistic, df);
    TTest {
        estimate,
        std_error,
        null,
        statistic,
        df,
        p_value,
        alpha,
        rejects: p_value < alpha,
    }
}

/// One-sample two-sided t test of "the ensemble mean equals `predicted`".
///
/// ```text
/// t = (x̄ − predicted) / (s/√n),   df = n − 1
/// ```
///
/// The samples must be independent (one value per path of an ensemble); for one long
/// trajectory use [`time_average`] and [`TimeAverageEstimate::t_test`].
///
/// # Errors
/// [`Error::InvalidParameter`] for fewer than two samples, a non-finite summary or
/// prediction, or `alpha ∉ (0, 1)`.
///
/// ```
/// use noether_sde::analysis::stats::{one_sample_t, summarize};
/// // R: t.test(c(0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0))
/// //    t = 1.3257, df = 9, p-value = 0.2176
/// let w = summarize(&[0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]);
/// let test = one_sample_t(&w, 0.0, 0.05)?;
/// assert!((test.statistic - 1.3257).abs() < 5e-5);
/// assert!((test.p_value - 0.2176).abs() < 5e-5);
/// assert!(!test.rejects);
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub fn one_sample_t(summary: &Welford, predicted: f64, alpha: f64) -> Result<TTest> {
    check_alpha(alpha)?;
    check_summary("summary", summary)?;
    check_finite("predicted", &[predicted])?;
    let n = summary.count();
    Ok(t_test(
        summary.mean(),
        summary.std_error(),
        predicted,
        (n - 1) as f64,
        alpha,
    ))
}

fn check_summary(what: &'static str, w: &Welford) -> Result<()> {
    if w.count() < 2 {
        return Err(Error::invalid(
            what,
            w.count(),
            "a t test needs at least two samples",
        ));
    }
    check_finite(what, &[w.mean(), w.variance()])
}

/// Welch–Satterthwaite degrees of freedom of the difference of two means.
///
/// ```text
/// ν = (s₁²/n₁ + s₂²/n₂)² / [ (s₁²/n₁)²/(n₁ − 1) + (s₂²/n₂)²/(n₂ − 1) ]
/// ```
///
/// Both variances zero: `ν = n₁ + n₂ − 2` (the test is then degenerate anyway).
///
/// # References
/// Welch, B. L. (1947), Biometrika 34, 28–35; Satterthwaite, F. E. (1946), Biometrics
/// Bulletin 2, 110–114.
pub fn welch_satterthwaite_df(a: &Welford, b: &Welford) -> f64 {
    let (na, nb) = (a.count() as f64, b.count() as f64);
    let (va, vb) = (a.variance() / na, b.variance() / nb);
    let denominator = va * va / (na - 1.0) + vb * vb / (nb - 1.0);
    if denominator > 0.0 {
        (va + vb) * (va + vb) / denominator
    } else {
        na + nb - 2.0
    }
}

/// Welch's two-sample two-sided t test of "the two populations have the same mean"
/// (e.g. SGD and its SDE at time t); the variances may differ.
///
/// ```text
/// t = (x̄₁ − x̄₂) / √(s₁²/n₁ + s₂²/n₂),   df = welch_satterthwaite_df
/// ```
///
/// # Errors
/// [`Error::InvalidParameter`] for fewer than two samples in either summary, a
/// non-finite summary, or `alpha ∉ (0, 1)`.
///
/// ```
/// use noether_sde::analysis::stats::{summarize, welch_t};
/// // R: t.test(extra ~ group, data = sleep)   (the example of R's ?t.test)
/// //    t = -1.8608, df = 17.776, p-value = 0.07939
/// let g1 = summarize(&[0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]);
/// let g2 = summarize(&[1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]);
/// let test = welch_t(&g1, &g2, 0.05)?;
/// assert!((test.statistic + 1.8608).abs() < 5e-5);
/// assert!((test.df - 17.776).abs() < 5e-4);
/// assert!((test.p_value - 0.07939).abs() < 5e-6);
/// # Ok::<(), noether_sde::Error>(())
/// ```
///
/// # References
/// Welch, B. L. (1947), "The generalization of 'Student's' problem when several different
/// population variances are involved", Biometrika 34, 28–35.
pub fn welch_t(a: &Welford, b: &Welford, alpha: f64) -> Result<TTest> {
    check_alpha(alpha)?;
    check_summary("first sample", a)?;
    check_summary("second sample", b)?;
    let se = (a.variance() / a.count() as f64 + b.variance() / b.count() as f64).sqrt();
    let df = welch_satterthwaite_df(a, b);
    Ok(t_test(a.mean() - b.mean(), se, 0.0, df, alpha))
}

/// `Q_KS(λ) = P(K > λ)` for the Kolmogorov distribution (the limit law of `√n D_n`).
///
/// ```text
/// Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} exp(−2 j² λ²)                       (λ ≥ 1.18)
///         = 1 − (√(2π)/λ) Σ_{j≥1} exp(−(2j − 1)² π² / (8 λ²))        (λ < 1.18)
/// ```
///
/// Both series converge fast on their range (to full double precision within 6 terms).
///
/// ```
/// use noether_sde::analysis::stats::kolmogorov_survival;
/// // SciPy: scipy.special.kolmogorov(1.0) = 0.26999967167735456
/// assert!((kolmogorov_survival(1.0) - 0.26999967167735456).abs() < 1e-14);
/// ```
///
/// # References
/// Kolmogorov, A. N. (1933), Giornale dell'Istituto Italiano degli Attuari 4, 83–91;
/// Marsaglia, Tsang & Wang (2003), "Evaluating Kolmogorov's distribution", J. Stat. Softw. 8(18).
pub fn kolmogorov_survival(lambda: f64) -> f64 {
    if lambda.is_nan() {
        return f64::NAN;
    }
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.18 {
        let pi = std::f64::consts::PI;
        let c = -pi * pi / (8.0 * lambda * lambda);
        let mut sum = 0.0;
        for j in 1..=8 {
            let k = (2 * j - 1) as f64;
            let term = (c * k * k).exp();
            sum += term;
            if term < 1e-17 * sum {
                break;
            }
        }
        (1.0 - (2.0 * pi).sqrt() / lambda * sum).clamp(0.0, 1.0)
    } else {
        let mut sum = 0.0;
        let mut sign = 1.0;
        for j in 1..=8 {
            let jf = j as f64;
            let term = (-2.0 * jf * jf * lambda * lambda).exp();
            sum += sign * term;
            if term < 1e-17 * sum.abs() {
                break;
            }
            sign = -sign;
        }
        (2.0 * sum).clamp(0.0, 1.0)
    }
}

/// Outcome of a two-sample Kolmogorov–Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct KsTest {
    /// `D = sup_x |F₁(x) − F₂(x)|` (exact, ties handled).
    pub statistic: f64,
    /// Asymptotic p-value with Stephens' small-sample correction (see [`ks_two_sample`]).
    pub p_value: f64,
    /// Level the test was run at.
    pub alpha: f64,
    /// Whether `p_value < alpha`.
    pub rejects: bool,
    /// Size of the first sample.
    pub n1: usize,
    /// Size of the second sample.
    pub n2: usize,
}

/// Two-sample Kolmogorov–Smirnov test of "the two samples come from the same
/// continuous distribution" (e.g. SGD and its SDE at time t).
///
/// ```text
/// D = sup_x |F₁(x) − F₂(x)|,   n_e = n₁n₂/(n₁ + n₂),
/// p = Q_KS((√n_e + 0.12 + 0.11/√n_e) D)
/// ```
///
/// The statistic is exact (computed on the merged order statistics, ties counted
/// together); the p-value is the asymptotic Kolmogorov distribution
/// ([`kolmogorov_survival`]) with Stephens' correction of the argument, "already quite
/// good for `n_e ≥ 4`" (Numerical Recipes, `kstwo`); `tests/it/stats.rs` checks its
/// rejection rate at `n₁ = n₂ = 50`. For tied data the test is conservative.
///
/// # Errors
/// [`Error::InvalidParameter`] for an empty sample or `alpha ∉ (0, 1)`,
/// [`Error::NonFinite`] for NaN or infinite samples.
///
/// ```
/// use noether_sde::analysis::stats::ks_two_sample;
/// let ks = ks_two_sample(&[0.1, 0.4, 0.7], &[0.2, 0.3, 0.5, 0.6, 0.8], 0.05)?;
/// // F₁ − F₂ at 0.1, 0.2, 0.3, 0.4, …: 1/3, 1/3 − 1/5, 1/3 − 2/5, 2/3 − 2/5, …
/// assert!((ks.statistic - 1.0 / 3.0).abs() < 1e-15);
/// assert!(!ks.rejects);
/// # Ok::<(), noether_sde::Error>(())
/// ```
///
/// # References
/// Stephens, M. A. (1970), "Use of the Kolmogorov–Smirnov, Cramér–von Mises and related
/// statistics without extensive tables", JRSS B 32, 115–122; Press et al., Numerical
/// Recipes (3rd ed., 2007), §14.3.3.
pub fn ks_two_sample(a: &[f64], b: &[f64], alpha: f64) -> Result<KsTest> {
    check_alpha(alpha)?;
    if a.is_empty() || b.is_empty() {
        return Err(Error::invalid(
            "samples",
            format!("sizes {} and {}", a.len(), b.len()),
            "both samples must be non-empty",
        ));
    }
    check_finite("first sample", a)?;
    check_finite("second sample", b)?;
    let mut x = a.to_vec();
    let mut y = b.to_vec();
    x.sort_by(f64::total_cmp);
    y.sort_by(f64::total_cmp);
    let (n1, n2) = (x.len(), y.len());
    let (mut i, mut j) = (0, 0);
    let mut d: f64 = 0.0;
    while i < n1 && j < n2 {
        let z = x[i].min(y[j]);
        while i < n1 && x[i] <= z {
            i += 1;
        }
        while j < n2 && y[j] <= z {
            j += 1;
        }
        d = d.max((i as f64 / n1 as f64 - j as f64 / n2 as f64).abs());
    }
    let ne = (n1 as f64 * n2 as f64) / (n1 + n2) as f64;
    let root = ne.sqrt();
    let p_value = kolmogorov_survival((root + 0.12 + 0.11 / root) * d);
    Ok(KsTest {
        statistic: d,
        p_value,
        alpha,
        rejects: p_value < alpha,
        n1,
        n2,
    })
}

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

/// When an ensemble statistic settled at its prediction.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConvergenceTime {
    /// The first recorded time from which on the test never rejects (`None`: the last
    /// recorded time still rejects).
    pub time: Option<f64>,
    /// Its index in the recorded times.
    pub index: Option<usize>,
    /// Level of each test.
    pub alpha: f64,
    /// The one-sample test at every recorded time.
    pub tests: Vec<TTest>,
}

/// The first recorded time after which the one-sample test of "the ensemble mean equals
/// `predicted`" at level `alpha` stops rejecting and never rejects again.
///
/// ```text
/// index = min { i : no test at times t_j, j ≥ i, rejects }
/// ```
///
/// With `K` recorded times after the true convergence, false alarms alone reject
/// somewhere with probability `1 − (1 − α)^K` (more with correlated times), pushing the
/// estimate late; pass `α/K` (Bonferroni) for a family-wise level `α`.
///
/// # Errors
/// [`Error::DimensionMismatch`] if `times` and `stats` differ in length,
/// [`Error::InvalidParameter`] for no times, unsorted times or a summary with fewer
/// than two samples, as [`one_sample_t`] otherwise.
///
/// # Example
/// ```
/// use noether_sde::analysis::stats::{convergence_time, summarize};
/// let stats = [summarize(&[5.0, 5.1, 4.9]), summarize(&[1.0, 1.2, 0.9]), summarize(&[0.1, -0.1, 0.05])];
/// let c = convergence_time(&[0.0, 1.0, 2.0], &stats, 0.0, 0.05)?;
/// assert_eq!(c.index, Some(2));
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub fn convergence_time(
    times: &[f64],
    stats: &[Welford],
    predicted: f64,
    alpha: f64,
) -> Result<ConvergenceTime> {
    if times.len() != stats.len() {
        return Err(Error::DimensionMismatch {
            what: "statistics per recorded time",
            expected: times.len(),
            got: stats.len(),
        });
    }
    if times.is_empty() {
        return Err(Error::invalid("times", 0, "at least one recorded time is needed"));
    }
    check_finite("times", times)?;
    if times.windows(2).any(|w| w[1] < w[0]) {
        return Err(Error::invalid("times", "sequence", "must be sorted ascending"));
    }
    let tests = stats
        .iter()
        .map(|w| one_sample_t(w, predicted, alpha))
        .collect::<Result<Vec<_>>>()?;
    let index = match tests.iter().rposition(|t| t.rejects) {
        None => Some(0),
        Some(last) if last + 1 < tests.len() => Some(last + 1),
        Some(_) => None,
    };
    Ok(ConvergenceTime {
        time: index.map(|i| times[i]),
        index,
        alpha,
        tests,
    })
}

/// The central interval of rejection *rates* `[k_lo/n, k_hi/n]` that holds at least a
/// fraction `level` of a Binomial(`repetitions`, `p`) count:
///
/// ```text
/// k_lo = min{k : F(k) > (1 − level)/2},   k_hi = min{k : F(k) ≥ (1 + level)/2}
/// ```
///
/// so that `P(X < k_lo) ≤ (1 − level)/2` and `P(X > k_hi) ≤ (1 − level)/2`.
///
/// # Errors
/// [`Error::InvalidParameter`] for `p ∉ [0, 1]`, `level ∉ (0, 1)` or no repetitions.
///
/// ```
/// use noether_sde::analysis::stats::binomial_interval;
/// let [lo, hi] = binomial_interval(0.05, 400, 0.99)?;
/// assert!(lo < 0.05 && 0.05 < hi && hi < 0.1);
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub fn binomial_interval(p: f64, repetitions: usize, level: f64) -> Result<[f64; 2]> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid("p", p, "must lie in [0, 1]"));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::invalid("level", level, "must lie in (0, 1)"));
    }
    if repetitions == 0 {
        return Err(Error::invalid("repetitions", 0, "must be > 0"));
    }
    let n = repetitions as u64;
    let binomial = Binomial::new(p, n).map_err(|e| Error::invalid("p", p, e.to_string()))?;
    let tail = 0.5 * (1.0 - level);
    let mut k_lo = 0;
    while k_lo < n && binomial.cdf(k_lo) <= tail {
        k_lo += 1;
    }
    let mut k_hi = k_lo;
    while k_hi < n && binomial.cdf(k_hi) < 1.0 - tail {
        k_hi += 1;
    }
    Ok([k_lo as f64 / n as f64, k_hi as f64 / n as f64])
}

/// What each repetition of a calibration simulates and tests (THEORY §4: the
/// fixed-point test, here on a process whose answer is known exactly).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum CalibrationDesign {
    /// `paths` independent Euler–Maruyama paths of the OU process from `x0` to `t_end`;
    /// [`one_sample_t`] on the end values against the exact mean of the discretisation,
    /// `μ + (x0 − μ) Π_k (1 − θ h_k)`.
    Ensemble {
        /// Paths per repetition (≥ 2).
        paths: usize,
        /// End time.
        t_end: f64,
    },
    /// One Euler–Maruyama path of `steps` steps started from the discretisation's exact
    /// stationary law `N(μ, σ²/(θ(2 − θh)))`; [`time_average`] of its `steps + 1` values
    /// with `method`, tested against `μ`.
    TimeAverage {
        /// Steps per repetition.
        steps: usize,
        /// Standard-error estimator.
        method: LongRunVariance,
    },
}

/// Configuration of [`calibrate_fixed_point_test`]: the OU process
/// `dX = θ(μ − X) dt + σ dW`, its Euler–Maruyama step, the design, and the test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FixedPointCalibration {
    /// Mean-reversion rate `θ > 0`.
    pub theta: f64,
    /// Long-run mean `μ`.
    pub mu: f64,
    /// Volatility `σ`.
    pub sigma: f64,
    /// Euler–Maruyama step `h` (`θh < 2` for a stationary discretisation).
    pub h: f64,
    /// Initial state of the [`CalibrationDesign::Ensemble`] paths.
    pub x0: f64,
    /// What each repetition simulates.
    pub design: CalibrationDesign,
    /// Level of each test.
    pub alpha: f64,
    /// Number of independent repetitions.
    pub repetitions: usize,
    /// Level of the exact binomial interval of the null rejection rate that
    /// [`Calibration::calibrated`] checks (default 0.9999: a calibrated test is declared
    /// miscalibrated with probability ≤ 1e-4).
    pub level: f64,
    /// The power is the rejection rate of the test against `prediction + offset`.
    pub offset: f64,
    /// Master seed: repetition `r` uses paths `r · paths + j` (ensemble) or `r`
    /// (time average) of `SeedTree::new(seed)`.
    pub seed: u64,
}

impl FixedPointCalibration {
    /// The ensemble design: θ = 1, μ = 0.5, σ = 1, h = 0.05, x0 = 2, α = 0.05, 2000
    /// repetitions checked at level 0.9999 (null-rate interval ≈ [0.031, 0.070]), offset
    /// 0.5 (about 3 standard errors at 16 paths, `t_end = 1`).
    pub fn ensemble(paths: usize, t_end: f64) -> Self {
        FixedPointCalibration {
            theta: 1.0,
            mu: 0.5,
            sigma: 1.0,
            h: 0.05,
            x0: 2.0,
            design: CalibrationDesign::Ensemble { paths, t_end },
            alpha: 0.05,
            repetitions: 2000,
            level: 0.9999,
            offset: 0.5,
            seed: 2024,
        }
    }

    /// The single-trajectory design: θ = 1, μ = 0.5, σ = 1, h = 0.05 (lag-one
    /// autocorrelation 0.95, integrated autocorrelation time 39 steps), α = 0.05, 2000
    /// repetitions at level 0.9999, offset 0.1 (about 3 standard errors at 20 000 steps).
    pub fn time_average(steps: usize, method: LongRunVariance) -> Self {
        FixedPointCalibration {
            design: CalibrationDesign::TimeAverage { steps, method },
            offset: 0.1,
            ..Self::ensemble(2, 1.0)
        }
    }

    /// The exact stationary variance of the Euler–Maruyama discretisation,
    /// `σ²/(θ(2 − θh))`.
    pub fn stationary_variance(&self) -> f64 {
        self.sigma * self.sigma / (self.theta * (2.0 - self.theta * self.h))
    }

    fn validate(&self) -> Result<OrnsteinUhlenbeck> {
        check_alpha(self.alpha)?;
        check_finite("offset", &[self.offset])?;
        check_finite("x0", &[self.x0])?;
        if self.repetitions == 0 {
            return Err(Error::invalid("repetitions", 0, "must be > 0"));
        }
        if !(self.h.is_finite() && self.h > 0.0 && self.theta * self.h < 2.0) {
            return Err(Error::invalid(
                "h",
                self.h,
                "the step must be > 0 with θh < 2 (a stationary discretisation)",
            ));
        }
        match self.design {
            CalibrationDesign::Ensemble { paths, t_end } => {
                if paths < 2 {
                    return Err(Error::invalid(
                        "paths",
                        paths,
                        "a t test needs at least two paths",
                    ));
                }
                TimeSpan::new(0.0, t_end, self.h)?;
            }
            CalibrationDesign::TimeAverage { steps, .. } => {
                if steps < 3 {
                    return Err(Error::invalid("steps", steps, "need at least 3 steps"));
                }
            }
        }
        OrnsteinUhlenbeck::new(self.theta, self.mu, self.sigma)
    }
}

/// Rejection rates of the fixed-point test under a true null and under an offset.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Calibration {
    /// Level of each test.
    pub alpha: f64,
    /// Number of repetitions.
    pub repetitions: usize,
    /// Repetitions that rejected the true prediction.
    pub null_rejections: usize,
    /// `null_rejections / repetitions`.
    pub null_rejection_rate: f64,
    /// Central binomial interval, at [`FixedPointCalibration::level`], of the rejection
    /// rate of an exact level-α test ([`binomial_interval`]).
    pub null_rejection_ci: [f64; 2],
    /// Whether the null rejection rate lies in `null_rejection_ci`.
    pub calibrated: bool,
    /// Rejection rate against `prediction + offset`.
    pub power: f64,
    /// The offset.
    pub offset: f64,
    /// Mean standard error of the tested estimate over repetitions (puts the offset in
    /// units: `offset / mean_std_error` is roughly the non-centrality).
    pub mean_std_error: f64,
}

/// Collects the first component of every observed state into a buffer.
struct Trajectory<'a>(&'a mut Vec<f64>);

impl Observer for Trajectory<'_> {
    fn observe(&mut self, _step: usize, _t: f64, x: &DVector<f64>) -> Flow {
        self.0.push(x[0]);
        Flow::Continue
    }
}

/// Calibrates the fixed-point test by simulation: `repetitions` independent runs of the
/// design under a true null give the rejection rate at `alpha`, to be compared with the
/// binomial 99% interval around `alpha`; testing the same runs against
/// `prediction + offset` gives the power.
///
/// # Errors
/// [`Error::InvalidParameter`] for an invalid configuration; errors of the solves or
/// the tests are passed on.
///
/// ```
/// use noether_sde::analysis::stats::{calibrate_fixed_point_test, FixedPointCalibration};
/// let mut config = FixedPointCalibration::ensemble(8, 0.5);
/// config.repetitions = 50;
/// let cal = calibrate_fixed_point_test(&config)?;
/// assert_eq!(cal.repetitions, 50);
/// assert!(cal.power > cal.null_rejection_rate);
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub fn calibrate_fixed_point_test(config: &FixedPointCalibration) -> Result<Calibration> {
    let ou = config.validate()?;
    let seeds = SeedTree::new(config.seed);
    let mut scheme = EulerMaruyama::new();
    let mut null_rejections = 0usize;
    let mut offset_rejections = 0usize;
    let mut se_sum = 0.0;
    let mut x0 = DVector::from_element(1, config.x0);
    match config.design {
        CalibrationDesign::Ensemble { paths, t_end } => {
            let span = TimeSpan::new(0.0, t_end, config.h)?;
            let decay: f64 = (0..span.steps())
                .map(|k| 1.0 - config.theta * span.step_size(k))
                .product();
            let predicted = config.mu + (config.x0 - config.mu) * decay;
            for r in 0..config.repetitions {
                let mut w = Welford::new();
                for j in 0..paths {
                    let index = (r * paths + j) as u64;
                    let mut path = IncrementStream::new(&seeds, index, 1);
                    let x = integrate(&ou, &mut scheme, &x0, &span, &mut path, index, &mut ())?;
                    w.push(x[0]);
                }
                let null = one_sample_t(&w, predicted, config.alpha)?;
                let shifted = one_sample_t(&w, predicted + config.offset, config.alpha)?;
                null_rejections += usize::from(null.rejects);
                offset_rejections += usize::from(shifted.rejects);
                se_sum += null.std_error;
            }
        }
        CalibrationDesign::TimeAverage { steps, method } => {
            let span = TimeSpan::new(0.0, steps as f64 * config.h, config.h)?;
            let sd = config.stationary_variance().sqrt();
            let mut values = Vec::with_capacity(span.steps() + 1);
            for r in 0..config.repetitions {
                let index = r as u64;
                let z: f64 = seeds.rng(index, Stream::Init).sample(StandardNormal);
                x0[0] = config.mu + sd * z;
                values.clear();
                let mut path = IncrementStream::new(&seeds, index, 1);
                integrate(
                    &ou,
                    &mut scheme,
                    &x0,
                    &span,
                    &mut path,
                    index,
                    &mut Trajectory(&mut values),
                )?;
                let estimate = time_average(&values, method)?;
                let null = estimate.t_test(config.mu, config.alpha)?;
                let shifted = estimate.t_test(config.mu + config.offset, config.alpha)?;
                null_rejections += usize::from(null.rejects);
                offset_rejections += usize::from(shifted.rejects);
                se_sum += null.std_error;
            }
        }
    }
    let reps = config.repetitions as f64;
    let null_rejection_rate = null_rejections as f64 / reps;
    let null_rejection_ci = binomial_interval(config.alpha, config.repetitions, config.level)?;
    Ok(Calibration {
        alpha: config.alpha,
        repetitions: config.repetitions,
        null_rejections,
        null_rejection_rate,
        null_rejection_ci,
        calibrated: null_rejection_ci[0] <= null_rejection_rate
            && null_rejection_rate <= null_rejection_ci[1],
        power: offset_rejections as f64 / reps,
        offset: config.offset,
        mean_std_error: se_sum / reps,
    })
}
