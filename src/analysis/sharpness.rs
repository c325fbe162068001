//! Sharpness: the top eigenvalue of the risk Hessian, by power iteration on
//! Hessian-vector products (THEORY §6), and an observer that records it along SGD and
//! SGD-SDE runs (progressive flattening and sharpening, THEORY §6).
//!
//! ```text
//! v₀ = seeded normal / ‖·‖,   w_k = (H + sI) v_k,   ρ_k = v_kᵀ w_k,   v_{k+1} = w_k / ‖w_k‖
//! stop when ‖w_k − ρ_k v_k‖ ≤ tol · |ρ_k|          (then |ρ_k − λ| ≤ tol·|ρ_k|)
//! ```
//!
//! Power iteration converges to the eigenvalue of largest *magnitude*, at the rate
//! `|λ₂/λ₁|` per iteration. Sharpness is the largest *algebraic* eigenvalue `λ_max`
//! (GD is stable while `η λ_max < 2`), and off the valley the risk Hessian can have a
//! negative eigenvalue of larger magnitude. So the iteration first runs on `H` (shift
//! `s = 0`); if it converges to a positive value that is `λ_max`. Otherwise (a negative
//! dominant eigenvalue, or `±λ` pairs that keep it from converging) it restarts on
//! `H + sI` with `s` the largest `‖Hv‖` seen (≈ the spectral radius), whose spectrum is
//! `≥ 0` with top `λ_max + s`, and reports `λ_max = ρ − s` ([`Sharpness::shift`] says
//! which happened). The shifted run loses about `log₁₀(s/|λ_max|)` digits.

use crate::error::{check_vector, Error, Result};
use crate::observe::{Flow, Observer, RecordFunctionals};
use crate::rng::{SeedTree, Stream};
use crate::sgd::{Dataset, Model, PopulationForms};
use nalgebra::DVector;
use rand::RngExt;
use rand_distr::StandardNormal;

/// A symmetric Hessian `H(θ)` available through products `H(θ) v`.
pub trait HessianVectorProduct {
    /// Parameter dimension `d`.
    fn dim(&self) -> usize;
    /// `out = H(θ) v` (overwrites `out`).
    fn apply(&mut self, theta: &DVector<f64>, v: &DVector<f64>, out: &mut DVector<f64>);
}

/// The population-risk Hessian `∇²L(θ)` of a model with closed forms
/// ([`PopulationForms::risk_hvp`]).
#[derive(Debug, Clone, Copy)]
pub struct PopulationHessian<'a, M: ?Sized> {
    model: &'a M,
}

impl<'a, M: PopulationForms + ?Sized> PopulationHessian<'a, M> {
    /// The Hessian of `model`'s population risk.
    pub fn new(model: &'a M) -> Self {
        PopulationHessian { model }
    }
}

impl<M: PopulationForms + ?Sized> HessianVectorProduct for PopulationHessian<'_, M> {
    fn dim(&self) -> usize {
        self.model.dim()
    }
    fn apply(&mut self, theta: &DVector<f64>, v: &DVector<f64>, out: &mut DVector<f64>) {
        self.model.risk_hvp(theta, v, out);
    }
}

/// The empirical-risk Hessian `(1/N) Σ_i ∇²ℓ(θ, x_i)` of a finite data set (the mean of
/// the per-sample [`Model::hvp`]).
#[derive(Debug, Clone)]
pub struct DatasetHessian<'a, M: ?Sized> {
    model: &'a M,
    data: &'a Dataset,
    sample_product: DVector<f64>,
}

impl<'a, M: Model + ?Sized> DatasetHessian<'a, M> {
    /// The Hessian of `model`'s empirical risk on `data`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] if the data's input or target dimension is not the
    /// model's.
    pub fn new(model: &'a M, data: &'a Dataset) -> Result<Self> {
        crate::sgd::check_data_dims(model, data)?;
        Ok(DatasetHessian {
            model,
            data,
            sample_product: DVector::zeros(model.dim()),
        })
    }
}

impl<M: Model + ?Sized> HessianVectorProduct for DatasetHessian<'_, M> {
    fn dim(&self) -> usize {
        self.model.dim()
    }
    fn apply(&mut self, theta: &DVector<f64>, v: &DVector<f64>, out: &mut DVector<f64>) {
        out.fill(0.0);
        for i in 0..self.data.len() {
            self.model
                .hvp(theta, self.data.sample(i), v, &mut self.sample_product);
            *out += &self.sample_product;
        }
        *out /= self.data.len() as f64;
    }
}

/// Settings of the power iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerIteration {
    /// Relative residual tolerance: stop when `‖Hv − ρv‖ ≤ tolerance · |ρ|`.
    pub tolerance: f64,
    /// Maximum number of Hessian-vector products per phase (at most two phases).
    pub max_iterations: usize,
    /// Seed of the start vector (path 0, stream [`Stream::Init`] of `SeedTree::new(seed)`).
    pub seed: u64,
}

