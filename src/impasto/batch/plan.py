"""What a batch does: jobs from inputs x styles x grid (or a manifest), their output names and keys.

A job's output name is a function of what the user asked (content, styles, the options that vary),
so a rerun finds the same file; its key is a hash of the input files' bytes, the full effective
config and the impasto version, so a rerun knows whether that file is still what it would paint.

A job has a `kind`: today every job is a "still" (one picture). A video job (one clip painted frame by
frame, distributed per clip) is meant to be added as another kind with its own runner in worker.py:
planning, keys (the clip's bytes), the ledger, both engines and the sheet are kind-agnostic.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import INITS, StyleConfig, configure
from ..errors import ImpastoError
from ..imageio import check_input_file
from .options import FILE_OPTIONS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
KINDS = ("still",)
MAX_NAME = 150


@dataclass(frozen=True)
class Job:
    """One output to make. `options` are the job's own settings (grid axes, manifest columns)."""

    content: str
    styles: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    output: str | None = None  # an explicit output name (manifest's `output` column)
    source: str = ""  # where the job came from, for messages: "jobs.csv row 3"
    kind: str = "still"

    def label(self) -> str:
        return f"{Path(self.content).name} x {'+'.join(Path(s).name for s in self.styles)}"


@dataclass
class Task:
    """A job made concrete: its config, output name, key and the files whose bytes it needs."""

    job: Job
    name: str
    config: StyleConfig | None = None
    key: str = ""
    files: dict[str, str] = field(default_factory=dict)  # sha256 of the bytes -> path
    inputs: list[str] = field(default_factory=list)  # hashes of the content then the style images
    settings: dict[str, Any] = field(default_factory=dict)  # the full config, file paths as hashes
    options: dict[str, Any] = field(default_factory=dict)  # what was asked: --set, then the job's own
    sources: list[str] = field(default_factory=list)  # every file it reads (its output must be none of them)
    error: str | None = None  # a job that cannot start (missing file, bad option): recorded, not run

    @property
    def ok(self) -> bool:
        return self.error is None

    def refuse(self, message: str) -> None:
        """Record why the task cannot run (the first reason is kept), after the manifest row it came from."""
        if self.error is None:
            self.error = f"{self.job.source}: {message}" if self.job.source else message


def expand_inputs(patterns: Sequence[str], what: str, skip: Callable[[Path], bool] = lambda path: False) -> list[str]:
    """Files, folders (their images, sorted) and quoted globs -> paths, in the order given.

    A folder or glob leaves out the files `skip` names (the batch's own outputs, where it paints into
    its input folder: a rerun must not paint its paintings again); a file named alone is always taken.
    """
    out: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            listed = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
            found = sorted(str(p) for p in listed if p.is_file() and not skip(p))
        elif glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(pattern, recursive=True) if Path(p).is_file() and not skip(Path(p)))
        else:
            found = [pattern]  # a missing file fails its own jobs, with the file's name
        if not found:
            raise ImpastoError(f"{what} {pattern!r} matches no image file")
        for p in found:
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


def grid_jobs(
    contents: Sequence[str], styles: Sequence[str], grid: Mapping[str, Sequence[Any]], kind: str = "still"
) -> list[Job]:
    """Every content x every style x every combination of the grid's values."""
    names = list(grid)
    combos = list(itertools.product(*(grid[n] for n in names))) or [()]
    return [
        Job(content, (style,), dict(zip(names, combo)), kind=kind)
        for content in contents
        for style in styles
        for combo in combos
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._,+-]+", "_", text).strip("_") or "x"


