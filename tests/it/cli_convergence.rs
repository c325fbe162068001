//! `noether-sde convergence` beyond the suite: `--scheme all`, `--param`, `--dts`,
//! `--reference-offset`, `--view work-precision`, CSV output and its bad input (exit 2,
//! one `error:` line).

use super::cli::{as_strs as strs, bad_input, json, run};

/// A small OU work–precision set: every scheme that accepts additive noise.
fn ou_all(extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "convergence",
        "--problem",
        "ou",
        "--scheme",
        "all",
        "--kind",
        "strong",
        "--view",
        "work-precision",
        "--dts",
        "0.125,0.0625,0.03125",
        "--reference-offset",
        "2",
        "--paths",
        "60",
        "--param",
        "sigma=0.5",
    ];
    v.extend_from_slice(extra);
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn work_precision_json_has_every_applicable_scheme_and_deterministic_costs() {
    let v = json(&strs(&ou_all(&["--json"])));
    assert_eq!(v["view"], "work-precision");
    assert_eq!(v["problem"], "ou");
    assert_eq!(v["reference_offset"], 2);
    let params = v["params"].as_array().expect("params");
    assert!(params.iter().any(|p| p[0] == "sigma" && p[1] == 0.5), "{v}");
    let series = v["series"].as_array().expect("series");
    let names: Vec<&str> = series.iter().filter_map(|s| s["scheme"].as_str()).collect();
    for s in ["euler_maruyama", "milstein", "heun", "euler_heun", "dri1", "sra1"] {
        assert!(names.contains(&s), "{s} missing from {names:?}");
    }
    // weak-only and scalar/diagonal-only schemes are listed as skipped, with a reason
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter_map(|s| s[0].as_str())
        .collect();
    assert!(
        skipped.contains(&"dri1_three_point") && skipped.contains(&"sriw1"),
        "{skipped:?}"
    );
    for s in series {
        let points = s["points"].as_array().expect("points");
        let hs: Vec<f64> = points.iter().map(|p| p["h"].as_f64().unwrap()).collect();
        assert_eq!(hs, vec![0.125, 0.0625, 0.03125], "{}", s["scheme"]);
        // fixed steps: the evaluations per path are a whole number per step, the same
        // at every step size
        let per_step: Vec<f64> = points
            .iter()
            .map(|p| p["evaluations"].as_f64().unwrap() / p["steps"].as_f64().unwrap())
            .collect();
        assert!(
            per_step
                .iter()
                .all(|&c| c == per_step[0] && c >= 2.0 && c.fract() == 0.0),
            "{per_step:?}"
        );
        assert!(points
            .iter()
            .all(|p| p["wall_seconds_per_path"].as_f64().unwrap() >= 0.0));
        assert!(s["order"]["ci_low"].as_f64() < s["order"]["ci_high"].as_f64());
    }
    // the cost measure tells the schemes apart: EM 2 per step, SRA1 5 (2 drift + 3 diffusion)
    let per_step = |name: &str| {
        let s = series.iter().find(|s| s["scheme"] == name).unwrap();
        s["points"][0]["evaluations"].as_f64().unwrap() / s["points"][0]["steps"].as_f64().unwrap()
    };
    assert_eq!(per_step("euler_maruyama"), 2.0);
    assert_eq!(per_step("sra1"), 5.0);
    assert!(v["crossovers"].is_array());
}

#[test]
fn work_precision_is_reproducible_and_csv_has_one_row_per_scheme_and_step() {
    let a = json(&strs(&ou_all(&["--json"])));
    let b = json(&strs(&ou_all(&["--json"])));
    let errors = |v: &serde_json::Value| -> Vec<f64> {
        v["series"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s["points"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["error"].as_f64().unwrap())
            })
            .collect()
    };
    assert_eq!(errors(&a), errors(&b), "same seed, same errors");
    let out = run(&strs(&ou_all(&["--format", "csv"])));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("problem,kind,scheme,h,steps,error,std_error"),
        "{header}"
    );
    let columns = header.split(',').count();
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3 * a["series"].as_array().unwrap().len());
    assert!(rows
        .iter()
        .all(|r| r.split(',').count() == columns && r.starts_with("ou,strong,")));
    // text view: one block per scheme
    let text = run(&strs(&ou_all(&[])));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("sra1: order") && text.contains("evals/path"),
        "{text}"
    );
}

