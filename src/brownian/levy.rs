//! Lévy areas for general-noise Milstein (THEORY §8).
//!
//! Given the increment `ΔW` over a step `h`, the Lévy areas
//! `A_{jk} = ½(∫(W_j − W_j(t))dW_k − ∫(W_k − W_k(t))dW_j)` are sampled from the
//! Fourier (Karhunen–Loève) expansion of the Brownian bridge, in the form of
//! Wiktorsson (2001, eq. 2.2), truncated after `p` terms:
//!
//! ```text
//! A_{jk} ≈ (h/2π) Σ_{r=1}^{p} (1/r) [X_{jr}(Y_{kr} + c_k) − (Y_{jr} + c_j) X_{kr}],
//! c = √(2/h) ΔW,   X_{jr}, Y_{jr} ~ N(0, 1) i.i.d.
//! ```
//!
//! - [`LevyMethod::Fourier`] (Kloeden–Platen–Wright 1992) stops there. Its mean-square
//!   error per area is `(h²/2π²) a_p (1 + (ΔW_j² + ΔW_k²)/h)`, `a_p = Σ_{r>p} 1/r² ≈ 1/p`:
//!   strong order 1 needs `p ∝ 1/h`.
//! - [`LevyMethod::Wiktorsson`] adds the tail as a Gaussian with the tail's exact
//!   conditional covariance `(h/2π)² a_p Σ_∞`, using Wiktorsson's closed-form square root
//!   `Σ_∞^{1/2} = (Σ_∞ + 2rI)/(√2(1 + r))`, `r = √(1 + ‖ΔW‖²/h)`. The mean-square error
//!   per step is at most `5h²m²(m − 1)/(24π²p²)`, so `p ∝ h^{−1/2}` keeps strong order 1;
//!   [`LevyArea::for_step`] chooses `p` that way.
//!
//! Cost: `O(p m²)` per step (plus `O(m³)` for the Wiktorsson tail) — meant for small
//! noise dimensions. The SGD-SDE's `N`-column factor is far too wide for it; use the
//! scalar/commutative route there (THEORY §7a).
//!
//! # References
//! - P. E. Kloeden, E. Platen, I. W. Wright (1992), *The approximation of multiple
//!   stochastic integrals*, Stoch. Anal. Appl. 10(4).
//! - M. Wiktorsson (2001), *Joint characteristic function and simultaneous simulation
//!   of iterated Itô integrals for multiple independent Brownian motions*, Ann. Appl.
//!   Probab. 11(2).

use crate::error::{Error, Result};
use crate::rng::{standard_normal, Xoshiro256PlusPlus};
use crate::simd::{Kernel, Vectorised};
use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use std::f64::consts::PI;

/// Term `r` of the Fourier series added to the upper triangle of the (column-major,
/// `m × m`) area: `A_jk += (1/r)[X_j(Y_k + c_k) − (Y_j + c_j)X_k]` for `j < k`, compiled
/// for the detected instruction set (vectorised over `j`; the same operations per
/// entry, so the same numbers whichever runs — a test compares the kernels).
struct FourierTerm<'a> {
    area: &'a mut [f64],
    x: &'a [f64],
    y: &'a [f64],
    c: &'a [f64],
    inv_r: f64,
}

impl Vectorised for FourierTerm<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let FourierTerm { area, x, y, c, inv_r } = self;
        let m = x.len();
        for (k, column) in area.chunks_exact_mut(m).enumerate() {
            let (xk, yk_ck) = (x[k], y[k] + c[k]);
            let (x, y, c) = (&x[..k], &y[..k], &c[..k]);
            for (j, a) in column[..k].iter_mut().enumerate() {
                let term = x[j] * yk_ck - (y[j] + c[j]) * xk;
                *a += inv_r * term;
            }
        }
    }
}

/// How the truncated Fourier series is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevyMethod {
    /// Truncated Kloeden–Platen–Wright series, no tail correction.
    Fourier,
    /// Truncated series plus Wiktorsson's Gaussian tail approximation.
    Wiktorsson,
}

/// Sampler of Lévy areas for noise dimension `m`; owns its scratch buffers.
#[derive(Debug, Clone)]
pub struct LevyArea {
    m: usize,
    terms: usize,
    method: LevyMethod,
    x: DVector<f64>,
    y: DVector<f64>,
    c: DVector<f64>,
    // Wiktorsson tail: the m(m−1)/2 pairs' standard normals and (Σ_∞ + 2rI) times them.
    gauss: DVector<f64>,
    /// The instruction set of the Fourier terms' update.
    kernel: Kernel,
    tail: DVector<f64>,
}

