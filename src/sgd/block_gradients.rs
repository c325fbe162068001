//! SGD, GD and the SGD-SDE (Euler–Maruyama) of a model known only through its
//! per-sample gradients, computed for a block of parameter vectors by one call per step
//! ([`BlockGradients`]). This is the route of models defined outside Rust: the Python
//! bindings' `ns.models.Custom`, whose callback returns the `(P, N, d)` per-sample
//! gradients of the `P` paths of a block at once. THEORY §1, on a finite data set of `N`
//! samples with per-sample gradients `g_i(θ)`:
//!
//! ```text
//! SGD   θ' = (1 − 2ηγ)θ − η ĝ,             ĝ = (1/B) Σ_{i ∈ batch} g_i(θ),   t' = t + η
//! GD    θ' = (1 − 2ηγ)θ − η ḡ,             ḡ = (1/N) Σ_i g_i(θ)
//! EM    θ' = θ − h(ḡ + 2γθ) + sqrt(η c_B) (Σ_i ΔW_i g_i − (Σ_i ΔW_i) ḡ)/√N
//! ```
//!
//! Each path draws from its own generators in the per-path routes' order (mini-batches
//! from `rng(path, Batches)` as [`super::DiscreteSgd`] draws them; `ΔW = √h ξ` from
//! `rng(path, Brownian)` as [`crate::brownian::IncrementStream`] does) and the update
//! uses their operations in their order. So a [`BlockGradients`] whose rows are a
//! [`super::Model`]'s per-sample gradients on a [`super::Dataset`] gives the numbers of
//! [`super::DiscreteSgd`] and of [`super::SgdSde`] solved by
//! [`crate::scheme::EulerMaruyama`] bit for bit (tested), and a path's numbers do not
//! depend on which paths share its block as long as row `p` of the gradients depends on
//! row `p` of the parameters only.
//!
//! A path whose state leaves the divergence bound is retired (counted with its step and
//! time, as per path) and its row reset to `θ₀`, so the callback never sees non-finite
//! input. A failing callback fails every live path of its block with its error.

use super::config::{ModifiedEquation, Sampling, SgdConfig};
use crate::ensemble::{EnsembleProblem, PathObserver};
use crate::error::{check_vector, Error, Result};
use crate::observe::{out_of_bounds, Flow};
use crate::rng::{standard_normal, SeedTree, Stream, Xoshiro256PlusPlus};
use crate::scheme::TimeSpan;
use nalgebra::DVector;
use rand::RngExt;
use std::ops::Range;

/// Per-sample gradients of a model on `N` samples, for a block of parameter vectors.
pub trait BlockGradients: Sync {
    /// Parameter dimension `d`.
    fn dim(&self) -> usize;
    /// Number of samples `N` of the data set.
    fn samples(&self) -> usize;
    /// For the `P = theta.len() / d` parameter vectors `theta[p·d..(p+1)·d]`, writes
    /// `out[(p·N + i)·d + k] = ∂ℓ(θ_p; x_i)/∂θ_k` (`out.len() = P·N·d`).
    ///
    /// # Errors
    /// Whatever the evaluation reports (e.g. a failing user callback).
    fn per_sample_gradients(&self, theta: &[f64], out: &mut [f64]) -> Result<()>;
}

/// How the paths of a [`BlockSgdProblem`] advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockMethod {
    /// Mini-batch SGD with steps `η(t)`.
    Sgd,
    /// Full-batch gradient descent with steps `η(t)`.
    Gd,
    /// Euler–Maruyama for the SGD-SDE on a [`TimeSpan`].
    EulerMaruyama,
}

/// Paths of SGD, GD or the SGD-SDE of a [`BlockGradients`] model, advanced a block at a
/// time with one gradient evaluation per step for the block.
pub struct BlockSgdProblem<'a, G: ?Sized> {
    grads: &'a G,
    config: SgdConfig,
    method: BlockMethod,
    theta0: DVector<f64>,
    /// The SDE's grid (Euler–Maruyama), or `[0, t_end]` with `h = t_end` (discrete).
    span: TimeSpan,
    covariance_factor: f64,
}

