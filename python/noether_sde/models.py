"""The built-in models (THEORY §6), built from numpy arrays and keywords.

Each model is a per-sample loss ``ℓ(θ; x, y)`` on a data set (the user's own ``X``, ``y``
or ``n`` samples drawn from the model's population) or on fresh samples each step
(``n=0``, online SGD, where the model has closed forms). SGD with learning rate ``η``
and batch ``B`` is approximated by the SGD-SDE (THEORY §1)::

    dθ = −∇L_γ(θ) dt + sqrt(η/B) Σ(θ)^{1/2} dW,

and an exponential symmetry ``θ → e^{λA}θ`` of the loss gives the charge
``C(θ) = θᵀAθ`` whose drift is the Noether flow (THEORY §2–§3)::

    dC/dt = −4γ C + η c_B Tr[A Σ(θ) A]   (Itô, leading order).

Every model exposes ``symmetry()``, ``charge(θ)``, ``loss(θ)``, ``sharpness(θ)`` and
``predict(eta=, batch=)`` (the fixed point of the Noether flow on the orbit of the
start, the slow rate κ, the fast rate and the two timescales).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _core
from ._arrays import as_count, as_float_array

__all__ = [
    "Model",
    "Symmetry",
    "ScalarFactorization",
    "MatrixFactorization",
    "NormalizedLinear",
    "LinearRegression",
    "TwoLayer",
    "Custom",
]

_VECTORS = {"theta0", "sigma_x", "sigma_eps", "teacher_vector", "input_variances", "theta_star"}


class Symmetry:
    """An exponential symmetry ``θ → e^{λA}θ`` with symmetric generator ``A``.

    The charge is ``C(θ) = θᵀAθ``; under an exact symmetry and no weight decay, gradient
    flow conserves it and SGD drives it along the Noether flow (THEORY §2–§3).
    """

    def __init__(self, generator: np.ndarray):
        self.generator = generator

    def charge(self, theta) -> np.ndarray | float:
        """``θᵀAθ`` for a vector ``θ`` (a float) or each row of a ``(P, d)`` array."""
        theta = np.asarray(theta, dtype=np.float64)
        if theta.ndim == 1:
            return float(theta @ self.generator @ theta)
        return np.einsum("pi,ij,pj->p", theta, self.generator, theta)

    def __repr__(self) -> str:
        return f"Symmetry(generator of shape {self.generator.shape})"


class Model:
    """A built-in model: base class of the models of this module (see their docs).

    Picklable (it keeps its keywords and rebuilds the Rust model where it is unpickled),
    so it can be shipped to Dask workers.
    """

    _kind = ""
    default_eta = 0.05
    default_batch = 4

    def __init__(self, **kwargs: Any):
        clean = {}
        for key, value in kwargs.items():
            if value is None:
                continue
            if key in ("X", "y", "teacher") and not (key == "teacher" and self._kind == "normalized_linear"):
                arr = as_float_array(value, key, (1, 2))
                clean[key] = arr.reshape(-1, 1) if arr.ndim == 1 else arr
            elif key in _VECTORS or (key == "teacher" and self._kind == "normalized_linear"):
                clean[key] = as_float_array(value, key, 1)
            else:
                clean[key] = value
        self._kwargs = clean
        self._core_model: Optional[_core.Model] = None
        self._core  # build now: bad input fails at construction

    @property
    def _core(self) -> "_core.Model":
        if self._core_model is None:
            self._core_model = _core.build_model(self._kind, **self._kwargs)
        return self._core_model

    def __getstate__(self):
        return {"kwargs": self._kwargs}

    def __setstate__(self, state):
        self._kwargs = state["kwargs"]
        self._core_model = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, data_size={self.data_size})"

    @property
    def dim(self) -> int:
        """Number of parameters ``d``."""
        return self._core.dim

    @property
    def theta0(self) -> np.ndarray:
        """The default start ``θ₀``."""
        return self._core.theta0

    @property
    def data_size(self) -> int:
        """Size of the data set (0: fresh samples each step)."""
        return self._core.data_size

    def symmetry(self) -> Optional[Symmetry]:
        """The model's exponential symmetry (``None`` for a model without one)."""
        g = self._core.generator()
        return None if g is None else Symmetry(g)

    def _rows(self, theta, name: str):
        theta = as_float_array(theta, name, (1, 2))
        return theta.ndim == 1, np.atleast_2d(theta)

    def charge(self, theta):
        """The recorded charge ``C(θ) = θᵀAθ`` (``‖θ‖²`` without a symmetry), for ``(d,)``
        or ``(P, d)`` input."""
        single, rows = self._rows(theta, "theta")
        out = self._core.charge_rows(rows)
        return float(out[0]) if single else out

    def loss(self, theta):
        """``L(θ)``: the mean loss on the data set, or the population risk."""
        single, rows = self._rows(theta, "theta")
        out = self._core.loss_rows(rows)
        return float(out[0]) if single else out

    def sharpness(self, theta):
        """``λ_max(∇²L(θ))`` by power iteration (relative residual 1e-6)."""
        single, rows = self._rows(theta, "theta")
        out = self._core.sharpness_rows(rows)
        return float(out[0]) if single else out

    def predict(self, eta: Optional[float] = None, batch: Optional[int] = None,
                weight_decay: float = 0.0, theta0=None) -> dict:
        """The theory's numbers on the orbit of ``theta0`` (THEORY §4–§5).

        The fixed point ``θ* = e^{λ*A}θ₀`` of the Noether flow is the root of
        ``λ ↦ −4γ C(θ_λ) + η c_B Tr[A Σ(θ_λ) A]``; there the charge relaxes at the slow
        rate ``κ = 4γ + η c_B Tr[AΣ*A]/‖Aθ*‖²`` while the loss relaxes at the fast rate
        ``λ_max(∇²L(θ*)) + 2γ``. Returns ``start_charge``, ``fixed_point``,
        ``fixed_point_charge``, ``slow_rate``, ``fast_rate``, ``ratio``,
        ``slow_timescale``, ``fast_timescale`` (and ``equilibrium`` = ``UᵀU − WWᵀ`` at the
        balanced global minimum for matrix factorisation).
        """
        eta = self.default_eta if eta is None else float(eta)
        batch = self.default_batch if batch is None else int(batch)
        t0 = self.theta0 if theta0 is None else as_float_array(theta0, "theta0", 1)
        return dict(self._core.predict(t0, eta, batch, float(weight_decay)))


