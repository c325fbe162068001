//! Shared tolerances and assertion helpers. Every Monte Carlo bound is a number of
//! standard errors; every deterministic bound is a rounding or discretisation bound.

/// `|z| < 4`: two-sided false-alarm probability 6.3e-5 per assertion.
pub const Z_4: f64 = 4.0;

/// Rounding tolerance for identities evaluated in a few dozen flops on O(1) numbers.
pub const ROUNDING: f64 = 1e-12;

/// Central-difference derivative tolerance (step ∛ε, error O(step²) ≈ 4e-11, times O(1)
/// third derivatives and the cancellation error ε/step ≈ 4e-11).
pub const FINITE_DIFFERENCE: f64 = 1e-8;

/// Asserts `|estimate − exact| ≤ z · se` and says how many standard errors it was off.
#[macro_export]
macro_rules! assert_within_se {
    ($estimate:expr, $exact:expr, $se:expr, $z:expr) => {{
        let (e, x, s, z): (f64, f64, f64, f64) = ($estimate, $exact, $se, $z);
        assert!(
            s.is_finite() && s > 0.0,
            "standard error must be positive, got {s}"
        );
        assert!(
            (e - x).abs() <= z * s,
            "{} = {e} differs from {x} by {:.2} standard errors (se = {s}; bound {z})",
            stringify!($estimate),
            (e - x).abs() / s
        );
    }};
}

/// Asserts the estimate is *not* within `z` standard errors (a wrong formula is rejected).
#[macro_export]
macro_rules! assert_rejects {
    ($estimate:expr, $wrong:expr, $se:expr, $z:expr) => {{
        let (e, x, s, z): (f64, f64, f64, f64) = ($estimate, $wrong, $se, $z);
        assert!(
            (e - x).abs() > z * s,
            "the test cannot tell {} = {e} from the wrong value {x} (se = {s})",
            stringify!($estimate)
        );
    }};
}

/// Sample mean, unbiased variance, standard error of the mean and standard error of
/// the variance (`sqrt((m4 − s⁴(n−3)/(n−1))/n)`, the usual large-sample formula).
pub fn moments(xs: &[f64]) -> (f64, f64, f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let m4 = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
    let se_mean = (var / n).sqrt();
    let se_var = ((m4 - var * var * (n - 3.0) / (n - 1.0)) / n).sqrt();
    (mean, var, se_mean, se_var)
}
