//! Hostile input, run for real: the checked-in corpus of malformed and hostile command
//! lines (`tests/fuzz/cli_corpus.txt`) against the binary under a memory limit, and
//! property tests that random bad input to the library's constructors, `integrate`,
//! ensembles and the shard-file parser ends in a typed error, never a panic.

use nalgebra::{DMatrix, DVector};
use noether_sde::analysis::stats::MeanInterval;
use noether_sde::ensemble::{Ensemble, EnsembleStatistics, Functionals, SdeProblem};
use noether_sde::prelude::*;
use proptest::prelude::*;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_noether-sde");
const CORPUS: &str = include_str!("../fuzz/cli_corpus.txt");
/// Only guards against hangs (a run that never ends fails the test instead of CI).
const HANG: Duration = Duration::from_secs(120);
/// Address-space limit of every invocation (`ulimit -v`, KiB): 4 GiB.
const MEMORY_KIB: u64 = 4 << 20;

/// `NAME=value` prefixes and the arguments of one corpus line (`'…'` quotes a token).
fn tokens(line: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut started) = (false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    out.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(current);
    }
    let mut env = Vec::new();
    let mut args = out.into_iter().peekable();
    while let Some((name, value)) = args.peek().and_then(|t| {
        let (n, v) = t.split_once('=')?;
        (!n.is_empty() && n.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .then(|| (n.to_string(), v.to_string()))
    }) {
        env.push((name, value));
        args.next();
    }
    (env, args.collect())
}

/// Runs one line; `Err` says what was wrong.
fn check_line(n: usize, line: &str) -> std::result::Result<(), String> {
    let (env, args) = tokens(line);
    let dir = std::env::temp_dir();
    let out_path = dir.join(format!("noether-sde-fuzz-{}-{n}.out", std::process::id()));
    let err_path = dir.join(format!("noether-sde-fuzz-{}-{n}.err", std::process::id()));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_KIB} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(&args)
        .envs(env)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).map_err(|e| e.to_string())?)
        .stderr(std::fs::File::create(&err_path).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {HANG:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = std::fs::read(&out_path).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into_owned();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    let lines: Vec<&str> = stderr.lines().collect();
    match status.code() {
        Some(0) if !stderr.contains("panicked") => Ok(()),
        Some(1 | 2) if lines.len() == 1 && lines[0].starts_with("error: ") && stdout.is_empty() => Ok(()),
        code => Err(format!(
            "exit {code:?}, {} stdout bytes, stderr {stderr:?}",
            stdout.len()
        )),
    }
}

#[test]
fn the_hostile_corpus_ends_in_success_or_one_error_line() {
    let lines: Vec<&str> = CORPUS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(lines.len() >= 300, "the corpus has {} invocations", lines.len());
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(line) = lines.get(i) else { break };
                if let Err(why) = check_line(i, line) {
                    let shown: String = line.chars().take(160).collect();
                    failures
                        .lock()
                        .expect("no poisoning")
                        .push(format!("line `{shown}`: {why}"));
                }
            });
        }
    });
    let failures = failures.into_inner().expect("no poisoning");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any `f64`, with the hostile ones over-represented.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        -10.0..10.0f64,
        any::<f64>(),
    ]
}

fn high_start() -> impl Strategy<Value = u64> {
    prop_oneof![Just(u64::MAX - 3), Just(u64::MAX - 64), any::<u64>()]
}

fn bound() -> impl Strategy<Value = f64> {
    prop_oneof![Just(1e100), Just(2.0), float()]
}

