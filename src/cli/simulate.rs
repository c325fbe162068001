//! `simulate` (an ensemble of SGD, GD or SGD-SDE paths, optionally one shard of it) and
//! `merge` (shards back into the unsharded result, exactly).
//!
//! The output carries, besides the readable statistics, a `mergeable` block: the run's
//! settings and the ensemble's [`EnsembleStatistics`] with every float written as the
//! hexadecimal bits of its `f64` (decimal JSON floats need not read back bit for bit).
//! `merge` decodes them, merges the statistics with the library's exact merge and renders
//! the output with the same code as `simulate`: the merged JSON equals the unsharded
//! run's. (Statistics holding a non-finite number, which JSON cannot carry, are written
//! with `"mergeable": null` and cannot be merged.)

use super::models::{with_setup, Built, CliModel, Setup};
use super::observables::{write_paths, Observable, PathsFormat, Recorded, TimeWindow};
use super::{require_non_negative, require_positive, CliError, CliResult, Shard};
use indicatif::{ProgressBar, ProgressStyle};
use nalgebra::DVector;
use noether_sde::analysis::stats::MeanInterval;
use noether_sde::ensemble::{
    Ensemble, EnsembleProblem, EnsembleStatistics, Functionals, PathRecord, SdeProblem, SgdProblem,
};
use noether_sde::scheme::catalogue::{SchemeKind, SchemeVisitor};
use noether_sde::scheme::{check_compatible, Scheme, TimeSpan};
use noether_sde::sde::{Sde, SdeExt};
use noether_sde::sgd::SgdConfig;
use serde_json::{json, Map, Value};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Largest noise dimension for which the CLI runs a scheme that samples Lévy areas
/// (their cost grows like `m⁴` per step).
const MAX_LEVY_NOISE_DIM: usize = 32;

/// The most steps a path may take, for every method (the discrete ones step by η, the
/// SDE schemes by `--dt`).
pub const MAX_STEPS: f64 = 1e7;

