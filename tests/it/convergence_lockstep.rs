//! The lockstep convergence study (`analysis::convergence::lockstep`) against the
//! per-path study: the same errors, standard errors and fitted orders with intervals,
//! bit for bit, for every lane scheme × reference problem × kind (strong, weak), with
//! block widths that leave partial blocks; and proof that the lanes ran (the SDE's
//! per-path methods are never called, its block methods once per step per block).

use nalgebra::DVector;
use noether_sde::analysis::convergence::lockstep::lockstep_convergence_study;
use noether_sde::analysis::convergence::{
    convergence_study, ConvergenceConfig, ConvergenceStudy, Measure, Reference,
};
use noether_sde::ensemble::lockstep::{BatchSde, BlockScratch};
use noether_sde::prelude::*;
use noether_sde::sde::DerivativeScratch;
use std::sync::atomic::{AtomicU64, Ordering};

/// `inner` with its per-path and block calls counted (everything forwarded).
struct Watched<'a, S> {
    inner: &'a S,
    per_path: AtomicU64,
    blocks: AtomicU64,
}

impl<'a, S: Sde + Sync> Watched<'a, S> {
    fn new(inner: &'a S) -> Self {
        Watched {
            inner,
            per_path: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
        }
    }
    fn block(&self) -> &dyn BatchSde {
        self.inner.batch().expect("a reference problem with a block form")
    }
}

impl<S: Sde + Sync> Sde for Watched<'_, S> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn structure(&self) -> Structure {
        self.inner.structure()
    }
    fn drift(&self, t: f64, x: &DVector<f64>, out: &mut DVector<f64>) {
        self.per_path.fetch_add(1, Ordering::Relaxed);
        self.inner.drift(t, x, out)
    }
    fn diffusion_apply(&self, t: f64, x: &DVector<f64>, dw: &DVector<f64>, out: &mut DVector<f64>) {
        self.per_path.fetch_add(1, Ordering::Relaxed);
        self.inner.diffusion_apply(t, x, dw, out)
    }
    fn drift_and_diffusion(
        &self,
        t: f64,
        x: &DVector<f64>,
        dw: &DVector<f64>,
        drift: &mut DVector<f64>,
        diffusion: &mut DVector<f64>,
    ) {
        self.per_path.fetch_add(1, Ordering::Relaxed);
        self.inner.drift_and_diffusion(t, x, dw, drift, diffusion)
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
        self.per_path.fetch_add(1, Ordering::Relaxed);
        self.inner.diffusion_derivative(t, x, v, c, out, scratch)
    }
    fn batch(&self) -> Option<&dyn BatchSde> {
        Some(self)
    }
}

impl<S: Sde + Sync> BatchSde for Watched<'_, S> {
    fn drift_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.block().drift_block(t, x, out)
    }
    fn diffusion_block(&self, t: f64, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.block().diffusion_block(t, x, out)
    }
    fn has_milstein_block(&self) -> bool {
        self.block().has_milstein_block()
    }
    fn milstein_block(&self, t: f64, x: &[f64], c: &[f64], out: &mut [f64]) -> Result<()> {
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.block().milstein_block(t, x, c, out)
    }
    fn has_derivative_block(&self) -> bool {
        self.block().has_derivative_block()
    }
    fn derivative_block(
        &self,
        t: f64,
        x: &[f64],
        v: &[f64],
        c: &[f64],
        out: &mut [f64],
        scratch: &mut BlockScratch,
    ) -> Result<()> {
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.block().derivative_block(t, x, v, c, out, scratch)
    }
}

fn bits(s: &ConvergenceStudy) -> Vec<u64> {
    let mut out: Vec<u64> = s
        .points
        .iter()
        .flat_map(|p| {
            [
                p.h.to_bits(),
                p.error.to_bits(),
                p.std_error.to_bits(),
                p.paths as u64,
            ]
        })
        .collect();
    let f = &s.fit;
    out.extend([f.slope, f.std_error, f.ci_low, f.ci_high].map(f64::to_bits));
    out
}