impl<'a, G: BlockGradients + ?Sized> BlockSgdProblem<'a, G> {
    /// SGD (`method = Sgd`) or GD (`Gd`) from `theta0` until `t_end` (the first step at or
    /// after it), as [`super::DiscreteSgd::finite`] with [`crate::ensemble::SgdProblem`].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for invalid hyper-parameters, a model without
    /// parameters or samples, a bad `t_end` (or more than 1e12 steps), `method =
    /// EulerMaruyama`; [`Error::DimensionMismatch`] / [`Error::NonFinite`] for a bad
    /// `theta0`.
    pub fn discrete(
        grads: &'a G,
        config: SgdConfig,
        method: BlockMethod,
        theta0: DVector<f64>,
        t_end: f64,
    ) -> Result<Self> {
        if method == BlockMethod::EulerMaruyama {
            return Err(Error::invalid(
                "method",
                "euler_maruyama",
                "use BlockSgdProblem::euler_maruyama for the SDE",
            ));
        }
        if !(t_end.is_finite() && t_end > 0.0) {
            return Err(Error::invalid("t_end", t_end, "must be finite and > 0"));
        }
        let slowest = config.schedule.eta(0.0).min(config.schedule.eta(t_end));
        if t_end / slowest > 1e12 {
            return Err(Error::invalid(
                "t_end",
                t_end,
                format!("more than 1e12 steps of η ≥ {slowest:e} requested"),
            ));
        }
        Self::build(grads, config, method, theta0, TimeSpan::new(0.0, t_end, t_end)?)
    }

    /// The SGD-SDE (first-order equation) solved by Euler–Maruyama from `theta0` over
    /// `span`, as [`super::SgdSde::finite`] with [`crate::ensemble::SdeProblem`].
    ///
    /// # Errors
    /// As [`BlockSgdProblem::discrete`]; [`Error::Incompatible`] for the second-order
    /// modified equation (it needs Hessian-vector products).
    pub fn euler_maruyama(
        grads: &'a G,
        config: SgdConfig,
        theta0: DVector<f64>,
        span: TimeSpan,
    ) -> Result<Self> {
        if config.order != ModifiedEquation::First {
            return Err(Error::Incompatible {
                scheme: "euler_maruyama",
                reason: crate::error::IncompatibleReason::NeedsHessianVectorProduct,
            });
        }
        Self::build(grads, config, BlockMethod::EulerMaruyama, theta0, span)
    }

    fn build(
        grads: &'a G,
        config: SgdConfig,
        method: BlockMethod,
        theta0: DVector<f64>,
        span: TimeSpan,
    ) -> Result<Self> {
        let (d, n) = (grads.dim(), grads.samples());
        if d == 0 {
            return Err(Error::invalid("dim", 0, "the model has no parameters"));
        }
        if n == 0 {
            return Err(Error::invalid("n", 0, "a data set needs at least one sample"));
        }
        config.validate(Some(n))?;
        check_vector("theta0", &theta0, d)?;
        Ok(BlockSgdProblem {
            grads,
            config,
            method,
            theta0,
            span,
            covariance_factor: config.covariance_factor(Some(n)),
        })
    }

    /// The method.
    pub fn method(&self) -> BlockMethod {
        self.method
    }
}

/// Buffers of one worker of a [`BlockSgdProblem`] (they grow to the widest block run).
#[derive(Debug, Clone, Default)]
pub struct BlockSgdWorkspace {
    /// States, path-major (`theta[p·d + k]`).
    theta: Vec<f64>,
    /// Per-sample gradients of the block (`(p·N + i)·d + k`).
    grads: Vec<f64>,
    rngs: Vec<Xoshiro256PlusPlus>,
    /// Mini-batch permutations (sampling without replacement), `N` per path.
    permutations: Vec<usize>,
    live: Vec<bool>,
    dw: Vec<f64>,
    gradient: Vec<f64>,
    diffusion: Vec<f64>,
    column: DVector<f64>,
}

