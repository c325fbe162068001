//! Lockstep steps on increments given by the caller instead of drawn by the lanes: the
//! hook of studies that solve every path of a block on its own stored Brownian path
//! (the lockstep convergence study, [`crate::analysis::convergence::lockstep`], feeds
//! the increments of each path's [`crate::brownian::BrownianGrid`], coarsened exactly by
//! summation, with its Lévy areas carried by Chen's relation for the schemes that read
//! them). The update is the driver's own ([`LockstepProblem`]'s `advance`, THEORY §8),
//! so the numbers are the per-path scheme's, bit for bit.

use super::{diffusion_width, BatchSde, LockstepProblem, LockstepScheme, LockstepWorkspace};
use crate::error::{Error, IncompatibleReason, Result};
use crate::sde::SdeExt;

impl<S: BatchSde + ?Sized> LockstepProblem<'_, S> {
    /// Advances the block of states `x` (path-major, `x[p·d + i]`, `n = x.len()/d` paths)
    /// by one step of size `h` from `t` on the increments `dw` (path-major, `dw[p·m + j]`),
    /// with the workspace `ws` (from [`crate::ensemble::EnsembleProblem::workspace`]). No
    /// divergence check and no observation: the caller owns the paths. `x` and `dw` are
    /// swapped into the workspace and back (nothing is copied or allocated once the
    /// buffers have grown to the block).
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] if `x` is not a whole number of states or `dw` not
    /// `m` numbers per path; [`Error::Incompatible`] if the scheme reads Lévy areas
    /// ([`LockstepProblem::reads_area`]: use
    /// [`LockstepProblem::step_on_increments_with_areas`]); whatever the block
    /// evaluations report.
    pub fn step_on_increments(
        &self,
        ws: &mut LockstepWorkspace,
        t: f64,
        h: f64,
        x: &mut Vec<f64>,
        dw: &mut Vec<f64>,
    ) -> Result<()> {
        if self.reads_area() {
            return Err(Error::Incompatible {
                scheme: self.scheme.name(),
                reason: IncompatibleReason::NeedsLevyArea {
                    provider: "step_on_increments (use step_on_increments_with_areas)",
                },
            });
        }
        self.step_given(ws, t, h, x, dw, None)
    }

    /// [`LockstepProblem::step_on_increments`] with each path's Lévy areas of the step
    /// (path-major, `areas[p·m² + j·m + k] = A_jk` of path `p`, e.g. from its
    /// [`crate::brownian::BrownianGrid`]), for the schemes that read them; swapped in and
    /// back like `x` and `dw`.
    ///
    /// # Errors
    /// As [`LockstepProblem::step_on_increments`]; [`Error::DimensionMismatch`] if
    /// `areas` is not `m²` numbers per path.
    pub fn step_on_increments_with_areas(
        &self,
        ws: &mut LockstepWorkspace,
        t: f64,
        h: f64,
        x: &mut Vec<f64>,
        dw: &mut Vec<f64>,
        areas: &mut Vec<f64>,
    ) -> Result<()> {
        self.step_given(ws, t, h, x, dw, Some(areas))
    }

    fn step_given(
        &self,
        ws: &mut LockstepWorkspace,
        t: f64,
        h: f64,
        x: &mut Vec<f64>,
        dw: &mut Vec<f64>,
        mut areas: Option<&mut Vec<f64>>,
    ) -> Result<()> {
        let (d, m, noise) = (self.sde.dim(), self.sde.noise_dim(), self.sde.noise());
        let n = x.len() / d;
        if x.len() != n * d {
            return Err(Error::DimensionMismatch {
                what: "block of states (path-major, d per path)",
                expected: (n + 1) * d,
                got: x.len(),
            });
        }
        if dw.len() != n * m {
            return Err(Error::DimensionMismatch {
                what: "block of increments (path-major, m per path)",
                expected: n * m,
                got: dw.len(),
            });
        }
        if let Some(areas) = areas.as_deref() {
            if areas.len() != n * m * m {
                return Err(Error::DimensionMismatch {
                    what: "block of Lévy areas (path-major, m² per path)",
                    expected: n * m * m,
                    got: areas.len(),
                });
            }
        }
        ws.drift.resize(n * d, 0.0);
        ws.diffusion.resize(n * diffusion_width(noise, d, m), 0.0);
        let milstein = matches!(
            self.scheme,
            LockstepScheme::Milstein | LockstepScheme::MilsteinLevy
        );
        let derivatives = if milstein { n * d } else { 0 };
        ws.correction.resize(derivatives, 0.0);
        ws.correction_unit.resize(derivatives, 0.0);
        std::mem::swap(&mut ws.x, x);
        std::mem::swap(&mut ws.dw, dw);
        if let Some(areas) = areas.as_deref_mut() {
            std::mem::swap(&mut ws.areas, areas);
        }
        let outcome = self.advance(ws, n, t, h);
        std::mem::swap(&mut ws.x, x);
        std::mem::swap(&mut ws.dw, dw);
        if let Some(areas) = areas {
            std::mem::swap(&mut ws.areas, areas);
        }
        outcome
    }
}
