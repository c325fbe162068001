//! The block-gradient SGD problems (`sgd::BlockSgdProblem`, the route of models defined
//! outside Rust) against the per-path routes on the same model and data: SGD (with and
//! without replacement, weight decay), GD and the Euler–Maruyama SGD-SDE give the same
//! bits, whatever the shard split; a failing evaluation fails its block's paths.

use nalgebra::{DMatrix, DVector};
use noether_sde::ensemble::{Ensemble, EnsembleProblem, Functionals, PathRecord, SdeProblem, SgdProblem};
use noether_sde::models::LinearRegression;
use noether_sde::prelude::*;
use noether_sde::sgd::{
    BlockGradients, BlockMethod, BlockSgdProblem, Dataset, DiscreteSgd, Model, Sampling, SgdConfig, SgdSde,
};
use noether_sde::{Error, Result};

/// A built-in model's per-sample gradients, one block per call (what a Python callback
/// returns for `ns.models.Custom`).
struct Rows<'a> {
    model: &'a LinearRegression,
    data: &'a Dataset,
}

impl BlockGradients for Rows<'_> {
    fn dim(&self) -> usize {
        self.model.dim()
    }
    fn samples(&self) -> usize {
        self.data.len()
    }
    fn per_sample_gradients(&self, theta: &[f64], out: &mut [f64]) -> Result<()> {
        let (d, n) = (self.dim(), self.samples());
        let mut g = DVector::zeros(d);
        for (p, row) in theta.chunks_exact(d).enumerate() {
            let th = DVector::from_column_slice(row);
            for i in 0..n {
                self.model.grad(&th, self.data.sample(i), &mut g);
                out[(p * n + i) * d..(p * n + i + 1) * d].copy_from_slice(g.as_slice());
            }
        }
        Ok(())
    }
}

fn setup() -> Result<(LinearRegression, Dataset)> {
    let d = 3;
    let model = LinearRegression::new(
        DVector::from_vec(vec![1.0, -0.5, 0.25]),
        DMatrix::identity(d, d),
        0.3,
    )?;
    let data = model.dataset(23, 4)?;
    Ok((model, data))
}

fn records<P: EnsembleProblem>(
    problem: &P,
    paths: std::ops::Range<u64>,
    t_end: f64,
) -> Result<Vec<Result<PathRecord>>> {
    let record = Functionals::new(
        vec![0.0, 0.5 * t_end, t_end],
        3,
        |_t: f64, x: &DVector<f64>, out: &mut [f64]| out.copy_from_slice(x.as_slice()),
    )?;
    Ensemble::new(9, paths).per_path(problem, &record)
}

fn assert_same(a: Vec<Result<PathRecord>>, b: Vec<Result<PathRecord>>, what: &str) {
    assert_eq!(a.len(), b.len());
    for (a, b) in a.into_iter().zip(b) {
        match (a, b) {
            (Ok(a), Ok(b)) => {
                let bits = |m: &DMatrix<f64>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a.values), bits(&b.values), "{what}, path {}", a.path);
                assert_eq!(a.final_state, b.final_state, "{what}");
            }
            (a, b) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{what}"),
        }
    }
}

#[test]
fn discrete_sgd_and_gd_match_the_per_path_route_bit_for_bit() -> Result<()> {
    let (model, data) = setup()?;
    let rows = Rows {
        model: &model,
        data: &data,
    };
    let theta0 = DVector::from_vec(vec![0.5, 0.1, -0.2]);
    let configs = [
        SgdConfig::new(0.05, 4),
        SgdConfig::new(0.03, 5).with_weight_decay(0.1),
        SgdConfig::new(0.05, 7).with_sampling(Sampling::WithoutReplacement),
    ];
    for cfg in configs {
        for gd in [false, true] {
            let mut sgd = DiscreteSgd::finite(&model, &data, cfg)?;
            let method = if gd {
                sgd = sgd.gradient_descent();
                BlockMethod::Gd
            } else {
                BlockMethod::Sgd
            };
            let per_path = SgdProblem::new(&sgd, theta0.clone(), 2.0)?;
            let block = BlockSgdProblem::discrete(&rows, cfg, method, theta0.clone(), 2.0)?;
            for paths in [0..100, 37..101] {
                assert_same(
                    records(&per_path, paths.clone(), 2.0)?,
                    records(&block, paths, 2.0)?,
                    &format!("{cfg:?}, gd {gd}"),
                );
            }
        }
    }
    Ok(())
}

