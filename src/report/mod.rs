//! The paper-reproduction suite behind `cargo run --release` (`noether-sde reproduce`):
//! runs the experiments of [`crate::analysis`] on built-in defaults and writes
//! `report.md`, `results.json` and SVG figures, one row per claim with the prediction,
//! the measurement with its interval, and a verdict.
//!
//! Claims (THEORY section in brackets): measured integrator orders (§8); the Noether flow
//! of scalar factorisation on the valley, SGD vs its SDE (§3, §6), and its Itô origin
//! (§7a: the Stratonovich reading of the same coefficients keeps C); the two timescales and
//! their η/B scaling (§5); matrix factorisation's balanced-and-aligned equilibrium (§6);
//! a normalised layer's weight-decay equilibrium (§6); approximate symmetries (§7);
//! progressive flattening, warmup and sharpening (§6).

pub mod claims;
mod figures;
mod output;

pub use claims::{Family, FAMILIES};
pub use figures::{Figure, Kind, Panel, Point, Series};
pub use output::MANIFEST;

use crate::error::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Where and how big.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Output directory (created if missing).
    pub out_dir: PathBuf,
    /// Smaller ensembles (under a minute).
    pub quick: bool,
    /// Show progress bars on stderr (callers pass whether stderr is a terminal).
    pub progress: bool,
    /// Run only these claim families ([`FAMILIES`] names); all when empty.
    pub only: Vec<String>,
    /// Write into a non-empty directory the tool does not own.
    pub force: bool,
}

/// One claim of the paper, checked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Claim {
    /// Short name.
    pub claim: String,
    /// What theory predicts (a number or a band, in words).
    pub predicted: String,
    /// What was measured, with its interval.
    pub measured: String,
    /// `"pass"` or `"fail"`.
    pub verdict: String,
}

impl Claim {
    /// A row; `pass` becomes the verdict.
    pub fn new(
        claim: impl Into<String>,
        predicted: impl Into<String>,
        measured: impl Into<String>,
        pass: bool,
    ) -> Self {
        Claim {
            claim: claim.into(),
            predicted: predicted.into(),
            measured: measured.into(),
            verdict: if pass { "pass" } else { "fail" }.into(),
        }
    }
}

/// The outcome of a report run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReportSummary {
    /// One row per claim.
    pub claims: Vec<Claim>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

impl ReportSummary {
    /// The summary table printed to stdout.
    pub fn table(&self) -> String {
        let w = self
            .claims
            .iter()
            .map(|c| c.claim.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let wp = self
            .claims
            .iter()
            .map(|c| c.predicted.chars().count())
            .max()
            .unwrap_or(9)
            .max(9);
        let wm = self
            .claims
            .iter()
            .map(|c| c.measured.chars().count())
            .max()
            .unwrap_or(8)
            .max(8);
        let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n.saturating_sub(s.chars().count())));
        let mut s = format!(
            "{}  {}  {}  verdict\n",
            pad("claim", w),
            pad("predicted", wp),
            pad("measured", wm)
        );
        for c in &self.claims {
            let _ = writeln!(
                s,
                "{}  {}  {}  {}",
                pad(&c.claim, w),
                pad(&c.predicted, wp),
                pad(&c.measured, wm),
                c.verdict
            );
        }
        let passed = self.claims.iter().filter(|c| c.verdict == "pass").count();
        let _ = writeln!(s, "\n{passed}/{} claims pass", self.claims.len());
        s
    }

    /// Whether every claim passed.
    pub fn all_pass(&self) -> bool {
        self.claims.iter().all(|c| c.verdict == "pass")
    }
}

struct Stages {
    bar: ProgressBar,
}

impl Stages {
    fn new(show: bool, n: u64) -> Self {
        let bar = if show {
            ProgressBar::new(n)
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        Stages { bar }
    }
}

/// The families `only` selects (all when empty), in report order.
///
/// # Errors
/// [`Error::InvalidParameter`] naming `only` for an unknown name, listing the known ones.
pub fn select(only: &[String]) -> Result<Vec<&'static Family>> {
    for name in only {
        if !FAMILIES.iter().any(|f| f.name == name) {
            let known: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
            return Err(Error::invalid(
                "only",
                name,
                format!("no such claim family; known: {}", known.join(", ")),
            ));
        }
    }
    Ok(FAMILIES
        .iter()
        .filter(|f| only.is_empty() || only.iter().any(|n| n == f.name))
        .collect())
}

