"""Which options the page may set, their defaults (read from StyleConfig), the studio's limits, and checking.

Only a whitelist of fields comes from the browser: nothing that names a file (`init` paths,
`weights`) or picks hardware. Values are coerced to the types StyleConfig expects, held to the
studio's `Limits` (lower than the library's: one request must not occupy the machine for hours),
and the config is validated before the job is queued, so bad input fails at once with one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..checks import figure
from ..color import PRESERVE_COLOR
from ..config import INITS, MAX_SEED, MAX_SIZE, MIN_SIZE, StyleConfig, default
from ..errors import ImpastoError
from ..pyramid import schedule

_INT = ("size", "scales", "seed")
_FLOAT = ("style_weight", "content_weight", "style_scale")
WEB_OPTIONS = _INT + _FLOAT + ("init", "iterations", "preserve_color")

QUALITY = {"quick": 0.25, "standard": 1.0, "fine": 2.0}
"""Presets: a fraction of the automatic per-scale iteration budget (standard = automatic)."""


@dataclass(frozen=True)
class Limits:
    """What one studio request may ask for; `impasto serve --max-...` sets them, the page shows them.

    The defaults keep one job to minutes on a 2-core CPU (1024 px at the defaults: about 60 s with AVX-512 bf16,
    docs/web.md) and one upload to a few hundred MB of memory while it is decoded.
    """

    max_size: int = field(default=1024, metadata={"help": "longest side of the output, in pixels"})
    max_scales: int = field(default=6, metadata={"help": "scales, and values in the iterations list"})
    max_iterations: int = field(default=1000, metadata={"help": "iterations of one scale"})
    max_style_scale: float = field(default=2.0, metadata={"help": "style scale (the style is resized to size x this)"})
    max_megapixels: float = field(
        default=40.0, metadata={"help": "decoded pixels of one upload, in millions (checked before decoding)"}
    )
    max_upload_mb: float = field(default=20.0, metadata={"help": "bytes of one upload as sent, in MB"})
    body_timeout: float = field(
        default=60.0, metadata={"help": "seconds a request's body (an upload) may take to arrive; then 408"}
    )

    def check(self) -> Limits:
        """ImpastoError naming the first limit that is not a sensible finite positive number."""
        for name, value in asdict(self).items():
            flag = "--" + name.replace("_", "-")
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ImpastoError(f"{flag} must be a positive finite number, got {value}")
        if not MIN_SIZE <= self.max_size <= MAX_SIZE:
            raise ImpastoError(f"--max-size must be from {MIN_SIZE} to {MAX_SIZE}, got {self.max_size}")
        if self.max_style_scale < 0.05:
            raise ImpastoError(f"--max-style-scale must be at least 0.05, got {self.max_style_scale}")
        return self

    @property
    def keep_longest(self) -> int:
        """Longest side an upload is kept at: nothing is ever resized up from more than this."""
        return math.ceil(self.max_size * max(1.0, self.max_style_scale))


def ranges(limits: Limits) -> dict[str, tuple[float, float]]:
    """The lowest and highest value of each numeric option this studio takes: checked here, served to the page."""
    return {
        "size": (MIN_SIZE, limits.max_size),
        "scales": (1, limits.max_scales),
        "iterations": (1, limits.max_iterations),
        "seed": (0, MAX_SEED),
        "style_scale": (0.05, limits.max_style_scale),
    }


def page_config(limits: Limits) -> dict[str, Any]:
    """What the page needs to draw its form: defaults, choices, presets, limits and each option's range."""
    return {
        "defaults": {name: default(name) for name in WEB_OPTIONS},
        "inits": list(INITS),
        "preserve_color": list(PRESERVE_COLOR),
        "quality": list(QUALITY),
        "limits": asdict(limits),
        "ranges": ranges(limits),
    }


def _label(name: str) -> str:
    return name.replace("_", " ")


def _number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ImpastoError(f"{_label(name)} must be a number, got {value!r}"[:200])
    if kind is int and isinstance(value, int):
        return value
    try:
        number = float(value)
        if kind is int:
            if number != int(number):
                raise ValueError
            return int(number)
        return number
    except (ValueError, OverflowError):
        kind_text = "an integer" if kind is int else "a number"
        raise ImpastoError(f"{_label(name)} must be {kind_text}, got {value!r}"[:200]) from None


def _in_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:  # written so that NaN fails too
        low_, high_, got = (str(v) if isinstance(v, int) else figure(v) for v in (low, high, value))
        raise ImpastoError(f"{_label(name)} must be from {low_} to {high_} in this studio, got {got}")


def _iterations(value: Any, limits: Limits) -> list[int] | None:
    if value is None or value == "":
        return None
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ImpastoError("iterations must be a list of counts per scale, e.g. 200, 100")
    if len(items) > limits.max_scales:
        raise ImpastoError(f"iterations: at most {limits.max_scales} values (one per scale), got {len(items)}")
    counts = [_number("iterations", item, int) for item in items]
    for count in counts:
        _in_range("iterations", count, *ranges(limits)["iterations"])
    return counts


def _option(name: str, value: Any, limits: Limits) -> Any:
    """One browser option, coerced and held to the studio's limits."""
    if value is None and name in ("scales", "seed", "preserve_color"):
        return None
    if name == "iterations":
        return _iterations(value, limits)
    if name in ("init", "preserve_color"):
        choices = INITS if name == "init" else PRESERVE_COLOR
        if value not in choices:
            label = "init" if name == "init" else "colour preservation"
            raise ImpastoError(f"unknown {label} {value!r}; choose from {', '.join(choices)}"[:200])
        return value
    number = _number(name, value, int if name in _INT else float)
    caps = ranges(limits)
    if name in caps:
        _in_range(name, number, *caps[name])
    return number


def parse_options(raw: Mapping[str, Any], quality: str | None = None, limits: Limits | None = None) -> StyleConfig:
    """Browser options -> a validated StyleConfig, or ImpastoError with a one-line reason."""
    limits = limits or Limits()
    unknown = sorted(set(raw) - set(WEB_OPTIONS))
    if unknown:
        raise ImpastoError(f"unknown option {unknown[0]!r}; the studio sets {', '.join(WEB_OPTIONS)}"[:300])
    options = {name: _option(name, value, limits) for name, value in raw.items()}
    if quality is not None:
        if quality not in QUALITY:
            raise ImpastoError(f"unknown quality {quality!r}; choose from {', '.join(QUALITY)}"[:200])
        if options.get("iterations") is None and quality != "standard":
            options["iterations"] = _preset_iterations(options, QUALITY[quality], limits)
    try:
        config = StyleConfig(**options)
    except TypeError as exc:
        raise ImpastoError(str(exc)) from None
    return config.validate()


def _preset_iterations(options: Mapping[str, Any], fraction: float, limits: Limits) -> list[int]:
    """The automatic budget for this size and scale count, times `fraction`, within the limit."""
    size, scales = options.get("size", default("size")), options.get("scales", default("scales"))
    plan = schedule(size, default("min_size"), scales, None)
    return [min(limits.max_iterations, max(10, round(s.iterations * fraction))) for s in plan]
