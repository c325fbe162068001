//! Ensemble throughput: nanoseconds per path-step of the library's ensembles against
//! hand-written loops that use the same generator, sampler and arithmetic
//! (`benches/common/hand_loops.rs`), each the median of several runs, library and hand
//! loop timed alternately (so a change in the machine's speed affects both alike).
//!
//! ```text
//! cargo run --release --example ensemble_throughput               # a table
//! cargo run --release --example ensemble_throughput -- --json     # one JSON object
//! cargo run --release --example ensemble_throughput -- --threads 2 --runs 7
//! ```
//!
//! Problems: GBM (10,000 paths × 1,000 steps, Euler–Maruyama and Milstein); the
//! scalar-factorisation SGD-SDE (population, rank-one noise, 1,000 paths, T = 200,
//! h = η = 0.05); the finite-data linear-regression SGD-SDE (d = 100, N = 1,000, B = 32,
//! 100 paths × 1,000 steps) through the batched route, whose hand loop is the per-path
//! loop (timed on fewer steps: per path-step cost does not depend on the step count).

#[path = "../benches/common/hand_loops.rs"]
mod hand_loops;

use nalgebra::{DMatrix, DVector};
use noether_sde::ensemble::{BatchedSgdSdeProblem, Ensemble, EnsembleProblem, Functionals, SdeProblem};
use noether_sde::models::{LinearRegression, ScalarFactorization};
use noether_sde::prelude::*;
use noether_sde::sgd::{SgdConfig, SgdSde};
use std::ops::Range;
use std::time::Instant;

const SEED: u64 = 2024;

struct Options {
    json: bool,
    threads: usize,
    runs: usize,
    lr_hand_steps: usize,
}

fn options() -> Options {
    let mut o = Options {
        json: false,
        threads: 1,
        runs: 5,
        lr_hand_steps: 50,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let number = |i: usize, name: &str| -> usize {
        args.get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} needs a positive integer"))
    };
    while i < args.len() {
        match args[i].as_str() {
            "--json" => o.json = true,
            "--threads" => {
                o.threads = number(i, "--threads").max(1);
                i += 1;
            }
            "--runs" => {
                o.runs = number(i, "--runs").max(1);
                i += 1;
            }
            "--lr-hand-steps" => {
                o.lr_hand_steps = number(i, "--lr-hand-steps").max(1);
                i += 1;
            }
            other => panic!("unknown argument {other} (try --json, --threads N, --runs N)"),
        }
        i += 1;
    }
    o
}

/// Median and (min, max) of the wall times of `runs` calls after one warm-up, in ns.
fn time(runs: usize, mut f: impl FnMut() -> f64) -> Timing {
    let value = f();
    let mut ns: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_nanos() as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    (ns[ns.len() / 2], ns[0], ns[ns.len() - 1], value)
}

/// `(median, min, max)` wall time in ns, and the closure's value.
type Timing = (f64, f64, f64, f64);

/// [`time`] for two closures run alternately (f, g, f, g, …) after one warm-up each, so
/// that a change in the machine's speed during the measurement affects both alike.
fn time_pair(runs: usize, mut f: impl FnMut() -> f64, mut g: impl FnMut() -> f64) -> (Timing, Timing) {
    let (vf, vg) = (f(), g());
    let (mut nf, mut ng) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let clock = |h: &mut dyn FnMut() -> f64| {
        let start = Instant::now();
        std::hint::black_box(h());
        start.elapsed().as_nanos() as f64
    };
    for _ in 0..runs {
        nf.push(clock(&mut f));
        ng.push(clock(&mut g));
    }
    let summary = |mut ns: Vec<f64>, value: f64| {
        ns.sort_by(f64::total_cmp);
        (ns[ns.len() / 2], ns[0], ns[ns.len() - 1], value)
    };
    (summary(nf, vf), summary(ng, vg))
}

/// Runs `f` on `threads` contiguous chunks of `paths` on scoped threads; averages.
fn hand_parallel(threads: usize, paths: Range<u64>, f: impl Fn(Range<u64>) -> f64 + Sync) -> f64 {
    let n = paths.end - paths.start;
    let chunk = n.div_ceil(threads as u64);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|c| {
                let lo = (paths.start + c * chunk).min(paths.end);
                let hi = (lo + chunk).min(paths.end);
                let f = &f;
                s.spawn(move || ((hi - lo) as f64, if hi > lo { f(lo..hi) } else { 0.0 }))
            })
            .collect();
        let parts: Vec<(f64, f64)> = handles.into_iter().map(|h| h.join().expect("worker")).collect();
        parts.iter().map(|(w, m)| w * m).sum::<f64>() / n as f64
    })
}

fn ensemble(paths: Range<u64>, threads: usize) -> Ensemble {
    let e = Ensemble::new(SEED, paths);
    if threads == 1 {
        e.sequential()
    } else {
        e.threads(threads)
    }
}

