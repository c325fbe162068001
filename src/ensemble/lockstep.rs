//! Lockstep ensembles: a block of paths advanced together, one drift and one diffusion
//! evaluation per step for the whole block (THEORY §8, Euler–Maruyama).
//!
//! An SDE that can evaluate its coefficients on many states at once implements
//! [`BatchSde`]; [`LockstepProblem`] runs it as an [`EnsembleProblem`]. The state of a
//! block of `P` paths is stored path-major (`x[p·d + i]`), so a callback sees a `P × d`
//! array: this is the route of the Python bindings' vectorised `ns.Sde` callbacks (one
//! call per step for the block, never one per path).
//!
//! Every path draws its increments from its own [`IncrementStream`]
//! (`SeedTree(seed).rng(path, Brownian)`, in the same order as the per-path route), and
//! the Euler–Maruyama update is the per-path one, `X' = X + h a + b ΔW`, with the same
//! operations in the same order. So a [`BatchSde`] whose block coefficients do the
//! arithmetic of an [`crate::sde::Sde`] gives the per-path route's numbers bit for bit,
//! whatever the block width (tested on GBM), and ensemble statistics merge exactly as for
//! any other problem.
//!
//! A path whose state stops being finite is retired (counted as a divergence with its
//! step and time, as per path); its row is reset to `x0` so that the block's callbacks
//! never see non-finite input. A callback that fails fails every live path of its block
//! with that error.

use super::BLOCK;
use super::{
    Accumulator, BlockRecorder, Ensemble, EnsembleProblem, EnsembleStatistics, Functionals, PathObserver,
};
use crate::brownian::{BrownianPath, Increment, IncrementStream};
use crate::error::{check_finite, Error, Result};
use crate::rng::SeedTree;
use crate::scheme::TimeSpan;
use crate::sde::{Calculus, Noise};
use nalgebra::DVector;
use std::ops::Range;

/// An SDE `dX = a(t, X) dt + b(t, X) dW` whose coefficients are evaluated on a block of
/// states at once.
///
/// Layout: a block of `P` states is `x[p·d + i]`. [`BatchSde::drift_block`] writes
/// `a(t, x_p)` in the same layout. [`BatchSde::diffusion_block`] writes, per path, the
/// diagonal `b_i` (`d` numbers) for [`Noise::Diagonal`], and the matrix `b_{ij}` row-major
/// (`d × m` numbers, `b[p·d·m + i·m + j]`) for every other noise kind (scalar noise:
/// `m = 1`, one column).
pub trait BatchSde: Sync {
    /// State dimension `d`.
    fn dim(&self) -> usize;
    /// Number of Brownian motions `m`.
    fn noise_dim(&self) -> usize;
    /// Declared noise structure.
    fn noise(&self) -> Noise;
    /// Calculus of the equation (Euler–Maruyama solves Itô equations only).
    fn calculus(&self) -> Calculus {
        Calculus::Ito
    }
    /// Drift of every state of the block.
    ///
    /// # Errors
    /// Whatever the evaluation reports (e.g. a failing user callback).
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()>;
    /// Diffusion of every state of the block, in the layout of the trait docs.
    ///
    /// # Errors
    /// Whatever the evaluation reports.
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()>;
}

/// Numbers per path that [`BatchSde::diffusion_block`] writes.
pub fn diffusion_width(noise: Noise, dim: usize, noise_dim: usize) -> usize {
    match noise {
        Noise::Diagonal => dim,
        _ => dim * noise_dim,
    }
}

/// Paths of a [`BatchSde`] solved by Euler–Maruyama in lockstep.
pub struct LockstepProblem<'a, S: ?Sized> {
    sde: &'a S,
    x0: DVector<f64>,
    span: TimeSpan,
}