/// Values that break a shard file's structure when put anywhere in it.
fn replacement() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("null"),
        Just("0"),
        Just("-1"),
        Just("1e308"),
        Just("[]"),
        Just("[1]"),
        Just("{}"),
        Just("18446744073709551615"),
        Just("\"x\""),
        Just("63"),
        Just("64"),
        Just("true"),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn time_span_refuses_or_takes_steps(t0 in float(), t1 in float(), h in float()) {
        if let Ok(span) = TimeSpan::new(t0, t1, h) {
            prop_assert!(span.steps() > 0 || span.t0() >= span.t1());
            prop_assert!(span.time(span.steps()).is_finite());
        }
    }

    #[test]
    fn mean_interval_refuses_levels_outside_0_1(mean in float(), se in float(), n in any::<u64>(), level in float()) {
        let ci = MeanInterval::from_moments(mean, se, n, level);
        prop_assert_eq!(ci.is_ok(), level > 0.0 && level < 1.0);
    }

    #[test]
    fn constructors_refuse_bad_input_without_panicking(
        a in float(), b in float(), c in float(), d in 0usize..3, entries in prop::collection::vec(float(), 0..9)
    ) {
        let _ = GeometricBrownianMotion::new(a, b);
        let _ = OrnsteinUhlenbeck::new(a, b, c);
        let take = |k: usize| DMatrix::from_fn(d, d, |i, j| entries.get(k * d * d + i * d + j).copied().unwrap_or(1.0));
        let linear = LinearSde::new(take(0), vec![take(1)]);
        prop_assert!(d > 0 || linear.is_err());
        let _ = Functionals::new(entries.clone(), d, |_t: f64, _x: &DVector<f64>, _out: &mut [f64]| {});
        let _ = Ensemble::new(1, 0..4).with_divergence_bound(a);
    }

    #[test]
    fn integrate_refuses_or_returns_on_random_input(
        mu in float(), sigma in float(), x in prop::collection::vec(float(), 0..3), t1 in float(), h in float()
    ) {
        let (Ok(gbm), Ok(span)) = (GeometricBrownianMotion::new(mu, sigma), TimeSpan::new(0.0, t1, h)) else {
            return Ok(());
        };
        prop_assume!(span.steps() <= 10_000);
        let seeds = SeedTree::new(3);
        let mut path = IncrementStream::new(&seeds, 0, 1);
        let x0 = DVector::from_vec(x);
        // an error is fine (bad x0, divergence); an answer must be finite
        if let Ok(end) = integrate(&gbm, &mut EulerMaruyama::new(), &x0, &span, &mut path, 0, &mut ()) {
            prop_assert!(end.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn ensembles_anywhere_in_the_u64_range_count_every_path(
        start in high_start(), len in 0u64..6, x0 in float(), bound in bound()
    ) {
        let end = start.saturating_add(len);
        let gbm = GeometricBrownianMotion::new(0.5, 0.5).expect("valid");
        let span = TimeSpan::new(0.0, 0.5, 0.1).expect("valid");
        let Ok(problem) = SdeProblem::new(&gbm, EulerMaruyama::new(), DVector::from_element(1, x0), span) else {
            return Ok(());
        };
        let Ok(ensemble) = Ensemble::new(5, start..end).with_divergence_bound(bound) else {
            return Ok(());
        };
        // a functional that returns NaN at times counts as divergence, not as a NaN mean
        let record = Functionals::new(vec![0.5], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
            out[0] = if x[0] > 1.5 { f64::NAN } else { x[0] }
        })
        .expect("valid");
        let stats = ensemble.statistics(&problem, &record).expect("runs");
        prop_assert_eq!(stats.finished() + stats.divergent(), end - start);
        if stats.finished() > 0 {
            prop_assert!(stats.mean(0, 0).is_finite());
        } else {
            prop_assert_eq!(stats.undefined(), Some("no finished paths"));
        }
    }

    #[test]
    fn shard_statistics_parser_refuses_corrupted_files(
        edits in prop::collection::vec((any::<prop::sample::Index>(), replacement()), 1..4)
    ) {
        let text = serde_json::to_string(&small_statistics()).expect("serialises");
        let mut value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        for (at, replacement) in &edits {
            let leaves = leaf_paths(&value, String::new());
            let pointer = &leaves[at.index(leaves.len())];
            if let Some(slot) = value.pointer_mut(pointer) {
                *slot = serde_json::from_str(replacement).expect("JSON");
            }
        }
        // never a panic; a changed file either fails to parse or is a consistent statistics
        if let Ok(stats) = serde_json::from_value::<EnsembleStatistics>(value) {
            prop_assert!(stats.finished() + stats.divergent() == stats.paths().end - stats.paths().start);
        }
    }
}

/// A small serialised statistics: 5 paths, 2 save times, 2 functionals.
fn small_statistics() -> EnsembleStatistics {
    let ou = OrnsteinUhlenbeck::new(1.0, 0.0, 0.5).expect("valid");
    let span = TimeSpan::new(0.0, 1.0, 0.1).expect("valid");
    let problem =
        SdeProblem::new(&ou, EulerMaruyama::new(), DVector::from_element(1, 1.0), span).expect("valid");
    let record = Functionals::new(vec![0.5, 1.0], 2, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out[0] = x[0];
        out[1] = x[0] * x[0];
    })
    .expect("valid");
    Ensemble::new(9, 3..8)
        .statistics(&problem, &record)
        .expect("runs")
}

/// JSON pointers of every leaf and container of `v`.
fn leaf_paths(v: &serde_json::Value, at: String) -> Vec<String> {
    let mut out = vec![at.clone()];
    match v {
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                out.extend(leaf_paths(x, format!("{at}/{i}")));
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                out.extend(leaf_paths(x, format!("{at}/{k}")));
            }
        }
        _ => {}
    }
    out
}
