//! Hand-written loops: the physical limit of each benchmarked algorithm, with the same
//! generator (`SeedTree::rng(path, Brownian)`), the same normal sampler
//! (`noether_sde::rng::standard_normal`, the 4096-layer ziggurat with the fast path
//! inlined, as the library's increment streams draw) and the same
//! arithmetic as the library, but no traits, no `DVector`, no observers.
//! Shared by `benches/ensemble.rs` and `examples/ensemble_throughput.rs`.

#![allow(dead_code)]

use noether_sde::rng::{standard_normal, NormalLanes, SeedTree, Stream, LANES};
use noether_sde::sgd::Dataset;
use std::ops::Range;

/// Mean of `x_T` over GBM paths `dX = μX dt + sX dW`, `X_0 = 1`, Euler–Maruyama
/// (`milstein = false`) or Milstein.
pub fn gbm(seed: u64, paths: Range<u64>, steps: usize, h: f64, mu: f64, s: f64, milstein: bool) -> f64 {
    let seeds = SeedTree::new(seed);
    let sqrt_h = h.sqrt();
    let n = (paths.end - paths.start) as f64;
    let mut sum = 0.0;
    for path in paths {
        let mut rng = seeds.rng(path, Stream::Brownian);
        let mut x = 1.0f64;
        for _ in 0..steps {
            let dw = sqrt_h * standard_normal(&mut rng);
            let mut next = x + h * (mu * x) + s * x * dw;
            if milstein {
                next += 0.5 * (dw * dw - h) * (s * (s * x));
            }
            x = next;
        }
        sum += x;
    }
    sum / n
}

/// [`gbm`] with the normals drawn eight paths at a time by [`NormalLanes`] (the same
/// numbers: each lane draws what its path's own generator would), paths in groups of
/// eight as structure of arrays, the draws for [`LANE_CHUNK`] steps at a time: the
/// careful hand loop the lockstep route is measured against (issue 16). Compiled for
/// AVX-512 or AVX2 when the machine has it (run-time dispatch, as the library does).
pub fn gbm_lanes(seed: u64, paths: Range<u64>, steps: usize, h: f64, mu: f64, s: f64, milstein: bool) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked on the line above).
            return unsafe { gbm_lanes_avx512(seed, paths, steps, h, mu, s, milstein) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked on the line above).
            return unsafe { gbm_lanes_avx2(seed, paths, steps, h, mu, s, milstein) };
        }
    }
    gbm_lanes_body(seed, paths, steps, h, mu, s, milstein)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gbm_lanes_avx512(
    seed: u64,
    paths: Range<u64>,
    steps: usize,
    h: f64,
    mu: f64,
    s: f64,
    milstein: bool,
) -> f64 {
    gbm_lanes_body(seed, paths, steps, h, mu, s, milstein)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gbm_lanes_avx2(
    seed: u64,
    paths: Range<u64>,
    steps: usize,
    h: f64,
    mu: f64,
    s: f64,
    milstein: bool,
) -> f64 {
    gbm_lanes_body(seed, paths, steps, h, mu, s, milstein)
}

/// Steps whose normals [`gbm_lanes`] draws at once (8 × 64 doubles: 4 KiB, in L1).
pub const LANE_CHUNK: usize = 64;

#[inline(always)]
fn gbm_lanes_body(
    seed: u64,
    paths: Range<u64>,
    steps: usize,
    h: f64,
    mu: f64,
    s: f64,
    milstein: bool,
) -> f64 {
    let seeds = SeedTree::new(seed);
    let sqrt_h = h.sqrt();
    let n = (paths.end - paths.start) as f64;
    let mut sum = 0.0;
    let mut dw = [0.0; LANES * LANE_CHUNK];
    let mut start = paths.start;
    while start < paths.end {
        let width = (paths.end - start).min(LANES as u64) as usize;
        let mut lanes = NormalLanes::new();
        let mut scale = [0.0; LANES];
        for (l, sc) in scale.iter_mut().enumerate().take(width) {
            lanes.set(l, Some(&seeds.rng(start + l as u64, Stream::Brownian)));
            *sc = sqrt_h;
        }
        let mut x = [1.0f64; LANES];
        let mut sums = [0.0; LANES];
        let mut done = 0;
        while done < steps {
            let rows = (steps - done).min(LANE_CHUNK);
            lanes.fill_fast(&scale, &mut dw, LANES, rows, &mut sums);
            for row in dw.chunks_exact(LANES).take(rows) {
                for l in 0..LANES {
                    let (xl, d) = (x[l], row[l]);
                    let mut next = xl + h * (mu * xl) + s * xl * d;
                    if milstein {
                        next += 0.5 * (d * d - h) * (s * (s * xl));
                    }
                    x[l] = next;
                }
            }
            done += rows;
        }
        // left to right, as `gbm` sums the paths
        for xl in x.iter().take(width) {
            sum += xl;
        }
        start += width as u64;
    }
    sum / n
}

/// Mean charge `u² − w²` at the end of the scalar-factorisation SGD-SDE (population,
/// rank-one noise; THEORY §6) by Euler–Maruyama: `a = uw − v`,
/// `θ' = θ − 2ah(w, u) + sqrt(η/B) · 2 sqrt(2a² + σ²) ΔW (w, u)`.
#[allow(clippy::too_many_arguments)]
pub fn scalar_factorization(
    seed: u64,
    paths: Range<u64>,
    steps: usize,
    h: f64,
    v: f64,
    sigma: f64,
    noise_scale: f64,
    theta0: [f64; 2],
) -> f64 {
    let seeds = SeedTree::new(seed);
    let sqrt_h = h.sqrt();
    let n = (paths.end - paths.start) as f64;
    let mut sum = 0.0;
    for path in paths {
        let mut rng = seeds.rng(path, Stream::Brownian);
        let [mut u, mut w] = theta0;
        for _ in 0..steps {
            let dw = sqrt_h * standard_normal(&mut rng);
            let a = u * w - v;
            let amp = 2.0 * (2.0 * a * a + sigma * sigma).sqrt() * dw * noise_scale;
            let (du, dv) = (-2.0 * a * w, -2.0 * a * u);
            let (nu, nw) = (u + h * du + amp * w, w + h * dv + amp * u);
            u = nu;
            w = nw;
        }
        sum += u * u - w * w;
    }
    sum / n
}

/// Mean `‖θ_T‖²` of the finite-data linear-regression SGD-SDE by Euler–Maruyama, one
/// path at a time: per step `N` normals, then one fused pass over the data,
/// `ḡ = (1/N) Σ g_i`, `D ξ = (Σ ξ_i g_i − (Σ ξ_i) ḡ)/√N`, `g_i = 2(θᵀx_i − y_i) x_i`.
pub fn linear_regression(
    seed: u64,
    paths: Range<u64>,
    steps: usize,
    h: f64,
    data: &Dataset,
    noise_scale: f64,
    theta0: &[f64],
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was just detected.
        return unsafe { linear_regression_avx512(seed, paths, steps, h, data, noise_scale, theta0) };
    }
    linear_regression_body(seed, paths, steps, h, data, noise_scale, theta0, dot_portable)
}

