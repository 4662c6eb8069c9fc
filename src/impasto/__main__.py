"""`python -m impasto` is the same as the `impasto` command (whose entry point is `entry` here)."""

import sys


def entry() -> int:
    """Import the command line inside a guard: Ctrl-C during the seconds torch takes to load is one line."""
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("impasto: interrupted while starting; nothing written", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(entry())
