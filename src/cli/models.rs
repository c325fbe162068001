//! `models` and `--model NAME --param key=value`: the command line's view of the
//! library's model registry ([`noether_sde::models::spec`]), where every model's
//! parameters, defaults, validation and construction live.

use super::{CliError, CliResult};
use noether_sde::models::spec::{self as registry, standalone, UserData};
pub use noether_sde::models::spec::{Built, ModelSpec};
use noether_sde::Error;
use serde_json::{json, Value};

/// The command-line flag of a registry or run setting, if it has one.
fn flag(name: &str) -> Option<&'static str> {
    Some(match name {
        "model" => "--model",
        "param" => "--param",
        "observable" => "--observable",
        "method" => "--method",
        "eta" => "--eta",
        "batch" => "--batch",
        "weight_decay" => "--weight-decay",
        "t_end" => "--time",
        "dt" => "--dt",
        "paths" => "--paths",
        "save_every" => "--save-every",
        "h" => "--dt",
        "t1" => "--time",
        "divergence_bound" => "--divergence-bound",
        _ => return None,
    })
}

/// A library error about a model, its parameters or a run setting as one line:
/// `--flag VALUE: reason` for a setting, `--param KEY=VALUE: reason` for a model
/// parameter, and `context: error` for anything else. Invalid input exits with 2.
pub fn input_error(context: &str, e: Error) -> CliError {
    match e {
        Error::InvalidParameter { name, value, reason } => {
            let head = match (flag(name), value.is_empty()) {
                (Some(f), true) => f.to_string(),
                (Some(f), false) => format!("{f} {value}"),
                (None, true) => format!("--param {name}"),
                (None, false) => format!("--param {name}={value}"),
            };
            CliError::input(format!("{head}: {reason}"))
        }
        other => CliError::library(context, other),
    }
}

/// A library error of a run: a setting with a flag as [`input_error`], anything else
/// with `--method NAME` in front (invalid input exits with 2, a failing run with 1).
pub fn run_error(method: &str, e: Error) -> CliError {
    match &e {
        Error::InvalidParameter { name, .. } if flag(name).is_some() => input_error("", e),
        _ => CliError::library(&format!("--method {method}"), e),
    }
}

/// Builds `--model name` from its `--param key=value` pairs.
///
/// # Errors
/// Unknown model or parameter, malformed or invalid values (exit 2).
pub fn build(name: &str, pairs: &[String]) -> CliResult<Built> {
    let known = || standalone().map(|m| m.name).collect::<Vec<_>>().join(", ");
    let spec = registry::find(name)
        .map_err(|_| CliError::input(format!("--model {name}: unknown model (known: {})", known())))?;
    if spec.user_data == UserData::Required {
        return Err(CliError::input(format!(
            "--model {name}: trains on the user's own data set, which Python gives (ns.models); known here: {}",
            known()
        )));
    }
    registry::build_from_text(name, pairs).map_err(|e| input_error("--param", e))
}

/// `models` output as text.
pub fn models_text() -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for m in standalone() {
        let d = m.defaults;
        let _ = writeln!(s, "{}\n  {}\n  charge: {}", m.name, m.summary, m.charge);
        let _ = writeln!(
            s,
            "  defaults: --eta {} --batch {} --weight-decay {} --time {} (simulate --paths {})",
            d.eta, d.batch, d.weight_decay, d.time, d.paths
        );
        for q in m.params {
            let _ = writeln!(
                s,
                "  --param {:<28} {}",
                format!("{}={}", q.key, q.default),
                q.help
            );
        }
        s.push('\n');
    }
    s
}

/// `models --json`: `{"models":[{"name","summary","charge","defaults":{..},"params":[{"key","kind","default","help"}]}]}`.
pub fn models_json() -> Value {
    json!({ "models": standalone().map(ModelSpec::to_json).collect::<Vec<_>>() })
}
