"""What keeps other web pages out of the studio: Host, Origin and Sec-Fetch-Site checks, security headers.

The studio has no login: anything that can send it requests can paint, read results and fill
the disk. A browser visiting some other site can send such requests too, so:
- only the Host names the server was bound to are served (a DNS-rebinding page has its own name);
- an /api/ request that a browser marks as coming from another site (Sec-Fetch-Site), or whose
  Origin is not this server, is refused with 403, reads included;
- every response says nosniff, may not be framed, and gives no CORS header, so a cross-origin
  script can neither read a response nor send the JSON/binary bodies the API requires without
  a preflight that is never granted.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .transport import error_response

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
SAME_SITE = frozenset({"same-origin", "none"})  # 'none': typed in the address bar, a bookmark

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def host_name(header: str) -> str:
    """'Example.com:8000' -> 'example.com'; '[::1]:8000' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names, the address the server is bound to, and `extra`.

    Bound to every interface (0.0.0.0), it also answers to this computer's name (and name.local);
    others, such as its LAN address, must be named with --allow-host.
    """
    names = set(LOOPBACK_NAMES) | {host_name(name) for name in extra}
    bound = bound.strip("[]").lower()
    if bound in WILDCARDS:
        names |= {socket.gethostname().lower(), socket.gethostname().lower() + ".local"}
    else:
        names.add(bound)
    return frozenset(name.rstrip(".") for name in names)


class Guard:
    """ASGI middleware: refuse foreign hosts and cross-site API requests; add security headers."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]):
        self.app, self.hosts = app, hosts

    def problem(self, scope: Scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if host_name(host).rstrip(".") not in self.hosts:
            return 400, f"this studio does not answer to the host name {host[:100]!r} (see --allow-host)"
        if not scope["path"].startswith("/api/"):
            return None  # the page and its files may be opened from a link on any site
        site = headers.get("sec-fetch-site")
        if site is not None and site not in SAME_SITE:
            return 403, f"requests from other web sites are refused (Sec-Fetch-Site: {site[:40]})"
        origin = headers.get("origin")
        if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host.lower()):
            return 403, f"requests from other web pages are refused (Origin: {origin[:100]})"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        problem = self.problem(scope)
        if problem is not None:
            status, message = problem
            await error_response(message, status)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
