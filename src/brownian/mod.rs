//! Brownian paths: where the randomness of a solve comes from.
//!
//! A [`BrownianPath`] fills an [`Increment`] — the step `h`, the increment
//! `ΔW ~ N(0, h I_m)` and, when a scheme needs it, the Lévy area `A_{jk}` — one step
//! at a time. Three implementations:
//!
//! - [`IncrementStream`]: consecutive increments drawn on the fly, `O(1)` memory; the fast
//!   path for ensembles.
//! - [`BrownianGrid`]: a stored dyadic path; [`coarsen`](BrownianGrid::coarsen) is exact
//!   (and carries Lévy areas by Chen's relation), [`refine`](BrownianGrid::refine) inserts
//!   midpoints by Brownian bridge. One path solved at `h, 2h, 4h, …` is what
//!   strong-error measurements need (THEORY §8).
//! - [`BrownianTree`]: a virtual Brownian tree keyed by the seed tree: `W(s)` at any time,
//!   in any query order, with the same bits and `O(log)` memory; what adaptive steps with
//!   rejections need (THEORY §9).
//!
//! The first two can also carry the time integrals `I_{(j,0)}` (the space-time Lévy area) that
//! strong order-1.5 schemes need, consistently: coarsening sums them exactly,
//! `I_{(j,0)}[s,u] = I_{(j,0)}[s,t] + I_{(j,0)}[t,u] + (u − t)(W_j(t) − W_j(s))`, and
//! refinement draws the midpoint and both halves from their exact conditional law given
//! `(ΔW, I_{(j,0)})` ([`BrownianGrid::refine`]).

mod grid;
pub mod levy;
mod stream;
mod tree;

pub use grid::{BrownianGrid, GridPath};
pub use levy::{LevyArea, LevyMethod};
pub use stream::IncrementStream;
pub use tree::{BrownianTree, DEFAULT_TREE_DEPTH, MAX_TREE_DEPTH};

use crate::error::Result;
use nalgebra::{DMatrix, DVector};

/// One step of a Brownian path.
///
/// `area`, when present, is the antisymmetric matrix of Lévy areas
/// `A_{jk} = ½(∫ (W_j − W_j(t)) dW_k − ∫ (W_k − W_k(t)) dW_j)` over the step, so that the
/// Itô iterated integral is `I_{(j,k)} = ½ΔW_jΔW_k − ½hδ_{jk} + A_{jk}`.
///
/// `time_integral`, when present, holds `I_{(j,0)} = ∫_t^{t+h} (W_j(s) − W_j(t)) ds`
/// (equivalently the space-time Lévy area `H_j = I_{(j,0)}/h − ΔW_j/2 ~ N(0, h/12)`,
/// independent of `ΔW`), which strong order-1.5 schemes read; `I_{(0,j)} = hΔW_j − I_{(j,0)}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Increment {
    /// Step size `h`; set by the driver before asking the path for the increment.
    pub h: f64,
    /// `ΔW ∈ R^m`.
    pub dw: DVector<f64>,
    /// Lévy areas (`m × m`, antisymmetric), when requested.
    pub area: Option<DMatrix<f64>>,
    /// `I_{(j,0)} ∈ R^m`, when requested.
    pub time_integral: Option<DVector<f64>>,
}

impl Increment {
    /// An increment of noise dimension `m` without Lévy areas.
    pub fn new(noise_dim: usize) -> Self {
        Increment {
            h: 0.0,
            dw: DVector::zeros(noise_dim),
            area: None,
            time_integral: None,
        }
    }

    /// The same increment also carrying `I_{(j,0)}` (for strong order-1.5 schemes).
    pub fn and_time_integral(mut self) -> Self {
        self.time_integral = Some(DVector::zeros(self.dw.len()));
        self
    }

    /// An increment of noise dimension `m` that also carries Lévy areas.
    pub fn with_area(noise_dim: usize) -> Self {
        Increment {
            area: Some(DMatrix::zeros(noise_dim, noise_dim)),
            ..Increment::new(noise_dim)
        }
    }

    /// The Itô iterated integral `I_{(j,k)} = ∫∫ dW_j dW_k` over the step
    /// (the area is taken as zero when absent).
    pub fn iterated_integral(&self, j: usize, k: usize) -> f64 {
        let sym = self.symmetric_integral(j, k);
        match &self.area {
            Some(a) if j != k => sym + a[(j, k)],
            _ => sym,
        }
    }

    /// The part of `I_(j,k)` that the increments determine, `½(ΔW_j ΔW_k − δ_jk h)`:
    /// all of it for `j = k`, and what Milstein uses when the Lévy areas are dropped
    /// (exact for commutative noise, where they cancel).
    #[inline]
    pub fn symmetric_integral(&self, j: usize, k: usize) -> f64 {
        let half = 0.5 * self.dw[j] * self.dw[k];
        if j == k {
            half - 0.5 * self.h
        } else {
            half
        }
    }
}

/// A source of Brownian increments, consumed one step at a time.
pub trait BrownianPath {
    /// Noise dimension `m`.
    fn noise_dim(&self) -> usize;
    /// Whether the path can fill [`Increment::area`].
    fn provides_area(&self) -> bool;
    /// Whether the path can fill [`Increment::time_integral`]. Default `false`.
    fn provides_time_integral(&self) -> bool {
        false
    }
    /// Fills `inc.dw` (and `inc.area`, `inc.time_integral` if they are `Some`) for the
    /// next step of size `inc.h`.
    ///
    /// # Errors
    /// [`crate::Error::Brownian`] if the path is exhausted, the step does not match a
    /// stored grid, or areas are requested from a path that has none.
    fn next(&mut self, inc: &mut Increment) -> Result<()>;
}
