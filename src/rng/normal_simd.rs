//! [`NormalLanes::fill`] compiled for the detected instruction set (THEORY §8: the
//! Brownian increments of the batched SGD-SDE), including a hand-written AVX-512 version
//! of the lane ziggurat. It uses the tables and the rejection path of
//! [`super::normal`] (the one ziggurat definition): only the accepted fast path is
//! written again, in vector registers, for a chunk of rows at a time without a branch
//! per row, and the lanes with a rejected draw are then put in order from the chunk's
//! words (each lane's draws are its generator's, in order, whatever the chunking); a
//! test checks that every kernel draws the same bits as the portable lanes.

#[cfg(target_arch = "x86_64")]
use super::normal::{fast_path, next_word, slow_draw};
use super::normal::{NormalLanes, LANES};
#[cfg(target_arch = "x86_64")]
use super::ziggurat_tables::{LAYERS, ZIG_NORM_X};
use crate::simd::{Kernel, Vectorised};

impl NormalLanes {
    /// [`NormalLanes::fill`] with the fastest kernel this machine has (the hand-written
    /// AVX-512 ziggurat, else the portable loop compiled for AVX2 or the baseline): the
    /// same numbers, for callers outside the crate that want the lockstep driver's draw
    /// speed (e.g. the hand loops the benchmarks compare with).
    ///
    /// ```
    /// use noether_sde::rng::{NormalLanes, SeedTree, Stream};
    /// let seeds = SeedTree::new(3);
    /// let (mut a, mut b) = (NormalLanes::new(), NormalLanes::new());
    /// for l in 0..8 {
    ///     let rng = seeds.rng(l as u64, Stream::Brownian);
    ///     a.set(l, Some(&rng));
    ///     b.set(l, Some(&rng));
    /// }
    /// let scale = [0.1; 8];
    /// let (mut x, mut y) = ([0.0; 8 * 50], [0.0; 8 * 50]);
    /// let (mut sx, mut sy) = ([0.0; 8], [0.0; 8]);
    /// a.fill(&scale, &mut x, 8, 50, &mut sx);
    /// b.fill_fast(&scale, &mut y, 8, 50, &mut sy);
    /// assert_eq!((x, sx), (y, sy)); // bit for bit
    /// assert_eq!(a, b);
    /// ```
    ///
    /// # Panics
    /// As [`NormalLanes::fill`].
    pub fn fill_fast(
        &mut self,
        scale: &[f64; LANES],
        out: &mut [f64],
        stride: usize,
        rows: usize,
        sums: &mut [f64; LANES],
    ) {
        self.fill_with(Kernel::detect(), scale, out, stride, rows, Some(sums))
    }

