//! DRI1: the weak order-2 stochastic Runge–Kutta method of Debrabant & Rößler for Itô
//! SDEs with any noise (THEORY §8), derivative-free, three drift stages.
//!
//! With `Î_k` the (Gaussian or three-point) increments, `Î_(k,k) = ½(Î_k² − h)`,
//! `Î_(l,k)` the iterated integrals (below) and `b^k` the `k`-th diffusion column:
//!
//! ```text
//! H₁⁽⁰⁾ = X,  H₂⁽⁰⁾ = X + a₂₁⁰ h a(H₁⁽⁰⁾) + b₂₁⁰ Σ_l b^l(X) Î_l,
//! H₃⁽⁰⁾ = X + h(a₃₁⁰ a(H₁⁽⁰⁾) + a₃₂⁰ a(H₂⁽⁰⁾)) + b₃₁⁰ Σ_l b^l(X) Î_l,
//! H₁⁽ᵏ⁾ = X,  H_i⁽ᵏ⁾ = X + a_i1¹ h a(X) + b_i1¹ √h b^k(X)                     (i = 2, 3)
//! Ĥ₁⁽ᵏ⁾ = X,  Ĥ_i⁽ᵏ⁾ = X + √h Σ_j b_ij² b^k(H_j⁽ᵏ⁾)                           (i = 2, 3)
//! X' = X + h Σ_i α_i a(t + c_i⁰h, H_i⁽⁰⁾)
//!        + Σ_k Σ_i (β_i¹ Î_k + β_i² Î_(k,k)/√h) b^k(t + c_i¹h, H_i⁽ᵏ⁾)
//!        + Σ_k Σ_{l≠k} Σ_i (β_i³ Î_k + β_i⁴ Î_(l,k)/√h) b^k(t, Ĥ_i⁽ˡ⁾)
//! ```
//!
//! A Taylor expansion of the stages reproduces Milstein's terms `(L^l b^k) Î_(l,k)`
//! (`Σ_i β_i² b_i1¹ = 1`, `Σ_i β_i⁴ Σ_j b_ij² = 1`), so with Gaussian increments and the
//! path's iterated integrals the method is also a strong order-1 method for commutative
//! noise (and for general noise with Lévy areas).
//!
//! Two ways to feed it (both weak order 2):
//!
//! - [`Dri1::new`]: `Î_k = ΔW_k` and `Î_(l,k) = ½ΔW_lΔW_k + A_lk` from the path. General
//!   noise reads the Lévy areas `A` (so the path must provide them). Weak order 2 needs
//!   only their first two conditional moments (`E[A | ΔW] = 0`, `E A² = h²/4`), so
//!   two-point areas `±h/2` would do; exact areas also make the method strong order 1.
//! - [`Dri1::three_point`]: simplified variables computed from the path's own
//!   `ξ_k = ΔW_k/√h` with no other randomness. With `U_k = Φ(ξ_k)` uniform:
//!   `Î_k = √(3h)·{−1, 0, 1}` as `U_k` falls in `[0, 1/6)`, `[1/6, 5/6]`, `(5/6, 1)`
//!   (the three-point law matching `N(0, h)`'s moments up to order 5); the position
//!   `V_k` of `U_k` within its cell is uniform and independent of `Î_k`, and its binary
//!   digits are independent fair bits. Each pair `j < k` takes one of them as the sign
//!   of a two-point area `Â_jk = ±h/2` (`Â_kj = −Â_jk`), so `Î_(j,k) = ½Î_jÎ_k + Â_jk` has
//!   the moments weak order 2 needs (`E Î_(j,k)² = h²/2`, distinct pairs uncorrelated).
//!   Pairs are spread over the noises cyclically (noise `j` serves the pairs `(j, j+δ)`,
//!   `1 ≤ δ ≤ m/2`), so each `V_k` gives at most `m/2` bits: up to `m = 60` noises.
//!   It never reads Lévy areas and has no strong order (the discrete variables do not
//!   converge to the path), which is why weak studies of it compare laws, not paths.
//!   (Rößler's own simplified areas, `±½√hĨ_k` with `m − 1` two-point `Ĩ_k` shared
//!   between pairs, correlate pairs with a common index; measured here, that variant
//!   falls to weak order 1 on the three-noise linear SDE — see `tests/it/weak.rs`.)
//!
//! Cost per step: 3 drift evaluations and `5m` diffusion applications (`m` columns at
//! `X`, `2m` stage columns, and for `m > 1` two applications per `Ĥ⁽ˡ⁾`).
//!
//! # References
//! - A. Rößler (2009), *Second order Runge–Kutta methods for Itô stochastic differential
//!   equations*, SIAM J. Numer. Anal. 47(3), 1713–1738 (the scheme class, eq. (3.1)–(3.3),
//!   and the simplified random variables).
//! - K. Debrabant, A. Rößler (2009), *Families of efficient second order Runge–Kutta
//!   methods for the weak approximation of Itô stochastic differential equations*, Appl.
//!   Numer. Math. 59, 582–594 (the coefficients of DRI1, Table 2).

