"""ns.models.Custom: a model defined in Python by its per-sample gradients.

A Custom model that re-implements linear regression with numpy, with the library's
operations in the library's order (θᵀx summed left to right for d < 16, then
2(z − y)·x), gives the built-in model's numbers bit for bit on SGD, GD and the SGD-SDE
(EM); bad callbacks raise Python exceptions, never crash.
"""
import numpy as np
import pytest

import noether_sde as ns

RNG = np.random.default_rng(5)
N, D = 40, 3
X = RNG.normal(size=(N, D))
Y = X @ np.array([1.0, -0.5, 0.25]) + 0.3 * RNG.normal(size=N)
THETA0 = np.array([0.5, 0.1, -0.2])


def linreg_grads(theta):
    """(P, N, D) per-sample gradients 2(θᵀx_i − y_i) x_i, summing θᵀx as the library does."""
    z = np.zeros((theta.shape[0], N))
    for k in range(D):
        z = z + theta[:, k:k + 1] * X[None, :, k]
    r2 = 2.0 * (z - Y[None, :])
    return r2[:, :, None] * X[None, :, :]


def linreg_loss(theta):
    z = np.zeros((theta.shape[0], N))
    for k in range(D):
        z = z + theta[:, k:k + 1] * X[None, :, k]
    return ((z - Y[None, :]) ** 2).mean(axis=1)


def custom(**kw):
    return ns.models.Custom(dim=D, n=N, per_sample_grads=linreg_grads, loss=linreg_loss, theta0=THETA0, **kw)


