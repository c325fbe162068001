//! Moving between Itô and Stratonovich readings of the same coefficients (THEORY §7a).
//!
//! The Itô SDE `dX = a dt + b dW` is the Stratonovich SDE
//! `dX = (a − ½ Σ_j (L^j b_j)) dt + b ∘ dW`, `L^j = Σ_l b_{lj} ∂_l`.
//!
//! - [`StratonovichForm`] is that conversion: the *same process*, written so that a
//!   Stratonovich scheme (stochastic Heun) solves it correctly.
//! - [`ReadAsStratonovich`] keeps the coefficients and only changes the calculus: a
//!   *different process*, on purpose. THEORY §7a: the Noether flow is purely the Itô
//!   correction, so a Stratonovich scheme run on the SGD-SDE's Itô coefficients conserves
//!   the charge — the contrast that shows where the flow comes from.
//!
//! The correction costs `m` diffusion columns and `m` directional derivatives per drift
//! evaluation (finite differences unless the SDE overrides
//! [`Sde::diffusion_derivative`]); its buffers live in a per-thread pool.

use super::{BatchSde, Calculus, DerivativeScratch, Noise, Sde, SdeExt, Structure};
use crate::error::{Error, Result};
use nalgebra::DVector;
use std::cell::RefCell;

struct Buffers {
    unit: DVector<f64>,
    column: DVector<f64>,
    term: DVector<f64>,
    scratch: DerivativeScratch,
}

thread_local! {
    static BUFFERS: RefCell<Option<Buffers>> = const { RefCell::new(None) };
}

/// `out −= ½ Σ_j (L^j b_j)(t, x)`, the Itô–Stratonovich drift correction (no allocation
/// after the first call on a thread).
fn subtract_half_ito_correction<S: Sde + ?Sized>(sde: &S, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
    let (d, m) = (sde.dim(), sde.noise_dim());
    BUFFERS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fits = slot
            .as_ref()
            .is_some_and(|b| b.unit.len() == m && b.column.len() == d);
        if !fits {
            *slot = Some(Buffers {
                unit: DVector::zeros(m),
                column: DVector::zeros(d),
                term: DVector::zeros(d),
                scratch: DerivativeScratch::new(d),
            });
        }
        let b = slot.as_mut().expect("just filled");
        if sde.noise() == Noise::Additive {
            return;
        }
        for j in 0..m {
            b.unit.fill(0.0);
            b.unit[j] = 1.0;
            sde.diffusion_apply(t, x, &b.unit, &mut b.column);
            sde.diffusion_derivative(t, x, &b.column, &b.unit, &mut b.term, &mut b.scratch);
            out.axpy(-0.5, &b.term, 1.0);
        }
    })
}

fn require_ito<S: Sde + ?Sized>(sde: &S, what: &'static str) -> Result<()> {
    if sde.calculus() == Calculus::Ito {
        Ok(())
    } else {
        Err(Error::Incompatible {
            scheme: what,
            reason: crate::error::IncompatibleReason::AlreadyStratonovich,
        })
    }
}

/// The Itô SDE `inner` rewritten in Stratonovich form (the same process):
/// drift `a − ½ Σ_j L^j b_j`, same diffusion.
///
/// ```
/// use noether_sde::prelude::*;
/// use noether_sde::sde::convert::StratonovichForm;
/// use nalgebra::DVector;
/// let gbm = GeometricBrownianMotion::new(1.0, 0.5)?;
/// let strat = StratonovichForm::new(gbm)?;
/// let mut a = DVector::zeros(1);
/// strat.drift(0.0, &DVector::from_element(1, 2.0), &mut a);
/// assert!((a[0] - (1.0 - 0.125) * 2.0).abs() < 1e-8); // (μ − s²/2) x
/// # Ok::<(), noether_sde::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct StratonovichForm<S> {
    inner: S,
}

impl<S: Sde> StratonovichForm<S> {
    /// Wraps an Itô SDE.
    ///
    /// # Errors
    /// [`Error::Incompatible`] if `inner` is already Stratonovich.
    pub fn new(inner: S) -> Result<Self> {
        require_ito(&inner, "StratonovichForm")?;
        Ok(StratonovichForm { inner })
    }

    /// The wrapped SDE.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

/// The coefficients of the Itô SDE `inner`, *read* as a Stratonovich SDE (a different
/// process; see the module docs). For the SGD-SDE under an exact symmetry with γ = 0
/// this process conserves the charge (THEORY §7a).
#[derive(Debug, Clone)]
pub struct ReadAsStratonovich<S> {
    inner: S,
}

impl<S: Sde> ReadAsStratonovich<S> {
    /// Wraps an Itô SDE.
    ///
    /// # Errors
    /// [`Error::Incompatible`] if `inner` is already Stratonovich.
    pub fn new(inner: S) -> Result<Self> {
        require_ito(&inner, "ReadAsStratonovich")?;
        Ok(ReadAsStratonovich { inner })
    }
}

macro_rules! delegate_diffusion {
    () => {
        fn dim(&self) -> usize {
            self.inner.dim()
        }
        fn structure(&self) -> Structure {
            self.inner.structure().stratonovich()
        }
        fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
            self.inner.diffusion_apply(t, x, dw, out)
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
            self.inner.diffusion_derivative(t, x, v, c, out, scratch)
        }
    };
}

impl<S: Sde> Sde for StratonovichForm<S> {
    delegate_diffusion!();
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        self.inner.drift(t, x, out);
        subtract_half_ito_correction(&self.inner, t, x, out);
    }
}

/// Sync so that, when `inner` has a block form, this reading has one too (the same
/// blocks: only the calculus changes) and its ensembles run on the lockstep lanes.
impl<S: Sde + Sync> Sde for ReadAsStratonovich<S> {
    delegate_diffusion!();
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        self.inner.drift(t, x, out)
    }
    fn batch(&self) -> Option<&dyn BatchSde> {
        self.inner.batch().map(|_| self as &dyn BatchSde)
    }
    fn drift_and_diffusion(
        &self,
        t: f64,
        x: &DVector<f64>,
        dw: &DVector<f64>,
        drift: &mut DVector<f64>,
        diffusion: &mut DVector<f64>,
    ) {
        self.inner.drift_and_diffusion(t, x, dw, drift, diffusion)
    }
}

/// The wrapped SDE's block form, unchanged (reached through [`Sde::batch`], which offers
/// it only when the wrapped SDE has one).
impl<S: Sde + Sync> BatchSde for ReadAsStratonovich<S> {
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.blocks()?.drift_block(t, x, out)
    }
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.blocks()?.diffusion_block(t, x, out)
    }
    fn has_milstein_block(&self) -> bool {
        self.inner.batch().is_some_and(BatchSde::has_milstein_block)
    }
    fn milstein_block(&self, t: f64, x: &[f64], c: &[f64], out: &mut [f64]) -> Result<()> {
        self.blocks()?.milstein_block(t, x, c, out)
    }
}

impl<S: Sde> ReadAsStratonovich<S> {
    /// The wrapped SDE's block form.
    fn blocks(&self) -> Result<&dyn BatchSde> {
        self.inner
            .batch()
            .ok_or_else(|| Error::invalid("batch", "ReadAsStratonovich", "the wrapped SDE has no block form"))
    }
}
