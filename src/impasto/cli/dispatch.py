"""`impasto [video | batch | serve] ...`: which command runs, and how any error ends (one line, an exit code).

Only dispatches: each command is its own module (still, video, batch, serve), imported when chosen.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from ..errors import ImpastoError
from ..runtime import tune_cpu
from .common import EXIT_ERROR, EXIT_INTERRUPTED
from .still import stylize_main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="impasto: %(message)s")
    tune_cpu()  # threads and allocator for a process that only paints (the library leaves them alone)
    try:
        if argv[:1] == ["serve"]:
            from .serve import serve_main

            return serve_main(argv[1:])
        if argv[:1] == ["video"]:
            from .video import video_main

            return video_main(argv[1:])
        if argv[:1] == ["batch"]:
            from .batch import batch_main

            return batch_main(argv[1:])
        return stylize_main(argv)
    except ImpastoError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("impasto: interrupted before an image was made; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("impasto: error: out of memory; try a smaller --size", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug, not bad input: one line unless asked for the traceback
        if os.environ.get("IMPASTO_DEBUG"):
            raise
        print(
            f"impasto: internal error: {type(exc).__name__}: {exc} (IMPASTO_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR
