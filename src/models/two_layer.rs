//! Two-layer networks whose rescaling symmetry is exact or approximate (THEORY §7):
//!
//! - `f(x) = U φ(W x)` (a two-layer network), and
//! - `f(x) = x + U φ(W x)` (a residual block, `d_in = d_out`),
//!
//! with `φ = tanh`, the identity or ReLU, loss `ℓ = ‖f(x) − y‖²`, data
//! `x ~ N(0, s² I)`, `y = V x + σε`. Parameters are `θ = [vec U; vec W]` (column-major,
//! `U` is `d_out × h`, `W` is `h × d_in`), the layout of
//! [`crate::symmetry::ExponentialSymmetry::matrix_factorization`]; the rescaling
//! `U → λU, W → W/λ` is its `M = I` member, `A = diag(I, −I)`.
//!
//! With `φ = identity` both networks keep the symmetry exactly (`x + UWx` is invariant
//! under `U → UM, W → M⁻¹W`). ReLU is positively homogeneous (`φ(cz) = cφ(z)` for
//! `c > 0`), so the rescaling `U → e^λ U, W → e^{−λ} W` (the `M = I` member) is exact for
//! it too, though not the whole `GL(h)` family. `tanh` is not homogeneous: the symmetry
//! is broken, by an amount that vanishes with the input scale `s` (tanh(z) ≈ z).

use crate::error::{check_finite, Error, Result};
use crate::rng::{SeedTree, Stream};
use crate::sgd::{Dataset, Model, Population, Sample};
use crate::symmetry::layout::TwoLayerLayout;
use crate::symmetry::{ExponentialSymmetry, Symmetric};
use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

/// The activation `φ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `φ(z) = tanh z` (breaks the rescaling symmetry).
    Tanh,
    /// `φ(z) = z` (keeps it).
    Identity,
    /// `φ(z) = max(z, 0)`, with the slope `φ′(0) = 0` at the kink (the subgradient
    /// PyTorch and JAX use); keeps the rescaling `U → e^λ U, W → e^{−λ} W` exactly.
    Relu,
}

impl Activation {
    #[inline]
    fn value_and_slope(self, z: f64) -> (f64, f64) {
        match self {
            Activation::Tanh => {
                let t = z.tanh();
                (t, 1.0 - t * t)
            }
            Activation::Identity => (z, 1.0),
            // `z <= 0` is false for NaN, which then propagates
            Activation::Relu if z <= 0.0 => (0.0, 0.0),
            Activation::Relu => (z, 1.0),
        }
    }
}

/// `f(x) = [x +] U φ(Wx)` with a linear teacher.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoLayerNet {
    d_in: usize,
    hidden: usize,
    d_out: usize,
    activation: Activation,
    residual: bool,
    teacher: DMatrix<f64>,
    input_scale: f64,
    noise_std: f64,
}

impl TwoLayerNet {
    /// `U φ(Wx)` learning `y = Vx + σε`, `x ~ N(0, s² I)`; `teacher` is `V` (`d_out × d_in`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `hidden = 0`, `s <= 0` or `σ < 0`;
    /// [`Error::NonFinite`] for a non-finite teacher.
    pub fn new(
        hidden: usize,
        teacher: DMatrix<f64>,
        activation: Activation,
        input_scale: f64,
        noise_std: f64,
    ) -> Result<Self> {
        Self::build(hidden, teacher, activation, input_scale, noise_std, false)
    }

    /// The residual block `x + U φ(Wx)` (`teacher` must be square).
    ///
    /// # Errors
    /// As [`TwoLayerNet::new`], and [`Error::DimensionMismatch`] for a non-square teacher.
    pub fn residual(
        hidden: usize,
        teacher: DMatrix<f64>,
        activation: Activation,
        input_scale: f64,
        noise_std: f64,
    ) -> Result<Self> {
        if teacher.nrows() != teacher.ncols() {
            return Err(Error::DimensionMismatch {
                what: "residual teacher (square)",
                expected: teacher.ncols(),
                got: teacher.nrows(),
            });
        }
        Self::build(hidden, teacher, activation, input_scale, noise_std, true)
    }

