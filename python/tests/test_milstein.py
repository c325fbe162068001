"""Milstein on a Python-defined SDE with d > 1 (scalar noise, any d; diagonal noise):
the lockstep block terms against the per-path route (bit for bit), the user's derivative
against the library's central difference, closed forms and the measured order."""
import numpy as np
import pytest

import noether_sde as ns

MU, S = 0.3, 0.5


class Rotation:
    """Scalar noise, d = 2: dX = μX dt + σ J X dW with J the rotation generator.

    Itô: X(t) = e^{(μ + σ²/2) t} R(σ W(t)) X(0) (J² = −I commutes with I), so
    E X(t) = e^{μt} X(0) and ‖X(t)‖ = e^{(μ + σ²/2) t} ‖X(0)‖ exactly, path by path.
    The Jacobian of b(x) = σ J x is σ J, a non-diagonal (P, 2, 2) array. Only +, −, ×:
    the same bits for a row whatever the block.
    """

    def __init__(self):
        self.calls = {"drift": 0, "diffusion": 0, "derivative": 0}
        self.rows = []

    def drift(self, t, X):
        self.calls["drift"] += 1
        return MU * X

    def diffusion(self, t, X):
        self.calls["diffusion"] += 1
        self.rows.append(X.shape[0])
        return S * np.stack([-X[:, 1], X[:, 0]], axis=1)

    def derivative(self, t, X):
        self.calls["derivative"] += 1
        J = np.zeros((X.shape[0], 2, 2))
        J[:, 0, 1], J[:, 1, 0] = -S, S
        return J

    def sde(self, derivative=False):
        return ns.Sde(drift=self.drift, diffusion=self.diffusion, dim=2, noise="scalar",
                      diffusion_derivative=self.derivative if derivative else None)


SIGMA = np.array([0.4, 0.3, 0.2])


class Diagonal:
    """Diagonal noise, d = 3, each component its own equation: GBM b_0 = σ_0 x_0,
    b_1 = σ_1 x_1 / (1 + x_1²), b_2 = σ_2 √(1 + x_2²) (+, −, ×, /, √: correctly rounded,
    so a row's bits do not depend on the block), drift μx (E X_0(t) = e^{μt} X_0(0))."""

    def __init__(self):
        self.calls = {"drift": 0, "diffusion": 0, "derivative": 0}

    def drift(self, t, X):
        self.calls["drift"] += 1
        return MU * X

    def diffusion(self, t, X):
        self.calls["diffusion"] += 1
        x0, x1, x2 = X[:, 0], X[:, 1], X[:, 2]
        return np.stack([SIGMA[0] * x0, SIGMA[1] * x1 / (1 + x1 * x1), SIGMA[2] * np.sqrt(1 + x2 * x2)], axis=1)

    def derivative(self, t, X):
        self.calls["derivative"] += 1
        x1, x2 = X[:, 1], X[:, 2]
        q = 1 + x1 * x1
        return np.stack([np.full(len(X), SIGMA[0]), SIGMA[1] * (1 - x1 * x1) / (q * q),
                         SIGMA[2] * x2 / np.sqrt(1 + x2 * x2)], axis=1)

    def sde(self, derivative=False):
        return ns.Sde(drift=self.drift, diffusion=self.diffusion, dim=3, noise="diagonal",
                      diffusion_derivative=self.derivative if derivative else None)


PROBLEMS = [(Rotation, [1.0, 0.5]), (Diagonal, [1.0, 0.5, -0.3])]
DTS = [1 / 8, 1 / 16, 1 / 32, 1 / 64]


@pytest.mark.parametrize("problem,x0", PROBLEMS, ids=["scalar_d2", "diagonal_d3"])
@pytest.mark.parametrize("derivative", [False, True], ids=["difference", "derivative"])
def test_lockstep_milstein_is_the_per_path_one_bit_for_bit(problem, x0, derivative):
    """"milstein" runs on lanes (the block terms; its Milstein–Lévy reference too, the
    same arithmetic on this noise) and "milstein_levy" per path (Sde::diffusion_derivative,
    one path per call): the same errors and standard errors, bit for bit."""
    sde = problem().sde(derivative)
    res = ns.convergence(sde, x0=x0, t_end=1.0, schemes=["milstein", "milstein_levy"], dts=DTS[:3],
                         paths=40, seed=9)
    lanes, per_path = res["milstein"]["table"], res["milstein_levy"]["table"]
    assert [(r["error"], r["std_error"]) for r in lanes] == [(r["error"], r["std_error"]) for r in per_path]


@pytest.mark.parametrize("problem,x0", PROBLEMS, ids=["scalar_d2", "diagonal_d3"])
def test_strong_order_one_with_and_without_the_derivative(problem, x0):
    """Declared strong order 1 inside the fitted slope's 95 % interval (seed 4, 200
    paths); the user's derivative and the central difference (relative error ~1e-10)
    give the same errors to 1e-8."""
    studies = []
    for derivative in (False, True):
        res = ns.convergence(problem().sde(derivative), x0=x0, t_end=1.0, schemes=["milstein"], dts=DTS,
                             paths=200, seed=4)
        mil = res["milstein"]
        assert mil["ci_low"] < 1.0 < mil["ci_high"], mil
        studies.append([r["error"] for r in mil["table"]])
    for a, b in zip(*studies):
        assert abs(a - b) <= 1e-8 * b