impl LevyArea {
    /// A sampler with `terms ≥ 1` Fourier terms.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `noise_dim` or `terms` is zero.
    pub fn new(noise_dim: usize, terms: usize, method: LevyMethod) -> Result<Self> {
        if noise_dim == 0 {
            return Err(Error::invalid("noise_dim", noise_dim, "must be at least 1"));
        }
        if terms == 0 {
            return Err(Error::invalid("terms", terms, "must be at least 1"));
        }
        let pairs = noise_dim * (noise_dim - 1) / 2;
        Ok(LevyArea {
            m: noise_dim,
            terms,
            method,
            x: DVector::zeros(noise_dim),
            y: DVector::zeros(noise_dim),
            c: DVector::zeros(noise_dim),
            gauss: DVector::zeros(pairs),
            kernel: Kernel::detect(),
            tail: DVector::zeros(pairs),
        })
    }

    /// Wiktorsson's method with the number of terms that keeps general-noise Milstein
    /// at strong order 1 for step `h`: [`LevyArea::terms_for_step`].
    ///
    /// # Errors
    /// As [`LevyArea::new`], and if `h` is not positive.
    pub fn for_step(noise_dim: usize, h: f64) -> Result<Self> {
        crate::error::check_positive("h", h)?;
        LevyArea::new(
            noise_dim,
            Self::terms_for_step(noise_dim, h),
            LevyMethod::Wiktorsson,
        )
    }

    /// `p = ⌈√(5m²(m − 1)/(24π² h))⌉`: Wiktorsson's mean-square error bound is then at
    /// most `h³`, the size of the local error of a strong-order-1 scheme.
    pub fn terms_for_step(noise_dim: usize, h: f64) -> usize {
        let m = noise_dim as f64;
        let p = (5.0 * m * m * (m - 1.0) / (24.0 * PI * PI * h)).sqrt().ceil();
        (p as usize).max(1)
    }

    /// Noise dimension `m`.
    pub fn noise_dim(&self) -> usize {
        self.m
    }

    /// Number of Fourier terms `p`.
    pub fn terms(&self) -> usize {
        self.terms
    }

    /// Truncation method.
    pub fn method(&self) -> LevyMethod {
        self.method
    }

    /// `a_p = Σ_{r>p} 1/r² = π²/6 − Σ_{r≤p} 1/r²`.
    fn tail_sum(&self) -> f64 {
        let head: f64 = (1..=self.terms).map(|r| 1.0 / (r as f64 * r as f64)).sum();
        (PI * PI / 6.0 - head).max(0.0)
    }

    /// Fills the antisymmetric `area` (`m × m`) for a step `h` with increment `dw`.
    pub fn sample<R: Rng + ?Sized>(
        &mut self,
        h: f64,
        dw: &DVector<f64>,
        area: &mut DMatrix<f64>,
        rng: &mut R,
    ) {
        self.sample_with(h, dw, area, &mut || rng.sample(StandardNormal))
    }

    /// [`LevyArea::sample`] on the crate's generator, drawing with
    /// [`crate::rng::standard_normal`] (the crate's 4096-layer ziggurat: the same
    /// distribution as `StandardNormal`, other numbers) at about half the cost per draw —
    /// the `2mp` normals of a step are most of the sampler's work. The ensembles'
    /// streams call it.
    pub fn sample_xoshiro(
        &mut self,
        h: f64,
        dw: &DVector<f64>,
        area: &mut DMatrix<f64>,
        rng: &mut Xoshiro256PlusPlus,
    ) {
        self.sample_with(h, dw, area, &mut || standard_normal(rng))
    }