class ScalarFactorization(Model):
    """``ℓ = (u w x − y)²`` with ``y = v x + σ ε`` (THEORY §6); θ = (u, w).

    Rescaling symmetry ``u → e^λ u, w → e^{−λ} w``; charge ``u² − w²``. With ``n = 0``
    (default) SGD sees fresh samples ``x ~ N(0, 1)`` (the population SDE has scalar
    noise); ``X``, ``y`` (``N × 1``) use your own data set; ``n > 0`` draws one.
    """

    _kind = "scalar_factorization"

    def __init__(self, v: float = 1.0, sigma: float = 1.0, *, X=None, y=None, n: int = 0,
                 seed: int = 0, theta0=None):
        super().__init__(v=v, sigma=sigma, X=X, y=y, n=n, seed=seed, theta0=theta0)


class MatrixFactorization(Model):
    """``ℓ = ‖U W x − y‖²``, ``x ~ N(0, Σx)``, ``y = V x + ε``, ``ε ~ N(0, Σε)`` (THEORY §6).

    ``θ = (vec U, vec W)``; the symmetry ``U → U e^{λM}, W → e^{−λM} W`` (recorded for
    ``M = I``: charge ``‖U‖² − ‖W‖²``). ``sigma_x`` and ``sigma_eps`` are the diagonal
    variances; the default start is an unbalanced global minimum.
    """

    _kind = "matrix_factorization"
    default_eta = 0.02
    default_batch = 2

    def __init__(self, teacher, hidden: Optional[int] = None, sigma_x=None, sigma_eps=None, *,
                 X=None, y=None, n: int = 0, seed: int = 0, theta0=None):
        # this signature's defaults (the library's registry has the command line's)
        if teacher is None:
            raise _core.InvalidParameter("`teacher`: the teacher matrix V (d_out × d_in) is required")
        v = as_float_array(teacher, "teacher", (1, 2))
        d_out, d_in = v.reshape(-1, 1).shape if v.ndim == 1 else v.shape
        hidden = max(min(d_in, d_out), 1) if hidden is None else hidden
        sigma_x = np.ones(d_in) if sigma_x is None else sigma_x
        sigma_eps = np.ones(d_out) if sigma_eps is None else sigma_eps
        super().__init__(teacher=teacher, hidden=hidden, sigma_x=sigma_x, sigma_eps=sigma_eps,
                         X=X, y=y, n=n, seed=seed, theta0=theta0)


