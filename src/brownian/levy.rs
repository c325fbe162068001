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
//! Cost: `O(p m²)` per step (plus `O(m⁴)` for the Wiktorsson tail) — meant for small
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
use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use std::f64::consts::PI;

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
    // Wiktorsson tail: covariance / square root of the m(m−1)/2 pair areas.
    sigma: DMatrix<f64>,
    gauss: DVector<f64>,
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
            sigma: DMatrix::zeros(pairs, pairs),
            gauss: DVector::zeros(pairs),
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
                self.x[j] = rng.sample(StandardNormal);
                self.y[j] = rng.sample(StandardNormal);
            }
            let inv_r = 1.0 / r as f64;
            for k in 0..m {
                for j in 0..k {
                    let term = self.x[j] * (self.y[k] + self.c[k]) - (self.y[j] + self.c[j]) * self.x[k];
                    area[(j, k)] += inv_r * term;
                }
            }
        }
        let factor = h / (2.0 * PI);
        if self.method == LevyMethod::Wiktorsson {
            self.add_tail(h, dw, area, rng);
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
    fn add_tail<R: Rng + ?Sized>(&mut self, h: f64, dw: &DVector<f64>, area: &mut DMatrix<f64>, rng: &mut R) {
        let m = self.m;
        self.fill_tail_covariance();
        let r = (1.0 + dw.norm_squared() / h).sqrt();
        // Σ^{1/2} = (Σ + 2rI)/(√2(1 + r)), applied to a standard normal vector.
        let denom = std::f64::consts::SQRT_2 * (1.0 + r);
        for i in 0..self.sigma.nrows() {
            self.sigma[(i, i)] += 2.0 * r;
            self.gauss[i] = rng.sample(StandardNormal);
        }
        self.sigma.mul_to(&self.gauss, &mut self.tail);
        let amplitude = self.tail_sum().sqrt() / denom;
        let mut pair = 0;
        for j in 0..m {
            for k in (j + 1)..m {
                area[(j, k)] += amplitude * self.tail[pair];
                pair += 1;
            }
        }
    }

    /// `Σ_∞` for the pairs `(j, k)`, `j < k`, in row-major order:
    /// `2δ + δ_{jj'}c_k c_{k'} − δ_{jk'}c_k c_{j'} − δ_{kj'}c_j c_{k'} + δ_{kk'}c_j c_{j'}`.
    ///
    /// Only pairs that share an index have a non-zero entry, and two different pairs
    /// share at most one (so one term): the entries are written pair by pair with the
    /// dense sum's operations (`2 + c_k² + c_j²` on the diagonal, `0 ± c·c` off it, the
    /// rest `+0`), `O(m³)` work after an `O(m⁴)` fill with zeros instead of `O(m⁴)`
    /// branches — the same numbers (tested against the dense sum).
    fn fill_tail_covariance(&mut self) {
        let m = self.m;
        let c = &self.c;
        let sigma = &mut self.sigma;
        // one contiguous store (nalgebra's element iterator costs ≈ 16 instructions each)
        sigma.as_mut_slice().fill(0.0);
        // the row-major index of the pair (j, k), j < k
        let pair = |j: usize, k: usize| j * m - j * (j + 1) / 2 + (k - j - 1);
        for j in 0..m {
            for k in (j + 1)..m {
                let a = pair(j, k);
                let mut s = 2.0;
                s += c[k] * c[k];
                s += c[j] * c[j];
                sigma[(a, a)] = s;
                for kp in (j + 1)..m {
                    if kp != k {
                        sigma[(a, pair(j, kp))] = 0.0 + c[k] * c[kp]; // j = j'
                    }
                }
                for jp in 0..j {
                    sigma[(a, pair(jp, j))] = 0.0 - c[k] * c[jp]; // j = k'
                }
                for kp in (k + 1)..m {
                    sigma[(a, pair(k, kp))] = 0.0 - c[j] * c[kp]; // k = j'
                }
                for jp in 0..k {
                    if jp != j {
                        sigma[(a, pair(jp, k))] = 0.0 + c[j] * c[jp]; // k = k'
                    }
                }
            }
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

    /// The tail covariance by its defining sum over every pair of pairs (the former
    /// fill), for [`LevyArea::fill_tail_covariance`] to match bit for bit.
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

    /// The sparse fill gives the dense sum's numbers, signed zeros included, for noise
    /// dimensions 2 to 21 (matrix factorisation's `m`) and increments with zeros.
    #[test]
    fn sparse_tail_covariance_is_the_dense_sum() {
        for m in [2, 3, 4, 7, 21] {
            let mut levy = LevyArea::new(m, 3, LevyMethod::Wiktorsson).unwrap();
            let cases = [
                DVector::from_fn(m, |j, _| (1.7 * j as f64 + 0.3).sin() * 2.0),
                DVector::from_fn(m, |j, _| if j % 3 == 0 { 0.0 } else { -0.4 * j as f64 }),
            ];
            for c in cases {
                levy.c.copy_from(&c);
                levy.fill_tail_covariance();
                let bits = |x: &DMatrix<f64>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&levy.sigma), bits(&dense_tail_covariance(&c)), "m = {m}");
            }
        }
    }

    /// Wiktorsson's closed-form square root really squares to `Σ_∞` (so the covariance
    /// formula and the square root agree), for m = 4 and an arbitrary increment.
    #[test]
    fn closed_form_square_root_of_the_tail_covariance() {
        let m = 4;
        let h: f64 = 0.3;
        let dw = DVector::from_vec(vec![0.4, -0.2, 0.7, 0.1]);
        let mut levy = LevyArea::new(m, 3, LevyMethod::Wiktorsson).unwrap();
        levy.c = dw.map(|w| (2.0 / h).sqrt() * w);
        levy.fill_tail_covariance();
        let sigma = levy.sigma.clone();
        let r = (1.0 + dw.norm_squared() / h).sqrt();
        let n = sigma.nrows();
        let root = (&sigma + DMatrix::identity(n, n) * (2.0 * r)) / (std::f64::consts::SQRT_2 * (1.0 + r));
        assert!((&root * &root - &sigma).amax() < 1e-12 * sigma.amax());
    }
}
