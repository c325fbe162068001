//! The settings of a run of a built-in model, checked once for every front, and the run
//! itself: discrete SGD or GD, or the SGD-SDE (THEORY §1) by a scheme of the catalogue
//! (`scheme::catalogue`), on the batched Euler–Maruyama route where it applies and per
//! path otherwise. The command line's `simulate` and Python's `ns.simulate` both call
//! [`run`], so their numbers are the same by construction.

use super::{with_model, Setup};
use crate::ensemble::{
    Ensemble, EnsembleProblem, EnsembleStatistics, Functionals, PathRecord, SdeProblem, SgdProblem,
};
use crate::error::{check_positive, Error, IncompatibleReason, Result};
use crate::models::routes::ModelRoutes;
use crate::scheme::catalogue::{SchemeKind, SchemeVisitor};
use crate::scheme::{check_compatible, Scheme, TimeSpan};
use crate::sde::{Sde, SdeExt};
use crate::sgd::{Dataset, SgdConfig};
use nalgebra::DVector;
use std::ops::Range;

/// Largest noise dimension for which a scheme that samples Lévy areas, or the
/// Stratonovich conversion (one directional derivative per noise column), runs on the
/// SGD-SDE (the cost of Lévy areas grows like `m⁴` per step).
pub const MAX_LEVY_NOISE_DIM: usize = 32;

/// The most steps a path may take (the command line's limit).
pub const MAX_STEPS: f64 = 1e7;

/// How the paths are advanced: the discrete process, or a scheme of the catalogue on
/// the SGD-SDE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Discrete mini-batch SGD.
    Sgd,
    /// Discrete full-batch gradient descent.
    Gd,
    /// The SGD-SDE by a scheme of the catalogue.
    Sde(SchemeKind),
}

impl Method {
    /// Parses `sgd`, `gd` or any scheme name or alias of the catalogue.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`method`) listing the accepted names.
    pub fn parse(s: &str) -> Result<Method> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sgd" => Ok(Method::Sgd),
            "gd" => Ok(Method::Gd),
            _ => SchemeKind::parse(s).map(Method::Sde).map_err(|_| {
                Error::invalid(
                    "method",
                    s,
                    format!(
                        "unknown method '{s}'; known: sgd, gd, {} (see `noether-sde schemes` or ns.schemes())",
                        SchemeKind::names().join(", ")
                    ),
                )
            }),
        }
    }

    /// The canonical name (`sgd`, `gd` or the scheme's catalogue name).
    pub fn name(self) -> &'static str {
        match self {
            Method::Sgd => "sgd",
            Method::Gd => "gd",
            Method::Sde(kind) => kind.name(),
        }
    }

    /// Whether the method is discrete SGD or GD (stepping by η).
    pub fn is_discrete(self) -> bool {
        matches!(self, Method::Sgd | Method::Gd)
    }
}

/// The settings of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// The method.
    pub method: Method,
    /// Learning rate η.
    pub eta: f64,
    /// Batch size B.
    pub batch: usize,
    /// Weight decay γ.
    pub weight_decay: f64,
    /// Time horizon.
    pub t_end: f64,
    /// The SDE step (`None`: η/2); the discrete methods step by η.
    pub dt: Option<f64>,
}

