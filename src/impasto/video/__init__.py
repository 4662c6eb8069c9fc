"""`impasto video`: temporally consistent video style transfer (Ruder, Dosovitskiy & Brox 2016).

Importing this package is cheap; PyAV and OpenCV (the `video` extra) are imported when a video
is painted, so `import impasto` works without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ImpastoError

if TYPE_CHECKING:
    from .api import VideoResult

DEFAULT_TEMPORAL_WEIGHT = 200.0
"""Weight of the temporal term (mean squared difference to the warped previous frame, pixels in [0, 1])."""
DEFAULT_FRAME_ITERATIONS = 40
"""Objective evaluations per frame after the first: a warm start needs far fewer than a still."""
EXTRA = "impasto video needs PyAV and OpenCV: pip install 'impasto[video]'"


def video(input: str | Path, style: Any, output: str | Path, **options: Any) -> VideoResult:
    """Paint the video `input` in the style of `style` (one image or a list); write `output` (.mp4 or .webm).

    Options: `start`, `duration` (seconds) or `frames`, `fps` (resample; default: the source's
    frame times), `temporal_weight`, `frame_iterations` (evaluations per frame after the first),
    `work_dir`, `resume` (True / False / None: reuse frames if the settings match), `keep_frames`,
    `callback` (gets a FrameProgress after every evaluation; True stops), `writes` (the context the
    final encode runs in), `config`, and every StyleConfig field (size, style_weight, preserve_color,
    ...). Returns a VideoResult.
    """
    try:
        from .api import video as paint_video
    except ImportError as exc:
        if exc.name in ("av", "cv2"):
            raise ImpastoError(EXTRA) from None
        raise
    return paint_video(input, style, output, **options)


__all__ = ["video"]
