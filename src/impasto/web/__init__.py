"""The web studio behind `impasto serve` (the command is impasto.cli.serve): upload, watch, download.

Importing this package is cheap; Starlette and uvicorn are imported only when the server
starts (web.app), so the command line works without the web extra installed.
"""
