"""What the studio answers below its endpoints: the one error shape, unknown routes and wrong methods,
bounded JSON bodies, a deadline on request bodies, and a client that leaves mid-body.

Every error the studio sends is `error_response`: `{"error": "<one line>"}` with its status. A
request body must arrive within `Limits.body_timeout` seconds of the request's start (a client
that trickles bytes is answered 408 and its connection closed); a client that disconnects before
its body is complete is one line in the server's log, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ImpastoError

log = logging.getLogger("impasto.web")


def error_response(message: str, status: int = 400, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The studio's one error shape: {"error": message}."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


MAX_JSON_BYTES = 64 * 1024  # a job request is a few hundred bytes; nothing in it needs more


class BadRequest(ImpastoError):
    """The request itself is wrong (type, size, syntax), with the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_body(request: Request) -> Any:
    """The body as JSON: application/json, at most MAX_JSON_BYTES, nesting within Python's limits."""
    if media_type(request) != "application/json":
        raise BadRequest("the request body must be JSON sent as Content-Type: application/json", 415)
    too_large = BadRequest(f"the request body is over {MAX_JSON_BYTES // 1024} KiB", 413)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_JSON_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise too_large
    try:
        return json.loads(body)
    except RecursionError:
        raise BadRequest("the JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body must be JSON") from None


class BodyTimeout(Exception):
    """The request's body did not arrive within the deadline."""


def _where(request: Request) -> str:
    return f"{request.method} {request.url.path[:200]}"


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, wrong method) in the studio's shape."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"no such page or API endpoint: {request.url.path[:200]}"
    elif exc.status_code == 405:
        headers["Allow"] = ", ".join(sorted(m.strip() for m in headers.get("Allow", "").split(",") if m.strip()))
        message = f"{request.method[:20]} is not allowed on {request.url.path[:200]}; use {headers['Allow']}"
    else:
        message = str(exc.detail)
    return error_response(message, exc.status_code, headers)


async def client_left(request: Request, exc: Exception) -> Response:
    log.warning("%s: the client disconnected before sending its whole request body", _where(request))
    return Response(status_code=400)  # nobody is left to read it


async def body_timed_out(request: Request, exc: Exception) -> Response:
    log.warning("%s: %s; answered 408", _where(request), exc)
    return error_response(str(exc), 408, {"Connection": "close"})


async def internal_error(request: Request, exc: Exception) -> Response:
    """A bug: the log has its traceback (Starlette logs it), the client one line."""
    return error_response("internal error in the studio (the server's log has the details)", 500)


EXCEPTION_HANDLERS = {
    HTTPException: http_error,
    ClientDisconnect: client_left,
    BodyTimeout: body_timed_out,
    Exception: internal_error,
}


class BodyDeadline:
    """ASGI middleware: the request body must be complete `seconds` after the request started."""

    def __init__(self, app: ASGIApp, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        complete = False

        async def receive_by_deadline() -> Message:
            nonlocal complete
            if complete:  # after the body: waiting for the client to leave (event streams) has no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise BodyTimeout(f"the request body did not arrive within {self.seconds:g} s") from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, receive_by_deadline, send)
