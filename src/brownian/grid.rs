//! A stored Brownian path on a uniform grid, coarsened exactly and refined by bridge.

use super::{BrownianPath, Increment, LevyArea};
use crate::error::{check_positive, Error, Result};
use crate::rng::{standard_normal, SeedTree, Stream};
use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

/// A Brownian path `W ∈ R^m` stored at `t_k = t0 + k·dt`, `k = 0..=n`, optionally with
/// the Lévy area of every step.
///
/// The values `W(t_k)` are stored (not increments), so [`coarsen`](Self::coarsen)
/// keeps every other point and `grid.refine(rng).coarsen()` returns exactly `grid`'s
/// values. Coarsening combines areas by Chen's relation
/// `A[s,u] = A[s,t] + A[t,u] + ½(ΔW¹_j ΔW²_k − ΔW¹_k ΔW²_j)`, which is exact, so a path
/// generated at the finest level carries consistent areas at every coarser level.
///
/// ```
/// use noether_sde::brownian::BrownianGrid;
/// use noether_sde::rng::SeedTree;
/// let fine = BrownianGrid::sample(&SeedTree::new(3), 0, 1, 0.0, 1.0, 8, None).unwrap();
/// let coarse = fine.coarsen().unwrap();
/// assert_eq!(coarse.steps(), 4);
/// assert_eq!(coarse.w_end(), fine.w_end());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BrownianGrid {
    t0: f64,
    dt: f64,
    w: DMatrix<f64>,
    area: Option<DMatrix<f64>>,
    /// `I_{(j,0)}` of every step (`m × n`), when sampled.
    time_integral: Option<DMatrix<f64>>,
}

impl BrownianGrid {
    /// Samples path `path` of `seeds` on `[t0, t1]` with `steps` equal steps; with
    /// `levy`, also the Lévy area of each step (from the path's `Levy` stream).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `steps = 0`, `noise_dim = 0`, `t1 <= t0` or
    /// non-finite times; [`Error::DimensionMismatch`] if `levy` has another noise dimension.
    pub fn sample(
        seeds: &SeedTree,
        path: u64,
        noise_dim: usize,
        t0: f64,
        t1: f64,
        steps: usize,
        levy: Option<&mut LevyArea>,
    ) -> Result<Self> {
        if steps == 0 {
            return Err(Error::invalid("steps", steps, "must be at least 1"));
        }
        if noise_dim == 0 {
            return Err(Error::invalid("noise_dim", noise_dim, "must be at least 1"));
        }
        if !t0.is_finite() {
            return Err(Error::invalid("t0", t0, "must be finite"));
        }
        check_positive("t1 - t0", t1 - t0)?;
        let dt = (t1 - t0) / steps as f64;
        let sqrt_dt = dt.sqrt();
        let mut rng = seeds.rng(path, Stream::Brownian);
        let mut w = DMatrix::zeros(noise_dim, steps + 1);
        for k in 0..steps {
            for j in 0..noise_dim {
                w[(j, k + 1)] = w[(j, k)] + sqrt_dt * standard_normal(&mut rng);
            }
        }
        let area = match levy {
            None => None,
            Some(levy) => {
                if levy.noise_dim() != noise_dim {
                    return Err(Error::DimensionMismatch {
                        what: "Lévy-area noise dimension",
                        expected: noise_dim,
                        got: levy.noise_dim(),
                    });
                }
                let mut lrng = seeds.rng(path, Stream::Levy);
                let mut areas = DMatrix::zeros(noise_dim * noise_dim, steps);
                let mut dw = DVector::zeros(noise_dim);
                let mut a = DMatrix::zeros(noise_dim, noise_dim);
                for k in 0..steps {
                    for j in 0..noise_dim {
                        dw[j] = w[(j, k + 1)] - w[(j, k)];
                    }
                    levy.sample_xoshiro(dt, &dw, &mut a, &mut lrng);
                    areas.column_mut(k).copy_from_slice(a.as_slice());
                }
                Some(areas)
            }
        };
        Ok(BrownianGrid {
            t0,
            dt,
            w,
            area,
            time_integral: None,
        })
    }

