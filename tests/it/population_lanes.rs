//! The population SGD-SDEs of the paper's models (THEORY §1, §6: scalar factorisation,
//! matrix factorisation, the normalised linear model) on the lockstep route: every path
//! bit-identical to the per-path route (`SdeProblem::new` against `SdeProblem::per_path`,
//! and the lockstep driver over several block widths), for every scheme the lanes solve
//! them with (THEORY §8: Euler–Maruyama; RK-Milstein, with each path's Lévy areas on general
//! noise; Milstein for scalar noise; Heun on the
//! Stratonovich reading of the same coefficients, `sde::convert::ReadAsStratonovich`), including partial lane groups, a
//! shorter last step and diverging lanes.

use crate::common::ROUNDING;
use nalgebra::DVector;
use noether_sde::analysis::fixed_points::{
    default_matrix_factorization, default_normalized_linear, unbalanced_start,
};
use noether_sde::ensemble::lockstep::{LockstepProblem, LockstepScheme};
use noether_sde::ensemble::{Ensemble, EnsembleProblem, Functionals, PathObserver, SdeProblem};
use noether_sde::models::{MatrixFactorization, NormalizedLinear, ScalarFactorization};
use noether_sde::observe::Flow;
use noether_sde::prelude::*;
use noether_sde::sde::convert::ReadAsStratonovich;
use noether_sde::sgd::{ModifiedEquation, PopulationForms, Schedule, SgdConfig, SgdSde};
use noether_sde::Error;
use std::ops::Range;

/// Every path's final state (its bits) or error, as the lockstep driver reports it, under
/// the ensemble's divergence bound.
struct Finals(Vec<(u64, String)>, f64);

impl PathObserver for Finals {
    fn divergence_bound(&self) -> f64 {
        self.1
    }
    fn observe(&mut self, _path: u64, _step: usize, _t: f64, _x: &DVector<f64>) -> Flow {
        Flow::Continue
    }
    fn finish(&mut self, path: u64, outcome: noether_sde::Result<&DVector<f64>>) {
        self.0.push((path, outcome_text(outcome.cloned())));
    }
}

/// A final state as its bits, an error as its debug text (path, step and time of a
/// divergence included).
fn outcome_text(outcome: noether_sde::Result<DVector<f64>>) -> String {
    match outcome {
        Ok(x) => format!("{:?}", x.iter().map(|v| v.to_bits()).collect::<Vec<_>>()),
        Err(e) => format!("{e:?}"),
    }
}