use super::{Scheme, SchemeInfo, ANY_NOISE};
use crate::brownian::Increment;
use crate::error::{Error, Result};
use crate::sde::{Calculus, Sde};
use nalgebra::{DMatrix, DVector};

/// Bits of `V_k` used per noise at most (`m ≤ 2·MAX_BITS`); `V_k` is known to ~2⁻⁵⁰.
const MAX_BITS: usize = 30;

/// The DRI1 coefficients (Debrabant & Rößler 2009, Table 2); `A²` and `c²` are zero.
#[derive(Debug, Clone)]
struct Tableau {
    a0_21: f64,
    a0_31: f64,
    a0_32: f64,
    a1_21: f64,
    a1_31: f64,
    b0_21: f64,
    b0_31: f64,
    b1_21: f64,
    b1_31: f64,
    b2: [[f64; 3]; 2],
    alpha: [f64; 3],
    c0: [f64; 3],
    c1: [f64; 3],
    beta1: [f64; 3],
    beta2: [f64; 3],
    beta3: [f64; 3],
    beta4: [f64; 3],
}

fn tableau() -> Tableau {
    let b2_1 = 214.0 / 513.0 * (1105.0f64 / 991.0).sqrt();
    let b2_2 = 491.0 / 513.0 * (221.0f64 / 4955.0).sqrt();
    let beta2 = (491.0f64 / 38.0).sqrt() / 6.0;
    let beta4 = (4955.0f64 / 221.0).sqrt() / 8.0;
    Tableau {
        a0_21: 0.5,
        a0_31: -1.0,
        a0_32: 2.0,
        a1_21: 342.0 / 491.0,
        a1_31: 342.0 / 491.0,
        b0_21: (6.0 - 6f64.sqrt()) / 10.0,
        b0_31: (3.0 + 2.0 * 6f64.sqrt()) / 5.0,
        b1_21: 3.0 * (38.0f64 / 491.0).sqrt(),
        b1_31: -3.0 * (38.0f64 / 491.0).sqrt(),
        b2: [[-b2_1, -b2_2, -b2_2], [b2_1, b2_2, b2_2]],
        alpha: [1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0],
        c0: [0.0, 0.5, 1.0],
        c1: [0.0, 342.0 / 491.0, 342.0 / 491.0],
        beta1: [193.0 / 684.0, 491.0 / 1368.0, 491.0 / 1368.0],
        beta2: [0.0, beta2, -beta2],
        beta3: [-4955.0 / 7072.0, 4955.0 / 14144.0, 4955.0 / 14144.0],
        beta4: [0.0, -beta4, beta4],
    }
}

