"""The ``classmood`` command: one entry point, one subcommand per job, each group in its own module.

User mistakes (bad files, unknown names, bad option values) end with a one-line
``classmood: error: ...`` and exit status 2; a failure of the machine while a command runs (a
full disk, a read-only or vanished output folder, no permission: any ``OSError`` that reaches
here) with one line and exit status 1 - ``analyze`` writes its outputs in a work folder and moves
them into place only when all are written, so the previous outputs stay as they were. Anything
else reaching here is a bug: one line naming it and exit status 1 (``CLASSMOOD_DEBUG=1`` shows
the traceback). Heavy imports (PyTorch, ONNX Runtime) happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from classmood.cli import analysis, app, bench, expression, training
from classmood.errors import ClassmoodError, Stopped, one_line


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (the usage block is what ``--help`` is for)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"classmood: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="classmood",
        description="Apparent facial expressions in online-class video, aggregated into class mood.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    for group in (training, expression, bench, analysis, app):
        group.add_parsers(sub)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> str:
    return f"classmood: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning  # type: ignore[assignment]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad option (2, already said in one line)
        return exc.code if isinstance(exc.code, int) else 2
    func: Callable[[argparse.Namespace], int] = args.func
    args.stop = threading.Event()  # set by SIGTERM; ``analyze`` then stops between two frames
    previous = _stop_on_sigterm(args.command, args.stop)
    try:
        with warnings.catch_warnings():
            if not sys.warnoptions:  # PYTHONWARNINGS or -W (the image's, a user's) decide when given
                warnings.simplefilter("default")
            return func(args)
    except ClassmoodError as exc:
        print(f"classmood: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("classmood: interrupted", file=sys.stderr)
        return 130
    except Stopped:
        print("classmood: stopped (SIGTERM); what was analysed is saved", file=sys.stderr)
        return 143
    except BrokenPipeError:  # the reader of our output went away (``classmood sessions list | head``)
        _silence_stdout()
        return 141
    except OSError as exc:
        print(f"classmood: error: {_os_error(exc, args)}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"classmood: error: out of memory running {args.command}", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("CLASSMOOD_DEBUG"):
            raise
        print(
            f"classmood: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(a bug; CLASSMOOD_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _os_error(exc: OSError, args: argparse.Namespace) -> str:
    """One line for an OSError: the file, the reason, and - when writing outputs - that the old ones are kept.

    ``write()`` errors (ENOSPC, EDQUOT, EFBIG) carry no file name; the output folder is named instead.
    """
    reason = exc.strerror or one_line(exc)
    code = errno.errorcode.get(exc.errno or 0)
    if code:
        reason += f" [{code}]"
    out = getattr(args, "out", None)
    where = exc.filename or out
    line = f"{where}: {reason}" if where else reason
    if args.command == "analyze" and out:
        line += f"; the outputs already in {out} are unchanged"
    return line


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's own flush at exit does not fail (and print) again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _stop_on_sigterm(command: str, stop: threading.Event) -> Any:
    """SIGTERM (``kill``, a container stop, a service manager) stops like Ctrl-C: outputs and sessions kept.

    ``analyze`` stops between two frames once ``stop`` is set, with everything saved (a second SIGTERM
    stops it at once);
    ``batch`` stops at once, its workers are stopped and every finished recording listed. As pid 1 (a
    container's command) the kernel drops every signal that has no handler, so there every command
    gets one, and Ctrl-C (SIGINT) is made to interrupt. Returns the previous SIGTERM handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    init = os.getpid() == 1
    if init and signal.getsignal(signal.SIGINT) in (signal.SIG_DFL, signal.SIG_IGN):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if command == "analyze":

        def handler(signum: int, frame: Any) -> None:
            if stop.is_set():  # asked twice: the input may be blocking (a camera with no frame)
                raise Stopped("SIGTERM")
            stop.set()  # the analysis stops between two frames, with everything saved

    elif command == "batch" or init:

        def handler(signum: int, frame: Any) -> None:
            raise Stopped("SIGTERM")

    else:
        return None
    return signal.signal(signal.SIGTERM, handler)
