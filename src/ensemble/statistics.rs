//! Statistics: the fixed block-tree reduction of recorded functionals into exactly
//! mergeable moments.

use super::record::{BlockRecorder, Outcome};
use crate::error::{Error, Result};
use crate::observe::merge_moments;
use nalgebra::DVector;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Moments of `k` functionals at `T` times over the paths of one aligned dyadic range
/// `[start, start + 2^level)`: count, means (`T × k`) and co-moment sums (`T × k × k`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Node {
    start: u64,
    level: u32,
    n: u64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Node {
    /// `self ← self ∪ other` (Chan et al.'s exact pairwise update), per time.
    fn absorb(&mut self, other: &Node, k: usize) {
        self.n = merge_moments(
            (self.n, &mut self.mean, &mut self.m2),
            (other.n, &other.mean, &other.m2),
            k,
        );
    }
}

/// The canonical decomposition of a contiguous range of paths into maximal aligned
/// dyadic nodes, plus divergence bookkeeping; exact to merge.
#[derive(Debug, Clone, Default)]
pub(super) struct Accumulator {
    nodes: Vec<Node>,
    spare: Vec<Node>,
    divergent: u64,
    first_divergence: Option<(u64, usize, f64)>,
    pub(super) first_failure: Option<(u64, Error)>,
    k: usize,
}

impl Accumulator {
    pub(super) fn new(k: usize) -> Self {
        Accumulator {
            k,
            ..Default::default()
        }
    }

    fn leaf(&mut self, path: u64, values: Option<&[f64]>, cells: usize) -> Node {
        let mut node = self.spare.pop().unwrap_or_else(|| Node {
            start: 0,
            level: 0,
            n: 0,
            mean: vec![0.0; cells],
            m2: vec![0.0; cells * self.k],
        });
        node.start = path;
        node.level = 0;
        node.m2.fill(0.0);
        match values {
            Some(v) => {
                node.n = 1;
                node.mean.copy_from_slice(v);
            }
            None => {
                node.n = 0;
                node.mean.fill(0.0);
            }
        }
        node
    }

    /// Appends the node right after the current range, merging complete sibling pairs.
    fn push(&mut self, mut node: Node) {
        while let Some(top) = self.nodes.last() {
            let size = 1u128 << node.level;
            let siblings = top.level == node.level
                && u128::from(top.start) + size == u128::from(node.start)
                && u128::from(top.start) % (2 * size) == 0;
            if !siblings {
                break;
            }
            let mut parent = self.nodes.pop().expect("non-empty");
            parent.absorb(&node, self.k);
            parent.level += 1;
            self.spare.push(node);
            node = parent;
        }
        self.nodes.push(node);
    }

    fn diverged(&mut self, path: u64, step: usize, t: f64) {
        self.divergent += 1;
        if self.first_divergence.is_none_or(|(p, _, _)| path < p) {
            self.first_divergence = Some((path, step, t));
        }
    }

    fn failed(&mut self, path: u64, e: Error) {
        if self.first_failure.as_ref().is_none_or(|(p, _)| path < *p) {
            self.first_failure = Some((path, e));
        }
    }

    /// `self` followed by `later` (the range right after).
    pub(super) fn append(mut self, later: Accumulator) -> Accumulator {
        self.k = self.k.max(later.k);
        for node in later.nodes {
            self.push(node);
        }
        self.divergent += later.divergent;
        if let Some((p, s, t)) = later.first_divergence {
            if self.first_divergence.is_none_or(|(q, _, _)| p < q) {
                self.first_divergence = Some((p, s, t));
            }
        }
        if let Some((p, e)) = later.first_failure {
            self.failed(p, e);
        }
        self
    }

    /// Pushes the leaves of a finished block, in path order.
    pub(super) fn record_block<F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync>(
        &mut self,
        rec: &BlockRecorder<'_, F>,
        len: usize,
    ) {
        let cells = rec.cells();
        for slot in 0..len {
            let path = rec.start + slot as u64;
            let leaf = match &rec.outcomes[slot] {
                Outcome::Finished => self.leaf(path, Some(rec.slot_values(slot)), cells),
                Outcome::Diverged { step, t } => {
                    self.diverged(path, *step, *t);
                    self.leaf(path, None, cells)
                }
                Outcome::Failed(e) => {
                    self.failed(path, e.clone());
                    self.leaf(path, None, cells)
                }
                Outcome::Pending => {
                    self.failed(
                        path,
                        Error::invalid("problem", path, "the problem did not report this path's end"),
                    );
                    self.leaf(path, None, cells)
                }
            };
            self.push(leaf);
        }
    }
}

