"""The ``sclip`` command: ``sclip segment`` for one image, ``sclip evaluate`` for benchmarks.

Each subcommand is a module with ``add_parser`` and ``run``; what they share is declared once in
:mod:`sclip_lib.cli.options`.
"""

from __future__ import annotations

import os
import signal
import sys

from . import evaluate, segment
from .options import Parser, fail
from .segment import SMOKE_BANNER

__all__ = ["SMOKE_BANNER", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run ``sclip``; returns the exit status: 0 done, 2 bad input (one ``error:`` line), 130 interrupted."""
    parser = Parser(prog="sclip", description="Training-free open-vocabulary segmentation (SCLIP).")
    sub = parser.add_subparsers(dest="command", required=True)
    segment.add_parser(sub)
    evaluate.add_parser(sub)
    args = parser.parse_args(argv)
    previous = _sigterm_as_interrupt()
    try:
        if args.command == "segment":
            return segment.run(args)
        return evaluate.run(args)
    except KeyboardInterrupt:
        print("error: interrupted; outputs are written atomically, so no file was left half-written", file=sys.stderr)
        return 130
    except MemoryError:
        return fail("out of memory: use a smaller image, fewer classes or --batch-size 1")
    except Exception as err:  # a bug: still one line, the traceback on request
        if os.environ.get("SCLIP_DEBUG"):
            raise
        return fail(f"{type(err).__name__}: {err} (unexpected; SCLIP_DEBUG=1 shows the traceback, please report it)")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_as_interrupt():
    """Let SIGTERM unwind like Ctrl-C, so evaluation progress is saved; returns the old handler."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None
