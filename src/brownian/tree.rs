//! A virtual Brownian tree: `W(s)` at any `s ∈ [t0, t1]`, answered by Brownian-bridge
//! bisection from per-node seeds, with no stored path (THEORY §9).
//!
//! # Construction
//!
//! Write `u = (s − t0)/(t1 − t0) ∈ [0, 1]` and `T = t1 − t0`. Node `(ℓ, j)` of the tree
//! covers `u ∈ [j 2^−ℓ, (j + 1) 2^−ℓ]`, `ℓ = 0..L` (`L` = [`BrownianTree::depth`]).
//!
//! ```text
//! W(t1) − W(t0) = √T ξ_root,
//! W(mid) = ½(W(left) + W(right)) + √(T 2^−ℓ / 4) ξ_(ℓ,j)          (midpoint of node (ℓ, j)),
//! W(s)   = W(a) + θ (W(b) − W(a)) + √(T 2^−L θ(1 − θ)) ζ_(k,s)    (s strictly inside leaf k),
//! ```
//!
//! with `a, b` the ends of leaf `k = ⌊u 2^L⌋` and `θ = u 2^L − k`. Every `ξ`, `ζ` is a
//! vector of `m` standard normals drawn by [`crate::rng::standard_normal`] from its own
//! Xoshiro256++ generator, whose 256-bit state is
//!
//! ```text
//! state = mix²([K₀ ⊕ tag, K₁ ⊕ index, K₂ ⊕ extra, K₃]),
//! ```
//!
//! `K` = the first four words of path `p`'s [`Stream::Brownian`] generator
//! (`SeedTree::rng(p, Stream::Brownian)`), `tag` = 1 for the root, `2 + ℓ` for node
//! `(ℓ, j)` (`index = j`, `extra = 0`) and `2^32` for the bridge inside leaf `k`
//! (`index = k`, `extra` = the bits of `θ`); `mix²` is two rounds of the SplitMix64
//! finaliser across the words (`node_state`). So a node's numbers are a pure function
//! of `(seed, path, node)`: no query order, cache state, thread or other path changes
//! them.
//!
//! # What is guaranteed
//!
//! - **Determinism, bitwise**: `W(s)` is a function of `(seed, path, t0, t1, L, s)` alone.
//!   Each value at a dyadic point is computed once per descent by the same operations on
//!   the same ancestors, whichever leaf the descent ends in, so the cache (the last
//!   root-to-leaf path, `O(L m)` numbers) changes only the cost, never a bit.
//! - **Exact law at the dyadic points** `u = j 2^−L`: jointly they are a Brownian motion
//!   (Lévy's construction, exact in distribution; the arithmetic rounds as usual).
//! - **Exact law of one point per leaf**: a non-dyadic `s` is drawn from the exact
//!   Brownian-bridge law given its leaf's ends, so any set of queries with at most one
//!   point strictly inside each leaf has exactly the law of Brownian motion at those
//!   times.
//! - **Increments telescope**: `ΔW[s, t] = W(t) − W(s)` of the stored function, so sums of
//!   sub-interval increments equal the coarse increment in exact arithmetic; in floating
//!   point, within the rounding of the subtractions and the sum (`tests/it/adaptive.rs`
//!   states the bound).
//!
//! # What is not
//!
//! Two points strictly inside the *same* leaf are bridged independently given the leaf's
//! ends, not by a joint bridge: their increment has variance `T 2^−L (θ₁(1 − θ₁) +
//! θ₂(1 − θ₂))`-ish instead of `|s₂ − s₁|`, an error of order `√(T 2^−L)` (1.5·10⁻⁵ √T at
//! the default `L = 32`). Steps longer than a leaf are unaffected beyond that, so the
//! adaptive driver's minimum step is at least 16 leaves. The tree carries no Lévy areas
//! and no time integrals `I_(j,0)`.

use super::{BrownianPath, Increment};
use crate::error::{check_positive, Error, Result};
use crate::rng::{standard_normal, SeedTree, Stream, Xoshiro256PlusPlus};
use nalgebra::DVector;
use rand::{Rng, SeedableRng};

/// The default depth `L`: leaves of width `(t1 − t0) 2^−32 ≈ 2.3·10⁻¹⁰ (t1 − t0)`.
pub const DEFAULT_TREE_DEPTH: u32 = 32;

/// The largest depth: `j 2^−L` and `u 2^L` stay exact in `f64` up to `L = 52`.
pub const MAX_TREE_DEPTH: u32 = 52;

const TAG_ROOT: u64 = 1;
const TAG_LEVEL: u64 = 2;
const TAG_LEAF: u64 = 1 << 32;