/// The most work a run may imply, in multiply-add units (measured at up to ~16 ns each for
/// the per-sample models, so a few minutes at the limit):
/// `paths × (steps × D × m + save times × 200 × D × max(N, 1))`, with `D` parameters, `m`
/// samples per step (the batch for SGD, the data set for GD and the SDE, `D` for the
/// closed-form SDE) and 200 products of a sharpness estimate on `N` samples.
pub const MAX_WORK: f64 = 2e10;

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
    /// The message lists the accepted names.
    pub fn parse(s: &str) -> Result<Method, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sgd" => Ok(Method::Sgd),
            "gd" => Ok(Method::Gd),
            _ => SchemeKind::parse(s).map(Method::Sde).map_err(|_| {
                format!(
                    "unknown method '{s}'; known: sgd, gd, {} (see `noether-sde schemes`)",
                    SchemeKind::names().join(", ")
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

    fn is_discrete(self) -> bool {
        matches!(self, Method::Sgd | Method::Gd)
    }
}

/// The settings of `simulate` (flags already parsed by clap; `None` = the model's default).
#[derive(Debug, Clone)]
pub struct SimulateArgs {
    /// `--method`.
    pub method: Method,
    /// `--eta`.
    pub eta: Option<f64>,
    /// `--batch`.
    pub batch: Option<usize>,
    /// `--weight-decay`.
    pub weight_decay: Option<f64>,
    /// `--time`.
    pub time: Option<f64>,
    /// `--dt` (SDE methods).
    pub dt: Option<f64>,
    /// `--paths`.
    pub paths: Option<u64>,
    /// `--seed`.
    pub seed: u64,
    /// `--save-every`.
    pub save_every: Option<f64>,
    /// `--shard`.
    pub shard: Option<Shard>,
    /// `--divergence-bound`.
    pub divergence_bound: f64,
    /// `--observable` (empty: charge, loss, sharpness).
    pub observables: Vec<Observable>,
    /// `--time-average FROM:TO`.
    pub time_average: Option<TimeWindow>,
    /// `--output-paths FILE`.
    pub output_paths: Option<PathBuf>,
}

/// The run's settings: everything that must agree between shards.
struct Run {
    header: Value,
    times: Vec<f64>,
    recorded: Recorded,
    /// Keep every path's record (`--output-paths`, `--time-average`).
    per_path: bool,
}

/// The save times: every `k`-th step, `k = max(1, round(every/step))`, labelled with the
/// times the steps actually reach (`t_j = j·k·step`, as the time grid computes them), and
/// `t_end` itself (the last, possibly shortened, step). Returns the times and the
/// interval actually used, `k·step`: a requested interval that is not a multiple of the
/// step is snapped to the nearest one instead of labelling a later step with an earlier
/// time.
fn save_times(t_end: f64, every: f64, step: f64) -> CliResult<(Vec<f64>, f64)> {
    let k = (every / step).round().max(1.0);
    let snapped = k * step;
    let count = (t_end / snapped + 1e-9).floor();
    if count > 10_000.0 {
        return Err(CliError::input(format!(
            "--save-every {every}: more than 10000 save times up to --time {t_end}"
        )));
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

/// Runs `simulate` and returns its JSON object.
///
/// # Errors
/// Bad input (exit 2) or a failing path (exit 1).
pub fn simulate(built: &Built, args: &SimulateArgs) -> CliResult<Value> {
    let spec = built.spec;
    let eta = args.eta.unwrap_or(spec.eta);
    require_positive("--eta", eta)?;
    let batch = args.batch.unwrap_or(spec.batch);
    if batch == 0 {
        return Err(CliError::input("--batch 0: the batch size must be at least 1"));
    }
    let weight_decay = args.weight_decay.unwrap_or(spec.weight_decay);
    require_non_negative("--weight-decay", weight_decay)?;
    let time = args.time.unwrap_or(spec.time);
    require_positive("--time", time)?;
    let total = args.paths.unwrap_or(spec.paths);
    if total == 0 {
        return Err(CliError::input("--paths 0: at least one path is needed"));
    }
    let (dt, steps) = if args.method.is_discrete() {
        if let Some(dt) = args.dt {
            return Err(CliError::input(format!(
                "--dt {dt}: applies to the SDE methods only (--method {} steps by η)",
                args.method.name()
            )));
        }
        let steps = time / eta;
        if steps > MAX_STEPS {
            return Err(CliError::input(format!(
                "--eta {eta}: --time {time} would take {steps:.3e} steps of η, more than {MAX_STEPS:e}; raise --eta or lower --time"
            )));
        }
        (None, steps.ceil())
    } else {
        let dt = args.dt.unwrap_or(eta / 2.0);
        require_positive("--dt", dt)?;
        let steps = time / dt;
        if steps > MAX_STEPS {
            return Err(CliError::input(format!(
                "--dt {dt}: --time {time} would take {steps:.3e} steps, more than {MAX_STEPS:e}; raise --dt or lower --time"
            )));
        }
        (Some(dt), steps.ceil())
    };
    let requested_save_every = args.save_every.unwrap_or(time / 10.0);
    require_positive("--save-every", requested_save_every)?;
    let (times, save_every) = save_times(time, requested_save_every, dt.unwrap_or(eta))?;
    let paths = match args.shard {
        Some(shard) => {
            if shard.count > total {
                return Err(CliError::input(format!(
                    "--shard {shard}: more shards than paths ({total})"
                )));
            }
            shard.range(total)
        }
        None => 0..total,
    };
    let recorded = Recorded::resolve(&args.observables, built)?;
    let inside = args.time_average.map(|w| w.indices(&times)).transpose()?;
    let paths_format = args.output_paths.as_deref().map(PathsFormat::of).transpose()?;
    let per_path = inside.is_some() || paths_format.is_some();
    let values = (paths.end - paths.start) as f64 * times.len() as f64 * recorded.columns().len() as f64;
    if per_path && 8.0 * values > super::models::MAX_DATA_BYTES {
        return Err(CliError::input(format!(
            "--output-paths/--time-average keep every path's values in memory: {:.1} GB (paths × save times × columns × 8 bytes), more than {:.1} GB; lower --paths (or run shards), raise --save-every or record fewer --observable",
            8.0 * values / 1e9,
            super::models::MAX_DATA_BYTES / 1e9
        )));
    }
    if let Some(file) = &args.output_paths {
        std::fs::File::create(file)
            .map_err(|e| CliError::input(format!("--output-paths {}: cannot create: {e}", file.display())))?;
    }
    let implied = with_setup!(&built.setup, s => work(s, args.method, batch, steps, (paths.end - paths.start) as f64, times.len() as f64, &recorded));
    if implied > MAX_WORK {
        return Err(CliError::input(format!(
            "the run would take about {implied:.1e} multiply-adds (paths × steps × parameters × samples per step, plus the recorded loss and sharpness), more than {MAX_WORK:e}; lower --paths, --time or --batch, raise --eta/--dt or --save-every, or make the model smaller (--param)"
        )));
    }
    let header = json!({
        "model": spec.name,
        "params": built.params,
        "method": args.method.name(),
        "eta": eta,
        "batch": batch,
        "weight_decay": weight_decay,
        "time": time,
        "dt": dt,
        "paths": total,
        "seed": args.seed,
        "save_every": save_every,
        "divergence_bound": args.divergence_bound,
        "charge_definition": spec.charge,
        "loss_definition": "L(θ): the mean loss on the data set, or the population risk (without the weight-decay term)",
        "sharpness_definition": "λ_max(∇²L(θ)) by power iteration (relative residual 1e-6, at most 100 products per phase)",
        "observable_names": recorded.columns(),
        "observable_definitions": recorded.definitions(),
    });
    let cfg = SgdConfig::new(eta, batch).with_weight_decay(weight_decay);
    // a progress bar on stderr when it is a terminal (stdout carries the results)
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(paths.end - paths.start);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} paths, {elapsed} (eta {eta})") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let ticks = bar.clone();
    let ensemble = Ensemble::new(args.seed, paths)
        .with_divergence_bound(args.divergence_bound)
        .map_err(|e| CliError::library("--divergence-bound", e))?
        .with_progress(move |n| ticks.inc(n));
    let mut run = Run {
        header,
        times,
        recorded,
        per_path,
    };
    let result = with_setup!(&built.setup, s => run_ensemble(s, args.method, cfg, time, dt, &run, &ensemble));
    bar.finish_and_clear();
    let (collected, route) = result?;
    run.header["route"] = json!(route);
    let records = match collected {
        Collected::Statistics(stats) => return Ok(render(&run.header, &stats, args.shard)),
        Collected::Paths(records) => records,
    };
    let columns = run.recorded.columns();
    let stats = EnsembleStatistics::from_records(&ensemble, run.times.clone(), columns.len(), &records)
        .map_err(|e| runtime_context(CliError::from(e), args.method))?;
    let mut out = render(&run.header, &stats, args.shard);
    if let (Some(file), Some(format)) = (&args.output_paths, paths_format) {
        let rows = write_paths(file, format, &run.times, columns, &records)?;
        let kind = match format {
            PathsFormat::Csv => "csv",
            PathsFormat::JsonLines => "jsonl",
        };
        let mut header: Vec<&str> = vec!["path", "t"];
        header.extend(columns.iter().map(String::as_str));
        out["paths_file"] = json!({
            "file": file.display().to_string(),
            "format": kind,
            "rows": rows,
            "columns": header,
        });
    }
    if let (Some(window), Some(inside)) = (args.time_average, inside) {
        out["time_average"] =
            super::observables::time_average(window, &run.times, &inside, columns, &records);
    }
    Ok(out)
}

/// What a run collected: streamed statistics, or every path's record (for
/// `--output-paths` and `--time-average`).
enum Collected {
    Statistics(EnsembleStatistics),
    Paths(Vec<noether_sde::Result<PathRecord>>),
}

/// Runs `problem` for statistics or, with `per_path`, for every path's record.
fn collect<P, F>(
    ensemble: &Ensemble,
    problem: &P,
    record: &Functionals<F>,
    per_path: bool,
) -> noether_sde::Result<Collected>
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

/// The multiply-adds a run implies (see [`MAX_WORK`]).
fn work<M: CliModel>(
    setup: &Setup<M>,
    method: Method,
    batch: usize,
    steps: f64,
    paths: f64,
    times: f64,
    recorded: &Recorded,
) -> f64 {
    let d = setup.theta0.len() as f64;
    let n = setup.data.as_ref().map(|data| data.len() as f64);
    let per_step = match method {
        Method::Sgd => batch as f64,
        Method::Gd => n.unwrap_or(1.0),
        Method::Sde(_) => n.unwrap_or(d),
    };
    let passes = |o: Observable, count: f64| if recorded.has(o) { count } else { 0.0 };
    let per_save = d
        * (1.0
            + (passes(Observable::Loss, 1.0) + passes(Observable::Sharpness, 200.0))
                * n.unwrap_or(1.0).max(1.0));
    paths * (steps * d * per_step + times * per_save)
}

fn run_ensemble<M: CliModel>(
    setup: &Setup<M>,
    method: Method,
    cfg: SgdConfig,
    time: f64,
    dt: Option<f64>,
    run: &Run,
    ensemble: &Ensemble,
) -> CliResult<(Collected, &'static str)> {
    let (recorded, per_path) = (&run.recorded, run.per_path);
    let data = setup.data.as_ref();
    if let Some(d) = data {
        if cfg.batch > d.len() {
            return Err(CliError::input(format!(
                "--batch {}: exceeds the data set size {} (--param n)",
                cfg.batch,
                d.len()
            )));
        }
    }
    let record = Functionals::new(
        run.times.clone(),
        recorded.columns().len(),
        |_t: f64, x: &DVector<f64>, out: &mut [f64]| recorded.eval(setup, x, out),
    )?;
    let theta0 = setup.theta0.clone();
    let statistics = if method.is_discrete() {
        let mut sgd = setup.model.discrete(data, cfg)?;
        if method == Method::Gd {
            sgd = sgd.gradient_descent();
        }
        let problem = SgdProblem::new(&sgd, theta0, time)?;
        collect(ensemble, &problem, &record, per_path).map(|s| (s, "discrete"))
    } else {
        let sde = setup.model.sde(data, cfg)?;
        let span = TimeSpan::new(0.0, time, dt.expect("SDE methods have a step"))?;
        let Method::Sde(kind) = method else {
            unreachable!("discrete methods are handled above")
        };
        if kind == SchemeKind::EulerMaruyama && !per_path {
            if let Some(stats) = setup
                .model
                .batched_em_statistics(&sde, &theta0, span, ensemble, &record)
            {
                return stats
                    .map(|s| (Collected::Statistics(s), "batched"))
                    .map_err(|e| runtime_context(CliError::from(e), method));
            }
        }
        let solve = Solve {
            sde: &sde,
            kind,
            theta0,
            span,
            ensemble,
            record: &record,
            per_path,
        };
        return kind
            .visit(solve)
            .map(|s| (s, "per_path"))
            .map_err(|e| runtime_context(e, method));
    };
    statistics.map_err(|e| runtime_context(CliError::from(e), method))
}

fn runtime_context(e: CliError, method: Method) -> CliError {
    if e.code == 1 {
        e.context(&format!("--method {}", method.name()))
    } else {
        e
    }
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
    type Output = CliResult<Collected>;

    fn visit<K: Scheme + Sync + 'static>(self, scheme: K) -> Self::Output {
        if !self.kind.needs_conversion(self.sde.calculus()) {
            let problem = sde_problem(self.sde, scheme, self.kind, self.theta0, self.span)?;
            return Ok(collect(self.ensemble, &problem, self.record, self.per_path)?);
        }
        if self.sde.noise_dim() > MAX_LEVY_NOISE_DIM {
            return Err(CliError::input(format!(
                "--method {}: solves {:?} SDEs, and the conversion of this Itô SGD-SDE needs one directional derivative per noise column ({}, one per sample); use an Itô scheme such as euler_maruyama, or --param n=0 where the model has closed forms",
                self.kind.name(),
                scheme.info().calculus,
                self.sde.noise_dim()
            )));
        }
        let converted = noether_sde::sde::convert::StratonovichForm::new(self.sde)?;
        let problem = sde_problem(&converted, scheme, self.kind, self.theta0, self.span)?;
        Ok(collect(self.ensemble, &problem, self.record, self.per_path)?)
    }
}

/// The SDE problem, after checking that `scheme` can solve `sde` (with a hint, built from
/// the catalogue, when not).
fn sde_problem<'a, S: Sde + Sync, K: Scheme>(
    sde: &'a S,
    scheme: K,
    kind: SchemeKind,
    theta0: DVector<f64>,
    span: TimeSpan,
) -> CliResult<SdeProblem<'a, S, K>> {
    let info = scheme.info();
    if let Err(e) = check_compatible(&info, sde) {
        let others: Vec<&str> = SchemeKind::ALL
            .iter()
            .map(|k| k.info())
            .filter(|i| i.accepts(sde.noise()))
            .map(|i| i.name)
            .collect();
        return Err(CliError::input(format!(
            "--method {}: {e} (this SGD-SDE's noise is {}, as is every finite-data SGD-SDE's unless noted; schemes that accept it: {}; scalar_factorization with --param n=0 has scalar noise)",
            kind.name(),
            sde.noise().name(),
            others.join(", ")
        )));
    }
    if info.reads_area(sde.noise()) && sde.noise_dim() > MAX_LEVY_NOISE_DIM {
        return Err(CliError::input(format!(
            "--method {}: needs Lévy areas of all {} noise columns (cost ∝ m⁴ per step, at most {MAX_LEVY_NOISE_DIM} here); use euler_maruyama (or a model with fewer noise columns: a finite data set has one per sample)",
            kind.name(),
            sde.noise_dim()
        )));
    }
    SdeProblem::new(sde, scheme, theta0, span)
        .map_err(|e| CliError::library(&format!("--method {}", kind.name()), e))
}

