"""The ``classmood`` command: one entry point, one subcommand per job, each group in its own module.

User mistakes (bad files, unknown names) end with a one-line ``classmood: error: ...`` and exit
status 2; heavy imports (PyTorch, ONNX Runtime) happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from classmood.cli import analysis, app, bench, expression, training
from classmood.errors import ClassmoodError, Stopped


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    previous = _stop_on_sigterm() if args.command == "analyze" else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return func(args)
    except ClassmoodError as exc:
        print(f"classmood: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("classmood: interrupted", file=sys.stderr)
        return 130
    except Stopped:
        print("classmood: stopped (SIGTERM); what was analysed is saved", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm() -> Any:
    """SIGTERM (``kill``, a container stop, a service manager) stops like Ctrl-C: outputs and session kept."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: Any) -> None:
        from classmood.analysis.analyze import STOP_REQUESTED

        STOP_REQUESTED.set()  # the analysis stops between two frames, with everything saved

    return signal.signal(signal.SIGTERM, stop)
