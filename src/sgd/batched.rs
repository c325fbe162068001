//! Euler–Maruyama for the finite-data SGD-SDE over a block of paths at once.
//!
//! For a model whose per-sample gradient is a scalar times the input,
//! `∇ℓ(θ; x, y) = s(θᵀx, y) x` (a [`GeneralizedLinearModel`]), the Euler–Maruyama step of
//! the SGD-SDE (THEORY §1, noise factor `D = (G − ḡ1ᵀ)/√N`, `G = [g_1 … g_N]`) for path
//! `p` with increments `ΔW_ip` is
//!
//! ```text
//! θ_p' = θ_p − h(ḡ_p + 2γθ_p) + σ (Σ_i ΔW_ip g_i − (Σ_i ΔW_ip) ḡ_p)/√N,   σ = sqrt(η c_B)
//!      = θ_p − 2hγθ_p + Σ_i s(θ_pᵀx_i, y_i) Ω_ip x_i,
//! Ω_ip = σ ΔW_ip/√N − (h + σ Σ_j ΔW_jp/√N)/N,
//! ```
//!
//! so one step of `P` paths with states `Θ = [θ_1 … θ_P]` (`d × P`) and data `X`
//! (`N × d`, rows `x_iᵀ`) is two matrix–matrix products, `4dN` flops per path, instead
//! of `2P` matrix–vector products:
//!
//! ```text
//! Zᵀ = Θᵀ Xᵀ          (P × N: every residual argument θ_pᵀx_i)
//! W_ip = Ω_ip s(Z_ip, y_i)
//! Uᵀ = Wᵀ X           (P × d),   θ_p' = θ_p − 2hγθ_p + u_p
//! ```
//!
//! The products run on a register-blocked kernel ([`super::packed`]) with `X` packed once,
//! paths along the vector lanes, and `W` written by the first product's epilogue straight
//! into the second product's operand layout; every output is a fixed chain of fused
//! multiply–adds, so a path's numbers do not depend on which other paths share its block.
//! The per-sample work is that of [`SgdSde`]'s fused
//! [`Sde::drift_and_diffusion`](crate::sde::Sde::drift_and_diffusion); only the grouping
//! of the sums differs, so the states agree with the per-path route to rounding. Path
//! `p`'s increments come from its own generator, drawn in the order
//! [`IncrementStream`](crate::brownian::IncrementStream) draws them (the same numbers, by
//! [`crate::rng::standard_normal`]).

use super::config::ModifiedEquation;
use super::model::Model;
use super::packed::{self, NR};
use super::sde::SgdSde;
use crate::error::{Error, IncompatibleReason, Result};
use crate::rng::Xoshiro256PlusPlus;
use crate::rng::{NormalLanes, LANES};
use crate::simd::{Kernel, Vectorised};
use nalgebra::{DMatrix, DVector};

/// Samples per block of the second product: a block of `W` (`24 × 128` values, 24 KiB)
/// fits in the L1 cache with a block of `X`.
const K_BLOCK: usize = 128;

/// A model whose per-sample gradient is `∇ℓ(θ; x, y) = s(θᵀx, y) · x`, with `s = ∂ℓ/∂z`
/// at the linear predictor `z = θᵀx` (linear and logistic regression, GLMs): the shape the
/// batched SGD-SDE step needs.
pub trait GeneralizedLinearModel: Model {
    /// `s(z, y) = ∂ℓ/∂z` at `z = θᵀx` for the (scalar) target `y`.
    fn loss_derivative(&self, z: f64, y: f64) -> f64;
}