/// The JSON of one (possibly merged) run.
fn render(header: &Value, stats: &EnsembleStatistics, shard: Option<Shard>) -> Value {
    let mut out = header.as_object().cloned().unwrap_or_default();
    let times = stats.times().to_vec();
    let n = stats.finished();
    let observable = |j: usize| {
        let mut mean = Vec::with_capacity(times.len());
        let mut std = Vec::with_capacity(times.len());
        let mut low = Vec::with_capacity(times.len());
        let mut high = Vec::with_capacity(times.len());
        for i in 0..times.len() {
            let (m, se) = (stats.mean(i, j), stats.std_error(i, j));
            let ci = MeanInterval::from_moments(m, se, n, 0.95).unwrap_or(MeanInterval {
                mean: m,
                std_error: se,
                ci_low: f64::NAN,
                ci_high: f64::NAN,
                level: 0.95,
                n,
            });
            mean.push(ci.mean);
            std.push(stats.variance(i, j).sqrt());
            low.push(ci.ci_low);
            high.push(ci.ci_high);
        }
        json!({"mean": mean, "std": std, "ci_low": low, "ci_high": high})
    };
    out.insert("shard".into(), json!(shard.map(|s| s.to_string())));
    out.insert(
        "paths_run".into(),
        json!([stats.paths().start, stats.paths().end]),
    );
    out.insert("times".into(), json!(times));
    let names = observable_names(header);
    out.insert(
        "observables".into(),
        Value::Object(
            names
                .iter()
                .enumerate()
                .map(|(j, name)| (name.clone(), observable(j)))
                .collect(),
        ),
    );
    out.insert("finished".into(), json!(n));
    out.insert(
        "undefined".into(),
        json!(stats.undefined().map(|why| match why {
            "no finished paths" => "no finished paths: mean, std and ci are absent (null)".to_string(),
            other => format!("{other}: std and ci need two finished paths and are absent (null)"),
        })),
    );
    out.insert("diverged".into(), json!(stats.divergent()));
    out.insert(
        "first_divergence".into(),
        json!(stats.first_divergence().map(|e| e.to_string())),
    );
    // JSON has no NaN or infinity: statistics holding one (e.g. the loss of a path that
    // overflowed without leaving the finite numbers) cannot be written for `merge`
    let raw = serde_json::to_value(stats).unwrap_or(Value::Null);
    let exact = serde_json::from_value::<EnsembleStatistics>(raw.clone()).is_ok_and(|back| &back == stats);
    let mergeable = if exact {
        json!({
            "schema": MERGE_SCHEMA,
            "crate_version": env!("CARGO_PKG_VERSION"),
            "header": encode_floats(header.clone()),
            "statistics": encode_floats(raw),
        })
    } else {
        Value::Null
    };
    out.insert("mergeable".into(), mergeable);
    Value::Object(out)
}

