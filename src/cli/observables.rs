//! `simulate --observable`, `--time-average` and `--output-paths`: which functionals of
//! `θ` are recorded at each save time, their time averages over a window, and the file of
//! per-path values.
//!
//! The observables: the Noether charge `θᵀAθ` (THEORY §2), the risk `L(θ)` and the
//! sharpness `λ_max(∇²L(θ))` (THEORY §1), the coordinates of `θ`, and for matrix
//! factorisation the eigenvalues of the two sides of the balance equation, `WΣ_xWᵀ` and
//! `UᵀΣ_εU` (THEORY §6.2: at the noise equilibrium `Tr(Σ_ε)WΣ_xWᵀ = Tr(Σ_x)UᵀΣ_εU`).
//! Only the risk and the sharpness touch the whole data set; leaving them out makes a
//! save cost `O(D)` whatever the data-set size.

use super::models::{AnySetup, Built, CliModel, Setup};
use super::{CliError, CliResult};
use nalgebra::{DMatrix, DVector};
use noether_sde::analysis::stats::MeanInterval;
use noether_sde::ensemble::PathRecord;
use noether_sde::models::MatrixFactorization;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One `--observable` choice (several columns for `theta` and the eigenvalues).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observable {
    /// The model's charge (`‖θ‖²` for linear regression).
    Charge,
    /// `L(θ)` on the data set or the population.
    Loss,
    /// `λ_max(∇²L(θ))`.
    Sharpness,
    /// Every coordinate of `θ` (`theta_0`, `theta_1`, …).
    Theta,
    /// Eigenvalues of `WΣ_xWᵀ`, descending (matrix factorisation).
    EigWsw,
    /// Eigenvalues of `UᵀΣ_εU`, descending (matrix factorisation).
    EigUsu,
}

/// The choices with their names and definitions, in the order `--help` lists them.
pub const OBSERVABLES: &[(&str, Observable, &str)] = &[
    ("charge", Observable::Charge, "the model's charge (see `models`)"),
    (
        "loss",
        Observable::Loss,
        "L(θ): the mean loss on the data set, or the population risk (without the weight-decay term); costs one pass over the data set per save",
    ),
    (
        "sharpness",
        Observable::Sharpness,
        "λ_max(∇²L(θ)) by power iteration (relative residual 1e-6, at most 100 products per phase); costs up to 200 passes over the data set per save",
    ),
    ("theta", Observable::Theta, "the coordinates θ_0 … θ_{D−1} of θ (matrix_factorization: θ = [vec U; vec W], column-major)"),
    (
        "eig_wsw",
        Observable::EigWsw,
        "eigenvalues of W Σx Wᵀ (hidden × hidden), descending (matrix_factorization only)",
    ),
    (
        "eig_usu",
        Observable::EigUsu,
        "eigenvalues of Uᵀ Σε U (hidden × hidden), descending (matrix_factorization only)",
    ),
];

/// What `simulate` records when `--observable` is not given.
pub const DEFAULT_OBSERVABLES: [Observable; 3] =
    [Observable::Charge, Observable::Loss, Observable::Sharpness];

