"""impasto in Jupyter: examples/notebook.ipynb runs top to bottom in a real kernel (nbclient + ipykernel),
with a notebook progress bar, inline images and a live preview; and the bar's choice outside Jupyter."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

import impasto
from impasto.notebook import LivePreview, in_jupyter

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebook.ipynb"
FAST = dict(size=64, scales=1, iterations=[6], seed=0)
WIDGET = "application/vnd.jupyter.widget-view+json"


def _outputs(cell: nbformat.NotebookNode, kind: str) -> list[object]:
    return [out["data"][kind] for out in cell.get("outputs", []) if kind in out.get("data", {})]


def test_example_notebook_runs_with_a_bar_and_inline_images(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # noqa: E501
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    painted = next(cell for cell in code if "impasto.stylize(photo, painting, **QUICK)" in cell.source)
    assert _outputs(painted, WIDGET), "no notebook progress bar (tqdm.auto widget)"
    assert _outputs(painted, "image/png"), "the returned PIL image is not shown inline"
    live = next(cell for cell in code if "LivePreview" in cell.source and "callback=preview" in cell.source)
    assert _outputs(live, "image/png") and int(_outputs(live, "text/plain")[-1]) > 1  # shown, then redrawn
    errors = [out for cell in code for out in cell.get("outputs", []) if out.get("name") == "stderr"]
    assert not [out for out in errors if "Warning" in out["text"] or "Traceback" in out["text"]], errors
    assert Image.open(tmp_path / "notebook-result.png").size == (128, 85)


def test_no_bar_outside_jupyter_unless_asked(
    content_image: Image.Image, style_image: Image.Image, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not in_jupyter()
    impasto.stylize(content_image, style_image, **FAST)
    assert capsys.readouterr().err == ""  # the library prints nothing of its own
    image = impasto.stylize(content_image, style_image, progress=True, **FAST)
    bar = capsys.readouterr().err
    assert "scale 1/1 64x48" in bar and "6/6" in bar and "loss" in bar
    assert isinstance(image, Image.Image) and image._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # Jupyter's inline form


def test_the_bar_comes_by_itself_in_a_jupyter_kernel(
    monkeypatch: pytest.MonkeyPatch, content_image: Image.Image, style_image: Image.Image, capsys
) -> None:
    import tqdm.auto  # noqa: F401 - decides text or widget now, before the stand-in kernel below

    kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    assert in_jupyter()
    impasto.stylize(content_image, style_image, **FAST)
    assert "6/6" in capsys.readouterr().err
    impasto.stylize(content_image, style_image, progress=False, **FAST)
    assert capsys.readouterr().err == ""


def test_callback_still_stops_the_run_behind_the_bar(content_image: Image.Image, style_image: Image.Image) -> None:
    seen: list[int] = []
    impasto.stylize(content_image, style_image, progress=True, callback=lambda p: seen.append(p.step) or p.step >= 3,
                    **{**FAST, "iterations": [50]})  # fmt: skip
    assert seen == [1, 2, 3]


@pytest.mark.parametrize("every", [0, -3, 2.5, "5", None, True])
def test_live_preview_is_checked_when_made(every: object) -> None:
    """Issue 39 item 11: a bad `every` was a TypeError mid-run (or a float period); now one line, at once."""
    with pytest.raises(impasto.ImpastoError) as error:
        LivePreview(every=every)  # type: ignore[arg-type]
    assert str(error.value) == f"live preview: every must be a whole number of steps, at least 1, got {every!r}"


@pytest.mark.parametrize("ipython", [True, False])
def test_live_preview_is_quiet_outside_a_notebook(
    ipython: bool, monkeypatch: pytest.MonkeyPatch, content_image: Image.Image, style_image: Image.Image,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Issue 39 item 11: it printed `<PIL.Image.Image ...>` to stdout, or without IPython raised
    ModuleNotFoundError in the middle of the run."""
    if not ipython:
        monkeypatch.setitem(sys.modules, "IPython", None)  # import IPython now raises ImportError
        monkeypatch.setitem(sys.modules, "IPython.display", None)
    preview = LivePreview(every=1)
    impasto.stylize(content_image, style_image, callback=preview, **FAST)
    assert preview.shown == 0 and capsys.readouterr() == ("", "")