/// The per-path loop with 512-bit FMA dot products and axpys (what a careful hand-written
/// loop on this machine does).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn linear_regression_avx512(
    seed: u64,
    paths: Range<u64>,
    steps: usize,
    h: f64,
    data: &Dataset,
    noise_scale: f64,
    theta0: &[f64],
) -> f64 {
    linear_regression_body(seed, paths, steps, h, data, noise_scale, theta0, |a, b| unsafe {
        dot_avx512(a, b)
    })
}

/// Two 8-wide FMA accumulators, then the scalar tail.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f64], b: &[f64]) -> f64 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (mut s0, mut s1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let mut i = 0;
    while i + 16 <= n {
        s0 = _mm512_fmadd_pd(
            _mm512_loadu_pd(a.as_ptr().add(i)),
            _mm512_loadu_pd(b.as_ptr().add(i)),
            s0,
        );
        s1 = _mm512_fmadd_pd(
            _mm512_loadu_pd(a.as_ptr().add(i + 8)),
            _mm512_loadu_pd(b.as_ptr().add(i + 8)),
            s1,
        );
        i += 16;
    }
    let mut sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    while i < n {
        sum += a[i] * b[i];
        i += 1;
    }
    sum
}

fn dot_portable(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn linear_regression_body(
    seed: u64,
    paths: Range<u64>,
    steps: usize,
    h: f64,
    data: &Dataset,
    noise_scale: f64,
    theta0: &[f64],
    dot: impl Fn(&[f64], &[f64]) -> f64,
) -> f64 {
    let seeds = SeedTree::new(seed);
    let sqrt_h = h.sqrt();
    let (n_data, d) = (data.len(), theta0.len());
    let inv_n = 1.0 / n_data as f64;
    let inv_sqrt_n = inv_n.sqrt();
    let n = (paths.end - paths.start) as f64;
    let mut xi = vec![0.0; n_data];
    let mut grad = vec![0.0; d];
    let mut diff = vec![0.0; d];
    let mut theta = vec![0.0; d];
    let mut sum = 0.0;
    for path in paths {
        let mut rng = seeds.rng(path, Stream::Brownian);
        theta.copy_from_slice(theta0);
        for _ in 0..steps {
            let mut xi_sum = 0.0;
            for w in xi.iter_mut() {
                *w = sqrt_h * standard_normal(&mut rng);
                xi_sum += *w;
            }
            grad.fill(0.0);
            diff.fill(0.0);
            for (i, &w) in xi.iter().enumerate() {
                let s = data.sample(i);
                let r2 = 2.0 * (dot(&theta, s.x) - s.y[0]);
                let wr2 = w * r2;
                for ((g, dd), &x) in grad.iter_mut().zip(diff.iter_mut()).zip(s.x) {
                    *g += r2 * x;
                    *dd += wr2 * x;
                }
            }
            for k in 0..d {
                let mean = grad[k] * inv_n;
                let diffusion = (diff[k] - xi_sum * mean) * inv_sqrt_n * noise_scale;
                theta[k] = theta[k] + h * -mean + diffusion;
            }
        }
        sum += theta.iter().map(|t| t * t).sum::<f64>();
    }
    sum / n
}
