//! Reproducible randomness: every generator is a pure function of
//! `(master seed, path index, named stream)`.
//!
//! [`SeedTree::rng`] seeds one Xoshiro256++ generator from the master seed and then
//! jumps it ahead by `path · 2^128 + stream · 2^192` draws — the same state as
//! `rand_xoshiro`'s `jump_n` (a test checks it), but ~1000× cheaper: the jump
//! polynomials `x^(v·2^(128+8w))` of each byte value `v` of the path index and
//! `x^(2^(192+k)) mod p(x)` of each bit of the stream index (p the generator's
//! characteristic polynomial) are computed once (8 KiB per byte position, built the
//! first time a path needs it: two for the first 65,536 paths), and a jump applies
//! one per non-zero byte of `path` and per set bit of the stream index, branch-free on
//! the state words (~0.3 µs each instead of ~0.5 ms for a general jump; ~0.6 µs for a
//! path below 65,536 on the Brownian stream). Paths therefore get
//! non-overlapping sub-sequences of length `2^128`, and each consumer of randomness
//! (Brownian increments, mini-batches, Lévy areas, bridge refinement) has its own
//! stream, so adding a new consumer never changes the numbers another one sees.
//! Results do not depend on how paths are scheduled over threads.

pub(crate) mod normal;
mod ziggurat_tables;
// SIMD: the lane ziggurat compiled per instruction set (run-time detection).
#[allow(unsafe_code)]
mod normal_simd;
mod seed_lanes;

pub use normal::{standard_normal, NormalLanes, LANES};
use rand::SeedableRng;
pub use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::OnceLock;

/// Low 256 bits of the characteristic polynomial of xoshiro256 (`x^256` implicit),
/// as used by `rand_xoshiro`'s `jump_ce`.
const CHARPOLY: [u64; 4] = [
    0x9d11_6f2b_b0f0_f001,
    0x0280_002b_cefd_1a5e,
    0x04b4_edcf_2625_9f85,
    0x0003_c03c_3f3e_cb19,
];

/// `a(x)² mod p(x)` over GF(2).
fn square_mod(a: &[u64; 4]) -> [u64; 4] {
    let mut wide = [0u64; 8];
    for bit in 0..256 {
        if (a[bit / 64] >> (bit % 64)) & 1 == 1 {
            let b = 2 * bit;
            wide[b / 64] |= 1 << (b % 64);
        }
    }
    for bit in (256..512).rev() {
        if (wide[bit / 64] >> (bit % 64)) & 1 == 1 {
            wide[bit / 64] ^= 1 << (bit % 64);
            // x^bit = x^(bit-256) · x^256 ≡ x^(bit-256) · CHARPOLY
            let shift = bit - 256;
            for (w, &c) in CHARPOLY.iter().enumerate() {
                let lo = w * 64 + shift;
                let (word, off) = (lo / 64, lo % 64);
                wide[word] ^= c << off;
                if off != 0 && word + 1 < 8 {
                    wide[word + 1] ^= c >> (64 - off);
                }
            }
        }
    }
    [wide[0], wide[1], wide[2], wide[3]]
}

/// `a(x) · b(x) mod p(x)` over GF(2) (shift and add, high bit of `b` first; the
/// data-dependent choices are table look-ups rather than branches).
fn mul_mod(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let add = [[0u64; 4], *a];
    let reduce = [[0u64; 4], CHARPOLY];
    let mut r = [0u64; 4];
    for bit in (0..256).rev() {
        // r ← r · x + b_bit · a mod p, with x^256 ≡ CHARPOLY
        let carry = (r[3] >> 63) as usize;
        r[3] = (r[3] << 1) | (r[2] >> 63);
        r[2] = (r[2] << 1) | (r[1] >> 63);
        r[1] = (r[1] << 1) | (r[0] >> 63);
        r[0] <<= 1;
        let take = ((b[bit / 64] >> (bit % 64)) & 1) as usize;
        for i in 0..4 {
            r[i] ^= reduce[carry][i] ^ add[take][i];
        }
    }
    r
}

