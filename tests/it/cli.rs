//! The `noether-sde` binary, run for real: the JSON shape of every subcommand, sharded
//! runs merged equal to the unsharded run exactly, and every bad-input case (exit code 2,
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

fn has_keys(v: &Value, keys: &[&str]) {
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
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("noether-sde-cli-{}-{call}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("temp file");
    path
}

/// A tiny `simulate` on a small ensemble.
const TINY: &[&str] = &["--time", "0.4", "--save-every", "0.2", "--paths", "6", "--json"];

fn simulate(model: &str, method: &str, extra: &[&str]) -> Vec<String> {
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

fn merged_equals_unsharded(model: &str, method: &str, paths: &str, shards: u64) -> Value {
    merged_equals_unsharded_with(
        model,
        method,
        paths,
        shards,
        &["--time", "0.5", "--save-every", "0.25"],
    )
}

fn merged_equals_unsharded_with(
    model: &str,
    method: &str,
    paths: &str,
    shards: u64,
    extra: &[&str],
) -> Value {
    let mut common = vec!["--paths", paths, "--seed", "11", "--json"];
    common.extend_from_slice(extra);
    let full_args = simulate(model, method, &common);
    let full = run(&as_strs(&full_args));
    assert!(full.status.success());
    let mut files = Vec::new();
    // shards written in reverse order: merge sorts them
    for i in (0..shards).rev() {
        let shard = format!("{i}/{shards}");
        let mut args = full_args.clone();
        args.extend(["--shard".to_string(), shard]);
        let out = run(&as_strs(&args));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        files.push(temp_file(&format!("{model}-{method}-{i}.json"), &out.stdout));
    }
    let mut args = vec!["merge".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let merged = run(&as_strs(&args));
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let a: Value = serde_json::from_slice(&full.stdout).expect("json");
    let b: Value = serde_json::from_slice(&merged.stdout).expect("json");
    assert_eq!(
        a, b,
        "{model}/{method}: merged shards differ from the unsharded run"
    );
    // bit for bit: the very same text
    assert_eq!(full.stdout, merged.stdout);
    for f in files {
        let _ = std::fs::remove_file(f);
    }
    a
}

#[test]
fn sharded_diverging_runs_merge_to_the_unsharded_run_exactly() {
    // η = 0.3 makes part of the paths diverge (issue 12): they are counted, left out of the
    // statistics, and the shards still merge to the very same bytes
    let full = merged_equals_unsharded_with("scalar_factorization", "em", "40", 3, &["--eta", "0.3"]);
    let diverged = full["diverged"].as_u64().unwrap();
    let finished = full["finished"].as_u64().unwrap();
    assert!(
        diverged > 0 && finished > 0,
        "{diverged} diverged, {finished} finished"
    );
    assert_eq!(diverged + finished, 40);
    assert!(full["first_divergence"].is_string());
    for o in ["charge", "loss", "sharpness"] {
        for m in full["observables"][o]["mean"].as_array().unwrap() {
            assert!(m.as_f64().is_some_and(f64::is_finite), "{o}: mean {m}");
        }
    }
    assert!(full["mergeable"].is_object());
    // a tighter bound makes more paths diverge
    let tight = json(&as_strs(&simulate(
        "scalar_factorization",
        "em",
        &[
            "--eta",
            "0.3",
            "--paths",
            "40",
            "--seed",
            "11",
            "--divergence-bound",
            "10",
            "--json",
        ],
    )));
    assert!(tight["diverged"].as_u64().unwrap() > diverged);
}

#[test]
fn one_path_statistics_are_absent_with_a_reason() {
    let out = json(&as_strs(&simulate(
        "scalar_factorization",
        "em",
        &["--paths", "1", "--time", "0.4", "--json"],
    )));
    assert!(out["undefined"]
        .as_str()
        .unwrap()
        .starts_with("one finished path"));
    assert!(out["observables"]["charge"]["std"][0].is_null());
    assert!(out["observables"]["charge"]["mean"][0].is_number());
}

/// A shard file with one field changed by `edit`.
fn corrupted(name: &str, source: &str, edit: impl Fn(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(source).expect("json");
    edit(&mut v);
    temp_file(name, v.to_string().as_bytes()).display().to_string()
}

#[test]
fn merge_validates_every_shards_structure() {
    let shard = |s: &str| {
        let out = run(&as_strs(&simulate(
            "scalar_factorization",
            "sgd",
            &["--time", "0.2", "--paths", "70", "--shard", s, "--json"],
        )));
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let (zero, one) = (shard("0/2"), shard("1/2"));
    let b = temp_file("v1.json", one.as_bytes()).display().to_string();
    let stats = |v: &mut Value| v["mergeable"]["statistics"].take();
    type Edit<'a> = Box<dyn Fn(&mut Value) + 'a>;
    let cases: Vec<(&str, Edit<'_>)> = vec![
        (
            "mergeable.schema",
            Box::new(|v| v["mergeable"]["schema"] = 1.into()),
        ),
        (
            "mergeable.crate_version",
            Box::new(|v| v["mergeable"]["crate_version"] = "0.0.0".into()),
        ),
        (
            "nodes",
            Box::new(|v| {
                let mut s = stats(v);
                s["nodes"].as_array_mut().unwrap().pop();
                v["mergeable"]["statistics"] = s;
            }),
        ),
        (
            "nodes.mean/m2",
            Box::new(|v| {
                let mut s = stats(v);
                s["nodes"][0]["mean"].as_array_mut().unwrap().pop();
                v["mergeable"]["statistics"] = s;
            }),
        ),
        (
            "divergent",
            Box::new(|v| {
                let mut s = stats(v);
                s["divergent"] = 5.into();
                v["mergeable"]["statistics"] = s;
            }),
        ),
        (
            "nodes.n",
            Box::new(|v| {
                let mut s = stats(v);
                s["nodes"][0]["n"] = 1000.into();
                v["mergeable"]["statistics"] = s;
            }),
        ),
        (
            "mergeable.statistics.paths",
            Box::new(|v| v["shard"] = "1/2".into()),
        ),
        ("shard", Box::new(|v| v["shard"] = "7/2".into())),
    ];
    for (i, (field, edit)) in cases.iter().enumerate() {
        let a = corrupted(&format!("v0-{i}.json"), &zero, edit);
        bad_input(&["merge", &a, &b], field);
        bad_input(&["merge", &a, &b], &a);
        let _ = std::fs::remove_file(a);
    }
    // one unsharded file is already whole: merge gives it back unchanged
    let whole = run(&as_strs(&simulate(
        "scalar_factorization",
        "sgd",
        &["--time", "0.2", "--paths", "5", "--json"],
    )));
    let f = temp_file("whole.json", &whole.stdout).display().to_string();
    assert_eq!(run(&["merge", &f]).stdout, whole.stdout);
    bad_input(&["merge", &f, &b], "unsharded");
    let _ = std::fs::remove_file(f);
    let _ = std::fs::remove_file(b);
}

#[test]
fn sharded_runs_merge_to_the_unsharded_run_exactly() {
    // 70 paths: the cut at 35 splits an aligned block of 64
    merged_equals_unsharded("scalar_factorization", "em", "70", 2);
    merged_equals_unsharded("matrix_factorization", "sgd", "9", 3);
}

#[test]
fn merge_refuses_other_runs_and_missing_or_repeated_shards() {
    let args = |shard: &str, eta: &str| {
        simulate(
            "scalar_factorization",
            "sgd",
            &[
                "--time", "0.2", "--paths", "4", "--eta", eta, "--shard", shard, "--json",
            ],
        )
    };
    let write = |name: &str, shard: &str, eta: &str| {
        let out = run(&as_strs(&args(shard, eta)));
        assert!(out.status.success());
        temp_file(name, &out.stdout).display().to_string()
    };
    let a = write("m0.json", "0/2", "0.05");
    let b = write("m1.json", "1/2", "0.05");
    let other = write("m1-other.json", "1/2", "0.1");
    bad_input(&["merge", &a, &other], "different runs");
    bad_input(&["merge", &a], "missing shard");
    bad_input(&["merge", &a, &a, &b], "same shard");
    let junk = temp_file("junk.json", b"{\"not\": \"a shard\"}");
    bad_input(&["merge", &a, &junk.display().to_string()], "not the output of");
    bad_input(&["merge", "/nonexistent/shard.json"], "cannot read");
    for f in [a, b, other] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_file(junk);
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

/// `--observable` chooses the columns (in order), `--output-paths` writes one row per
/// path × save time (CSV or JSON lines) without changing the statistics (bit for bit:
/// they are reduced from the same records by the same block tree), and `--time-average`
/// averages each path over the save times in the window.
#[test]
fn simulate_observables_time_averages_and_per_path_output() {
    let base = [
        "simulate",
        "--model",
        "matrix_factorization",
        "--method",
        "sgd",
        "--paths",
        "6",
        "--time",
        "2",
        "--save-every",
        "0.5",
        "--observable",
        "charge,eig_wsw",
        "--observable",
        "theta",
        "--json",
    ];
    let plain = json(&base);
    let names: Vec<&str> = plain["observable_names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|v| v.as_str().expect("a name"))
        .collect();
    // hidden = 3 eigenvalues, D = 3·(4 + 2) = 18 coordinates
    assert_eq!(names.len(), 1 + 3 + 18, "{names:?}");
    assert_eq!(
        &names[..5],
        &["charge", "eig_wsw_0", "eig_wsw_1", "eig_wsw_2", "theta_0"]
    );
    assert!(
        plain["observables"].get("loss").is_none(),
        "loss was not asked for"
    );
    let csv_file = temp_file("observables-paths.csv", b"");
    let csv_path = csv_file.to_str().expect("utf-8 path");
    let with_paths = json(&[&base[..], &["--output-paths", csv_path, "--time-average", "1:2"]].concat());
    assert_eq!(with_paths["observables"], plain["observables"]);
    assert_eq!(
        with_paths["mergeable"]["statistics"],
        plain["mergeable"]["statistics"]
    );
    let text = std::fs::read_to_string(&csv_file).expect("written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("path,t,{}", names.join(",")));
    assert_eq!(lines.len(), 1 + 6 * 5, "6 paths × 5 save times");
    assert_eq!(with_paths["paths_file"]["rows"], 30);
    // the per-path rows average to the reported mean (t = 2, the charge)
    let at_end: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[1] == "2")
        .map(|f| f[2].parse().expect("a number"))
        .collect();
    assert_eq!(at_end.len(), 6);
    let mean = at_end.iter().sum::<f64>() / 6.0;
    let reported = plain["observables"]["charge"]["mean"][4].as_f64().expect("mean");
    assert!(
        (mean - reported).abs() <= 1e-12 * reported.abs().max(1.0),
        "{mean} vs {reported}"
    );
    // the time average over t ∈ {1, 1.5, 2} is the mean of the three means
    let avg = &with_paths["time_average"];
    assert_eq!(avg["save_times"], serde_json::json!([1.0, 1.5, 2.0]));
    let means = &plain["observables"]["eig_wsw_0"]["mean"];
    let expected = (2..5).map(|i| means[i].as_f64().expect("mean")).sum::<f64>() / 3.0;
    let got = avg["observables"]["eig_wsw_0"]["mean"].as_f64().expect("mean");
    assert!(
        (got - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "{got} vs {expected}"
    );
    // JSON lines: one object per row
    let jsonl_file = temp_file("observables-paths.jsonl", b"");
    let jsonl_path = jsonl_file.to_str().expect("utf-8 path");
    json(&[&base[..], &["--output-paths", jsonl_path]].concat());
    let rows: Vec<Value> = std::fs::read_to_string(&jsonl_file)
        .expect("written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 30);
    has_keys(&rows[0], &["path", "t", "charge", "eig_wsw_2", "theta_17"]);
    // the long CSV carries the time averages at t = TO
    let out = run(&[
        &base[..base.len() - 1],
        &["--time-average", "1:2", "--format", "csv"],
    ]
    .concat());
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        csv.lines().any(|l| l.starts_with("2,charge_time_average,mean,")),
        "{csv}"
    );
    let _ = std::fs::remove_file(csv_file);
    let _ = std::fs::remove_file(jsonl_file);
    fn sim<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        [
            &["simulate", "--model", "linear_regression", "--method", "em"][..],
            extra,
        ]
        .concat()
    }
    bad_input(&sim(&["--observable", "eig_usu"]), "--observable eig_usu");
    bad_input(&sim(&["--observable", "charge,charge"]), "given twice");
    bad_input(&sim(&["--observable", "entropy"]), "entropy");
    bad_input(&sim(&["--time-average", "3:1"]), "--time-average");
    bad_input(&sim(&["--time-average", "20:30"]), "--time-average 20:30");
    bad_input(&sim(&["--output-paths", "paths.txt"]), "--output-paths");
    bad_input(
        &sim(&["--output-paths", "/nonexistent-dir-cliq/p.csv"]),
        "cannot create",
    );
}

/// Without the full-data observables a save costs O(D): a data set of 10⁶ samples runs
/// with `--observable charge` (with the default observables the run is refused as too
/// much work: 200 passes over 10⁶ samples per save).
#[test]
fn large_data_sets_run_without_full_data_observables() {
    let args = [
        "simulate",
        "--model",
        "normalized_linear",
        "--method",
        "sgd",
        "--param",
        "n=1000000",
        "--paths",
        "4",
        "--time",
        "1",
    ];
    let v = json(&[&args[..], &["--observable", "charge", "--json"]].concat());
    assert_eq!(v["finished"], 4);
    bad_input(&args, "multiply-adds");
}

/// Matrix factorisation's teacher and start from the command line: a given teacher is
/// used (and echoed), `start=file` reads θ₀ (charge ‖U‖² − ‖W‖² at t = 0 from the file),
/// `start=balanced` starts at the balanced-and-aligned minimum (charge matrix diagonal,
/// as `predict`'s equilibrium), `init_seed` moves the random start and only it.
#[test]
fn matrix_factorization_teacher_and_start_from_the_command_line() {
    let sim = |params: &[&str]| {
        let mut args = vec![
            "simulate",
            "--model",
            "matrix_factorization",
            "--method",
            "sgd",
            "--paths",
            "2",
            "--time",
            "0.2",
            "--observable",
            "charge",
            "--json",
        ];
        for p in params {
            args.extend(["--param", p]);
        }
        json(&args)
    };
    let charge0 = |v: &Value| v["observables"]["charge"]["mean"][0].as_f64().expect("charge");
    let v = sim(&["teacher=1,0,0,0,0,1,0,0"]);
    assert_eq!(
        v["params"]["teacher"],
        serde_json::json!([1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    );
    // θ₀ = 0.1 everywhere: U has 2 × 3 entries, W 3 × 4: C = 6·0.01 − 12·0.01
    let file = temp_file("mf-start.txt", "0.1 ".repeat(18).as_bytes());
    let arg = format!("init_file={}", file.display());
    let v = sim(&["start=file", &arg]);
    assert!((charge0(&v) + 0.06).abs() < 1e-12, "{}", charge0(&v));
    let _ = std::fs::remove_file(&file);
    // the balanced minimum of the identity-like teacher: UᵀU − WWᵀ has trace C(0)
    let balanced = sim(&["teacher=1,0,0,0,0,1,0,0", "start=balanced"]);
    let predicted = json(&[
        "predict",
        "--model",
        "matrix_factorization",
        "--param",
        "teacher=1,0,0,0,0,1,0,0",
        "--json",
    ]);
    let trace: f64 = (0..3)
        .map(|i| predicted["equilibrium"][i][i].as_f64().expect("entry"))
        .sum();
    assert!(
        (charge0(&balanced) - trace).abs() < 1e-9,
        "{} vs {trace}",
        charge0(&balanced)
    );
    let a = sim(&["start=random", "init_seed=3"]);
    let b = sim(&["start=random", "init_seed=4"]);
    let c = sim(&["start=random", "init_seed=4"]);
    assert_ne!(a["observables"], b["observables"]);
    assert_eq!(b["observables"], c["observables"]);
    let mf = |p: &[&str]| with_params("matrix_factorization", p);
    bad_input(&as_strs(&mf(&["teacher=1,2"])), "--param teacher");
    bad_input(&as_strs(&mf(&["init_file=x.txt"])), "start=file");
    bad_input(&as_strs(&mf(&["init_seed=2"])), "start=random");
    bad_input(&as_strs(&mf(&["start=file"])), "init_file");
    bad_input(
        &as_strs(&mf(&["start=file", "init_file=/nonexistent-cliq/theta.txt"])),
        "cannot read",
    );
    bad_input(&as_strs(&mf(&["start=balanced", "hidden=1"])), "start=balanced");
}

/// `normalized_linear` on the population: online SGD and the SGD-SDE run with `n = 0`,
/// and `predict` gives the population equilibrium `C* = sqrt(η/B · Tr Σ(θ̂*)/(4γ))`
/// (here Tr Σ = 4σ² Tr(PΣxP) = 3.75: C* = sqrt(1.171875)) beside the finite-data one.
#[test]
fn normalized_linear_runs_on_the_population() {
    for method in ["sgd", "em"] {
        let v = json(&[
            "simulate",
            "--model",
            "normalized_linear",
            "--method",
            method,
            "--param",
            "n=0",
            "--paths",
            "4",
            "--time",
            "0.5",
            "--json",
        ]);
        assert_eq!(v["finished"], 4, "{method}");
    }
    let expected = 1.171875f64.sqrt();
    let finite = json(&["predict", "--model", "normalized_linear", "--json"]);
    let population = finite["population_fixed_point_charge"]
        .as_f64()
        .expect("a number");
    assert!((population - expected).abs() < 1e-9, "{population} vs {expected}");
    let online = json(&[
        "predict",
        "--model",
        "normalized_linear",
        "--param",
        "n=0",
        "--json",
    ]);
    let c = online["fixed_point_charge"].as_f64().expect("a number");
    assert!((c - expected).abs() < 1e-9, "{c} vs {expected}");
}

/// `linear_regression --param d=N` generates a teacher of length N (echoed in
/// `params.theta_star`, norm ≈ 1) with unit input variances and a zero start.
#[test]
fn linear_regression_dimension_with_a_generated_teacher() {
    let v = json(&[
        "simulate",
        "--model",
        "linear_regression",
        "--method",
        "sgd",
        "--param",
        "d=100",
        "--paths",
        "2",
        "--time",
        "0.2",
        "--observable",
        "charge,loss",
        "--json",
    ]);
    let teacher: Vec<f64> = v["params"]["theta_star"]
        .as_array()
        .expect("the teacher")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect();
    assert_eq!(teacher.len(), 100);
    let norm2: f64 = teacher.iter().map(|x| x * x).sum();
    // ‖θ*‖² ~ χ²₁₀₀/100: mean 1, std 0.14; 0.5..1.5 is beyond 3.5 std
    assert!((0.5..1.5).contains(&norm2), "{norm2}");
    assert_eq!(v["params"]["sigma_x"].as_array().map(Vec::len), Some(100));
    assert_eq!(v["observables"]["charge"]["mean"][0], 0.0, "zero start");
    let lr = |p: &[&str]| with_params("linear_regression", p);
    bad_input(&as_strs(&lr(&["d=0"])), "--param d");
    bad_input(&as_strs(&lr(&["d=5000"])), "--param d");
    bad_input(&as_strs(&lr(&["d=3", "theta_star=1,2,3"])), "not both");
    bad_input(&as_strs(&lr(&["d=x"])), "--param d=x");
}

/// `simulate --model MODEL --method sgd` with `--param` for each of `params`.
fn with_params(model: &str, params: &[&str]) -> Vec<String> {
    let mut args = vec!["simulate", "--model", model, "--method", "sgd"];
    for q in params {
        args.extend(["--param", q]);
    }
    args.iter().map(|s| s.to_string()).collect()
}

/// `predict` at the start: the fast rate at θ₀ (scalar factorisation on the valley:
/// λ_max = 2(u² + w²) = 8.5 at (2, 0.5)) and, on the population, the refined law C(t)
/// from the start's charge, decreasing from C(0) = 3.75 below the plain law's
/// 3.75·e^{−4ησ²t/B} (the refined rate is larger).
#[test]
fn predict_gives_the_start_and_the_refined_law() {
    let v = json(&["predict", "--model", "scalar_factorization", "--json"]);
    let fast = v["fast_rate_at_start"].as_f64().expect("a number");
    assert!((fast - 8.5).abs() < 1e-6, "{fast}");
    let law = &v["refined_law"];
    assert_eq!(law["on_valley"], true);
    let c: Vec<f64> = law["charge"]
        .as_array()
        .expect("charges")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect();
    assert_eq!(c.len(), 11);
    assert!((c[0] - 3.75).abs() < 1e-12);
    assert!(c.windows(2).all(|w| w[1] < w[0]), "{c:?}");
    // plain law at t = 10: 3.75 e^{−4·0.05·1/4·10} = 3.75 e^{−0.5}
    assert!(c[10] < 3.75 * (-0.5f64).exp(), "{}", c[10]);
    let rate = v["slow_rate_at_start"].as_f64().expect("a number");
    assert!(rate > 0.05, "{rate}");
}

/// `tanh_net --param activation=relu`: ReLU is positively homogeneous, so the rescaling
/// charge is exact and GD moves it only by its O(η²) per-step error, while tanh breaks
/// it at O(1) (deterministic runs: no level to state).
#[test]
fn tanh_net_takes_relu_and_keeps_its_charge() {
    let drift = |activation: &str| {
        let param = format!("activation={activation}");
        let args = [
            "--time",
            "2",
            "--save-every",
            "2",
            "--paths",
            "1",
            "--json",
            "--observable",
            "charge",
            "--param",
            &param,
        ];
        let v = json(&as_strs(&simulate("tanh_net", "gd", &args)));
        assert_eq!(v["params"]["activation"], activation);
        let c = v["observables"]["charge"]["mean"]
            .as_array()
            .expect("means")
            .clone();
        (c[1].as_f64().expect("a number") - c[0].as_f64().expect("a number")).abs()
    };
    let (relu, tanh) = (drift("relu"), drift("tanh"));
    assert!(relu < 1e-2 && relu < 1e-2 * tanh, "relu {relu:e}, tanh {tanh:e}");
    bad_input(
        &as_strs(&simulate("tanh_net", "gd", &["--param", "activation=gelu"])),
        "activation",
    );
}
