//! Standard normal draws: the ziggurat method with 4096 layers (THEORY §8, "Normal
//! draws"), on one generator and on eight in SIMD lanes.
//!
//! The method is Marsaglia and Tsang's ziggurat in `rand_distr`'s layout (Doornik's
//! variant), with our own tables of 4096 layers instead of its 256
//! (`scripts/ziggurat_tables.py` writes `ziggurat_tables.rs`; a test checks the equal
//! areas in f64): one `u64` per draw, whose low 12 bits choose a layer `i` and whose top
//! 52 bits give `u ∈ [−1, 1)`, so every bit is used once; `x = u·X[i]` is accepted at
//! once when `|x| < X[i+1]` (99.88 % of draws, against 98.5 % with 256 layers);
//! otherwise a uniform draw (the next word) decides against the density `exp(−x²/2)`
//! between layers (`F` table), and layer 0 samples the tail beyond `R = X[1] ≈ 4.386` by
//! Marsaglia's method. The method is exact for any number of layers; more layers make
//! the rejections, which cost a lane group far more than a draw (≈ 55 ns each, a
//! mispredicted branch and a serial repair of the lane's draws), ten times rarer, for a
//! 33 KB table that still sits in the level-1 cache. [`standard_normal`] performs the
//! fast path inline and the rest out of line ([`slow_draw`], on the generator's state
//! words); tests compare millions of its draws, tails included, with a plain
//! transcription of the method. The per-path increment streams
//! ([`crate::brownian::IncrementStream`]) draw through it: with the fast path inlined,
//! no floating-point value has to be spilled around a sampler call.
//!
//! Earlier versions of the crate used `rand_distr`'s tables, so that every draw equalled
//! `rng.sample(rand_distr::StandardNormal)`; with 4096 layers the lane generator is
//! 1.45× and the scalar one 1.15× faster, and results from the same seed differ from
//! earlier versions' (they are reproducible within a version, on every route).
//!
//! [`NormalLanes`] runs eight such generators in lockstep (one per path of a block), so
//! that the generator steps and the fast path are vector operations across paths; lane
//! `l` still draws exactly the numbers its own generator would, one after another. The
//! batched SGD-SDE step draws its increments this way ([`crate::sgd::BatchedSgdSde`]).

use super::ziggurat_tables::{LAYERS, ZIG_NORM_F, ZIG_NORM_R, ZIG_NORM_X};
use super::{advance, from_state_words, state_words, Xoshiro256PlusPlus};
use rand::Rng;

/// One standard normal draw from `rng` (one word, more on the rare slow path).
///
/// ```
/// use noether_sde::rng::{standard_normal, SeedTree, Stream};
/// let mut rng = SeedTree::new(5).rng(0, Stream::Brownian);
/// let draws: Vec<f64> = (0..100_000).map(|_| standard_normal(&mut rng)).collect();
/// let mean = draws.iter().sum::<f64>() / 1e5;
/// let var = draws.iter().map(|x| x * x).sum::<f64>() / 1e5 - mean * mean;
/// assert!(mean.abs() < 4.0 * (1e-5f64).sqrt()); // 4 standard errors
/// assert!((var - 1.0).abs() < 4.0 * (2e-5f64).sqrt());
/// // the same seed, the same numbers
/// let mut again = SeedTree::new(5).rng(0, Stream::Brownian);
/// assert_eq!(standard_normal(&mut again), draws[0]);
/// ```
#[inline(always)]
pub fn standard_normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let bits = rng.next_u64();
    let (x, accepted) = fast_path(bits);
    if accepted {
        return x;
    }
    let mut words = state_words(rng);
    let x = slow_draw(&mut || next_word(&mut words), bits);
    *rng = from_state_words(&words);
    x
}

/// The ziggurat's fast path for the word `bits`: the candidate `x = u·X[i]` (layer `i`
/// from the low 12 bits, `u` from the top 52) and whether it is accepted at once.
#[inline(always)]
pub(crate) fn fast_path(bits: u64) -> (f64, bool) {
    let layer = (bits & (LAYERS as u64 - 1)) as usize;
    // `(bits >> 12).into_float_with_exponent(1) − 3`: a value in [2, 4) minus 3
    let u = f64::from_bits((bits >> 12) | (1024u64 << 52)) - 3.0;
    let x = u * ZIG_NORM_X[layer];
    (x, x.abs() < ZIG_NORM_X[layer + 1])
}