/// Final states (or errors: divergences with their path, step and time) and statistics
/// of `SdeProblem::per_path` and `SdeProblem::new` (checked to be lockstep) compared bit
/// for bit, the statistics of the lockstep driver over blocks of several widths, and its
/// final states in lockstep blocks of exactly 1, 8 and 100 paths.
fn assert_same_paths<S, K>(sde: &S, scheme: K, x0: &DVector<f64>, span: TimeSpan, paths: Range<u64>) -> usize
where
    S: Sde + Sync,
    K: Scheme + Sync,
{
    let name = scheme.info().name;
    let per_path = SdeProblem::per_path(sde, scheme.clone(), x0.clone(), span).unwrap();
    assert!(!per_path.is_lockstep());
    let routed = SdeProblem::new(sde, scheme, x0.clone(), span).unwrap();
    assert!(routed.is_lockstep(), "{name}: the default route is lockstep");
    let lanes_scheme = LockstepScheme::from_name(name).unwrap();
    let lanes = LockstepProblem::new(sde.batch().unwrap(), lanes_scheme, x0.clone(), span).unwrap();
    let d = x0.len();
    let (t0, t1) = (span.t0(), span.t1());
    let record = Functionals::new(
        vec![t0, 0.5 * (t0 + t1), t1],
        d,
        |_t: f64, x: &DVector<f64>, out: &mut [f64]| out.copy_from_slice(x.as_slice()),
    )
    .unwrap();
    let ensemble = Ensemble::new(11, paths.clone());
    let finals_a = ensemble.final_states(&per_path).unwrap();
    let finals_b = ensemble.final_states(&routed).unwrap();
    assert_eq!(finals_a.len(), finals_b.len());
    let mut diverged = 0;
    for (i, (a, b)) in finals_a.into_iter().zip(finals_b).enumerate() {
        match (a, b) {
            (Ok(a), Ok(b)) => {
                let bits = |x: DVector<f64>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(a), bits(b), "{name}, path {i}");
            }
            (a, b) => {
                diverged += usize::from(matches!(a, Err(Error::Divergence { .. })));
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "{name}, path {i}");
            }
        }
    }
    let seeds = SeedTree::new(11);
    let reference: Vec<String> = ensemble
        .final_states(&per_path)
        .unwrap()
        .into_iter()
        .map(outcome_text)
        .collect();
    for width in [1u64, 8, 100] {
        let mut ws = lanes.workspace();
        let mut finals = Finals(Vec::new(), ensemble.divergence_bound());
        let mut start = paths.start;
        while start < paths.end {
            let end = (start + width).min(paths.end);
            lanes.run_block(&mut ws, &seeds, start..end, &mut finals);
            start = end;
        }
        finals.0.sort_by_key(|&(path, _)| path);
        let got: Vec<String> = finals.0.into_iter().map(|(_, text)| text).collect();
        assert_eq!(got, reference, "{name}, lockstep blocks of {width}");
    }
    let expected = ensemble.statistics(&per_path, &record).unwrap();
    assert_eq!(ensemble.statistics(&routed, &record).unwrap(), expected, "{name}");
    for width in [1, 64, 100, 1000] {
        let got = ensemble
            .lockstep_statistics(&lanes, &record, width, |_| Ok(()))
            .unwrap();
        assert_eq!(got, expected, "{name}, width {width}");
    }
    diverged
}

fn scalar_factorization() -> ScalarFactorization {
    ScalarFactorization::new(1.0, 0.5).unwrap()
}

fn warmup(eta: f64) -> Schedule {
    Schedule::LinearWarmup {
        eta,
        eta_start: 0.2 * eta,
        warmup_time: 0.5,
    }
}

#[test]
fn scalar_factorization_is_bit_identical_on_lanes() {
    let sf = scalar_factorization();
    let x0 = DVector::from_vec(vec![2.0, 0.5]);
    let configs = [
        SgdConfig::new(0.05, 2),
        SgdConfig::new(0.1, 1).with_weight_decay(0.05),
        SgdConfig::new(0.1, 4).with_schedule(warmup(0.1)),
    ];
    for config in configs {
        let sde = SgdSde::population(&sf, config).unwrap();
        let span = TimeSpan::new(0.0, 1.0, 0.01).unwrap();
        assert_same_paths(&sde, EulerMaruyama::new(), &x0, span, 3..300);
        assert_same_paths(&sde, RkMilstein::new(), &x0, span, 3..300);
        assert_same_paths(&sde, Milstein::new(), &x0, span, 3..300);
        assert_same_paths(
            &ReadAsStratonovich::new(&sde).unwrap(),
            Heun::new(),
            &x0,
            span,
            5..140,
        );
        let span = TimeSpan::new(0.0, 1.0, 0.03).unwrap(); // a shorter last step
        assert_same_paths(&sde, EulerMaruyama::new(), &x0, span, 0..17);
        assert_same_paths(&sde, RkMilstein::new(), &x0, span, 0..17);
        assert_same_paths(&sde, Milstein::new(), &x0, span, 0..17);
        assert_same_paths(
            &ReadAsStratonovich::new(&sde).unwrap(),
            Heun::new(),
            &x0,
            span,
            0..17,
        );
    }
}