/// The SplitMix64 finaliser (Stafford's mix 13): a bijection of `u64` with full avalanche.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator state of one node: `K ⊕ (tag, index, extra, 0)`, then two rounds of
/// `w_i ← mix(w_i ⊕ rotl(w_{i−1}, 23) + γ)`, `i = 0..4` in order, over the four words (γ
/// the golden ratio increment of SplitMix64): the updates are sequential, so after the
/// second round every input bit reaches every state word.
#[inline]
fn node_state(key: &[u64; 4], tag: u64, index: u64, extra: u64) -> Xoshiro256PlusPlus {
    let mut w = [key[0] ^ tag, key[1] ^ index, key[2] ^ extra, key[3]];
    for _ in 0..2 {
        for i in 0..4 {
            let previous = w[(i + 3) % 4];
            w[i] = mix((w[i] ^ previous.rotate_left(23)).wrapping_add(0x9e37_79b9_7f4a_7c15));
        }
    }
    if w == [0; 4] {
        w[0] = 1; // the one state xoshiro cannot leave (probability 2^−256)
    }
    let mut bytes = [0u8; 32];
    for (i, word) in w.iter().enumerate() {
        bytes[8 * i..8 * i + 8].copy_from_slice(&word.to_le_bytes());
    }
    Xoshiro256PlusPlus::from_seed(bytes)
}

/// A virtual Brownian tree on `[t0, t1]` with `m` noise dimensions: `W(s)` for any `s`,
/// the same bits whatever the query order (see the module docs of `brownian::tree` for the
/// construction, the guarantees and the tolerance).
///
/// Memory: the last root-to-leaf descent (`2 (L + 1) m` numbers). Cost of a query:
/// `m` normals per level below the deepest node it shares with the previous query
/// (about `L − log₂(T/h)` levels for consecutive steps of size `h`).
///
/// Also a [`BrownianPath`]: consecutive increments from a cursor starting at `t0`
/// (restart it with [`BrownianTree::restart`]), so the fixed-step driver can run on the
/// same path as the adaptive one.
///
/// ```
/// use noether_sde::brownian::BrownianTree;
/// use noether_sde::rng::SeedTree;
/// use nalgebra::DVector;
/// let mut tree = BrownianTree::new(&SeedTree::new(3), 0, 2, 0.0, 1.0)?;
/// let (mut a, mut b, mut c) = (DVector::zeros(2), DVector::zeros(2), DVector::zeros(2));
/// tree.w(0.3, &mut a)?;
/// tree.w(0.9, &mut b)?;
/// let mut other = BrownianTree::new(&SeedTree::new(3), 0, 2, 0.0, 1.0)?;
/// other.w(0.9, &mut c)?; // another order, another cache: the same bits
/// assert_eq!(b, c);
/// # Ok::<(), noether_sde::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BrownianTree {
    t0: f64,
    t1: f64,
    depth: u32,
    noise_dim: usize,
    key: [u64; 4],
    /// `√(T 2^−ℓ / 4)` for `ℓ = 0..L`, then `√(T 2^−L)` (the leaf bridge scale).
    scale: Vec<f64>,
    /// `lo[ℓ m..(ℓ+1) m]`, `hi[…]`: `W` at the ends of the level-`ℓ` node on the cached
    /// descent (`ℓ = 0..=L`); `lo[0..m] = 0`, `hi[0..m] = W(t1) − W(t0)`.
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// The leaf the cached descent ends in, if any.
    cached: Option<u64>,
    /// The cursor of the [`BrownianPath`] interface and `W` there.
    cursor: f64,
    w_cursor: DVector<f64>,
    w_next: DVector<f64>,
}

impl BrownianTree {
    /// The tree of path `path` of `seeds` on `[t0, t1]`, noise dimension `noise_dim`, depth
    /// [`DEFAULT_TREE_DEPTH`].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `noise_dim = 0`, non-finite times or `t1 ≤ t0`.
    pub fn new(seeds: &SeedTree, path: u64, noise_dim: usize, t0: f64, t1: f64) -> Result<Self> {
        Self::with_depth(seeds, path, noise_dim, t0, t1, DEFAULT_TREE_DEPTH)
    }

