//! The registry entry of matrix factorisation `ℓ = ‖U W x − y‖²` (THEORY §6.2): the
//! teacher (given, the report's, or drawn), the start (the report's unbalanced minimum, a
//! random one, the balanced-and-aligned minimum, or a file) and the data set.

use super::observables::Observable;
use super::{check_parameters, dataset, p, AnyModel, Charge, Defaults, Inputs, ModelSpec, ParamKind, Params};
use super::{Setup, UserData};
use crate::analysis::fixed_points::{default_matrix_factorization, unbalanced_start};
use crate::error::{Error, Result};
use crate::models::MatrixFactorization;
use crate::rng::{SeedTree, Stream};
use crate::symmetry::Symmetric;
use nalgebra::{DMatrix, DVector};
use rand::RngExt;
use rand_distr::StandardNormal;
use serde_json::json;

pub(super) const SPEC: ModelSpec = ModelSpec {
    name: "matrix_factorization",
    aliases: &[],
    summary: "ℓ = ‖U W x − y‖², x ~ N(0, Σx), y = V x + ε, ε ~ N(0, Σε) (THEORY §6); U → U e^{λM}, W → e^{−λM} W",
    charge: "‖U‖² − ‖W‖² = Tr(UᵀU − WWᵀ) (the M = I member of the symmetry)",
    params: &[
        p("d_in", ParamKind::Count, "4", "input dimension (1 to 4096; a teacher matrix sets it)"),
        p("hidden", ParamKind::Count, "3", "hidden width (1 to 4096)"),
        p("d_out", ParamKind::Count, "2", "output dimension (1 to 4096; a teacher matrix sets it)"),
        p(
            "sigma_x",
            ParamKind::List,
            "1,0.5,0.25,2",
            "diagonal input variances Σx (ones when d_in ≠ 4)",
        ),
        p(
            "sigma_eps",
            ParamKind::List,
            "0.25,1",
            "diagonal label-noise variances Σε (ones when d_out ≠ 2)",
        ),
        p(
            "teacher",
            ParamKind::List,
            "",
            "teacher V, d_out × d_in entries row by row [default: the report's V for d_in = 4, d_out = 2, else N(0, 1/d_in) entries from seed]",
        ),
        p(
            "start",
            ParamKind::Choice(&["unbalanced", "random", "balanced", "file"]),
            "unbalanced",
            "unbalanced = the report's unbalanced global minimum; random = N(0, init²) entries; balanced = the balanced-and-aligned global minimum (THEORY §6.2); file = θ₀ from init_file",
        ),
        p("init_u", ParamKind::Float, "1", "scale of the random U (start=random)"),
        p("init_w", ParamKind::Float, "1", "scale of the random W (start=random)"),
        p(
            "init_seed",
            ParamKind::Count,
            "",
            "seed of the random start (start=random) [default: seed]",
        ),
        p(
            "init_file",
            ParamKind::File,
            "",
            "θ₀ = [vec U; vec W] (column-major: U is d_out × hidden, W hidden × d_in), D numbers separated by commas, spaces or newlines (start=file)",
        ),
        p(
            "n",
            ParamKind::Count,
            "0",
            "data-set size; 0 = fresh samples each step (the population SDE, general noise)",
        ),
        p(
            "seed",
            ParamKind::Count,
            "0",
            "seed of the data set, the generated teacher V (the report's V for d_in = 4, d_out = 2) and, unless init_seed is given, the random start",
        ),
    ],
    defaults: Defaults {
        eta: 0.02,
        batch: 2,
        weight_decay: 0.0,
        time: 10.0,
        paths: 64,
    },
    user_data: UserData::Optional,
    extra_observables: &[Observable::EigWsw, Observable::EigUsu],
    build,
};

/// A dimension in `1..=4096`.
fn positive_count(params: &mut Params, key: &'static str) -> Result<usize> {
    let v = params.count(key)?;
    if v == 0 || v > 4096 {
        return Err(Error::invalid(key, v, "must be between 1 and 4096"));
    }
    Ok(v as usize)
}

