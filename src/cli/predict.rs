//! `predict`: the theory's numbers at a model's start (THEORY §4): the fixed point of the
//! Noether flow on the start's orbit, the slow rate κ there, the fast rate (the top
//! eigenvalue of the Hessian of `L_γ` at that fixed point) and their ratio.

use super::models::{input_error, Built};
use super::{CliError, CliResult};
use noether_sde::models::spec::predict::{
    equilibrium, population_fixed_point, predict as fixed_point_and_rates,
};
use noether_sde::models::spec::run::Settings;
use noether_sde::models::spec::{AnyModel, Setup};
use noether_sde::models::ScalarFactorization;
use serde_json::{json, Value};

/// Runs `predict` and returns its JSON object.
///
/// # Errors
/// Bad input (exit 2); no fixed point on the orbit (exit 1).
pub fn predict(
    built: &Built,
    eta: Option<f64>,
    batch: Option<usize>,
    weight_decay: Option<f64>,
) -> CliResult<Value> {
    let spec = built.spec;
    let method = super::simulate::Method::Sgd;
    let settings = super::simulate::settings(built, method, eta, batch, weight_decay, None, None)?;
    let (eta, batch, weight_decay) = (settings.eta, settings.batch, settings.weight_decay);
    let mut out = predict_with(&built.setup, spec.name, &settings)?;
    if let AnyModel::Scalar(m) = &built.setup.model {
        if built.setup.data.is_none() && weight_decay == 0.0 {
            out.append(&mut refined_law(&built.setup, m, eta, batch, spec.defaults.time));
        }
    }
    if let Some((m, _)) = equilibrium(&built.setup)? {
        let rows: Vec<Vec<f64>> = m.row_iter().map(|r| r.iter().copied().collect()).collect();
        out.insert("equilibrium".into(), json!(rows));
        out.insert(
            "equilibrium_definition".into(),
            json!("UᵀU − WWᵀ at the balanced-and-aligned global minimum (MatrixFactorization::equilibrium)"),
        );
    }
    let mut head = json!({
        "model": spec.name,
        "params": built.params,
        "eta": eta,
        "batch": batch,
        "weight_decay": weight_decay,
        "charge_definition": spec.charge,
    });
    if let Some(h) = head.as_object_mut() {
        h.append(&mut out);
    }
    Ok(head)
}

fn predict_with(setup: &Setup, name: &str, settings: &Settings) -> CliResult<serde_json::Map<String, Value>> {
    let Some(sym) = setup.charge.symmetry() else {
        return Err(CliError::input(format!(
            "--model {name}: has no exponential symmetry, so there is no Noether charge to predict"
        )));
    };
    let data = setup.data.as_ref();
    let dim = setup.theta0.len() as f64;
    let implied = 200.0 * data.map_or(1.0, |d| d.len() as f64) * dim * dim;
    if implied > super::simulate::MAX_WORK {
        return Err(CliError::input(format!(
            "the prediction would take about {implied:.1e} multiply-adds (200 × samples × parameters²), more than {:e}; lower --param n or make the model smaller",
            super::simulate::MAX_WORK
        )));
    }
    settings.check_data(data).map_err(|e| input_error("", e))?;
    let cfg = settings.config();
    let p =
        fixed_point_and_rates(setup, sym, &setup.theta0, cfg).map_err(|e| CliError::library("predict", e))?;
    let (fp, fast) = (p.fixed_point, p.fast_rate);
    let mut out = serde_json::Map::new();
    out.insert("start_charge".into(), json!(setup.charge.at(&setup.theta0)));
    out.insert("fixed_point_charge".into(), json!(fp.charge));
    out.insert("fixed_point_lambda".into(), json!(fp.lambda));
    out.insert("fixed_point".into(), json!(fp.theta.as_slice()));
    out.insert("slow_rate".into(), json!(fp.slow_rate));
    out.insert("fast_rate".into(), json!(fast));
    out.insert("fast_rate_at".into(), json!("fixed_point"));
    let fast_start = setup
        .sharpness(&setup.theta0)
        .map_err(|e| CliError::library("predict: sharpness", e))?
        + 2.0 * cfg.weight_decay;
    out.insert("fast_rate_at_start".into(), json!(fast_start));
    out.insert("ratio_at_start".into(), json!(fp.slow_rate / fast_start));
    out.insert(
        "at_start_definition".into(),
        json!("fast_rate_at_start = λ_max(∇²L_γ(θ₀)) at the start θ₀; ratio_at_start = slow_rate / fast_rate_at_start"),
    );
    out.insert(
        "fast_rate_definition".into(),
        json!("λ_max(∇²L_γ(θ*)) = λ_max(∇²L(θ*)) + 2γ at the fixed point θ*"),
    );
    // on a finite data set, also the population's fixed point (online SGD, n → ∞), for
    // the models with closed-form population noise
    if let Some(pf) = population_fixed_point(setup, sym, &setup.theta0, cfg)
        .map_err(|e| CliError::library("predict: population", e))?
    {
        out.insert("population_fixed_point_charge".into(), json!(pf.charge));
        out.insert("population_slow_rate".into(), json!(pf.slow_rate));
    }
    out.insert("ratio".into(), json!(fp.slow_rate / fast));
    out.insert(
        "ratio_definition".into(),
        json!("slow_rate / fast_rate = (fast timescale) / (slow timescale), O(η/B) (THEORY §5)"),
    );
    Ok(out)
}

