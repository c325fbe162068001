//! Block evaluation of an SDE's coefficients: [`BatchSde`] evaluates `a` and `b` on a
//! block of `P` states at once (THEORY §8, the coefficients of `dX = a dt + b dW`), the
//! capability the lockstep ensemble driver ([`crate::ensemble::lockstep`]) runs on.
//!
//! An [`super::Sde`] that also implements [`BatchSde`] with the *same arithmetic* (the same
//! operations in the same order, per path) says so through [`super::Sde::batch`]; ensembles
//! ([`crate::ensemble::SdeProblem`]) then advance its paths in lockstep SIMD lane groups
//! by themselves, with the per-path route's numbers bit for bit. The reference problems
//! ([`super::reference`]: GBM, Ornstein–Uhlenbeck, the non-commutative problem) do.

use super::{Noise, Sde, SdeExt, FD_RELATIVE_STEP};
use crate::error::Result;
use crate::simd::{Kernel, Vectorised};

/// An SDE `dX = a(t, X) dt + b(t, X) dW` whose coefficients are evaluated on a block of
/// states at once.
///
/// Layout: a block of `P` states is `x[p·d + i]`. [`BatchSde::drift_block`] writes
/// `a(t, x_p)` in the same layout. [`BatchSde::diffusion_block`] writes, per path, the
/// diagonal `b_i` (`d` numbers) for [`Noise::Diagonal`], and the matrix `b_{ij}` row-major
/// (`d × m` numbers, `b[p·d·m + i·m + j]`) for every other noise kind (scalar noise:
/// `m = 1`, one column). The dimensions and the declared structure are the [`Sde`]'s.
pub trait BatchSde: Sde + Sync {
    /// Drift of every state of the block.
    ///
    /// # Errors
    /// Whatever the evaluation reports (e.g. a failing user callback).
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()>;
    /// Diffusion of every state of the block, in the layout of the trait docs.
    ///
    /// # Errors
    /// Whatever the evaluation reports.
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()>;
    /// Whether [`BatchSde::milstein_block`] is provided (default `false`: Milstein is
    /// then available on the lockstep driver for additive noise only).
    fn has_milstein_block(&self) -> bool {
        false
    }
    /// The Milstein derivative terms along `c`, per path: for path `p` with state
    /// `x_p = x[p·d..(p+1)·d]` and direction `c_p = c[p·m..(p+1)·m]`,
    /// `out[p·d + i] = (∂b[b(x_p) c_p] c_p)_i`, the `d` numbers that
    /// [`Sde::diffusion_derivative`]`(t, x_p, v, c_p)`
    /// writes with `v = `[`Sde::diffusion_apply`]`(t, x_p,
    /// c_p)`, with the same arithmetic (THEORY §8, the terms `L^j b_k` of Milstein).
    ///
    /// The lockstep Milstein ([`crate::ensemble::lockstep`]) calls it as the per-path
    /// [`crate::scheme::Milstein`] calls `diffusion_derivative`: for [`Noise::Scalar`]
    /// (`m = 1`, any `d`) once with `c = 1` (`∂b[b]·1 = L¹b`); for [`Noise::Diagonal`]
    /// (`m = d`) twice, with `c = ΔW` and with `c = 1` (every entry one). Examples:
    /// one-dimensional GBM `b = s·x` writes `s·((s·x)·c)·c`; a diagonal
    /// `b_i = g_i(x_i)` writes `g_i′(x_i)·(g_i(x_i)·c_i)·c_i` in the order its
    /// `diffusion_derivative` multiplies. Called only when
    /// [`BatchSde::has_milstein_block`]; the default writes nothing.
    ///
    /// # Errors
    /// Whatever the evaluation reports.
    fn milstein_block(&self, _t: f64, _x: &[f64], _c: &[f64], _out: &mut [f64]) -> Result<()> {
        Ok(())
    }
    /// Whether [`BatchSde::derivative_block`] is provided (default `false`: the lockstep
    /// Milstein–Lévy then calls [`Sde::diffusion_derivative`] once per path).
    fn has_derivative_block(&self) -> bool {
        false
    }
    /// The directional derivatives of the diffusion on a block: for path `p` with state
    /// `x_p = x[p·d..(p+1)·d]`, direction `v_p = v[p·d..(p+1)·d]` and weights
    /// `c_p = c[p·m..(p+1)·m]`, `out[p·d + i] = (∂b(x_p)[v_p] c_p)_i`, the `d` numbers that
    /// [`Sde::diffusion_derivative`]`(t, x_p, v_p, c_p)` writes, with the same arithmetic
    /// (THEORY §8: with `v_p = b_j(x_p)` and `c_p = I_(j,·)` this is `Σ_k (L^j b_k) I_(j,k)`,
    /// Milstein's term for general noise). `scratch` is the caller's, reused between calls.
    ///
    /// An SDE whose per-path derivative is the library's central difference
    /// ([`super::finite_difference_derivative`], the default) provides it with
    /// [`central_difference_block`] (two states per path in one
    /// [`BatchSde::diffusion_block`] call). Called only when
    /// [`BatchSde::has_derivative_block`]; the default writes nothing.
    ///
    /// # Errors
    /// Whatever the evaluation reports.
    fn derivative_block(
        &self,
        _t: f64,
        _x: &[f64],
        _v: &[f64],
        _c: &[f64],
        _out: &mut [f64],
        _scratch: &mut BlockScratch,
    ) -> Result<()> {
        Ok(())
    }
    /// For a one-dimensional SDE with one noise (`d = m = 1`): takes a pass of the
    /// lockstep driver's step with this SDE's coefficients at time `t` inlined,
    /// `Some(step.run(|x| [a, b, c]))`, where `[a, b, c]` are the numbers
    /// [`BatchSde::drift_block`], [`BatchSde::diffusion_block`] and
    /// [`BatchSde::milstein_block`] (with `c = 1`) write for the state `x` at time `t`,
    /// by the same operations (so the same bits). Euler–Maruyama and Milstein take one
    /// pass; Heun and RK-Milstein two (the driver calls this twice per step: at the
    /// paths' states, then at their predictor or support states, with Heun's second at
    /// `t + h`). Default `None`: the driver calls the block methods and then steps (four
    /// passes over the block instead of one for Euler–Maruyama; GBM's step costs ≈ 20 %
    /// more, BENCHMARKS.md, session 7; Heun ≈ 2×, session 8).
    ///
    /// ```
    /// use noether_sde::sde::batch::{BatchSde, ScalarLanes};
    /// # use noether_sde::prelude::*;
    /// # use noether_sde::sde::Structure;
    /// # use nalgebra::DVector;
    /// /// `dX = −X dt + 0.5 dW`, an SDE of one's own.
    /// struct Decay;
    /// # impl Sde for Decay {
    /// #     fn dim(&self) -> usize { 1 }
    /// #     fn structure(&self) -> Structure { Structure::additive(1) }
    /// #     fn drift(&self, _t: f64, x: &DVector<f64>, out: &mut DVector<f64>) { out[0] = -x[0]; }
    /// #     fn diffusion_apply(&self, _t: f64, _x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
    /// #         out[0] = 0.5 * dw[0];
    /// #     }
    /// # }
    /// impl BatchSde for Decay {
    ///     fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> noether_sde::Result<()> {
    ///         for (o, &x) in out.iter_mut().zip(x) {
    ///             *o = -x;
    ///         }
    ///         Ok(())
    ///     }
    ///     fn diffusion_block(&self, _t: f64, _x: &[f64], out: &mut [f64]) -> noether_sde::Result<()> {
    ///         out.fill(0.5);
    ///         Ok(())
    ///     }
    ///     fn scalar_step(&self, _t: f64, step: ScalarLanes<'_>) -> Option<bool> {
    ///         Some(step.run(|x| [-x, 0.5, 0.0])) // additive noise: no Milstein term
    ///     }
    /// }
    /// ```
    fn scalar_step(&self, _t: f64, _step: ScalarLanes<'_>) -> Option<bool> {
        None
    }
}