/// The finite-data SGD-SDE of a [`GeneralizedLinearModel`], stepped over blocks of paths.
///
/// ```
/// use noether_sde::models::LinearRegression;
/// use noether_sde::rng::{SeedTree, Stream};
/// use noether_sde::sgd::{BatchedSgdSde, SgdConfig, SgdSde};
/// use nalgebra::{DMatrix, DVector};
/// let model = LinearRegression::new(DVector::from_element(3, 1.0), DMatrix::identity(3, 3), 0.1)?;
/// let data = model.dataset(50, 1)?;
/// let sde = SgdSde::finite(&model, &data, SgdConfig::new(0.05, 5))?;
/// let batched = BatchedSgdSde::new(&sde)?;
/// let mut block = batched.block(4);
/// let seeds = SeedTree::new(2);
/// let mut rngs: Vec<_> = (0..4).map(|p| Some(seeds.rng(p, Stream::Brownian))).collect();
/// block.state_mut().fill(0.0);
/// batched.euler_maruyama_step(&mut block, 0.0, 0.05, &mut rngs);
/// assert!(block.state().iter().all(|v| v.is_finite()));
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub struct BatchedSgdSde<'a, M: GeneralizedLinearModel> {
    sde: &'a SgdSde<'a, M>,
    n: usize,
    d: usize,
    targets: DVector<f64>,
    /// `Xᵀ` as `B` panels of [`NR`] samples (`d` groups each).
    xt_panels: Vec<f64>,
    /// `X` as `B` panels of [`NR`] features (`N` groups each).
    x_panels: Vec<f64>,
    kernel: Kernel,
}

/// The arguments of one step, to run under [`Kernel::vectorised`].
struct Step<'s, 'a, M: GeneralizedLinearModel> {
    batched: &'s BatchedSgdSde<'a, M>,
    block: &'s mut SgdSdeBlock,
    t: f64,
    h: f64,
    rngs: &'s mut [Option<Xoshiro256PlusPlus>],
}

impl<M: GeneralizedLinearModel> Vectorised for Step<'_, '_, M> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.batched.step(self.block, self.t, self.h, self.rngs)
    }
}

/// The states and buffers of a block of at most `capacity` paths, one per column.
#[derive(Debug, Clone)]
pub struct SgdSdeBlock {
    columns: std::ops::Range<usize>,
    theta: DMatrix<f64>,
    /// `(first column, width)` of each panel of paths ([`packed::panels`]).
    panels: Vec<(usize, usize)>,
    /// `Θᵀ` in panel order: panel `(s, w)` at `s·d`, `d` groups of `w`.
    theta_t: Vec<f64>,
    /// `ΔW`, then `W`, in panel order: panel `(s, w)` at `s·N`, `N` groups of `w`.
    w: Vec<f64>,
    /// `(h + σ Σ_i ΔW_ip/√N)/N` per column.
    beta: Vec<f64>,
    /// One tile of the first product (`NR × 24`).
    tile: Vec<f64>,
    /// The tiles of `Uᵀ` for one panel (`⌈d/NR⌉ · NR × 24`).
    u: Vec<f64>,
    /// The generators of eight columns while they draw.
    lanes: NormalLanes,
}

impl SgdSdeBlock {
    /// The columns a step computes.
    pub fn columns(&self) -> std::ops::Range<usize> {
        self.columns.clone()
    }

    /// Maximum number of paths.
    pub fn capacity(&self) -> usize {
        self.theta.ncols()
    }

    /// Steps the columns `columns` only (the others keep their states). A column's
    /// result depends only on its own state and generator, never on which other columns
    /// are in the block or stepped.
    ///
    /// # Panics
    /// If `columns` reaches past the capacity.
    pub fn set_columns(&mut self, columns: std::ops::Range<usize>) {
        let cap = self.capacity();
        assert!(columns.end <= cap, "block capacity {cap} exceeded");
        self.columns = columns;
    }

    /// The states `Θ` (`d × capacity`; column `p` is path `p` of the block).
    pub fn state(&self) -> &DMatrix<f64> {
        &self.theta
    }

    /// Mutable states (to set initial conditions).
    pub fn state_mut(&mut self) -> &mut DMatrix<f64> {
        &mut self.theta
    }
}

