//! What a run of a built-in model records at each save time: the Noether charge `θᵀAθ`
//! (THEORY §2), the risk `L(θ)` and the sharpness `λ_max(∇²L(θ))` (THEORY §1), the
//! coordinates of `θ`, and for matrix factorisation the eigenvalues of the two sides of
//! the balance equation, `WΣ_xWᵀ` and `UᵀΣ_εU` (THEORY §6.2: at the noise equilibrium
//! `Tr(Σ_ε)WΣ_xWᵀ = Tr(Σ_x)UᵀΣ_εU`). Only the risk and the sharpness touch the whole
//! data set; leaving them out makes a save cost `O(D)` whatever the data-set size. The
//! command line (`--observable`) and Python (`observables=`) both resolve names here.

use super::{AnyModel, Built, Setup};
use crate::error::{Error, Result};
use crate::models::MatrixFactorization;
use nalgebra::{DMatrix, DVector};
use serde_json::{json, Map, Value};

/// One observable (several columns for `theta` and the eigenvalues).
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

/// The observables with their names and definitions, in the order help lists them.
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

/// What a run records when no observable is named.
pub const DEFAULT_OBSERVABLES: [Observable; 3] =
    [Observable::Charge, Observable::Loss, Observable::Sharpness];

/// The most columns a run may record.
pub const MAX_COLUMNS: usize = 4096;

impl Observable {
    /// Parses one name.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`observable`) listing the names.
    pub fn parse(s: &str) -> Result<Observable> {
        let s = s.trim().to_ascii_lowercase();
        OBSERVABLES
            .iter()
            .find(|(name, _, _)| *name == s)
            .map(|(_, o, _)| *o)
            .ok_or_else(|| {
                let known: Vec<&str> = OBSERVABLES.iter().map(|(n, _, _)| *n).collect();
                Error::invalid(
                    "observable",
                    &s,
                    format!("unknown observable '{s}'; known: {}", known.join(", ")),
                )
            })
    }

    /// The name.
    pub fn name(self) -> &'static str {
        OBSERVABLES
            .iter()
            .find(|(_, o, _)| *o == self)
            .map_or("?", |(n, _, _)| n)
    }

    /// The definition.
    pub fn definition(self) -> &'static str {
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
}

impl Recorded {
    /// Resolves `requested` (empty: [`DEFAULT_OBSERVABLES`]) for `built`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`observable`) for a repeated observable, one the
    /// model does not have, or more than [`MAX_COLUMNS`] columns.
    pub fn resolve(requested: &[Observable], built: &Built) -> Result<Recorded> {
        let chosen: Vec<Observable> = if requested.is_empty() {
            DEFAULT_OBSERVABLES.to_vec()
        } else {
            requested.to_vec()
        };
        for (i, o) in chosen.iter().enumerate() {
            if chosen[..i].contains(o) {
                return Err(Error::invalid("observable", o.name(), "given twice"));
            }
        }
        let dim = built.setup.theta0.len();
        let mut columns = Vec::new();
        for &o in &chosen {
            match o {
                Observable::Theta => columns.extend((0..dim).map(|i| format!("theta_{i}"))),
                Observable::EigWsw | Observable::EigUsu => {
                    let (true, AnyModel::Matrix(mf)) =
                        (built.spec.extra_observables.contains(&o), &built.setup.model)
                    else {
                        return Err(Error::invalid(
                            "observable",
                            o.name(),
                            format!(
                                "only matrix_factorization has it (this model is {})",
                                built.spec.name
                            ),
                        ));
                    };
                    let hidden = mf.shape().1;
                    columns.extend((0..hidden).map(|i| format!("{}_{i}", o.name())));
                }
                _ => columns.push(o.name().to_string()),
            }
        }
        if columns.len() > MAX_COLUMNS {
            return Err(Error::invalid(
                "observable",
                "",
                format!("{} columns, at most {MAX_COLUMNS}", columns.len()),
            ));
        }
        Ok(Recorded { chosen, columns })
    }

    /// The recorded columns, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Whether `o` is recorded.
    pub fn has(&self, o: Observable) -> bool {
        self.chosen.contains(&o)
    }

    /// The definition of every chosen observable, by name (for an output's header).
    pub fn definitions(&self) -> Value {
        Value::Object(
            self.chosen
                .iter()
                .map(|o| (o.name().to_string(), json!(o.definition())))
                .collect::<Map<_, _>>(),
        )
    }

    /// Writes the columns at `θ = x` into `out` (length [`Recorded::columns`]); a
    /// sharpness whose power iteration fails is NaN.
    pub fn eval(&self, setup: &Setup, x: &DVector<f64>, out: &mut [f64]) {
        let mut at = 0;
        for &o in &self.chosen {
            match o {
                Observable::Charge => {
                    out[at] = setup.charge.at(x);
                    at += 1;
                }
                Observable::Loss => {
                    out[at] = setup.risk(x);
                    at += 1;
                }
                Observable::Sharpness => {
                    out[at] = setup.sharpness(x).unwrap_or(f64::NAN);
                    at += 1;
                }
                Observable::Theta => {
                    out[at..at + x.len()].copy_from_slice(x.as_slice());
                    at += x.len();
                }
                Observable::EigWsw | Observable::EigUsu => {
                    let AnyModel::Matrix(mf) = &setup.model else {
                        continue;
                    };
                    let eig = balance_eigenvalues(mf, x, o == Observable::EigWsw);
                    out[at..at + eig.len()].copy_from_slice(&eig);
                    at += eig.len();
                }
            }
        }
    }
}

/// The eigenvalues, descending, of `WΣ_xWᵀ` (`wsw`) or `UᵀΣ_εU` at `θ`.
pub fn balance_eigenvalues(mf: &MatrixFactorization, theta: &DVector<f64>, wsw: bool) -> Vec<f64> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
