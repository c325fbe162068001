//! The registry entry of linear regression `ℓ = (θᵀx − y)²` (THEORY §6): the teacher
//! (given, drawn for a dimension `d`, or zeros with the user's data set), the input
//! variances and the start.

use super::{check_parameters, dataset, p, AnyModel, Charge, Inputs, ModelSpec, ParamKind, Params};
use super::{Setup, UserData, N_POPULATION, SEED, SMALL_MODEL_DEFAULTS};
use crate::error::{Error, Result};
use crate::models::LinearRegression;
use crate::rng::{SeedTree, Stream};
use nalgebra::{DMatrix, DVector};
use rand::RngExt;
use rand_distr::StandardNormal;
use serde_json::json;

pub(super) const SPEC: ModelSpec = ModelSpec {
    name: "linear_regression",
    aliases: &[],
    summary: "ℓ = (θᵀx − y)², x ~ N(0, diag Σx), y = θ*ᵀx + σε (THEORY §6); no symmetry",
    charge: "‖θ‖² (linear regression has no exponential symmetry: not a conserved or Noether charge)",
    params: &[
        p("theta_star", ParamKind::List, "1,-0.5,0.25", "teacher θ* [default with the user's data set: zeros]"),
        p(
            "d",
            ParamKind::Count,
            "",
            "dimension with a generated teacher θ* (N(0, 1/d) entries from seed; instead of theta_star) [default: the length of theta_star]",
        ),
        p("sigma_x", ParamKind::List, "1,0.5,0.25", "diagonal input variances Σx (> 0; ones when d ≠ 3)"),
        p("sigma", ParamKind::Float, "0.5", "label-noise standard deviation σ"),
        p("theta0", ParamKind::List, "0,0,0", "start θ₀ (zeros of the teacher's length by default)"),
        p("n", ParamKind::Count, "0", N_POPULATION),
        p("seed", ParamKind::Count, "0", SEED),
    ],
    defaults: SMALL_MODEL_DEFAULTS,
    user_data: UserData::Optional,
    extra_observables: &[],
    build,
};

fn build(params: &mut Params, inputs: Inputs) -> Result<Setup> {
    let theta_star = if params.is_given("d") {
        if params.is_given("theta_star") {
            return Err(Error::invalid(
                "d",
                "",
                "give either d (a generated teacher) or theta_star, not both",
            ));
        }
        let d = params.count("d")? as usize;
        check_parameters("d", d, d)?;
        let seed = params.count("seed")?;
        let mut rng = SeedTree::new(seed).rng(1, Stream::Init);
        let scale = 1.0 / (d as f64).sqrt();
        let teacher = DVector::from_fn(d, |_, _| scale * rng.sample::<f64, _>(StandardNormal));
        params.record("theta_star", json!(teacher.as_slice()));
        teacher
    } else if let (Some(data), false) = (&inputs.data, params.is_given("theta_star")) {
        // with the user's data the teacher only enters the population forms, which a
        // finite data set does not use
        DVector::zeros(data.input_dim())
    } else {
        DVector::from_vec(params.list("theta_star", None)?)
    };
    let d = theta_star.len();
    check_parameters("theta_star", "", d)?;
    let variances = params.list("sigma_x", (d != 3).then(|| vec![1.0; d]))?;
    let variances = DVector::from_vec(variances);
    crate::error::check_vector("sigma_x", &variances, d)?;
    if variances.iter().any(|&v| v <= 0.0) {
        return Err(Error::invalid("sigma_x", "", "variances must be > 0"));
    }
    let model = LinearRegression::new(
        theta_star,
        DMatrix::from_diagonal(&variances),
        params.float("sigma")?,
    )?;
    let theta0 = if inputs.theta0.is_some() {
        DVector::zeros(d)
    } else {
        DVector::from_vec(params.list("theta0", (d != 3).then(|| vec![0.0; d]))?)
    };
    if theta0.len() != d {
        return Err(Error::invalid(
            "theta0",
            "",
            format!("length {} for a teacher of length {d}", theta0.len()),
        ));
    }
    let data = dataset(params, &inputs, &model, |n, s| model.dataset(n, s))?;
    Ok(Setup {
        model: AnyModel::Linear(model),
        theta0,
        data,
        charge: Charge::NormSquared,
    })
}