    /// [`LevyArea::sample`] with the standard normals from `normal`.
    #[inline(always)]
    fn sample_with(
        &mut self,
        h: f64,
        dw: &DVector<f64>,
        area: &mut DMatrix<f64>,
        normal: &mut impl FnMut() -> f64,
    ) {
        let m = self.m;
        area.fill(0.0);
        if m < 2 {
            return;
        }
        let scale = (2.0 / h).sqrt();
        for j in 0..m {
            self.c[j] = scale * dw[j];
        }
        for r in 1..=self.terms {
            for j in 0..m {
                self.x[j] = normal();
                self.y[j] = normal();
            }
            self.kernel.vectorised(FourierTerm {
                area: area.as_mut_slice(),
                x: self.x.as_slice(),
                y: self.y.as_slice(),
                c: self.c.as_slice(),
                inv_r: 1.0 / r as f64,
            });
        }
        let factor = h / (2.0 * PI);
        if self.method == LevyMethod::Wiktorsson {
            self.add_tail(h, dw, area, normal);
        }
        for k in 0..m {
            for j in 0..k {
                let a = factor * area[(j, k)];
                area[(j, k)] = a;
                area[(k, j)] = -a;
            }
        }
    }

    /// Adds the Gaussian tail (in units of `h/2π`) to the upper triangle of `area`.
    fn add_tail(
        &mut self,
        h: f64,
        dw: &DVector<f64>,
        area: &mut DMatrix<f64>,
        normal: &mut impl FnMut() -> f64,
    ) {
        let m = self.m;
        let r = (1.0 + dw.norm_squared() / h).sqrt();
        // Σ^{1/2} = (Σ + 2rI)/(√2(1 + r)), applied to a standard normal vector.
        let denom = std::f64::consts::SQRT_2 * (1.0 + r);
        for g in self.gauss.iter_mut() {
            *g = normal();
        }
        self.tail_product(2.0 * r);
        let amplitude = self.tail_sum().sqrt() / denom;
        let mut pair = 0;
        for j in 0..m {
            for k in (j + 1)..m {
                area[(j, k)] += amplitude * self.tail[pair];
                pair += 1;
            }
        }
    }

    /// `tail = (Σ_∞ + 2r I) g` (`two_r = 2r`, `g` the pairs' standard normals), with the
    /// numbers of nalgebra's dense product `(Σ_∞ + 2rI).mul_to(g)` of the matrix filled
    /// as [`LevyArea::tail_entry`] gives it — without forming it.
    ///
    /// The product sums each row over the columns in order from `S_{a0} g_0`
    /// (`y ← S_{ab} g_b + y`). Row `a = (j, k)` has non-zero entries only in the columns
    /// of pairs that share an index with it (about `2m` of `m(m−1)/2`), visited here in
    /// column order: `(j', j)` and `(j', k)` for `j' < j`; row `j`'s pairs `(j, k')`
    /// (the diagonal at `k' = k`); `(j', k)` for `j < j' < k`; row `k`'s pairs. The
    /// columns skipped add `±0`: to a non-zero partial sum that changes nothing, to a
    /// zero one at most its sign, so the two sums agree bit for bit whenever the result
    /// is not zero; a row whose sum is zero is summed again over every column, so the
    /// result is the dense product's, signed zeros included (a test compares them). `O(m³)` work and no `O(m⁴)` matrix (matrix factorisation,
    /// `m = 21`: 44,100 entries to zero and multiply per step before).
    fn tail_product(&mut self, two_r: f64) {
        let m = self.m;
        let (c, g) = (self.c.as_slice(), self.gauss.as_slice());
        // the index of the pair (j, j + 1): the pairs (j, k) follow it in order
        let first = |j: usize| j * m - j * (j + 1) / 2;
        let mut a = 0;
        for j in 0..m {
            for k in (j + 1)..m {
                // from +0: a sum that starts with zero terms differs from the dense one at
                // most in the sign of a zero (see above)
                let mut sum = 0.0;
                let (cj, ck) = (c[j], c[k]);
                for (jp, &c_jp) in c[..j].iter().enumerate() {
                    let row = first(jp) - jp - 1;
                    sum += (0.0 - ck * c_jp) * g[row + j];
                    sum += (0.0 + cj * c_jp) * g[row + k];
                }
                let row = first(j) - j - 1;
                for (kp, &c_kp) in c.iter().enumerate().skip(j + 1) {
                    let v = if kp == k {
                        Self::diagonal_entry(c, j, k) + two_r
                    } else {
                        0.0 + ck * c_kp
                    };
                    sum += v * g[row + kp];
                }
                for (jp, &c_jp) in c[..k].iter().enumerate().skip(j + 1) {
                    sum += (0.0 + cj * c_jp) * g[first(jp) - jp - 1 + k];
                }
                let row = first(k) - k - 1;
                for (kp, &c_kp) in c.iter().enumerate().skip(k + 1) {
                    sum += (0.0 - cj * c_kp) * g[row + kp];
                }
                if sum == 0.0 {
                    // every term was ±0: the dense sum over every column decides the sign
                    sum = 0.0;
                    let mut b = 0;
                    for jp in 0..m {
                        for kp in (jp + 1)..m {
                            let mut v = Self::tail_entry(c, (j, k), (jp, kp));
                            if b == a {
                                v += two_r;
                            }
                            sum = if b == 0 { v * g[0] } else { sum + v * g[b] };
                            b += 1;
                        }
                    }
                }
                self.tail[a] = sum;
                a += 1;
            }
        }
    }