/// One pass of a step of the lockstep driver on a block of one-dimensional paths with
/// one noise (THEORY §8), `ΔW = √h ξ` (as `IncrementStream::next` forms it), for every
/// path, compiled for the detected instruction set (no fast-math: the same numbers
/// whichever runs), in the per-path schemes' operations and order:
///
/// - Euler–Maruyama `X' = X + h a + b ΔW`; Milstein `X' = (X + h a + b ΔW) + ½(ΔW² − h) c`
///   with `c = L¹b`;
/// - Heun: the predictor `X̃ = X + h a + b ΔW` (first pass, coefficients at `X`), then
///   `X' = X + ½h(a + ã) + ½(b ΔW + b̃ ΔW)` (second pass, coefficients at `X̃`, `t + h`);
/// - RK-Milstein: the support `Υ = X + h a + √h b` (first pass), then
///   `X' = X + h a + b ΔW + (1/√h) b(Υ) c − (1/√h) b c` with `c = ½ΔW ΔW − ½h`
///   (second pass, the diffusion at `Υ`, time `t`).
///
/// The driver builds it; an SDE runs it with its coefficients
/// ([`BatchSde::scalar_step`]).
pub struct ScalarLanes<'a> {
    x: &'a mut [f64],
    z: &'a [f64],
    h: f64,
    sqrt_h: f64,
    limit: f64,
    pass: Pass<'a>,
    kernel: Kernel,
}

