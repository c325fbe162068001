//! Euler–Maruyama for the finite-data SGD-SDE over a block of paths at once.
//!
//! For a model whose per-sample gradient is a scalar times the input,
//! `∇ℓ(θ; x, y) = s(θᵀx, y) x` (a [`GeneralizedLinearModel`]), one step of `P` paths
//! with states `Θ = [θ_1 … θ_P]` (`d × P`), data `X` (`N × d`, rows `x_iᵀ`) and noise
//! `Ξ = [ξ_1 … ξ_P]` (`N × P`, `ξ_p = √h · N(0, I_N)`) is two matrix–matrix products
//! instead of `2P` matrix–vector products (THEORY §1):
//!
//! ```text
//! Z = X Θ                                   (N × P: all residual arguments θ_pᵀ x_i)
//! S_ip = s(Z_ip, y_i),   W_ip = Ξ_ip S_ip
//! [Σ_i g_i | Σ_i ξ_i g_i] = Xᵀ [S | W]       (d × 2P)
//! θ_p' = θ_p − h(ḡ_p + 2γθ_p) + sqrt(η c_B) (Σ_i ξ_ip g_i − (Σ_i ξ_ip) ḡ_p)/√N
//! ```
//!
//! When the model declares `s(z, y) = a z + c y`
//! ([`GeneralizedLinearModel::affine_loss_derivative`]; linear regression), the first
//! column block is not needed: `Σ_i g_i = a XᵀX Θ + c Xᵀy` with `XᵀX` and `Xᵀy` formed
//! once, so a step is `X Θ`, `Xᵀ W` and `(XᵀX) Θ`: `4dN + 2d²` flops per path instead of
//! `6dN`.
//!
//! The per-sample work is the same as [`SgdSde`]'s fused
//! [`Sde::drift_and_diffusion`](crate::sde::Sde::drift_and_diffusion); only the summation
//! order (and, for an affine `s`, the grouping of the mean gradient) differs, so the
//! states agree with the per-path route to rounding. Path `p`'s
//! increments come from its own generator, drawn in the order
//! [`IncrementStream`](crate::brownian::IncrementStream) draws them.

use super::config::ModifiedEquation;
use super::model::Model;
use super::sde::SgdSde;
use crate::error::{Error, Result};
use crate::rng::Xoshiro256PlusPlus;
use nalgebra::{DMatrix, DVector};
use rand::RngExt;
use rand_distr::StandardNormal;

/// A model whose per-sample gradient is `∇ℓ(θ; x, y) = s(θᵀx, y) · x`, with `s = ∂ℓ/∂z`
/// at the linear predictor `z = θᵀx` (linear and logistic regression, GLMs): the shape the
/// batched SGD-SDE step needs.
pub trait GeneralizedLinearModel: Model {
    /// `s(z, y) = ∂ℓ/∂z` at `z = θᵀx` for the (scalar) target `y`.
    fn loss_derivative(&self, z: f64, y: f64) -> f64;

    /// Declares `s(z, y) = a z + c y` by returning `Some((a, c))` (linear regression:
    /// `(2, −2)`). The mean gradient is then affine in `θ`,
    /// `ḡ = (a XᵀX θ + c Xᵀy)/N`, and the batched step takes it from the precomputed
    /// `XᵀX` and `Xᵀy` (`2d²` flops per path instead of `2dN`). Default `None`.
    fn affine_loss_derivative(&self) -> Option<(f64, f64)> {
        None
    }
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
    inputs: DMatrix<f64>,
    inputs_t: DMatrix<f64>,
    targets: DVector<f64>,
    affine: Option<AffineGradient>,
}

/// `ḡ(θ) = (a XᵀX θ + c Xᵀy)/N` for a model with `s(z, y) = a z + c y`.
struct AffineGradient {
    a: f64,
    c: f64,
    gram: DMatrix<f64>,
    xty: DVector<f64>,
}

/// Fewest columns a step computes: below this nalgebra multiplies without
/// `matrixmultiply`, with a different summation order (see [`SgdSdeBlock::set_columns`]).
const MIN_COLUMNS: usize = 6;

/// The states and buffers of a block of at most `capacity` paths, one per column.
#[derive(Debug, Clone)]
pub struct SgdSdeBlock {
    columns: std::ops::Range<usize>,
    theta: DMatrix<f64>,
    xi: DMatrix<f64>,
    xi_sum: Vec<f64>,
    z: DMatrix<f64>,
    /// `[S | W]` (`N × 2·capacity`); only `W` with an affine gradient.
    sw: DMatrix<f64>,
    /// `[Σ_i g_i | Σ_i ξ_i g_i]` (`d × 2·capacity`); with an affine gradient, `XᵀXΘ`
    /// takes the place of `Σ_i g_i`.
    g: DMatrix<f64>,
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

