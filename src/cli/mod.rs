//! The subcommands of the `noether-sde` binary: thin clients of the library that parse,
//! validate at the boundary, call `noether_sde` and print text or one JSON object.
//!
//! Exit codes: 0 success, 1 a runtime failure (or a report claim that failed), 2 invalid
//! input. Every error is one line on stderr starting with `error:`.

pub mod convergence;
pub mod csv;
pub mod models;
pub mod observables;
pub mod predict;
pub mod simulate;
pub mod timescales;

use noether_sde::Error;
use std::fmt;

/// A failure of a subcommand: the one-line message and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The message printed after `error: ` (one line).
    pub message: String,
    /// 2 for invalid input, 1 for runtime failures.
    pub code: i32,
}

impl CliError {
    /// Invalid input (exit code 2).
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 2,
        }
    }

    /// A library error, with what the CLI was doing (`context`, e.g. `"--param"`) in
    /// front. Invalid input (bad parameters, dimensions, non-finite values, incompatible
    /// scheme, non-symmetric generator) exits with 2, everything else with 1.
    pub fn library(context: &str, e: Error) -> Self {
        let code = match e {
            Error::InvalidParameter { .. }
            | Error::DimensionMismatch { .. }
            | Error::NonFinite { .. }
            | Error::Incompatible { .. }
            | Error::NotSymmetric { .. } => 2,
            _ => 1,
        };
        let flag = match &e {
            Error::InvalidParameter { name, .. } => flag_of(name),
            _ => None,
        };
        let message = match (context.is_empty(), flag) {
            (_, Some(flag)) => format!("{flag}: {e}"),
            (true, None) => e.to_string(),
            (false, None) => format!("{context}: {e}"),
        };
        CliError { message, code }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // one line, whatever the library said
        write!(f, "error: {}", self.message.replace('\n', " "))
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::library("", e)
    }
}

/// Result of a subcommand.
pub type CliResult<T> = std::result::Result<T, CliError>;

/// The command-line flag behind a library parameter name, if there is one.
fn flag_of(name: &str) -> Option<&'static str> {
    Some(match name {
        "eta" => "--eta",
        "batch" => "--batch",
        "weight_decay" => "--weight-decay",
        "dt" | "h" => "--dt",
        "divergence_bound" => "--divergence-bound",
        "t1" | "t_end" => "--time",
        "out" => "--out",
        "only" => "--only",
        _ => return None,
    })
}

/// A JSON value for text output: strings without quotes, missing values as `-`.
pub fn show(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => "-".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `value` must be finite and > 0.
pub fn require_positive(flag: &str, value: f64) -> CliResult<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(CliError::input(format!("{flag} {value}: must be finite and > 0")))
    }
}

/// One shard `I/N` of an ensemble: paths `[I·P/N, (I+1)·P/N)` of `P`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// `I`, in `0..N`.
    pub index: u64,
    /// `N ≥ 1`.
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` (clap value parser).
    ///
    /// # Errors
    /// A message for a malformed value or a shard that does not exist (`I ≥ N`, `N = 0`).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not of the form I/N (e.g. 0/4)"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index `{i}` is not a non-negative integer"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count `{n}` is not a non-negative integer"))?;
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard {index}/{count} does not exist: shards are numbered 0..{} for N = {count}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// The paths of this shard out of `paths`.
    pub fn range(&self, paths: u64) -> std::ops::Range<u64> {
        let cut = |i: u64| (u128::from(i) * u128::from(paths) / u128::from(self.count)) as u64;
        cut(self.index)..cut(self.index + 1)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}
