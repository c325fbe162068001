"""Bad input raises a NoetherError subclass with a clear message: never a panic, never a crash."""
import numpy as np
import pytest

import noether_sde as ns

M = ns.models


def sf():
    return M.ScalarFactorization()


def gbm(**kw):
    args = dict(drift=lambda t, X: 0.5 * X, diffusion=lambda t, X: 0.3 * X, dim=1, noise="scalar")
    args.update(kw)
    return ns.Sde(**args)


def run_sde(sde, **kw):
    args = dict(x0=[1.0], t_end=0.1, dt=0.01, paths=8, seed=0)
    args.update(kw)
    return ns.simulate(sde, **args)


rng = np.random.default_rng(0)
X = rng.normal(size=(20, 2))
Y = rng.normal(size=(20, 1))

CASES = [
    # --- models: shapes, values, dtypes
    ("sf sigma nan", lambda: M.ScalarFactorization(sigma=float("nan")), ns.NoetherError),
    ("sf sigma negative", lambda: M.ScalarFactorization(sigma=-1.0), ns.InvalidParameter),
    ("sf theta0 wrong length", lambda: M.ScalarFactorization(theta0=[1.0, 2.0, 3.0]), ns.DimensionMismatch),
    ("sf theta0 nan", lambda: M.ScalarFactorization(theta0=[np.nan, 1.0]), ns.NonFinite),
    ("sf theta0 2-d", lambda: M.ScalarFactorization(theta0=[[1.0, 2.0]]), ns.DimensionMismatch),
    ("sf theta0 strings", lambda: M.ScalarFactorization(theta0=["a", "b"]), ns.InvalidParameter),
    ("sf theta0 complex", lambda: M.ScalarFactorization(theta0=np.array([1 + 1j, 2.0])), ns.InvalidParameter),
    ("sf X without y", lambda: M.ScalarFactorization(X=np.ones((5, 1))), ns.InvalidParameter),
    ("sf X y rows differ", lambda: M.ScalarFactorization(X=np.ones((5, 1)), y=np.ones((4, 1))), ns.DimensionMismatch),
    ("sf X two columns", lambda: M.ScalarFactorization(X=np.ones((5, 2)), y=np.ones((5, 1))), ns.DimensionMismatch),
    ("sf X nan", lambda: M.ScalarFactorization(X=np.array([[np.nan], [1.0]]), y=np.ones((2, 1))), ns.NonFinite),
    ("sf X ragged", lambda: M.ScalarFactorization(X=[[1.0], [1.0, 2.0]], y=np.ones((2, 1))), ns.InvalidParameter),
    ("mf no teacher", lambda: M.MatrixFactorization(teacher=None), ns.InvalidParameter),
    ("mf teacher 3-d", lambda: M.MatrixFactorization(teacher=np.ones((2, 2, 2))), ns.DimensionMismatch),
    ("mf sigma_x wrong length", lambda: M.MatrixFactorization(teacher=np.ones((2, 3)), sigma_x=[1.0]), ns.DimensionMismatch),
    ("mf sigma_eps negative", lambda: M.MatrixFactorization(teacher=np.ones((2, 3)), sigma_eps=[1.0, -1.0]), ns.InvalidParameter),
    ("mf hidden zero", lambda: M.MatrixFactorization(teacher=np.ones((2, 3)), hidden=0), ns.InvalidParameter),
    ("mf teacher inf", lambda: M.MatrixFactorization(teacher=np.full((2, 3), np.inf)), ns.NonFinite),
    ("nl n zero", lambda: M.NormalizedLinear(teacher=[1.0, 0.0], n=0), ns.InvalidParameter),
    ("nl variances wrong length", lambda: M.NormalizedLinear(teacher=[1.0, 0.0], input_variances=[1.0]), ns.DimensionMismatch),
    ("lr nothing", lambda: M.LinearRegression(), ns.InvalidParameter),
    ("lr y two columns", lambda: M.LinearRegression(X, np.ones((20, 2))), ns.DimensionMismatch),
    ("two layer softplus", lambda: M.TwoLayer(X, Y, activation="softplus"), ns.InvalidParameter),
    ("two layer width string", lambda: M.TwoLayer(X, Y, width="wide"), ns.InvalidParameter),
    ("two layer theta0 short", lambda: M.TwoLayer(X, Y, theta0=[1.0]), ns.DimensionMismatch),
    ("charge wrong columns", lambda: sf().charge(np.ones((3, 5))), ns.DimensionMismatch),
    ("charge nan", lambda: sf().charge([np.nan, 1.0]), ns.NonFinite),
    ("predict no symmetry", lambda: M.LinearRegression(X, Y).predict(), ns.Incompatible),
    ("predict eta zero", lambda: sf().predict(eta=0.0), ns.InvalidParameter),
    # --- simulate
    ("unknown method", lambda: ns.simulate(sf(), method="rk4"), ns.InvalidParameter),
    ("eta negative", lambda: ns.simulate(sf(), eta=-0.1), ns.InvalidParameter),
    ("eta nan", lambda: ns.simulate(sf(), eta=float("nan")), ns.InvalidParameter),
    ("batch zero", lambda: ns.simulate(sf(), batch=0), ns.InvalidParameter),
    ("batch float", lambda: ns.simulate(sf(), batch=2.5), ns.InvalidParameter),
    ("paths zero", lambda: ns.simulate(sf(), paths=0), ns.InvalidParameter),
    ("paths negative", lambda: ns.simulate(sf(), paths=-3), ns.InvalidParameter),
    ("seed negative", lambda: ns.simulate(sf(), seed=-1), ns.InvalidParameter),
    ("t_end zero", lambda: ns.simulate(sf(), t_end=0.0), ns.InvalidParameter),
    ("t_end string", lambda: ns.simulate(sf(), t_end="long"), ns.InvalidParameter),
    ("dt with sgd", lambda: ns.simulate(sf(), method="sgd", dt=0.01), ns.InvalidParameter),
    ("dt negative", lambda: ns.simulate(sf(), dt=-0.01), ns.InvalidParameter),
    ("save_every zero", lambda: ns.simulate(sf(), save_every=0.0), ns.InvalidParameter),
    ("save_at outside", lambda: ns.simulate(sf(), t_end=1.0, save_at=[2.0]), ns.InvalidParameter),
    ("save_at descending", lambda: ns.simulate(sf(), t_end=1.0, save_at=[0.5, 0.2]), ns.InvalidParameter),
    ("save_at and save_every", lambda: ns.simulate(sf(), t_end=1.0, save_at=[0.5], save_every=0.1), ns.InvalidParameter),
    ("unknown observable", lambda: ns.simulate(sf(), observables=["energy"]), ns.InvalidParameter),
    ("no observables", lambda: ns.simulate(sf(), observables=[]), ns.InvalidParameter),
    ("observable not callable", lambda: ns.simulate(sf(), observables=[3]), ns.InvalidParameter),
    ("observable wrong shape", lambda: ns.simulate(sf(), t_end=0.1, paths=4, observables=[lambda th: th[:3, 0]]), ns.CallbackError),
    ("theta0 wrong length", lambda: ns.simulate(sf(), theta0=[1.0]), ns.DimensionMismatch),
    ("batch exceeds data", lambda: ns.simulate(M.ScalarFactorization(n=3), batch=4), ns.InvalidParameter),
    ("milstein on general noise", lambda: ns.simulate(M.LinearRegression(X, Y), method="milstein", t_end=0.1, paths=2), ns.Incompatible),
    ("not a model", lambda: ns.simulate("scalar_factorization"), ns.InvalidParameter),
    # --- Sde
    ("sde unknown noise", lambda: gbm(noise="pink"), ns.InvalidParameter),
    ("sde unknown calculus", lambda: gbm(calculus="malliavin"), ns.InvalidParameter),
    ("sde dim zero", lambda: gbm(dim=0), ns.InvalidParameter),
    ("sde scalar with m=2", lambda: gbm(noise_dim=2), ns.InvalidParameter),
    ("sde drift not callable", lambda: gbm(drift=3.0), ns.InvalidParameter),
    ("sde no dt", lambda: ns.simulate(gbm(), x0=[1.0]), ns.InvalidParameter),
    ("sde no x0", lambda: ns.simulate(gbm(), dt=0.01), ns.InvalidParameter),
    ("sde x0 wrong length", lambda: run_sde(gbm(), x0=[1.0, 2.0]), ns.DimensionMismatch),
    ("sde x0 nan", lambda: run_sde(gbm(), x0=[np.nan]), ns.NonFinite),
    ("sde milstein on commutative noise", lambda: run_sde(gbm(dim=2, noise_dim=2, noise="commutative",
                                                              diffusion=lambda t, X: np.ones((len(X), 2, 2))),
                                                          x0=[1.0, 1.0], method="milstein"), ns.Incompatible),
    ("sde milstein on general noise", lambda: run_sde(gbm(dim=2, noise_dim=2, noise="general",
                                                          diffusion=lambda t, X: np.ones((len(X), 2, 2))),
                                                      x0=[1.0, 1.0], method="milstein"), ns.Incompatible),
    ("sde derivative on general noise", lambda: gbm(dim=2, noise_dim=2, noise="general",
                                                    diffusion_derivative=lambda t, X: X), ns.Incompatible),
    ("sde derivative not the jacobian", lambda: run_sde(gbm(dim=2, diffusion_derivative=lambda t, X: X),
                                                        x0=[1.0, 1.0], method="milstein"), ns.CallbackError),
    ("sde derivative not callable", lambda: gbm(diffusion_derivative=3.0), ns.InvalidParameter),
    ("sde derivative wrong shape", lambda: run_sde(gbm(diffusion_derivative=lambda t, X: X[:2]), method="milstein"),
     ns.CallbackError),
    ("sde stratonovich with em", lambda: run_sde(gbm(calculus="stratonovich")), ns.Incompatible),
    ("sde drift raises", lambda: run_sde(gbm(drift=lambda t, X: 1 / 0)), ZeroDivisionError),
    ("sde drift wrong shape", lambda: run_sde(gbm(drift=lambda t, X: X[:, 0][:3])), ns.CallbackError),
    ("sde diffusion wrong shape", lambda: run_sde(gbm(diffusion=lambda t, X: np.ones((len(X), 2)))), ns.CallbackError),
    ("sde drift returns strings", lambda: run_sde(gbm(drift=lambda t, X: np.array(["a"] * len(X)))), ValueError),
    ("sde drift returns None", lambda: run_sde(gbm(drift=lambda t, X: None)), (ValueError, TypeError)),
    ("sde observable raises", lambda: run_sde(gbm(), observables=[lambda X: 1 / 0]), ZeroDivisionError),
    ("sde builtin observable", lambda: run_sde(gbm(), observables=["charge"]), ns.InvalidParameter),
    ("sde dt negative", lambda: run_sde(gbm(), dt=-1.0), ns.InvalidParameter),
    ("functional not callable", lambda: ns.convergence(gbm(), x0=[1.0], t_end=1.0, kind="weak", dts=[1 / 4, 1 / 8],
                                                       paths=4, functional=2.0), ns.InvalidParameter),
    ("functional wrong shape", lambda: ns.convergence(gbm(), x0=[1.0], t_end=1.0, kind="weak", dts=[1 / 4, 1 / 8],
                                                      paths=4, functional=lambda X: X[:2, 0]), ns.CallbackError),
    ("functional raises", lambda: ns.convergence(gbm(), x0=[1.0], t_end=1.0, kind="weak", dts=[1 / 4, 1 / 8],
                                                 paths=4, functional=lambda X: 1 / 0), ZeroDivisionError),
]