impl<G: BlockGradients + ?Sized> BlockSgdProblem<'_, G> {
    /// `ws.gradient = ĝ` (SGD) or `ḡ` (GD) of path `p` from its per-sample gradients, with
    /// [`super::DiscreteSgd`]'s draws and sums.
    fn discrete_gradient(&self, ws: &mut BlockSgdWorkspace, p: usize) {
        let (d, n) = (self.grads.dim(), self.grads.samples());
        let rows = &ws.grads[p * n * d..(p + 1) * n * d];
        let gradient = &mut ws.gradient;
        gradient.fill(0.0);
        let mut add = |i: usize| {
            for (a, &g) in gradient.iter_mut().zip(&rows[i * d..(i + 1) * d]) {
                *a += g;
            }
        };
        let count = match self.method {
            BlockMethod::Gd => {
                (0..n).for_each(&mut add);
                n
            }
            _ => {
                let rng = &mut ws.rngs[p];
                let permutation = &mut ws.permutations[p * n..(p + 1) * n];
                for k in 0..self.config.batch {
                    let i = match self.config.sampling {
                        Sampling::WithReplacement => rng.random_range(0..n),
                        Sampling::WithoutReplacement => {
                            // partial Fisher–Yates: positions 0..B become a uniform B-subset
                            let j = rng.random_range(k..n);
                            permutation.swap(k, j);
                            permutation[k]
                        }
                    };
                    add(i);
                }
                self.config.batch
            }
        };
        for a in ws.gradient.iter_mut() {
            *a /= count as f64;
        }
    }

    /// `theta_p ← θ − h(ḡ + 2γθ) + σ(t)(Σ_i ΔW_i g_i − (Σ_i ΔW_i) ḡ)/√N` with
    /// [`super::SgdSde`]'s fused pass and [`crate::scheme::EulerMaruyama`]'s update.
    fn euler_maruyama_step(&self, ws: &mut BlockSgdWorkspace, p: usize, t: f64, h: f64) {
        let (d, n) = (self.grads.dim(), self.grads.samples());
        let sqrt_h = h.sqrt();
        for w in ws.dw.iter_mut() {
            *w = sqrt_h * standard_normal(&mut ws.rngs[p]);
        }
        let rows = &ws.grads[p * n * d..(p + 1) * n * d];
        let (grad, diff) = (&mut ws.gradient, &mut ws.diffusion);
        grad.fill(0.0);
        diff.fill(0.0);
        let mut xi_sum = 0.0;
        for (g, &w) in rows.chunks_exact(d).zip(&ws.dw) {
            for ((a, b), &gk) in grad.iter_mut().zip(diff.iter_mut()).zip(g) {
                *a += gk;
                *b += w * gk;
            }
            xi_sum += w;
        }
        let inv_n = 1.0 / n as f64;
        let inv_sqrt_n = inv_n.sqrt();
        let scale = (self.config.schedule.eta(t) * self.covariance_factor).sqrt();
        let gamma = self.config.weight_decay;
        let theta = &mut ws.theta[p * d..(p + 1) * d];
        for ((x, a), b) in theta.iter_mut().zip(grad.iter_mut()).zip(diff.iter_mut()) {
            *a *= inv_n;
            *b = (*b - xi_sum * *a) * inv_sqrt_n;
            *b *= scale;
            if gamma > 0.0 {
                *a += 2.0 * gamma * *x; // ∇L_γ, as `axpy(2γ, θ, 1)`
            }
            *x = *x + h * -*a + *b;
        }
    }

    /// Retires path `p` of the block (its row back to `θ₀`) and reports `outcome`.
    fn retire<O: PathObserver>(
        &self,
        ws: &mut BlockSgdWorkspace,
        p: usize,
        path: u64,
        observer: &mut O,
        e: Error,
    ) {
        let d = self.theta0.len();
        ws.live[p] = false;
        ws.theta[p * d..(p + 1) * d].copy_from_slice(self.theta0.as_slice());
        observer.finish(path, Err(e));
    }
}