class NormalizedLinear(Model):
    """``ℓ = (θᵀx/‖θ‖ − y)²``, ``y = θ̂*ᵀx + σε`` (THEORY §6): scale symmetry, charge ``‖θ‖²``.

    Needs a data set: your ``X``, ``y`` or ``n`` (default 256) samples drawn with
    ``input_variances``. Start ``θ₀ = norm0 · teacher`` unless ``theta0`` is given.
    """

    _kind = "normalized_linear"

    def __init__(self, teacher, input_variances=None, sigma: float = 0.5, *, X=None, y=None,
                 n: int = 256, seed: int = 0, norm0: float = 1.0, theta0=None):
        # this signature's defaults (the library's registry has the command line's)
        if teacher is None:
            raise _core.InvalidParameter("`teacher`: the teacher direction is required")
        if input_variances is None:
            input_variances = np.ones(as_float_array(teacher, "teacher", 1).shape[0])
        if X is None and y is None and n == 0:
            raise _core.InvalidParameter("`n` = 0: NormalizedLinear needs a data set (n ≥ 1, or X and y)")
        super().__init__(teacher=teacher, input_variances=input_variances, sigma=sigma, X=X, y=y,
                         n=n, seed=seed, norm0=norm0, theta0=theta0)


class LinearRegression(Model):
    """``ℓ = (θᵀx − y)²`` on your data ``X`` (``N × d``), ``y`` (``N``), or on the
    population ``x ~ N(0, diag sigma_x)``, ``y = theta_starᵀx + σε``. No symmetry: the
    recorded "charge" is ``‖θ‖²``.
    """

    _kind = "linear_regression"

    def __init__(self, X=None, y=None, *, theta_star=None, sigma_x=None, sigma: float = 0.5,
                 n: int = 0, seed: int = 0, theta0=None):
        # this signature's defaults (the library's registry has the command line's)
        if X is None and theta_star is None:
            raise _core.InvalidParameter("give the data set (X, y) or the teacher `theta_star`")
        if sigma_x is None:
            if X is not None:
                x = as_float_array(X, "X", (1, 2))
                d = 1 if x.ndim == 1 else x.shape[1]
            else:
                d = as_float_array(theta_star, "theta_star", 1).shape[0]
            sigma_x = np.ones(d)
        super().__init__(X=X, y=y, theta_star=theta_star, sigma_x=sigma_x, sigma=sigma, n=n,
                         seed=seed, theta0=theta0)


class TwoLayer(Model):
    """``f(x) = [x +] U φ(W x)`` on your data (THEORY §7): ``width`` hidden units,
    ``activation`` ``"tanh"`` (breaks the rescaling symmetry), ``"linear"`` (keeps it) or
    ``"relu"`` (``max(z, 0)``, slope 0 at ``z = 0`` as in PyTorch and JAX; positively
    homogeneous, so it keeps the rescaling ``U → e^λ U, W → e^{−λ} W`` exactly),
    ``skip=True`` for the residual block. Charge ``‖U‖² − ‖W‖²`` (exact for linear and
    relu, approximate for tanh).
    """

    _kind = "two_layer"

    def __init__(self, X, y, width: int = 2, activation: str = "tanh", skip: bool = False, *,
                 seed: int = 0, theta0=None):
        super().__init__(X=X, y=y, width=width, activation=activation, skip=skip, seed=seed,
                         theta0=theta0)