/// The three-point cell `{−1, 0, 1}` of a standard normal `ξ` and the first
/// [`MAX_BITS`] binary digits of its uniform position within the cell (module docs).
#[inline]
pub(crate) fn three_point(xi: f64) -> (f64, u64) {
    let u = 0.5 * statrs::function::erf::erfc(-xi * std::f64::consts::FRAC_1_SQRT_2);
    let (point, low, width) = if u < 1.0 / 6.0 {
        (-1.0, 0.0, 1.0 / 6.0)
    } else if u > 5.0 / 6.0 {
        (1.0, 5.0 / 6.0, 1.0 / 6.0)
    } else {
        (0.0, 1.0 / 6.0, 2.0 / 3.0)
    };
    let position = ((u - low) / width).clamp(0.0, 1.0 - f64::EPSILON);
    (point, (position * (1u64 << MAX_BITS) as f64) as u64)
}

/// Which noise's digits give the sign of the pair `(j, k)`, `j < k`, and which digit
/// (most significant first): noise `j` serves `(j, j + δ)` for `δ ≤ m/2`, noise `k` the rest.
#[inline]
fn pair_digit(j: usize, k: usize, m: usize) -> (usize, usize) {
    let delta = k - j;
    if 2 * delta <= m {
        (j, delta - 1)
    } else {
        (k, m - delta - 1)
    }
}

/// DRI1 (Debrabant & Rößler): weak order 2 for Itô SDEs with any noise; strong order 1
/// for commutative noise with Gaussian increments.
///
/// ```text
/// three drift stages; for each noise k two stage columns b^k(H_i^(k)); for m > 1 the
/// stages Ĥ^(l) carry the iterated integrals I_(l,k) (module docs, THEORY §8)
/// ```
///
/// ```
/// use noether_sde::prelude::*;
/// use noether_sde::scheme::Dri1;
/// use nalgebra::DVector;
/// let gbm = GeometricBrownianMotion::new(0.5, 0.2)?;
/// let span = TimeSpan::new(0.0, 1.0, 0.1)?;
/// let mut path = IncrementStream::new(&SeedTree::new(7), 0, 1);
/// let x1 = integrate(&gbm, &mut Dri1::new(), &DVector::from_element(1, 1.0), &span, &mut path, 0, &mut ())?;
/// assert!(x1[0] > 0.0);
/// # Ok::<(), noether_sde::Error>(())
/// ```
///
/// # References
/// Debrabant & Rößler (2009), Appl. Numer. Math. 59, Table 2; Rößler (2009), SIAM J.
/// Numer. Anal. 47(3).
#[derive(Debug, Clone)]
pub struct Dri1 {
    three_point: bool,
    tab: Tableau,
    /// `Î_k`.
    ihat: DVector<f64>,
    /// The digits of `V_k` (three-point variant only).
    digits: Vec<u64>,
    /// `Î_(j,k)`, `j ≠ k` (three-point variant only).
    mixed: DMatrix<f64>,
    /// `Î_(k,k)/√h`.
    diagonal: DVector<f64>,
    /// Coefficients of one diffusion application.
    coefficients: DVector<f64>,
    unit: DVector<f64>,
    /// Drift stages `a(H_i⁽⁰⁾)`.
    k: [DVector<f64>; 3],
    /// `b^k(X)`, `b^k(H₂⁽ᵏ⁾)`, `b^k(H₃⁽ᵏ⁾)` column by column (`d × m`).
    g: [DMatrix<f64>; 3],
    stage: DVector<f64>,
    column: DVector<f64>,
}

impl Default for Dri1 {
    fn default() -> Self {
        Dri1::with_variables(false)
    }
}

impl Dri1 {
    /// DRI1 on the path's Gaussian increments and iterated integrals (Lévy areas read on
    /// general noise).
    pub fn new() -> Self {
        Self::default()
    }

    /// DRI1 on the three-point / two-point variables computed from the path's `ΔW`
    /// (module docs): never reads Lévy areas; weak order 2, no strong convergence.
    pub fn three_point() -> Self {
        Dri1::with_variables(true)
    }

