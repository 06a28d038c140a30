"""User-facing errors.

A ``ClassmoodError`` carries a one-line message meant for the person at the keyboard; the CLI
prints it without a traceback and exits non-zero. Anything else escaping is a bug.
"""


class ClassmoodError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DataError(ClassmoodError):
    """Malformed or unreadable dataset input (names the file and, where known, the row)."""