/// Xoshiro256++'s output for the state words `s0` and `s3`.
#[inline(always)]
fn plusplus(s0: u64, s3: u64) -> u64 {
    s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0)
}

/// The xoshiro256 state transition on eight lanes (`s[w][l]`: word `w` of lane `l`), the
/// same operations as the scalar one, word by word across the lanes (one `vprolq` per
/// rotate on AVX-512). Shared by the lane draws and the lane jumps (`seed_lanes`).
#[inline(always)]
pub(crate) fn advance_lanes(s: &mut [[u64; LANES]; 4]) {
    let [s0, s1, s2, s3] = s;
    for l in 0..LANES {
        let t = s1[l] << 17;
        s2[l] ^= s0[l];
        s3[l] ^= s1[l];
        s1[l] ^= s2[l];
        s0[l] ^= s3[l];
        s2[l] ^= t;
        s3[l] = s3[l].rotate_left(45);
    }
}

/// The next Xoshiro256++ output of the state words `s`, advancing them.
#[inline(always)]
pub(crate) fn next_word(s: &mut [u64; 4]) -> u64 {
    let out = plusplus(s[0], s[3]);
    advance(s);
    out
}

/// The rest of the ziggurat loop for a draw `bits` that the fast path did not
/// accept, drawing further words with `next` (the generator's words after `bits`): the
/// wedge test against `exp(−x²/2)` with a `[0, 1)` uniform (53 bits), or for layer 0
/// the tail `R + |ln U₁|/R` with Marsaglia's acceptance `−2 ln U₂ ≥ x²` (`(0, 1)`
/// uniforms, 52 bits); a rejected candidate starts over with a new word.
#[cold]
#[inline(never)]
pub(crate) fn slow_draw(next: &mut impl FnMut() -> u64, mut bits: u64) -> f64 {
    loop {
        let (x, accepted) = fast_path(bits);
        if accepted {
            return x;
        }
        let layer = (bits & (LAYERS as u64 - 1)) as usize;
        if layer == 0 {
            let u = f64::from_bits((bits >> 12) | (1024u64 << 52)) - 3.0;
            let open01 = |w: u64| f64::from_bits((w >> 12) | (1023u64 << 52)) - (1.0 - f64::EPSILON / 2.0);
            let (mut x, mut y) = (1.0f64, 0.0f64);
            while -2.0 * y < x * x {
                let x_ = open01(next());
                let y_ = open01(next());
                x = x_.ln() / ZIG_NORM_R;
                y = y_.ln();
            }
            return if u < 0.0 { x - ZIG_NORM_R } else { ZIG_NORM_R - x };
        }
        let uniform = (next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let (f0, f1) = (ZIG_NORM_F[layer], ZIG_NORM_F[layer + 1]);
        if under_density(layer, x, f1 + (f0 - f1) * uniform).0 {
            return x;
        }
        bits = next();
    }
}

/// How far (relative to the layer's top density) a wedge point must lie from the
/// chord or the tangents of `exp(−x²/2)` to be decided by them: 10⁻¹², against rounding
/// errors of a few 10⁻¹⁶ in the bounds, in glibc's `exp` (< 1 ulp), in the rounded
/// argument `−x·x/2` (≤ 8.5·10⁻¹⁶ relative) and in the `F` table (rounded once from
/// 60 digits; a test checks it against `exp` to 10⁻¹⁵).
const WEDGE_MARGIN: f64 = 1e-12;

/// The wedge test `y < exp(−x²/2)` for a candidate `x` of layer `layer ≥ 1`
/// that the fast path rejected (so `X[layer+1] ≤ |x| < X[layer]`), and whether it had
/// to call `exp` (`.1`). The density is convex beyond 1 and concave inside it, so on a
/// layer that does not straddle 1 the chord through the layer's corners
/// `(X[i], F[i])` lies on one side of it and the tangents at the corners on the other:
/// a point farther than [`WEDGE_MARGIN`] from them is decided without `exp`, the same
/// way as `exp` decides it (only points closer to the curve than 10⁻¹² of the layer's
/// height, and the layer that straddles 1, call it) — so the draws are bit-for-bit those
/// of the plain test, at a fraction of the cost (the call, and its table out of cache, were
/// ≈ 7 % of the lockstep GBM ensemble's time).
#[inline(always)]
fn under_density(layer: usize, x: f64, y: f64) -> (bool, bool) {
    let (b, c) = (ZIG_NORM_X[layer + 1], ZIG_NORM_X[layer]);
    let (fb, fc) = (ZIG_NORM_F[layer + 1], ZIG_NORM_F[layer]);
    let a = x.abs();
    let margin = WEDGE_MARGIN * fb;
    let chord = fb + (fc - fb) * ((a - b) / (c - b));
    let (at_b, at_c) = (fb * (1.0 - b * (a - b)), fc * (1.0 + c * (c - a)));
    if b >= 1.0 {
        // convex: the tangents below the curve, the chord above it
        if y < at_b.max(at_c) - margin {
            return (true, false);
        }
        if y > chord + margin {
            return (false, false);
        }
    } else if c <= 1.0 {
        // concave: the chord below, the tangents above
        if y < chord - margin {
            return (true, false);
        }
        if y > at_b.min(at_c) + margin {
            return (false, false);
        }
    }
    (y < (-x * x / 2.0).exp(), true)
}

/// Number of generators in [`NormalLanes`].
pub const LANES: usize = 8;

/// The state of lanes without a generator (any non-zero state: their draws are scaled
/// by zero).
const IDLE: [u64; 4] = [0x9e37_79b9_7f4a_7c15, 1, 2, 3];

/// Eight Xoshiro256++ generators advanced in lockstep, word-major (`s[w][lane]`), each
/// drawing exactly the standard normals its own generator would.
///
/// ```
/// use noether_sde::rng::{standard_normal, NormalLanes, SeedTree, Stream};
/// let seeds = SeedTree::new(1);
/// let mut lanes = NormalLanes::new();
/// lanes.set(3, Some(&seeds.rng(7, Stream::Brownian)));
/// let (mut out, mut sums) = ([0.0; 8 * 100], [0.0; 8]);
/// let mut scale = [0.0; 8];
/// scale[3] = 0.5;
/// lanes.fill(&scale, &mut out, 8, 100, &mut sums);
/// let mut alone = seeds.rng(7, Stream::Brownian);
/// for i in 0..100 {
///     assert_eq!(out[8 * i + 3], 0.5 * standard_normal(&mut alone));
///     assert_eq!(out[8 * i], 0.0); // a lane without a generator
/// }
/// assert_eq!(lanes.get(3), alone);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalLanes {
    /// `s[w][l]`: word `w` of lane `l`'s state (vector kernels load and store it).
    pub(crate) s: [[u64; LANES]; 4],
}

