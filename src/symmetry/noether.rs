//! The Noether flow of a charge under SGD and its SDE (THEORY §3–§5).
//!
//! ```text
//! SDE:       dC/dt = −4γC + η c_B Tr[AΣ(θ)]                  (no dW term)
//! SGD:       C_{k+1} = (1 − 2ηγ)² C_k + η² ĝ_kᵀ A ĝ_k          (exact, under the symmetry)
//!            E[ĝᵀAĝ] = ∇LᵀA∇L + c_B Tr[AΣ]
//! fixed point on the orbit θ_λ = e^{λA}θ:   4γ C(θ_λ) = η c_B Tr[AΣ(θ_λ)]
//! slow rate  κ = 4γ + η c_B Tr[AΣ*A] / ‖Aθ*‖²
//! ```
//!
//! `Tr[AΣ]` comes from the SDE's per-sample factor without forming Σ
//! ([`SgdSde::trace_noise`]). The fixed point is found by bracketing and bisection on
//! the rate evaluated directly at `θ_λ`: for an exact symmetry the rate is strictly
//! decreasing in `λ` (THEORY §4), so the root is unique; for an approximate symmetry
//! (THEORY §7) the same search gives the balance point of the noise along the orbit.

use super::ExponentialSymmetry;
use crate::error::{check_finite, check_positive, check_vector, Error, Result};
use crate::sgd::{Model, SgdSde};
use nalgebra::DVector;

/// The SDE's charge rate `dC/dt = −4γC + η(t) c_B Tr[AΣ(θ)]` at `θ`, time `t`.
pub fn charge_rate<M: Model>(
    sym: &ExponentialSymmetry,
    sde: &SgdSde<'_, M>,
    theta: &DVector<f64>,
    t: f64,
) -> f64 {
    let cfg = sde.config();
    let eta = cfg.schedule.eta(t);
    -4.0 * cfg.weight_decay * sym.charge(theta)
        + eta * sde.covariance_factor() * sde.trace_noise(sym.generator(), theta)
}

/// The exact charge after one SGD step, `(1 − 2ηγ)² C + η² ĝᵀAĝ` (THEORY §3), given the
/// mini-batch gradient `ĝ` that was used.
pub fn discrete_charge_update(
    sym: &ExponentialSymmetry,
    theta: &DVector<f64>,
    g_hat: &DVector<f64>,
    eta: f64,
    gamma: f64,
) -> f64 {
    let c = 1.0 - 2.0 * eta * gamma;
    c * c * sym.charge(theta) + eta * eta * sym.quadratic_form(g_hat)
}

/// The expected one-step change of the charge under SGD with replacement:
/// `((1 − 2ηγ)² − 1) C + η²(∇LᵀA∇L + c_B Tr[AΣ])`.
pub fn expected_discrete_increment<M: Model>(
    sym: &ExponentialSymmetry,
    sde: &SgdSde<'_, M>,
    theta: &DVector<f64>,
    t: f64,
) -> f64 {
    let cfg = sde.config();
    let eta = cfg.schedule.eta(t);
    let c = 1.0 - 2.0 * eta * cfg.weight_decay;
    let mut grad = DVector::zeros(theta.len());
    sde.risk_gradient(theta, &mut grad);
    (c * c - 1.0) * sym.charge(theta)
        + eta
            * eta
            * (sym.quadratic_form(&grad) + sde.covariance_factor() * sde.trace_noise(sym.generator(), theta))
}

/// The noise equilibrium on an orbit (THEORY §4).
#[derive(Debug, Clone, PartialEq)]
pub struct FixedPoint {
    /// `λ*` with `θ* = e^{λ*A}θ`.
    pub lambda: f64,
    /// `θ*`.
    pub theta: DVector<f64>,
    /// `C* = C(θ*)`.
    pub charge: f64,
    /// Linearised slow relaxation rate `κ = 4γ + η c_B Tr[AΣ*A]/‖Aθ*‖²` (SDE time).
    pub slow_rate: f64,
}

