//! The `noether-sde` command line: `reproduce` (the default) writes the paper-reproduction
//! report; `models`, `schemes`, `simulate`, `predict`, `convergence` and `merge` are scriptable
//! clients of the library, each with `--json` output (one JSON object on stdout).
//!
//! Exit codes: 0 success, 1 a runtime failure (or a report claim that failed), 2 invalid
//! input, reported as one line `error: ...` on stderr.

mod cli;

use clap::{Parser, Subcommand};
use cli::convergence::{Kind, Problem, View};
use cli::simulate::{Method, SimulateArgs};
use cli::{CliError, CliResult, Shard};
use std::io::IsTerminal;
use std::path::PathBuf;

const MODELS_HELP: &str = "The model: scalar_factorization, matrix_factorization, normalized_linear, linear_regression, tanh_net, residual (see `noether-sde models`)";

/// SGD as a stochastic differential equation: integrators, the SGD-SDE, symmetries and
/// the Noether flow. Without a subcommand, runs `reproduce`.
#[derive(Parser, Debug)]
#[command(name = "noether-sde", version, about, long_about = None)]
#[command(after_help = "Examples:
  noether-sde                                   # = noether-sde reproduce
  noether-sde models
  noether-sde schemes
  noether-sde simulate --model scalar_factorization --method milstein --paths 256 --json
  noether-sde predict --model matrix_factorization --eta 0.02 --batch 2
  noether-sde convergence --problem gbm --scheme milstein --kind strong
  noether-sde simulate --model tanh_net --method sgd --shard 0/2 --json > a.json
  noether-sde simulate --model tanh_net --method sgd --shard 1/2 --json > b.json
  noether-sde merge a.json b.json
  noether-sde simulate --model scalar_factorization --method sgd --format csv > run.csv
  noether-sde simulate --model matrix_factorization --method sgd --observable charge,eig_wsw,eig_usu \
      --time-average 5:10 --output-paths paths.csv
  noether-sde timescales --etas 0.0125,0.025,0.05 --batches 2,4,8

Exit codes: 0 success, 1 runtime failure or a failed claim, 2 invalid input.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// Output format of `simulate` and `merge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// A readable table.
    Text,
    /// One JSON object (the settings, the statistics and the `mergeable` block).
    Json,
    /// Long-format CSV `t,observable,statistic,value` (`pandas.read_csv` loads it as is).
    Csv,
}

/// Comma-separated numbers (`0.01,0.02,0.04`).
fn number_list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| format!("'{v}' is not a number"))
        })
        .collect()
}