impl<'a, M: GeneralizedLinearModel> BatchedSgdSde<'a, M> {
    /// The batched form of `sde`.
    ///
    /// # Errors
    /// [`Error::Incompatible`] if `sde` was not built from a finite data set, uses the
    /// second-order modified equation, or its model has a target dimension other than 1.
    pub fn new(sde: &'a SgdSde<'a, M>) -> Result<Self> {
        let incompatible = |reason: IncompatibleReason| Error::Incompatible {
            scheme: "batched_euler_maruyama",
            reason,
        };
        let data = sde
            .dataset()
            .ok_or_else(|| incompatible(IncompatibleReason::NeedsFiniteData))?;
        if sde.config().order != ModifiedEquation::First {
            return Err(incompatible(IncompatibleReason::FirstOrderOnly));
        }
        if data.target_dim() != 1 {
            return Err(incompatible(IncompatibleReason::NeedsScalarTargets));
        }
        let inputs = data.inputs();
        let (n, d) = inputs.shape();
        let inputs_t = inputs.transpose();
        Ok(BatchedSgdSde {
            sde,
            n,
            d,
            targets: data.targets().column(0).into_owned(),
            xt_panels: packed::pack_columns(inputs_t.as_slice(), d, n),
            x_panels: packed::pack_columns(inputs.as_slice(), n, d),
            kernel: Kernel::detect(),
        })
    }

    /// The SDE being stepped.
    pub fn sde(&self) -> &'a SgdSde<'a, M> {
        self.sde
    }

    /// Parameter dimension `d`.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Buffers for blocks of up to `capacity` paths (the only allocation), stepping all
    /// columns.
    pub fn block(&self, capacity: usize) -> SgdSdeBlock {
        let rows = capacity.div_ceil(8) * 8;
        SgdSdeBlock {
            columns: 0..capacity,
            theta: DMatrix::zeros(self.d, capacity),
            panels: packed::panels(capacity),
            theta_t: vec![0.0; rows * self.d],
            w: vec![0.0; rows * self.n],
            beta: vec![0.0; rows],
            tile: vec![0.0; NR * packed::MR_MAX],
            u: vec![0.0; self.d.div_ceil(NR) * NR * packed::MR_MAX],
            lanes: NormalLanes::new(),
        }
    }

    /// One Euler–Maruyama step of size `h` at time `t` for the block's columns; column `p`
    /// draws `ΔW_p = √h ξ` from `rngs[p]`, or has `ΔW_p = 0` if `rngs[p]` is `None` (a
    /// padding column). Allocates nothing.
    ///
    /// # Panics
    /// If `rngs` is shorter than the block's capacity.
    pub fn euler_maruyama_step(
        &self,
        block: &mut SgdSdeBlock,
        t: f64,
        h: f64,
        rngs: &mut [Option<Xoshiro256PlusPlus>],
    ) {
        // the element-wise loops (packing, W, the update) compiled for the kernel's vectors
        self.kernel.vectorised(Step {
            batched: self,
            block,
            t,
            h,
            rngs,
        })
    }