/// The recorded columns named in a run's header (charge, loss, sharpness for files
/// written before `--observable`).
fn observable_names(header: &Value) -> Vec<String> {
    header
        .get("observable_names")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_else(|| vec!["charge".into(), "loss".into(), "sharpness".into()])
}

/// Readable text for a simulate result.
pub fn text(out: &Value) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let get = |k: &str| super::show(out.get(k));
    let _ = writeln!(
        s,
        "{} by {}: eta {}, batch {}, weight decay {}, dt {}, paths {} (run {}), seed {}",
        get("model"),
        get("method"),
        get("eta"),
        get("batch"),
        get("weight_decay"),
        get("dt"),
        get("paths"),
        get("paths_run"),
        get("seed")
    );
    let _ = writeln!(s, "charge: {}", get("charge_definition"));
    let _ = writeln!(
        s,
        "finished: {}, diverged: {} (first: {})",
        get("finished"),
        get("diverged"),
        get("first_divergence")
    );
    if let Some(why) = out.get("undefined").and_then(Value::as_str) {
        let _ = writeln!(s, "undefined: {why}");
    }
    // per observable: mean and standard deviation; the charge also with its 95% interval
    let names = observable_names(out);
    let _ = write!(s, "{:>10}", "t");
    for name in &names {
        let _ = write!(s, "  {name:>12} {:>12}", "std");
        if name == "charge" {
            let _ = write!(s, " {:>25}", "95% CI");
        }
    }
    s.push('\n');
    let obs = out.get("observables").cloned().unwrap_or(Value::Null);
    let series = |o: &str, k: &str, i: usize| obs[o][k][i].as_f64().unwrap_or(f64::NAN);
    if let Some(times) = out.get("times").and_then(Value::as_array) {
        for (i, t) in times.iter().enumerate() {
            let _ = write!(s, "{:>10.4}", t.as_f64().unwrap_or(f64::NAN));
            for name in &names {
                let _ = write!(
                    s,
                    "  {:>12.6} {:>12.6}",
                    series(name, "mean", i),
                    series(name, "std", i)
                );
                if name == "charge" {
                    let _ = write!(
                        s,
                        " [{:>11.6}, {:>11.6}]",
                        series(name, "ci_low", i),
                        series(name, "ci_high", i)
                    );
                }
            }
            s.push('\n');
        }
    }
    if let Some(avg) = out.get("time_average").filter(|v| v.is_object()) {
        let _ = writeln!(
            s,
            "time average over t in [{}, {}] ({} save times, {} paths):",
            super::show(avg.get("from")),
            super::show(avg.get("to")),
            avg["save_times"].as_array().map_or(0, Vec::len),
            super::show(avg.get("paths"))
        );
        for name in &names {
            let v = &avg["observables"][name];
            let _ = writeln!(
                s,
                "  {name:>12} {:>12.6} (std {:.6}, 95% CI [{:.6}, {:.6}])",
                v["mean"].as_f64().unwrap_or(f64::NAN),
                v["std"].as_f64().unwrap_or(f64::NAN),
                v["ci_low"].as_f64().unwrap_or(f64::NAN),
                v["ci_high"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    if let Some(file) = out.get("paths_file").filter(|v| v.is_object()) {
        let _ = writeln!(
            s,
            "per-path values: {} ({} rows)",
            super::show(file.get("file")),
            super::show(file.get("rows"))
        );
    }
    s
}

const BITS: &str = "f64:";

/// The version of the `mergeable` block `merge` reads (2: divergence bound, schema and
/// crate version recorded).
pub const MERGE_SCHEMA: u64 = 2;

/// Replaces every float by the string `f64:<16 hex digits of its bits>`.
fn encode_floats(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            Value::String(format!("{BITS}{:016x}", x.to_bits()))
        }
        Value::Array(a) => Value::Array(a.into_iter().map(encode_floats).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, encode_floats(v))).collect()),
        other => other,
    }
}