#[test]
fn the_euler_maruyama_sgd_sde_matches_the_per_path_route_bit_for_bit() -> Result<()> {
    let (model, data) = setup()?;
    let rows = Rows {
        model: &model,
        data: &data,
    };
    let theta0 = DVector::from_vec(vec![0.5, 0.1, -0.2]);
    for cfg in [
        SgdConfig::new(0.05, 4),
        SgdConfig::new(0.05, 4).with_weight_decay(0.2),
    ] {
        let sde = SgdSde::finite(&model, &data, cfg)?;
        let span = TimeSpan::new(0.0, 1.0, 0.03)?; // a shorter last step
        let per_path = SdeProblem::new(&sde, EulerMaruyama::new(), theta0.clone(), span)?;
        let block = BlockSgdProblem::euler_maruyama(&rows, cfg, theta0.clone(), span)?;
        for paths in [0..100, 37..101] {
            assert_same(
                records(&per_path, paths.clone(), 1.0)?,
                records(&block, paths, 1.0)?,
                &format!("{cfg:?}"),
            );
        }
    }
    Ok(())
}

#[test]
fn divergence_is_counted_per_path_and_a_failing_evaluation_fails_the_block() -> Result<()> {
    let (model, data) = setup()?;
    let rows = Rows {
        model: &model,
        data: &data,
    };
    // η far above 2/λ_max: every path blows up, each at its own step
    let cfg = SgdConfig::new(3.0, 2);
    let theta0 = DVector::from_vec(vec![0.5, 0.1, -0.2]);
    let sgd = DiscreteSgd::finite(&model, &data, cfg)?;
    let per_path = SgdProblem::new(&sgd, theta0.clone(), 600.0)?;
    let block = BlockSgdProblem::discrete(&rows, cfg, BlockMethod::Sgd, theta0.clone(), 600.0)?;
    let a = records(&per_path, 0..20, 600.0)?;
    assert!(a.iter().all(|r| matches!(r, Err(Error::Divergence { .. }))));
    assert_same(a, records(&block, 0..20, 600.0)?, "divergent");

    struct Fails;
    impl BlockGradients for Fails {
        fn dim(&self) -> usize {
            2
        }
        fn samples(&self) -> usize {
            3
        }
        fn per_sample_gradients(&self, _theta: &[f64], _out: &mut [f64]) -> Result<()> {
            Err(Error::invalid("per_sample_grads", "callback", "failed"))
        }
    }
    let problem = BlockSgdProblem::discrete(
        &Fails,
        SgdConfig::new(0.1, 1),
        BlockMethod::Sgd,
        DVector::zeros(2),
        1.0,
    )?;
    let record = Functionals::new(vec![1.0], 1, |_t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out[0] = x[0]
    })?;
    let err = Ensemble::new(1, 0..10).statistics(&problem, &record);
    assert!(matches!(
        err,
        Err(Error::InvalidParameter {
            name: "per_sample_grads",
            ..
        })
    ));
    // bad set-ups are refused before the first step
    assert!(BlockSgdProblem::discrete(
        &Fails,
        SgdConfig::new(0.1, 4),
        BlockMethod::Sgd,
        DVector::zeros(2),
        1.0
    )
    .is_err());
    assert!(BlockSgdProblem::discrete(
        &Fails,
        SgdConfig::new(0.1, 1),
        BlockMethod::Sgd,
        DVector::zeros(3),
        1.0
    )
    .is_err());
    let second = SgdConfig::new(0.1, 1).with_order(noether_sde::sgd::ModifiedEquation::Second);
    let span = TimeSpan::new(0.0, 1.0, 0.1)?;
    assert!(matches!(
        BlockSgdProblem::euler_maruyama(&Fails, second, DVector::zeros(2), span),
        Err(Error::Incompatible { .. })
    ));
    Ok(())
}