    /// Steps the columns `columns` (widened, within the capacity, to at least 6 so that
    /// every step uses the same matrix-product kernel: a column's result then depends only
    /// on its own state and generator, never on which other columns are in the block).
    ///
    /// # Panics
    /// If `columns` reaches past the capacity.
    pub fn set_columns(&mut self, columns: std::ops::Range<usize>) {
        let cap = self.capacity();
        assert!(columns.end <= cap, "block capacity {cap} exceeded");
        let start = columns.start.min(cap.saturating_sub(MIN_COLUMNS));
        let end = columns.end.max((start + MIN_COLUMNS).min(cap));
        self.columns = start..end;
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
        let incompatible = |reason: &str| Error::Incompatible {
            scheme: "batched_euler_maruyama",
            reason: reason.into(),
        };
        let data = sde
            .dataset()
            .ok_or_else(|| incompatible("the batched step needs a finite data set"))?;
        if sde.config().order != ModifiedEquation::First {
            return Err(incompatible(
                "the batched step implements the first-order equation only",
            ));
        }
        if data.target_dim() != 1 {
            return Err(incompatible("the batched step needs scalar targets"));
        }
        let inputs = data.inputs();
        let inputs_t = inputs.transpose();
        let targets = data.targets().column(0).into_owned();
        let affine = sde.model().affine_loss_derivative().map(|(a, c)| AffineGradient {
            a,
            c,
            gram: &inputs_t * &inputs,
            xty: &inputs_t * &targets,
        });
        Ok(BatchedSgdSde {
            sde,
            inputs,
            inputs_t,
            targets,
            affine,
        })
    }

    /// The SDE being stepped.
    pub fn sde(&self) -> &'a SgdSde<'a, M> {
        self.sde
    }

    /// Parameter dimension `d`.
    pub fn dim(&self) -> usize {
        self.inputs.ncols()
    }

    /// Buffers for blocks of up to `capacity` paths (the only allocation), stepping all
    /// columns.
    pub fn block(&self, capacity: usize) -> SgdSdeBlock {
        let (n, d) = self.inputs.shape();
        SgdSdeBlock {
            columns: 0..capacity,
            theta: DMatrix::zeros(d, capacity),
            xi: DMatrix::zeros(n, capacity),
            xi_sum: vec![0.0; capacity],
            z: DMatrix::zeros(n, capacity),
            sw: DMatrix::zeros(n, 2 * capacity),
            g: DMatrix::zeros(d, 2 * capacity),
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
        let cols = block.columns.clone();
        let (c0, q) = (cols.start, cols.len());
        assert!(rngs.len() >= cols.end, "one generator slot per column");
        let (n, d) = self.inputs.shape();
        let sqrt_h = h.sqrt();
        let xi_all = block.xi.as_mut_slice();
        for p in cols.clone() {
            let column = &mut xi_all[p * n..(p + 1) * n];
            let mut sum = 0.0;
            match rngs[p].as_mut() {
                Some(rng) => {
                    for w in column.iter_mut() {
                        *w = sqrt_h * rng.sample::<f64, _>(StandardNormal);
                        sum += *w;
                    }
                }
                None => column.fill(0.0),
            }
            block.xi_sum[p] = sum;
        }
        block
            .z
            .columns_mut(c0, q)
            .gemm(1.0, &self.inputs, &block.theta.columns(c0, q), 0.0);
        let model = self.sde.model();
        let targets = self.targets.as_slice();
        // [S | W] (or W alone with an affine gradient): columns are contiguous slices
        let w_offset = if self.affine.is_some() { 0 } else { q };
        {
            let (z, xi, sw) = (block.z.as_slice(), block.xi.as_slice(), block.sw.as_mut_slice());
            let (s_part, w_part) = sw.split_at_mut(w_offset * n);
            for j in 0..q {
                let p = c0 + j;
                let (zc, xc) = (&z[p * n..(p + 1) * n], &xi[p * n..(p + 1) * n]);
                let wc = &mut w_part[j * n..(j + 1) * n];
                if w_offset == 0 {
                    for (((w, &z), &y), &x) in wc.iter_mut().zip(zc).zip(targets).zip(xc) {
                        *w = x * model.loss_derivative(z, y);
                    }
                } else {
                    let sc = &mut s_part[j * n..(j + 1) * n];
                    for ((((s, w), &z), &y), &x) in
                        sc.iter_mut().zip(wc.iter_mut()).zip(zc).zip(targets).zip(xc)
                    {
                        *s = model.loss_derivative(z, y);
                        *w = x * *s;
                    }
                }
            }
        }
        let products = if self.affine.is_some() { q } else { 2 * q };
        block
            .g
            .columns_mut(0, products)
            .gemm(1.0, &self.inputs_t, &block.sw.columns(0, products), 0.0);
        // column j of `g` holds Σ_i ξ_i g_i at `w_col(j)`, and the sum or XᵀXθ at `j`
        if let Some(affine) = &self.affine {
            block
                .g
                .columns_mut(q, q)
                .gemm(1.0, &affine.gram, &block.theta.columns(c0, q), 0.0);
        }
        let (weighted_at, summed_at) = if self.affine.is_some() { (0, q) } else { (q, 0) };
        let inv_n = 1.0 / n as f64;
        let inv_sqrt_n = inv_n.sqrt();
        let scale = self.sde.noise_scale(t);
        let gamma = self.sde.config().weight_decay;
        let g = block.g.as_slice();
        let theta = block.theta.as_mut_slice();
        for j in 0..q {
            let p = c0 + j;
            let xi_sum = block.xi_sum[p];
            let weighted = &g[(weighted_at + j) * d..(weighted_at + j + 1) * d];
            let summed = &g[(summed_at + j) * d..(summed_at + j + 1) * d];
            let column = &mut theta[p * d..(p + 1) * d];
            for k in 0..d {
                let mean = match &self.affine {
                    Some(affine) => (affine.a * summed[k] + affine.c * affine.xty[k]) * inv_n,
                    None => summed[k] * inv_n,
                };
                let diffusion = (weighted[k] - xi_sum * mean) * inv_sqrt_n * scale;
                let drift = -(2.0 * gamma * column[k] + mean);
                column[k] = column[k] + h * drift + diffusion;
            }
        }
    }
}
