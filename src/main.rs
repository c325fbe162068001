//! The `noether-sde` command line: `reproduce` (the default) writes the paper-reproduction
//! report; `models`, `schemes`, `simulate`, `predict`, `convergence` and `merge` are scriptable
//! clients of the library, each with `--json` output (one JSON object on stdout).
//!
//! Exit codes: 0 success, 1 a runtime failure (or a report claim that failed), 2 invalid
//! input, reported as one line `error: ...` on stderr.

mod cli;

use clap::{Parser, Subcommand};
use cli::convergence::{Kind, Problem};
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

Exit codes: 0 success, 1 runtime failure or a failed claim, 2 invalid input.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
    /// Writes report.md, results.json and SVG figures to --out and prints one row per
    /// claim (prediction, measurement with its interval, verdict). Exits with 1 if a
    /// claim fails.
    Reproduce {
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR", default_value = "report")]
        out: PathBuf,
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
        #[arg(long, value_parser = Method::parse)]
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
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The theory's predictions at the model's start: the fixed-point charge of the
    /// Noether flow on the start's orbit, the slow rate κ there, the fast rate and their
    /// ratio.
    ///
    /// The fast rate is the top eigenvalue of the Hessian of L_γ at the fixed point θ*
    /// (λ_max(∇²L(θ*)) + 2γ); the ratio is fast/slow, the separation of the two
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
    /// Measure a scheme's strong or weak order of convergence with its 95% interval.
    ///
    /// Strong studies: gbm with every scheme that accepts scalar noise; noncommutative
    /// (general noise) and ou (additive noise) with every Itô scheme that accepts their
    /// noise. Weak studies: gbm. The expected order is the scheme's declaration (see
    /// `noether-sde schemes`). Any other combination is an error.
    #[command(
        after_help = "Example:\n  noether-sde convergence --problem noncommutative --scheme milstein-levy --kind strong --json"
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
        /// Paths per step size [default: 2000 strong, 20000 weak].
        #[arg(long)]
        paths: Option<usize>,
        /// Master seed.
        #[arg(long, default_value_t = 20_240_207)]
        seed: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
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

fn reproduce(out: PathBuf, quick: bool, json: bool) -> CliResult<i32> {
    let options = noether_sde::report::ReportOptions {
        out_dir: out,
        quick,
        progress: std::io::stderr().is_terminal(),
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
        Command::Reproduce { out, quick, json } => return reproduce(out, quick, json),
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
            json,
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
            };
            let out = cli::simulate::simulate(&built, &args)?;
            print(json, &out, cli::simulate::text);
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
            json,
        } => {
            let out = cli::convergence::convergence(problem, &scheme, kind, paths, seed)?;
            print(json, &out, cli::convergence::text);
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
        Command::Merge { files } => {
            emit(&format!("{}\n", cli::simulate::merge(&files)?));
        }
    }
    Ok(0)
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints `error: ...` (then the usage) and exits with 2; help exits with 0
        Err(e) => e.exit(),
    };
    let command = cli.command.unwrap_or(Command::Reproduce {
        out: PathBuf::from("report"),
        quick: false,
        json: false,
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
        for m in cli::models::MODELS {
            assert!(MODELS_HELP.contains(m.name), "{} missing from the help", m.name);
        }
    }
}