fn build(params: &mut Params, inputs: Inputs) -> Result<Setup> {
    // a teacher given as a matrix (Python) sets d_in and d_out
    let given_matrix = params.matrix("teacher");
    let (d_in, hidden, d_out) = match &given_matrix {
        Some(v) => {
            params.record("d_in", json!(v.ncols()));
            params.record("d_out", json!(v.nrows()));
            (v.ncols(), positive_count(params, "hidden")?, v.nrows())
        }
        None => (
            positive_count(params, "d_in")?,
            positive_count(params, "hidden")?,
            positive_count(params, "d_out")?,
        ),
    };
    check_parameters(
        "d_in/hidden/d_out",
        "",
        hidden.saturating_mul(d_in.saturating_add(d_out)),
    )?;
    let sigma_x = params.list("sigma_x", (d_in != 4).then(|| vec![1.0; d_in]))?;
    let sigma_eps = params.list("sigma_eps", (d_out != 2).then(|| vec![1.0; d_out]))?;
    let start = params.choice("start")?;
    let (init_u, init_w) = (params.float("init_u")?, params.float("init_w")?);
    let only_with = |key: &'static str, value: &str| {
        Error::invalid(key, "", format!("only applies with --param start={value}"))
    };
    if start != "random" {
        for key in ["init_u", "init_w", "init_seed"] {
            if params.is_given(key) {
                return Err(only_with(key, "random"));
            }
        }
    }
    if start != "file" && params.is_given("init_file") {
        return Err(only_with("init_file", "file"));
    }
    let seed = params.count("seed")?;
    let teacher = if let Some(v) = given_matrix {
        v
    } else if params.is_given("teacher") {
        let entries = params.list("teacher", None)?;
        if entries.len() != d_out * d_in {
            return Err(Error::invalid(
                "teacher",
                "",
                format!(
                    "{} entries, but V is d_out × d_in = {d_out} × {d_in} = {} (row by row)",
                    entries.len(),
                    d_out * d_in
                ),
            ));
        }
        DMatrix::from_row_slice(d_out, d_in, &entries)
    } else if (d_in, d_out) == (4, 2) {
        default_matrix_factorization()?.teacher().clone()
    } else {
        let mut rng = SeedTree::new(seed).rng(1, Stream::Init);
        let scale = 1.0 / (d_in as f64).sqrt();
        DMatrix::from_fn(d_out, d_in, |_, _| scale * rng.sample::<f64, _>(StandardNormal))
    };
    let model = MatrixFactorization::new(
        teacher,
        hidden,
        DVector::from_vec(sigma_x),
        DVector::from_vec(sigma_eps),
    )?;
    // the teacher used, given or generated, row by row
    params.record("teacher", json!(model.teacher().transpose().as_slice()));
    let dim = hidden * (d_in + d_out);
    let theta0 = match start {
        "random" => {
            let init_seed = params.count_or("init_seed", seed)?;
            let mut rng = SeedTree::new(init_seed).rng(2, Stream::Init);
            let u = DMatrix::from_fn(d_out, hidden, |_, _| {
                init_u * rng.sample::<f64, _>(StandardNormal)
            });
            let w = DMatrix::from_fn(hidden, d_in, |_, _| init_w * rng.sample::<f64, _>(StandardNormal));
            MatrixFactorization::pack(&u, &w)
        }
        "balanced" => model
            .equilibrium()
            .map_err(|e| Error::invalid("start", "balanced", e.to_string()))?,
        "file" => {
            let file = params
                .text("init_file")
                .ok_or_else(|| Error::invalid("start", "file", "needs --param init_file=PATH"))?;
            read_theta(&file, dim)?
        }
        _ => unbalanced_start(&model)?,
    };
    let data = dataset(params, &inputs, &model, |n, s| model.dataset(n, s))?;
    let charge = Charge::Symmetry(model.symmetry()?);
    Ok(Setup {
        model: AnyModel::Matrix(model),
        theta0,
        data,
        charge,
    })
}

/// `θ₀` from a file of `dim` numbers separated by commas, spaces or newlines.
fn read_theta(file: &str, dim: usize) -> Result<DVector<f64>> {
    let fail = |reason: String| Error::invalid("init_file", file, reason);
    let meta = std::fs::metadata(file).map_err(|e| fail(format!("cannot read: {e}")))?;
    if meta.len() > 1 << 20 {
        return Err(fail(format!(
            "{} bytes; a start of {dim} numbers takes far less (at most 1 MiB)",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|e| fail(format!("cannot read: {e}")))?;
    let values = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| fail(format!("`{t}` is not a finite number")))
        })
        .collect::<Result<Vec<f64>>>()?;
    if values.len() != dim {
        return Err(fail(format!(
            "{} numbers, but θ has hidden × (d_in + d_out) = {dim}",
            values.len()
        )));
    }
    Ok(DVector::from_vec(values))
}
