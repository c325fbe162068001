//! The lane normal generator alone: nanoseconds per standard normal of
//! [`NormalLanes::fill_fast`] (eight Xoshiro256++ generators in lockstep, the hand-written
//! AVX-512 ziggurat where the CPU has it, else the portable loop compiled for AVX2) for
//! `rows` draws per call — the lockstep driver draws 16 rows per call for GBM — against
//! the scalar ziggurat (`standard_normal`, one generator), each the median of `--runs`
//! runs, the two timed alternately (so a change in the machine's speed affects both).
//!
//! ```text
//! cargo run --release --example normal_lanes                    # rows 16 and 64
//! cargo run --release --example normal_lanes -- --runs 9 --rows 16
//! cargo run --release --example normal_lanes -- --lanes-only   # (for a profiler)
//! ```

use noether_sde::rng::{standard_normal, NormalLanes, SeedTree, Stream, LANES};
use std::time::Instant;

/// Normals drawn per timed run (per route).
const NORMALS: usize = 1 << 24;

fn main() {
    let mut runs = 7;
    let mut rows_list = vec![16, 64];
    let mut scalar = true;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = |i: usize| -> usize {
            args.get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{} takes a number", args[i]))
        };
        if args[i] == "--lanes-only" {
            scalar = false;
            i += 1;
            continue;
        }
        match args[i].as_str() {
            "--runs" => runs = value(i).max(1),
            "--rows" => rows_list = vec![value(i).max(1)],
            other => panic!("unknown argument {other} (try --runs N, --rows N)"),
        }
        i += 2;
    }
    let seeds = SeedTree::new(1);
    for rows in rows_list {
        let mut lanes = NormalLanes::new();
        for l in 0..LANES {
            lanes.set(l, Some(&seeds.rng(l as u64, Stream::Brownian)));
        }
        let mut out = vec![0.0; rows * LANES];
        let mut sums = [0.0; LANES];
        let scale = [1.0; LANES];
        let calls = NORMALS / (rows * LANES);
        let mut lane_run = || {
            for _ in 0..calls {
                lanes.fill_fast(&scale, &mut out, LANES, rows, &mut sums);
                std::hint::black_box(&mut out);
            }
            sums[0]
        };
        let mut rng = seeds.rng(99, Stream::Brownian);
        let mut scalar_run = || {
            let mut s = 0.0;
            for _ in 0..if scalar { NORMALS } else { 0 } {
                s += standard_normal(&mut rng);
            }
            s
        };
        std::hint::black_box((lane_run(), scalar_run()));
        let (mut lane_ns, mut scalar_ns) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let start = Instant::now();
            std::hint::black_box(lane_run());
            lane_ns.push(start.elapsed().as_nanos() as f64 / NORMALS as f64);
            let start = Instant::now();
            std::hint::black_box(scalar_run());
            scalar_ns.push(start.elapsed().as_nanos() as f64 / NORMALS as f64);
        }
        let summary = |mut ns: Vec<f64>| {
            ns.sort_by(f64::total_cmp);
            format!(
                "{:.3} ns per normal ({:.3}–{:.3})",
                ns[ns.len() / 2],
                ns[0],
                ns[ns.len() - 1]
            )
        };
        println!("rows {rows:>3}: lanes {}", summary(lane_ns));
        if scalar {
            println!("          scalar {}", summary(scalar_ns));
        }
    }
}
