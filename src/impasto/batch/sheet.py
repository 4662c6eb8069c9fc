"""index.html: a contact sheet of the batch that opens offline, from anywhere.

Thumbnails are embedded (small JPEGs as data URIs), so the page needs no server and no network;
each links to its full-size output beside it. Failed jobs are shown with their one-line error.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from .ledger import OK, write_file

SHEET = "index.html"
SHEET_HEAD = b'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>impasto batch: '
"""How every contact sheet we write begins: what tells it from a user's index.html."""
THUMB = 240

_STYLE = """
body{font:14px system-ui,sans-serif;margin:24px;background:#f6f4ef;color:#222}
h1{font-size:20px;margin:0 0 4px}p.sum{margin:0 0 20px;color:#555}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:14px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px;overflow:hidden}
.card img{display:block;width:100%;height:auto;border-radius:3px}
.card.failed{border-color:#c33;background:#fff4f4}
.err{color:#a00;font-family:monospace;font-size:12px;white-space:pre-wrap;padding:8px 2px}
.name{font-weight:600;font-size:12px;word-break:break-all;margin-top:6px}
.meta{color:#555;font-size:12px;margin-top:2px}
"""


def _thumbnail(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            image.thumbnail((THUMB, THUMB))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=82)
    except (OSError, SyntaxError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _options(options: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v) if isinstance(v, (list, dict)) else v}" for k, v in options.items())


def _card(folder: Path, entry: Mapping[str, Any]) -> str:
    esc = html.escape
    styles = " + ".join(Path(s).name for s in entry.get("styles") or [])
    title = entry.get("output") or entry.get("source") or "?"
    lines = [f"{esc(Path(entry['content']).name)} &times; {esc(styles)}" if entry.get("content") else ""]
    if entry.get("options"):
        lines.append(esc(_options(entry["options"])))
    figures = []
    if entry.get("seconds"):
        figures.append(f"{entry['seconds']:.1f} s")
    if entry.get("loss") is not None:
        figures.append(f"loss {entry['loss']:.4g}")
    lines.append(" &middot; ".join(figures))
    meta = "".join(f'<div class="meta">{line}</div>' for line in lines if line)
    if entry["status"] == OK:
        thumb = _thumbnail(folder / entry["output"])
        href = esc(entry["output"], quote=True)
        body = f'<a href="{href}"><img src="{thumb}" alt="{href}"></a>' if thumb else '<div class="err">missing</div>'
        return f'<div class="card">{body}<div class="name">{esc(title)}</div>{meta}</div>'
    error = esc(entry.get("error") or "failed")
    return f'<div class="card failed"><div class="err">{error}</div><div class="name">{esc(title)}</div>{meta}</div>'


def write_sheet(folder: str | Path, entries: Iterable[Mapping[str, Any]]) -> Path:
    folder = Path(folder)
    entries = list(entries)
    ok = sum(e["status"] == OK for e in entries)
    seconds = sum(e.get("seconds") or 0 for e in entries if e["status"] == OK)
    summary = (
        f"{ok} done, {len(entries) - ok} failed; {seconds:.0f} s of painting in all. Click a picture for full size."
    )
    cards = "\n".join(_card(folder, e) for e in entries)
    page = (
        f"{SHEET_HEAD.decode()}{html.escape(folder.name)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>impasto batch: {html.escape(folder.name)}</h1><p class="sum">{summary}</p>'
        f'<div class="grid">\n{cards}\n</div></body></html>\n'
    )
    path = folder / SHEET
    write_file(path, page.encode())
    return path