/// Scalar factorisation on the population: the refined Noether-flow law of THEORY §6.1,
/// `d ln C/dt = −(4ησ²/B)[1 + 2ηP/(B − 2ηP)]`, `P = √(C² + 4v²)`, from the start's
/// charge (the report's law; on the valley `uw = v`), at eleven times up to `t_end`, and
/// the slow rate at the start.
fn refined_law(
    setup: &Setup,
    model: &ScalarFactorization,
    eta: f64,
    batch: usize,
    t_end: f64,
) -> serde_json::Map<String, Value> {
    use noether_sde::analysis::fixed_points::{refined_valley_charge, ValleyConfig};
    let c0 = setup.charge.at(&setup.theta0);
    let (u, w) = (setup.theta0[0], setup.theta0[1]);
    let times: Vec<f64> = (0..=10).map(|k| t_end * k as f64 / 10.0).collect();
    let charges: Vec<f64> = times
        .iter()
        .map(|&t| {
            refined_valley_charge(&ValleyConfig {
                v: model.v(),
                sigma: model.sigma(),
                eta,
                batch,
                charge0: c0,
                t_end: t,
                ..ValleyConfig::default()
            })
        })
        .collect();
    let mut out = serde_json::Map::new();
    out.insert(
        "slow_rate_at_start".into(),
        json!(model.refined_valley_rate(eta, batch, c0)),
    );
    out.insert(
        "refined_law".into(),
        json!({
            "t": times,
            "charge": charges,
            "on_valley": (u * w - model.v()).abs() <= 1e-9 * model.v().abs().max(1.0),
            "definition": "C(t) from d ln C/dt = −(4ησ²/B)[1 + 2ηP/(B − 2ηP)], P = √(C² + 4v²) (THEORY §6.1; derived on the valley uw = v), by RK4",
        }),
    );
    out
}

/// Readable text for a predict result.
pub fn text(out: &Value) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let get = |k: &str| super::show(out.get(k));
    let _ = writeln!(
        s,
        "{}: eta {}, batch {}, weight decay {}",
        get("model"),
        get("eta"),
        get("batch"),
        get("weight_decay")
    );
    let _ = writeln!(s, "charge C = {}", get("charge_definition"));
    for (label, key) in [
        ("charge at the start", "start_charge"),
        ("fixed-point charge C*", "fixed_point_charge"),
        ("slow rate κ", "slow_rate"),
        ("fast rate λ_max(∇²L_γ(θ*))", "fast_rate"),
        ("ratio slow/fast", "ratio"),
    ] {
        let _ = writeln!(s, "{label:<30} {}", get(key));
    }
    if out.get("population_fixed_point_charge").is_some() {
        let _ = writeln!(
            s,
            "{:<30} {} (slow rate {}; n → ∞, online SGD)",
            "population C*",
            get("population_fixed_point_charge"),
            get("population_slow_rate")
        );
    }
    for (label, key) in [
        ("fast rate at the start", "fast_rate_at_start"),
        ("ratio at the start", "ratio_at_start"),
        ("slow rate at the start", "slow_rate_at_start"),
    ] {
        if out.get(key).is_some() {
            let _ = writeln!(s, "{label:<30} {}", get(key));
        }
    }
    if let Some(law) = out.get("refined_law") {
        let _ = writeln!(s, "refined law C(t): t = {} → C = {}", law["t"], law["charge"]);
    }
    if let Some(rows) = out.get("equilibrium").and_then(Value::as_array) {
        let _ = writeln!(s, "equilibrium UᵀU − WWᵀ:");
        for r in rows {
            let _ = writeln!(s, "  {r}");
        }
    }
    s
}
