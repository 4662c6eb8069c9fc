"""Device and precision: what each CPU can run, said before anything is painted.

Both branches of the bf16 check run on every machine: the check is monkeypatched to say bf16 is
missing (as on an AVX2-only CPU) and present (as on an AVX-512 one). No bf16 arithmetic runs here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from impasto import cli, runtime
from impasto.errors import ImpastoError


@pytest.fixture
def no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_cpu_bf16_runs", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx2_supported", lambda: True)


@pytest.fixture
def has_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_cpu_bf16_runs", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)


@pytest.mark.usefixtures("no_bf16")
def test_bf16_where_the_cpu_has_none_says_what_is_missing_and_what_to_use() -> None:
    with pytest.raises(ImpastoError) as error:
        runtime.resolve("cpu", "bf16")
    message = str(error.value)
    assert "AVX-512 (BW, VL, DQ) or AVX-NE-CONVERT" in message and "this one has AVX2" in message
    assert "use precision fp32" in message and "\n" not in message
    assert runtime.resolve("cpu", "auto").dtype == torch.float32
    assert runtime.resolve("auto", "fp32").dtype == torch.float32


@pytest.mark.usefixtures("has_bf16")
def test_bf16_where_the_cpu_has_it_is_taken_and_is_the_default() -> None:
    assert runtime.bf16_missing(torch.device("cpu")) is None
    assert runtime.resolve("cpu", "bf16").dtype == torch.bfloat16
    assert runtime.resolve("cpu", "auto").dtype == torch.bfloat16
    assert runtime.resolve("cpu", "fp32").dtype == torch.float32


def test_the_check_is_the_one_onednn_makes() -> None:
    """Where the real check says bf16 runs, a bf16 convolution runs; where it says not, oneDNN refuses one."""
    x, w = torch.ones(1, 8, 8, 8, dtype=torch.bfloat16), torch.ones(8, 8, 3, 3, dtype=torch.bfloat16)
    if runtime.bf16_missing(torch.device("cpu")) is None:
        assert torch.ops.mkldnn._convolution_pointwise(x, w, None, [1, 1], [1, 1], [1, 1], 1, "relu", [], "").shape
    else:
        with pytest.raises(RuntimeError, match="bf16 path needs"):
            torch.ops.mkldnn._convolution_pointwise(x, w, None, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")


def _call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    return code, capsys.readouterr().err


@pytest.mark.usefixtures("no_bf16")
@pytest.mark.parametrize("command", [[], ["video"]])
def test_cli_bf16_without_it_is_one_line_exit_2_and_writes_nothing(
    command: list[str], image_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = image_files
    out = tmp_path / ("out.mp4" if command else "out.png")
    code, err = _call([*command, str(content), str(style), "-o", str(out), "--precision", "bf16"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "bf16 needs a CPU with AVX-512" in err and "use --precision fp32" in err
    assert sorted(tmp_path.iterdir()) == sorted([content, style])  # nothing written


@pytest.mark.usefixtures("has_bf16")
def test_cli_bf16_with_it_passes_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    """The check lets bf16 through where it runs: the run goes on to the next refusal (no output named)."""
    code, err = _call(["a.png", "b.png", "--precision", "bf16"], capsys)
    assert code == 2 and "give the output file with -o OUT" in err


def test_the_auto_precision_picks_what_this_cpu_runs() -> None:
    """auto never picks bf16 where oneDNN has no bf16 path (the default run must work on every CPU)."""
    native = runtime.bf16_missing(torch.device("cpu")) is None and torch.cpu._is_avx512_bf16_supported()
    assert runtime.resolve("cpu", "auto").dtype == (torch.bfloat16 if native else torch.float32)


@pytest.mark.usefixtures("no_bf16")
def test_api_and_batch_bf16_without_it_are_one_line_errors(
    image_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Python API raises the same one line; a batch (whose jobs may run on other machines) fails each job
    with it and writes no picture."""
    from impasto import stylize

    content, style = image_files
    with pytest.raises(ImpastoError, match="^bf16 needs a CPU with AVX-512"):
        stylize(content, style, size=64, scales=1, iterations=[2], precision="bf16")
    out = tmp_path / "out"
    tiny = ["--set", "size=64", "--set", "scales=1", "--set", "iterations=2", "--set", "precision=bf16"]
    code, err = _call(["batch", "-c", str(content), "-s", str(style), "-o", str(out), "-q", *tiny], capsys)
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto batch: failed: content--style.png: bf16 needs a CPU")
    assert not list(out.glob("*.png"))
