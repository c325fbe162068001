"""``simulate``: ensembles of a built-in model or a Python-defined SDE, with statistics.

An ensemble of ``paths`` paths from ``seed``: path ``i`` draws all its randomness from
the library's seed tree at ``(seed, i)``, so it is the same path whatever the thread
count, the chunking, or the machine (Dask worker, Slurm task) that runs it. Statistics
of each recorded observable at the save times are means, unbiased variances and 95 %
confidence intervals ``mean ± t_{0.975, n−1} · s/√n``, reduced by the library's fixed
tree keyed by path index, which merges shards bit for bit.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from . import _core
from ._arrays import as_count, as_float, as_float_array
from ._core import Incompatible, InvalidParameter
from .models import Custom, Model

__all__ = ["simulate", "Sde", "SimulationResult", "Observable", "schemes"]

_BUILTIN = ("charge", "loss", "sharpness", "theta")


def schemes() -> list:
    """The library's scheme catalogue: one dict per scheme with ``name``, ``aliases``,
    ``summary``, ``strong_order`` (and ``strong_order_by_noise``), ``weak_order``,
    ``noise`` (the kinds it accepts), ``calculus``, ``levy_area`` and ``adaptive``.
    Any name or alias is accepted as ``method=`` by :func:`simulate`."""
    return json.loads(_core.schemes())


class Sde:
    """An SDE ``dX = a(t, X) dt + b(t, X) dW`` defined by vectorised Python callbacks.

    ``drift(t, X)`` receives the states of a block of ``P`` paths as a ``(P, d)`` array and
    returns ``(P, d)``; ``diffusion(t, X)`` returns ``(P, d)`` for ``noise="scalar"``
    (``m = 1``) or ``"diagonal"`` (``m = d``, ``b_i ΔW_i``), and ``(P, d, m)`` otherwise.
    One call per step for the whole block, never one per path. Euler–Maruyama
    (``method="em"``, ``X' = X + a h + b ΔW``, THEORY §8), Heun (``"heun"``, for
    ``calculus="stratonovich"``), derivative-free RK-Milstein (``"rk_milstein"``, not
    on general noise with ``m > 1``) and Milstein (``"milstein"``, for scalar noise with
    any ``d``, diagonal and additive noise) run on the library's lockstep driver; each
    path's increments come from its own stream of the seed tree.

    Milstein (THEORY §8) adds the derivative terms ``∂b[v]·c = d/dε b(x + εv)·c`` along
    ``v = b·c``: scalar noise ``X' = X + a h + b ΔW + ½ (ΔW² − h) ∂b[b]``, diagonal noise
    ``X'_i = … + ½ (ΔW_i² − h) b_i′(x_i) b_i(x_i)``. ``diffusion_derivative(t, X)``
    (optional) receives the ``(P, d)`` block, one call per step for the block, and
    returns ``∂b/∂x``:

    - scalar noise: the Jacobian ``J[p, i, l] = ∂b_i/∂x_l`` of shape ``(P, d, d)``
      (``(P, 1)`` or ``(P,)`` also accepted when ``d = 1``), used as
      ``(Σ_l J_il v_l)·c``;
    - diagonal noise: the diagonal ``J[p, i] = ∂b_i/∂x_i`` of shape ``(P, d)``, used as
      ``J_i v_i c_i``;
    - additive noise: not needed (the terms vanish); commutative or general noise:
      refused (:class:`~noether_sde.Incompatible`), their Milstein terms come from
      differences.

    Without it the library takes the central difference
    ``∂b[v]·c = [b(x + εv)·c − b(x − εv)·c] / (2ε)``,
    ``ε = ∛ε_mach · max(‖x‖_∞, 1) / ‖v‖_∞`` (per path, the step of the library's
    per-path difference, hence the same bits): one more ``diffusion`` call at all
    ``X ± εv`` stacked (``2P`` rows) per term for the block (``v`` comes from the step's
    own ``b(t, X)``). Scalar noise has one term per step, diagonal noise two (along
    ``ΔW`` and along ``1``).
    ``method="milstein"`` on commutative noise raises :class:`~noether_sde.Incompatible`
    naming ``"rk_milstein"`` (derivative-free, strong order 1 there); on general noise
    with ``m > 1`` (Lévy areas needed) ``"milstein_levy"`` or ``"rk_milstein"``, which
    draw each path's Lévy areas on the same lanes (the derivative terms of
    ``milstein_levy`` by the block central difference: one ``diffusion`` call of ``2P``
    rows per noise per step).
    """

    def __init__(self, drift: Callable, diffusion: Callable, dim: int, noise_dim: Optional[int] = None,
                 noise: str = "diagonal", calculus: str = "ito",
                 diffusion_derivative: Optional[Callable] = None):
        dim = as_count(dim, "dim", 1)
        if noise_dim is None:
            noise_dim = 1 if noise == "scalar" else dim
        noise_dim = as_count(noise_dim, "noise_dim", 1)
        self.drift, self.diffusion = drift, diffusion
        self.dim, self.noise_dim, self.noise, self.calculus = dim, noise_dim, noise, calculus
        self.diffusion_derivative = diffusion_derivative
        self._core_sde = None
        self._core  # validate now

    @property
    def _core(self):
        if self._core_sde is None:
            self._core_sde = _core.Sde(self.drift, self.diffusion, self.dim, self.noise_dim,
                                       self.noise, self.calculus, self.diffusion_derivative)
        return self._core_sde

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_core_sde"] = None
        return state

    def __repr__(self) -> str:
        return f"Sde(dim={self.dim}, noise_dim={self.noise_dim}, noise={self.noise!r}, calculus={self.calculus!r})"


@dataclass
class Observable:
    """One recorded observable over the save times ``t``.

    ``mean``, ``std`` (sample standard deviation over paths), ``var``, ``ci_low`` and
    ``ci_high`` (95 % interval of the mean) have shape ``(T,)`` for a scalar observable and
    ``(T, k)`` for a vector one; ``paths`` is ``(P, T[, k])`` when ``keep_paths=True``.
    """

    name: str
    mean: np.ndarray
    var: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    paths: Optional[np.ndarray] = None

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)


@dataclass
class SimulationResult:
    """What :func:`simulate` returns: ``r.t``, ``r["charge"].mean`` …, see the module docs."""

    t: np.ndarray
    observables: dict
    finished: int
    diverged: int
    first_divergence: Optional[str]
    seed: int
    paths: tuple
    method: str
    version: str = _core.__version__
    state: Optional[bytes] = None
    final_states: Optional[np.ndarray] = None
    settings: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> Observable:
        try:
            return self.observables[name]
        except KeyError:
            raise KeyError(f"{name!r}: recorded observables are {list(self.observables)}") from None

    def keys(self):
        return self.observables.keys()

    def time_average(self, name: str, t_min: float = -math.inf, t_max: float = math.inf) -> np.ndarray:
        """Mean over the save times in ``[t_min, t_max]`` of the ensemble mean of ``name``."""
        window = (self.t >= t_min) & (self.t <= t_max)
        if not window.any():
            raise InvalidParameter(f"no save time in [{t_min}, {t_max}]")
        return self[name].mean[window].mean(axis=0)

    def to_pandas(self):
        """Long format: one row per (time, observable, component) with mean, std, ci_low,
        ci_high."""
        import pandas as pd

        rows = []
        for name, o in self.observables.items():
            mean = o.mean.reshape(len(self.t), -1)
            k = mean.shape[1]
            parts = [m.reshape(len(self.t), -1) for m in (o.std, o.ci_low, o.ci_high)]
            for j in range(k):
                rows.append(pd.DataFrame({
                    "t": self.t, "observable": name, "component": j, "mean": mean[:, j],
                    "std": parts[0][:, j], "ci_low": parts[1][:, j], "ci_high": parts[2][:, j],
                }))
        return pd.concat(rows, ignore_index=True)

    def __repr__(self) -> str:
        return (f"SimulationResult(method={self.method!r}, paths={self.paths}, seed={self.seed}, "
                f"times={len(self.t)}, observables={list(self.observables)}, diverged={self.diverged})")


def _progress_bar(total: int, enabled):
    if enabled is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    # shown only for runs longer than a couple of seconds
    return tqdm(total=total, unit="path", delay=2.0, leave=False)


def _chunk(paths: int, lockstep: bool, steps: float) -> int:
    """Paths per chunk: Ctrl-C and the progress bar are served between chunks, so a chunk
    is about 2·10^7 path-steps (well under a second for small models), in whole blocks of
    64 paths; the lockstep driver also checks for Ctrl-C in every callback."""
    if lockstep:
        return min(16384, max(64, paths))
    steps = steps if math.isfinite(steps) and steps > 1.0 else 1.0  # bad values are reported by the library
    by_work = int(2e7 // steps) // 64 * 64
    return max(64, min(by_work, max(256, -(-paths // 20 // 64) * 64)))


def _split(names_sizes, mean, var, low, high, values=None):
    out, j = {}, 0
    for name, k in names_sizes:
        sl = slice(j, j + k)
        pick = (lambda a: a[:, j]) if k == 1 and name != "theta" and name != "x" else (lambda a: a[:, sl])
        paths = None
        if values is not None:
            paths = values[:, :, j] if k == 1 and name not in ("theta", "x") else values[:, :, sl]
        out[name] = Observable(name, pick(mean), pick(var), pick(low), pick(high), paths)
        j += k
    return out


def _student_interval(values: np.ndarray):
    """Mean, unbiased variance and 95 % t-interval over axis 0 (the ``n ≥ 2`` paths)."""
    n = values.shape[0]
    mean = values.mean(axis=0)
    var = values.var(axis=0, ddof=1) if n > 1 else np.full_like(mean, np.nan)
    q = _t_quantile(n - 1)
    half = q * np.sqrt(var / max(n, 1))
    return mean, var, mean - half, mean + half


def _t_quantile(df: int) -> float:
    """Two-sided 95 % Student t quantile (Cornish–Fisher expansion, |error| < 1e-3 for df ≥ 3)."""
    if df < 1:
        return math.inf
    z = 1.959963984540054
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def simulate(model: Union[Model, Sde], method: str = "em", *, eta: Optional[float] = None,
             batch: Optional[int] = None, weight_decay: float = 0.0, t_end: float = 10.0,
             dt: Optional[float] = None, paths: int = 256, seed: int = 0, theta0=None, x0=None,
             t0: float = 0.0, save_every: Optional[float] = None, save_at: Optional[Sequence[float]] = None,
             observables: Optional[Sequence[Union[str, Callable]]] = None, keep_paths: bool = False,
             client: Any = None, shards: Optional[int] = None, threads: int = 0,
             progress: Optional[bool] = None) -> SimulationResult:
    """Runs an ensemble of ``paths`` paths and returns the statistics of ``observables``.

    **Built-in models** (``ns.models.*``): ``method`` is ``"sgd"`` / ``"gd"`` (discrete steps
    of size ``η``) or a scheme of :func:`schemes` (``"em"``, ``"milstein"``, ``"heun"``,
    ``"rk_milstein"``, ``"milstein_levy"``) for the SGD-SDE
    ``dθ = −∇L_γ dt + sqrt(η/B) Σ^{1/2} dW`` with step ``dt`` (default ``η/2``), from
    ``theta0`` (default the model's start) over ``[0, t_end]``. Observables: ``"charge"``
    (``θᵀAθ``), ``"loss"`` (``L(θ)``), ``"sharpness"`` (``λ_max ∇²L``), ``"theta"``, or any
    callable ``h(theta[P, d]) -> (P,)`` or ``(P, k)`` (evaluated in Python at each save
    time, on all paths at once). Same seed, same settings → the CLI's numbers bit for bit.

    **A Python model** (:class:`~noether_sde.models.Custom`): ``"sgd"``, ``"gd"`` or ``"em"``
    on its per-sample gradients callback, one call per step for a block of 64 paths;
    observables ``"charge"``, ``"loss"``, ``"theta"`` and callables (evaluated in Python
    at the save times from each path's recorded ``θ``).

    **A Python SDE** (:class:`Sde`): EM, Heun or RK-Milstein on the lockstep driver from ``x0``
    over ``[t0, t_end]`` with step ``dt``; observables ``"x"`` (the state) and callables
    ``h(X[P, d])``.

    Saves at ``save_at`` (the first step at or after each time) or every ``save_every``
    (default ``t_end/10``). Paths whose state stops being finite are counted in
    ``r.diverged`` and left out. ``keep_paths=True`` also returns per-path arrays
    (``r[name].paths``; statistics are then computed by numpy from them). With a
    ``dask.distributed`` ``client``, the path range is split into ``shards`` (default: one
    per worker) run on the workers and merged exactly: the result is bit-identical to the
    local run. ``threads`` = 0 uses all cores (built-in models). A tqdm progress bar is
    shown for runs longer than ~2 s when tqdm is installed (``progress=False`` hides it).
    Ctrl-C stops the run between blocks (``KeyboardInterrupt``).

    Raises :class:`NoetherError` subclasses for bad input, with the library's message.
    """
    paths = as_count(paths, "paths", 1)
    seed = as_count(seed, "seed")
    threads = as_count(threads, "threads")
    t_end = as_float(t_end, "t_end")
    if observables is None:
        observables = ["x"] if isinstance(model, Sde) else ["charge", "loss"]
        if isinstance(model, Custom) and model._loss is None:
            observables = ["charge"]
    if isinstance(observables, (str, bytes)) or callable(observables):
        observables = [observables]
    observables = list(observables)
    if not observables:
        raise InvalidParameter("`observables`: record at least one observable")
    callables = [o for o in observables if callable(o)]
    names = [o for o in observables if not callable(o)]
    for o in names:
        if not isinstance(o, str):
            raise InvalidParameter(f"`observables`: {o!r} is neither a name nor a callable")
    if save_at is not None:
        save_at = [as_float(t, "save_at") for t in np.atleast_1d(np.asarray(save_at, dtype=object))]
    if save_every is not None:
        save_every = as_float(save_every, "save_every")
    need_paths = keep_paths or bool(callables)

    is_sde = isinstance(model, Sde)
    is_custom = isinstance(model, Custom)
    if not (is_sde or is_custom or isinstance(model, Model)):
        raise InvalidParameter(
            f"`model`: expected a model of noether_sde.models or a noether_sde.Sde, got {type(model).__name__}"
        )
    derived = []  # (name, h): observables computed in Python from the recorded θ
    if is_custom:
        for o in names:
            if o == "sharpness":
                raise Incompatible("`observables`: \"sharpness\" needs Hessian products, which a Custom model has not")
            if o not in ("charge", "loss", "theta"):
                raise InvalidParameter(
                    f"`observables`: {o!r}: a Custom model records charge, loss, theta (or pass a callable)")
            if o == "loss" and model._loss is None:
                raise InvalidParameter("`observables`: \"loss\" needs the Custom model's `loss` callback")
        derived = [(o, getattr(model, o)) for o in names if o != "theta"]
        names = [o for o in names if o == "theta"]
        need_paths = True
    derived += [(getattr(h, "__name__", "observable"), h) for h in callables]
    if is_sde:
        for o in names:
            if o not in ("x", "theta"):
                raise InvalidParameter(f"`observables`: {o!r}: an Sde records \"x\" (the state) and callables")
        if dt is None:
            raise InvalidParameter("`dt`: the step size is required for an Sde")
        if x0 is None:
            raise InvalidParameter("`x0`: the initial state is required for an Sde")
        x0v = as_float_array(x0, "x0", (0, 1)).reshape(-1)
        settings = dict(method=method, x0=x0v.tolist(), t0=as_float(t0, "t0"), t_end=t_end,
                        dt=as_float(dt, "dt"), seed=seed, save_every=save_every, save_at=save_at)
        core_names = [("x", model.dim)]
    else:
        for o in names:
            if o not in _BUILTIN:
                raise InvalidParameter(
                    f"`observables`: {o!r}: built-in observables are {', '.join(_BUILTIN)} (or pass a callable)"
                )
        if x0 is not None and theta0 is None:
            theta0 = x0
        settings = dict(
            method=method,
            eta=model.default_eta if eta is None else as_float(eta, "eta"),
            batch=model.default_batch if batch is None else as_count(batch, "batch", 1),
            weight_decay=as_float(weight_decay, "weight_decay"), t_end=t_end,
            dt=None if dt is None else as_float(dt, "dt"), seed=seed,
            theta0=None if theta0 is None else as_float_array(theta0, "theta0", 1).tolist(),
            save_every=save_every, save_at=save_at, threads=threads,
        )
        wanted = list(dict.fromkeys(names + (["theta"] if derived and "theta" not in names else [])))
        core_names = [(n, model.dim if n == "theta" else 1) for n in wanted]
        settings["observables"] = wanted

    if client is not None:
        raw = _run_on_dask(client, model, is_sde, settings, paths, shards, need_paths)
    else:
        bar = _progress_bar(paths, progress)
        try:
            raw = _run_range(model, is_sde, settings, (0, paths), need_paths,
                             None if bar is None else bar.update)
        finally:
            if bar is not None:
                bar.close()

    if not need_paths:
        obs = _split(core_names, raw["mean"], raw["var"], raw["ci_low"], raw["ci_high"])
        return SimulationResult(t=np.asarray(raw["times"]), observables=obs, finished=int(raw["finished"]),
                                diverged=int(raw["diverged"]), first_divergence=raw["first_divergence"],
                                seed=seed, paths=(0, paths), method=method, state=bytes(raw["state"]),
                                settings=settings)
    values = raw["values"]  # (P, T, k)
    ok = np.asarray(raw["ok"], dtype=bool)
    kept = values[ok]
    obs = {}
    mean, var, low, high = _student_interval(kept) if kept.shape[0] else (
        np.full(values.shape[1:], np.nan),) * 4
    obs.update(_split(core_names, mean, var, low, high, values))
    theta_slot = sum(k for n, k in core_names[: [n for n, _ in core_names].index("theta" if not is_sde else "x")])
    state_cols = slice(theta_slot, theta_slot + model.dim)
    for name, h in derived:
        if not ok.any():  # every path diverged: nothing to evaluate
            nan = np.full(values.shape[1], np.nan)
            obs[name] = Observable(name, nan, nan, nan, nan, np.full(values.shape[:2], np.nan))
            continue
        per_time = []
        for a in range(values.shape[1]):
            out = np.asarray(h(np.ascontiguousarray(values[ok, a, state_cols])), dtype=np.float64)
            if out.ndim not in (1, 2) or out.shape[0] != int(ok.sum()):
                raise _core.CallbackError(
                    f"observable {getattr(h, '__name__', h)!r} returned shape {out.shape}; "
                    f"expected ({int(ok.sum())},) or ({int(ok.sum())}, k) for theta of shape ({int(ok.sum())}, {model.dim})"
                )
            per_time.append(out)
        arr = np.stack(per_time, axis=1)  # (P_ok, T[, k])
        m, v, lo, hi = _student_interval(arr)
        full = np.full((values.shape[0],) + arr.shape[1:], np.nan)
        full[ok] = arr
        obs[name] = Observable(name, m, v, lo, hi, full)
    if not keep_paths:
        for o in obs.values():
            o.paths = None
    if not is_sde and "theta" not in names:
        obs.pop("theta", None)
    return SimulationResult(t=np.asarray(raw["times"]), observables=obs, finished=int(ok.sum()),
                            diverged=int(raw["diverged"]), first_divergence=raw["first_divergence"],
                            seed=seed, paths=(0, paths), method=method,
                            final_states=raw["finals"] if keep_paths else None, settings=settings)


def _run_range(model, is_sde: bool, s: dict, paths: tuple, keep_paths: bool, progress=None) -> dict:
    """Runs paths ``[a, b)`` in this process (also the body of a Dask task)."""
    n = paths[1] - paths[0]
    if isinstance(model, Custom):
        theta0 = model.theta0 if s["theta0"] is None else s["theta0"]
        return _core.simulate_custom(model._core, s["method"], s["eta"], s["batch"], s["weight_decay"], s["t_end"],
                                     s["dt"], s["seed"], paths, list(map(float, theta0)), s["save_every"],
                                     s["save_at"], s["threads"], 512, progress)  # Ctrl-C between chunks
    if is_sde:
        return _core.simulate_sde(model._core, s["method"], s["x0"], s["t0"], s["t_end"], s["dt"], s["seed"],
                                  paths, s["save_every"], s["save_at"], keep_paths, _chunk(n, True, 0), progress)
    return _core.simulate_model(model._core, s["method"], s["eta"], s["batch"], s["weight_decay"], s["t_end"],
                                s["dt"], s["seed"], paths, s["theta0"], s["save_every"], s["save_at"],
                                s["observables"], keep_paths, s["threads"],
                                _chunk(n, False, s["t_end"] / (s["dt"] or s["eta"] / (1 if s["method"] in ("sgd", "gd") else 2))),
                                progress)


def _shard_task(model, is_sde, settings, paths, keep_paths=False):
    raw = _run_range(model, is_sde, settings, paths, keep_paths)
    if not keep_paths:
        return bytes(raw["state"])
    return {key: (np.asarray(v) if hasattr(v, "shape") else v) for key, v in dict(raw).items()}


def _concatenate_paths(parts: list) -> dict:
    """Per-path records of consecutive shards, in path order: what one run would return."""
    first = next((p["first_divergence"] for p in parts if p["first_divergence"] is not None), None)
    return dict(times=parts[0]["times"], values=np.concatenate([p["values"] for p in parts]),
                finals=np.concatenate([p["finals"] for p in parts]),
                ok=np.concatenate([p["ok"] for p in parts]), diverged=sum(int(p["diverged"]) for p in parts),
                first_divergence=first, paths=(parts[0]["paths"][0], parts[-1]["paths"][1]))


def _run_on_dask(client, model, is_sde: bool, settings: dict, paths: int, shards: Optional[int],
                 keep_paths: bool = False) -> dict:
    """Shards ``[0, paths)`` over the workers: statistics merge exactly by the library's
    tree; per-path records (``keep_paths``, callable observables, Custom models) are
    concatenated in path order and reduced here, so either way the result is bit-identical
    to the local run. The model (and a Custom model's callbacks) travel to the workers by
    Dask's pickling (cloudpickle: lambdas and closures are fine); callable observables
    are evaluated here, on the client, and need not be picklable."""
    if shards is None:
        try:
            shards = max(1, len(client.scheduler_info()["workers"]))
        except Exception:
            shards = 2
    shards = as_count(shards, "shards", 1)
    shards = min(shards, paths)
    bounds = [paths * i // shards for i in range(shards + 1)]
    futures = [client.submit(_shard_task, model, is_sde, settings, (bounds[i], bounds[i + 1]), keep_paths,
                             pure=False)
               for i in range(shards)]
    results = client.gather(futures)
    if keep_paths:
        return _concatenate_paths(results)
    return dict(_core.summarise_state(_core.merge_states(results)))
