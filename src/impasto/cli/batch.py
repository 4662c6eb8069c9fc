"""Command line of `impasto batch`: parse, show a bar over jobs, say what failed, exit non-zero if any did.

SIGINT, SIGTERM and SIGHUP stop it as Ctrl-C does: the job running is dropped (its temp folder removed),
writes under way finish, summary.csv and index.html are written, and it exits 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..batch import batch
from ..batch.options import parse_grid, parse_settings
from ..batch.plan import Task
from ..batch.runner import ENGINES, Report, Writes
from ..stylize import Callback, Progress
from .common import DefaultsFormatter, OneLineParser, Signals

EXIT_FAILED = 1  # a stop by a signal exits 128 + its number (Signals.exit_code): 130 for Ctrl-C


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="impasto batch",
        description="Paint every CONTENT in every STYLE for every combination of --grid values (or the rows of "
        "a manifest) into a folder. Reruns skip what is done. Details: README and docs/cluster.md.",
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("-c", "--content", nargs="+", action="extend", default=[], metavar="PATH",
                   help="content images: files, folders or quoted globs ('photos/*.jpg')")  # fmt: skip
    p.add_argument("-s", "--style", nargs="+", action="extend", default=[], metavar="PATH",
                   help="style images: files, folders or quoted globs")  # fmt: skip
    p.add_argument("-m", "--manifest", help="CSV or JSONL, one job a row: content, style, [output], any option")
    p.add_argument("-o", "--output", required=True, metavar="FOLDER", help="output folder (created if missing)")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                   help="an option's values to sweep (list-valued options: V1|V2); repeat for a product")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="an option for every job, e.g. --set size=768 (names as in StyleConfig)")  # fmt: skip
    p.add_argument("--format", default="png", choices=("png", "jpg", "webp", "tif"),
                   help="output format; a PNG carries its key and settings (others: the ledger does)")  # fmt: skip
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: one job at a time, all cores; ray: a Ray cluster (impasto[cluster])")  # fmt: skip
    g.add_argument("--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:10001 (default: a private local one)")
    g.add_argument("--cpus-per-job", type=int, help="CPUs per Ray worker (default: all of the smallest node's)")
    g.add_argument("--gpus-per-job", type=float, default=0, help="GPUs per Ray worker")
    g.add_argument("--workers", type=int, help="number of Ray workers (default: as many as the cluster fits)")
    g.add_argument("--retries", type=int, default=3, help="retries of a job whose Ray worker died")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")
    return p


class BarReporter:
    """tqdm over jobs on stderr, with ETA; with the local engine, the running job's scale and iteration."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar: Any = None

    def start(self, total: int, skipped: int) -> None:
        if self.quiet or not total:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="job", file=sys.stderr, dynamic_ncols=True, desc="batch")
        if skipped:
            self.bar.write(f"impasto batch: {skipped} job(s) already done, skipped", file=sys.stderr)

    def job_done(self, entry: Mapping[str, Any]) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def job_callback(self, task: Task) -> Callback | None:
        if self.bar is None:
            return None
        bar = self.bar

        def show(progress: Progress) -> None:
            bar.set_postfix_str(f"{task.name}: scale {progress.scale}/{progress.scales}, "
                                f"step {progress.step}/{progress.total_steps}")  # fmt: skip

        return show

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not args.manifest and not (args.content and args.style):
        parser.error("give --content and --style images, or a --manifest")
    if bool(args.content) != bool(args.style):
        parser.error("--content and --style go together (give both)")
    for name in ("cpus_per_job", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.retries < 0 or args.gpus_per_job < 0:
        parser.error("--retries and --gpus-per-job must not be negative")
    if args.engine == "local" and (args.address or args.cpus_per_job or args.workers or args.gpus_per_job):
        parser.error("--address, --cpus-per-job, --gpus-per-job and --workers are for --engine ray")


def batch_main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(args, parser)
    with Signals() as signals:  # SIGTERM and SIGHUP stop as Ctrl-C does; writes finish first
        try:
            start = time.perf_counter()
            report = _run(args, lambda: signals.deferred(then_stop=True))
        except KeyboardInterrupt:  # before or after the jobs ran (planning, starting Ray)
            print(f"impasto batch: {signals.name}; rerun to continue", file=sys.stderr)
            return signals.exit_code
    for entry in report.failed:
        print(f"impasto batch: failed: {entry['output'] or entry['source']}: {entry['error']}", file=sys.stderr)
    if report.interrupted:
        print(f"impasto batch: {signals.name}; {report.painted} painted, rerun to continue", file=sys.stderr)
        return signals.exit_code
    if not args.quiet:
        print(
            f"impasto batch: {report.painted} painted, {report.skipped} already done, {len(report.failed)} failed "
            f"in {time.perf_counter() - start:.1f} s; see {Path(args.output) / 'index.html'}",
            file=sys.stderr,
        )
    return EXIT_FAILED if report.failed else 0


def _run(args: argparse.Namespace, writes: Writes) -> Report:
    cwd = Path.cwd()
    engine: dict[str, Any] = {"engine": args.engine}
    if args.engine == "ray":
        engine.update(address=args.address, cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job,
                      workers=args.workers, retries=args.retries)  # fmt: skip
    return batch(
        args.content,
        args.style,
        args.output,
        grid=parse_grid(args.grid, cwd),
        manifest=args.manifest,
        options=parse_settings(args.set, cwd),
        suffix=f".{args.format}",
        reporter=BarReporter(args.quiet),
        writes=writes,
        **engine,
    )
