"""Convergence studies of a Python-defined SDE (per-path callbacks, reference 4× finer)."""
import numpy as np
import pytest

import noether_sde as ns


def gbm():
    return ns.Sde(drift=lambda t, X: 0.5 * X, diffusion=lambda t, X: 0.3 * X, dim=1, noise="scalar")


def test_strong_orders_of_em_and_milstein_on_gbm():
    res = ns.convergence(gbm(), x0=[1.0], t_end=1.0, schemes=["em", "milstein"], kind="strong",
                         dts=[1 / 8, 1 / 16, 1 / 32, 1 / 64], paths=100, seed=3)
    em, mil = res["euler_maruyama"], res["milstein"]
    # declared strong orders 1/2 and 1; bounds wider than the fits' intervals because
    # the pre-asymptotic errors at h = 1/8 bend the line
    assert 0.3 < em["order"] < 0.8, em
    assert 0.8 < mil["order"] < 1.3, mil
    assert len(em["table"]) == 4
    assert all(row["wall_seconds_per_path"] > 0 for row in em["table"])
    errors = [row["error"] for row in mil["table"]]
    assert errors == sorted(errors, reverse=True) or errors == sorted(errors)


def test_non_dyadic_steps_are_refused():
    with pytest.raises(ns.InvalidParameter):
        ns.convergence(gbm(), x0=[1.0], t_end=1.0, dts=[0.3, 0.1])


class Counting:
    """Vectorised callbacks that count their calls and the rows they see."""

    def __init__(self, mu=0.5, s=0.3):
        self.mu, self.s = mu, s
        self.calls = {"drift": 0, "diffusion": 0, "derivative": 0}
        self.rows = []

    def drift(self, t, X):
        self.calls["drift"] += 1
        self.rows.append(X.shape[0])
        return self.mu * X

    def diffusion(self, t, X):
        self.calls["diffusion"] += 1
        self.rows.append(X.shape[0])
        return self.s * X

    def derivative(self, t, X):
        self.calls["derivative"] += 1
        return np.full_like(X, self.s)


def numbers(res):
    """Every number of a study but the wall times: orders, intervals, errors, standard errors."""
    return {name: (r["order"], r["ci_low"], r["ci_high"], [(p["h"], p["error"], p["std_error"]) for p in r["table"]])
            for name, r in res.items()}


def test_one_callback_call_per_step_per_block_and_the_per_path_numbers():
    c = Counting()
    sde = ns.Sde(drift=c.drift, diffusion=c.diffusion, dim=1, noise="scalar")
    dts = [1 / 8, 1 / 16, 1 / 32, 1 / 64]
    study = dict(x0=[1.0], t_end=1.0, schemes=["em", "milstein", "rk_milstein"], kind="strong", dts=dts, paths=100,
                 seed=3)
    slow = Counting()
    per_path = ns.convergence(ns.Sde(drift=slow.drift, diffusion=slow.diffusion, dim=1, noise="scalar"),
                              route="per_path", **study)
    assert slow.calls["drift"] >= 100 * 3 * 120  # one call per path per step at least
    res = ns.convergence(sde, **study)
    assert numbers(res) == numbers(per_path)
    # all 100 paths in one block: steps of the levels (8+16+32+64 = 120) and of the
    # Milstein reference 4× finer (256) per scheme, each step a fixed handful of calls
    # for the block (drift + diffusion: EM 1+1, Milstein 1+2 (b, then b at the stacked
    # x ± εb for L¹b; b at x is the step's own), RK-Milstein 1+2), never
    # one per path (the per-path study made 112,800 drift and 415,200 diffusion calls here)
    assert c.calls["drift"] == 3 * 256 + 3 * 120
    assert c.calls["diffusion"] == 3 * 256 * 2 + 120 * (1 + 2 + 2)
    assert set(c.rows) == {100, 200}  # the block, and the stacked x ± εb of the difference


