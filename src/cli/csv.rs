//! `--format csv`: a `simulate` (or `merge`) result in long format, one row per saved
//! time × observable × statistic:
//!
//! ```text
//! t,observable,statistic,value
//! 0,charge,mean,0.5
//! 0,charge,std,0
//! …
//! ```
//!
//! `pandas.read_csv(path)` loads it with no arguments; a statistic that is undefined
//! (e.g. the standard deviation of a single path) is an empty field (NaN in pandas).
//! The observables come in the run's order (`observable_names`); with `--time-average
//! FROM:TO` each also has rows `<name>_time_average` at `t = TO`, the window's end.
//! The run's settings stay in the JSON output (`--format json`).

use serde_json::Value;
use std::fmt::Write;

/// The statistics written for each observable, in this order.
pub const STATISTICS: &[&str] = &["mean", "std", "ci_low", "ci_high"];

/// The long-format CSV of a `simulate`/`merge` JSON object.
pub fn long_csv(out: &Value) -> String {
    let mut s = String::from("t,observable,statistic,value\n");
    let times: Vec<f64> = out["times"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let Some(observables) = out["observables"].as_object() else {
        return s;
    };
    let names: Vec<&String> = match out["observable_names"].as_array() {
        Some(a) => a
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|n| observables.get_key_value(n).map(|(k, _)| k))
            .collect(),
        None => observables.keys().collect(),
    };
    let mut row = |t: f64, name: &str, series: &Value, i: Option<usize>| {
        for stat in STATISTICS {
            let value = match i {
                Some(i) => series[*stat].get(i).and_then(Value::as_f64),
                None => series[*stat].as_f64(),
            };
            let _ = match value {
                Some(v) if v.is_finite() => writeln!(s, "{t},{name},{stat},{v}"),
                _ => writeln!(s, "{t},{name},{stat},"),
            };
        }
    };
    for (i, t) in times.iter().enumerate() {
        for name in &names {
            row(*t, name, &observables[*name], Some(i));
        }
    }
    if let (Some(to), Some(averages)) = (
        out["time_average"]["to"].as_f64(),
        out["time_average"]["observables"].as_object(),
    ) {
        for name in &names {
            if let Some(series) = averages.get(*name) {
                row(to, &format!("{name}_time_average"), series, None);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_time_observable_statistic() {
        let out = serde_json::json!({
            "times": [0.0, 0.5],
            "observables": {
                "charge": {"mean": [1.0, 0.25], "std": [0.0, 0.1], "ci_low": [1.0, 0.2], "ci_high": [1.0, 0.3]},
                "loss": {"mean": [2.0, 1.5], "std": [null, null], "ci_low": [null, null], "ci_high": [null, null]},
            },
        });
        let csv = long_csv(&out);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "t,observable,statistic,value");
        assert_eq!(lines.len(), 1 + 2 * 2 * 4);
        assert!(lines.iter().all(|l| l.split(',').count() == 4), "{csv}");
        assert_eq!(lines[1], "0,charge,mean,1");
        assert_eq!(lines[1 + 4 + 1], "0,loss,std,");
        assert_eq!(lines[1 + 8], "0.5,charge,mean,0.25");
    }
}
