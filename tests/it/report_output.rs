//! `reproduce`'s output, run for real on the two cheapest claim families: files appear
//! atomically (temporary name, then rename, report.md last), an existing non-empty
//! directory the tool did not write is refused without `--force`, I/O failures are one
//! `error:` line with the operating system's message and exit code 1, and a failed write
//! leaves no file of the run behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_noether-sde");

/// The cheapest family (under a second with `--quick`).
const CHEAP: &str = "normalized_layer";

fn reproduce(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["reproduce", "--quick", "--out"];
    let out = out.to_str().expect("utf-8 path");
    args.push(out);
    args.extend_from_slice(extra);
    Command::new(BIN).args(&args).output().expect("the binary runs")
}

/// A fresh directory path (not created) unique to this process and `name`.
fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("noether-sde-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Exit code `code`, exactly one stderr line `error: …` mentioning `mentions`, nothing on
/// stdout, no Rust `Debug` dump.
fn one_line_error(out: &Output, code: i32, mentions: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(mentions), "`{}` lacks `{mentions}`", lines[0]);
    for debug in ["Os {", "BackendError", "DrawingError", "panicked"] {
        assert!(!stderr.contains(debug), "a Debug dump: {stderr}");
    }
    assert!(out.stdout.is_empty(), "printed to stdout on error");
}

#[test]
fn writes_every_figure_as_svg_and_png_with_a_manifest_and_escaped_cells() {
    let dir = fresh("full");
    let out = reproduce(&dir, &["--only", "normalized_layer,warmup"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files = names(&dir);
    for f in [
        ".noether-sde-report",
        "normalized_layer.png",
        "normalized_layer.svg",
        "report.md",
        "results.json",
        "sharpness.png",
        "sharpness.svg",
    ] {
        assert!(files.contains(&f.to_string()), "{f} missing from {files:?}");
    }
    assert!(
        !files.iter().any(|f| f.contains(".tmp-")),
        "temporary files left: {files:?}"
    );
    let png = std::fs::read(dir.join("sharpness.png")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // `|` inside a table cell is escaped, so the row keeps its four cells
    let md = std::fs::read_to_string(dir.join("report.md")).expect("report");
    let row = md
        .lines()
        .find(|l| l.starts_with("| progressive flattening"))
        .expect("row");
    assert!(row.contains(r"4\|v\|"), "{row}");
    assert_eq!(row.replace(r"\|", "").matches('|').count(), 5, "{row}");
    // every figure's data is in results.json, points with their standard errors
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("json"))
            .expect("valid");
    let series = &json["figures"]["sharpness"]["panels"][0]["series"][0];
    assert!(series["points"][0]["se"].is_number(), "{series}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_tools_own_directory_is_replaced_and_stale_files_removed() {
    let dir = fresh("rerun");
    for family in [CHEAP, CHEAP, "warmup"] {
        let out = reproduce(&dir, &["--only", family]);
        assert!(
            out.status.success(),
            "{family}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let files = names(&dir);
    assert!(files.contains(&"sharpness.svg".to_string()), "{files:?}");
    assert!(
        !files.contains(&"normalized_layer.svg".to_string()),
        "stale file kept: {files:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_non_empty_directory_is_refused_without_force() {
    let dir = fresh("foreign");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("notes.txt"), b"mine").expect("file");
    let out = reproduce(&dir, &["--only", CHEAP]);
    one_line_error(&out, 2, "--force");
    assert_eq!(names(&dir), ["notes.txt"], "nothing written");
    // with --force the report is written beside the file, which is kept
    let out = reproduce(&dir, &["--only", CHEAP, "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(dir.join("notes.txt")).expect("kept"), b"mine");
    assert!(dir.join("report.md").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_directory_is_one_line_and_exit_code_1() {
    // a path below a regular file cannot be created, whoever runs the test (root too)
    let base = fresh("unwritable");
    std::fs::create_dir_all(&base).expect("dir");
    let file = base.join("a-file");
    std::fs::write(&file, b"").expect("file");
    let out = reproduce(&file.join("report"), &["--only", CHEAP]);
    one_line_error(&out, 1, "os error");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_failed_write_leaves_no_file_of_the_run() {
    // `results.json` is a non-empty directory: its rename fails after the figures are in
    // place, and the run takes them back out
    let dir = fresh("failing");
    std::fs::create_dir_all(dir.join("results.json")).expect("dir");
    std::fs::write(dir.join("results.json").join("keep"), b"x").expect("file");
    let out = reproduce(&dir, &["--only", CHEAP, "--force"]);
    one_line_error(&out, 1, "results.json");
    assert_eq!(names(&dir), ["results.json"], "files of the failed run remain");
    assert!(dir.join("results.json").join("keep").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_claim_family_is_refused_with_the_known_names() {
    let dir = fresh("unknown");
    let out = reproduce(&dir, &["--only", "no_such_claim"]);
    one_line_error(&out, 2, "no_such_claim");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for known in ["orders", "noether_flow", "timescales", "warmup"] {
        assert!(stderr.contains(known), "{stderr}");
    }
    assert!(!dir.exists(), "created the directory for an invalid run");
}