    fn build(
        hidden: usize,
        teacher: DMatrix<f64>,
        activation: Activation,
        s: f64,
        noise_std: f64,
        residual: bool,
    ) -> Result<Self> {
        if hidden == 0 {
            return Err(Error::invalid("hidden", 0, "must be at least 1"));
        }
        if teacher.is_empty() {
            return Err(Error::invalid("teacher", "empty", "must have at least one entry"));
        }
        check_finite("teacher", teacher.as_slice())?;
        crate::error::check_positive("input_scale", s)?;
        if !(noise_std.is_finite() && noise_std >= 0.0) {
            return Err(Error::invalid("noise_std", noise_std, "must be finite and >= 0"));
        }
        Ok(TwoLayerNet {
            d_in: teacher.ncols(),
            hidden,
            d_out: teacher.nrows(),
            activation,
            residual,
            teacher,
            input_scale: s,
            noise_std,
        })
    }

    /// `(d_in, hidden, d_out)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.d_in, self.hidden, self.d_out)
    }

    /// The input scale `s`.
    pub fn input_scale(&self) -> f64 {
        self.input_scale
    }

    /// The symmetric limit `s → 0` (tanh ≈ identity): the matrix factorisation that
    /// learns `V` (or `V − I` for the residual block) with `Σ_x = s²I`, `Σ_ε = σ²I`,
    /// whose balanced equilibrium (THEORY §6) is the prediction for this network.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `σ = 0` (no label noise, no noise equilibrium).
    pub fn symmetric_limit(&self) -> Result<super::MatrixFactorization> {
        let target = if self.residual {
            &self.teacher - DMatrix::identity(self.d_out, self.d_in)
        } else {
            self.teacher.clone()
        };
        if self.noise_std <= 0.0 {
            return Err(Error::invalid(
                "noise_std",
                self.noise_std,
                "the symmetric limit needs label noise > 0",
            ));
        }
        super::MatrixFactorization::new(
            target,
            self.hidden,
            DVector::from_element(self.d_in, self.input_scale * self.input_scale),
            DVector::from_element(self.d_out, self.noise_std * self.noise_std),
        )
    }

    /// A data set of `n` samples (path 0, stream `Init` of `seed`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `n = 0`.
    pub fn dataset(&self, n: usize, seed: u64) -> Result<Dataset> {
        Dataset::from_population(self, n, &mut SeedTree::new(seed).rng(0, Stream::Init))
    }

    /// Packs `U` (`d_out × h`) and `W` (`h × d_in`) into `θ`.
    pub fn pack(u: &DMatrix<f64>, w: &DMatrix<f64>) -> DVector<f64> {
        TwoLayerLayout::new((w.ncols(), u.ncols(), u.nrows())).pack(u, w)
    }

    /// Splits `θ` into `(U, W)`.
    pub fn unpack(&self, theta: &DVector<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        self.layout().unpack(theta)
    }

    /// The parameter layout `θ = [vec U; vec W]`.
    pub fn layout(&self) -> TwoLayerLayout {
        TwoLayerLayout::new((self.d_in, self.hidden, self.d_out))
    }

    /// The member `U → U e^{λM}`, `W → e^{−λM} W` of the symmetry family, for a
    /// symmetric `M` (`hidden × hidden`); [`Symmetric::symmetry`] is `M = I`.
    ///
    /// # Errors
    /// [`crate::Error::DimensionMismatch`] if `M` is not `hidden × hidden`, or not symmetric.
    pub fn symmetry_family(&self, m: &DMatrix<f64>) -> Result<ExponentialSymmetry> {
        ExponentialSymmetry::matrix_factorization(m, self.d_in, self.hidden, self.d_out)
    }

    /// Residual `r = f(x) − y` into `r` (length `d_out`), hidden pre-activations into `z`.
    fn forward(&self, theta: &[f64], x: &[f64], y: &[f64], z: &mut [f64], r: &mut [f64]) {
        let (h, di, dout) = (self.hidden, self.d_in, self.d_out);
        let nu = dout * h;
        for k in 0..h {
            z[k] = (0..di).map(|c| theta[nu + c * h + k] * x[c]).sum();
        }
        for a in 0..dout {
            let mut f = if self.residual { x[a] } else { 0.0 };
            for k in 0..h {
                f += theta[k * dout + a] * self.activation.value_and_slope(z[k]).0;
            }
            r[a] = f - y[a];
        }
    }
}