    /// As [`BrownianTree::new`] with depth `depth` (leaves of width `(t1 − t0) 2^−depth`).
    ///
    /// # Errors
    /// As [`BrownianTree::new`]; also [`Error::InvalidParameter`] for `depth` outside
    /// `1..=`[`MAX_TREE_DEPTH`].
    pub fn with_depth(
        seeds: &SeedTree,
        path: u64,
        noise_dim: usize,
        t0: f64,
        t1: f64,
        depth: u32,
    ) -> Result<Self> {
        if noise_dim == 0 {
            return Err(Error::invalid("noise_dim", noise_dim, "must be at least 1"));
        }
        if !(1..=MAX_TREE_DEPTH).contains(&depth) {
            return Err(Error::invalid(
                "depth",
                depth,
                format!("must be in 1..={MAX_TREE_DEPTH}"),
            ));
        }
        if !t0.is_finite() {
            return Err(Error::invalid("t0", t0, "must be finite"));
        }
        if !t1.is_finite() {
            return Err(Error::invalid("t1", t1, "must be finite"));
        }
        let span = t1 - t0;
        check_positive("t1 - t0", span)?;
        let mut stream = seeds.rng(path, Stream::Brownian);
        let key = [
            stream.next_u64(),
            stream.next_u64(),
            stream.next_u64(),
            stream.next_u64(),
        ];
        let levels = depth as usize + 1;
        let mut scale: Vec<f64> = (0..depth)
            .map(|l| (0.25 * span * 0.5f64.powi(l as i32)).sqrt())
            .collect();
        scale.push((span * 0.5f64.powi(depth as i32)).sqrt());
        let mut hi = vec![0.0; levels * noise_dim];
        let mut root = node_state(&key, TAG_ROOT, 0, 0);
        let sqrt_span = span.sqrt();
        for v in &mut hi[..noise_dim] {
            *v = sqrt_span * standard_normal(&mut root);
        }
        Ok(BrownianTree {
            t0,
            t1,
            depth,
            noise_dim,
            key,
            scale,
            lo: vec![0.0; levels * noise_dim],
            hi,
            cached: None,
            cursor: t0,
            w_cursor: DVector::zeros(noise_dim),
            w_next: DVector::zeros(noise_dim),
        })
    }

    /// Start time.
    pub fn t0(&self) -> f64 {
        self.t0
    }

    /// End time.
    pub fn t1(&self) -> f64 {
        self.t1
    }

    /// The depth `L`: queries at `t0 + j (t1 − t0) 2^−L` are tree nodes.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The width of a leaf, `(t1 − t0) 2^−L`.
    pub fn leaf_width(&self) -> f64 {
        (self.t1 - self.t0) * 0.5f64.powi(self.depth as i32)
    }

    /// Descends to leaf `k`, reusing the cached levels it shares with the last descent.
    fn descend(&mut self, k: u64) {
        let (m, depth) = (self.noise_dim, self.depth);
        let start = match self.cached {
            Some(previous) if previous == k => return,
            // levels 0..=L−p−1 are shared, p the highest bit where the leaves differ
            Some(previous) => depth - (64 - (previous ^ k).leading_zeros()),
            None => 0,
        };
        for level in start..depth {
            let l = level as usize;
            let j = k >> (depth - level);
            let mut rng = node_state(&self.key, TAG_LEVEL + u64::from(level), j, 0);
            let scale = self.scale[l];
            let right = (k >> (depth - level - 1)) & 1 == 1;
            let (lo, hi) = (&mut self.lo, &mut self.hi);
            for i in 0..m {
                let (a, b) = (lo[l * m + i], hi[l * m + i]);
                let mid = 0.5 * (a + b) + scale * standard_normal(&mut rng);
                let (na, nb) = if right { (mid, b) } else { (a, mid) };
                lo[(l + 1) * m + i] = na;
                hi[(l + 1) * m + i] = nb;
            }
        }
        self.cached = Some(k);
    }

    /// `W(s) − W(t0)` into `out`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `s` outside `[t0, t1]` or not finite;
    /// [`Error::DimensionMismatch`] if `out` does not have `m` entries.
    pub fn w(&mut self, s: f64, out: &mut DVector<f64>) -> Result<()> {
        let m = self.noise_dim;
        if out.len() != m {
            return Err(Error::DimensionMismatch {
                what: "Brownian tree output",
                expected: m,
                got: out.len(),
            });
        }
        if !(s >= self.t0 && s <= self.t1) {
            return Err(Error::invalid(
                "s",
                s,
                format!("the tree covers [{}, {}]", self.t0, self.t1),
            ));
        }
        let u = ((s - self.t0) / (self.t1 - self.t0)).min(1.0);
        let scaled = u * 2f64.powi(self.depth as i32); // exact: a power of two
        let k = scaled.floor() as u64;
        if k >= 1u64 << self.depth {
            out.as_mut_slice().copy_from_slice(&self.hi[..m]);
            return Ok(());
        }
        self.descend(k);
        let l = self.depth as usize;
        let (lo, hi) = (&self.lo[l * m..(l + 1) * m], &self.hi[l * m..(l + 1) * m]);
        let theta = scaled - k as f64; // exact
        if theta == 0.0 {
            out.as_mut_slice().copy_from_slice(lo);
            return Ok(());
        }
        let mut rng = node_state(&self.key, TAG_LEAF, k, theta.to_bits());
        let spread = self.scale[l] * (theta * (1.0 - theta)).sqrt();
        for ((o, &a), &b) in out.iter_mut().zip(lo).zip(hi) {
            *o = a + theta * (b - a) + spread * standard_normal(&mut rng);
        }
        Ok(())
    }