def test_weak_study_keeps_the_per_path_numbers_with_one_functional_call_per_block():
    """φ(X) = X_1² vectorised: one call per block of paths per step size, plus one for the
    block's references, never one per path (the per-path study called it 2 × 100 × 4 times
    here), with the per-path study's numbers bit for bit."""
    c = Counting()
    sde = ns.Sde(drift=c.drift, diffusion=c.diffusion, dim=1, noise="scalar")
    blocks = []

    def square(X):
        blocks.append(X.shape)
        return X[:, 0] ** 2

    study = dict(x0=[1.0], t_end=1.0, schemes=["em", "milstein"], kind="weak", dts=[1 / 2, 1 / 4, 1 / 8], paths=100,
                 seed=3)
    slow = Counting()
    per_path = ns.convergence(ns.Sde(drift=slow.drift, diffusion=slow.diffusion, dim=1, noise="scalar"),
                              route="per_path", functional=lambda X: X[:, 0] ** 2, **study)
    res = ns.convergence(sde, functional=square, **study)
    assert numbers(res) == numbers(per_path)
    assert blocks == [(100, 1)] * (2 * (3 + 1))  # 2 schemes × (3 step sizes + the reference), one block


def test_functional_blocks_follow_the_block_width():
    """2,000 paths of a d = 2 SDE run as blocks of at most 1024 paths: two calls per step
    size, each with the block's (P, 2) final states."""
    sde = ns.Sde(drift=lambda t, X: -X, diffusion=lambda t, X: 0.3 * X, dim=2, noise="diagonal")
    shapes = []

    def first(X):
        shapes.append(X.shape)
        return X[:, 0]

    ns.convergence(sde, x0=[1.0, 2.0], t_end=1.0, schemes=["em"], kind="weak", dts=[1 / 2, 1 / 4], paths=2000,
                   seed=1, functional=first)
    assert shapes == [(1024, 2)] * 3 + [(976, 2)] * 3


def test_milstein_with_the_users_derivative_matches_the_finite_difference_to_rounding():
    """L¹b = b′b from the callback: one derivative call per step per block; the study's
    errors agree with the finite-difference route to the difference's accuracy."""
    c = Counting()
    with_derivative = ns.Sde(drift=c.drift, diffusion=c.diffusion, dim=1, noise="scalar",
                             diffusion_derivative=c.derivative)
    dts = [1 / 8, 1 / 16, 1 / 32]
    a = ns.convergence(with_derivative, x0=[1.0], t_end=1.0, schemes=["milstein"], dts=dts, paths=50, seed=5)
    assert c.calls["derivative"] == 128 + 56  # reference (4× finer than 1/32) + levels
    b = ns.convergence(gbm(), x0=[1.0], t_end=1.0, schemes=["milstein"], dts=dts, paths=50, seed=5)
    for ra, rb in zip(a["milstein"]["table"], b["milstein"]["table"]):
        assert abs(ra["error"] - rb["error"]) <= 1e-8 * rb["error"]


def test_simulate_runs_milstein_on_a_python_sde():
    c = Counting()
    sde = ns.Sde(drift=c.drift, diffusion=c.diffusion, dim=1, noise="scalar", diffusion_derivative=c.derivative)
    r = ns.simulate(sde, method="milstein", x0=[1.0], t_end=1.0, dt=0.01, paths=64, seed=1, save_every=0.5)
    # E X(1) = e^{μ} for GBM; 64 paths: within 4 standard errors
    mean, se = r["x"].mean[-1], r["x"].std[-1] / 8
    assert abs(float(np.ravel(mean)[0]) - np.exp(0.5)) < 4 * float(np.ravel(se)[0])
    # one derivative call per step per block (100 steps)
    assert c.calls["derivative"] > 0 and c.calls["derivative"] % 100 == 0


def test_milstein_runs_beyond_one_dimension():
    """d = 2 diagonal noise, with the user's diagonal derivative b_i′(x_i) of shape (P, 2)
    (more in test_milstein.py)."""
    two = ns.Sde(drift=lambda t, X: -X, diffusion=lambda t, X: 0.1 * X, dim=2, noise="diagonal",
                 diffusion_derivative=lambda t, X: 0.1 + 0 * X)
    r = ns.simulate(two, method="milstein", x0=[1.0, 1.0], t_end=0.1, dt=0.01, paths=8, seed=1)
    assert r.finished == 8