/// Inverse of [`encode_floats`].
fn decode_floats(v: Value) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if s.starts_with(BITS) => {
            let bits = u64::from_str_radix(&s[BITS.len()..], 16).map_err(|_| format!("bad float `{s}`"))?;
            let x = f64::from_bits(bits);
            Value::Number(serde_json::Number::from_f64(x).ok_or_else(|| format!("non-finite float `{s}`"))?)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(decode_floats).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| decode_floats(v).map(|v| (k, v)))
                .collect::<Result<Map<_, _>, _>>()?,
        ),
        other => other,
    })
}

/// One file given to `merge`.
struct ShardFile {
    path: PathBuf,
    header: Value,
    shard: Option<Shard>,
    stats: EnsembleStatistics,
}

fn read_shard(path: &PathBuf) -> CliResult<ShardFile> {
    let name = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::input(format!("merge: cannot read {name}: {e}")))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::input(format!("merge: {name} is not JSON: {e}")))?;
    let bad = |what: &str| {
        CliError::input(format!(
            "merge: {name} is not the output of `simulate --json`: {what}"
        ))
    };
    let field =
        |field: &str, what: String| CliError::input(format!("merge: {name}: field `{field}`: {what}"));
    let mergeable = match value.get("mergeable") {
        None => return Err(bad("no `mergeable` block")),
        Some(Value::Null) => {
            return Err(field(
                "mergeable",
                "null: the run recorded a non-finite statistic, which JSON cannot carry exactly; it cannot be merged".into(),
            ))
        }
        Some(m) => m,
    };
    match mergeable.get("schema").and_then(Value::as_u64) {
        Some(MERGE_SCHEMA) => {}
        other => {
            return Err(field(
                "mergeable.schema",
                format!(
                    "{} (this build reads schema {MERGE_SCHEMA}: rerun the shard with this version)",
                    other.map_or("missing".into(), |v| v.to_string())
                ),
            ))
        }
    }
    match mergeable.get("crate_version").and_then(Value::as_str) {
        Some(env!("CARGO_PKG_VERSION")) => {}
        other => {
            return Err(field(
                "mergeable.crate_version",
                format!(
                    "{} but this is noether-sde {} (shards must come from the same version)",
                    other.unwrap_or("missing"),
                    env!("CARGO_PKG_VERSION")
                ),
            ))
        }
    }
    let header = decode_floats(mergeable.get("header").cloned().ok_or_else(|| bad("no header"))?)
        .map_err(|e| bad(&e))?;
    let stats = decode_floats(
        mergeable
            .get("statistics")
            .cloned()
            .ok_or_else(|| bad("no statistics"))?,
    )
    .map_err(|e| bad(&e))?;
    let stats: EnsembleStatistics =
        serde_json::from_value(stats).map_err(|e| field("mergeable.statistics", e.to_string()))?;
    let shard = match value.get("shard") {
        Some(Value::String(s)) => Some(Shard::parse(s).map_err(|e| field("shard", e))?),
        Some(Value::Null) | None => None,
        Some(_) => return Err(field("shard", "neither I/N nor null".into())),
    };
    let total = header
        .get("paths")
        .and_then(Value::as_u64)
        .ok_or_else(|| field("mergeable.header.paths", "missing or not a count".into()))?;
    let expected = shard.map_or(0..total, |s| s.range(total));
    if stats.paths() != expected {
        return Err(field(
            "mergeable.statistics.paths",
            format!(
                "{:?}, but shard {} of {total} paths is {expected:?}",
                stats.paths(),
                shard.map_or("(unsharded)".into(), |s| s.to_string())
            ),
        ));
    }
    Ok(ShardFile {
        path: path.clone(),
        header,
        shard,
        stats,
    })
}

