//! Sharded `simulate` runs merged by `noether-sde merge`: equal to the unsharded run
//! bit for bit (diverging paths included), and every malformed, foreign, missing or
//! repeated shard refused with one `error:` line.

use super::cli::{as_strs, bad_input, json, run, simulate, temp_file};
use serde_json::Value;

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
