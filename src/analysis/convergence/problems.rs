//! The problems of the work–precision set ([`super::work_precision`]): their names,
//! one-line summaries, parameters with defaults, noise class and default step ladders
//! (THEORY §8, "Work–precision"). The SDE each name stands for is built in
//! [`super::work_precision`]; this file is the table the CLI's `--problem`/`--param`
//! help and validation read.

use crate::error::{Error, Result};
use crate::sde::Noise;

/// One problem of the work–precision set: its name, what it is, and its parameters with
/// their defaults.
#[derive(Debug, Clone, Copy)]
pub struct ProblemSpec {
    /// The name (`--problem`).
    pub name: &'static str,
    /// One line.
    pub summary: &'static str,
    /// `(key, default, meaning)`; every problem also takes `t_end` (default 1).
    pub params: &'static [(&'static str, f64, &'static str)],
    /// The noise class (decides which schemes apply).
    pub noise: Noise,
    /// Default ladder of dyadic levels `(coarsest, finest)` (`h = T/2^ℓ`) for strong studies.
    pub strong_levels: (u32, u32),
    /// The same for weak studies.
    pub weak_levels: (u32, u32),
}

/// The problems, in the order of the module table.
pub const PROBLEMS: &[ProblemSpec] = &[
    ProblemSpec {
        name: "gbm",
        summary: "geometric Brownian motion dX = μX dt + sX dW, exact reference",
        params: &[
            ("mu", 1.5, "drift μ"),
            ("s", 0.5, "volatility s"),
            ("x0", 1.0, "start X₀"),
        ],
        noise: Noise::Scalar,
        strong_levels: (4, 9),
        weak_levels: (1, 6),
    },
    ProblemSpec {
        name: "ou",
        summary: "Ornstein–Uhlenbeck dX = θ(μ − X) dt + σ dW (additive noise)",
        params: &[
            ("theta", 1.0, "mean reversion θ"),
            ("mu", 0.5, "mean μ"),
            ("sigma", 0.8, "noise σ"),
            ("x0", 2.0, "start X₀"),
        ],
        noise: Noise::Additive,
        strong_levels: (3, 8),
        weak_levels: (1, 6),
    },
    ProblemSpec {
        name: "noncommutative",
        summary: "dX₁ = dW₁, dX₂ = sin X₁ dW₂ (general, non-commutative noise)",
        params: &[("x1", 0.0, "start X₁"), ("x2", 0.0, "start X₂")],
        noise: Noise::General,
        strong_levels: (4, 8),
        weak_levels: (1, 6),
    },
    ProblemSpec {
        name: "double_well",
        summary: "dX = (X − X³) dt + σ dW (additive noise, nonlinear drift)",
        params: &[("sigma", 1.0, "noise σ"), ("x0", 0.0, "start X₀")],
        noise: Noise::Additive,
        strong_levels: (4, 9),
        weak_levels: (1, 6),
    },
    ProblemSpec {
        name: "scalar_factorization",
        summary: "the SGD-SDE of scalar factorisation (population; THEORY §1, §6.1), scalar noise",
        params: &[
            ("v", 1.0, "teacher v"),
            ("sigma", 0.5, "label noise σ"),
            ("eta", 0.1, "learning rate η"),
            ("batch", 4.0, "batch size B"),
            ("u0", 1.2, "start u"),
            ("w0", 0.8, "start w"),
            ("order", 1.0, "modified equation: 1 (SME-1) or 2 (SME-2)"),
            (
                "phi",
                0.0,
                "weak observable: 0 the charge C = u² − w², 1 the product uw",
            ),
        ],
        noise: Noise::Scalar,
        strong_levels: (3, 8),
        weak_levels: (1, 6),
    },
    ProblemSpec {
        name: "linear_regression",
        summary: "the SGD-SDE of linear regression (population, d = 3; THEORY §6.4), general noise",
        params: &[
            ("eta", 0.1, "learning rate η"),
            ("batch", 4.0, "batch size B"),
            ("sigma", 0.5, "label noise σ"),
            ("order", 1.0, "modified equation: 1 (SME-1) or 2 (SME-2)"),
        ],
        noise: Noise::General,
        strong_levels: (3, 8),
        weak_levels: (1, 6),
    },
];

/// The problem named `name`.
///
/// # Errors
/// [`Error::InvalidParameter`] for an unknown name, listing the known ones.
pub fn problem(name: &str) -> Result<&'static ProblemSpec> {
    PROBLEMS.iter().find(|p| p.name == name).ok_or_else(|| {
        let known: Vec<&str> = PROBLEMS.iter().map(|p| p.name).collect();
        Error::invalid(
            "problem",
            name,
            format!("unknown problem; known: {}", known.join(", ")),
        )
    })
}

impl ProblemSpec {
    /// The parameter values: the defaults overridden by `overrides` (`t_end` included).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (name `param`) for an unknown key, a repeated key or a
    /// non-finite value.
    pub fn resolve(&self, overrides: &[(String, f64)]) -> Result<Vec<(&'static str, f64)>> {
        let mut values: Vec<(&'static str, f64)> = self.params.iter().map(|&(k, v, _)| (k, v)).collect();
        values.push(("t_end", 1.0));
        for (i, (key, value)) in overrides.iter().enumerate() {
            if overrides[..i].iter().any(|(k, _)| k == key) {
                return Err(Error::invalid("param", key, "given twice"));
            }
            let Some(slot) = values.iter_mut().find(|(k, _)| *k == key.as_str()) else {
                let known: Vec<&str> = self.params.iter().map(|p| p.0).chain(["t_end"]).collect();
                return Err(Error::invalid(
                    "param",
                    key,
                    format!("not a parameter of {}; known: {}", self.name, known.join(", ")),
                ));
            };
            if !value.is_finite() {
                return Err(Error::invalid(
                    "param",
                    format!("{key}={value}"),
                    "must be finite",
                ));
            }
            slot.1 = *value;
        }
        Ok(values)
    }
}
