//! The `noether-sde` binary, run for real: the JSON shape of every subcommand (sharded
//! runs and `merge`: `cli_merge.rs`; the research options: `cli_research.rs`), and every bad-input case (exit code 2,
//! one `error:` line, no panic).

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_noether-sde");

pub(super) fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("the binary runs")
}

/// Runs a `--json` command that must succeed; stdout must be exactly one JSON object.
pub(super) fn json(args: &[&str]) -> Value {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let value: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not one JSON value ({e}): {stdout}"));
    assert!(value.is_object(), "{args:?}: not an object");
    value
}

pub(super) fn has_keys(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(k).is_some(), "missing key `{k}` in {v}");
    }
}

/// Asserts exit code 2, a first stderr line `error: …` that mentions `mentions`, and no panic.
pub(super) fn bad_input(args: &[&str], mentions: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {stderr}");
    let first = stderr.lines().next().unwrap_or("");
    assert!(first.starts_with("error: "), "{args:?}: first line `{first}`");
    assert!(
        first.contains(mentions),
        "{args:?}: `{first}` does not mention `{mentions}`"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: printed to stdout on error");
}

/// A file in the temporary directory, unique to this test process, this call and `name`
/// (tests run in parallel threads of one process and may use the same `name`).
pub(super) fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("noether-sde-cli-{}-{call}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("temp file");
    path
}

/// A tiny `simulate` on a small ensemble.
const TINY: &[&str] = &["--time", "0.4", "--save-every", "0.2", "--paths", "6", "--json"];

pub(super) fn simulate(model: &str, method: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["simulate", "--model", model, "--method", method];
    args.extend_from_slice(extra);
    args.iter().map(|s| s.to_string()).collect()
}

pub(super) fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn models_json_lists_every_model_with_parameters_and_defaults() {
    let v = json(&["models", "--json"]);
    let models = v["models"].as_array().expect("array");
    let names: Vec<&str> = models.iter().filter_map(|m| m["name"].as_str()).collect();
    for name in [
        "scalar_factorization",
        "matrix_factorization",
        "normalized_linear",
        "linear_regression",
        "tanh_net",
        "residual",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for m in models {
        has_keys(m, &["name", "summary", "charge", "defaults", "params"]);
        has_keys(&m["defaults"], &["eta", "batch", "weight_decay", "time", "paths"]);
        for p in m["params"].as_array().expect("params") {
            has_keys(p, &["key", "kind", "default", "help"]);
        }
    }
    let scalar = &models[0]["params"];
    let keys: Vec<&str> = scalar
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    for k in ["v", "sigma", "u0", "w0"] {
        assert!(keys.contains(&k), "scalar_factorization lacks {k}");
    }
}

#[test]
fn simulate_json_has_the_documented_shape() {
    let v = json(&as_strs(&simulate("scalar_factorization", "em", TINY)));
    has_keys(
        &v,
        &[
            "model",
            "method",
            "eta",
            "batch",
            "weight_decay",
            "paths",
            "times",
            "observables",
            "diverged",
        ],
    );
    assert_eq!(v["model"], "scalar_factorization");
    assert_eq!(v["method"], "euler_maruyama"); // the catalogue's canonical name for `em`
    assert_eq!(v["paths"], 6);
    assert_eq!(v["diverged"], 0);
    let times = v["times"].as_array().expect("times");
    assert_eq!(times.len(), 3); // 0, 0.2, 0.4
    for obs in ["charge", "loss", "sharpness"] {
        for stat in ["mean", "std", "ci_low", "ci_high"] {
            let series = v["observables"][obs][stat].as_array().expect("series");
            assert_eq!(series.len(), times.len(), "{obs}.{stat}");
            assert!(series.iter().all(Value::is_f64), "{obs}.{stat}: {series:?}");
        }
    }
    // the start is deterministic: C = u² − w² = 4 − 0.25
    let c0 = v["observables"]["charge"]["mean"][0].as_f64().expect("number");
    assert!((c0 - 3.75).abs() < 1e-12, "C(0) = {c0}");
}

#[test]
fn simulate_runs_every_model_and_method_family() {
    for model in [
        "scalar_factorization",
        "matrix_factorization",
        "normalized_linear",
        "linear_regression",
        "tanh_net",
        "residual",
    ] {
        for method in ["sgd", "gd", "em"] {
            let v = json(&as_strs(&simulate(model, method, TINY)));
            assert_eq!(v["model"], model);
            assert_eq!(v["observables"]["loss"]["mean"].as_array().map(Vec::len), Some(3));
        }
    }
    // scalar noise: commutative Milstein, RK-Milstein and Heun (on the Stratonovich form) run on the population SDE
    for method in ["milstein", "rk-milstein", "heun"] {
        json(&as_strs(&simulate("scalar_factorization", method, TINY)));
    }
    // every scheme of the catalogue is a --method (canonical names and aliases)
    let catalogue = json(&["schemes", "--json"]);
    for scheme in catalogue["schemes"].as_array().expect("a list") {
        let name = scheme["name"].as_str().expect("a name");
        // (an additive-noise-only scheme such as SRA1 is refused on this scalar-noise SDE)
        let noise = scheme["noise"].as_array().expect("a list");
        if !noise.iter().any(|n| n == "scalar") {
            bad_input(&as_strs(&simulate("scalar_factorization", name, TINY)), name);
            continue;
        }
        let v = json(&as_strs(&simulate("scalar_factorization", name, TINY)));
        assert_eq!(v["method"], name);
        for alias in scheme["aliases"].as_array().expect("a list") {
            let v = json(&as_strs(&simulate(
                "scalar_factorization",
                alias.as_str().expect("text"),
                TINY,
            )));
            assert_eq!(v["method"], name, "alias {alias}");
        }
    }
    // finite-data linear regression under em takes the batched route (the same
    // increments, the same paths to rounding: tests/it/ensemble.rs); the output says so
    let v = json(&as_strs(&simulate(
        "linear_regression",
        "em",
        &["--paths", "70", "--time", "0.5", "--param", "n=40", "--json"],
    )));
    assert_eq!(v["route"], "batched");
    assert_eq!(v["diverged"], 0);
    let v = json(&as_strs(&simulate("linear_regression", "em", TINY)));
    assert_eq!(v["route"], "per_path"); // population SDE (n = 0)
    let v = json(&as_strs(&simulate(
        "linear_regression",
        "rk-milstein",
        &["--paths", "4", "--time", "0.2", "--param", "n=10", "--json"],
    )));
    assert_eq!(v["route"], "per_path");
    // linear regression has no symmetry: the output says what the "charge" is
    let v = json(&as_strs(&simulate("linear_regression", "sgd", TINY)));
    assert!(v["charge_definition"]
        .as_str()
        .expect("text")
        .contains("no exponential symmetry"));
}

#[test]
fn predict_json_has_the_documented_shape() {
    let v = json(&["predict", "--model", "scalar_factorization", "--json"]);
    has_keys(
        &v,
        &[
            "model",
            "eta",
            "batch",
            "weight_decay",
            "fixed_point_charge",
            "slow_rate",
            "fast_rate",
            "fast_rate_at",
            "ratio",
        ],
    );
    // balanced fixed point u² = w² (THEORY §6)
    assert!(v["fixed_point_charge"].as_f64().expect("number").abs() < 1e-9);
    let v = json(&["predict", "--model", "matrix_factorization", "--json"]);
    let eq = v["equilibrium"].as_array().expect("nested array");
    assert_eq!(eq.len(), 3); // hidden × hidden
    assert!(eq.iter().all(|row| row.as_array().map(Vec::len) == Some(3)));
    for model in ["normalized_linear", "tanh_net", "residual"] {
        let v = json(&["predict", "--model", model, "--json"]);
        assert!(v["ratio"].is_f64(), "{model}: {v}");
    }
}

#[test]
fn convergence_json_has_the_documented_shape() {
    let v = json(&[
        "convergence",
        "--problem",
        "gbm",
        "--scheme",
        "em",
        "--kind",
        "strong",
        "--paths",
        "100",
        "--json",
    ]);
    has_keys(&v, &["problem", "scheme", "kind", "order", "ci", "points"]);
    assert_eq!(v["scheme"], "euler_maruyama");
    let ci = v["ci"].as_array().expect("interval");
    assert_eq!(ci.len(), 2);
    assert!(ci[0].as_f64() < ci[1].as_f64());
    assert!(!v["points"].as_array().expect("points").is_empty());
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "reproduce",
        "models",
        "simulate",
        "predict",
        "convergence",
        "merge",
    ] {
        let out = run(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{sub}");
    }
}

#[test]
fn bad_input_is_one_error_line_and_exit_code_2() {
    let s = |extra: &[&str]| {
        let mut v = vec!["simulate", "--model", "scalar_factorization", "--method", "em"];
        v.extend_from_slice(extra);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (simulate("no_such_model", "em", &[]), "no_such_model"),
        (s(&["--param", "nope=1"]), "nope"),
        (s(&["--param", "v=abc"]), "abc"),
        (s(&["--param", "v"]), "key=value"),
        (s(&["--eta", "abc"]), "--eta"),
        (s(&["--eta", "0"]), "--eta"),
        (s(&["--eta", "-0.1"]), "--eta"),
        (s(&["--batch", "0"]), "--batch"),
        (
            simulate("normalized_linear", "sgd", &["--param", "n=8", "--batch", "9"]),
            "--batch",
        ),
        (s(&["--paths", "0"]), "--paths"),
        (s(&["--dt", "0"]), "--dt"),
        (s(&["--dt", "-1"]), "--dt"),
        (s(&["--shard", "2/2"]), "2/2"),
        (s(&["--shard", "3/2"]), "3/2"),
        (s(&["--shard", "x"]), "--shard"),
        (s(&["--param", "sigma=-1"]), "sigma"),
        (simulate("normalized_linear", "heun", &[]), "--method heun"),
        (
            simulate("scalar_factorization", "milstein", &["--param", "n=16"]),
            "general noise",
        ),
        (simulate("scalar_factorization", "sgd", &["--dt", "0.1"]), "--dt"),
        (
            simulate("matrix_factorization", "em", &["--param", "sigma_x=1,2"]),
            "sigma_x",
        ),
    ];
    for (args, mentions) in &cases {
        bad_input(&as_strs(args), mentions);
    }
    bad_input(&["predict", "--model", "linear_regression"], "symmetry");
    bad_input(
        &["predict", "--model", "scalar_factorization", "--eta", "0"],
        "--eta",
    );
    bad_input(
        &[
            "convergence",
            "--problem",
            "noncommutative",
            "--scheme",
            "milstein",
            "--kind",
            "strong",
        ],
        "not a study",
    );
    bad_input(
        &[
            "convergence",
            "--problem",
            "nope",
            "--scheme",
            "em",
            "--kind",
            "strong",
        ],
        "nope",
    );
    bad_input(&["no-such-subcommand"], "no-such-subcommand");
}

/// `schemes --json` lists the catalogue with the fields front ends rely on.
#[test]
fn schemes_lists_the_catalogue() {
    let v = json(&["schemes", "--json"]);
    let schemes = v["schemes"].as_array().expect("a list");
    assert!(schemes.len() >= 7, "{v}");
    for s in schemes {
        has_keys(
            s,
            &[
                "name",
                "aliases",
                "strong_order",
                "weak_order",
                "noise",
                "calculus",
                "adaptive",
            ],
        );
    }
    let em = schemes
        .iter()
        .find(|s| s["name"] == "euler_maruyama")
        .expect("em");
    assert_eq!(em["aliases"][0], "em");
    assert_eq!(em["strong_order_by_noise"]["additive"], 1.0);
    let text = run(&["schemes"]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("euler_heun"));
    bad_input(
        &["simulate", "--model", "scalar_factorization", "--method", "rk4"],
        "unknown method 'rk4'",
    );
    bad_input(
        &[
            "convergence",
            "--problem",
            "gbm",
            "--scheme",
            "rk4",
            "--kind",
            "strong",
        ],
        "unknown scheme",
    );
}

/// `--format csv` is long format (`t,observable,statistic,value`, one row per saved time ×
/// observable × statistic, four fields on every row: what `pandas.read_csv` loads with no
/// arguments), and saved times are the times the steps reach (η = 2: no t = 0.5 row).
#[test]
fn simulate_writes_long_csv_and_truthful_save_times() {
    let args = [
        "simulate",
        "--model",
        "scalar_factorization",
        "--method",
        "sgd",
        "--eta",
        "2",
        "--time",
        "4",
        "--save-every",
        "0.5",
        "--paths",
        "4",
    ];
    let v = json(&[&args[..], &["--json"]].concat());
    assert_eq!(
        v["times"],
        serde_json::json!([0.0, 2.0, 4.0]),
        "snapped to the step η = 2"
    );
    assert_eq!(v["save_every"], 2.0);
    let out = run(&[&args[..], &["--format", "csv"]].concat());
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "t,observable,statistic,value");
    assert_eq!(lines.len(), 1 + 3 * 3 * 4, "{csv}");
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 4, "{line}");
        assert!(fields[0].parse::<f64>().is_ok(), "{line}");
        assert!(["charge", "loss", "sharpness"].contains(&fields[1]), "{line}");
        assert!(fields[3].is_empty() || fields[3].parse::<f64>().is_ok(), "{line}");
    }
    // the CSV carries the JSON's numbers
    let first_mean = v["observables"]["charge"]["mean"][0].as_f64().expect("a number");
    assert_eq!(lines[1], format!("0,charge,mean,{first_mean}"));
    bad_input(&[&args[..], &["--format", "xml"]].concat(), "xml");
}

/// `timescales` runs user-chosen ladders and refuses ladders it cannot fit.
#[test]
fn timescales_on_user_ladders() {
    let v = json(&[
        "timescales",
        "--etas",
        "0.025,0.05",
        "--batches",
        "4,8",
        "--paths",
        "20",
        "--json",
    ]);
    let points = v["points"].as_array().expect("points");
    assert_eq!(points.len(), 4);
    for p in points {
        has_keys(p, &["process", "eta", "batch", "fast", "slow", "ratio"]);
        assert!(p["ratio"].as_f64().expect("a number") > 0.0);
    }
    has_keys(&v["slope_eta"], &["slope", "ci_low", "ci_high"]);
    bad_input(&["timescales", "--etas", "0.05"], "at least two rungs");
    bad_input(&["timescales", "--etas", "0.05,x"], "--etas");
    bad_input(&["timescales", "--batches", "0,4"], "--batches");
}