    /// `Σ_∞`'s diagonal entry of the pair `(j, k)`: `2 + c_k² + c_j²`, in this order.
    fn diagonal_entry(c: &[f64], j: usize, k: usize) -> f64 {
        let mut s = 2.0;
        s += c[k] * c[k];
        s += c[j] * c[j];
        s
    }

    /// `Σ_∞`'s entry for the pairs `(j, k)` and `(j', k')` (`j < k`, `j' < k'`):
    /// `2δ + δ_{jj'}c_k c_{k'} − δ_{jk'}c_k c_{j'} − δ_{kj'}c_j c_{k'} + δ_{kk'}c_j c_{j'}`.
    /// Two different pairs share at most one index, so at most one term: the entry is
    /// [`LevyArea::diagonal_entry`], `0 ± c·c` or `+0`.
    fn tail_entry(c: &[f64], (j, k): (usize, usize), (jp, kp): (usize, usize)) -> f64 {
        if (j, k) == (jp, kp) {
            Self::diagonal_entry(c, j, k)
        } else if j == jp {
            0.0 + c[k] * c[kp]
        } else if j == kp {
            0.0 - c[k] * c[jp]
        } else if k == jp {
            0.0 - c[j] * c[kp]
        } else if k == kp {
            0.0 + c[j] * c[jp]
        } else {
            0.0
        }
    }

    /// Mean-square truncation error of one area `A_{jk}` given the increments
    /// (exact for [`LevyMethod::Fourier`]; the Wiktorsson error is smaller, bounded
    /// by `5h²m²(m − 1)/(24π²p²)` for the whole vector of areas).
    pub fn fourier_truncation_error(&self, h: f64, dw_j: f64, dw_k: f64) -> f64 {
        h * h / (2.0 * PI * PI) * self.tail_sum() * (1.0 + (dw_j * dw_j + dw_k * dw_k) / h)
    }

