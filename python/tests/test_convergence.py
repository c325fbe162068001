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