@pytest.mark.parametrize("problem,x0", PROBLEMS, ids=["scalar_d2", "diagonal_d3"])
def test_milstein_mean_matches_the_closed_form(problem, x0):
    """E X_0(1) = e^{μ} X_0(0) for both problems: within 4 standard errors (false alarm
    6e-5) at 512 paths (seed 2, h = 1/100)."""
    c = problem()
    r = ns.simulate(c.sde(derivative=True), method="milstein", x0=x0, t_end=1.0, dt=0.01, paths=512, seed=2,
                    save_every=1.0)
    mean, se = np.ravel(r["x"].mean[-1])[0], np.ravel(r["x"].std[-1])[0] / np.sqrt(512)
    assert abs(mean - np.exp(MU) * x0[0]) < 4 * se


def test_rotation_norm_is_exact_to_order_h():
    """‖X(1)‖ = e^{μ + σ²/2}‖X(0)‖ on every path. Milstein's per-path error is O(h):
    halving h halves the mean absolute error over the same 256 paths (seed 3) — the ratio
    within [1.6, 2.5] (order 1 ± ⅓); Euler–Maruyama, order ½, has a far larger error."""
    x0 = np.array([1.0, 0.5])
    exact = np.exp(MU + S * S / 2) * np.linalg.norm(x0)

    def error(method, dt):
        r = ns.simulate(Rotation().sde(derivative=True), method=method, x0=x0, t_end=1.0, dt=dt, paths=256,
                        seed=3, save_every=1.0, keep_paths=True)
        return np.mean(np.abs(np.linalg.norm(r.final_states, axis=1) - exact))

    coarse, fine = error("milstein", 1 / 64), error("milstein", 1 / 128)
    assert 1.6 < coarse / fine < 2.5, (coarse, fine)
    assert error("em", 1 / 64) > 5 * coarse


@pytest.mark.parametrize("problem,x0,per_step", [
    (Rotation, [1.0, 0.5], 2),  # b for the step (reused for v = b·1); b(x ± εv) stacked
    (Diagonal, [1.0, 0.5, -0.3], 3),  # the same, the stacked call along ΔW and along 1
], ids=["scalar_d2", "diagonal_d3"])
def test_one_call_per_step_per_block(problem, x0, per_step):
    """Every callback sees the whole block: the counts per step are fixed (per block),
    never per path; b(t, X) of the step serves the Milstein terms at the same states, and
    with the user's derivative one derivative call (shared by diagonal noise's two terms)
    replaces the difference's stacked calls."""
    for derivative in (False, True):
        c = problem()
        ns.simulate(c.sde(derivative), method="milstein", x0=x0, t_end=1.0, dt=0.01, paths=64, seed=1,
                    save_every=0.5)
        steps = c.calls["drift"]  # one drift call per step per block
        assert steps % 100 == 0
        if derivative:
            assert c.calls == {"drift": steps, "diffusion": steps, "derivative": steps}
        else:
            assert c.calls == {"drift": steps, "diffusion": per_step * steps, "derivative": 0}
    if problem is Rotation:
        assert set(c.rows) == {64}  # with the derivative: no stacked call


def test_difference_stacks_both_sides_in_one_call():
    c = Rotation()
    ns.simulate(c.sde(), method="milstein", x0=[1.0, 0.5], t_end=0.1, dt=0.01, paths=64, seed=1)
    assert set(c.rows) == {64, 128}


def test_milstein_refusals_name_the_scheme_to_use():
    def sde(noise, m=2, **kw):
        return ns.Sde(drift=lambda t, X: -X, diffusion=lambda t, X: 0.1 * np.ones((len(X), 2, m)), dim=2,
                      noise_dim=m, noise=noise, **kw)

    with pytest.raises(ns.Incompatible, match="rk_milstein"):
        ns.simulate(sde("commutative"), method="milstein", x0=[1.0, 1.0], t_end=0.1, dt=0.01, paths=8)
    with pytest.raises(ns.Incompatible, match="Lévy areas.*milstein_levy"):
        ns.simulate(sde("general"), method="milstein", x0=[1.0, 1.0], t_end=0.1, dt=0.01, paths=8)
    with pytest.raises(ns.Incompatible, match="rk_milstein"):
        ns.simulate(sde("general", m=1), method="milstein", x0=[1.0, 1.0], t_end=0.1, dt=0.01, paths=8)
    with pytest.raises(ns.Incompatible, match="scalar noise.*diagonal noise"):
        sde("general", diffusion_derivative=lambda t, X: X)
    # the suggested schemes run (general noise: each path's Lévy areas on the lanes)
    r = ns.simulate(sde("commutative"), method="rk_milstein", x0=[1.0, 1.0], t_end=0.1, dt=0.01, paths=8)
    assert r.finished == 8
    for method in ["milstein_levy", "rk_milstein"]:
        r = ns.simulate(sde("general"), method=method, x0=[1.0, 1.0], t_end=0.1, dt=0.01, paths=8)
        assert r.finished == 8, method


def test_derivative_of_the_wrong_shape_is_a_callback_error():
    c = Rotation()
    bad = ns.Sde(drift=c.drift, diffusion=c.diffusion, dim=2, noise="scalar",
                 diffusion_derivative=lambda t, X: np.zeros_like(X))  # (P, 2), not the Jacobian (P, 2, 2)
    with pytest.raises(ns.CallbackError, match=r"\(8, 2, 2\)"):
        ns.simulate(bad, method="milstein", x0=[1.0, 0.5], t_end=0.1, dt=0.01, paths=8)