impl<'a, S: BatchSde + ?Sized> LockstepProblem<'a, S> {
    /// Euler–Maruyama from `x0` over `span`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] / [`Error::NonFinite`] for a bad `x0`;
    /// [`Error::Incompatible`] for a Stratonovich equation or diagonal noise with `m ≠ d`.
    pub fn euler_maruyama(sde: &'a S, x0: DVector<f64>, span: TimeSpan) -> Result<Self> {
        crate::error::check_vector("x0", &x0, sde.dim())?;
        if sde.calculus() != Calculus::Ito {
            return Err(Error::Incompatible {
                scheme: "euler_maruyama",
                reason: "Euler–Maruyama converges to the Itô solution; the SDE is declared Stratonovich"
                    .into(),
            });
        }
        let (d, m) = (sde.dim(), sde.noise_dim());
        if m == 0 {
            return Err(Error::invalid(
                "noise_dim",
                0,
                "at least one Brownian motion is needed",
            ));
        }
        let consistent = match sde.noise() {
            Noise::Diagonal => m == d,
            Noise::Scalar => m == 1,
            _ => true,
        };
        if !consistent {
            return Err(Error::Incompatible {
                scheme: "euler_maruyama",
                reason: format!("{:?} noise with d = {d} and m = {m}", sde.noise()),
            });
        }
        Ok(LockstepProblem { sde, x0, span })
    }

    /// The time span.
    pub fn span(&self) -> &TimeSpan {
        &self.span
    }
}

/// Buffers of one worker of a [`LockstepProblem`] (they grow to the widest block run).
#[derive(Debug, Clone)]
pub struct LockstepWorkspace {
    x: Vec<f64>,
    drift: Vec<f64>,
    diffusion: Vec<f64>,
    streams: Vec<Option<IncrementStream>>,
    inc: Increment,
    column: DVector<f64>,
}

impl<S: BatchSde + ?Sized> EnsembleProblem for LockstepProblem<'_, S> {
    type Workspace = LockstepWorkspace;

    fn dim(&self) -> usize {
        self.sde.dim()
    }

    fn time_range(&self) -> (f64, f64) {
        (self.span.t0(), self.span.t1())
    }

    fn workspace(&self) -> LockstepWorkspace {
        LockstepWorkspace {
            x: Vec::new(),
            drift: Vec::new(),
            diffusion: Vec::new(),
            streams: Vec::new(),
            inc: Increment::new(self.sde.noise_dim()),
            column: DVector::zeros(self.sde.dim()),
        }
    }

    /// Runs `paths` in one lockstep block (any number of paths, not only [`BLOCK`]).
    fn run_block<O: PathObserver>(
        &self,
        ws: &mut LockstepWorkspace,
        seeds: &SeedTree,
        paths: Range<u64>,
        observer: &mut O,
    ) {
        let (d, m, noise) = (self.sde.dim(), self.sde.noise_dim(), self.sde.noise());
        let width = diffusion_width(noise, d, m);
        let n = (paths.end - paths.start) as usize;
        ws.x.clear();
        for _ in 0..n {
            ws.x.extend_from_slice(self.x0.as_slice());
        }
        ws.drift.resize(n * d, 0.0);
        ws.diffusion.resize(n * width, 0.0);
        ws.streams.clear();
        ws.streams.extend(
            paths
                .clone()
                .map(|path| Some(IncrementStream::new(seeds, path, m))),
        );
        for path in paths.clone() {
            observer.observe(path, 0, self.span.t0(), &self.x0);
        }
        for k in 0..self.span.steps() {
            let t = self.span.time(k);
            let t_next = self.span.time(k + 1);
            ws.inc.h = self.span.step_size(k);
            let h = ws.inc.h;
            let evaluated = self
                .sde
                .drift_block(t, &ws.x, &mut ws.drift)
                .and_then(|()| self.sde.diffusion_block(t, &ws.x, &mut ws.diffusion));
            if let Err(e) = evaluated {
                for (p, stream) in ws.streams.iter_mut().enumerate() {
                    if stream.take().is_some() {
                        observer.finish(paths.start + p as u64, Err(e.clone()));
                    }
                }
                return;
            }
            for p in 0..n {
                let Some(stream) = ws.streams[p].as_mut() else {
                    continue; // retired earlier
                };
                let path = paths.start + p as u64;
                if let Err(e) = stream.next(&mut ws.inc) {
                    ws.streams[p] = None;
                    observer.finish(path, Err(e));
                    continue;
                }
                let dw = ws.inc.dw.as_slice();
                let x = &mut ws.x[p * d..(p + 1) * d];
                let a = &ws.drift[p * d..(p + 1) * d];
                let b = &ws.diffusion[p * width..(p + 1) * width];
                for i in 0..d {
                    let noise_term = match noise {
                        Noise::Diagonal => b[i] * dw[i],
                        _ if m == 1 => b[i] * dw[0],
                        _ => {
                            let row = &b[i * m..(i + 1) * m];
                            row.iter().zip(dw).fold(0.0, |s, (&bij, &w)| s + bij * w)
                        }
                    };
                    x[i] = x[i] + h * a[i] + noise_term;
                }
                if check_finite("state", x).is_err() {
                    ws.streams[p] = None;
                    x.copy_from_slice(self.x0.as_slice());
                    observer.finish(
                        path,
                        Err(Error::Divergence {
                            path,
                            step: k + 1,
                            t: t_next,
                        }),
                    );
                    continue;
                }
                ws.column.as_mut_slice().copy_from_slice(x);
                observer.observe(path, k + 1, t_next, &ws.column);
            }
        }
        for p in 0..n {
            if ws.streams[p].is_some() {
                ws.column
                    .as_mut_slice()
                    .copy_from_slice(&ws.x[p * d..(p + 1) * d]);
                observer.finish(paths.start + p as u64, Ok(&ws.column));
            }
        }
    }
}