def _fmt(name: str, value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ",".join(f"{k}:{_fmt(name, v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt(name, v) for v in value)
    if name in FILE_OPTIONS and value is not None and value not in INITS:
        return Path(str(value)).stem
    return str(value)


def _identity(job: Job) -> str:
    """What makes two jobs one: the same work into the same (explicit or derived) output."""
    work = [job.kind, job.content, job.styles, _canonical(job.options)]
    if job.output:  # (without one, as before: the short hashes of clashing derived names stay the same)
        work.append(job.output)
    return json.dumps(work, sort_keys=True, default=str)


def base_name(job: Job, suffix: str) -> str:
    """content--style[+style]--option-value...: readable, and the same on every rerun."""
    if job.output:
        return job.output if Path(job.output).suffix else job.output + suffix
    parts = [Path(job.content).stem, "+".join(Path(s).stem for s in job.styles)]
    parts += [f"{name}-{_fmt(name, value)}" for name, value in job.options.items()]
    stem = "--".join(_slug(p) for p in parts)
    if len(stem) > MAX_NAME:
        stem = f"{stem[:MAX_NAME]}-{_digest(_identity(job))[:8]}"
    return stem + suffix


def _both(first: Job, second: Job) -> str:
    """'jobs.csv: rows 2 and 3' (one manifest) or 'a.csv row 2 and b.csv row 3'."""
    a, b = (re.fullmatch(r"(.*) (row|line) (\d+)", job.source) for job in (first, second))
    if a and b and a.group(1, 2) == b.group(1, 2):
        return f"{a.group(1)}: {a.group(2)}s {a.group(3)} and {b.group(3)}"
    return f"{first.source or first.label()} and {second.source or second.label()}"


def _claim_explicit(unique: Mapping[str, Job], suffix: str) -> dict[str, str]:
    """Explicit output names -> the identity that asked; two different jobs on one name is an error."""
    owners: dict[str, str] = {}
    for ident, job in unique.items():
        if not job.output:
            continue
        name = base_name(job, suffix)
        if name in owners:
            raise ImpastoError(f"{_both(unique[owners[name]], job)} both ask for output {name}")
        owners[name] = ident
    return owners


def name_jobs(jobs: Iterable[Job], suffix: str) -> list[Task]:
    """Tasks with unique output names: duplicates of a job are dropped, an explicit name is the job's own
    (two jobs asking for one is an ImpastoError), derived names that clash get a short hash."""
    unique: dict[str, Job] = {}
    for job in jobs:
        unique.setdefault(_identity(job), job)
    explicit = _claim_explicit(unique, suffix)
    names = {ident: base_name(job, suffix) for ident, job in unique.items()}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    tasks = []
    for ident, job in unique.items():
        name = names[ident]
        if not job.output and (counts[name] > 1 or name in explicit):
            stem, ext = Path(name).stem, Path(name).suffix
            name = f"{stem}-{_digest(ident)[:6]}{ext}"
        tasks.append(Task(job, name))
    return tasks


def _digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


class FileHasher:
    """sha256 of each input file's bytes, read once per batch (a style shared by 100 jobs is hashed once)."""

    def __init__(self) -> None:
        self.cache: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        if path not in self.cache:
            file = Path(path)
            check_input_file(file, "a file")
            try:
                self.cache[path] = _digest(file.read_bytes())
            except OSError as exc:
                raise ImpastoError(f"{path}: cannot read ({exc.strerror or exc})") from None
        return self.cache[path]


def _hash_files(name: str, value: Any, hasher: FileHasher, task: Task) -> Any:
    """An option's value with each file path replaced by the hash of its bytes (collected in the task's
    `files`; the paths in its `sources`)."""
    if value is None or (name == "init" and value in INITS):
        return value
    if isinstance(value, (list, tuple)):
        return [None if v is None else _hash_files(name, v, hasher, task) for v in value]
    sha = hasher(str(value))
    task.files[sha] = str(value)
    task.sources.append(str(value))
    return sha


def prepare(task: Task, shared: Mapping[str, Any], hasher: FileHasher) -> Task:
    """Fill in the config, the files and the key; a problem becomes the task's one-line error."""
    task.options = {**shared, **task.job.options}
    try:
        if task.job.kind not in KINDS:
            raise ImpastoError(f"unknown job kind {task.job.kind!r}; choose from {', '.join(KINDS)}")
        config = configure(None, **task.options)
        inputs = [_hash_files("content", p, hasher, task) for p in (task.job.content, *task.job.styles)]
        settings = asdict(config)
        for name in FILE_OPTIONS:  # the key holds the bytes' hashes, not the paths: a moved folder is not new work
            settings[name] = _hash_files(name, settings[name], hasher, task)
    except ImpastoError as exc:
        task.refuse(str(exc))
        return task
    task.config, task.inputs, task.settings = config, inputs, settings
    identity = {"impasto": __version__, "kind": task.job.kind, "inputs": inputs, "config": _canonical(settings)}
    task.key = _digest(json.dumps(identity, sort_keys=True, default=str))
    return task
