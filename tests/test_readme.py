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

What the README states of the code is the code's (issue 40, item 6): the options tables name every flag of
the parser and no other, each default in the table, read as its flag reads it, is the parser's; the rules
and names it states (the schedule, the memory budget, the tile multiple, the snapshot names, the top
picture's settings) are those the code uses or makes; every time it gives names the CPU it was measured
on; the notebook's figures are the README's.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import impasto
from impasto import memory, pyramid
from impasto.cli.options import build_parser, snapshot_path
from impasto.config import STYLE_WEIGHTS, TILE_MULTIPLE, default
from impasto.pyramid import PICTURE_SIZE, default_counts, picture_scale, scale_sizes, schedule

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


# -- issue 40 item 6: the stated defaults and figures are the code's ---------------------------------------


def _section(text: str, heading: str) -> str:
    """The text under a markdown heading, up to the next heading of any level."""
    return re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#)", text, re.S | re.M)[1]  # type: ignore[index]


README = (ROOT / "README.md").read_text()
ROWS = [line for line in _section(README, "Options").splitlines() if line.startswith("| `")]
CONTROL_ROWS = [line for line in _section(README, "Perceptual controls (Gatys et al. 2017)").splitlines()
                if line.startswith("| `")]  # fmt: skip
PARSER = build_parser()
ACTIONS = {flag: action for action in PARSER._actions for flag in action.option_strings}  # --x and --no-x too


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _flags(cell: str) -> list[str]:
    return re.findall(r"(?<![\w-])--?[a-z][\w-]*", " ".join(re.findall(r"`([^`]*)`", cell)))


def _row(flag: str) -> str:
    return next(row for row in ROWS if flag in _flags(_cells(row)[0]))


def _states(action: argparse.Action, cell: str) -> bool:
    """Whether the table's default `cell` is the action's, read as the flag reads it. A value is written
    `in code` or as a number; a default of None (chosen at run time, or not done) is said in plain words
    ("auto", "to the end"); 0 or a flag's False is "off", a flag's True "on"."""
    value = action.default
    if value is argparse.SUPPRESS or value == []:  # --help, --version, a repeatable flag: nothing to state
        return cell == ""
    if action.dest == "iterations":  # None: the schedule, stated as the default run's counts
        size = default("size")
        return value is None and cell == f"{default_counts(size, default('min_size'))} at {size} px"
    typed = cell.strip("`")
    if cell.startswith("`") or re.fullmatch(r"[-+.\de]+", typed):
        try:
            read = (action.type or str)(typed)
        except (ValueError, argparse.ArgumentTypeError):
            return False
        return read == value and (action.choices is None or read in action.choices)
    if value is None:
        return cell not in ("", "on")
    return cell == ("on" if value is True else "off" if value is False or value == 0 else None)


def test_the_options_tables_name_every_flag_and_only_real_ones() -> None:
    named = {flag for row in ROWS + CONTROL_ROWS for flag in _flags(_cells(row)[0])}
    assert len(ROWS) > 30 and len(CONTROL_ROWS) >= 6
    assert sorted(set(ACTIONS) - named) == [] and sorted(named - set(ACTIONS)) == []


def _wrong_defaults(rows: list[str], parser: argparse.ArgumentParser) -> tuple[list[str], set[str]]:
    """The rows whose stated default is not the parser's, and the options (dests) the rows state."""
    actions = {flag: action for action in parser._actions for flag in action.option_strings}
    wrong, checked = [], set()
    for row in rows:
        flag_cell, default_cell = _cells(row)[:2]
        found = list(dict.fromkeys(actions[flag] for flag in _flags(flag_cell) if flag in actions))
        assert found and len(found) == len({actions.get(flag) for flag in _flags(flag_cell)}), row  # real flags
        stated = default_cell.split(", ") if len(found) > 1 and ", " in default_cell else [default_cell] * len(found)
        assert len(stated) == len(found), row
        for action, cell in zip(found, stated):
            checked.add(action.dest)
            if not _states(action, cell):
                wrong.append(f"{action.option_strings[-1]}: the table says {cell!r}, the code {action.default!r}")
    return wrong, checked


def test_every_default_the_table_states_is_the_codes() -> None:
    wrong, checked = _wrong_defaults(ROWS, PARSER)
    controls = {ACTIONS[flag].dest for row in CONTROL_ROWS for flag in _flags(_cells(row)[0])}
    assert wrong == [] and checked == {a.dest for a in PARSER._actions if a.option_strings} - controls


@pytest.mark.parametrize("page, command", [("video.md", "video"), ("web.md", "serve")])
def test_every_default_the_docs_tables_state_is_the_codes(page: str, command: str) -> None:
    from impasto.cli.serve import build_parser as serve_parser
    from impasto.cli.video import build_video_parser

    rows = [line for line in (ROOT / "docs" / page).read_text().splitlines() if line.startswith("| `-")]
    wrong, checked = _wrong_defaults(rows, {"video": build_video_parser, "serve": serve_parser}[command]())
    assert len(checked) >= 8 and wrong == []


def test_the_default_check_catches_the_drift_issue_40_found() -> None:
    style_layers, tolerance, seed = ACTIONS["--style-layers"], ACTIONS["--tolerance"], ACTIONS["--seed"]
    assert _states(style_layers, "`relu1_1,relu2_1,relu3_1,relu4_1`")
    assert not _states(style_layers, "`relu1_1,relu2_1,relu3_1,relu4_1,relu5_1`")
    assert not _states(tolerance, "1e-2") and not _states(seed, "auto") and not _states(ACTIONS["--conv"], "`direct`")
    assert not _states(ACTIONS["--iterations"], "300,150,75 at 512 px") and not _states(ACTIONS["--weights"], "on")
    assert not _states(ACTIONS["--save-every"], "auto") and not _states(ACTIONS["--scales"], "`3`")


def test_the_table_states_the_rules_and_names_the_code_uses() -> None:
    assert pyramid.rule() in _row("--iterations") and memory.rule() in _row("--max-memory")
    assert re.findall(r"a multiple of (\d+)", _row("--tile-size")) == [str(TILE_MULTIPLE)]
    save = _row("--save-every")
    named = re.findall(r"`(\S+)` at iteration (\d+) of `-o (\S+)`", save)
    refused = re.findall(r"`--init (\S+) -o (\S+) --save-every (\d+)`", save)
    assert named and refused and "sSTEP" not in save
    assert all(snapshot_path(out, int(step)).name == name for name, step, out in named)
    assert all(snapshot_path(out, int(step)).name == name for name, out, step in refused)
    layout = re.search(r"the last one up to (\d+) px: ([\d and,]+) px in an? ([\d, or]+) px run",
                       _row("--layout-weight"))  # fmt: skip
    assert layout is not None and int(layout[1]) == PICTURE_SIZE
    for size in map(int, re.findall(r"\d+", layout[3])):
        sizes = scale_sizes(size, default("min_size"))
        assert sizes[: picture_scale(sizes)] == [int(s) for s in re.findall(r"\d+", layout[2])], size


def _by_the_rule(sizes: list[int]) -> list[int]:
    """The automatic iterations, as pyramid.rule()'s words describe them (its numbers read from the words)."""
    coarsest, between, last, limit, _, above, floor = map(int, re.findall(r"\d+", pyramid.rule()))
    counts: list[int] = []
    for i, size in enumerate(sizes):
        if i == len(sizes) - 1 and size <= limit:
            counts.append(last)
        elif i == 0:
            counts.append(coarsest)
        elif size <= limit:
            counts.append(between)
        else:
            counts.append(above if sizes[i - 1] <= limit else max(floor, counts[-1] // 2))
    return counts


@pytest.mark.parametrize("min_size", [64, 128, 300, 768])
def test_the_stated_schedule_rule_is_the_schedule(min_size: int) -> None:
    for size in (16, 100, 128, 200, 512, 640, 768, 769, 1024, 1536, 2048, 4096, 8192):
        for scales in (None, 2, 3, 6):
            sizes = scale_sizes(size, min_size, scales)
            assert [s.iterations for s in schedule(size, min_size, scales, None)] == _by_the_rule(sizes), sizes


def test_the_top_pictures_caption_states_the_defaults() -> None:
    caption = README.split("*`impasto tubingen.jpg", 1)[1].split("*\n", 1)[0]
    counts = default_counts(default("size"), default("min_size")).split(",")
    sizes = ", ".join(map(str, scale_sizes(default("size"), default("min_size"))))
    assert f"({sizes} px; {' + '.join(counts)} objective evaluations" in caption
    assert f"style weight {default('style_weight'):g} and total variation {default('tv_weight'):g}" in caption
    assert f"at {default('layout_weight'):g}x the content weight" in caption.replace("\n", " ")


CPUS = ("2-core AMD EPYC with AVX-512 bf16", "2-core AMD EPYC with AVX2 only")
"""The CPUs docs/speed.md measured on, as the README names them."""
DURATION = re.compile(r"\b\d+(?:\.\d+)? ?(?:s|seconds?|minutes?|min)\b")
FIGURE = re.compile(rf"about [\d.]+ (?:s|minutes) on an? (?:{'|'.join(map(re.escape, CPUS))})")


def test_every_time_the_readme_states_names_its_cpu() -> None:
    speed_md = (ROOT / "docs" / "speed.md").read_text()
    assert all(cpu.split(" with ")[0] in speed_md for cpu in CPUS) and "AVX2 only" in speed_md
    prose = re.sub(r"^```.*?^```", "", README, flags=re.S | re.M)  # commands (--duration 5) state no times
    sentences = [
        sentence for cell in prose.split("|") for sentence in re.split(r"(?<=[.)])\s+(?=[A-Z])", " ".join(cell.split()))
    ]
    timed = [sentence for sentence in sentences if DURATION.search(sentence)]
    assert len(timed) >= 4 and [sentence for sentence in timed if not any(cpu in sentence for cpu in CPUS)] == []
    assert len(FIGURE.findall(" ".join(_section(README, "Speed").split()))) >= 2


def test_the_notebook_states_the_readmes_figures_and_defaults() -> None:
    notebook = json.loads((ROOT / "examples" / "notebook.ipynb").read_text())
    text = " ".join(" ".join("".join(cell["source"]) for cell in notebook["cells"]).split())
    figures = FIGURE.findall(text)
    assert figures and len(DURATION.findall(text)) == len(figures), "a speed figure that names no CPU"
    readme_speed = " ".join(_section(README, "Speed").split())
    assert [figure for figure in figures if figure not in readme_speed] == []
    assert "laptop" not in text and "in seconds" not in text
    assert re.findall(r"the default is (\d+)", text) == [str(default("size"))]