/// EM, RK-Milstein (with Lévy areas) and Heun (a Stratonovich reading) of a population
/// SGD-SDE with general noise, plain and with weight decay and a warmup schedule, at
/// step `h = 0.01` over `[0, t_end]` (paths `long`) and at `3h` (a shorter last step,
/// paths 5..23): every path bit-identical to the per-path route.
fn assert_general_noise_model_on_lanes<M: PopulationForms + Sync>(
    model: &M,
    x0: &DVector<f64>,
    [eta, weight_decay, t_end]: [f64; 3],
    long: Range<u64>,
) {
    for config in [
        SgdConfig::new(eta, 2),
        SgdConfig::new(eta, 2)
            .with_weight_decay(weight_decay)
            .with_schedule(warmup(eta)),
    ] {
        let sde = SgdSde::population(model, config).unwrap();
        assert_eq!(SdeExt::noise(&sde), Noise::General);
        let span = TimeSpan::new(0.0, t_end, 0.01).unwrap();
        assert_same_paths(&sde, EulerMaruyama::new(), x0, span, long.clone());
        assert_same_paths(&sde, RkMilstein::new(), x0, span, long.clone());
        assert_same_paths(
            &ReadAsStratonovich::new(&sde).unwrap(),
            Heun::new(),
            x0,
            span,
            0..13,
        );
        let span = TimeSpan::new(0.0, t_end, 0.03).unwrap(); // a shorter last step
        assert_same_paths(&sde, EulerMaruyama::new(), x0, span, 5..23);
        assert_same_paths(&sde, RkMilstein::new(), x0, span, 5..23);
    }
}

#[test]
fn matrix_factorization_is_bit_identical_on_lanes() {
    let mf = default_matrix_factorization().unwrap();
    let x0 = unbalanced_start(&mf).unwrap();
    assert_general_noise_model_on_lanes(&mf, &x0, [0.02, 0.01, 0.5], 3..75);
}

#[test]
fn normalized_linear_is_bit_identical_on_lanes() {
    let nl = default_normalized_linear().unwrap();
    let x0 = DVector::from_vec(vec![0.6, -0.3, 0.8, 0.2]);
    assert_general_noise_model_on_lanes(&nl, &x0, [0.05, 0.02, 1.0], 3..150);
}

/// General noise with diverging lanes: matrix factorisation at η = 0.1, B = 1, h = 0.05,
/// far outside SGD's stability region, where 75 of 120 paths blow up within T = 1, each
/// at its own step; RK-Milstein with Lévy areas reports the same path, step and time on
/// both routes and at every lockstep block width (compared in `assert_same_paths`). (The
/// normalised linear model cannot diverge: its risk depends on the direction of θ only.)
#[test]
fn diverging_general_noise_lanes_are_counted_like_diverging_paths() {
    let mf = default_matrix_factorization().unwrap();
    let x0 = unbalanced_start(&mf).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.05).unwrap();
    let sde = SgdSde::population(&mf, SgdConfig::new(0.1, 1)).unwrap();
    let diverged = assert_same_paths(&sde, RkMilstein::new(), &x0, span, 0..120);
    assert!(diverged > 10 && diverged < 110, "{diverged} of 120 diverged");
}

/// With a huge learning rate (η = 0.5, B = 1, h = 0.05: far outside SGD's stability
/// region) the noise `sqrt(η/B)·2 sqrt(2a² + σ²)(w, u)` throws paths far out, where the
/// cubic drift overflows within 20 steps: about half of the lanes diverge (101 of 200 with
/// EM, 114 with RK-Milstein for this seed), each at its own step, and both routes report
/// the same path, step and time (compared in `assert_same_paths`).
#[test]
fn diverging_lanes_are_counted_like_diverging_paths() {
    let sf = scalar_factorization();
    let x0 = DVector::from_vec(vec![2.0, 0.5]);
    let span = TimeSpan::new(0.0, 1.0, 0.05).unwrap();
    let sde = SgdSde::population(&sf, SgdConfig::new(0.5, 1)).unwrap();
    let diverged = assert_same_paths(&sde, EulerMaruyama::new(), &x0, span, 0..200);
    assert!(diverged > 10 && diverged < 190, "{diverged} of 200 diverged");
    let diverged = assert_same_paths(&sde, RkMilstein::new(), &x0, span, 0..200);
    assert!(diverged > 10 && diverged < 190, "{diverged} of 200 diverged");
    let diverged = assert_same_paths(&sde, Milstein::new(), &x0, span, 0..200);
    assert!(diverged > 10 && diverged < 190, "{diverged} of 200 diverged");
}