/// Merges `simulate --shard I/N --json` outputs into the unsharded result.
///
/// # Errors
/// Unreadable files, files of different runs, missing or repeated shards (exit 2).
pub fn merge(paths: &[PathBuf]) -> CliResult<Value> {
    if paths.is_empty() {
        return Err(CliError::input("merge: no files given"));
    }
    let mut files = paths.iter().map(read_shard).collect::<CliResult<Vec<_>>>()?;
    files.sort_by_key(|f| f.shard.map_or(0, |s| s.index));
    if let Some(whole) = files.iter().find(|f| f.shard.is_none()) {
        if files.len() > 1 {
            return Err(CliError::input(format!(
                "merge: {}: field `shard`: null (an unsharded run); it cannot be merged with other files",
                whole.path.display()
            )));
        }
        // one unsharded run: already whole, rendered as it is
        let f = files.pop().expect("one file");
        return Ok(render(&f.header, &f.stats, None));
    }
    let first = &files[0];
    for f in &files[1..] {
        if f.header != first.header {
            let diffs: Vec<String> = differing_keys(&first.header, &f.header)
                .iter()
                .map(|k| {
                    format!(
                        "{k}: {} vs {}",
                        first.header.get(k).unwrap_or(&Value::Null),
                        f.header.get(k).unwrap_or(&Value::Null)
                    )
                })
                .collect();
            return Err(CliError::input(format!(
                "merge: {} and {} are from different runs ({})",
                first.path.display(),
                f.path.display(),
                diffs.join("; ")
            )));
        }
    }
    let count = first.shard.map_or(1, |s| s.count);
    for f in &files {
        if let Some(s) = f.shard.filter(|s| s.count != count) {
            return Err(CliError::input(format!(
                "merge: {}: field `shard`: {s}, but {} is shard {}: the shard counts differ",
                f.path.display(),
                first.path.display(),
                first.shard.map_or("none".into(), |s| s.to_string()),
            )));
        }
    }
    for pair in files.windows(2) {
        if pair[0].shard == pair[1].shard {
            return Err(CliError::input(format!(
                "merge: {} and {} are the same shard {}",
                pair[0].path.display(),
                pair[1].path.display(),
                pair[0].shard.map_or("none".into(), |s| s.to_string())
            )));
        }
    }
    let present: Vec<u64> = files.iter().filter_map(|f| f.shard.map(|s| s.index)).collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !present.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() && files[0].shard.is_some() {
        return Err(CliError::input(format!(
            "merge: missing shard(s) {}",
            missing.join(", ")
        )));
    }
    let header = files[0].header.clone();
    let total = header.get("paths").and_then(Value::as_u64).unwrap_or(0);
    let mut iter = files.into_iter();
    let mut merged = iter.next().expect("at least one file").stats;
    for f in iter {
        merged = merged
            .merge(f.stats)
            .map_err(|e| CliError::library(&format!("merge: {}", f.path.display()), e))?;
    }
    if merged.paths() != (0..total) {
        return Err(CliError::input(format!(
            "merge: the shards cover paths {:?}, not 0..{total}",
            merged.paths()
        )));
    }
    Ok(render(&header, &merged, None))
}

fn differing_keys(a: &Value, b: &Value) -> Vec<String> {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let mut keys: Vec<String> = a
                .keys()
                .chain(b.keys())
                .filter(|k| a.get(*k) != b.get(*k))
                .cloned()
                .collect();
            keys.sort();
            keys.dedup();
            keys
        }
        _ => vec!["(header)".into()],
    }
}