    /// The increment over `[s, t]` into `inc`: `inc.h = t − s`, `inc.dw = W(t) − W(s)`.
    ///
    /// # Errors
    /// As [`BrownianTree::w`]; [`Error::InvalidParameter`] if `t < s`;
    /// [`Error::Brownian`] if `inc` asks for Lévy areas or time integrals (the tree has
    /// neither).
    pub fn increment(&mut self, s: f64, t: f64, inc: &mut Increment) -> Result<()> {
        if t < s {
            return Err(Error::invalid(
                "t",
                t,
                format!("the interval must end after s = {s}"),
            ));
        }
        check_plain(inc)?;
        let mut w_s = std::mem::replace(&mut self.w_next, DVector::zeros(0));
        let result = self.w(s, &mut w_s).and_then(|()| self.w(t, &mut inc.dw));
        if result.is_ok() {
            inc.dw -= &w_s;
            inc.h = t - s;
        }
        self.w_next = w_s;
        result
    }

    /// Moves the [`BrownianPath`] cursor back to `t0`.
    pub fn restart(&mut self) {
        self.cursor = self.t0;
        self.w_cursor.fill(0.0);
    }
}

/// [`Error::Brownian`] if `inc` asks for what a tree cannot give.
fn check_plain(inc: &Increment) -> Result<()> {
    if inc.area.is_some() || inc.time_integral.is_some() {
        return Err(Error::Brownian {
            reason: "a Brownian tree carries neither Lévy areas nor time integrals I_(j,0)".into(),
        });
    }
    Ok(())
}

impl BrownianPath for BrownianTree {
    fn noise_dim(&self) -> usize {
        self.noise_dim
    }

    fn provides_area(&self) -> bool {
        false
    }

    /// The increment over `[cursor, cursor + h]` (the end snapped to `t1` within
    /// `10⁻⁹ (t1 − t0)`), then the cursor moves there.
    fn next(&mut self, inc: &mut Increment) -> Result<()> {
        check_plain(inc)?;
        let mut end = self.cursor + inc.h;
        let slack = 1e-9 * (self.t1 - self.t0);
        if end > self.t1 - slack && end <= self.t1 + slack {
            end = self.t1;
        }
        if end > self.t1 {
            return Err(Error::Brownian {
                reason: format!(
                    "the tree ends at {}: no step of {} from {}",
                    self.t1, inc.h, self.cursor
                ),
            });
        }
        let mut w_end = std::mem::replace(&mut self.w_next, DVector::zeros(0));
        let result = self.w(end, &mut w_end);
        if result.is_ok() {
            inc.dw.copy_from(&w_end);
            inc.dw -= &self.w_cursor;
            std::mem::swap(&mut self.w_cursor, &mut w_end);
            self.cursor = end;
        }
        self.w_next = w_end;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dyadic_values_do_not_depend_on_the_cache() {
        let seeds = SeedTree::new(9);
        let mut warm = BrownianTree::with_depth(&seeds, 4, 3, 0.0, 2.0, 10).unwrap();
        let mut out = DVector::zeros(3);
        for s in [1.7, 0.1, 1.999, 0.5, 1.0] {
            warm.w(s, &mut out).unwrap();
        }
        for j in 0..=1024u32 {
            let s = 2.0 * f64::from(j) / 1024.0;
            let mut cold = BrownianTree::with_depth(&seeds, 4, 3, 0.0, 2.0, 10).unwrap();
            let mut expected = DVector::zeros(3);
            cold.w(s, &mut expected).unwrap();
            warm.w(s, &mut out).unwrap();
            assert_eq!(out, expected, "s = {s}");
        }
    }

    #[test]
    fn out_of_range_and_wrong_sizes_are_errors() {
        let mut tree = BrownianTree::new(&SeedTree::new(1), 0, 2, 0.0, 1.0).unwrap();
        let mut out = DVector::zeros(2);
        assert!(tree.w(1.5, &mut out).is_err());
        assert!(tree.w(f64::NAN, &mut out).is_err());
        assert!(tree.w(0.5, &mut DVector::zeros(3)).is_err());
        assert!(BrownianTree::with_depth(&SeedTree::new(1), 0, 2, 0.0, 1.0, 53).is_err());
        assert!(BrownianTree::new(&SeedTree::new(1), 0, 0, 0.0, 1.0).is_err());
        assert!(BrownianTree::new(&SeedTree::new(1), 0, 1, 1.0, 1.0).is_err());
        let mut inc = Increment::with_area(2);
        inc.h = 0.1;
        assert!(matches!(tree.next(&mut inc), Err(Error::Brownian { .. })));
    }
}
