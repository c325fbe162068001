//! A wrapper that hides an SDE's one-dimensional scalar form, so it is solved through
//! the `DVector` route (shared by the integration tests and tests/allocations.rs).

use nalgebra::DVector;
use noether_sde::sde::{DerivativeScratch, Noise, Sde};

/// The wrapped SDE without its scalar form.
pub struct VectorOnly<S>(pub S);

impl<S: Sde> Sde for VectorOnly<S> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn noise_dim(&self) -> usize {
        self.0.noise_dim()
    }
    fn noise(&self) -> Noise {
        self.0.noise()
    }
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        self.0.drift(t, x, out)
    }
    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        self.0.diffusion_apply(t, x, dw, out)
    }
    fn diffusion_derivative(
        &self,
        t: f64,
        x: &DVector<f64>,
        v: &DVector<f64>,
        c: &DVector<f64>,
        out: &mut DVector<f64>,
        scratch: &mut DerivativeScratch,
    ) {
        self.0.diffusion_derivative(t, x, v, c, out, scratch)
    }
}