    fn with_variables(three_point: bool) -> Self {
        let empty = || DMatrix::zeros(0, 0);
        Dri1 {
            three_point,
            tab: tableau(),
            ihat: DVector::zeros(0),
            digits: Vec::new(),
            mixed: DMatrix::zeros(0, 0),
            diagonal: DVector::zeros(0),
            coefficients: DVector::zeros(0),
            unit: DVector::zeros(0),
            k: [DVector::zeros(0), DVector::zeros(0), DVector::zeros(0)],
            g: [empty(), empty(), empty()],
            stage: DVector::zeros(0),
            column: DVector::zeros(0),
        }
    }
}

impl Scheme for Dri1 {
    fn info(&self) -> SchemeInfo {
        if self.three_point {
            // no strong order: the discrete variables do not converge to the path
            SchemeInfo::new("dri1_three_point", 0.0, 2.0, Calculus::Ito, ANY_NOISE)
                .aliases(&["dri1_3p"])
                .summary("DRI1 on three-point variables from the path's ΔW: weak order 2, no Lévy areas")
        } else {
            SchemeInfo::new("dri1", 1.0, 2.0, Calculus::Ito, ANY_NOISE)
                .summary("Debrabant-Rößler DRI1: weak order 2 (strong 1 with the path's iterated integrals)")
                .levy_area(true)
        }
    }

    fn prepare(&mut self, dim: usize, noise_dim: usize) {
        for v in [
            &mut self.ihat,
            &mut self.diagonal,
            &mut self.coefficients,
            &mut self.unit,
        ] {
            *v = DVector::zeros(noise_dim);
        }
        for k in &mut self.k {
            *k = DVector::zeros(dim);
        }
        self.digits = vec![0; noise_dim];
        self.mixed = DMatrix::zeros(noise_dim, noise_dim);
        for g in &mut self.g {
            *g = DMatrix::zeros(dim, noise_dim);
        }
        self.stage = DVector::zeros(dim);
        self.column = DVector::zeros(dim);
    }