impl Default for NormalLanes {
    fn default() -> Self {
        Self::new()
    }
}

impl NormalLanes {
    /// Eight lanes without generators.
    pub fn new() -> Self {
        let mut lanes = NormalLanes { s: [[0; LANES]; 4] };
        for lane in 0..LANES {
            lanes.set(lane, None);
        }
        lanes
    }

    /// Puts a copy of `rng` in lane `lane` (`None`: no generator).
    ///
    /// # Panics
    /// If `lane ≥ 8`.
    pub fn set(&mut self, lane: usize, rng: Option<&Xoshiro256PlusPlus>) {
        let words = rng.map_or(IDLE, state_words);
        for (w, word) in self.s.iter_mut().zip(words) {
            w[lane] = word;
        }
    }

    /// The generator of lane `lane`, advanced past what it has drawn.
    ///
    /// # Panics
    /// If `lane ≥ 8`.
    pub fn get(&self, lane: usize) -> Xoshiro256PlusPlus {
        from_state_words(&self.lane_words(lane))
    }

    pub(crate) fn lane_words(&self, lane: usize) -> [u64; 4] {
        std::array::from_fn(|w| self.s[w][lane])
    }

    /// Draws `rows` standard normals in every lane: `out[i·stride + l] = scale[l] · ξ_il`
    /// (lane `l`'s `i`-th draw, bit-for-bit `standard_normal`), and adds them to `sums[l]`
    /// left to right. Vectorises across lanes when inlined into code compiled for wide
    /// vectors.
    ///
    /// # Panics
    /// If `stride < 8` or `out` is shorter than `(rows − 1)·stride + 8`.
    #[inline(always)]
    pub fn fill(
        &mut self,
        scale: &[f64; LANES],
        out: &mut [f64],
        stride: usize,
        rows: usize,
        sums: &mut [f64; LANES],
    ) {
        assert!(stride >= LANES && (rows == 0 || out.len() >= (rows - 1) * stride + LANES));
        for i in 0..rows {
            let mut bits = [0u64; LANES];
            for (l, bits) in bits.iter_mut().enumerate() {
                *bits = plusplus(self.s[0][l], self.s[3][l]);
            }
            advance_lanes(&mut self.s);
            let mut x = [0.0; LANES];
            let mut rejected = 0u8;
            for l in 0..LANES {
                let ok;
                (x[l], ok) = fast_path(bits[l]);
                rejected |= u8::from(!ok) << l;
            }
            if rejected != 0 {
                self.finish_rejected(rejected, &bits, &mut x);
            }
            let row = &mut out[i * stride..i * stride + LANES];
            for l in 0..LANES {
                row[l] = scale[l] * x[l];
                sums[l] += row[l];
            }
        }
    }