#[test]
fn lanes_apply_where_the_block_forms_do() {
    let span = TimeSpan::new(0.0, 1.0, 0.1).unwrap();
    let sf = scalar_factorization();
    let x0 = DVector::from_vec(vec![2.0, 0.5]);
    let first = SgdSde::population(&sf, SgdConfig::new(0.05, 2)).unwrap();
    assert!(first.batch().is_some());
    assert!(SdeProblem::new(&first, EulerMaruyama::new(), x0.clone(), span)
        .unwrap()
        .is_lockstep());
    assert!(SdeProblem::new(&first, RkMilstein::new(), x0.clone(), span)
        .unwrap()
        .is_lockstep());
    // the second-order equation (its drift has a Hessian-vector product): per path
    let second =
        SgdSde::population(&sf, SgdConfig::new(0.05, 2).with_order(ModifiedEquation::Second)).unwrap();
    assert!(second.batch().is_none());
    assert!(!SdeProblem::new(&second, EulerMaruyama::new(), x0.clone(), span)
        .unwrap()
        .is_lockstep());
    // a finite data set: per path (the batched route is its fast path)
    let data =
        noether_sde::sgd::Dataset::from_population(&sf, 16, &mut SeedTree::new(1).rng(0, Stream::Init))
            .unwrap();
    let finite = SgdSde::finite(&sf, &data, SgdConfig::new(0.05, 2)).unwrap();
    assert!(finite.batch().is_none());
    // general noise (matrix factorisation): RK-Milstein reads Lévy areas, drawn per lane
    let mf = default_matrix_factorization().unwrap();
    let sde = SgdSde::population(&mf, SgdConfig::new(0.02, 2)).unwrap();
    let mf0 = unbalanced_start(&mf).unwrap();
    assert!(SdeProblem::new(&sde, EulerMaruyama::new(), mf0.clone(), span)
        .unwrap()
        .is_lockstep());
    assert!(SdeProblem::new(&sde, RkMilstein::new(), mf0, span)
        .unwrap()
        .is_lockstep());
    // the normalised linear model above d = 16: the O(d) projection, per path
    let d = NormalizedLinear::EXPLICIT_FACTOR_MAX_DIM + 1;
    let big =
        NormalizedLinear::new(DVector::from_element(d, 1.0), DVector::from_element(d, 1.0), 0.5).unwrap();
    assert!(big.block_forms().is_none());
    let sde = SgdSde::population(&big, SgdConfig::new(0.05, 2)).unwrap();
    assert!(sde.batch().is_none());
    let small = default_normalized_linear().unwrap();
    assert!(small.block_forms().is_some());
}

