//! Welford running moments with exact merging (Chan et al.'s pairwise update).
//!
//! Merging two accumulators gives the moments of the concatenated samples; merging in
//! a fixed order gives bit-identical results however the samples were split.

use super::{Flow, Observer};
use nalgebra::{DMatrix, DVector};

/// Chan et al.'s exact pairwise update, the one moment merge of the crate: `a ← a ∪ b`
/// for `T` blocks of `k` means (`mean.len() = T k`) and `k × k` co-moment sums
/// (`m2.len() = T k²`, either layout: the update is symmetric in the two indices).
/// Returns the merged count.
///
/// ```text
/// n = n_a + n_b,  w = n_b / n,  δ = mean_b − mean_a
/// m2_a ← m2_a + (m2_b + δ δᵀ · n_a w),   mean_a ← mean_a + δ w
/// ```
///
/// The same operations in the same order wherever moments are merged ([`Welford`],
/// [`VectorMoments`], the ensemble's block tree), so a merge's bits depend only on its
/// operands.
pub(crate) fn merge_moments(
    (n_a, mean_a, m2_a): (u64, &mut [f64], &mut [f64]),
    (n_b, mean_b, m2_b): (u64, &[f64], &[f64]),
    k: usize,
) -> u64 {
    debug_assert!(mean_a.len() == mean_b.len() && m2_a.len() == m2_b.len());
    if n_b == 0 {
        return n_a;
    }
    if n_a == 0 {
        mean_a.copy_from_slice(mean_b);
        m2_a.copy_from_slice(m2_b);
        return n_b;
    }
    let n = n_a + n_b;
    let w = n_b as f64 / n as f64;
    let cross = n_a as f64 * w;
    for (tau, (mean, om)) in mean_a.chunks_mut(k).zip(mean_b.chunks(k)).enumerate() {
        let m2 = &mut m2_a[tau * k * k..(tau + 1) * k * k];
        let om2 = &m2_b[tau * k * k..(tau + 1) * k * k];
        for a in 0..k {
            let da = om[a] - mean[a];
            for b in 0..k {
                let db = om[b] - mean[b];
                m2[a * k + b] += om2[a * k + b] + da * db * cross;
            }
        }
        for a in 0..k {
            mean[a] += (om[a] - mean[a]) * w;
        }
    }
    n
}

/// Running count, mean and sum of squared deviations of a scalar.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Welford {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample.
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Adds all samples of `other` (exact: the result is the moments of both sets).
    pub fn merge(&mut self, other: &Welford) {
        self.n = merge_moments(
            (
                self.n,
                std::slice::from_mut(&mut self.mean),
                std::slice::from_mut(&mut self.m2),
            ),
            (
                other.n,
                std::slice::from_ref(&other.mean),
                std::slice::from_ref(&other.m2),
            ),
            1,
        );
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Sample mean (NaN when empty).
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.mean
        }
    }

    /// Unbiased sample variance (NaN with fewer than two samples).
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            f64::NAN
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }

    /// Standard error of the mean, `sqrt(variance / n)`.
    pub fn std_error(&self) -> f64 {
        (self.variance() / self.n as f64).sqrt()
    }
}

/// Running mean vector and covariance matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMoments {
    n: u64,
    mean: DVector<f64>,
    m2: DMatrix<f64>,
    delta: DVector<f64>,
}

impl VectorMoments {
    /// An empty accumulator for vectors of length `dim`.
    pub fn new(dim: usize) -> Self {
        VectorMoments {
            n: 0,
            mean: DVector::zeros(dim),
            m2: DMatrix::zeros(dim, dim),
            delta: DVector::zeros(dim),
        }
    }

    /// Adds one sample (no allocation).
    pub fn push(&mut self, x: &DVector<f64>) {
        self.n += 1;
        self.delta.copy_from(x);
        self.delta -= &self.mean;
        self.mean.axpy(1.0 / self.n as f64, &self.delta, 1.0);
        // m2 += delta (x − mean_new)ᵀ, symmetric in expectation; use the outer form.
        let d = self.mean.len();
        for c in 0..d {
            let xc = x[c] - self.mean[c];
            for r in 0..d {
                self.m2[(r, c)] += self.delta[r] * xc;
            }
        }
    }

    /// Adds all samples of `other` exactly.
    pub fn merge(&mut self, other: &VectorMoments) {
        let d = self.mean.len();
        self.n = merge_moments(
            (self.n, self.mean.as_mut_slice(), self.m2.as_mut_slice()),
            (other.n, other.mean.as_slice(), other.m2.as_slice()),
            d,
        );
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Sample mean.
    pub fn mean(&self) -> &DVector<f64> {
        &self.mean
    }

    /// Unbiased sample covariance (NaN with fewer than two samples).
    pub fn covariance(&self) -> DMatrix<f64> {
        if self.n < 2 {
            return DMatrix::from_element(self.m2.nrows(), self.m2.ncols(), f64::NAN);
        }
        let mut c = &self.m2 / (self.n - 1) as f64;
        // symmetrise rounding
        let d = c.nrows();
        for i in 0..d {
            for j in 0..i {
                let s = 0.5 * (c[(i, j)] + c[(j, i)]);
                c[(i, j)] = s;
                c[(j, i)] = s;
            }
        }
        c
    }
}

/// Observer accumulating the running (time-)average and variance of every state
/// component along one path, from step `burn_in` on.
#[derive(Debug, Clone)]
pub struct TimeAverage {
    burn_in: usize,
    components: Vec<Welford>,
}

impl TimeAverage {
    /// Averages of a `dim`-dimensional state, skipping steps before `burn_in`.
    pub fn new(dim: usize, burn_in: usize) -> Self {
        TimeAverage {
            burn_in,
            components: vec![Welford::new(); dim],
        }
    }

    /// The per-component accumulators.
    pub fn components(&self) -> &[Welford] {
        &self.components
    }
}

impl Observer for TimeAverage {
    fn observe(&mut self, step: usize, _t: f64, x: &DVector<f64>) -> Flow {
        if step >= self.burn_in {
            for (w, &v) in self.components.iter_mut().zip(x.iter()) {
                w.push(v);
            }
        }
        Flow::Continue
    }
}
