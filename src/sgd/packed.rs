//! Register-blocked matrix products for the batched SGD-SDE step
//! ([`super::BatchedSgdSde`], THEORY §1), with the data matrix packed once.
//!
//! A product `C = A B` is cut into tiles of `MR` rows of `A` (paths, `MR ∈ {8, 16, 24}`,
//! one to three 8-wide vectors) by [`NR`] columns of `B` (samples or features). Operands
//! are stored in *panels*: an `A` panel is `k` consecutive groups of `MR` values (the
//! `MR` rows at one inner index), a `B` panel `k` consecutive groups of `NR` values, so the
//! kernel reads both strictly forwards. The data enter as `B` panels built once by
//! [`pack_columns`]; the per-step operands (states, weighted noise) are written directly
//! in `A`-panel order by the caller, so a step packs nothing large.
//!
//! Every output element is one chain of fused multiply–adds over the inner index in
//! increasing order, `c ← fma(a_p, b_p, c)`, whichever kernel runs (AVX-512, AVX2 + FMA,
//! or portable `f64::mul_add`): the kernels give bit-identical results, and an output
//! depends only on its own row of `A` and column of `B`, never on the other paths in the
//! block. The instruction set is chosen by `simd::Kernel`; the lane normal
//! generator that fills the noise operand lives in `rng::normal_simd`.

use crate::simd::Kernel;

/// Columns of `B` per tile.
pub(crate) const NR: usize = 8;

/// Rows of `A` per panel: the widest, and the narrower ones used for a block's last panel.
pub(crate) const MR_MAX: usize = 24;

impl Kernel {
    /// `c += A B` for one tile: `a` holds `k` groups of `mr` values, `b` `k` groups of
    /// [`NR`], `c` is `NR` groups of `mr` (column `j` of the tile at `c[j·mr..]`).
    ///
    /// # Panics
    /// If `mr` is not 8, 16 or 24, or a slice is shorter than its shape.
    #[inline]
    pub(crate) fn tile(self, mr: usize, k: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
        assert!(a.len() >= k * mr && b.len() >= k * NR && c.len() >= NR * mr);
        // SAFETY (every arm below): `Kernel::Avx512` / `Kernel::Avx2Fma` are only
        // constructed when the CPU has AVX-512F / AVX2 + FMA (`Kernel::detect`), and the
        // assert above guarantees the lengths the kernels read and write (`k·mr` of `a`,
        // `k·NR` of `b`, `NR·mr` of `c`, with `mr = 8·RV` for the AVX-512 tiles).
        match (self, mr) {
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512, 8) => unsafe { tile_avx512::<1>(k, a.as_ptr(), b.as_ptr(), c.as_mut_ptr()) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512, 16) => unsafe { tile_avx512::<2>(k, a.as_ptr(), b.as_ptr(), c.as_mut_ptr()) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512, 24) => unsafe { tile_avx512::<3>(k, a.as_ptr(), b.as_ptr(), c.as_mut_ptr()) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2Fma, 8) => unsafe { tile_avx2::<8>(k, a, b, c) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2Fma, 16) => unsafe { tile_avx2::<16>(k, a, b, c) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2Fma, 24) => unsafe { tile_avx2::<24>(k, a, b, c) },
            (_, 8) => tile_portable::<8>(k, a, b, c),
            (_, 16) => tile_portable::<16>(k, a, b, c),
            (_, 24) => tile_portable::<24>(k, a, b, c),
            _ => panic!("tile height {mr} is not 8, 16 or 24"),
        }
    }
}

/// The portable tile: the same fused multiply–adds in the same order as the vector
/// kernels.
#[inline(always)]
fn tile_portable<const MR: usize>(k: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    let mut acc = [[0.0f64; MR]; NR];
    for (j, column) in acc.iter_mut().enumerate() {
        column.copy_from_slice(&c[j * MR..(j + 1) * MR]);
    }
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(k) {
        for (column, &bj) in acc.iter_mut().zip(bp) {
            for (acc_ij, &ai) in column.iter_mut().zip(ap) {
                *acc_ij = ai.mul_add(bj, *acc_ij);
            }
        }
    }
    for (j, column) in acc.iter().enumerate() {
        c[j * MR..(j + 1) * MR].copy_from_slice(column);
    }
}

/// [`tile_portable`] compiled with AVX2 and FMA (vectorised 4-wide).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const MR: usize>(k: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    tile_portable::<MR>(k, a, b, c)
}

