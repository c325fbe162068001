//! [`NormalLanes::fill`] compiled for the detected instruction set (THEORY §8: the
//! Brownian increments of the batched SGD-SDE), including a hand-written AVX-512 version
//! of the lane ziggurat. It uses the tables and the rejection path of
//! [`super::normal`] (the one ziggurat definition): only the accepted fast path is
//! written again, in vector registers, and a test checks that every kernel draws the
//! same bits as the portable lanes.

#[cfg(target_arch = "x86_64")]
use super::normal::ZIG_NORM_X;
use super::normal::{NormalLanes, LANES};
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
        self.fill_with(Kernel::detect(), scale, out, stride, rows, sums)
    }

    /// [`NormalLanes::fill`] compiled for this kernel's instruction set (the same numbers
    /// whichever runs).
    #[inline]
    pub(crate) fn fill_with(
        &mut self,
        kernel: Kernel,
        scale: &[f64; LANES],
        out: &mut [f64],
        stride: usize,
        rows: usize,
        sums: &mut [f64; LANES],
    ) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx512` is only constructed when AVX-512F is detected, and
            // `fill_normals_avx512` checks the slice bounds it writes (an assert).
            Kernel::Avx512 => unsafe { fill_normals_avx512(self, scale, out, stride, rows, sums) },
            // the portable loop, compiled for this kernel's instruction set
            _ => kernel.vectorised(Fill {
                lanes: self,
                scale,
                out,
                stride,
                rows,
                sums,
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
/// permutes, and the rare rejected draws handed to
/// [`NormalLanes::finish_rejected`]; the same arithmetic, so the same numbers.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fill_normals_avx512(
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
    // SAFETY: an unaligned 512-bit load of exactly the eight words of `w`.
    let load = |w: &[u64; LANES]| unsafe { _mm512_loadu_si512(w.as_ptr().cast()) };
    let [mut s0, mut s1, mut s2, mut s3] = [0, 1, 2, 3].map(|w| load(&lanes.s[w]));
    let scale_v = _mm512_loadu_pd(scale.as_ptr());
    let mut sum_v = _mm512_loadu_pd(sums.as_ptr());
    let layer_mask = _mm512_set1_epi64(0xff);
    let exponent = _mm512_set1_epi64(1024 << 52);
    let three = _mm512_set1_pd(3.0);
    // lanes 0..8 of (low, high) hold X[i_0], X[i_0 + 1], X[i_1], …: evens and odds
    let evens = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    let odds = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    for i in 0..rows {
        let bits = _mm512_add_epi64(_mm512_rol_epi64::<23>(_mm512_add_epi64(s0, s3)), s0);
        let t = _mm512_slli_epi64::<17>(s1);
        s2 = _mm512_xor_si512(s2, s0);
        s3 = _mm512_xor_si512(s3, s1);
        s1 = _mm512_xor_si512(s1, s2);
        s0 = _mm512_xor_si512(s0, s3);
        s2 = _mm512_xor_si512(s2, t);
        s3 = _mm512_rol_epi64::<45>(s3);
        let layer = _mm512_and_si512(bits, layer_mask);
        let u = _mm512_sub_pd(
            _mm512_castsi512_pd(_mm512_or_si512(_mm512_srli_epi64::<12>(bits), exponent)),
            three,
        );
        // the boundaries X[i], X[i+1] of each lane's layer as one 128-bit load per lane
        // (the pairs are adjacent in the table; two 8-wide gathers cost more on CPUs
        // whose gathers are microcoded), then split into two vectors
        let mut index = [0u64; LANES];
        _mm512_storeu_si512(index.as_mut_ptr().cast(), layer);
        // SAFETY: `index[l] ≤ 255`, so `X[index[l]..index[l] + 2]` is inside the table of 257.
        let pair = |l: usize| unsafe { _mm_loadu_pd(table.add(index[l] as usize)) };
        let four = |l: usize| _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(l)), pair(l + 1));
        let eight = |l: usize| _mm512_insertf64x4::<1>(_mm512_castpd256_pd512(four(l)), four(l + 2));
        let (low, high) = (eight(0), eight(4));
        let edge = _mm512_permutex2var_pd(low, evens, high);
        let next_edge = _mm512_permutex2var_pd(low, odds, high);
        let mut x = _mm512_mul_pd(u, edge);
        let accepted = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_abs_pd(x), next_edge);
        if accepted != 0xff {
            let mut words = [0u64; LANES];
            _mm512_storeu_si512(words.as_mut_ptr().cast(), bits);
            for (w, v) in lanes.s.iter_mut().zip([s0, s1, s2, s3]) {
                _mm512_storeu_si512(w.as_mut_ptr().cast(), v);
            }
            let mut xs = [0.0; LANES];
            _mm512_storeu_pd(xs.as_mut_ptr(), x);
            lanes.finish_rejected(!accepted, &words, &mut xs);
            x = _mm512_loadu_pd(xs.as_ptr());
            [s0, s1, s2, s3] = [0, 1, 2, 3].map(|w| load(&lanes.s[w]));
        }
        let v = _mm512_mul_pd(scale_v, x);
        _mm512_storeu_pd(out.as_mut_ptr().add(i * stride), v);
        sum_v = _mm512_add_pd(sum_v, v);
    }
    for (w, v) in lanes.s.iter_mut().zip([s0, s1, s2, s3]) {
        _mm512_storeu_si512(w.as_mut_ptr().cast(), v);
    }
    _mm512_storeu_pd(sums.as_mut_ptr(), sum_v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_draws_the_same_normals() {
        let seeds = crate::rng::SeedTree::new(21);
        let rows = 20_000;
        let mut reference = None;
        for kernel in Kernel::available() {
            let mut lanes = NormalLanes::new();
            for l in [0, 2, 3, 5, 6, 7] {
                lanes.set(l, Some(&seeds.rng(l as u64, crate::rng::Stream::Brownian)));
            }
            let scale = [0.3, 0.0, 1.0, 2.0, 1.0, 0.7, 1.0, 1.0];
            let mut out = vec![0.0; rows * 16];
            let mut sums = [0.0; LANES];
            lanes.fill_with(kernel, &scale, &mut out, 16, rows, &mut sums);
            let bits: Vec<u64> = out.iter().chain(&sums).map(|v| v.to_bits()).collect();
            let result = (bits, lanes);
            match &reference {
                None => reference = Some(result),
                Some(r) => assert!(*r == result, "{kernel:?} differs"),
            }
        }
    }
}