@pytest.mark.parametrize("method", ["sgd", "gd", "em"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_a_custom_linear_regression_is_the_built_in_bit_for_bit(method, weight_decay):
    builtin = ns.models.LinearRegression(X, Y, theta0=THETA0)
    kw = dict(method=method, eta=0.05, batch=4, weight_decay=weight_decay, t_end=1.0, paths=100, seed=3,
              save_every=0.25, keep_paths=True, observables=["theta", "charge"])
    if method == "em":
        kw["dt"] = 0.02
    a = ns.simulate(builtin, **kw)
    b = ns.simulate(custom(), **kw)
    assert a.t.tolist() == b.t.tolist()
    assert a["theta"].paths.tobytes() == b["theta"].paths.tobytes()
    assert a.final_states.tobytes() == b.final_states.tobytes()
    for key in ("mean", "var", "ci_low", "ci_high"):
        assert getattr(a["theta"], key).tobytes() == getattr(b["theta"], key).tobytes()
    # the charge ‖θ‖² of the same θ: nalgebra and numpy sum the squares in their own
    # orders, so equal to rounding (3 terms: a few ulp), not to the bit
    np.testing.assert_allclose(b["charge"].paths, a["charge"].paths, rtol=1e-15, atol=0)
    assert a.diverged == b.diverged == 0


def test_loss_observable_matches_the_built_in_risk():
    # the built-in risk sums (θᵀx − y)² in its own order: equal to rounding, not to the bit
    builtin = ns.models.LinearRegression(X, Y, theta0=THETA0)
    kw = dict(method="sgd", eta=0.05, batch=4, t_end=1.0, paths=64, seed=1, save_every=0.5)
    a = ns.simulate(builtin, observables=["loss"], **kw)
    b = ns.simulate(custom(), observables=["loss"], **kw)
    np.testing.assert_allclose(b["loss"].mean, a["loss"].mean, rtol=1e-12)


def test_same_seed_same_bits_whatever_the_thread_count_and_the_sharding():
    model = custom(generator=np.eye(D))
    kw = dict(method="em", eta=0.05, batch=4, t_end=0.5, dt=0.01, seed=9, save_every=0.25,
              observables=["charge", "loss", "theta"], keep_paths=True)
    one = ns.simulate(model, paths=130, threads=1, **kw)
    two = ns.simulate(model, paths=130, threads=2, **kw)
    for name in ("charge", "loss", "theta"):
        assert one[name].paths.tobytes() == two[name].paths.tobytes()
        assert one[name].mean.tobytes() == two[name].mean.tobytes()
    assert model.symmetry() is not None
    np.testing.assert_allclose(one["charge"].paths[:, 0], np.sum(THETA0**2))


def test_one_callback_per_step_for_a_block_of_paths():
    calls = []

    def grads(theta):
        calls.append(theta.shape)
        return linreg_grads(theta)

    model = ns.models.Custom(dim=D, n=N, per_sample_grads=grads, theta0=THETA0)
    r = ns.simulate(model, method="sgd", eta=0.1, batch=2, t_end=1.0, paths=100, seed=0, threads=1,
                    observables=["theta"])
    # 10 steps; paths 0..64 and 64..100 are two blocks
    assert len(calls) == 20
    assert sorted(set(calls)) == [(36, D), (64, D)]
    assert r.finished == 100


def test_divergence_is_counted_not_raised():
    # η λ_max ≫ 2: |θ| grows geometrically and passes the bound 1e100 within 1000 steps
    r = ns.simulate(custom(), method="sgd", eta=5.0, batch=2, t_end=5000.0, paths=10, seed=0,
                    observables=["theta"])
    assert r.diverged == 10 and r.finished == 0
    assert r.first_divergence is not None


def test_callbacks_that_raise_or_misbehave_raise_python_exceptions():
    def boom(theta):
        raise RuntimeError("boom from the callback")

    with pytest.raises(RuntimeError, match="boom"):
        ns.simulate(ns.models.Custom(dim=D, n=N, per_sample_grads=boom), method="sgd", t_end=0.5, paths=8)
    wrong = ns.models.Custom(dim=D, n=N, per_sample_grads=lambda th: np.zeros((th.shape[0], D)))
    with pytest.raises(ns.CallbackError, match=r"expected \(8, 40, 3\)"):
        ns.simulate(wrong, method="em", t_end=0.5, paths=8)
    nan = ns.models.Custom(dim=D, n=N, per_sample_grads=lambda th: np.full((th.shape[0], N, D), np.nan))
    with pytest.raises(ns.CallbackError, match="NaN"):
        ns.simulate(nan, method="gd", t_end=0.5, paths=8)
    text = ns.models.Custom(dim=D, n=N, per_sample_grads=lambda th: "not an array")
    with pytest.raises(ValueError):  # numpy cannot read it as float64
        ns.simulate(text, method="sgd", t_end=0.5, paths=8)
    bad_loss = ns.models.Custom(dim=D, n=N, per_sample_grads=linreg_grads, loss=lambda th: np.zeros(3))
    with pytest.raises(ns.CallbackError, match="loss"):
        ns.simulate(bad_loss, method="sgd", t_end=0.5, paths=8, observables=["loss"])


@pytest.mark.parametrize("kwargs, error", [
    (dict(dim=0, n=N, per_sample_grads=linreg_grads), ns.InvalidParameter),
    (dict(dim=D, n=0, per_sample_grads=linreg_grads), ns.InvalidParameter),
    (dict(dim=D, n=N, per_sample_grads=3), ns.InvalidParameter),
    (dict(dim=D, n=N, per_sample_grads=linreg_grads, loss="x"), ns.InvalidParameter),
    (dict(dim=D, n=N, per_sample_grads=linreg_grads, theta0=[1.0]), ns.DimensionMismatch),
    (dict(dim=D, n=N, per_sample_grads=linreg_grads, theta0=[1.0, np.nan, 0.0]), ns.NonFinite),
    (dict(dim=D, n=N, per_sample_grads=linreg_grads, generator=np.triu(np.ones((D, D)))), ns.NotSymmetric),
    (dict(dim=D, n=N, per_sample_grads=linreg_grads, generator=np.eye(2)), ns.DimensionMismatch),
])
def test_bad_construction(kwargs, error):
    with pytest.raises(error):
        ns.models.Custom(**kwargs)


@pytest.mark.parametrize("kw, error", [
    (dict(method="milstein"), ns.Incompatible),
    (dict(observables=["sharpness"]), ns.Incompatible),
    (dict(observables=["energy"]), ns.InvalidParameter),
    (dict(batch=N + 1), ns.InvalidParameter),
    (dict(method="sgd", dt=0.01), ns.InvalidParameter),
    (dict(theta0=[1.0, 2.0]), ns.DimensionMismatch),
    (dict(eta=-1.0), ns.InvalidParameter),
])
def test_bad_simulate_arguments(kw, error):
    args = dict(method="em", t_end=0.5, paths=8)
    args.update(kw)
    with pytest.raises(error):
        ns.simulate(custom(), **args)
    no_loss = ns.models.Custom(dim=D, n=N, per_sample_grads=linreg_grads)
    with pytest.raises(ns.InvalidParameter, match="loss"):
        ns.simulate(no_loss, observables=["loss"], t_end=0.5, paths=8)