/// The fixed point of the Noether flow on the orbit of `θ`: the root `λ*` of
/// `λ ↦ −4γC(θ_λ) + η c_B Tr[AΣ(θ_λ)]`, by bracketing (doubling) and bisection to
/// `|Δλ| < 1e-13`.
///
/// # Errors
/// [`Error::NoFixedPoint`] when the rate does not change sign for `|λ| μ_max ≤ 20`
/// (e.g. gradient noise in only one eigenspace of `A` and `γ = 0`, or a semidefinite `A`
/// without weight decay); invalid `θ`.
///
/// ```
/// use noether_sde::models::ScalarFactorization;
/// use noether_sde::sgd::{SgdConfig, SgdSde};
/// use noether_sde::symmetry::{noether, ExponentialSymmetry};
/// use nalgebra::DVector;
/// let model = ScalarFactorization::new(1.0, 0.5)?;
/// let sde = SgdSde::population(&model, SgdConfig::new(0.05, 4))?;
/// let sym = ExponentialSymmetry::rescaling(2, &[0], &[1])?;
/// let fp = noether::fixed_point(&sym, &sde, &DVector::from_vec(vec![2.0, 0.5]), 0.0)?;
/// assert!(fp.charge.abs() < 1e-9); // balanced: u² = w² (THEORY §6)
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub fn fixed_point<M: Model>(
    sym: &ExponentialSymmetry,
    sde: &SgdSde<'_, M>,
    theta: &DVector<f64>,
    t: f64,
) -> Result<FixedPoint> {
    check_vector("theta", theta, sym.dim())?;
    check_finite("t", &[t])?;
    let rate = |lambda: f64| charge_rate(sym, sde, &sym.orbit(theta, lambda), t);
    let mu_max = sym.eigenvalues().amax();
    if mu_max <= 0.0 {
        return Err(Error::NoFixedPoint {
            reason: "the generator is zero".into(),
        });
    }
    let f0 = rate(0.0);
    check_finite("Noether rate", &[f0])?;
    let lambda = if f0 == 0.0 {
        0.0
    } else {
        // F is decreasing in λ: search upward if F(0) > 0, downward otherwise.
        let dir = if f0 > 0.0 { 1.0 } else { -1.0 };
        let mut inner = 0.0;
        let mut outer = dir * 0.125 / mu_max;
        let mut f_outer = rate(outer);
        while f_outer.signum() == f0.signum() && f_outer != 0.0 {
            if outer.abs() * mu_max > 20.0 || !f_outer.is_finite() {
                return Err(Error::NoFixedPoint {
                    reason: format!(
                        "dC/dt keeps the sign of {f0:e} along the whole orbit (|λ| μ_max up to 20): \
                         the gradient noise is not balanced by weight decay or by an eigenspace of A of the other sign"
                    ),
                });
            }
            inner = outer;
            outer *= 2.0;
            f_outer = rate(outer);
        }
        let (mut lo, mut hi) = if dir > 0.0 { (inner, outer) } else { (outer, inner) };
        // invariant: F(lo) > 0 >= F(hi)
        for _ in 0..200 {
            if hi - lo < 1e-13 * (1.0 + lo.abs().max(hi.abs())) {
                break;
            }
            let mid = 0.5 * (lo + hi);
            if rate(mid) > 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let theta_star = sym.orbit(theta, lambda);
    let slow_rate = slow_rate(sym, sde, &theta_star, t);
    Ok(FixedPoint {
        lambda,
        charge: sym.charge(&theta_star),
        theta: theta_star,
        slow_rate,
    })
}

/// `κ = 4γ + η c_B Tr[AΣA]/‖Aθ‖²` at `θ` (THEORY §4): the linearised relaxation rate of
/// the charge toward its fixed point, in SDE time.
pub fn slow_rate<M: Model>(
    sym: &ExponentialSymmetry,
    sde: &SgdSde<'_, M>,
    theta: &DVector<f64>,
    t: f64,
) -> f64 {
    let cfg = sde.config();
    let a = sym.generator();
    let a_theta = a * theta;
    let a2 = a * a;
    4.0 * cfg.weight_decay
        + cfg.schedule.eta(t) * sde.covariance_factor() * sde.trace_noise(&a2, theta) / a_theta.norm_squared()
}

/// Closed form for `A = diag(I, −I)` and `γ = 0`: `λ* = ¼ ln(Tr Σ_u / Tr Σ_w)`
/// (THEORY §4), with the noise traces of the two blocks at `θ`.
///
/// # Errors
/// [`Error::NoFixedPoint`] if either trace is not positive.
pub fn balanced_lambda(trace_u: f64, trace_w: f64) -> Result<f64> {
    if !(trace_u > 0.0 && trace_w > 0.0) {
        return Err(Error::NoFixedPoint {
            reason: format!("noise traces {trace_u:e} (u) and {trace_w:e} (w) must both be positive"),
        });
    }
    Ok(0.25 * (trace_u / trace_w).ln())
}

/// The reduced slow dynamics: `dC/dt = rate(θ(C), t)` integrated by RK4 along a valley
/// parametrisation `θ(C)` (e.g. [`crate::models::ScalarFactorization::valley_point`]),
/// from `C(0) = charge0`; returns `(t, C)` at every step.
///
/// # Errors
/// [`Error::InvalidParameter`] for `dt <= 0`, `t_end < 0` or a non-finite start.
pub fn reduced_charge_path<M: Model>(
    sym: &ExponentialSymmetry,
    sde: &SgdSde<'_, M>,
    valley: &dyn Fn(f64) -> DVector<f64>,
    charge0: f64,
    t_end: f64,
    dt: f64,
) -> Result<Vec<(f64, f64)>> {
    check_positive("dt", dt)?;
    check_finite("charge0", &[charge0])?;
    if !(t_end.is_finite() && t_end >= 0.0) {
        return Err(Error::invalid("t_end", t_end, "must be finite and >= 0"));
    }
    let f = |t: f64, c: f64| charge_rate(sym, sde, &valley(c), t);
    let steps = (t_end / dt).ceil() as usize;
    let h = if steps == 0 { 0.0 } else { t_end / steps as f64 };
    let mut out = Vec::with_capacity(steps + 1);
    let mut c = charge0;
    out.push((0.0, c));
    for k in 0..steps {
        let t = k as f64 * h;
        let k1 = f(t, c);
        let k2 = f(t + 0.5 * h, c + 0.5 * h * k1);
        let k3 = f(t + 0.5 * h, c + 0.5 * h * k2);
        let k4 = f(t + h, c + h * k3);
        c += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
        out.push(((k + 1) as f64 * h, c));
    }
    Ok(out)
}
