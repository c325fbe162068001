"""Input checking shared by the package: numpy arrays in, clear errors out."""
from __future__ import annotations

import numpy as np

from ._core import DimensionMismatch, InvalidParameter


def as_float_array(value, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """``value`` as a C-contiguous float64 array of ``ndim`` dimensions.

    Integer and lower-precision float arrays are converted; complex, object, string and
    boolean arrays are refused with :class:`InvalidParameter`; a wrong number of
    dimensions raises :class:`DimensionMismatch`. (NaN and infinities are reported by the
    library as :class:`NonFinite`.)
    """
    try:
        raw = np.asarray(value)
    except Exception as e:  # ragged lists and the like
        raise InvalidParameter(f"`{name}`: cannot be read as an array: {e}") from None
    if raw.dtype.kind not in "iuf":
        raise InvalidParameter(
            f"`{name}`: expected real numbers, got an array of dtype {raw.dtype}"
        )
    arr = np.ascontiguousarray(raw, dtype=np.float64)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in allowed:
        want = " or ".join(str(n) for n in allowed)
        raise DimensionMismatch(
            f"`{name}`: expected a {want}-dimensional array, got shape {arr.shape}"
        )
    return arr


def as_float(value, name: str) -> float:
    """``value`` as a Python float (refusing arrays and non-numbers)."""
    if isinstance(value, (bool, np.bool_)):
        raise InvalidParameter(f"`{name}`: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"`{name}`: expected a number, got {value!r}") from None


def as_count(value, name: str, minimum: int = 0) -> int:
    """``value`` as a non-negative integer (at least ``minimum``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidParameter(f"`{name}`: expected an integer, got {value!r}")
    if value < minimum:
        raise InvalidParameter(f"`{name}` = {value}: must be at least {minimum}")
    return int(value)
