"""The studio's HTTP API and static page (Starlette): uploads, jobs, live progress, results.

Endpoints (JSON unless said otherwise; errors, unknown routes and wrong methods included, are
{"error": "<one line>"}, see transport.py):
  GET  /                         the page (static/, no build step, no CDN)
  GET  /api/config               defaults, choices, limits, each numeric option's range
  GET  /api/samples/{kind}       the bundled content or style image (JPEG thumbnail)
  POST /api/uploads?name=F       raw image bytes (Content-Type image/* or application/octet-stream)
                                 -> {id, name, width, height}
  GET  /api/uploads/{id}         the same answer again (a reloaded page shows the last job's images)
  GET  /api/uploads/{id}/image   its JPEG thumbnail
  POST /api/jobs                 {content, style, options, quality} (application/json, at most
                                 64 KiB) -> 202 {id, position}
  GET  /api/jobs                 every job of this session, oldest first
  GET  /api/jobs/{id}            one job's state
  GET  /api/jobs/{id}/events     the same state as a server-sent event stream until it ends
  GET  /api/jobs/{id}/preview    the current image (JPEG)
  POST /api/jobs/{id}/cancel     stop (the best image so far is kept)
  GET  /api/jobs/{id}/result     the full result, PNG with the parameters as metadata

Every request passes `guard.Guard` first (host names, cross-site requests, security headers);
every limit on the work one request may ask for is in `options.Limits`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import tempfile
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import samples
from ..config import StyleConfig
from ..errors import ImpastoError
from ..objective import min_side_of
from ..stylize import check_fits, run
from .guard import LOOPBACK_NAMES, Guard
from .jobs import Job, JobQueue, QueueFull, Runner
from .options import Limits, page_config, parse_options
from .transport import EXCEPTION_HANDLERS, BadRequest, BodyDeadline, json_body, media_type
from .transport import error_response as _error
from .uploads import MB, TooLarge, UploadStore, display_name

STATIC = Path(__file__).parent / "static"
SAMPLE = "sample"
EVENT_INTERVAL = 0.25  # seconds between checks of a job for its event stream
UPLOAD_TYPES = ("application/octet-stream", "image/")  # not a type an HTML form can send


class NoSuchThing(Exception):
    """The job or upload id is unknown (never made, forgotten, or the server restarted): 404."""


@functools.lru_cache(maxsize=2)
def _sample(kind: str) -> tuple[str, Image.Image]:
    """The bundled default image (impasto.samples)."""
    if kind == "content":
        return samples.CONTENT_NAME, samples.default_content()
    return "sample painting", samples.default_style()


def content_disposition(disposition: str, filename: str) -> str:
    """RFC 6266: an ASCII `filename` for old clients and the exact name as RFC 5987 `filename*`."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _jpeg(image: Image.Image, longest: int = 320) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((longest, longest))
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


