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
//!
//! The module is split by purpose: this file holds the intervals and the tests,
//! `time_average.rs` the autocorrelated-series estimators and `calibration.rs` the
//! convergence time and the tests' own calibration by simulation.

mod calibration;
mod time_average;

pub use calibration::*;
pub use time_average::*;

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
