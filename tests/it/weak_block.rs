//! The weak error with a block test function (`Measure::WeakBlock`, THEORY §8): the same
//! study, bit for bit, as the per-state `Measure::Weak` on both routes (per path, and
//! lockstep with partial blocks), with one call per block of paths per step size on the
//! lockstep route, and its error ending the study.

use nalgebra::DVector;
use noether_sde::analysis::convergence::lockstep::lockstep_convergence_study;
use noether_sde::analysis::convergence::{
    convergence_study, ConvergenceConfig, ConvergenceStudy, Measure, Reference,
};
use noether_sde::prelude::*;
use std::cell::RefCell;

fn bits(s: &ConvergenceStudy) -> Vec<u64> {
    let mut out: Vec<u64> = s
        .points
        .iter()
        .flat_map(|p| [p.h.to_bits(), p.error.to_bits(), p.std_error.to_bits()])
        .collect();
    out.extend([s.fit.slope, s.fit.ci_low, s.fit.ci_high].map(f64::to_bits));
    out
}

#[test]
fn block_functional_gives_the_per_state_study_with_one_call_per_block() -> Result<()> {
    let gbm = GeometricBrownianMotion::new(1.0, 0.5)?;
    let exact = |g: &BrownianGrid| DVector::from_element(1, gbm.exact(1.0, g.t1(), g.w_end()[0]));
    let reference = Reference::Exact(&exact);
    let cfg = ConvergenceConfig {
        coarsest: 2,
        finest: 5,
        paths: 45,
        seed: 7,
        ..Default::default()
    };
    let x0 = DVector::from_element(1, 1.0);
    let square = |x: &DVector<f64>| x[0] * x[0];
    let rows = RefCell::new(Vec::new());
    let block_square = |states: &[f64], out: &mut [f64]| -> Result<()> {
        rows.borrow_mut().push(out.len());
        for (o, &x) in out.iter_mut().zip(states) {
            *o = x * x;
        }
        Ok(())
    };
    let per_path_study = |measure| convergence_study(&gbm, &Milstein::new(), &x0, &cfg, reference, measure);
    let per_state = per_path_study(Measure::Weak(&square))?;
    let per_path = per_path_study(Measure::WeakBlock(&block_square))?;
    assert_eq!(bits(&per_path), bits(&per_state));
    assert_eq!(per_path.kind, "weak");
    // the per-path study: blocks of one, one per path per step size and one per reference
    assert_eq!(*rows.borrow(), vec![1; 45 * (4 + 1)]);
    rows.borrow_mut().clear();
    // the lockstep study, blocks of 20 (the last one of 5): one call per block per step
    // size and one for the block's references
    let lanes = lockstep_convergence_study(
        &gbm,
        &Milstein::new(),
        &x0,
        &cfg,
        reference,
        Measure::WeakBlock(&block_square),
        Some(20),
    )?;
    assert_eq!(bits(&lanes), bits(&per_state));
    let expected: Vec<usize> = [20, 20, 5].iter().flat_map(|&n| vec![n; 4 + 1]).collect();
    assert_eq!(*rows.borrow(), expected);
    Ok(())
}

#[test]
fn a_failing_block_functional_ends_the_study() -> Result<()> {
    let gbm = GeometricBrownianMotion::new(1.0, 0.5)?;
    let cfg = ConvergenceConfig {
        coarsest: 2,
        finest: 3,
        paths: 8,
        ..Default::default()
    };
    let x0 = DVector::from_element(1, 1.0);
    let failing =
        |_: &[f64], _: &mut [f64]| -> Result<()> { Err(Error::invalid("phi", "callback", "raised")) };
    for lanes in [false, true] {
        let measure = Measure::WeakBlock(&failing);
        let reference = Reference::Fine { offset: 2 };
        let study = if lanes {
            lockstep_convergence_study(&gbm, &EulerMaruyama::new(), &x0, &cfg, reference, measure, None)
        } else {
            convergence_study(&gbm, &EulerMaruyama::new(), &x0, &cfg, reference, measure)
        };
        assert!(
            matches!(&study, Err(Error::InvalidParameter { name, .. }) if *name == "phi"),
            "lanes {lanes}: {study:?}"
        );
    }
    Ok(())
}