    /// Finishes the draws `bits` of the lanes set in `rejected` (bit `l` for lane `l`; their
    /// states already past `bits`), which the fast path did not accept, with [`slow_draw`].
    #[cold]
    #[inline(never)]
    fn finish_rejected(&mut self, rejected: u8, bits: &[u64; LANES], x: &mut [f64; LANES]) {
        let mut rest = rejected;
        while rest != 0 {
            let lane = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let mut words = self.lane_words(lane);
            x[lane] = slow_draw(&mut || next_word(&mut words), bits[lane]);
            for (w, word) in self.s.iter_mut().zip(words) {
                w[lane] = word;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{SeedTree, Stream};
    use rand::RngExt;
    use statrs::distribution::{ContinuousCDF, Normal};

    /// The ziggurat as the method states it, one operation at a time from the words
    /// `first, next(), next(), …` (the uniforms written as plain products, the wedge
    /// decided by `exp`): what `standard_normal` and the lanes must reproduce bit for bit.
    fn textbook(mut bits: u64, next: &mut impl FnMut() -> u64) -> f64 {
        let open01 = |w: u64| ((w >> 12) as f64 + 0.5) * 2f64.powi(-52);
        loop {
            let i = (bits % LAYERS as u64) as usize;
            let u = (bits >> 12) as f64 * 2f64.powi(-51) - 1.0;
            let x = u * ZIG_NORM_X[i];
            if x.abs() < ZIG_NORM_X[i + 1] {
                return x;
            }
            if i == 0 {
                loop {
                    let t = open01(next()).ln() / ZIG_NORM_R;
                    let y = open01(next()).ln();
                    if -2.0 * y >= t * t {
                        return if u < 0.0 { t - ZIG_NORM_R } else { ZIG_NORM_R - t };
                    }
                }
            }
            let uniform = (next() >> 11) as f64 * 2f64.powi(-53);
            let f = ZIG_NORM_F[i + 1] + (ZIG_NORM_F[i] - ZIG_NORM_F[i + 1]) * uniform;
            if f < (-x * x / 2.0).exp() {
                return x;
            }
            bits = next();
        }
    }

    #[test]
    fn table_has_equal_layers() {
        // X[0] = V/f(R), X[1] = R, X[LAYERS] = 0, decreasing; every layer (the base strip
        // with the tail, the rectangles above) has area V to rounding: the differences
        // F[i+1] − F[i] lose up to ~13 digits of F's, hence 10⁻¹¹ relative
        let (x, f, v) = (
            &ZIG_NORM_X,
            &ZIG_NORM_F,
            super::super::ziggurat_tables::ZIG_NORM_V,
        );
        assert!(LAYERS.is_power_of_two() && 1 << 12 == LAYERS);
        assert_eq!((x[1], x[LAYERS], f[LAYERS]), (ZIG_NORM_R, 0.0, 1.0));
        assert!(x.windows(2).all(|w| w[0] > w[1]));
        // ∫_R^∞ exp(−t²/2) dt by Simpson's rule on [R, R + 8] (10⁴ intervals: error
        // ≈ 10⁻¹⁸; statrs' erfc is only good to ~10⁻¹⁰ relative out here)
        let (k, h) = (10_000, 8.0 / 10_000.0);
        let g = |j: usize| (-(ZIG_NORM_R + h * j as f64).powi(2) / 2.0).exp();
        let inner: f64 = (1..k).map(|j| if j % 2 == 1 { 4.0 } else { 2.0 } * g(j)).sum();
        let tail = h / 3.0 * (g(0) + inner + g(k));
        let base = x[1] * f[1] + tail;
        assert!((base - v).abs() <= 1e-13 * v, "base layer {base}, V = {v}");
        assert!((x[0] * f[1] - v).abs() <= 1e-13 * v, "X[0]");
        for i in 1..LAYERS {
            let area = x[i] * (f[i + 1] - f[i]);
            assert!((area - v).abs() <= 1e-11 * v, "layer {i}: area {area}, V = {v}");
        }
    }

    #[test]
    fn same_draws_as_the_textbook_method_including_rejections_and_tails() {
        // 8 · 10^6 draws: ~9,600 take the slow path, ~90 of them the tail (|x| > R: the
        // fast path and the wedges only return |x| < R)
        let (mut slow, mut tail) = (0, 0);
        for path in 0..8 {
            let mut ours = SeedTree::new(77).rng(path, Stream::Brownian);
            let mut theirs = ours.clone();
            for _ in 0..1_000_000 {
                let mut probe = ours.clone();
                let a = standard_normal(&mut ours);
                let first = theirs.next_u64();
                let b = textbook(first, &mut || theirs.next_u64());
                assert_eq!(a.to_bits(), b.to_bits());
                slow += usize::from(!fast_path(probe.next_u64()).1);
                tail += usize::from(a.abs() > ZIG_NORM_R);
            }
            assert_eq!(ours, theirs);
        }
        assert!(
            slow > 8_000 && tail > 50,
            "slow path {slow} times, tail {tail} times"
        );
    }

    #[test]
    fn tail_draws_are_the_textbook_ones() {
        // words of layer 0 with |u| > R/X[0], which the fast path sends to the tail,
        // followed by the generator's words: 2000 tail draws, each beyond R
        let mut rng = SeedTree::new(8).rng(0, Stream::Brownian);
        let cut = ZIG_NORM_R / ZIG_NORM_X[0];
        let mut drawn = 0;
        while drawn < 2000 {
            let bits = rng.next_u64() & !(LAYERS as u64 - 1);
            let u = (bits >> 12) as f64 * 2f64.powi(-51) - 1.0;
            if u.abs() <= cut {
                continue;
            }
            let (mut a, mut b) = (state_words(&rng), rng.clone());
            let x = slow_draw(&mut || next_word(&mut a), bits);
            let y = textbook(bits, &mut || b.next_u64());
            assert_eq!(x.to_bits(), y.to_bits());
            assert!(x.abs() > ZIG_NORM_R && x.signum() == u.signum());
            assert_eq!(from_state_words(&a), b);
            rng = b;
            drawn += 1;
        }
    }

    #[test]
    fn draws_are_standard_normal() {
        // 10^6 draws (fixed seed), each check at level 10⁻³ or stricter: the
        // Kolmogorov–Smirnov distance to Φ below its 0.1 % critical value 1.949/√n; the
        // fraction beyond 3 and beyond R within 4 binomial standard errors of 2Φ(−3)
        // and 2Φ(−R)·n ≈ 11.5 (Poisson: at most 27, P < 10⁻⁴)
        let n = 1_000_000;
        let mut rng = SeedTree::new(3).rng(0, Stream::Brownian);
        let mut draws: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        draws.sort_by(f64::total_cmp);
        let phi = Normal::standard();
        let ks = draws
            .iter()
            .enumerate()
            .map(|(k, &x)| {
                let c = phi.cdf(x);
                (c - k as f64 / n as f64).max((k + 1) as f64 / n as f64 - c)
            })
            .fold(0.0, f64::max);
        assert!(ks < 1.949 / (n as f64).sqrt(), "KS distance {ks}");
        let beyond = |t: f64| draws.iter().filter(|x| x.abs() > t).count() as f64;
        let p3 = 2.0 * phi.cdf(-3.0);
        let se = (p3 * (1.0 - p3) / n as f64).sqrt();
        assert!(
            (beyond(3.0) / n as f64 - p3).abs() < 4.0 * se,
            "beyond 3: {}",
            beyond(3.0)
        );
        assert!(beyond(ZIG_NORM_R) <= 27.0, "beyond R: {}", beyond(ZIG_NORM_R));
    }

    #[test]
    fn density_table_is_exp_of_the_boundaries() {
        // the wedge bounds take F[i] = exp(−X[i]²/2) to well inside their margin of
        // 10⁻¹² (F[0], written to 15 digits, is 6.8·10⁻¹⁶ off; the rest ≤ 2.2·10⁻¹⁶)
        for (i, (&x, &f)) in ZIG_NORM_X.iter().zip(&ZIG_NORM_F).enumerate() {
            let exact = (-x * x / 2.0).exp();
            assert!((f - exact).abs() <= 1e-15 * exact, "F[{i}] = {f}, exp = {exact}");
        }
    }

    #[test]
    fn wedge_bounds_decide_as_exp_does() {
        // every layer: random points of the wedge box, and points within a few ulps, a
        // few 10⁻¹³ and a few 10⁻¹¹ of the curve (inside and just outside the margin);
        // every decision must be exp's, and the random points must rarely need exp
        let mut rng = SeedTree::new(4).rng(0, Stream::Brownian);
        let (mut random, mut with_exp) = (0usize, 0usize);
        for layer in 1..LAYERS {
            let (b, c) = (ZIG_NORM_X[layer + 1], ZIG_NORM_X[layer]);
            let (f1, f0) = (ZIG_NORM_F[layer + 1], ZIG_NORM_F[layer]);
            for k in 0..1000 {
                let a = b + (c - b) * rng.random::<f64>();
                let x = if k % 2 == 0 { a } else { -a };
                let curve = (-x * x / 2.0).exp();
                let ys = [
                    f1 + (f0 - f1) * rng.random::<f64>(),
                    curve,
                    curve * (1.0 + 4.0 * f64::EPSILON),
                    curve * (1.0 - 4.0 * f64::EPSILON),
                    curve * (1.0 + 3e-13),
                    curve * (1.0 - 3e-13),
                    curve * (1.0 + 3e-11),
                    curve * (1.0 - 3e-11),
                ];
                for (j, y) in ys.into_iter().enumerate() {
                    let (under, called) = under_density(layer, x, y);
                    assert_eq!(under, y < curve, "layer {layer}, x = {x}, y = {y}");
                    if j == 0 {
                        random += 1;
                        with_exp += usize::from(called);
                    }
                }
            }
        }
        // the straddling layer (1/4095 of the points) and a thin band: well under 1 %
        assert!(with_exp * 100 < random, "exp on {with_exp} of {random} points");
    }

    #[test]
    fn lanes_draw_what_each_generator_draws() {
        // 7 lanes with generators (one idle), 400,000 rows: ~3,400 rejected lane-draws,
        // drawn in calls of irregular lengths
        let seeds = SeedTree::new(12);
        let mut lanes = NormalLanes::new();
        let mut alone: Vec<_> = (0..7).map(|p| seeds.rng(p, Stream::Brownian)).collect();
        for (l, rng) in alone.iter().enumerate() {
            lanes.set(l + 1, Some(rng));
        }
        let scale = [0.0, 1.0, 0.5, 2.0, 1.0, 1.0, 3.0, 1.0];
        let rows = 400_000;
        let mut out = vec![f64::NAN; rows * 9];
        let mut sums = [0.0; LANES];
        let mut first = 0;
        for calls in [1, 3, 16, 17, 5, 39, 100, 15, 2].iter().cycle() {
            let n = (*calls).min(rows - first);
            lanes.fill(&scale, &mut out[9 * first..], 9, n, &mut sums);
            first += n;
            if first == rows {
                break;
            }
        }
        for (l, rng) in alone.iter_mut().enumerate() {
            let mut sum = 0.0;
            for i in 0..rows {
                let v = scale[l + 1] * standard_normal(rng);
                assert_eq!(
                    out[9 * i + l + 1].to_bits(),
                    v.to_bits(),
                    "lane {}, row {i}",
                    l + 1
                );
                sum += v;
            }
            assert_eq!(sums[l + 1].to_bits(), sum.to_bits());
            assert_eq!(&lanes.get(l + 1), rng);
        }
        assert!(out
            .iter()
            .step_by(9)
            .all(|v| v.to_bits() == 0.0f64.to_bits() || v.to_bits() == (-0.0f64).to_bits()));
        assert!(
            out.iter().skip(LANES).step_by(9).all(|v| v.is_nan()),
            "stride gap untouched"
        );
    }
}