/// Flags shared by `simulate` and `predict` that choose the model.
#[derive(clap::Args, Debug)]
struct ModelArgs {
    #[arg(long, value_name = "NAME", help = MODELS_HELP)]
    model: String,
    /// A model parameter, `key=value`; lists are comma-separated
    /// (`--param sigma_x=1,0.5,0.25,2`). Repeat for several. Defaults: `noether-sde models`.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the paper-reproduction suite and write the report (the default command).
    ///
    /// Writes report.md, results.json and each figure as SVG and PNG to --out and prints
    /// one row per claim (prediction, measurement with its interval, verdict). Exits with
    /// 1 if a claim fails or a file cannot be written, 2 for invalid input.
    ///
    /// Files are written only when every claim has run, each to a temporary name renamed
    /// into place, report.md last. An existing non-empty --out is written into only if an
    /// earlier run of this tool wrote everything in it (its .noether-sde-report manifest
    /// lists the files), or with --force.
    Reproduce {
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR", default_value = "report")]
        out: PathBuf,
        /// Run only these claim families (comma-separated or repeated): orders,
        /// noether_flow, timescales, matrix_factorization, normalized_layer,
        /// approximate_symmetry, warmup, sme2.
        #[arg(long, value_name = "NAME", value_delimiter = ',')]
        only: Vec<String>,
        /// Write into a non-empty --out that holds files this tool did not write.
        #[arg(long)]
        force: bool,
        /// Smaller ensembles (under a minute).
        #[arg(long)]
        quick: bool,
        /// Print the summary as one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// List the models, their parameters and defaults.
    Models {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run an ensemble of SGD, GD or SGD-SDE paths and report the charge, the loss and
    /// the sharpness at each saved time.
    ///
    /// At each save time: mean, standard deviation and 95% interval of the mean (Student
    /// t) of the charge (the model's Noether charge; ‖θ‖² for linear_regression, which has
    /// no symmetry), the loss L(θ) (without weight decay) and the sharpness λ_max(∇²L(θ));
    /// and the number of diverged paths (left out of the statistics). Path i's randomness
    /// depends only on (--seed, i), so `--shard I/N` runs can be combined by `merge` into
    /// exactly the unsharded result.
    #[command(allow_negative_numbers = true)]
    #[command(
        after_help = "Methods: sgd and gd run the discrete process (time t = kη); every scheme of
`noether-sde schemes` solves the SGD-SDE (Itô) with step --dt. milstein needs
scalar/commutative noise (scalar_factorization with n = 0); a Stratonovich scheme (heun,
euler_heun) solves the Stratonovich form of the same SDE (drift a − ½ΣL^j b_j), so it
needs few noise columns (n = 0).

Example:
  noether-sde simulate --model scalar_factorization --param sigma=0.5 --method em \\
      --eta 0.05 --batch 4 --time 10 --dt 0.01 --paths 256 --save-every 1 --json"
    )]
    Simulate {
        #[command(flatten)]
        model: ModelArgs,
        /// sgd | gd (discrete), or any scheme of `noether-sde schemes` on the SGD-SDE
        /// (em = euler_maruyama, milstein, milstein_levy, rk_milstein, heun, …; `-` and `_`
        /// are interchangeable).
        #[arg(long, value_parser = cli::simulate::parse_method)]
        method: Method,
        /// Learning rate η > 0 [default: the model's, see `models`].
        #[arg(long)]
        eta: Option<f64>,
        /// Batch size B ≥ 1, at most the data-set size [default: the model's].
        #[arg(long)]
        batch: Option<usize>,
        /// Weight decay γ ≥ 0 (L_γ = L + γ‖θ‖²) [default: the model's].
        #[arg(long = "weight-decay", value_name = "GAMMA")]
        weight_decay: Option<f64>,
        /// End time T in SDE time (t = kη for SGD) [default: the model's].
        #[arg(long)]
        time: Option<f64>,
        /// SDE step (SDE methods only) [default: η/2].
        #[arg(long)]
        dt: Option<f64>,
        /// Number of paths in the whole ensemble (all shards) [default: the model's].
        #[arg(long)]
        paths: Option<u64>,
        /// Master seed of the ensemble.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Interval between saved times [default: T/10].
        #[arg(long = "save-every", value_name = "X")]
        save_every: Option<f64>,
        /// Run only shard I of N (paths [I·P/N, (I+1)·P/N)); combine the outputs with `merge`.
        #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
        shard: Option<Shard>,
        /// A path diverges (counted, left out of every statistic) when its state or an
        /// observable is non-finite or exceeds B in absolute value; 0 < B <= 1e140.
        #[arg(long = "divergence-bound", value_name = "B", default_value_t = noether_sde::observe::DEFAULT_DIVERGENCE_BOUND)]
        divergence_bound: f64,
        /// Print one JSON object (= --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Output format: text, json (needed by `merge`) or csv (long format, one row per
        /// time × observable × statistic).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// What to record at each save time (comma-separated or repeated): charge, loss,
        /// sharpness, theta (every coordinate), eig_wsw / eig_usu (eigenvalues of WΣxWᵀ /
        /// UᵀΣεU, matrix_factorization) [default: charge,loss,sharpness]. loss and sharpness
        /// pass over the whole data set at every save: leave them out for large n.
        #[arg(long = "observable", value_name = "NAME", value_delimiter = ',', value_parser = cli::observables::parse_observable)]
        observables: Vec<cli::observables::Observable>,
        /// Also report each observable averaged over the save times in [FROM, TO], per
        /// path, with its mean, std and 95% interval over the paths.
        #[arg(long = "time-average", value_name = "FROM:TO", value_parser = cli::observables::TimeWindow::parse)]
        time_average: Option<cli::observables::TimeWindow>,
        /// Write every finished path's observables at every save time to FILE, one row per
        /// path × save time: .csv (`path,t,<observables>`, `pandas.read_csv`) or .jsonl
        /// (JSON lines, `pandas.read_json(FILE, lines=True)`).
        #[arg(long = "output-paths", value_name = "FILE")]
        output_paths: Option<PathBuf>,
    },
    /// The theory's predictions at the model's start: the fixed-point charge of the
    /// Noether flow on the start's orbit, the slow rate κ there, the fast rate and their
    /// ratio.
    ///
    /// The fast rate is the top eigenvalue of the Hessian of L_γ at the fixed point θ*
    /// (λ_max(∇²L(θ*)) + 2γ); the ratio is slow/fast (slow rate over fast rate), the separation of the two
    /// timescales. For matrix_factorization also the equilibrium UᵀU − WWᵀ at the
    /// balanced-and-aligned global minimum.
    #[command(allow_negative_numbers = true)]
    #[command(
        after_help = "Example:\n  noether-sde predict --model matrix_factorization --eta 0.02 --batch 2 --json"
    )]
    Predict {
        #[command(flatten)]
        model: ModelArgs,
        /// Learning rate η > 0 [default: the model's].
        #[arg(long)]
        eta: Option<f64>,
        /// Batch size B ≥ 1 [default: the model's].
        #[arg(long)]
        batch: Option<usize>,
        /// Weight decay γ ≥ 0 [default: the model's].
        #[arg(long = "weight-decay", value_name = "GAMMA")]
        weight_decay: Option<f64>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List the integrators of the scheme catalogue: names, aliases, strong and weak
    /// orders, accepted noise, calculus.
    Schemes {
        /// Print one JSON object `{"schemes": [{name, strong_order, weak_order, noise,
        /// calculus, adaptive, …}, …]}`.
        #[arg(long)]
        json: bool,
    },
    /// Measure a scheme's strong or weak order of convergence with its 95% interval, or
    /// the error-against-cost (work–precision) set of several schemes.
    ///
    /// One scheme, no other option: a study of the convergence suite — strong studies:
    /// gbm with every scheme that accepts scalar noise; noncommutative (general noise)
    /// and ou (additive noise) with every Itô scheme that accepts their noise. Weak
    /// studies: gbm. Any other combination is an error. With --scheme all, --param,
    /// --dts, --reference-offset, --view work-precision, or the SGD-SDE problems: a
    /// work–precision set (error ± s.e. against steps, drift/diffusion evaluations and
    /// wall time per path; the step sizes where the cheapest scheme changes). The
    /// expected order is the scheme's declaration (see `noether-sde schemes`).
    #[command(
        after_help = "Examples:\n  noether-sde convergence --problem noncommutative --scheme milstein-levy --kind strong --json\n  noether-sde convergence --problem ou --scheme all --kind strong --view work-precision --param sigma=0.5 --dts 0.125,0.0625,0.03125 --reference-offset 4 --paths 500\n  noether-sde convergence --problem scalar_factorization --scheme dri1 --kind weak --param order=2 --format csv\n\nExit codes: 0 success, 1 a failing study (e.g. a diverging path), 2 invalid input."
    )]
    Convergence {
        /// The test problem.
        #[arg(long, value_enum)]
        problem: Problem,
        /// The scheme: a name or alias of `noether-sde schemes` (em = euler_maruyama,
        /// milstein, milstein_levy, …; `-` and `_` are interchangeable).
        #[arg(long)]
        scheme: String,
        /// Strong or weak error.
        #[arg(long, value_enum)]
        kind: Kind,
        /// Paths per step size [default: suite 2000 strong, 20000 weak; work–precision
        /// 1000 strong, 10000 weak per scheme].
        #[arg(long)]
        paths: Option<usize>,
        /// Master seed.
        #[arg(long, default_value_t = 20_240_207)]
        seed: u64,
        /// A problem parameter, `key=value` (e.g. `mu=1`, `sigma=0.3`, `t_end=2`; for the
        /// SGD-SDE problems `eta`, `batch`, `order=1|2`). Repeat for several; an unknown
        /// key lists the known ones.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Explicit step sizes, comma-separated, each T/2^k (one Brownian path serves all
        /// by exact coarsening) [default: the problem's ladder].
        #[arg(long, value_name = "H1,H2,...")]
        dts: Option<String>,
        /// How many dyadic levels finer than the finest step the fine-grid reference is
        /// (0..=8) [default: 3]; GBM's reference is exact.
        #[arg(long = "reference-offset", value_name = "K")]
        reference_offset: Option<u32>,
        /// order: fitted orders; work-precision: error against cost per scheme.
        #[arg(long, value_enum)]
        view: Option<View>,
        /// Print one JSON object (= --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Output format: text, json or csv (one row per scheme × step size).
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Merge `simulate --shard I/N --json` outputs into the JSON of the unsharded run
    /// (exactly, bit for bit); prints that JSON.
    ///
    /// Refuses files of different runs (model, parameters, method, η, B, γ, T, dt, paths,
    /// seed, save times) and missing or repeated shards.
    #[command(after_help = "Example:\n  noether-sde merge shard-0.json shard-1.json > run.json")]
    Merge {
        /// The shard files (any order).
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// Output format: json (default) or csv (long format).
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// The two timescales of scalar factorisation on your own η and B ladders: fast and
    /// slow rates measured (95% bootstrap intervals) and predicted, and the slopes of
    /// ln(slow/fast) in ln η (expected 1) and ln B (expected −1) (THEORY §5).
    ///
    /// The η ladder runs the SGD-SDE (Milstein, Richardson-extrapolated), the B ladder
    /// discrete online SGD (the SDE depends on η and B only through η/B).
    #[command(
        after_help = "Example:\n  noether-sde timescales --etas 0.0125,0.025,0.05 --batches 2,4,8 --paths 200 --json"
    )]
    Timescales {
        /// Learning rates of the SDE ladder (comma-separated).
        #[arg(long, value_name = "LIST", default_value = "0.0125,0.025,0.05")]
        etas: String,
        /// Batch size of the SDE ladder.
        #[arg(long = "batch-for-etas", default_value_t = 8)]
        batch_for_etas: usize,
        /// Batch sizes of the SGD ladder (comma-separated).
        #[arg(long, value_name = "LIST", default_value = "2,4,8")]
        batches: String,
        /// Learning rate of the SGD ladder.
        #[arg(long = "eta-for-batches", default_value_t = 0.05)]
        eta_for_batches: f64,
        /// Paths per rung [default: 100].
        #[arg(long)]
        paths: Option<u64>,
        /// Master seed.
        #[arg(long, default_value_t = 55)]
        seed: u64,
        /// Teacher v [default: 1].
        #[arg(long)]
        v: Option<f64>,
        /// Label noise σ [default: 1].
        #[arg(long)]
        sigma: Option<f64>,
        /// Starting charge C(0) = u² − w² [default: 0.5].
        #[arg(long)]
        charge0: Option<f64>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Writes to stdout; a closed pipe (`noether-sde … | head`) ends the program quietly
/// instead of panicking, as Unix tools do.
fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

fn print(json: bool, value: &serde_json::Value, text: impl Fn(&serde_json::Value) -> String) {
    if json {
        emit(&format!("{value}\n"));
    } else {
        emit(&text(value));
    }
}

fn print_as(format: Format, value: &serde_json::Value, text: impl Fn(&serde_json::Value) -> String) {
    match format {
        Format::Text => emit(&text(value)),
        Format::Json => emit(&format!("{value}\n")),
        Format::Csv => emit(&cli::csv::long_csv(value)),
    }
}

fn reproduce(out: PathBuf, quick: bool, json: bool, only: Vec<String>, force: bool) -> CliResult<i32> {
    let options = noether_sde::report::ReportOptions {
        out_dir: out,
        quick,
        progress: std::io::stderr().is_terminal(),
        only,
        force,
    };
    let summary = noether_sde::report::run(&options).map_err(|e| CliError::library("reproduce", e))?;
    if json {
        emit(&format!(
            "{}\n",
            serde_json::to_value(&summary).unwrap_or_default()
        ));
    } else {
        emit(&summary.table());
    }
    Ok(if summary.all_pass() { 0 } else { 1 })
}

fn run(command: Command) -> CliResult<i32> {
    match command {
        Command::Reproduce {
            out,
            quick,
            json,
            only,
            force,
        } => return reproduce(out, quick, json, only, force),
        Command::Models { json } => {
            if json {
                emit(&format!("{}\n", cli::models::models_json()));
            } else {
                emit(&cli::models::models_text());
            }
        }
        Command::Simulate {
            model,
            method,
            eta,
            batch,
            weight_decay,
            time,
            dt,
            paths,
            seed,
            save_every,
            shard,
            divergence_bound,
            json,
            format,
            observables,
            time_average,
            output_paths,
        } => {
            let built = cli::models::build(&model.model, &model.params)?;
            let args = SimulateArgs {
                method,
                eta,
                batch,
                weight_decay,
                time,
                dt,
                paths,
                seed,
                save_every,
                shard,
                divergence_bound,
                observables,
                time_average,
                output_paths,
            };
            let out = cli::simulate::simulate(&built, &args)?;
            let format = if json {
                Format::Json
            } else {
                format.unwrap_or(Format::Text)
            };
            print_as(format, &out, cli::simulate::text);
        }
        Command::Predict {
            model,
            eta,
            batch,
            weight_decay,
            json,
        } => {
            let built = cli::models::build(&model.model, &model.params)?;
            let out = cli::predict::predict(&built, eta, batch, weight_decay)?;
            print(json, &out, cli::predict::text);
        }
        Command::Convergence {
            problem,
            scheme,
            kind,
            paths,
            seed,
            params,
            dts,
            reference_offset,
            view,
            json,
            format,
        } => {
            let options = cli::convergence::StudyOptions {
                params,
                dts,
                reference_offset,
                view,
            };
            let out = cli::convergence::run(problem, &scheme, kind, paths, seed, &options)?;
            match (json, format.unwrap_or(Format::Text)) {
                (true, _) | (_, Format::Json) => emit(&format!("{out}\n")),
                (_, Format::Csv) => emit(&cli::convergence::csv(&out)),
                (_, Format::Text) => emit(&cli::convergence::text_any(&out)),
            }
        }
        Command::Schemes { json } => {
            use noether_sde::scheme::catalogue::SchemeKind;
            if json {
                let all: Vec<_> = SchemeKind::ALL.iter().map(|k| k.to_json()).collect();
                emit(&format!("{}\n", serde_json::json!({ "schemes": all })));
            } else {
                emit(&SchemeKind::table());
            }
        }
        Command::Merge { files, format } => {
            print_as(format, &cli::simulate::merge(&files)?, cli::simulate::text);
        }
        Command::Timescales {
            etas,
            batch_for_etas,
            batches,
            eta_for_batches,
            paths,
            seed,
            v,
            sigma,
            charge0,
            json,
        } => {
            let args = cli::timescales::TimescalesArgs {
                etas: number_list(&etas).map_err(|e| CliError::input(format!("--etas {etas}: {e}")))?,
                batch_for_etas,
                batches: number_list(&batches)
                    .map_err(|e| CliError::input(format!("--batches {batches}: {e}")))?,
                eta_for_batches,
                paths,
                seed,
                v,
                sigma,
                charge0,
            };
            print(json, &cli::timescales::timescales(&args)?, cli::timescales::text);
        }
    }
    Ok(0)
}

/// clap's multi-line error (message, blank line, tip, usage, "For more information")
/// as one line: the `error:` line and its tip.
fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("error: invalid arguments");
    let first = if first.starts_with("error:") {
        first.to_string()
    } else {
        format!("error: {first}")
    };
    match lines.find(|l| l.starts_with("tip:")) {
        Some(tip) => format!("{first} ({tip})"),
        None => first,
    }
}