/// A table cell for report.md: `|` escaped, one line.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Runs the selected claim families and writes the report into `opts.out_dir`:
/// `report.md`, `results.json` (every claim, raw result and figure's data) and each
/// figure as SVG and PNG, atomically (see `report::output`).
///
/// # Errors
/// [`Error::InvalidParameter`] for an unknown `--only` name or a non-empty directory the
/// tool does not own (without `force`); [`Error::Io`] if the directory cannot be written;
/// errors of the experiments.
pub fn run(opts: &ReportOptions) -> Result<ReportSummary> {
    let families = select(&opts.only)?;
    let out = output::Output::open(&opts.out_dir, opts.force)?;
    let cx = claims::Context {
        size: claims::Size::new(opts.quick),
    };
    let stages = Stages::new(opts.progress, families.len() as u64);
    let mut claims = Vec::new();
    let mut figures = Vec::new();
    let mut results = serde_json::Map::new();
    for family in &families {
        stages.bar.set_message(family.summary);
        let outcome = (family.run)(&cx)?;
        claims.extend(outcome.claims);
        figures.extend(outcome.figures);
        for (key, value) in outcome.results {
            results.insert(key.into(), value);
        }
        stages.bar.inc(1);
    }
    stages.bar.finish_and_clear();

    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for fig in &figures {
        files.push((format!("{}.svg", fig.name), fig.svg()?.into_bytes()));
        files.push((format!("{}.png", fig.name), fig.png()?));
    }
    results.insert(
        "figures".into(),
        serde_json::Value::Object(
            figures
                .iter()
                .map(|f| (f.name.clone(), serde_json::to_value(f).unwrap_or(json!(null))))
                .collect(),
        ),
    );
    results.insert(
        "claims".into(),
        serde_json::to_value(&claims).unwrap_or(json!(null)),
    );
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(results)).unwrap_or_default();
    files.push(("results.json".into(), text.into_bytes()));
    files.push((
        "report.md".into(),
        markdown(opts, &families, &claims, &figures).into_bytes(),
    ));
    let written = out.commit(&files)?;
    Ok(ReportSummary {
        claims,
        files: written,
    })
}

fn markdown(opts: &ReportOptions, families: &[&Family], claims: &[Claim], figures: &[Figure]) -> String {
    let mut md = String::new();
    let mut command = String::from("`cargo run --release");
    if opts.quick || !opts.only.is_empty() {
        command.push_str(" --");
        if opts.quick {
            command.push_str(" --quick");
        }
        for name in &opts.only {
            let _ = write!(command, " --only {name}");
        }
    }
    command.push('`');
    let _ = writeln!(
        md,
        "# noether-sde: reproducing the implicit bias of gradient noise\n\n\
         SGD with learning rate η and batch B is modelled by the Itô SDE `dθ = −∇L dt + sqrt(η/B) D dW`. \
         Under an exponential symmetry the charge `C = θᵀAθ` is conserved by gradient flow but drifts \
         under SGD (the Noether flow) to a noise equilibrium. Each claim below is checked against \
         simulation: intervals shown are 95%; verdicts that compare a measurement with theory \
         use 4 standard errors (or 99.99% binomial intervals, 99.9% for fitted orders), so a \
         true claim fails by chance with probability ~1e-4. Run: {command}{}.\n",
        if opts.quick { " (smaller ensembles)" } else { "" }
    );
    let _ = writeln!(
        md,
        "Claim families run: {}.\n",
        families
            .iter()
            .map(|f| format!("`{}` ({})", f.name, f.summary))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = writeln!(
        md,
        "## Claims\n\n| claim | predicted | measured | verdict |\n|---|---|---|---|"
    );
    for c in claims {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            cell(&c.claim),
            cell(&c.predicted),
            cell(&c.measured),
            c.verdict
        );
    }
    let _ = writeln!(md, "\n## Figures\n");
    let _ = writeln!(
        md,
        "Each figure is written as SVG and PNG; its data (every point with its standard error) \
         is under `figures` in results.json.\n"
    );
    for (k, fig) in figures.iter().enumerate() {
        let _ = writeln!(
            md,
            "![{title}]({name}.png)\n\n*Figure {n}: {title}.* {caption} ([SVG]({name}.svg))\n",
            title = fig.title,
            name = fig.name,
            n = k + 1,
            caption = fig.caption,
        );
    }
    md
}
