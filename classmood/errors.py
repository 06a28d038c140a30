"""User-facing errors.

A ``ClassmoodError`` carries a one-line message meant for the person at the keyboard; the CLI
prints it without a traceback and exits non-zero. Anything else escaping is a bug.
"""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a user reads it after ``classmood: error:``), or its type's name."""
    return " ".join(str(exc).split()) or type(exc).__name__


class ClassmoodError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DataError(ClassmoodError):
    """Malformed or unreadable dataset input (names the file and, where known, the row)."""


def is_failure(exc: BaseException | None) -> bool:
    """The one rule for how a run that ended with ``exc`` is kept: an ``Exception`` is a failure (bad
    input, a full disk, a bug: the previous outputs stay as they were, a session closes "failed");
    anything else that ends it - Ctrl-C, SIGTERM's ``Stopped``, a Streamlit page being left - is a
    stop asked for, and what was analysed is kept (outputs moved into place, the session "stopped")."""
    return isinstance(exc, Exception)


class Stopped(BaseException):
    """A stop asked for from outside (SIGTERM), handled like Ctrl-C: what was analysed is kept.

    A ``BaseException`` like ``KeyboardInterrupt``, so that no ``except Exception`` on the way
    swallows it.
    """