/// `RAYON_NUM_THREADS` (the size of the thread pool) must be a count of at most 16 threads
/// per available core: each thread reserves a stack and a memory arena.
fn check_threads(value: Option<&str>) -> CliResult<()> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let limit = (16 * cores).min(4096);
    match value.parse::<usize>() {
        Ok(n) if n <= limit => Ok(()),
        Ok(n) => Err(CliError::input(format!(
            "RAYON_NUM_THREADS={n}: at most {limit} threads (16 per available core, {cores} here); set it lower or unset it"
        ))),
        Err(_) => Err(CliError::input(format!(
            "RAYON_NUM_THREADS={value}: not a thread count (0 = one per core); set a number or unset it"
        ))),
    }
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            // help and version go to stdout with exit 0
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => e.exit(),
            _ => {
                eprintln!("{}", one_line(&e.render().to_string()));
                std::process::exit(2);
            }
        },
    };
    if let Err(e) = check_threads(std::env::var("RAYON_NUM_THREADS").ok().as_deref()) {
        eprintln!("{e}");
        std::process::exit(e.code);
    }
    let command = cli.command.unwrap_or(Command::Reproduce {
        out: PathBuf::from("report"),
        quick: false,
        json: false,
        only: Vec::new(),
        force: false,
    });
    let code = match run(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.code
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn models_help_lists_every_model() {
        for m in noether_sde::models::spec::standalone() {
            assert!(MODELS_HELP.contains(m.name), "{} missing from the help", m.name);
        }
    }
}