impl Settings {
    /// Checks the settings: `η`, `t_end` and `dt` finite and > 0, `B ≥ 1`, `γ ≥ 0`, and
    /// no `dt` for the discrete methods.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the setting (`eta`, `batch`, `weight_decay`,
    /// `t_end`, `dt`).
    pub fn check(&self) -> Result<()> {
        check_positive("eta", self.eta)?;
        if self.batch == 0 {
            return Err(Error::invalid("batch", 0, "the batch size must be at least 1"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::invalid(
                "weight_decay",
                self.weight_decay,
                "must be finite and >= 0",
            ));
        }
        check_positive("t_end", self.t_end)?;
        if let Some(dt) = self.dt {
            if self.method.is_discrete() {
                return Err(Error::invalid(
                    "dt",
                    dt,
                    "applies to the SDE methods only (sgd and gd step by eta)",
                ));
            }
            check_positive("dt", dt)?;
        }
        Ok(())
    }

    /// The step: η for the discrete methods, `dt` (default η/2) for the SDE.
    pub fn step(&self) -> f64 {
        if self.method.is_discrete() {
            self.eta
        } else {
            self.dt.unwrap_or(self.eta / 2.0)
        }
    }

    /// The number of steps of a path, at most [`MAX_STEPS`].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`eta` or `dt`) for more steps.
    pub fn steps(&self) -> Result<f64> {
        let steps = self.t_end / self.step();
        if steps > MAX_STEPS {
            let (name, what) = if self.method.is_discrete() {
                ("eta", " of η")
            } else {
                ("dt", "")
            };
            return Err(Error::invalid(name, self.step(), format!(
                "time {} would take {steps:.3e} steps{what}, more than {MAX_STEPS:e}; raise it or lower the time",
                self.t_end
            )));
        }
        Ok(steps.ceil())
    }

    /// The SGD configuration.
    pub fn config(&self) -> SgdConfig {
        SgdConfig::new(self.eta, self.batch).with_weight_decay(self.weight_decay)
    }

    /// Checks the batch against the data set.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`batch`) for a batch larger than the data set.
    pub fn check_data(&self, data: Option<&Dataset>) -> Result<()> {
        match data {
            Some(d) if self.batch > d.len() => Err(Error::invalid(
                "batch",
                self.batch,
                format!("exceeds the data set size {}", d.len()),
            )),
            _ => Ok(()),
        }
    }
}

/// The paths of a run must not be empty.
///
/// # Errors
/// [`Error::InvalidParameter`] (`paths`).
pub fn check_paths(paths: &Range<u64>) -> Result<()> {
    if paths.end <= paths.start {
        return Err(Error::invalid(
            "paths",
            format!("{}..{}", paths.start, paths.end),
            "at least one path is needed",
        ));
    }
    Ok(())
}

/// The save times every `every` up to `t_end` (and `t_end` itself, the last possibly
/// shortened step), at most `max_times` of them. With a `step`, every `k`-th step,
/// `k = max(1, round(every/step))`, labelled with the times the steps reach
/// (`t_j = j·k·step`): an interval that is not a multiple of the step is snapped to the
/// nearest one. Returns the times and the interval used.
///
/// # Errors
/// [`Error::InvalidParameter`] (`save_every`) for a non-positive interval or too many
/// times.
pub fn save_times(t_end: f64, every: f64, step: Option<f64>, max_times: f64) -> Result<(Vec<f64>, f64)> {
    check_positive("save_every", every)?;
    let (k, step) = match step {
        Some(step) => ((every / step).round().max(1.0), step),
        None => (1.0, every),
    };
    let snapped = k * step;
    let count = (t_end / snapped + 1e-9).floor();
    if count > max_times {
        return Err(Error::invalid(
            "save_every",
            every,
            format!("more than {max_times} save times up to time {t_end}"),
        ));
    }
    let mut times: Vec<f64> = (0..=count as u64).map(|j| (j as f64 * k) * step).collect();
    let last = times[times.len() - 1];
    if t_end - last > 1e-9 * t_end.max(1.0) {
        times.push(t_end);
    } else {
        let n = times.len();
        times[n - 1] = t_end;
    }
    Ok((times, snapped))
}

/// The save times from `save_every` (default `t_end/10`, not snapped, at most 100000)
/// or `save_at` (as given), not both.
///
/// # Errors
/// Both given; as [`save_times`].
pub fn resolve_save_times(
    t_end: f64,
    save_every: Option<f64>,
    save_at: Option<Vec<f64>>,
) -> Result<Vec<f64>> {
    match (save_every, save_at) {
        (Some(_), Some(_)) => Err(Error::invalid("save_at", "and save_every", "give one of them")),
        (None, Some(at)) => Ok(at),
        (every, None) => Ok(save_times(t_end, every.unwrap_or(t_end / 10.0), None, 100_000.0)?.0),
    }
}

/// What a run collected: streamed statistics, or every path's record.
#[derive(Debug)]
pub enum Collected {
    /// Statistics reduced in the fixed block tree.
    Statistics(EnsembleStatistics),
    /// Every path's record, in path order.
    Paths(Vec<Result<PathRecord>>),
}

/// Runs `problem` for statistics or, with `per_path`, for every path's record.
///
/// # Errors
/// As the ensemble.
pub fn collect<P, F>(
    ensemble: &Ensemble,
    problem: &P,
    record: &Functionals<F>,
    per_path: bool,
) -> Result<Collected>
where
    P: EnsembleProblem,
    F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync,
{
    if per_path {
        ensemble.per_path(problem, record).map(Collected::Paths)
    } else {
        ensemble.statistics(problem, record).map(Collected::Statistics)
    }
}

/// Runs an ensemble of `setup` from `theta0` with `settings` (checked by the caller),
/// recording `record`; returns what was collected and the route taken (`discrete`,
/// `batched` or `per_path`).
///
/// # Errors
/// A batch larger than the data set; a scheme that cannot solve the SGD-SDE (with the
/// schemes that can); as the ensemble.
pub fn run<F>(
    setup: &Setup,
    settings: &Settings,
    theta0: &DVector<f64>,
    ensemble: &Ensemble,
    record: &Functionals<F>,
    per_path: bool,
) -> Result<(Collected, &'static str)>
where
    F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync,
{
    let data = setup.data.as_ref();
    settings.check_data(data)?;
    let cfg = settings.config();
    with_model!(&setup.model, m => {
        let kind = match settings.method {
            Method::Sde(kind) => kind,
            method => {
                let mut sgd = m.discrete(data, cfg)?;
                if method == Method::Gd {
                    sgd = sgd.gradient_descent();
                }
                let problem = SgdProblem::new(&sgd, theta0.clone(), settings.t_end)?;
                return collect(ensemble, &problem, record, per_path).map(|c| (c, "discrete"));
            }
        };
        let sde = m.sde(data, cfg)?;
        let span = TimeSpan::new(0.0, settings.t_end, settings.step())?;
        if kind == SchemeKind::EulerMaruyama && !per_path {
            if let Some(stats) = m.batched_em_statistics(&sde, theta0, span, ensemble, record) {
                return stats.map(|s| (Collected::Statistics(s), "batched"));
            }
        }
        let solve = Solve { sde: &sde, kind, theta0: theta0.clone(), span, ensemble, record, per_path };
        kind.visit(solve).map(|c| (c, "per_path"))
    })
}

/// One SGD-SDE ensemble by a scheme of the catalogue, converted to the scheme's calculus
/// when it differs (a Stratonovich scheme solves the Stratonovich form of the Itô
/// SGD-SDE: the same process, drift `a − ½ Σ_j L^j b_j`).
struct Solve<'a, S, F> {
    sde: &'a S,
    kind: SchemeKind,
    theta0: DVector<f64>,
    span: TimeSpan,
    ensemble: &'a Ensemble,
    record: &'a Functionals<F>,
    per_path: bool,
}

impl<S, F> SchemeVisitor for Solve<'_, S, F>
where
    S: Sde + Sync,
    F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync,
{
    type Output = Result<Collected>;

    fn visit<K: Scheme + Sync + 'static>(self, scheme: K) -> Self::Output {
        if !self.kind.needs_conversion(self.sde.calculus()) {
            let problem = sde_problem(self.sde, scheme, self.kind, self.theta0, self.span)?;
            return collect(self.ensemble, &problem, self.record, self.per_path);
        }
        if self.sde.noise_dim() > MAX_LEVY_NOISE_DIM {
            return Err(Error::Incompatible {
                scheme: self.kind.name(),
                reason: IncompatibleReason::ConversionTooCostly {
                    calculus: scheme.info().calculus,
                    noise_dim: self.sde.noise_dim(),
                },
            });
        }
        let converted = crate::sde::convert::StratonovichForm::new(self.sde)?;
        let problem = sde_problem(&converted, scheme, self.kind, self.theta0, self.span)?;
        collect(self.ensemble, &problem, self.record, self.per_path)
    }
}