    /// [`NormalLanes::fill`] compiled for this kernel's instruction set (the same numbers
    /// whichever runs); without `sums` (`None`) the AVX-512 kernel skips adding them up
    /// (≈ 8 % of its time; the lockstep driver does not read them).
    #[inline]
    pub(crate) fn fill_with(
        &mut self,
        kernel: Kernel,
        scale: &[f64; LANES],
        out: &mut [f64],
        stride: usize,
        rows: usize,
        sums: Option<&mut [f64; LANES]>,
    ) {
        match (kernel, sums) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx512` is only constructed when AVX-512F is detected, and
            // `fill_normals_avx512` checks the slice bounds it writes (an assert).
            (Kernel::Avx512, Some(sums)) => unsafe {
                fill_normals_avx512::<true>(self, scale, out, stride, rows, sums)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            (Kernel::Avx512, None) => unsafe {
                fill_normals_avx512::<false>(self, scale, out, stride, rows, &mut [0.0; LANES])
            },
            // the portable loop, compiled for this kernel's instruction set
            (_, sums) => kernel.vectorised(Fill {
                lanes: self,
                scale,
                out,
                stride,
                rows,
                sums: sums.unwrap_or(&mut [0.0; LANES]),
            }),
        }
    }
}

/// The arguments of [`NormalLanes::fill`], to run under [`Kernel::vectorised`].
struct Fill<'a> {
    lanes: &'a mut NormalLanes,
    scale: &'a [f64; LANES],
    out: &'a mut [f64],
    stride: usize,
    rows: usize,
    sums: &'a mut [f64; LANES],
}

impl Vectorised for Fill<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.lanes
            .fill(self.scale, self.out, self.stride, self.rows, self.sums)
    }
}

/// [`NormalLanes::fill`] with 512-bit vectors: the eight generators in four registers,
/// the layer boundaries fetched as eight adjacent pairs `(X[i], X[i+1])` and split by two
/// permutes, the rows drawn [`CHUNK`] at a time by the fast path alone (no branch per
/// row) and the lanes with a rejected draw finished by [`NormalLanes::finish_chunk`];
/// the same arithmetic, so the same numbers. `sums` is added to only when `SUMS`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fill_normals_avx512<const SUMS: bool>(
    lanes: &mut NormalLanes,
    scale: &[f64; LANES],
    out: &mut [f64],
    stride: usize,
    rows: usize,
    sums: &mut [f64; LANES],
) {
    use std::arch::x86_64::*;
    assert!(stride >= LANES && (rows == 0 || out.len() >= (rows - 1) * stride + LANES));
    let table = ZIG_NORM_X.as_ptr();
    // the four state words, written out (a `[0, 1, 2, 3].map(closure)` is not inlined
    // under `#[target_feature]`)
    // SAFETY: unaligned 512-bit loads of exactly the eight words of each `s[w]`.
    let load = |s: &[[u64; LANES]; 4]| unsafe {
        (
            _mm512_loadu_si512(s[0].as_ptr().cast()),
            _mm512_loadu_si512(s[1].as_ptr().cast()),
            _mm512_loadu_si512(s[2].as_ptr().cast()),
            _mm512_loadu_si512(s[3].as_ptr().cast()),
        )
    };
    let (mut s0, mut s1, mut s2, mut s3) = load(&lanes.s);
    let scale_v = _mm512_loadu_pd(scale.as_ptr());
    let mut sum_v = _mm512_loadu_pd(sums.as_ptr());
    let exponent = _mm512_set1_epi64(1024 << 52);
    let three = _mm512_set1_pd(3.0);
    // lanes 0..8 of (low, high) hold X[i_0], X[i_0 + 1], X[i_1], …: evens and odds
    let evens = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    let odds = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    let mut drawn = Chunk::new();
    let mut first = 0;
    while first < rows {
        let n = CHUNK.min(rows - first);
        let mut rejected = _mm512_setzero_si512();
        let mut row_bit = _mm512_set1_epi64(1);
        for i in 0..n {
            let bits = _mm512_add_epi64(_mm512_rol_epi64::<23>(_mm512_add_epi64(s0, s3)), s0);
            let t = _mm512_slli_epi64::<17>(s1);
            s2 = _mm512_xor_si512(s2, s0);
            s3 = _mm512_xor_si512(s3, s1);
            s1 = _mm512_xor_si512(s1, s2);
            s0 = _mm512_xor_si512(s0, s3);
            s2 = _mm512_xor_si512(s2, t);
            s3 = _mm512_rol_epi64::<45>(s3);
            _mm512_storeu_si512(drawn.bits[i].as_mut_ptr().cast(), bits);
            let u = _mm512_sub_pd(
                _mm512_castsi512_pd(_mm512_or_si512(_mm512_srli_epi64::<12>(bits), exponent)),
                three,
            );
            // the boundaries X[i], X[i+1] of each lane's layer: the eight layers (the low
            // 12 bits of each word) in the 16-bit fields of two integers (one narrowing
            // move; the integer units pick them apart, not the busier vector units), then
            // one 128-bit load per lane (the pairs are adjacent in the table; two 8-wide
            // gathers cost more on CPUs whose gathers are microcoded), split in two
            let narrow = _mm512_cvtepi64_epi16(bits);
            let layers = [
                _mm_cvtsi128_si64(narrow) as u64,
                _mm_extract_epi64::<1>(narrow) as u64,
            ];
            // SAFETY: a layer is < LAYERS, so `X[layer..layer + 2]` is inside the table.
            let pair = |l: usize| unsafe {
                _mm_loadu_pd(table.add((layers[l / 4] >> (16 * (l % 4))) as usize & (LAYERS - 1)))
            };
            let four = |l: usize| _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(l)), pair(l + 1));
            let eight = |l: usize| _mm512_insertf64x4::<1>(_mm512_castpd256_pd512(four(l)), four(l + 2));
            let (low, high) = (eight(0), eight(4));
            let edge = _mm512_permutex2var_pd(low, evens, high);
            let next_edge = _mm512_permutex2var_pd(low, odds, high);
            let x = _mm512_mul_pd(u, edge);
            let accepted = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_abs_pd(x), next_edge);
            rejected = _mm512_mask_or_epi64(rejected, !accepted, rejected, row_bit);
            row_bit = _mm512_add_epi64(row_bit, row_bit);
            _mm512_storeu_pd(
                out.as_mut_ptr().add((first + i) * stride),
                _mm512_mul_pd(scale_v, x),
            );
        }
        if _mm512_test_epi64_mask(rejected, rejected) != 0 {
            _mm512_storeu_si512(drawn.rejected.as_mut_ptr().cast(), rejected);
            for (w, v) in lanes.s.iter_mut().zip([s0, s1, s2, s3]) {
                _mm512_storeu_si512(w.as_mut_ptr().cast(), v);
            }
            lanes.finish_chunk(&drawn, n, &mut out[first * stride..], stride, scale);
            (s0, s1, s2, s3) = load(&lanes.s);
        }
        // the sums after the chunk is final, left to right as `fill` adds them
        if SUMS {
            for i in first..first + n {
                sum_v = _mm512_add_pd(sum_v, _mm512_loadu_pd(out.as_ptr().add(i * stride)));
            }
        }
        first += n;
    }
    for (w, v) in lanes.s.iter_mut().zip([s0, s1, s2, s3]) {
        _mm512_storeu_si512(w.as_mut_ptr().cast(), v);
    }
    _mm512_storeu_pd(sums.as_mut_ptr(), sum_v);
}

