"""Command-line entry point: ``mollifier <command> ...``.

Each command lives in its own module exposing ``add_parser(subparsers)`` and
``run(args) -> int``. Errors in user input are printed as one line, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__

COMMANDS: dict[str, str] = {
    "demo": "mollifier.cli.demo",
    "run": "mollifier.cli.run",
    "eval": "mollifier.cli.eval",
    "bench": "mollifier.cli.bench",
    "report": "mollifier.cli.report",
    "chromatin": "mollifier.cli.chromatin",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (subcommands imported lazily on use)."""
    parser = argparse.ArgumentParser(
        prog="mollifier",
        description="High-order derivatives of noisy fields by convolution with mollifiers, "
        "for learning hidden parameters of PDEs.",
    )
    parser.add_argument("--version", action="version", version=f"mollifier {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        try:
            importlib.import_module(module).add_parser(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from ..distributed.collectives import RankFailedError
    from ..inverse.training import NonFiniteLossError
    from ..runtime.lock import FolderBusyError

    try:
        return int(importlib.import_module(COMMANDS[args.command]).run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FolderBusyError) as exc:
        print(f"mollifier {args.command}{_rank_tag()}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a results file could not be written (disk full, read-only folder)
        print(f"mollifier {args.command}{_rank_tag()}: error: {exc}", file=sys.stderr)
        return 1
    except NonFiniteLossError as exc:  # the message says what to try
        print(f"mollifier {args.command}{_rank_tag()}: error: {exc}", file=sys.stderr)
        return 1
    except RankFailedError as exc:  # another torchrun rank failed: say which and why
        print(f"mollifier {args.command}{_rank_tag()}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mollifier {args.command}{_rank_tag()}: interrupted", file=sys.stderr)
        return 130


def _rank_tag() -> str:
    """`` (rank R of N)`` under a multi-process torchrun launch, else empty."""
    world, rank = os.environ.get("WORLD_SIZE", ""), os.environ.get("RANK", "")
    return f" (rank {rank} of {world})" if world.isdigit() and int(world) > 1 and rank else ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
