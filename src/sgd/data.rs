//! Data: a finite data set of `N` samples, or a population that draws fresh samples.

use crate::error::{check_finite, Error, Result};
use nalgebra::DMatrix;
use rand::Rng;

/// One sample `(x, y)`, borrowed from a [`Dataset`] or a draw buffer.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Input `x`.
    pub x: &'a [f64],
    /// Target `y`.
    pub y: &'a [f64],
}

/// A finite data set `{(x_i, y_i)}_{i<N}`, sampled uniformly by SGD (THEORY §1).
///
/// Stored row-major (one sample contiguous in memory).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    n: usize,
    input_dim: usize,
    target_dim: usize,
    inputs: Vec<f64>,
    targets: Vec<f64>,
}

impl Dataset {
    /// A data set from `inputs` (`N × p`, one sample per row) and `targets` (`N × q`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an empty set, [`Error::DimensionMismatch`] if the row
    /// counts differ, [`Error::NonFinite`] for NaN or infinite entries.
    pub fn new(inputs: &DMatrix<f64>, targets: &DMatrix<f64>) -> Result<Self> {
        let n = inputs.nrows();
        if n == 0 {
            return Err(Error::invalid(
                "dataset",
                0,
                "a data set needs at least one sample",
            ));
        }
        if targets.nrows() != n {
            return Err(Error::DimensionMismatch {
                what: "number of targets",
                expected: n,
                got: targets.nrows(),
            });
        }
        check_finite("inputs", inputs.as_slice())?;
        check_finite("targets", targets.as_slice())?;
        let row_major = |m: &DMatrix<f64>| m.transpose().as_slice().to_vec();
        Ok(Dataset {
            n,
            input_dim: inputs.ncols(),
            target_dim: targets.ncols(),
            inputs: row_major(inputs),
            targets: row_major(targets),
        })
    }

    /// Draws `n` samples from `population` with `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `n = 0`.
    pub fn from_population<P: Population + ?Sized>(
        population: &P,
        n: usize,
        rng: &mut dyn Rng,
    ) -> Result<Self> {
        if n == 0 {
            return Err(Error::invalid("n", 0, "a data set needs at least one sample"));
        }
        let (p, q) = (population.input_dim(), population.target_dim());
        let mut inputs = vec![0.0; n * p];
        let mut targets = vec![0.0; n * q];
        for i in 0..n {
            population.draw(
                rng,
                &mut inputs[i * p..(i + 1) * p],
                &mut targets[i * q..(i + 1) * q],
            );
        }
        Ok(Dataset {
            n,
            input_dim: p,
            target_dim: q,
            inputs,
            targets,
        })
    }

    /// Number of samples `N`.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false (a data set has at least one sample).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Input dimension `p`.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Target dimension `q`.
    pub fn target_dim(&self) -> usize {
        self.target_dim
    }

    /// Sample `i` (panics if `i ≥ N`, an internal invariant).
    #[inline]
    pub fn sample(&self, i: usize) -> Sample<'_> {
        let (p, q) = (self.input_dim, self.target_dim);
        Sample {
            x: &self.inputs[i * p..(i + 1) * p],
            y: &self.targets[i * q..(i + 1) * q],
        }
    }

    /// The inputs as an `N × p` matrix.
    pub fn inputs(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.n, self.input_dim, &self.inputs)
    }

    /// The targets as an `N × q` matrix.
    pub fn targets(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.n, self.target_dim, &self.targets)
    }
}

/// A data distribution that draws fresh samples (online SGD).
pub trait Population: Sync {
    /// Input dimension `p`.
    fn input_dim(&self) -> usize;
    /// Target dimension `q`.
    fn target_dim(&self) -> usize;
    /// Draws one sample into `x` (length `p`) and `y` (length `q`).
    fn draw(&self, rng: &mut dyn Rng, x: &mut [f64], y: &mut [f64]);
}