impl<G: BlockGradients + ?Sized> EnsembleProblem for BlockSgdProblem<'_, G> {
    type Workspace = BlockSgdWorkspace;

    fn dim(&self) -> usize {
        self.theta0.len()
    }

    fn time_range(&self) -> (f64, f64) {
        (self.span.t0(), self.span.t1())
    }

    fn workspace(&self) -> BlockSgdWorkspace {
        BlockSgdWorkspace {
            column: DVector::zeros(self.theta0.len()),
            ..BlockSgdWorkspace::default()
        }
    }

    fn run_block<O: PathObserver>(
        &self,
        ws: &mut BlockSgdWorkspace,
        seeds: &SeedTree,
        paths: Range<u64>,
        observer: &mut O,
    ) {
        let (d, n) = (self.grads.dim(), self.grads.samples());
        let count = (paths.end - paths.start) as usize;
        let stream = match self.method {
            BlockMethod::EulerMaruyama => Stream::Brownian,
            _ => Stream::Batches,
        };
        ws.theta.clear();
        for _ in 0..count {
            ws.theta.extend_from_slice(self.theta0.as_slice());
        }
        ws.grads.resize(count * n * d, 0.0);
        ws.rngs.clear();
        ws.rngs.extend(paths.clone().map(|path| seeds.rng(path, stream)));
        ws.permutations.clear();
        for _ in 0..count {
            ws.permutations.extend(0..n);
        }
        ws.live.clear();
        ws.live.resize(count, true);
        ws.dw.resize(n, 0.0);
        ws.gradient.resize(d, 0.0);
        ws.diffusion.resize(d, 0.0);
        let bound = observer.divergence_bound();
        let t0 = self.span.t0();
        for (p, path) in paths.clone().enumerate() {
            if out_of_bounds(self.theta0.as_slice(), bound) {
                self.retire(ws, p, path, observer, Error::Divergence { path, step: 0, t: t0 });
            } else if observer.observe(path, 0, t0, &self.theta0) == Flow::Stop {
                ws.live[p] = false;
                observer.finish(path, Ok(&self.theta0));
            }
        }
        // the time grid: the span's (EM), or `t_k = kη` / `t + η(t)` as DiscreteSgd (SGD, GD)
        let constant = match self.config.schedule {
            super::Schedule::Constant { eta } => Some(eta),
            _ => None,
        };
        let t_end = self.span.t1();
        let tolerance = 1e-9 * t_end.max(1.0);
        let mut t = t0;
        let mut k = 0usize;
        while ws.live.iter().any(|&l| l) {
            let (h, t_next) = match self.method {
                BlockMethod::EulerMaruyama if k < self.span.steps() => {
                    (self.span.step_size(k), self.span.time(k + 1))
                }
                BlockMethod::EulerMaruyama => break,
                _ if t < t_end - tolerance => {
                    let eta = self.config.schedule.eta(t);
                    (eta, constant.map_or(t + eta, |eta| (k + 1) as f64 * eta))
                }
                _ => break,
            };
            if let Err(e) = self.grads.per_sample_gradients(&ws.theta, &mut ws.grads) {
                for (p, path) in paths.clone().enumerate() {
                    if ws.live[p] {
                        self.retire(ws, p, path, observer, e.clone());
                    }
                }
                return;
            }
            for (p, path) in paths.clone().enumerate() {
                if !ws.live[p] {
                    continue;
                }
                let row = p * d..(p + 1) * d;
                if self.method == BlockMethod::EulerMaruyama {
                    self.euler_maruyama_step(ws, p, t, h);
                } else {
                    self.discrete_gradient(ws, p);
                    let decay = 1.0 - 2.0 * h * self.config.weight_decay;
                    for (x, &g) in ws.theta[row.clone()].iter_mut().zip(&ws.gradient) {
                        *x = decay * *x - h * g;
                    }
                }
                if out_of_bounds(&ws.theta[row.clone()], bound) {
                    let e = Error::Divergence {
                        path,
                        step: k + 1,
                        t: t_next,
                    };
                    self.retire(ws, p, path, observer, e);
                    continue;
                }
                if t_next < observer.next_time(path) {
                    continue;
                }
                ws.column.as_mut_slice().copy_from_slice(&ws.theta[row.clone()]);
                if observer.observe(path, k + 1, t_next, &ws.column) == Flow::Stop {
                    ws.live[p] = false;
                    observer.finish(path, Ok(&ws.column));
                    ws.theta[row].copy_from_slice(self.theta0.as_slice());
                }
            }
            t = t_next;
            k += 1;
        }
        for (p, path) in paths.enumerate() {
            if ws.live[p] {
                ws.column
                    .as_mut_slice()
                    .copy_from_slice(&ws.theta[p * d..(p + 1) * d]);
                observer.finish(path, Ok(&ws.column));
            }
        }
    }
}