#[cfg(target_arch = "x86_64")]
impl NormalLanes {
    /// Finishes a chunk of `n` rows drawn by the fast path alone (`out[i·stride + l] =
    /// scale[l] · x` of word `chunk.bits[i][l]`, rejected or not; the states past the
    /// chunk's words): each lane with a rejected word takes, from its first one on,
    /// exactly the draws its own generator makes — a rejected word finished by
    /// [`slow_draw`] on the lane's following words, the accepted ones after it moved up
    /// (their values are already in `out`), and the rows left at the end drawn afresh.
    #[cold]
    #[inline(never)]
    fn finish_chunk(
        &mut self,
        chunk: &Chunk,
        n: usize,
        out: &mut [f64],
        stride: usize,
        scale: &[f64; LANES],
    ) {
        let mut lanes = (0..LANES).fold(0u8, |m, l| m | u8::from(chunk.rejected[l] != 0) << l);
        while lanes != 0 {
            let lane = lanes.trailing_zeros() as usize;
            lanes &= lanes - 1;
            let rejected = chunk.rejected[lane];
            let first = rejected.trailing_zeros() as usize;
            let mut words = LaneWords {
                bits: &chunk.bits[..n],
                lane,
                next: first,
                state: self.lane_words(lane),
            };
            let mut i = first;
            while i < n {
                // the next word is a rejected one of the chunk, or past the chunk: a draw
                let bits = words.word();
                let (x, ok) = fast_path(bits);
                out[i * stride + lane] = scale[lane]
                    * if ok {
                        x
                    } else {
                        slow_draw(&mut || words.word(), bits)
                    };
                i += 1;
                // then the chunk's accepted words up to its next rejected one, moved up
                let j = words.next;
                if j < n {
                    let end = (j + (rejected >> j).trailing_zeros() as usize).min(n);
                    for r in 0..end - j {
                        out[(i + r) * stride + lane] = out[(j + r) * stride + lane];
                    }
                    i += end - j;
                    words.next = end;
                }
            }
            for (w, word) in self.s.iter_mut().zip(words.state) {
                w[lane] = word;
            }
        }
    }
}