/// Which pass of which scheme a [`ScalarLanes`] takes.
pub(crate) enum Pass<'a> {
    /// Euler–Maruyama, or Milstein (`true`): `x` stepped in place.
    Euler(bool),
    /// The first pass of Heun (`heun`) or RK-Milstein: the coefficients at `x` kept in
    /// `a` and `b`, the predictor or support state written to `support`.
    First {
        heun: bool,
        a: &'a mut [f64],
        b: &'a mut [f64],
        support: &'a mut [f64],
    },
    /// The second pass: the coefficients at `support`, `x` stepped.
    Second {
        heun: bool,
        a: &'a [f64],
        b: &'a [f64],
        support: &'a [f64],
    },
}

impl<'a> ScalarLanes<'a> {
    /// The pass `pass` of the step of the states `x` (updated in place by all but a
    /// first pass) with the standard normals `z`, `[h, √h, divergence bound]`, on
    /// `kernel`.
    pub(crate) fn new(
        x: &'a mut [f64],
        z: &'a [f64],
        [h, sqrt_h, limit]: [f64; 3],
        pass: Pass<'a>,
        kernel: Kernel,
    ) -> Self {
        ScalarLanes {
            x,
            z,
            h,
            sqrt_h,
            limit,
            pass,
            kernel,
        }
    }

    /// Takes the pass with the coefficients `[a, b, c]` of each state it evaluates them
    /// at (the paths' states, or their predictor / support states in a second pass; `c`
    /// is read only by Milstein) and returns whether every new state is within the
    /// divergence bound (NaN is not; a first pass moves no state and returns `true`).
    #[inline(always)]
    pub fn run(self, coefficients: impl Fn(f64) -> [f64; 3]) -> bool {
        self.run_indexed(move |_, x| coefficients(x))
    }

    /// [`ScalarLanes::run`] with the coefficients of path `k` given as `f(k, x_k)`.
    #[inline(always)]
    pub(crate) fn run_indexed<F: Fn(usize, f64) -> [f64; 3]>(self, f: F) -> bool {
        let kernel = self.kernel;
        kernel.vectorised(ScalarPass { lanes: self, f })
    }
}

/// [`ScalarLanes`] and its coefficients, to run under [`Kernel::vectorised`].
struct ScalarPass<'a, F> {
    lanes: ScalarLanes<'a>,
    f: F,
}

