//! Statistics: the fixed block-tree reduction of recorded functionals into exactly
//! mergeable moments.

use super::record::{BlockRecorder, Outcome};
use crate::error::{Error, Result};
use crate::observe::merge_moments;
use nalgebra::DVector;
use serde::{Deserialize, Serialize};
use std::ops::Range;

fn default_bound() -> f64 {
    crate::observe::DEFAULT_DIVERGENCE_BOUND
}

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
/// Serialisable, so shards run on different machines can be merged later. Deserialising
/// validates the structure (the nodes tile the path range exactly, array lengths, counts,
/// the divergence record): a malformed or truncated
/// file is an error, never a panic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Unchecked")]
pub struct EnsembleStatistics {
    seed: u64,
    paths: Range<u64>,
    /// The divergence bound the paths were run with (absent in older files: the default).
    #[serde(default = "default_bound")]
    divergence_bound: f64,
    times: Vec<f64>,
    count: usize,
    nodes: Vec<Node>,
    total: Node,
    divergent: u64,
    first_divergence: Option<(u64, usize, f64)>,
}

/// The serialised form, before validation.
#[derive(Deserialize)]
struct Unchecked {
    seed: u64,
    paths: Range<u64>,
    #[serde(default = "default_bound")]
    divergence_bound: f64,
    times: Vec<f64>,
    count: usize,
    nodes: Vec<Node>,
    #[allow(dead_code)] // recomputed from the nodes
    total: Node,
    divergent: u64,
    first_divergence: Option<(u64, usize, f64)>,
}

impl TryFrom<Unchecked> for EnsembleStatistics {
    type Error = Error;

    fn try_from(u: Unchecked) -> Result<Self> {
        let bad = |field: &'static str, value: String, reason: &str| {
            Error::invalid(field, value, reason.to_string())
        };
        if u.count == 0 || u.count > 1 << 12 {
            return Err(bad("count", u.count.to_string(), "must be between 1 and 4096"));
        }
        if u.times.is_empty()
            || u.times.iter().any(|t| !t.is_finite())
            || u.times.windows(2).any(|w| w[1] < w[0])
        {
            return Err(bad(
                "times",
                format!("{} values", u.times.len()),
                "must be finite, ascending and not empty",
            ));
        }
        let cells = u
            .times
            .len()
            .checked_mul(u.count)
            .filter(|c| c.checked_mul(u.count).is_some_and(|c2| c2 <= 1 << 28))
            .ok_or_else(|| bad("count", u.count.to_string(), "times × count² is too large"))?;
        crate::observe::check_divergence_bound(u.divergence_bound)?;
        if u.paths.start > u.paths.end {
            return Err(bad("paths", format!("{:?}", u.paths), "start after end"));
        }
        let mut expected = u128::from(u.paths.start);
        let mut finished: u128 = 0;
        for (i, node) in u.nodes.iter().enumerate() {
            let at = |what: &str| format!("nodes[{i}]: {what}");
            if node.level > 63 {
                return Err(bad("nodes.level", node.level.to_string(), &at("at most 63")));
            }
            let size = 1u128 << node.level;
            if u128::from(node.start) != expected || u128::from(node.start) % size != 0 {
                return Err(bad(
                    "nodes.start",
                    node.start.to_string(),
                    &at("the nodes must tile the path range with aligned dyadic blocks"),
                ));
            }
            if let Some(prev) = i.checked_sub(1).map(|j| &u.nodes[j]) {
                if prev.level == node.level && u128::from(prev.start) % (2 * size) == 0 {
                    return Err(bad(
                        "nodes.level",
                        node.level.to_string(),
                        &at("two sibling nodes are not merged"),
                    ));
                }
            }
            if u128::from(node.n) > size {
                return Err(bad(
                    "nodes.n",
                    node.n.to_string(),
                    &at("more paths than the node covers"),
                ));
            }
            if node.mean.len() != cells || node.m2.len() != cells * u.count {
                return Err(bad(
                    "nodes.mean/m2",
                    format!("{}/{}", node.mean.len(), node.m2.len()),
                    &at(&format!(
                        "lengths must be times × count = {cells} and times × count² = {}",
                        cells * u.count
                    )),
                ));
            }
            if node.mean.iter().chain(&node.m2).any(|v| !v.is_finite()) {
                return Err(bad(
                    "nodes.mean/m2",
                    "non-finite".into(),
                    &at("moments must be finite"),
                ));
            }
            expected += size;
            finished += u128::from(node.n);
        }
        if expected != u128::from(u.paths.end) && !(u.nodes.is_empty() && u.paths.is_empty()) {
            return Err(bad(
                "nodes",
                format!("{} nodes", u.nodes.len()),
                &format!("do not cover the paths {:?} exactly", u.paths),
            ));
        }
        let len = u128::from(u.paths.end - u.paths.start);
        if finished + u128::from(u.divergent) != len {
            return Err(bad(
                "divergent",
                u.divergent.to_string(),
                &format!("finished ({finished}) + diverged must equal the {len} paths"),
            ));
        }
        match u.first_divergence {
            None if u.divergent > 0 => {
                return Err(bad(
                    "first_divergence",
                    "null".into(),
                    "missing while paths diverged",
                ))
            }
            Some((p, _, t)) if u.divergent == 0 || !u.paths.contains(&p) || !t.is_finite() => {
                return Err(bad(
                    "first_divergence",
                    format!("path {p}"),
                    "not a diverged path of this range",
                ))
            }
            _ => {}
        }
        let acc = Accumulator {
            nodes: u.nodes,
            divergent: u.divergent,
            first_divergence: u.first_divergence,
            k: u.count,
            ..Default::default()
        };
        Ok(Self::from_accumulator(
            u.seed,
            u.paths,
            u.divergence_bound,
            u.times,
            u.count,
            acc,
        ))
    }
}

