"""Type-and-range checks of option values: the one place StyleConfig's fields are checked.

Each check returns the value as the library uses it (NumPy scalars become Python numbers) or
raises an `ImpastoError` of one line that names the option, what it accepts and what it got.
The Python API takes Python values: a number given as text (`size="32"`) is refused with its
type named. The text surfaces (CLI, studio form, batch manifests) convert text before this.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from .errors import ImpastoError

Check = Callable[[str, Any], Any]
"""(field name, value) -> the value to keep, or ImpastoError."""


def label(name: str) -> str:
    return name.replace("_", " ")


def figure(value: float) -> str:
    """A number as short as it reads (2, 0.05, 1e+30) but never rounded: 2.0000001 stays 2.0000001."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return repr(value)
    text = f"{value:g}"
    return text if float(text) == value or value != value else repr(float(value))


def got(value: Any, typed: bool = True) -> str:
    """ "got 8", or with `typed` (the value's type is what is wrong) "got '32' of type str"; at most 80 characters."""
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"got {text} of type {type(value).__name__}" if typed and value is not None else f"got {text}"


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _plain(value: Any) -> Any:
    """A NumPy number as the Python number of the same value (ints stay ints)."""
    if type(value) in (int, float):
        return value
    return int(value) if _is_integer(value) else float(value)


def integer(name: str, value: Any, low: int, high: int) -> int:
    if not _is_integer(value) or not low <= value <= high:
        raise ImpastoError(
            f"{label(name)} must be an integer from {low} to {high}, {got(value, not _is_integer(value))}"
        )
    return _plain(value)


def number(name: str, value: Any, low: float = 0.0, high: float = math.inf, what: str | None = None) -> float:
    """A finite real number in [low, high]; `what` words the accepted range (default: from the bounds)."""
    if not _is_real(value) or not math.isfinite(value) or not low <= value <= high:
        if what is None:
            what = (
                "a non-negative number"
                if (low, high) == (0.0, math.inf)
                else f"a number from {figure(low)} to {figure(high)}"
            )
        raise ImpastoError(f"{label(name)} must be {finite(value, what)}, {got(value, not _is_real(value))}")
    return _plain(value)


def finite(value: Any, what: str) -> str:
    """What a number must be, said for an infinite one too: inf is not "not non-negative", it is not finite."""
    return f"finite ({what})" if _is_real(value) and math.isinf(value) else what


def count(name: str, value: Any) -> int:
    """A non-negative integer (an iteration count)."""
    if not _is_integer(value) or value < 0:
        raise ImpastoError(f"{label(name)} must be a non-negative integer, {got(value, not _is_integer(value))}")
    return _plain(value)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ImpastoError(f"{label(name)} must be True or False, {got(value)}")
    return bool(value)


def choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        shown = got(value, not isinstance(value, str))[4:]
        raise ImpastoError(f"unknown {name} {shown}; choose from {', '.join(choices)}")
    return value


def path(name: str, value: Any) -> str | os.PathLike:
    """A file name: a non-empty str or an os.PathLike."""
    if not (isinstance(value, str) and value.strip()) and not isinstance(value, os.PathLike):
        raise ImpastoError(f"{label(name)} must be a file path (str or pathlib.Path), {got(value, value != '')}")
    return value


def image(name: str, value: Any) -> Any:
    """Something load_image reads: a path, a PIL image or a NumPy array (what it holds is checked there)."""
    if not isinstance(value, (str, os.PathLike, Image.Image, np.ndarray)):
        raise ImpastoError(f"{label(name)} must be an image (a path, PIL image or NumPy array), {got(value)}")
    return value


def is_list(value: Any) -> bool:
    """A list, tuple or 1-D array: a str is one value, never a list of characters."""
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def numbers_list(name: str, values: Any, item: Callable[[str, Any], Any], example: str) -> list[Any]:
    """A non-empty list whose every item passes `item`; a list of plain Python values."""
    if not is_list(values) or len(values) == 0:
        raise ImpastoError(f"{label(name)} must be a list of numbers (e.g. {example}), {got(values)}")
    return [item(f"each value of {name}", value) for value in values]


def optional(check: Check) -> Check:
    def check_or_none(name: str, value: Any) -> Any:
        return None if value is None else check(name, value)

    return check_or_none


def layer_weights(name: str, value: Any) -> dict[str, float]:
    """{layer name: non-negative weight}; the names are checked against the network by vgg.check_layers."""
    if not isinstance(value, Mapping):
        raise ImpastoError(f"{label(name)} must be a dict of layer names to weights (e.g. {{'relu4_2': 1.0}}), "
                           f"{got(value)}")  # fmt: skip
    for layer, weight in value.items():
        if not _is_real(weight) or not math.isfinite(weight) or weight < 0:
            what = finite(weight, "non-negative")
            raise ImpastoError(f"weight of layer {layer} must be {what}, {got(weight, not _is_real(weight))}")
    return {layer: _plain(weight) for layer, weight in value.items()}
