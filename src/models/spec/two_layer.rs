//! The registry entries of the two-layer networks `f(x) = [x +] U φ(W x)` (THEORY §7):
//! the report's `tanh_net` and `residual` (their own teacher and data), and `two_layer`
//! on the user's data set (Python's `TwoLayer`).

use super::SEED;
use super::{dataset, p, AnyModel, Charge, Defaults, Inputs, ModelSpec, ParamKind, Params, Setup, UserData};
use crate::analysis::fixed_points::{default_network, default_network_start};
use crate::error::{Error, Result};
use crate::models::{Activation, TwoLayerNet};
use crate::rng::{SeedTree, Stream};
use crate::sgd::Model;
use crate::symmetry::Symmetric;
use nalgebra::{DMatrix, DVector};
use rand::RngExt;
use rand_distr::StandardNormal;

const NET_PARAMS: [super::ParamSpec; 4] = [
    p(
        "activation",
        ParamKind::Choice(&["tanh", "identity", "relu"]),
        "tanh",
        "φ: tanh breaks the rescaling symmetry, identity and relu (positively homogeneous) keep it",
    ),
    p(
        "input_scale",
        ParamKind::Float,
        "1",
        "input scale s (tanh is nearly linear for small s)",
    ),
    p(
        "n",
        ParamKind::Count,
        "256",
        "data-set size (the model has no closed-form noise, so it needs a data set)",
    ),
    p("seed", ParamKind::Count, "0", SEED),
];

const NET_DEFAULTS: Defaults = Defaults {
    eta: 0.05,
    batch: 4,
    weight_decay: 0.0,
    time: 10.0,
    paths: 16,
};

const NET_CHARGE: &str = "‖U‖² − ‖W‖² (exact for φ = identity or relu, approximate for tanh)";

pub(super) const TANH_NET: ModelSpec = ModelSpec {
    name: "tanh_net",
    aliases: &[],
    summary: "f(x) = U φ(W x), d_in = 2, h = 2, d_out = 1, x ~ N(0, s²I), y = [1, −0.5] x + 0.5ε (THEORY §7)",
    charge: NET_CHARGE,
    params: &NET_PARAMS,
    defaults: NET_DEFAULTS,
    user_data: UserData::Optional,
    extra_observables: &[],
    build: |params, inputs| report_network(false, params, inputs),
};

pub(super) const RESIDUAL: ModelSpec = ModelSpec {
    name: "residual",
    aliases: &[],
    summary:
        "f(x) = x + U φ(W x), d = 2, h = 2, x ~ N(0, s²I), y = [[0.5, 0.2], [−0.3, 0.4]] x + 0.5ε (THEORY §7)",
    charge: NET_CHARGE,
    params: &NET_PARAMS,
    defaults: NET_DEFAULTS,
    user_data: UserData::Optional,
    extra_observables: &[],
    build: |params, inputs| report_network(true, params, inputs),
};

pub(super) const TWO_LAYER: ModelSpec = ModelSpec {
    name: "two_layer",
    aliases: &[],
    summary: "f(x) = [x +] U φ(W x) on the user's data set X (N × d_in), y (N × d_out) (THEORY §7)",
    charge: NET_CHARGE,
    params: &[
        p("width", ParamKind::Count, "2", "hidden width h (≥ 1)"),
        p(
            "activation",
            ParamKind::Choice(&["tanh", "identity", "relu", "linear"]),
            "tanh",
            "φ (linear = identity): tanh breaks the rescaling symmetry, identity and relu keep it",
        ),
        p(
            "skip",
            ParamKind::Flag,
            "false",
            "the residual block x + U φ(W x)",
        ),
        p(
            "seed",
            ParamKind::Count,
            "0",
            "seed of the random start (N(0, 0.25) entries)",
        ),
    ],
    defaults: NET_DEFAULTS,
    user_data: UserData::Required,
    extra_observables: &[],
    build: user_network,
};

fn activation(params: &mut Params) -> Result<Activation> {
    Ok(match params.choice("activation")? {
        "identity" | "linear" => Activation::Identity,
        "relu" => Activation::Relu,
        _ => Activation::Tanh,
    })
}

fn report_network(residual: bool, params: &mut Params, inputs: Inputs) -> Result<Setup> {
    let activation = activation(params)?;
    let scale = params.float("input_scale")?;
    let model = default_network(residual, activation, scale)?;
    let theta0 = default_network_start(residual);
    let data = dataset(params, &inputs, &model, |n, s| model.dataset(n, s))?;
    if data.is_none() {
        return Err(crate::models::routes::needs_data());
    }
    let charge = Charge::Symmetry(model.symmetry()?);
    Ok(Setup {
        model: AnyModel::Net(model),
        theta0,
        data,
        charge,
    })
}

fn user_network(params: &mut Params, inputs: Inputs) -> Result<Setup> {
    let data = inputs.data.ok_or_else(|| {
        Error::invalid(
            "X",
            "None",
            "TwoLayer needs the data set X (N × d_in), y (N × d_out)",
        )
    })?;
    let (d_in, d_out) = (data.input_dim(), data.target_dim());
    let width = params.count("width")? as usize;
    let activation = activation(params)?;
    let skip = params.flag("skip")?;
    // the teacher only generates data, and the user brought theirs
    let teacher = DMatrix::zeros(d_out, d_in);
    let model = if skip {
        TwoLayerNet::residual(width, teacher, activation, 1.0, 0.0)
    } else {
        TwoLayerNet::new(width, teacher, activation, 1.0, 0.0)
    }?;
    let mut rng = SeedTree::new(params.count("seed")?).rng(2, Stream::Init);
    let theta0 = DVector::from_fn(model.dim(), |_, _| 0.5 * rng.sample::<f64, _>(StandardNormal));
    let charge = Charge::Symmetry(model.symmetry()?);
    Ok(Setup {
        model: AnyModel::Net(model),
        theta0,
        data: Some(data),
        charge,
    })
}