impl<F: Fn(usize, f64) -> [f64; 3]> Vectorised for ScalarPass<'_, F> {
    type Output = bool;
    #[inline(always)]
    fn run(self) -> bool {
        let ScalarLanes {
            x,
            z,
            h,
            sqrt_h,
            limit,
            pass,
            kernel: _,
        } = self.lanes;
        let f = self.f;
        let z = &z[..x.len()];
        let mut fine = true;
        match pass {
            Pass::Euler(milstein) => {
                for (k, (x, &z)) in x.iter_mut().zip(z).enumerate() {
                    let [a, b, c] = f(k, *x);
                    let w = sqrt_h * z;
                    let em = *x + h * a + b * w;
                    *x = if milstein { em + 0.5 * (w * w - h) * c } else { em };
                    fine &= x.abs() <= limit;
                }
            }
            Pass::First {
                heun,
                a: kept_a,
                b: kept_b,
                support,
            } => {
                let (kept_a, kept_b, support) = (
                    &mut kept_a[..x.len()],
                    &mut kept_b[..x.len()],
                    &mut support[..x.len()],
                );
                for (k, (&x, &z)) in x.iter().zip(z).enumerate() {
                    let [a, b, _] = f(k, x);
                    (kept_a[k], kept_b[k]) = (a, b);
                    // Heun's predictor with the increment; RK-Milstein's support with √h
                    support[k] = x + h * a + if heun { b * (sqrt_h * z) } else { sqrt_h * b };
                }
            }
            Pass::Second {
                heun,
                a: kept_a,
                b: kept_b,
                support,
            } => {
                let (kept_a, kept_b, support) = (&kept_a[..x.len()], &kept_b[..x.len()], &support[..x.len()]);
                let inv_sqrt_h = 1.0 / sqrt_h;
                for (k, (x, &z)) in x.iter_mut().zip(z).enumerate() {
                    let [a_p, b_p, _] = f(k, support[k]);
                    let (a, b, w) = (kept_a[k], kept_b[k], sqrt_h * z);
                    *x = if heun {
                        *x + 0.5 * h * (a + a_p) + 0.5 * (b * w + b_p * w)
                    } else {
                        let c = 0.5 * w * w + -0.5 * h;
                        let next = *x + h * a + b * w + inv_sqrt_h * (b_p * c);
                        next + -inv_sqrt_h * (b * c)
                    };
                    fine &= x.abs() <= limit;
                }
            }
        }
        fine
    }
}

/// Buffers of [`central_difference_block`] (the shifted states and the diffusion
/// there), grown to the widest block and reused.
#[derive(Debug, Clone, Default)]
pub struct BlockScratch {
    states: Vec<f64>,
    values: Vec<f64>,
    steps: Vec<f64>,
}

/// `‖v‖_∞` as nalgebra's `amax` folds it (from `|v₀|`, `f64::max`, so the same number
/// for any input).
#[inline]
fn amax(v: &[f64]) -> f64 {
    v.iter()
        .skip(1)
        .fold(v.first().map_or(0.0, |v| v.abs()), |a, &b| a.max(b.abs()))
}

/// [`BatchSde::derivative_block`] by the library's central difference, path by path the
/// numbers of [`super::finite_difference_derivative`] (the default of
/// [`Sde::diffusion_derivative`]) when `diffusion_block` has `diffusion_apply`'s
/// arithmetic (the contract of [`Sde::batch`]):
///
/// ```text
/// ε = δ · max(1, ‖x‖_∞) / ‖v‖_∞,    out = (−(b(x − εv) c) + b(x + εv) c) · (½/ε)
/// ```
///
/// (`0` when `v = 0`, NaN when `v` is not finite), with both shifted states of every
/// path in one `diffusion_block` call of `2P` states.
///
/// # Errors
/// Whatever `diffusion_block` reports.
#[allow(clippy::too_many_arguments)]
pub fn central_difference_block<S: BatchSde + ?Sized>(
    sde: &S,
    t: f64,
    x: &[f64],
    v: &[f64],
    c: &[f64],
    out: &mut [f64],
    scratch: &mut BlockScratch,
) -> Result<()> {
    let (d, m, noise) = (sde.dim(), sde.noise_dim(), sde.noise());
    let width = diffusion_width(noise, d, m);
    let layout = Layout::of(noise, d, m);
    let n = x.len() / d;
    let BlockScratch {
        states,
        values,
        steps,
    } = scratch;
    states.resize(2 * n * d, 0.0);
    values.resize(2 * n * width, 0.0);
    steps.resize(n, 0.0);
    let (plus, minus) = states.split_at_mut(n * d);
    for p in 0..n {
        let (xp, vp) = (&x[p * d..(p + 1) * d], &v[p * d..(p + 1) * d]);
        let v_norm = amax(vp);
        let usable = v_norm != 0.0 && v_norm.is_finite();
        // an unusable direction evaluates at x itself (finite input for the callback)
        let eps = if usable {
            FD_RELATIVE_STEP * amax(xp).max(1.0) / v_norm
        } else {
            0.0
        };
        steps[p] = if usable {
            eps
        } else if v_norm == 0.0 {
            0.0
        } else {
            f64::NAN
        };
        for i in 0..d {
            plus[p * d + i] = eps * vp[i] + xp[i];
            minus[p * d + i] = -eps * vp[i] + xp[i];
        }
    }
    sde.diffusion_block(t, states, values)?;
    let (b_plus, b_minus) = values.split_at(n * width);
    for p in 0..n {
        let eps = steps[p];
        let cp = &c[p * m..(p + 1) * m];
        let (bp, bq) = (
            &b_plus[p * width..(p + 1) * width],
            &b_minus[p * width..(p + 1) * width],
        );
        for i in 0..d {
            out[p * d + i] = if eps > 0.0 {
                (-noise_term(layout, bq, cp, i) + noise_term(layout, bp, cp, i)) * (0.5 / eps)
            } else {
                eps // 0 for v = 0, NaN for a non-finite v
            };
        }
    }
    Ok(())
}

