"""The commands: `impasto` (a still), `impasto video`, `impasto batch`, `impasto serve`.

They sit on top of the library: no module outside this package imports it (tests/test_architecture.py).
`main` is the entry point (`python -m impasto`, the `impasto` script).
"""

from .dispatch import main

__all__ = ["main"]