    /// The same path also carrying the time integral `I_{(j,0)} = dt(ΔW_j/2 + H_j)` of
    /// every step, the space-time Lévy areas `H_j ~ N(0, dt/12)` (independent of the
    /// increments) drawn from path `path`'s [`Stream::SpaceTime`] generator, step by step
    /// and noise by noise. Sample at the finest level and [`coarsen`](Self::coarsen):
    /// coarser levels then carry the exact time integrals of the same path.
    pub fn with_space_time_area(mut self, seeds: &SeedTree, path: u64) -> Self {
        let (m, n) = (self.noise_dim(), self.steps());
        let mut rng = seeds.rng(path, Stream::SpaceTime);
        let scale = (self.dt / 12.0).sqrt();
        let mut integral = DMatrix::zeros(m, n);
        for k in 0..n {
            for j in 0..m {
                let dw = self.w[(j, k + 1)] - self.w[(j, k)];
                integral[(j, k)] = self.dt * (0.5 * dw + scale * standard_normal(&mut rng));
            }
        }
        self.time_integral = Some(integral);
        self
    }

    /// Whether the time integrals `I_{(j,0)}` are stored.
    pub fn has_time_integral(&self) -> bool {
        self.time_integral.is_some()
    }

    /// `I_{(j,0)}` over step `k`, if stored.
    pub fn time_integral(&self, k: usize) -> Option<DVector<f64>> {
        self.time_integral.as_ref().map(|t| t.column(k).into_owned())
    }

    /// Number of steps `n`.
    pub fn steps(&self) -> usize {
        self.w.ncols() - 1
    }

    /// Step size.
    pub fn dt(&self) -> f64 {
        self.dt
    }

    /// Start time.
    pub fn t0(&self) -> f64 {
        self.t0
    }

    /// End time `t0 + n·dt`.
    pub fn t1(&self) -> f64 {
        self.t0 + self.steps() as f64 * self.dt
    }

    /// Noise dimension `m`.
    pub fn noise_dim(&self) -> usize {
        self.w.nrows()
    }

    /// Whether Lévy areas are stored.
    pub fn has_area(&self) -> bool {
        self.area.is_some()
    }

    /// `W(t_k) − W(t_0)` (the path starts at 0).
    pub fn w(&self, k: usize) -> DVector<f64> {
        self.w.column(k).into_owned()
    }

    /// `W(t_n)`.
    pub fn w_end(&self) -> DVector<f64> {
        self.w(self.steps())
    }

    /// The same path with half as many steps, exactly (areas by Chen's relation).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the number of steps is odd.
    pub fn coarsen(&self) -> Result<Self> {
        let n = self.steps();
        if !n.is_multiple_of(2) {
            return Err(Error::invalid(
                "steps",
                n,
                "only an even number of steps can be coarsened",
            ));
        }
        let m = self.noise_dim();
        let w = DMatrix::from_fn(m, n / 2 + 1, |j, k| self.w[(j, 2 * k)]);
        let area = self.area.as_ref().map(|fine| {
            DMatrix::from_fn(m * m, n / 2, |idx, k| {
                // column-major m × m: idx = row + m·col
                let (j, l) = (idx % m, idx / m);
                let (a, b) = (2 * k, 2 * k + 1);
                let d1 = |i: usize| self.w[(i, a + 1)] - self.w[(i, a)];
                let d2 = |i: usize| self.w[(i, b + 1)] - self.w[(i, b)];
                fine[(idx, a)] + fine[(idx, b)] + 0.5 * (d1(j) * d2(l) - d1(l) * d2(j))
            })
        });
        // I_(j,0)[s,u] = I_(j,0)[s,t] + I_(j,0)[t,u] + (u − t)(W_j(t) − W_j(s))
        let time_integral = self.time_integral.as_ref().map(|fine| {
            DMatrix::from_fn(m, n / 2, |j, k| {
                let (a, b) = (2 * k, 2 * k + 1);
                fine[(j, a)] + fine[(j, b)] + self.dt * (self.w[(j, a + 1)] - self.w[(j, a)])
            })
        });
        Ok(BrownianGrid {
            t0: self.t0,
            dt: 2.0 * self.dt,
            w,
            area,
            time_integral,
        })
    }