/// The AVX-512 tile: `RV × NR` accumulators of 8 lanes (24 of the 32 vector registers
/// for `RV = 3`), `RV` loads of `A` and `NR` broadcasts of `B` per inner index.
///
/// # Safety
/// The CPU must support AVX-512F; `a` must hold `k · 8RV`, `b` `k · NR` and `c` `NR · 8RV`
/// values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const RV: usize>(k: usize, a: *const f64, b: *const f64, c: *mut f64) {
    use std::arch::x86_64::{__m512d, _mm512_fmadd_pd, _mm512_loadu_pd, _mm512_set1_pd, _mm512_storeu_pd};
    let mr = 8 * RV;
    // SAFETY (the two closures below): the caller guarantees `c` holds `NR·mr` and `a`
    // `k·mr` values, so every 8-wide load stays inside them.
    let mut acc: [[__m512d; RV]; NR] =
        std::array::from_fn(|j| std::array::from_fn(|r| unsafe { _mm512_loadu_pd(c.add(j * mr + 8 * r)) }));
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let av: [__m512d; RV] = std::array::from_fn(|r| unsafe { _mm512_loadu_pd(a.add(8 * r)) });
        for (j, column) in acc.iter_mut().enumerate() {
            let bj = _mm512_set1_pd(*b.add(j));
            for (acc_jr, &ar) in column.iter_mut().zip(&av) {
                *acc_jr = _mm512_fmadd_pd(ar, bj, *acc_jr);
            }
        }
        a = a.add(mr);
        b = b.add(NR);
    }
    for (j, column) in acc.iter().enumerate() {
        for (r, &v) in column.iter().enumerate() {
            _mm512_storeu_pd(c.add(j * mr + 8 * r), v);
        }
    }
}

/// Packs the columns of the `rows × cols` column-major matrix `m` as `B` panels: panel
/// `q` holds columns `q·NR ..` as `rows` groups of [`NR`] values (row `i` of those
/// columns), zero-padded past the last column.
pub(crate) fn pack_columns(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let panels = cols.div_ceil(NR);
    let mut packed = vec![0.0; panels * rows * NR];
    for q in 0..panels {
        let panel = &mut packed[q * rows * NR..(q + 1) * rows * NR];
        for j in 0..NR.min(cols - q * NR) {
            let column = &m[(q * NR + j) * rows..(q * NR + j + 1) * rows];
            for (i, &v) in column.iter().enumerate() {
                panel[i * NR + j] = v;
            }
        }
    }
    packed
}

/// The panels `[start, start + width)` that cover `capacity` rows (paths): widths of
/// [`MR_MAX`], then one of 8 or 16 for the rest (`capacity` rounded up to a multiple of 8).
pub(crate) fn panels(capacity: usize) -> Vec<(usize, usize)> {
    let rows = capacity.div_ceil(8) * 8;
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows {
        let width = MR_MAX.min(rows - start);
        out.push((start, width));
        start += width;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u64) -> Vec<f64> {
        // a fixed, irregular sequence with mixed signs and magnitudes
        (0..len)
            .map(|i| {
                let x = ((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15 ^ seed) >> 11) as f64
                    / (1u64 << 53) as f64;
                (x - 0.5) * (1.0 + (i % 7) as f64)
            })
            .collect()
    }

    #[test]
    fn every_kernel_computes_the_same_bits_as_the_reference_chain() {
        let kernels = Kernel::available();
        for mr in [8, 16, 24] {
            for k in [0, 1, 5, 100] {
                let a = data(k * mr, 1);
                let b = data(k * NR, 2);
                let c0 = data(NR * mr, 3);
                // reference: one fma chain per element, inner index ascending
                let mut reference = c0.clone();
                for j in 0..NR {
                    for i in 0..mr {
                        let mut s = c0[j * mr + i];
                        for p in 0..k {
                            s = a[p * mr + i].mul_add(b[p * NR + j], s);
                        }
                        reference[j * mr + i] = s;
                    }
                }
                for &kernel in &kernels {
                    let mut c = c0.clone();
                    kernel.tile(mr, k, &a, &b, &mut c);
                    assert!(
                        c.iter().zip(&reference).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{kernel:?}, mr {mr}, k {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn packing_and_panels() {
        // 3 × 10 column-major matrix: two panels, the second zero-padded
        let m: Vec<f64> = (0..30).map(|v| v as f64).collect();
        let p = pack_columns(&m, 3, 10);
        assert_eq!(p.len(), 2 * 3 * NR);
        let bits = |i: usize| p[i].to_bits();
        assert_eq!(bits(NR + 2), m[2 * 3 + 1].to_bits()); // row 1 of column 2
        assert_eq!(bits(3 * NR + 2 * NR + 1), m[9 * 3 + 2].to_bits()); // row 2 of column 9
        assert_eq!(bits(3 * NR + 2 * NR + 2), 0.0f64.to_bits()); // padding
        assert_eq!(panels(64), vec![(0, 24), (24, 24), (48, 16)]);
        assert_eq!(panels(4), vec![(0, 8)]);
        assert_eq!(panels(33), vec![(0, 24), (24, 16)]);
    }
}
