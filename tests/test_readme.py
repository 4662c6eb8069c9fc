"""The README's Python runs, and the names the docs give exist (issue 22, item 11).

Every ```python block of README.md runs, as written, in a folder holding a small image for every
.jpg/.png file it names. The one substitution, so the suite stays fast: `impasto.stylize`,
`impasto.run` and `impasto.batch` are called with size 32, one scale and 2 iterations in place of
the block's size and schedule (every other argument goes through unchanged). README.md says so.

Every style weight README.md and docs/*.md state (a Python keyword or dict, a --grid/--set/--try value, a
--style-weight flag, the options table's row) sits in `config.STYLE_WEIGHTS`, the documented range (issue 39,
item 8: `style_weight=2e3`, the scale before the losses were normalised, dissolved the picture).

Every dotted name `impasto.x.y` in README.md and docs/*.md must resolve: written as a call
(`impasto.x.y(`) it must work as that expression after `import impasto` (and its submodules);
otherwise it must be a module or `from impasto.x import y`.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import impasto
from impasto.config import STYLE_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TINY = {"size": 32, "scales": 1, "iterations": [2]}
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
NAME = re.compile(r"(?<![\w./-])impasto(?:\.[A-Za-z_]\w*)+(?P<call>\()?")


def _small(call: Any, into_options: bool = False) -> Any:
    def small(*args: Any, **kwargs: Any) -> Any:
        if into_options:
            kwargs["options"] = {**(kwargs.get("options") or {}), **TINY}
        else:
            kwargs.update(TINY)
        return call(*args, **kwargs)

    return small


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 3 and any("impasto.batch(" in block for block in BLOCKS)


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_a_readme_python_block_runs(number: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    content_image: Image.Image, style_image: Image.Image) -> None:  # fmt: skip
    block = BLOCKS[number]
    monkeypatch.chdir(tmp_path)
    for name in set(re.findall(r"[\"']([\w./-]+\.(?:jpg|png))[\"']", block)):
        (content_image if "photo" in name else style_image).convert("RGB").save(tmp_path / name)
    monkeypatch.setattr(impasto, "stylize", _small(impasto.stylize))
    monkeypatch.setattr(impasto, "run", _small(impasto.run))
    monkeypatch.setattr(impasto, "batch", _small(impasto.batch, into_options=True))
    exec(compile(block, f"README.md python block {number + 1}", "exec"), {"__name__": "readme"})


STATED_WEIGHTS = [
    r"style_weight\s*=\s*([-+0-9.e]+(?:,[-+0-9.e]+)*)",  # a keyword, or --grid/--set style_weight=1,3,10
    r"[\"']style_weight[\"']\s*:\s*\[([^\]]*)\]",  # a grid's list
    r"[\"']style_weight[\"']\s*:\s*([-+0-9.e]+)",  # an options dict
    r"--style-weight[ =]([-+0-9.e]+)",  # the flag
]


def stated_style_weights(text: str) -> list[tuple[str, float]]:
    """(what was written, each number in it) for every style weight the text states."""
    found = []
    for pattern in STATED_WEIGHTS:
        for match in re.finditer(pattern, text):
            found += [(match.group(0), float(value)) for value in match.group(1).replace(" ", "").split(",") if value]
    return found


def test_every_style_weight_the_docs_state_is_in_the_documented_range() -> None:
    low, high = STYLE_WEIGHTS
    stated = {page.name: stated_style_weights(page.read_text()) for page in PAGES}
    assert sum(map(len, stated.values())) >= 4  # the README's batch and Python examples among them
    outside = [
        (page, written) for page, found in stated.items() for written, value in found if not low <= value <= high
    ]
    assert outside == []
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `--style-weight`"))
    assert f"({low:g}: a hint of style; {high:g}: little of the photo left)" in row  # the range, stated where it lives
    page = (ROOT / "src" / "impasto" / "web" / "static" / "index.html").read_text()
    slider = re.search(r'name="strength" min="([-\d.]+)" max="([-\d.]+)"', page)  # the studio's: log10 of the weight
    assert slider is not None and (10 ** float(slider[1]), 10 ** float(slider[2])) == pytest.approx(STYLE_WEIGHTS)


def test_the_range_check_catches_the_old_scale() -> None:
    old = """impasto.stylize("photo.jpg", "p.jpg", style_weight=2e3)\ngrid={"style_weight": [1e3, 1e4]}"""
    assert [value for _, value in stated_style_weights(old)] == [2e3, 1e3, 1e4]


def _resolve(dotted: str, as_call: bool) -> Any:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):  # the longest prefix that is a module
        try:
            module = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        break
    value = impasto if as_call else module
    for part in parts[1:] if as_call else parts[end:]:
        value = getattr(value, part)
    return value


def test_every_dotted_name_in_the_docs_resolves() -> None:
    missing = []
    for page in PAGES:
        for found in NAME.finditer(page.read_text()):
            dotted, as_call = found.group(0).rstrip("("), bool(found.group("call"))
            try:
                _resolve(dotted, as_call)
            except AttributeError:
                missing.append(f"{page.name}: {found.group(0)}")
    assert missing == []


def test_the_check_catches_what_issue_22_found() -> None:
    with pytest.raises(AttributeError):
        _resolve("impasto.batch.batch", as_call=True)  # `impasto.batch` is the function
    assert _resolve("impasto.batch.plan.Job", as_call=False).__name__ == "Job"
