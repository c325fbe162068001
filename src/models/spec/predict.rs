//! The theory's numbers for a built model (THEORY §4–§5): the fixed point of the Noether
//! flow on the orbit of a start, the slow rate κ there and the fast rate
//! `λ_max(∇²L_γ(θ*)) = λ_max(∇²L(θ*)) + 2γ`; for matrix factorisation the equilibrium
//! `UᵀU − WWᵀ` at the balanced-and-aligned global minimum (THEORY §6.2). The command
//! line's `predict` and Python's `model.predict()` both read them here.

use super::{with_model, AnyModel, Setup};
use crate::error::Result;
use crate::models::routes::ModelRoutes;
use crate::sgd::SgdConfig;
use crate::symmetry::noether::{fixed_point, FixedPoint};
use crate::symmetry::ExponentialSymmetry;
use nalgebra::{DMatrix, DVector};

/// The fixed point of the Noether flow and the fast rate there.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The fixed point `θ* = e^{λ*A}θ₀`, its charge and the slow rate κ.
    pub fixed_point: FixedPoint,
    /// `λ_max(∇²L(θ*)) + 2γ`.
    pub fast_rate: f64,
}

/// The fixed point of the Noether flow of `sym` on the orbit of `theta0`, for SGD with
/// `cfg` on the model's data set (or the population), and the fast rate there.
///
/// # Errors
/// As [`fixed_point`] and the sharpness.
pub fn predict(
    setup: &Setup,
    sym: &ExponentialSymmetry,
    theta0: &DVector<f64>,
    cfg: SgdConfig,
) -> Result<Prediction> {
    let data = setup.data.as_ref();
    with_model!(&setup.model, m => {
        let sde = m.sde(data, cfg)?;
        let fixed_point = fixed_point(sym, &sde, theta0, 0.0)?;
        let fast_rate = m.sharpness(data, &fixed_point.theta)? + 2.0 * cfg.weight_decay;
        Ok(Prediction { fixed_point, fast_rate })
    })
}

/// On a finite data set, the fixed point of the population's Noether flow (online SGD,
/// `n → ∞`) for the models with closed-form population noise; `None` otherwise.
///
/// # Errors
/// As [`fixed_point`].
pub fn population_fixed_point(
    setup: &Setup,
    sym: &ExponentialSymmetry,
    theta0: &DVector<f64>,
    cfg: SgdConfig,
) -> Result<Option<FixedPoint>> {
    if setup.data.is_none() {
        return Ok(None);
    }
    with_model!(&setup.model, m => match m.sde(None, cfg) {
        Ok(population) => fixed_point(sym, &population, theta0, 0.0).map(Some),
        Err(_) => Ok(None),
    })
}

/// Matrix factorisation's balanced-and-aligned global minimum and its `UᵀU − WWᵀ`;
/// `None` for the other models.
///
/// # Errors
/// As `MatrixFactorization::equilibrium`.
pub fn equilibrium(setup: &Setup) -> Result<Option<(DMatrix<f64>, DVector<f64>)>> {
    match &setup.model {
        AnyModel::Matrix(m) => {
            let eq = m.equilibrium()?;
            Ok(Some((m.charge_matrix(&eq), eq)))
        }
        _ => Ok(None),
    }
}