/// `Σ_j b_ij w_j` for coordinate `i` of one path: the product the per-path
/// `Sde::diffusion_apply` computes (`b_i w` for one noise, `b_i w_i` for diagonal noise,
/// the sum over `j` from `0.0` in order otherwise; the contract of [`Sde::batch`]). `b`
/// and `w` are the path's rows.
#[inline(always)]
pub(crate) fn noise_term(layout: Layout, b: &[f64], w: &[f64], i: usize) -> f64 {
    match layout {
        Layout::OneNoise => b[i] * w[0],
        Layout::Diagonal => b[i] * w[i],
        Layout::Matrix(m) => b[i * m..(i + 1) * m]
            .iter()
            .zip(w)
            .fold(0.0, |s, (&bij, &w)| s + bij * w),
    }
}

/// How a path's diffusion row multiplies its increment (see [`noise_term`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    OneNoise,
    Diagonal,
    Matrix(usize),
}

impl Layout {
    pub(crate) fn of(noise: Noise, d: usize, m: usize) -> Self {
        if m == 1 {
            Layout::OneNoise
        } else if noise == Noise::Diagonal && m == d {
            Layout::Diagonal
        } else {
            Layout::Matrix(m)
        }
    }

    /// The noise dimension `m` of a path with `d` coordinates in this layout.
    #[inline(always)]
    pub(crate) fn noise_dim(self, d: usize) -> usize {
        match self {
            Layout::OneNoise => 1,
            Layout::Diagonal => d,
            Layout::Matrix(m) => m,
        }
    }

    /// Numbers per path of the diffusion block ([`diffusion_width`]) in this layout.
    #[inline(always)]
    pub(crate) fn width(self, d: usize) -> usize {
        match self {
            Layout::Matrix(m) => d * m,
            _ => d,
        }
    }
}

/// `out[k] = f(x[k])` for every `k`, compiled for the detected instruction set (the
/// same numbers whichever runs: `f` is evaluated as written, lane by lane, no
/// fast-math): the loop of a simple [`BatchSde`] coefficient, eight paths per
/// instruction on AVX-512.
#[inline]
pub(crate) fn map_block<F: Fn(f64) -> f64>(kernel: Kernel, x: &[f64], out: &mut [f64], f: F) {
    struct Map<'a, F> {
        x: &'a [f64],
        out: &'a mut [f64],
        f: F,
    }
    impl<F: Fn(f64) -> f64> Vectorised for Map<'_, F> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            for (o, &x) in self.out.iter_mut().zip(self.x) {
                *o = (self.f)(x);
            }
        }
    }
    kernel.vectorised(Map { x, out, f });
}

/// `out[k] = f(x[k], c[k])` for every `k` (as [`map_block`]; e.g. a
/// [`BatchSde::milstein_block`] in the direction `c`).
#[inline]
pub(crate) fn zip_block<F: Fn(f64, f64) -> f64>(kernel: Kernel, x: &[f64], c: &[f64], out: &mut [f64], f: F) {
    struct Zip<'a, F> {
        x: &'a [f64],
        c: &'a [f64],
        out: &'a mut [f64],
        f: F,
    }
    impl<F: Fn(f64, f64) -> f64> Vectorised for Zip<'_, F> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            for ((o, &x), &c) in self.out.iter_mut().zip(self.x).zip(self.c) {
                *o = (self.f)(x, c);
            }
        }
    }
    kernel.vectorised(Zip { x, c, out, f });
}

/// Numbers per path that [`BatchSde::diffusion_block`] writes.
pub fn diffusion_width(noise: Noise, dim: usize, noise_dim: usize) -> usize {
    match noise {
        Noise::Diagonal => dim,
        _ => dim * noise_dim,
    }
}