impl Ensemble {
    /// [`Ensemble::statistics`] for a [`LockstepProblem`], run in lockstep blocks of
    /// `width` paths (rounded up to a multiple of [`BLOCK`], aligned like the ensemble's
    /// blocks) one after the other on the calling thread, with `between()` called after
    /// each block (e.g. to check for an interrupt: an error stops the run and is returned).
    /// The statistics are bit-identical to [`Ensemble::statistics`] on the same problem:
    /// the paths are the same and the reduction tree is keyed by path index.
    ///
    /// # Errors
    /// As [`Ensemble::statistics`]; the first error of `between`.
    pub fn lockstep_statistics<S, F>(
        &self,
        problem: &LockstepProblem<'_, S>,
        functionals: &Functionals<F>,
        width: usize,
        mut between: impl FnMut(u64) -> Result<()>,
    ) -> Result<EnsembleStatistics>
    where
        S: BatchSde + ?Sized,
        F: Fn(f64, &DVector<f64>, &mut [f64]) + Sync,
    {
        functionals.check_span(problem.time_range())?;
        let k = functionals.count;
        let per = width.div_ceil(BLOCK as usize).max(1);
        let mut rec = BlockRecorder::with_slots(functionals, false, per * BLOCK as usize);
        let mut ws = problem.workspace();
        let mut acc = Accumulator::new(k);
        let (first, count) = self.blocks();
        let mut i = 0;
        while i < count {
            let last = (i + per).min(count) - 1;
            let range = self.block(first, i).start..self.block(first, last).end;
            rec.reset(range.start);
            let len = (range.end - range.start) as usize;
            problem.run_block(&mut ws, &self.seeds, range.clone(), &mut rec);
            acc.record_block(&rec, len);
            self.report(&range);
            between(range.end - range.start)?;
            i = last + 1;
        }
        if let Some((_, e)) = acc.first_failure {
            return Err(e);
        }
        Ok(EnsembleStatistics::from_accumulator(
            self.seeds.seed(),
            self.paths.clone(),
            functionals.times.clone(),
            k,
            acc,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ensemble::SdeProblem;
    use crate::prelude::*;

    /// GBM `dX = μX dt + σX dW` on blocks, with the per-path route's arithmetic.
    struct BlockGbm(f64, f64);

    impl BatchSde for BlockGbm {
        fn dim(&self) -> usize {
            1
        }
        fn noise_dim(&self) -> usize {
            1
        }
        fn noise(&self) -> Noise {
            Noise::Scalar
        }
        fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
            for (o, &x) in out.iter_mut().zip(x) {
                *o = self.0 * x;
            }
            Ok(())
        }
        fn diffusion_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
            for (o, &x) in out.iter_mut().zip(x) {
                *o = self.1 * x;
            }
            Ok(())
        }
    }

    #[test]
    fn euler_maruyama_on_gbm_is_bit_identical_to_the_per_path_route() -> Result<()> {
        let (mu, sigma) = (0.5, 0.3);
        let gbm = GeometricBrownianMotion::new(mu, sigma)?;
        let block = BlockGbm(gbm.mu(), sigma);
        let span = TimeSpan::new(0.0, 1.0, 0.01)?;
        let x0 = DVector::from_element(1, 1.0);
        let per_path = SdeProblem::new(&gbm, EulerMaruyama::new(), x0.clone(), span)?;
        let lockstep = LockstepProblem::euler_maruyama(&block, x0, span)?;
        let record = Functionals::new(
            vec![0.0, 0.5, 1.0],
            1,
            |_t: f64, x: &DVector<f64>, out: &mut [f64]| out[0] = x[0],
        )?;
        let ensemble = Ensemble::new(11, 3..300);
        let finals_a = ensemble.final_states(&per_path)?;
        let finals_b = ensemble.final_states(&lockstep)?;
        for (a, b) in finals_a.into_iter().zip(finals_b) {
            assert_eq!(a?[0].to_bits(), b?[0].to_bits());
        }
        let expected = ensemble.statistics(&per_path, &record)?;
        for width in [1, 64, 100, 1000] {
            let got = ensemble.lockstep_statistics(&lockstep, &record, width, |_| Ok(()))?;
            assert_eq!(got, expected, "width {width}");
        }
        Ok(())
    }

    #[test]
    fn divergence_and_callback_errors_are_reported_per_path() -> Result<()> {
        struct Explodes;
        impl BatchSde for Explodes {
            fn dim(&self) -> usize {
                1
            }
            fn noise_dim(&self) -> usize {
                1
            }
            fn noise(&self) -> Noise {
                Noise::Additive
            }
            fn drift_block(&self, _t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
                out.iter_mut().zip(x).for_each(|(o, &x)| *o = x * x * 1e10);
                Ok(())
            }
            fn diffusion_block(&self, _t: f64, _x: &[f64], out: &mut [f64]) -> Result<()> {
                out.fill(1.0);
                Ok(())
            }
        }
        let span = TimeSpan::new(0.0, 1.0, 0.1)?;
        let problem = LockstepProblem::euler_maruyama(&Explodes, DVector::from_element(1, 1.0), span)?;
        let record = Functionals::new(vec![1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
            out[0] = x[0]
        })?;
        let stats = Ensemble::new(1, 0..10).lockstep_statistics(&problem, &record, 64, |_| Ok(()))?;
        assert_eq!(stats.divergent(), 10);
        struct Fails;
        impl BatchSde for Fails {
            fn dim(&self) -> usize {
                1
            }
            fn noise_dim(&self) -> usize {
                1
            }
            fn noise(&self) -> Noise {
                Noise::Additive
            }
            fn drift_block(&self, _t: f64, _x: &[f64], _out: &mut [f64]) -> Result<()> {
                Err(Error::invalid("drift", "callback", "failed"))
            }
            fn diffusion_block(&self, _t: f64, _x: &[f64], _out: &mut [f64]) -> Result<()> {
                Ok(())
            }
        }
        let problem = LockstepProblem::euler_maruyama(&Fails, DVector::from_element(1, 1.0), span)?;
        let err = Ensemble::new(1, 0..10).lockstep_statistics(&problem, &record, 64, |_| Ok(()));
        assert!(matches!(err, Err(Error::InvalidParameter { name: "drift", .. })));
        Ok(())
    }
}
