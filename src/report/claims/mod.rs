//! The report's claims, one family per file: each computes its experiments, turns them
//! into verdict rows ([`Claim`]) and figure data ([`Figure`]), and adds raw results for
//! `results.json`. A family runs alone with `noether-sde reproduce --only NAME`.
//!
//! Adding a family is one new file here (a `pub const FAMILY: Family` and its `run`)
//! and its module name in the `families!` list below; adding a row to an existing
//! family (a scheme in the orders table) is a line in that family's source of rows.

use super::{Claim, Figure};
use crate::analysis::stats::MeanInterval;
use crate::brownian::IncrementStream;
use crate::error::Result;
use crate::models::ScalarFactorization;
use crate::observe::{RecordFunctionals, Welford};
use crate::rng::SeedTree;
use crate::scheme::{integrate, EulerMaruyama, Milstein, TimeSpan};
use crate::sgd::{DiscreteSgd, SgdConfig, SgdSde};
use nalgebra::DVector;

/// Declares the family modules and [`FAMILIES`], in report order, from one list.
macro_rules! families {
    ($($module:ident),+ $(,)?) => {
        $(mod $module;)+
        /// Every claim family, in report order.
        pub const FAMILIES: &[Family] = &[$($module::FAMILY),+];
    };
}

families!(
    orders,
    noether_flow,
    timescales,
    matrix_factorization,
    normalized_layer,
    approximate_symmetry,
    warmup,
    sme2,
);

/// One family of claims.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// The name `--only` takes.
    pub name: &'static str,
    /// What it checks (THEORY section), one line.
    pub summary: &'static str,
    /// Computes the claims, figures and results.
    pub run: fn(&Context) -> Result<Outcome>,
}

/// What a family produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Verdict rows, in order.
    pub claims: Vec<Claim>,
    /// Figures (data; the report renders them).
    pub figures: Vec<Figure>,
    /// Named raw results for `results.json`.
    pub results: Vec<(&'static str, serde_json::Value)>,
}

impl Outcome {
    fn claim(&mut self, claim: Claim) {
        self.claims.push(claim);
    }

    fn result(&mut self, key: &'static str, value: impl serde::Serialize) {
        self.results.push((
            key,
            serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
        ));
    }
}

/// The run's settings every family sees.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Ensemble sizes.
    pub size: Size,
}

/// Ensemble sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Paths per strong-order study.
    pub strong_paths: usize,
    /// Paths per weak-order study.
    pub weak_paths: usize,
    /// The basic SGD ensemble.
    pub paths: u64,
    /// Paths of the (slower) SDE ensembles.
    pub sde_paths: u64,
    /// Paths per timescale point.
    pub timescale_paths: u64,
    /// Paths of the warmup study.
    pub warmup_paths: u64,
}

impl Size {
    /// The default ensembles, or the smaller `--quick` ones.
    pub fn new(quick: bool) -> Self {
        if quick {
            Size {
                strong_paths: 400,
                weak_paths: 4000,
                paths: 120,
                sde_paths: 12,
                timescale_paths: 100,
                warmup_paths: 600,
            }
        } else {
            Size {
                strong_paths: 2000,
                weak_paths: 20_000,
                paths: 200,
                sde_paths: 30,
                timescale_paths: 5000,
                warmup_paths: 2000,
            }
        }
    }
}

/// Four standard errors: the report's verdicts (a false alarm of 6e-5 per normal check).
const Z4: f64 = 4.0;

/// Whether the mean falls from `a` to `b` by more than 4 s.e. of the difference
/// (independent ensembles).
fn falls(a: &MeanInterval, b: &MeanInterval) -> bool {
    a.mean - b.mean > Z4 * a.std_error.hypot(b.std_error)
}

fn interval(m: &MeanInterval) -> String {
    format!("{:.4} [{:.4}, {:.4}]", m.mean, m.ci_low, m.ci_high)
}

/// `(t, mean, standard error)` of `f(θ(t))` over an ensemble.
type Curve = Vec<(f64, f64, f64)>;

/// Mean of `f(θ(t))` over an ensemble at `times`, for SGD (`sde = None`) or an SDE
/// scheme at step `h` (`Some((milstein, h))`), with its standard error.
fn mean_curve(
    model: &ScalarFactorization,
    config: SgdConfig,
    theta0: &DVector<f64>,
    (times, paths, seed): (&[f64], u64, u64),
    sde: Option<(bool, f64)>,
    f: fn(&ScalarFactorization, &DVector<f64>) -> f64,
) -> Result<Curve> {
    let seeds = SeedTree::new(seed);
    let t_end = *times.last().unwrap_or(&0.0);
    let mut acc = vec![Welford::new(); times.len()];
    for p in 0..paths {
        let mut rec = RecordFunctionals::new(times.to_vec(), 1, |_t, x: &DVector<f64>, out: &mut [f64]| {
            out[0] = f(model, x)
        });
        match sde {
            None => {
                DiscreteSgd::population(model, config)?.run(theta0, t_end, &seeds, p, &mut rec)?;
            }
            Some((milstein, h)) => {
                let s = SgdSde::population(model, config)?;
                let span = TimeSpan::new(0.0, t_end, h)?;
                let mut path = IncrementStream::new(&seeds, p, 1);
                if milstein {
                    integrate(&s, &mut Milstein::new(), theta0, &span, &mut path, p, &mut rec)?;
                } else {
                    integrate(
                        &s,
                        &mut EulerMaruyama::new(),
                        theta0,
                        &span,
                        &mut path,
                        p,
                        &mut rec,
                    )?;
                }
            }
        }
        for (i, w) in acc.iter_mut().enumerate() {
            w.push(rec.values()[(i, 0)]);
        }
    }
    Ok(times
        .iter()
        .zip(&acc)
        .map(|(&t, w)| (t, w.mean(), w.std_error()))
        .collect())
}