/// Stack buffers large enough for the small networks of the examples; larger ones
/// fall back to the heap.
const STACK: usize = 32;

impl Symmetric for TwoLayerNet {
    /// The rescaling `U → U e^{λI}`, `W → e^{−λI} W` of the two-layer layout: exact for
    /// the identity and ReLU (positively homogeneous), approximate for tanh (THEORY §7).
    fn symmetry(&self) -> Result<ExponentialSymmetry> {
        self.symmetry_family(&DMatrix::identity(self.hidden, self.hidden))
    }

    fn symmetry_is_exact(&self) -> bool {
        matches!(self.activation, Activation::Identity | Activation::Relu)
    }
}

impl Model for TwoLayerNet {
    fn dim(&self) -> usize {
        self.hidden * (self.d_in + self.d_out)
    }
    fn input_dim(&self) -> usize {
        self.d_in
    }
    fn target_dim(&self) -> usize {
        self.d_out
    }
    fn loss(&self, theta: &DVector<f64>, s: Sample<'_>) -> f64 {
        let mut z = vec![0.0; self.hidden];
        let mut r = vec![0.0; self.d_out];
        self.forward(theta.as_slice(), s.x, s.y, &mut z, &mut r);
        r.iter().map(|v| v * v).sum()
    }
    fn grad(&self, theta: &DVector<f64>, s: Sample<'_>, out: &mut DVector<f64>) {
        let (h, di, dout) = (self.hidden, self.d_in, self.d_out);
        let nu = dout * h;
        let (mut zs, mut rs) = ([0.0; STACK], [0.0; STACK]);
        let (mut zh, mut rh);
        let (z, r): (&mut [f64], &mut [f64]) = if h <= STACK && dout <= STACK {
            (&mut zs[..h], &mut rs[..dout])
        } else {
            zh = vec![0.0; h];
            rh = vec![0.0; dout];
            (&mut zh, &mut rh)
        };
        let th = theta.as_slice();
        self.forward(th, s.x, s.y, z, r);
        for k in 0..h {
            let (a, slope) = self.activation.value_and_slope(z[k]);
            let mut back = 0.0;
            for o in 0..dout {
                out[k * dout + o] = 2.0 * r[o] * a;
                back += th[k * dout + o] * r[o];
            }
            for c in 0..di {
                out[nu + c * h + k] = 2.0 * back * slope * s.x[c];
            }
        }
    }
}

impl Population for TwoLayerNet {
    fn input_dim(&self) -> usize {
        self.d_in
    }
    fn target_dim(&self) -> usize {
        self.d_out
    }
    fn draw(&self, rng: &mut dyn Rng, x: &mut [f64], y: &mut [f64]) {
        for v in x.iter_mut() {
            *v = self.input_scale * rng.sample::<f64, _>(StandardNormal);
        }
        for (a, ya) in y.iter_mut().enumerate() {
            let t: f64 = (0..self.d_in).map(|c| self.teacher[(a, c)] * x[c]).sum();
            *ya = t + self.noise_std * rng.sample::<f64, _>(StandardNormal);
        }
    }
}