impl Default for PowerIteration {
    /// `tolerance = 1e-10`, `max_iterations = 1000`, `seed = 0`.
    fn default() -> Self {
        PowerIteration {
            tolerance: 1e-10,
            max_iterations: 1000,
            seed: 0,
        }
    }
}

/// The top Hessian eigenvalue found by power iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Sharpness {
    /// Estimate of the largest algebraic eigenvalue `λ_max`.
    pub eigenvalue: f64,
    /// The unit vector of the last iterate (the eigenvector estimate).
    pub eigenvector: DVector<f64>,
    /// Hessian-vector products used (both phases).
    pub iterations: usize,
    /// Whether the residual criterion was met.
    pub converged: bool,
    /// The shift `s` of the second phase (`0`: the unshifted iteration gave `λ_max`).
    pub shift: f64,
}

struct Phase {
    rayleigh: f64,
    iterations: usize,
    converged: bool,
    largest_product: f64,
}

/// Power iteration on `H + shift·I` from `v` (unit), leaving the last iterate in `v`.
fn iterate<H: HessianVectorProduct + ?Sized>(
    hessian: &mut H,
    theta: &DVector<f64>,
    shift: f64,
    options: &PowerIteration,
    v: &mut DVector<f64>,
    w: &mut DVector<f64>,
) -> Phase {
    let mut phase = Phase {
        rayleigh: f64::NAN,
        iterations: 0,
        converged: false,
        largest_product: 0.0,
    };
    for k in 1..=options.max_iterations {
        hessian.apply(theta, v, w);
        if shift > 0.0 {
            w.axpy(shift, v, 1.0);
        }
        phase.iterations = k;
        let rho = v.dot(w);
        let norm = w.norm();
        phase.rayleigh = rho;
        phase.largest_product = phase.largest_product.max(norm);
        if !(norm.is_finite() && rho.is_finite()) {
            return phase;
        }
        if norm <= 0.0 {
            // v is in the null space: H v = 0 for a zero operator or an exact null vector
            phase.converged = true;
            return phase;
        }
        let residual = w
            .iter()
            .zip(v.iter())
            .map(|(a, b)| (a - rho * b).powi(2))
            .sum::<f64>()
            .sqrt();
        if residual <= options.tolerance * rho.abs() {
            phase.converged = true;
            return phase;
        }
        v.copy_from(w);
        v.unscale_mut(norm);
    }
    phase
}

/// The largest algebraic eigenvalue of `H(θ)` by (shifted) power iteration (see the
/// module documentation for the two phases).
///
/// A zero operator (or a start vector in its null space) gives eigenvalue 0, converged.
///
/// # Errors
/// [`Error::InvalidParameter`] for a zero-dimensional Hessian, a tolerance that is not
/// finite and > 0, or `max_iterations = 0`; [`Error::DimensionMismatch`] /
/// [`Error::NonFinite`] for a bad `theta`.
///
/// ```
/// use noether_sde::analysis::sharpness::{top_hessian_eigenvalue, PopulationHessian, PowerIteration};
/// use noether_sde::models::ScalarFactorization;
/// let model = ScalarFactorization::new(1.0, 0.5)?;
/// let theta = model.valley_point(3.0);
/// let s = top_hessian_eigenvalue(&mut PopulationHessian::new(&model), &theta, &PowerIteration::default())?;
/// // on the valley: 2√(C² + 4v²) = 2√13
/// assert!((s.eigenvalue - 2.0 * 13f64.sqrt()).abs() < 1e-9);
/// assert!(s.converged);
/// # Ok::<(), noether_sde::Error>(())
/// ```
///
/// # References
/// Golub & Van Loan, Matrix Computations (4th ed., 2013), §8.2.1 (power method) and
/// Theorem 8.1.11 (the Rayleigh-quotient error bound behind the residual criterion).
pub fn top_hessian_eigenvalue<H: HessianVectorProduct + ?Sized>(
    hessian: &mut H,
    theta: &DVector<f64>,
    options: &PowerIteration,
) -> Result<Sharpness> {
    let d = hessian.dim();
    if d == 0 {
        return Err(Error::invalid("dim", 0, "the Hessian must have dimension ≥ 1"));
    }
    check_vector("theta", theta, d)?;
    if !(options.tolerance.is_finite() && options.tolerance > 0.0) {
        return Err(Error::invalid(
            "tolerance",
            options.tolerance,
            "must be finite and > 0",
        ));
    }
    if options.max_iterations == 0 {
        return Err(Error::invalid("max_iterations", 0, "must be ≥ 1"));
    }
    let mut rng = SeedTree::new(options.seed).rng(0, Stream::Init);
    let mut start = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
    start.unscale_mut(start.norm());
    let mut v = start.clone();
    let mut w = DVector::zeros(d);
    let first = iterate(hessian, theta, 0.0, options, &mut v, &mut w);
    if first.converged && first.rayleigh >= 0.0 {
        return Ok(Sharpness {
            eigenvalue: first.rayleigh,
            eigenvector: v,
            iterations: first.iterations,
            converged: true,
            shift: 0.0,
        });
    }
    let shift = first.largest_product.max(first.rayleigh.abs());
    if !shift.is_finite() {
        return Ok(Sharpness {
            eigenvalue: f64::NAN,
            eigenvector: v,
            iterations: first.iterations,
            converged: false,
            shift: 0.0,
        });
    }
    v.copy_from(&start);
    let second = iterate(hessian, theta, shift, options, &mut v, &mut w);
    Ok(Sharpness {
        eigenvalue: second.rayleigh - shift,
        eigenvector: v,
        iterations: first.iterations + second.iterations,
        converged: second.converged,
        shift,
    })
}