class Custom:
    """A model defined in Python by its per-sample gradients on ``n`` samples (THEORY §1).

    ``per_sample_grads(theta)`` receives the parameters of a block of ``P`` paths as a
    ``(P, dim)`` array and returns the ``(P, n, dim)`` per-sample gradients
    ``∇_θ ℓ(θ_p; x_i)``; ``loss(theta)`` returns the ``(P,)`` losses ``L(θ_p)`` (needed only
    for the ``"loss"`` observable). :func:`noether_sde.simulate` calls
    ``per_sample_grads`` **once per step for a block of paths** (64 paths; never once per
    path) and runs, with the library's generators and arithmetic:

    - ``method="sgd"``: ``θ' = (1 − 2ηγ)θ − η (1/B) Σ_{i∈batch} g_i(θ)`` (batches drawn as the
      built-in models draw them);
    - ``method="gd"``: the same with the full mean ``ḡ``;
    - ``method="em"``: Euler–Maruyama for the SGD-SDE
      ``dθ = −(ḡ + 2γθ) dt + sqrt(η c_B) (G − ḡ1ᵀ)/√N dW``, ``c_B = 1/B``, the noise applied
      as an ``O(dN)`` operator.

    Row ``p`` of the output must depend only on row ``p`` of ``theta`` (a vectorised
    function of each path's parameters); then every path's numbers depend only on the seed
    and its index — the same bits whatever the thread count or the sharding. A re-written
    built-in (e.g. linear regression with ``2(θᵀx_i − y_i)x_i``) gives the built-in's numbers,
    to the bit when numpy performs the same operations in the same order.

    ``generator`` (a symmetric ``dim × dim`` matrix ``A``) declares an exponential symmetry
    whose charge ``θᵀAθ`` is recorded as ``"charge"`` (``‖θ‖²`` without one). Observables:
    ``"charge"``, ``"loss"``, ``"theta"`` and callables ``h(theta[P, d])``, evaluated in
    Python at the save times on all finished paths at once (so per-path ``θ`` is kept in
    memory: ``paths × times × dim`` numbers). ``"sharpness"`` needs Hessian products and is
    not available.

    The GIL: the callback runs under it, so with several threads only one block calls
    Python at a time (numpy releases the GIL inside its own kernels); the Rust update of
    the other blocks runs meanwhile. An exception in a callback, an array of the wrong
    shape or a NaN gradient stops the run with :class:`~noether_sde.CallbackError`; an
    infinite gradient makes its path diverge (counted in ``r.diverged``). The model is
    picklable when its callables are (cloudpickle, as Dask uses, handles lambdas).
    """

    default_eta = 0.05
    default_batch = 4

    def __init__(self, dim: int, n: int, per_sample_grads, loss=None, *, theta0=None, generator=None):
        dim = as_count(dim, "dim", 1)
        n = as_count(n, "n", 1)
        if not callable(per_sample_grads):
            raise _core.InvalidParameter("`per_sample_grads`: must be a function theta[P, d] -> (P, N, d)")
        if loss is not None and not callable(loss):
            raise _core.InvalidParameter("`loss`: must be a function theta[P, d] -> (P,)")
        if theta0 is None:
            theta0 = np.zeros(dim)
        theta0 = as_float_array(theta0, "theta0", 1)
        if theta0.shape != (dim,):
            raise _core.DimensionMismatch(f"`theta0`: expected {dim} entries, got {theta0.shape[0]}")
        if not np.isfinite(theta0).all():
            raise _core.NonFinite("`theta0`: contains NaN or an infinity")
        if generator is not None:
            generator = as_float_array(generator, "generator", 2)
            if generator.shape != (dim, dim):
                raise _core.DimensionMismatch(f"`generator`: expected shape ({dim}, {dim}), got {generator.shape}")
            if not np.isfinite(generator).all():
                raise _core.NonFinite("`generator`: contains NaN or an infinity")
            if not np.allclose(generator, generator.T, rtol=0.0, atol=1e-12 * max(1.0, np.abs(generator).max())):
                raise _core.NotSymmetric("`generator`: the generator A of θ → e^{λA}θ must be symmetric")
        self.per_sample_grads, self._loss = per_sample_grads, loss
        self.dim, self.data_size = dim, n
        self._theta0, self._generator = theta0, generator
        self._core_model = None
        self._core  # validate now

    @property
    def _core(self) -> "_core.Custom":
        if self._core_model is None:
            self._core_model = _core.Custom(self.per_sample_grads, self.dim, self.data_size)
        return self._core_model

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_core_model"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"Custom(dim={self.dim}, n={self.data_size})"

    @property
    def theta0(self) -> np.ndarray:
        """The default start ``θ₀`` (zeros unless given)."""
        return self._theta0.copy()

    def symmetry(self) -> Optional[Symmetry]:
        """The declared exponential symmetry (``None`` without a ``generator``)."""
        return None if self._generator is None else Symmetry(self._generator)

    def _rows(self, theta, name: str):
        theta = as_float_array(theta, name, (1, 2))
        rows = np.atleast_2d(theta)
        if rows.shape[1] != self.dim:
            raise _core.DimensionMismatch(f"`{name}`: expected {self.dim} columns, got {rows.shape[1]}")
        return theta.ndim == 1, rows

    def charge(self, theta):
        """``θᵀAθ`` with the declared generator, ``‖θ‖²`` without one; ``(d,)`` or ``(P, d)``."""
        single, rows = self._rows(theta, "theta")
        if self._generator is None:
            out = np.einsum("pi,pi->p", rows, rows)
        else:
            out = np.einsum("pi,ij,pj->p", rows, self._generator, rows)
        return float(out[0]) if single else out

    def loss(self, theta):
        """``L(θ)`` from the ``loss`` callback, for ``(d,)`` or ``(P, d)`` input."""
        if self._loss is None:
            raise _core.InvalidParameter("`loss`: this Custom model was built without a loss callback")
        single, rows = self._rows(theta, "theta")
        out = np.asarray(self._loss(np.ascontiguousarray(rows)), dtype=np.float64)
        if out.shape != (rows.shape[0],):
            raise _core.CallbackError(
                f"loss(theta) returned an array of shape {out.shape}; expected ({rows.shape[0]},) "
                f"for theta of shape {rows.shape}"
            )
        if np.isnan(out).any():
            raise _core.CallbackError(f"loss(theta) returned NaN for row {int(np.flatnonzero(np.isnan(out))[0])}")
        return float(out[0]) if single else out

    def sharpness(self, theta):
        """Not available: a Custom model has no Hessian-vector products."""
        raise _core.Incompatible("sharpness: a Custom model has per-sample gradients only, no Hessian products")
