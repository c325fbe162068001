"""noether_sde: SGD as an SDE — SDE integrators, exponential symmetries and the Noether flow.

Python bindings of the ``noether-sde`` Rust crate: the same models, schemes, seeds and
numbers as the library and its CLI (``cargo run --release -- simulate ...``), with the
GIL released while Rust computes.

>>> import noether_sde as ns
>>> model = ns.models.ScalarFactorization(v=1.0, sigma=1.0)
>>> r = ns.simulate(model, method="em", eta=0.05, batch=4, t_end=2.0, paths=64, seed=1)
>>> r["charge"].mean.shape == r.t.shape
True
"""
from __future__ import annotations

from . import models
from ._core import (
    BrownianError,
    CallbackError,
    DimensionMismatch,
    Divergence,
    Incompatible,
    InvalidParameter,
    NoetherError,
    NoFixedPoint,
    NonFinite,
    NotSymmetric,
    __version__,
)
from ._simulate import Observable, Sde, SimulationResult, schemes, simulate
from ._extras import convergence, reproduce

__all__ = [
    "models",
    "simulate",
    "Sde",
    "SimulationResult",
    "Observable",
    "schemes",
    "convergence",
    "reproduce",
    "NoetherError",
    "InvalidParameter",
    "DimensionMismatch",
    "NonFinite",
    "Divergence",
    "Incompatible",
    "NotSymmetric",
    "NoFixedPoint",
    "BrownianError",
    "CallbackError",
    "__version__",
]
