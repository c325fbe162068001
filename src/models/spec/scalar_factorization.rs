//! The registry entry of scalar factorisation `ℓ = (u w x − y)²` (THEORY §6.1).

use super::{dataset, p, AnyModel, Charge, Inputs, ModelSpec, ParamKind, Params, Setup, UserData};
use super::{N_POPULATION, SEED, SMALL_MODEL_DEFAULTS};
use crate::error::Result;
use crate::models::ScalarFactorization;
use crate::rng::{SeedTree, Stream};
use crate::sgd::Dataset;
use crate::symmetry::Symmetric;
use nalgebra::DVector;

pub(super) const SPEC: ModelSpec = ModelSpec {
    name: "scalar_factorization",
    aliases: &[],
    summary: "ℓ = (u w x − y)², x ~ N(0,1), y = v x + σε (THEORY §6); rescaling symmetry u → λu, w → w/λ",
    charge: "u² − w² (exact rescaling symmetry)",
    params: &[
        p(
            "v",
            ParamKind::Float,
            "1",
            "teacher v (the valley of minima is u w = v)",
        ),
        p("sigma", ParamKind::Float, "1", "label-noise standard deviation σ"),
        p(
            "u0",
            ParamKind::Float,
            "2",
            "start u (the defaults start on the valley, charge 3.75)",
        ),
        p("w0", ParamKind::Float, "0.5", "start w"),
        p("n", ParamKind::Count, "0", N_POPULATION),
        p("seed", ParamKind::Count, "0", SEED),
    ],
    defaults: SMALL_MODEL_DEFAULTS,
    user_data: UserData::Optional,
    extra_observables: &[],
    build,
};

fn build(params: &mut Params, inputs: Inputs) -> Result<Setup> {
    let model = ScalarFactorization::new(params.float("v")?, params.float("sigma")?)?;
    let theta0 = DVector::from_vec(vec![params.float("u0")?, params.float("w0")?]);
    let data = dataset(params, &inputs, &model, |n, seed| {
        Dataset::from_population(&model, n, &mut SeedTree::new(seed).rng(0, Stream::Init))
    })?;
    let charge = Charge::Symmetry(model.symmetry()?);
    Ok(Setup {
        model: AnyModel::Scalar(model),
        theta0,
        data,
        charge,
    })
}