/// Rows the AVX-512 kernel draws before it finishes the rejected draws among them.
#[cfg(target_arch = "x86_64")]
pub(crate) const CHUNK: usize = 16;
// a lane's rejected rows of a chunk are the bits of one `u64`
#[cfg(target_arch = "x86_64")]
const _: () = assert!(CHUNK <= 64);

/// The words of a chunk of rows drawn by the fast path alone and which of them the fast
/// path rejected (what [`NormalLanes::finish_chunk`] needs).
#[cfg(target_arch = "x86_64")]
struct Chunk {
    /// `bits[i][l]`: lane `l`'s word of row `i`.
    bits: [[u64; LANES]; CHUNK],
    /// `rejected[l]`: bit `i` set when the fast path did not accept `bits[i][l]`.
    rejected: [u64; LANES],
}

#[cfg(target_arch = "x86_64")]
impl Chunk {
    fn new() -> Self {
        Chunk {
            bits: [[0; LANES]; CHUNK],
            rejected: [0; LANES],
        }
    }
}

/// One lane's words from row `next` of a chunk on: the chunk's words, then its
/// generator's (`state`, past the chunk).
#[cfg(target_arch = "x86_64")]
struct LaneWords<'a> {
    bits: &'a [[u64; LANES]],
    lane: usize,
    next: usize,
    state: [u64; 4],
}

#[cfg(target_arch = "x86_64")]
impl LaneWords<'_> {
    fn word(&mut self) -> u64 {
        match self.bits.get(self.next) {
            Some(row) => {
                self.next += 1;
                row[self.lane]
            }
            None => next_word(&mut self.state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_draws_the_same_normals() {
        let seeds = crate::rng::SeedTree::new(21);
        let rows = 100_000;
        let mut reference = None;
        for kernel in Kernel::available() {
            let mut lanes = NormalLanes::new();
            for l in [0, 2, 3, 5, 6, 7] {
                lanes.set(l, Some(&seeds.rng(l as u64, crate::rng::Stream::Brownian)));
            }
            let scale = [0.3, 0.0, 1.0, 2.0, 1.0, 0.7, 1.0, 1.0];
            let mut out = vec![0.0; rows * 16];
            let mut sums = [0.0; LANES];
            // whole chunks of the AVX-512 kernel, partial ones and single rows
            let mut first = 0;
            for calls in [16, 1, 35, 7, 64].iter().cycle() {
                let n = (*calls).min(rows - first);
                lanes.fill_with(kernel, &scale, &mut out[16 * first..], 16, n, Some(&mut sums));
                first += n;
                if first == rows {
                    break;
                }
            }
            let bits: Vec<u64> = out.iter().chain(&sums).map(|v| v.to_bits()).collect();
            // without sums: the same draws and states (the AVX-512 kernel's second body)
            let mut again = NormalLanes::new();
            for l in [0, 2, 3, 5, 6, 7] {
                again.set(l, Some(&seeds.rng(l as u64, crate::rng::Stream::Brownian)));
            }
            let mut plain = vec![0.0; rows * 16];
            for (first, n) in (0..rows).step_by(23).map(|f| (f, 23.min(rows - f))) {
                again.fill_with(kernel, &scale, &mut plain[16 * first..], 16, n, None);
            }
            let same = plain.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(again == lanes && same, "{kernel:?} without sums differs");
            let result = (bits, lanes);
            match &reference {
                None => reference = Some(result),
                Some(r) => assert!(*r == result, "{kernel:?} differs"),
            }
        }
    }
}