/// The lockstep study (automatic width and a width of 7, which leaves a partial last
/// block) gives the per-path study's numbers; with `lanes_only`, the per-path methods
/// were never called and the block methods a fixed number of times per step per block.
#[allow(clippy::too_many_arguments)]
fn assert_same<S: Sde + Sync, K: Scheme>(
    name: &str,
    sde: &S,
    scheme: K,
    x0: &[f64],
    cfg: &ConvergenceConfig,
    reference: Reference<'_>,
    measure: Measure<'_>,
    lanes_only: bool,
) -> Result<()> {
    let x0 = DVector::from_column_slice(x0);
    let per_path = convergence_study(sde, &scheme, &x0, cfg, reference, measure)?;
    for width in [None, Some(7)] {
        let watched = Watched::new(sde);
        let lanes = lockstep_convergence_study(&watched, &scheme, &x0, cfg, reference, measure, width)?;
        assert_eq!(bits(&lanes), bits(&per_path), "{name}, width {width:?}");
        assert_eq!(lanes.scheme, per_path.scheme);
        if lanes_only {
            assert_eq!(
                watched.per_path.load(Ordering::Relaxed),
                0,
                "{name}: per-path calls"
            );
            let blocks = cfg.paths.div_ceil(width.unwrap_or(cfg.paths)) as u64;
            let calls = watched.blocks.load(Ordering::Relaxed);
            assert_eq!(calls % blocks, 0, "{name}: {calls} calls over {blocks} blocks");
        }
    }
    Ok(())
}

fn config(coarsest: u32, finest: u32, paths: usize) -> ConvergenceConfig {
    ConvergenceConfig {
        coarsest,
        finest,
        paths,
        seed: 91,
        ..Default::default()
    }
}

#[test]
fn gbm_every_lane_scheme_strong_and_weak_exact_reference() -> Result<()> {
    let gbm = GeometricBrownianMotion::new(1.5, 0.5)?;
    let exact = |g: &BrownianGrid| DVector::from_element(1, gbm.exact(1.0, g.t1(), g.w_end()[0]));
    let square = |x: &DVector<f64>| x[0] * x[0];
    let cfg = config(2, 6, 45);
    for measure in [Measure::Strong, Measure::Weak(&square)] {
        let r = Reference::Exact(&exact);
        let k = measure.name();
        assert_same(
            &format!("gbm em {k}"),
            &gbm,
            EulerMaruyama::new(),
            &[1.0],
            &cfg,
            r,
            measure,
            true,
        )?;
        assert_same(
            &format!("gbm milstein {k}"),
            &gbm,
            Milstein::new(),
            &[1.0],
            &cfg,
            r,
            measure,
            true,
        )?;
        assert_same(
            &format!("gbm rk {k}"),
            &gbm,
            RkMilstein::new(),
            &[1.0],
            &cfg,
            r,
            measure,
            true,
        )?;
        // Heun on the Stratonovich form, whose exact solution is the same function of W
        let strat = gbm.stratonovich_form();
        let exact_s = |g: &BrownianGrid| DVector::from_element(1, strat.exact(1.0, g.t1(), g.w_end()[0]));
        let r = Reference::Exact(&exact_s);
        assert_same(
            &format!("gbm heun {k}"),
            &strat,
            Heun::new(),
            &[1.0],
            &cfg,
            r,
            measure,
            true,
        )?;
        // the same scheme as its own reference, on lanes too
        let r = Reference::SameScheme { offset: 2 };
        assert_same(
            &format!("gbm em same {k}"),
            &gbm,
            EulerMaruyama::new(),
            &[1.0],
            &cfg,
            r,
            measure,
            true,
        )?;
    }
    Ok(())
}

#[test]
fn ou_every_lane_scheme_with_the_milstein_levy_reference_on_lanes() -> Result<()> {
    let ou = OrnsteinUhlenbeck::new(1.0, 0.5, 0.8)?;
    let square = |x: &DVector<f64>| x[0] * x[0];
    let cfg = config(2, 5, 40);
    for measure in [Measure::Strong, Measure::Weak(&square)] {
        let r = Reference::Fine { offset: 2 };
        let k = measure.name();
        assert_same(
            &format!("ou em {k}"),
            &ou,
            EulerMaruyama::new(),
            &[2.0],
            &cfg,
            r,
            measure,
            true,
        )?;
        assert_same(
            &format!("ou milstein {k}"),
            &ou,
            Milstein::new(),
            &[2.0],
            &cfg,
            r,
            measure,
            true,
        )?;
        assert_same(
            &format!("ou rk {k}"),
            &ou,
            RkMilstein::new(),
            &[2.0],
            &cfg,
            r,
            measure,
            true,
        )?;
    }
    Ok(())
}