    #[inline(always)]
    fn step(&self, block: &mut SgdSdeBlock, t: f64, h: f64, rngs: &mut [Option<Xoshiro256PlusPlus>]) {
        let cols = block.columns.clone();
        let cap = block.capacity();
        assert!(rngs.len() >= cols.end, "one generator slot per column");
        let (n, d) = (self.n, self.d);
        let sqrt_h = h.sqrt();
        let inv_n = 1.0 / n as f64;
        // Ω_ip = α ΔW_ip − β_p with α = σ/√N, β_p = (h + α Σ_i ΔW_ip)/N
        let alpha = self.sde.noise_scale(t) * inv_n.sqrt();
        let decay = 2.0 * h * self.sde.config().weight_decay;
        let model = self.sde.model();
        let targets = self.targets.as_slice();
        let SgdSdeBlock {
            theta,
            panels,
            theta_t,
            w,
            beta,
            tile,
            u,
            lanes,
            ..
        } = block;
        let theta = theta.as_mut_slice();
        for &(start, width) in panels.iter() {
            if start >= cols.end || start + width <= cols.start {
                continue;
            }
            // Θᵀ and ΔW of the panel's columns, in panel order
            let theta_t = &mut theta_t[start * d..(start + width) * d];
            let w = &mut w[start * n..(start + width) * n];
            for lane in 0..width {
                let p = start + lane;
                for f in 0..d {
                    theta_t[f * width + lane] = if p < cap { theta[p * d + f] } else { 0.0 };
                }
            }
            // ΔW, eight paths at a time, each from its own generator
            for group in (0..width).step_by(LANES) {
                let mut scale = [0.0; LANES];
                let mut drawing = [false; LANES];
                for l in 0..LANES {
                    let p = start + group + l;
                    let rng = rngs.get(p).and_then(Option::as_ref).filter(|_| cols.contains(&p));
                    drawing[l] = rng.is_some();
                    scale[l] = if drawing[l] { sqrt_h } else { 0.0 };
                    lanes.set(l, rng);
                }
                let mut sums = [0.0; LANES];
                lanes.fill_with(self.kernel, &scale, &mut w[group..], width, n, Some(&mut sums));
                for (l, sum) in sums.iter().enumerate() {
                    let p = start + group + l;
                    if drawing[l] {
                        rngs[p] = Some(lanes.get(l));
                    }
                    beta[p] = (h + alpha * sum) * inv_n;
                }
            }
            let beta = &beta[start..start + width];
            // Zᵀ = Θᵀ Xᵀ, tile by tile; W = Ω ∘ s(Z, y) in place of ΔW
            for (q, xt) in self.xt_panels.chunks_exact(d * NR).enumerate() {
                let tile = &mut tile[..NR * width];
                tile.fill(0.0);
                self.kernel.tile(width, d, theta_t, xt, tile);
                for (c, z) in tile.chunks_exact(width).enumerate().take(n - q * NR) {
                    let i = q * NR + c;
                    let y = targets[i];
                    let row = &mut w[i * width..(i + 1) * width];
                    for ((wv, &z), &b) in row.iter_mut().zip(z).zip(beta) {
                        *wv = (alpha * *wv - b) * model.loss_derivative(z, y);
                    }
                }
            }
            // Uᵀ = Wᵀ X over blocks of K_BLOCK samples (the block of W stays in L1 cache
            // across the feature panels; each tile carries its sums to the next block,
            // so every output is still one fma chain over i = 0..N)
            let feature_panels = d.div_ceil(NR);
            let u = &mut u[..feature_panels * NR * width];
            u.fill(0.0);
            for i0 in (0..n).step_by(K_BLOCK) {
                let k = K_BLOCK.min(n - i0);
                let w = &w[i0 * width..(i0 + k) * width];
                for (x, tile) in self
                    .x_panels
                    .chunks_exact(n * NR)
                    .zip(u.chunks_exact_mut(NR * width))
                {
                    self.kernel.tile(width, k, w, &x[i0 * NR..(i0 + k) * NR], tile);
                }
            }
            // θ_p ← θ_p − 2hγθ_p + u_p for the stepped columns
            for (q, tile) in u.chunks_exact(NR * width).enumerate() {
                for (c, u) in tile.chunks_exact(width).enumerate().take(d - q * NR) {
                    let f = q * NR + c;
                    for (lane, &u) in u.iter().enumerate() {
                        let p = start + lane;
                        if cols.contains(&p) {
                            let v = &mut theta[p * d + f];
                            *v = *v - decay * *v + u;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::LinearRegression;
    use crate::rng::{SeedTree, Stream};
    use crate::sgd::SgdConfig;

    #[test]
    fn every_kernel_steps_to_the_same_bits() {
        let d = 11;
        let model =
            LinearRegression::new(DVector::from_element(d, 0.5), DMatrix::identity(d, d), 0.4).unwrap();
        let data = model.dataset(37, 2).unwrap();
        let sde = SgdSde::finite(&model, &data, SgdConfig::new(0.05, 4).with_weight_decay(0.02)).unwrap();
        let mut reference: Option<Vec<u64>> = None;
        for kernel in Kernel::available() {
            let mut batched = BatchedSgdSde::new(&sde).unwrap();
            batched.kernel = kernel;
            let mut block = batched.block(30);
            block.set_columns(1..29);
            block.state_mut().fill(0.3);
            let seeds = SeedTree::new(8);
            let mut rngs: Vec<_> = (0..30)
                .map(|p| (p != 4).then(|| seeds.rng(p, Stream::Brownian)))
                .collect();
            for k in 0..20 {
                batched.euler_maruyama_step(&mut block, 0.05 * k as f64, 0.05, &mut rngs);
            }
            let bits: Vec<u64> = block.state().iter().map(|v| v.to_bits()).collect();
            match &reference {
                None => reference = Some(bits),
                Some(r) => assert!(*r == bits, "{kernel:?} differs"),
            }
        }
    }
}