def test_bad_convergence_inputs_raise_typed_exceptions():
    with pytest.raises(ns.InvalidParameter):
        ns.convergence(gbm(), x0=[1.0], t_end=1.0, kind="median")
    with pytest.raises(ns.InvalidParameter, match="route"):
        ns.convergence(gbm(), x0=[1.0], t_end=1.0, route="lanes")
    with pytest.raises(ns.InvalidParameter):
        ns.convergence(gbm(), x0=[1.0], t_end=1.0, paths=1)
    with pytest.raises(ns.DimensionMismatch):
        ns.convergence(gbm(), x0=[1.0, 2.0], t_end=1.0, dts=[1 / 4, 1 / 8])
    with pytest.raises(ns.InvalidParameter):
        ns.convergence(gbm(), x0=[1.0], t_end=1.0, schemes=["no_such_scheme"], dts=[1 / 4, 1 / 8])
    bad = ns.Sde(drift=lambda t, X: X[:, :0], diffusion=lambda t, X: 0.3 * X, dim=1, noise="scalar")
    with pytest.raises(ns.CallbackError):
        ns.convergence(bad, x0=[1.0], t_end=1.0, schemes=["em"], dts=[1 / 4, 1 / 8], paths=4)


def test_lockstep_milstein_with_the_derivative_is_the_per_path_one_bit_for_bit():
    """On d = m = 1 scalar noise Milstein–Lévy is Milstein's arithmetic; it has no lane
    twin, so it runs per path (Sde::diffusion_derivative with the user's b′) while
    "milstein" runs on lanes (milstein_block with the same b′): the same numbers."""
    c = Counting()
    sde = ns.Sde(drift=c.drift, diffusion=c.diffusion, dim=1, noise="scalar", diffusion_derivative=c.derivative)
    res = ns.convergence(sde, x0=[1.0], t_end=1.0, schemes=["milstein", "milstein_levy"], dts=[1 / 4, 1 / 8, 1 / 16],
                         paths=20, seed=9)
    lanes, per_path = res["milstein"]["table"], res["milstein_levy"]["table"]
    assert [(r["error"], r["std_error"]) for r in lanes] == [(r["error"], r["std_error"]) for r in per_path]


def test_general_noise_studies_call_python_once_per_step_per_block():
    """dX₁ = dW₁, dX₂ = sin(X₁) dW₂ (general, non-commutative noise, m = 2): the
    Milstein–Lévy reference (Lévy areas per path, derivative terms by the block central
    difference) and RK-Milstein (with areas) run on lanes, so every callback sees the
    whole block of 100 paths — never one path — and the orders are the theory's: ½ for
    EM, 1 for RK-Milstein with areas (each inside its 95% interval)."""
    rows = []

    def drift(t, X):
        rows.append(X.shape[0])
        return np.zeros_like(X)

    def diffusion(t, X):
        rows.append(X.shape[0])
        B = np.zeros((X.shape[0], 2, 2))
        B[:, 0, 0] = 1.0
        B[:, 1, 1] = np.sin(X[:, 0])
        return B

    sde = ns.Sde(drift=drift, diffusion=diffusion, dim=2, noise_dim=2, noise="general")
    res = ns.convergence(sde, x0=[0.3, 1.0], t_end=1.0, schemes=["em", "rk_milstein"],
                         dts=[1 / 8, 1 / 16, 1 / 32, 1 / 64], paths=100, seed=2)
    assert min(rows) >= 100, sorted(set(rows))
    em, rk = res["euler_maruyama"], res["rk_milstein"]
    assert em["ci_low"] <= 0.5 <= em["ci_high"], em
    assert rk["ci_low"] <= 1.0 <= rk["ci_high"], rk
    assert rk["ci_low"] > 0.5, rk  # and it is not EM's order
