//! Least-squares line fits with confidence intervals (for log–log order fits).

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// A fitted slope with its standard error and a two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SlopeFit {
    /// Least-squares slope.
    pub slope: f64,
    /// Least-squares intercept.
    pub intercept: f64,
    /// Standard error of the slope (scatter about the line and, when given, the
    /// uncertainty of each point, combined in quadrature).
    pub std_error: f64,
    /// Lower end of the confidence interval.
    pub ci_low: f64,
    /// Upper end of the confidence interval.
    pub ci_high: f64,
    /// Confidence level of the interval (e.g. 0.95).
    pub level: f64,
    /// Degrees of freedom of the slope's t distribution (`n − 2`; `∞` for two points,
    /// where only the points' own uncertainties enter).
    pub df: f64,
}

impl SlopeFit {
    /// The slope's two-sided interval at `level` (Student's t with [`SlopeFit::df`]
    /// degrees of freedom).
    ///
    /// ```
    /// use noether_sde::analysis::regression::fit_line;
    /// let fit = fit_line(&[0.0, 1.0, 2.0, 3.0], &[0.1, 0.9, 2.1, 2.9], None, 0.95).unwrap();
    /// let [lo, hi] = fit.interval(0.999);
    /// assert!(lo < fit.ci_low && fit.ci_high < hi);
    /// ```
    pub fn interval(&self, level: f64) -> [f64; 2] {
        let p = 0.5 + 0.5 * level;
        let q = if self.df.is_finite() {
            StudentsT::new(0.0, 1.0, self.df).map_or(f64::NAN, |t| t.inverse_cdf(p))
        } else {
            Normal::standard().inverse_cdf(p)
        };
        [self.slope - q * self.std_error, self.slope + q * self.std_error]
    }
}

/// Ordinary least-squares fit of `y = a + b x`, with the slope's confidence interval
/// at `level`.
///
/// The slope's variance combines (i) the residual scatter, `s²/Sxx` with
/// `s² = Σr²/(n − 2)`, and (ii) if `y_std_errors` is given, the propagated uncertainty
/// of each point, `Σ ((x_i − x̄)/Sxx)² σ_i²`. The interval uses Student's t with `n − 2`
/// degrees of freedom (the normal quantile when `n = 2`, where only (ii) is available).
///
/// Returns `None` for fewer than two points, mismatched lengths, or constant `x`.
///
/// ```
/// use noether_sde::analysis::regression::fit_line;
/// let x = [0.0, 1.0, 2.0, 3.0];
/// let y = [1.0, 3.0, 5.0, 7.0];
/// let fit = fit_line(&x, &y, None, 0.95).unwrap();
/// assert!((fit.slope - 2.0).abs() < 1e-12 && (fit.intercept - 1.0).abs() < 1e-12);
/// ```
pub fn fit_line(x: &[f64], y: &[f64], y_std_errors: Option<&[f64]>, level: f64) -> Option<SlopeFit> {
    let n = x.len();
    if n < 2 || y.len() != n || y_std_errors.is_some_and(|s| s.len() != n) {
        return None;
    }
    let nf = n as f64;
    let mx = x.iter().sum::<f64>() / nf;
    let my = y.iter().sum::<f64>() / nf;
    let sxx: f64 = x.iter().map(|xi| (xi - mx).powi(2)).sum();
    if sxx.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(xi, yi)| (xi - mx) * (yi - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let mut var = 0.0;
    if n > 2 {
        let rss: f64 = x
            .iter()
            .zip(y)
            .map(|(xi, yi)| (yi - intercept - slope * xi).powi(2))
            .sum();
        var += rss / (nf - 2.0) / sxx;
    }
    if let Some(se) = y_std_errors {
        var += x
            .iter()
            .zip(se)
            .map(|(xi, si)| ((xi - mx) / sxx).powi(2) * si * si)
            .sum::<f64>();
    }
    let std_error = var.sqrt();
    let p = 0.5 + 0.5 * level;
    let q = if n > 2 {
        StudentsT::new(0.0, 1.0, nf - 2.0).ok()?.inverse_cdf(p)
    } else {
        Normal::standard().inverse_cdf(p)
    };
    Some(SlopeFit {
        slope,
        intercept,
        std_error,
        ci_low: slope - q * std_error,
        ci_high: slope + q * std_error,
        level,
        df: if n > 2 { nf - 2.0 } else { f64::INFINITY },
    })
}