@pytest.mark.parametrize("name,call,error", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises(name, call, error):
    with pytest.raises(error) as info:
        call()
    assert str(info.value), "the message must say what is wrong"


def test_there_are_at_least_forty_bad_inputs():
    assert len(CASES) >= 40


def test_library_errors_are_value_errors():
    assert issubclass(ns.InvalidParameter, ns.NoetherError)
    assert issubclass(ns.NoetherError, ValueError)


def test_non_contiguous_and_integer_arrays_are_converted():
    x = np.asfortranarray(rng.normal(size=(30, 3)))[:, ::1]
    y = (x @ np.array([1.0, 2.0, 3.0]))[::1]
    strided = np.ones((60, 3))[::2]
    a = M.LinearRegression(x, y)
    b = M.LinearRegression(strided, np.arange(30))
    assert a.dim == b.dim == 3
    m = M.ScalarFactorization(theta0=np.array([2, 1], dtype=np.int32))
    assert m.theta0.tolist() == [2.0, 1.0]
    assert m.charge(np.array([[2, 1], [1, 1]], dtype=np.float32)[:, :]).tolist() == [3.0, 0.0]


def test_divergence_is_counted_not_raised():
    blowup = ns.Sde(drift=lambda t, X: 1e3 * X**3, diffusion=lambda t, X: np.ones_like(X), dim=1, noise="additive")
    r = ns.simulate(blowup, x0=[1.0], t_end=1.0, dt=0.1, paths=10, seed=0)
    assert r.diverged == 10 and r.finished == 0
    assert "divergence" in r.first_divergence