/// Sharpness of a model's population risk, `λ_max(∇²L(θ))`.
///
/// # Errors
/// As [`top_hessian_eigenvalue`].
pub fn population_sharpness<M: PopulationForms + ?Sized>(
    model: &M,
    theta: &DVector<f64>,
    options: &PowerIteration,
) -> Result<Sharpness> {
    top_hessian_eigenvalue(&mut PopulationHessian::new(model), theta, options)
}

/// Sharpness of a model's empirical risk on `data`, `λ_max((1/N) Σ_i ∇²ℓ(θ, x_i))`.
///
/// # Errors
/// As [`DatasetHessian::new`] and [`top_hessian_eigenvalue`].
pub fn dataset_sharpness<M: Model + ?Sized>(
    model: &M,
    data: &Dataset,
    theta: &DVector<f64>,
    options: &PowerIteration,
) -> Result<Sharpness> {
    top_hessian_eigenvalue(&mut DatasetHessian::new(model, data)?, theta, options)
}

/// One recorded sharpness.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SharpnessRecord {
    /// The requested time.
    pub t: f64,
    /// `λ_max` (NaN if the power iteration failed, e.g. on a non-finite state).
    pub eigenvalue: f64,
    /// Hessian-vector products used.
    pub iterations: usize,
    /// Whether the power iteration converged.
    pub converged: bool,
}

type SharpnessFunctional<'a> = Box<dyn FnMut(f64, &DVector<f64>, &mut [f64]) + 'a>;

/// Observer recording the sharpness `λ_max(H(θ_t))` at requested times (the first step
/// at or after each) along an SGD or SDE run; it computes, and allocates, only at those
/// times.
///
/// ```
/// use noether_sde::analysis::sharpness::{PopulationHessian, PowerIteration, SharpnessObserver};
/// use noether_sde::models::ScalarFactorization;
/// use noether_sde::observe::Observer;
/// let model = ScalarFactorization::new(1.0, 0.5)?;
/// let mut obs = SharpnessObserver::new(PopulationHessian::new(&model), vec![0.0], PowerIteration::default());
/// obs.observe(0, 0.0, &model.valley_point(0.0));
/// assert!((obs.records()[0].eigenvalue - 4.0).abs() < 1e-9); // 4|v| at C = 0
/// # Ok::<(), noether_sde::Error>(())
/// ```
pub struct SharpnessObserver<'a> {
    record: RecordFunctionals<SharpnessFunctional<'a>>,
}

impl<'a> SharpnessObserver<'a> {
    /// Record the top eigenvalue of `hessian` at `times` (sorted ascending).
    pub fn new<H: HessianVectorProduct + 'a>(
        mut hessian: H,
        times: Vec<f64>,
        options: PowerIteration,
    ) -> Self {
        let f: SharpnessFunctional<'a> = Box::new(move |_t, x: &DVector<f64>, out: &mut [f64]| {
            match top_hessian_eigenvalue(&mut hessian, x, &options) {
                Ok(s) => {
                    out[0] = s.eigenvalue;
                    out[1] = s.iterations as f64;
                    out[2] = if s.converged { 1.0 } else { 0.0 };
                }
                Err(_) => {
                    out[0] = f64::NAN;
                    out[1] = 0.0;
                    out[2] = 0.0;
                }
            }
        });
        SharpnessObserver {
            record: RecordFunctionals::new(times, 3, f),
        }
    }

    /// The requested times.
    pub fn times(&self) -> &[f64] {
        self.record.times()
    }

    /// The records made so far, in time order.
    pub fn records(&self) -> Vec<SharpnessRecord> {
        let values = self.record.values();
        (0..self.record.recorded())
            .map(|i| SharpnessRecord {
                t: self.record.times()[i],
                eigenvalue: values[(i, 0)],
                iterations: values[(i, 1)] as usize,
                converged: values[(i, 2)] > 0.5,
            })
            .collect()
    }
}

impl Observer for SharpnessObserver<'_> {
    fn observe(&mut self, step: usize, t: f64, x: &DVector<f64>) -> Flow {
        self.record.observe(step, t, x)
    }
    fn next_time(&self) -> f64 {
        self.record.next_time()
    }
}