class Studio:
    """The app's state and handlers: one upload store and one job queue per server."""

    def __init__(self, workdir: Path, limits: Limits, queue: JobQueue):
        self.workdir, self.queue, self.limits = workdir, queue, limits
        max_pixels = int(limits.max_megapixels * 1e6)
        self.min_side = min_side_of(StyleConfig())  # the page sets no layers: every job's network is the default
        self.uploads = UploadStore(
            workdir, int(limits.max_upload_mb * MB), max_pixels, limits.keep_longest, min_side=self.min_side
        )

    def _job(self, request: Request) -> Job:
        job = self.queue.get(request.path_params["job_id"])
        if job is None:
            raise NoSuchThing("no such job (the server may have been restarted)")
        return job

    def _state(self, job: Job, losses_from: int = 0) -> dict[str, Any]:
        return job.snapshot(self.queue.position(job), losses_from)

    async def config(self, request: Request) -> JSONResponse:
        body = page_config(self.limits)
        body["max_upload_bytes"] = self.uploads.limit
        body["max_waiting"] = self.queue.max_waiting
        return JSONResponse(body)

    async def sample(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in ("content", "style"):
            return _error("sample must be 'content' or 'style'", 404)
        _, image = await run_in_threadpool(_sample, kind)
        return Response(_jpeg(image), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def upload(self, request: Request) -> JSONResponse:
        name = display_name(request.query_params.get("name"))
        if not media_type(request).startswith(UPLOAD_TYPES):
            return _error("send the image's bytes as Content-Type: application/octet-stream (or image/*)", 415)
        length = request.headers.get("content-length")
        try:
            image_id, (width, height) = await self.uploads.add(
                name, int(length) if length and length.isdigit() else None, request.stream()
            )
        except TooLarge as exc:
            return _error(str(exc), 413)
        except ImpastoError as exc:
            return _error(str(exc), 415)
        return JSONResponse({"id": image_id, "name": name, "width": width, "height": height})

    def _upload(self, request: Request) -> tuple[str, str, tuple[int, int]]:
        image_id = request.path_params["image_id"]
        try:
            return (image_id, *self.uploads.info(image_id))
        except ImpastoError as exc:
            raise NoSuchThing(str(exc)) from None

    async def upload_info(self, request: Request) -> JSONResponse:
        image_id, name, (width, height) = self._upload(request)
        return JSONResponse({"id": image_id, "name": name, "width": width, "height": height})

    async def upload_image(self, request: Request) -> Response:
        _, image = await run_in_threadpool(self.uploads.get, self._upload(request)[0])
        return Response(_jpeg(image), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    def _image(self, ref: Any, kind: str) -> tuple[str, Image.Image]:
        if ref == SAMPLE:
            return _sample(kind)
        if not isinstance(ref, str) or not ref:
            raise ImpastoError(f"choose a {kind} image first")
        return self.uploads.get(ref)

    async def start(self, request: Request) -> JSONResponse:
        try:
            body = await json_body(request)
        except BadRequest as exc:
            return _error(str(exc), exc.status)
        if not isinstance(body, dict) or not isinstance(body.get("options", {}), dict):
            return _error("the request must be a JSON object with content, style and options")
        try:
            config = parse_options(body.get("options", {}), body.get("quality"), self.limits)
            content_name, content = await run_in_threadpool(self._image, body.get("content"), "content")
            check_fits(content.size, config.size, self.min_side, self.limits.max_size)  # now, not in the job
            style_name, style = await run_in_threadpool(self._image, body.get("style"), "style")
            job = Job(content, style, config, (content_name, style_name), (body["content"], body["style"]))
            position = self.queue.submit(job)
        except QueueFull as exc:
            return _error(str(exc), 429)
        except ImpastoError as exc:
            return _error(str(exc))
        return JSONResponse({"id": job.id, "position": position}, status_code=202)

    async def jobs(self, request: Request) -> JSONResponse:
        """/api/jobs: POST starts one, GET lists them (one route, so a wrong method is told both)."""
        return await (self.start(request) if request.method == "POST" else self.list_jobs(request))

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
        filename = display_name(f"{stem}-impasto-{job.id[:6]}.png")
        disposition = "attachment" if request.query_params.get("download") else "inline"
        return FileResponse(
            job.result_path,
            media_type="image/png",
            headers={"Content-Disposition": content_disposition(disposition, filename)},
        )

    async def index(self, request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return _error(str(exc), 404)


def create_app(
    *,
    limits: Limits | None = None,
    max_waiting: int = 4,
    preview_interval: float = 0.5,
    runner: Runner = run,
    workdir: Path | None = None,
    hosts: Collection[str] = LOOPBACK_NAMES,
) -> Starlette:
    """The studio app, behind its Guard. Its job worker starts and stops with the app's lifespan.

    `hosts`: the Host names it answers to (see guard.allowed_hosts).
    """
    limits = (limits or Limits()).check()
    owned = tempfile.TemporaryDirectory(prefix="impasto-web-") if workdir is None else None
    folder = Path(owned.name) if owned is not None else Path(workdir)  # type: ignore[arg-type]
    queue = JobQueue(folder, max_waiting=max_waiting, preview_interval=preview_interval, runner=runner)
    studio = Studio(folder, limits, queue)

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
        Route("/api/uploads/{image_id}", studio.upload_info),
        Route("/api/uploads/{image_id}/image", studio.upload_image),
        Route("/api/jobs", studio.jobs, methods=["GET", "POST"]),
        Route("/api/jobs/{job_id}", studio.job),
        Route("/api/jobs/{job_id}/events", studio.events),
        Route("/api/jobs/{job_id}/preview", studio.preview),
        Route("/api/jobs/{job_id}/cancel", studio.cancel, methods=["POST"]),
        Route("/api/jobs/{job_id}/result", studio.result),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={**EXCEPTION_HANDLERS, NoSuchThing: _not_found},
        middleware=[Middleware(Guard, hosts=frozenset(hosts)), Middleware(BodyDeadline, seconds=limits.body_timeout)],
    )
    app.state.studio = studio
    return app
