//! Observers and running moments.

use crate::common::ROUNDING;
use nalgebra::DVector;
use noether_sde::observe::VectorMoments;
use noether_sde::prelude::*;

#[test]
fn save_at_and_functionals_record_the_requested_times() {
    let ou = OrnsteinUhlenbeck::new(1.0, 0.0, 0.0).unwrap(); // deterministic: x(t) = e^{-t}
    let span = TimeSpan::new(0.0, 1.0, 1.0 / 1024.0).unwrap();
    let mut save = SaveAt::new(vec![0.0, 0.5, 1.0], 1);
    let mut rec = RecordFunctionals::new(vec![0.25, 1.0], 2, |t: f64, x: &DVector<f64>, out: &mut [f64]| {
        out[0] = t;
        out[1] = x[0];
    });
    let mut path = IncrementStream::new(&SeedTree::new(1), 0, 1);
    let x0 = DVector::from_element(1, 1.0);
    integrate(
        &ou,
        &mut EulerMaruyama::new(),
        &x0,
        &span,
        &mut path,
        0,
        &mut (&mut save, &mut rec),
    )
    .unwrap();
    assert_eq!(save.saved_times().len(), 3);
    // EM on x' = -x: (1 - h)^{t/h}, within O(h) of e^{-t}
    assert!((save.states()[1][0] - (-0.5f64).exp()).abs() < 1e-3);
    assert_eq!(rec.recorded(), 2);
    assert!((rec.values()[(0, 0)] - 0.25).abs() < ROUNDING);
    assert!((rec.values()[(1, 1)] - save.states()[2][0]).abs() < ROUNDING);
}

struct StopAt(usize);
impl Observer for StopAt {
    fn observe(&mut self, step: usize, _t: f64, _x: &DVector<f64>) -> Flow {
        if step >= self.0 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

#[test]
fn every_thins_and_stop_stops() {
    let ou = OrnsteinUhlenbeck::new(1.0, 0.0, 1.0).unwrap();
    let span = TimeSpan::new(0.0, 1.0, 0.01).unwrap();
    let mut avg = Every::new(10, TimeAverage::new(1, 0));
    let mut path = IncrementStream::new(&SeedTree::new(1), 0, 1);
    integrate(
        &ou,
        &mut EulerMaruyama::new(),
        &DVector::zeros(1),
        &span,
        &mut path,
        0,
        &mut avg,
    )
    .unwrap();
    assert_eq!(avg.inner.components()[0].count(), 11);
    let mut count = Every::new(1, TimeAverage::new(1, 0));
    let mut path = IncrementStream::new(&SeedTree::new(1), 0, 1);
    integrate(
        &ou,
        &mut EulerMaruyama::new(),
        &DVector::zeros(1),
        &span,
        &mut path,
        0,
        &mut (&mut count, StopAt(5)),
    )
    .unwrap();
    assert_eq!(count.inner.components()[0].count(), 6);
}

#[test]
fn welford_merge_equals_one_pass() {
    let xs: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64 / 37.0).collect();
    let mut all = Welford::new();
    xs.iter().for_each(|&x| all.push(x));
    let (mut a, mut b) = (Welford::new(), Welford::new());
    xs[..313].iter().for_each(|&x| a.push(x));
    xs[313..].iter().for_each(|&x| b.push(x));
    a.merge(&b);
    assert_eq!(a.count(), all.count());
    assert!((a.mean() - all.mean()).abs() < ROUNDING * all.mean().abs());
    assert!((a.variance() - all.variance()).abs() < 1e-10 * all.variance());

    let mut vm = VectorMoments::new(2);
    let (mut v1, mut v2) = (VectorMoments::new(2), VectorMoments::new(2));
    for (i, &x) in xs.iter().enumerate() {
        let v = DVector::from_vec(vec![x, x * x - 3.0 * x]);
        vm.push(&v);
        if i < 500 {
            v1.push(&v)
        } else {
            v2.push(&v)
        }
    }
    v1.merge(&v2);
    assert!((v1.covariance() - vm.covariance()).amax() < 1e-9 * vm.covariance().amax());
    assert!((vm.covariance()[(0, 0)] - all.variance()).abs() < 1e-9 * all.variance());
}
