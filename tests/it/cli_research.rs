//! The research options of the `noether-sde` binary (issue #15), run for real:
//! `--observable`, `--time-average`, `--output-paths`, model parameters such as a
//! teacher or start from a file, the population normalized layer, generated data sets,
//! `predict` at the start, and ReLU networks keeping their charge.

use super::cli::{as_strs, bad_input, has_keys, json, run, simulate, temp_file};
use serde_json::Value;

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