/// The SDE problem, after checking that `scheme` can solve `sde` (naming, from the
/// catalogue, the schemes that can when not).
fn sde_problem<'a, S: Sde + Sync, K: Scheme>(
    sde: &'a S,
    scheme: K,
    kind: SchemeKind,
    theta0: DVector<f64>,
    span: TimeSpan,
) -> Result<SdeProblem<'a, S, K>> {
    let info = scheme.info();
    if let Err(e) = check_compatible(&info, sde) {
        let others: Vec<&str> = SchemeKind::ALL
            .iter()
            .map(|k| k.info())
            .filter(|i| i.accepts(sde.noise()))
            .map(|i| i.name)
            .collect();
        let reason = match e {
            Error::Incompatible { reason, .. } => reason,
            other => return Err(other),
        };
        return Err(Error::Incompatible {
            scheme: kind.name(),
            reason: IncompatibleReason::SgdSdeNoise {
                reason: Box::new(reason),
                noise: sde.noise(),
                accepting: others,
            },
        });
    }
    if info.reads_area(sde.noise()) && sde.noise_dim() > MAX_LEVY_NOISE_DIM {
        return Err(Error::Incompatible {
            scheme: kind.name(),
            reason: IncompatibleReason::TooManyLevyAreas {
                max: MAX_LEVY_NOISE_DIM,
                noise_dim: sde.noise_dim(),
            },
        });
    }
    SdeProblem::new(sde, scheme, theta0, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_times_snap_to_the_step_and_end_at_the_horizon() {
        let (t, every) = save_times(1.0, 0.3, Some(0.1), 1e4).expect("valid");
        assert!((every - 0.3).abs() < 1e-12);
        assert_eq!(t.len(), 5);
        assert_eq!(t[4].to_bits(), 1.0f64.to_bits(), "the horizon itself");
        let (t, _) = save_times(1.0, 0.25, None, 1e4).expect("valid");
        assert_eq!(t, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert!(save_times(1.0, 0.0, None, 1e4).is_err());
        assert!(save_times(1.0, 1e-6, None, 1e4).is_err());
    }

    #[test]
    fn methods_parse_by_catalogue_names() {
        assert_eq!(Method::parse("SGD"), Ok(Method::Sgd));
        assert_eq!(Method::parse("em").map(Method::name), Ok("euler_maruyama"));
        assert!(matches!(
            Method::parse("rk4"),
            Err(Error::InvalidParameter { name: "method", .. })
        ));
    }
}
