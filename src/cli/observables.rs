//! `simulate --observable`, `--time-average` and `--output-paths`: which functionals of
//! `θ` are recorded at each save time, their time averages over a window, and the file of
//! per-path values.
//!
//! The observables themselves (the Noether charge, the risk, the sharpness, `θ`, the
//! balance eigenvalues of matrix factorisation) are the library's
//! ([`noether_sde::models::spec::observables`]), shared with Python.

use super::{CliError, CliResult};
use noether_sde::analysis::stats::MeanInterval;
use noether_sde::ensemble::PathRecord;
pub use noether_sde::models::spec::observables::{Observable, Recorded};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Parses one `--observable` name (clap value parser).
///
/// # Errors
/// The message lists the names.
pub fn parse_observable(s: &str) -> Result<Observable, String> {
    Observable::parse(s).map_err(|e| match e {
        noether_sde::Error::InvalidParameter { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// A window `[from, to]` of `--time-average FROM:TO`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeWindow {
    /// Start of the window.
    pub from: f64,
    /// End of the window.
    pub to: f64,
}

impl TimeWindow {
    /// Parses `FROM:TO` (clap value parser).
    ///
    /// # Errors
    /// A malformed value, non-finite or negative ends, or `FROM > TO`.
    pub fn parse(s: &str) -> Result<TimeWindow, String> {
        let (a, b) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not of the form FROM:TO (e.g. 5:10)"))?;
        let num = |v: &str| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("`{v}` is not a finite time >= 0"))
        };
        let (from, to) = (num(a)?, num(b)?);
        if from > to {
            return Err(format!("FROM {from} is after TO {to}"));
        }
        Ok(TimeWindow { from, to })
    }

    /// The indices of the save times inside the window.
    ///
    /// # Errors
    /// No save time inside (exit 2).
    pub fn indices(&self, times: &[f64]) -> CliResult<Vec<usize>> {
        let inside: Vec<usize> = (0..times.len())
            .filter(|&i| times[i] >= self.from && times[i] <= self.to)
            .collect();
        if inside.is_empty() {
            return Err(CliError::input(format!(
                "--time-average {}:{}: no save time falls in the window (save times {}…{}); widen it or lower --save-every",
                self.from,
                self.to,
                times.first().copied().unwrap_or(f64::NAN),
                times.last().copied().unwrap_or(f64::NAN)
            )));
        }
        Ok(inside)
    }
}

/// The time averages over `inside` (save-time indices) of every column: per finished
/// path the mean over those save times, then the mean, standard deviation and 95%
/// interval over the paths.
pub fn time_average(
    window: TimeWindow,
    times: &[f64],
    inside: &[usize],
    columns: &[String],
    records: &[noether_sde::Result<PathRecord>],
) -> Value {
    let finished: Vec<&PathRecord> = records.iter().filter_map(|r| r.as_ref().ok()).collect();
    let mut observables = Map::new();
    let mut per_path = vec![0.0; finished.len()];
    for (j, name) in columns.iter().enumerate() {
        for (slot, r) in finished.iter().enumerate() {
            per_path[slot] = inside.iter().map(|&i| r.values[(i, j)]).sum::<f64>() / inside.len() as f64;
        }
        let ci = MeanInterval::from_samples(&per_path, 0.95);
        let std = (ci.std_error * (ci.n as f64).sqrt()).min(f64::MAX);
        let finite = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        observables.insert(
            name.clone(),
            json!({"mean": finite(ci.mean), "std": finite(std), "ci_low": finite(ci.ci_low), "ci_high": finite(ci.ci_high)}),
        );
    }
    json!({
        "from": window.from,
        "to": window.to,
        "save_times": inside.iter().map(|&i| times[i]).collect::<Vec<_>>(),
        "paths": finished.len(),
        "definition": "per finished path, the mean of each observable over the save times in [from, to]; then the mean, standard deviation and 95% interval (Student t) over the paths",
        "observables": observables,
    })
}

/// The format of `--output-paths`, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathsFormat {
    /// `.csv`: `path,t,<columns>`.
    Csv,
    /// `.jsonl` / `.ndjson`: one object `{"path", "t", <columns>}` per line.
    JsonLines,
}

impl PathsFormat {
    /// The format of `file`.
    ///
    /// # Errors
    /// Another extension (exit 2).
    pub fn of(file: &Path) -> CliResult<PathsFormat> {
        match file
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(PathsFormat::Csv),
            Some("jsonl" | "ndjson") => Ok(PathsFormat::JsonLines),
            _ => Err(CliError::input(format!(
                "--output-paths {}: the file must end in .csv or .jsonl (JSON lines)",
                file.display()
            ))),
        }
    }
}

/// Writes one row per finished path × save time to `file`; returns the number of rows.
/// Diverged paths are left out (the run's output counts them).
///
/// # Errors
/// The file cannot be written (exit 1).
pub fn write_paths(
    file: &PathBuf,
    format: PathsFormat,
    times: &[f64],
    columns: &[String],
    records: &[noether_sde::Result<PathRecord>],
) -> CliResult<u64> {
    let fail = |e: std::io::Error| CliError {
        message: format!("--output-paths {}: cannot write: {e}", file.display()),
        code: 1,
    };
    let handle = std::fs::File::create(file).map_err(fail)?;
    let mut w = std::io::BufWriter::new(handle);
    let mut rows = 0;
    if format == PathsFormat::Csv {
        writeln!(w, "path,t,{}", columns.join(",")).map_err(fail)?;
    }
    let mut line = String::new();
    for r in records.iter().filter_map(|r| r.as_ref().ok()) {
        for (i, t) in times.iter().enumerate() {
            line.clear();
            match format {
                PathsFormat::Csv => {
                    line.push_str(&format!("{},{t}", r.path));
                    for j in 0..columns.len() {
                        let v = r.values[(i, j)];
                        line.push(',');
                        if v.is_finite() {
                            line.push_str(&v.to_string());
                        }
                    }
                }
                PathsFormat::JsonLines => {
                    let mut o = Map::new();
                    o.insert("path".into(), json!(r.path));
                    o.insert("t".into(), json!(t));
                    for (j, c) in columns.iter().enumerate() {
                        let v = r.values[(i, j)];
                        o.insert(c.clone(), if v.is_finite() { json!(v) } else { Value::Null });
                    }
                    line.push_str(&Value::Object(o).to_string());
                }
            }
            writeln!(w, "{line}").map_err(fail)?;
            rows += 1;
        }
    }
    w.flush().map_err(fail)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_select_save_times() {
        let w = TimeWindow::parse("1:2.5").expect("valid");
        assert_eq!(w.indices(&[0.0, 1.0, 2.0, 3.0]).expect("inside"), vec![1, 2]);
        assert!(TimeWindow::parse("2:1").is_err());
        assert!(TimeWindow::parse("2").is_err());
        assert!(TimeWindow::parse("-1:2").is_err());
        assert!(w.indices(&[0.0, 3.0]).is_err());
    }
}
