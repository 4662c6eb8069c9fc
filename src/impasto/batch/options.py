"""Option values of a batch from text (--set, --grid, CSV cells) or JSON, typed by StyleConfig's fields.

One parser per field type, so `--grid size=abc`, a CSV cell `style_weight=lots` and a JSON row with
`"size": 1.5` all fail with the same one line that names the option and the type it takes.
Files named by an option (init image, masks, coarse style, weights) are resolved to paths here and
later hashed and shipped as bytes like the content and style images.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..config import INITS, StyleConfig
from ..errors import ImpastoError

PATH_LIST_SEPARATOR = ";"
"""Between the paths of a list-valued file option (content_masks, style_masks) and between styles."""
GRID_LIST_SEPARATOR = "|"
"""Between the values of a grid axis whose option is itself a list (iterations=100,50|200,100)."""
NONE_WORDS = ("", "none", "null")

FIELD_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(StyleConfig)}
FILE_OPTIONS = ("init", "weights", "coarse_style", "content_masks", "style_masks")
"""Options whose value names files: their bytes go into the job's key and travel to the worker."""


def _int(text: Any) -> int:
    if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()):
        raise ValueError
    if isinstance(text, (int, float)):
        return int(text)
    return int(str(text).strip())


def _float(text: Any) -> float:
    if isinstance(text, bool):
        raise ValueError
    value = float(text.strip() if isinstance(text, str) else text)
    if not math.isfinite(value):
        raise ValueError
    return value


def _bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _items(value: Any, separator: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [part.strip() for part in str(value).split(separator) if part.strip()]


def _layers(value: Any) -> dict[str, float]:
    """'relu1_1,relu2_1:0.5' or {"relu1_1": 1, "relu2_1": 0.5}."""
    if isinstance(value, Mapping):
        return {str(k): _float(v) for k, v in value.items()}
    out: dict[str, float] = {}
    for item in _items(value, ","):
        name, _, weight = str(item).partition(":")
        out[name.strip()] = _float(weight) if weight.strip() else 1.0
    if not out:
        raise ValueError
    return out


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value.strip()


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_or_none(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS):
            return None
        return parse(value)

    return parse_or_none


def _list_of(parse: Callable[[Any], Any], separator: str = ",") -> Callable[[Any], list[Any]]:
    def parse_list(value: Any) -> list[Any]:
        items = [parse(item) for item in _items(value, separator)]
        if not items:
            raise ValueError
        return items

    return parse_list


def _one_or_list(parse: Callable[[Any], list[Any]]) -> Callable[[Any], Any]:
    """content_masks: one label image, or one mask per style (as the CLI's --content-masks)."""

    def parse_masks(value: Any) -> Any:
        items = parse(value)
        return items[0] if len(items) == 1 else items

    return parse_masks


# Field type (as StyleConfig spells it) -> (parser, what the one-line error says it takes).
_PARSERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "int": (_int, "an integer"),
    "float": (_float, "a number"),
    "bool": (_bool, "true or false"),
    "str": (_text, "a word"),
    "int | None": (_optional(_int), "an integer or none"),
    "float | None": (_optional(_float), "a number or none"),
    "str | None": (_optional(_text), "a word or none"),
    "Sequence[int] | None": (_optional(_list_of(_int)), "comma-separated integers"),
    "Sequence[float] | None": (_optional(_list_of(_float)), "comma-separated numbers"),
    "Mapping[str, float]": (_layers, "layer[:weight],..."),
    "ImageLike | None": (_optional(_text), "an image path or none"),
    "Any | None": (_optional(_one_or_list(_list_of(_text, PATH_LIST_SEPARATOR))), "image paths separated by ';'"),
    "Sequence[ImageLike | None] | None": (
        _optional(_list_of(_optional(_text), PATH_LIST_SEPARATOR)),
        "image paths (or none) separated by ';'",
    ),
}


def check_name(name: str, where: str, what: str = "option") -> None:
    """An unknown option (grid axis, manifest column, --set) is one line with the nearest name."""
    if name in FIELD_TYPES:
        return
    close = difflib.get_close_matches(name, list(FIELD_TYPES), n=1)
    hint = f" (did you mean {close[0]}?)" if close else " (the options are the fields of impasto.StyleConfig)"
    raise ImpastoError(f"{where}{': ' if where else ''}unknown {what} {name!r}{hint}")


def is_list_option(name: str) -> bool:
    scalars = ("int", "float", "bool", "str", "int | None", "float | None", "str | None", "ImageLike | None")
    return FIELD_TYPES[name] not in scalars


def parse_value(name: str, value: Any, where: str, base: Path | None = None) -> Any:
    """One option's value from text or JSON, typed like StyleConfig's field; file paths made absolute."""
    check_name(name, where)
    if FIELD_TYPES[name] not in _PARSERS:  # a new StyleConfig field of a new type: tests/test_batch.py says so
        raise ImpastoError(f"{where}{': ' if where else ''}option {name} cannot be set in a batch yet")
    parse, takes = _PARSERS[FIELD_TYPES[name]]
    try:
        parsed = parse(value)
    except (TypeError, ValueError):
        raise ImpastoError(f"{where}{': ' if where else ''}{name} takes {takes}, got {value!r}") from None
    if name in FILE_OPTIONS and parsed is not None and base is not None:
        parsed = _resolve(name, parsed, base)
    return parsed


def _resolve(name: str, value: Any, base: Path) -> Any:
    """Relative paths in a manifest are relative to the manifest's folder."""
    if name == "init" and value in INITS:
        return value
    if isinstance(value, list):
        return [None if v is None else str(base / v) for v in value]
    return str(base / value)


def parse_assignment(text: str, where: str) -> tuple[str, str]:
    """'name=value' (--set, --grid) -> ('name', 'value'), names with dashes accepted as in the CLI."""
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise ImpastoError(f"{where} {text!r}: expected NAME=VALUE, e.g. style_weight=3")
    return name, value


def parse_grid(texts: list[str], base: Path) -> dict[str, list[Any]]:
    """--grid NAME=V1,V2 (list-valued options: V1|V2) -> {name: [typed values]}, in the order given."""
    grid: dict[str, list[Any]] = {}
    for text in texts:
        name, raw = parse_assignment(text, "--grid")
        where = f"--grid {name}"
        check_name(name, where)
        if name in grid:
            raise ImpastoError(f"{where}: given twice; list all its values in one --grid")
        separator = GRID_LIST_SEPARATOR if is_list_option(name) else ","
        values = [parse_value(name, part.strip(), where, base) for part in raw.split(separator) if part.strip()]
        if not values:
            raise ImpastoError(f"{where}: give at least one value")
        grid[name] = values
    return grid


def parse_settings(texts: list[str], base: Path) -> dict[str, Any]:
    """--set NAME=VALUE (repeatable): options shared by every job, not part of the output names."""
    out: dict[str, Any] = {}
    for text in texts:
        name, raw = parse_assignment(text, "--set")
        out[name] = parse_value(name, raw, f"--set {name}", base)
    return out
