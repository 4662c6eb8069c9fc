"""Command line of `impasto serve`: bind (loopback unless told otherwise), open a browser, run."""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import threading
import time
import webbrowser
from dataclasses import fields
from typing import Any

from ..errors import ImpastoError
from ..runtime import tune_cpu
from ..web.guard import LOOPBACK_NAMES, allowed_hosts
from ..web.options import Limits
from .common import DefaultsFormatter, OneLineParser

log = logging.getLogger("impasto.web")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="impasto serve",
        description="Start the impasto web studio: upload two images, watch the painting, download it.",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind: 127.0.0.1 this computer only, 0.0.0.0 shares the studio with your network",
    )
    parser.add_argument("--port", type=int, default=8000, help="port")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer to this host name (with --host 0.0.0.0: the name or address others type); "
        "repeatable. Other names are refused, so that no other web page can reach the studio",
    )
    parser.add_argument("--open", action="store_true", help="open the studio in a web browser")
    parser.add_argument("--queue", type=int, default=4, help="most jobs waiting at once")
    limits = parser.add_argument_group("limits of one request (shown on the page)")
    for field in fields(Limits):
        limits.add_argument(
            "--" + field.name.replace("_", "-"),
            type=type(field.default),
            default=field.default,
            help=field.metadata["help"],
        )
    return parser


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(**{field.name: getattr(args, field.name) for field in fields(Limits)}).check()


def serve_main(argv: list[str] | None = None) -> int:
    """Run the studio until Ctrl-C; returns the process exit code. argv may start with 'serve'."""
    parser = build_parser()
    if argv and argv[0] == "serve":
        argv = argv[1:]
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"port must be from 1 to 65535, got {args.port}")
    if args.queue < 1:
        parser.error(f"--queue must be at least 1, got {args.queue}")
    try:
        limits = _limits(args)
    except ImpastoError as exc:
        parser.error(str(exc))
    try:
        import uvicorn

        from ..web.app import create_app
    except ImportError as exc:
        parser.exit(2, f"impasto serve: needs the web extra ({exc.name} is missing): pip install 'impasto[web]'\n")
    tune_cpu()  # the process is ours: threads = cores, freed memory kept for the next job
    host = args.host
    url = f"http://{'[' + host + ']' if ':' in host else host}:{args.port}/"
    hosts = allowed_hosts(host, args.allow_host)
    if host not in LOOPBACK_NAMES:
        log.warning("the studio is reachable from other computers (no login) as %s", ", ".join(sorted(hosts)))
    try:
        sock = _bind(host, args.port)
    except OSError as exc:
        parser.exit(
            1,
            f"impasto serve: cannot listen on {url}: {exc.strerror or exc}"
            f"{' (try another --port)' if exc.errno == errno.EADDRINUSE else ''}\n",
        )
    app = create_app(limits=limits, max_waiting=args.queue, hosts=hosts)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    threading.Thread(target=_announce, args=(server, url, args.open), daemon=True).start()
    with sock:
        server.run(sockets=[sock])
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """Bind here rather than in uvicorn, so a taken port is a one-line message, not a log dump."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _announce(server: Any, url: str, open_browser: bool) -> None:
    """Say where the studio is once it accepts connections, and open it if asked."""
    for _ in range(300):
        if server.started:
            log.warning("impasto studio at %s (Ctrl-C to stop)", url)
            if open_browser:
                webbrowser.open(url)
            return
        time.sleep(0.1)
