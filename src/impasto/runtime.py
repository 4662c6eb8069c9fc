"""Where and how the numbers run: device, precision, CPU threads and allocator settings.

Measured on a 2-core AVX-512 CPU (issue 3): a bfloat16 network (weights converted once, not autocast, which
recasts frozen weights every call) with channels_last memory halves
the network's time against float32; glibc giving big buffers back to the OS after every step
costs a page-fault storm, so we ask it to keep them; threads beyond the physical cores slow
oneDNN down.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import sys
from dataclasses import dataclass

import torch

from .errors import ImpastoError

log = logging.getLogger("impasto")

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype  # the network's weights and activations; losses are always float32

    @property
    def label(self) -> str:
        return f"{self.device.type}/{'bf16' if self.dtype == torch.bfloat16 else 'fp32'}"

    def reproducible(self, seed: int | None) -> contextlib.AbstractContextManager[object]:
        """Same seed, same picture on a GPU too: cuDNN otherwise picks convolution algorithms by
        timing and may use ones that add in a varying order (seen on an H100: the same seed gave
        pixels one level apart). Scoped to the run, so a caller's own cuDNN settings are left alone."""
        if self.device.type != "cuda" or seed is None:
            return contextlib.nullcontext()
        return torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, benchmark=False, deterministic=True)


def physical_cores() -> int:
    """Cores we may run on, counting SMT siblings once."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        path = f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
        try:
            with open(path) as handle:
                cores.add(handle.read().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


@functools.cache
def tune_cpu() -> None:
    """Once per process: threads = physical cores, and keep freed memory in the process.

    It changes the whole process (torch's thread pool, glibc's allocator), so the library never
    calls it: the entry points do (the CLI, `impasto serve`, batch workers, the benchmarks). A
    notebook or a server that imports impasto calls it only if it wants the same speed.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(physical_cores())
    libc = _libc()
    try:
        if libc is not None:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except AttributeError:  # not glibc: nothing to tune
        log.debug("mallopt not available; allocator left as is")


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.malloc_trim  # noqa: B018 - glibc only (musl has none)
        return libc
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Give the allocator's free pages back to the OS (glibc's malloc_trim; elsewhere nothing).

    Tiles of different sizes fragment the heap that `tune_cpu` keeps: measured at 4096x3072 in
    12 tiles, the peak was 7.45 GiB without a trim after each tile and 6.41 GiB with one. But every
    trim is paid again in page faults when the next tile takes the memory back (2048x1536 in 6
    tiles: 1.4x the time), so tiles call it only when the heap has grown (tiles.HeapGuard).
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def resident_bytes() -> int:
    """This process's resident memory (Linux; elsewhere 0, where nothing is trimmed either)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _bf16_pays(device: torch.device) -> bool:
    """bf16 is the default only where the hardware computes in it natively (it halves the time)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_bf16_runs() and bool(torch.cpu._is_avx512_bf16_supported())
    return False


def _cpu_bf16_runs() -> bool:
    """Whether oneDNN has a bf16 path on this CPU (the check it makes itself before a bf16 convolution)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def bf16_missing(device: torch.device) -> str | None:
    """Why bf16 cannot run on this device at all, or None where it can.

    oneDNN's bf16 convolution needs AVX-512 (BW, VL, DQ) or AVX-NE-CONVERT; on an AVX2-only CPU it
    raises mid-run, so we ask first (the same check oneDNN makes)."""
    if device.type == "cpu" and not _cpu_bf16_runs():
        found = "AVX2" if torch.cpu._is_avx2_supported() else "neither AVX2 nor AVX-512"
        return f"bf16 needs a CPU with AVX-512 (BW, VL, DQ) or AVX-NE-CONVERT, and this one has {found}"
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "bf16 needs a GPU of compute capability 8.0 (Ampere) or newer"
    if device.type == "mps":
        return "bf16 is not supported on mps"
    return None


def resolve(device: str, precision: str) -> Runtime:
    """Turn the user's 'auto' choices into a concrete device and dtype, or say why not."""
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ImpastoError("device cuda asked for, but this PyTorch sees no CUDA GPU")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ImpastoError("device mps asked for, but this PyTorch sees no Apple GPU")
    dev = torch.device(device)
    if precision == "bf16":
        missing = bf16_missing(dev)
        if missing:
            raise ImpastoError(f"{missing}; use precision fp32, or auto (the fastest that runs here)")
        dtype = torch.bfloat16
    elif precision == "fp32":
        dtype = torch.float32
    else:
        dtype = torch.bfloat16 if _bf16_pays(dev) else torch.float32
    return Runtime(dev, dtype)
