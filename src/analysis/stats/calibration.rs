//! When a fixed-point test stops rejecting for good ([`convergence_time`]), and the
//! calibration of the fixed-point test by simulation under a true null and under an
//! offset ([`calibrate_fixed_point_test`]).

use super::*;

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
