"""The one exception type the CLI turns into a one-line message (never a traceback)."""


class ImpastoError(Exception):
    """A problem with the user's input or environment, explained in one line."""
