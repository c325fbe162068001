//! The model registry (`models::spec`) is the one place both fronts build models from:
//! the command line's text and Python's typed values give the same model, start and
//! data set; invalid values are typed `InvalidParameter` errors naming the parameter;
//! every listed model builds with its defaults and records its charge.

use nalgebra::{DMatrix, DVector};
use noether_sde::models::spec::observables::{Observable, Recorded};
use noether_sde::models::spec::run::{save_times, Method, Settings};
use noether_sde::models::spec::{self, Inputs, ParamValue, Params, MODELS};
use noether_sde::Error;

fn text(name: &str, pairs: &[&str]) -> noether_sde::Result<spec::Built> {
    let pairs: Vec<String> = pairs.iter().map(|s| s.to_string()).collect();
    spec::build_from_text(name, &pairs)
}

fn typed(name: &str, given: Vec<(&str, ParamValue)>, inputs: Inputs) -> noether_sde::Result<spec::Built> {
    let spec = spec::find(name)?;
    let given = given.into_iter().map(|(k, v)| (k.to_string(), v));
    spec.build(Params::new(spec, given)?, inputs)
}

#[test]
fn text_and_typed_values_build_the_same_model() {
    let a = text("scalar_factorization", &["v=2", "sigma=0.5", "n=16", "seed=3"]).expect("valid");
    let b = typed(
        "scalar_factorization",
        vec![
            ("v", ParamValue::Float(2.0)),
            ("sigma", ParamValue::Float(0.5)),
            ("n", ParamValue::Int(16)),
            ("seed", ParamValue::Int(3)),
        ],
        Inputs::default(),
    )
    .expect("valid");
    assert_eq!(a.params, b.params);
    assert_eq!(a.setup.theta0, b.setup.theta0);
    let (da, db) = (
        a.setup.data.expect("16 samples"),
        b.setup.data.expect("16 samples"),
    );
    assert_eq!(da.len(), 16);
    for i in 0..16 {
        assert_eq!(da.sample(i).x, db.sample(i).x, "sample {i}");
    }
    // a teacher given as a matrix sets d_in and d_out; as text it is read row by row
    let v = DMatrix::from_row_slice(2, 4, &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    let m = typed(
        "matrix_factorization",
        vec![("teacher", ParamValue::Matrix(v))],
        Inputs::default(),
    )
    .expect("valid");
    let t = text("matrix_factorization", &["teacher=1,0,0,0,0,1,0,0"]).expect("valid");
    assert_eq!(m.params["teacher"], t.params["teacher"]);
    assert_eq!(m.setup.theta0, t.setup.theta0);
}

#[test]
fn invalid_values_are_typed_and_name_the_parameter() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("scalar_factorization", &["v=abc"], "v"),
        ("scalar_factorization", &["nope=1"], "param"),
        ("scalar_factorization", &["v"], "param"),
        ("scalar_factorization", &["v=1", "v=2"], "param"),
        ("matrix_factorization", &["teacher=1,2"], "teacher"),
        ("matrix_factorization", &["init_seed=2"], "init_seed"),
        ("matrix_factorization", &["hidden=0"], "hidden"),
        ("linear_regression", &["d=3", "theta_star=1,2,3"], "d"),
        ("linear_regression", &["d=5000"], "d"),
        ("normalized_linear", &["norm0=-1"], "norm0"),
        ("tanh_net", &["activation=gelu"], "activation"),
        ("tanh_net", &["n=0"], "n"),
        ("no_such_model", &[], "model"),
    ];
    for (model, pairs, key) in cases {
        match text(model, pairs) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, *key, "{model} {pairs:?}"),
            other => panic!("{model} {pairs:?}: {other:?}"),
        }
    }
    // the user's data set must have the model's widths
    let x = DMatrix::from_element(5, 2, 1.0);
    let y = DMatrix::from_element(5, 1, 1.0);
    let data = noether_sde::sgd::Dataset::new(&x, &y).expect("valid");
    let wrong = typed(
        "scalar_factorization",
        vec![],
        Inputs {
            data: Some(data),
            theta0: None,
        },
    );
    assert!(matches!(wrong, Err(Error::DimensionMismatch { .. })), "{wrong:?}");
    let short = typed(
        "scalar_factorization",
        vec![],
        Inputs {
            data: None,
            theta0: Some(DVector::from_vec(vec![1.0])),
        },
    );
    assert!(matches!(short, Err(Error::DimensionMismatch { .. })), "{short:?}");
}

#[test]
fn every_model_lists_its_parameters_and_records_its_charge() {
    for spec in spec::standalone() {
        let built = text(spec.name, &[]).expect(spec.name);
        let recorded = Recorded::resolve(&[], &built).expect("defaults");
        assert_eq!(recorded.columns(), ["charge", "loss", "sharpness"]);
        let mut out = [0.0; 3];
        recorded.eval(&built.setup, &built.setup.theta0, &mut out);
        assert!(out[0].is_finite(), "{}: charge {}", spec.name, out[0]);
        let json = spec.to_json();
        assert_eq!(json["params"].as_array().map(Vec::len), Some(spec.params.len()));
    }
    assert!(MODELS.iter().any(|m| m.name == "two_layer"));
    let scalar = text("scalar_factorization", &[]).expect("valid");
    let eig = Recorded::resolve(&[Observable::EigWsw], &scalar);
    assert!(matches!(
        eig,
        Err(Error::InvalidParameter {
            name: "observable",
            ..
        })
    ));
}

#[test]
fn run_settings_are_checked_once_for_both_fronts() {
    let ok = Settings {
        method: Method::parse("em").expect("a scheme"),
        eta: 0.05,
        batch: 4,
        weight_decay: 0.0,
        t_end: 1.0,
        dt: None,
    };
    assert!(ok.check().is_ok());
    assert!((ok.step() - 0.025).abs() < 1e-15);
    let bad = [
        (Settings { eta: 0.0, ..ok }, "eta"),
        (Settings { batch: 0, ..ok }, "batch"),
        (
            Settings {
                weight_decay: -1.0,
                ..ok
            },
            "weight_decay",
        ),
        (
            Settings {
                t_end: f64::NAN,
                ..ok
            },
            "t_end",
        ),
        (Settings { dt: Some(0.0), ..ok }, "dt"),
        (
            Settings {
                method: Method::Sgd,
                dt: Some(0.1),
                ..ok
            },
            "dt",
        ),
    ];
    for (s, key) in bad {
        match s.check() {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, key),
            other => panic!("{s:?}: {other:?}"),
        }
    }
    assert!(matches!(
        Method::parse("rk4"),
        Err(Error::InvalidParameter { name: "method", .. })
    ));
    let (times, every) = save_times(1.0, 0.26, Some(0.05), 1e4).expect("valid");
    // 0.26 snaps to 5 steps of 0.05
    assert!((every - 0.25).abs() < 1e-12, "{every}");
    assert_eq!(times.len(), 5);
}
