//! Seeding a block of consecutive paths' generators eight lanes at a time (THEORY §8: the
//! lockstep ensemble's Brownian streams).
//!
//! [`SeedTree::rng`] costs one jump polynomial per non-zero byte of the path index (two
//! for paths 256 … 65,535), about 2,850 instructions each: ≈ 5,700 per path, ≈ 5.7 per
//! path-step of a 10³-step run, a sixth of the lockstep GBM step. Jumps are linear maps
//! of the state over GF(2) and commute, so the states of paths `p₀ + l` follow from the
//! state of `p₀` by the jumps of `l`'s bits (1, 2, 4), and the next group of eight from
//! this one by the jump of 8 — the same polynomial in every lane, so the Horner loop of
//! the jump runs on all eight lanes at once in vector registers. A block of 64 paths then
//! costs one scalar seed and ten lane jumps instead of 64 scalar seeds. The states are
//! exactly [`SeedTree::rng`]'s (tested), so nothing downstream changes.

use super::normal::{advance_lanes, NormalLanes, LANES};
use super::{path_jumps, state_words, SeedTree, Stream};
use crate::simd::{Kernel, Vectorised};
use std::ops::Range;

/// Four state words of eight lanes, `s[w][l]` (the layout of [`NormalLanes`]).
type LaneState = [[u64; LANES]; 4];

impl SeedTree {
    /// Puts the generators of stream `stream` of `paths` into `groups`, eight per group:
    /// lane `l` of group `g` gets path `paths.start + 8g + l`'s generator, exactly the
    /// state [`SeedTree::rng`] gives it; lanes past `paths.end` get none. Groups beyond
    /// the paths are left as they are.
    pub fn seed_lanes(&self, paths: Range<u64>, stream: Stream, groups: &mut [NormalLanes]) {
        let n = paths.end.saturating_sub(paths.start);
        if n == 0 || groups.is_empty() {
            return;
        }
        Kernel::detect().vectorised(SeedLanes {
            seeds: self,
            paths,
            stream,
            groups,
        });
    }
}

/// The arguments of [`SeedTree::seed_lanes`], to run under [`Kernel::vectorised`].
struct SeedLanes<'a> {
    seeds: &'a SeedTree,
    paths: Range<u64>,
    stream: Stream,
    groups: &'a mut [NormalLanes],
}

impl Vectorised for SeedLanes<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SeedLanes {
            seeds,
            paths,
            stream,
            groups,
        } = self;
        let n = paths.end - paths.start;
        let jumps = path_jumps(0);
        // group 0: path p₀ in every lane, then lanes with bit b of l set jump 2^b paths
        let first = state_words(&seeds.rng(paths.start, stream));
        let mut s: LaneState = std::array::from_fn(|w| [first[w]; LANES]);
        for bit in 0..3 {
            let mask = std::array::from_fn(|l| (l >> bit) & 1 == 1);
            jump_lanes(&mut s, &jumps[1 << bit], mask);
        }
        let all = [true; LANES];
        for (g, lanes) in groups.iter_mut().enumerate() {
            let start = g as u64 * LANES as u64;
            if start >= n {
                break;
            }
            if g > 0 {
                jump_lanes(&mut s, &jumps[LANES], all);
            }
            lanes.s = s;
            for l in 0..LANES {
                if start + l as u64 >= n {
                    lanes.set(l, None);
                }
            }
        }
    }
}

/// [`super::apply_jump`] on eight lanes with the same polynomial `poly`, kept in the
/// lanes where `mask` is set: the same Horner rule over 4-bit windows, each word an
/// eight-lane vector (so the same states, lane by lane).
#[inline(always)]
fn jump_lanes(s: &mut LaneState, poly: &[u64; 4], mask: [bool; LANES]) {
    let mut powers = [*s; 4];
    for j in 1..4 {
        powers[j] = powers[j - 1];
        advance_lanes(&mut powers[j]);
    }
    let mut v = [[[0u64; LANES]; 4]; 16];
    for m in 1..16usize {
        let (rest, low) = (m & (m - 1), m.trailing_zeros() as usize);
        for i in 0..4 {
            for l in 0..LANES {
                v[m][i][l] = v[rest][i][l] ^ powers[low][i][l];
            }
        }
    }
    let mut r: LaneState = [[0; LANES]; 4];
    for w in (0..64).rev() {
        for _ in 0..4 {
            advance_lanes(&mut r);
        }
        let m = ((poly[w / 16] >> (4 * (w % 16))) & 15) as usize;
        for i in 0..4 {
            for l in 0..LANES {
                r[i][l] ^= v[m][i][l];
            }
        }
    }
    for i in 0..4 {
        for l in 0..LANES {
            if mask[l] {
                s[i][l] = r[i][l];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every lane holds what `SeedTree::rng` gives its path, for blocks that start
    /// anywhere (byte carries: 250 → 260, 65,530 …), partial last groups (idle lanes as
    /// `NormalLanes::set(l, None)`), every stream, and every kernel.
    #[test]
    fn lanes_get_the_paths_own_generators() {
        let seeds = SeedTree::new(0x5eed);
        let cases = [
            (0u64, 64u64),
            (250, 270),
            (65_530, 65_600),
            (3, 4),
            (1 << 40, (1 << 40) + 17),
        ];
        for (a, b) in cases {
            for stream in [Stream::Brownian, Stream::Levy] {
                for kernel in Kernel::available() {
                    let groups_needed = (b - a).div_ceil(LANES as u64) as usize;
                    let mut groups = vec![NormalLanes::new(); groups_needed + 1];
                    groups[groups_needed].set(0, Some(&seeds.rng(9, stream)));
                    let sentinel = groups[groups_needed].clone();
                    kernel.vectorised(SeedLanes {
                        seeds: &seeds,
                        paths: a..b,
                        stream,
                        groups: &mut groups,
                    });
                    for (g, lanes) in groups[..groups_needed].iter().enumerate() {
                        let mut want = NormalLanes::new();
                        for l in 0..LANES {
                            let p = a + (g * LANES + l) as u64;
                            if p < b {
                                want.set(l, Some(&seeds.rng(p, stream)));
                            }
                        }
                        assert_eq!(*lanes, want, "paths {a}..{b}, group {g}, {kernel:?}");
                    }
                    assert_eq!(groups[groups_needed], sentinel, "groups past the paths untouched");
                }
            }
        }
    }
}
