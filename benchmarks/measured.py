"""Run a Python program in a child process and measure its wall time, CPU time and peak memory.

Peak memory is the child's own VmHWM (the high-water mark of its address space), which the child
reports as it exits. wait4's ru_maxrss is not used: Linux carries the parent's high-water mark
into an exec'd child (Python starts children with vfork), so a child of a large benchmark process
would report at least the parent's size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MARK = "@@peak-rss-kib"
# Registers the exit report, then runs `-m module args...` or `script args...` as __main__.
_WRAPPER = f"""
import atexit, os, runpy, sys

def _report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stdout.flush()
    os.write(1, ("\\n{MARK} " + peak + "\\n").encode())

atexit.register(_report)
if sys.argv[1] == "-m":
    sys.argv = sys.argv[2:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as `python script.py` would
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


@dataclass
class Child:
    """A finished child: wall seconds, CPU seconds (user + system), peak memory, and its output."""

    wall: float
    cpu: float
    peak_mib: float
    stdout: str
    launched: float  # epoch seconds


def run_python(args: list[str], cwd: Path) -> Child:
    """Run `python args...` (args: `-m module ...` or `script.py ...`); stdout and stderr together."""
    launched, start = time.time(), time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, *args], stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{args[:3]} failed ({code}):\n{text[-3000:]}")
    peaks = [line.split()[1] for line in text.splitlines() if line.startswith(MARK)]
    if not peaks:
        raise SystemExit(f"{args[:3]} did not report its peak memory")
    body = "\n".join(line for line in text.splitlines() if not line.startswith(MARK))
    return Child(wall, usage.ru_utime + usage.ru_stime, int(peaks[-1]) / 1024, body, launched)
