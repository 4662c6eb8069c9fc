"""Which options the page may set, their defaults (read from StyleConfig), and their checking.

Only a whitelist of fields comes from the browser: nothing that names a file (`init` paths,
`weights`) or picks hardware. Values are coerced to the types StyleConfig expects and the
config is validated before the job is queued, so bad input fails at once with StyleConfig's
own one-line message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ..config import INITS, StyleConfig, default
from ..errors import ImpastoError
from ..pyramid import default_iterations, scale_sizes

_FIELDS = {f.name for f in fields(StyleConfig)}
HAS_PRESERVE_COLOR = "preserve_color" in _FIELDS
PRESERVE_COLOR_CHOICES = ("luminance", "histogram")

_INT = ("size", "scales", "seed")
_FLOAT = ("style_weight", "content_weight", "style_scale")
WEB_OPTIONS = _INT + _FLOAT + ("init", "iterations") + (("preserve_color",) if HAS_PRESERVE_COLOR else ())

QUALITY = {"quick": 0.25, "standard": 1.0, "fine": 2.0}
"""Presets: a fraction of the automatic per-scale iteration budget (standard = automatic)."""


def page_config() -> dict[str, Any]:
    """What the page needs to draw its form: defaults, choices and presets."""
    return {
        "defaults": {name: default(name) for name in WEB_OPTIONS},
        "inits": list(INITS),
        "preserve_color": list(PRESERVE_COLOR_CHOICES) if HAS_PRESERVE_COLOR else None,
        "quality": list(QUALITY),
    }


def _number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ImpastoError(f"{name.replace('_', ' ')} must be a number, got {value!r}")
    try:
        number = float(value)
        if kind is int:
            if number != int(number):
                raise ValueError
            return int(number)
        return number
    except (ValueError, OverflowError):
        raise ImpastoError(
            f"{name.replace('_', ' ')} must be {'an integer' if kind is int else 'a number'}, got {value!r}"
        ) from None


def _iterations(value: Any) -> list[int] | None:
    if value is None or value == "":
        return None
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ImpastoError("iterations must be a list of counts per scale, e.g. 200, 100")
    return [_number("iterations", item, int) for item in items]


def parse_options(raw: Mapping[str, Any], quality: str | None = None) -> StyleConfig:
    """Browser options -> a validated StyleConfig, or ImpastoError with a one-line reason."""
    unknown = sorted(set(raw) - set(WEB_OPTIONS))
    if unknown:
        raise ImpastoError(f"unknown option {unknown[0]!r}; the studio sets {', '.join(WEB_OPTIONS)}")
    options: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None and name in ("scales", "seed", "preserve_color"):
            options[name] = None
        elif name in _INT:
            options[name] = _number(name, value, int)
        elif name in _FLOAT:
            options[name] = _number(name, value, float)
        elif name == "iterations":
            options[name] = _iterations(value)
        elif name == "init":
            if value not in INITS:
                raise ImpastoError(f"unknown init {value!r}; choose from {', '.join(INITS)}")
            options[name] = value
        elif name == "preserve_color":
            if value not in PRESERVE_COLOR_CHOICES:
                raise ImpastoError(
                    f"unknown colour preservation {value!r}; choose from {', '.join(PRESERVE_COLOR_CHOICES)} or none"
                )
            options[name] = value
    if quality is not None:
        if quality not in QUALITY:
            raise ImpastoError(f"unknown quality {quality!r}; choose from {', '.join(QUALITY)}")
        if options.get("iterations") is None and quality != "standard":
            options["iterations"] = _preset_iterations(options, QUALITY[quality])
    try:
        config = StyleConfig(**options)
    except TypeError as exc:
        raise ImpastoError(str(exc)) from None
    return config.validate()


def _preset_iterations(options: Mapping[str, Any], fraction: float) -> list[int]:
    """The automatic budget for this size and scale count, times `fraction`."""
    size = options.get("size", default("size"))
    count = len(scale_sizes(size, default("min_size"), options.get("scales", default("scales"))))
    return [max(10, round(n * fraction)) for n in default_iterations(count)]