/// `JUMPS[k] = x^(2^(128+k)) mod p(x)`, `k = 0..128`.
fn jump_polynomials() -> &'static [[u64; 4]; 128] {
    static JUMPS: OnceLock<[[u64; 4]; 128]> = OnceLock::new();
    JUMPS.get_or_init(|| {
        let mut poly = [2u64, 0, 0, 0]; // x
        for _ in 0..128 {
            poly = square_mod(&poly);
        }
        let mut out = [[0u64; 4]; 128];
        for slot in out.iter_mut() {
            *slot = poly;
            poly = square_mod(&poly);
        }
        out
    })
}

/// `path_jumps(w)[v] = x^(v · 2^(128 + 8w)) mod p(x)` for `v = 0..256`: the jump of
/// byte `w` of the path index having the value `v`, so a path costs one jump per
/// non-zero byte (two for the first 65,536 paths) instead of one per set bit. Each byte's
/// table (8 KiB, 255 polynomial products, about 1.5 million instructions) is built the
/// first time a path needs it: the first 65,536 paths need two of the eight.
fn path_jumps(w: usize) -> &'static [[u64; 4]; 256] {
    // static storage, not a `Box`: building a table never allocates, so the first path
    // that needs one allocates nothing either (tests/allocations.rs)
    static PATH_JUMPS: [OnceLock<[[u64; 4]; 256]>; 8] = [const { OnceLock::new() }; 8];
    PATH_JUMPS[w].get_or_init(|| {
        let bits = jump_polynomials();
        let mut out = [[0u64; 4]; 256];
        out[0] = [1, 0, 0, 0]; // x^0: no jump
        for v in 1..256usize {
            let low = v.trailing_zeros() as usize;
            let rest = v & (v - 1);
            out[v] = if rest == 0 {
                bits[8 * w + low]
            } else {
                mul_mod(&out[rest], &bits[8 * w + low])
            };
        }
        out
    })
}

/// The generator's state as four little-endian words (the layout of
/// [`Xoshiro256PlusPlus::state`] and [`SeedableRng::from_seed`]).
fn state_words(rng: &Xoshiro256PlusPlus) -> [u64; 4] {
    let bytes = rng.state();
    let mut s = [0u64; 4];
    for (i, w) in s.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[8 * i..8 * i + 8]);
        *w = u64::from_le_bytes(b);
    }
    s
}

fn from_state_words(s: &[u64; 4]) -> Xoshiro256PlusPlus {
    let mut bytes = [0u8; 32];
    for (i, w) in s.iter().enumerate() {
        bytes[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
    }
    Xoshiro256PlusPlus::from_seed(bytes)
}

/// The xoshiro256 state transition (`rand_xoshiro`'s, without the `++` output).
#[inline(always)]
fn advance(s: &mut [u64; 4]) {
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
}

/// Applies the jump polynomial `poly` (evaluated at the state transition `T`) to the
/// state words `s`: `s ← Σ_b poly_b T^b s`, by Horner's rule over 4-bit windows,
///
/// ```text
/// Σ_b poly_b T^b s = Σ_w T^(4w) v[m_w],   v[m] = Σ_{j ∈ m} T^j s,   m_w = bits 4w..4w+4,
/// ```
///
/// so the 256 coefficients cost 64 table look-ups and no branches (the coefficients are
/// random bits: a branch per bit would be mispredicted half the time).
fn apply_jump(s: &mut [u64; 4], poly: &[u64; 4]) {
    let mut powers = [*s; 4];
    for j in 1..4 {
        powers[j] = powers[j - 1];
        advance(&mut powers[j]);
    }
    let mut v = [[0u64; 4]; 16];
    for m in 1..16usize {
        let (rest, low) = (m & (m - 1), m.trailing_zeros() as usize);
        for i in 0..4 {
            v[m][i] = v[rest][i] ^ powers[low][i];
        }
    }
    let mut r = [0u64; 4];
    for w in (0..64).rev() {
        for _ in 0..4 {
            advance(&mut r);
        }
        let m = ((poly[w / 16] >> (4 * (w % 16))) & 15) as usize;
        for i in 0..4 {
            r[i] ^= v[m][i];
        }
    }
    *s = r;
}

/// A named, independent source of randomness within one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stream {
    /// Brownian increments.
    Brownian,
    /// Mini-batch indices of discrete SGD.
    Batches,
    /// Lévy areas (iterated integrals) for general-noise schemes.
    Levy,
    /// Brownian-bridge refinement of a stored path.
    Bridge,
    /// Random initial conditions.
    Init,
    /// Fresh samples drawn from a population.
    Samples,
    /// Space-time Lévy areas `H = I_(j,0)/h − ΔW_j/2` for strong order-1.5 schemes.
    SpaceTime,
    /// A user-defined stream; numbers do not collide with the named ones.
    Custom(u32),
}