impl Observable {
    /// Parses one name (clap value parser).
    ///
    /// # Errors
    /// The message lists the names.
    pub fn parse(s: &str) -> Result<Observable, String> {
        let s = s.trim().to_ascii_lowercase();
        OBSERVABLES
            .iter()
            .find(|(name, _, _)| *name == s)
            .map(|(_, o, _)| *o)
            .ok_or_else(|| {
                format!(
                    "unknown observable '{s}'; known: {}",
                    OBSERVABLES
                        .iter()
                        .map(|(n, _, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        OBSERVABLES
            .iter()
            .find(|(_, o, _)| *o == self)
            .map_or("?", |(n, _, _)| n)
    }

    fn definition(self) -> &'static str {
        OBSERVABLES
            .iter()
            .find(|(_, o, _)| *o == self)
            .map_or("?", |(_, _, d)| d)
    }
}

/// The observables of one run, resolved against its model: their columns and what they
/// need to be evaluated.
#[derive(Debug, Clone)]
pub struct Recorded {
    chosen: Vec<Observable>,
    columns: Vec<String>,
    matrix: Option<MatrixFactorization>,
}

impl Recorded {
    /// Resolves `requested` (empty: [`DEFAULT_OBSERVABLES`]) for `built`.
    ///
    /// # Errors
    /// A repeated observable, or one the model does not have (exit 2).
    pub fn resolve(requested: &[Observable], built: &Built) -> CliResult<Recorded> {
        let chosen: Vec<Observable> = if requested.is_empty() {
            DEFAULT_OBSERVABLES.to_vec()
        } else {
            requested.to_vec()
        };
        for (i, o) in chosen.iter().enumerate() {
            if chosen[..i].contains(o) {
                return Err(CliError::input(format!("--observable {}: given twice", o.name())));
            }
        }
        let matrix = match &built.setup {
            AnySetup::Matrix(s) => Some(s.model.clone()),
            _ => None,
        };
        let dim = super::models::with_setup!(&built.setup, s => s.theta0.len());
        let mut columns = Vec::new();
        for &o in &chosen {
            match o {
                Observable::Theta => columns.extend((0..dim).map(|i| format!("theta_{i}"))),
                Observable::EigWsw | Observable::EigUsu => {
                    let Some(mf) = &matrix else {
                        return Err(CliError::input(format!(
                            "--observable {}: only matrix_factorization has it (this model is {})",
                            o.name(),
                            built.spec.name
                        )));
                    };
                    let hidden = mf.shape().1;
                    columns.extend((0..hidden).map(|i| format!("{}_{i}", o.name())));
                }
                _ => columns.push(o.name().to_string()),
            }
        }
        if columns.len() > 4096 {
            return Err(CliError::input(format!(
                "--observable: {} columns, at most 4096",
                columns.len()
            )));
        }
        Ok(Recorded {
            chosen,
            columns,
            matrix,
        })
    }

    /// The recorded columns, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Whether `o` is recorded.
    pub fn has(&self, o: Observable) -> bool {
        self.chosen.contains(&o)
    }

    /// The definition of every chosen observable, by name (for the output's header).
    pub fn definitions(&self) -> Value {
        Value::Object(
            self.chosen
                .iter()
                .map(|o| (o.name().to_string(), json!(o.definition())))
                .collect::<Map<_, _>>(),
        )
    }

    /// Writes the columns at `θ = x` into `out` (length [`Recorded::columns`]).
    pub fn eval<M: CliModel>(&self, setup: &Setup<M>, x: &DVector<f64>, out: &mut [f64]) {
        let data = setup.data.as_ref();
        let mut at = 0;
        for &o in &self.chosen {
            match o {
                Observable::Charge => {
                    out[at] = setup.charge.at(x);
                    at += 1;
                }
                Observable::Loss => {
                    out[at] = setup.model.risk(data, x);
                    at += 1;
                }
                Observable::Sharpness => {
                    out[at] = setup.model.sharpness(data, x).unwrap_or(f64::NAN);
                    at += 1;
                }
                Observable::Theta => {
                    out[at..at + x.len()].copy_from_slice(x.as_slice());
                    at += x.len();
                }
                Observable::EigWsw | Observable::EigUsu => {
                    let Some(mf) = &self.matrix else { continue };
                    let eig = balance_eigenvalues(mf, x, o == Observable::EigWsw);
                    out[at..at + eig.len()].copy_from_slice(&eig);
                    at += eig.len();
                }
            }
        }
    }
}

/// The eigenvalues, descending, of `WΣ_xWᵀ` (`wsw`) or `UᵀΣ_εU` at `θ`.
fn balance_eigenvalues(mf: &MatrixFactorization, theta: &DVector<f64>, wsw: bool) -> Vec<f64> {
    let (u, w) = mf.unpack(theta);
    let m: DMatrix<f64> = if wsw {
        &w * DMatrix::from_diagonal(mf.input_variances()) * w.transpose()
    } else {
        u.transpose() * DMatrix::from_diagonal(mf.label_noise_variances()) * &u
    };
    let mut eig: Vec<f64> = m.symmetric_eigen().eigenvalues.iter().copied().collect();
    eig.sort_by(|a, b| b.total_cmp(a));
    eig
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

    #[test]
    fn every_observable_parses_by_its_name() {
        for (name, o, _) in OBSERVABLES {
            assert_eq!(Observable::parse(name), Ok(*o));
            assert_eq!(o.name(), *name);
        }
        assert!(Observable::parse("entropy").is_err());
    }

    #[test]
    fn balance_eigenvalues_are_those_of_the_two_sides() {
        let mf = MatrixFactorization::new(
            DMatrix::from_row_slice(1, 2, &[1.0, 0.5]),
            2,
            DVector::from_vec(vec![1.0, 2.0]),
            DVector::from_vec(vec![0.5]),
        )
        .expect("valid");
        // U = [1, 2] (1 × 2), W = I (2 × 2): WΣxWᵀ = diag(1, 2), UᵀΣεU = 0.5 [1 2; 2 4]
        let theta = MatrixFactorization::pack(
            &DMatrix::from_row_slice(1, 2, &[1.0, 2.0]),
            &DMatrix::identity(2, 2),
        );
        let wsw = balance_eigenvalues(&mf, &theta, true);
        assert!(
            (wsw[0] - 2.0).abs() < 1e-12 && (wsw[1] - 1.0).abs() < 1e-12,
            "{wsw:?}"
        );
        let usu = balance_eigenvalues(&mf, &theta, false);
        assert!((usu[0] - 2.5).abs() < 1e-12 && usu[1].abs() < 1e-12, "{usu:?}");
    }
}