    /// The same path with twice as many steps: each midpoint is drawn from the
    /// Brownian bridge, `W(t + dt/2) = (W(t) + W(t + dt))/2 + √(dt/4) ξ`.
    ///
    /// With stored time integrals, the midpoint and both halves' `I_{(j,0)}` are drawn
    /// from their exact conditional law given the step's `(ΔW, H)`,
    /// `H = I_{(j,0)}/dt − ΔW/2`: with `D = ΔW₁ − ΔW₂` and the halves' space-time areas
    /// `H₁, H₂` (all independent, `D ~ N(0, dt)`, `H_i ~ N(0, dt/24)`), the coarse area is
    /// `H = D/4 + (H₁ + H₂)/2`, so by Gaussian conditioning
    ///
    /// ```text
    /// D = 3H + (√dt/2) ξ₁,   H₁ + H₂ = H/2 − (√dt/4) ξ₁,   H₁ − H₂ = √(dt/12) ξ₂,
    /// W(t + dt/2) = W(t) + (ΔW + D)/2 = (W(t) + W(t + dt))/2 + 3H/2 + (√dt/4) ξ₁,
    /// ```
    ///
    /// and [`coarsen`](Self::coarsen) returns the stored values (to rounding).
    ///
    /// Stored Lévy areas are dropped (refining them would need the area bridge); sample
    /// at the finest level and [`coarsen`](Self::coarsen) when areas are needed.
    pub fn refine<R: Rng + ?Sized>(&self, rng: &mut R) -> Self {
        let n = self.steps();
        let m = self.noise_dim();
        let half = (0.25 * self.dt).sqrt();
        let mut w = DMatrix::zeros(m, 2 * n + 1);
        for k in 0..=n {
            w.column_mut(2 * k).copy_from(&self.w.column(k));
        }
        let Some(coarse) = self.time_integral.as_ref() else {
            for k in 0..n {
                for j in 0..m {
                    let mid = 0.5 * (self.w[(j, k)] + self.w[(j, k + 1)]);
                    w[(j, 2 * k + 1)] = mid + half * rng.sample::<f64, _>(StandardNormal);
                }
            }
            return BrownianGrid {
                t0: self.t0,
                dt: 0.5 * self.dt,
                w,
                area: None,
                time_integral: None,
            };
        };
        let fine_dt = 0.5 * self.dt;
        let sqrt_dt = self.dt.sqrt();
        let mut integral = DMatrix::zeros(m, 2 * n);
        for k in 0..n {
            for j in 0..m {
                let dw = self.w[(j, k + 1)] - self.w[(j, k)];
                let h = coarse[(j, k)] / self.dt - 0.5 * dw;
                let (xi1, xi2): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
                let d = 3.0 * h + 0.5 * sqrt_dt * xi1;
                let sum = 0.5 * h - 0.25 * sqrt_dt * xi1;
                let difference = (self.dt / 12.0).sqrt() * xi2;
                let (dw1, dw2) = (0.5 * (dw + d), 0.5 * (dw - d));
                let (h1, h2) = (0.5 * (sum + difference), 0.5 * (sum - difference));
                w[(j, 2 * k + 1)] = self.w[(j, k)] + dw1;
                integral[(j, 2 * k)] = fine_dt * (0.5 * dw1 + h1);
                integral[(j, 2 * k + 1)] = fine_dt * (0.5 * dw2 + h2);
            }
        }
        BrownianGrid {
            t0: self.t0,
            dt: fine_dt,
            w,
            area: None,
            time_integral: Some(integral),
        }
    }

    /// A reader that hands out this grid's increments in order.
    pub fn path(&self) -> GridPath<'_> {
        GridPath { grid: self, next: 0 }
    }
}

/// Reads a [`BrownianGrid`] step by step (see [`BrownianGrid::path`]).
#[derive(Debug, Clone)]
pub struct GridPath<'a> {
    grid: &'a BrownianGrid,
    next: usize,
}

impl BrownianPath for GridPath<'_> {
    fn noise_dim(&self) -> usize {
        self.grid.noise_dim()
    }

    fn provides_area(&self) -> bool {
        self.grid.has_area()
    }

    fn provides_time_integral(&self) -> bool {
        self.grid.has_time_integral()
    }

    fn next(&mut self, inc: &mut Increment) -> Result<()> {
        let g = self.grid;
        let k = self.next;
        if k >= g.steps() {
            return Err(Error::Brownian {
                reason: format!("grid exhausted after {} steps", g.steps()),
            });
        }
        if (inc.h - g.dt).abs() > 1e-9 * g.dt {
            return Err(Error::Brownian {
                reason: format!("step {} does not match the grid step {}", inc.h, g.dt),
            });
        }
        for j in 0..g.noise_dim() {
            inc.dw[j] = g.w[(j, k + 1)] - g.w[(j, k)];
        }
        if let Some(out) = inc.area.as_mut() {
            match &g.area {
                Some(a) => out.as_mut_slice().copy_from_slice(a.column(k).as_slice()),
                None => {
                    return Err(Error::Brownian {
                        reason: "Lévy areas requested from a grid sampled without them".into(),
                    })
                }
            }
        }
        if let Some(out) = inc.time_integral.as_mut() {
            match &g.time_integral {
                Some(t) => out.copy_from(&t.column(k)),
                None => {
                    return Err(Error::Brownian {
                        reason: "time integrals requested from a grid sampled without them \
                                 (use BrownianGrid::with_space_time_area)"
                            .into(),
                    })
                }
            }
        }
        self.next += 1;
        Ok(())
    }
}