/// Means, variances and covariances of recorded functionals over a range of paths,
/// exactly mergeable with the statistics of the adjacent range (see the module docs).
///
/// Serialisable, so shards run on different machines can be merged later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleStatistics {
    seed: u64,
    paths: Range<u64>,
    times: Vec<f64>,
    count: usize,
    nodes: Vec<Node>,
    total: Node,
    divergent: u64,
    first_divergence: Option<(u64, usize, f64)>,
}

impl EnsembleStatistics {
    pub(super) fn from_accumulator(
        seed: u64,
        paths: Range<u64>,
        times: Vec<f64>,
        count: usize,
        acc: Accumulator,
    ) -> Self {
        let total = Self::fold(&acc.nodes, times.len() * count, count);
        EnsembleStatistics {
            seed,
            paths,
            times,
            count,
            nodes: acc.nodes,
            total,
            divergent: acc.divergent,
            first_divergence: acc.first_divergence,
        }
    }

    /// Left-to-right fold of the canonical nodes.
    fn fold(nodes: &[Node], cells: usize, k: usize) -> Node {
        let mut total = Node {
            start: nodes.first().map_or(0, |n| n.start),
            level: 0,
            n: 0,
            mean: vec![0.0; cells],
            m2: vec![0.0; cells * k],
        };
        for node in nodes {
            total.absorb(node, k);
        }
        total
    }

    /// The statistics of `self`'s paths followed by `later`'s: bit-identical to running
    /// the union of the two ranges at once.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless `later` starts where `self` ends and both used the
    /// same seed, save times and functionals count.
    pub fn merge(self, later: EnsembleStatistics) -> Result<Self> {
        if later.paths.start != self.paths.end {
            return Err(Error::invalid(
                "paths",
                format!("{:?} then {:?}", self.paths, later.paths),
                "shards must be adjacent and in order",
            ));
        }
        let same_times = self.times.len() == later.times.len()
            && self
                .times
                .iter()
                .zip(&later.times)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if self.seed != later.seed || !same_times || self.count != later.count {
            return Err(Error::invalid(
                "shards",
                format!("seeds {} and {}", self.seed, later.seed),
                "shards must share the seed, the save times and the functionals",
            ));
        }
        let mut acc = Accumulator::new(self.count);
        acc.nodes = self.nodes;
        acc.divergent = self.divergent;
        acc.first_divergence = self.first_divergence;
        let mut other = Accumulator::new(later.count);
        other.nodes = later.nodes;
        other.divergent = later.divergent;
        other.first_divergence = later.first_divergence;
        let acc = acc.append(other);
        Ok(Self::from_accumulator(
            self.seed,
            self.paths.start..later.paths.end,
            self.times,
            self.count,
            acc,
        ))
    }

    /// The range of paths summarised.
    pub fn paths(&self) -> Range<u64> {
        self.paths.clone()
    }

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The requested save times.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Number of functionals `k`.
    pub fn functionals(&self) -> usize {
        self.count
    }

    /// Number of paths in the moments (those that stayed finite).
    pub fn finished(&self) -> u64 {
        self.total.n
    }

    /// Number of paths that stopped being finite (left out of the moments).
    pub fn divergent(&self) -> u64 {
        self.divergent
    }

    /// The [`Error::Divergence`] of the divergent path with the smallest index.
    pub fn first_divergence(&self) -> Option<Error> {
        self.first_divergence
            .map(|(path, step, t)| Error::Divergence { path, step, t })
    }

    /// Mean of functional `j` at save time `time` (NaN without finished paths).
    ///
    /// # Panics
    /// If `time` or `j` is out of range.
    pub fn mean(&self, time: usize, j: usize) -> f64 {
        assert!(time < self.times.len() && j < self.count, "index out of range");
        if self.total.n == 0 {
            f64::NAN
        } else {
            self.total.mean[time * self.count + j]
        }
    }

    /// Unbiased covariance of functionals `a` and `b` at save time `time` (NaN with fewer
    /// than two finished paths).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn covariance(&self, time: usize, a: usize, b: usize) -> f64 {
        let k = self.count;
        assert!(time < self.times.len() && a < k && b < k, "index out of range");
        if self.total.n < 2 {
            return f64::NAN;
        }
        // the co-moment sums are symmetric up to rounding: average the two halves
        let m2 = &self.total.m2[time * k * k..];
        0.5 * (m2[a * k + b] + m2[b * k + a]) / (self.total.n - 1) as f64
    }

    /// Unbiased variance of functional `j` at save time `time`.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn variance(&self, time: usize, j: usize) -> f64 {
        self.covariance(time, j, j)
    }

    /// Standard error of the mean, `sqrt(variance / n)`.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn std_error(&self, time: usize, j: usize) -> f64 {
        (self.variance(time, j) / self.total.n as f64).sqrt()
    }
}