#[test]
fn noncommutative_lane_schemes_with_per_path_and_same_scheme_references() -> Result<()> {
    let sq = |x: &DVector<f64>| x[1] * x[1];
    let cfg = config(2, 5, 30);
    let x0 = [0.3, 0.1];
    for measure in [Measure::Strong, Measure::Weak(&sq)] {
        let k = measure.name();
        // the Milstein–Lévy reference on lanes too (each path's Lévy areas from its
        // grid, the derivative terms by the block central difference): one block call
        // per step, never one per path
        let r = Reference::Fine { offset: 2 };
        assert_same(
            &format!("nc em fine {k}"),
            &NonCommutative,
            EulerMaruyama::new(),
            &x0,
            &cfg,
            r,
            measure,
            true,
        )?;
        // RK-Milstein and Milstein–Lévy read the grid's Lévy areas at every level
        assert_same(
            &format!("nc rk fine {k}"),
            &NonCommutative,
            RkMilstein::new(),
            &x0,
            &cfg,
            r,
            measure,
            true,
        )?;
        assert_same(
            &format!("nc milstein_levy same {k}"),
            &NonCommutative,
            MilsteinLevy::new(),
            &x0,
            &cfg,
            Reference::SameScheme { offset: 1 },
            measure,
            true,
        )?;
        let r = Reference::SameScheme { offset: 1 };
        assert_same(
            &format!("nc em same {k}"),
            &NonCommutative,
            EulerMaruyama::new(),
            &x0,
            &cfg,
            r,
            measure,
            true,
        )?;
    }
    Ok(())
}

#[test]
fn schemes_without_lanes_fall_back_to_the_per_path_study() -> Result<()> {
    let gbm = GeometricBrownianMotion::new(1.0, 0.3)?;
    let cfg = config(2, 5, 20);
    let r = Reference::Fine { offset: 1 };
    assert_same(
        "gbm milstein_no_levy",
        &gbm,
        MilsteinLevy::without_areas(),
        &[1.0],
        &cfg,
        r,
        Measure::Strong,
        false,
    )?;
    // Milstein has no lanes on general noise: the per-path study
    let err = lockstep_convergence_study(
        &Watched::new(&NonCommutative),
        &Milstein::new(),
        &DVector::zeros(2),
        &cfg,
        r,
        Measure::Strong,
        None,
    );
    assert!(matches!(err, Err(Error::Incompatible { .. })), "{err:?}");
    Ok(())
}

#[test]
fn bad_configurations_err_as_in_the_per_path_study() -> Result<()> {
    let gbm = GeometricBrownianMotion::new(1.0, 0.3)?;
    let x0 = DVector::from_element(1, 1.0);
    let r = Reference::Fine { offset: 1 };
    for cfg in [config(5, 5, 20), config(2, 5, 1), config(2, 30, 20)] {
        let lanes =
            lockstep_convergence_study(&gbm, &EulerMaruyama::new(), &x0, &cfg, r, Measure::Strong, None);
        let per_path = convergence_study(&gbm, &EulerMaruyama::new(), &x0, &cfg, r, Measure::Strong);
        assert!(matches!(lanes, Err(Error::InvalidParameter { .. })), "{lanes:?}");
        assert_eq!(format!("{lanes:?}"), format!("{per_path:?}"));
    }
    let bad = DVector::from_element(2, 1.0);
    let lanes = lockstep_convergence_study(
        &gbm,
        &EulerMaruyama::new(),
        &bad,
        &config(2, 4, 4),
        r,
        Measure::Strong,
        None,
    );
    assert!(matches!(lanes, Err(Error::DimensionMismatch { .. })), "{lanes:?}");
    Ok(())
}

/// A path that blows up (GBM with an absurd negative drift: `x` overflows to `±∞` at
/// the second step, `∞ − ∞` makes NaN at the third) fails the study with the per-path
/// study's error: the same path, step and time.
#[test]
fn a_diverging_path_is_reported_as_per_path() -> Result<()> {
    let wild = GeometricBrownianMotion::new(-1e200, 0.5)?;
    let exact = |g: &BrownianGrid| DVector::from_element(1, wild.exact(1.0, g.t1(), g.w_end()[0]));
    let x0 = DVector::from_element(1, 1.0);
    let cfg = config(1, 3, 20);
    let r = Reference::Exact(&exact);
    let per_path = convergence_study(&wild, &EulerMaruyama::new(), &x0, &cfg, r, Measure::Strong);
    let lanes = lockstep_convergence_study(
        &wild,
        &EulerMaruyama::new(),
        &x0,
        &cfg,
        r,
        Measure::Strong,
        Some(6),
    );
    assert!(matches!(per_path, Err(Error::Divergence { .. })), "{per_path:?}");
    assert_eq!(format!("{lanes:?}"), format!("{per_path:?}"));
    Ok(())
}
