"""Jobs from a manifest: CSV (a header row, one job a row) or JSONL (one JSON object a line).

Columns: `content`, `style` (several styles separated by ';', or a JSON list), optionally `output`
(the output's name) and any StyleConfig option. Paths are relative to the manifest's folder.
A problem of the whole file (unreadable, an unknown column in the CSV header) raises; a problem of
one row becomes that row's one-line error and the other rows still run.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ImpastoError
from .options import PATH_LIST_SEPARATOR, check_name, parse_value
from .plan import Job

RESERVED = ("content", "style", "output")
STYLE_ALIASES = ("styles",)


@dataclass
class RowError:
    source: str  # "jobs.csv row 3"
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


def read_manifest(path: str | os.PathLike) -> tuple[list[Job], list[RowError]]:
    """The manifest's jobs and the rows that could not be read, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImpastoError(f"{path}: no such manifest") from None
    except UnicodeDecodeError:
        raise ImpastoError(f"{path}: not UTF-8 text (save the manifest as UTF-8 CSV or JSONL)") from None
    except OSError as exc:
        raise ImpastoError(f"{path}: cannot read ({exc.strerror or exc})") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path, text)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        rows = _jsonl_rows(path, text)
    else:
        raise ImpastoError(f"{path}: a manifest must be .csv or .jsonl, got {suffix or 'no extension'}")
    jobs: list[Job] = []
    errors: list[RowError] = []
    for source, row in rows:
        if isinstance(row, RowError):
            errors.append(row)
            continue
        try:
            jobs.append(_job(row, source, path.parent))
        except ImpastoError as exc:
            errors.append(RowError(source, str(exc)))
    if not jobs and not errors:
        raise ImpastoError(f"{path}: the manifest has no jobs")
    return jobs, errors


def _csv_rows(path: Path, text: str) -> list[tuple[str, Mapping[str, Any] | RowError]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        raise ImpastoError(f"{path}: empty manifest (the first row names the columns)") from None
    except csv.Error as exc:
        raise ImpastoError(f"{path}: unreadable header row ({exc})") from None
    for column in header:
        if column not in RESERVED + STYLE_ALIASES:
            check_name(column, str(path), "option column")
    if "content" not in header:
        raise ImpastoError(f"{path}: no 'content' column (the header is {','.join(header)})")
    rows: list[tuple[str, Mapping[str, Any] | RowError]] = []
    while True:
        source = f"{path.name} row {reader.line_num + 1}"
        try:
            cells = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            rows.append((source, RowError(source, f"unreadable row ({exc})")))
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            rows.append((source, RowError(source, f"{len(cells)} cells, but the header has {len(header)} columns")))
            continue
        rows.append((source, {k: v for k, v in zip(header, cells) if v.strip()}))


def _jsonl_rows(path: Path, text: str) -> list[tuple[str, Mapping[str, Any] | RowError]]:
    rows: list[tuple[str, Mapping[str, Any] | RowError]] = []
    for number, line in enumerate(text.splitlines(), 1):
        source = f"{path.name} line {number}"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((source, RowError(source, f"not valid JSON ({exc.msg} at column {exc.colno})")))
            continue
        if not isinstance(row, dict):
            rows.append((source, RowError(source, f"expected a JSON object, got {type(row).__name__}")))
            continue
        rows.append((source, row))
    return rows


def _styles(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value).split(PATH_LIST_SEPARATOR)
    styles = tuple(str(s).strip() for s in items if str(s).strip())
    if not styles:
        raise ImpastoError("no style image")
    return styles


def _job(row: Mapping[str, Any], source: str, base: Path) -> Job:
    row = dict(row)
    for alias in STYLE_ALIASES:
        if alias in row:
            row.setdefault("style", row.pop(alias))
    content, style, output = row.pop("content", None), row.pop("style", None), row.pop("output", None)
    if not isinstance(content, str) or not content.strip():
        raise ImpastoError("no content image")
    if style is None:
        raise ImpastoError("no style image")
    options = {name: parse_value(name, value, "", base) for name, value in row.items()}
    if output is not None and (not isinstance(output, str) or Path(output).name != output or not output.strip()):
        raise ImpastoError(f"output must be a file name without folders, got {output!r}")
    styles = tuple(str(base / s) for s in _styles(style))
    return Job(str(base / content.strip()), styles, options, output or None, source)