impl EnsembleStatistics {
    pub(super) fn from_accumulator(
        seed: u64,
        paths: Range<u64>,
        divergence_bound: f64,
        times: Vec<f64>,
        count: usize,
        acc: Accumulator,
    ) -> Self {
        let total = Self::fold(&acc.nodes, times.len() * count, count);
        EnsembleStatistics {
            seed,
            paths,
            divergence_bound,
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
        if self.seed != later.seed
            || !same_times
            || self.count != later.count
            || self.divergence_bound.to_bits() != later.divergence_bound.to_bits()
        {
            return Err(Error::invalid(
                "shards",
                format!("seeds {} and {}", self.seed, later.seed),
                "shards must share the seed, the save times, the functionals and the divergence bound",
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
            self.divergence_bound,
            self.times,
            self.count,
            acc,
        ))
    }

    /// The statistics of per-path records, as [`super::Ensemble::per_path`] returns them
    /// for `ensemble`'s paths (in path order) with functionals recording `count` values
    /// at `times`: bit-identical to [`super::Ensemble::statistics`] on the same run (the
    /// leaves go through the same block tree, in the same order). For callers that need
    /// both the paths and their mergeable statistics without running the ensemble twice.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the records are not one per path of the range, in
    /// order, each `times × count`; the first (lowest-index) path's error other than
    /// [`Error::Divergence`], as [`super::Ensemble::statistics`].
    pub fn from_records(
        ensemble: &super::Ensemble,
        times: Vec<f64>,
        count: usize,
        records: &[Result<super::PathRecord>],
    ) -> Result<Self> {
        let paths = ensemble.paths();
        if records.len() as u64 != paths.end - paths.start {
            return Err(Error::invalid(
                "records",
                records.len(),
                format!("one record per path of {paths:?} is needed"),
            ));
        }
        let cells = times.len() * count;
        let mut acc = Accumulator::new(count);
        let mut row_major = vec![0.0; cells];
        for (path, record) in paths.clone().zip(records) {
            let leaf = match record {
                Ok(r) => {
                    if r.path != path || r.values.shape() != (times.len(), count) {
                        return Err(Error::invalid(
                            "records",
                            r.path,
                            format!("expected path {path} with {} × {count} values", times.len()),
                        ));
                    }
                    for (i, row) in r.values.row_iter().enumerate() {
                        for (j, v) in row.iter().enumerate() {
                            row_major[i * count + j] = *v;
                        }
                    }
                    acc.leaf(path, Some(&row_major), cells)
                }
                Err(Error::Divergence { step, t, .. }) => {
                    acc.diverged(path, *step, *t);
                    acc.leaf(path, None, cells)
                }
                Err(e) => {
                    acc.failed(path, e.clone());
                    acc.leaf(path, None, cells)
                }
            };
            acc.push(leaf);
        }
        if let Some((_, e)) = acc.first_failure.take() {
            return Err(e);
        }
        Ok(Self::from_accumulator(
            ensemble.seeds().seed(),
            paths,
            ensemble.divergence_bound(),
            times,
            count,
            acc,
        ))
    }

    /// The range of paths summarised.
    pub fn paths(&self) -> Range<u64> {
        self.paths.clone()
    }

    /// The divergence bound the paths were run with.
    pub fn divergence_bound(&self) -> f64 {
        self.divergence_bound
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

    /// Why some statistics are undefined, if they are: `"no finished paths"` (every path
    /// diverged, or the range is empty: no mean) or `"one finished path"` (no variance,
    /// standard error or interval).
    pub fn undefined(&self) -> Option<&'static str> {
        match self.total.n {
            0 => Some("no finished paths"),
            1 => Some("one finished path"),
            _ => None,
        }
    }

    /// Mean of functional `j` at save time `time` (NaN without finished paths: see
    /// [`EnsembleStatistics::undefined`]).
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
