"""Convergence studies and the report (thin wrappers; see their docstrings)."""
from __future__ import annotations

import json
import math
import os
from typing import Callable, Optional, Sequence


from . import _core


def convergence(sde, *, x0, t_end: float = 1.0, schemes: Sequence[str] = ("euler_maruyama", "milstein"),
                kind: str = "strong", dts: Optional[Sequence[float]] = None, paths: int = 200, seed: int = 0,
                functional: Optional[Callable] = None, route: str = "auto") -> dict:
    """Measured convergence orders of ``schemes`` on a Python-defined :class:`~noether_sde.Sde`.

    Each path is one Brownian path sampled on the finest grid and coarsened exactly by
    summation; every scheme runs on it at each step size ``h`` in ``dts`` (dyadic:
    ``t_end / 2^k``, default ``k = 3..7``) and is compared with a reference solution by
    Milstein with Lévy areas on a grid four times finer. ``kind="strong"``:
    ``e(h) = E|X_h(T) − X_ref(T)|``; ``kind="weak"``: ``e(h) = |E[φ(X_h(T)) − φ(X_ref(T))]|``
    with ``φ = functional`` (default the first component). The order is the slope of
    ``log e`` against ``log h`` by least squares, with its 95 % interval.

    The study runs on the library's lockstep driver: each callback is called once per
    step for a block of paths (``X`` of shape ``(P, d)``, ``P`` up to 1024), never once
    per path, with the per-path study's numbers bit for bit (same seed → same errors,
    standard errors, orders and intervals). Schemes without a lockstep twin (the
    lockstep schemes are ``euler_maruyama``, ``milstein`` for scalar, diagonal or
    additive noise, ``heun``, ``rk_milstein``), and the Milstein–Lévy reference on
    commutative or general noise, run one path at a time (``X`` of shape ``(1, d)``).

    ``functional(X)`` is vectorised like the SDE's callbacks: it receives the final
    states of a block of paths as a ``(P, d)`` array and returns ``φ`` of each, shape
    ``(P,)`` — one call per block and step size (and one for the block's references),
    e.g. ``functional=lambda X: X[:, 0] ** 2``. It must treat rows independently (the
    same row gives the same number in any block); on the per-path route it sees blocks
    of one row. ``route="per_path"`` runs every scheme one path at a time instead (one
    callback call per path per step, ``X`` of shape ``(1, d)``): the same numbers, bit for
    bit, much slower — for checking and timing the lockstep route.
    Returns ``{scheme: {"order", "ci_low", "ci_high", "table"}}``, where ``table`` is a
    list of ``{"h", "error", "std_error", "wall_seconds_per_path", ...}`` for a
    work–precision plot.
    """
    from ._arrays import as_count, as_float, as_float_array
    from ._core import InvalidParameter
    from ._simulate import Sde

    if not isinstance(sde, Sde):
        raise InvalidParameter("`sde`: expected a noether_sde.Sde")
    if route not in ("auto", "per_path"):
        raise InvalidParameter(f"`route` = {route!r}: one of \"auto\", \"per_path\"")
    if kind not in ("strong", "weak"):
        raise InvalidParameter(f"`kind` = {kind!r}: one of \"strong\", \"weak\"")
    t_end = as_float(t_end, "t_end")
    if dts is None:
        levels = list(range(3, 8))
    else:
        levels = []
        for h in dts:
            k = math.log2(t_end / as_float(h, "dts"))
            if abs(k - round(k)) > 1e-9 or round(k) < 0:
                raise InvalidParameter(f"`dts`: {h} is not t_end / 2^k (the steps must be dyadic)")
            levels.append(int(round(k)))
        levels.sort()
        if levels != list(range(levels[0], levels[-1] + 1)):
            raise InvalidParameter("`dts`: give consecutive dyadic steps t_end/2^k, t_end/2^(k+1), ...")
    x0 = as_float_array(x0, "x0", (0, 1)).reshape(-1).tolist()
    if functional is not None and not callable(functional):
        raise InvalidParameter("`functional`: expected a function of X[P, d] returning (P,)")
    raw = json.loads(_core.convergence(sde._core, x0, t_end, list(schemes), kind == "weak", levels[0], levels[-1],
                                       as_count(paths, "paths", 2), as_count(seed, "seed"), functional,
                                       route == "per_path"))
    out = {}
    for study in raw:
        table = [dict(p, wall_seconds_per_path=p["wall_seconds"] / p["paths"]) for p in study["points"]]
        out[study["scheme"]] = {"order": study["fit"]["slope"], "ci_low": study["fit"]["ci_low"],
                                "ci_high": study["fit"]["ci_high"], "kind": study["kind"], "table": table}
    return out


def reproduce(out: str = "report", quick: bool = True, only=None, force: bool = False) -> dict:
    """Runs the paper-reproduction report (the CLI's ``reproduce``) and writes
    ``report.md``, ``results.json`` and SVG figures to ``out``.

    Each claim of the paper is checked — prediction, measurement with its 95 % interval,
    verdict: measured orders of every integrator, the Noether flow of scalar
    factorisation, the two timescales and their η/B scaling, the matrix-factorisation
    equilibrium, the normalised layer's weight-decay equilibrium, approximate
    symmetries, warmup and sharpening. ``quick=True`` uses smaller ensembles (under a
    minute). ``only`` runs a subset of claim families (names as in
    ``noether-sde reproduce --only``); an existing non-empty ``out`` that the tool did
    not write is refused unless ``force=True``. Returns ``{"claims": [...], "files": [...]}``.
    """
    names = None if only is None else ([only] if isinstance(only, str) else [str(n) for n in only])
    return json.loads(_core.reproduce(os.fspath(out), bool(quick), names, bool(force)))
