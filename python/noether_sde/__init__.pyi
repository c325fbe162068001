from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from . import models as models
from .models import Model

__version__: str

class NoetherError(ValueError): ...
class InvalidParameter(NoetherError): ...
class DimensionMismatch(NoetherError): ...
class NonFinite(NoetherError): ...
class Divergence(NoetherError): ...
class Incompatible(NoetherError): ...
class NotSymmetric(NoetherError): ...
class NoFixedPoint(NoetherError): ...
class BrownianError(NoetherError): ...
class CallbackError(NoetherError): ...

class Sde:
    """``dX = a(t, X) dt + b(t, X) dW`` from vectorised callbacks on ``(P, d)`` blocks.

    ``diffusion_derivative(t, X[P, d])`` gives Milstein's ``∂b/∂x``: the Jacobian
    ``(P, d, d)`` for scalar noise (``(P, 1)`` or ``(P,)`` when ``d = 1``), the diagonal
    ``b_i′(x_i)`` ``(P, d)`` for diagonal noise; not for commutative or general noise.
    Without it a central difference of ``diffusion`` (one stacked call per term) is used.
    """
    drift: Callable[[float, np.ndarray], np.ndarray]
    diffusion: Callable[[float, np.ndarray], np.ndarray]
    dim: int
    noise_dim: int
    noise: str
    calculus: str
    diffusion_derivative: Optional[Callable[[float, np.ndarray], np.ndarray]]
    def __init__(
        self,
        drift: Callable[[float, np.ndarray], np.ndarray],
        diffusion: Callable[[float, np.ndarray], np.ndarray],
        dim: int,
        noise_dim: Optional[int] = ...,
        noise: str = ...,
        calculus: str = ...,
        diffusion_derivative: Optional[Callable[[float, np.ndarray], np.ndarray]] = ...,
    ) -> None: ...

class Observable:
    name: str
    mean: np.ndarray
    var: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    paths: Optional[np.ndarray]
    @property
    def std(self) -> np.ndarray: ...

class SimulationResult:
    t: np.ndarray
    observables: dict[str, Observable]
    finished: int
    diverged: int
    first_divergence: Optional[str]
    seed: int
    paths: tuple[int, int]
    method: str
    version: str
    state: Optional[bytes]
    final_states: Optional[np.ndarray]
    settings: dict[str, Any]
    def __getitem__(self, name: str) -> Observable: ...
    def keys(self) -> Any: ...
    def time_average(self, name: str, t_min: float = ..., t_max: float = ...) -> np.ndarray: ...
    def to_pandas(self) -> Any: ...

def schemes() -> list[dict[str, Any]]: ...
def simulate(
    model: Union[Model, "models.Custom", Sde],
    method: str = ...,
    *,
    eta: Optional[float] = ...,
    batch: Optional[int] = ...,
    weight_decay: float = ...,
    t_end: float = ...,
    dt: Optional[float] = ...,
    paths: int = ...,
    seed: int = ...,
    theta0: Any = ...,
    x0: Any = ...,
    t0: float = ...,
    save_every: Optional[float] = ...,
    save_at: Optional[Sequence[float]] = ...,
    observables: Optional[Sequence[Union[str, Callable[[np.ndarray], np.ndarray]]]] = ...,
    keep_paths: bool = ...,
    client: Any = ...,
    shards: Optional[int] = ...,
    threads: int = ...,
    progress: Optional[bool] = ...,
) -> SimulationResult: ...
def convergence(
    sde: Sde,
    *,
    x0: Any,
    t_end: float,
    schemes: Sequence[str] = ...,
    kind: str = ...,
    dts: Sequence[float] = ...,
    paths: int = ...,
    seed: int = ...,
    functional: Optional[Callable[[np.ndarray], np.ndarray]] = ...,
    route: str = ...,
) -> dict[str, dict[str, Any]]:
    """Strong ``E|X_h(T) − X_ref(T)|`` or weak ``|E[φ(X_h(T)) − φ(X_ref(T))]|`` errors
    over dyadic steps on shared Brownian paths (reference: Milstein with Lévy areas 4×
    finer), on the lockstep driver (one callback call per step per block of paths;
    ``functional(X[P, d]) -> (P,)`` once per block and step size); ``route="per_path"``:
    one path at a time, the same numbers.
    Returns ``{scheme: {"order", "ci_low", "ci_high", "kind", "table"}}``."""
    ...
def reproduce(out: str = ..., quick: bool = ..., only: str | Sequence[str] | None = ..., force: bool = ...) -> dict[str, Any]: ...
