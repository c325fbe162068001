//! The registry entry of the normalised linear layer `ℓ = (θᵀx/‖θ‖ − y)²` (THEORY §6.3).

use super::{check_parameters, dataset, p, AnyModel, Charge, Defaults, Inputs, ModelSpec, ParamKind, Params};
use super::{Setup, UserData, N_POPULATION, SEED};
use crate::error::{Error, Result};
use crate::models::NormalizedLinear;
use crate::symmetry::Symmetric;
use nalgebra::DVector;

pub(super) const SPEC: ModelSpec = ModelSpec {
    name: "normalized_linear",
    aliases: &[],
    summary: "ℓ = (θᵀx/‖θ‖ − y)², x ~ N(0, diag Σx), y = θ̂*ᵀx + σε (THEORY §6); scale symmetry θ → λθ",
    charge: "‖θ‖² (exact scale symmetry)",
    params: &[
        p(
            "teacher",
            ParamKind::List,
            "1,1,0,0",
            "teacher direction (normalised)",
        ),
        p(
            "input_variances",
            ParamKind::List,
            "1,0.5,2,1",
            "diagonal input variances",
        ),
        p(
            "sigma",
            ParamKind::Float,
            "0.5",
            "label-noise standard deviation σ",
        ),
        p(
            "norm0",
            ParamKind::Float,
            "1",
            "start θ₀ = norm0 · teacher direction (> 0)",
        ),
        p("n", ParamKind::Count, "256", N_POPULATION),
        p("seed", ParamKind::Count, "0", SEED),
    ],
    defaults: Defaults {
        eta: 0.05,
        batch: 4,
        weight_decay: 0.01,
        time: 20.0,
        paths: 64,
    },
    user_data: UserData::Optional,
    extra_observables: &[],
    build,
};

fn build(params: &mut Params, inputs: Inputs) -> Result<Setup> {
    let teacher = DVector::from_vec(params.list("teacher", None)?);
    check_parameters("teacher", "", teacher.len())?;
    let variances = DVector::from_vec(params.list("input_variances", None)?);
    let model = NormalizedLinear::new(teacher, variances, params.float("sigma")?)?;
    let norm0 = params.float("norm0")?;
    if norm0 <= 0.0 {
        return Err(Error::invalid("norm0", norm0, "must be > 0"));
    }
    let theta0 = model.teacher() * norm0;
    let data = dataset(params, &inputs, &model, |n, s| model.dataset(n, s))?;
    let charge = Charge::Symmetry(model.symmetry()?);
    Ok(Setup {
        model: AnyModel::Normalized(model),
        theta0,
        data,
        charge,
    })
}