/// Mean of the functional at the last save time.
fn library_mean<P: EnsembleProblem>(
    problem: &P,
    paths: Range<u64>,
    threads: usize,
    t1: f64,
    f: fn(f64, &DVector<f64>, &mut [f64]),
) -> f64 {
    let record = Functionals::new(vec![t1], 1, f).expect("valid save time");
    let stats = ensemble(paths, threads)
        .statistics(problem, &record)
        .expect("ensemble runs");
    stats.mean(0, 0)
}

struct Row {
    problem: &'static str,
    scheme: &'static str,
    paths: u64,
    steps: usize,
    library: (f64, f64, f64),
    hand: (f64, f64, f64),
    hand_steps: usize,
    agreement: f64,
    extra: Vec<(&'static str, serde_json::Value)>,
}

fn main() {
    let o = options();
    let mut rows = Vec::new();

    // (a) GBM, 10,000 paths × 1,000 steps
    let (mu, s, h) = (0.5, 0.3, 1e-3);
    let gbm = GeometricBrownianMotion::new(mu, s).expect("valid GBM");
    let span = TimeSpan::new(0.0, 1.0, h).expect("valid span");
    let x0 = DVector::from_element(1, 1.0);
    let paths = 10_000u64;
    for milstein in [false, true] {
        let per = (paths * span.steps() as u64) as f64;
        let first = |_t: f64, x: &DVector<f64>, out: &mut [f64]| out[0] = x[0];
        let hand = || {
            hand_parallel(o.threads, 0..paths, |r| {
                hand_loops::gbm(SEED, r, span.steps(), h, mu, s, milstein)
            })
        };
        // the hand loop again with the normals from `NormalLanes` (eight paths at a time)
        let lanes = || {
            hand_parallel(o.threads, 0..paths, |r| {
                hand_loops::gbm_lanes(SEED, r, span.steps(), h, mu, s, milstein)
            })
        };
        let (hand_scalar, hand_lanes) = time_pair(o.runs, hand, lanes);
        assert_eq!(
            hand_scalar.3, hand_lanes.3,
            "NormalLanes draws each path's own numbers: the two hand loops agree bit for bit"
        );
        let (library, hand) = if milstein {
            let p = SdeProblem::new(&gbm, Milstein::new(), x0.clone(), span).expect("problem");
            time_pair(o.runs, || library_mean(&p, 0..paths, o.threads, 1.0, first), hand)
        } else {
            let p = SdeProblem::new(&gbm, EulerMaruyama::new(), x0.clone(), span).expect("problem");
            time_pair(o.runs, || library_mean(&p, 0..paths, o.threads, 1.0, first), hand)
        };
        rows.push(Row {
            problem: "gbm",
            scheme: if milstein { "milstein" } else { "euler_maruyama" },
            paths,
            steps: span.steps(),
            library: (library.0 / per, library.1 / per, library.2 / per),
            hand: (hand.0 / per, hand.1 / per, hand.2 / per),
            hand_steps: span.steps(),
            agreement: (library.3 - hand.3).abs() / hand.3.abs(),
            extra: vec![(
                "hand_loop_normal_lanes_ns_per_path_step",
                serde_json::json!(round2(hand_lanes.0 / per)),
            )],
        });
    }

    // (b) scalar factorisation SGD-SDE: 1,000 paths, T = 200, h = η = 0.05
    let (eta, batch) = (0.05, 4);
    let model = ScalarFactorization::new(1.0, 0.5).expect("valid model");
    let sde = SgdSde::population(&model, SgdConfig::new(eta, batch)).expect("valid SDE");
    let span = TimeSpan::new(0.0, 200.0, eta).expect("valid span");
    let theta0 = [2.0, 0.5];
    let paths = 1_000u64;
    let per = (paths * span.steps() as u64) as f64;
    let problem =
        SdeProblem::new(&sde, EulerMaruyama::new(), DVector::from_row_slice(&theta0), span).expect("problem");
    let charge = |_t: f64, x: &DVector<f64>, out: &mut [f64]| out[0] = ScalarFactorization::charge(x);
    let scale = sde.noise_scale(0.0);
    let (library, hand) = time_pair(
        o.runs,
        || library_mean(&problem, 0..paths, o.threads, 200.0, charge),
        || {
            hand_parallel(o.threads, 0..paths, |r| {
                hand_loops::scalar_factorization(SEED, r, span.steps(), eta, 1.0, 0.5, scale, theta0)
            })
        },
    );
    rows.push(Row {
        problem: "scalar_factorization_sde",
        scheme: "euler_maruyama",
        paths,
        steps: span.steps(),
        library: (library.0 / per, library.1 / per, library.2 / per),
        hand: (hand.0 / per, hand.1 / per, hand.2 / per),
        hand_steps: span.steps(),
        agreement: (library.3 - hand.3).abs() / hand.3.abs(),
        extra: vec![],
    });

    // (c) linear-regression SGD-SDE, d = 100, N = 1,000, B = 32: batched vs per-path
    let (d, n, batch, eta) = (100, 1000, 32, 0.01);
    let theta_star = DVector::from_fn(d, |i, _| ((i as f64) * 0.37).sin());
    let model = LinearRegression::new(theta_star, DMatrix::identity(d, d), 0.5).expect("valid model");
    let data = model.dataset(n, 1).expect("data");
    let sde = SgdSde::finite(&model, &data, SgdConfig::new(eta, batch)).expect("valid SDE");
    let steps = 1000;
    let span = TimeSpan::new(0.0, steps as f64 * eta, eta).expect("valid span");
    let theta0 = DVector::from_element(d, 0.1);
    let paths = 100u64;
    let per = (paths * span.steps() as u64) as f64;
    let norm = |_t: f64, x: &DVector<f64>, out: &mut [f64]| out[0] = x.norm_squared();
    let batched = BatchedSgdSdeProblem::new(&sde, theta0.clone(), span).expect("problem");
    // the per-path loops on a shorter span (same cost per path-step)
    let short = TimeSpan::new(0.0, o.lr_hand_steps as f64 * eta, eta).expect("valid span");
    let per_short = (paths * short.steps() as u64) as f64;
    let scale = sde.noise_scale(0.0);
    let (library, hand) = time_pair(
        o.runs,
        || library_mean(&batched, 0..paths, o.threads, span.t1(), norm),
        || {
            hand_parallel(o.threads, 0..paths, |r| {
                hand_loops::linear_regression(SEED, r, short.steps(), eta, &data, scale, theta0.as_slice())
            })
        },
    );
    let per_path = SdeProblem::new(&sde, EulerMaruyama::new(), theta0.clone(), short).expect("problem");
    let library_per_path = time(o.runs, || {
        library_mean(&per_path, 0..paths, o.threads, short.t1(), norm)
    });
    let batched_short = BatchedSgdSdeProblem::new(&sde, theta0.clone(), short).expect("problem");
    let agreement = {
        let b = library_mean(&batched_short, 0..paths, o.threads, short.t1(), norm);
        (b - hand.3).abs() / hand.3.abs()
    };
    rows.push(Row {
        problem: "linear_regression_sde",
        scheme: "euler_maruyama_batched",
        paths,
        steps: span.steps(),
        library: (library.0 / per, library.1 / per, library.2 / per),
        hand: (hand.0 / per_short, hand.1 / per_short, hand.2 / per_short),
        hand_steps: short.steps(),
        agreement,
        extra: vec![
            ("d", d.into()),
            ("n", n.into()),
            ("batch", batch.into()),
            (
                "library_per_path_ns_per_path_step",
                (library_per_path.0 / per_short).round().into(),
            ),
        ],
    });

    if o.json {
        let results: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut v = serde_json::json!({
                    "problem": r.problem,
                    "scheme": r.scheme,
                    "paths": r.paths,
                    "steps": r.steps,
                    "library_ns_per_path_step": round2(r.library.0),
                    "hand_loop_ns_per_path_step": round2(r.hand.0),
                    "ratio": round2(r.library.0 / r.hand.0),
                    "threads": o.threads,
                    "runs": o.runs,
                    "library_ns_min_max": [round2(r.library.1), round2(r.library.2)],
                    "hand_loop_ns_min_max": [round2(r.hand.1), round2(r.hand.2)],
                    "hand_loop_steps": r.hand_steps,
                    "relative_difference_of_means": r.agreement,
                });
                for (k, x) in &r.extra {
                    v[*k] = x.clone();
                }
                v
            })
            .collect();
        println!("{}", serde_json::json!({ "results": results }));
    } else {
        println!(
            "ns per path-step, median of {} runs (min–max), {} thread(s)\n",
            o.runs, o.threads
        );
        println!(
            "{:<26} {:<24} {:>7} {:>6} {:>22} {:>22} {:>6} {:>9}",
            "problem", "scheme", "paths", "steps", "library", "hand loop", "ratio", "Δmean"
        );
        for r in &rows {
            println!(
                "{:<26} {:<24} {:>7} {:>6} {:>9.1} ({:>5.1}–{:>5.1}) {:>9.1} ({:>5.1}–{:>5.1}) {:>6.2} {:>9.1e}",
                r.problem,
                r.scheme,
                r.paths,
                r.steps,
                r.library.0,
                r.library.1,
                r.library.2,
                r.hand.0,
                r.hand.1,
                r.hand.2,
                r.library.0 / r.hand.0,
                r.agreement
            );
            for (k, x) in &r.extra {
                if k.ends_with("step") {
                    println!("{:>34}: {x} ns", k);
                }
            }
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
