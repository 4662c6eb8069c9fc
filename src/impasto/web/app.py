"""The studio's HTTP API and static page (Starlette): uploads, jobs, live progress, results.

Endpoints (JSON unless said otherwise; errors are {"error": "<one line>"}):
  GET  /                         the page (static/, no build step, no CDN)
  GET  /api/config               defaults, choices, limits
  GET  /api/samples/{kind}       the bundled content or style image (JPEG thumbnail)
  POST /api/uploads?name=F       raw image bytes in the body -> {id, name, width, height}
  POST /api/jobs                 {content, style, options, quality} -> 202 {id, position}
  GET  /api/jobs                 every job of this session, oldest first
  GET  /api/jobs/{id}            one job's state
  GET  /api/jobs/{id}/events     the same state as a server-sent event stream until it ends
  GET  /api/jobs/{id}/preview    the current image (JPEG)
  POST /api/jobs/{id}/cancel     stop (the best image so far is kept)
  GET  /api/jobs/{id}/result     the full result, PNG with the parameters as metadata
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import ImpastoError
from ..stylize import run
from .jobs import Job, JobQueue, QueueFull, Runner
from .options import page_config, parse_options
from .uploads import MB, TooLarge, UploadStore, display_name

STATIC = Path(__file__).parent / "static"
SAMPLE = "sample"
EVENT_INTERVAL = 0.25  # seconds between checks of a job for its event stream


class NoSuchJob(Exception):
    """The job id is unknown (never created, forgotten, or the server restarted)."""


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@functools.lru_cache(maxsize=2)
def _sample(kind: str) -> tuple[str, Image.Image]:
    """The bundled default image (impasto.samples), or ImpastoError if this install lacks it."""
    try:
        from .. import samples
    except ImportError:
        raise ImpastoError("this version of impasto has no bundled sample images") from None
    if kind == "content":
        return getattr(samples, "CONTENT_NAME", "sample photo"), samples.default_content()
    return "sample painting", samples.default_style()


def _jpeg(image: Image.Image, longest: int = 320) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((longest, longest))
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


class Studio:
    """The app's state and handlers: one upload store and one job queue per server."""

    def __init__(self, workdir: Path, max_upload: int, queue: JobQueue):
        self.workdir, self.queue = workdir, queue
        self.uploads = UploadStore(workdir, max_upload)

    def _job(self, request: Request) -> Job:
        job = self.queue.get(request.path_params["job_id"])
        if job is None:
            raise NoSuchJob("no such job (the server may have been restarted)")
        return job

    def _state(self, job: Job, losses_from: int = 0) -> dict[str, Any]:
        return job.snapshot(self.queue.position(job), losses_from)

    async def config(self, request: Request) -> JSONResponse:
        body = page_config()
        body["max_upload_bytes"] = self.uploads.limit
        body["max_waiting"] = self.queue.max_waiting
        return JSONResponse(body)

    async def sample(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in ("content", "style"):
            return _error("sample must be 'content' or 'style'", 404)
        try:
            _, image = await run_in_threadpool(_sample, kind)
        except ImpastoError as exc:
            return _error(str(exc), 404)
        return Response(_jpeg(image), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def upload(self, request: Request) -> JSONResponse:
        name = display_name(request.query_params.get("name"))
        length = request.headers.get("content-length")
        try:
            image_id, image = await self.uploads.add(
                name, int(length) if length and length.isdigit() else None, request.stream()
            )
        except TooLarge as exc:
            return _error(str(exc), 413)
        except ImpastoError as exc:
            return _error(str(exc), 415)
        return JSONResponse({"id": image_id, "name": name, "width": image.width, "height": image.height})

    def _image(self, ref: Any, kind: str) -> tuple[str, Image.Image]:
        if ref == SAMPLE:
            return _sample(kind)
        if not isinstance(ref, str) or not ref:
            raise ImpastoError(f"choose a {kind} image first")
        return self.uploads.get(ref)

    async def start(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error("the request body must be JSON")
        if not isinstance(body, dict) or not isinstance(body.get("options", {}), dict):
            return _error("the request must be a JSON object with content, style and options")
        try:
            config = parse_options(body.get("options", {}), body.get("quality"))
            content_name, content = await run_in_threadpool(self._image, body.get("content"), "content")
            style_name, style = await run_in_threadpool(self._image, body.get("style"), "style")
            job = Job(content, style, config, (content_name, style_name))
            position = self.queue.submit(job)
        except QueueFull as exc:
            return _error(str(exc), 429)
        except ImpastoError as exc:
            return _error(str(exc))
        return JSONResponse({"id": job.id, "position": position}, status_code=202)

    async def list_jobs(self, request: Request) -> JSONResponse:
        return JSONResponse([self._state(job) for job in self.queue.jobs()])

    async def job(self, request: Request) -> JSONResponse:
        return JSONResponse(self._state(self._job(request)))

    async def events(self, request: Request) -> StreamingResponse:
        job = self._job(request)

        async def stream() -> AsyncIterator[str]:
            sent: tuple[int, int] | None = None
            losses_from = 0
            while True:
                finished = job.finished  # read before the snapshot, so the last one is complete
                key = (job.version, self.queue.position(job))
                if key != sent:
                    state = self._state(job, losses_from)
                    losses_from += len(state["losses"])
                    sent = key
                    yield f"data: {json.dumps(state)}\n\n"
                if finished:
                    return
                await asyncio.sleep(EVENT_INTERVAL)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    async def preview(self, request: Request) -> Response:
        job = self._job(request)
        if job.preview is None:
            return _error("no preview yet", 404)
        return Response(job.preview, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def cancel(self, request: Request) -> JSONResponse:
        job = self._job(request)
        self.queue.cancel(job)
        return JSONResponse(self._state(job))

    async def result(self, request: Request) -> Response:
        job = self._job(request)
        if job.result_path is None or not job.result_path.exists():
            return _error("no result yet" if not job.finished else "this job has no result", 409)
        stem = Path(job.names[0]).stem or "result"
        filename = display_name(f"{stem}-impasto-{job.id[:6]}.png").replace('"', "")
        disposition = "attachment" if request.query_params.get("download") else "inline"
        return FileResponse(
            job.result_path,
            media_type="image/png",
            headers={"Content-Disposition": f'{disposition}; filename="{filename}"'},
        )

    async def index(self, request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return _error(str(exc), 404)


def create_app(
    *,
    max_upload_mb: float = 20,
    max_waiting: int = 4,
    preview_interval: float = 0.5,
    runner: Runner = run,
    workdir: Path | None = None,
) -> Starlette:
    """The studio app. Its job worker starts and stops with the app's lifespan."""
    owned = tempfile.TemporaryDirectory(prefix="impasto-web-") if workdir is None else None
    folder = Path(owned.name) if owned is not None else Path(workdir)  # type: ignore[arg-type]
    queue = JobQueue(folder, max_waiting=max_waiting, preview_interval=preview_interval, runner=runner)
    studio = Studio(folder, int(max_upload_mb * MB), queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        queue.start()
        try:
            yield
        finally:
            await run_in_threadpool(queue.stop)
            if owned is not None:
                owned.cleanup()

    routes = [
        Route("/", studio.index),
        Route("/api/config", studio.config),
        Route("/api/samples/{kind}", studio.sample),
        Route("/api/uploads", studio.upload, methods=["POST"]),
        Route("/api/jobs", studio.start, methods=["POST"]),
        Route("/api/jobs", studio.list_jobs),
        Route("/api/jobs/{job_id}", studio.job),
        Route("/api/jobs/{job_id}/events", studio.events),
        Route("/api/jobs/{job_id}/preview", studio.preview),
        Route("/api/jobs/{job_id}/cancel", studio.cancel, methods=["POST"]),
        Route("/api/jobs/{job_id}/result", studio.result),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={NoSuchJob: _not_found})
    app.state.studio = studio
    return app