impl Stream {
    fn index(self) -> u64 {
        match self {
            Stream::Brownian => 0,
            Stream::Batches => 1,
            Stream::Levy => 2,
            Stream::Bridge => 3,
            Stream::Init => 4,
            Stream::Samples => 5,
            Stream::SpaceTime => 6,
            Stream::Custom(k) => 64 + u64::from(k),
        }
    }
}

/// The root of all randomness of a run.
///
/// ```
/// use noether_sde::rng::{SeedTree, Stream};
/// use rand::Rng;
/// let seeds = SeedTree::new(42);
/// let a = seeds.rng(7, Stream::Brownian).next_u64();
/// let b = seeds.rng(7, Stream::Brownian).next_u64();
/// let c = seeds.rng(8, Stream::Brownian).next_u64();
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeedTree {
    seed: u64,
}

impl SeedTree {
    /// A tree rooted at `seed`.
    pub fn new(seed: u64) -> Self {
        SeedTree { seed }
    }

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The generator of path `path`, stream `stream`.
    pub fn rng(&self, path: u64, stream: Stream) -> Xoshiro256PlusPlus {
        let mut s = state_words(&Xoshiro256PlusPlus::seed_from_u64(self.seed));
        // distance = path · 2^128 + stream · 2^192: one precomputed jump per non-zero
        // byte of `path` and per set bit of the stream index (jumps commute).
        for w in 0..8 {
            let v = ((path >> (8 * w)) & 0xff) as usize;
            if v != 0 {
                apply_jump(&mut s, &path_jumps(w)[v]);
            }
        }
        let jumps = jump_polynomials();
        let stream = stream.index();
        for k in 0..64 {
            if (stream >> k) & 1 == 1 {
                apply_jump(&mut s, &jumps[64 + k]);
            }
        }
        from_state_words(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_jump_polynomial_is_rand_xoshiro_jump() {
        // rand_xoshiro's `jump()` constants are x^(2^128) mod p(x).
        assert_eq!(
            jump_polynomials()[0],
            [
                0x180ec6d33cfd0aba,
                0xd5a61266f0c9392c,
                0xa9582618e03fc9aa,
                0x39abdc4529b1661c
            ]
        );
        assert_eq!(
            jump_polynomials()[64],
            [
                0x76e15d3efefdcbbf,
                0xc5004e441c522fb3,
                0x77710069854ee241,
                0x39109bb02acbe635
            ]
        );
    }

    #[test]
    fn consecutive_paths_are_one_jump_apart() {
        let tree = SeedTree::new(5);
        let mut expected = tree.rng(0, Stream::Levy);
        for path in 1..700 {
            expected.jump(); // x^(2^128): one path further
            assert_eq!(tree.rng(path, Stream::Levy), expected, "path {path}");
        }
    }

    #[test]
    fn products_of_jump_polynomials_add_distances() {
        let bits = jump_polynomials();
        // x^(2^(128+k)) squared is x^(2^(129+k))
        assert_eq!(mul_mod(&bits[3], &bits[3]), bits[4]);
        assert_eq!(mul_mod(&[1, 0, 0, 0], &bits[70]), bits[70]);
        // byte table: v = 5 at byte 1 is x^(5 · 2^136) = x^(2^136) · x^(2^138)
        assert_eq!(path_jumps(1)[5], mul_mod(&bits[8], &bits[10]));
        assert_eq!(path_jumps(7)[128], bits[63]);
    }

    #[test]
    fn seed_tree_equals_a_single_general_jump() {
        let tree = SeedTree::new(99);
        for (path, stream) in [
            (0u64, Stream::Brownian),
            (1, Stream::Levy),
            (12345, Stream::Custom(3)),
            (255, Stream::Brownian),
            (65_536, Stream::Batches),
            (u64::MAX, Stream::Samples),
            (0xdead_beef_0bad_f00d, Stream::Custom(u32::MAX)),
        ] {
            let mut expected = Xoshiro256PlusPlus::seed_from_u64(99);
            expected.jump_n(&[0, 0, path, stream.index()]);
            assert_eq!(tree.rng(path, stream), expected, "path {path}, {stream:?}");
        }
    }
}