    fn step<S: Sde + ?Sized>(
        &mut self,
        sde: &S,
        t: f64,
        inc: &Increment,
        x: &DVector<f64>,
        out: &mut DVector<f64>,
    ) -> Result<()> {
        let tab = &self.tab;
        let h = inc.h;
        let sqrt_h = h.sqrt();
        let m = inc.dw.len();
        if self.three_point {
            if m > 2 * MAX_BITS {
                return Err(Error::Incompatible {
                    scheme: "dri1_three_point",
                    reason: crate::error::IncompatibleReason::TooManyNoises {
                        max: 2 * MAX_BITS,
                        noise_dim: m,
                    },
                });
            }
            let scale = (3.0 * h).sqrt();
            for k in 0..m {
                let (point, digits) = three_point(inc.dw[k] / sqrt_h);
                self.ihat[k] = scale * point;
                self.digits[k] = digits;
            }
            for j in 0..m {
                for k in j + 1..m {
                    let (noise, digit) = pair_digit(j, k, m);
                    let up = (self.digits[noise] >> (MAX_BITS - 1 - digit)) & 1 == 1;
                    let area = if up { 0.5 * h } else { -0.5 * h };
                    let symmetric = 0.5 * self.ihat[j] * self.ihat[k];
                    self.mixed[(j, k)] = symmetric + area;
                    self.mixed[(k, j)] = symmetric - area;
                }
            }
        } else {
            self.ihat.copy_from(&inc.dw);
        }
        for k in 0..m {
            self.diagonal[k] = 0.5 * (self.ihat[k] * self.ihat[k] - h) / sqrt_h;
        }
        let [k1, k2, k3] = &mut self.k;
        let [g1, g2, g3] = &mut self.g;

        // drift stage 1 and the diffusion columns at X
        sde.drift(t, x, k1);
        for k in 0..m {
            self.unit.fill(0.0);
            self.unit[k] = 1.0;
            sde.diffusion_apply(t, x, &self.unit, &mut self.column);
            g1.set_column(k, &self.column);
        }
        // drift stages 2 and 3: H⁽⁰⁾ = X + h Σ a⁰ a + b⁰ Σ_l b^l(X) Î_l
        g1.mul_to(&self.ihat, &mut self.column);
        self.stage.copy_from(x);
        self.stage.axpy(tab.a0_21 * h, k1, 1.0);
        self.stage.axpy(tab.b0_21, &self.column, 1.0);
        sde.drift(t + tab.c0[1] * h, &self.stage, k2);
        self.stage.copy_from(x);
        self.stage.axpy(tab.a0_31 * h, k1, 1.0);
        self.stage.axpy(tab.a0_32 * h, k2, 1.0);
        self.stage.axpy(tab.b0_31, &self.column, 1.0);
        sde.drift(t + tab.c0[2] * h, &self.stage, k3);

        // stage columns b^k(H_i⁽ᵏ⁾), H_i⁽ᵏ⁾ = X + a¹ h a(X) + b¹ √h b^k(X)
        for (g, a1, b1, c1) in [
            (&mut *g2, tab.a1_21, tab.b1_21, tab.c1[1]),
            (&mut *g3, tab.a1_31, tab.b1_31, tab.c1[2]),
        ] {
            for k in 0..m {
                self.stage.copy_from(x);
                self.stage.axpy(a1 * h, k1, 1.0);
                self.stage.axpy(b1 * sqrt_h, &g1.column(k), 1.0);
                self.unit.fill(0.0);
                self.unit[k] = 1.0;
                sde.diffusion_apply(t + c1 * h, &self.stage, &self.unit, &mut self.column);
                g.set_column(k, &self.column);
            }
        }

        // X' = X + h Σ α a + the noise terms of H⁽ᵏ⁾
        out.copy_from(x);
        out.axpy(tab.alpha[0] * h, k1, 1.0);
        out.axpy(tab.alpha[1] * h, k2, 1.0);
        out.axpy(tab.alpha[2] * h, k3, 1.0);
        let cross = (m as f64 - 1.0) * tab.beta3[0];
        for k in 0..m {
            let (ihat, diagonal) = (self.ihat[k], self.diagonal[k]);
            out.axpy((tab.beta1[0] + cross) * ihat, &g1.column(k), 1.0);
            out.axpy(tab.beta1[1] * ihat + tab.beta2[1] * diagonal, &g2.column(k), 1.0);
            out.axpy(tab.beta1[2] * ihat + tab.beta2[2] * diagonal, &g3.column(k), 1.0);
        }

        // the mixed terms: Σ_{k≠l} (β³ Î_k + β⁴ Î_(l,k)/√h) b^k(Ĥ_i⁽ˡ⁾), one application per Ĥ
        if m > 1 {
            for l in 0..m {
                for i in 0..2 {
                    let [w1, w2, w3] = tab.b2[i];
                    self.stage.copy_from(x);
                    self.stage.axpy(w1 * sqrt_h, &g1.column(l), 1.0);
                    self.stage.axpy(w2 * sqrt_h, &g2.column(l), 1.0);
                    self.stage.axpy(w3 * sqrt_h, &g3.column(l), 1.0);
                    for k in 0..m {
                        let iterated = if self.three_point {
                            self.mixed[(l, k)]
                        } else {
                            inc.iterated_integral(l, k)
                        };
                        self.coefficients[k] = if k == l {
                            0.0
                        } else {
                            tab.beta3[i + 1] * self.ihat[k] + tab.beta4[i + 1] * iterated / sqrt_h
                        };
                    }
                    sde.diffusion_apply(t, &self.stage, &self.coefficients, &mut self.column);
                    *out += &self.column;
                }
            }
        }
        Ok(())
    }
}