    /// Wiktorsson's bound on `E‖A − Ã‖²` (all pairs) for step `h`.
    pub fn wiktorsson_error_bound(&self, h: f64) -> f64 {
        let m = self.m as f64;
        let p = self.terms as f64;
        5.0 * h * h * m * m * (m - 1.0) / (24.0 * PI * PI * p * p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Σ_∞` by its defining sum over every pair of pairs (the fill of session 5), dense.
    fn dense_tail_covariance(c: &DVector<f64>) -> DMatrix<f64> {
        let m = c.len();
        let pairs = m * (m - 1) / 2;
        let mut sigma = DMatrix::zeros(pairs, pairs);
        let mut a = 0;
        for j in 0..m {
            for k in (j + 1)..m {
                let mut b = 0;
                for jp in 0..m {
                    for kp in (jp + 1)..m {
                        let mut s = if a == b { 2.0 } else { 0.0 };
                        if j == jp {
                            s += c[k] * c[kp];
                        }
                        if j == kp {
                            s -= c[k] * c[jp];
                        }
                        if k == jp {
                            s -= c[j] * c[kp];
                        }
                        if k == kp {
                            s += c[j] * c[jp];
                        }
                        sigma[(a, b)] = s;
                        b += 1;
                    }
                }
                a += 1;
            }
        }
        sigma
    }

    /// The sparse product gives nalgebra's dense `(Σ_∞ + 2rI)·g` bit for bit, signed
    /// zeros included, for noise dimensions 2 to 21 (matrix factorisation's `m`),
    /// increments with zeros and all zero, and normal vectors with zeros (rows whose every
    /// visited term is zero take the dense fallback).
    #[test]
    fn sparse_tail_product_is_the_dense_product() {
        let bits = |x: &DVector<f64>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let mut fallbacks = 0;
        for m in [2, 3, 4, 7, 21] {
            let mut levy = LevyArea::new(m, 3, LevyMethod::Wiktorsson).unwrap();
            let pairs = m * (m - 1) / 2;
            let increments = [
                DVector::from_fn(m, |j, _| (1.7 * j as f64 + 0.3).sin() * 2.0),
                DVector::from_fn(m, |j, _| if j % 3 == 0 { 0.0 } else { -0.4 * j as f64 }),
                DVector::zeros(m),
            ];
            let normals = [
                DVector::from_fn(pairs, |i, _| (0.9 * i as f64 - 1.1).cos()),
                DVector::from_fn(pairs, |i, _| if i % 2 == 0 { 0.0 } else { -(i as f64) }),
                DVector::from_fn(pairs, |i, _| if i == 0 { -0.0 } else { 0.0 }),
            ];
            for c in &increments {
                for g in &normals {
                    for two_r in [2.0, 3.7, 0.0] {
                        levy.c.copy_from(c);
                        levy.gauss.copy_from(g);
                        levy.tail_product(two_r);
                        let mut sigma = dense_tail_covariance(c);
                        for i in 0..pairs {
                            sigma[(i, i)] += two_r;
                        }
                        let mut dense = DVector::zeros(pairs);
                        sigma.mul_to(g, &mut dense);
                        assert_eq!(bits(&levy.tail), bits(&dense), "m = {m}");
                        fallbacks += dense.iter().filter(|v| **v == 0.0).count();
                    }
                }
            }
        }
        // the fallback (a zero row sum) was exercised, signs of zero included
        assert!(fallbacks > 100, "{fallbacks} zero rows");
    }

    /// Every kernel of the Fourier update gives the portable loop's areas from the same
    /// normals, leaving the generator in the same state: m = 3 and 21, both methods, 200
    /// steps of random increments.
    #[test]
    fn every_kernel_gives_the_same_areas() {
        use crate::rng::{SeedTree, Stream};
        for (m, method) in [
            (3, LevyMethod::Fourier),
            (3, LevyMethod::Wiktorsson),
            (21, LevyMethod::Wiktorsson),
        ] {
            let mut levy = LevyArea::new(m, 7, method).unwrap();
            let mut a = SeedTree::new(9).rng(4, Stream::Levy);
            let mut b = a.clone();
            let mut dws = SeedTree::new(9).rng(4, Stream::Brownian);
            let (mut area_a, mut area_b) = (DMatrix::zeros(m, m), DMatrix::zeros(m, m));
            // every instruction set of the Fourier update, in turn
            let kernels = Kernel::available();
            for step in 0..200 {
                let dw = DVector::from_fn(m, |_, _| 0.1 * standard_normal(&mut dws));
                levy.kernel = Kernel::Portable;
                levy.sample_xoshiro(0.01, &dw, &mut area_a, &mut a);
                levy.kernel = kernels[step % kernels.len()];
                levy.sample_xoshiro(0.01, &dw, &mut area_b, &mut b);
                let bits = |x: &DMatrix<f64>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&area_a),
                    bits(&area_b),
                    "m = {m}, {method:?}, {:?}",
                    levy.kernel
                );
            }
            assert_eq!(a, b);
        }
    }

    /// Wiktorsson's closed-form square root really squares to `Σ_∞` (so the covariance
    /// formula and the square root agree), for m = 4 and an arbitrary increment; and
    /// `tail_entry` is that covariance.
    #[test]
    fn closed_form_square_root_of_the_tail_covariance() {
        let m = 4;
        let h: f64 = 0.3;
        let dw = DVector::from_vec(vec![0.4, -0.2, 0.7, 0.1]);
        let c = dw.map(|w| (2.0 / h).sqrt() * w);
        let sigma = dense_tail_covariance(&c);
        let pairs: Vec<(usize, usize)> = (0..m).flat_map(|j| ((j + 1)..m).map(move |k| (j, k))).collect();
        for (a, &p) in pairs.iter().enumerate() {
            for (b, &q) in pairs.iter().enumerate() {
                assert_eq!(
                    LevyArea::tail_entry(c.as_slice(), p, q).to_bits(),
                    sigma[(a, b)].to_bits()
                );
            }
        }
        let r = (1.0 + dw.norm_squared() / h).sqrt();
        let n = sigma.nrows();
        let root = (&sigma + DMatrix::identity(n, n) * (2.0 * r)) / (std::f64::consts::SQRT_2 * (1.0 + r));
        assert!((&root * &root - &sigma).amax() < 1e-12 * sigma.amax());
    }
}