/// `--param` reaches the problem: GBM's exact reference at another μ gives other errors;
/// a single scheme with `--dts` runs the work–precision route with those steps; the SGD-SDE
/// problems take their own parameters.
#[test]
fn params_and_dts_reach_the_study() {
    let gbm = |mu: &str| {
        json(&[
            "convergence",
            "--problem",
            "gbm",
            "--scheme",
            "em",
            "--kind",
            "strong",
            "--dts",
            "0.25,0.125",
            "--paths",
            "50",
            "--param",
            mu,
            "--json",
        ])
    };
    let (a, b) = (gbm("mu=0.5"), gbm("mu=1.5"));
    assert_eq!(a["series"].as_array().unwrap().len(), 1);
    assert_ne!(
        a["series"][0]["points"][0]["error"],
        b["series"][0]["points"][0]["error"]
    );
    assert!(a["reference_offset"].is_null(), "GBM's reference is exact");
    let v = json(&[
        "convergence",
        "--problem",
        "scalar_factorization",
        "--scheme",
        "dri1",
        "--kind",
        "weak",
        "--param",
        "order=2",
        "--param",
        "eta=0.2",
        "--dts",
        "0.5,0.25",
        "--reference-offset",
        "1",
        "--paths",
        "40",
        "--json",
    ]);
    assert_eq!(v["series"][0]["scheme"], "dri1");
    assert_eq!(v["series"][0]["expected_order"], 2.0);
}

#[test]
fn work_precision_bad_input_is_one_error_line_and_exit_code_2() {
    let base = [
        "convergence",
        "--problem",
        "gbm",
        "--scheme",
        "all",
        "--kind",
        "strong",
    ];
    fn join<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra).copied().collect()
    }
    let with = |extra: &[&'static str]| join(&base, extra);
    bad_input(&with(&["--param", "nope=1"]), "nope");
    bad_input(&with(&["--param", "mu"]), "key=value");
    bad_input(&with(&["--param", "mu=abc"]), "abc");
    bad_input(&with(&["--param", "mu=1", "--param", "mu=2"]), "twice");
    bad_input(&with(&["--dts", "0.3,0.1"]), "--dts");
    bad_input(&with(&["--dts", "0.25"]), "two step sizes");
    bad_input(&with(&["--dts", "0.25,x"]), "'x' is not a number");
    bad_input(&with(&["--reference-offset", "9"]), "--reference-offset");
    bad_input(&with(&["--view", "nope"]), "nope");
    bad_input(&with(&["--paths", "0"]), "--paths");
    bad_input(
        &with(&["--paths", "1", "--dts", "0.25,0.125"]),
        "at least 2 paths",
    );
    bad_input(&with(&["--paths", "100000000", "--dts", "0.25,0.125"]), "budget");
    // an explicitly named scheme that does not apply
    bad_input(
        &[
            "convergence",
            "--problem",
            "noncommutative",
            "--scheme",
            "sriw1",
            "--kind",
            "strong",
            "--view",
            "work-precision",
        ],
        "does not accept general noise",
    );
    bad_input(
        &[
            "convergence",
            "--problem",
            "gbm",
            "--scheme",
            "dri1-3p",
            "--kind",
            "strong",
            "--dts",
            "0.5,0.25",
        ],
        "no strong order",
    );
    bad_input(
        &[
            "convergence",
            "--problem",
            "scalar_factorization",
            "--scheme",
            "em",
            "--kind",
            "weak",
            "--param",
            "order=3",
        ],
        "order",
    );
}
