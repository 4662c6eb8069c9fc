"""`impasto serve`: a local web studio to stylize images and watch them being painted.

Importing this package is cheap; Starlette and uvicorn are imported only when the server
starts, so the CLI works without the web extra installed.
"""

from .server import serve_main

__all__ = ["serve_main"]