/// The block forms at scale 1 are the factor `D` of `noise_factor_apply` and the gradient
/// of `risk_gradient`: a block of three parameter vectors against the per-vector forms
/// (matrix factorisation bit for bit — the same sums in the same order; the others to
/// rounding, the block forms multiply the column by `dW` last).
#[test]
fn block_forms_are_the_per_vector_closed_forms() {
    fn check<M: PopulationForms>(model: &M, thetas: &[DVector<f64>], exact: bool) {
        let block = model.block_forms().unwrap();
        let (d, m) = (model.dim(), model.noise_dim());
        let theta: Vec<f64> = thetas.iter().flat_map(|t| t.iter().copied()).collect();
        let mut grads = vec![0.0; thetas.len() * d];
        block.risk_gradient_block(&theta, &mut grads);
        let mut factors = vec![0.0; thetas.len() * d * m];
        block.noise_factor_block(&theta, 1.0, &mut factors);
        let dw = DVector::from_fn(m, |j, _| 0.3 + 0.7 * (j as f64).sin());
        for (p, th) in thetas.iter().enumerate() {
            let mut g = DVector::zeros(d);
            model.risk_gradient(th, &mut g);
            let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(g.as_slice()), bits(&grads[p * d..(p + 1) * d]));
            let mut applied = DVector::zeros(d);
            model.noise_factor_apply(th, &dw, &mut applied);
            let b = &factors[p * d * m..(p + 1) * d * m];
            for i in 0..d {
                let row = &b[i * m..(i + 1) * m];
                let sum = row.iter().zip(dw.iter()).fold(0.0, |s, (&b, &w)| s + b * w);
                if exact {
                    assert_eq!(sum.to_bits(), applied[i].to_bits(), "row {i}");
                } else {
                    assert!(
                        (sum - applied[i]).abs() <= ROUNDING * applied.amax().max(1.0),
                        "row {i}"
                    );
                }
            }
        }
    }
    let sf = scalar_factorization();
    let thetas = [vec![2.0, 0.5], vec![-0.7, 1.3], vec![0.1, -0.2]].map(DVector::from_vec);
    check(&sf, &thetas, false);
    let mf: MatrixFactorization = default_matrix_factorization().unwrap();
    let start = unbalanced_start(&mf).unwrap();
    check(
        &mf,
        &[
            start.clone(),
            start.map(|v| 0.5 * v - 0.1),
            start.map(|v| v.sin()),
        ],
        true,
    );
    let nl = default_normalized_linear().unwrap();
    let thetas = [
        vec![0.6, -0.3, 0.8, 0.2],
        vec![1.0, 0.0, 0.0, 0.1],
        vec![-0.2, 0.4, 0.1, 2.0],
    ]
    .map(DVector::from_vec);
    check(&nl, &thetas, false);
}

/// Milstein's derivative term on lanes for scalar factorisation: the model's block form
/// (`PopulationBlockForms::noise_factor_derivative_block`) gives the per-path functions'
/// bits (`diffusion_apply`, then `diffusion_derivative`); with σ = 0 on the valley (no
/// closed form there: the central difference) it declines, and the block falls back to
/// the per-path functions for every path.
#[test]
fn scalar_factorization_milstein_term_on_lanes_is_the_per_path_one() {
    use noether_sde::sde::DerivativeScratch;
    let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let cases = [
        (
            0.5,
            vec![[2.0, 0.5], [-0.7, 1.3], [0.1, -0.2], [1.0, 1.0], [3.0, -2.5]],
        ),
        (0.0, vec![[2.0, 0.5], [1.0, 1.0], [-0.7, 1.3]]),
    ];
    for (sigma, thetas) in cases {
        let model = ScalarFactorization::new(1.0, sigma).unwrap();
        let sde = SgdSde::population(&model, SgdConfig::new(0.05, 1)).unwrap();
        let lanes = sde.batch().expect("block forms");
        let x: Vec<f64> = thetas.iter().flatten().copied().collect();
        let c: Vec<f64> = (0..thetas.len()).map(|p| 0.4 + 0.3 * p as f64).collect();
        let mut out = vec![0.0; x.len()];
        lanes.milstein_block(0.3, &x, &c, &mut out).unwrap();
        for (p, th) in thetas.iter().enumerate() {
            let (th, cp) = (DVector::from_row_slice(th), DVector::from_element(1, c[p]));
            let (mut v, mut term) = (DVector::zeros(2), DVector::zeros(2));
            sde.diffusion_apply(0.3, &th, &cp, &mut v);
            sde.diffusion_derivative(0.3, &th, &v, &cp, &mut term, &mut DerivativeScratch::new(2));
            assert_eq!(
                bits(term.as_slice()),
                bits(&out[2 * p..2 * p + 2]),
                "σ = {sigma}, path {p}"
            );
        }
        let forms = model.block_forms().unwrap();
        let closed = forms.noise_factor_derivative_block(&x, &c, 1.0, &mut out);
        assert_eq!(
            closed,
            sigma > 0.0,
            "σ = {sigma}: the closed form applies off σ = 0"
        );
    }
}
